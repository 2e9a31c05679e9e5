package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/findings"
)

func TestInferService(t *testing.T) {
	shop := seenServices{names: []string{"catalog", "gateway", "orders", "reporter"}, byImage: map[string][]string{
		"registry.example.com/shop/edge":   {"gateway"},
		"registry.example.com/shop/worker": {"orders", "reporter"},
	}}
	one := func(svc string) seenServices { return seenServices{names: []string{svc}} }
	tests := []struct {
		name     string
		artifact string
		seen     seenServices
		want     string
		wantWhy  string
		wantErr  string
	}{
		{name: "module path of a service in the telemetry", artifact: "example.com/shop/cmd/gateway", seen: shop,
			want: "gateway", wantWhy: "the report scanned example.com/shop/cmd/gateway"},
		{name: "image named after a service in the telemetry", artifact: "registry.example.com/shop/orders:1.4.2", seen: shop,
			want: "orders", wantWhy: "the report scanned registry.example.com/shop/orders:1.4.2"},
		{name: "image a service of the telemetry runs", artifact: "registry.example.com/shop/edge:2.0@sha256:0123", seen: shop,
			want: "gateway", wantWhy: "the report scanned registry.example.com/shop/edge:2.0@sha256:0123, the image its telemetry names"},
		{name: "image that several services run", artifact: "registry.example.com/shop/worker:2.0", seen: shop,
			wantErr: "the report scanned registry.example.com/shop/worker:2.0, and no service in the telemetry is called worker (catalog, gateway, orders, reporter)"},
		{name: "no telemetry to check the name against", artifact: "registry.example.com/shop/checkout:1.4.2",
			want: "checkout", wantWhy: "the report scanned registry.example.com/shop/checkout:1.4.2"},
		{name: "the only service of the telemetry", seen: one("gateway"),
			want: "gateway", wantWhy: "the only service in the telemetry"},
		{name: "a name that is not in the telemetry, one service", artifact: "example.com/shop", seen: one("gateway"),
			want: "gateway", wantWhy: "the only service in the telemetry"},
		{name: "a name that is not in the telemetry", artifact: "example.com/shop", seen: shop,
			wantErr: "the report scanned example.com/shop, and no service in the telemetry is called shop (catalog, gateway, orders, reporter)"},
		{name: "no name, several services", seen: shop,
			wantErr: "the report does not say which service it scanned, and the telemetry has several (catalog, gateway, orders, reporter)"},
		{name: "no name, no telemetry",
			wantErr: "the report does not say which service it scanned, and there is no telemetry to tell"},
		{name: "a name of nothing", artifact: ".",
			wantErr: "the report does not say which service it scanned, and there is no telemetry to tell"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why, err := inferService(tt.artifact, tt.seen)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || why != tt.wantWhy {
				t.Errorf("inferService = %q, %q; want %q, %q", got, why, tt.want, tt.wantWhy)
			}
		})
	}
}

func TestImageRepository(t *testing.T) {
	tests := []struct{ ref, want string }{
		{"registry.example.com/shop/gateway:1.2", "registry.example.com/shop/gateway"},
		{"registry.example.com:5000/shop/gateway", "registry.example.com:5000/shop/gateway"},
		{"registry.example.com:5000/shop/gateway:1.2", "registry.example.com:5000/shop/gateway"},
		{"gateway@sha256:0123", "gateway"},
		{"shop/gateway:1.2@sha256:0123", "shop/gateway"},
		{"gateway", "gateway"},
	}
	for _, tt := range tests {
		if got := imageRepository(tt.ref); got != tt.want {
			t.Errorf("imageRepository(%q) = %q, want %q", tt.ref, got, tt.want)
		}
	}
}

// TestAssignFindings checks that inputs are assigned before they are
// merged: two reports of one vulnerability stay two findings when they
// are of two services.
func TestAssignFindings(t *testing.T) {
	finding := func(file, artifact string) findings.Finding {
		return findings.Finding{
			Package:       findings.Package{PURL: "pkg:golang/golang.org/x/net@v0.54.0", Ecosystem: "Go", Name: "golang.org/x/net", Version: "v0.54.0"},
			Vulnerability: findings.Vulnerability{ID: "GO-2026-5025"},
			Sources:       []findings.Source{{Tool: "govulncheck", File: file, Artifact: artifact}},
		}
	}
	// Of another vulnerability, so as not to merge with the others.
	named := func(svc string, f findings.Finding) findings.Finding {
		f.Service, f.Vulnerability.ID = svc, "GO-2026-5027"
		return f
	}
	unnamed := func(f findings.Finding) findings.Finding {
		f.Vulnerability.ID = "GO-2026-5027"
		return f
	}
	inputs := []importedFindings{
		{findingsFile{path: "gateway.json"}, []findings.Finding{finding("gateway.json", "example.com/shop/cmd/gateway")}},
		{findingsFile{path: "orders.json"}, []findings.Finding{finding("orders.json", "example.com/shop/cmd/orders")}},
		{findingsFile{services: "a,b", path: "lib.json"}, []findings.Finding{finding("lib.json", "")}},
		{findingsFile{path: "clean.json"}, nil}, // nothing to assign: no question asked
		// evident's own findings, merged from a report whose service was
		// told and one whose was not: only the second is inferred.
		{findingsFile{path: "merged.json"}, []findings.Finding{
			named("catalog", finding("catalog.json", "example.com/shop/cmd/gateway")),
			unnamed(finding("app.json", "example.com/shop/cmd/orders")),
		}},
	}
	var notes []string
	all, err := assignFindings(inputs, seenServices{names: []string{"gateway", "orders"}}, nil, func(s string) { notes = append(notes, s) })
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range all {
		got = append(got, f.Service+" "+f.Sources[0].File)
	}
	want := []string{"a lib.json", "b lib.json", "catalog catalog.json", "gateway gateway.json", "orders orders.json", "orders app.json"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	wantNotes := []string{
		"--findings gateway.json: service gateway (the report scanned example.com/shop/cmd/gateway)",
		"--findings orders.json: service orders (the report scanned example.com/shop/cmd/orders)",
		"--findings merged.json: service orders (the report scanned example.com/shop/cmd/orders)",
	}
	if diff := cmp.Diff(wantNotes, notes); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}

	// Every input that cannot be told is named, with the form to use.
	_, err = assignFindings(inputs, seenServices{names: []string{"catalog", "gateway"}}, nil, func(string) {})
	if err == nil || !strings.Contains(err.Error(), "--findings orders.json: the report scanned example.com/shop/cmd/orders") ||
		!strings.Contains(err.Error(), "give it as --findings SERVICE=orders.json") {
		t.Errorf("error = %v, want it to name orders.json and the SERVICE=FILE form", err)
	}
}

// TestAnalyzeInferred runs analyze on the example's recorded inputs named
// without SERVICE=: the reports' services come from the packages they
// scanned, the profiles' from their directories, and the report is the one
// the services named explicitly give. A Trivy report of an image is the
// service whose spans say they run it. A profile or a report that names no
// service among several is refused.
func TestAnalyzeInferred(t *testing.T) {
	rec := filepath.Join(shop, "recorded")
	base := []string{"analyze", "--vulns", filepath.Join(rec, "osv"), "--config", filepath.Join(shop, "evident.yaml"), "--traces", filepath.Join(rec, "traces.jsonl")}
	var reports []string
	for _, svc := range []string{"catalog", "gateway", "orders", "reporter"} {
		reports = append(reports, "--findings", filepath.Join(rec, "findings", svc+".json"))
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		golden   string
		// sameAs is a golden file that stdout must equal.
		sameAs string
	}{
		{
			name:     "reports named by their root packages",
			args:     append(append(slices.Clone(base), reports...), "--profiles", filepath.Join(rec, "profiles")),
			wantCode: ExitOK,
			golden:   "inferred.golden",
			sameAs:   "shop.table.golden",
		},
		{
			name:     "a profile without a service among several",
			args:     append(append(slices.Clone(base), reports[:2]...), "--profiles", filepath.Join(rec, "profiles", "catalog", "cpu.pb.gz")),
			wantCode: ExitUsage,
			golden:   "unnamed-profile.golden",
		},
		{
			name: "a report of the image a traced service runs",
			args: []string{"analyze", "--vulns", filepath.Join(rec, "osv"), "--findings", "../findings/testdata/trivy/image.json",
				"--traces", filepath.Join("testdata", "analyze", "image-traces.json")},
			wantCode: ExitOK,
			golden:   "image.golden",
		},
		{
			name:     "a report that names no service in the telemetry",
			args:     append(slices.Clone(base), "--findings", "../findings/testdata/govulncheck/symbol.json"),
			wantCode: ExitUsage,
			golden:   "unnamed-report.golden",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, errOut)
			}
			golden(t, filepath.Join("testdata", "analyze", tt.golden), []byte(out+"--- stderr\n"+errOut))
			if tt.sameAs == "" {
				return
			}
			want, err := os.ReadFile(filepath.Join("testdata", "analyze", tt.sameAs))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), out); diff != "" {
				t.Errorf("report differs from %s, where the services are named (-want +got):\n%s", tt.sameAs, diff)
			}
		})
	}
}

// TestUnmatchedServices names the services of findings that telemetry
// with services lacks, once each and sorted; without telemetry, none.
func TestUnmatchedServices(t *testing.T) {
	fs := func(services ...string) []findings.Finding {
		var out []findings.Finding
		for _, s := range services {
			out = append(out, findings.Finding{Service: s})
		}
		return out
	}
	for _, tt := range []struct {
		name     string
		findings []findings.Finding
		seen     []string
		want     []string
	}{
		{"every service seen", fs("gateway", "orders", "gateway"), []string{"catalog", "gateway", "orders"}, nil},
		{"a name the telemetry does not use", fs("gw", "orders", "gw", "api"), []string{"gateway", "orders"}, []string{"api", "gw"}},
		{"no telemetry", fs("gw"), nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := unmatchedServices(tt.findings, seenServices{names: tt.seen})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("unmatchedServices (-want +got):\n%s", diff)
			}
		})
	}
}
