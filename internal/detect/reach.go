package detect

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
)

// FirstExecution watches the functions that run for the first time in a
// service for the vulnerable code of the findings of that service. It is
// built once per set of findings and is safe for concurrent reads.
type FirstExecution struct {
	findings  []findings.Finding
	code      []assess.VulnerableCode
	byService map[string][]int
}

// NewFirstExecution indexes fs by service with the vulnerable code that
// assess looks for; vulns may be nil.
func NewFirstExecution(fs []findings.Finding, vulns assess.Vulns) *FirstExecution {
	w := &FirstExecution{findings: fs, code: make([]assess.VulnerableCode, len(fs)), byService: make(map[string][]int)}
	for i, f := range fs {
		w.code[i] = assess.VulnerableCodeOf(f, vulns)
		w.byService[f.Service] = append(w.byService[f.Service], i)
	}
	return w
}

// Of returns the indexes (into the findings given to NewFirstExecution)
// of the findings of service.
func (w *FirstExecution) Of(service string) []int { return w.byService[service] }

// Check looks at the functions ch shows running for the first time, in
// a profile that started at observed. It returns an alert per finding
// whose vulnerable code ran, and the indexes of the findings whose
// package ran new code (executed or not): only their verdict can have
// changed.
func (w *FirstExecution) Check(ch model.Changes, observed, receivedAt, now time.Time) (alerts []Alert, touched []int) {
	for svc, fns := range ch.NewFunctions {
		for _, i := range w.byService[svc] {
			code := w.code[i]
			var hit *attribution.Func
			in := false
			for j := range fns {
				if !code.InPackage(fns[j]) {
					continue
				}
				in = true
				if code.Matches(fns[j]) {
					hit = &fns[j]
					break
				}
			}
			if in {
				touched = append(touched, i)
			}
			if hit == nil {
				continue
			}
			f := w.findings[i]
			fn := funcName(*hit)
			alerts = append(alerts, Alert{
				Kind:     KindFirstExecution,
				Severity: severityOf(f),
				Service:  svc,
				Summary:  Text(fmt.Sprintf("%s: vulnerable %s ran for the first time in %s (%s)", f.Vulnerability.ID, fn, svc, f.Package.PURL)),
				Evidence: Evidence{
					Finding:  &FindingRef{Service: f.Service, VulnID: f.Vulnerability.ID, PURL: f.Package.PURL},
					Function: fn,
				},
				DedupeKey:  dedupeKey(KindFirstExecution, svc, f.Vulnerability.ID, f.Package.PURL),
				Time:       now,
				Observed:   observed,
				ReceivedAt: receivedAt,
			})
		}
	}
	slices.Sort(touched)
	return alerts, slices.Compact(touched)
}

// severityOf maps a finding's severity to an alert's: vulnerable code
// running is at least medium, whatever the score.
func severityOf(f findings.Finding) Severity {
	switch f.Severity.Level {
	case "critical":
		return Critical
	case "high":
		return High
	}
	return Medium
}

func funcName(f attribution.Func) string {
	if f.Symbol == "" {
		return f.Package
	}
	return f.Package + "." + f.Symbol
}

// SensitivePaths returns an alert for every sensitive store that an
// exposed service reaches through an edge or a store ch shows for the
// first time, and for every sensitive store a service of exposedNow
// reaches: those whose exposure became exposed since the last call
// (after their callers' spans did not arrive within the join window,
// for instance), so that a path opened while their exposure was unknown
// alerts once it is known. a must be an Assessor over a snapshot taken
// after the batch of ch was applied, with the configuration whose
// sensitivity labels apply.
func SensitivePaths(ch model.Changes, exposedNow map[string]bool, a *assess.Assessor, snap *model.Snapshot, receivedAt, now time.Time) []Alert {
	if len(ch.NewEdges) == 0 && len(ch.NewStores) == 0 && len(ch.NewConsumes) == 0 && len(exposedNow) == 0 {
		return nil
	}
	// The new stores and edges, with their first call: the newest of
	// a path is the telemetry that opened it (Alert.Observed).
	newStore := make(map[string]time.Time, len(ch.NewStores))
	for _, st := range ch.NewStores {
		newStore[st.Service+"\x00"+st.Name] = st.First
	}
	newEdge := make(map[[2]string]time.Time, len(ch.NewEdges))
	for _, e := range ch.NewEdges {
		newEdge[[2]string{e.From, e.To}] = e.First
	}
	// A service that produces for the first time to a destination
	// another consumes from, or consumes for the first time from one
	// another produces to: a new link between the two, as an edge is.
	if len(ch.NewConsumes) > 0 || slices.ContainsFunc(ch.NewStores, func(st model.Store) bool { return st.Kind == "messaging" }) {
		producers, consumers := snap.Destinations()
		for _, st := range ch.NewStores {
			if st.Kind == "messaging" {
				for _, c := range consumers[st.Name] {
					newEdge[[2]string{st.Service, c}] = st.First
				}
			}
		}
		for _, c := range ch.NewConsumes {
			for _, p := range producers[c.Name] {
				newEdge[[2]string{p, c.Service}] = c.First
			}
		}
	}
	var out []Alert
	for _, svc := range snap.Services {
		exp := a.Exposure(svc.Name)
		if exp.Level != assess.Exposed {
			continue
		}
		for _, ref := range a.BlastRadius(svc.Name) {
			if len(ref.Labels) == 0 {
				break // sensitive stores come first
			}
			path := append([]string{svc.Name}, ref.Via...)
			caller := path[len(path)-1]
			observed, fresh := newStore[caller+"\x00"+ref.Name]
			for i := 1; i < len(path); i++ {
				if at, ok := newEdge[[2]string{path[i-1], path[i]}]; ok {
					fresh = true
					if at.After(observed) {
						observed = at
					}
				}
			}
			if exposedNow[svc.Name] {
				// No telemetry made the service exposed: its callers'
				// spans did not come.
				fresh, observed = true, time.Time{}
			}
			if !fresh {
				continue
			}
			summary := fmt.Sprintf("exposed service %s now reaches %s store %s via %s",
				svc.Name, strings.Join(ref.Labels, ","), ref.Name, strings.Join(path, " -> "))
			if exposedNow[svc.Name] {
				summary = fmt.Sprintf("service %s is now exposed (%s) and reaches %s store %s via %s",
					svc.Name, exp.Rule, strings.Join(ref.Labels, ","), ref.Name, strings.Join(path, " -> "))
			}
			out = append(out, Alert{
				Kind:       KindSensitivePath,
				Severity:   High,
				Service:    svc.Name,
				Summary:    Text(summary),
				Evidence:   Evidence{Store: ref.Name, Labels: ref.Labels, Path: path},
				DedupeKey:  dedupeKey(KindSensitivePath, svc.Name, ref.Name),
				Time:       now,
				Observed:   observed,
				ReceivedAt: receivedAt,
			})
		}
	}
	return out
}
