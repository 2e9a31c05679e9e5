package knowledge

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/evidentsec/evident/internal/osv"
)

// goSnapshot returns the path of the Go vulnerability database snapshot in
// ../shared next to the module root, or skips the test when it is absent.
func goSnapshot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	path := filepath.Join(dir, "..", "shared", "data", "osv-go-2026-08-21.zip")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("Go vulnerability database snapshot %s is absent (it ships in ../shared beside the checkout)", path)
	}
	return path
}

// TestDefaultLeavesGoToGoDB keeps the shipped file from repeating Go records
// that the Go vulnerability database already lists with symbols: those
// symbols are maintained upstream and would only go stale here.
func TestDefaultLeavesGoToGoDB(t *testing.T) {
	zr, err := zip.OpenReader(goSnapshot(t))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()

	withSymbols := make(map[string]string) // normalised id or alias → GO id
	for _, f := range zr.File {
		if filepath.Ext(f.Name) != ".json" {
			continue
		}
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var e osv.Entry
		err = json.NewDecoder(r).Decode(&e)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if !hasSymbols(e) {
			continue
		}
		for _, id := range append([]string{e.ID}, e.Aliases...) {
			withSymbols[normID(id)] = e.ID
		}
	}
	if len(withSymbols) == 0 {
		t.Fatal("no Go record with symbols in the snapshot: the test reads it wrong")
	}

	b, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range b.entries {
		if e.Ecosystem != osv.EcosystemGo {
			continue
		}
		for _, id := range append([]string{e.ID}, e.Aliases...) {
			if goID, ok := withSymbols[normID(id)]; ok {
				t.Errorf("entry %d (%s): %s already lists its symbols in the Go vulnerability database", i, e.ID, goID)
			}
		}
	}
}

func hasSymbols(e osv.Entry) bool {
	for _, a := range e.Affected {
		if a.EcosystemSpecific == nil {
			continue
		}
		for _, imp := range a.EcosystemSpecific.Imports {
			if len(imp.Symbols) > 0 {
				return true
			}
		}
	}
	return false
}
