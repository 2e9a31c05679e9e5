package knowledge

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// loadTestdata loads testdata/<name> and fails the test on any error.
func loadTestdata(t *testing.T, name string) *Base {
	t.Helper()
	b, err := loadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("loadFile(%s): %v", name, err)
	}
	return b
}

// badFiles maps each testdata/*.bad.yaml to a substring of its error.
var badFiles = []struct {
	file string
	want string
}{
	{"empty.bad.yaml", "knowledge base testdata/empty.bad.yaml: empty file"},
	{"not-yaml.bad.yaml", "knowledge base testdata/not-yaml.bad.yaml: invalid knowledge base: yaml:"},
	{"unknown-top-key.bad.yaml", "field entrys not found"},
	{"no-version.bad.yaml", "testdata/no-version.bad.yaml: version is missing (want 1)"},
	{"version-2.bad.yaml", "testdata/version-2.bad.yaml: version 2 is not supported (want 1)"},
	{"two-documents.bad.yaml", "testdata/two-documents.bad.yaml: more than one YAML document"},
	{"entries-not-list.bad.yaml", "knowledge base testdata/entries-not-list.bad.yaml:3: entries is not a list"},
	{"entry-not-mapping.bad.yaml", "testdata/entry-not-mapping.bad.yaml:3: entry 0: line 3: entry is not a mapping"},
	{"missing-id.bad.yaml", "testdata/missing-id.bad.yaml:3: entry 0: id is missing"},
	{"id-space.bad.yaml", `entry 0 (CVE 2000 0001): id "CVE 2000 0001" has white space`},
	{"unknown-entry-key.bad.yaml", `testdata/unknown-entry-key.bad.yaml:3: entry 0 (CVE-2000-0001): line 6: entry: unknown field "severity"`},
	{"unknown-function-key.bad.yaml", `entry 0 (CVE-2000-0001): line 9: functions[0]: unknown field "line"`},
	{"missing-ecosystem.bad.yaml", "entry 0 (CVE-2000-0001): ecosystem is missing (one of Go, npm, PyPI, Maven"},
	{"bad-ecosystem.bad.yaml", `entry 0 (CVE-2000-0001): ecosystem "NPM" is not an OSV ecosystem`},
	{"missing-package.bad.yaml", "entry 0 (CVE-2000-0001): package is missing"},
	{"no-functions.bad.yaml", "entry 0 (CVE-2000-0001): functions is empty"},
	{"missing-symbol.bad.yaml", "entry 0 (CVE-2000-0001): functions[0]: symbol is missing"},
	{"symbol-signature.bad.yaml", `entry 0 (CVE-2000-0001): functions[0]: symbol "Parser.parse(String)" is not a bare name`},
	{"missing-reference.bad.yaml", "entry 0 (CVE-2000-0001): functions[0]: reference is missing"},
	{"file-not-npm.bad.yaml", `entry 0 (CVE-2000-0001): functions[0]: file "Parser.java": only npm functions name their file`},
	{"file-outside-package.bad.yaml", `entry 0 (CVE-2000-0001): functions[0]: file "../jws/index.js" is not a clean path inside the package`},
	{"file-not-clean.bad.yaml", `entry 0 (CVE-2000-0001): functions[0]: file "./verify.js" is not a clean path inside the package`},
	{"file-without-package.bad.yaml", `entry 0 (CVE-2000-0001): functions[0]: file "verify.js" without the package that holds it`},
	{"http-reference.bad.yaml", `entry 0 (CVE-2000-0001): functions[0]: reference "http://example.com/advisory" is not an https URL`},
	{"relative-reference.bad.yaml", `functions[0]: reference "advisories/CVE-2000-0001" is not an https URL`},
	{"empty-alias.bad.yaml", "entry 0 (CVE-2000-0001): aliases[1] is empty"},
	{"alias-repeats-id.bad.yaml", `entry 0 (CVE-2000-0001): aliases[0] "cve-2000-0001" repeats the id or another alias`},
	{"aliases-not-list.bad.yaml", "entry 0 (CVE-2000-0001): yaml: unmarshal errors:\n  line 5: cannot unmarshal !!map into []string"},
	{"duplicate.bad.yaml", "testdata/duplicate.bad.yaml:9: entry 1 (cve-2000-0001): id cve-2000-0001 and package left-pad repeat entry 0"},
	{"pypi-duplicate.bad.yaml", "entry 1 (CVE-2000-0001): id CVE-2000-0001 and package Py_Example repeat entry 0"},
	{"duplicate-key.bad.yaml", `mapping key "id" already defined`},
}

func TestLoadBad(t *testing.T) {
	for _, tt := range badFiles {
		t.Run(strings.TrimSuffix(tt.file, ".bad.yaml"), func(t *testing.T) {
			_, err := loadFile(filepath.Join("testdata", tt.file))
			if err == nil {
				t.Fatalf("loadFile(%s) = nil error, want one containing %q", tt.file, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("loadFile(%s) = %v, want an error wrapping ErrInvalid", tt.file, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("loadFile(%s) = %q, want it to contain %q", tt.file, err, tt.want)
			}
		})
	}
}

// TestLoadBadFilesCovered keeps every *.bad.yaml in the table of TestLoadBad.
func TestLoadBadFilesCovered(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.bad.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	covered := make(map[string]bool, len(badFiles))
	for _, tt := range badFiles {
		covered[tt.file] = true
	}
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("%s is not in badFiles: give it an expected error", f)
		}
	}
}

func TestLoadKeepsGoodEntries(t *testing.T) {
	b, err := loadFile(filepath.Join("testdata", "mixed.yaml"))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("loadFile(mixed.yaml) error = %v, want ErrInvalid", err)
	}
	for _, want := range []string{
		`testdata/mixed.yaml:4: entry 0 (CVE-2000-0001): functions[0]: reference "ftp://example.com/advisory" is not an https URL`,
		`testdata/mixed.yaml:17: entry 2 (CVE-2000-0003): ecosystem "Cobol" is not an OSV ecosystem`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	// Each skipped entry is an EntryError of its own, with its place.
	var places []string
	for _, e := range EntryErrors(err) {
		places = append(places, e.Place)
	}
	if want := []string{"testdata/mixed.yaml:4", "testdata/mixed.yaml:17"}; !slices.Equal(places, want) {
		t.Errorf("EntryErrors places = %v, want %v", places, want)
	}
	if got := b.Len(); got != 1 {
		t.Fatalf("Len() = %d, want 1", got)
	}
	if got := b.Lookup("GHSA-aaaa-bbbb-cccc"); len(got) != 1 || got[0].ID != "CVE-2000-0002" {
		t.Errorf("Lookup(GHSA-aaaa-bbbb-cccc) = %+v, want CVE-2000-0002", got)
	}
}

func TestLoadEmpty(t *testing.T) {
	for _, doc := range []string{"version: 1", "version: 1\nentries:", "version: 1\nentries: []"} {
		b, err := Load(strings.NewReader(doc), "empty.yaml")
		if err != nil || b.Len() != 0 {
			t.Errorf("Load(%q) = %d entries, %v; want 0, nil", doc, b.Len(), err)
		}
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := loadFile(filepath.Join("testdata", "no-such-file.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("loadFile(no-such-file.yaml) = %v, want os.ErrNotExist", err)
	}
}

func TestLoad(t *testing.T) {
	b := loadTestdata(t, "base.yaml")
	got := b.Lookup("CVE-2000-0001")
	want := []Entry{{
		ID:        "CVE-2000-0001",
		Aliases:   []string{"GHSA-aaaa-bbbb-cccc"},
		Summary:   "an example",
		Ecosystem: "Maven",
		Package:   "org.example:lib",
		Functions: []Function{
			{Package: "org.example.lib", Symbol: "Parser.parse", Reference: "https://example.com/fix"},
			{Package: "org.example.lib", Symbol: "Outer$Inner.run", Reference: "https://example.com/fix"},
		},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Lookup(CVE-2000-0001) mismatch (-want +got):\n%s", diff)
	}
}

func TestLookup(t *testing.T) {
	b := loadTestdata(t, "base.yaml")
	tests := []struct {
		name string
		ids  []string
		want []string // ID/package of the entries, in order
	}{
		{"id", []string{"CVE-2000-0001"}, []string{"CVE-2000-0001/org.example:lib"}},
		{"id lower case", []string{"cve-2000-0001"}, []string{"CVE-2000-0001/org.example:lib"}},
		{"alias", []string{"GHSA-aaaa-bbbb-cccc"}, []string{"CVE-2000-0001/org.example:lib"}},
		{"alias upper case", []string{"GHSA-AAAA-BBBB-CCCC"}, []string{"CVE-2000-0001/org.example:lib"}},
		{"PYSEC alias", []string{"PYSEC-2000-1"}, []string{"CVE-2000-0002/pyexample"}},
		{"alias of one, id of another", []string{"ghsa-dddd-eeee-ffff"}, []string{"CVE-2000-0002/pyexample", "GHSA-dddd-eeee-ffff/jsexample"}},
		{"id and alias of one entry, once", []string{"CVE-2000-0002", "PYSEC-2000-1"}, []string{"CVE-2000-0002/pyexample"}},
		{"several, file order", []string{"GHSA-dddd-eeee-ffff", "CVE-2000-0001"}, []string{"CVE-2000-0001/org.example:lib", "CVE-2000-0002/pyexample", "GHSA-dddd-eeee-ffff/jsexample"}},
		{"unknown", []string{"CVE-1999-0001"}, nil},
		{"unknown and known", []string{"CVE-1999-0001", "CVE-2000-0001"}, []string{"CVE-2000-0001/org.example:lib"}},
		{"none", nil, nil},
		{"empty id", []string{""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range b.Lookup(tt.ids...) {
				got = append(got, e.ID+"/"+e.Package)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Lookup(%q) mismatch (-want +got):\n%s", tt.ids, diff)
			}
		})
	}
}

func TestLookupReturnsCopies(t *testing.T) {
	b := loadTestdata(t, "base.yaml")
	got := b.Lookup("CVE-2000-0001")
	got[0].Aliases[0] = "changed"
	got[0].Functions[0].Symbol = "changed"
	again := b.Lookup("CVE-2000-0001")
	if again[0].Aliases[0] != "GHSA-aaaa-bbbb-cccc" || again[0].Functions[0].Symbol != "Parser.parse" {
		t.Errorf("a change to a Lookup result reached the base: %+v", again[0])
	}
}

func TestNilBase(t *testing.T) {
	var b *Base
	if got := b.Len(); got != 0 {
		t.Errorf("Len() = %d, want 0", got)
	}
	if got := b.Lookup("CVE-2000-0001"); got != nil {
		t.Errorf("Lookup() = %v, want nil", got)
	}
	user := loadTestdata(t, "user.yaml")
	if got := b.Merge(user).Len(); got != 2 {
		t.Errorf("nil.Merge(user).Len() = %d, want 2", got)
	}
	if got := user.Merge(nil).Len(); got != 2 {
		t.Errorf("user.Merge(nil).Len() = %d, want 2", got)
	}
}

func TestMerge(t *testing.T) {
	base := loadTestdata(t, "base.yaml")
	user := loadTestdata(t, "user.yaml")
	merged := base.Merge(user)

	var got []string
	for _, e := range merged.entries {
		got = append(got, e.ID+"/"+e.Package+"/"+e.Functions[0].Symbol)
	}
	want := []string{
		"CVE-2000-0001/org.example:lib/Parser.parse",
		"cve-2000-0002/PyExample/Loader.load_all", // replaced in place: same id (any case) and PyPI package (normalised)
		"GHSA-dddd-eeee-ffff/jsexample/merge",
		"CVE-2000-0009/example.com/mod/Parser.Parse", // added
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged entries mismatch (-want +got):\n%s", diff)
	}
	// The replacing entry has no aliases, so the replaced one's are gone.
	if got := merged.Lookup("PYSEC-2000-1"); got != nil {
		t.Errorf("Lookup(PYSEC-2000-1) = %+v, want nil: the user's entry replaced it", got)
	}
	if got := merged.Lookup("CVE-2000-0009"); len(got) != 1 {
		t.Errorf("Lookup(CVE-2000-0009) = %+v, want the user's entry", got)
	}
	// Neither input changes.
	if got := base.Lookup("PYSEC-2000-1"); len(got) != 1 || got[0].Functions[0].Symbol != "load" {
		t.Errorf("base changed by Merge: %+v", got)
	}
	if base.Len() != 3 || user.Len() != 2 {
		t.Errorf("Len() of inputs = %d, %d, want 3, 2", base.Len(), user.Len())
	}
}

// TestDefault loads the shipped file: it must load without any error, and
// every entry must pass the rules again after a round trip through Load.
func TestDefault(t *testing.T) {
	b, err := Default()
	if err != nil {
		t.Fatalf("Default(): %v", err)
	}
	if b.Len() == 0 {
		t.Fatal("Default() is empty")
	}
	for i, e := range b.entries {
		if err := validate(e); err != nil {
			t.Errorf("entry %d (%s): %v", i, e.ID, err)
		}
		if got := b.Lookup(e.ID); len(got) == 0 {
			t.Errorf("entry %d: Lookup(%s) found nothing", i, e.ID)
		}
		for _, a := range e.Aliases {
			if got := b.Lookup(a); len(got) == 0 {
				t.Errorf("entry %d (%s): Lookup(%s) found nothing", i, e.ID, a)
			}
		}
	}
	// Log4Shell is the first thing anyone will look for.
	got := b.Lookup("GHSA-jfh8-c2jp-5v3q")
	if len(got) != 1 || got[0].ID != "CVE-2021-44228" || got[0].Package != "org.apache.logging.log4j:log4j-core" {
		t.Errorf("Lookup(GHSA-jfh8-c2jp-5v3q) = %+v, want the log4j-core entry of CVE-2021-44228", got)
	}
}

// stableCommit matches a commit link with a full hash, on GitHub or
// Bitbucket; other references must be advisory pages, which do not move.
var stableCommit = regexp.MustCompile(`^https://(github\.com/[^/]+/[^/]+/commit|bitbucket\.org/[^/]+/[^/]+/commits)/[0-9a-f]{40}$`)

// TestDefaultReferences holds the shipped file to docs/knowledge.md: every
// entry says what it is, and every reference is a full-hash commit or an
// advisory, never a branch that moves.
func TestDefaultReferences(t *testing.T) {
	b, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range b.entries {
		if e.Summary == "" {
			t.Errorf("entry %d (%s): no summary", i, e.ID)
		}
		for j, f := range e.Functions {
			ref := f.Reference
			switch {
			case strings.Contains(ref, "/commit/") || strings.Contains(ref, "/commits/"):
				if !stableCommit.MatchString(ref) {
					t.Errorf("entry %d (%s): functions[%d]: %s is not a commit link with a full hash", i, e.ID, j, ref)
				}
			case strings.HasPrefix(ref, "https://github.com/advisories/GHSA-"),
				strings.HasPrefix(ref, "https://nvd.nist.gov/vuln/detail/CVE-"):
			default:
				t.Errorf("entry %d (%s): functions[%d]: %s is neither a commit nor an advisory", i, e.ID, j, ref)
			}
		}
	}
}

func TestLoadShippedFileByName(t *testing.T) {
	data, err := os.ReadFile("functions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, shipped) {
		t.Fatal("embedded functions.yaml differs from the file on disk")
	}
}

func FuzzLoad(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	files = append(files, "functions.yaml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Load(bytes.NewReader(data), "fuzz.yaml")
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("Load() error %v does not wrap ErrInvalid", err)
		}
		if err != nil && b == nil {
			return
		}
		// Whatever was accepted is valid and can be found by its id.
		for i, e := range b.entries {
			if err := validate(e); err != nil {
				t.Errorf("accepted entry %d is invalid: %v", i, err)
			}
			if len(b.Lookup(e.ID)) == 0 {
				t.Errorf("accepted entry %d: Lookup(%q) found nothing", i, e.ID)
			}
		}
		if got := b.Merge(b).Len(); got != b.Len() {
			t.Errorf("b.Merge(b).Len() = %d, want %d", got, b.Len())
		}
	})
}

// BenchmarkLookup looks up the IDs of one OSV record in the shipped base:
// a miss, the common case (most records have no entry), and a hit by
// alias.
func BenchmarkLookup(b *testing.B) {
	base, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		ids  []string
		want int
	}{
		{"miss", []string{"GHSA-xxxx-xxxx-xxxx", "CVE-1999-0001"}, 0},
		{"hit", []string{"GHSA-jfh8-c2jp-5v3q", "CVE-2021-44228"}, 1},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if got := base.Lookup(tt.ids...); len(got) < tt.want || (tt.want == 0 && got != nil) {
					b.Fatalf("Lookup(%v) = %+v, want %d entries or more", tt.ids, got, tt.want)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
		})
	}
}

func BenchmarkDefault(b *testing.B) {
	b.ReportAllocs()
	var n int
	for b.Loop() {
		base, err := Default()
		if err != nil {
			b.Fatal(err)
		}
		n = base.Len()
	}
	b.ReportMetric(float64(n), "entries")
}

// loadFile reads a knowledge base file; see Load.
func loadFile(path string) (*Base, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load knowledge base: %w", err)
	}
	defer f.Close()
	return Load(f, path)
}
