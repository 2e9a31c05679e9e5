package assess

import (
	"fmt"
	"strings"
	"time"

	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/vulndb"
)

// Priority is a tier and a score, each with the reasons that made it.
type Priority struct {
	// Tier is P1 (act now) to P4 (no evidence it matters).
	Tier string
	// Score is 0-100, the sum of the points in Reasons.
	Score   int
	Reasons []string
}

// Tiers in order.
var Tiers = []string{"P1", "P2", "P3", "P4"}

// Points per factor. They add up to 100 at most; docs/priority.md
// explains the choice.
var (
	severityPoints = map[string]int{"critical": 35, "high": 25, "medium": 15, "low": 5}
	verdictPoints  = map[Verdict]int{Executed: 30, Loaded: 12, Unknown: 10, NotObserved: 0}
	exposurePoints = map[Exposure]int{Exposed: 15, ExposureUnknown: 6, Internal: 4, NoInput: 0}
)

const (
	unknownSeverityPoints = 15 // an unrated vulnerability is not a low one
	kevPoints             = 15
	// epssPoints go to a likely exploited vulnerability that is not known
	// exploited: KEV is evidence, EPSS a forecast, so they never add up.
	epssPoints         = 10
	staticCalledPoints = 8 // called but not seen still outranks never called
	sensitivePoints    = 5
	// packageLoadedPoints go to a package-level loaded verdict: the code
	// of a package with no known vulnerable function ran, so the
	// vulnerable code may have run. That ranks above a function-level
	// loaded (its vulnerable functions are known and were not seen) and
	// below executed.
	packageLoadedPoints = 20
)

// An EPSS score counts as likely exploited at a 10% probability of
// exploitation activity within 30 days, or in the top 5% of all scored
// CVEs. docs/priority.md explains the thresholds.
const (
	epssMinProbability = 0.1
	epssMinPercentile  = 0.95
)

// epssLikely reports whether an EPSS score crosses either threshold.
func epssLikely(e *vulndb.EPSSScore) bool {
	return e != nil && (e.Probability >= epssMinProbability || e.Percentile >= epssMinPercentile)
}

func priority(as Assessment) Priority {
	var p Priority
	add := func(points int, reason string, args ...any) {
		p.Score += points
		p.Reasons = append(p.Reasons, fmt.Sprintf("+%d ", points)+fmt.Sprintf(reason, args...))
	}
	f := as.Finding
	if pts, ok := severityPoints[f.Severity.Level]; ok {
		add(pts, "severity %s%s", f.Severity.Level, severityBasis(f))
	} else {
		add(unknownSeverityPoints, "severity unknown")
	}
	likely := !as.KnownExploited && epssLikely(as.EPSS)
	switch {
	case as.KnownExploited:
		add(kevPoints, "known exploited (CISA KEV)")
	case as.EPSS != nil:
		pts, verdict := 0, "below the thresholds"
		if likely {
			pts, verdict = epssPoints, "likely exploited"
		}
		e := as.EPSS
		add(pts, "EPSS %.3f (percentile %.3f) for %s on %s: %s", e.Probability, e.Percentile, e.CVE, e.Date.Format(time.DateOnly), verdict)
	}
	r := as.Reachability
	if r.Verdict == Loaded && r.Basis == BasisPackage {
		add(packageLoadedPoints, "reachability %s at package level: %s", r.Verdict, r.Reason)
	} else {
		add(verdictPoints[r.Verdict], "reachability %s: %s", r.Verdict, r.Reason)
	}
	calledNotSeen := f.Static == findings.StaticCalled && r.Verdict != Executed
	if calledNotSeen {
		add(staticCalledPoints, "static analysis found the vulnerable code called")
	}
	add(exposurePoints[as.Exposure.Level], "exposure %s: %s", as.Exposure.Level, as.Exposure.Rule)
	var sensitive []string
	for _, s := range as.BlastRadius {
		if len(s.Labels) > 0 {
			sensitive = append(sensitive, fmt.Sprintf("%s [%s]", s.Name, strings.Join(s.Labels, ",")))
		}
	}
	if len(sensitive) > 0 {
		add(sensitivePoints, "reaches sensitive stores: %s", strings.Join(sensitive, ", "))
	}
	if as.BlastRadiusIncomplete != "" {
		// Sensitive stores beyond the bounds would have added points:
		// the reasons say the score may be short of them.
		add(0, "blast radius %s", as.BlastRadiusIncomplete)
	}
	p.Score = min(p.Score, 100)

	severe := f.Severity.Level == "critical" || f.Severity.Level == "high" || as.KnownExploited || likely
	exposed := as.Exposure.Level == Exposed
	switch {
	case r.Verdict == Executed && exposed && severe:
		p.Tier = "P1"
	case r.Verdict == Executed, as.KnownExploited && exposed && r.Verdict != NotObserved:
		p.Tier = "P2"
	case r.Verdict == Loaded, r.Verdict == Unknown, calledNotSeen:
		p.Tier = "P3"
	default:
		p.Tier = "P4"
	}
	return p
}

// severityBasis says what a severity level rests on: the CVSS score, and
// the record it was read from when that is not the finding's own (a GO
// finding rated by its GHSA alias).
func severityBasis(f findings.Finding) string {
	from := ""
	if src := f.Severity.Source; src != "" && !strings.EqualFold(src, f.Vulnerability.ID) {
		from = "from " + src
	}
	switch {
	case f.Severity.Score > 0 && from != "":
		return fmt.Sprintf(" (CVSS %.1f %s)", f.Severity.Score, from)
	case f.Severity.Score > 0:
		return fmt.Sprintf(" (CVSS %.1f)", f.Severity.Score)
	case from != "":
		return " (" + from + ")"
	}
	return ""
}

// VEX is the statement evident makes about a finding.
type VEX struct {
	// Status is an OpenVEX status: affected, not_affected,
	// under_investigation.
	Status string
	// Justification is set for not_affected:
	// vulnerable_code_not_in_execute_path.
	Justification string
	// Statement explains the status: the impact statement of
	// not_affected, the action statement of affected.
	Statement string
}

// VEX statuses and the justification evident uses.
const (
	StatusAffected           = "affected"
	StatusNotAffected        = "not_affected"
	StatusUnderInvestigation = "under_investigation"
	JustificationNotInPath   = "vulnerable_code_not_in_execute_path"
)

// vex applies the VEX policy: not_affected only when the rule-of-three
// bound and the observation window meet it.
func (a *Assessor) vex(as Assessment, svc *model.Service) VEX {
	r := as.Reachability
	fix := "update to a fixed version"
	if as.Finding.FixedVersion != "" {
		fix = "update " + as.Finding.Package.Name + " to " + as.Finding.FixedVersion
	}
	if r.Verdict == Executed {
		return VEX{Status: StatusAffected, Statement: fmt.Sprintf("%s; the vulnerable code runs in %s (%s)", fix, as.Finding.Service, r.Reason)}
	}
	if r.Bound == nil || svc == nil {
		return VEX{Status: StatusUnderInvestigation, Statement: r.Reason}
	}
	pol := a.cfg.VEX
	window := time.Duration(r.Bound.WindowSeconds * float64(time.Second))
	switch {
	case r.Verdict == Loaded && r.Basis == BasisPackage:
		return VEX{Status: StatusUnderInvestigation, Statement: r.Reason + "; without a known vulnerable function no runtime evidence can show the vulnerable code is not in the execute path"}
	case pol.MaxShare == 0 || r.Bound.Share > pol.MaxShare:
		return VEX{Status: StatusUnderInvestigation, Statement: fmt.Sprintf("%s; the bound %.2g%% is weaker than the policy's %.2g%%", r.Reason, r.Bound.Share*100, pol.MaxShare*100)}
	case window < pol.MinWindow:
		return VEX{Status: StatusUnderInvestigation, Statement: fmt.Sprintf("%s; observed for %s, the policy needs %s", r.Reason, window.Round(time.Second), pol.MinWindow)}
	case r.Verdict == Loaded && !pol.AllowLoaded:
		return VEX{Status: StatusUnderInvestigation, Statement: r.Reason + "; the package's code runs and the policy does not let a loaded verdict be not_affected (vex.allow_loaded)"}
	case len(svc.Namespaces) > 1:
		// The telemetry may be another service's of the same name: the
		// profiles of billing's api cannot clear shop's.
		return VEX{Status: StatusUnderInvestigation, Statement: fmt.Sprintf("%s; the telemetry of %s comes from the services of that name in the namespaces %s, which evident merges, so it cannot show the vulnerable code is not in the execute path of the one the finding is of",
			r.Reason, as.Finding.Service, strings.Join(svc.Namespaces, ", "))}
	case as.Finding.Static == findings.StaticCalled && !pol.AllowStaticCalled:
		// The reason says that static analysis found it called.
		return VEX{Status: StatusUnderInvestigation, Statement: r.Reason + "; the policy does not let runtime evidence overrule static analysis (vex.allow_static_called)"}
	}
	return VEX{
		Status:        StatusNotAffected,
		Justification: JustificationNotInPath,
		Statement:     fmt.Sprintf("evident observed %s in the profiles it received: %s", as.Finding.Service, r.Reason),
	}
}
