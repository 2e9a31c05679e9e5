package assess

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/telemetry"
	"github.com/evidentsec/evident/internal/vulndb"
)

// TestTargetsOfAnotherName: a Maven artifact published under other
// coordinates (Debian's bcprov for bcprov-jdk18on) is looked for through
// the functions the record gives for the coordinates it names; an artifact
// of another name gets none of them.
func TestTargetsOfAnotherName(t *testing.T) {
	v := &vulndb.Vuln{Functions: []vulndb.Function{
		{Ecosystem: osv.EcosystemMaven, Module: "org.bouncycastle:bcprov-jdk18on", Package: "org.bouncycastle.jce.provider", Symbol: "X509LDAPCertStoreSpi.engineGetCRLs"},
		{Ecosystem: osv.EcosystemMaven, Module: "org.bouncycastle:bcprov-jdk18on", Package: "org.bouncycastle.jce.provider", Symbol: "X509LDAPCertStoreSpi.engineGetCertificates"},
	}}
	finding := func(name string) findings.Finding {
		return findings.Finding{Package: findings.Package{Ecosystem: osv.EcosystemMaven, Name: name, Version: "1.72"}}
	}
	tests := []struct {
		name string
		pkg  string
		want []target
	}{
		{"the named coordinates", "org.bouncycastle:bcprov-jdk18on", []target{
			{pkg: "org.bouncycastle.jce.provider", symbol: "X509LDAPCertStoreSpi.engineGetCRLs", module: "org.bouncycastle:bcprov-jdk18on"},
			{pkg: "org.bouncycastle.jce.provider", symbol: "X509LDAPCertStoreSpi.engineGetCertificates", module: "org.bouncycastle:bcprov-jdk18on"},
		}},
		{"Debian's coordinates", "org.bouncycastle:bcprov", []target{
			{pkg: "org.bouncycastle.jce.provider", symbol: "X509LDAPCertStoreSpi.engineGetCRLs", module: "org.bouncycastle:bcprov"},
			{pkg: "org.bouncycastle.jce.provider", symbol: "X509LDAPCertStoreSpi.engineGetCertificates", module: "org.bouncycastle:bcprov"},
		}},
		{"another artifact", "org.bouncycastle:bcpkix-jdk18on", []target{{module: "org.bouncycastle:bcpkix-jdk18on"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := targets(finding(tt.pkg), v)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(target{})); diff != "" {
				t.Errorf("targets (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTargetsOfDisplayName: GitHub's records name a PyPI project as PyPI
// displays it (GHSA-8q59-q68h-6hv4 affects "PyYAML" and lists
// yaml.constructor.FullConstructor), findings name it normalized
// ("pyyaml"); the record's functions are still the targets, or the
// verdict fell back to package level and was never executed.
func TestTargetsOfDisplayName(t *testing.T) {
	v := &vulndb.Vuln{Functions: []vulndb.Function{
		{Ecosystem: osv.EcosystemPyPI, Module: "PyYAML", Package: "yaml.constructor", Symbol: "FullConstructor"},
	}}
	f := findings.Finding{Package: findings.Package{Ecosystem: osv.EcosystemPyPI, Name: "pyyaml", Version: "5.3.1"}}
	want := []target{{pkg: "yaml.constructor", symbol: "FullConstructor", module: "pyyaml"}}
	if diff := cmp.Diff(want, targets(f, v), cmp.AllowUnexported(target{})); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
}

// TestBoundCountsSamplesThatCouldShowIt: the rule-of-three bound, and the
// minimum of samples for a verdict, count the samples that could have
// shown the code looked for: those whose stack holds code of the
// package's language, kept by the model. The samples of a Go server said
// nothing of the Python worker under the same service.name, nor did the
// samples on stacks beyond model.Config.MaxStacks, whose frames were not
// kept; both made a not_observed verdict with a bound of 3/S over every
// sample, and a VEX not_affected.
func TestBoundCountsSamplesThatCouldShowIt(t *testing.T) {
	handler := attribution.Frame{Function: "example.com/shop/gateway.handle", File: "example.com/shop/gateway/main.go"}
	other := attribution.Frame{Function: "example.com/shop/gateway.other", File: "example.com/shop/gateway/main.go"}
	parse := attribution.Frame{Function: "golang.org/x/text/language.Parse", File: "golang.org/x/text@v0.3.5/language/parse.go"}
	flask := attribution.Frame{Function: "dispatch_request", File: "/usr/lib/python3.12/site-packages/flask/app.py"}
	requests := findings.Finding{
		Service:       "svc",
		Package:       findings.Package{PURL: "pkg:pypi/requests@2.31.0", Ecosystem: osv.EcosystemPyPI, Name: "requests", Version: "2.31.0"},
		Vulnerability: findings.Vulnerability{ID: "GHSA-9wx4-h78v-vm56"},
		Severity:      findings.Severity{Level: "medium"},
	}
	text := textFinding("svc", findings.StaticImported)
	text.Symbols = nil // the record names Parse
	tests := []struct {
		name      string
		maxStacks int
		samples   []telemetry.Sample
		finding   findings.Finding
		verdict   Verdict
		bound     int64 // Bound.Samples, 0 for none
		vex       string
	}{
		{
			name:    "a Go service's samples only",
			samples: []telemetry.Sample{{Locations: []int32{0}, Count: 100_000}},
			finding: text, verdict: NotObserved, bound: 100_000, vex: StatusNotAffected,
		},
		{
			name:    "a Python worker with few samples beside a Go server",
			samples: []telemetry.Sample{{Locations: []int32{0}, Count: 100_000}, {Locations: []int32{3}, Count: 20}},
			finding: requests, verdict: Unknown, vex: StatusUnderInvestigation,
		},
		{
			name:    "a Python worker beside a Go server: the bound of its samples",
			samples: []telemetry.Sample{{Locations: []int32{0}, Count: 100_000}, {Locations: []int32{3}, Count: 200}},
			finding: requests, verdict: NotObserved, bound: 200, vex: StatusUnderInvestigation,
		},
		{
			name:      "samples on stacks beyond max_stacks",
			maxStacks: 2,
			samples:   []telemetry.Sample{{Locations: []int32{0}, Count: 10}, {Locations: []int32{1}, Count: 10}, {Locations: []int32{2, 0}, Count: 100_000}},
			finding:   text, verdict: Unknown, vex: StatusUnderInvestigation,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mc := model.DefaultConfig()
			if tt.maxStacks > 0 {
				mc.MaxStacks = tt.maxStacks
			}
			m := model.New(mc, attribution.New(attribution.Config{GoModules: []string{"golang.org/x/text", "example.com/shop"}}))
			m.AddProfile(&telemetry.ProfileBatch{
				Service: "svc", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: 2 * time.Hour,
				Locations: [][]attribution.Frame{{handler}, {other}, {parse}, {flask}},
				Samples:   tt.samples,
			})
			v := &vulndb.Vuln{Functions: []vulndb.Function{{Ecosystem: osv.EcosystemGo, Module: "golang.org/x/text", Package: "golang.org/x/text/language", Symbol: "Parse"}}}
			got := New(DefaultConfig(), fakeVulns{"GO-2021-0113": v}, m.Snapshot()).One(tt.finding)
			r := got.Reachability
			var bound int64
			if r.Bound != nil {
				bound = r.Bound.Samples
			}
			if r.Verdict != tt.verdict || bound != tt.bound || got.VEX.Status != tt.vex {
				t.Errorf("%s, bound of %d samples, VEX %s (%s); want %s, %d, %s", r.Verdict, bound, got.VEX.Status, r.Reason, tt.verdict, tt.bound, tt.vex)
			}
		})
	}
}

// TestBoundWindowOfItsLanguage: the window a bound covers is that of the
// profiles that held code of the finding's language. A Go server profiled
// for ten minutes under the service.name of a Python worker profiled for
// two hours, every profile of CPU nanoseconds at 10 ms, made one window
// of two hours for both, and a Go finding not seen in ten minutes passed
// a policy of an hour as not_affected.
func TestBoundWindowOfItsLanguage(t *testing.T) {
	handler := attribution.Frame{Function: "example.com/shop/gateway.handle", File: "example.com/shop/gateway/main.go"}
	flask := attribution.Frame{Function: "dispatch_request", File: "/usr/lib/python3.12/site-packages/flask/app.py"}
	requests := findings.Finding{
		Service:       "svc",
		Package:       findings.Package{PURL: "pkg:pypi/requests@2.31.0", Ecosystem: osv.EcosystemPyPI, Name: "requests", Version: "2.31.0"},
		Vulnerability: findings.Vulnerability{ID: "GHSA-9wx4-h78v-vm56"},
		Severity:      findings.Severity{Level: "medium"},
	}
	text := textFinding("svc", findings.StaticImported)
	text.Symbols = nil // the record names Parse
	m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{GoModules: []string{"golang.org/x/text", "example.com/shop"}}))
	batch := func(frame attribution.Frame, start time.Time, d time.Duration) *telemetry.ProfileBatch {
		return &telemetry.ProfileBatch{
			Service: "svc", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: start, Duration: d,
			Locations: [][]attribution.Frame{{frame}},
			Samples:   []telemetry.Sample{{Locations: []int32{0}, Count: 10_000, Value: 100_000_000_000}},
		}
	}
	m.AddProfile(batch(handler, t0, 10*time.Minute))
	for i := range 12 {
		m.AddProfile(batch(flask, t0.Add(time.Duration(i)*10*time.Minute), 10*time.Minute))
	}
	v := &vulndb.Vuln{Functions: []vulndb.Function{{Ecosystem: osv.EcosystemGo, Module: "golang.org/x/text", Package: "golang.org/x/text/language", Symbol: "Parse"}}}
	tests := []struct {
		name    string
		finding findings.Finding
		window  float64 // Bound.WindowSeconds
		vex     string
	}{
		{"the Go server's ten minutes", text, 600, StatusUnderInvestigation},
		{"the Python worker's two hours", requests, 7200, StatusNotAffected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := New(DefaultConfig(), fakeVulns{"GO-2021-0113": v}, m.Snapshot()).One(tt.finding)
			r := got.Reachability
			if r.Verdict != NotObserved || r.Bound == nil {
				t.Fatalf("%s, bound %v (%s); want not_observed with a bound", r.Verdict, r.Bound, r.Reason)
			}
			if r.Bound.WindowSeconds != tt.window || got.VEX.Status != tt.vex {
				t.Errorf("bound over %gs, VEX %s (%s); want %gs, %s", r.Bound.WindowSeconds, got.VEX.Status, got.VEX.Statement, tt.window, tt.vex)
			}
		})
	}
}

// TestFramesLeftOut: once a service has more functions than
// model.Config.MaxFunctions, frames of new ones are left out of its
// stacks (Overflow.Frames), and the vulnerable code may be among them:
// not seeing it is no evidence. It was not_observed (or loaded) with a
// bound, and exported not_affected.
func TestFramesLeftOut(t *testing.T) {
	handler := attribution.Frame{Function: "example.com/shop/gateway.handle", File: "example.com/shop/gateway/main.go"}
	builder := attribution.Frame{Function: "golang.org/x/text/language.(*Builder).Make", File: "golang.org/x/text@v0.3.5/language/language.go"}
	parse := attribution.Frame{Function: "golang.org/x/text/language.Parse", File: "golang.org/x/text@v0.3.5/language/parse.go"}
	text := textFinding("svc", findings.StaticImported)
	tests := []struct {
		name         string
		maxFunctions int
		locations    [][]attribution.Frame
		verdict      Verdict
		vex          string
	}{
		{"every function kept", 100, [][]attribution.Frame{{handler}, {parse}}, Executed, StatusAffected},
		{"the package's functions left out", 1, [][]attribution.Frame{{handler}, {parse}}, Unknown, StatusUnderInvestigation},
		{"the vulnerable function left out", 2, [][]attribution.Frame{{handler}, {builder}, {parse}}, Unknown, StatusUnderInvestigation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mc := model.DefaultConfig()
			mc.MaxFunctions = tt.maxFunctions
			m := model.New(mc, attribution.New(attribution.Config{GoModules: []string{"golang.org/x/text", "example.com/shop"}}))
			b := &telemetry.ProfileBatch{
				Service: "svc", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: 2 * time.Hour,
				Locations: tt.locations,
			}
			for i := range tt.locations {
				b.Samples = append(b.Samples, telemetry.Sample{Locations: []int32{int32(i), 0}, Count: 50_000})
			}
			m.AddProfile(b)
			cfg := DefaultConfig()
			cfg.VEX.AllowLoaded = true
			got := New(cfg, nil, m.Snapshot()).One(text)
			if r := got.Reachability; r.Verdict != tt.verdict || got.VEX.Status != tt.vex {
				t.Errorf("%s, VEX %s (%s); want %s, %s", r.Verdict, got.VEX.Status, r.Reason, tt.verdict, tt.vex)
			}
		})
	}
}

// TestBoundCountsTimeSamplesOnly: the rule-of-three bound, and the
// minimum of samples for a verdict, count the samples of time-sampled
// profiles only; an allocation profile shows code that ran, but code
// that allocates nothing is in none of its samples however long it runs.
// pyroscope-go sends a heap profile beside the CPU profile by default:
// the 23 stacks of go-allocs.pb.gz weigh 19,781 allocated objects, and
// added to the 59 CPU samples of go-cpu.pb.gz they made a bound of
// <0.015% of the service's CPU instead of <5.1%, and a VEX not_affected;
// a service with the allocations profile alone was not_observed.
func TestBoundCountsTimeSamplesOnly(t *testing.T) {
	allocate := findings.Finding{
		Service: "api",
		// Code the allocations profile shows and the CPU profile does not.
		Package:       findings.Package{PURL: "pkg:golang/github.com/evidentsec/evident", Ecosystem: osv.EcosystemGo, Name: "github.com/evidentsec/evident"},
		Vulnerability: findings.Vulnerability{ID: "allocate"},
		Symbols:       []string{"github.com/evidentsec/evident/internal/telemetry.allocate"},
	}
	tests := []struct {
		name     string
		profiles []string // of service api, in the order received
		finding  findings.Finding
		verdict  Verdict
		bound    int64 // Bound.Samples, 0 for none
		vex      string
		reason   string // in Reason
	}{
		{"a CPU profile", []string{"go-cpu.pb.gz"}, textFinding("api", findings.StaticImported), NotObserved, 59, StatusUnderInvestigation,
			"in 59 samples (bound <5.1% of the service's CPU, 0.03s CPU over 1s)"},
		{"a CPU and an allocations profile", []string{"go-cpu.pb.gz", "go-allocs.pb.gz"}, textFinding("api", findings.StaticImported), NotObserved, 59, StatusUnderInvestigation,
			"in 59 samples (bound <5.1% of the service's CPU, 0.03s CPU over 1s)"},
		{"the allocations profile first", []string{"go-allocs.pb.gz", "go-cpu.pb.gz"}, textFinding("api", findings.StaticImported), NotObserved, 59, StatusUnderInvestigation,
			"in 59 samples (bound <5.1% of the service's CPU, 0.03s CPU over 1s)"},
		{"an allocations profile only", []string{"go-allocs.pb.gz"}, textFinding("api", findings.StaticImported), Unknown, 0, StatusUnderInvestigation,
			`no time-sampled profile (CPU, wall clock) of service "api", only alloc_space profiles`},
		{"code seen in allocations ran", []string{"go-cpu.pb.gz", "go-allocs.pb.gz"}, allocate, Executed, 0, StatusAffected,
			"telemetry.allocate seen in 19709 samples of alloc_space profiles"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := fixtureModel(t, tt.profiles...)
			cfg := DefaultConfig()
			cfg.VEX.MinWindow = 0 // the fixtures are a second long
			got := New(cfg, nil, m.Snapshot()).One(tt.finding)
			r := got.Reachability
			var bound int64
			if r.Bound != nil {
				bound = r.Bound.Samples
			}
			if r.Verdict != tt.verdict || bound != tt.bound || got.VEX.Status != tt.vex || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("%s, bound of %d samples, VEX %s (%s); want %s, %d, %s (%s)", r.Verdict, bound, got.VEX.Status, r.Reason, tt.verdict, tt.bound, tt.vex, tt.reason)
			}
			// An allocation profile's bytes are no CPU time: allocate's
			// 28 MB showed as 0.029 CPU seconds, read as nanoseconds.
			for _, e := range r.Evidence {
				if e.CPUSeconds != 0 {
					t.Errorf("%s: %g CPU seconds, want 0: the CPU profile does not show it", e.Symbol, e.CPUSeconds)
				}
			}
		})
	}
}

// TestEvidenceTimeSamples: the samples a verdict's evidence counts are of
// every profile, and its time samples of the time-sampled ones alone. A
// function in go-cpu.pb.gz's 59 CPU samples and in go-allocs.pb.gz's
// 19,710 allocated objects was "seen in 19,769 samples", read as time
// taken.
func TestEvidenceTimeSamples(t *testing.T) {
	finding := func(symbol string) findings.Finding {
		return findings.Finding{
			Service:       "api",
			Package:       findings.Package{PURL: "pkg:golang/github.com/evidentsec/evident", Ecosystem: osv.EcosystemGo, Name: "github.com/evidentsec/evident"},
			Vulnerability: findings.Vulnerability{ID: "test"},
			Symbols:       []string{"github.com/evidentsec/evident/internal/telemetry." + symbol},
		}
	}
	tests := []struct {
		name                 string
		symbol               string
		samples, timeSamples int64
	}{
		{"in CPU and allocation profiles", "TestGenerateFixtures", 59 + 19710, 59},
		{"in an allocation profile only", "allocate", 19709, 0},
		// A mutex profile's stack counts its contentions.
		{"in a mutex profile only", "contend", 1211, 0},
		{"in a CPU profile only", "spin", 59, 59},
	}
	m := fixtureModel(t, "go-cpu.pb.gz", "go-allocs.pb.gz", "go-mutex.pb.gz")
	a := New(DefaultConfig(), nil, m.Snapshot())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.One(finding(tt.symbol)).Reachability
			if r.Verdict != Executed || len(r.Evidence) != 1 {
				t.Fatalf("%s with %d evidence (%s), want executed with 1", r.Verdict, len(r.Evidence), r.Reason)
			}
			e := r.Evidence[0]
			got := [4]int64{r.Samples, r.TimeSamples, e.Samples, e.TimeSamples}
			if want := [4]int64{tt.samples, tt.timeSamples, tt.samples, tt.timeSamples}; got != want {
				t.Errorf("samples, time samples of the verdict and its evidence: %v, want %v", got, want)
			}
		})
	}
}

// TestEvidenceTimeFirst: of several vulnerable functions seen, the one
// in the most time samples comes first, where the table and the reason
// name it. svc.Functions is by every profile's samples, so a function in
// 19,709 allocated objects came before one in 59 CPU samples, and the
// reason said the code was "seen in 19709 samples of alloc_space
// profiles".
func TestEvidenceTimeFirst(t *testing.T) {
	const pkg = "github.com/evidentsec/evident/internal/telemetry."
	tests := []struct {
		name    string
		symbols []string
		order   []string
		reason  string
	}{
		{"CPU after allocations", []string{pkg + "allocate", pkg + "spin"}, []string{pkg + "spin", pkg + "allocate"}, pkg + "spin seen in 59 profile samples"},
		{"no time samples", []string{pkg + "allocate", pkg + "contend"}, []string{pkg + "allocate", pkg + "contend"}, pkg + "allocate seen in 19709 samples of alloc_space, delay profiles"},
	}
	m := fixtureModel(t, "go-cpu.pb.gz", "go-allocs.pb.gz", "go-mutex.pb.gz")
	a := New(DefaultConfig(), nil, m.Snapshot())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.One(findings.Finding{
				Service:       "api",
				Package:       findings.Package{PURL: "pkg:golang/github.com/evidentsec/evident", Ecosystem: osv.EcosystemGo, Name: "github.com/evidentsec/evident"},
				Vulnerability: findings.Vulnerability{ID: "test"},
				Symbols:       tt.symbols,
			}).Reachability
			var order []string
			for _, e := range r.Evidence {
				order = append(order, e.Symbol)
			}
			if diff := cmp.Diff(tt.order, order); diff != "" || !strings.HasPrefix(r.Reason, tt.reason) {
				t.Errorf("evidence (-want +got):\n%s\nreason %q, want it to start %q", diff, r.Reason, tt.reason)
			}
		})
	}
}

// TestSpansByTimeSamples: the span the reason names is the one whose
// time samples held the code most, not the one of the most allocated
// objects: a job's 1000 objects outweighed another's 10 CPU samples.
func TestSpansByTimeSamples(t *testing.T) {
	parse := attribution.Frame{Function: "golang.org/x/text/language.Parse", File: "golang.org/x/text@v0.3.5/language/parse.go"}
	m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{GoModules: []string{"golang.org/x/text"}}))
	for _, p := range []struct {
		sampleType, unit, span string
		count                  int64
	}{{"cpu", "nanoseconds", "render", 10}, {"alloc_objects", "count", "export", 1000}} {
		m.AddProfile(&telemetry.ProfileBatch{
			Service: "svc", SampleType: p.sampleType, Unit: p.unit, Period: 10_000_000, Start: t0, Duration: time.Minute,
			Locations: [][]attribution.Frame{{parse}},
			Samples:   []telemetry.Sample{{Locations: []int32{0}, Count: p.count, Value: p.count, SpanName: p.span}},
		})
	}
	f := textFinding("svc", findings.StaticImported)
	r := New(DefaultConfig(), nil, m.Snapshot()).One(f).Reachability
	if diff := cmp.Diff([]string{"render", "export"}, r.SpanNames); diff != "" || !strings.HasSuffix(r.Reason, "in span render") {
		t.Errorf("span names (-want +got):\n%s\nreason %q, want it to end in span render", diff, r.Reason)
	}
}

// fixtureModel is a model of service "api" that took the named pprof
// fixtures of internal/telemetry, made by real Go programs.
func fixtureModel(t *testing.T, names ...string) *model.Model {
	t.Helper()
	m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{GoModules: []string{"github.com/evidentsec/evident"}}))
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join("..", "telemetry", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		batches, err := telemetry.DecodePprof(data, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range batches {
			b.Service = "api"
			m.AddProfile(b)
		}
	}
	return m
}

// TestTooFewTimeSamplesOfLanguage: the reason of a verdict left unknown
// for want of time samples (reachability.min_samples) counts what the
// decision counts, the time samples and the windows of the finding's
// language. A Go server's CPU profiles beside a Python worker's
// allocation profiles under one service.name made a Python finding "only
// 0 profile samples ... hold python code" (it has no time-sampled profile
// at all), and a Go finding's reason named the worker's allocation
// profiles as the Go server's.
func TestTooFewTimeSamplesOfLanguage(t *testing.T) {
	handler := attribution.Frame{Function: "example.com/shop/gateway.handle", File: "example.com/shop/gateway/main.go"}
	flask := attribution.Frame{Function: "dispatch_request", File: "/usr/lib/python3.12/site-packages/flask/app.py"}
	// Code the worker's profiles do not show.
	jinja := findings.Finding{
		Service:       "api",
		Package:       findings.Package{PURL: "pkg:pypi/jinja2@3.1.2", Ecosystem: osv.EcosystemPyPI, Name: "jinja2", Version: "3.1.2"},
		Vulnerability: findings.Vulnerability{ID: "GHSA-h5c8-rqwp-cp95", Aliases: []string{"CVE-2024-22195"}},
	}
	type profile struct {
		sampleType, unit string
		frame            attribution.Frame
		count            int64
	}
	goCPU := func(n int64) profile { return profile{"cpu", "nanoseconds", handler, n} }
	pyAllocs := profile{"alloc_objects", "count", flask, 100}
	tests := []struct {
		name     string
		profiles []profile
		finding  findings.Finding
		reason   string
	}{
		{"python in allocation profiles only", []profile{goCPU(1000), pyAllocs}, jinja,
			`no time-sampled profile (CPU, wall clock) of service "api" holds python code, only alloc_objects profiles, which show code that ran, not that code did not: code that allocates or waits for nothing is in none of their samples however long it runs`},
		{"go's few samples beside python's allocations", []profile{goCPU(20), pyAllocs}, textFinding("api", findings.StaticImported),
			`only 20 profile samples of service "api", fewer than the 30 needed`},
		{"go's few samples beside its allocations", []profile{goCPU(20), {"alloc_objects", "count", handler, 100}}, textFinding("api", findings.StaticImported),
			`only 20 profile samples of service "api", fewer than the 30 needed (its alloc_objects profiles show code that ran, not that code did not)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{GoModules: []string{"example.com/shop"}}))
			for _, p := range tt.profiles {
				m.AddProfile(&telemetry.ProfileBatch{
					Service: "api", SampleType: p.sampleType, Unit: p.unit, Period: 10_000_000, Start: t0, Duration: time.Minute,
					Locations: [][]attribution.Frame{{p.frame}}, Samples: []telemetry.Sample{{Locations: []int32{0}, Count: p.count, Value: p.count}},
				})
			}
			r := New(DefaultConfig(), nil, m.Snapshot()).One(tt.finding).Reachability
			if r.Verdict != Unknown || r.Reason != tt.reason {
				t.Errorf("%s (%s), want unknown (%s)", r.Verdict, r.Reason, tt.reason)
			}
		})
	}
}
