package assess

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/vulndb"
)

// fakeVulns is a hand-written vulnerability database keyed by id.
type fakeVulns map[string]*vulndb.Vuln

func (f fakeVulns) Get(id string) *vulndb.Vuln { return f[id] }

// TestPrioritySeverityAndEPSS checks the reasons and tiers that the
// severity's source and EPSS give an executed finding in an exposed
// service that reaches PII: the finding's GO record carries no severity,
// so its tier depends on what the database lends it.
func TestPrioritySeverityAndEPSS(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Sensitivity = []SensitivityRule{{Store: "sqlite://shop/customers", Labels: []string{"pii"}}}
	snap := shop(t, 10_000, 2*time.Hour)
	day := time.Date(2026, 11, 30, 12, 55, 0, 0, time.UTC)
	const vector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"
	tests := []struct {
		name         string
		vuln         vulndb.Vuln
		wantTier     string
		wantScore    int
		wantSeverity string
		wantFactor   string // the reason after severity; empty for none
	}{
		{
			name:         "no severity anywhere",
			vuln:         vulndb.Vuln{Severity: vulndb.Severity{Level: vulndb.LevelUnknown}},
			wantTier:     "P2",
			wantScore:    65,
			wantSeverity: "+15 severity unknown",
		},
		{
			name:         "CVSS from the GHSA alias",
			vuln:         vulndb.Vuln{Severity: vulndb.Severity{Level: vulndb.LevelHigh, Score: 7.5, Vector: vector, Source: "GHSA-69cg-p879-7622"}},
			wantTier:     "P1",
			wantScore:    75,
			wantSeverity: "+25 severity high (CVSS 7.5 from GHSA-69cg-p879-7622)",
		},
		{
			name:         "qualitative rating from the GHSA alias",
			vuln:         vulndb.Vuln{Severity: vulndb.Severity{Level: vulndb.LevelMedium, Source: "GHSA-69cg-p879-7622"}},
			wantTier:     "P2",
			wantScore:    65,
			wantSeverity: "+15 severity medium (from GHSA-69cg-p879-7622)",
		},
		{
			name: "medium and likely exploited by EPSS probability",
			vuln: vulndb.Vuln{
				Severity: vulndb.Severity{Level: vulndb.LevelMedium, Score: 5.3, Source: "GHSA-69cg-p879-7622"},
				EPSS:     &vulndb.EPSSScore{CVE: "CVE-2021-38561", Probability: 0.31, Percentile: 0.9, Date: day},
			},
			wantTier:     "P1",
			wantScore:    75,
			wantSeverity: "+15 severity medium (CVSS 5.3 from GHSA-69cg-p879-7622)",
			wantFactor:   "+10 EPSS 0.310 (percentile 0.900) for CVE-2021-38561 on 2026-11-30: likely exploited",
		},
		{
			name: "medium and likely exploited by EPSS percentile",
			vuln: vulndb.Vuln{
				Severity: vulndb.Severity{Level: vulndb.LevelMedium, Score: 5.3, Source: "GO-2021-0113"},
				EPSS:     &vulndb.EPSSScore{CVE: "CVE-2021-38561", Probability: 0.04, Percentile: 0.95, Date: day},
			},
			wantTier:     "P1",
			wantScore:    75,
			wantSeverity: "+15 severity medium (CVSS 5.3)",
			wantFactor:   "+10 EPSS 0.040 (percentile 0.950) for CVE-2021-38561 on 2026-11-30: likely exploited",
		},
		{
			name: "EPSS below the thresholds is shown and adds nothing",
			vuln: vulndb.Vuln{
				Severity: vulndb.Severity{Level: vulndb.LevelMedium},
				EPSS:     &vulndb.EPSSScore{CVE: "CVE-2021-38561", Probability: 0.00043, Percentile: 0.12, Date: day},
			},
			wantTier:     "P2",
			wantScore:    65,
			wantSeverity: "+15 severity medium",
			wantFactor:   "+0 EPSS 0.000 (percentile 0.120) for CVE-2021-38561 on 2026-11-30: below the thresholds",
		},
		{
			name: "KEV supersedes EPSS",
			vuln: vulndb.Vuln{
				Severity:       vulndb.Severity{Level: vulndb.LevelMedium},
				KnownExploited: true,
				EPSS:           &vulndb.EPSSScore{CVE: "CVE-2021-38561", Probability: 0.9, Percentile: 0.99, Date: day},
			},
			wantTier:     "P1",
			wantScore:    80,
			wantSeverity: "+15 severity medium",
			wantFactor:   "+15 known exploited (CISA KEV)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := textFinding("gateway", findings.StaticCalled)
			f.Severity = findings.Severity{Level: findings.LevelUnknown}
			tt.vuln.Entry = &osv.Entry{ID: "GO-2021-0113"}
			got := New(cfg, fakeVulns{"GO-2021-0113": &tt.vuln}, snap).One(f).Priority
			want := []string{tt.wantSeverity}
			if tt.wantFactor != "" {
				want = append(want, tt.wantFactor)
			}
			want = append(want,
				"+30 reachability executed: ",
				"+15 exposure exposed: ",
				"+5 reaches sensitive stores: sqlite://shop/customers [pii]")
			var reasons []string
			for i, r := range got.Reasons {
				// Reachability and exposure reasons are tested elsewhere.
				if i < len(want) && strings.HasSuffix(want[i], ": ") && strings.HasPrefix(r, want[i]) {
					r = want[i]
				}
				reasons = append(reasons, r)
			}
			if diff := cmp.Diff(want, reasons); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
			if got.Tier != tt.wantTier || got.Score != tt.wantScore {
				t.Errorf("tier %s score %d, want %s %d", got.Tier, got.Score, tt.wantTier, tt.wantScore)
			}
		})
	}
}
