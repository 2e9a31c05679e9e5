package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
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
	as := assess.New(cfg, nil, m.Snapshot()).Assess(fs)
	return &Result{Generated: t0, Version: "v0.0.0-test", Summary: assess.Summarize(as), Assessments: as, Snapshot: m.Snapshot()}
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
			if got := headline(tt.s); got != tt.want {
				t.Errorf("headline =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
