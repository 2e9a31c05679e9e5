package assess

import (
	"cmp"
	"fmt"
	"slices"
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
		if s := a.snap.Service(in); s != nil {
			for _, e := range s.Edges {
				if e.To == service {
					return ExposureResult{Level: Exposed, Rule: fmt.Sprintf("routed to by ingress %s (config: exposure.ingress)", in)}
				}
			}
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
	case inbound == 0:
		return ExposureResult{Level: NoInput, Rule: "no SERVER or CONSUMER spans"}
	case sc.Linked == 0 && sc.Unlinked > 0:
		return ExposureResult{Level: Exposed, Rule: fmt.Sprintf("called from outside the traced system: %d of %d SERVER/CONSUMER spans found no traced caller within the join window, none found one", sc.Unlinked, inbound)}
	case sc.Linked == 0 && sc.Pending > 0:
		// The callee's spans often arrive before their caller's: until
		// the join window has passed, not joined is not from outside.
		return ExposureResult{Level: ExposureUnknown, Rule: fmt.Sprintf("waiting for callers: %d of %d SERVER/CONSUMER spans arrived before the span that called them (join window)", sc.Pending, inbound)}
	case sc.Linked == 0:
		return ExposureResult{Level: ExposureUnknown, Rule: fmt.Sprintf("callers undecided: a restart cut the wait of %d SERVER/CONSUMER spans for their caller short", inbound)}
	}
	return ExposureResult{Level: Internal, Rule: fmt.Sprintf("only called by traced services (%d of %d SERVER/CONSUMER spans joined to their caller)", sc.Linked, inbound)}
}

// blastRadius returns the stores and third parties reachable from a
// service: its own, and those of every service downstream through calls
// and through messaging destinations it produces to.
func (a *Assessor) blastRadius(service string) []StoreRef {
	if b, ok := a.blast[service]; ok {
		return b
	}
	_, consumers := a.snap.Destinations()
	type hop struct {
		name string
		via  []string
	}
	seen := map[string]bool{service: true}
	found := map[string]StoreRef{}
	queue := []hop{{name: service}}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		svc := a.snap.Service(h.name)
		if svc == nil {
			continue
		}
		next := func(to string) {
			if !seen[to] {
				seen[to] = true
				queue = append(queue, hop{name: to, via: append(slices.Clone(h.via), to)})
			}
		}
		for _, st := range svc.Stores {
			if _, ok := found[st.Name]; !ok {
				found[st.Name] = StoreRef{Name: st.Name, Kind: st.Kind, Labels: a.cfg.labels(st.Name), Via: h.via}
			}
			if st.Kind == "messaging" {
				for _, c := range consumers[st.Name] {
					next(c)
				}
			}
		}
		for _, e := range svc.Edges {
			next(e.To)
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
	a.blast[service] = out
	return out
}
