package httpapi

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/vulndb"
)

// TestKEVFilterNeedsCatalog: without a KEV catalog no finding is marked
// known exploited, so a kev filter, true or false, is a 400 that names
// the parameter and how to load a catalog, rather than an empty list
// that reads as "nothing is exploited"; with one, it filters.
func TestKEVFilterNeedsCatalog(t *testing.T) {
	osvDir := filepath.Join("..", "..", "examples", "shop", "recorded", "osv")
	noKEV, _, err := vulndb.Load(t.Context(), vulndb.Options{Sources: []string{osvDir}})
	if err != nil {
		t.Fatal(err)
	}
	withKEV, _, err := vulndb.Load(t.Context(), vulndb.Options{Sources: []string{osvDir}, KEV: filepath.Join("testdata", "kev.json")})
	if err != nil {
		t.Fatal(err)
	}
	const how = `no KEV catalog is loaded, so no finding is known to be exploited or not: run "evident db update"`
	tests := []struct {
		name  string
		vulns *vulndb.DB
		query string
		// status is the answer's; with 200, want are the IDs of the
		// findings listed, else want[0] is in the error.
		status int
		want   []string
	}{
		{"NoDatabase/true", nil, "kev=true", 400, []string{`kev "true": ` + how}},
		{"NoDatabase/false", nil, "kev=false", 400, []string{`kev "false": ` + how}},
		{"NoDatabase/empty", nil, "kev=", 200, []string{"GO-2021-0113"}},
		{"NoCatalog/true", noKEV, "kev=true", 400, []string{`kev "true": ` + how}},
		{"NoCatalog/false", noKEV, "kev=false&tier=P1", 400, []string{`kev "false": ` + how}},
		{"NoCatalog/invalid", noKEV, "kev=yes", 400, []string{`kev "yes": want one of true, false`}},
		{"NoCatalog/none", noKEV, "", 200, []string{"GO-2021-0113"}},
		{"Catalog/true", withKEV, "kev=true", 200, []string{}},
		{"Catalog/false", withKEV, "kev=false", 200, []string{"GO-2021-0113"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, base := start(t, Deps{State: newState(t), Vulns: tt.vulns})
			code, body := get(t, base+"/api/v1/findings?"+tt.query)
			if code != tt.status {
				t.Fatalf("GET /api/v1/findings?%s = %d %.400s, want %d", tt.query, code, body, tt.status)
			}
			var got struct {
				Error    string
				Findings []struct{ Vulnerability struct{ ID string } }
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			if code != 200 {
				if !strings.Contains(got.Error, tt.want[0]) {
					t.Errorf("GET /api/v1/findings?%s: error %q, want %q in it", tt.query, got.Error, tt.want[0])
				}
				return
			}
			ids := []string{}
			for _, f := range got.Findings {
				ids = append(ids, f.Vulnerability.ID)
			}
			if diff := cmp.Diff(tt.want, ids); diff != "" {
				t.Errorf("GET /api/v1/findings?%s (-want +got):\n%s", tt.query, diff)
			}
		})
	}
}
