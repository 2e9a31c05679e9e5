package assess

import (
	"cmp"
	"fmt"
	"iter"
	"slices"
	"strings"

	"github.com/evidentsec/evident/internal/model"
)

// exposureOf decides how a service is reached, once per service. Config
// wins over traces, and the rule that decided is kept.
func (a *Assessor) exposureOf(service string) ExposureResult {
	if e, ok := a.exposure[service]; ok {
		return e
	}
	e := a.decideExposure(service)
	a.exposure[service] = e
	return e
}

func (a *Assessor) decideExposure(service string) ExposureResult {
	if lvl, ok := a.cfg.Exposure.Services[service]; ok {
		return ExposureResult{Level: lvl, Rule: "config: exposure.services"}
	}
	for _, in := range a.cfg.Exposure.Ingress {
		if in == service {
			return ExposureResult{Level: Exposed, Rule: "config: exposure.ingress"}
		}
		s := a.snap.Service(in)
		if s == nil {
			continue
		}
		// What it produces to a destination it routes to the
		// destination's consumers, as blast radius and the traced
		// producers' feeds (feeds) follow: a consumer whose spans are
		// not under the ingress's PRODUCER span (a pull consumer's, a
		// batch's) has no edge from it. An edge says more, and wins.
		rule := ""
		for to, via := range a.routes(s) {
			switch {
			case to != service:
			case via == "":
				return ExposureResult{Level: Exposed, Rule: fmt.Sprintf("routed to by ingress %s (config: exposure.ingress)", in)}
			case rule == "":
				rule = fmt.Sprintf("routed to by ingress %s through %s (config: exposure.ingress)", in, via)
			}
		}
		if rule != "" {
			return ExposureResult{Level: Exposed, Rule: rule}
		}
	}
	svc := a.snap.Service(service)
	if svc == nil || svc.Spans.All == 0 {
		return ExposureResult{Level: ExposureUnknown, Rule: "no traces of the service"}
	}
	sc := svc.Spans
	inbound := sc.Server + sc.Consumer
	switch {
	case sc.Root > 0:
		return ExposureResult{Level: Exposed, Rule: fmt.Sprintf("entry point: %d of %d SERVER/CONSUMER spans start a trace", sc.Root, inbound)}
	case sc.PublicClients > 0:
		return ExposureResult{Level: Exposed, Rule: fmt.Sprintf("public client.address on %d SERVER spans", sc.PublicClients)}
	case inbound == 0 && len(svc.Consumes) > 0:
		return a.pulledExposure(svc)
	case inbound == 0 && sc.Probes > 0:
		return ExposureResult{Level: NoInput, Rule: fmt.Sprintf("no SERVER or CONSUMER spans but %d health checks or metrics scrapes", sc.Probes)}
	case inbound == 0:
		return ExposureResult{Level: NoInput, Rule: "no SERVER or CONSUMER spans"}
	}
	// The SERVER/CONSUMER spans joined with a span of the service's own
	// (SpanCounts.Own: the process spans of a batch under its receive
	// span, a message it sent itself, a call to itself), and those that
	// start a trace linked to their messages' spans, took their
	// input from the service or a destination, not from a traced
	// caller: as a pull consumer's, it comes from outside when no traced
	// service produces to a destination the service consumes from, else
	// from the traced services that produce to them.
	linked, fed := sc.Linked, ""
	if sc.Own > 0 {
		outside, unkept, waiting, traced := a.feeds(svc)
		switch {
		case len(outside) > 0:
			return ExposureResult{Level: Exposed, Rule: fmt.Sprintf("fed from outside the traced system: no traced service produces to %s, whose messages %d of %d SERVER/CONSUMER spans process under a span of the service's own (its receive span, a message it sent, or a call to itself) or in a trace of their own linked to the messages' spans", strings.Join(outside, ", "), sc.Own, inbound)}
		case svc.Overflow.Consumes > 0:
			return unknownFeeds(svc)
		case len(unkept) > 0:
			return a.unkeptFeeds(unkept)
		case len(waiting) > 0:
			return waitingFeeds(waiting)
		case len(traced) > 0:
			linked += sc.Own
			fed = strings.Join(traced, ", ")
		case sc.Own == inbound:
			return ExposureResult{Level: NoInput, Rule: fmt.Sprintf("its %d SERVER/CONSUMER spans take their input from the service itself: calls to itself, or messages of destinations it produces to itself", inbound)}
		}
	}
	switch {
	case linked == 0 && sc.Unlinked > 0:
		return ExposureResult{Level: Exposed, Rule: fmt.Sprintf("called from outside the traced system: %d of %d SERVER/CONSUMER spans found no traced caller within the join window, none found one", sc.Unlinked, inbound)}
	case linked == 0 && sc.Pending > 0:
		// The callee's spans often arrive before their caller's: until
		// the join window has passed, not joined is not from outside.
		return ExposureResult{Level: ExposureUnknown, Rule: fmt.Sprintf("waiting for callers: %d of %d SERVER/CONSUMER spans arrived before the span that called them (join window)", sc.Pending, inbound)}
	case linked == 0:
		// The spans joined to one of the service's own (here, with
		// input only from the service) waited for no caller.
		return ExposureResult{Level: ExposureUnknown, Rule: fmt.Sprintf("callers undecided: a restart cut the wait of %d of %d SERVER/CONSUMER spans for their caller short", inbound-sc.Own, inbound)}
	}
	// Spans that found no traced caller beside some that did leave the
	// service internal: an SDK whose export queue is full drops the
	// caller's spans (docs/priority.md). But then it is not "only"
	// called by traced services, and the rule says how many found none.
	only, lost := "only ", ""
	if sc.Unlinked > 0 {
		only, lost = "", fmt.Sprintf("; %d found no traced caller within the join window: an untraced caller, or caller spans lost", sc.Unlinked)
	}
	switch {
	case fed != "" && sc.Linked == 0:
		return ExposureResult{Level: Internal, Rule: fmt.Sprintf("fed %sby traced services: traced services produce to %s, whose messages %d of %d SERVER/CONSUMER spans process under a span of the service's own (its receive span, a message it sent, or a call to itself) or in a trace of their own linked to the messages' spans%s", only, fed, sc.Own, inbound, lost)}
	case fed != "":
		return ExposureResult{Level: Internal, Rule: fmt.Sprintf("%scalled by traced services (%d of %d SERVER/CONSUMER spans joined to their caller; %d process messages of %s, which traced services produce to%s)", only, sc.Linked, inbound, sc.Own, fed, lost)}
	}
	return ExposureResult{Level: Internal, Rule: fmt.Sprintf("%scalled by traced services (%d of %d SERVER/CONSUMER spans joined to their caller%s)", only, sc.Linked, inbound, lost)}
}

// pulledExposure decides the exposure of a service that takes messages
// only with CLIENT spans (a pull consumer's receive, a settle): no span
// of the messages' producers is its parent, so the destinations it
// consumes from tell who sends it input (feeds).
func (a *Assessor) pulledExposure(svc *model.Service) ExposureResult {
	outside, unkept, waiting, traced := a.feeds(svc)
	switch {
	case len(outside) > 0:
		return ExposureResult{Level: Exposed, Rule: fmt.Sprintf("fed from outside the traced system: no SERVER/CONSUMER spans, and no traced service produces to %s, which it pulls messages from with CLIENT spans", strings.Join(outside, ", "))}
	case svc.Overflow.Consumes > 0:
		return unknownFeeds(svc)
	case len(unkept) > 0:
		return a.unkeptFeeds(unkept)
	case len(waiting) > 0:
		return waitingFeeds(waiting)
	case len(traced) > 0:
		return ExposureResult{Level: Internal, Rule: fmt.Sprintf("fed only by traced services: no SERVER/CONSUMER spans, and traced services produce to %s, which it pulls messages from with CLIENT spans", strings.Join(traced, ", "))}
	}
	return ExposureResult{Level: NoInput, Rule: "no SERVER or CONSUMER spans, and it takes messages only from destinations it produces to itself"}
}

// unknownFeeds is the exposure of a service that consumes from
// destinations beyond model.Config.MaxStores, when none of those kept
// makes it exposed: the model did not keep their names, so whether
// traced services produce to them, or only the service itself, or none,
// is not known.
func unknownFeeds(svc *model.Service) ExposureResult {
	calls := "calls"
	if svc.Overflow.Consumes == 1 {
		calls = "call"
	}
	return ExposureResult{Level: ExposureUnknown, Rule: fmt.Sprintf("consumes from destinations beyond max_stores (%d %s), whose producers are not known", svc.Overflow.Consumes, calls)}
}

// waitingFeeds is the exposure of a service that consumes from
// destinations no traced service has produced to yet, which it began
// consuming from less than the join window ago (model.Store.Waiting),
// when none other makes it exposed: the producers' SDKs export on their
// own schedule, so their first span to a destination often arrives
// after its consumer's, and until the window has passed, no producer
// seen is not fed from outside, as a SERVER span waiting for its caller
// is not called from there.
func waitingFeeds(waiting []string) ExposureResult {
	return ExposureResult{Level: ExposureUnknown, Rule: fmt.Sprintf("waiting for producers: no traced service has produced to %s yet, which it began consuming from within the join window", strings.Join(waiting, ", "))}
}

// unkeptFeeds is the exposure of a service that consumes from
// destinations no traced service is known to produce to, when a traced
// service produces to destinations beyond model.Config.MaxStores
// (Overflow.Produces), when none other makes it exposed: the model did
// not keep their names, so any of them may be one of those, and that
// service its producer.
func (a *Assessor) unkeptFeeds(unkept []string) ExposureResult {
	verb, unit := "produces", "calls"
	if len(a.unkept) > 1 {
		verb = "produce"
	}
	if a.unkeptCalls == 1 {
		unit = "call"
	}
	return ExposureResult{Level: ExposureUnknown, Rule: fmt.Sprintf("no traced service is known to produce to %s, but %s %s to destinations beyond max_stores (%d %s), whose names are not kept", strings.Join(unkept, ", "), strings.Join(a.unkept, ", "), verb, a.unkeptCalls, unit)}
}

// feeds sorts the destinations svc consumes from by who produces to
// them: outside, those no traced service produces to, fed from outside
// the traced system (as a SERVER or CONSUMER span whose parent never
// arrives is called from there); unkept, those no traced service is
// known to produce to while one produces to destinations beyond
// model.Config.MaxStores, which may be them; waiting, those no traced
// service has produced to yet within the join window
// (model.Store.Waiting); traced, those another traced service produces
// to, or whose messages svc's spans link to the PRODUCER spans of
// another (model.Store.Linked). A destination only svc itself produces
// to is in none: it brings svc no input.
func (a *Assessor) feeds(svc *model.Service) (outside, unkept, waiting, traced []string) {
	producers, _ := a.destinations()
	for _, st := range svc.Consumes {
		ps := producers[st.Name]
		switch {
		case st.Linked > 0 && !slices.ContainsFunc(ps, func(p string) bool { return p != svc.Name }):
			// Its spans link to the PRODUCER spans of traced services,
			// which name another destination (an exchange, a topic).
			traced = append(traced, st.Name+" (through another destination: its spans link to their PRODUCER spans)")
		case len(ps) == 0 && st.Waiting:
			waiting = append(waiting, st.Name)
		case len(ps) == 0 && len(a.unkept) > 0:
			unkept = append(unkept, st.Name)
		case len(ps) == 0:
			outside = append(outside, st.Name)
		case len(ps) > 1 || ps[0] != svc.Name:
			traced = append(traced, st.Name)
		}
	}
	return outside, unkept, waiting, traced
}

// destinations returns snap.Destinations(), computed once, with unkept,
// unkeptConsumers and unlinked.
func (a *Assessor) destinations() (producers, consumers map[string][]string) {
	if a.producers == nil {
		a.producers, a.consumers = a.snap.Destinations()
		for _, s := range a.snap.Services {
			if s.Overflow.Produces > 0 {
				a.unkept = append(a.unkept, s.Name)
				a.unkeptCalls += s.Overflow.Produces
			}
			if s.Overflow.Consumes > 0 {
				a.unkeptConsumers = append(a.unkeptConsumers, s.Name)
			}
			// Links dropped matter only where the destination's name
			// does not tell who feeds it: a batch consumer whose
			// batches pass the SDK's or the decoder's bound of links
			// (128, 64) on a topic its producers name would otherwise
			// leave every blast radius incomplete.
			if s.Overflow.Links > 0 && slices.ContainsFunc(s.Consumes, func(st model.Store) bool {
				return !slices.ContainsFunc(a.producers[st.Name], func(p string) bool { return p != s.Name })
			}) {
				a.unlinked = append(a.unlinked, s.Name)
			}
		}
	}
	return a.producers, a.consumers
}

// routes yields the services svc sends requests or messages to: the
// consumers of each messaging destination it produces to, with the
// destination (via), then the services its edges call, with via "".
// Exposure routed by an ingress and blast radius follow the same.
func (a *Assessor) routes(svc *model.Service) iter.Seq2[string, string] {
	return func(yield func(to, via string) bool) {
		_, consumers := a.destinations()
		for _, st := range svc.Stores {
			if st.Kind != "messaging" {
				continue
			}
			for _, c := range consumers[st.Name] {
				if !yield(c, st.Name) {
					return
				}
			}
		}
		for _, e := range svc.Edges {
			if !yield(e.To, "") {
				return
			}
		}
	}
}

// blast is a service's blast radius: stores, and, when a service on the
// way reached more than the model kept, incomplete says so.
type blast struct {
	stores     []StoreRef
	incomplete string
}

// blastRadius returns the stores and third parties reachable from a
// service: its own, and those of every service downstream through calls
// and through messaging destinations it produces to. A service on the
// way that called stores or hosts, or sent messages to destinations,
// beyond the model's bounds (model.Overflow) leaves it incomplete: the
// model did not keep their names, nor who consumes from those
// destinations, so the stores listed are not all there are. So does a
// service on the way that produces to a destination while a service it
// does not reach took messages from destinations beyond max_stores, or
// lost links of its spans: that one may consume from the destination
// without being among its consumers (Snapshot.Destinations).
func (a *Assessor) blastRadius(service string) blast {
	if b, ok := a.blast[service]; ok {
		return b
	}
	type hop struct {
		name string
		via  []string
	}
	seen := map[string]bool{service: true}
	found := map[string]StoreRef{}
	var beyond, producers []string
	queue := []hop{{name: service}}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		svc := a.snap.Service(h.name)
		if svc == nil {
			continue
		}
		beyond = append(beyond, beyondBounds(svc)...)
		if slices.ContainsFunc(svc.Stores, func(st model.Store) bool { return st.Kind == "messaging" }) {
			producers = append(producers, svc.Name)
		}
		for _, st := range svc.Stores {
			if _, ok := found[st.Name]; !ok {
				found[st.Name] = StoreRef{Name: st.Name, Kind: st.Kind, Labels: a.cfg.labels(st.Name), Via: h.via}
			}
		}
		for to := range a.routes(svc) {
			if !seen[to] {
				seen[to] = true
				queue = append(queue, hop{name: to, via: append(slices.Clone(h.via), to)})
			}
		}
	}
	out := make([]StoreRef, 0, len(found))
	for _, s := range found {
		out = append(out, s)
	}
	// Sensitive stores first, then by name.
	slices.SortFunc(out, func(x, y StoreRef) int {
		return cmp.Or(cmp.Compare(len(y.Labels), len(x.Labels)), cmp.Compare(x.Name, y.Name))
	})
	if len(producers) > 0 {
		beyond = append(beyond, a.unkeptConsumersOf(producers, seen)...)
	}
	b := blast{stores: out}
	if len(beyond) > 0 {
		b.incomplete = "incomplete: " + strings.Join(beyond, "; ")
	}
	a.blast[service] = b
	return b
}

// unkeptConsumersOf says which services, not reached (seen), may
// consume from destinations that producers send messages to without
// being among those destinations' consumers.
func (a *Assessor) unkeptConsumersOf(producers []string, seen map[string]bool) []string {
	a.destinations()
	// verb is one or many, as names are.
	verb := func(names []string, one, many string) string {
		if len(names) == 1 {
			return one
		}
		return many
	}
	sends := strings.Join(producers, ", ") + " " + verb(producers, "sends", "send")
	var out []string
	if c := slices.DeleteFunc(slices.Clone(a.unkeptConsumers), func(n string) bool { return seen[n] }); len(c) > 0 {
		out = append(out, fmt.Sprintf("%s %s from destinations beyond max_stores, which may be ones %s to", strings.Join(c, ", "), verb(c, "consumes", "consume"), sends))
	}
	if c := slices.DeleteFunc(slices.Clone(a.unlinked), func(n string) bool { return seen[n] }); len(c) > 0 {
		out = append(out, fmt.Sprintf("%s took messages whose links were not kept, which may come from destinations %s to", strings.Join(c, ", "), sends))
	}
	return out
}

// beyondBounds says what svc reached beyond the model's bounds that
// the blast radius through it lacks: stores and hosts it called, and
// destinations it sent messages to, whose consumers are not known.
func beyondBounds(svc *model.Service) []string {
	calls := func(n int64) string {
		if n == 1 {
			return "1 call"
		}
		return fmt.Sprintf("%d calls", n)
	}
	var out []string
	o := svc.Overflow
	if o.Stores > 0 {
		out = append(out, fmt.Sprintf("%s calls stores beyond max_stores (%s)", svc.Name, calls(o.Stores)))
	}
	if o.Hosts > 0 {
		out = append(out, fmt.Sprintf("%s calls hosts beyond max_hosts (%s)", svc.Name, calls(o.Hosts)))
	}
	if o.Produces > 0 {
		out = append(out, fmt.Sprintf("%s sends messages to destinations beyond max_stores (%s), whose consumers are not known", svc.Name, calls(o.Produces)))
	}
	return out
}
