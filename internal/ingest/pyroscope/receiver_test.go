package pyroscope

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	"github.com/google/pprof/profile"
	pyroscopego "github.com/grafana/pyroscope-go"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/evidentsec/evident/internal/ingest/ingesttest"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/telemetry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is a consumer that keeps what it is given, or refuses it with
// err. It checks that every batch comes with the request it was decoded
// from, and that the request replays from the log into the same batches
// (ingesttest.ReplayProfiles); startReceiver reports what did not.
type recorder struct {
	mu       sync.Mutex
	got      []*telemetry.ProfileBatch
	err      error
	unreplay []error
}

func (r *recorder) Consume(ctx context.Context, b []*telemetry.ProfileBatch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.got = append(r.got, b...)
	if err := ingesttest.ReplayProfiles(ctx, b); err != nil {
		r.unreplay = append(r.unreplay, err)
	}
	return nil
}

func (r *recorder) all() []*telemetry.ProfileBatch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*telemetry.ProfileBatch(nil), r.got...)
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Endpoint = "127.0.0.1:0"
	return cfg
}

func startReceiver(t *testing.T, cfg Config, c pipeline.Consumer[[]*telemetry.ProfileBatch]) (*Receiver, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	r, err := New(cfg, c, nil, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if rec, ok := c.(*recorder); ok {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			for _, err := range rec.unreplay {
				t.Errorf("handed on: %v", err)
			}
		}
	})
	return r, reg
}

// burn keeps a CPU busy for d, in a function the profile can name.
func burn(d time.Duration) int {
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := range 10000 {
			n += i * i % 7
		}
	}
	return n
}

func TestPyroscopeGoClient(t *testing.T) {
	rec := &recorder{}
	r, _ := startReceiver(t, testConfig(), rec)
	p, err := pyroscopego.Start(pyroscopego.Config{
		ApplicationName: "checkout",
		ServerAddress:   "http://" + r.Addr(),
		ProfileTypes:    []pyroscopego.ProfileType{pyroscopego.ProfileCPU},
		Tags:            map[string]string{"env": "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("burned CPU (%d)", burn(300*time.Millisecond))
	p.Flush(true)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	got := rec.all()
	if len(got) == 0 {
		t.Fatal("no profile arrived")
	}
	samples := 0
	for _, b := range got {
		if b.Service != "checkout" || b.SampleType != "cpu" || b.Unit != "nanoseconds" {
			t.Errorf("batch service %q type %q unit %q, want checkout cpu nanoseconds", b.Service, b.SampleType, b.Unit)
		}
		if b.Start.IsZero() || b.Duration <= 0 {
			t.Errorf("batch window %v + %v, want the from/until of the upload", b.Start, b.Duration)
		}
		samples += len(b.Samples)
	}
	if samples == 0 {
		t.Error("the CPU profile has no samples")
	}
	if n := testutil.ToFloat64(r.m.AcceptedProfiles.WithLabelValues("pyroscope", "http")); n < 1 {
		t.Errorf("accepted profiles %v, want at least 1", n)
	}
}

// cpuProfile returns a small gzipped CPU profile of main.handler, with
// one sample of 3 periods.
func cpuProfile(t testing.TB) []byte {
	t.Helper()
	fn := &profile.Function{ID: 1, Name: "main.handler", SystemName: "main.handler", Filename: "/src/main.go"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn, Line: 12}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10_000_000,
		TimeNanos:  time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC).UnixNano(),
		Sample:     []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{3, 30_000_000}}},
		Location:   []*profile.Location{loc},
		Function:   []*profile.Function{fn},
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// form builds a multipart body as pyroscope-go does, with the given
// parts in order.
func form(t testing.TB, parts ...[2]string) (body []byte, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		fw, err := w.CreateFormFile(p[0], p[0]+".pprof")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write([]byte(p[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.FormDataContentType()
}

func TestIngest(t *testing.T) {
	prof := string(cpuProfile(t))
	formBody, formType := form(t,
		[2]string{"profile", prof},
		[2]string{"sample_type_config", `{"cpu":{"units":"nanoseconds","sampled":true}}`})
	oldForm, oldFormType := form(t, [2]string{"prev_profile", prof}, [2]string{"profile", prof})
	noProfile, noProfileType := form(t, [2]string{"sample_type_config", `{}`})
	badForm, badFormType := form(t, [2]string{"profile", "not pprof"})
	// 2 MiB of zeros: a few KiB gzipped, over a 1 MiB limit once
	// decompressed.
	var bomb bytes.Buffer
	{
		zw := gzipWriter(&bomb)
		zw.Write(make([]byte, 2<<20))
		zw.Close()
	}
	from, until := "1764000000", "1764000010"
	tests := []struct {
		name        string
		method      string
		query       string
		contentType string
		body        []byte
		consumerErr error
		limit       int64

		wantStatus     int
		wantRetryAfter string
		wantService    string
		wantNamespace  string
		wantStart      time.Time
		wantDuration   time.Duration
	}{
		{name: "multipart as pyroscope-go sends it", query: "name=checkout{env=prod}&from=1764000000000000000&until=1764000010000000000&spyName=gospy&sampleRate=100&units=samples&aggregationType=sum",
			contentType: formType, body: formBody, wantStatus: 200, wantService: "checkout", wantStart: time.Unix(1764000000, 0).UTC(), wantDuration: 10 * time.Second},
		{name: "multipart with prev_profile", query: "name=checkout&format=pprof", contentType: oldFormType, body: oldForm, wantStatus: 200, wantService: "checkout",
			wantStart: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)},
		{name: "raw body, seconds", query: "name=checkout.cpu&from=" + from + "&until=" + until + "&format=pprof", contentType: "binary/octet-stream", body: []byte(prof),
			wantStatus: 200, wantService: "checkout", wantStart: time.Unix(1764000000, 0).UTC(), wantDuration: 10 * time.Second},
		{name: "milliseconds", query: "name=checkout&from=1764000000000&until=1764000002500", body: []byte(prof),
			wantStatus: 200, wantService: "checkout", wantStart: time.Unix(1764000000, 0).UTC(), wantDuration: 2500 * time.Millisecond},
		{name: "service_name label", query: "name=app.cpu{service_name=payments,service_namespace=shop}", body: []byte(prof),
			wantStatus: 200, wantService: "payments", wantNamespace: "shop", wantStart: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)},
		{name: "pyroscope prefix path", query: "name=checkout", body: []byte(prof), wantStatus: 200, wantService: "checkout", wantStart: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)},
		{name: "no name", query: "from=" + from, body: []byte(prof), wantStatus: 400},
		{name: "bad labels", query: "name=checkout{env", body: []byte(prof), wantStatus: 400},
		{name: "bad from", query: "name=checkout&from=yesterday", body: []byte(prof), wantStatus: 400},
		{name: "from after until", query: "name=checkout&from=2000&until=1000", body: []byte(prof), wantStatus: 400},
		{name: "bad sampleRate", query: "name=checkout&sampleRate=fast", body: []byte(prof), wantStatus: 400},
		{name: "speedscope", query: "name=checkout&format=speedscope", body: []byte(prof), wantStatus: 415},
		{name: "no profile part", query: "name=checkout", contentType: noProfileType, body: noProfile, wantStatus: 400},
		{name: "not pprof", query: "name=checkout", contentType: badFormType, body: badForm, wantStatus: 400},
		{name: "multipart without boundary", query: "name=checkout", contentType: "multipart/form-data", body: formBody, wantStatus: 400},
		{name: "over limit after decompression", query: "name=checkout", body: bomb.Bytes(), limit: 1 << 20, wantStatus: 413},
		{name: "over limit", query: "name=checkout", body: make([]byte, 2<<20), limit: 1 << 20, wantStatus: 413},
		{name: "GET", method: http.MethodGet, query: "name=checkout", wantStatus: 405},
		{name: "consumer full", query: "name=checkout", body: []byte(prof), consumerErr: &pipeline.FullError{RetryAfter: 2500 * time.Millisecond}, wantStatus: 429, wantRetryAfter: "3"},
		{name: "consumer permanent", query: "name=checkout", body: []byte(prof), consumerErr: pipeline.Permanent(errors.New("bad")), wantStatus: 400},
		{name: "consumer down", query: "name=checkout", body: []byte(prof), consumerErr: errors.New("engine stopped"), wantStatus: 503},
		{name: "log unavailable", query: "name=checkout", body: []byte(prof), consumerErr: &pipeline.UnavailableError{RetryAfter: 2 * time.Second, Err: errors.New("kafka down")}, wantStatus: 503, wantRetryAfter: "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.limit > 0 {
				cfg.MaxRequestBytes = tt.limit
			}
			rec := &recorder{err: tt.consumerErr}
			r, _ := startReceiver(t, cfg, rec)
			path := IngestPath
			if strings.Contains(tt.name, "prefix") {
				path = PrefixIngestPath
			}
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req, err := http.NewRequestWithContext(t.Context(), method, "http://"+r.Addr()+path+"?"+tt.query, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tt.wantStatus, body)
			}
			if got := resp.Header.Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.wantRetryAfter)
			}
			got := rec.all()
			if tt.wantService == "" {
				if len(got) != 0 {
					t.Errorf("consumer got %d batches, want none", len(got))
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("consumer got %d batches, want 1", len(got))
			}
			b := got[0]
			type view struct {
				Service, Namespace, SampleType string
				Start                          time.Time
				Duration                       time.Duration
				Samples                        int
			}
			gotView := view{b.Service, b.Namespace, b.SampleType, b.Start, b.Duration, len(b.Samples)}
			want := view{tt.wantService, tt.wantNamespace, "cpu", tt.wantStart, tt.wantDuration, 1}
			if diff := cmp.Diff(gotView, want); diff != "" {
				t.Errorf("batch (-got +want):\n%s", diff)
			}
		})
	}
}

func pushRequest(t testing.TB, profiles ...[]byte) *pushv1.PushRequest {
	t.Helper()
	var samples []*pushv1.RawSample
	for i, p := range profiles {
		samples = append(samples, &pushv1.RawSample{RawProfile: p, ID: fmt.Sprintf("00000000-0000-0000-0000-00000000000%d", i)})
	}
	return &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{
			{Name: "__name__", Value: "process_cpu"},
			{Name: "service_name", Value: "checkout"},
		},
		Samples: samples,
	}}}
}

func TestPush(t *testing.T) {
	prof := cpuProfile(t)
	tests := []struct {
		name        string
		opts        []connect.ClientOption
		req         *pushv1.PushRequest
		consumerErr error

		wantCode       connect.Code // 0 for success
		wantRetryAfter string
		wantBatches    int
	}{
		{name: "protobuf", req: pushRequest(t, prof), wantBatches: 1},
		{name: "json", opts: []connect.ClientOption{connect.WithProtoJSON()}, req: pushRequest(t, prof), wantBatches: 1},
		{name: "gzip", opts: []connect.ClientOption{connect.WithSendGzip()}, req: pushRequest(t, prof, prof), wantBatches: 2},
		{name: "grpc", opts: []connect.ClientOption{connect.WithGRPC()}, req: pushRequest(t, prof), wantBatches: 1},
		{name: "one bad profile", req: pushRequest(t, prof, []byte("not pprof")), wantBatches: 1},
		{name: "only bad profiles", req: pushRequest(t, []byte("not pprof")), wantCode: connect.CodeInvalidArgument},
		{name: "empty", req: &pushv1.PushRequest{}},
		{name: "full", req: pushRequest(t, prof), consumerErr: &pipeline.FullError{RetryAfter: time.Second}, wantCode: connect.CodeResourceExhausted, wantRetryAfter: "1"},
		{name: "down", req: pushRequest(t, prof), consumerErr: errors.New("engine stopped"), wantCode: connect.CodeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{err: tt.consumerErr}
			r, _ := startReceiver(t, testConfig(), rec)
			hc := &http.Client{}
			defer hc.CloseIdleConnections()
			if tt.name == "grpc" {
				hc = h2cClient()
			}
			client := pushv1connect.NewPusherServiceClient(hc, "http://"+r.Addr(), tt.opts...)
			_, err := client.Push(t.Context(), connect.NewRequest(tt.req))
			if got := connect.CodeOf(err); err != nil && got != tt.wantCode || err == nil && tt.wantCode != 0 {
				t.Fatalf("Push: %v, want code %v", err, tt.wantCode)
			}
			var ce *connect.Error
			if errors.As(err, &ce) {
				if got := ce.Meta().Get("Retry-After"); got != tt.wantRetryAfter {
					t.Errorf("Retry-After %q, want %q", got, tt.wantRetryAfter)
				}
			}
			got := rec.all()
			if len(got) != tt.wantBatches {
				t.Fatalf("consumer got %d batches, want %d", len(got), tt.wantBatches)
			}
			for _, b := range got {
				if b.Service != "checkout" || len(b.Samples) != 1 {
					t.Errorf("batch service %q with %d samples, want checkout with 1", b.Service, len(b.Samples))
				}
			}
		})
	}
}

func TestPushOverLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRequestBytes = 1 << 10
	r, _ := startReceiver(t, cfg, &recorder{})
	body := make([]byte, 4<<10)
	resp, err := http.Post("http://"+r.Addr()+PushPath, "application/proto", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
}

// gate is a consumer that holds every call until it is opened.
type gate struct {
	entered chan struct{}
	open    chan struct{}
}

func (g *gate) Consume(context.Context, []*telemetry.ProfileBatch) error {
	g.entered <- struct{}{}
	<-g.open
	return nil
}

func TestConcurrencyLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConcurrentRequests = 1
	g := &gate{entered: make(chan struct{}, 1), open: make(chan struct{})}
	r, _ := startReceiver(t, cfg, g)
	prof := cpuProfile(t)
	ingest := "http://" + r.Addr() + IngestPath + "?name=checkout"
	first := make(chan int, 1)
	go func() {
		resp, err := http.Post(ingest, "application/octet-stream", bytes.NewReader(prof))
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-g.entered // the first request holds the only slot
	resp, err := http.Post(ingest, "application/octet-stream", bytes.NewReader(prof))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("second request: %d Retry-After %q, want 429 and 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Decompressing waits for a slot too: a gzipped profile that does not
	// inflate is refused as busy, not inflated and found damaged (400).
	if resp, err = http.Post(ingest, "application/octet-stream", strings.NewReader("\x1f\x8b\x08\x00 not deflate")); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("gzipped profile while the slot is taken: %d, want 429 before it is inflated", resp.StatusCode)
	}
	close(g.open)
	if got := <-first; got != http.StatusOK {
		t.Errorf("first request: %d, want 200", got)
	}
}

func TestParseName(t *testing.T) {
	tests := []struct {
		in          string
		wantApp     string
		wantLabels  map[string]string
		wantErr     bool
		wantService string
	}{
		{in: "checkout", wantApp: "checkout", wantLabels: map[string]string{}, wantService: "checkout"},
		{in: "checkout.cpu", wantApp: "checkout.cpu", wantLabels: map[string]string{}, wantService: "checkout"},
		{in: "backend.purchases", wantApp: "backend.purchases", wantLabels: map[string]string{}, wantService: "backend.purchases"},
		{in: "checkout.alloc_space{env=prod, region = eu}", wantApp: "checkout.alloc_space", wantLabels: map[string]string{"env": "prod", "region": "eu"}, wantService: "checkout"},
		{in: "checkout{}", wantApp: "checkout", wantLabels: map[string]string{}, wantService: "checkout"},
		{in: "checkout{env=prod", wantErr: true},
		{in: "checkout{=prod}", wantErr: true},
		{in: "checkout{env}", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			app, labels, err := parseName(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseName(%q) error %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if app != tt.wantApp || !cmp.Equal(labels, tt.wantLabels) {
				t.Errorf("parseName(%q) = %q %v, want %q %v", tt.in, app, labels, tt.wantApp, tt.wantLabels)
			}
			if got := trimProfileType(app); got != tt.wantService {
				t.Errorf("trimProfileType(%q) = %q, want %q", app, got, tt.wantService)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	want := time.Unix(1764000000, 0).UTC()
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "", want: time.Time{}},
		{in: "1764000000", want: want},
		{in: "1764000000000", want: want},
		{in: "1764000000000000", want: want},
		{in: "1764000000000000000", want: want},
		{in: "now", want: now},
		{in: "now-1h", want: now.Add(-time.Hour)},
		{in: "now-1x", wantErr: true},
		{in: "-5", wantErr: true},
		{in: "yesterday", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTime(tt.in, now)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseTime(%q) error %v, want error %v", tt.in, err, tt.wantErr)
			}
			if !got.Equal(tt.want) {
				t.Errorf("parseTime(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	newReceiver := func(t *testing.T) *Receiver {
		r, err := New(testConfig(), &recorder{}, nil, prometheus.NewRegistry(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	t.Run("start then shutdown twice", func(t *testing.T) {
		r := newReceiver(t)
		for range 2 {
			if err := r.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if r.Addr() == "" {
			t.Fatal("no address after Start")
		}
		for range 2 {
			if err := r.Shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Start(t.Context()); !errors.Is(err, ErrClosed) {
			t.Errorf("Start after Shutdown: %v, want ErrClosed", err)
		}
	})
	t.Run("shutdown without start", func(t *testing.T) {
		r := newReceiver(t)
		for range 2 {
			if err := r.Shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{name: "default", modify: func(*Config) {}},
		{name: "bad endpoint", modify: func(c *Config) { c.Endpoint = "4040" }, want: "endpoint"},
		{name: "zero limit", modify: func(c *Config) { c.MaxRequestBytes = 0 }, want: "max_request_bytes"},
		{name: "limit over what replay reads", modify: func(c *Config) { c.MaxRequestBytes = 256<<20 + 1 }, want: "max_request_bytes 268435457, want 1 byte to 268435456 (256 MiB, the most a logged request may take on replay)"},
		{name: "zero timeout", modify: func(c *Config) { c.ReadTimeout = 0 }, want: "read_timeout"},
		{name: "zero concurrency", modify: func(c *Config) { c.MaxConcurrentRequests = 0 }, want: "max_concurrent_requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want ErrConfig containing %q", err, tt.want)
			}
		})
	}
}

func fuzzHandler(f *testing.F) http.Handler {
	cfg := DefaultConfig()
	cfg.MaxRequestBytes = 1 << 20
	ok := pipeline.ConsumerFunc[[]*telemetry.ProfileBatch](func(context.Context, []*telemetry.ProfileBatch) error { return nil })
	r, err := New(cfg, ok, nil, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	return r.Handler()
}

func checkStatus(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code < 200 || w.Code >= 500 {
		t.Fatalf("status %d: %s", w.Code, w.Body.Bytes())
	}
}

func gzipWriter(w io.Writer) *gzip.Writer { return gzip.NewWriter(w) }

func protoMarshal(m proto.Message) ([]byte, error) { return proto.Marshal(m) }

// h2cClient speaks HTTP/2 without TLS, as gRPC clients do on loopback.
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

func FuzzIngest(f *testing.F) {
	prof := cpuProfile(f)
	body, ct := form(f, [2]string{"profile", string(prof)}, [2]string{"sample_type_config", `{}`})
	f.Add("name=checkout{env=prod}&from=1764000000&until=1764000010&sampleRate=100", ct, body)
	f.Add("name=checkout.cpu&format=pprof", "application/octet-stream", prof)
	f.Add("name=a{b=c}", "multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"profile\"\r\n\r\n\x1f\x8b\r\n--x--\r\n"))
	h := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, query, contentType string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, IngestPath, bytes.NewReader(body))
		req.URL.RawQuery = url.PathEscape(query)
		if q, err := url.ParseQuery(query); err == nil {
			req.URL.RawQuery = q.Encode()
		}
		req.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		checkStatus(t, w)
	})
}

func FuzzPush(f *testing.F) {
	prof := cpuProfile(f)
	pb, err := protoMarshal(pushRequest(f, prof, []byte("bad")))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pb, false)
	f.Add([]byte(`{"series":[{"labels":[{"name":"service_name","value":"a"}],"samples":[{"rawProfile":"H4sIAAAAAAAA/w==","ID":"x"}]}]}`), true)
	h := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		req := httptest.NewRequest(http.MethodPost, PushPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/proto")
		if asJSON {
			req.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		checkStatus(t, w)
	})
}

// TestIngestFoldedWindow: folded stacks (format=folded, lines, and austin's
// output) carry no time; from and until place them as Pyroscope does, in
// any of its units, and default to the time of the request.
func TestIngestFoldedWindow(t *testing.T) {
	const folded = "main;handle;load 3\nmain;handle 1\n"
	const austin = "# austin: 3.7.0\n# interval: 1000\n# mode: cpu\n\nP7;T0:7;/srv/app.py:main:3;/srv/app.py:handle:9 1200\nP7;T0:7;/srv/app.py:main:3 900\n\n# duration: 30000000\n"
	at := func(sec int64) time.Time { return time.Unix(sec, 0).UTC() }
	tests := []struct {
		name, query, body string
		// app is the application name; "" is reports.
		app string
		// wantStart and wantEnd are offsets from the request when
		// relative, else times.
		wantStart, wantEnd time.Time
		relStart, relEnd   time.Duration
		relative           bool
		wantType           string
		wantSamples        int64
	}{
		{name: "folded, seconds", query: "format=folded&from=1764000000&until=1764000010", body: folded,
			wantStart: at(1764000000), wantEnd: at(1764000010), wantType: "samples", wantSamples: 4},
		{name: "folded, milliseconds", query: "format=folded&from=1764000000000&until=1764000002500", body: folded,
			wantStart: at(1764000000), wantEnd: at(1764000000).Add(2500 * time.Millisecond), wantType: "samples", wantSamples: 4},
		{name: "lines, microseconds", query: "format=lines&from=1764000000000000&until=1764000060000000", body: "main;handle\nmain;handle\n",
			wantStart: at(1764000000), wantEnd: at(1764000060), wantType: "samples", wantSamples: 2},
		{name: "lines, nanoseconds", query: "format=lines&from=1764000000000000000&until=1764000001000000000", body: "main\n",
			wantStart: at(1764000000), wantEnd: at(1764000001), wantType: "samples", wantSamples: 1},
		{name: "groups, the default format of text", query: "from=now-10s&until=now", body: folded,
			relative: true, relStart: -10 * time.Second, wantType: "samples", wantSamples: 4},
		{name: "austin with from and until", query: "format=folded&from=1764000000&until=1764000060", body: austin,
			wantStart: at(1764000000), wantEnd: at(1764000060), wantType: "cpu", wantSamples: 2},
		{name: "austin ends now and lasts its duration", query: "format=folded", body: austin,
			relative: true, relStart: -30 * time.Second, wantType: "cpu", wantSamples: 2},
		{name: "austin ends at until", query: "format=folded&until=1764000060", body: austin,
			wantStart: at(1764000030), wantEnd: at(1764000060), wantType: "cpu", wantSamples: 2},
		{name: "from alone lasts until now", query: "format=folded&from=now-1m", body: folded,
			relative: true, relStart: -time.Minute, wantType: "samples", wantSamples: 4},
		{name: "neither: the instant of the request", query: "format=folded", body: folded,
			relative: true, wantType: "samples", wantSamples: 4},
		// What folded stacks count, the name or the units say: an
		// allocation profile's stacks are no time samples.
		{name: "folded allocations, by the name", app: "reports.alloc_objects", query: "format=folded&from=1764000000&until=1764000010&units=objects", body: folded,
			wantStart: at(1764000000), wantEnd: at(1764000010), wantType: "alloc_objects", wantSamples: 4},
		{name: "folded, by the units", query: "format=folded&from=1764000000&until=1764000010&units=lock_nanoseconds", body: folded,
			wantStart: at(1764000000), wantEnd: at(1764000010), wantType: "lock_nanoseconds", wantSamples: 4},
		{name: "folded cpu samples, by the name", app: "reports.cpu", query: "format=folded&from=1764000000&until=1764000010&units=samples", body: folded,
			wantStart: at(1764000000), wantEnd: at(1764000010), wantType: "samples", wantSamples: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			r, _ := startReceiver(t, testConfig(), rec)
			before := time.Now()
			app := tt.app
			if app == "" {
				app = "reports"
			}
			resp, err := http.Post("http://"+r.Addr()+IngestPath+"?name="+app+"&"+tt.query, "text/plain", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			after := time.Now()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			got := rec.all()
			if len(got) != 1 {
				t.Fatalf("consumer got %d batches, want 1", len(got))
			}
			b := got[0]
			var samples int64
			for _, s := range b.Samples {
				samples += s.Count
			}
			if b.Service != "reports" || b.SampleType != tt.wantType || samples != tt.wantSamples {
				t.Errorf("service %q, %d samples of %q; want reports, %d of %q", b.Service, samples, b.SampleType, tt.wantSamples, tt.wantType)
			}
			end := b.Start.Add(b.Duration)
			if !tt.relative {
				if !b.Start.Equal(tt.wantStart) || !end.Equal(tt.wantEnd) {
					t.Errorf("window [%v, %v), want [%v, %v)", b.Start, end, tt.wantStart, tt.wantEnd)
				}
				return
			}
			// now and now-D are read as the request is handled: between
			// before and after, at second precision for now-D.
			inside := func(got time.Time, rel time.Duration) bool {
				return !got.Before(before.Add(rel).Truncate(time.Second)) && !got.After(after.Add(rel))
			}
			if !inside(b.Start, tt.relStart) || !inside(end, tt.relEnd) {
				t.Errorf("window [%v, %v), want [request%v, request%+v) with the request in [%v, %v]", b.Start, end, tt.relStart, tt.relEnd, before, after)
			}
		})
	}
}
