package dbupdate

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/evidentsec/evident/internal/vulndb"
)

// TestDatabaseOpensInVulndb holds the contract with package vulndb: what
// Update writes, including after a failed ecosystem, is what OpenDir
// reads, with every record, the KEV catalog and the EPSS scores and no
// problems.
func TestDatabaseOpensInVulndb(t *testing.T) {
	s := newGCSServer(t)
	s.put("/osv-vulnerabilities/Go/all.zip", &object{body: osvArchive(t)})
	s.put("/kev.json", &object{body: kevFeed(t)})
	s.put("/epss.csv.gz", &object{body: epssFile(t)})
	cfg := testConfig(t, s, true, "Go", "Nope")
	cfg.EPSSURL = s.URL + "/epss.csv.gz"
	if _, err := Update(context.Background(), cfg); err == nil {
		t.Fatal("Update succeeded, want Nope to fail")
	}

	db, problems, err := vulndb.OpenDir(context.Background(), filepath.Join(cfg.Dir, "vulndb"), vulndb.Options{})
	if err != nil {
		t.Fatalf("OpenDir: %v", err)
	}
	for _, p := range problems {
		t.Errorf("OpenDir problem: %v", p)
	}
	st := db.Stats()
	if st.Records != 2 || st.KEVCount != 2 || st.KEVVersion != "2024.12.10" {
		t.Errorf("OpenDir loaded %d records and KEV %q with %d entries, want 2, 2024.12.10, 2", st.Records, st.KEVVersion, st.KEVCount)
	}
	if st.EPSSCount != 5 || st.EPSSModel != "v2025.03.14" {
		t.Errorf("OpenDir loaded EPSS model %q with %d scores, want v2025.03.14, 5", st.EPSSModel, st.EPSSCount)
	}
	v := db.Get("CVE-2022-27664")
	if v == nil {
		t.Fatal("GO-2022-0969 not found by its CVE alias")
	}
	if v.EPSS == nil || v.EPSS.CVE != "CVE-2022-27664" {
		t.Errorf("GO-2022-0969 EPSS = %+v, want the score of CVE-2022-27664", v.EPSS)
	}
}
