package report

import (
	"testing"

	"github.com/evidentsec/evident/internal/assess"
)

// TestEvidenceCell checks that a package-level loaded verdict says the
// package's code ran and no vulnerable function is known, and never reads
// as a bound on the vulnerable code.
func TestEvidenceCell(t *testing.T) {
	bound := &assess.Bound{Share: 0.0003, CPUSeconds: 0.03, WindowSeconds: 7200, Samples: 10000}
	tests := []struct {
		name string
		r    assess.Reachability
		want string
	}{
		{"executed", assess.Reachability{Verdict: assess.Executed, Basis: assess.BasisSymbol,
			Evidence: []assess.FunctionEvidence{{Symbol: "lodash.baseSet", Samples: 35, TimeSamples: 35}}, Endpoints: []string{"POST /orders"}},
			"lodash.baseSet: 35 time samples via POST /orders"},
		// 59 CPU samples and 19,781 allocated objects of an allocation
		// profile are 59 samples of the service's time, not 19,840.
		{"executed, in CPU and allocation profiles", assess.Reachability{Verdict: assess.Executed, Basis: assess.BasisSymbol,
			Evidence: []assess.FunctionEvidence{{Symbol: "app.handle", Samples: 19840, TimeSamples: 59}}},
			"app.handle: 59 time samples"},
		{"executed, in an allocation profile only", assess.Reachability{Verdict: assess.Executed, Basis: assess.BasisSymbol,
			Evidence: []assess.FunctionEvidence{{Symbol: "app.allocate", Samples: 19709}}},
			"app.allocate: 0 time samples, 19709 of other profiles"},
		{"loaded", assess.Reachability{Verdict: assess.Loaded, Basis: assess.BasisSymbol, Bound: bound}, "bound <0.03% of the service's CPU, 0.03s CPU over 2h0m0s"},
		{"loaded at package level", assess.Reachability{Verdict: assess.Loaded, Basis: assess.BasisPackage, Samples: 1200, TimeSamples: 120, Bound: bound},
			"package code ran (120 time samples), no vulnerable function known"},
		{"not observed", assess.Reachability{Verdict: assess.NotObserved, Basis: assess.BasisPackage, Bound: bound}, "bound <0.03% of the service's CPU, 0.03s CPU over 2h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := evidenceCell(assess.Assessment{Reachability: tt.r}); got != tt.want {
				t.Errorf("evidenceCell = %q, want %q", got, tt.want)
			}
		})
	}
}
