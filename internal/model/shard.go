package model

import (
	"bytes"
	"cmp"
	"encoding/gob"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/evidentsec/evident/internal/safegob"
	"github.com/evidentsec/evident/internal/telemetry"
)

// A scaled-out evident splits the model into shards: one per tenant and
// partition of the ingest log, each fed the telemetry of its services
// only. A call between two services of different shards cannot be joined
// in either, so each shard hands its unjoined calls (TakePending) to the
// shared store, which joins them (JoinCalls); the view of the whole is the
// shards' states merged with those joins (MergeStates). The result is the
// model one process fed everything would hold.

// PendingCaller is a CLIENT or PRODUCER span waiting for the SERVER or
// CONSUMER span it caused.
type PendingCaller struct {
	SpanID  [8]byte
	Service string
	// Host is the remote host the call went to, "" when unknown.
	Host  string
	Error bool
	// Producer marks a span that more than one span joins, so it waits
	// until its window passes: a PRODUCER span, which every consumer of
	// the message joins, or a consumer's receive CLIENT span, which the
	// process span of each message it received joins. (The name is the
	// store's: join_callers.producer.)
	Producer   bool
	Start, End time.Time
}

// PendingCallee is a SERVER or CONSUMER span waiting for the CLIENT or
// PRODUCER span that caused it, by the id of that parent span. It counts
// in its service's SpanCounts.Pending until it is joined (Linked) or its
// window passes (Unlinked).
type PendingCallee struct {
	// SpanID identifies the callee in the store (calleeID): the children
	// of one parent are as many callees, and the same one handed over
	// twice (a record applied again) is one. It is not the span's own id,
	// which the model does not keep for a span that waits.
	SpanID       [8]byte
	ParentSpanID [8]byte
	Service      string
	// At is when the engine received it.
	At time.Time
}

// Pending are the calls of a model not joined yet.
type Pending struct {
	Callers []PendingCaller
	Callees []PendingCallee
}

// WaitsUntil returns when, by the model's clock, the last of its
// services' destinations consumed from stops waiting for its producers
// (Store.Waiting): the latest receipt of a service's first span
// consuming from one, plus the join window; zero when none was received.
// A merged view judges the wait at the time its shards' states were
// written (MarshalBinary), so a shard's state that said a destination
// waits is written again once this time has passed, though nothing was
// applied since: else the view waited for the producers for ever.
func (m *Model) WaitsUntil() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	var last time.Time
	for _, s := range m.services {
		for _, st := range s.consumes {
			if st.Received.After(last) {
				last = st.Received
			}
		}
	}
	if last.IsZero() {
		return last
	}
	return last.Add(m.cfg.JoinWindow)
}

// TakePending removes the calls waiting for their other side from the
// model and returns them; the spans waiting for their caller no longer
// count in their service's SpanCounts.Pending: they wait elsewhere.
func (m *Model) TakePending() Pending {
	m.mu.Lock()
	defer m.mu.Unlock()
	var p Pending
	for _, g := range []map[[8]byte]caller{m.callers.cur, m.callers.prev} {
		for id, c := range g {
			p.Callers = append(p.Callers, PendingCaller{SpanID: id, Service: c.svc.name, Host: c.host, Error: c.error, Producer: c.many, Start: c.start, End: c.end})
		}
	}
	for _, g := range []map[[8]byte]callees{m.callees.cur, m.callees.prev} {
		for id, w := range g {
			// k counts the parent's callees: two of one service and time
			// apart in the list (another service's between) differ too.
			var k int64
			for c := range w.all {
				c.svc.spans.Pending -= c.n
				for range c.n {
					p.Callees = append(p.Callees, PendingCallee{SpanID: calleeID(id, c.svc.name, c.at, k), ParentSpanID: id, Service: c.svc.name, At: time.Unix(0, c.at).UTC()})
					k++
				}
			}
		}
	}
	m.callers = newGenerations[caller](m.cfg.MaxPendingSpans)
	m.callees = newGenerations[callees](m.cfg.MaxPendingSpans)
	return p
}

// RestorePending puts back calls TakePending took, when the store could
// not take them: the model waits for their other side again. Calls of a
// service the model no longer has are dropped.
func (m *Model) RestorePending(p Pending) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range p.Callers {
		if s := m.services[c.Service]; s != nil {
			m.callers.put(c.SpanID, caller{svc: s, host: c.Host, error: c.Error, many: c.Producer, start: c.Start, end: c.End})
		}
	}
	now := m.now()
	for _, c := range p.Callees {
		if s := m.services[c.Service]; s != nil {
			// The spans of one callee merge again, and are handed over
			// again under the same ids (calleeID).
			m.wait(c.ParentSpanID, callee{svc: s, at: c.At.UnixNano(), n: 1}, now)
		}
	}
}

// JoinedCall is a pending caller matched with the service of the callee
// its span caused.
type JoinedCall struct {
	Caller PendingCaller
	Callee string
}

// Joins are the effect of calls joined outside the shards, in the terms
// of the model: what one model would have recorded joining them itself.
type Joins struct {
	// Edges are the calls between distinct services.
	Edges []Edge
	// Linked counts, by callee service, its spans joined with their
	// caller (SpanCounts.Linked); Own those joined with a span of their
	// own service (SpanCounts.Own).
	Linked, Own map[string]int64
	// Resolved counts the calls of a service to a host that a traced
	// service answered: such a host is that service, not a third party.
	Resolved []Resolution
	// Pending counts, by service, its spans waiting for their caller
	// outside the shards; Unlinked those whose caller did not come within
	// the window (SpanCounts.Pending, Unlinked).
	Pending, Unlinked map[string]int64
}

// Resolution is calls of Service to Host answered by Callee.
type Resolution struct {
	Service, Host, Callee string
	Calls                 int64
}

// JoinCalls returns the effect of joined calls, as Model.join records it.
func JoinCalls(calls []JoinedCall) Joins {
	type pair struct{ from, to string }
	type res struct{ svc, host, callee string }
	edges := map[pair]*Edge{}
	resolved := map[res]int64{}
	j := Joins{Linked: map[string]int64{}, Own: map[string]int64{}}
	for _, c := range calls {
		if c.Caller.Service == c.Callee {
			j.Own[c.Callee]++
			continue
		}
		j.Linked[c.Callee]++
		e := edges[pair{c.Caller.Service, c.Callee}]
		if e == nil {
			e = &Edge{From: c.Caller.Service, To: c.Callee}
			edges[pair{c.Caller.Service, c.Callee}] = e
		}
		e.Calls++
		if c.Caller.Error {
			e.Errors++
		}
		widen(&e.First, &e.Last, c.Caller.Start, c.Caller.End)
		if c.Caller.Host != "" {
			resolved[res{c.Caller.Service, c.Caller.Host, c.Callee}]++
		}
	}
	for _, e := range edges {
		j.Edges = append(j.Edges, *e)
	}
	slices.SortFunc(j.Edges, func(a, b Edge) int { return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To)) })
	for r, n := range resolved {
		j.Resolved = append(j.Resolved, Resolution{Service: r.svc, Host: r.host, Callee: r.callee, Calls: n})
	}
	slices.SortFunc(j.Resolved, func(a, b Resolution) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Host, b.Host), cmp.Compare(a.Callee, b.Callee))
	})
	return j
}

// MergeStates merges the states of shards (MarshalBinary) and the joins
// of the calls between them into the state of one model. Services of
// different shards are disjoint unless the log was repartitioned; a
// service in several is merged additively.
func MergeStates(joins Joins, states ...[]byte) ([]byte, error) {
	out := modelState{Version: stateVersion}
	index := map[string]int{}
	for i, data := range states {
		st, err := decodeState(data)
		if err != nil {
			return nil, fmt.Errorf("merge state %d: %w", i, err)
		}
		out.Dropped.Spans += st.Dropped.Spans
		out.Dropped.Profiles += st.Dropped.Profiles
		if st.At.After(out.At) {
			out.At = st.At
		}
		for _, ss := range st.Services {
			if k, ok := index[ss.Name]; ok {
				mergeService(&out.Services[k], ss)
				continue
			}
			index[ss.Name] = len(out.Services)
			out.Services = append(out.Services, ss)
		}
	}
	for _, e := range joins.Edges {
		k, ok := index[e.From]
		if !ok {
			continue // a caller beyond MaxServices in its shard
		}
		ss := &out.Services[k]
		ss.Edges = mergeEdges(ss.Edges, []Edge{e})
	}
	for svc, n := range joins.Linked {
		if k, ok := index[svc]; ok {
			out.Services[k].Spans.Linked += n
		}
	}
	for svc, n := range joins.Own {
		if k, ok := index[svc]; ok {
			out.Services[k].Spans.Own += n
		}
	}
	for svc, n := range joins.Pending {
		if k, ok := index[svc]; ok {
			out.Services[k].Spans.Pending += n
		}
	}
	for svc, n := range joins.Unlinked {
		if k, ok := index[svc]; ok {
			out.Services[k].Spans.Unlinked += n
		}
	}
	// The spans waiting outside the shards wait for the joins, not for
	// this model's join tables: they stay pending when it restores.
	out.KeepPending = true
	for _, r := range joins.Resolved {
		k, ok := index[r.Service]
		if !ok {
			continue
		}
		ss := &out.Services[k]
		// As in Model.join: only a host the caller counted resolves.
		if h := slices.IndexFunc(ss.Hosts, func(h hostState) bool { return h.Host == r.Host }); h >= 0 {
			if ss.Hosts[h].Resolved == nil {
				ss.Hosts[h].Resolved = map[string]int64{}
			}
			ss.Hosts[h].Resolved[r.Callee] += r.Calls
		}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(out); err != nil {
		return nil, fmt.Errorf("encode merged state: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeState decodes and checks a state of MarshalBinary.
func decodeState(data []byte) (modelState, error) {
	var st modelState
	if err := safegob.Decode(data, &st); err != nil {
		return st, fmt.Errorf("decode model state: %w", err)
	}
	if st.Version < 1 || st.Version > stateVersion {
		return st, fmt.Errorf("decode model state: version %d, want 1 to %d", st.Version, stateVersion)
	}
	if err := st.check(); err != nil {
		return st, fmt.Errorf("decode model state: %w", err)
	}
	// The migrations are here, not in UnmarshalBinary: MergeStates
	// writes the states it merges as the current version.
	if st.Version < 3 {
		// Before 3, the spans whose caller never came were not counted.
		for i := range st.Services {
			sp := &st.Services[i].Spans
			sp.Unlinked = max(0, sp.Server+sp.Consumer-sp.Root-sp.Linked)
		}
	}
	if st.Version < 4 {
		for i := range st.Services {
			migrateTimed(&st.Services[i])
		}
	}
	return st, nil
}

// mergeService adds src to dst, two states of one service.
func mergeService(dst *serviceState, src serviceState) {
	// The shards' namespaces of one name are its namespaces, the first
	// of the first shard that had one shown.
	for _, ns := range append([]string{src.Namespace}, src.Namespaces...) {
		switch {
		case ns == "" || ns == dst.Namespace || slices.Contains(dst.Namespaces, ns):
		case dst.Namespace == "":
			dst.Namespace = ns
		case len(dst.Namespaces) < maxNamespaces-1:
			dst.Namespaces = append(dst.Namespaces, ns)
		}
	}
	for _, img := range src.Images {
		if !slices.ContainsFunc(dst.Images, func(x telemetry.Image) bool { return sameImage(x, img) }) {
			dst.Images = append(dst.Images, img)
		}
	}
	if n := len(dst.Images); n > maxImages {
		dst.Images = dst.Images[n-maxImages:]
	}
	widen(&dst.First, &dst.Last, src.First, src.Last)
	// Functions and endpoints by value: src's indexes become dst's.
	funcs := make([]int32, len(src.Funcs))
	for i, f := range src.Funcs {
		k := slices.Index(dst.Funcs, f)
		if k < 0 {
			k = len(dst.Funcs)
			dst.Funcs = append(dst.Funcs, f)
		}
		funcs[i] = int32(k)
	}
	eps := make([]int32, len(src.Endpoints))
	for i, e := range src.Endpoints {
		k := slices.IndexFunc(dst.Endpoints, func(x Endpoint) bool { return x.Kind == e.Kind && x.Method == e.Method && x.Route == e.Route })
		if k < 0 {
			k = len(dst.Endpoints)
			dst.Endpoints = append(dst.Endpoints, e)
		} else {
			x := &dst.Endpoints[k]
			x.Calls, x.Errors = x.Calls+e.Calls, x.Errors+e.Errors
			widen(&x.First, &x.Last, e.First, e.Last)
		}
		eps[i] = int32(k)
	}
	for _, k := range src.Stacks {
		k.Funcs = remap(k.Funcs, funcs)
		k.Endpoints, k.TimedEndpoints = remapCounts(k.Endpoints, eps), remapCounts(k.TimedEndpoints, eps)
		dst.Stacks = append(dst.Stacks, k)
	}
	for _, rs := range src.Series {
		rs.Func = funcs[rs.Func]
		k := slices.IndexFunc(dst.Series, func(x seriesState) bool { return x.Func == rs.Func })
		if k < 0 {
			dst.Series = append(dst.Series, rs)
			continue
		}
		r := new(series)
		for _, x := range []seriesState{dst.Series[k], rs} {
			for i, minute := range x.Minutes {
				r.add(minute, x.Samples[i])
			}
		}
		merged := seriesState{Func: rs.Func}
		for _, slot := range r {
			if slot.minute != 0 {
				merged.Minutes, merged.Samples = append(merged.Minutes, slot.minute), append(merged.Samples, slot.samples)
			}
		}
		dst.Series[k] = merged
	}
	dst.SeriesLast = max(dst.SeriesLast, src.SeriesLast)
	dst.Windows = append(dst.Windows, src.Windows...)
	dst.Samples += src.Samples
	dst.Unattrib += src.Unattrib
	dst.Spans = SpanCounts{
		All: dst.Spans.All + src.Spans.All, Server: dst.Spans.Server + src.Spans.Server, Consumer: dst.Spans.Consumer + src.Spans.Consumer,
		Root: dst.Spans.Root + src.Spans.Root, Linked: dst.Spans.Linked + src.Spans.Linked, Own: dst.Spans.Own + src.Spans.Own, PublicClients: dst.Spans.PublicClients + src.Spans.PublicClients,
		Pending: dst.Spans.Pending + src.Spans.Pending, Unlinked: dst.Spans.Unlinked + src.Spans.Unlinked,
		Probes: dst.Spans.Probes + src.Spans.Probes,
	}
	dst.Edges = mergeEdges(dst.Edges, src.Edges)
	dst.Stores = mergeStores(dst.Stores, src.Stores)
	dst.Consumes = mergeStores(dst.Consumes, src.Consumes)
	for _, h := range src.Hosts {
		k := slices.IndexFunc(dst.Hosts, func(x hostState) bool { return x.Host == h.Host })
		if k < 0 {
			dst.Hosts = append(dst.Hosts, h)
			continue
		}
		x := &dst.Hosts[k]
		x.Calls, x.Errors = x.Calls+h.Calls, x.Errors+h.Errors
		widen(&x.First, &x.Last, h.First, h.Last)
		if x.Resolved == nil {
			x.Resolved = map[string]int64{}
		}
		for svc, n := range h.Resolved {
			x.Resolved[svc] += n
		}
	}
	o := &dst.Overflow
	o.Endpoints, o.Hosts, o.Stores = o.Endpoints+src.Overflow.Endpoints, o.Hosts+src.Overflow.Hosts, o.Stores+src.Overflow.Stores
	o.Samples, o.Frames, o.Series = o.Samples+src.Overflow.Samples, o.Frames+src.Overflow.Frames, o.Series+src.Overflow.Series
	o.Waits, o.Consumes, o.Produces = o.Waits+src.Overflow.Waits, o.Consumes+src.Overflow.Consumes, o.Produces+src.Overflow.Produces
	o.Links += src.Overflow.Links
}

func remap(idx []int32, to []int32) []int32 {
	out := make([]int32, len(idx))
	for i, f := range idx {
		out[i] = to[f]
	}
	return out
}

// mergeEdges adds the edges of src to dst, by callee.
func mergeEdges(dst, src []Edge) []Edge {
	for _, e := range src {
		k := slices.IndexFunc(dst, func(x Edge) bool { return x.To == e.To })
		if k < 0 {
			dst = append(dst, e)
			continue
		}
		x := &dst[k]
		x.Calls, x.Errors = x.Calls+e.Calls, x.Errors+e.Errors
		widen(&x.First, &x.Last, e.First, e.Last)
	}
	return dst
}

// mergeStores adds the stores of src to dst, by name.
func mergeStores(dst, src []Store) []Store {
	for _, s := range src {
		k := slices.IndexFunc(dst, func(x Store) bool { return x.Name == s.Name })
		if k < 0 {
			dst = append(dst, s)
			continue
		}
		x := &dst[k]
		x.Calls, x.Errors, x.Linked = x.Calls+s.Calls, x.Errors+s.Errors, x.Linked+s.Linked
		widen(&x.First, &x.Last, s.First, s.Last)
		// A destination waits for its producers from the first time a
		// shard received its consumer's span; a zero time (a state
		// written before Received, or settled) waits for none.
		if s.Received.Before(x.Received) {
			x.Received = s.Received
		}
	}
	return dst
}

// Replace replaces the model's state with state, as UnmarshalBinary
// does, and returns the edges, stores and consumed destinations it holds
// that the model did not: what the model, fed the telemetry in between,
// would have reported new.
func (m *Model) Replace(state []byte) (Changes, error) {
	type edgeKey struct{ from, to string }
	type storeKey struct{ svc, name string }
	m.mu.Lock()
	edges, stores, consumes := map[edgeKey]bool{}, map[storeKey]bool{}, map[storeKey]bool{}
	for _, s := range m.services {
		for to := range s.edges {
			edges[edgeKey{s.name, to}] = true
		}
		for name := range s.stores {
			stores[storeKey{s.name, name}] = true
		}
		for name := range s.consumes {
			consumes[storeKey{s.name, name}] = true
		}
	}
	m.mu.Unlock()
	if err := m.UnmarshalBinary(state); err != nil {
		return Changes{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var ch Changes
	for _, name := range slices.Sorted(maps.Keys(m.services)) {
		s := m.services[name]
		for _, to := range slices.Sorted(maps.Keys(s.edges)) {
			if !edges[edgeKey{name, to}] {
				ch.NewEdges = append(ch.NewEdges, *s.edges[to])
			}
		}
		for _, st := range slices.Sorted(maps.Keys(s.stores)) {
			if !stores[storeKey{name, st}] {
				ch.NewStores = append(ch.NewStores, *s.stores[st])
			}
		}
		for _, st := range slices.Sorted(maps.Keys(s.consumes)) {
			if !consumes[storeKey{name, st}] {
				ch.NewConsumes = append(ch.NewConsumes, *s.consumes[st])
			}
		}
	}
	return ch, nil
}

// remapCounts gives counts by endpoint index the indexes eps maps them to.
func remapCounts(counts map[int32]int64, eps []int32) map[int32]int64 {
	if counts == nil {
		return nil
	}
	out := make(map[int32]int64, len(counts))
	for ep, n := range counts {
		out[eps[ep]] += n
	}
	return out
}
