package findings

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/osv"
)

// update rewrites the golden files of the package's tests: go test
// ./internal/findings -update.
var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// checkGolden compares got with the golden file at path, or rewrites the
// file when -update is set.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// parseResult is what a parser returned, as golden files hold it.
type parseResult struct {
	Findings []Finding `json:"findings"`
	Errors   []string  `json:"errors,omitempty"`
}

func marshalResult(t *testing.T, fs []Finding, errs []error) []byte {
	t.Helper()
	res := parseResult{Findings: fs}
	for _, err := range errs {
		res.Errors = append(res.Errors, err.Error())
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// parser is the signature every report parser shares.
type parser func(r io.Reader, name string) ([]Finding, []error)

// goldenCase is one fixture parsed and compared with its golden file.
type goldenCase struct {
	name   string
	input  string // under testdata
	golden string // under testdata
}

// runGolden parses every fixture with parse, checks the result against
// its golden file, and checks that parsing the result again merges to
// the same findings (the parsers' output is already merged).
func runGolden(t *testing.T, parse parser, cases []goldenCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tc.input))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fs, errs := parse(f, tc.input)
			if len(fs) == 0 {
				t.Errorf("no findings from %s", tc.input)
			}
			if diff := cmp.Diff(fs, Merge(fs)); diff != "" {
				t.Errorf("parser output is not merged (-got +merged):\n%s", diff)
			}
			checkGolden(t, filepath.Join("testdata", tc.golden), marshalResult(t, fs, errs))
		})
	}
}

// badCase is a malformed input with the errors it must produce.
type badCase struct {
	name         string
	input        string
	wantFindings int
	// wantErrs are the error texts, in order.
	wantErrs []string
	// wantIs is the sentinel every error must wrap; nil for record errors.
	wantIs error
}

func runBad(t *testing.T, parse parser, cases []badCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs, errs := parse(strings.NewReader(tc.input), "in.json")
			if len(fs) != tc.wantFindings {
				t.Errorf("got %d findings, want %d: %+v", len(fs), tc.wantFindings, fs)
			}
			var got []string
			for _, err := range errs {
				got = append(got, err.Error())
				var re *RecordError
				switch {
				case tc.wantIs != nil && !errors.Is(err, tc.wantIs):
					t.Errorf("error %q does not wrap %v", err, tc.wantIs)
				case tc.wantIs == nil && !errors.As(err, &re) && !errors.Is(err, ErrMalformed):
					t.Errorf("error %q is neither a *RecordError nor ErrMalformed", err)
				}
			}
			if diff := cmp.Diff(tc.wantErrs, got); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// fuzzParser checks the invariants of a parser on any input: no panic,
// findings that are merged and carry a package URL, an id and a source,
// and every error naming the input. The seeds are small documents: the
// fuzzer minimises every interesting input, which is slow on whole
// fixtures.
func fuzzParser(f *testing.F, parse parser, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Add([]byte("{}"))
	f.Add([]byte("[]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, errs := parse(bytes.NewReader(data), "fuzz.json")
		for _, x := range fs {
			if x.Package.PURL == "" || x.Vulnerability.ID == "" || len(x.Sources) == 0 {
				t.Errorf("incomplete finding %+v", x)
			}
		}
		if diff := cmp.Diff(fs, Merge(fs)); diff != "" {
			t.Errorf("output not merged:\n%s", diff)
		}
		for _, err := range errs {
			if !strings.HasPrefix(err.Error(), "fuzz.json: ") {
				t.Errorf("error %q does not name the input", err)
			}
		}
	})
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name    string
		input   string // a file under testdata, or the content itself
		file    bool
		want    Format
		wantErr bool
	}{
		{name: "govulncheck symbol", input: "govulncheck/symbol.json", file: true, want: FormatGovulncheck},
		{name: "govulncheck module", input: "govulncheck/module.json", file: true, want: FormatGovulncheck},
		{name: "trivy", input: "trivy/fs.json", file: true, want: FormatTrivy},
		{name: "grype", input: "grype/dir.json", file: true, want: FormatGrype},
		{name: "osv-scanner", input: "osvscanner/app.json", file: true, want: FormatOSVScanner},
		{name: "cyclonedx json", input: `{"$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json", "bomFormat": "CycloneDX", "specVersion": "1.6"}`, want: FormatCycloneDX},
		{name: "cyclonedx xml", input: `<?xml version="1.0"?><bom xmlns="http://cyclonedx.org/schema/bom/1.6" version="1">`, want: FormatCycloneDX},
		{name: "spdx json", input: `{"SPDXID": "SPDXRef-DOCUMENT", "spdxVersion": "SPDX-2.3"}`, want: FormatSPDX},
		{name: "spdx tag-value", input: "## generated\n\nSPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n", want: FormatSPDX},
		{name: "spdx rdf", input: `<rdf:RDF xmlns:spdx="http://spdx.org/rdf/terms#">`, want: FormatSPDX},
		{name: "elf", input: "\x7fELF\x02\x01\x01", want: FormatGoBinary},
		{name: "mach-o", input: "\xcf\xfa\xed\xfe\x07\x00", want: FormatGoBinary},
		{name: "pe", input: "MZ\x90\x00", want: FormatGoBinary},
		{name: "npm audit", input: "ecosystems/npm/npm-audit.json", file: true, want: FormatNPMAudit},
		{name: "npm 6 audit", input: `{"actions": [], "advisories": {}, "muted": [], "metadata": {}}`, want: FormatNPMAudit},
		{name: "pip-audit", input: "ecosystems/pypi/pip-audit.json", file: true, want: FormatPipAudit},
		{name: "package-lock", input: "ecosystems/npm/package-lock.json", file: true, want: FormatLockfile},
		{name: "evident's findings", input: `{"version": 1, "findings": [{"service": "orders", "package": {"purl": "pkg:golang/`, want: FormatEvident},
		{name: "evident analyze's report is not findings", input: `{"version": 1, "tool": {"name": "evident"}, "generated": "2026-12-06T12:00:00Z", "summary": {}, "services": [], "findings": []}`, wantErr: true},
		{name: "package.json is not a report", input: "ecosystems/npm/package.json", file: true, wantErr: true},
		{name: "byte order mark and space", input: "\xef\xbb\xbf  \n{\"SchemaVersion\": 2}", want: FormatTrivy},
		{name: "truncated grype", input: `{"matches": [{"vulnerability": {"id": "GHSA-`, want: FormatGrype},
		{name: "keys nested deeper do not count", input: `{"x": {"matches": []}}`, wantErr: true},
		{name: "unknown json", input: `{"hello": "world"}`, wantErr: true},
		{name: "empty", input: "  \n", wantErr: true},
		{name: "text", input: "hello", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.input)
			if tt.file {
				var err error
				if in, err = os.ReadFile(filepath.Join("testdata", tt.input)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Detect(in)
			if tt.wantErr {
				if !errors.Is(err, ErrUnknownFormat) {
					t.Errorf("Detect() = %q, %v; want ErrUnknownFormat", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Detect() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func FuzzDetect(f *testing.F) {
	for _, s := range []string{"govulncheck/symbol.json", "trivy/fs.json", "grype/dir.json", "osvscanner/app.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 300)])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Detect(data)
		if (err == nil) == (got == "") {
			t.Errorf("Detect() = %q, %v: want a format or an error", got, err)
		}
		// An upload's body, read for what it scanned: no panic.
		ReportArtifact(data, "auto")
	})
}

func TestNewPackage(t *testing.T) {
	tests := []struct {
		name                          string
		ecosystem, pkg, version, purl string
		want                          Package
		wantErr                       string
	}{
		{name: "go without v", ecosystem: "Go", pkg: "golang.org/x/text", version: "0.3.5",
			want: Package{PURL: "pkg:golang/golang.org/x/text@v0.3.5", Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5"}},
		{name: "go stdlib toolchain version", ecosystem: "Go", pkg: "stdlib", version: "go1.22.1",
			want: Package{PURL: "pkg:golang/stdlib@v1.22.1", Ecosystem: "Go", Name: "stdlib", Version: "v1.22.1"}},
		// As govulncheck writes a release candidate's, so that both merge.
		{name: "go stdlib release candidate", ecosystem: "Go", pkg: "stdlib", version: "go1.27rc2",
			want: Package{PURL: "pkg:golang/stdlib@v1.27.0-rc.2", Ecosystem: "Go", Name: "stdlib", Version: "v1.27.0-rc.2"}},
		{name: "go purl", purl: "pkg:golang/gopkg.in/yaml.v2@v2.2.2", version: "v2.2.2",
			want: Package{PURL: "pkg:golang/gopkg.in/yaml.v2@v2.2.2", Ecosystem: "Go", Name: "gopkg.in/yaml.v2", Version: "v2.2.2"}},
		// As Syft and Grype write it (Trivy lowercases it: see
		// TestTrivyNameCase): the module path keeps its capitals,
		// which the Go vulnerability database and profiles' frames have
		// (lowercased, a finding matched no frame and no govulncheck
		// finding).
		{name: "go purl with capitals", purl: "pkg:golang/github.com/Masterminds/semver/v3@v3.1.0",
			want: Package{PURL: "pkg:golang/github.com/Masterminds/semver/v3@v3.1.0", Ecosystem: "Go", Name: "github.com/Masterminds/semver/v3", Version: "v3.1.0"}},
		{name: "pypi normalized", ecosystem: "PyPI", pkg: "PyYAML", version: "5.3",
			want: Package{PURL: "pkg:pypi/pyyaml@5.3", Ecosystem: "PyPI", Name: "pyyaml", Version: "5.3"}},
		// Trivy and Syft keep a PyPI name's dots in its package URL, and
		// go-vex compares names as packageurl-go reads them: the VEX
		// documents need that spelling too.
		{name: "pypi name with a dot", ecosystem: "PyPI", pkg: "ruamel.yaml", version: "0.17.21",
			want: Package{PURL: "pkg:pypi/ruamel-yaml@0.17.21", Ecosystem: "PyPI", Name: "ruamel-yaml", Version: "0.17.21", ScannerPURL: "pkg:pypi/ruamel.yaml@0.17.21"}},
		{name: "pypi purl with a dot, as Trivy reports it", pkg: "ruamel.yaml", version: "0.17.21", purl: "pkg:pypi/ruamel.yaml@0.17.21",
			want: Package{PURL: "pkg:pypi/ruamel-yaml@0.17.21", Ecosystem: "PyPI", Name: "ruamel-yaml", Version: "0.17.21", ScannerPURL: "pkg:pypi/ruamel.yaml@0.17.21"}},
		{name: "pypi purl with a dot, alone", purl: "pkg:pypi/Zope.Interface@5.4.0",
			want: Package{PURL: "pkg:pypi/zope-interface@5.4.0", Ecosystem: "PyPI", Name: "zope-interface", Version: "5.4.0", ScannerPURL: "pkg:pypi/zope.interface@5.4.0"}},
		{name: "pypi underscores are no dots", ecosystem: "PyPI", pkg: "typing_extensions", version: "4.0.0",
			want: Package{PURL: "pkg:pypi/typing-extensions@4.0.0", Ecosystem: "PyPI", Name: "typing-extensions", Version: "4.0.0"}},
		{name: "maven purl", purl: "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar",
			want: Package{PURL: "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1"}},
		{name: "debian purl loses qualifiers, keeps its release", purl: "pkg:deb/debian/openssl@1.1.1n-0%2Bdeb11u1?arch=amd64&distro=debian-11.3",
			want: Package{PURL: "pkg:deb/debian/openssl@1.1.1n-0%2Bdeb11u1", Ecosystem: "Debian:11", Name: "openssl", Version: "1.1.1n-0+deb11u1"}},
		// Trivy's JSON report: InstalledVersion has the epoch, its
		// package URL the qualifier; the epoch is not doubled.
		{name: "trivy epoch in version and qualifier", purl: "pkg:deb/debian/libpam0g@1.5.2-6%2Bdeb12u1?arch=amd64&distro=debian-12.5&epoch=1", version: "1:1.5.2-6+deb12u1",
			want: Package{PURL: "pkg:deb/debian/libpam0g@1:1.5.2-6%2Bdeb12u1", Ecosystem: "Debian:12", Name: "libpam0g", Version: "1:1.5.2-6+deb12u1",
				ScannerPURL: "pkg:deb/debian/libpam0g@1.5.2-6%2Bdeb12u1?epoch=1"}},
		{name: "generic purl", purl: "pkg:generic/busybox@1.34.1",
			want: Package{PURL: "pkg:generic/busybox@1.34.1", Ecosystem: "generic", Name: "busybox", Version: "1.34.1"}},
		{name: "osv-scanner debian release", ecosystem: "Debian:11", pkg: "openssl", version: "1.1.1n-0+deb11u1",
			want: Package{PURL: "pkg:deb/debian/openssl@1.1.1n-0%2Bdeb11u1", Ecosystem: "Debian:11", Name: "openssl", Version: "1.1.1n-0+deb11u1"}},
		{name: "osv-scanner alpine release", ecosystem: "Alpine:v3.18", pkg: "busybox", version: "1.36.1-r2",
			want: Package{PURL: "pkg:apk/alpine/busybox@1.36.1-r2", Ecosystem: "Alpine:v3.18", Name: "busybox", Version: "1.36.1-r2"}},
		// AlmaLinux's package URL is Syft's, pkg:rpm/almalinux (Trivy
		// writes pkg:rpm/alma), every time.
		{name: "osv-scanner almalinux release", ecosystem: "AlmaLinux:8", pkg: "libsndfile-devel", version: "1.0.28-8.el8",
			want: Package{PURL: "pkg:rpm/almalinux/libsndfile-devel@1.0.28-8.el8", Ecosystem: "AlmaLinux:8", Name: "libsndfile-devel", Version: "1.0.28-8.el8"}},
		{name: "no version", ecosystem: "Go", pkg: "golang.org/x/text", wantErr: "package golang.org/x/text: no version"},
		{name: "nothing", wantErr: "no package URL and no ecosystem and name"},
		{name: "bad purl", purl: "pkg:", wantErr: `parse package URL "pkg:"`},
		{name: "unknown ecosystem", ecosystem: "GitHub Actions", pkg: "tj-actions/changed-files", version: "45.0.7", wantErr: `ecosystem "GitHub Actions": unknown ecosystem`},
		// OSV-Scanner's Hackage package, which osv-scalibr reads from a
		// stack.yaml.lock or cabal.project.freeze.
		{name: "osv-scanner hackage", ecosystem: "Hackage", pkg: "aeson", version: "2.0.3.0",
			want: Package{PURL: "pkg:hackage/aeson@2.0.3.0", Ecosystem: "Hackage", Name: "aeson", Version: "2.0.3.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := newPackage(tt.ecosystem, tt.pkg, tt.version, tt.purl)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("newPackage() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("newPackage() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOSVSeverity(t *testing.T) {
	tests := []struct {
		name string
		sevs []osv.Severity
		want Severity
	}{
		{name: "none", want: Severity{Level: LevelUnknown}},
		{name: "v3", sevs: []osv.Severity{{Type: osv.SeverityCVSSv3, Score: "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"}},
			want: Severity{Level: LevelHigh, Score: 7.2, Vector: "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"}},
		{name: "v2 has no critical", sevs: []osv.Severity{{Type: osv.SeverityCVSSv2, Score: "AV:N/AC:L/Au:N/C:C/I:C/A:C"}},
			want: Severity{Level: LevelHigh, Score: 10, Vector: "AV:N/AC:L/Au:N/C:C/I:C/A:C"}},
		{name: "the highest level wins over a higher v2 score", sevs: []osv.Severity{
			{Type: osv.SeverityCVSSv2, Score: "AV:N/AC:L/Au:N/C:C/I:C/A:C"},
			{Type: osv.SeverityCVSSv3, Score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
		}, want: Severity{Level: LevelCritical, Score: 9.8, Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}},
		{name: "bad vectors and other types are ignored", sevs: []osv.Severity{
			{Type: osv.SeverityCVSSv3, Score: "CVSS:3.1/AV:Q"},
			{Type: "Ubuntu", Score: "high"},
		}, want: Severity{Level: LevelUnknown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, osvSeverity(tt.sevs)); diff != "" {
				t.Errorf("osvSeverity() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScoreVector(t *testing.T) {
	tests := []struct {
		vector  string
		want    float64
		wantErr bool
	}{
		{vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", want: 7.5},
		{vector: "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", want: 9.8},
		{vector: "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", want: 9.3},
		{vector: "AV:N/AC:M/Au:N/C:P/I:P/A:P", want: 6.8},
		{vector: "CVSS:3.1/AV:X", wantErr: true},
		{vector: "garbage", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.vector, func(t *testing.T) {
			got, err := osv.ScoreVector(tt.vector)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("osv.ScoreVector() = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct {
		name  string
		parse parser
		file  string
	}{
		{"govulncheck", ParseGovulncheck, "govulncheck/symbol.json"},
		{"trivy", ParseTrivy, "trivy/image.json"},
		{"grype", ParseGrype, "grype/dir.json"},
		{"osv-scanner", ParseOSVScanner, "osvscanner/app.json"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			data, err := os.ReadFile(filepath.Join("testdata", bc.file))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				fs, errs := bc.parse(bytes.NewReader(data), bc.file)
				if len(errs) > 0 || len(fs) == 0 {
					b.Fatalf("parse %s: %d findings, errors %v", bc.file, len(fs), errs)
				}
				n += len(fs)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "findings/s")
		})
	}
}

// TestDetectSaysWhy: JSON that is no report's says why when the JSON
// does: a syntax error, or an input that ends inside its object; a
// prefix as long as the one callers read may be cut by them, and is not
// said to be cut short.
func TestDetectSaysWhy(t *testing.T) {
	long := `{"hello": "` + strings.Repeat("x", detectLen)
	tests := []struct{ input, want string }{
		{`{"x":`, `JSON cut short: the input ends after 5 bytes, inside an object with keys ["x"]: unknown input format`},
		{`{"x" 1}`, `invalid JSON after 5 bytes: invalid character '1' after object key: unknown input format`},
		{`{"hello": "world"}`, `JSON object with keys ["hello"]: unknown input format`},
		{long[:detectLen], `JSON object with keys ["hello"]: unknown input format`},
	}
	for _, tt := range tests {
		if _, err := Detect([]byte(tt.input)); err == nil || err.Error() != tt.want {
			t.Errorf("Detect(%.20q) error %v, want %q", tt.input, err, tt.want)
		}
	}
	// Nothing but white space: no format is the hint, callers say so.
	for _, in := range []string{"", " \n\t", "\xef\xbb\xbf\n"} {
		if _, err := Detect([]byte(in)); !errors.Is(err, ErrEmpty) || !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("Detect(%q) error %v, want ErrEmpty and ErrUnknownFormat", in, err)
		}
	}
	if _, err := Detect([]byte(`{"hello": "world"}`)); errors.Is(err, ErrEmpty) {
		t.Errorf("Detect of a JSON object: %v, which is not ErrEmpty", err)
	}
}

// TestReportArtifact: a report says what it scanned without a finding to
// carry it (a clean scan), as its findings' sources name it (the
// artifacts of the golden files).
func TestReportArtifact(t *testing.T) {
	tests := []struct {
		file   string
		format Format
		want   string
	}{
		{file: "govulncheck/symbol.json", format: "auto", want: "example.com/vulnapp"},
		{file: "govulncheck/symbol.json", format: FormatGovulncheck, want: "example.com/vulnapp"},
		{file: "trivy/image.json", format: "auto", want: "registry.example.com/shop/checkout:1.4.2"},
		{file: "grype/dir.json", format: "auto", want: "app"},
		{file: "cyclonedx/gomod-app-1.6.json", format: "auto", want: "example.com/vulnapp"},
		{file: "cyclonedx/gomod-app-1.6.xml", format: "", want: "example.com/vulnapp"},
		{file: "spdx/syft-app.spdx.json", format: "auto", want: "vulnapp"},
		// OSV-Scanner names the files it read, not what they build.
		{file: "osvscanner/app.json", format: "auto", want: ""},
		// Told the wrong format, nothing is guessed.
		{file: "trivy/image.json", format: FormatGovulncheck, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.file+" as "+string(tt.format), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := ReportArtifact(data, tt.format); got != tt.want {
				t.Errorf("ReportArtifact() = %q, want %q", got, tt.want)
			}
		})
	}
}
