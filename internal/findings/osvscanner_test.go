package findings

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseOSVScanner(t *testing.T) {
	runGolden(t, ParseOSVScanner, []goldenCase{
		{name: "go call analysis", input: "osvscanner/app.json", golden: "osvscanner/app.golden"},
		{name: "npm", input: "osvscanner/npm.json", golden: "osvscanner/npm.golden"},
		{name: "debian upstream", input: "osvscanner/debian.json", golden: "osvscanner/debian.golden"},
	})
}

// TestOSVScannerUpstream: Debian's DEBIAN-CVE-2022-1292 names its CVE in
// upstream, not aliases; OSV-Scanner's finding of it and Trivy's
// CVE-2022-1292 of the same openssl are one finding.
func TestOSVScannerUpstream(t *testing.T) {
	var got []string
	all := append(parseFixture(t, ParseOSVScanner, "osvscanner/debian.json"), parseFixture(t, ParseTrivy, "trivy/image.json")...)
	for _, f := range Merge(all) {
		if f.Package.Name == "openssl" {
			got = append(got, mergedIDs([]Finding{f})...)
		}
	}
	want := []string{
		"pkg:deb/debian/openssl@1.1.1n-0%2Bdeb11u1 CVE-2022-2068 [DSA-5169-1] [trivy]",
		"pkg:deb/debian/openssl@1.1.1n-0%2Bdeb11u1 DEBIAN-CVE-2022-1292 [CVE-2022-1292 DSA-5169-1] [osv-scanner trivy]",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged openssl findings (-want +got):\n%s", diff)
	}
}

// TestOSVScannerRecordNames: OSV-Scanner writes a PyPI package's name
// normalized (osv-scanner internal/imodels: PEP 503), GitHub's records
// as PyPI displays it (GHSA-8q59-q68h-6hv4 affects "PyYAML", fixed in
// 5.4); the record's affected entry for the package still gives the
// fixed version.
func TestOSVScannerRecordNames(t *testing.T) {
	const record = `{"id": "GHSA-8q59-q68h-6hv4", "aliases": ["CVE-2020-14343"],
		"affected": [{"package": {"ecosystem": "PyPI", "name": "PyYAML"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "5.4"}]}]}]}`
	tests := []struct {
		name, pkg, eco, version, wantName, wantFix string
	}{
		{name: "pypi normalized by osv-scanner", pkg: "pyyaml", eco: "PyPI", version: "5.3.1", wantName: "pyyaml", wantFix: "5.4"},
		{name: "pypi as written", pkg: "PyYAML", eco: "PyPI", version: "5.3.1", wantName: "pyyaml", wantFix: "5.4"},
		{name: "another ecosystem", pkg: "PyYAML", eco: "npm", version: "5.3.1", wantName: "PyYAML", wantFix: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := `{"results": [{"source": {"path": "requirements.txt", "type": "lockfile"}, "packages": [
				{"package": {"name": "` + tt.pkg + `", "version": "` + tt.version + `", "ecosystem": "` + tt.eco + `"},
				 "groups": [{"ids": ["GHSA-8q59-q68h-6hv4"], "aliases": ["CVE-2020-14343", "GHSA-8q59-q68h-6hv4"], "max_severity": "9.8"}],
				 "vulnerabilities": [` + record + `]}]}]}`
			fs, errs := ParseOSVScanner(strings.NewReader(doc), "in.json")
			if len(errs) != 0 || len(fs) != 1 {
				t.Fatalf("got %d findings, errors %v; want 1 finding", len(fs), errs)
			}
			if got := fs[0]; got.Package.Name != tt.wantName || got.FixedVersion != tt.wantFix {
				t.Errorf("got %s fixed in %q, want %s fixed in %q", got.Package.Name, got.FixedVersion, tt.wantName, tt.wantFix)
			}
		})
	}
}

func TestParseOSVScannerBad(t *testing.T) {
	const good = `{"package": {"name": "golang.org/x/text", "version": "0.3.5", "ecosystem": "Go"}, "groups": [{"ids": ["GO-2021-0113"], "aliases": ["CVE-2021-38561", "GO-2021-0113"], "experimental_analysis": {"GO-2021-0113": {"called": true}}}]}`
	runBad(t, ParseOSVScanner, []badCase{
		{
			name: "bad records are skipped",
			input: `{"results": [
				{"source": {"path": "go.mod"}, "packages": [
					{"package": {"version": "0.3.5", "ecosystem": "Go"}},
					{"package": {"name": "golang.org/x/text", "ecosystem": "Go"}, "groups": [{"ids": ["GO-2022-1059"]}]},
					{"package": {"name": "golang.org/x/text", "version": "0.3.5", "ecosystem": "Go"}, "groups": [{"ids": []}]},
					{"package": {"name": "golang.org/x/text", "version": "0.3.5", "ecosystem": "Go"}, "vulnerabilities": [{"aliases": ["CVE-1"]}]},
					{"package": {"name": "golang.org/x/text", "version": "0.3.5", "ecosystem": "Go"}, "groups": [{"ids": "GO-2022-1059"}]},
					{"package": {"name": "tj-actions/changed-files", "version": "45.0.7", "ecosystem": "GitHub Actions"}, "groups": [{"ids": ["GHSA-mrrh-fwg8-r2c3"]}]},
					` + good + `]},
				{"source": {"path": "go.sum"}, "packages": {}}]}`,
			wantFindings: 1,
			wantErrs: []string{
				"in.json: results[0].packages[0]: no package name or ecosystem",
				"in.json: results[0].packages[1] (golang.org/x/text): package golang.org/x/text: no version",
				"in.json: results[0].packages[2] (golang.org/x/text): groups[0]: no ids",
				"in.json: results[0].packages[3] (golang.org/x/text): vulnerabilities[0]: no id",
				"in.json: results[0].packages[4]: json: cannot unmarshal string into Go struct field osvScannerGroup.groups.ids of type []string",
				`in.json: results[0].packages[5] (tj-actions/changed-files): ecosystem "GitHub Actions": unknown ecosystem`,
				"in.json: results[1]: json: cannot unmarshal object into Go struct field osvScannerSource.packages of type []json.RawMessage",
			},
		},
		{
			name:     "truncated",
			input:    `{"results": [{"packages": [` + good,
			wantErrs: []string{"in.json: it ends inside its JSON: it is cut short: malformed input"},
			wantIs:   ErrMalformed,
		},
		{
			name:     "trivy report",
			input:    `{"SchemaVersion": 2, "Results": []}`,
			wantErrs: []string{"in.json: not OSV-Scanner JSON output (no results): not the expected format"},
			wantIs:   ErrWrongFormat,
		},
	})
}

func FuzzParseOSVScanner(f *testing.F) {
	fuzzParser(f, ParseOSVScanner,
		`{"results": [{"source": {"path": "go.mod"}, "packages": [{"package": {"name": "a/b", "version": "0.3.5", "ecosystem": "Go"}, "groups": [{"ids": ["GO-1"], "aliases": ["CVE-1", "GO-1"], "experimental_analysis": {"GO-1": {"called": true}}, "max_severity": "7.5"}], "vulnerabilities": [{"id": "GO-1", "affected": [{"package": {"ecosystem": "Go", "name": "a/b"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.3.7"}]}]}]}]}]}]}`,
	)
}
