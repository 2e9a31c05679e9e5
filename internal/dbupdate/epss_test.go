package dbupdate

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// epssFile returns testdata/epss.csv (FIRST's format, five CVEs) with
// extra rows, gzipped as FIRST serves it.
func epssFile(t testing.TB, extra ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "epss.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range extra {
		data = append(data, row+"\n"...)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestUpdateEPSS downloads the EPSS file, confirms it with a 304, and
// refuses replacements that are damaged or cut short, keeping the old one.
func TestUpdateEPSS(t *testing.T) {
	s := newGCSServer(t)
	const path = "/epss_scores-current.csv.gz"
	var rows []string
	for i := range 20 {
		rows = append(rows, fmt.Sprintf("CVE-2026-%04d,0.0%d,0.%d", 1000+i, i%10, 10+i))
	}
	good := epssFile(t, rows...)
	s.put(path, &object{body: good})
	cfg := testConfig(t, s, false, "Go")
	s.put("/osv-vulnerabilities/Go/all.zip", &object{body: osvArchive(t)})
	cfg.EPSSURL = s.URL + path
	stored := filepath.Join(cfg.Dir, "vulndb", "epss.csv.gz")

	res, err := Update(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := []summary{
		{Name: "Go", Status: StatusDownloaded, Bytes: int64(len(osvArchive(t))), Records: 2},
		{Name: EPSSName, Status: StatusDownloaded, Bytes: int64(len(good)), Records: 25},
	}
	if diff := cmp.Diff(want, summarize(res)); diff != "" {
		t.Errorf("first update (-want +got):\n%s", diff)
	}
	if got := readFile(t, stored); !bytes.Equal(got, good) {
		t.Errorf("epss.csv.gz: %d bytes, want the %d served", len(got), len(good))
	}
	if m, ok := readMeta(filepath.Join(cfg.Dir, "vulndb", "epss.meta.json")); !ok || m.Records != 25 || m.URL != cfg.EPSSURL {
		t.Errorf("epss.meta.json = %+v, %v", m, ok)
	}

	res, err = Update(context.Background(), cfg)
	if err != nil || res.Files[1].Status != StatusUpToDate {
		t.Fatalf("second Update: %v, %v, want EPSS up to date", err, res.Files[1].Status)
	}

	truncated := good[:len(good)-10]
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-6] ^= 0xff // the gzip trailer's CRC-32
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"HTML instead of the file", []byte("<html>maintenance</html>"), "is not the #model_version"},
		{"gzip cut short", truncated, "the input ends inside its gzip stream, after "},
		{"gzip checksum wrong", corrupt, "invalid checksum"},
		{"a malformed row", epssFile(t, append(rows, "CVE-2026-9999,0.5")...), "1 malformed rows, the first: epss.csv.gz: line 28: 2 fields"},
		{"a fifth of the scores", epssFile(t), "5 scores, the last download had 25"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.put(path, &object{body: tt.body})
			_, err := Update(context.Background(), cfg)
			if !errors.Is(err, ErrEPSS) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Update error = %v, want ErrEPSS saying %q", err, tt.want)
			}
			if got := readFile(t, stored); !bytes.Equal(got, good) {
				t.Error("the old EPSS file was replaced")
			}
			assertNoTempFiles(t, cfg.Dir)
		})
	}
}
