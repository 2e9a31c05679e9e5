package findings

import (
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// buildGo builds the main package in dir with the local toolchain into a
// temporary directory, from the module cache only (no network), and
// returns the executable's path. It skips the test when the build cannot
// run here.
func buildGo(t *testing.T, dir string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build %s: %v", dir, err)
	}
	out := filepath.Join(t.TempDir(), "app")
	cmd := exec.Command(gobin, "build", "-buildvcs=false", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	// -mod=mod lets go.sum gain the lines of modules that are already in
	// the module cache; GOPROXY=off keeps the build offline.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOSUMDB=off", "GOWORK=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot build %s offline (its modules must be in the module cache): %v\n%s", dir, err, b)
	}
	return out
}

// copyDir copies the regular files of src (one level) into a new
// temporary directory, so that a build never writes into testdata.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// writeFiles writes files (path relative to dir → content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// replacedModule is a program whose go.mod replaces gopkg.in/yaml.v2
// v2.2.2 by v2.2.7 and a local module by a directory.
var replacedModule = map[string]string{
	"go.mod": `module example.com/replaced

go 1.22

require (
	example.com/local v0.0.0
	gopkg.in/yaml.v2 v2.2.2
)

replace gopkg.in/yaml.v2 => gopkg.in/yaml.v2 v2.2.7

replace example.com/local => ./local
`,
	"main.go": `package main

import (
	"fmt"

	"example.com/local"
	"gopkg.in/yaml.v2"
)

func main() {
	var v any
	fmt.Println(yaml.Unmarshal([]byte("a: 1"), &v), local.N)
}
`,
	"local/go.mod":   "module example.com/local\n\ngo 1.22\n",
	"local/local.go": "// Package local is a module that the program takes from a directory.\npackage local\n\n// N is a number.\nconst N = 1\n",
}

func TestParseGoBinary(t *testing.T) {
	db := testDB(t)
	replaced := t.TempDir()
	writeFiles(t, replaced, replacedModule)
	tests := []struct {
		name   string
		dir    string
		golden string
	}{
		{name: "vulnerable app", dir: copyDir(t, filepath.Join("testdata", "govulncheck", "app")), golden: "gobinary/vulnapp.golden"},
		{name: "replacements", dir: replaced, golden: "gobinary/replaced.golden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bin := buildGo(t, tc.dir)
			f, err := os.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fs, errs := ParseGoBinary(f, strings.TrimSuffix(filepath.Base(tc.golden), ".golden"), db)
			if diff := cmp.Diff(fs, Merge(fs)); diff != "" {
				t.Errorf("output is not merged:\n%s", diff)
			}
			// The standard library is the local toolchain's, so its
			// findings depend on where the test runs; the golden file
			// holds the modules'.
			var mods []Finding
			for _, x := range fs {
				if x.Package.Name != goStdlib {
					mods = append(mods, x)
				}
			}
			checkGolden(t, filepath.Join("testdata", tc.golden), marshalResult(t, mods, errs))
		})
	}
}

func TestGoBinaryComponents(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, replacedModule)
	bin := buildGo(t, dir)
	got, errs := goBinaryComponents(bin)
	var gotErrs []string
	for _, err := range errs {
		gotErrs = append(gotErrs, strings.TrimPrefix(err.Error(), bin))
	}
	wantErrs := []string{": example.com/local: replaced by directory ./local, which has no version to match"}
	if diff := cmp.Diff(wantErrs, gotErrs); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
	goVersion, err := goToolchainVersion(runtimeGoVersion(t, bin))
	if err != nil {
		t.Fatal(err)
	}
	std, err := newPackage("Go", goStdlib, goVersion, "")
	if err != nil {
		t.Fatal(err)
	}
	// The main module is a development build and has no version: it is
	// not a component.
	want := []Component{
		{Ref: "gopkg.in/yaml.v2", Package: Package{PURL: "pkg:golang/gopkg.in/yaml.v2@v2.2.7", Ecosystem: "Go", Name: "gopkg.in/yaml.v2", Version: "v2.2.7"}},
		{Ref: goStdlib, Package: std},
	}
	for i := range want {
		want[i].GOOS, want[i].GOARCH = got[0].GOOS, got[0].GOARCH
	}
	if got[0].GOOS == "" || got[0].GOARCH == "" {
		t.Errorf("no platform in %+v", got[0])
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("components mismatch (-want +got):\n%s", diff)
	}
}

// runtimeGoVersion is the Go version that built bin, as `go version`
// prints it.
func runtimeGoVersion(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command("go", "version", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	_, v, _ := strings.Cut(strings.TrimSpace(string(out)), ": ")
	return v
}

func TestReadGoBinaryNotABinary(t *testing.T) {
	p := filepath.Join("testdata", "cyclonedx", "gomod-app-1.6.json")
	fs, errs := readGoBinary(p, testDB(t))
	if len(fs) != 0 || len(errs) != 1 {
		t.Fatalf("got %d findings and errors %v, want one error", len(fs), errs)
	}
	if !errors.Is(errs[0], ErrWrongFormat) || !strings.HasPrefix(errs[0].Error(), p+": no Go build information: ") {
		t.Errorf("got %q, want an ErrWrongFormat naming %s", errs[0], p)
	}
}

func TestGoToolchainVersion(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "go1.26.8", want: "go1.26.8"},
		{in: "go1.26.8 X:boringcrypto", want: "go1.26.8"},
		{in: "go1.27rc1", want: "go1.27rc1"},
		{in: "devel go1.27-4e7a3b2c Tue Nov 24 09:00:00 2026 +0000", wantErr: `go version "devel go1.27-4e7a3b2c Tue Nov 24 09:00:00 2026 +0000" is not a release`},
		{in: "", wantErr: `go version "" is not a release`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := goToolchainVersion(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v, want %q", got, err, tc.want)
			}
		})
	}
}

// TestGoModAgreesWithBinary: a go.mod, read as OSV-Scanner reads it (the
// same extractor), finds the vulnerabilities that the executable built
// from it has in its modules (gobinary/vulnapp.golden, TestParseGoBinary's
// output on that executable); the standard library is the executable's
// only (ParseLockfile).
func TestGoModAgreesWithBinary(t *testing.T) {
	mod, err := os.Open(filepath.Join("testdata", "govulncheck", "app", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close()
	fs, errs := ParseLockfile(mod, "go.mod", testDB(t))
	for _, err := range errs {
		t.Error(err)
	}
	got := map[string]bool{}
	for _, x := range fs {
		if x.Package.Name == goStdlib {
			t.Errorf("a finding in the standard library %s, whose version go.mod does not tell: %s", x.Package.Version, x.Vulnerability.ID)
		}
		got[x.Package.PURL+" "+x.Vulnerability.ID] = true
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "gobinary", "vulnapp.golden"))
	if err != nil {
		t.Fatal(err)
	}
	var bin struct {
		Findings []Finding `json:"findings"`
	}
	if err := json.Unmarshal(golden, &bin); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, x := range bin.Findings {
		want[x.Package.PURL+" "+x.Vulnerability.ID] = true
	}
	if len(want) == 0 {
		t.Fatal("vulnapp.golden: no finding")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-executable +go.mod):\n%s", diff)
	}
	// The standard library of Go 1.19.0 has GO-2023-1570 (fixed in
	// 1.19.6), but the go line does not say which Go built the service.
	for _, line := range []string{"go 1.19", "go 1.21\ntoolchain go1.19.2"} {
		fs, errs := ParseLockfile(strings.NewReader("module example.com/old\n\n"+line+"\n"), "go.mod", testDB(t))
		if len(fs) != 0 || len(errs) != 0 {
			t.Errorf("%q: %d findings, errors %v; want none", line, len(fs), errs)
		}
	}
}

// readGoBinary reads the build information of the Go executable at path
// and looks its modules up in m, as ParseGoBinary does.
func readGoBinary(path string, m Matcher) ([]Finding, []error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: no Go build information: %v: %w", path, err, ErrWrongFormat)}
	}
	return goBinaryFindings(bi, path, m)
}

// goBinaryComponents returns the modules in the build information of the
// Go executable at path: the main module (when it has a version), the
// dependencies as they were built (replacements applied), and "stdlib".
func goBinaryComponents(path string) ([]Component, []error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: no Go build information: %v: %w", path, err, ErrWrongFormat)}
	}
	return goBuildComponents(bi, path)
}
