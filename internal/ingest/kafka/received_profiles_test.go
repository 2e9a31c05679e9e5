package kafka

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"

	"github.com/evidentsec/evident/internal/ingest/otlp"
	"github.com/evidentsec/evident/internal/ingest/pyroscope"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/telemetry"
)

// handedOn is the consumer a receiver hands its batches to in front of
// the producer: it keeps what the receiver handed on, then passes the
// batches on with their context, as the composition root wires it.
type handedOn struct {
	next pipeline.Consumer[[]*telemetry.ProfileBatch]
	mu   sync.Mutex
	got  []*telemetry.ProfileBatch
}

func (h *handedOn) Consume(ctx context.Context, ps []*telemetry.ProfileBatch) error {
	h.mu.Lock()
	h.got = append(h.got, ps...)
	h.mu.Unlock()
	return h.next.Consume(ctx, ps)
}

// otlpProfiles returns an OTLP profiles request built with pdata: a CPU
// profile of one sample for each service, and with bad a profile that
// names a sample type out of the string table, which the receiver
// refuses (a partial success).
func otlpProfiles(t *testing.T, bad bool, services ...string) []byte {
	t.Helper()
	pd := pprofile.NewProfiles()
	d := pd.Dictionary()
	d.StringTable().Append("", "cpu", "nanoseconds", "main.handler", "main.go")
	d.MappingTable().AppendEmpty()
	d.LinkTable().AppendEmpty()
	d.AttributeTable().AppendEmpty()
	d.FunctionTable().AppendEmpty()
	fn := d.FunctionTable().AppendEmpty()
	fn.SetNameStrindex(3)
	fn.SetFilenameStrindex(4)
	d.LocationTable().AppendEmpty()
	d.LocationTable().AppendEmpty().Lines().AppendEmpty().SetFunctionIndex(1)
	d.StackTable().AppendEmpty()
	d.StackTable().AppendEmpty().LocationIndices().Append(1)
	for i, svc := range services {
		rp := pd.ResourceProfiles().AppendEmpty()
		rp.Resource().Attributes().PutStr("service.name", svc)
		sp := rp.ScopeProfiles().AppendEmpty()
		p := sp.Profiles().AppendEmpty()
		p.SampleType().SetTypeStrindex(1)
		p.SampleType().SetUnitStrindex(2)
		p.PeriodType().SetTypeStrindex(1)
		p.PeriodType().SetUnitStrindex(2)
		p.SetPeriod(10_000_000)
		p.SetTime(1700000000_000_000_000)
		p.SetDurationNano(10_000_000_000)
		s := p.Samples().AppendEmpty()
		s.SetStackIndex(1)
		s.Values().Append(int64(i+1) * 30_000_000)
		if bad {
			sp.Profiles().AppendEmpty().SampleType().SetTypeStrindex(99)
		}
	}
	b, err := pprofileotlp.NewExportRequestFromProfiles(pd).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post sends body to url, wanting 200.
func post(t *testing.T, url, contentType string, body []byte) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", url, resp.Status)
	}
}

// TestReceivedProfiles: what a receiver hands on with the request it
// decoded it from is written as that request (profile-request/1), one
// record per service, when redaction would mask nothing in it, and the
// engines apply exactly the batches the receiver handed on, decoded once
// from the record with the same decoders; a request the receiver took in
// part gives the profiles it took, none lost. A request whose profile
// is of several services, or that redaction would mask, goes as its
// batches (gob-profiles/1), the same batches applied.
func TestReceivedProfiles(t *testing.T) {
	cpu, err := os.ReadFile("testdata/cpu.pb.gz")
	if err != nil {
		t.Fatal(err)
	}
	const from, until = 1700000000, 1700000010
	tests := []struct {
		name string
		// keep writes the log unredacted (keep_received).
		keep bool
		// send sends the request to a receiver handing on to c.
		send        func(t *testing.T, c pipeline.Consumer[[]*telemetry.ProfileBatch])
		wantFormats []string
		wantKeys    []string
		// wantData is the profile the record holds as received.
		wantData []byte
		// small sets max_record_bytes to its least: the request is
		// split into several records.
		small bool
	}{
		{"pprof by Pyroscope /ingest", false, func(t *testing.T, c pipeline.Consumer[[]*telemetry.ProfileBatch]) {
			url := startPyroscope(t, c)
			post(t, fmt.Sprintf("%s/ingest?name=cart.cpu{env=prod}&from=%d&until=%d&sampleRate=100&spyName=gospy", url, from, until), "application/octet-stream", cpu)
		}, []string{formatProfileRequest}, []string{"cart"}, gunzip(t, cpu), false},
		{"folded stacks by Pyroscope /ingest", false, func(t *testing.T, c pipeline.Consumer[[]*telemetry.ProfileBatch]) {
			url := startPyroscope(t, c)
			post(t, fmt.Sprintf("%s/ingest?name=pay.cpu&from=%d&until=%d&format=folded", url, from, until), "text/plain", []byte("main;pay;charge 7\nmain;pay 2\n"))
		}, []string{formatProfileRequest}, []string{"pay"}, nil, false},
		{"OTLP profiles, redaction on", false, func(t *testing.T, c pipeline.Consumer[[]*telemetry.ProfileBatch]) {
			post(t, startOTLP(t, c)+otlp.ProfilesPath, "application/x-protobuf", otlpProfiles(t, false, "cart"))
		}, []string{formatGobProfile}, []string{"cart"}, nil, false},
		{"OTLP profiles", true, func(t *testing.T, c pipeline.Consumer[[]*telemetry.ProfileBatch]) {
			post(t, startOTLP(t, c)+otlp.ProfilesPath, "application/x-protobuf", otlpProfiles(t, false, "cart"))
		}, []string{formatProfileRequest}, []string{"cart"}, nil, false},
		{"OTLP profiles partly malformed", true, func(t *testing.T, c pipeline.Consumer[[]*telemetry.ProfileBatch]) {
			post(t, startOTLP(t, c)+otlp.ProfilesPath, "application/x-protobuf", otlpProfiles(t, true, "cart"))
		}, []string{formatProfileRequest}, []string{"cart"}, nil, false},
		{"OTLP profiles of two services", true, func(t *testing.T, c pipeline.Consumer[[]*telemetry.ProfileBatch]) {
			post(t, startOTLP(t, c)+otlp.ProfilesPath, "application/x-protobuf", otlpProfiles(t, true, "cart", "pay"))
		}, []string{formatGobProfile}, []string{"cart", "pay"}, nil, false},
		{"Push of two series", false, func(t *testing.T, c pipeline.Consumer[[]*telemetry.ProfileBatch]) {
			// As the Push handler builds it: one profile per raw
			// profile that decoded, with its series' service.
			req := &telemetry.ProfileRequest{Limits: telemetry.DefaultLimits()}
			var ps []*telemetry.ProfileBatch
			for i, svc := range []string{"cart", "pay", "cart"} {
				rp := telemetry.ReceivedProfile{Format: telemetry.FormatPprof, Data: cpu, Source: fmt.Sprintf("pyroscope Push: series[%d].samples[0]", i), Service: svc}
				bs, err := req.Limits.DecodeProfile(&rp)
				if err != nil {
					t.Fatal(err)
				}
				req.Profiles = append(req.Profiles, rp)
				ps = append(ps, bs...)
			}
			if err := c.Consume(telemetry.WithReceivedProfiles(context.Background(), req, ps), ps); err != nil {
				t.Fatal(err)
			}
		}, []string{formatProfileRequest}, []string{"cart", "pay"}, nil, false},
		{"Push of many series, over max_record_bytes", false, func(t *testing.T, c pipeline.Consumer[[]*telemetry.ProfileBatch]) {
			req := &telemetry.ProfileRequest{Limits: telemetry.DefaultLimits()}
			var ps []*telemetry.ProfileBatch
			for i := range 40 {
				rp := telemetry.ReceivedProfile{Format: telemetry.FormatPprof, Data: gunzip(t, cpu), Source: fmt.Sprintf("pyroscope Push: series[%d].samples[0]", i), Service: "cart"}
				bs, err := req.Limits.DecodeProfile(&rp)
				if err != nil {
					t.Fatal(err)
				}
				req.Profiles = append(req.Profiles, rp)
				ps = append(ps, bs...)
			}
			if err := c.Consume(telemetry.WithReceivedProfiles(context.Background(), req, ps), ps); err != nil {
				t.Fatal(err)
			}
		}, []string{formatProfileRequest}, []string{"cart"}, nil, true},
		{"folded stacks over max_record_bytes alone", false, func(t *testing.T, c pipeline.Consumer[[]*telemetry.ProfileBatch]) {
			var body bytes.Buffer
			for i := range 3000 {
				fmt.Fprintf(&body, "main;shop.handler%04d;shop.work%04d %d\n", i, i, i+1)
			}
			post(t, fmt.Sprintf("%s/ingest?name=cart.cpu&from=%d&until=%d&format=folded", startPyroscope(t, c), from, until), "text/plain", body.Bytes())
		}, []string{formatGobProfile}, []string{"cart"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := cluster(t, 1)
			cfg.KeepReceived = tt.keep
			if tt.small {
				cfg.MaxRecordBytes = minRecordBytes
			}
			p := newProducer(t, cfg)
			h := &handedOn{next: p.Profiles()}
			tt.send(t, h)
			if len(h.got) == 0 {
				t.Fatal("the receiver handed nothing on")
			}
			written := int(testutil.ToFloat64(p.m.WithLabelValues("profiles", "written")))
			if tt.small && written < 2 {
				t.Errorf("%d records, want the request split", written)
			}
			log := readLog(t, cfg, written)
			// The formats and keys of the records, each once in a row.
			var formats, keys []string
			for _, r := range log {
				if size := len(r.Value) + len(r.Key) + 100; size > cfg.MaxRecordBytes {
					t.Errorf("record at %d: about %d bytes, over %d", r.Offset, size, cfg.MaxRecordBytes)
				}
				if f := header(r, headerFormat); len(formats) == 0 || formats[len(formats)-1] != f {
					formats = append(formats, f)
				}
				if k := string(r.Key); len(keys) == 0 || keys[len(keys)-1] != k {
					keys = append(keys, k)
				}
			}
			if diff := cmp.Diff(formats, tt.wantFormats); diff != "" {
				t.Errorf("record formats (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(keys, tt.wantKeys); diff != "" {
				t.Errorf("record keys (-got +want):\n%s", diff)
			}
			if tt.wantData != nil {
				req, err := telemetry.ParseProfileRequest(log[0].Value)
				if err != nil {
					t.Fatal(err)
				}
				if len(req.Profiles) != 1 || !bytes.Equal(req.Profiles[0].Data, tt.wantData) {
					t.Error("the record does not hold the profile as received")
				}
			}
			var applied []*telemetry.ProfileBatch
			var mu sync.Mutex
			st := newState()
			a := newApplier(st)
			a.each = func(r Record) {
				mu.Lock()
				defer mu.Unlock()
				applied = append(applied, r.Profiles...)
			}
			r := startReader(t, cfg, a, 50*time.Millisecond, nil)
			st.waitFor(t, len(h.got))
			mu.Lock()
			defer mu.Unlock()
			// In order within each service, as records are per service.
			var opts []cmp.Option
			if tt.wantFormats[0] == formatGobProfile {
				// gob gives an empty location back as nil.
				opts = append(opts, cmpopts.EquateEmpty())
			}
			bySvc := func(b **telemetry.ProfileBatch) string { return (*b).Service }
			got, want := any(groupBy(applied, bySvc)), any(groupBy(h.got, bySvc))
			if len(applied) > len(h.got) {
				// A profile too large alone is split by its samples,
				// which the engine adds up as the whole.
				got, want = samplesOf(applied), samplesOf(h.got)
			}
			if diff := cmp.Diff(got, want, opts...); diff != "" {
				t.Errorf("applied (-got +handed on by the receiver):\n%s", diff)
			}
			if n := testutil.ToFloat64(r.m.WithLabelValues("malformed")); n != 0 {
				t.Errorf("%v records skipped as malformed, want none", n)
			}
		})
	}
}

// startPyroscope starts a Pyroscope receiver handing on to c and returns
// its URL.
func startPyroscope(t *testing.T, c pipeline.Consumer[[]*telemetry.ProfileBatch]) string {
	t.Helper()
	cfg := pyroscope.DefaultConfig()
	cfg.Endpoint = "127.0.0.1:0"
	r, err := pyroscope.New(cfg, c, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	return "http://" + r.Addr()
}

// startOTLP starts an OTLP receiver of HTTP alone handing profiles on to
// c and returns its URL.
func startOTLP(t *testing.T, c pipeline.Consumer[[]*telemetry.ProfileBatch]) string {
	t.Helper()
	cfg := otlp.DefaultConfig()
	cfg.GRPCEndpoint, cfg.HTTPEndpoint = "", "127.0.0.1:0"
	r, err := otlp.New(cfg, pipeline.ConsumerFunc[[]telemetry.Span](func(context.Context, []telemetry.Span) error { return nil }), c, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	return "http://" + r.HTTPAddr()
}

// gunzip returns b gunzipped.
func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// samplesOf is each sample of ps, in order, with its service, stack and
// values.
func samplesOf(ps []*telemetry.ProfileBatch) []string {
	var out []string
	for _, b := range ps {
		for _, smp := range b.Samples {
			var stack []string
			for _, l := range smp.Locations {
				for _, f := range b.Locations[l] {
					stack = append(stack, f.Function)
				}
			}
			out = append(out, fmt.Sprintf("%s %s %d %d", b.Service, strings.Join(stack, ";"), smp.Count, smp.Value))
		}
	}
	return out
}
