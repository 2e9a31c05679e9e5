package assess

// Summary is the headline of a run.
type Summary struct {
	Findings  int
	ByVerdict map[Verdict]int
	ByTier    map[string]int
	// NeedAction counts the findings in P1 and P2: those that still need
	// action now.
	NeedAction int
	// Decided counts the findings runtime evidence decided: every verdict
	// but unknown.
	Decided int
	// DecidedShare is Decided/Findings, 0 without findings.
	DecidedShare float64
	// Cleared counts the decided findings that need no action now: the
	// cut of the backlog that rests on evidence.
	Cleared int
	// BacklogReduction is the share of all findings that evidence took
	// off the backlog: Cleared/Findings. An unknown finding is never
	// counted as cut, so a run without evidence claims no reduction.
	BacklogReduction float64
	// DecidedReduction is the cut among decided findings:
	// Cleared/Decided, 0 when none is decided (Decided says which).
	DecidedReduction float64
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
		needAction := a.Priority.Tier == "P1" || a.Priority.Tier == "P2"
		if needAction {
			s.NeedAction++
		}
		if a.Reachability.Verdict != Unknown {
			s.Decided++
			if !needAction {
				s.Cleared++
			}
		}
	}
	if s.Findings > 0 {
		s.DecidedShare = float64(s.Decided) / float64(s.Findings)
		s.BacklogReduction = float64(s.Cleared) / float64(s.Findings)
	}
	if s.Decided > 0 {
		s.DecidedReduction = float64(s.Cleared) / float64(s.Decided)
	}
	return s
}
