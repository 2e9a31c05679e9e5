package model

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/telemetry"
)

// stateVersion is the version of the encoding MarshalBinary writes; a
// checkpoint of another version is refused rather than misread. A change
// of the encoding bumps it and makes UnmarshalBinary migrate the versions
// before, each of which has a checkpoint in testdata that
// TestLoadOldCheckpoints restores.
//
// Version 2 added the functions' time series (serviceState.Series); a
// version 1 checkpoint restores with none. Version 3 added the spans
// waiting for their parent and those whose parent never arrived
// (SpanCounts.Pending, Unlinked); before, every SERVER or CONSUMER span
// neither a root nor linked counted as called from outside, and a
// version 1 or 2 checkpoint restores them as Unlinked. Version 4 counts
// the samples of time-sampled profiles apart (stackState.Timed,
// Window.TimeSampled), which alone bound what was not seen; before, a
// stack's samples and value summed every profile's, allocation profiles'
// too (migrateTimed says what an older checkpoint's counts become).
// Version 5 keeps when each destination a service consumes from was
// first received (Store.Received), from which it waits a join window for
// its producers; a checkpoint before holds none, and its destinations
// wait for none: they were consumed from before the upgrade, when their
// producers had their window to show. The destinations known fed through
// links (Store.Linked) and the links not kept (Overflow.Links) need no
// version: gob reads a state without them as none, and none was known
// before links were read.
const stateVersion = 5

// The state types mirror the model's private state with exported fields
// for encoding/gob. The bounded join tables are not saved: after a
// restart, a call whose two sides straddle it makes no edge, profile
// samples of spans seen before it fall back to their span name, and the
// spans that were waiting for their parent (SpanCounts.Pending) stay
// undecided. All only lose a few seconds of linking.
type modelState struct {
	Version  int
	Services []serviceState
	Dropped  Dropped
	// KeepPending restores SpanCounts.Pending as it is: the state of a
	// merged view (MergeStates), whose waiting spans wait in the shared
	// store, not in the restored model's join tables.
	KeepPending bool
	// At is the model's clock when it wrote the state, the clock of its
	// destinations' receipt times (Store.Received); for a merged view,
	// the latest of its shards'. Zero in a state written before it.
	At time.Time
}

type serviceState struct {
	Name      string
	Namespace string
	// Namespaces are the other namespaces of the service's name
	// (service.otherNamespaces); absent from states before it, which
	// kept one namespace.
	Namespaces  []string
	Images      []telemetry.Image
	First, Last time.Time
	Funcs       []attribution.Func
	Stacks      []stackState
	Windows     []Window
	Series      []seriesState
	SeriesLast  int64
	Samples     int64
	Unattrib    int64
	Endpoints   []Endpoint
	Spans       SpanCounts
	Edges       []Edge
	Stores      []Store
	Hosts       []hostState
	Consumes    []Store
	Overflow    Overflow
}

type stackState struct {
	Funcs       []int32
	Samples     int64
	Timed       int64
	Value       int64
	First, Last time.Time
	Endpoints   map[int32]int64
	SpanNames   map[string]int64
	// TimedEndpoints and TimedSpanNames count the time samples of
	// Endpoints and SpanNames. A checkpoint written before 2026-12-07
	// has none: a stack whose samples are all time samples restores
	// them as Endpoints' and SpanNames', one of both kinds without.
	TimedEndpoints map[int32]int64
	TimedSpanNames map[string]int64
}

type seriesState struct {
	Func    int32
	Minutes []int64 // the written slots of the ring, in slot order
	Samples []int64
}

type hostState struct {
	Host          string
	Calls, Errors int64
	Scheme        string
	First, Last   time.Time
	Resolved      map[string]int64 // callee service name -> calls
}

// MarshalBinary encodes the model's state for a checkpoint.
func (m *Model) MarshalBinary() ([]byte, error) {
	m.mu.Lock()
	st := modelState{Version: stateVersion, Dropped: m.dropped, At: m.now()}
	for _, s := range m.services {
		ss := serviceState{
			Name: s.name, Namespace: s.namespace, Namespaces: s.otherNamespaces, Images: s.images, First: s.first, Last: s.last, Funcs: s.funcs, Windows: s.windows,
			Samples: s.samples, Unattrib: s.unattrib, Endpoints: s.endpoints, Spans: s.spans, Overflow: s.overflow,
			SeriesLast: s.seriesLast,
		}
		for f, r := range s.series {
			if r == nil {
				continue
			}
			rs := seriesState{Func: int32(f)}
			for _, slot := range r {
				if slot.minute != 0 {
					rs.Minutes, rs.Samples = append(rs.Minutes, slot.minute), append(rs.Samples, slot.samples)
				}
			}
			ss.Series = append(ss.Series, rs)
		}
		for _, k := range s.stacks {
			ss.Stacks = append(ss.Stacks, stackState{Funcs: k.funcs, Samples: k.samples, Timed: k.timed, Value: k.value, First: k.first, Last: k.last,
				Endpoints: sumCounts(k.timedEndpoints, k.otherEndpoints), SpanNames: sumCounts(k.timedSpanNames, k.otherSpanNames),
				TimedEndpoints: k.timedEndpoints, TimedSpanNames: k.timedSpanNames})
		}
		for _, e := range s.edges {
			ss.Edges = append(ss.Edges, *e)
		}
		for _, x := range s.stores {
			ss.Stores = append(ss.Stores, *x)
		}
		for _, x := range s.consumes {
			ss.Consumes = append(ss.Consumes, *x)
		}
		for host, h := range s.hosts {
			hs := hostState{Host: host, Calls: h.calls, Errors: h.errors, Scheme: h.scheme, First: h.first, Last: h.last, Resolved: map[string]int64{}}
			for callee, n := range h.resolved {
				hs.Resolved[callee.name] = n
			}
			ss.Hosts = append(ss.Hosts, hs)
		}
		st.Services = append(st.Services, ss)
	}
	// Encode under the lock: the state shares slices with the model.
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(st)
	m.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("encode model state: %w", err)
	}
	return buf.Bytes(), nil
}

// UnmarshalBinary replaces the model's state with a checkpoint made by
// MarshalBinary. A checkpoint that does not decode, or whose indexes do
// not hold together, is refused and the model is left as it was.
func (m *Model) UnmarshalBinary(data []byte) error {
	st, err := decodeState(data)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// The join tables refer to the services replaced here.
	m.callers = newGenerations[caller](m.cfg.MaxPendingSpans)
	m.callees = newGenerations[callees](m.cfg.MaxPendingSpans)
	m.links = newGenerations[linkWaits](m.cfg.MaxPendingSpans)
	m.ended = newGenerations[endedWaits](endedBound(m.cfg.MaxPendingSpans))
	m.endedMore = newGenerations[callees](endedBound(m.cfg.MaxPendingSpans))
	m.counted = spanIDs{max: m.cfg.MaxPendingSpans}
	m.spanEndpoints = newSpanRing(m.cfg.MaxSpanEndpoints)
	m.joinBorn, m.joinLast, m.lateBorn = time.Time{}, time.Time{}, time.Time{}
	m.services = make(map[string]*service, len(st.Services))
	m.dropped = st.Dropped
	m.viewAt = time.Time{}
	if st.KeepPending {
		m.viewAt = st.At
	}
	for _, ss := range st.Services {
		s := m.service(ss.Name)
		s.namespace, s.otherNamespaces = ss.Namespace, ss.Namespaces
		s.images, s.first, s.last, s.funcs, s.windows = ss.Images, ss.First, ss.Last, ss.Funcs, ss.Windows
		s.samples, s.unattrib, s.endpoints, s.spans, s.overflow = ss.Samples, ss.Unattrib, ss.Endpoints, ss.Spans, ss.Overflow
		if !st.KeepPending {
			s.spans.Pending = 0
		}
		for i, f := range s.funcs {
			s.funcIndex[f] = int32(i)
		}
		s.seriesLast = ss.SeriesLast
		s.growSeries()
		for _, rs := range ss.Series {
			r := new(series)
			for i, minute := range rs.Minutes {
				r.add(minute, rs.Samples[i])
			}
			s.series[rs.Func] = r
			s.nseries++
		}
		for _, k := range ss.Stacks {
			if k.TimedEndpoints == nil && k.TimedSpanNames == nil && k.Timed == k.Samples {
				// All its samples are of time, so are those of its
				// endpoints (a checkpoint from before they were kept).
				k.TimedEndpoints, k.TimedSpanNames = k.Endpoints, k.SpanNames
			}
			// A merged state (MergeStates) may hold one stack twice: add.
			st := &s.stacks[s.stack(m.seed, k.Funcs, len(ss.Stacks))]
			st.samples += k.Samples
			st.timed += k.Timed
			st.value += k.Value
			widen(&st.first, &st.last, k.First, k.Last)
			st.timedEndpoints = addCounts(st.timedEndpoints, k.TimedEndpoints)
			st.timedSpanNames = addCounts(st.timedSpanNames, k.TimedSpanNames)
			st.otherEndpoints = addOthers(st.otherEndpoints, k.Endpoints, k.TimedEndpoints)
			st.otherSpanNames = addOthers(st.otherSpanNames, k.SpanNames, k.TimedSpanNames)
		}
		for i, e := range s.endpoints {
			s.endpointIndex[endpointKey{kind: e.Kind, method: e.Method, route: e.Route}] = int32(i)
		}
		for _, e := range ss.Edges {
			s.edges[e.To] = &e
		}
		for _, x := range ss.Stores {
			x = currentDBName(x)
			if y := s.stores[x.Name]; y != nil {
				// The store under its old name and under its current one.
				y.Calls, y.Errors = y.Calls+x.Calls, y.Errors+x.Errors
				widen(&y.First, &y.Last, x.First, x.Last)
				continue
			}
			s.stores[x.Name] = &x
		}
		for _, x := range ss.Consumes {
			s.consumes[x.Name] = &x
		}
	}
	// Hosts refer to services by pointer: resolve once all exist.
	for _, ss := range st.Services {
		s := m.services[ss.Name]
		for _, hs := range ss.Hosts {
			h := &hostCalls{calls: hs.Calls, errors: hs.Errors, scheme: hs.Scheme, first: hs.First, last: hs.Last, resolved: map[*service]int64{}}
			for name, n := range hs.Resolved {
				h.resolved[m.service(name)] = n
			}
			s.hosts[hs.Host] = h
		}
	}
	return nil
}

// currentDBName returns a database store named after the db.system.name
// value of its system (telemetry.DBSystemName), which the spans have been
// decoded to since 2026-12-07: a checkpoint from before holds a database
// that clients of the old conventions named "mssql://shop/orders", where
// the spans name it "microsoft.sql_server://shop/orders" now. The
// encoding is the same, so no state version marks it: a store already
// named so is left as it is.
func currentDBName(st Store) Store {
	if st.Kind != "database" {
		return st
	}
	sys := telemetry.DBSystemName(st.System)
	rest, ok := strings.CutPrefix(st.Name, st.System+"://")
	if sys == st.System || !ok {
		return st
	}
	st.System, st.Name = sys, sys+"://"+rest
	return st
}

// check refuses a state whose references MarshalBinary could not have
// written: a service twice, a stack naming a function or an endpoint the
// service does not have. A damaged checkpoint would otherwise restore
// and panic at the next snapshot.
func (st *modelState) check() error {
	seen := make(map[string]bool, len(st.Services))
	for _, ss := range st.Services {
		if seen[ss.Name] {
			return fmt.Errorf("service %q appears twice", ss.Name)
		}
		seen[ss.Name] = true
		for _, k := range ss.Stacks {
			for _, f := range k.Funcs {
				if f < 0 || int(f) >= len(ss.Funcs) {
					return fmt.Errorf("service %q: stack refers to function %d of %d", ss.Name, f, len(ss.Funcs))
				}
			}
			for _, eps := range []map[int32]int64{k.Endpoints, k.TimedEndpoints} {
				for ep := range eps {
					if ep < 0 || int(ep) >= len(ss.Endpoints) {
						return fmt.Errorf("service %q: stack refers to endpoint %d of %d", ss.Name, ep, len(ss.Endpoints))
					}
				}
			}
		}
		funcs := make(map[int32]bool, len(ss.Series))
		for _, rs := range ss.Series {
			switch {
			case rs.Func < 0 || int(rs.Func) >= len(ss.Funcs):
				return fmt.Errorf("service %q: series of function %d of %d", ss.Name, rs.Func, len(ss.Funcs))
			case funcs[rs.Func]:
				return fmt.Errorf("service %q: function %d has two series", ss.Name, rs.Func)
			case len(rs.Minutes) != len(rs.Samples) || len(rs.Minutes) > SeriesBuckets:
				return fmt.Errorf("service %q: series of function %d has %d minutes and %d counts, at most %d", ss.Name, rs.Func, len(rs.Minutes), len(rs.Samples), SeriesBuckets)
			}
			funcs[rs.Func] = true
			for _, minute := range rs.Minutes {
				if minute <= 0 {
					return fmt.Errorf("service %q: series of function %d has minute %d", ss.Name, rs.Func, minute)
				}
			}
		}
	}
	return nil
}

// migrateTimed gives a service of a checkpoint of state version 3 or
// before the counts of time-sampled profiles it did not keep apart. When
// every window of the service is of a time-sampled profile, every sample
// was one: the stacks' samples are. When a window is of another profile
// (pyroscope-go sends heap profiles beside CPU by default), a stack's
// samples and value may hold an allocation profile's, and nothing tells
// how many: the stacks keep their samples, which show code that ran,
// but none counts as a time sample and none of the windows as time
// observed, so that no bound rests on them; the service's bound starts
// afresh with the profiles received after the upgrade.
func migrateTimed(ss *serviceState) {
	other := slices.ContainsFunc(ss.Windows, func(w Window) bool { return !telemetry.TimeSampled(w.SampleType, w.Unit) })
	for i := range ss.Windows {
		ss.Windows[i].TimeSampled = !other
	}
	for i := range ss.Stacks {
		k := &ss.Stacks[i]
		if other {
			k.Timed, k.Value = 0, 0
		} else {
			k.Timed = k.Samples
		}
	}
}

// sumCounts returns the counts of a and b added, a itself when b has
// none (a stack of CPU profiles alone): the encoding keeps every
// profile's counts and the time samples' among them (stackState), which
// a checkpoint of state version 4 holds too.
func sumCounts[K comparable](a, b map[K]int64) map[K]int64 {
	if len(b) == 0 {
		return a
	}
	return addCounts(addCounts(nil, a), b)
}

// addOthers adds to dst, which it may allocate, the counts of all less
// those of timed among them: the samples of profiles not time-sampled.
// A count no greater than its timed one (as MarshalBinary writes for a
// stack of time samples alone) adds nothing.
func addOthers[K comparable](dst, all, timed map[K]int64) map[K]int64 {
	for k, n := range all {
		if n -= timed[k]; n > 0 {
			dst = addCount(dst, k, n)
		}
	}
	return dst
}

// addCounts adds src's counts to dst, which it may allocate.
func addCounts[K comparable](dst, src map[K]int64) map[K]int64 {
	if len(src) > 0 && dst == nil {
		dst = make(map[K]int64, len(src))
	}
	for k, n := range src {
		dst[k] += n
	}
	return dst
}
