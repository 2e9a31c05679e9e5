package cli

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/openvex/go-vex/pkg/vex"
	"github.com/package-url/packageurl-go"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// consumerRecord is one file of bench/consumers/recorded: what a real
// consumer of evident's OpenVEX (Grype, Trivy) did for one service of the
// example, as bench/consumers.sh recorded it.
type consumerRecord struct {
	// Tool is the consumer and its version, "grype v0.121.3".
	Tool string `json:"tool"`
	// Service is the service of the example the tool scanned.
	Service string `json:"service"`
	// Scanned is what the tool scanned: "syft-json" (an SBOM of the
	// service's binary) or "image" (the service's OCI image, pulled from a
	// registry).
	Scanned string `json:"scanned"`
	// Image is the image the tool scanned, as a deployment of it names it
	// in the service's telemetry (container.image.name,
	// oci.manifest.digest); nil for an SBOM.
	Image *consumerImage `json:"image,omitempty"`
	// Product is the identity of what the tool scanned, as the tool passes
	// it to go-vex: the purl Grype derives from the syft SBOM's source or
	// the image's digest, the root component's purl Trivy derives from the
	// image.
	Product string `json:"product"`
	// Configured is the product that evident's configuration named for the
	// service (products:), or empty when evident named it itself.
	Configured string `json:"configured"`
	// Found is what the tool reported without the VEX, Reported and
	// Suppressed what it reported and suppressed with it.
	Found      []consumerMatch `json:"found"`
	Reported   []consumerMatch `json:"reported"`
	Suppressed []consumerMatch `json:"suppressed"`
}

// consumerImage is a container image of a service of the example.
type consumerImage struct {
	// Name is its repository, "127.0.0.1:5000/shop/gateway".
	Name string `json:"name"`
	// Digest is its manifest digest, "sha256:…".
	Digest string `json:"digest"`
}

type consumerMatch struct {
	ID     string `json:"id"`
	PURL   string `json:"purl"`
	Status string `json:"status,omitempty"`
}

// consumerFinding is the part of a finding of the JSON report that the
// consumers' view is checked against.
type consumerFinding struct {
	Vulnerability struct {
		ID      string   `json:"id"`
		Aliases []string `json:"aliases"`
	} `json:"vulnerability"`
	Package struct {
		PURL string `json:"purl"`
	} `json:"package"`
	Service      string `json:"service"`
	Reachability struct {
		Verdict string `json:"verdict"`
	} `json:"reachability"`
	VEX struct {
		Status string `json:"status"`
	} `json:"vex"`
}

// TestShopConsumers checks the recorded runs of Grype and Trivy on the
// example (bench/consumers.sh) against evident's OpenVEX for it, per
// service: that applying the VEX as each tool does (go-vex matching with
// the tool's product and subcomponent identifiers) gives what the tool
// really reported and suppressed; that everything the tool found is a
// finding of evident's for that service; and that of those it suppressed
// exactly the ones evident says are not_affected, and still reported the
// rest (executed, loaded and unknown ones among them). What evident has
// and the tool did not find (Grype leaves out a module whose vulnerable
// symbols are not in the binary) is logged. A tool that scanned the
// services' images is checked against evident's output for the example
// deployed as those images (its telemetry names each service's image, as
// the Collector's k8sattributes processor does), a tool that scanned SBOMs
// against the example as recorded. When evident's VEX changes, rerun the
// script.
func TestShopConsumers(t *testing.T) {
	dir := os.Getenv("EVIDENT_CONSUMERS_RECORDED")
	if dir == "" {
		dir = filepath.Join("..", "..", "bench", "consumers", "recorded")
	}
	records := readConsumerRecords(t, dir)
	outputs := map[bool]consumerOutput{}
	for _, images := range []bool{false, true} {
		var of []consumerRecord
		for _, rec := range records {
			if (rec.Image != nil) == images {
				of = append(of, rec)
			}
		}
		if len(of) > 0 {
			outputs[images] = shopOutputFor(t, of)
		}
	}

	for _, name := range slices.Sorted(maps.Keys(records)) {
		rec, service := records[name], records[name].Service
		out := outputs[rec.Image != nil]
		tool, _, _ := strings.Cut(name, "-")
		t.Run(name, func(t *testing.T) {
			var reported, suppressed []consumerMatch
			for _, m := range rec.Found {
				if status, ok := consumerSuppression(tool, out.VEX, rec.Product, m); ok {
					m.Status = string(status)
					suppressed = append(suppressed, m)
				} else {
					reported = append(reported, m)
				}
			}
			if diff := cmp.Diff(rec.Reported, reported, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s reported, with this VEX (-recorded +derived):\n%s", rec.Tool, diff)
			}
			if diff := cmp.Diff(rec.Suppressed, suppressed, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s suppressed, with this VEX (-recorded +derived):\n%s", rec.Tool, diff)
			}

			var mine []consumerFinding
			for _, f := range out.Findings {
				if f.Service == service {
					mine = append(mine, f)
				}
			}
			isSuppressed := map[consumerMatch]bool{}
			for _, m := range rec.Suppressed {
				m.Status = ""
				isSuppressed[m] = true
			}
			seen := map[string]bool{}
			for _, m := range rec.Found {
				f, ok := findingOf(mine, m)
				if !ok {
					t.Errorf("%s found %s in %s, for which evident has no finding in %s", rec.Tool, m.ID, m.PURL, service)
					continue
				}
				seen[f.Vulnerability.ID] = true
				notAffected := f.VEX.Status == string(vex.StatusNotAffected)
				switch {
				case notAffected && !isSuppressed[m]:
					t.Errorf("%s reported %s in %s, which evident says is not_affected", rec.Tool, m.ID, service)
				case !notAffected && isSuppressed[m]:
					t.Errorf("%s suppressed %s in %s, which evident says is %s (%s)", rec.Tool, m.ID, service, f.VEX.Status, f.Reachability.Verdict)
				}
			}
			if len(mine) == 0 {
				t.Errorf("evident has no finding in %s", service)
			}
			for _, f := range mine {
				if !seen[f.Vulnerability.ID] {
					t.Logf("%s did not find %s (%s, %s): nothing to report or suppress", rec.Tool, f.Vulnerability.ID, f.Reachability.Verdict, f.VEX.Status)
				}
			}
		})
	}
}

// consumerOutput is what evident says of the example, as the consumers
// read it.
type consumerOutput struct {
	VEX      *vex.VEX
	Findings []consumerFinding
}

// shopOutputFor runs analyze on the example as the recordings saw it
// deployed: with the products their configuration named, and with the
// images they scanned named in the telemetry of their services (the
// resource attributes container.image.name and oci.manifest.digest on
// every span of the service).
func shopOutputFor(t *testing.T, records []consumerRecord) consumerOutput {
	t.Helper()
	cfg, err := os.ReadFile(filepath.Join(shop, "evident.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	products := map[string]string{}
	images := map[string]consumerImage{}
	for _, rec := range records {
		if rec.Configured != "" {
			products[rec.Service] = rec.Configured
		}
		if rec.Image != nil {
			images[rec.Service] = *rec.Image
		}
	}
	if len(products) > 0 {
		cfg = append(cfg, "products:\n"...)
		for _, s := range slices.Sorted(maps.Keys(products)) {
			cfg = fmt.Appendf(cfg, "  %s: %q\n", s, products[s])
		}
	}
	tmp := t.TempDir()
	cfgPath := filepath.Join(tmp, "evident.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	traces := filepath.Join(shop, "recorded", "traces.jsonl")
	if len(images) > 0 {
		traces = filepath.Join(tmp, "traces.jsonl")
		deployAsImages(t, filepath.Join(shop, "recorded", "traces.jsonl"), traces, images)
	}

	doc, err := vex.Parse(analyzeShopTraces(t, cfgPath, traces, "openvex"))
	if err != nil {
		t.Fatalf("parse evident's OpenVEX: %v", err)
	}
	var report struct {
		Findings []consumerFinding `json:"findings"`
	}
	if err := json.Unmarshal(analyzeShopTraces(t, cfgPath, traces, "json"), &report); err != nil {
		t.Fatal(err)
	}
	return consumerOutput{VEX: doc, Findings: report.Findings}
}

// deployAsImages copies the OTLP JSON lines of src to dst with each
// service's image, by its service.name, in the resource attributes a
// deployment of it reports.
func deployAsImages(t *testing.T, src, dst string, images map[string]consumerImage) {
	t.Helper()
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for line := range strings.Lines(string(raw)) {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces([]byte(line))
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		for _, rs := range td.ResourceSpans().All() {
			attrs := rs.Resource().Attributes()
			service, _ := attrs.Get("service.name")
			if img, ok := images[service.Str()]; ok {
				attrs.PutStr("container.image.name", img.Name)
				attrs.PutStr("oci.manifest.digest", img.Digest)
			}
		}
		js, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
		if err != nil {
			t.Fatal(err)
		}
		out = append(append(out, js...), '\n')
	}
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readConsumerRecords reads every recording of a directory, keyed by its
// name ("grype-gateway").
func readConsumerRecords(t *testing.T, dir string) map[string]consumerRecord {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recordings in %s (%v): run bench/consumers.sh", dir, err)
	}
	records := map[string]consumerRecord{}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var rec consumerRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		records[strings.TrimSuffix(filepath.Base(file), ".json")] = rec
	}
	return records
}

// consumerSuppression is the status of the statement of doc by which a
// tool suppresses one of its matches, and whether it does, following the
// tool's own matching (go-vex's VEX.Matches with the identifiers the tool
// passes; a tool suppresses on not_affected and fixed):
//   - Grype (grype/vex/openvex) tries the product identifiers of the
//     scanned source (for a syft SBOM, pkg:generic/NAME@VERSION of its
//     source; for an image, pkg:oci/NAME@DIGEST without and with
//     repository_url) with the package's purl as subcomponent, then the
//     package's purl as the product, and applies the first statement it
//     finds. evident's image products carry no qualifier, so the first
//     image identifier matches whatever the others do;
//   - Trivy (pkg/vex) tries the package's purl as the product, then walks
//     the dependency graph of the scan from the package up to the root
//     (for an image, pkg:oci/NAME@DIGEST?arch=…&repository_url=…), each
//     component with a purl as the product and the package as
//     subcomponent, and suppresses on the last statement of the first
//     component that has a suppressing one. Of the components between, only
//     the package itself can be a product of evident's statements.
func consumerSuppression(tool string, doc *vex.VEX, product string, m consumerMatch) (vex.Status, bool) {
	switch tool {
	case "grype":
		st := doc.Matches(m.ID, product, []string{m.PURL})
		if product == "" || len(st) == 0 {
			st = doc.Matches(m.ID, m.PURL, nil)
		}
		if len(st) > 0 {
			return st[0].Status, suppresses(st[0].Status)
		}
	case "trivy":
		for _, q := range [][2]string{{m.PURL, ""}, {m.PURL, m.PURL}, {product, m.PURL}} {
			if q[0] == "" {
				continue
			}
			st := doc.Matches(m.ID, q[0], []string{q[1]})
			if n := len(st); n > 0 && suppresses(st[n-1].Status) {
				return st[n-1].Status, true
			}
		}
	}
	return "", false
}

func suppresses(s vex.Status) bool {
	return s == vex.StatusNotAffected || s == vex.StatusFixed
}

// findingOf finds the finding a tool's match is: the same vulnerability
// (Trivy names CVEs, Grype the Go advisories, evident both) in the same
// package, whatever the purl's qualifiers.
func findingOf(fs []consumerFinding, m consumerMatch) (consumerFinding, bool) {
	p, err := packageurl.FromString(m.PURL)
	if err != nil {
		return consumerFinding{}, false
	}
	p.Qualifiers = nil
	purl := p.ToString()
	for _, f := range fs {
		if f.Package.PURL == purl && (f.Vulnerability.ID == m.ID || slices.Contains(f.Vulnerability.Aliases, m.ID)) {
			return f, true
		}
	}
	return consumerFinding{}, false
}
