package assess

// Summary is the headline of a run.
type Summary struct {
	Findings  int
	ByVerdict map[Verdict]int
	ByTier    map[string]int
	// NeedAction counts the findings in P1 and P2: those that still need
	// action now.
	NeedAction int
	// BacklogReduction is the share of findings that need no action now:
	// 1 - NeedAction/Findings.
	BacklogReduction float64
}

// Summarize counts assessments by verdict and tier.
func Summarize(as []Assessment) Summary {
	s := Summary{Findings: len(as), ByVerdict: map[Verdict]int{}, ByTier: map[string]int{}}
	for _, v := range Verdicts {
		s.ByVerdict[v] = 0
	}
	for _, t := range Tiers {
		s.ByTier[t] = 0
	}
	for _, a := range as {
		s.ByVerdict[a.Reachability.Verdict]++
		s.ByTier[a.Priority.Tier]++
	}
	s.NeedAction = s.ByTier["P1"] + s.ByTier["P2"]
	if s.Findings > 0 {
		s.BacklogReduction = 1 - float64(s.NeedAction)/float64(s.Findings)
	}
	return s
}
