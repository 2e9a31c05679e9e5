package vulndb

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/knowledge"
	"github.com/evidentsec/evident/internal/osv"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

const goodRecord = `{"id":"GHSA-good","modified":"2024-01-02T03:04:05Z","affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`

func TestValidation(t *testing.T) {
	tests := []struct {
		name       string
		record     string
		wantID     string
		wantReason string
	}{
		{"cut short", "{\"id\":\"GHSA-x\",\n\"summary\": \"x", "", "malformed JSON: line 2, column 13: the document ends there, inside a value (cut short?)"},
		{"trailing data", goodRecord + `{}`, "", "malformed JSON: column 168: invalid character '{' after top-level value"},
		{"wrong type keeps id", `{"id":"GHSA-x","affected":"npm"}`, "GHSA-x", "malformed JSON"},
		{"missing id", `{"modified":"2024-01-02T03:04:05Z"}`, "", "missing id"},
		// A scanner's report or telemetry given as records is named as
		// such, not as a record without an id or as malformed JSON.
		{"a report", `{"SchemaVersion":2,"ArtifactName":"x","Results":[]}`, "",
			"not an OSV record (a JSON object): it holds a JSON object with none of an OSV record's fields (id, modified, affected), only ArtifactName, Results, SchemaVersion"},
		{"a stream", "{\"config\":{\"protocol_version\":\"v1.0.0\"}}\n{\"progress\":{}}\n", "",
			"not an OSV record (a JSON object): it holds several JSON values (a stream or JSON lines), the first an object with none of an OSV record's fields (id, modified, affected), only config"},
		{"an empty object", `{}`, "", "not an OSV record (a JSON object): it holds a JSON object with no fields"},
		{"event with two keys", `{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0","fixed":"1.0.0"}]}]}]}`,
			"GHSA-x", "affected[0]: ranges[0]: events[0]: more than one of introduced, fixed, last_affected and limit"},
		{"empty event", `{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{}]}]}]}`,
			"GHSA-x", "affected[0]: ranges[0]: events[1]: no introduced, fixed, last_affected or limit"},
		{"unknown range type", `{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"CALVER","events":[{"introduced":"0"}]}]}]}`,
			"GHSA-x", `affected[0]: ranges[0]: unknown range type "CALVER"`},
		{"missing range type", `{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"events":[{"introduced":"0"}]}]}]}`,
			"GHSA-x", "affected[0]: ranges[0]: missing type"},
		{"no introduced", `{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"SEMVER","events":[{"fixed":"1.0.0"}]}]}]}`,
			"GHSA-x", "affected[0]: ranges[0]: no introduced event"},
		{"fixed and last_affected", `{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"},{"last_affected":"0.9.0"}]}]}]}`,
			"GHSA-x", "affected[0]: ranges[0]: both fixed and last_affected events"},
		{"no events", `{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"SEMVER","events":[]}]}]}`,
			"GHSA-x", "affected[0]: ranges[0]: no events"},
		{"GIT without repo", `{"id":"OSV-x","affected":[{"package":{"ecosystem":"OSS-Fuzz","name":"p"},"ranges":[{"type":"GIT","events":[{"introduced":"abc"}]}]}]}`,
			"OSV-x", "affected[0]: ranges[0]: GIT range without repo"},
		{"missing ecosystem", `{"id":"GHSA-x","affected":[{"package":{"name":"p"},"versions":["1"]}]}`,
			"GHSA-x", "affected[0]: package: missing ecosystem"},
		{"missing package name", `{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm"},"versions":["1"]}]}`,
			"GHSA-x", "affected[0]: package: missing name"},
		// A record of which no entry is valid is skipped, each entry named
		// (TestPartlyInvalidRecord: one valid entry is enough to load it).
		{"every affected entry bad", `{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"p"},"versions":[""]},{"package":{"ecosystem":"npm","name":"q"},"ranges":[{"type":"SEMVER","events":[{"limit":"1"}]}]}]}`,
			"GHSA-x", "affected[0]: versions[0]: empty\naffected[1]: ranges[0]: no introduced event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeRecords(t, tt.record, goodRecord)
			db, problems, err := Load(context.Background(), Options{Sources: []string{dir}})
			if err != nil {
				t.Fatal(err)
			}
			if db.Get("GHSA-good") == nil || db.Len() != 1 {
				t.Errorf("the good record did not load beside the bad one (Len %d)", db.Len())
			}
			if len(problems) != 1 {
				t.Fatalf("problems = %v, want one", problems)
			}
			p := problems[0]
			if p.File != filepath.Join(dir, "raw-a.json") || p.ID != tt.wantID || !strings.Contains(p.Reason, tt.wantReason) {
				t.Errorf("problem = %+v, want file %s, id %q, reason containing %q", p, filepath.Join(dir, "raw-a.json"), tt.wantID, tt.wantReason)
			}
			if !errors.Is(p, ErrInvalidRecord) {
				t.Errorf("problem %v does not wrap ErrInvalidRecord", p)
			}
			if want := p.File + ": "; !strings.HasPrefix(p.Error(), want) {
				t.Errorf("Error() = %q, want prefix %q", p.Error(), want)
			}
			if db.Stats().Skipped != 1 {
				t.Errorf("Stats().Skipped = %d, want 1", db.Stats().Skipped)
			}
		})
	}
}

// TestPartlyInvalidRecord: a record with an invalid affected entry loads
// with its valid entries, which match, and the invalid one is reported as
// a problem that names the record and the entry; the record's functions
// are those of the entries kept. Refusing the record, as evident did until
// 2026-12-07, left its valid packages unmatched: a vulnerability missed.
// No record of the snapshots in ../shared/data has such an entry (0 of the
// 4,291 Go and the 2,661 PyPA records), so the records are shapes with
// placeholder ids, as in TestValidation.
func TestPartlyInvalidRecord(t *testing.T) {
	const (
		entryOut = " (only this entry: the record's other entries are used)"
		rangeOut = " (only this range: the entry's other ranges and versions are used)"
		aliasOut = " (only this alias: the record is used without it)"
	)
	tests := []struct {
		name   string
		record string
		// eco, pkg and version are a lookup that must find the record.
		eco, pkg, version string
		wantReasons       []string
		wantEcosystems    []string
		// wantSymbols are the functions of pkg at version (nil: none).
		wantSymbols []string
	}{
		{
			name:   "unknown range type in the second entry",
			record: `{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"p"},"versions":["1.0.0"]},{"package":{"ecosystem":"npm","name":"q"},"ranges":[{"type":"CALVER","events":[{"introduced":"0"}]}]}]}`,
			eco:    "npm", pkg: "p", version: "1.0.0",
			wantReasons:    []string{`affected[1]: ranges[0]: unknown range type "CALVER"` + entryOut},
			wantEcosystems: []string{"npm"},
		},
		{
			name:   "no introduced event in the first entry",
			record: `{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"q"},"ranges":[{"type":"SEMVER","events":[{"limit":"1"}]}]},{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"2.0.0"}]}]}]}`,
			eco:    "npm", pkg: "p", version: "1.0.0",
			wantReasons:    []string{"affected[0]: ranges[0]: no introduced event" + entryOut},
			wantEcosystems: []string{"npm"},
		},
		{
			name:   "an empty version and a missing name, beside a valid entry of another ecosystem",
			record: `{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"q"},"versions":["1.0.0",""]},{"package":{"ecosystem":"Maven"},"versions":["1.0"]},{"package":{"ecosystem":"PyPI","name":"p"},"versions":["1.0.0"]}]}`,
			eco:    "PyPI", pkg: "p", version: "1.0.0",
			wantReasons:    []string{"affected[0]: versions[1]: empty" + entryOut, "affected[1]: package: missing name" + entryOut},
			wantEcosystems: []string{"PyPI"},
		},
		{
			// A range that cannot be read leaves the entry's others,
			// which say which versions are affected.
			name:   "a bad range beside a good one in the same entry",
			record: `{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"SEMVER","events":[{"fixed":"0.5.0"}]},{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"2.0.0"}]}]}]}`,
			eco:    "npm", pkg: "p", version: "1.0.0",
			wantReasons:    []string{"affected[0]: ranges[0]: no introduced event" + rangeOut},
			wantEcosystems: []string{"npm"},
		},
		{
			name:   "a bad range beside the entry's versions",
			record: `{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"p"},"ranges":[{"type":"CALVER","events":[{"introduced":"0"}]}],"versions":["1.0.0"]}]}`,
			eco:    "npm", pkg: "p", version: "1.0.0",
			wantReasons:    []string{`affected[0]: ranges[0]: unknown range type "CALVER"` + rangeOut},
			wantEcosystems: []string{"npm"},
		},
		{
			// A blank alias names nothing; the record is still the
			// vulnerability of its package.
			name:   "a blank alias",
			record: `{"id":"GHSA-x","aliases":["CVE-2021-1",""],"affected":[{"package":{"ecosystem":"npm","name":"p"},"versions":["1.0.0"]}]}`,
			eco:    "npm", pkg: "p", version: "1.0.0",
			wantReasons:    []string{"aliases[1]: empty" + aliasOut},
			wantEcosystems: []string{"npm"},
		},
		{
			// The functions of the entry left out apply nowhere: not to
			// the versions of the other entry of the same module (GO-2023-1497
			// lists functions per range, TestFunctionsAt), nor, when no kept
			// entry includes a version, among "all of them".
			name: "functions of the entry left out",
			record: `{"id":"GO-x","affected":[` +
				`{"package":{"ecosystem":"Go","name":"example.com/m"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.3.4"}]}],"ecosystem_specific":{"imports":[{"path":"example.com/m/client","symbols":["Client.UploadImage"]}]}},` +
				`{"package":{"ecosystem":"Go","name":"example.com/m"},"ranges":[{"events":[{"introduced":"1.4.0"},{"fixed":"1.4.2"}]}],"ecosystem_specific":{"imports":[{"path":"example.com/m/client","symbols":["Client.legacyDownloadImage"]}]}}]}`,
			eco: "Go", pkg: "example.com/m", version: "v1.3.0",
			wantReasons:    []string{"affected[1]: ranges[0]: missing type" + entryOut},
			wantEcosystems: []string{"Go"},
			wantSymbols:    []string{"Client.UploadImage"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeRecords(t, tt.record, goodRecord)
			db, problems, err := Load(context.Background(), Options{Sources: []string{dir}})
			if err != nil {
				t.Fatal(err)
			}
			var id string
			if err := json.Unmarshal([]byte(tt.record), &struct{ ID *string }{&id}); err != nil {
				t.Fatal(err)
			}
			v := db.Get(id)
			if v == nil || db.Len() != 2 {
				t.Fatalf("Get(%s) = %v, Len %d; want the record loaded beside the good one (problems %v)", id, v, db.Len(), problems)
			}
			if slices.Contains(v.Entry.Aliases, "") {
				t.Errorf("aliases %q: a blank one kept", v.Entry.Aliases)
			}
			if got := ids(db.Affecting(tt.eco, tt.pkg, tt.version)); !slices.Contains(got, id) {
				t.Errorf("Affecting(%s, %s, %s) = %v, want %s among them", tt.eco, tt.pkg, tt.version, got, id)
			}
			var reasons []string
			for _, p := range problems {
				reasons = append(reasons, p.Reason)
				if p.File != filepath.Join(dir, "raw-a.json") || p.ID != id || !errors.Is(p, ErrInvalidRecord) {
					t.Errorf("problem %+v: want file %s, id %s, ErrInvalidRecord", p, filepath.Join(dir, "raw-a.json"), id)
				}
			}
			if diff := cmp.Diff(tt.wantReasons, reasons); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			s := db.Stats()
			if s.Skipped != len(tt.wantReasons) {
				t.Errorf("Stats().Skipped = %d, want %d", s.Skipped, len(tt.wantReasons))
			}
			// goodRecord is npm's.
			wantEcos := append([]string{"npm"}, tt.wantEcosystems...)
			slices.Sort(wantEcos)
			if got := slices.Sorted(maps.Keys(s.Ecosystems)); !slices.Equal(slices.Compact(wantEcos), got) {
				t.Errorf("Stats().Ecosystems = %v, want %v: an entry left out affects no ecosystem", got, slices.Compact(wantEcos))
			}
			var all, at []string
			for _, fn := range v.Functions {
				all = append(all, fn.Symbol)
			}
			for _, fn := range v.FunctionsAt(tt.eco, tt.pkg, "v9.9.9") {
				at = append(at, fn.Symbol)
			}
			if !slices.Equal(all, tt.wantSymbols) || !slices.Equal(at, tt.wantSymbols) {
				t.Errorf("Functions %v, FunctionsAt(v9.9.9, outside every range) %v; want %v", all, at, tt.wantSymbols)
			}
			for _, fn := range v.FunctionsAt(tt.eco, tt.pkg, tt.version) {
				if !slices.Contains(tt.wantSymbols, fn.Symbol) {
					t.Errorf("FunctionsAt(%s) has %s, a function of the entry left out", tt.version, fn.Symbol)
				}
			}
		})
	}
}

// TestNothingToMatch: a record that affects no version is loaded without a
// problem, and matches nothing. PYSEC-2022-15 is the real case: PyPA
// withdrew it by emptying its affected entry. The other rows are shapes
// with placeholder ids, as in TestValidation: no public record was found
// with an entry that has neither ranges nor versions and is not withdrawn
// (PyPA's history, the Go database, osv-linter's testdata), yet the OSV
// schema allows one.
func TestNothingToMatch(t *testing.T) {
	tests := []struct {
		name          string
		record        string
		wantID        string
		wantWithdrawn bool
		// eco, pkg and version are a lookup that must find nothing.
		eco, pkg, version string
		// wantGet is an alias that must find the record.
		wantGet string
	}{
		{
			name:   "PYSEC-2022-15: withdrawn, its affected entry emptied",
			record: mustRead(t, "testdata/pypa/PYSEC-2022-15.json"), wantID: "PYSEC-2022-15", wantWithdrawn: true,
			eco: "PyPI", pkg: "loguru", version: "0.5.3", wantGet: "CVE-2022-0329",
		},
		{
			name:   "withdrawn: a bad range and a blank alias are not checked",
			record: `{"id":"GHSA-x","withdrawn":"2024-01-01T00:00:00Z","aliases":["","CVE-x"],"affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{"fixed":"1.0.0"}]}]}]}`,
			wantID: "GHSA-x", wantWithdrawn: true, eco: "npm", pkg: "x", version: "0.1.0", wantGet: "CVE-x",
		},
		{
			name:   "withdrawn: a bad range beside a good one is not checked either",
			record: `{"id":"GHSA-x","withdrawn":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{"fixed":"0.5.0"}]},{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"2.0.0"}]}]}]}`,
			wantID: "GHSA-x", wantWithdrawn: true, eco: "npm", pkg: "x", version: "1.0.0",
		},
		{
			name:   "not withdrawn: neither ranges nor versions",
			record: `{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"x"},"database_specific":{"source":"x"}}]}`,
			wantID: "GHSA-x", eco: "npm", pkg: "x", version: "0.1.0",
		},
		{
			name:   "not withdrawn: one entry empty, the other matches elsewhere",
			record: `{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"x"}},{"package":{"ecosystem":"npm","name":"q"},"versions":["1.0.0"]}]}`,
			wantID: "GHSA-x", eco: "npm", pkg: "x", version: "1.0.0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeRecords(t, tt.record, goodRecord)
			db, problems, err := Load(context.Background(), Options{Sources: []string{dir}})
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) != 0 {
				t.Errorf("problems = %v, want none", problems)
			}
			v := db.Get(tt.wantID)
			if v == nil || db.Len() != 2 {
				t.Fatalf("Get(%s) = %v, Len %d; want the record loaded beside the good one", tt.wantID, v, db.Len())
			}
			if v.Withdrawn() != tt.wantWithdrawn {
				t.Errorf("Withdrawn() = %v, want %v", v.Withdrawn(), tt.wantWithdrawn)
			}
			wantStats := 0
			if tt.wantWithdrawn {
				wantStats = 1
			}
			s := db.Stats()
			if s.Skipped != 0 || s.Withdrawn != wantStats || s.Ecosystems[tt.eco].Withdrawn != wantStats {
				t.Errorf("Stats skipped %d, withdrawn %d (%s %d); want 0 and %d", s.Skipped, s.Withdrawn, tt.eco, s.Ecosystems[tt.eco].Withdrawn, wantStats)
			}
			for _, version := range []string{tt.version, ""} {
				if got := db.Affecting(tt.eco, tt.pkg, version); len(got) != 0 {
					t.Errorf("Affecting(%s, %s, %q) = %v, want nothing", tt.eco, tt.pkg, version, ids(got))
				}
			}
			if tt.wantGet != "" {
				if got := db.Get(tt.wantGet); got != v {
					t.Errorf("Get(%s) = %v, want %s", tt.wantGet, got, tt.wantID)
				}
			}
		})
	}
	t.Run("the other entry of a record still matches", func(t *testing.T) {
		db := loadDir(t, Options{}, writeRecords(t, tests[4].record))
		if got := ids(db.Affecting("npm", "q", "1.0.0")); !slices.Equal(got, []string{"GHSA-x"}) {
			t.Errorf("Affecting(npm, q, 1.0.0) = %v, want [GHSA-x]", got)
		}
	})
}

// TestWrongKindOfFile: a source file of the wrong kind is named as such,
// not reported as malformed JSON, and so is a record file in a directory
// that is not JSON.
func TestWrongKindOfFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(goodRecord))
	zw.Close()
	tests := []struct {
		name, file string
		data       []byte
		want       string
	}{
		{"text named .zip", "notzip.zip", []byte("not a zip\n"), "not a zip archive: it holds text"},
		{"error page named .zip", "all.zip", []byte("<?xml version='1.0'?><Error><Code>NoSuchKey</Code></Error>"), "not a zip archive: it holds HTML or XML"},
		{"empty .zip", "empty.zip", nil, "not a zip archive: it is empty"},
		{"JSON named .ZIP", "rec.ZIP", []byte(goodRecord), "not a zip archive: it holds a JSON object"},
		{"text named .json.gz", "rec.json.gz", []byte(goodRecord), "not gzip-compressed: it holds a JSON object"},
		{"gzip named .json", "rec.json", gz.Bytes(), "not an OSV record (a JSON object), a zip archive of records or a directory: it is gzip-compressed"},
		{"JSON array", "recs.json", []byte(`[` + goodRecord + `]`), "it holds a JSON array"},
		{"binary", "db.bin", []byte{0, 1, 2, 0xff}, "it holds binary data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := write(tt.file, tt.data)
			_, _, err := Load(context.Background(), Options{Sources: []string{p}})
			if !errors.Is(err, ErrNoSource) || !strings.Contains(err.Error(), "read source "+p+": ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrNoSource naming %s: %s", err, p, tt.want)
			}
		})
	}
	t.Run("a zip cut short", func(t *testing.T) {
		// A download of all.zip that stopped early: the records are
		// there, the directory at the end is not.
		var zb bytes.Buffer
		zw := zip.NewWriter(&zb)
		w, err := zw.Create("GO-2026-0001.json")
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(goodRecord))
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		p := write("all-cut.zip", zb.Bytes()[:zb.Len()/2])
		_, _, err = Load(context.Background(), Options{Sources: []string{p}})
		want := "open archive " + p + ": it starts as a zip, but its end, where a zip keeps its directory, is missing: it is cut short"
		if !errors.Is(err, ErrNoSource) || !errors.Is(err, zip.ErrFormat) || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want ErrNoSource and zip.ErrFormat: %s", err, want)
		}
	})
	t.Run("an empty zip archive holds no records", func(t *testing.T) {
		p := write("nothing.zip", []byte("PK\x05\x06"+strings.Repeat("\x00", 18)))
		if _, _, err := Load(context.Background(), Options{Sources: []string{p}}); err == nil || !strings.Contains(err.Error(), "no OSV records in it") {
			t.Errorf("err = %v, want no OSV records", err)
		}
	})
	t.Run("record files in a directory", func(t *testing.T) {
		recs := t.TempDir()
		for name, data := range map[string][]byte{
			"good.json":     []byte(goodRecord),
			"page.json":     []byte("<html>Not Found</html>"),
			"gz.json":       gz.Bytes(),
			"plain.json.gz": []byte("not gzip"),
		} {
			if err := os.WriteFile(filepath.Join(recs, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		_, problems, err := Load(context.Background(), Options{Sources: []string{recs}})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, p := range problems {
			got[filepath.Base(p.File)] = p.Reason
		}
		want := map[string]string{
			"page.json":     "not an OSV record (a JSON object): it holds HTML or XML",
			"gz.json":       "not an OSV record (a JSON object): it is gzip-compressed",
			"plain.json.gz": "read: not gzip-compressed: it holds text",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
	})
}

func TestLoadErrorString(t *testing.T) {
	tests := []struct {
		err  LoadError
		want string
	}{
		{LoadError{File: "a.json", ID: "GO-1", Reason: "missing id"}, "a.json: GO-1: missing id"},
		{LoadError{File: "a.json", Reason: "malformed JSON"}, "a.json: malformed JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAliases(t *testing.T) {
	ghsa := osv.Entry{ID: "GHSA-69cg-p879-7622", Aliases: []string{"CVE-2022-27664"}, Modified: mustTime("2023-01-01T00:00:00Z"),
		Affected: []osv.Affected{{Package: osv.Package{Ecosystem: "Go", Name: "golang.org/x/net"}, Versions: []string{"0.0.1"}}}}
	db := loadDir(t, Options{Sources: []string{"testdata/records"}}, writeRecords(t, ghsa))
	tests := []struct {
		name, id, wantGet string
		wantAliases       []string
	}{
		{"record id", "GO-2022-0969", "GO-2022-0969", []string{"CVE-2022-27664", "GHSA-69cg-p879-7622"}},
		{"cve alias of two records", "CVE-2022-27664", "GHSA-69cg-p879-7622", []string{"GHSA-69cg-p879-7622", "GO-2022-0969"}},
		{"record that another lists as alias", "GHSA-69cg-p879-7622", "GHSA-69cg-p879-7622", []string{"CVE-2022-27664", "GO-2022-0969"}},
		{"case-insensitive", "ghsa-jfh8-c2jp-5v3q", "GHSA-jfh8-c2jp-5v3q", []string{"CVE-2021-44228"}},
		{"alias only", "cve-2021-44228", "GHSA-jfh8-c2jp-5v3q", []string{"GHSA-jfh8-c2jp-5v3q"}},
		{"unknown", "CVE-1999-0001", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := db.Get(tt.id)
			got := ""
			if v != nil {
				got = v.Entry.ID
			}
			if got != tt.wantGet {
				t.Errorf("Get(%q) = %q, want %q", tt.id, got, tt.wantGet)
			}
			if diff := cmp.Diff(tt.wantAliases, db.Aliases(tt.id)); diff != "" {
				t.Errorf("Aliases(%q) (-want +got):\n%s", tt.id, diff)
			}
		})
	}
}

func TestSeverity(t *testing.T) {
	sev := func(typ, vector string) []osv.Severity { return []osv.Severity{{Type: typ, Score: vector}} }
	const (
		log4shell = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"
		requests  = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"
		v4        = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
		v4low     = "CVSS:4.0/AV:L/AC:H/AT:P/PR:H/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N"
		v30       = "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"
	)
	tests := []struct {
		name  string
		entry osv.Entry
		want  Severity
	}{
		{"cvss 3.1 critical", osv.Entry{Severity: sev("CVSS_V3", log4shell)}, Severity{Level: LevelCritical, Score: 10.0, Vector: log4shell}},
		{"cvss 3.1 medium", osv.Entry{Severity: sev("CVSS_V3", requests)}, Severity{Level: LevelMedium, Score: 6.1, Vector: requests}},
		{"cvss 3.0", osv.Entry{Severity: sev("CVSS_V3", v30)}, Severity{Level: LevelHigh, Score: 7.5, Vector: v30}},
		{"cvss 4.0", osv.Entry{Severity: sev("CVSS_V4", v4)}, Severity{Level: LevelCritical, Score: 9.3, Vector: v4}},
		{"cvss 4.0 low", osv.Entry{Severity: sev("CVSS_V4", v4low)}, Severity{Level: LevelLow, Score: 1.0, Vector: v4low}},
		{"v4 wins over a higher v3", osv.Entry{Severity: append(sev("CVSS_V3", log4shell), sev("CVSS_V4", v4low)...)}, Severity{Level: LevelLow, Score: 1.0, Vector: v4low}},
		{"affected-level severity", osv.Entry{Affected: []osv.Affected{{Severity: sev("CVSS_V3", requests)}}}, Severity{Level: LevelMedium, Score: 6.1, Vector: requests}},
		{"ghsa rating", osv.Entry{DatabaseSpecific: []byte(`{"severity":"MODERATE"}`)}, Severity{Level: LevelMedium}},
		{"bad vector falls back to ghsa rating", osv.Entry{Severity: sev("CVSS_V3", "CVSS:3.1/AV:X"), DatabaseSpecific: []byte(`{"severity":"HIGH"}`)}, Severity{Level: LevelHigh}},
		{"cvss v2 is not used", osv.Entry{Severity: sev("CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:P/A:P")}, Severity{Level: LevelUnknown}},
		{"nothing", osv.Entry{DatabaseSpecific: []byte(`{"url":"https://pkg.go.dev/vuln/GO-2022-0969"}`)}, Severity{Level: LevelUnknown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := severityOf(&tt.entry)
			if got.Level != tt.want.Level || got.Vector != tt.want.Vector || got.Score-tt.want.Score > 0.05 || tt.want.Score-got.Score > 0.05 {
				t.Errorf("severityOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSeverityFromAlias(t *testing.T) {
	ghsa := osv.Entry{ID: "GHSA-69cg-p879-7622", Aliases: []string{"CVE-2022-27664"},
		Severity:         []osv.Severity{{Type: "CVSS_V3", Score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}},
		DatabaseSpecific: []byte(`{"severity":"HIGH"}`),
		Affected:         []osv.Affected{{Package: osv.Package{Ecosystem: "Go", Name: "golang.org/x/net"}, Versions: []string{"0.0.1"}}}}
	db := loadDir(t, Options{Sources: []string{"testdata/records/GO-2022-0969.json"}}, writeRecords(t, ghsa))
	got := db.Get("GO-2022-0969").Severity
	want := Severity{Level: LevelHigh, Score: 7.5, Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", Source: "GHSA-69cg-p879-7622"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GO-2022-0969 severity borrowed from GHSA (-want +got):\n%s", diff)
	}
}

// TestSeverityThroughSharedCVE checks the case of most new Go records: the
// GO record names only the CVE, and the GHSA record for the same CVE does
// not name the GO record, yet lends it its CVSS.
func TestSeverityThroughSharedCVE(t *testing.T) {
	const v31 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"
	pkg := []osv.Affected{{Package: osv.Package{Ecosystem: "Go", Name: "golang.org/x/text"}, Versions: []string{"0.37.0"}}}
	records := []osv.Entry{
		{ID: "GO-2026-0001", Aliases: []string{"CVE-2026-0001"}, Affected: pkg},
		// Rated only qualitatively: the CVSS of the other record wins.
		{ID: "GHSA-aaaa-aaaa-aaaa", Aliases: []string{"CVE-2026-0001"}, Affected: pkg, DatabaseSpecific: []byte(`{"severity":"MODERATE"}`)},
		{ID: "GHSA-bbbb-bbbb-bbbb", Aliases: []string{"CVE-2026-0001"}, Affected: pkg, Severity: []osv.Severity{{Type: "CVSS_V3", Score: v31}}},
		// The same rating again: the tie goes to the lowest id.
		{ID: "GHSA-xxxx-xxxx-xxxx", Aliases: []string{"CVE-2026-0001"}, Affected: pkg, Severity: []osv.Severity{{Type: "CVSS_V3", Score: v31}}},
		// Another vulnerability of the same package lends nothing.
		{ID: "GO-2026-0002", Aliases: []string{"CVE-2026-0002"}, Affected: pkg},
		{ID: "GHSA-cccc-cccc-cccc", Aliases: []string{"CVE-2026-0099"}, Affected: pkg, Severity: []osv.Severity{{Type: "CVSS_V3", Score: v31}}},
	}
	entries := make([]any, len(records))
	for i, r := range records {
		entries[i] = r
	}
	db := loadDir(t, Options{}, writeRecords(t, entries...))
	tests := []struct {
		id   string
		want Severity
	}{
		{"GO-2026-0001", Severity{Level: LevelHigh, Score: 7.5, Vector: v31, Source: "GHSA-bbbb-bbbb-bbbb"}},
		{"GHSA-aaaa-aaaa-aaaa", Severity{Level: LevelMedium, Source: "GHSA-aaaa-aaaa-aaaa"}},
		{"GO-2026-0002", Severity{Level: LevelUnknown}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, db.Get(tt.id).Severity); diff != "" {
			t.Errorf("%s severity (-want +got):\n%s", tt.id, diff)
		}
	}
}

func TestKEV(t *testing.T) {
	db, problems, err := Load(context.Background(), Options{Sources: []string{"testdata/records"}, KEV: "testdata/kev.json"})
	if err != nil || len(problems) > 0 {
		t.Fatalf("Load: %v, %v", problems, err)
	}
	tests := []struct {
		id   string
		want bool
	}{
		{"GHSA-jfh8-c2jp-5v3q", true}, // via its alias CVE-2021-44228
		{"CVE-2021-44228", true},
		{"GO-2022-0969", false},
		{"GHSA-r9p9-mrjm-926w", false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			v := db.Get(tt.id)
			if v.KnownExploited != tt.want || (v.KEV != nil) != tt.want {
				t.Errorf("%s KnownExploited = %v (KEV %v), want %v", tt.id, v.KnownExploited, v.KEV, tt.want)
			}
		})
	}
	if v := db.Get("CVE-2021-44228"); v.KEV.DateAdded != "2021-12-10" || v.KEV.KnownRansomwareCampaignUse != "Known" {
		t.Errorf("KEV entry = %+v", v.KEV)
	}
	s := db.Stats()
	released := time.Date(2024, 12, 10, 17, 8, 40, 443100000, time.UTC)
	if s.KnownExploited != 1 || s.KEVVersion != "2024.12.10" || !s.KEVReleased.Equal(released) || s.KEVCount != 2 || !s.HasKEV() {
		t.Errorf("Stats = %+v, want 1 known exploited from catalog 2024.12.10 of 2, released %v", s, released)
	}
}

func TestStatsHas(t *testing.T) {
	tests := []struct {
		name      string
		stats     Stats
		kev, epss bool
	}{
		{"nothing loaded", Stats{}, false, false},
		{"catalog", Stats{KEVVersion: "2026.12.01", KEVCount: 1}, true, false},
		{"catalog without a version", Stats{KEVCount: 3}, true, false},
		{"scores", Stats{EPSSModel: "v2025.03.14", EPSSDate: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), EPSSCount: 5}, false, true},
		{"both", Stats{KEVVersion: "2026.12.01", KEVCount: 1, EPSSModel: "v2025.03.14", EPSSCount: 5}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.stats.HasKEV(); got != tt.kev {
				t.Errorf("HasKEV() = %v, want %v", got, tt.kev)
			}
			if got := tt.stats.HasEPSS(); got != tt.epss {
				t.Errorf("HasEPSS() = %v, want %v", got, tt.epss)
			}
		})
	}
}

func TestParseKEV(t *testing.T) {
	tests := []struct {
		name         string
		in           string
		wantErr      bool
		wantCVEs     []string
		wantProblems []string
	}{
		{name: "not JSON", in: `<html>`, wantErr: true},
		{name: "no vulnerabilities", in: `{"catalogVersion":"1"}`, wantErr: true},
		{name: "bad entries skipped", in: `{"catalogVersion":"1","count":4,"vulnerabilities":[
			{"cveID":"CVE-2021-44228","dateAdded":"2021-12-10"},
			{"cveID":"","dateAdded":"2021-12-10"},
			{"cveID":"GHSA-jfh8-c2jp-5v3q","dateAdded":"2021-12-10"},
			{"cveID":"CVE-2022-22965","dateAdded":"04/04/2022"}]}`,
			wantCVEs: []string{"CVE-2021-44228"},
			wantProblems: []string{
				"kev.json: vulnerabilities[1]: missing cveID",
				`kev.json: vulnerabilities[2] GHSA-jfh8-c2jp-5v3q: cveID "GHSA-jfh8-c2jp-5v3q" is not a CVE id`,
				`kev.json: vulnerabilities[3] CVE-2022-22965: dateAdded "04/04/2022" is not a YYYY-MM-DD date`,
			}},
		{name: "count mismatch", in: `{"count":3,"vulnerabilities":[{"cveID":"CVE-2021-44228","dateAdded":"2021-12-10"}]}`,
			wantCVEs: []string{"CVE-2021-44228"}, wantProblems: []string{"kev.json: count is 3 but 1 vulnerabilities are listed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, problems, err := ParseKEV(strings.NewReader(tt.in), "kev.json")
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidKEV) {
					t.Errorf("err = %v, want ErrInvalidKEV", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var cves, probs []string
			for _, v := range c.Vulnerabilities {
				cves = append(cves, v.CVEID)
			}
			for _, p := range problems {
				probs = append(probs, p.Error())
			}
			if diff := cmp.Diff(tt.wantCVEs, cves); diff != "" {
				t.Errorf("CVEs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantProblems, probs); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// fakeKnowledge is a hand-written knowledge base.
type fakeKnowledge []knowledge.Entry

func (f fakeKnowledge) Lookup(ids ...string) []knowledge.Entry {
	var out []knowledge.Entry
	for _, e := range f {
		for _, id := range ids {
			if strings.EqualFold(id, e.ID) || slices.ContainsFunc(e.Aliases, func(a string) bool { return strings.EqualFold(a, id) }) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// ignoreEntries leaves out which affected[] entries list a function,
// which TestFunctionsAt tests.
var ignoreEntries = cmpopts.IgnoreUnexported(Function{})

func TestFunctions(t *testing.T) {
	kb := fakeKnowledge{
		{ID: "CVE-2021-44228", Ecosystem: "Maven", Package: "org.apache.logging.log4j:log4j-core", Functions: []knowledge.Function{
			{Package: "org.apache.logging.log4j.core.lookup", Symbol: "JndiLookup.lookup", Reference: "https://github.com/apache/logging-log4j2/commit/c77b3cb39312b83b053d23a2158b99ac7de44dd3"},
		}},
		// Another package than the record affects: not merged.
		{ID: "CVE-2021-44228", Ecosystem: "Maven", Package: "org.apache.logging.log4j:log4j-api", Functions: []knowledge.Function{{Package: "org.apache.logging.log4j", Symbol: "LogManager.getLogger"}}},
		// A Go symbol the OSV record already names: not duplicated.
		{ID: "GHSA-69cg-p879-7622", Ecosystem: "Go", Package: "golang.org/x/net", Functions: []knowledge.Function{{Package: "golang.org/x/net/http2", Symbol: "Server.ServeConn"}}},
	}
	db := loadDir(t, Options{Knowledge: kb}, "testdata/records")

	log4j := db.Get("GHSA-jfh8-c2jp-5v3q").Functions
	wantLog4j := []Function{{Ecosystem: "Maven", Module: "org.apache.logging.log4j:log4j-core", Package: "org.apache.logging.log4j.core.lookup", Symbol: "JndiLookup.lookup",
		Source: SourceKnowledge, Reference: "https://github.com/apache/logging-log4j2/commit/c77b3cb39312b83b053d23a2158b99ac7de44dd3"}}
	if diff := cmp.Diff(wantLog4j, log4j, ignoreEntries); diff != "" {
		t.Errorf("log4j functions (-want +got):\n%s", diff)
	}

	goFns := db.Get("GO-2022-0969").Functions
	if len(goFns) != 12 {
		t.Errorf("GO-2022-0969 has %d functions, want the 12 OSV symbols", len(goFns))
	}
	want := Function{Ecosystem: "Go", Module: "golang.org/x/net", Package: "golang.org/x/net/http2", Symbol: "Server.ServeConn", Source: SourceOSV}
	if !slices.ContainsFunc(goFns, func(f Function) bool { return cmp.Equal(f, want, ignoreEntries) }) {
		t.Errorf("GO-2022-0969 functions %v lack %v", goFns, want)
	}
	// GO-2022-0969's symbols and GHSA-j8r2-6x86-q33q's affected_functions.
	s := db.Stats()
	if s.WithSymbols != 2 || s.WithKnowledge != 1 {
		t.Errorf("Stats WithSymbols %d WithKnowledge %d, want 2 and 1", s.WithSymbols, s.WithKnowledge)
	}
}

// TestFunctionsImportWithoutPath: an ecosystem_specific import without a
// path names no package and gives no function (FuzzParseRecord: one gave
// a function of no package, of a record of another ecosystem).
func TestFunctionsImportWithoutPath(t *testing.T) {
	rec := `{"id":"GO-X","modified":"2024-01-02T03:04:05Z","affected":[{"package":{"ecosystem":"Go","name":"example.com/m"},` +
		`"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}],"ecosystem_specific":{"imports":[` +
		`{"symbols":["F"]},{"path":"example.com/m/p","symbols":["G"]}]}}]}`
	r, _, err := parseRecord([]byte(rec))
	if err != nil {
		t.Fatal(err)
	}
	want := []Function{{Ecosystem: "Go", Module: "example.com/m", Package: "example.com/m/p", Symbol: "G", Source: SourceOSV}}
	if diff := cmp.Diff(want, r.vuln.Functions, ignoreEntries); diff != "" {
		t.Errorf("functions (-want +got):\n%s", diff)
	}
}

func TestFunctionsGOOS(t *testing.T) {
	db := loadDir(t, Options{}, writeRecords(t, osv.Entry{ID: "GO-2021-0068", Affected: []osv.Affected{{
		Package: osv.Package{Ecosystem: "Go", Name: "toolchain"},
		Ranges:  []osv.Range{{Type: "SEMVER", Events: []osv.Event{intro("0"), fixed("1.14.14")}}},
		EcosystemSpecific: &osv.EcosystemSpecific{Imports: []osv.Import{
			{Path: "cmd/go", GOOS: []string{"windows"}},
		}},
	}}}))
	got := db.Get("GO-2021-0068").Functions
	want := []Function{{Ecosystem: "Go", Module: "toolchain", Package: "cmd/go", GOOS: []string{"windows"}, Source: SourceOSV}}
	if diff := cmp.Diff(want, got, ignoreEntries); diff != "" {
		t.Errorf("functions (-want +got):\n%s", diff)
	}
	if len(db.Affecting("Go", "toolchain", "go1.14.13")) != 1 {
		t.Error("toolchain go1.14.13 not affected")
	}
}

func TestDefaultKnowledge(t *testing.T) {
	kb, err := knowledge.Default()
	if err != nil {
		t.Fatal(err)
	}
	db := loadDir(t, Options{Knowledge: kb}, "testdata/records")
	fns := db.Get("CVE-2021-44228").Functions
	if !slices.ContainsFunc(fns, func(f Function) bool {
		return f.Source == SourceKnowledge && f.Symbol == "JndiLookup.lookup" && f.Package == "org.apache.logging.log4j.core.lookup"
	}) {
		t.Errorf("Log4Shell functions from the shipped knowledge base = %+v, want JndiLookup.lookup", fns)
	}
}

func TestWithdrawn(t *testing.T) {
	db := loadDir(t, Options{}, "testdata/records")
	v := db.Get("GO-2022-0617")
	if v == nil || !v.Withdrawn() {
		t.Fatalf("Get(GO-2022-0617) = %v, want the withdrawn record", v)
	}
	if got := db.Affecting("Go", "k8s.io/kubernetes", "v1.20.0"); len(got) != 0 {
		t.Errorf("withdrawn record matched: %v", ids(got))
	}
	if s := db.Stats(); s.Withdrawn != 1 || s.Ecosystems["Go"].Withdrawn != 1 {
		t.Errorf("Stats withdrawn = %d (Go %d), want 1", s.Withdrawn, s.Ecosystems["Go"].Withdrawn)
	}
}

func TestDuplicatesNewestWins(t *testing.T) {
	old := osv.Entry{ID: "GHSA-dup", Modified: mustTime("2023-01-01T00:00:00Z"), Summary: "old",
		Affected: []osv.Affected{{Package: osv.Package{Ecosystem: "npm", Name: "p"}, Versions: []string{"1.0.0"}}}}
	newer := old
	newer.Modified, newer.Summary = mustTime("2024-01-01T00:00:00Z"), "new"
	newer.Affected = []osv.Affected{{Package: osv.Package{Ecosystem: "npm", Name: "p"}, Versions: []string{"2.0.0"}}}
	db := loadDir(t, Options{Sources: []string{writeRecords(t, newer)}}, writeRecords(t, old))
	if db.Len() != 1 || db.Get("GHSA-dup").Entry.Summary != "new" {
		t.Fatalf("Len %d, summary %q, want 1 and the newer record", db.Len(), db.Get("GHSA-dup").Entry.Summary)
	}
	if len(db.Affecting("npm", "p", "1.0.0")) != 0 || len(db.Affecting("npm", "p", "2.0.0")) != 1 {
		t.Error("the older duplicate's ranges are still indexed")
	}
}

// zipDir writes the files under dir into a zip archive and returns its path.
func zipDir(t testing.TB, dir string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		w, err := zw.Create(filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	})
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "all.zip")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSources(t *testing.T) {
	recordsZip := zipDir(t, "testdata/records")
	goZip := zipDir(t, "testdata/govulndb")
	tests := []struct {
		name     string
		source   string
		wantKind Kind
		wantIDs  []string
	}{
		{"directory", "testdata/records", KindDir, []string{"GHSA-j8r2-6x86-q33q", "GHSA-jfh8-c2jp-5v3q", "GHSA-r9p9-mrjm-926w", "GO-2022-0617", "GO-2022-0969"}},
		{"osv.dev zip", recordsZip, KindZip, []string{"GHSA-j8r2-6x86-q33q", "GHSA-jfh8-c2jp-5v3q", "GHSA-r9p9-mrjm-926w", "GO-2022-0617", "GO-2022-0969"}},
		{"vuln.go.dev directory with .json.gz", "testdata/govulndb", KindGoVulnDB, []string{"GO-2022-0617", "GO-2022-0969"}},
		{"vuln.go.dev zip", goZip, KindZip, []string{"GO-2022-0617", "GO-2022-0969"}},
		{"single file", "testdata/records/GO-2022-0969.json", KindFile, []string{"GO-2022-0969"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, err := Detect(tt.source)
			if err != nil || kind != tt.wantKind {
				t.Errorf("Detect = %v, %v, want %v", kind, err, tt.wantKind)
			}
			db := loadDir(t, Options{}, tt.source)
			if diff := cmp.Diff(tt.wantIDs, ids(db.All())); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if f := db.Get("GO-2022-0969").File(); !strings.HasPrefix(f, tt.source) || !strings.Contains(f, "GO-2022-0969.json") {
				t.Errorf("File() = %q, want it in %s", f, tt.source)
			}
		})
	}
}

// TestHiddenDirectories: records under a directory whose name starts
// with a dot are not read, from a directory or from an archive of it
// (FuzzLoadLayouts: the archive read ".0/0.json.gz", the directory not).
func TestHiddenDirectories(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"GO-2022-0969.json":       goodRecord,
		".git/objects/x.json":     "not OSV",
		"sub/.cache/GO-1.json.gz": "not gzip",
		".hidden-file.json":       strings.Replace(goodRecord, "GHSA-good", "GHSA-dotfile", 1),
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, src := range []string{dir, zipDir(t, dir)} {
		// loadDir fails the test on a problem, which a file of a hidden
		// directory, not OSV, would be.
		db := loadDir(t, Options{}, src)
		if diff := cmp.Diff([]string{"GHSA-dotfile", "GHSA-good"}, ids(db.All())); diff != "" {
			t.Errorf("%s: ids (-want +got):\n%s", src, diff)
		}
	}
}

func TestGoVulnDBIndexMismatch(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"index", "ID"} {
		if err := os.Mkdir(filepath.Join(dir, p), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"index/db.json":        `{"modified":"2024-01-01T00:00:00Z"}`,
		"index/vulns.json":     `[{"id":"GO-2022-0969"},{"id":"GO-2099-0001"},{"id":"../x"},{"id":"GO-2022-0617"}]`,
		"index/modules.json":   `[{"path":"golang.org/x/text","vulns":[{"id":"GO-2022-0617"}]},{"path":"k8s.io/kubernetes","vulns":[{"id":"GO-2022-0617"}]}]`,
		"ID/GO-2022-0617.json": mustRead(t, "testdata/records/GO-2022-0617.json"),
		"ID/GO-2022-0969.json": strings.Replace(mustRead(t, "testdata/records/GO-2022-0969.json"), `"GO-2022-0969"`, `"GO-2022-0970"`, 1),
	}
	for p, s := range files {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, problems, err := Load(context.Background(), Options{Sources: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, strings.TrimPrefix(p.Error(), dir+string(filepath.Separator)))
	}
	want := []string{
		`index/vulns.json: [2]: bad id "../x"`,
		"ID/GO-2022-0969.json: GO-2022-0970: file is for GO-2022-0969 but holds GO-2022-0970",
		"ID/GO-2099-0001.json.gz: GO-2099-0001: listed in index/vulns.json but missing",
		"index/modules.json: GO-2022-0617: lists module golang.org/x/text, which the record does not affect",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func mustRead(t testing.TB, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestLoadFatal(t *testing.T) {
	noRecords := t.TempDir()
	if err := os.WriteFile(filepath.Join(noRecords, "README.md"), []byte("not a record"), 0o600); err != nil {
		t.Fatal(err)
	}
	notOSV := filepath.Join(t.TempDir(), "README.json")
	if err := os.WriteFile(notOSV, []byte("# not a record"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
	}{
		{"no sources", Options{}},
		{"missing source", Options{Sources: []string{"testdata/nope"}}},
		{"corrupt zip only", Options{Sources: []string{writeCorruptZip(t)}}},
		// A wrong path must not pass for a database where nothing is
		// vulnerable.
		{"directory without records", Options{Sources: []string{noRecords}}},
		{"zip without records", Options{Sources: []string{zipDir(t, noRecords)}}},
		{"no record readable", Options{Sources: []string{notOSV}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load(context.Background(), tt.opts)
			if !errors.Is(err, ErrNoSource) {
				t.Errorf("err = %v, want ErrNoSource", err)
			}
		})
	}
	t.Run("one missing source beside a good one", func(t *testing.T) {
		db, problems, err := Load(context.Background(), Options{Sources: []string{"testdata/nope", "testdata/records"}})
		if err != nil || db.Len() != 5 || len(problems) != 1 || problems[0].File != "testdata/nope" {
			t.Errorf("Load = %d records, %v, %v; want 5 records and one problem for testdata/nope", db.Len(), problems, err)
		}
	})
	t.Run("a source without records beside a good one", func(t *testing.T) {
		db, problems, err := Load(context.Background(), Options{Sources: []string{t.TempDir(), "testdata/records"}})
		if err != nil || db.Len() != 5 || len(problems) != 1 || !strings.Contains(problems[0].Reason, "no OSV records") {
			t.Errorf("Load = %d records, %v, %v; want 5 records and one problem: no OSV records", db.Len(), problems, err)
		}
	})
	t.Run("unreadable KEV catalog", func(t *testing.T) {
		kev := filepath.Join(t.TempDir(), "kev.json")
		if err := os.WriteFile(kev, []byte("<html>"), 0o600); err != nil {
			t.Fatal(err)
		}
		db, problems, err := Load(context.Background(), Options{Sources: []string{"testdata/records"}, KEV: kev})
		if err != nil || db.Len() != 5 || len(problems) != 1 || !errors.Is(problems[0], ErrInvalidKEV) || !strings.HasPrefix(problems[0].Error(), kev+": invalid KEV catalog: ") {
			t.Errorf("Load = %d records, %v, %v; want 5 records and one KEV problem", db.Len(), problems, err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, _, err := Load(ctx, Options{Sources: []string{"testdata/records"}}); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

func writeCorruptZip(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "all.zip")
	if err := os.WriteFile(p, []byte("PK\x03\x04 not really"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenDir(t *testing.T) {
	dir := t.TempDir()
	// The layout package dbupdate writes: <ECOSYSTEM>/all.zip and
	// meta.json, kev.json and kev.meta.json at the top.
	for _, eco := range []string{"Go", "Maven"} {
		if err := os.Mkdir(filepath.Join(dir, eco), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, eco, "meta.json"), []byte(`{"url":"https://example.com"}`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for src, dst := range map[string]string{
		zipDir(t, "testdata/govulndb"): "Go/all.zip",
		"testdata/kev.json":            "kev.json",
	} {
		if err := os.WriteFile(filepath.Join(dir, dst), []byte(mustRead(t, src)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// An extracted ecosystem directory beside the archives.
	if err := os.WriteFile(filepath.Join(dir, "Maven", "GHSA-jfh8-c2jp-5v3q.json"), []byte(mustRead(t, "testdata/records/GHSA-jfh8-c2jp-5v3q.json")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kev.meta.json"), []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	db, problems, err := OpenDir(context.Background(), dir, Options{})
	if err != nil || len(problems) > 0 {
		t.Fatalf("OpenDir: %v, %v", problems, err)
	}
	if diff := cmp.Diff([]string{"GHSA-jfh8-c2jp-5v3q", "GO-2022-0617", "GO-2022-0969"}, ids(db.All())); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	if !db.Get("CVE-2021-44228").KnownExploited {
		t.Error("kev.json was not read")
	}

	t.Run("missing", func(t *testing.T) {
		if _, _, err := OpenDir(context.Background(), filepath.Join(dir, "nope"), Options{}); !errors.Is(err, ErrNoDatabase) {
			t.Errorf("err = %v, want ErrNoDatabase", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		if _, _, err := OpenDir(context.Background(), t.TempDir(), Options{}); !errors.Is(err, ErrNoDatabase) {
			t.Errorf("err = %v, want ErrNoDatabase", err)
		}
	})
}

func TestNilDB(t *testing.T) {
	var db *DB
	if db.Len() != 0 || db.Get("x") != nil || db.Aliases("x") != nil || db.Affecting("Go", "x", "v1") != nil || db.FixedVersion(nil, "Go", "x", "v1") != "" || db.All() != nil {
		t.Error("nil DB is not empty")
	}
	if db.Stats().Records != 0 {
		t.Error("nil DB stats are not zero")
	}
}

// TestConcurrentLookups runs lookups from many goroutines; with -race it
// checks that a loaded DB is safe for concurrent use.
func TestConcurrentLookups(t *testing.T) {
	db := loadDir(t, Options{KEV: "testdata/kev.json"}, "testdata/records")
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 100 {
				for _, v := range db.Affecting("Go", "stdlib", "go1.18.1") {
					db.FixedVersion(v, "Go", "stdlib", "go1.18.1")
					db.Aliases(v.Entry.ID)
				}
				db.Get("CVE-2021-44228")
				db.Stats()
			}
		}()
	}
	for range 8 {
		<-done
	}
}

// TestAffectedFunctions reads GitHub's affected_functions from real
// records: a named function per affected package, and nothing from [""].
func TestAffectedFunctions(t *testing.T) {
	db := loadDir(t, Options{}, "testdata/ghsa")
	tests := []struct {
		id   string
		want []Function
	}{
		{"GHSA-p6mc-m468-83gw", []Function{
			{Ecosystem: "npm", Module: "lodash", Package: "lodash", Symbol: "baseSet", Source: SourceOSV},
			{Ecosystem: "npm", Module: "lodash-es", Package: "lodash-es", Symbol: "baseSet", Source: SourceOSV},
		}},
		{"GHSA-57fc-8q82-gfp3", []Function{
			{Ecosystem: "PyPI", Module: "langchain", Package: "langchain.chains", Symbol: "PALChain", Source: SourceOSV},
		}},
		{"GHSA-29mw-wpgm-hmr9", nil},
		// Pillow's modules are capitalised from the top (PIL), so the
		// names start with one: kept, not dropped as a name without
		// its module. Where the module ends (PIL.ImageMath is a module,
		// not a class of PIL) is left to matching, which the frame's
		// module tells (attribution.Func.Matches).
		{"GHSA-3f63-hfp8-52jq", []Function{
			{Ecosystem: "PyPI", Module: "Pillow", Package: "PIL", Symbol: "ImageMath.eval", Source: SourceOSV},
		}},
		{"GHSA-8ghj-p4vj-mr35", []Function{
			{Ecosystem: "PyPI", Module: "pillow", Package: "PIL", Symbol: "ImageFont", Source: SourceOSV},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			v := db.Get(tt.id)
			if v == nil {
				t.Fatalf("Get(%s) = nil", tt.id)
			}
			if diff := cmp.Diff(tt.want, v.Functions, ignoreEntries); diff != "" {
				t.Errorf("functions (-want +got):\n%s", diff)
			}
		})
	}
	if s := db.Stats(); s.WithSymbols != 4 {
		t.Errorf("Stats.WithSymbols = %d, want 4", s.WithSymbols)
	}
	requests := loadDir(t, Options{}, "testdata/records").Get("GHSA-j8r2-6x86-q33q").Functions
	want := []Function{{Ecosystem: "PyPI", Module: "requests", Package: "requests.sessions", Symbol: "SessionRedirectMixin.rebuild_proxies", Source: SourceOSV}}
	if diff := cmp.Diff(want, requests, ignoreEntries); diff != "" {
		t.Errorf("GHSA-j8r2-6x86-q33q functions (-want +got):\n%s", diff)
	}
}

func TestSplitAffectedFunction(t *testing.T) {
	tests := []struct {
		eco, name, in string
		pkg, sym      string
		ok            bool
	}{
		{"npm", "lodash", "lodash.baseSet", "lodash", "baseSet", true},
		{"npm", "lodash", "(lodash).trim", "lodash", "trim", true},
		{"npm", "@babel/traverse", "(@babel/traverse).evaluate", "@babel/traverse", "evaluate", true},
		{"npm", "lodash.trim", "lodash.trim.trim", "lodash.trim", "trim", true},
		{"npm", "lodash-es", "lodash.baseSet", "lodash-es", "baseSet", true},
		{"npm", "minimist", "setKey", "minimist", "setKey", true},
		{"npm", "lodash", "", "", "", false},
		{"npm", "lodash", "(lodash)", "", "", false},
		{"PyPI", "langchain", "langchain.chains.PALChain", "langchain.chains", "PALChain", true},
		{"PyPI", "PyYAML", "yaml.constructor.FullConstructor.construct_python_object_apply", "yaml.constructor", "FullConstructor.construct_python_object_apply", true},
		{"PyPI", "jinja2", "jinja2.utils.urlize", "jinja2.utils", "urlize", true},
		{"PyPI", "jinja2", "urlize", "", "", false},
		{"PyPI", "x", "x..f", "", "", false},
		{"PyPI", "Pillow", "PIL.ImageMath.eval", "PIL", "ImageMath.eval", true},
		{"PyPI", "pillow", "PIL.ImageFont", "PIL", "ImageFont", true},
		{"PyPI", "Pillow", "PIL", "", "", false},
		{"Maven", "org.yaml:snakeyaml", "org.yaml.snakeyaml.constructor.Constructor$ConstructYamlObject.construct", "org.yaml.snakeyaml.constructor", "Constructor$ConstructYamlObject.construct", true},
		{"Maven", "org.apache.logging.log4j:log4j-core", "org.apache.logging.log4j.core.lookup.JndiLookup", "org.apache.logging.log4j.core.lookup", "JndiLookup", true},
		{"Maven", "g:a", "org.example.internal", "org.example.internal", "", true},
		{"Maven", "g:a", "Lookup.lookup", "", "", false},
		{"crates.io", "x", "x::f", "", "", false},
		{"PyPI", "x", "x.f (deprecated)", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.eco+"/"+tt.in, func(t *testing.T) {
			pkg, sym, ok := splitAffectedFunction(tt.eco, tt.name, tt.in)
			if pkg != tt.pkg || sym != tt.sym || ok != tt.ok {
				t.Errorf("splitAffectedFunction(%q, %q, %q) = %q, %q, %v; want %q, %q, %v", tt.eco, tt.name, tt.in, pkg, sym, ok, tt.pkg, tt.sym, tt.ok)
			}
		})
	}
}

// TestFunctionsAt: the functions of a version are those of the affected[]
// entries whose ranges include it (GO-2023-1497 names, for
// github.com/sylabs/scs-library-client, Client.UploadImage and
// Client.httpGetRangeRequest below 1.3.4 and Client.legacyDownloadImage in
// [1.4.0, 1.4.2); all of them were looked for at any version, so that
// UploadImage running made 1.4.1 executed), with the knowledge base's;
// all of them where no entry listing functions includes the version.
func TestFunctionsAt(t *testing.T) {
	const mod = "github.com/sylabs/scs-library-client"
	entry := func(introduced, fix string, symbols ...string) osv.Affected {
		return osv.Affected{
			Package:           osv.Package{Ecosystem: "Go", Name: mod},
			Ranges:            []osv.Range{{Type: osv.RangeSemver, Events: []osv.Event{intro(introduced), fixed(fix)}}},
			EcosystemSpecific: &osv.EcosystemSpecific{Imports: []osv.Import{{Path: mod + "/client", Symbols: symbols}}},
		}
	}
	db := loadDir(t, Options{}, writeRecords(t, osv.Entry{ID: "GO-2023-1497", Affected: []osv.Affected{
		entry("0", "1.3.4", "Client.ConcurrentDownloadImage", "Client.UploadImage", "Client.httpGetRangeRequest"),
		entry("1.4.0", "1.4.2", "Client.ConcurrentDownloadImage", "Client.legacyDownloadImage"),
	}}))
	v := db.Get("GO-2023-1497")
	for version, want := range map[string][]string{
		"v1.3.0": {"Client.ConcurrentDownloadImage", "Client.UploadImage", "Client.httpGetRangeRequest"},
		"v1.4.1": {"Client.ConcurrentDownloadImage", "Client.legacyDownloadImage"},
		// In neither range: every function, as before.
		"v1.3.5": {"Client.ConcurrentDownloadImage", "Client.UploadImage", "Client.httpGetRangeRequest", "Client.ConcurrentDownloadImage", "Client.legacyDownloadImage"},
	} {
		var got []string
		for _, fn := range v.FunctionsAt("Go", mod, version) {
			got = append(got, fn.Symbol)
		}
		if !slices.Equal(got, want) {
			t.Errorf("FunctionsAt(%s) = %v, want %v", version, got, want)
		}
	}
}

// TestFunctionsAtEntryWithoutFunctions: an affected[] entry that includes
// the version and lists no function names no vulnerable code at that
// version, so the record gives none of the package's functions there. The
// functions of another entry, for other versions, were looked for instead:
// the verdict was decided on code not vulnerable at the version, at symbol
// level, and a loaded verdict could be exported not_affected where nothing
// names the vulnerable code (docs/priority.md, "What to look for").
func TestFunctionsAtEntryWithoutFunctions(t *testing.T) {
	npm := func(introduced, fix string, functions ...string) osv.Affected {
		a := osv.Affected{
			Package: osv.Package{Ecosystem: "npm", Name: "lodash"},
			Ranges:  []osv.Range{{Type: osv.RangeSemver, Events: []osv.Event{intro(introduced), fixed(fix)}}},
		}
		if len(functions) > 0 {
			a.EcosystemSpecific = &osv.EcosystemSpecific{AffectedFunctions: functions}
		}
		return a
	}
	const mod = "example.com/m"
	goEntry := func(introduced, fix string, imports ...osv.Import) osv.Affected {
		a := osv.Affected{
			Package: osv.Package{Ecosystem: "Go", Name: mod},
			Ranges:  []osv.Range{{Type: osv.RangeSemver, Events: []osv.Event{intro(introduced), fixed(fix)}}},
		}
		if len(imports) > 0 {
			a.EcosystemSpecific = &osv.EcosystemSpecific{Imports: imports}
		}
		return a
	}
	db := loadDir(t, Options{}, writeRecords(t,
		osv.Entry{ID: "GHSA-aaaa-bbbb-cccc", Affected: []osv.Affected{
			npm("0", "4.17.12", "lodash.defaultsDeep"),
			npm("4.17.13", "4.17.20"),
		}},
		osv.Entry{ID: "GO-2099-0001", Affected: []osv.Affected{
			goEntry("0", "1.3.0", osv.Import{Path: mod + "/client", Symbols: []string{"Client.Upload"}}),
			goEntry("1.4.0", "1.4.2"),
		}},
	))
	tests := []struct {
		name, id, eco, pkg, version string
		want                        []string
	}{
		{"npm: the entry that lists them", "GHSA-aaaa-bbbb-cccc", "npm", "lodash", "4.17.4", []string{"defaultsDeep"}},
		{"npm: an entry that lists none", "GHSA-aaaa-bbbb-cccc", "npm", "lodash", "4.17.15", nil},
		{"npm: in no entry", "GHSA-aaaa-bbbb-cccc", "npm", "lodash", "4.17.12", []string{"defaultsDeep"}},
		{"Go: the entry that lists them", "GO-2099-0001", "Go", mod, "v1.2.0", []string{"Client.Upload"}},
		{"Go: an entry without imports (every package)", "GO-2099-0001", "Go", mod, "v1.4.1", nil},
		{"Go: in no entry", "GO-2099-0001", "Go", mod, "v1.3.5", []string{"Client.Upload"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, fn := range db.Get(tt.id).FunctionsAt(tt.eco, tt.pkg, tt.version) {
				got = append(got, fn.Symbol)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("FunctionsAt(%s) = %v, want %v", tt.version, got, tt.want)
			}
		})
	}
}
