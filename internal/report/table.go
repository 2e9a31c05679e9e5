package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/evidentsec/evident/internal/assess"
)

// ANSI colours for the table's tier column. All codes have the same
// length, and the header gets one too (the default colour), because
// tabwriter counts escape bytes as width: equal bytes keep columns aligned.
var tierColors = map[string]string{"TIER": "\x1b[39m", "P1": "\x1b[31m", "P2": "\x1b[33m", "P3": "\x1b[36m", "P4": "\x1b[90m"}

const colorReset = "\x1b[0m"

// writeTable renders the prioritised findings for a terminal: one line
// per finding, highest priority first, then the headline.
func writeTable(w io.Writer, r *Result, color bool) error {
	paint := func(tier string) string {
		if !color {
			return tier
		}
		return tierColors[tier] + tier + colorReset
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, paint("TIER")+"\tSCORE\tSERVICE\tVULNERABILITY\tPACKAGE\tVERSION\tFIXED\tVERDICT\tEXPOSURE\tEVIDENCE")
	for _, a := range r.Assessments {
		f := a.Finding
		id := f.Vulnerability.ID
		if a.KnownExploited {
			id += " (KEV)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			paint(a.Priority.Tier), a.Priority.Score, dash(f.Service), id, f.Package.Name, dash(f.Package.Version), dash(f.FixedVersion),
			a.Reachability.Verdict, a.Exposure.Level, evidenceCell(a))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	out := "\n" + Headline(r.Summary)
	if note := unloadedNote(r.VulnDB, func(s string) string { return s }); note != "" {
		out += "\n" + note
	}
	_, err := fmt.Fprintln(w, out)
	return err
}

// evidenceCell is the shortest honest summary of a verdict's evidence.
func evidenceCell(a assess.Assessment) string {
	r := a.Reachability
	switch r.Verdict {
	case assess.Executed:
		s := r.Evidence[0].Symbol + ": " + samplesOf(r.Evidence[0].Samples, r.Evidence[0].TimeSamples)
		switch {
		case len(r.Endpoints) > 0:
			s += " via " + endpointsOf(r.Endpoints, 2)
		case len(r.SpanNames) > 0:
			s += " in span " + endpointsOf(r.SpanNames, 2)
		}
		return s
	case assess.Loaded, assess.NotObserved:
		if r.Verdict == assess.Loaded && r.Basis == assess.BasisPackage {
			return fmt.Sprintf("package code ran (%s), no vulnerable function known", samplesOf(r.Samples, r.TimeSamples))
		}
		return "bound " + r.Bound.String()
	}
	return r.Reason
}

// samplesOf says in how many samples code was seen: those of time-sampled
// profiles when it is in some, as the reasons do, else that it is in none
// and in how many of the other profiles. Every profile's samples added up
// would count an allocation profile's objects as samples of time.
func samplesOf(all, timed int64) string {
	if timed > 0 {
		return fmt.Sprintf("%d time samples", timed)
	}
	return fmt.Sprintf("0 time samples, %d of other profiles", all)
}

// Headline is the one line a run is remembered by. It claims a backlog
// cut only for what runtime evidence decided: an unknown finding is
// neither needed nor cut, so the share decided comes first.
func Headline(s assess.Summary) string {
	var parts []string
	for _, v := range assess.Verdicts {
		parts = append(parts, fmt.Sprintf("%d %s", s.ByVerdict[v], v))
	}
	line := fmt.Sprintf("%d findings (%s); %d need action now (P1 %d, P2 %d)",
		s.Findings, strings.Join(parts, ", "), s.NeedAction, s.ByTier["P1"], s.ByTier["P2"])
	if s.Decided == 0 {
		return line + "; runtime evidence decided none of them: no backlog cut"
	}
	return line + fmt.Sprintf("; runtime evidence decided %d (%.0f%%) and cleared %d: backlog cut by %.0f%% (%.0f%% of the decided)",
		s.Decided, s.DecidedShare*100, s.Cleared, s.BacklogReduction*100, s.DecidedReduction*100)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
