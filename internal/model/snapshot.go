package model

import (
	"cmp"
	"slices"
	"time"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/telemetry"
)

// Window is one observation window: the span of time a profile covered
// and how many samples it held.
type Window struct {
	Start, End time.Time
	Samples    int64
	// Period is the sampling period in Unit; 0 when the profile did not say.
	Period     int64
	Unit       string
	SampleType string
	// TimeSampled says that the window's samples are of time
	// (telemetry.TimeSampled): they count in LanguageTimeSamples and its
	// time counts in the rule-of-three bound. It is false too for the
	// windows of a service restored from a checkpoint of state version 3
	// or before that held profiles of both kinds, whose samples the
	// checkpoint did not tell apart.
	TimeSampled bool
	// Languages are the languages of the code its samples held, sorted
	// (attribution.Unknown alone for profiles with no attributed frame):
	// a Go server's CPU profiles cover no time of the Python worker
	// profiled under the same service.name. Windows of profiles of other
	// languages are kept apart. Nil for the windows of a checkpoint
	// written before 2026-12-07, which did not keep them: they count for
	// every language.
	Languages []attribution.Language
	// Source is the file or receiver the profile came from.
	Source string
}

// Holds reports whether the window's samples held code of lang, or may
// have (a window restored without its languages).
func (w Window) Holds(lang attribution.Language) bool {
	return w.Languages == nil || slices.Contains(w.Languages, lang)
}

// Endpoint is one operation a service serves.
type Endpoint struct {
	// Kind is http, rpc, messaging or span (named after the span only).
	Kind string
	// Method is the HTTP method, the RPC service or "process".
	Method string
	// Route is the HTTP route template, the RPC method, the messaging
	// destination or the span name.
	Route         string
	Calls, Errors int64
	First, Last   time.Time
}

// Name is how reports show the endpoint: "GET /products/{id}".
func (e Endpoint) Name() string {
	if e.Method == "" {
		return e.Route
	}
	return e.Method + " " + e.Route
}

// SpanCounts counts the SERVER and CONSUMER spans of a service by how
// they were reached.
type SpanCounts struct {
	// All counts every span of the service, whatever its kind.
	All              int64
	Server, Consumer int64
	// Root spans have no parent: the request entered the traced system
	// here.
	Root int64
	// Linked spans were joined with the CLIENT or PRODUCER span of a
	// traced service that caused them.
	Linked int64
	// Own spans were joined with a span of their own service: the
	// receive CLIENT span the service took a batch of messages with
	// (batch receiving, as the OpenTelemetry Java agent records it), a
	// PRODUCER span of a message it sent itself, or a CLIENT span of a
	// call to itself (a job of its own calling its API). No traced
	// service called them: their input came from the service, or
	// through a messaging destination, and the destinations the service
	// consumes from tell whose it is. So are CONSUMER spans that start a
	// trace and link to their messages' creation contexts (a batch's
	// process span): their input came through their destination too.
	// States written before 2026-12-07 count the first as Linked, the
	// second as Root.
	Own int64
	// Pending spans have a parent span that has not arrived yet: they
	// wait for it for the join window (Config.JoinWindow).
	Pending int64
	// Unlinked spans have a parent span that did not arrive within the
	// join window (or before a full join table forgot them,
	// Overflow.Waits): an untraced caller sent them, from outside the
	// traced system. Spans whose wait a restart cut short are counted
	// neither here nor in Pending nor in Linked.
	Unlinked int64
	// PublicClients counts SERVER spans whose client.address is a public
	// IP address.
	PublicClients int64
	// Probes are SERVER spans that start a trace and are a health
	// check or a metrics scrape (the kubelet's, a load balancer's,
	// Prometheus's): counted in none of the above, since they tell
	// nothing of who sends the service input. Until 2026-12-07 they
	// counted as Server and Root spans, which made every service the
	// kubelet probes an entry point.
	Probes int64
}

// Edge is calls from one traced service to another.
type Edge struct {
	From, To      string
	Calls, Errors int64
	First, Last   time.Time
}

// Store is a data store or third party a service reached, under its
// canonical name (DESIGN.md): "postgresql://shop/orders", "s3://bucket",
// "kafka://orders", "https://api.example.com".
type Store struct {
	Name string
	// Kind is database, objectstore, messaging or external.
	Kind string
	// System is db.system.name, "s3", messaging.system, or the URL scheme.
	System string
	// Service is the service that reached it.
	Service       string
	Calls, Errors int64
	First, Last   time.Time
	// Received is, for a destination the service consumes from
	// (Service.Consumes), when the model first received a span of the
	// service consuming from it, by its clock (SetClock); zero after
	// Settle, and for one of a state written before 2026-12-07. Waiting
	// is set in a snapshot taken less than the join window after it (in
	// a merged view of shards, less than the window before the latest
	// of its shards' states was written, by their clock): a
	// producer's first span to the destination may still be on its way,
	// as a SERVER span's caller may (SpanCounts.Pending), so that no
	// traced service produces to it says nothing yet.
	Received time.Time
	Waiting  bool
	// Linked counts, for a destination the service consumes from, the
	// links of its spans consuming from it that named a PRODUCER span of
	// another traced service: the messages' creation context (links.go).
	// Such a destination is fed by traced services whatever names they
	// produce to (a RabbitMQ exchange for its queue, a Pub/Sub topic for
	// its subscription), and waits for no producer.
	Linked int64
}

// Function is a function seen running in a service's profiles.
type Function struct {
	attribution.Func
	// Samples is the number of samples with the function on the stack,
	// of every profile: any shows that it ran. TimeSamples counts those
	// of time-sampled profiles (Window.TimeSampled), and Value is their
	// total in those profiles' unit (CPU nanoseconds).
	Samples, TimeSamples, Value int64
	First, Last                 time.Time
	// Endpoints are the endpoints whose spans led to the function, from
	// span-labelled samples, heaviest first.
	Endpoints []NamedSamples
	// SpanNames are the span_name labels of samples whose span is no known
	// endpoint (the root span of a batch job, or a span the traces have
	// not shown), heaviest first.
	SpanNames []NamedSamples
	// Stack is the heaviest stack the function was seen on, leaf first.
	Stack []attribution.Func
	// Series are its time samples (TimeSamples) per minute over the
	// SeriesBuckets minutes up to the service's newest time-sampled
	// profile, oldest first, empty minutes left out; nil for a function
	// beyond MaxSeries or seen in no time-sampled profile.
	Series []Bucket
}

// NamedSamples is how many samples of a function an endpoint or a span
// led to: of every profile, and of time-sampled ones (TimeSamples), as a
// Function's.
type NamedSamples struct {
	Name        string `json:"name"`
	Samples     int64  `json:"samples"`
	TimeSamples int64  `json:"time_samples"`
}

// Package is a code package seen running: the sum of its functions.
type Package struct {
	Language attribution.Language
	Package  string
	Module   string
	Version  string
	// Samples, TimeSamples and Value are as a Function's: of every
	// profile, of time-sampled ones, and their value.
	Samples, TimeSamples, Value int64
	First, Last                 time.Time
}

// Service is a snapshot of everything known about one service.
type Service struct {
	Name string
	// Namespace is the service.namespace its telemetry carried, if any:
	// the first one, when it carried several.
	Namespace string
	// Namespaces are the service.namespace values of services of this
	// name in several namespaces, the first first, which the model
	// merged into this one (their spans, profiles, edges and stores
	// mixed, since evident keys a service by service.name); nil when
	// there was at most one.
	Namespaces []string
	// Images are the container images its telemetry named (resource
	// container.image.*), the newest last.
	Images      []telemetry.Image
	First, Last time.Time

	// Profiles.
	Windows []Window
	// Samples counts every profile sample; Unattributed those whose leaf
	// frame no rule could attribute. TimeSamples counts the samples of
	// the time-sampled windows (Window.TimeSampled): an allocation
	// profile's objects are in Samples, not in it.
	Samples, Unattributed, TimeSamples int64
	// LanguageSamples counts, per language, the samples whose stack (as
	// kept: not beyond MaxStacks) holds code of it: those in which code of
	// that language could have been seen. A service whose processes run
	// several runtimes (a Go server with a Python worker) has most of its
	// samples in one of them; a stack beyond the bound is in none.
	LanguageSamples map[attribution.Language]int64
	// LanguageTimeSamples counts, per language, the samples of
	// time-sampled profiles (Window.TimeSampled) among LanguageSamples:
	// those that bound how much of the service's time code of that
	// language could have taken unseen. An allocation sample shows code
	// that ran, but code that allocates nothing is never in one.
	LanguageTimeSamples map[attribution.Language]int64
	// Functions and Packages are heaviest first: by time samples, then
	// by every profile's.
	Functions []Function
	Packages  []Package
	// SeriesEnd is the end of the newest minute of the functions' series
	// (Function.Series, Hour); zero before any profile.
	SeriesEnd time.Time

	// Traces.
	Endpoints []Endpoint // most called first
	Spans     SpanCounts
	Edges     []Edge  // to other traced services
	Stores    []Store // data stores and third parties it calls
	// Consumes are the messaging destinations it consumes from: those of
	// its CONSUMER spans, and of its CLIENT spans that receive or settle
	// (a pull consumer's); Calls counts both.
	Consumes []Store

	// Overflow counts what the model's bounds kept out.
	Overflow Overflow
}

// Waiting reports whether the join window has yet to decide something of
// how the service is reached: SERVER or CONSUMER spans wait for their
// caller (SpanCounts.Pending), or a destination it consumes from waits
// for its producers (Store.Waiting).
func (s *Service) Waiting() bool {
	return s.Spans.Pending > 0 || slices.ContainsFunc(s.Consumes, func(st Store) bool { return st.Waiting })
}

// Overflow counts what the bounds of a service (Config) kept out of the
// model.
type Overflow struct {
	// Endpoints counts calls to endpoints beyond MaxEndpoints, which the
	// endpoint OtherEndpoints counts too.
	Endpoints int64 `json:"endpoints,omitempty"`
	// Hosts and Stores count calls to hosts and stores beyond MaxHosts
	// and MaxStores.
	Hosts  int64 `json:"hosts,omitempty"`
	Stores int64 `json:"stores,omitempty"`
	// Produces counts the spans that sent messages to destinations
	// beyond MaxStores: those are not among the service's Stores, so the
	// destinations' consumers do not know it produces to them, and a
	// consumer of a destination no traced service is known to produce
	// to is not taken to be fed from outside (its exposure is unknown).
	// States written before 2026-12-07 count them in Stores.
	Produces int64 `json:"produces,omitempty"`
	// Consumes counts the spans that took messages from destinations
	// beyond MaxStores (the service's Consumes): who produces to those
	// is not known, so they leave the service's exposure open. States
	// written before 2026-12-07 count them in Stores.
	Consumes int64 `json:"consumes,omitempty"`
	// Samples counts profile samples on stacks beyond MaxStacks; Frames
	// the frames of functions beyond MaxFunctions, left out of stacks.
	Samples int64 `json:"samples,omitempty"`
	Frames  int64 `json:"frames,omitempty"`
	// Series counts the samples of functions beyond MaxSeries, left out
	// of the functions' time series (a sample counts once per such
	// function on its stack).
	Series int64 `json:"series,omitempty"`
	// Waits counts the SERVER and CONSUMER spans that a full join table
	// (MaxPendingSpans) forgot before their join window passed; they
	// count as Unlinked, unless a caller joins them later.
	Waits int64 `json:"waits,omitempty"`
	// Links counts the links of its spans that took messages which the
	// decoder did not keep (beyond telemetry.MaxSpanLinks) or their SDK
	// dropped: the PRODUCER spans they named are not joined, so the
	// producers that feed the service through them may not be known.
	Links int64 `json:"links,omitempty"`
}

// Dropped counts the telemetry of services beyond Config.MaxServices.
type Dropped struct {
	Spans    int64 `json:"spans,omitempty"`
	Profiles int64 `json:"profiles,omitempty"`
}

// Snapshot is a consistent copy of the model; it shares no memory with it.
type Snapshot struct {
	Services []*Service // by name
	// Dropped counts what services beyond MaxServices sent.
	Dropped Dropped
}

// Service returns the named service, or nil.
func (s *Snapshot) Service(name string) *Service {
	i, ok := slices.BinarySearchFunc(s.Services, name, func(svc *Service, n string) int { return cmp.Compare(svc.Name, n) })
	if !ok {
		return nil
	}
	return s.Services[i]
}

// Destinations returns, by messaging destination, the services that
// produce to it (its store among theirs) and those that consume from it,
// each in the order of Services: the links through queues that blast
// radius, the sensitive paths and re-assessment follow.
func (s *Snapshot) Destinations() (producers, consumers map[string][]string) {
	producers, consumers = map[string][]string{}, map[string][]string{}
	for _, svc := range s.Services {
		for _, st := range svc.Stores {
			if st.Kind == "messaging" {
				producers[st.Name] = append(producers[st.Name], svc.Name)
			}
		}
		for _, st := range svc.Consumes {
			consumers[st.Name] = append(consumers[st.Name], svc.Name)
		}
	}
	return producers, consumers
}

// OutboundHosts returns, by service, the remote hosts its CLIENT and
// PRODUCER spans called, as the model names them (server.address, the
// URL's host, peer.service), resolved to a traced service or not.
func (m *Model) OutboundHosts() map[string][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][]string, len(m.services))
	for name, s := range m.services {
		for host := range s.hosts {
			out[name] = append(out[name], host)
		}
	}
	return out
}

// Snapshot copies the model.
func (m *Model) Snapshot() *Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.age(now)
	snap := &Snapshot{Services: make([]*Service, 0, len(m.services)), Dropped: m.dropped}
	waitAt := now
	if !m.viewAt.IsZero() {
		waitAt = m.viewAt
	}
	for _, s := range m.services {
		snap.Services = append(snap.Services, s.snapshot(waitAt.Add(-m.cfg.JoinWindow)))
	}
	slices.SortFunc(snap.Services, func(a, b *Service) int { return cmp.Compare(a.Name, b.Name) })
	return snap
}

// snapshot copies the service; the destinations it began consuming from
// after waitFrom wait for their producers (Store.Waiting).
func (s *service) snapshot(waitFrom time.Time) *Service {
	out := &Service{
		Name: s.name, Namespace: s.namespace, Namespaces: s.namespaces(), Images: cloneImages(s.images), First: s.first, Last: s.last,
		Windows: slices.Clone(s.windows), Samples: s.samples, Unattributed: s.unattrib,
		Endpoints: slices.Clone(s.endpoints), Spans: s.spans, Overflow: s.overflow, SeriesEnd: s.seriesEnd(),
	}
	for _, w := range s.windows {
		if w.TimeSampled {
			out.TimeSamples += w.Samples
		}
	}
	out.Functions, out.Packages = s.functions()
	out.LanguageSamples, out.LanguageTimeSamples = s.languageSamples()
	slices.SortStableFunc(out.Endpoints, func(a, b Endpoint) int {
		return cmp.Or(cmp.Compare(b.Calls, a.Calls), cmp.Compare(a.Name(), b.Name()))
	})
	for _, e := range s.edges {
		out.Edges = append(out.Edges, *e)
	}
	slices.SortFunc(out.Edges, func(a, b Edge) int { return cmp.Compare(a.To, b.To) })
	for _, st := range s.stores {
		out.Stores = append(out.Stores, *st)
	}
	for host, h := range s.hosts {
		if len(h.resolved) > 0 || isLocal(host) {
			continue
		}
		out.Stores = append(out.Stores, Store{
			Name: h.scheme + "://" + host, Kind: "external", System: h.scheme, Service: s.name,
			Calls: h.calls, Errors: h.errors, First: h.first, Last: h.last,
		})
	}
	slices.SortFunc(out.Stores, func(a, b Store) int { return cmp.Compare(a.Name, b.Name) })
	for _, st := range s.consumes {
		c := *st
		c.Waiting = c.Linked == 0 && c.Received.After(waitFrom)
		out.Consumes = append(out.Consumes, c)
	}
	slices.SortFunc(out.Consumes, func(a, b Store) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// functions derives per-function and per-package figures from the
// stacks: a function or package counts once per stack however often it
// recurses on it.
func (s *service) functions() ([]Function, []Package) {
	type pkgKey struct {
		lang                 attribution.Language
		pkg, module, version string
	}
	fns := make([]Function, len(s.funcs))
	pkgOf := make([]int32, len(s.funcs))
	pkgIndex := make(map[pkgKey]int32)
	var pkgs []Package
	for i, f := range s.funcs {
		fns[i].Func = f
		k := pkgKey{f.Language, f.Package, f.Module, f.Version}
		pi, ok := pkgIndex[k]
		if !ok {
			pi = int32(len(pkgs))
			pkgIndex[k] = pi
			pkgs = append(pkgs, Package{Language: f.Language, Package: f.Package, Module: f.Module, Version: f.Version})
		}
		pkgOf[i] = pi
	}
	heaviest := filled(len(s.funcs), -1)
	stamp := filled(len(s.funcs), -1)
	pkgStamp := filled(len(pkgs), -1)
	endpoints := make([]map[string]*NamedSamples, len(s.funcs))
	spanNames := make([]map[string]*NamedSamples, len(s.funcs))
	for si := range s.stacks {
		st := &s.stacks[si]
		for _, f := range st.funcs {
			if stamp[f] == int32(si) {
				continue
			}
			stamp[f] = int32(si)
			fn := &fns[f]
			fn.Samples += st.samples
			fn.TimeSamples += st.timed
			fn.Value += st.value
			widen(&fn.First, &fn.Last, st.first, st.last)
			if p := pkgOf[f]; pkgStamp[p] != int32(si) {
				pkgStamp[p] = int32(si)
				pkg := &pkgs[p]
				pkg.Samples += st.samples
				pkg.TimeSamples += st.timed
				pkg.Value += st.value
				widen(&pkg.First, &pkg.Last, st.first, st.last)
			}
			// The example stack is the one that took the most time:
			// an allocation profile's objects outweigh CPU samples a
			// thousandfold.
			if h := heaviest[f]; h < 0 || cmp.Or(cmp.Compare(st.timed, s.stacks[h].timed), cmp.Compare(st.samples, s.stacks[h].samples)) > 0 {
				heaviest[f] = int32(si)
			}
			for ep, n := range st.timedEndpoints {
				endpoints[f] = addNamed(endpoints[f], s.endpoints[ep].Name(), n, n)
			}
			for ep, n := range st.otherEndpoints {
				endpoints[f] = addNamed(endpoints[f], s.endpoints[ep].Name(), n, 0)
			}
			for name, n := range st.timedSpanNames {
				spanNames[f] = addNamed(spanNames[f], name, n, n)
			}
			for name, n := range st.otherSpanNames {
				spanNames[f] = addNamed(spanNames[f], name, n, 0)
			}
		}
	}
	out := fns[:0]
	for i := range fns {
		if heaviest[i] < 0 {
			continue // interned from a location of a sample that had no weight
		}
		fn := fns[i]
		for _, idx := range s.stacks[heaviest[i]].funcs {
			fn.Stack = append(fn.Stack, s.funcs[idx])
		}
		fn.Endpoints, fn.SpanNames = ranked(endpoints[i]), ranked(spanNames[i])
		fn.Series = s.buckets(int32(i))
		out = append(out, fn)
	}
	// Heaviest first by time samples, then by every profile's, as
	// endpoints (ranked): the first is what CycloneDX and the service page
	// call the heaviest.
	slices.SortFunc(out, func(a, b Function) int {
		return cmp.Or(cmp.Compare(b.TimeSamples, a.TimeSamples), cmp.Compare(b.Samples, a.Samples), cmp.Compare(a.Package, b.Package), cmp.Compare(a.Symbol, b.Symbol))
	})
	slices.SortFunc(pkgs, func(a, b Package) int {
		return cmp.Or(cmp.Compare(b.TimeSamples, a.TimeSamples), cmp.Compare(b.Samples, a.Samples), cmp.Compare(a.Package, b.Package), cmp.Compare(a.Module, b.Module))
	})
	return out, pkgs
}

// languageSamples counts the samples of the stacks that hold code of each
// language, once per stack however many of its frames are of it: all of
// them, and those of time-sampled profiles.
func (s *service) languageSamples() (all, timed map[attribution.Language]int64) {
	all, timed = make(map[attribution.Language]int64), make(map[attribution.Language]int64)
	var langs []attribution.Language
	for si := range s.stacks {
		st := &s.stacks[si]
		langs = langs[:0]
		for _, f := range st.funcs {
			if l := s.funcs[f].Language; !slices.Contains(langs, l) {
				langs = append(langs, l)
				all[l] += st.samples
				if st.timed > 0 {
					timed[l] += st.timed
				}
			}
		}
	}
	return all, timed
}

func cloneImages(imgs []telemetry.Image) []telemetry.Image {
	out := slices.Clone(imgs)
	for i := range out {
		out[i].RepoDigests, out[i].Tags = slices.Clone(out[i].RepoDigests), slices.Clone(out[i].Tags)
	}
	return out
}

func filled(n int, v int32) []int32 {
	s := make([]int32, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// addNamed adds samples, timed of them time samples, to name's count.
func addNamed(counts map[string]*NamedSamples, name string, samples, timed int64) map[string]*NamedSamples {
	if counts == nil {
		counts = make(map[string]*NamedSamples)
	}
	c := counts[name]
	if c == nil {
		c = &NamedSamples{Name: name}
		counts[name] = c
	}
	c.Samples += samples
	c.TimeSamples += timed
	return counts
}

// ranked lists counts by name, heaviest first: by time samples, then by
// every profile's.
func ranked(counts map[string]*NamedSamples) []NamedSamples {
	var out []NamedSamples
	for _, c := range counts {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b NamedSamples) int {
		return cmp.Or(cmp.Compare(b.TimeSamples, a.TimeSamples), cmp.Compare(b.Samples, a.Samples), cmp.Compare(a.Name, b.Name))
	})
	return out
}
