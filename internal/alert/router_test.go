package alert

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/logtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// capture is an HTTP server that records request bodies and answers with
// the statuses in plan, then 200.
type capture struct {
	mu     sync.Mutex
	reqs   []*http.Request
	bodies [][]byte
	plan   []int
	got    chan struct{}
}

func newCapture(t *testing.T, plan ...int) (*capture, *httptest.Server) {
	c := &capture{plan: plan, got: make(chan struct{}, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.reqs = append(c.reqs, r)
		c.bodies = append(c.bodies, body)
		status := http.StatusOK
		if len(c.plan) > 0 {
			status, c.plan = c.plan[0], c.plan[1:]
		}
		c.mu.Unlock()
		w.WriteHeader(status)
		c.got <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return c, srv
}

func (c *capture) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-c.got:
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out waiting for request")
		}
	}
}

func (c *capture) last() (*http.Request, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reqs[len(c.reqs)-1], c.bodies[len(c.bodies)-1]
}

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func firstExec() detect.Alert {
	return detect.Alert{
		Kind: detect.KindFirstExecution, Severity: detect.High, Service: "shop",
		Summary: "GO-2022-1059: vulnerable golang.org/x/text/language.Parse ran for the first time in shop",
		Evidence: detect.Evidence{
			Finding:  &detect.FindingRef{Service: "shop", VulnID: "GO-2022-1059", PURL: "pkg:golang/golang.org/x/text@v0.3.7"},
			Function: "golang.org/x/text/language.Parse",
		},
		DedupeKey: "first_execution|shop|GO-2022-1059|pkg:golang/golang.org/x/text@v0.3.7",
		Time:      t0, ReceivedAt: t0.Add(-20 * time.Millisecond),
	}
}

func testConfig() Config {
	c := DefaultConfig()
	c.LinkPrefix = "http://127.0.0.1:8080/api/v1"
	c.Retry = Retry{Initial: time.Millisecond, Max: 5 * time.Millisecond, Attempts: 3}
	return c
}

func newRouter(t *testing.T, cfg Config, reg prometheus.Registerer, sinks ...Sink) *Router {
	t.Helper()
	r, err := NewRouter(cfg, sinks, Deps{Registerer: reg, Now: func() time.Time { return t0 }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return r
}

func TestSinks(t *testing.T) {
	hook, hookSrv := newCapture(t)
	am, amSrv := newCapture(t)
	slack, slackSrv := newCapture(t)
	file := filepath.Join(t.TempDir(), "alerts.jsonl")

	w, err := NewWebhook("hook", hookSrv.URL+"/evident", "s3cret", nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewAlertmanager("am", amSrv.URL, "", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSlack("slack", slackSrv.URL+"/services/T0/B0/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	jl, err := OpenJSONLines("file", file)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	r := newRouter(t, testConfig(), reg, w, m, s, jl)
	r.Fire(firstExec())
	hook.wait(t, 1)
	am.wait(t, 1)
	slack.wait(t, 1)

	t.Run("webhook", func(t *testing.T) {
		req, body := hook.last()
		if got, want := req.Header.Get(SignatureHeader), Sign([]byte("s3cret"), req.Header.Get(TimestampHeader), body); got != want || !strings.HasPrefix(got, "sha256=") {
			t.Errorf("signature %q, recomputed %q", got, want)
		}
		if err := verifyWebhook([]byte("s3cret"), req.Header, body, time.Now(), time.Minute); err != nil {
			t.Errorf("verify the delivery as a receiver does: %v (timestamp %q)", err, req.Header.Get(TimestampHeader))
		}
		var a Alert
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatal(err)
		}
		if a.ID == "" || a.Kind != detect.KindFirstExecution || a.Link != "http://127.0.0.1:8080/api/v1/alerts/"+a.ID ||
			!strings.HasPrefix(a.FindingLink, "http://127.0.0.1:8080/api/v1/findings/") || a.Evidence.Finding.VulnID != "GO-2022-1059" {
			t.Errorf("webhook body = %s", body)
		}
	})
	t.Run("alertmanager", func(t *testing.T) {
		req, body := am.last()
		if req.URL.Path != "/api/v2/alerts" || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request %s %s", req.URL.Path, req.Header.Get("Content-Type"))
		}
		var got []struct {
			Labels       map[string]string `json:"labels"`
			Annotations  map[string]string `json:"annotations"`
			StartsAt     time.Time         `json:"startsAt"`
			EndsAt       time.Time         `json:"endsAt"`
			GeneratorURL string            `json:"generatorURL"`
		}
		if err := json.Unmarshal(body, &got); err != nil || len(got) != 1 {
			t.Fatalf("body %s: %v", body, err)
		}
		a := got[0]
		if a.Labels["alertname"] != "evident_first_execution" || a.Labels["severity"] != "high" || a.Labels["service"] != "shop" ||
			a.Annotations["summary"] == "" || !a.StartsAt.Equal(t0) || !a.EndsAt.Equal(t0.Add(time.Hour)) ||
			!strings.Contains(a.GeneratorURL, "/api/v1/alerts/") || !strings.Contains(a.Annotations["evidence"], "language.Parse") {
			t.Errorf("alertmanager alert = %+v", a)
		}
	})
	t.Run("slack", func(t *testing.T) {
		_, body := slack.last()
		var got struct {
			Text   string `json:"text"`
			Blocks []struct {
				Type string `json:"type"`
			} `json:"blocks"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(got.Text, "[HIGH] GO-2022-1059") || len(got.Blocks) != 2 || got.Blocks[0].Type != "section" {
			t.Errorf("slack body = %s", body)
		}
	})
	t.Run("json lines", func(t *testing.T) {
		var lines []Alert
		for deadline := time.Now().Add(5 * time.Second); len(lines) == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var a Alert
				if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
					t.Fatalf("line %q: %v", sc.Text(), err)
				}
				lines = append(lines, a)
			}
			f.Close()
		}
		if len(lines) != 1 || lines[0].Service != "shop" {
			t.Errorf("lines = %+v", lines)
		}
	})
	// Every kind has its latency series from the start; the one alert
	// fired is in its kind's.
	if got, want := testutil.CollectAndCount(reg, "evident_alert_latency_seconds"), len(detect.Kinds); got != want {
		t.Errorf("latency series = %d, want %d", got, want)
	}
	var latency dto.Metric
	if err := r.m.latency.WithLabelValues(string(detect.KindFirstExecution)).(prometheus.Histogram).Write(&latency); err != nil {
		t.Fatal(err)
	}
	if got := latency.GetHistogram().GetSampleCount(); got != 1 {
		t.Errorf("first_execution latency count = %v, want 1", got)
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := jl.Close(); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(r.m.sent.WithLabelValues("first_execution", "file")); got != 1 {
		t.Errorf("sent to file = %v", got)
	}
}

func TestDedupeAndRateLimit(t *testing.T) {
	hook, srv := newCapture(t)
	w, _ := NewWebhook("hook", srv.URL, "", nil)
	cfg := testConfig()
	cfg.KeyBurst = 3
	r := newRouter(t, cfg, nil, w)
	r.Fire(firstExec())
	r.Fire(firstExec()) // duplicate within the window
	for i := range 5 {
		a := firstExec()
		a.DedupeKey += strconv.Itoa(i)
		r.Fire(a)
	}
	hook.wait(t, 3) // the first, then two more before the bucket of kind+service is empty
	if got := testutil.ToFloat64(r.m.deduplicated.WithLabelValues("first_execution", dedupeWindow)); got != 1 {
		t.Errorf("deduplicated = %v, want 1", got)
	}
	if got := testutil.ToFloat64(r.m.dropped.WithLabelValues("first_execution", "", "rate_limited")); got != 3 {
		t.Errorf("rate limited = %v, want 3", got)
	}
}

func TestRetry(t *testing.T) {
	tests := []struct {
		name              string
		plan              []int
		wantReqs          int
		wantSent, wantErr float64
	}{
		{"500 then success", []int{500}, 2, 1, 0},
		{"429 twice then success", []int{429, 503}, 3, 1, 0},
		{"gives up after the attempts", []int{500, 500, 500, 500}, 3, 0, 1},
		{"400 is permanent", []int{400}, 1, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hook, srv := newCapture(t, tt.plan...)
			w, _ := NewWebhook("hook", srv.URL, "k", nil)
			r := newRouter(t, testConfig(), nil, w)
			r.Fire(firstExec())
			hook.wait(t, tt.wantReqs)
			if err := r.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := testutil.ToFloat64(r.m.sent.WithLabelValues("first_execution", "hook")); got != tt.wantSent {
				t.Errorf("sent = %v, want %v", got, tt.wantSent)
			}
			if got := testutil.ToFloat64(r.m.dropped.WithLabelValues("first_execution", "hook", "failed")); got != tt.wantErr {
				t.Errorf("failed = %v, want %v", got, tt.wantErr)
			}
			hook.mu.Lock()
			defer hook.mu.Unlock()
			if len(hook.reqs) != tt.wantReqs {
				t.Errorf("%d requests, want %d", len(hook.reqs), tt.wantReqs)
			}
		})
	}
}

func TestHangingSink(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	fast, fastSrv := newCapture(t)
	slow, _ := NewWebhook("slow", hang.URL, "", nil)
	quick, _ := NewWebhook("fast", fastSrv.URL, "", nil)
	cfg := testConfig()
	cfg.QueueSize = 4
	cfg.KeyBurst, cfg.SinkBurst = 1000, 1000
	var logs logtest.Buffer
	r, err := NewRouter(cfg, []Sink{slow, quick}, Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var firing time.Duration
	for i := range 20 {
		a := firstExec()
		a.DedupeKey += strconv.Itoa(i)
		start := time.Now()
		r.Fire(a)
		firing += time.Since(start)
		fast.wait(t, 1) // the fast sink gets every alert while the slow one hangs
	}
	if firing > time.Second {
		t.Errorf("Fire blocked for %v behind a hanging sink", firing)
	}
	if got := testutil.ToFloat64(r.m.dropped.WithLabelValues("first_execution", "slow", "queue_full")); got < 10 {
		t.Errorf("dropped for the hanging sink = %v, want most of 20", got)
	}
	// Said in the log, once: the next drops within dropLogEvery are
	// counted into the next line.
	line := `level=WARN msg="alerts dropped" sink=slow reason=queue_full kind=first_execution dropped=1 hint="the sink takes alerts slower than they come: its queue (alerts.queue_size) is full"`
	if got := logs.String(); strings.Count(got, line) != 1 || strings.Count(got, "reason=queue_full") != 1 {
		t.Errorf("log:\n%s\nwant one line about the full queue: %s", got, line)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the deadline", err)
	}
	r.Fire(firstExec()) // after Shutdown: dropped, no panic
}

// TestDropsLogged: an alert dropped is logged, not only counted; the
// drops of one sink and reason in the dropLogEvery after a line are
// counted into the next line, so that a burst does not flood the log.
func TestDropsLogged(t *testing.T) {
	now := t0
	var logs logtest.Buffer
	r, err := NewRouter(testConfig(), nil, Deps{Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		after        time.Duration
		sink, reason string
	}{
		{0, "hook", "queue_full"},
		{time.Second, "hook", "queue_full"},
		{time.Second, "hook", "queue_full"},
		{time.Second, "", "rate_limited"},
		{dropLogEvery, "hook", "queue_full"},
	} {
		now = now.Add(step.after)
		r.dropped("first_execution", step.sink, step.reason)
	}
	want := `level=WARN msg="alerts dropped" sink=hook reason=queue_full kind=first_execution dropped=1 hint="the sink takes alerts slower than they come: its queue (alerts.queue_size) is full"
level=WARN msg="alerts dropped" reason=rate_limited kind=first_execution dropped=1 hint="more alerts of one kind for one service than alerts.key_rate and key_burst allow"
level=WARN msg="alerts dropped" sink=hook reason=queue_full kind=first_execution dropped=3 hint="the sink takes alerts slower than they come: its queue (alerts.queue_size) is full"
`
	if diff := cmp.Diff(logs.String(), want); diff != "" {
		t.Errorf("log (-got +want):\n%s", diff)
	}
	if got := testutil.ToFloat64(r.m.dropped.WithLabelValues("first_execution", "hook", "queue_full")); got != 4 {
		t.Errorf("evident_alerts_dropped_total{sink=hook,reason=queue_full} = %v, want 4", got)
	}
}

// TestShutdownLogsUndelivered: a webhook that hangs while serve stops
// holds up its queue until the shutdown timeout ends; the alerts still
// queued then are dropped, and the log says how many and which, beside
// the one whose delivery was cancelled. Before, only a metric counted
// them, gone with the process.
func TestShutdownLogsUndelivered(t *testing.T) {
	tests := []struct {
		name    string
		fired   int
		wantLog string // "" for no line about queued alerts
	}{
		{"one, in flight", 1, ""},
		{"three", 3, "alerts=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started, release := make(chan struct{}, 1), make(chan struct{})
			hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case started <- struct{}{}:
				default:
				}
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}))
			defer hang.Close()
			defer close(release)
			slow, err := NewWebhook("slow", hang.URL, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			var log logtest.Buffer
			cfg := testConfig()
			cfg.KeyBurst, cfg.SinkBurst = 1000, 1000
			r, err := NewRouter(cfg, []Sink{slow}, Deps{Logger: slog.New(slog.NewTextHandler(&log, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			for i := range tt.fired {
				a := firstExec()
				a.DedupeKey += strconv.Itoa(i)
				r.Fire(a)
			}
			<-started
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if err := r.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Shutdown = %v, want the deadline", err)
			}
			got := log.String()
			if !strings.Contains(got, `msg="deliver alert" sink=slow`) {
				t.Errorf("log does not name the delivery cancelled:\n%s", got)
			}
			line := ""
			for l := range strings.Lines(got) {
				if strings.Contains(l, "alerts not delivered") {
					line = l
				}
			}
			switch {
			case tt.wantLog == "" && line != "":
				t.Errorf("log says alerts were left queued: %s", line)
			case tt.wantLog != "" && (!strings.Contains(line, tt.wantLog) || !strings.Contains(line, "sink=slow")):
				t.Errorf("log line of the alerts left queued = %q, want sink=slow and %s; log:\n%s", line, tt.wantLog, got)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	r, err := NewRouter(testConfig(), nil, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	r2, _ := NewRouter(testConfig(), nil, Deps{})
	for range 2 {
		if err := r2.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := r2.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	bad := DefaultConfig()
	bad.QueueSize, bad.LinkPrefix = 0, "/relative"
	if _, err := NewRouter(bad, nil, Deps{}); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "link_prefix") {
		t.Errorf("NewRouter(bad) = %v", err)
	}
	if _, err := NewWebhook("x", "ftp://host/x", "", nil); err == nil {
		t.Error("NewWebhook accepted ftp")
	}
}

// TestTenant: a tenant's router names its tenant in what every sink
// receives, so that one receiver configured for several tenants can
// tell them apart, and in the links, which a reader follows without
// X-Scope-OrgID; a multi-tenant Alertmanager (Mimir's) gets the tenant,
// or the sink's org_id, as X-Scope-OrgID. The default tenant's
// (Deps.Tenant empty) names none.
func TestTenant(t *testing.T) {
	tests := []struct {
		tenant, orgID string
		wantOrgID     string // the X-Scope-OrgID the Alertmanager gets
		wantQuery     string // of the links
	}{
		{"team-a", "", "team-a", "?tenant=team-a"},
		{"", "", "", ""},
		{"team-a", "mimir-a", "mimir-a", "?tenant=team-a"},
		{"", "anonymous", "anonymous", ""},
		{"a(b)*c", "", "a(b)*c", "?tenant=a%28b%29%2Ac"},
	}
	for _, tt := range tests {
		t.Run("tenant="+tt.tenant+",org_id="+tt.orgID, func(t *testing.T) {
			hook, hookSrv := newCapture(t)
			am, amSrv := newCapture(t)
			slack, slackSrv := newCapture(t)
			w, err := NewWebhook("hook", hookSrv.URL, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			m, err := NewAlertmanager("am", amSrv.URL, tt.orgID, time.Hour, nil)
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewSlack("slack", slackSrv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			r, err := NewRouter(testConfig(), []Sink{w, m, s}, Deps{Tenant: tt.tenant, Now: func() time.Time { return t0 }, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer r.Shutdown(context.Background())
			r.Fire(firstExec())
			hook.wait(t, 1)
			am.wait(t, 1)
			slack.wait(t, 1)

			_, body := hook.last()
			var a Alert
			if err := json.Unmarshal(body, &a); err != nil || a.Tenant != tt.tenant {
				t.Errorf("webhook body %s: tenant %q, want %q", body, a.Tenant, tt.tenant)
			}
			if a.Link != "http://127.0.0.1:8080/api/v1/alerts/"+a.ID+tt.wantQuery || !strings.HasSuffix(a.FindingLink, tt.wantQuery) ||
				(tt.wantQuery == "" && strings.Contains(a.FindingLink, "?")) {
				t.Errorf("links %q, %q; want the query %q", a.Link, a.FindingLink, tt.wantQuery)
			}
			req, body := am.last()
			var ams []struct {
				Labels       map[string]string `json:"labels"`
				GeneratorURL string            `json:"generatorURL"`
			}
			if err := json.Unmarshal(body, &ams); err != nil || len(ams) != 1 || ams[0].Labels["tenant"] != tt.tenant || ams[0].GeneratorURL != a.Link {
				t.Errorf("alertmanager body %s: want tenant label %q and link %q", body, tt.tenant, a.Link)
			}
			if got, ok := req.Header["X-Scope-Orgid"]; tt.wantOrgID == "" && ok || tt.wantOrgID != "" && (len(got) != 1 || got[0] != tt.wantOrgID) {
				t.Errorf("alertmanager X-Scope-OrgID = %q, want %q", got, tt.wantOrgID)
			}
			_, body = slack.last()
			if got := strings.Contains(string(body), "tenant `"+tt.tenant+"`"); got != (tt.tenant != "") {
				t.Errorf("slack body %s: names tenant %v, want %v", body, got, tt.tenant != "")
			}
			if !strings.Contains(string(body), a.Link) {
				t.Errorf("slack body %s: want the link %s", body, a.Link)
			}
		})
	}
	if _, err := NewAlertmanager("am", "http://127.0.0.1:9093", "a b", time.Hour, nil); err == nil || !strings.Contains(err.Error(), `org_id "a b"`) {
		t.Errorf("NewAlertmanager with org_id %q = %v, want an error naming it", "a b", err)
	}
}

// TestAlertID: an alert that names when the telemetry showed it
// (Observed) has the same ID however late it fires, so the same
// telemetry applied again after a crash makes the same alert; one that
// does not is told apart by when it fired.
func TestAlertID(t *testing.T) {
	r, err := NewRouter(testConfig(), nil, Deps{Now: func() time.Time { return t0 }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	observed := func(at, fired time.Time) detect.Alert {
		a := firstExec()
		a.Observed, a.Time = at, fired
		return a
	}
	later := t0.Add(time.Hour)
	tests := []struct {
		name   string
		a, b   detect.Alert
		sameID bool
	}{
		{"same occurrence fired twice", observed(t0, t0), observed(t0, later), true},
		{"another occurrence", observed(t0, t0), observed(later, later), false},
		{"no observed time", observed(time.Time{}, t0), observed(time.Time{}, later), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := r.link(tt.a), r.link(tt.b)
			if got := a.ID == b.ID; got != tt.sameID {
				t.Errorf("IDs %s and %s: same %v, want %v", a.ID, b.ID, got, tt.sameID)
			}
		})
	}
}

// TestDedupeWindow: a key fires again once the window since it last
// fired has passed, whether other keys fired in between or not.
func TestDedupeWindow(t *testing.T) {
	cfg := testConfig()
	cfg.DedupeWindow, cfg.KeyBurst = 10*time.Minute, 100
	now := t0
	r, err := NewRouter(cfg, nil, Deps{Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		at    time.Duration
		key   string
		fires bool
	}{
		{0, "a", true},
		{time.Minute, "a", false},
		{2 * time.Minute, "b", true},
		{3 * time.Minute, "a", false},
		{12 * time.Minute, "a", true},
		{13 * time.Minute, "a", false},
		{14 * time.Minute, "b", true},
		{21 * time.Minute, "b", false},
		{23 * time.Minute, "a", true},
		{25 * time.Minute, "b", true},
	}
	fired := 0.0
	for i, s := range steps {
		now = t0.Add(s.at)
		a := firstExec()
		a.DedupeKey = s.key
		r.Fire(a)
		got := testutil.ToFloat64(r.m.fired.WithLabelValues("first_execution"))
		if (got > fired) != s.fires {
			t.Errorf("step %d (%v, %s): fired %v, want %v", i, s.at, s.key, got > fired, s.fires)
		}
		fired = got
	}
}

// history is a History over a slice, newest first.
type history []Fired

func (h history) Fired(_ context.Context, since time.Time, limit int) ([]Fired, error) {
	var out []Fired
	for _, f := range h {
		if !f.Time.Before(since) && (limit <= 0 || len(out) < limit) {
			out = append(out, f)
		}
	}
	return out, nil
}

// TestSeed seeds a router at t0 with stored alerts and fires one: a
// duplicate of one fired within the window before t0 (reason window),
// or of one fired, however long before, for telemetry observed within
// the window of its own (reason observed: a replay of the log after a
// crash raises it again).
func TestSeed(t *testing.T) {
	// With MaxKeys 4 the router remembers the newest 4 of 6: keys k5..k2.
	var many history
	for i := range 6 {
		many = append(many, Fired{DedupeKey: "k" + strconv.Itoa(5-i), Time: t0.Add(-time.Duration(i+1) * time.Second)})
	}
	// Fired a day before t0, for telemetry of shortly before.
	day := t0.Add(-24 * time.Hour)
	obs := day.Add(-3 * time.Second)
	var manyObserved history
	for i := range 6 {
		manyObserved = append(manyObserved, Fired{DedupeKey: "a", Time: day.Add(-time.Duration(i) * time.Hour), Observed: obs.Add(-time.Duration(i) * time.Hour)})
	}
	tests := []struct {
		name     string
		history  history
		key      string
		observed time.Time // of the alert fired
		want     string    // the reason it is deduplicated for; "" fires
	}{
		{"fired a minute before", history{{DedupeKey: "a", Time: t0.Add(-time.Minute)}}, "a", time.Time{}, dedupeWindow},
		{"fired just inside the window", history{{DedupeKey: "a", Time: t0.Add(-10*time.Minute + time.Nanosecond)}}, "a", time.Time{}, dedupeWindow},
		{"fired a window before", history{{DedupeKey: "a", Time: t0.Add(-10 * time.Minute)}}, "a", time.Time{}, ""},
		{"another key", history{{DedupeKey: "a", Time: t0.Add(-time.Minute)}}, "b", time.Time{}, ""},
		{"an alert without a key", history{{DedupeKey: "", Time: t0.Add(-time.Minute)}}, "", time.Time{}, ""},
		{"newest within the cap", many, "k2", time.Time{}, dedupeWindow},
		{"oldest beyond the cap", many, "k0", time.Time{}, ""},
		{"the same telemetry a day later", history{{DedupeKey: "a", Time: day, Observed: obs}}, "a", obs, dedupeObserved},
		{"telemetry observed within the window after", history{{DedupeKey: "a", Time: day, Observed: obs}}, "a", obs.Add(10*time.Minute - time.Nanosecond), dedupeObserved},
		{"telemetry observed within the window before", history{{DedupeKey: "a", Time: day, Observed: obs}}, "a", obs.Add(-5 * time.Minute), dedupeObserved},
		{"telemetry observed a window after", history{{DedupeKey: "a", Time: day, Observed: obs}}, "a", obs.Add(10 * time.Minute), ""},
		{"the same telemetry, another key", history{{DedupeKey: "a", Time: day, Observed: obs}}, "b", obs, ""},
		{"an alert without its observation", history{{DedupeKey: "a", Time: day}}, "a", obs, ""},
		{"the fourth newest of a key", manyObserved, "a", obs.Add(-3 * time.Hour), dedupeObserved},
		{"the fifth newest of a key", manyObserved, "a", obs.Add(-4 * time.Hour), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.DedupeWindow, cfg.MaxKeys = 10*time.Minute, 4
			r, err := NewRouter(cfg, nil, Deps{Now: func() time.Time { return t0 }, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Seed(t.Context(), tt.history); err != nil {
				t.Fatal(err)
			}
			a := firstExec()
			a.DedupeKey, a.Observed = tt.key, tt.observed
			r.Fire(a)
			var got string
			for _, reason := range []string{dedupeWindow, dedupeObserved} {
				if testutil.ToFloat64(r.m.deduplicated.WithLabelValues("first_execution", reason)) == 1 {
					got = reason
				}
			}
			if got != tt.want {
				t.Errorf("deduplicated for %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSeedRunning: a router that fired alerts of key "a" for telemetry
// observed each an hour apart is seeded again (an engine took over a
// partition) with the alerts another process stored, of the same key
// and observed before all of them; what the router fired for itself is
// still remembered, and what it is seeded with is added.
func TestSeedRunning(t *testing.T) {
	var stored history // newest first, each an hour before t0
	for i := range 4 {
		stored = append(stored, Fired{DedupeKey: "a", Time: t0.Add(-time.Duration(i+1) * time.Hour), Observed: t0.Add(-time.Duration(i+1) * time.Hour)})
	}
	tests := []struct {
		name     string
		own      int           // alerts the router fired, observed t0, t0+1h, ...
		observed time.Duration // of the alert fired after the seed, from t0
		want     string
	}{
		{"its newest own", 4, 3 * time.Hour, dedupeObserved},
		{"its oldest own", 4, 0, dedupeObserved},
		{"its own with room for the stored", 1, 0, dedupeObserved},
		{"stored with room for it", 1, -time.Hour, dedupeObserved},
		{"stored, older than those kept", 4, -time.Hour, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0
			r, err := NewRouter(testConfig(), nil, Deps{Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.own {
				a := firstExec()
				a.DedupeKey, a.Observed = "a", t0.Add(time.Duration(i)*time.Hour)
				r.Fire(a)
				now = now.Add(time.Hour) // past the window
			}
			if err := r.Seed(t.Context(), stored); err != nil {
				t.Fatal(err)
			}
			a := firstExec()
			a.DedupeKey, a.Observed = "a", t0.Add(tt.observed)
			r.Fire(a)
			var got string
			for _, reason := range []string{dedupeWindow, dedupeObserved} {
				if testutil.ToFloat64(r.m.deduplicated.WithLabelValues("first_execution", reason)) == 1 {
					got = reason
				}
			}
			if got != tt.want {
				t.Errorf("deduplicated for %q, want %q", got, tt.want)
			}
		})
	}
}

// TestObservedOutlivesWindow fires alerts of one key for telemetry
// observed at various times, each an hour after the one before, past
// the window: one observed within the window of an alert the router
// fired is a duplicate, whenever it comes.
func TestObservedOutlivesWindow(t *testing.T) {
	now := t0
	cfg := testConfig()
	r, err := NewRouter(cfg, nil, Deps{Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		observed time.Duration // after t0
		fires    bool
	}{
		{0, true},
		{0, false},                // the same telemetry, applied again
		{time.Minute, false},      // within the window of the first
		{20 * time.Minute, true},  // an occurrence of its own
		{-9 * time.Minute, false}, // late, within the window of the first
		{-time.Hour, true},
	}
	for i, s := range steps {
		now = now.Add(time.Hour)
		a := firstExec()
		a.Observed = t0.Add(s.observed)
		before := testutil.ToFloat64(r.m.fired.WithLabelValues("first_execution"))
		r.Fire(a)
		if got := testutil.ToFloat64(r.m.fired.WithLabelValues("first_execution")) > before; got != s.fires {
			t.Errorf("step %d (observed %v): fired %v, want %v", i, s.observed, got, s.fires)
		}
	}
}

// sinceHistory is a history that notes the since of every read.
type sinceHistory struct {
	history
	since []time.Time
}

func (h *sinceHistory) Fired(ctx context.Context, since time.Time, limit int) ([]Fired, error) {
	h.since = append(h.since, since)
	return h.history.Fired(ctx, since, limit)
}

// TestSeedAgain: a router seeded before (a tenant's, at each assignment
// of partitions) reads again only what fired since its last seed, less
// the longest a store sink may take to store an alert, not every stored
// alert: still learning an alert another process fired before the last
// seed and stored after it, and remembering what the first seed read.
func TestSeedAgain(t *testing.T) {
	now := t0
	cfg := testConfig()
	r, err := NewRouter(cfg, nil, Deps{Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	day := t0.Add(-24 * time.Hour)
	h := &sinceHistory{history: history{{DedupeKey: "old", Time: day, Observed: day}}}
	if err := r.Seed(t.Context(), h); err != nil {
		t.Fatal(err)
	}
	// Fired by another process a minute before the seed, stored (its
	// sink retrying) after it.
	late := Fired{DedupeKey: "late", Time: t0.Add(-time.Minute), Observed: t0.Add(-time.Minute)}
	h.history = append(history{late}, h.history...)
	now = t0.Add(time.Hour)
	if err := r.Seed(t.Context(), h); err != nil {
		t.Fatal(err)
	}
	overlap := time.Duration(cfg.QueueSize)*time.Second/time.Duration(cfg.SinkRate) +
		time.Duration(cfg.Retry.Attempts)*(cfg.SendTimeout+cfg.Retry.Max) + cfg.DedupeWindow
	if diff := cmp.Diff([]time.Time{{}, t0.Add(-overlap)}, h.since); diff != "" {
		t.Errorf("the seeds read since (-want +got):\n%s", diff)
	}
	for _, f := range []Fired{late, h.history[1]} {
		a := firstExec()
		a.DedupeKey, a.Observed = f.DedupeKey, f.Observed
		before := testutil.ToFloat64(r.m.fired.WithLabelValues("first_execution"))
		r.Fire(a)
		if testutil.ToFloat64(r.m.fired.WithLabelValues("first_execution")) > before {
			t.Errorf("%s, stored before the second seed, fired again", f.DedupeKey)
		}
	}
}

// TestLatencyOfFiredAgain: the replay of the log after a crash raises
// again, hours after its receipt, an alert of telemetry the router fired
// for before: that alert was timed when it fired, and is not timed again
// with the downtime. An alert the replay raises for the first time (its
// batch was logged, not applied, before the crash) is timed from the
// receipt, downtime included: that is how late it pages.
func TestLatencyOfFiredAgain(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, err := NewRouter(testConfig(), nil, Deps{Registerer: reg, Now: func() time.Time { return t0 }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	received := t0.Add(-2 * time.Hour)
	if err := r.Seed(t.Context(), history{{DedupeKey: "a", Time: received.Add(time.Millisecond), Observed: received.Add(-time.Second)}}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"a", "b"} {
		a := firstExec()
		a.DedupeKey, a.Observed, a.ReceivedAt = key, received.Add(-time.Second), received
		r.Fire(a)
	}
	var m dto.Metric
	if err := r.m.latency.WithLabelValues(string(detect.KindFirstExecution)).(prometheus.Histogram).Write(&m); err != nil {
		t.Fatal(err)
	}
	if n, sum := m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum(); n != 1 || sum != 2*3600 {
		t.Errorf("first_execution latency: %d samples of %v s in all, want 1 of 7200 s (b's)", n, sum)
	}
}
