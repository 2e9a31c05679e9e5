package vulndb

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/evidentsec/evident/internal/osv"
)

// rec is a compact description of a one-package record for tests.
type rec struct {
	id, eco, name, typ string
	events             []osv.Event
	versions           []string
	withdrawn          bool
}

func (r rec) entry() osv.Entry {
	e := osv.Entry{ID: r.id, Affected: []osv.Affected{{
		Package:  osv.Package{Ecosystem: r.eco, Name: r.name},
		Versions: r.versions,
	}}}
	if r.events != nil {
		typ := r.typ
		if typ == "" {
			typ = osv.RangeEcosystem
		}
		rg := osv.Range{Type: typ, Events: r.events}
		if typ == osv.RangeGit {
			rg.Repo = "https://github.com/example/repo"
		}
		e.Affected[0].Ranges = []osv.Range{rg}
	}
	if r.withdrawn {
		e.Withdrawn = mustTime("2024-08-21T16:25:56Z")
	}
	return e
}

// writeRecords writes entries as <id>.json files into a new directory.
func writeRecords(t testing.TB, entries ...any) string {
	t.Helper()
	dir := t.TempDir()
	for i, e := range entries {
		var data []byte
		name := ""
		switch e := e.(type) {
		case osv.Entry:
			var err error
			if data, err = json.Marshal(e); err != nil {
				t.Fatal(err)
			}
			name = e.ID
		case string:
			data = []byte(e)
		}
		if name == "" {
			name = "raw-" + string(rune('a'+i))
		}
		if err := os.WriteFile(filepath.Join(dir, name+".json"), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loadDir loads a directory and fails the test on any problem.
func loadDir(t testing.TB, opts Options, dir string) *DB {
	t.Helper()
	opts.Sources = append(opts.Sources, dir)
	db, problems, err := Load(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("unexpected problem: %v", p)
	}
	return db
}

func intro(v string) osv.Event { return osv.Event{Introduced: v} }
func fixed(v string) osv.Event { return osv.Event{Fixed: v} }
func last(v string) osv.Event  { return osv.Event{LastAffected: v} }
func limit(v string) osv.Event { return osv.Event{Limit: v} }

func TestAffecting(t *testing.T) {
	stdlib := rec{id: "GO-2022-0969", eco: "Go", name: "stdlib", typ: osv.RangeSemver,
		events: []osv.Event{intro("0"), fixed("1.18.6"), intro("1.19.0-0"), fixed("1.19.1")}}
	xnet := rec{id: "GO-2022-0969", eco: "Go", name: "golang.org/x/net", typ: osv.RangeSemver,
		events: []osv.Event{intro("0"), fixed("0.0.0-20220906165146-f3363e06e74c")}}
	docker := rec{id: "GO-2021-0001", eco: "Go", name: "github.com/docker/docker", typ: osv.RangeSemver,
		events: []osv.Event{intro("0"), fixed("20.10.11+incompatible")}}
	pseudo := rec{id: "GO-2021-0002", eco: "Go", name: "example.com/m", typ: osv.RangeSemver,
		events: []osv.Event{intro("1.2.0"), fixed("1.2.4")}}
	pypi := rec{id: "PYSEC-1", eco: "PyPI", name: "Some_Dist", events: []osv.Event{intro("0"), fixed("2.0")}}
	pypiList := rec{id: "PYSEC-2", eco: "PyPI", name: "listed", versions: []string{"1.0", "1.1"}}
	maven := rec{id: "GHSA-maven", eco: "Maven", name: "org.apache.logging.log4j:log4j-core",
		events: []osv.Event{intro("2.0-beta9"), fixed("2.15.0")}}
	npm := rec{id: "GHSA-npm", eco: "npm", name: "elliptic", typ: osv.RangeSemver, events: []osv.Event{intro("0"), fixed("6.5.4")}}
	npmPre := rec{id: "GHSA-npm-pre", eco: "npm", name: "@scope/pkg", typ: osv.RangeSemver, events: []osv.Event{intro("1.0.0-alpha")}}
	crate := rec{id: "RUSTSEC-1", eco: "crates.io", name: "serde", typ: osv.RangeSemver, events: []osv.Event{intro("1.0.0"), last("1.4.2")}}
	limited := rec{id: "GHSA-limit", eco: "npm", name: "limited", typ: osv.RangeSemver, events: []osv.Event{intro("0"), limit("2.0.0")}}
	star := rec{id: "GHSA-star", eco: "npm", name: "star", typ: osv.RangeSemver, events: []osv.Event{intro("1.0.0"), limit("*")}}
	nuget := rec{id: "GHSA-nuget", eco: "NuGet", name: "Newtonsoft.Json", events: []osv.Event{intro("0"), fixed("13.0.1")}}
	gem := rec{id: "GHSA-gem", eco: "RubyGems", name: "rack", events: []osv.Event{intro("0"), fixed("1.2.0")}}
	unsorted := rec{id: "GHSA-unsorted", eco: "npm", name: "unsorted", typ: osv.RangeSemver,
		events: []osv.Event{fixed("2.0.0"), intro("3.0.0"), intro("1.0.0"), fixed("3.1.0")}}
	git := rec{id: "OSV-git", eco: "OSS-Fuzz", name: "libfoo", typ: osv.RangeGit,
		events: []osv.Event{intro("aaaaaaaa"), fixed("bbbbbbbb")}, versions: []string{"v1.0"}}
	unordered := rec{id: "OSV-unordered", eco: "GitHub Actions", name: "owner/action", events: []osv.Event{intro("0"), fixed("2")}, versions: []string{"1"}}
	everything := rec{id: "OSV-everything", eco: "GitHub Actions", name: "owner/other", events: []osv.Event{intro("0")}}
	gone := rec{id: "GO-2022-0617", eco: "Go", name: "k8s.io/kubernetes", typ: osv.RangeSemver, events: []osv.Event{intro("0")}, withdrawn: true}

	var all []any
	for _, r := range []rec{stdlib, docker, pseudo, pypi, pypiList, maven, npm, npmPre, crate, limited, star, nuget, gem, unsorted, git, unordered, everything, gone} {
		all = append(all, r.entry())
	}
	// GO-2022-0969 has two packages: merge xnet into its entry.
	e := all[0].(osv.Entry)
	e.Affected = append(e.Affected, xnet.entry().Affected...)
	all[0] = e
	db := loadDir(t, Options{}, writeRecords(t, all...))

	tests := []struct {
		name, eco, pkg, version string
		want                    bool
	}{
		{"go stdlib go-prefixed below fix", "Go", "stdlib", "go1.18.5", true},
		{"go stdlib at fix", "Go", "stdlib", "go1.18.6", false},
		{"go stdlib short tag", "Go", "stdlib", "go1.19", true},
		{"go stdlib release candidate after 1.19.0-0", "Go", "stdlib", "go1.19rc1", true},
		{"go stdlib bare version", "Go", "stdlib", "1.18.2", true},
		{"go stdlib second fix", "Go", "stdlib", "go1.19.1", false},
		{"go stdlib later release", "Go", "stdlib", "go1.20.3", false},
		{"go ecosystem in lower case", "go", "stdlib", "go1.18.5", true},
		{"go pseudo-version below fix", "Go", "golang.org/x/net", "v0.0.0-20220801000000-abcdefabcdef", true},
		{"go pseudo-version at fix", "Go", "golang.org/x/net", "v0.0.0-20220906165146-f3363e06e74c", false},
		{"go tagged release above pseudo fix", "Go", "golang.org/x/net", "v0.1.0", false},
		{"go +incompatible below fix", "Go", "github.com/docker/docker", "v20.10.10+incompatible", true},
		{"go +incompatible at fix", "Go", "github.com/docker/docker", "v20.10.11+incompatible", false},
		{"go pseudo-version before the fixed tag", "Go", "example.com/m", "v1.2.4-0.20230101000000-abcdef123456", true},
		{"go below introduced", "Go", "example.com/m", "v1.1.9", false},
		{"go withdrawn never matches", "Go", "k8s.io/kubernetes", "v1.20.0", false},
		{"pypi pre-release below final fix", "PyPI", "some-dist", "2.0rc1", true},
		{"pypi dev release below fix", "PyPI", "some-dist", "2.0.dev1", true},
		{"pypi post release of fix", "PyPI", "some-dist", "2.0.post1", false},
		{"pypi local version below fix", "PyPI", "some-dist", "1.9+ubuntu1", true},
		{"pypi local version of fix", "PyPI", "some-dist", "2.0+local", false},
		{"pypi zero padding equals fix", "PyPI", "some-dist", "2.0.0", false},
		{"pypi upper-case pre-release", "PyPI", "Some.Dist", "2.0RC1", true},
		{"pypi versions list exact", "PyPI", "listed", "1.1", true},
		{"pypi versions list by PEP 440 equality", "PyPI", "listed", "1.0.0", true},
		{"pypi versions list miss", "PyPI", "listed", "1.2", false},
		{"maven release candidate of fix", "Maven", "org.apache.logging.log4j:log4j-core", "2.15.0-rc1", true},
		{"maven snapshot of fix", "Maven", "org.apache.logging.log4j:log4j-core", "2.15.0-SNAPSHOT", true},
		{"maven below fix", "Maven", "org.apache.logging.log4j:log4j-core", "2.14.1", true},
		{"maven at fix", "Maven", "org.apache.logging.log4j:log4j-core", "2.15.0", false},
		{"maven final qualifier equals release", "Maven", "org.apache.logging.log4j:log4j-core", "2.15.0.Final", false},
		{"maven service pack after release", "Maven", "org.apache.logging.log4j:log4j-core", "2.15.0-sp1", false},
		{"maven alpha before beta introduced", "Maven", "org.apache.logging.log4j:log4j-core", "2.0-alpha1", false},
		{"maven beta introduced", "Maven", "org.apache.logging.log4j:log4j-core", "2.0-beta9", true},
		{"npm pre-release of fix", "npm", "elliptic", "6.5.4-beta.1", true},
		{"npm at fix", "npm", "elliptic", "6.5.4", false},
		{"npm below fix", "npm", "elliptic", "6.5.3", true},
		{"npm pre-release after introduced alpha", "npm", "@scope/pkg", "1.0.0-alpha.1", true},
		{"npm numeric pre-release before alpha", "npm", "@scope/pkg", "1.0.0-0", false},
		{"last_affected is included", "crates.io", "serde", "1.4.2", true},
		{"above last_affected", "crates.io", "serde", "1.4.3", false},
		{"below limit", "npm", "limited", "1.9.9", true},
		{"at limit", "npm", "limited", "2.0.0", false},
		{"limit star is infinity", "npm", "star", "99.0.0", true},
		{"nuget pre-release of fix", "NuGet", "newtonsoft.json", "13.0.1-beta1", true},
		{"nuget at fix", "NuGet", "Newtonsoft.Json", "13.0.1", false},
		{"rubygems pre-release of fix", "RubyGems", "rack", "1.2.0.pre", true},
		{"rubygems at fix", "RubyGems", "rack", "1.2.0", false},
		{"unsorted events first interval", "npm", "unsorted", "1.5.0", true},
		{"unsorted events gap", "npm", "unsorted", "2.5.0", false},
		{"unsorted events second interval", "npm", "unsorted", "3.0.5", true},
		{"git range matches by versions list", "OSS-Fuzz", "libfoo", "v1.0", true},
		{"git range is not evaluated", "OSS-Fuzz", "libfoo", "aaaaaaaa", false},
		{"unordered ecosystem matches by versions list", "GitHub Actions", "owner/action", "1", true},
		{"unordered ecosystem ignores ranges", "GitHub Actions", "owner/action", "0.5", false},
		{"unordered ecosystem with introduced 0 only", "GitHub Actions", "owner/other", "v3", true},
		{"unknown package", "npm", "nope", "1.0.0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := db.Affecting(tt.eco, tt.pkg, tt.version)
			if (len(got) > 0) != tt.want {
				t.Errorf("Affecting(%q, %q, %q) = %v, want affected %v", tt.eco, tt.pkg, tt.version, ids(got), tt.want)
			}
		})
	}
}

func ids(vs []*Vuln) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Entry.ID
	}
	return out
}

func TestAffectingSortedAndUnique(t *testing.T) {
	var entries []any
	for _, id := range []string{"GHSA-c", "GHSA-a", "GHSA-b"} {
		e := rec{id: id, eco: "npm", name: "p", typ: osv.RangeSemver, events: []osv.Event{intro("0")}}.entry()
		// Two affected entries for the same package must yield the record once.
		e.Affected = append(e.Affected, e.Affected[0])
		entries = append(entries, e)
	}
	db := loadDir(t, Options{}, writeRecords(t, entries...))
	got := ids(db.Affecting("npm", "p", "1.0.0"))
	want := []string{"GHSA-a", "GHSA-b", "GHSA-c"}
	if len(got) != len(want) {
		t.Fatalf("Affecting = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Affecting = %v, want %v", got, want)
		}
	}
}

func TestFixedVersion(t *testing.T) {
	db := loadDir(t, Options{}, "testdata/records")
	v := db.Get("GO-2022-0969")
	log4j := db.Get("GHSA-jfh8-c2jp-5v3q")
	tests := []struct {
		name              string
		v                 *Vuln
		eco, pkg, version string
		want              string
	}{
		{"stdlib go prefix first branch", v, "Go", "stdlib", "go1.18.1", "go1.18.6"},
		{"stdlib go prefix second branch", v, "Go", "stdlib", "go1.19", "go1.19.1"},
		{"stdlib bare version", v, "Go", "stdlib", "1.18.1", "1.18.6"},
		{"stdlib after every fix", v, "Go", "stdlib", "go1.20", ""},
		{"module keeps v prefix", v, "Go", "golang.org/x/net", "v0.0.0-20220101000000-abcdefabcdef", "v0.0.0-20220906165146-f3363e06e74c"},
		{"maven lowest fix above", log4j, "Maven", "org.apache.logging.log4j:log4j-core", "2.13.1", "2.15.0"},
		{"maven backport branch", log4j, "Maven", "org.apache.logging.log4j:log4j-core", "2.11.0", "2.12.2"},
		{"other package", v, "npm", "elliptic", "1.0.0", ""},
		{"nil vuln", nil, "Go", "stdlib", "go1.18.1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := db.FixedVersion(tt.v, tt.eco, tt.pkg, tt.version); got != tt.want {
				t.Errorf("FixedVersion(%q, %q, %q) = %q, want %q", tt.eco, tt.pkg, tt.version, got, tt.want)
			}
		})
	}
}

// TestFixedVersionStillAffected: a fix that another range or entry of the
// record still affects is no fix (go-redis v9's GO-2025-3540: [9.5.1,
// 9.5.5), [0, 9.6.3), [9.7.0-beta.1, 9.7.3): 9.5.5 is in the second), and
// a release candidate of the Go toolchain, written as findings write it,
// is affected as its tag is.
func TestFixedVersionStillAffected(t *testing.T) {
	redis := rec{id: "GO-2025-3540", eco: "Go", name: "github.com/redis/go-redis/v9", typ: osv.RangeSemver,
		events: []osv.Event{intro("9.5.1"), fixed("9.5.5"), intro("0"), fixed("9.6.3"), intro("9.7.0-beta.1"), fixed("9.7.3")}}
	e := redis.entry()
	// The three ranges of the real record, one each.
	rs := e.Affected[0].Ranges[0]
	e.Affected[0].Ranges = []osv.Range{
		{Type: rs.Type, Events: rs.Events[0:2]}, {Type: rs.Type, Events: rs.Events[2:4]}, {Type: rs.Type, Events: rs.Events[4:6]},
	}
	rc := rec{id: "GO-2026-5026", eco: "Go", name: "stdlib", typ: osv.RangeSemver,
		events: []osv.Event{intro("0"), fixed("1.26.5"), intro("1.27.0-0"), fixed("1.27.0-rc.3")}}
	db := loadDir(t, Options{}, writeRecords(t, e, rc.entry()))
	v := db.Get("GO-2025-3540")
	for version, want := range map[string]string{"v9.5.1": "v9.6.3", "v9.6.0": "v9.6.3", "v9.7.0-beta.2": "v9.7.3", "v9.7.3": ""} {
		if got := db.FixedVersion(v, "Go", "github.com/redis/go-redis/v9", version); got != want {
			t.Errorf("FixedVersion at %s = %q, want %q", version, got, want)
		}
	}
	for version, want := range map[string]bool{"go1.27rc2": true, "v1.27rc2": true, "v1.27.0-rc.2": true, "v1.27.0-rc.3": false, "v1.27rc3": false} {
		if got := len(db.Affecting("Go", "stdlib", version)) > 0; got != want {
			t.Errorf("stdlib %s affected: %v, want %v", version, got, want)
		}
	}
}

func TestNormalizeGo(t *testing.T) {
	tests := []struct{ module, in, want, prefix string }{
		{"stdlib", "go1.21.3", "1.21.3", "go"},
		{"stdlib", "go1.21", "1.21.0", "go"},
		{"stdlib", "go1", "1.0.0", "go"},
		{"toolchain", "go1.21rc2", "1.21.0-rc.2", "go"},
		{"stdlib", "go1.19beta1", "1.19.0-beta.1", "go"},
		{"stdlib", "1.21.3", "1.21.3", ""},
		{"stdlib", "v1.21.3", "1.21.3", "v"},
		// A release candidate's tag with the "v" findings give it, and
		// SemVer as govulncheck writes it: 1.27.0-rc.2 either way (the
		// first was taken for 1.27.0 with the one pre-release "rc2",
		// above the fix 1.27.0-rc.3).
		{"stdlib", "v1.27rc2", "1.27.0-rc.2", "v"},
		{"stdlib", "v1.27.0-rc.2", "1.27.0-rc.2", "v"},
		{"stdlib", "1.27.0-rc.2", "1.27.0-rc.2", ""},
		{"toolchain", "v1.24rc1", "1.24.0-rc.1", "v"},
		{"example.com/m", "v1.2.3", "1.2.3", "v"},
		{"example.com/m", "v0.0.0-20220906165146-f3363e06e74c", "0.0.0-20220906165146-f3363e06e74c", "v"},
		{"example.com/m", "1.2.3", "1.2.3", ""},
	}
	for _, tt := range tests {
		t.Run(tt.module+"@"+tt.in, func(t *testing.T) {
			got, prefix := normalizeGo(tt.module, tt.in)
			if got != tt.want || prefix != tt.prefix {
				t.Errorf("normalizeGo(%q, %q) = %q, %q, want %q, %q", tt.module, tt.in, got, prefix, tt.want, tt.prefix)
			}
		})
	}
}

// TestNames: a package some record names is named at any version, as
// its ecosystem compares names (PEP 503 for PyPI); a withdrawn record
// names nothing, as it affects nothing.
func TestNames(t *testing.T) {
	db := loadDir(t, Options{}, writeRecords(t,
		rec{id: "PYSEC-1", eco: "PyPI", name: "Jinja2", events: []osv.Event{intro("0"), fixed("2.11.3")}}.entry(),
		rec{id: "GHSA-1", eco: "npm", name: "left-pad", events: []osv.Event{intro("0"), fixed("1.3.0")}, withdrawn: true}.entry(),
	))
	tests := []struct {
		eco, name string
		want      bool
	}{
		{"PyPI", "jinja2", true},
		{"pypi", "Jinja2", true},
		{"PyPI", "flask", false},
		{"npm", "jinja2", false},
		{"npm", "left-pad", false},
	}
	for _, tt := range tests {
		if got := db.Names(tt.eco, tt.name); got != tt.want {
			t.Errorf("Names(%q, %q) = %v, want %v", tt.eco, tt.name, got, tt.want)
		}
	}
	var nilDB *DB
	if nilDB.Names("PyPI", "jinja2") {
		t.Error("a nil DB names a package")
	}
}
