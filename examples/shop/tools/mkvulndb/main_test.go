package main

import (
	"archive/zip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// writeZip makes an all.zip with the given files, all written at when.
func writeZip(t *testing.T, files map[string]string, when time.Time) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "all.zip")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, body := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: when})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestRun(t *testing.T) {
	when := time.Date(2026, 8, 21, 20, 38, 0, 0, time.UTC)
	// GO-2021-0113 trimmed; GO-2099-0001 names one module twice (two
	// "affected" entries), with its "modified" zeroed as in the snapshot.
	zipPath := writeZip(t, map[string]string{
		"GO-2021-0113.json": `{"id":"GO-2021-0113","modified":"2024-05-20T16:03:47Z","aliases":["CVE-2021-38561"],"affected":[{"package":{"name":"golang.org/x/text","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"0.3.7"}]}]}]}`,
		"GO-2099-0001.json": `{"id":"GO-2099-0001","modified":"0001-01-01T00:00:00Z","affected":[{"package":{"name":"example.com/m"},"ranges":[{"events":[{"introduced":"0"},{"fixed":"1.2.0"}]}]},{"package":{"name":"example.com/m"},"ranges":[{"events":[{"introduced":"1.3.0"},{"fixed":"1.10.0"}]}]}]}`,
		"broken.json":       `{"id":`,
		"README.txt":        "not a record",
	}, when)
	out := filepath.Join(t.TempDir(), "db")

	err := run(zipPath, out)
	if err == nil || !strings.Contains(err.Error(), "broken.json") {
		t.Errorf("run() error = %v, want one naming broken.json", err)
	}

	var db map[string]time.Time
	readJSON(t, filepath.Join(out, "index", "db.json"), &db)
	if !db["modified"].Equal(when) {
		t.Errorf("db.json modified = %v, want %v (the zip's time, newest of all)", db["modified"], when)
	}
	var mods []module
	readJSON(t, filepath.Join(out, "index", "modules.json"), &mods)
	wantMods := []module{
		{Path: "example.com/m", Vulns: []moduleVuln{{ID: "GO-2099-0001", Modified: when, Fixed: "1.10.0"}}},
		{Path: "golang.org/x/text", Vulns: []moduleVuln{{ID: "GO-2021-0113", Modified: time.Date(2024, 5, 20, 16, 3, 47, 0, time.UTC), Fixed: "0.3.7"}}},
	}
	if diff := cmp.Diff(wantMods, mods); diff != "" {
		t.Errorf("modules.json (-want +got):\n%s", diff)
	}
	var vulns []vuln
	readJSON(t, filepath.Join(out, "index", "vulns.json"), &vulns)
	if len(vulns) != 2 || vulns[0].ID != "GO-2021-0113" || vulns[1].Aliases == nil {
		t.Errorf("vulns.json = %+v, want both entries sorted, aliases never null", vulns)
	}
	if _, err := os.Stat(filepath.Join(out, "ID", "GO-2099-0001.json")); err != nil {
		t.Errorf("entry file: %v", err)
	}
}

func TestRunNoZip(t *testing.T) {
	if err := run("", t.TempDir()); err == nil {
		t.Error("run() with no -zip: want an error")
	}
	if err := run(filepath.Join(t.TempDir(), "missing.zip"), t.TempDir()); err == nil || !strings.Contains(err.Error(), "missing.zip") {
		t.Errorf("run() on a missing zip: error = %v, want one naming it", err)
	}
}
