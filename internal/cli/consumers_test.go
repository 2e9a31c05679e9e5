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
)

// consumerRecord is one file of bench/consumers/recorded: what a real
// consumer of evident's OpenVEX (Grype, Trivy) did for one service of the
// example, as bench/consumers.sh recorded it.
type consumerRecord struct {
	// Tool is the consumer and its version, "grype v0.121.3".
	Tool string `json:"tool"`
	// Product is the identity of the service's SBOM: the purl Grype derives
	// from the syft SBOM's source, and the root component's purl Trivy reads.
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
// symbols are not in the binary) is logged. When evident's VEX changes,
// rerun the script.
func TestShopConsumers(t *testing.T) {
	dir := os.Getenv("EVIDENT_CONSUMERS_RECORDED")
	if dir == "" {
		dir = filepath.Join("..", "..", "bench", "consumers", "recorded")
	}
	records := readConsumerRecords(t, dir)

	cfg, err := os.ReadFile(filepath.Join(shop, "evident.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	products := map[string]string{}
	for name, rec := range records {
		if rec.Configured != "" {
			products[serviceOfRecord(name)] = rec.Configured
		}
	}
	if len(products) > 0 {
		cfg = append(cfg, "products:\n"...)
		for _, s := range slices.Sorted(maps.Keys(products)) {
			cfg = fmt.Appendf(cfg, "  %s: %q\n", s, products[s])
		}
	}
	cfgPath := filepath.Join(t.TempDir(), "evident.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	doc, err := vex.Parse(analyzeShopWith(t, cfgPath, "openvex"))
	if err != nil {
		t.Fatalf("parse evident's OpenVEX: %v", err)
	}
	var report struct {
		Findings []consumerFinding `json:"findings"`
	}
	if err := json.Unmarshal(analyzeShopWith(t, cfgPath, "json"), &report); err != nil {
		t.Fatal(err)
	}

	for _, name := range slices.Sorted(maps.Keys(records)) {
		rec, service := records[name], serviceOfRecord(name)
		tool, _, _ := strings.Cut(name, "-")
		t.Run(name, func(t *testing.T) {
			var reported, suppressed []consumerMatch
			for _, m := range rec.Found {
				if status, ok := consumerSuppression(tool, doc, rec.Product, m); ok {
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
			for _, f := range report.Findings {
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
			for _, f := range mine {
				if !seen[f.Vulnerability.ID] {
					t.Logf("%s did not find %s (%s, %s): nothing to report or suppress", rec.Tool, f.Vulnerability.ID, f.Reachability.Verdict, f.VEX.Status)
				}
			}
		})
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

// serviceOfRecord is the service a recording is of: "gateway" for
// "trivy-gateway".
func serviceOfRecord(name string) string {
	_, service, _ := strings.Cut(name, "-")
	return service
}

// consumerSuppression is the status of the statement of doc by which a
// tool suppresses one of its matches, and whether it does, following the
// tool's own matching (go-vex's VEX.Matches with the identifiers the tool
// passes; a tool suppresses on not_affected and fixed):
//   - Grype (grype/vex/openvex) tries the product identifiers of the
//     scanned source (for a syft SBOM, pkg:generic/NAME@VERSION of its
//     source) with the package's purl as subcomponent, then the package's
//     purl as the product, and applies the first statement it finds;
//   - Trivy (pkg/vex) tries the package's purl as the product, then walks
//     the SBOM's dependency graph from the package up to the root, each
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
