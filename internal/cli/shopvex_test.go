package cli

import (
	"bytes"
	"encoding/json"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/openvex/go-vex/pkg/vex"
)

// TestAnalyzeShopVEX checks the VEX documents of the example for each of
// its services the way scanners read them: the OpenVEX statement that
// go-vex finds for a finding's vulnerability, with the service's product
// (pkg:generic/shop/<service>, matched whatever the version) and the
// package as subcomponent, has the finding's own status; and the CycloneDX
// document has exactly one analysis for each (vulnerability, package in
// that service's product), in that status.
func TestAnalyzeShopVEX(t *testing.T) {
	var rep struct {
		Findings []struct {
			Vulnerability struct {
				ID      string   `json:"id"`
				Aliases []string `json:"aliases"`
			} `json:"vulnerability"`
			Service string `json:"service"`
			Package struct {
				PURL string `json:"purl"`
			} `json:"package"`
			VEX struct {
				Status string `json:"status"`
			} `json:"vex"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(analyzeShop(t, "json"), &rep); err != nil {
		t.Fatal(err)
	}
	doc, err := vex.Parse(analyzeShop(t, "openvex"))
	if err != nil {
		t.Fatal(err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(analyzeShop(t, "cyclonedx")), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	states := map[string][]cdx.ImpactAnalysisState{} // "id bom-ref" -> analyses
	for _, v := range *bom.Vulnerabilities {
		for _, a := range *v.Affects {
			link, err := cdx.ParseBOMLink(a.Ref)
			if err != nil || link.SerialNumber() != bom.SerialNumber {
				t.Fatalf("%s: affects %q is no BOM-Link into the document", v.ID, a.Ref)
			}
			states[v.ID+" "+link.Reference()] = append(states[v.ID+" "+link.Reference()], v.Analysis.State)
		}
	}
	cdxState := map[string]cdx.ImpactAnalysisState{"affected": cdx.IASExploitable, "not_affected": cdx.IASNotAffected, "under_investigation": cdx.IASInTriage}
	if len(rep.Findings) == 0 {
		t.Fatal("no findings")
	}
	for _, f := range rep.Findings {
		product := "pkg:generic/shop/" + f.Service
		for _, id := range append([]string{f.Vulnerability.ID}, f.Vulnerability.Aliases...) {
			m := doc.Matches(id, product+"@1.0.0", []string{f.Package.PURL})
			if len(m) != 1 || string(m[0].Status) != f.VEX.Status {
				t.Errorf("OpenVEX for %s in %s: %d statements (%+v), want one %s", id, f.Service, len(m), m, f.VEX.Status)
			}
			ref := "product:" + product + "#" + f.Package.PURL
			if got := states[id+" "+ref]; len(got) != 1 || got[0] != cdxState[f.VEX.Status] {
				t.Errorf("CycloneDX for %s in %s: analyses %v, want one %s", id, ref, got, cdxState[f.VEX.Status])
			}
		}
	}
}
