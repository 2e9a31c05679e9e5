package assess

import (
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/vulndb"
)

// VulnerableCode is the code whose running makes a finding executed, as
// reachability looks for it: the record's or knowledge base's affected
// functions, else the symbols a static tool reported, else the package.
// Streaming detections use it to spot the first execution of vulnerable
// code as functions appear, without assessing the whole snapshot.
type VulnerableCode struct {
	targets []target
}

// VulnerableCodeOf returns the vulnerable code of f, looking its record up
// in vulns by id, then by alias; vulns may be nil.
func VulnerableCodeOf(f findings.Finding, vulns Vulns) VulnerableCode {
	return VulnerableCode{targets: targets(f, lookupVuln(f, vulns))}
}

// Matches reports whether fn running would make the verdict executed.
func (c VulnerableCode) Matches(fn attribution.Func) bool {
	mf := model.Function{Func: fn}
	for _, t := range c.targets {
		if t.matches(&mf) {
			return true
		}
	}
	return false
}

// InPackage reports whether fn is code of the vulnerable package (or, at
// module level, of the vulnerable module): a function whose first run may
// change the verdict.
func (c VulnerableCode) InPackage(fn attribution.Func) bool {
	mf := model.Function{Func: fn}
	for _, t := range c.targets {
		if t.inPackage(&mf) {
			return true
		}
	}
	return false
}

// Symbols returns the code looked for, as "package.Symbol", the package
// or the module.
func (c VulnerableCode) Symbols() []string {
	out := make([]string, len(c.targets))
	for i, t := range c.targets {
		out[i] = t.String()
	}
	return out
}

// lookupVuln finds the record of f by id, then by alias, as One does.
func lookupVuln(f findings.Finding, vulns Vulns) *vulndb.Vuln {
	if vulns == nil {
		return nil
	}
	if v := vulns.Get(f.Vulnerability.ID); v != nil {
		return v
	}
	for _, alias := range f.Vulnerability.Aliases {
		if v := vulns.Get(alias); v != nil {
			return v
		}
	}
	return nil
}

// Exposure returns how a service is reached in the Assessor's snapshot,
// with the rule that decided it.
func (a *Assessor) Exposure(service string) ExposureResult { return a.exposureOf(service) }

// BlastRadius returns the stores and third parties reachable from a
// service in the Assessor's snapshot, sensitive ones first: those known,
// which Assessment.BlastRadiusIncomplete says may not be all.
func (a *Assessor) BlastRadius(service string) []StoreRef { return a.blastRadius(service).stores }

// Labels returns the sensitivity labels config gives a store's canonical
// name, sorted; nil when it is not sensitive.
func (c Config) Labels(store string) []string { return c.labels(store) }
