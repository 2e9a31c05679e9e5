package attribution

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/pprof/profile"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goProfiles are the helper program's CPU profiles, built without and with
// -trimpath (testdata/README.md).
var goProfiles = []string{"go-cpu.pb.gz", "go-cpu-trimpath.pb.gz"}

// profileFrames returns the distinct frames of the functions of a pprof
// file, named as the ingest path names them.
func profileFrames(t testing.TB, name string) []Frame {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	var frames []Frame
	for _, fn := range p.Function {
		n := fn.Name
		if n == "" {
			n = fn.SystemName
		}
		frames = append(frames, Frame{Function: n, File: fn.Filename})
	}
	slices.SortFunc(frames, func(a, b Frame) int {
		if c := strings.Compare(a.Function, b.Function); c != 0 {
			return c
		}
		return strings.Compare(a.File, b.File)
	})
	return slices.Compact(frames)
}

// TestGoProfileGolden attributes every function of real Go CPU profiles and
// compares the result with testdata/go-frames.golden. Every frame of a Go
// profile must be attributed to Go.
func TestGoProfileGolden(t *testing.T) {
	a := New(Config{GoModules: []string{"example.com/attrdemo/v2"}})
	var buf bytes.Buffer
	for _, name := range goProfiles {
		fmt.Fprintf(&buf, "# %s: function\tfile\t=> package\tsymbol\tmodule\tversion\n", name)
		for _, f := range profileFrames(t, name) {
			fn, ok := a.Attribute(f)
			if !ok || fn.Language != Go {
				t.Errorf("%s: Attribute(%+v) = %+v, %v; want a Go function", name, f, fn, ok)
			}
			fmt.Fprintf(&buf, "%s\t%s\t=> %s\t%s\t%s\t%s\n", f.Function, f.File, fn.Package, fn.Symbol, fn.Module, fn.Version)
		}
	}
	golden := filepath.Join("testdata", "go-frames.golden")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), buf.String()); diff != "" {
		t.Errorf("attribution of %v differs from %s (-want +got):\n%s", goProfiles, golden, diff)
	}
}
