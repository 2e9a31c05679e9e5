package cli

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/report"
)

// TestAnalyzeJavaJFR analyzes JFR recordings of a real Java program that
// parses YAML with Debian's snakeyaml 1.33 (internal/attribution/testdata/java)
// against an SBOM naming that jar: CVE-2022-1471 is executed, found through
// the knowledge base's functions, also where the Maven Shade plugin
// relocated snakeyaml into com.example.orders.shaded (the record names
// org.yaml.snakeyaml; before relocations were recognised the verdict was
// not_observed). --packages reads a jar and a Python site-packages
// directory.
func TestAnalyzeJavaJFR(t *testing.T) {
	jar := filepath.Join(t.TempDir(), "snakeyaml-1.33.jar")
	if err := os.WriteFile(jar, makeTestJar(t), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, profile string
		packages      []string
	}{
		{"plain", "../attribution/testdata/java/orders.jfr", []string{"--packages", jar, "--packages", "../attribution/testdata/python/dist-packages"}},
		{"shaded", "../attribution/testdata/java/orders-shaded.jfr.gz", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"analyze", "--format", "json",
				"--vulns", "../vulndb/testdata/ghsa",
				"--findings", "orders=testdata/analyze/java/sbom.cdx.json",
				"--profiles", "orders=" + tc.profile}, tc.packages...)
			f := analyzeOne(t, "GHSA-mjmj-j48q-9wg2", args...)
			r := f.Reachability
			if r.Verdict != assess.Executed || r.Basis != assess.BasisSymbol || !strings.Contains(r.Reason, "org.yaml.snakeyaml.constructor.Constructor$Construct") {
				t.Errorf("finding %s: %s at %s (%s), want executed through Constructor$Construct*", f.Vulnerability.ID, r.Verdict, r.Basis, r.Reason)
			}
		})
	}
}

// TestAnalyzePythonNamespace analyzes austin's samples of a real Python
// program that signs blob URLs with Debian's azure-storage-blob
// (internal/attribution/testdata/python/azure) against a pip-audit report
// naming azure-storage-blob, written for the test at 12.12.0, the last
// release before the fix of CVE-2022-30187 (the program ran Debian's
// 12.15.0b1; the verdict rests on whose code ran, not on the version). Its
// modules live in the namespace package azure, which many distributions
// share, and without installed metadata the built-in names find the
// distribution. The record names no function, so the package's code
// running makes it loaded; it was not_observed when the frames were taken
// for a distribution "azure".
//
// The same samples with the file names py-spy gives (what the Pyroscope
// Python SDK sends) where pip installed the wheels, which ship no
// __init__.py in azure/ nor azure/storage/: py-spy drops the directories
// up to the outermost package, and azure.storage.blob's files show as
// "blob/_shared_access_signature.py". The pip-audit report's
// distribution tells the namespace, with no installed metadata; before,
// the frames went to a distribution "blob", and the finding was
// not_observed.
func TestAnalyzePythonNamespace(t *testing.T) {
	for _, tc := range []struct{ name, profile string }{
		{"austin", "../attribution/testdata/python/azure.folded.gz"},
		{"py-spy short names", pySpyShortNames(t, "../attribution/testdata/python/azure.folded.gz")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := analyzeOne(t, "GHSA-64x4-9hc6-r2h6", "analyze", "--format", "json",
				"--vulns", "../vulndb/testdata/ghsa",
				"--findings", "blobs=testdata/analyze/python/blobs.pip-audit.json",
				"--profiles", "blobs="+tc.profile)
			if f.Reachability.Verdict != assess.Loaded || f.Reachability.Basis != assess.BasisPackage ||
				!strings.Contains(f.Reachability.Reason, "code of azure-storage-blob ran (azure.storage.blob.") {
				t.Errorf("finding %s: %s at %s (%s), want loaded by azure.storage.blob's code", f.Vulnerability.ID, f.Reachability.Verdict, f.Reachability.Basis, f.Reachability.Reason)
			}
		})
	}
}

// pySpyShortNames writes austin's gzipped samples in the file with the
// file names shortened as py-spy does (protocols.md §8.3) where pip
// installed the azure wheels: the path below the outermost directory
// with an __init__.py, which azure/ and azure/storage/ lack; the
// standard library's and the program's below their directories.
func pySpyShortNames(t *testing.T, file string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	short := strings.NewReplacer(
		"/usr/lib/python3/dist-packages/azure/storage/", "",
		"/usr/lib/python3/dist-packages/azure/", "",
		"/usr/lib/python3/dist-packages/", "",
		"/usr/lib/python3.11/", "",
		"/srv/blobs-py/", "",
	).Replace(string(text))
	if strings.Contains(short, "/usr/lib") || !strings.Contains(short, ";blob/_shared_access_signature.py:") {
		t.Fatalf("the samples' file names were not all shortened:\n%.2000s", short)
	}
	out := filepath.Join(t.TempDir(), "azure-py-spy.folded")
	if err := os.WriteFile(out, []byte(short), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// analyzeOne runs the analyze command args, which write a JSON report,
// and returns its one finding, which must be of vulnerability id.
func analyzeOne(t *testing.T, id string, args ...string) report.JSONFinding {
	t.Helper()
	code, stdout, stderr := run(t, args...)
	if code != ExitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	var rep struct{ Findings []report.JSONFinding }
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Vulnerability.ID != id {
		t.Fatalf("%d findings, want %s alone:\n%s", len(rep.Findings), id, stdout)
	}
	return rep.Findings[0]
}

func TestAnalyzePackagesErrors(t *testing.T) {
	empty := t.TempDir()
	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(empty, "nope.jar"), "--packages: stat"},
		{"not a jar", "testdata/analyze/java/sbom.cdx.json", "not a jar or a directory"},
		{"nothing installed", empty, "no jars, no *.dist-info or *.egg-info"},
		{"service named", "orders=" + empty, "a path only, not orders=: the packages serve every service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, "analyze", "--vulns", "../vulndb/testdata/ghsa",
				"--findings", "orders=testdata/analyze/java/sbom.cdx.json", "--packages", tt.path)
			if code != ExitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, ExitUsage, tt.want)
			}
		})
	}
	// A broken jar among good inputs is skipped and named.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "broken.jar"), []byte("not a zip"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "analyze", "--vulns", "../vulndb/testdata/ghsa",
		"--findings", "orders=testdata/analyze/java/sbom.cdx.json", "--packages", dir)
	if code != ExitSkipped || !strings.Contains(stderr, "broken.jar") {
		t.Errorf("exit %d, stderr %q; want %d naming broken.jar", code, stderr, ExitSkipped)
	}
}

// makeTestJar writes a jar as Maven builds it: pom.properties and classes.
func makeTestJar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range map[string]string{
		"META-INF/maven/org.yaml/snakeyaml/pom.properties": "groupId=org.yaml\nartifactId=snakeyaml\nversion=1.33\n",
		"org/yaml/snakeyaml/constructor/Constructor.class": "",
	} {
		w, err := zw.Create(name)
		if err == nil {
			_, err = w.Write([]byte(body))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSBOMComponents checks that every Maven and PyPI component of an
// SBOM, vulnerable or not, reaches attribution: the Maven ones its
// package prefixes, the PyPI ones the modules of namespace packages they
// ship, where the configuration names none.
func TestSBOMComponents(t *testing.T) {
	db, _, err := openVulnDB(context.Background(), &globals{}, []string{"../vulndb/testdata/ghsa"}, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	sbom := &sbomComponents{Matcher: db}
	inputs, err := importFindings([]string{"orders=testdata/analyze/java/sbom.cdx.json", "reports=../findings/testdata/ecosystems/pypi/syft.cdx.json"},
		sbom, func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	var fs []findings.Finding
	for _, in := range inputs {
		fs = append(fs, in.fs...)
	}
	cfg := attributionConfig(fs, sbom.names, attribution.Config{})
	for pkg, ga := range map[string]string{"org.yaml.snakeyaml": "org.yaml:snakeyaml", "org.apache.commons.text": "org.apache.commons:commons-text"} {
		if cfg.JavaPackages[pkg] != ga {
			t.Errorf("JavaPackages[%s] = %q, want %q (all: %v)", pkg, cfg.JavaPackages[pkg], ga, cfg.JavaPackages)
		}
	}
	// syft's SBOM of a requirements file: MarkupSafe has no finding.
	if !slices.Contains(sbom.names[osv.EcosystemPyPI], "markupsafe") {
		t.Errorf("PyPI components noted = %v, want markupsafe among them", sbom.names[osv.EcosystemPyPI])
	}
	components := map[string][]string{osv.EcosystemPyPI: {"azure-core", "azure-storage-blob"}}
	cfg = attributionConfig(nil, components, attribution.Config{PythonDists: map[string]string{"azure.storage.blob": "my-blob-fork"}})
	want := map[string]string{"azure.core": "azure-core", "azure.storage.blob": "my-blob-fork"}
	if diff := cmp.Diff(want, cfg.PythonDists); diff != "" {
		t.Errorf("PythonDists of PyPI components (-want +got):\n%s", diff)
	}
}
