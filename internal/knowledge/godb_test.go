package knowledge

import (
	"archive/zip"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/vulndb/vulndbtest"
)

// TestDefaultLeavesGoToGoDB keeps the shipped file from repeating Go records
// that the Go vulnerability database already lists with symbols: those
// symbols are maintained upstream and would only go stale here.
func TestDefaultLeavesGoToGoDB(t *testing.T) {
	zr, err := zip.OpenReader(vulndbtest.GoSnapshot(t))
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
