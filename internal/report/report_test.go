package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/telemetry"
)

var update = flag.Bool("update", false, "rewrite golden files")

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// result assesses three findings of a two-service shop: one executed on
// an exposed endpoint, one loaded, one in a service without profiles.
func result(t testing.TB) *Result {
	t.Helper()
	m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{GoModules: []string{"golang.org/x/text", "golang.org/x/net", "example.com/shop"}}))
	sp := func(svc string, kind telemetry.SpanKind, id, parent byte, a telemetry.Attrs) telemetry.Span {
		return telemetry.Span{Service: svc, SpanID: [8]byte{7: id}, ParentSpanID: [8]byte{7: parent}, Kind: kind, Name: "span", Start: t0, End: t0.Add(time.Millisecond), Attrs: a}
	}
	m.AddSpans([]telemetry.Span{
		sp("gateway", telemetry.SpanKindServer, 1, 0, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/products"}),
		sp("gateway", telemetry.SpanKindClient, 2, 1, telemetry.Attrs{ServerAddress: "orders"}),
		sp("orders", telemetry.SpanKindServer, 3, 2, telemetry.Attrs{HTTPMethod: "POST", HTTPRoute: "/orders"}),
		sp("orders", telemetry.SpanKindClient, 4, 3, telemetry.Attrs{DBSystem: "sqlite", DBNamespace: "shop", DBCollection: "customers"}),
	})
	frames := [][]attribution.Frame{
		{{Function: "golang.org/x/text/language.Parse", File: "golang.org/x/text@v0.3.5/language/parse.go"}},
		{{Function: "example.com/shop/gateway.products", File: "example.com/shop/gateway/main.go"}},
		{{Function: "golang.org/x/net/html.(*Tokenizer).Next", File: "golang.org/x/net@v0.0.0-20220906165146-f3363e06e74c/html/token.go"}},
		{{Function: "runtime.mcall", File: "runtime/proc.go"}},
	}
	m.AddProfile(&telemetry.ProfileBatch{Service: "gateway", Source: "gateway/cpu.pb.gz", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: 2 * time.Hour, Locations: frames,
		Samples: []telemetry.Sample{
			{Locations: []int32{0, 1}, Count: 120, Value: 1_200_000_000, SpanID: "0000000000000001"},
			{Locations: []int32{2, 1}, Count: 30, Value: 300_000_000},
			{Locations: []int32{3}, Count: 9850, Value: 98_500_000_000},
		}})
	// An allocation profile of the same code: samples, not time samples,
	// so that every output shows the two counts apart.
	m.AddProfile(&telemetry.ProfileBatch{Service: "gateway", Source: "gateway/heap.pb.gz", SampleType: "alloc_space", Unit: "bytes", Start: t0, Duration: 2 * time.Hour, Locations: frames,
		Samples: []telemetry.Sample{
			{Locations: []int32{0, 1}, Count: 40, Value: 4 << 20},
			{Locations: []int32{3}, Count: 7, Value: 7 << 10},
		}})
	pkg := func(name, version string) findings.Package {
		purl, _ := osv.PURL(osv.EcosystemGo, name, version)
		return findings.Package{PURL: purl, Ecosystem: osv.EcosystemGo, Name: name, Version: version}
	}
	fs := []findings.Finding{
		{Service: "gateway", Package: pkg("golang.org/x/text", "v0.3.5"), Vulnerability: findings.Vulnerability{ID: "GO-2021-0113", Aliases: []string{"CVE-2021-38561"}},
			Severity: findings.Severity{Level: "high", Score: 7.5}, FixedVersion: "v0.3.7", Static: findings.StaticCalled,
			Symbols: []string{"golang.org/x/text/language.Parse"}, Sources: []findings.Source{{Tool: "govulncheck", File: "gateway.json"}}},
		{Service: "gateway", Package: pkg("golang.org/x/net", "v0.0.0-20220906165146-f3363e06e74c"), Vulnerability: findings.Vulnerability{ID: "GO-2023-1571", Aliases: []string{"CVE-2022-41723"}},
			Severity: findings.Severity{Level: "high", Score: 7.5}, FixedVersion: "v0.7.0", Static: findings.StaticImported,
			Symbols: []string{"golang.org/x/net/html.Parse"}, Sources: []findings.Source{{Tool: "govulncheck", File: "gateway.json"}, {Tool: "grype", File: "gateway.grype.json"}}},
		{Service: "orders", Package: pkg("gopkg.in/yaml.v2", "v2.2.2"), Vulnerability: findings.Vulnerability{ID: "GO-2022-0956", Aliases: []string{"CVE-2022-3064"}},
			Severity: findings.Severity{Level: "medium"}, FixedVersion: "v2.2.4", Static: findings.StaticRequired,
			Sources: []findings.Source{{Tool: "cyclonedx", File: "orders.cdx.json"}}},
	}
	cfg := assess.DefaultConfig()
	cfg.Sensitivity = []assess.SensitivityRule{{Store: "sqlite://shop/customers", Labels: []string{"pii"}}}
	// The gateway's x/net finding is loaded; the policy lets it be
	// not_affected so that every format shows a suppressed finding.
	cfg.VEX.AllowLoaded = true
	a := assess.New(cfg, nil, m.Snapshot())
	as := a.Assess(fs)
	return &Result{Generated: t0, Version: "v0.0.0-test", Summary: assess.Summarize(as), Assessments: as, Snapshot: m.Snapshot(), Exposure: a.ServiceExposures()}
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

func TestFormatsGolden(t *testing.T) {
	r := result(t)
	tests := []struct {
		format, golden string
		opts           Options
	}{
		{"table", "report.table.golden", Options{}},
		{"table", "report.table-color.golden", Options{Color: true}},
		{"json", "report.json.golden", Options{}},
		{"markdown", "report.md.golden", Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			f, err := Lookup(tt.format, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := f.Write(&buf, r); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, buf.Bytes())
		})
	}
}

func TestLookupUnknown(t *testing.T) {
	if _, err := Lookup("xml", Options{}); err == nil {
		t.Fatal("Lookup(xml) succeeded")
	}
}

// TestHeadline is issue 10's honest headline: a cut is claimed only for
// what runtime evidence decided, and never when nothing is known.
func TestHeadline(t *testing.T) {
	verdicts := func(e, l, n, u int) map[assess.Verdict]int {
		return map[assess.Verdict]int{assess.Executed: e, assess.Loaded: l, assess.NotObserved: n, assess.Unknown: u}
	}
	tests := []struct {
		name string
		s    assess.Summary
		want string
	}{
		{"nothing known", assess.Summary{Findings: 60, ByVerdict: verdicts(0, 0, 0, 60), ByTier: map[string]int{"P3": 60}},
			"60 findings (0 executed, 0 loaded, 0 not_observed, 60 unknown); 0 need action now (P1 0, P2 0); runtime evidence decided none of them: no backlog cut"},
		{"partly known", assess.Summary{Findings: 10, ByVerdict: verdicts(1, 1, 3, 5), ByTier: map[string]int{"P1": 1, "P3": 6, "P4": 3}, NeedAction: 1, Decided: 5, DecidedShare: 0.5, Cleared: 4, BacklogReduction: 0.4, DecidedReduction: 0.8},
			"10 findings (1 executed, 1 loaded, 3 not_observed, 5 unknown); 1 need action now (P1 1, P2 0); runtime evidence decided 5 (50%) and cleared 4: backlog cut by 40% (80% of the decided)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Headline(tt.s); got != tt.want {
				t.Errorf("headline =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// sixtyServices is the result issue 8 measured: 60 services, each with
// one executed finding (with reasons and a stack) and two that were not
// observed, in priority order.
func sixtyServices() *Result {
	var now, later []assess.Assessment
	for i := range 60 {
		svc := fmt.Sprintf("service-%02d", i)
		pkg := findings.Package{Ecosystem: osv.EcosystemGo, Name: "golang.org/x/net", Version: "v0.54.0", PURL: "pkg:golang/golang.org/x/net@v0.54.0"}
		stack := make([]string, 12)
		for j := range stack {
			stack[j] = fmt.Sprintf("example.com/%s/internal/handler%d.(*Server).serve", svc, j)
		}
		now = append(now, assess.Assessment{
			Finding:      findings.Finding{Service: svc, Package: pkg, Vulnerability: findings.Vulnerability{ID: fmt.Sprintf("GO-2026-%04d", i)}, FixedVersion: "v0.55.0"},
			Reachability: assess.Reachability{Verdict: assess.Executed, Evidence: []assess.FunctionEvidence{{Symbol: "golang.org/x/net/html.Parse", Samples: 120, Stack: stack}}, Endpoints: []string{"GET /search", "POST /render"}},
			Exposure:     assess.ExposureResult{Level: assess.Exposed, Rule: "entry point"},
			Priority: assess.Priority{Tier: "P2", Score: 70, Reasons: []string{
				"+15 severity unknown", "+30 reachability executed: golang.org/x/net/html.Parse seen in 120 profile samples via GET /search",
				"+15 exposure exposed: entry point: 120 of 120 SERVER spans start a trace", "+5 reaches sensitive stores: sqlite://shop/customers [pii]",
			}},
		})
		for k := range 2 {
			later = append(later, assess.Assessment{
				Finding:      findings.Finding{Service: svc, Package: pkg, Vulnerability: findings.Vulnerability{ID: fmt.Sprintf("GO-2025-%04d", i*2+k)}},
				Reachability: assess.Reachability{Verdict: assess.NotObserved, Bound: &assess.Bound{Share: 0.0003, Samples: 10000}},
				Exposure:     assess.ExposureResult{Level: assess.Internal},
				Priority:     assess.Priority{Tier: "P4", Score: 19},
			})
		}
	}
	as := append(now, later...)
	return &Result{Generated: t0, Version: "test", Summary: assess.Summarize(as), Assessments: as}
}

// TestMarkdownMaxBytes is issue 8's pull-request comment: capped, it
// keeps the headline and the top findings and says how many it cut.
func TestMarkdownMaxBytes(t *testing.T) {
	r := sixtyServices()
	render := func(maxBytes int) (string, error) {
		f, err := Lookup("markdown", Options{MaxBytes: maxBytes})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		err = f.Write(&buf, r)
		return buf.String(), err
	}
	full, err := render(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(full) <= 60_000 {
		t.Fatalf("uncapped: %d bytes; the test needs more than 60,000", len(full))
	}
	rows := func(s string) int { return strings.Count(s, "\n| P") }
	if rows(full) != len(r.Assessments) {
		t.Fatalf("uncapped: %d rows, want %d", rows(full), len(r.Assessments))
	}
	if same, _ := render(len(full)); same != full {
		t.Error("a cap the report fits in changed it")
	}

	for _, maxBytes := range []int{60_000, 20_000, 2_000} {
		t.Run(fmt.Sprint(maxBytes), func(t *testing.T) {
			got, err := render(maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) > maxBytes {
				t.Errorf("%d bytes, over the cap of %d", len(got), maxBytes)
			}
			if !strings.Contains(got, "**"+Headline(r.Summary)+"**") {
				t.Error("the headline is gone")
			}
			shown := rows(got)
			t.Logf("%d of %d findings in %d bytes (uncapped: %d)", shown, len(r.Assessments), len(got), len(full))
			want := fmt.Sprintf("_%d more findings not shown (cut to fit %d bytes)._\n", len(r.Assessments)-shown, maxBytes)
			if !strings.HasSuffix(got, want) {
				t.Errorf("the output does not end with %q:\n...%s", want, got[max(0, len(got)-200):])
			}
			// The findings shown are the top ones: a prefix of the
			// rendering with one more finding is the same table.
			if more := markdown(r, shown+1, maxBytes); len(more) <= maxBytes {
				t.Errorf("%d findings shown, but %d fit (%d bytes)", shown, shown+1, len(more))
			}
			if shown > 0 && !strings.Contains(got, "GO-2026-0000") {
				t.Error("the first P2 finding is not shown")
			}
		})
	}

	if _, err := render(100); err == nil || !strings.Contains(err.Error(), "headline alone") {
		t.Errorf("a cap below the headline: %v, want an error", err)
	}
}

// TestBlastRadiusIncompleteJSON: the JSON report says when a finding's
// blast radius may lack stores (assess.Assessment.BlastRadiusIncomplete),
// and says nothing of it when it is complete.
func TestBlastRadiusIncompleteJSON(t *testing.T) {
	for _, incomplete := range []string{"", "incomplete: orders calls stores beyond max_stores (2 calls)"} {
		r := result(t)
		r.Assessments[0].BlastRadiusIncomplete = incomplete
		var got struct {
			Findings []struct {
				BlastRadius map[string]any `json:"blast_radius"`
			} `json:"findings"`
		}
		if err := json.Unmarshal(render(t, "json", Options{}, r), &got); err != nil {
			t.Fatal(err)
		}
		said, ok := got.Findings[0].BlastRadius["incomplete"]
		if ok != (incomplete != "") || (ok && said != incomplete) {
			t.Errorf("blast_radius %v, want incomplete %q", got.Findings[0].BlastRadius, incomplete)
		}
	}
}
