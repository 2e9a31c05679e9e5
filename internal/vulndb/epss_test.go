package vulndb

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
	"time"

	"github.com/google/go-cmp/cmp"
)

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParseEPSS(t *testing.T) {
	fixture, err := os.ReadFile("testdata/epss.csv")
	if err != nil {
		t.Fatal(err)
	}
	gz := gzipped(t, fixture)
	corrupt := bytes.Clone(gz)
	corrupt[len(corrupt)-6] ^= 0xff // the CRC-32 of the gzip trailer
	const header = "#model_version:v2025.03.14,score_date:2026-11-30T12:55:00Z\ncve,epss,percentile\n"
	tests := []struct {
		name         string
		in           []byte
		wantErr      string
		wantScores   map[string]float64
		wantDate     time.Time
		wantProblems []string
	}{
		{name: "plain", in: fixture, wantDate: time.Date(2026, 11, 30, 12, 55, 0, 0, time.UTC),
			wantScores: map[string]float64{"CVE-1999-0001": 0.01141, "CVE-2020-28498": 0.00291, "CVE-2021-44228": 0.94358, "CVE-2022-27664": 0.01265, "CVE-2023-32681": 0.06165}},
		{name: "gzipped", in: gz, wantDate: time.Date(2026, 11, 30, 12, 55, 0, 0, time.UTC),
			wantScores: map[string]float64{"CVE-1999-0001": 0.01141, "CVE-2020-28498": 0.00291, "CVE-2021-44228": 0.94358, "CVE-2022-27664": 0.01265, "CVE-2023-32681": 0.06165}},
		{name: "offset date and CRLF", in: []byte("#model_version:v2023.03.01,score_date:2024-05-01T00:00:00+0000\r\ncve,epss,percentile\r\nCVE-2021-44228,0.97,0.99\r\n"),
			wantDate: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), wantScores: map[string]float64{"CVE-2021-44228": 0.97}},
		{name: "bare date", in: []byte("#model_version:v2022.01.01,score_date:2022-06-01\ncve,epss,percentile\nCVE-2021-44228,0.97,0.99\n"),
			wantDate: time.Date(2022, 6, 1, 0, 0, 0, 0, time.UTC), wantScores: map[string]float64{"CVE-2021-44228": 0.97}},
		{name: "bad rows skipped", in: []byte(header + "CVE-2021-44228,0.97,0.99\nCVE-2021-44228,0.5,0.5\nGHSA-jfh8-c2jp-5v3q,0.1,0.1\nCVE-2022-27664,1.5,0.3\nCVE-2023-32681,0.1\nCVE-2020-28498,NaN,0.2\n"),
			wantDate: time.Date(2026, 11, 30, 12, 55, 0, 0, time.UTC), wantScores: map[string]float64{"CVE-2021-44228": 0.97},
			wantProblems: []string{
				"epss.csv: line 4: listed twice",
				`epss.csv: line 5: "GHSA-jfh8-c2jp-5v3q" is not a CVE id`,
				`epss.csv: line 6: CVE-2022-27664 epss: "1.5" is not a number from 0 to 1`,
				"epss.csv: line 7: 2 fields, want 3 (cve,epss,percentile)",
				`epss.csv: line 8: CVE-2020-28498 epss: "NaN" is not a number from 0 to 1`,
			}},
		{name: "empty", in: nil, wantErr: "epss.csv: invalid EPSS file: empty"},
		{name: "HTML error page", in: []byte("<html>"), wantErr: `line 1: "<html>" is not the #model_version:...,score_date:... comment`},
		{name: "no score date", in: []byte("#model_version:v2025.03.14\ncve,epss,percentile\n"), wantErr: "lacks model_version or score_date"},
		{name: "bad score date", in: []byte("#model_version:v2025.03.14,score_date:yesterday\ncve,epss,percentile\n"), wantErr: `score_date "yesterday" is not a date`},
		{name: "no header", in: []byte("#model_version:v2025.03.14,score_date:2026-11-30T12:55:00Z\n"), wantErr: "no header line"},
		{name: "other header", in: []byte("#model_version:v2025.03.14,score_date:2026-11-30T12:55:00Z\ncve,score\n"), wantErr: `line 2: header "cve,score"`},
		{name: "no rows", in: []byte(header), wantErr: "no scores"},
		{name: "truncated gzip", in: gz[:len(gz)/2], wantErr: "the input ends inside its gzip stream, after "},
		{name: "gzip header cut short", in: gz[:5], wantErr: "epss.csv: invalid EPSS file: the input ends inside its gzip stream, after 0 bytes decompressed: it is cut short"},
		{name: "corrupt gzip", in: corrupt, wantErr: "gzip: invalid checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, problems, err := ParseEPSS(bytes.NewReader(tt.in), "epss.csv")
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalidEPSS) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want ErrInvalidEPSS saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			scores := map[string]float64{}
			for cve, s := range e.Scores {
				scores[cve] = s.Probability
				if !s.Date.Equal(tt.wantDate) || s.CVE != cve {
					t.Errorf("%s: %+v", cve, s)
				}
			}
			var probs []string
			for _, p := range problems {
				probs = append(probs, p.Error())
				if !errors.Is(p, ErrInvalidEPSS) {
					t.Errorf("problem %v is not ErrInvalidEPSS", p)
				}
			}
			if diff := cmp.Diff(tt.wantScores, scores); diff != "" {
				t.Errorf("scores (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantProblems, probs); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if !e.Date.Equal(tt.wantDate) {
				t.Errorf("date %v, want %v", e.Date, tt.wantDate)
			}
		})
	}
}

// TestEPSS checks that records get the score of their CVE, through an
// alias, and that OpenDir reads the file db update stores.
func TestEPSS(t *testing.T) {
	fixture, err := os.ReadFile("testdata/epss.csv")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "epss.csv.gz"), gzipped(t, fixture), 0o644); err != nil {
		t.Fatal(err)
	}
	// epss.meta.json beside it is no record.
	if err := os.WriteFile(filepath.Join(dir, "epss.meta.json"), []byte(`{"url":"x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	db, problems, err := OpenDir(context.Background(), dir, Options{Sources: []string{"testdata/records"}})
	if err != nil || len(problems) > 0 {
		t.Fatalf("OpenDir: %v, %v", problems, err)
	}
	date := time.Date(2026, 11, 30, 12, 55, 0, 0, time.UTC)
	tests := []struct {
		id   string
		want *EPSSScore
	}{
		{"GHSA-jfh8-c2jp-5v3q", &EPSSScore{CVE: "CVE-2021-44228", Probability: 0.94358, Percentile: 0.99957, Date: date}},
		{"GO-2022-0969", &EPSSScore{CVE: "CVE-2022-27664", Probability: 0.01265, Percentile: 0.78950, Date: date}},
		{"GO-2022-0617", nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, db.Get(tt.id).EPSS); diff != "" {
			t.Errorf("%s EPSS (-want +got):\n%s", tt.id, diff)
		}
	}
	s := db.Stats()
	if s.EPSSModel != "v2025.03.14" || !s.EPSSDate.Equal(date) || s.EPSSCount != 5 {
		t.Errorf("stats: model %q, date %v, count %d", s.EPSSModel, s.EPSSDate, s.EPSSCount)
	}

	// A damaged file costs the scores, not the database.
	if err := os.WriteFile(filepath.Join(dir, "epss.csv.gz"), []byte("<html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	db, problems, err = OpenDir(context.Background(), dir, Options{Sources: []string{"testdata/records"}})
	if err != nil || len(problems) != 1 || !errors.Is(problems[0], ErrInvalidEPSS) || db.Len() != 5 {
		t.Fatalf("OpenDir with a damaged EPSS file: %d records, problems %v, err %v", db.Len(), problems, err)
	}
}

// BenchmarkParseEPSS parses a gzipped file the size of FIRST's (300,000
// CVEs), as loading the database does once.
func BenchmarkParseEPSS(b *testing.B) {
	var csv bytes.Buffer
	csv.WriteString("#model_version:v2025.03.14,score_date:2026-11-30T12:55:00Z\ncve,epss,percentile\n")
	const rows = 300_000
	for i := range rows {
		fmt.Fprintf(&csv, "CVE-%d-%05d,0.%05d,0.%05d\n", 1999+i/100_000, i%100_000, i%99_991, i%99_989)
	}
	gz := gzipped(b, csv.Bytes())
	b.SetBytes(int64(csv.Len()))
	for b.Loop() {
		if _, problems, err := ParseEPSS(bytes.NewReader(gz), "epss.csv.gz"); err != nil || len(problems) > 0 {
			b.Fatal(err, problems)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
