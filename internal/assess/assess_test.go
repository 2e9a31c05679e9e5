package assess

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/telemetry"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func id8(b byte) [8]byte { return [8]byte{7: b} }

func span(svc string, kind telemetry.SpanKind, id, parent byte, a telemetry.Attrs) telemetry.Span {
	return telemetry.Span{Service: svc, SpanID: id8(id), ParentSpanID: id8(parent), Kind: kind, Name: a.HTTPMethod + " " + a.HTTPRoute, Start: t0, End: t0.Add(time.Millisecond), Attrs: a}
}

// shop builds the runtime model of a small shop: gateway (public) calls
// orders (internal), which writes a customers table; reporter is a batch
// job; legacy has no telemetry. gateway runs language.Parse on
// GET /products; orders runs language code but not Parse.
func shop(t testing.TB, samples int64, window time.Duration) *model.Snapshot {
	t.Helper()
	m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{GoModules: []string{"golang.org/x/text", "example.com/shop"}}))
	m.AddSpans([]telemetry.Span{
		span("gateway", telemetry.SpanKindServer, 1, 0, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/products"}),
		span("gateway", telemetry.SpanKindClient, 2, 1, telemetry.Attrs{HTTPMethod: "GET", ServerAddress: "orders"}),
		span("orders", telemetry.SpanKindServer, 3, 2, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/orders"}),
		span("orders", telemetry.SpanKindClient, 4, 3, telemetry.Attrs{DBSystem: "sqlite", DBNamespace: "shop", DBCollection: "customers"}),
		span("reporter", telemetry.SpanKindInternal, 5, 0, telemetry.Attrs{}),
		span("reporter", telemetry.SpanKindClient, 6, 5, telemetry.Attrs{DBSystem: "sqlite", DBNamespace: "shop", DBCollection: "orders"}),
	})
	parse := attribution.Frame{Function: "golang.org/x/text/language.Parse", File: "golang.org/x/text@v0.3.5/language/parse.go"}
	compose := attribution.Frame{Function: "golang.org/x/text/language.(*Builder).Make", File: "golang.org/x/text@v0.3.5/language/language.go"}
	handler := attribution.Frame{Function: "example.com/shop/gateway.products", File: "example.com/shop/gateway/main.go"}
	idle := attribution.Frame{Function: "runtime.mcall", File: "runtime/proc.go"}
	for _, svc := range []string{"gateway", "orders", "reporter"} {
		b := &telemetry.ProfileBatch{
			Service: svc, SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: window,
			Locations: [][]attribution.Frame{{parse}, {handler}, {compose}, {idle}},
			Samples:   []telemetry.Sample{{Locations: []int32{3}, Count: samples, Value: samples * 10_000_000}},
		}
		switch svc {
		case "gateway":
			b.Samples = append(b.Samples, telemetry.Sample{Locations: []int32{0, 1}, Count: 40, Value: 400_000_000, SpanID: "0000000000000001"})
		case "orders":
			b.Samples = append(b.Samples, telemetry.Sample{Locations: []int32{2}, Count: 10, Value: 100_000_000})
		}
		m.AddProfile(b)
	}
	return m.Snapshot()
}

// textFinding is GO-2021-0113 (golang.org/x/text/language: out-of-bounds
// read in Parse) as govulncheck reports it.
func textFinding(service string, static findings.StaticReach) findings.Finding {
	return findings.Finding{
		Service:       service,
		Package:       findings.Package{PURL: "pkg:golang/golang.org/x/text@v0.3.5", Ecosystem: osv.EcosystemGo, Name: "golang.org/x/text", Version: "v0.3.5"},
		Vulnerability: findings.Vulnerability{ID: "GO-2021-0113", Aliases: []string{"CVE-2021-38561"}},
		Severity:      findings.Severity{Level: "high", Score: 7.5},
		FixedVersion:  "v0.3.7",
		Static:        static,
		Symbols:       []string{"golang.org/x/text/language.Parse"},
		Sources:       []findings.Source{{Tool: "govulncheck"}},
	}
}

func TestAssess(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Sensitivity = []SensitivityRule{{Store: "sqlite://shop/customers", Labels: []string{"pii"}}}
	snap := shop(t, 10_000, 2*time.Hour)
	tests := []struct {
		name      string
		finding   findings.Finding
		verdict   Verdict
		endpoints []string
		exposure  Exposure
		stores    []string
		tier      string
		vex       string
	}{
		{"executed on a hot path", textFinding("gateway", findings.StaticCalled), Executed, []string{"GET /products"}, Exposed, []string{"sqlite://shop/customers"}, "P1", StatusAffected},
		{"package runs, symbol not", textFinding("orders", findings.StaticImported), Loaded, nil, Internal, []string{"sqlite://shop/customers"}, "P3", StatusUnderInvestigation},
		{"never seen", textFinding("reporter", findings.StaticRequired), NotObserved, nil, NoInput, []string{"sqlite://shop/orders"}, "P4", StatusNotAffected},
		{"called, never seen", textFinding("reporter", findings.StaticCalled), NotObserved, nil, NoInput, []string{"sqlite://shop/orders"}, "P3", StatusUnderInvestigation},
		{"no telemetry", textFinding("legacy", findings.StaticCalled), Unknown, nil, ExposureUnknown, []string{}, "P3", StatusUnderInvestigation},
	}
	a := New(cfg, nil, snap)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := a.One(tt.finding)
			r := got.Reachability
			if r.Verdict != tt.verdict {
				t.Errorf("verdict = %s (%s), want %s", r.Verdict, r.Reason, tt.verdict)
			}
			if diff := cmp.Diff(tt.endpoints, r.Endpoints); diff != "" {
				t.Errorf("endpoints (-want +got):\n%s", diff)
			}
			if got.Exposure.Level != tt.exposure {
				t.Errorf("exposure = %s (%s), want %s", got.Exposure.Level, got.Exposure.Rule, tt.exposure)
			}
			stores := []string{}
			for _, s := range got.BlastRadius {
				stores = append(stores, s.Name)
			}
			if diff := cmp.Diff(tt.stores, stores); diff != "" {
				t.Errorf("blast radius (-want +got):\n%s", diff)
			}
			if got.Priority.Tier != tt.tier {
				t.Errorf("tier = %s (score %d, %v), want %s", got.Priority.Tier, got.Priority.Score, got.Priority.Reasons, tt.tier)
			}
			if got.VEX.Status != tt.vex {
				t.Errorf("vex = %s (%s), want %s", got.VEX.Status, got.VEX.Statement, tt.vex)
			}
			if (r.Verdict == Loaded || r.Verdict == NotObserved) && r.Bound == nil {
				t.Error("no rule-of-three bound on a loaded/not_observed verdict")
			}
		})
	}
}

// TestLoadedNeedsPolicy: a loaded finding is not_affected only when the
// policy allows it (issue 8: scanners reading the VEX must keep reporting
// a package whose code runs, unless the user says otherwise).
func TestLoadedNeedsPolicy(t *testing.T) {
	snap := shop(t, 10_000, 2*time.Hour)
	for _, tt := range []struct {
		allow bool
		want  string
	}{{false, StatusUnderInvestigation}, {true, StatusNotAffected}} {
		cfg := DefaultConfig()
		cfg.VEX.AllowLoaded = tt.allow
		got := New(cfg, nil, snap).One(textFinding("orders", findings.StaticImported))
		if got.Reachability.Verdict != Loaded || got.VEX.Status != tt.want {
			t.Errorf("allow_loaded %v: %s, vex %s (%s); want loaded, %s", tt.allow, got.Reachability.Verdict, got.VEX.Status, got.VEX.Statement, tt.want)
		}
	}
}

// TestCalledNeverBelowUnreachable holds DESIGN.md's rule: a finding that
// is statically called but not seen at runtime never ranks below one that
// is statically unreachable, whatever else is equal.
func TestCalledNeverBelowUnreachable(t *testing.T) {
	snap := shop(t, 10_000, 2*time.Hour)
	a := New(DefaultConfig(), nil, snap)
	for _, svc := range []string{"gateway", "orders", "reporter", "legacy"} {
		called := a.One(textFinding(svc, findings.StaticCalled))
		for _, weaker := range []findings.StaticReach{findings.StaticImported, findings.StaticRequired, findings.StaticUnknown} {
			other := a.One(textFinding(svc, weaker))
			if called.Priority.Tier > other.Priority.Tier || called.Priority.Score < other.Priority.Score {
				t.Errorf("%s: called %s/%d ranks below %s %s/%d", svc, called.Priority.Tier, called.Priority.Score, weaker, other.Priority.Tier, other.Priority.Score)
			}
		}
	}
}

// TestNotAffectedNeedsPolicy: not_affected never appears when the bound
// or the window is weaker than the policy.
func TestNotAffectedNeedsPolicy(t *testing.T) {
	tests := []struct {
		name    string
		samples int64
		window  time.Duration
		policy  VEXPolicy
		want    string
	}{
		{"bound and window meet policy", 10_000, 2 * time.Hour, VEXPolicy{MaxShare: 0.01, MinWindow: time.Hour}, StatusNotAffected},
		{"bound too weak", 100, 2 * time.Hour, VEXPolicy{MaxShare: 0.01, MinWindow: time.Hour}, StatusUnderInvestigation},
		{"window too short", 10_000, 10 * time.Minute, VEXPolicy{MaxShare: 0.01, MinWindow: time.Hour}, StatusUnderInvestigation},
		{"policy never", 1_000_000, 24 * time.Hour, VEXPolicy{}, StatusUnderInvestigation},
		{"too few samples for any verdict", 5, 2 * time.Hour, VEXPolicy{MaxShare: 1, MinWindow: 0}, StatusUnderInvestigation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.VEX = tt.policy
			a := New(cfg, nil, shop(t, tt.samples, tt.window))
			got := a.One(textFinding("reporter", findings.StaticRequired))
			if got.VEX.Status != tt.want {
				t.Errorf("vex = %s (%s), want %s", got.VEX.Status, got.VEX.Statement, tt.want)
			}
			if got.VEX.Status == StatusNotAffected {
				b := got.Reachability.Bound
				if b.Share > tt.policy.MaxShare || b.WindowSeconds < tt.policy.MinWindow.Seconds() {
					t.Errorf("not_affected with bound %+v under policy %+v", b, tt.policy)
				}
				if got.VEX.Justification != JustificationNotInPath {
					t.Errorf("justification = %q", got.VEX.Justification)
				}
			}
		})
	}
}

func TestBound(t *testing.T) {
	snap := shop(t, 3000, time.Hour)
	got := New(DefaultConfig(), nil, snap).One(textFinding("reporter", findings.StaticRequired)).Reachability.Bound
	want := &Bound{Share: 0.001, CPU: true, CPUSeconds: 0.03, WindowSeconds: 3600, Samples: 3000}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bound (-want +got):\n%s", diff)
	}
	if s := got.String(); !strings.Contains(s, "<0.1% of the service's CPU") || !strings.Contains(s, "1h0m0s") {
		t.Errorf("bound string = %q", s)
	}
}

func TestExposureConfig(t *testing.T) {
	snap := shop(t, 1000, time.Hour)
	cfg := DefaultConfig()
	cfg.Exposure = ExposureConfig{Ingress: []string{"gateway"}, Services: map[string]Exposure{"reporter": Internal}}
	a := New(cfg, nil, snap)
	tests := []struct{ svc, level, rule string }{
		{"gateway", "exposed", "config: exposure.ingress"},
		{"orders", "exposed", "routed to by ingress gateway (config: exposure.ingress)"},
		{"reporter", "internal", "config: exposure.services"},
	}
	for _, tt := range tests {
		if got := a.exposureOf(tt.svc); string(got.Level) != tt.level || got.Rule != tt.rule {
			t.Errorf("%s: exposure = %+v, want %s by %q", tt.svc, got, tt.level, tt.rule)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*Config)
		want string
	}{
		{"default", func(*Config) {}, ""},
		{"empty store", func(c *Config) { c.Sensitivity = []SensitivityRule{{Labels: []string{"pii"}}} }, "sensitivity[0]: store is empty"},
		{"bad glob", func(c *Config) { c.Sensitivity = []SensitivityRule{{Store: "a[", Labels: []string{"pii"}}} }, `store "a["`},
		{"no labels", func(c *Config) { c.Sensitivity = []SensitivityRule{{Store: "s3://x"}} }, "has no labels"},
		{"bad exposure", func(c *Config) { c.Exposure.Services = map[string]Exposure{"a": "public"} }, `exposure.services.a: "public"`},
		{"share above 1", func(c *Config) { c.VEX.MaxShare = 2 }, "vex.max_share"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.cfg(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestSummarize checks the headline numbers, above all that a finding
// without evidence (unknown) is never counted as cut from the backlog.
func TestSummarize(t *testing.T) {
	snap := shop(t, 10_000, 2*time.Hour)
	a := New(DefaultConfig(), nil, snap)
	mixed := a.Assess([]findings.Finding{textFinding("gateway", findings.StaticCalled), textFinding("reporter", findings.StaticRequired), textFinding("orders", findings.StaticImported), textFinding("legacy", findings.StaticRequired)})
	if mixed[0].Finding.Service != "gateway" {
		t.Errorf("first = %s, want the P1 gateway finding", mixed[0].Finding.Service)
	}
	unknown := a.Assess([]findings.Finding{textFinding("legacy", findings.StaticRequired), textFinding("billing", findings.StaticCalled)})
	tests := []struct {
		name string
		as   []Assessment
		want Summary
	}{
		{"mixed", mixed, Summary{
			Findings: 4, ByVerdict: map[Verdict]int{Executed: 1, Loaded: 1, NotObserved: 1, Unknown: 1}, ByTier: map[string]int{"P1": 1, "P2": 0, "P3": 2, "P4": 1},
			NeedAction: 1, Decided: 3, DecidedShare: 0.75, Cleared: 2, BacklogReduction: 0.5, DecidedReduction: 2.0 / 3,
		}},
		{"nothing known claims no cut", unknown, Summary{
			Findings: 2, ByVerdict: map[Verdict]int{Executed: 0, Loaded: 0, NotObserved: 0, Unknown: 2}, ByTier: map[string]int{"P1": 0, "P2": 0, "P3": 2, "P4": 0},
		}},
		{"no findings", nil, Summary{
			ByVerdict: map[Verdict]int{Executed: 0, Loaded: 0, NotObserved: 0, Unknown: 0}, ByTier: map[string]int{"P1": 0, "P2": 0, "P3": 0, "P4": 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Summarize(tt.as)); diff != "" {
				t.Errorf("Summarize (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExposureWaitsForProducers: worker consumes from kafka://orders
// before the first span of checkout producing to it arrives, as a pull
// consumer (receive CLIENT spans) or a batch-receiving one (process spans
// under its own receive span). Until checkout's arrives or the join
// window passes, worker is not fed from outside: its exposure is unknown,
// and turns internal when checkout's span arrives, or exposed when none
// arrived within the window, or at once when the input is all read
// (Settle, evident analyze). A restart does not cut the wait short.
// Before, worker was exposed until checkout's span arrived.
func TestExposureWaitsForProducers(t *testing.T) {
	orders := func(op string) telemetry.Attrs {
		return telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "orders", MessagingOperation: op}
	}
	producer := []telemetry.Span{
		span("checkout", telemetry.SpanKindServer, 1, 0, telemetry.Attrs{HTTPMethod: "POST", HTTPRoute: "/orders"}),
		span("checkout", telemetry.SpanKindProducer, 2, 1, orders("send")),
	}
	consumers := map[string][]telemetry.Span{
		"pull": {span("worker", telemetry.SpanKindClient, 3, 0, orders("receive"))},
		"batch": {
			span("worker", telemetry.SpanKindClient, 3, 0, orders("receive")),
			span("worker", telemetry.SpanKindConsumer, 4, 3, orders("process")),
		},
	}
	const (
		waiting = "waiting for producers: no traced service has produced to kafka://orders yet"
		outside = "fed from outside the traced system"
		fed     = "fed only by traced services"
	)
	tests := []struct {
		name    string
		after   time.Duration    // from the consumer's arrival
		then    []telemetry.Span // arriving then
		restart bool             // before then
		settle  bool             // after then
		want    Exposure
		rule    string
	}{
		{name: "producer not arrived", after: 5 * time.Second, want: ExposureUnknown, rule: waiting},
		{name: "producer arrived", after: 5 * time.Second, then: producer, want: Internal, rule: fed},
		{name: "no producer within the window", after: 30 * time.Second, want: Exposed, rule: outside},
		{name: "restart within the window", after: 5 * time.Second, restart: true, want: ExposureUnknown, rule: waiting},
		{name: "restart, no producer within the window", after: 30 * time.Second, restart: true, want: Exposed, rule: outside},
		{name: "input all read", settle: true, want: Exposed, rule: outside},
		{name: "input all read with the producer", then: producer, settle: true, want: Internal, rule: fed},
	}
	for kind, consumer := range consumers {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				now := t0
				clock := func() time.Time { return now }
				m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
				m.SetClock(clock)
				m.AddSpans(consumer)
				now = now.Add(tt.after)
				if tt.restart {
					state, err := m.MarshalBinary()
					if err != nil {
						t.Fatal(err)
					}
					m = model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
					m.SetClock(clock)
					if err := m.UnmarshalBinary(state); err != nil {
						t.Fatal(err)
					}
				}
				m.AddSpans(tt.then)
				if tt.settle {
					m.Settle()
				}
				got := New(DefaultConfig(), nil, m.Snapshot()).Exposure("worker")
				if got.Level != tt.want || !strings.HasPrefix(got.Rule, tt.rule) {
					t.Errorf("exposure = %s (%s), want %s (%s...)", got.Level, got.Rule, tt.want, tt.rule)
				}
			})
		}
	}
}

// TestExposureOfCallersCutShort: the SERVER spans of worker that waited
// for their caller when serve restarted are neither joined nor known
// unjoined: worker's callers are undecided, and the rule counts those
// spans, not the process spans of messages from its own retry topic
// (SpanCounts.Own), which say who fed them. Before, it counted every
// SERVER/CONSUMER span as cut short.
func TestExposureOfCallersCutShort(t *testing.T) {
	retry := func(op string) telemetry.Attrs {
		return telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: "worker-retry", MessagingOperation: op}
	}
	waiting := span("worker", telemetry.SpanKindServer, 4, 99, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/jobs"})
	tests := []struct {
		name  string
		spans []telemetry.Span
		rule  string
	}{
		{"a call waiting", []telemetry.Span{waiting}, "callers undecided: a restart cut the wait of 1 of 1 SERVER/CONSUMER spans for their caller short"},
		{"a call waiting, and messages it sent itself", []telemetry.Span{
			span("worker", telemetry.SpanKindProducer, 1, 0, retry("send")),
			span("worker", telemetry.SpanKindConsumer, 2, 1, retry("process")),
			span("worker", telemetry.SpanKindConsumer, 3, 1, retry("process")),
			waiting,
		}, "callers undecided: a restart cut the wait of 1 of 3 SERVER/CONSUMER spans for their caller short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
			m.AddSpans(tt.spans)
			state, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			restarted := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
			if err := restarted.UnmarshalBinary(state); err != nil {
				t.Fatal(err)
			}
			got := New(DefaultConfig(), nil, restarted.Snapshot()).Exposure("worker")
			if want := (ExposureResult{Level: ExposureUnknown, Rule: tt.rule}); got != want {
				t.Errorf("exposure = %+v, want %+v", got, want)
			}
		})
	}
}

// TestExposureWaitsForCallers: the SERVER spans of orders arrive before
// the gateway's CLIENT spans that called them. Until the caller arrives
// or the join window passes, orders is not called from outside: its
// exposure is unknown, and turns internal when the caller's span joins,
// or exposed when none arrived within the window.
func TestExposureWaitsForCallers(t *testing.T) {
	callee := span("orders", telemetry.SpanKindServer, 3, 2, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/orders"})
	caller := span("gateway", telemetry.SpanKindClient, 2, 1, telemetry.Attrs{HTTPMethod: "GET", ServerAddress: "orders"})
	tests := []struct {
		name  string
		after time.Duration    // from the callee's arrival
		then  []telemetry.Span // arriving then
		want  Exposure
		rule  string
	}{
		{"caller not arrived", 5 * time.Second, nil, ExposureUnknown, "waiting for callers: 1 of 1 SERVER/CONSUMER spans"},
		{"caller arrived", 5 * time.Second, []telemetry.Span{caller}, Internal, "only called by traced services"},
		{"no caller within the window", 30 * time.Second, nil, Exposed, "called from outside the traced system: 1 of 1"},
		// Exposed while no caller came; a caller still joins it.
		{"caller after the window", 30 * time.Second, []telemetry.Span{caller}, Internal, "only called by traced services"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
			now := t0
			m.SetClock(func() time.Time { return now })
			m.AddSpans([]telemetry.Span{callee})
			now = now.Add(tt.after)
			m.AddSpans(tt.then)
			got := New(DefaultConfig(), nil, m.Snapshot()).Exposure("orders")
			if got.Level != tt.want || !strings.Contains(got.Rule, tt.rule) {
				t.Errorf("exposure = %s (%s), want %s (%s...)", got.Level, got.Rule, tt.want, tt.rule)
			}
		})
	}
}
