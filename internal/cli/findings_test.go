package cli

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/vulndb"
)

func TestFindingsImport(t *testing.T) {
	const (
		fx  = "../findings/testdata/"
		bad = "testdata/findings/"
	)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		// golden holds stdout, then a line "--- stderr", then stderr.
		golden string
	}{
		{
			name:     "four tools of one service as a table",
			args:     []string{"app=" + fx + "govulncheck/symbol.json", "app=" + fx + "grype/dir.json", "app=" + fx + "trivy/fs.json", "app=" + fx + "osvscanner/app.json"},
			wantCode: ExitOK,
			golden:   "app.table.golden",
		},
		{
			name:     "json with --service and a service per file",
			args:     []string{"--format", "json", "--service", "app", fx + "govulncheck/module.json", "checkout=" + fx + "trivy/image.json"},
			wantCode: ExitOK,
			golden:   "services.json.golden",
		},
		{
			name:     "a directory of reports named after their services",
			args:     []string{"../../examples/shop/recorded/findings"},
			wantCode: ExitOK,
			golden:   "dir.table.golden",
		},
		{
			// As analyze and POST /api/v1/findings infer it: the
			// example.com/shop/cmd/gateway binary is gateway's.
			name:     "the service named by the artifact the report scanned",
			args:     []string{"../../examples/shop/recorded/findings/gateway.json"},
			wantCode: ExitOK,
			golden:   "artifact.table.golden",
		},
		{
			name:     "forced input format",
			args:     []string{"--input-format", "grype", fx + "grype/image.json"},
			wantCode: ExitOK,
			golden:   "grype.table.golden",
		},
		{
			name:     "bad records are skipped and reported",
			args:     []string{"--service", "cart", bad + "bad-records.trivy.json", bad + "truncated.govulncheck.json"},
			wantCode: ExitSkipped,
			golden:   "skipped.golden",
		},
		{
			name:     "unreadable inputs",
			args:     []string{fx + "trivy/fs.json", bad + "missing.json", bad + "unknown.json", "--input-format", "trivy"},
			wantCode: ExitUsage,
			golden:   "unreadable.golden",
		},
		{
			name:     "undetectable input",
			args:     []string{bad + "unknown.json"},
			wantCode: ExitUsage,
			golden:   "undetectable.golden",
		},
		{
			name:     "an empty file",
			args:     []string{bad + "empty.json"},
			wantCode: ExitUsage,
			golden:   "empty.golden",
		},
		{
			name:     "an SBOM matched against the database merges with govulncheck",
			args:     []string{"--vulns", fx + "sbom/osv", "app=" + fx + "cyclonedx/gomod-app-1.6.json", "app=" + fx + "govulncheck/symbol.json"},
			wantCode: ExitOK,
			golden:   "sbom.table.golden",
		},
		{
			name:     "an SPDX SBOM merges with grype",
			args:     []string{"--vulns", fx + "sbom/osv", "app=" + fx + "spdx/syft-app.spdx.json", "app=" + fx + "grype/dir.json"},
			wantCode: ExitOK,
			golden:   "spdx.table.golden",
		},
		{
			name:     "an SBOM without a database",
			args:     []string{"--data", bad + "nodata", fx + "cyclonedx/gomod-app-1.6.json", fx + "trivy/fs.json"},
			wantCode: ExitUsage,
			golden:   "nodb.golden",
		},
		{
			name: "npm audit beside its lockfile, pip-audit, lockfiles known by their names",
			args: []string{"--vulns", fx + "ecosystems/osv", fx + "ecosystems/npm/npm-audit.json", fx + "ecosystems/npm/yarn.lock",
				fx + "ecosystems/pypi/pip-audit.json", fx + "ecosystems/pypi/requirements.txt", fx + "ecosystems/maven/pom.xml"},
			wantCode: ExitSkipped, // pip-audit skipped a dependency
			golden:   "ecosystems.table.golden",
		},
		{
			// npm audit names GHSA-35jh-r3h4-6jhm alone, the Trivy report
			// CVE-2021-23337 alone: only the database tells they are one.
			name:     "one vulnerability under two ids, without a database",
			args:     []string{"--data", bad + "nodata", "web=" + fx + "ecosystems/npm/npm-audit.json", "web=" + fx + "merge/lodash-cve.trivy.json"},
			wantCode: ExitOK,
			golden:   "twoids-nodb.table.golden",
		},
		{
			name:     "one vulnerability under two ids, with the database",
			args:     []string{"--vulns", fx + "ecosystems/osv", "web=" + fx + "ecosystems/npm/npm-audit.json", "web=" + fx + "merge/lodash-cve.trivy.json"},
			wantCode: ExitOK,
			golden:   "twoids.table.golden",
		},
		{
			name:     "wrong output format",
			args:     []string{"--format", "sarif", fx + "trivy/fs.json"},
			wantCode: ExitUsage,
			golden:   "badflag.golden",
		},
		{
			name:     "input format without an importer",
			args:     []string{"--input-format", "nessus", fx + "trivy/fs.json"},
			wantCode: ExitUsage,
			golden:   "badinputformat.golden",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"findings", "import"}, tt.args...)...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, errOut)
			}
			got := out + "--- stderr\n" + errOut
			golden(t, filepath.Join("testdata", "findings", tt.golden), []byte(got))
		})
	}
}

// TestFindingsImportGoBinary imports the test binary itself: a Go
// executable, detected as such and matched through its build information.
func TestFindingsImportGoBinary(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	code, out, errOut := run(t, "findings", "import", "--vulns", "../findings/testdata/sbom/osv", "--format", "json", exe)
	if code != ExitOK || errOut != "" {
		t.Fatalf("exit code %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, `"version": 1`) {
		t.Errorf("stdout = %q, want a findings document", out)
	}
}

// TestFindingsOwnJSON: the findings findings import writes as JSON read
// back as they were, by findings import and by analyze --findings, each
// finding in the service it names (none inferred, though its sources
// name what they scanned).
func TestFindingsOwnJSON(t *testing.T) {
	recorded := filepath.Join("..", "..", "examples", "shop", "recorded")
	code, first, errOut := run(t, "findings", "import", "--format", "json", filepath.Join(recorded, "findings"))
	if code != ExitOK {
		t.Fatalf("findings import: exit %d, %s", code, errOut)
	}
	merged := filepath.Join(t.TempDir(), "merged.json")
	if err := os.WriteFile(merged, []byte(first), 0o644); err != nil {
		t.Fatal(err)
	}
	code, again, errOut := run(t, "findings", "import", "--format", "json", merged)
	if code != ExitOK || errOut != "" {
		t.Fatalf("findings import of its own JSON: exit %d, stderr %q", code, errOut)
	}
	if again != first {
		t.Errorf("read back, the findings differ:\n%s", cmp.Diff(first, again))
	}
	code, out, errOut := run(t, "analyze", "--vulns", filepath.Join(recorded, "osv"), "--findings", merged, "--format", "json")
	if code != ExitOK {
		t.Fatalf("analyze --findings of evident's JSON: exit %d, %s", code, errOut)
	}
	for _, svc := range []string{"catalog", "gateway", "orders", "reporter"} {
		if !strings.Contains(out, `"service": "`+svc+`"`) {
			t.Errorf("analyze's report has no finding of %s", svc)
		}
	}
	if strings.Contains(errOut, "service ") {
		t.Errorf("analyze inferred a service for findings that name theirs: %s", errOut)
	}
}

func TestSplitServiceArg(t *testing.T) {
	dir := t.TempDir()
	withEq := filepath.Join(dir, "a=b.json")
	if err := os.WriteFile(withEq, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		arg, wantService, wantPath, wantErr string
	}{
		{arg: "api=report.json", wantService: "api", wantPath: "report.json"},
		{arg: "api,worker=report.json", wantService: "api,worker", wantPath: "report.json"},
		{arg: "report.json", wantPath: "report.json"},
		{arg: "reports/a=b.json", wantPath: "reports/a=b.json"},
		{arg: "=report.json", wantErr: "want SERVICE=PATH with both parts, or a path"},
		{arg: "api=", wantErr: "want SERVICE=PATH with both parts, or a path"},
		{arg: "", wantErr: "empty: want [SERVICE=]PATH"},
		{arg: withEq, wantPath: withEq},
		{arg: "api=" + withEq, wantService: "api", wantPath: withEq},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.arg, dir, "DIR"), func(t *testing.T) {
			in, err := splitServiceArg(tt.arg)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("splitServiceArg(%q) = %+v, %v; want error %q", tt.arg, in, err, tt.wantErr)
				}
				return
			}
			if err != nil || in.Service != tt.wantService || in.Path != tt.wantPath {
				t.Errorf("splitServiceArg(%q) = %q, %q, %v; want %q, %q", tt.arg, in.Service, in.Path, err, tt.wantService, tt.wantPath)
			}
		})
	}
}

// TestNPMAuditUploadReadsNoLocalLockfile: an uploaded npm audit report is
// never read with a lockfile of the server's working directory.
func TestNPMAuditUploadReadsNoLocalLockfile(t *testing.T) {
	report, err := os.ReadFile("../findings/testdata/ecosystems/npm/npm-audit.json")
	if err != nil {
		t.Fatal(err)
	}
	lock, err := os.ReadFile("../findings/testdata/ecosystems/npm/package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "package-lock.json"), lock, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	fs, errs := importUpload(strings.NewReader(string(report)), "upload", "auto", importParsers())
	if len(fs) != 0 || len(errs) == 0 {
		t.Errorf("got %d findings and errors %v; want none, and errors for the versions", len(fs), errs)
	}
}

// TestImportGzipped: a gzipped report, SBOM or lockfile is read as what
// it holds, as telemetry files are; one that holds no report says it was
// gunzipped.
func TestImportGzipped(t *testing.T) {
	const fx = "../findings/testdata/"
	tests := []struct {
		name, file string
	}{
		{"govulncheck", fx + "govulncheck/module.json"},
		{"trivy", fx + "trivy/fs.json"},
		{"grype", fx + "grype/dir.json"},
		{"cyclonedx with vulnerabilities", fx + "cyclonedx/trivy-fs.json"},
		{"lockfile known by its name", fx + "ecosystems/npm/yarn.lock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			plain := filepath.Join(dir, filepath.Base(tt.file))
			if err := os.WriteFile(plain, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			gz := filepath.Join(t.TempDir(), filepath.Base(tt.file)+".gz")
			writeGzip(t, gz, raw)
			imp := func(path string) (int, string, string) {
				return run(t, "findings", "import", "--vulns", fx+"ecosystems/osv", "--format", "json", "app="+path)
			}
			wantCode, want, wantErr := imp(plain)
			code, got, stderr := imp(gz)
			// The findings name the file they came from; a lockfile's,
			// what its name says it holds.
			got = strings.ReplaceAll(got, gz, plain)
			got = strings.ReplaceAll(got, strings.TrimSuffix(gz, ".gz"), plain)
			if code != wantCode || stderr != wantErr || !strings.Contains(want, `"findings"`) {
				t.Errorf("gzipped: exit %d, stderr %q; want exit %d, stderr %q", code, stderr, wantCode, wantErr)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("gzipped report differs (-plain +gzipped):\n%s", diff)
			}
		})
	}
	junk := filepath.Join(t.TempDir(), "report.json.gz")
	writeGzip(t, junk, []byte("hello\n"))
	code, _, stderr := run(t, "findings", "import", junk)
	if want := junk + " (gunzipped): unknown input format: not a report of "; code != ExitUsage || !strings.Contains(stderr, want) {
		t.Errorf("gzipped text: exit %d, stderr %q; want %d and %q", code, stderr, ExitUsage, want)
	}
}

// writeGzip writes b gzipped to path.
func writeGzip(t *testing.T, path string, b []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestImportUploadUnknownFormat: a ?format= that names no format says
// which ones there are.
func TestImportUploadUnknownFormat(t *testing.T) {
	_, errs := importUpload(strings.NewReader("{}"), "upload", "bogus", importParsers())
	want := `upload: format "bogus" is not one evident reads (want auto or one of ` + strings.Join(importFormats(), ", ") + ")"
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("errors %v, want %q", errs, want)
	}
}

// TestImportUploadEmpty: an empty body is said to be empty, not asked
// for a ?format=, which would not help.
func TestImportUploadEmpty(t *testing.T) {
	for _, body := range []string{"", "\n"} {
		_, errs := importUpload(strings.NewReader(body), "upload for gateway", "auto", importParsers())
		want := "upload for gateway: the request body is empty: send the report or SBOM as the body"
		if len(errs) != 1 || errs[0].Error() != want {
			t.Errorf("body %q: errors %v, want %q", body, errs, want)
		}
	}
}

// TestFindingsImportEvidentCycloneDX reads back evident's own CycloneDX
// report of the example shop: the services are the BOM's applications,
// not packages, so none is a skipped record, and the BOM claims no static
// reachability, so no finding says it.
func TestFindingsImportEvidentCycloneDX(t *testing.T) {
	rd := filepath.Join(shop, "recorded")
	bom := filepath.Join(t.TempDir(), "shop.cdx.json")
	code, _, errOut := run(t, "analyze", "--config", filepath.Join(shop, "evident.yaml"), "--vulns", filepath.Join(rd, "osv"),
		"--findings", filepath.Join(rd, "findings"), "--traces", filepath.Join(rd, "traces.jsonl"), "--profiles", filepath.Join(rd, "profiles"),
		"--format", "cyclonedx", "-o", bom)
	if code != ExitOK {
		t.Fatalf("analyze: exit %d: %s", code, errOut)
	}
	code, out, errOut := run(t, "findings", "import", "--format", "json", "--vulns", filepath.Join(rd, "osv"), "gateway="+bom)
	if code != ExitOK || errOut != "" {
		t.Errorf("findings import of evident's BOM: exit %d, stderr %q; want 0 and nothing", code, errOut)
	}
	var got struct {
		Findings []findings.Finding `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Findings) == 0 {
		t.Fatal("no findings read back")
	}
	for _, f := range got.Findings {
		if f.Service != "gateway" || f.Static != findings.StaticUnknown {
			t.Errorf("%s %s: service %q, static %q; want gateway and no claim", f.Package.PURL, f.Vulnerability.ID, f.Service, f.Static)
		}
	}
}

// TestOneVulnerabilityUnderTwoIDs: npm audit names the lodash flaw
// GHSA-35jh-r3h4-6jhm alone, a Trivy report its CVE-2021-23337 alone; with
// the record that says they are one, every command that merges reports
// makes them one finding (the other lodash flaw, GHSA-p6mc-m468-83gw,
// stays apart).
func TestOneVulnerabilityUnderTwoIDs(t *testing.T) {
	const fx = "../findings/testdata/"
	vulns := fx + "ecosystems/osv"
	reports := []string{"web=" + fx + "ecosystems/npm/npm-audit.json", "web=" + fx + "merge/lodash-cve.trivy.json"}
	// lodash lists the findings of lodash 4.17.15 as "ID [ALIASES]".
	lodash := func(t *testing.T, fs []findings.Finding) []string {
		t.Helper()
		var out []string
		for _, f := range fs {
			if f.Package.PURL == "pkg:npm/lodash@4.17.15" {
				out = append(out, fmt.Sprintf("%s %v", f.Vulnerability.ID, f.Vulnerability.Aliases))
			}
		}
		return out
	}
	fromJSON := func(t *testing.T, out string) []findings.Finding {
		t.Helper()
		var doc struct{ Findings []findings.Finding }
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return doc.Findings
	}
	tests := []struct {
		name     string
		findings func(t *testing.T) []findings.Finding
	}{
		{"findings import", func(t *testing.T) []findings.Finding {
			code, out, errOut := run(t, append([]string{"findings", "import", "--format", "json", "--vulns", vulns}, reports...)...)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			return fromJSON(t, out)
		}},
		{"analyze", func(t *testing.T) []findings.Finding {
			args := []string{"--data", t.TempDir(), "analyze", "--vulns", vulns, "--format", "json"}
			for _, r := range reports {
				args = append(args, "--findings", r)
			}
			code, out, errOut := run(t, args...)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			return fromJSON(t, out)
		}},
		{"serve --findings", func(t *testing.T) []findings.Finding {
			db, _, err := vulndb.Load(context.Background(), vulndb.Options{Sources: []string{vulns}})
			if err != nil {
				t.Fatal(err)
			}
			fs, err := serveFindings(serveFlags{findings: reports}, db, func(err error) { t.Error(err) }, func(string) {})
			if err != nil {
				t.Fatal(err)
			}
			return fs
		}},
	}
	want := []string{"GHSA-35jh-r3h4-6jhm [CVE-2021-23337]", "GHSA-p6mc-m468-83gw []"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(want, lodash(t, tt.findings(t))); diff != "" {
				t.Errorf("lodash findings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
