// Package model holds the runtime model: what evident has learnt from
// telemetry about each service — the functions and packages that ran, the
// observation windows that bound what was not seen, the endpoints it serves,
// the services, data stores and third parties it calls, and how it is
// reached.
//
// A Model is fed profile batches and spans (AddProfile, AddSpans) and read
// through immutable snapshots (Snapshot), so the same code serves a one-shot
// analysis over files and a live stream. Profile samples are aggregated by
// stack: the hot path is a handful of slice reads and one map lookup per
// sample, and per-function figures are derived when a snapshot is taken.
package model

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"hash/maphash"
	"math/bits"
	"slices"
	"sync"
	"time"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/telemetry"
)

// Config sets the bounds of a Model: every structure that grows with
// the telemetry ingested has one, so memory stays flat however long the
// model runs (docs/architecture.md, "Memory"). What a bound keeps out is
// counted in the snapshot (Snapshot.Dropped, Service.Overflow).
type Config struct {
	// MaxPendingSpans bounds the spans remembered to join a CLIENT or
	// PRODUCER span with the SERVER or CONSUMER span it caused when the
	// two arrive in different batches. The oldest half is forgotten when
	// the bound is reached.
	MaxPendingSpans int `yaml:"max_pending_spans"`
	// JoinWindow is how long a SERVER or CONSUMER span whose parent has
	// not arrived waits for it (SpanCounts.Pending): at least this long
	// and at most twice, as received by this process, unless
	// MaxPendingSpans fills sooner (Overflow.Waits). A span whose parent
	// did not arrive by then was called from outside the traced system
	// (SpanCounts.Unlinked). A destination a service consumes from waits
	// as long for a traced producer's first span to it, from the first
	// receipt of the service's span consuming from it (Store.Waiting).
	JoinWindow time.Duration `yaml:"join_window"`
	// LateJoinWindow is how long a span whose wait for its parent ended
	// (JoinWindow) still joins a parent that arrives late, as one that
	// arrived in time would have: at least this long and at most twice,
	// unless a quarter of MaxPendingSpans fills sooner. A pull of Tempo
	// hands on the callers of the services it selects its lag and an
	// interval behind the receivers (evident serve raises it to that).
	LateJoinWindow time.Duration `yaml:"late_join_window"`
	// MaxSpanEndpoints bounds the SERVER and CONSUMER span ids
	// remembered to resolve the span_id label of profile samples to an
	// endpoint: the last MaxSpanEndpoints spans are.
	MaxSpanEndpoints int `yaml:"max_span_endpoints"`
	// MaxServices bounds the services. The telemetry of a new service
	// beyond it is not modelled and is counted in Snapshot.Dropped.
	MaxServices int `yaml:"max_services"`
	// MaxEndpoints bounds the endpoints of a service. Calls to a new
	// endpoint beyond it are counted under the endpoint OtherEndpoints
	// and in Service.Overflow.
	MaxEndpoints int `yaml:"max_endpoints"`
	// MaxHosts bounds the outbound hosts of a service, MaxStores its
	// data stores and the destinations it consumes from. Calls to a new
	// one beyond them are counted in Service.Overflow only.
	MaxHosts  int `yaml:"max_hosts"`
	MaxStores int `yaml:"max_stores"`
	// MaxStacks bounds the aggregated stacks of a service, MaxFunctions
	// its functions. Samples on a new stack beyond the first, and frames
	// of a new function beyond the second, are counted in
	// Service.Overflow only.
	MaxStacks    int `yaml:"max_stacks"`
	MaxFunctions int `yaml:"max_functions"`
	// MaxSeries bounds the functions of a service that keep a time
	// series of their samples (Function.Series, SeriesBuckets one-minute
	// buckets of about 1 KiB each), in the order they are first seen.
	// The samples of a function beyond it are counted in
	// Service.Overflow only.
	MaxSeries int `yaml:"max_series"`
}

// DefaultConfig returns bounds suited to one process holding a few hundred
// services: about 40 MiB of join tables, and per service a few thousand
// endpoints, hosts and stores, a couple of hundred thousand stacks and
// the time series of a couple of thousand functions (about 2 MiB). The
// join window of 30 s is three times the wait of Tempo's service graphs
// (10 s), above the OpenTelemetry SDK's 5 s export delay plus a
// Collector's batching.
func DefaultConfig() Config {
	return Config{
		MaxPendingSpans: 1 << 17, JoinWindow: 30 * time.Second, LateJoinWindow: 2 * time.Minute, MaxSpanEndpoints: 1 << 17, MaxServices: 10_000,
		MaxEndpoints: 2_000, MaxHosts: 1_000, MaxStores: 1_000, MaxStacks: 200_000, MaxFunctions: 100_000,
		MaxSeries: 2_000,
	}
}

// ErrInvalidConfig is wrapped by the errors of Validate.
var ErrInvalidConfig = errors.New("invalid model configuration")

// Validate reports every bound that is not positive (the join tables
// need at least 2).
func (c Config) Validate() error {
	var errs []error
	for _, b := range []struct {
		name   string
		v, min int
	}{
		{"max_pending_spans", c.MaxPendingSpans, 2}, {"max_span_endpoints", c.MaxSpanEndpoints, 2},
		{"max_services", c.MaxServices, 1}, {"max_endpoints", c.MaxEndpoints, 1}, {"max_hosts", c.MaxHosts, 1},
		{"max_stores", c.MaxStores, 1}, {"max_stacks", c.MaxStacks, 1}, {"max_functions", c.MaxFunctions, 1},
		{"max_series", c.MaxSeries, 1},
	} {
		if b.v < b.min {
			errs = append(errs, fmt.Errorf("%w: %s %d is below %d", ErrInvalidConfig, b.name, b.v, b.min))
		}
	}
	if c.JoinWindow <= 0 {
		errs = append(errs, fmt.Errorf("%w: join_window %v is not positive", ErrInvalidConfig, c.JoinWindow))
	}
	if c.LateJoinWindow <= 0 {
		errs = append(errs, fmt.Errorf("%w: late_join_window %v is not positive", ErrInvalidConfig, c.LateJoinWindow))
	}
	return errors.Join(errs...)
}

// Model is the runtime model of a set of services. It is safe for
// concurrent use: updates are serialised, snapshots are copies.
type Model struct {
	mu       sync.Mutex
	cfg      Config
	attr     *attribution.Attributor
	seed     uint64 // random basis of stack hashes
	services map[string]*service

	// callers maps the span id of CLIENT and PRODUCER spans to their
	// service and target host, until the SERVER or CONSUMER span they
	// caused arrives; callees holds the reverse wait, by parent span id,
	// for JoinWindow: it turns a generation when the current one is
	// JoinWindow old (born), and forgets both when nothing waited since
	// (last).
	callers *generations[caller]
	callees *generations[callees]
	// links holds the spans that took messages whose links name a
	// PRODUCER span that has not arrived, by its id, until its bound
	// forgets them, as callers holds PRODUCER spans: a Tempo poll brings
	// a producer's span minutes after its consumer's (links.go).
	links              *generations[linkWaits]
	joinBorn, joinLast time.Time
	// ended holds, by parent span id, the spans whose wait ended
	// (SpanCounts.Unlinked): a caller that arrives later still joins
	// them, late, as one that arrived in time would have. A pull of
	// selected services hands on its callers a poll's lag after the
	// receivers brought the spans they called, beyond the join window.
	// It turns a generation when the current one is LateJoinWindow old
	// (lateBorn), and is bounded by endedBound. An entry holds the spans
	// of one service (ended); those of the other services that ended
	// their wait for the same parent, rare (the consumers of one
	// message), are in endedMore: under steady traffic from an untraced
	// caller the table stays full, and an entry of ended takes a third
	// of the map space one of callees does.
	ended     *generations[endedWaits]
	endedMore *generations[callees]
	lateBorn  time.Time
	// counted holds the ids of the spans that take part in joins, as
	// they are counted: a span that arrives again is a copy, which
	// counts nothing and only joins what its first could not
	// (addCopy). A pull of selected services hands on again the spans
	// that join them to a service the receivers brought too.
	counted spanIDs
	now     func() time.Time
	// lastClient is the client.address of the last SERVER span that had
	// one, and whether it is public: a batch's spans come from few
	// clients (a load balancer's addresses, a scanner), and parsing an
	// address costs more than the rest of a span's check.
	lastClient       string
	lastClientPublic bool
	// lastStore is the last store name built and the parts it was built
	// of (storeName): a service's spans call few stores, and building
	// the name allocated for every database span.
	lastStore storeParts

	// viewAt is, for a merged view of shards restored (MergeStates), the
	// latest time its shards' states were written, by their clock: the
	// destinations' wait for their producers (Store.Waiting) is judged
	// at it, in the clock their receipt times are of. This model's clock
	// may be another host's, skewed, and runs on while the states it
	// holds do not, so that a producer's span another shard received
	// within the window, and has not checkpointed yet, would be taken
	// for none. Zero for any other model, and for a view of states that
	// did not say (written before 2026-12-07): its clock judges.
	viewAt time.Time

	// spanEndpoints maps the id of SERVER and CONSUMER spans to the
	// endpoint they served, for span-linked profile samples.
	spanEndpoints *spanRing
	// dropped counts the telemetry of services beyond MaxServices.
	dropped Dropped
}

type caller struct {
	svc   *service
	host  string
	error bool
	// many marks a span that more than one span joins, so it stays
	// until its generation is forgotten: a PRODUCER span, which every
	// consumer of the message joins, and a consumer's receive (or
	// process, settle) CLIENT span, which the process span of each
	// message of the batch it received joins.
	many bool
	// producer marks a PRODUCER span: the creation context of the
	// messages it sent, which a consumer's links name (links.go).
	producer   bool
	start, end time.Time
}

// callee is n SERVER or CONSUMER spans of one service waiting for their
// parent, since at (Unix nanoseconds: a third of a time.Time in the join
// table). The children of one parent that arrive together, telemetrygen's
// nine SERVER spans of one CLIENT span say, are one callee: no allocation
// and no span id for each. The store keys each child by an id of its own
// (PendingCallee.SpanID), which calleeID derives.
type callee struct {
	svc *service
	at  int64
	n   int64
}

// endedWaits are the spans of one service whose wait for one parent
// ended: their time no longer matters. more tells that spans of other
// services wait for it too, in Model.endedMore.
type endedWaits struct {
	svc  *service
	n    int32
	more bool
}

// calleeID is the id the k-th of the spans waiting for parent, of
// service since at, goes to the store with: a hash of the four, so that
// each of several children of one parent counts, and the same callees
// handed over again (RestorePending after a checkpoint that failed, in
// the order TakePending gave them) go under the same ids and count once.
func calleeID(parent [8]byte, service string, at, k int64) [8]byte {
	h := fnv.New64a()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(at))
	binary.BigEndian.PutUint64(b[8:], uint64(k))
	h.Write(parent[:])
	h.Write([]byte(service))
	h.Write(b[:])
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], h.Sum64())
	return id
}

// callees are the spans waiting for one parent: one, or the children of
// one parent (the consumers of one message, the process spans of one
// batch, the SERVER spans of a retried CLIENT span).
type callees struct {
	callee
	more []callee
}

// add makes c wait too: with the last callee when it is of the same
// service and time, else after it.
func (w *callees) add(c callee) {
	last := &w.callee
	if len(w.more) > 0 {
		last = &w.more[len(w.more)-1]
	}
	if last.svc == c.svc && last.at == c.at {
		last.n += c.n
		return
	}
	w.more = append(w.more, c)
}

// all yields the waiting spans.
func (w *callees) all(yield func(callee) bool) {
	if !yield(w.callee) {
		return
	}
	for _, c := range w.more {
		if !yield(c) {
			return
		}
	}
}

type endpointRef struct {
	svc *service
	idx int32
}

// SetAttributor makes attr the attributor of the frames of the profiles
// added from now on; the functions of those added before keep the
// attribution they had.
func (m *Model) SetAttributor(attr *attribution.Attributor) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attr = attr
}

// New returns an empty model that attributes frames with attr; cfg must
// be valid.
func New(cfg Config, attr *attribution.Attributor) *Model {
	return &Model{
		cfg:           cfg,
		attr:          attr,
		seed:          maphash.Comparable(maphash.MakeSeed(), 0),
		services:      make(map[string]*service),
		callers:       newGenerations[caller](cfg.MaxPendingSpans),
		callees:       newGenerations[callees](cfg.MaxPendingSpans),
		links:         newGenerations[linkWaits](cfg.MaxPendingSpans),
		ended:         newGenerations[endedWaits](endedBound(cfg.MaxPendingSpans)),
		endedMore:     newGenerations[callees](endedBound(cfg.MaxPendingSpans)),
		counted:       spanIDs{max: cfg.MaxPendingSpans},
		spanEndpoints: newSpanRing(cfg.MaxSpanEndpoints),
		now:           time.Now,
	}
}

// SetClock sets the clock that times the join window; the default is
// time.Now.
func (m *Model) SetClock(now func() time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = now
}

// service is the mutable state of one service, guarded by Model.mu.
type service struct {
	name string
	// namespace is the first service.namespace its telemetry carried;
	// otherNamespaces the others, first seen first, at most
	// maxNamespaces-1 (addNamespace).
	namespace       string
	otherNamespaces []string
	// images are the container images the service's resources named,
	// oldest first, at most maxImages; lastImage is the pointer last
	// added, so that the spans of one resource cost one comparison.
	images    []telemetry.Image
	lastImage *telemetry.Image

	// Profiles.
	funcs      []attribution.Func
	funcIndex  map[attribution.Func]int32
	stacks     []stack
	stackIndex map[uint64][]int32 // hash of the function sequence -> stacks with that hash
	windows    []Window
	series     []*series // by function index: its samples per minute, nil for none
	nseries    int       // the non-nil series
	seriesLast int64     // newest minute in any series
	stamp      []int32   // by function index, scratch of addSeries
	samples    int64     // all samples, attributed or not
	unattrib   int64     // samples whose leaf frame could not be attributed

	// Traces.
	endpoints     []Endpoint
	endpointIndex map[endpointKey]int32
	spans         SpanCounts
	edges         map[string]*Edge // by callee service
	stores        map[string]*Store
	hosts         map[string]*hostCalls
	consumes      map[string]*Store // messaging destinations this service consumes from
	first, last   time.Time
	overflow      Overflow
}

// stack is an aggregated call stack: the attributed functions of its
// frames, leaf first, with everything observed on it. samples counts the
// samples of every profile, timed those of time-sampled profiles
// (telemetry.TimeSampled), which alone bound what was not seen; value is
// theirs too, in their unit: an allocation profile's bytes are no CPU
// time.
type stack struct {
	funcs       []int32
	samples     int64
	timed       int64
	value       int64
	first, last time.Time
	// timedEndpoints counts, by endpoint index, the samples of
	// time-sampled profiles that span-labelled samples led to, and
	// otherEndpoints those of other profiles; timedSpanNames and
	// otherSpanNames the same by the span name of a sample whose span is
	// no known endpoint. An endpoint's samples are the sum of the two,
	// so a sample costs one map update, not one for all and another for
	// time samples (a CPU profile's are all of time).
	timedEndpoints, otherEndpoints map[int32]int64
	timedSpanNames, otherSpanNames map[string]int64
	batch                          int64 // samples in the batch being added, for the series
}

type endpointKey struct{ kind, method, route string }

type hostCalls struct {
	calls, errors int64
	scheme        string
	first, last   time.Time
	// resolved counts the calls joined with a SERVER span of a traced
	// service: such a host is that service, not a third party.
	resolved map[*service]int64
}

// admit returns the named service, creating it unless MaxServices are
// known already: then it returns nil. A service it creates is added to
// ch.NewServices. Telemetry that names no service is
// telemetry.UnknownService's, as the trace decoders make the spans of a
// resource without service.name.
func (m *Model) admit(name string, ch *Changes) *service {
	name = cmp.Or(name, telemetry.UnknownService)
	if s := m.services[name]; s != nil || len(m.services) >= m.cfg.MaxServices {
		return s
	}
	ch.NewServices = append(ch.NewServices, name)
	return m.service(name)
}

func (m *Model) service(name string) *service {
	s := m.services[name]
	if s == nil {
		s = &service{
			name:          name,
			funcIndex:     make(map[attribution.Func]int32),
			stackIndex:    make(map[uint64][]int32),
			endpointIndex: make(map[endpointKey]int32),
			edges:         make(map[string]*Edge),
			stores:        make(map[string]*Store),
			hosts:         make(map[string]*hostCalls),
			consumes:      make(map[string]*Store),
		}
		m.services[name] = s
	}
	return s
}

// maxNamespaces bounds the namespaces remembered per service.
const maxNamespaces = 8

// addNamespace records ns, the service.namespace of a resource of the
// service. OpenTelemetry identifies a service by service.namespace and
// service.name, but evident keys it by service.name alone, which is all
// that profilers (Pyroscope application names), scanners and the
// configuration name; so services of one name in two namespaces are one
// here, their telemetry mixed. The first namespace is the one shown and
// the service's product, the others are listed (Service.Namespaces), and
// the batch that shows a second one says so (Changes.MergedNamespaces),
// once per service, so that the merge is never silent.
func (s *service) addNamespace(ns string, ch *Changes) {
	if ns == "" || ns == s.namespace {
		return
	}
	if s.namespace == "" {
		s.namespace = ns
		return
	}
	if slices.Contains(s.otherNamespaces, ns) || len(s.otherNamespaces) >= maxNamespaces-1 {
		return
	}
	s.otherNamespaces = append(s.otherNamespaces, ns)
	if len(s.otherNamespaces) == 1 {
		ch.MergedNamespaces = append(ch.MergedNamespaces, NamespaceMerge{Service: s.name, Namespaces: s.namespaces()})
	}
}

// namespaces returns the namespaces of a service seen in more than one,
// the first first; nil otherwise.
func (s *service) namespaces() []string {
	if len(s.otherNamespaces) == 0 {
		return nil
	}
	return append([]string{s.namespace}, s.otherNamespaces...)
}

// maxImages bounds the images remembered per service: a rolling update
// shows two, a long-lived service a handful over its retention.
const maxImages = 8

// addImage records the container image a resource named, if any; the
// newest is last and the oldest is forgotten past maxImages.
func (s *service) addImage(img *telemetry.Image) {
	if img == nil || img == s.lastImage {
		return
	}
	s.lastImage = img
	if i := slices.IndexFunc(s.images, func(x telemetry.Image) bool { return sameImage(x, *img) }); i >= 0 {
		x := s.images[i]
		s.images = append(slices.Delete(s.images, i, i+1), x)
		return
	}
	if len(s.images) == maxImages {
		s.images = slices.Delete(s.images, 0, 1)
	}
	s.images = append(s.images, telemetry.Image{Name: img.Name, Digest: img.Digest, RepoDigests: slices.Clone(img.RepoDigests), Tags: slices.Clone(img.Tags)})
}

func sameImage(a, b telemetry.Image) bool {
	return a.Name == b.Name && a.Digest == b.Digest && slices.Equal(a.RepoDigests, b.RepoDigests) && slices.Equal(a.Tags, b.Tags)
}

func (s *service) seen(start, end time.Time) {
	widen(&s.first, &s.last, start, end)
}

// generations is a bounded map that forgets its oldest half when full:
// joins across batches work as long as the two sides arrive within about
// max entries of each other, and memory stays bounded whatever arrives.
type generations[V any] struct {
	max       int
	cur, prev map[[8]byte]V
}

// endedBound is the bound of Model.ended, a quarter of MaxPendingSpans:
// under steady traffic whose callers never arrive (an ingress proxy that
// propagates traceparent but exports nothing) the table stays full, and
// an engine keeps a model per tenant, and per Kafka partition in a
// cluster. At MaxPendingSpans it held 16 MiB a model, at a quarter 4 MiB,
// 1.3 MiB less since an entry takes 16 bytes (BenchmarkAddSpansUnjoined);
// a late caller still joins the last MaxPendingSpans/8 to
// MaxPendingSpans/4 spans whose wait ended within LateJoinWindow.
func endedBound(maxPending int) int { return maxPending / 4 }

func newGenerations[V any](max int) *generations[V] {
	if max < 2 {
		max = 2
	}
	return &generations[V]{max: max, cur: make(map[[8]byte]V)}
}

// lookup returns the value of k and whether it is in the current
// generation.
func (g *generations[V]) lookup(k [8]byte) (v V, cur, ok bool) {
	if v, ok := g.cur[k]; ok {
		return v, true, true
	}
	v, ok = g.prev[k]
	return v, false, ok
}

func (g *generations[V]) put(k [8]byte, v V) {
	if g.full() {
		g.rotate(nil)
	}
	g.cur[k] = v
}

// full reports whether the next put turns a generation.
func (g *generations[V]) full() bool { return len(g.cur) >= g.max/2 }

// rotate starts a new generation, forgetting the oldest one after
// calling forget, if not nil, with its entries. The forgotten table is
// cleared and reused for the new generation: a full table turns without
// allocating, and its size stays bounded by max/2.
func (g *generations[V]) rotate(forget func(map[[8]byte]V)) {
	old := g.prev
	if old == nil {
		old = make(map[[8]byte]V, len(g.cur))
	} else {
		if forget != nil {
			forget(old)
		}
		clear(old)
	}
	g.prev, g.cur = g.cur, old
}

// remove deletes k from the generation lookup found it in.
func (g *generations[V]) remove(k [8]byte, cur bool) {
	if cur {
		delete(g.cur, k)
	} else {
		delete(g.prev, k)
	}
}

// spanIDs remembers span ids in a table of up to max slots (rounded up to
// a power of two) without chains: an id takes the slot its hash names,
// forgetting the one that was there, so it remembers most of the last
// max ids (after max more, an id is still there with a chance of about
// 1/e). Every span that takes part in joins is added: a slot's one read
// and write cost a tenth of what a map's insert does (BenchmarkAddSpans),
// and a span id is random, so its hash is a multiplication. The table
// starts small and doubles each time as many ids as it has slots were
// added, up to max: an engine keeps a model per tenant, and per Kafka
// partition in a cluster, most of which see few spans.
type spanIDs struct {
	max   int
	slots []uint64
	shift uint
	added int // ids added since the table last grew
	// touched is what the last touch read (its loads' only use).
	touched uint64
}

// spanIDsFirst is the number of slots a table of span ids starts with.
const spanIDsFirst = 1 << 10

// add adds the id of a span of kind and reports whether it was there
// already. The kind is part of the key: Zipkin's shared spans (B3) give
// the callee's SERVER span the id of the caller's CLIENT span, and
// neither is a copy of the other. The zero id is never there.
func (t *spanIDs) add(id [8]byte, kind telemetry.SpanKind) bool {
	if t.slots == nil {
		// Allocated as spans come, so that a model fed only
		// profiles stays small.
		t.resize(min(spanIDsFirst, t.limit()))
	}
	k := spanKey(id, kind)
	i := t.slot(k)
	if t.slots[i] == k && k != 0 {
		return true
	}
	t.slots[i] = k
	if t.added++; t.added >= len(t.slots) && len(t.slots) < t.limit() {
		t.resize(2 * len(t.slots))
	}
	return false
}

// touch reads the slots the spans that join would take, one load
// after the other without waiting for each: a table of max slots (1 MiB
// by default) is mostly out of the CPU's caches, and add, reading one
// slot between a span's other work, waited for memory once per span
// (spanIDs.add was 14 % of evident serve's CPU under telemetrygen's
// load, 2026-12-07). The loads of a few dozen spans overlap; their
// slots are then in the cache for add. What was read is kept in
// t.touched so that the compiler keeps the loads.
func (t *spanIDs) touch(spans []telemetry.Span) {
	if t.slots == nil {
		return
	}
	var x uint64
	for i := range spans {
		if sp := &spans[i]; joins(sp) {
			x ^= t.slots[t.slot(spanKey(sp.SpanID, sp.Kind))]
		}
	}
	t.touched = x
}

// spanKey is the key of a span id and kind in a spanIDs table.
func spanKey(id [8]byte, kind telemetry.SpanKind) uint64 {
	return binary.LittleEndian.Uint64(id[:]) ^ uint64(kind)*0xbf58476d1ce4e5b9
}

// slot is the slot of key k: a span id is random, so a multiplication
// spreads the keys.
func (t *spanIDs) slot(k uint64) uint64 { return (k * 0x9e3779b97f4a7c15) >> t.shift }

// limit is the number of slots the table grows to: max, rounded up to a
// power of two.
func (t *spanIDs) limit() int { return 1 << bits.Len(uint(t.max-1)) }

// resize makes the table n slots (a power of two), keeping the ids it
// holds but those that meet in a slot.
func (t *spanIDs) resize(n int) {
	old := t.slots
	t.slots, t.shift, t.added = make([]uint64, n), uint(64-bits.Len(uint(n-1))), 0
	for _, k := range old {
		if k != 0 {
			t.slots[t.slot(k)] = k
		}
	}
}

// AddProfile aggregates a profile batch into the model and returns the
// functions it showed running for the first time, and its service when
// that is new. A batch without a service is telemetry.UnknownService's,
// so nothing accepted is lost.
func (m *Model) AddProfile(b *telemetry.ProfileBatch) Changes {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ch Changes
	s := m.admit(b.Service, &ch)
	if s == nil {
		m.dropped.Profiles++
		return ch
	}
	s.addNamespace(b.Namespace, &ch)
	s.addImage(b.Image)
	known := len(s.funcs)
	start, end := b.Start, b.Start.Add(b.Duration)
	s.seen(start, end)
	timed := telemetry.TimeSampled(b.SampleType, b.Unit)

	var total int64
	// Each location is attributed once per batch; the Attributor caches
	// across batches.
	locFuncs := make([][]int32, len(b.Locations))
	locDone := make([]bool, len(b.Locations))
	var seq []int32
	names := make(map[spanLabel]int32) // endpoint index, per batch
	var touched []int32                // stacks with samples in this batch
	for i := range b.Samples {
		smp := &b.Samples[i]
		total += smp.Count
		seq = seq[:0]
		for j, li := range smp.Locations {
			if li < 0 || int(li) >= len(b.Locations) {
				continue // telemetry validates; stay safe on hand-built batches
			}
			if !locDone[li] {
				locFuncs[li] = m.attributeLocation(s, b.Locations[li])
				locDone[li] = true
			}
			if j == 0 && len(locFuncs[li]) == 0 {
				s.unattrib += smp.Count
			}
			seq = append(seq, locFuncs[li]...)
		}
		if len(smp.Locations) == 0 {
			s.unattrib += smp.Count
		}
		if len(seq) == 0 {
			continue
		}
		si := s.stack(m.seed, seq, m.cfg.MaxStacks)
		if si < 0 {
			s.overflow.Samples += smp.Count
			continue
		}
		st := &s.stacks[si]
		if st.batch == 0 {
			touched = append(touched, si)
		}
		st.batch += smp.Count
		st.samples += smp.Count
		if timed {
			st.timed += smp.Count
			st.value += smp.Value
		}
		widen(&st.first, &st.last, start, end)
		if smp.SpanID != "" || smp.SpanName != "" {
			m.linkSpan(s, st, names, smp, timed)
		}
	}
	s.samples += total
	// A function's series counts its time samples per minute: an
	// allocation profile's objects would outweigh a minute of CPU
	// samples a thousandfold. Its totals count every profile's.
	minuteOf := start
	if !timed {
		minuteOf = time.Time{} // no minute, as a profile with no time
	}
	s.addSeries(touched, minuteOf, m.cfg.MaxSeries)
	var langs []attribution.Language
	for _, fs := range locFuncs {
		for _, f := range fs {
			if l := s.funcs[f].Language; !slices.Contains(langs, l) {
				langs = append(langs, l)
			}
		}
	}
	if langs == nil {
		langs = []attribution.Language{attribution.Unknown}
	}
	slices.Sort(langs)
	s.addWindow(Window{
		Start: start, End: end, Samples: total, Period: b.Period,
		Unit: b.Unit, SampleType: b.SampleType, TimeSampled: timed, Languages: langs, Source: b.Source,
	})
	if len(s.funcs) > known {
		ch.NewFunctions = map[string][]attribution.Func{s.name: slices.Clone(s.funcs[known:])}
	}
	return ch
}

// attributeLocation returns the function indexes of a location's frames,
// callee first, interning new functions in the service.
func (m *Model) attributeLocation(s *service, frames []attribution.Frame) []int32 {
	var out []int32
	for _, f := range frames {
		fn, ok := m.attr.Attribute(f)
		if !ok {
			continue
		}
		idx, ok := s.funcIndex[fn]
		if !ok {
			if len(s.funcs) >= m.cfg.MaxFunctions {
				s.overflow.Frames++
				continue
			}
			idx = int32(len(s.funcs))
			s.funcs = append(s.funcs, fn)
			s.funcIndex[fn] = idx
		}
		out = append(out, idx)
	}
	return out
}

// stack returns the index of the aggregate for a function sequence,
// creating it unless the service has max stacks already: then it
// returns -1.
func (s *service) stack(seed uint64, seq []int32, max int) int32 {
	// FNV-1a over the indexes, from a per-model random basis: cheap on the
	// per-sample path, and equality is checked, so collisions cost time,
	// never correctness.
	key := seed
	for _, f := range seq {
		key ^= uint64(uint32(f))
		key *= 1099511628211
	}
	for _, idx := range s.stackIndex[key] {
		if equalInt32(s.stacks[idx].funcs, seq) {
			return idx
		}
	}
	if len(s.stacks) >= max {
		return -1
	}
	idx := int32(len(s.stacks))
	s.stacks = append(s.stacks, stack{funcs: append([]int32(nil), seq...)})
	s.stackIndex[key] = append(s.stackIndex[key], idx)
	return idx
}

func equalInt32(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// linkSpan records the endpoint that led to a span-labelled sample: the
// endpoint of the SERVER span whose id the sample carries when traces
// have shown it, else the span name the profiler recorded.
func (m *Model) linkSpan(s *service, st *stack, names map[spanLabel]int32, smp *telemetry.Sample, timed bool) {
	// A sample with a span id is keyed by it alone, one with none by its
	// span name: a struct, not a string of both, so that the lookup
	// allocates nothing.
	key := spanLabel{id: smp.SpanID}
	if key.id == "" {
		key.name = smp.SpanName
	}
	ep, ok := names[key]
	if !ok {
		ep = -1
		if id, ok := parseSpanID(smp.SpanID); ok {
			if ref, ok := m.spanEndpoints.get(id); ok && ref.svc == s {
				ep = ref.idx
			}
		}
		names[key] = ep
	}
	switch {
	case ep >= 0 && timed:
		st.timedEndpoints = addCount(st.timedEndpoints, ep, smp.Count)
	case ep >= 0:
		st.otherEndpoints = addCount(st.otherEndpoints, ep, smp.Count)
	case smp.SpanName != "" && timed:
		st.timedSpanNames = addCount(st.timedSpanNames, smp.SpanName, smp.Count)
	case smp.SpanName != "":
		st.otherSpanNames = addCount(st.otherSpanNames, smp.SpanName, smp.Count)
	}
}

// spanLabel is the span a sample is labelled with: its span_id, or its
// span_name when it has none.
type spanLabel struct{ id, name string }

func addCount[K comparable](counts map[K]int64, k K, n int64) map[K]int64 {
	if counts == nil {
		counts = make(map[K]int64)
	}
	counts[k] += n
	return counts
}

// parseSpanID decodes a 16-digit hex span id as pprof labels carry it.
func parseSpanID(s string) ([8]byte, bool) {
	var id [8]byte
	if len(s) != 16 {
		return id, false
	}
	for i := 0; i < 16; i++ {
		c := s[i]
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return id, false
		}
		id[i/2] = id[i/2]<<4 | v
	}
	return id, true
}

// windowGap is the largest gap between two profiles of a service that
// still counts as one observation window: continuous profilers push every
// 10 to 15 seconds, so a live stream stays one window instead of growing
// a list without bound.
const windowGap = time.Second

// addWindow records an observation window, extending the last one of
// the same kind when the new one continues it. The last of its kind, not
// the last of all: pyroscope-go sends a CPU and a heap profile every 10
// seconds, and comparing with the last window made a window of each
// profile, a list that grew without bound. Of the same kind is of the
// same languages too, or of more: a window of a Go server's profiles and
// one of its Python worker's stay apart, so that neither covers the
// other's time, while a profile of only some of a window's languages (a
// Go profile whose samples were all in the runtime) continues it, and a
// profile of any language continues a window of idle profiles.
func (s *service) addWindow(w Window) {
	for i := len(s.windows) - 1; i >= 0; i-- {
		last := &s.windows[i]
		if last.Period != w.Period || last.SampleType != w.SampleType || last.Unit != w.Unit || last.TimeSampled != w.TimeSampled {
			continue
		}
		idle := last.Languages != nil && subset(last.Languages, nil)
		if last.Languages != nil && !idle && !subset(w.Languages, last.Languages) {
			continue
		}
		if !w.Start.Before(last.Start) && !w.Start.After(last.End.Add(windowGap)) {
			if w.End.After(last.End) {
				last.End = w.End
			}
			last.Samples += w.Samples
			if idle {
				// A server idle until its first request was
				// profiled all along: its code's bound covers
				// that time.
				last.Languages = w.Languages
			}
			return
		}
		break
	}
	s.windows = append(s.windows, w)
}

// subset reports whether every language of a is in b, but for Unknown:
// a profile that held no attributed code (an idle process's, with no
// sample) continues a window of any language rather than starting one
// between two of its profiles, and a window of such profiles alone is
// continued by a profile of any language (subset(langs, nil)).
func subset(a, b []attribution.Language) bool {
	for _, l := range a {
		if l != attribution.Unknown && !slices.Contains(b, l) {
			return false
		}
	}
	return true
}
