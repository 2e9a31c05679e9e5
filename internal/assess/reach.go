package assess

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/telemetry"
	"github.com/evidentsec/evident/internal/vulndb"
)

// target is code to look for: a symbol of a package, a whole package
// (symbol ""), or a whole distribution (pkg "", module set) when nothing
// finer is known.
type target struct {
	pkg, symbol, module string
	// file is the script inside an npm package that holds symbol, where
	// the record names one; empty is any.
	file string
}

// String names the target as reports list it; a target in a file is
// written as GitHub writes npm functions, the package and file in
// parentheses: "(jsonwebtoken/verify.js).module.exports".
func (t target) String() string {
	switch {
	case t.pkg == "":
		return t.module
	case t.file != "" && t.symbol == "":
		return t.pkg + "/" + t.file
	case t.file != "":
		return "(" + t.pkg + "/" + t.file + ")." + t.symbol
	case t.symbol == "":
		return t.pkg
	}
	return t.pkg + "." + t.symbol
}

// targets returns what to look for: the affected functions of the record
// and the knowledge base for the finding's package (or for another name of
// the same artifact, findings.SameArtifact); else the symbols a static tool
// reported; else the package itself.
func targets(f findings.Finding, v *vulndb.Vuln) []target {
	var out []target
	if v != nil {
		for _, fn := range v.FunctionsAt(f.Package.Ecosystem, f.Package.Name, f.Package.Version) {
			if fn.Ecosystem == f.Package.Ecosystem && findings.SameArtifact(fn.Ecosystem, fn.Module, f.Package.Name) {
				out = append(out, target{pkg: fn.Package, symbol: fn.Symbol, module: f.Package.Name, file: fn.File})
			}
		}
	}
	if len(out) == 0 && f.Package.Ecosystem == osv.EcosystemGo {
		for _, s := range f.Symbols {
			if pkg, sym, ok := splitGoSymbol(s); ok {
				out = append(out, target{pkg: pkg, symbol: sym, module: f.Package.Name})
			}
		}
	}
	if len(out) == 0 {
		out = append(out, target{module: f.Package.Name})
	}
	slices.SortFunc(out, func(a, b target) int { return cmp.Compare(a.String(), b.String()) })
	return slices.Compact(out)
}

// splitGoSymbol splits "golang.org/x/text/language.Parse" or
// "net/http.Server.Serve" into package path and symbol.
func splitGoSymbol(s string) (pkg, sym string, ok bool) {
	slash := strings.LastIndexByte(s, '/')
	dot := strings.IndexByte(s[slash+1:], '.')
	if dot < 0 {
		return "", "", false
	}
	i := slash + 1 + dot
	return s[:i], s[i+1:], true
}

// matches reports whether a function seen running is the target's
// vulnerable code. A target that names only the module matches nothing:
// that its code ran does not show that the vulnerable code did.
func (t target) matches(fn *model.Function) bool {
	switch {
	case t.pkg == "":
		return false
	case !fn.InFile(t.file):
		return false
	case t.symbol == "":
		return fn.Package == t.pkg
	}
	return fn.Matches(t.pkg, t.symbol)
}

// inPackage reports whether a function belongs to the target's package
// (attribution.Func.InPackage: for Python, the module that holds the
// dotted name, which the frame tells). Whatever matches does.
func (t target) inPackage(fn *model.Function) bool {
	if t.pkg == "" {
		return fn.Module == t.module
	}
	return fn.InPackage(t.pkg, t.symbol)
}

func (a *Assessor) reachability(f findings.Finding, v *vulndb.Vuln, svc *model.Service) Reachability {
	ts := targets(f, v)
	r := Reachability{Basis: BasisPackage}
	for _, t := range ts {
		r.Symbols = append(r.Symbols, t.String())
		if t.pkg != "" {
			r.Basis = BasisSymbol
		}
	}
	if svc == nil || svc.Samples == 0 {
		r.Verdict = Unknown
		r.Reason = fmt.Sprintf("no profiles of service %q", f.Service)
		return r
	}
	lang, ok := ecosystemLanguage(f.Package.Ecosystem)
	if !ok {
		// OS packages, Rust crates, gems...: no frame is ever attributed
		// to them, so not seeing theirs says nothing.
		r.Verdict, r.Basis = Unknown, BasisPackage
		r.Reason = fmt.Sprintf("profiles attribute no code to %s packages (native libraries, other runtimes), so whether %s ran cannot be told", f.Package.Ecosystem, f.Package.Name)
		return r
	}
	// The samples that could have shown the package's code: those whose
	// stacks hold code of its language. A Go server's samples say nothing
	// of the Python worker under the same service.name, and samples beyond
	// the model's MaxStacks kept no stack to look in. Of those, only the
	// samples of time-sampled profiles bound what was not seen: code that
	// allocates nothing is in no allocation sample however long it runs.
	samples, timed := svc.LanguageSamples[lang], svc.LanguageTimeSamples[lang]
	if samples == 0 {
		// A Go service's image may hold npm packages that some process
		// evident has no profile of runs.
		r.Verdict = Unknown
		r.Reason = fmt.Sprintf("the profiles of service %q hold no %s code, so whether %s ran cannot be told (a process of it may not be profiled)", f.Service, lang, f.Package.Name)
		return r
	}

	var loaded bool
	// At package basis: the heaviest Java code whose artifact attribution
	// could not tell, which may be the vulnerable package's. JFR frames
	// name classes, not jars, so a Maven package's code is found only
	// through package prefixes; Node.js and Python frames name their
	// package directory, and Go's their module or the main module.
	var hidden *model.Function
	maven := r.Basis == BasisPackage && strings.EqualFold(f.Package.Ecosystem, osv.EcosystemMaven)
	// The heaviest Python code of an import name that the finding's
	// distribution shares with others (Crypto: pycrypto and
	// pycryptodome) and that attribution gave to another of them.
	var pyHidden *model.Function
	var pyTops []string
	if strings.EqualFold(f.Package.Ecosystem, osv.EcosystemPyPI) {
		pyTops = attribution.PythonImportNames(f.Package.Name)
	}
	endpoints, spans := map[string]weight{}, map[string]weight{}
	// For a loaded verdict: where code of the vulnerable package ran, and
	// its heaviest function.
	pkgEndpoints, pkgSpans := map[string]weight{}, map[string]weight{}
	var pkgTop, top *model.Function
	for i := range svc.Functions {
		fn := &svc.Functions[i]
		if maven && fn.Language == attribution.Java && fn.Unattributed() && (hidden == nil || heavier(fn, hidden)) {
			hidden = fn
		}
		if len(pyTops) > 0 && fn.Language == attribution.Python && fn.Module != f.Package.Name &&
			slices.Contains(pyTops, topModule(fn.Package)) && (pyHidden == nil || heavier(fn, pyHidden)) {
			pyHidden = fn
		}
		for _, t := range ts {
			if !t.inPackage(fn) {
				continue
			}
			loaded = true
			if pkgTop == nil || heavier(fn, pkgTop) {
				pkgTop = fn
			}
			if !t.matches(fn) {
				for _, e := range fn.Endpoints {
					pkgEndpoints[e.Name] = pkgEndpoints[e.Name].add(e)
				}
				for _, e := range fn.SpanNames {
					pkgSpans[e.Name] = pkgSpans[e.Name].add(e)
				}
				continue
			}
			r.Evidence = append(r.Evidence, evidence(fn, svc))
			if top == nil || heavier(fn, top) {
				top = fn
			}
			r.Samples = max(r.Samples, fn.Samples)
			r.TimeSamples = max(r.TimeSamples, fn.TimeSamples)
			for _, e := range fn.Endpoints {
				endpoints[e.Name] = endpoints[e.Name].add(e)
			}
			for _, e := range fn.SpanNames {
				spans[e.Name] = spans[e.Name].add(e)
			}
			break
		}
	}
	if len(r.Evidence) > 0 {
		// The function that took the most time comes first, where the
		// table and the reason name it (svc.Functions is in that order
		// when the model made it): an allocation profile's objects
		// outweigh CPU samples a thousandfold.
		// The order is heavier's, so that the first named is top.
		slices.SortStableFunc(r.Evidence, func(a, b FunctionEvidence) int {
			return cmp.Or(cmp.Compare(b.TimeSamples, a.TimeSamples), cmp.Compare(b.Samples, a.Samples))
		})
		r.Verdict = Executed
		r.Endpoints, r.SpanNames = byWeight(endpoints), byWeight(spans)
		r.Reason = fmt.Sprintf("%s seen in %s", r.Evidence[0].Symbol, seenIn(top, svc))
		switch {
		case len(r.Endpoints) > 0:
			r.Reason += " via " + r.Endpoints[0]
		case len(r.SpanNames) > 0:
			r.Reason += " in span " + r.SpanNames[0]
		}
		return r
	}

	static := ""
	if f.Static == findings.StaticCalled {
		static = "; static analysis found it called"
	}
	if loaded && r.Basis == BasisPackage {
		// Seen is seen: no minimum of samples, as for executed. The
		// bound still says how little CPU the vulnerable code, if it is
		// there at all, could have used unseen.
		r.Verdict = Loaded
		r.Samples, r.TimeSamples = pkgTop.Samples, pkgTop.TimeSamples
		r.Endpoints, r.SpanNames = byWeight(pkgEndpoints), byWeight(pkgSpans)
		if timed > 0 {
			r.Bound = bound(svc, lang, timed)
		}
		r.Reason = fmt.Sprintf("code of %s ran (%s in %s) but no vulnerable function is known, so whether the vulnerable code ran is unknown (package level)%s",
			f.Package.Name, funcName(pkgTop.Func), seenIn(pkgTop, svc), static)
		return r
	}
	if timed < a.cfg.Reachability.MinSamples {
		r.Verdict = Unknown
		r.Reason = tooFewTimeSamples(svc, lang, timed, a.cfg.Reachability.MinSamples)
		return r
	}
	if svc.Overflow.Frames > 0 {
		// Frames of functions beyond model.Config.MaxFunctions were left
		// out of the stacks: the vulnerable code may be among them, so
		// not seeing it bounds nothing.
		r.Verdict = Unknown
		what := "no frame of the vulnerable package was seen"
		if loaded {
			what = "the vulnerable package ran but no vulnerable function was seen"
		}
		r.Reason = fmt.Sprintf("%s, but %d frames of functions beyond the model's max_functions were left out of the profiles of service %q and may be its%s",
			what, svc.Overflow.Frames, f.Service, static)
		return r
	}
	r.Bound = bound(svc, lang, timed)
	if loaded {
		r.Verdict = Loaded
		r.Endpoints, r.SpanNames = byWeight(pkgEndpoints), byWeight(pkgSpans)
		r.Reason = fmt.Sprintf("vulnerable package ran but no vulnerable function was seen in %d samples (bound %s)%s", timed, r.Bound, static)
		return r
	}
	if hidden != nil {
		r.Verdict, r.Bound = Unknown, nil
		r.Reason = fmt.Sprintf("no frame attributed to %s, but Java code that no known Maven artifact ships ran (%s in %s) and may be its%s",
			f.Package.Name, funcName(hidden.Func), seenIn(hidden, svc), static)
		return r
	}
	if pyHidden != nil {
		r.Verdict, r.Bound = Unknown, nil
		r.Reason = fmt.Sprintf("no frame attributed to %s, but code of %s, which %s ships too, ran (%s in %s), attributed to %s: name the service's distribution in python_dists to tell them apart%s",
			f.Package.Name, topModule(pyHidden.Package), f.Package.Name, funcName(pyHidden.Func), seenIn(pyHidden, svc), pyHidden.Module, static)
		return r
	}
	r.Verdict = NotObserved
	r.Reason = fmt.Sprintf("no frame of the vulnerable package in %d samples (bound %s)%s", timed, r.Bound, static)
	return r
}

// heavier reports whether a took more of the service's time than b: more
// time samples, or as many and more samples of every profile.
func heavier(a, b *model.Function) bool {
	return cmp.Or(cmp.Compare(a.TimeSamples, b.TimeSamples), cmp.Compare(a.Samples, b.Samples)) > 0
}

// seenIn says in how many samples a function was seen: those of
// time-sampled profiles when it is in some, else those of the profiles
// that show only that it ran.
func seenIn(fn *model.Function, svc *model.Service) string {
	if fn.TimeSamples > 0 {
		return fmt.Sprintf("%d profile samples", fn.TimeSamples)
	}
	return fmt.Sprintf("%d samples of %s profiles", fn.Samples, strings.Join(untimedTypes(svc, fn.Language), ", "))
}

// untimedTypes are the sample types of a service's windows that held
// code of lang and are not time-sampled, in the order first received.
func untimedTypes(svc *model.Service, lang attribution.Language) []string {
	var out []string
	for _, w := range svc.Windows {
		if !w.TimeSampled && w.Holds(lang) && !slices.Contains(out, w.SampleType) {
			out = append(out, w.SampleType)
		}
	}
	return out
}

// tooFewTimeSamples says why timed time samples holding code of lang
// are too few for a verdict: fewer than min, none at all, or none
// because the service's profiles of lang sample no time. It reads the
// windows of lang, as the bound does: a Go server's CPU profiles are no
// time samples of the Python worker under the same service.name, nor
// are the worker's allocation profiles the server's.
func tooFewTimeSamples(svc *model.Service, lang attribution.Language, timed, min int64) string {
	var total, langTotal int64
	var restored bool
	for _, w := range svc.Windows {
		switch {
		case w.TimeSampled:
			total += w.Samples
			if w.Holds(lang) {
				langTotal += w.Samples
			}
		case w.Holds(lang) && telemetry.TimeSampled(w.SampleType, w.Unit):
			restored = true
		}
	}
	types := strings.Join(untimedTypes(svc, lang), ", ")
	others := ""
	if !restored && types != "" {
		others = fmt.Sprintf(" (its %s profiles show code that ran, not that code did not)", types)
	}
	switch {
	case langTotal == 0 && restored:
		return fmt.Sprintf("no time sample of service %q since it was restored from a checkpoint that did not keep the samples of its time-sampled profiles apart from the others' (%s profiles), which show code that ran, not that code did not; its bound starts with the profiles received since",
			svc.Name, types)
	case total == 0:
		return fmt.Sprintf("no time-sampled profile (CPU, wall clock) of service %q, only %s profiles, which show code that ran, not that code did not: code that allocates or waits for nothing is in none of their samples however long it runs",
			svc.Name, types)
	case langTotal == 0:
		return fmt.Sprintf("no time-sampled profile (CPU, wall clock) of service %q holds %s code, only %s profiles, which show code that ran, not that code did not: code that allocates or waits for nothing is in none of their samples however long it runs",
			svc.Name, lang, types)
	case timed < total:
		return fmt.Sprintf("only %d profile samples of service %q hold %s code, fewer than the %d needed%s", timed, svc.Name, lang, min, others)
	}
	return fmt.Sprintf("only %d profile samples of service %q, fewer than the %d needed%s", timed, svc.Name, min, others)
}

// topModule is the top-level name of a dotted Python module.
func topModule(mod string) string {
	top, _, _ := strings.Cut(mod, ".")
	return top
}

// ecosystemLanguage returns the language whose frames attribution gives
// to packages of an ecosystem, whose code profiles can show running; false
// for the other ecosystems.
func ecosystemLanguage(eco string) (attribution.Language, bool) {
	switch {
	case strings.EqualFold(eco, osv.EcosystemGo):
		return attribution.Go, true
	case strings.EqualFold(eco, osv.EcosystemMaven):
		return attribution.Java, true
	case strings.EqualFold(eco, osv.EcosystemPyPI):
		return attribution.Python, true
	case strings.EqualFold(eco, osv.EcosystemNPM):
		return attribution.Node, true
	}
	return attribution.Unknown, false
}

func evidence(fn *model.Function, svc *model.Service) FunctionEvidence {
	e := FunctionEvidence{
		Symbol: fn.Package + "." + fn.Symbol, Samples: fn.Samples, TimeSamples: fn.TimeSamples,
		First: fn.First, Last: fn.Last, Endpoints: fn.Endpoints, SpanNames: fn.SpanNames,
		Series: fn.Series, SeriesEnd: svc.SeriesEnd,
	}
	if cpuUnit(timeWindows(svc, fn.Language)) {
		e.CPUSeconds = float64(fn.Value) / 1e9
	}
	for _, s := range fn.Stack {
		e.Stack = append(e.Stack, funcName(s))
	}
	return e
}

func funcName(f attribution.Func) string {
	if f.Symbol == "" {
		return f.Package
	}
	return f.Package + "." + f.Symbol
}

// timeWindows are the windows of a service's time-sampled profiles, the
// only ones whose samples count in a bound (model.Window.TimeSampled),
// that held code of lang: a Go server's CPU profiles of a week cover no
// time of the Python worker profiled for ten minutes under the same
// service.name, whose samples alone bound its code.
func timeWindows(svc *model.Service, lang attribution.Language) []model.Window {
	var out []model.Window
	for _, w := range svc.Windows {
		if w.TimeSampled && w.Holds(lang) {
			out = append(out, w)
		}
	}
	return out
}

// cpuProfile reports whether the service's time-sampled profiles all
// sample CPU time. A wall-clock profile (Node's, async-profiler's wall
// mode, JFR's native method samples) samples time spent, running or
// waiting. An allocation profile beside them counts in no bound, so it
// does not make a CPU bound of samples.
func cpuProfile(ws []model.Window) bool {
	return len(ws) > 0 && !slices.ContainsFunc(ws, func(w model.Window) bool { return w.SampleType != "cpu" })
}

// cpuUnit reports whether the service's time-sampled profiles all measure
// CPU time in nanoseconds, so that their values convert to CPU seconds (a
// wall-clock profile counts nanoseconds too, not of CPU).
func cpuUnit(ws []model.Window) bool {
	return cpuProfile(ws) && !slices.ContainsFunc(ws, func(w model.Window) bool { return w.Unit != "nanoseconds" })
}

// bound computes the rule-of-three bound of samples time samples (those
// that could have shown the code looked for, of lang) over a service's
// time-sampled windows of lang: its other profiles' samples, windows and
// periods (an allocation profile's period is bytes) bound nothing.
func bound(svc *model.Service, lang attribution.Language, samples int64) *Bound {
	ws := timeWindows(svc, lang)
	b := &Bound{Samples: samples, Share: 3 / float64(samples), CPU: cpuProfile(ws)}
	var period int64
	for _, w := range ws {
		period = max(period, w.Period)
	}
	if cpuUnit(ws) {
		b.CPUSeconds = 3 * float64(period) / 1e9
	}
	b.WindowSeconds = coverage(ws).Seconds()
	return b
}

// coverage is the total time covered by windows, overlaps counted once.
func coverage(ws []model.Window) time.Duration {
	ws = slices.Clone(ws)
	slices.SortFunc(ws, func(a, b model.Window) int { return a.Start.Compare(b.Start) })
	var total time.Duration
	var end time.Time
	for _, w := range ws {
		start := w.Start
		if start.Before(end) {
			start = end
		}
		if w.End.After(start) {
			total += w.End.Sub(start)
			end = w.End
		}
	}
	return total
}

// String renders the bound as reports show it: a share of the service's
// CPU for a CPU profile, of its samples for any other.
func (b *Bound) String() string {
	s := fmt.Sprintf("<%.2g%% of the service's samples", b.Share*100)
	if b.CPU || b.CPUSeconds > 0 {
		s = fmt.Sprintf("<%.2g%% of the service's CPU", b.Share*100)
	}
	if b.CPUSeconds > 0 {
		s += fmt.Sprintf(", %.2gs CPU", b.CPUSeconds)
	}
	return s + fmt.Sprintf(" over %s", time.Duration(b.WindowSeconds*float64(time.Second)).Round(time.Second))
}

// weight is the samples of every profile and the time samples that
// led to code from one endpoint or span.
type weight struct{ time, all int64 }

func (w weight) add(ns model.NamedSamples) weight {
	return weight{w.time + ns.TimeSamples, w.all + ns.Samples}
}

// byWeight lists names, heaviest first: by time samples, then by every
// profile's samples, in which an allocation profile's objects outweigh
// CPU samples a thousandfold.
func byWeight(w map[string]weight) []string {
	var out []string
	for name := range w {
		out = append(out, name)
	}
	slices.SortFunc(out, func(x, y string) int {
		return cmp.Or(cmp.Compare(w[y].time, w[x].time), cmp.Compare(w[y].all, w[x].all), cmp.Compare(x, y))
	})
	return out
}
