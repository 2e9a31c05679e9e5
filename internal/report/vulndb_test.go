package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/vulndb"
)

// TestVulnDBStated checks that every format that speaks of KEV or EPSS
// says whether the catalog and the scores were loaded: without them a
// finding's known_exploited false and its missing epss would read as
// CISA's and FIRST's word.
func TestVulnDBStated(t *testing.T) {
	released := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	kev := vulndb.Stats{KEVVersion: "2026.12.01", KEVReleased: released, KEVCount: 1484}
	epss := vulndb.Stats{EPSSModel: "v2025.03.14", EPSSDate: time.Date(2026, 11, 30, 12, 55, 0, 0, time.UTC), EPSSCount: 301234}
	both := kev
	both.EPSSModel, both.EPSSDate, both.EPSSCount = epss.EPSSModel, epss.EPSSDate, epss.EPSSCount
	count := func(n int) *int { return &n }
	kevJSON := jsonKEVData{Loaded: true, Version: "2026.12.01", Released: released, Count: count(1484)}
	epssJSON := jsonEPSSData{Loaded: true, Model: "v2025.03.14", Date: "2026-11-30", Count: count(301234)}
	tests := []struct {
		name  string
		stats vulndb.Stats
		want  JSONVulnDB
		// note is how the table's and the Markdown's note of what is
		// missing starts, "" for none.
		note string
	}{
		{"nothing loaded", vulndb.Stats{}, JSONVulnDB{}, "Without a CISA KEV catalog or EPSS scores, "},
		{"KEV only", kev, JSONVulnDB{KEV: kevJSON}, "Without EPSS scores, "},
		{"EPSS only", epss, JSONVulnDB{EPSS: epssJSON}, "Without a CISA KEV catalog, "},
		{"both", both, JSONVulnDB{KEV: kevJSON, EPSS: epssJSON}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := result(t)
			r.VulnDB = tt.stats
			write := func(format string) []byte {
				t.Helper()
				f, err := Lookup(format, Options{})
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				if err := f.Write(&buf, r); err != nil {
					t.Fatal(err)
				}
				return buf.Bytes()
			}

			var report struct {
				VulnDB *JSONVulnDB `json:"vulndb"`
			}
			if err := json.Unmarshal(write("json"), &report); err != nil {
				t.Fatal(err)
			}
			if report.VulnDB == nil {
				t.Errorf("JSON report has no vulndb")
			} else if diff := cmp.Diff(tt.want, *report.VulnDB); diff != "" {
				t.Errorf("JSON vulndb (-want +got):\n%s", diff)
			}
			var sarif struct {
				Runs []struct {
					Properties map[string]JSONVulnDB `json:"properties"`
				} `json:"runs"`
			}
			if err := json.Unmarshal(write("sarif"), &sarif); err != nil {
				t.Fatal(err)
			}
			if got, ok := sarif.Runs[0].Properties["evident/vulndb"]; !ok {
				t.Errorf("SARIF run properties %v have no evident/vulndb", sarif.Runs[0].Properties)
			} else if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("SARIF evident/vulndb (-want +got):\n%s", diff)
			}

			for _, format := range []string{"table", "markdown"} {
				out := string(write(format))
				if got := strings.Count(out, "Without "); got != min(1, len(tt.note)) || !strings.Contains(out, tt.note) {
					t.Errorf("%s has %d notes, want one starting %q (none if empty)\n%s", format, got, tt.note, out)
				}
			}
		})
	}
}
