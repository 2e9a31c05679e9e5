package detect

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/telemetry"
)

// textFinding is golang.org/x/text GO-2022-1059 (CVE-2022-32149) in
// service shop, with the symbol govulncheck reports.
func textFinding(svc string) findings.Finding {
	return findings.Finding{
		Service:       svc,
		Package:       findings.Package{PURL: "pkg:golang/golang.org/x/text@v0.3.7", Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.7"},
		Vulnerability: findings.Vulnerability{ID: "GO-2022-1059", Aliases: []string{"CVE-2022-32149"}},
		Severity:      findings.Severity{Level: "high", Score: 7.5},
		Static:        findings.StaticCalled,
		Symbols:       []string{"golang.org/x/text/language.Parse"},
	}
}

func fn(pkg, sym string) attribution.Func {
	return attribution.Func{Language: attribution.Go, Package: pkg, Symbol: sym, Module: "golang.org/x/text"}
}

func TestFirstExecution(t *testing.T) {
	fs := []findings.Finding{textFinding("shop"), textFinding("billing")}
	w := NewFirstExecution(fs, nil)
	tests := []struct {
		name        string
		ch          model.Changes
		wantAlerts  []string // dedupe keys
		wantTouched []int
	}{
		{"unrelated code", model.Changes{NewFunctions: map[string][]attribution.Func{
			"shop": {{Language: attribution.Go, Package: "main", Symbol: "main"}}}}, nil, nil},
		{"package ran, not the symbol", model.Changes{NewFunctions: map[string][]attribution.Func{
			"shop": {fn("golang.org/x/text/language", "MustParse")}}}, nil, []int{0}},
		{"vulnerable symbol ran", model.Changes{NewFunctions: map[string][]attribution.Func{
			"shop": {fn("golang.org/x/text/unicode/norm", "Form.String"), fn("golang.org/x/text/language", "Parse")}}},
			[]string{"first_execution|shop|GO-2022-1059|pkg:golang/golang.org/x/text@v0.3.7"}, []int{0}},
		{"other service with no finding", model.Changes{NewFunctions: map[string][]attribution.Func{
			"mailer": {fn("golang.org/x/text/language", "Parse")}}}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The profile started 5 s before it was received.
			as, touched := w.Check(tt.ch, tm(-5), tm(0), tm(0.01))
			var keys []string
			for _, a := range as {
				keys = append(keys, a.DedupeKey)
				if a.Severity != High || a.Evidence.Function != "golang.org/x/text/language.Parse" || a.Observed != tm(-5) || a.ReceivedAt != tm(0) || a.Time != tm(0.01) {
					t.Errorf("alert = %+v", a)
				}
			}
			if diff := cmp.Diff(tt.wantAlerts, keys); diff != "" {
				t.Errorf("alerts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantTouched, touched); diff != "" {
				t.Errorf("touched (-want +got):\n%s", diff)
			}
		})
	}
}

func span(svc string, kind telemetry.SpanKind, id, parent byte, a telemetry.Attrs) telemetry.Span {
	return telemetry.Span{Service: svc, Kind: kind, SpanID: [8]byte{7: id}, ParentSpanID: [8]byte{7: parent},
		Name: "op", Start: epoch, End: epoch.Add(time.Millisecond), Attrs: a}
}

// pathSummaries adds spans to m and returns the summaries of the
// sensitive-path alerts of the batch, under cfg.
func pathSummaries(m *model.Model, cfg assess.Config, spans []telemetry.Span) []string {
	ch := m.AddSpans(spans)
	snap := m.Snapshot()
	var got []string
	for _, a := range SensitivePaths(ch, nil, assess.New(cfg, nil, snap), snap, tm(0), tm(0)) {
		got = append(got, a.Summary)
	}
	return got
}

func TestSensitivePaths(t *testing.T) {
	cfg := assess.DefaultConfig()
	cfg.Sensitivity = []assess.SensitivityRule{{Store: "postgresql://shop/*", Labels: []string{"pii"}}}
	m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
	check := func(spans ...telemetry.Span) []string { return pathSummaries(m, cfg, spans) }
	// The gateway is exposed (root SERVER spans); orders is internal.
	if got := check(
		span("gateway", telemetry.SpanKindServer, 1, 0, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/"}),
		span("orders", telemetry.SpanKindClient, 9, 8, telemetry.Attrs{DBSystem: "redis", DBNamespace: "0"}),
	); got != nil {
		t.Errorf("no path yet: %v", got)
	}
	// orders reaches a sensitive table, but nothing exposed reaches orders.
	if got := check(span("orders", telemetry.SpanKindClient, 10, 8, telemetry.Attrs{DBSystem: "postgresql", DBNamespace: "shop", DBCollection: "customers"})); got != nil {
		t.Errorf("unreachable store: %v", got)
	}
	// The gateway starts calling orders: a new edge opens the path.
	got := check(
		span("gateway", telemetry.SpanKindClient, 2, 1, telemetry.Attrs{ServerAddress: "orders"}),
		span("orders", telemetry.SpanKindServer, 3, 2, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/o"}),
	)
	want := []string{"exposed service gateway now reaches pii store postgresql://shop/customers via gateway -> orders"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("new edge (-want +got):\n%s", diff)
	}
	// The same calls again change nothing.
	if got := check(span("gateway", telemetry.SpanKindClient, 4, 1, telemetry.Attrs{ServerAddress: "orders"}),
		span("orders", telemetry.SpanKindServer, 5, 4, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/o"})); got != nil {
		t.Errorf("known edge: %v", got)
	}
	// A new sensitive store behind the known edge.
	got = check(span("orders", telemetry.SpanKindClient, 11, 3, telemetry.Attrs{DBSystem: "postgresql", DBNamespace: "shop", DBCollection: "cards"}))
	want = []string{"exposed service gateway now reaches pii store postgresql://shop/cards via gateway -> orders"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("new store (-want +got):\n%s", diff)
	}
}

// TestSensitivePathObserved: a sensitive-path alert's Observed is the
// first call of the newest edge or store of its path, whichever of them
// the batch brought, so that the same path opened again after a crash
// names the same occurrence (Alert.Observed).
func TestSensitivePathObserved(t *testing.T) {
	cfg := assess.DefaultConfig()
	cfg.Sensitivity = []assess.SensitivityRule{{Store: "postgresql://shop/*", Labels: []string{"pii"}}}
	at := func(sp telemetry.Span, sec float64) telemetry.Span {
		sp.Start, sp.End = tm(sec), tm(sec+0.001)
		return sp
	}
	root := at(span("gateway", telemetry.SpanKindServer, 1, 0, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/"}), 0)
	call := func(sec float64) []telemetry.Span {
		return []telemetry.Span{
			at(span("gateway", telemetry.SpanKindClient, 2, 1, telemetry.Attrs{ServerAddress: "orders"}), sec),
			at(span("orders", telemetry.SpanKindServer, 3, 2, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/o"}), sec),
		}
	}
	query := func(sec float64) telemetry.Span {
		return at(span("orders", telemetry.SpanKindClient, 4, 3, telemetry.Attrs{DBSystem: "postgresql", DBNamespace: "shop", DBCollection: "customers"}), sec)
	}
	tests := []struct {
		name          string
		before, batch []telemetry.Span
		want          time.Time
	}{
		{"the store is newer than the edge", []telemetry.Span{root}, append(call(5), query(7)), tm(7)},
		{"the edge is newer than the store", []telemetry.Span{root, query(3)}, call(8), tm(8)},
		{"a new store behind a known edge", append([]telemetry.Span{root}, call(2)...), []telemetry.Span{query(9)}, tm(9)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
			m.AddSpans(tt.before)
			ch := m.AddSpans(tt.batch)
			snap := m.Snapshot()
			as := SensitivePaths(ch, nil, assess.New(cfg, nil, snap), snap, tm(20), tm(21))
			if len(as) != 1 {
				t.Fatalf("alerts = %+v, want one", as)
			}
			if as[0].Observed != tt.want || as[0].ReceivedAt != tm(20) || as[0].Time != tm(21) {
				t.Errorf("observed, received, time = %v, %v, %v; want %v, %v, %v", as[0].Observed, as[0].ReceivedAt, as[0].Time, tt.want, tm(20), tm(21))
			}
		})
	}
}

// TestSensitivePathsThroughMessaging: an exposed service's path to a
// sensitive store through a queue opens when the link through the queue
// is new, from either end: a consumer's first message from a destination
// the exposed service produces to (its CONSUMER span, or a pull
// consumer's receive CLIENT span), or the exposed service's first
// message to a destination a service consumes from. Until 2026-12-07
// neither alerted: a new consumer was not in the batch's changes, and a
// new destination of a producer was not taken for a link.
func TestSensitivePathsThroughMessaging(t *testing.T) {
	cfg := assess.DefaultConfig()
	cfg.Sensitivity = []assess.SensitivityRule{{Store: "postgresql://hr/*", Labels: []string{"pii"}}}
	exposed := span("gateway", telemetry.SpanKindServer, 1, 0, telemetry.Attrs{HTTPMethod: "POST", HTTPRoute: "/jobs"})
	produce := span("gateway", telemetry.SpanKindProducer, 2, 1, telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "jobs", MessagingOperation: "send"})
	store := span("payroll", telemetry.SpanKindClient, 20, 10, telemetry.Attrs{DBSystem: "postgresql", DBNamespace: "hr", DBCollection: "salaries"})
	// The consumer's parent is not the gateway's span (it never
	// arrives), so that no edge opens the path: the queue does.
	consumer := span("payroll", telemetry.SpanKindConsumer, 10, 99, telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "jobs", MessagingOperation: "process"})
	poller := span("payroll", telemetry.SpanKindClient, 10, 0, telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "jobs", MessagingOperation: "receive"})
	want := []string{"exposed service gateway now reaches pii store postgresql://hr/salaries via gateway -> payroll"}
	tests := []struct {
		name          string
		before, after []telemetry.Span
	}{
		{"a new consumer", []telemetry.Span{exposed, produce, store}, []telemetry.Span{consumer}},
		{"a new pull consumer", []telemetry.Span{exposed, produce, store}, []telemetry.Span{poller}},
		{"a new producer", []telemetry.Span{exposed, consumer, store}, []telemetry.Span{produce}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
			if got := pathSummaries(m, cfg, tt.before); got != nil {
				t.Errorf("no path yet: %v", got)
			}
			if diff := cmp.Diff(want, pathSummaries(m, cfg, tt.after)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got := pathSummaries(m, cfg, tt.after); got != nil {
				t.Errorf("the same link again: %v", got)
			}
		})
	}
}

// TestSensitivePathsExposedNow: orders reached a sensitive table while
// its exposure was unknown (its SERVER spans waited for their caller);
// no alert then. When no caller arrived within the join window, orders
// is exposed: the path alerts though neither its edge nor its store is
// new.
func TestSensitivePathsExposedNow(t *testing.T) {
	cfg := assess.DefaultConfig()
	cfg.Sensitivity = []assess.SensitivityRule{{Store: "postgresql://shop/*", Labels: []string{"pii"}}}
	m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
	now := tm(0)
	m.SetClock(func() time.Time { return now })
	ch := m.AddSpans([]telemetry.Span{
		span("orders", telemetry.SpanKindServer, 3, 2, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/o"}),
		span("orders", telemetry.SpanKindClient, 4, 3, telemetry.Attrs{DBSystem: "postgresql", DBNamespace: "shop", DBCollection: "customers"}),
	})
	snap := m.Snapshot()
	a := assess.New(cfg, nil, snap)
	if got := a.Exposure("orders").Level; got != assess.ExposureUnknown {
		t.Fatalf("orders exposure before the join window = %s, want unknown", got)
	}
	if got := SensitivePaths(ch, nil, a, snap, tm(0), tm(0)); got != nil {
		t.Errorf("alerts while orders waits for its caller: %v", got)
	}
	now = now.Add(model.DefaultConfig().JoinWindow)
	snap = m.Snapshot()
	a = assess.New(cfg, nil, snap)
	var got []string
	for _, al := range SensitivePaths(model.Changes{}, map[string]bool{"orders": true}, a, snap, now, now) {
		got = append(got, al.Summary)
		if !al.Observed.IsZero() {
			t.Errorf("observed = %v, want zero: no telemetry made orders exposed", al.Observed)
		}
	}
	want := []string{"service orders is now exposed (called from outside the traced system: 1 of 1 SERVER/CONSUMER spans found no traced caller within the join window, none found one) and reaches pii store postgresql://shop/customers via orders"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alerts once exposed (-want +got):\n%s", diff)
	}
}
