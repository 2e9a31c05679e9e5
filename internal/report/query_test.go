package report

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/telemetry"
)

// TestServicesJSONExposure: a service no finding names still shows the
// exposure the model decided for it.
func TestServicesJSONExposure(t *testing.T) {
	r := result(t)
	r.Assessments = slices.DeleteFunc(slices.Clone(r.Assessments), func(a assess.Assessment) bool { return a.Finding.Service == "gateway" })
	got := map[string]assess.ExposureResult{}
	for _, s := range ServicesJSON(r) {
		got[s.Name] = s.Exposure
	}
	want := map[string]assess.ExposureResult{
		"gateway": {Level: assess.Exposed, Rule: "entry point: 1 of 1 SERVER/CONSUMER spans start a trace"},
		"orders":  {Level: assess.Internal, Rule: "only called by traced services (1 of 1 SERVER/CONSUMER spans joined to their caller)"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("exposure by service (-want +got):\n%s", diff)
	}
}

func TestParseFindingQuery(t *testing.T) {
	const noKEV = `: no KEV catalog is loaded, so no finding is known to be exploited or not: run "evident db update", which fetches CISA's catalog into <data>/vulndb/kev.json, and restart evident serve (with --vulns, or for a catalog elsewhere, name it with --kev FILE)`
	tests := []struct {
		query string
		// noKEV parses without a KEV catalog loaded.
		noKEV   bool
		want    FindingQuery
		wantErr string
	}{
		{"", false, FindingQuery{}, ""},
		{"service=&verdict=&kev=", false, FindingQuery{}, ""},
		{"service=gateway&tier=P1&verdict=executed&exposure=exposed&vulnerability=CVE-1&kev=true&q=+x+&sort=verdict", false,
			FindingQuery{Service: "gateway", Tier: "P1", Verdict: "executed", Exposure: "exposed", Vulnerability: "CVE-1", KEV: "true", Text: "x", Sort: "verdict"}, ""},
		{"tier=P5", false, FindingQuery{}, `tier "P5": want one of P1, P2, P3, P4`},
		{"exposure=public", false, FindingQuery{}, `exposure "public": want one of exposed, internal, no_input, unknown`},
		{"kev=yes", false, FindingQuery{}, `kev "yes": want one of true, false`},
		{"verdict=ran&sort=age", false, FindingQuery{}, "verdict \"ran\": want one of executed, loaded, not_observed, unknown\n" +
			`sort "age": want one of priority, score, service, vulnerability, verdict`},
		// Without a catalog, kev=true would list nothing and kev=false
		// everything, whatever is exploited.
		{"kev=true", true, FindingQuery{}, `kev "true"` + noKEV},
		{"kev=false", true, FindingQuery{}, `kev "false"` + noKEV},
		{"kev=yes", true, FindingQuery{}, `kev "yes": want one of true, false`},
		{"kev=&tier=P1", true, FindingQuery{Tier: "P1"}, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/noKEV=%v", tt.query, tt.noKEV), func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			got, err := ParseFindingQuery(q, !tt.noKEV)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("error %v, want %q", err, tt.wantErr)
				}
				if got, want := errors.Is(err, ErrNoKEV), strings.HasSuffix(tt.wantErr, noKEV); got != want {
					t.Errorf("errors.Is(%v, ErrNoKEV) = %v, want %v", err, got, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
			again, err := ParseFindingQuery(got.Values(), !tt.noKEV)
			if err != nil || again != got {
				t.Errorf("round trip through Values: %+v, %v; want %+v", again, err, got)
			}
		})
	}
}

// TestFindingQuerySelect filters and orders the shop's findings; every
// order falls back to priority.
func TestFindingQuerySelect(t *testing.T) {
	as := result(t).Assessments
	ids := func(as []assess.Assessment) []string {
		out := []string{}
		for _, a := range as {
			out = append(out, a.Finding.Vulnerability.ID)
		}
		return out
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", ids(as)},
		{"sort=priority", ids(as)},
		{"service=orders", []string{"GO-2022-0956"}},
		{"exposure=exposed&sort=vulnerability", []string{"GO-2021-0113", "GO-2023-1571"}},
		{"q=cve-2022", []string{"GO-2023-1571", "GO-2022-0956"}},
		{"vulnerability=CVE-2021-38561", []string{"GO-2021-0113"}},
		{"kev=true", []string{}},
		{"kev=false&sort=service", []string{"GO-2021-0113", "GO-2023-1571", "GO-2022-0956"}},
		{"sort=verdict", []string{"GO-2021-0113", "GO-2023-1571", "GO-2022-0956"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			fq, err := ParseFindingQuery(q, true)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, ids(fq.Select(as))); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}

// profiledResult is a result of no finding over a service "api" with the
// profiles of the telemetry fixtures, made by the Go runtime: go-cpu.pb.gz
// holds 59 CPU samples, go-allocs.pb.gz 19,781 allocated objects of the
// same package.
func profiledResult(t *testing.T, names ...string) *Result {
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
	return &Result{Generated: t0, Version: "v0.0.0-test", Snapshot: m.Snapshot()}
}

// TestServicesJSONTimeSamples: a service's and a package's time_samples
// count the CPU profile's samples alone, and each window says whether
// its samples are of time, so that an allocation profile's objects are
// not read as CPU samples.
func TestServicesJSONTimeSamples(t *testing.T) {
	const pkg = "github.com/evidentsec/evident/internal/telemetry"
	type counts struct {
		Samples, TimeSamples, PackageTimeSamples int64
		Windows                                  map[string]string // sample type -> time_sampled and languages
	}
	tests := []struct {
		name     string
		profiles []string
		want     counts
	}{
		{"cpu", []string{"go-cpu.pb.gz"}, counts{59, 59, 59, map[string]string{"cpu": "true [go]"}}},
		{"allocs", []string{"go-allocs.pb.gz"}, counts{19781, 0, 0, map[string]string{"alloc_space": "false [go]"}}},
		{"cpu and allocs", []string{"go-cpu.pb.gz", "go-allocs.pb.gz"}, counts{59 + 19781, 59, 59, map[string]string{"cpu": "true [go]", "alloc_space": "false [go]"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svcs := ServicesJSON(profiledResult(t, tt.profiles...))
			if len(svcs) != 1 {
				t.Fatalf("%d services, want 1", len(svcs))
			}
			s := svcs[0]
			got := counts{Samples: s.Samples, TimeSamples: s.TimeSamples, Windows: map[string]string{}}
			for _, p := range s.Packages {
				if p.Package == pkg {
					got.PackageTimeSamples = p.TimeSamples
				}
			}
			for _, w := range s.Windows {
				got.Windows[w.SampleType] = fmt.Sprint(w.TimeSampled, " ", w.Languages)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("samples of api (-want +got):\n%s", diff)
			}
		})
	}
}

// TestServicesJSONNamespaces: a service shows its service.namespace, and
// the namespaces of the services of its name that the model merged.
func TestServicesJSONNamespaces(t *testing.T) {
	r := result(t)
	r.Snapshot.Service("gateway").Namespace = "shop"
	s := r.Snapshot.Service("orders")
	s.Namespace, s.Namespaces = "shop", []string{"shop", "billing"}
	type ns struct {
		Namespace  string
		Namespaces []string
	}
	got := map[string]ns{}
	for _, s := range ServicesJSON(r) {
		got[s.Name] = ns{s.Namespace, s.Namespaces}
	}
	want := map[string]ns{"gateway": {"shop", nil}, "orders": {"shop", []string{"shop", "billing"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("namespaces by service (-want +got):\n%s", diff)
	}
}
