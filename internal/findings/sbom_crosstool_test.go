package findings

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/vulndb"
	"github.com/evidentsec/evident/internal/vulndb/vulndbtest"
)

// snapshotDB loads the real Go vulnerability database snapshot from
// ../shared beside the module root, skipping the test when it is absent.
func snapshotDB(t *testing.T) *vulndb.DB {
	t.Helper()
	zip := vulndbtest.GoSnapshot(t)
	db, lerrs, err := vulndb.Load(context.Background(), vulndb.Options{Sources: []string{zip}})
	if err != nil {
		t.Fatal(err)
	}
	if len(lerrs) > 0 {
		t.Logf("%d records of the snapshot skipped, first: %v", len(lerrs), lerrs[0])
	}
	return db
}

// moduleFinding is a finding at module level: the package version and
// the vulnerability, by its primary id after merging.
type moduleFinding struct{ PURL, ID string }

func moduleFindings(fs []Finding) []moduleFinding {
	var out []moduleFinding
	for _, f := range Merge(fs) {
		out = append(out, moduleFinding{f.Package.PURL, f.Vulnerability.ID})
	}
	slices.SortFunc(out, func(a, b moduleFinding) int {
		return strings.Compare(a.PURL+" "+a.ID, b.PURL+" "+b.ID)
	})
	return slices.Compact(out)
}

// TestSameAppSameFindings is the cross-tool acceptance test: the same
// application (testdata/govulncheck/app) scanned by govulncheck, described
// by a cyclonedx-gomod SBOM and by a Syft SPDX SBOM, and built into a Go
// binary gives the same normalized findings at module level, and merging
// them all gives one finding per vulnerability with every tool as source.
func TestSameAppSameFindings(t *testing.T) {
	db := snapshotDB(t)
	open := func(name string) *os.File {
		t.Helper()
		f, err := os.Open(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	type result struct {
		tool string
		fs   []Finding
		errs []error
	}
	var results []result
	for _, in := range []string{"govulncheck/module.json", "govulncheck/symbol.json"} {
		fs, errs := ParseGovulncheck(open(in), in)
		results = append(results, result{"govulncheck " + in, fs, errs})
	}
	fs, errs := ParseCycloneDX(open("cyclonedx/gomod-app-1.6.json"), "cyclonedx/gomod-app-1.6.json", db)
	results = append(results, result{"cyclonedx-gomod", fs, errs})
	fs, errs = ParseSPDX(open("spdx/syft-app.spdx.json"), "spdx/syft-app.spdx.json", db)
	results = append(results, result{"syft spdx", fs, errs})

	want := moduleFindings(results[0].fs)
	if len(want) == 0 {
		t.Fatal("govulncheck reported nothing: the fixture is not the vulnerable app")
	}
	for _, r := range results {
		if len(r.errs) > 0 {
			t.Errorf("%s: %v", r.tool, r.errs)
		}
		if diff := cmp.Diff(want, moduleFindings(r.fs)); diff != "" {
			t.Errorf("%s differs from govulncheck (-govulncheck +%s):\n%s", r.tool, r.tool, diff)
		}
	}

	t.Run("binary", func(t *testing.T) {
		bin := buildGo(t, copyDir(t, filepath.Join("testdata", "govulncheck", "app")))
		fs, errs := readGoBinary(bin, db)
		if len(errs) > 0 {
			t.Errorf("errors: %v", errs)
		}
		// The binary's standard library is the local toolchain's, which
		// may differ from the go1.26.8 the fixtures were made with.
		fs = slices.DeleteFunc(fs, func(f Finding) bool { return f.Package.Name == goStdlib })
		if diff := cmp.Diff(want, moduleFindings(fs)); diff != "" {
			t.Errorf("binary differs from govulncheck (-govulncheck +binary):\n%s", diff)
		}
	})

	var all []Finding
	for _, r := range results {
		all = append(all, r.fs...)
	}
	for _, f := range Merge(all) {
		var tools []string
		for _, s := range f.Sources {
			tools = append(tools, s.Tool)
		}
		if got := sortedSet(tools); !slices.Equal(got, []string{"cyclonedx", "govulncheck", "spdx"}) {
			t.Errorf("%s %s: merged sources %v, want cyclonedx, govulncheck and spdx", f.Package.PURL, f.Vulnerability.ID, got)
		}
		if f.Static == StaticUnknown || f.Static == StaticRequired && f.Symbols != nil {
			t.Errorf("%s %s: static %q with symbols %v", f.Package.PURL, f.Vulnerability.ID, f.Static, f.Symbols)
		}
	}
}
