package model

import (
	"math"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/telemetry"
)

// Changes lists what a batch showed for the first time, for streaming
// detections and for re-assessing only what changed.
type Changes struct {
	// NewServices are the services the batch made the model know, in
	// the order it met them.
	NewServices []string
	// NewFunctions are functions seen running for the first time, by
	// service.
	NewFunctions map[string][]attribution.Func
	// NewEdges are service-to-service calls seen for the first time.
	NewEdges []Edge
	// NewStores are data stores or third parties a service reached for
	// the first time.
	NewStores []Store
	// NewConsumes are messaging destinations a service consumed from for
	// the first time: the producers of each now reach the service, and
	// through it what it reaches.
	NewConsumes []Store
	// MergedNamespaces are the services whose telemetry the batch showed
	// in a second service.namespace: services of one service.name in
	// several namespaces, which the model merges into one.
	MergedNamespaces []NamespaceMerge
}

// NamespaceMerge is a service.name seen in several service.namespace
// values, the services of which the model merged into one.
type NamespaceMerge struct {
	Service    string
	Namespaces []string
}

// Empty reports whether the batch changed nothing that was not known.
func (c Changes) Empty() bool {
	return len(c.NewServices) == 0 && len(c.NewFunctions) == 0 && len(c.NewEdges) == 0 && len(c.NewStores) == 0 && len(c.NewConsumes) == 0 && len(c.MergedNamespaces) == 0
}

// AddSpans folds a batch of spans into the model and returns what it
// showed for the first time.
func (m *Model) AddSpans(spans []telemetry.Span) Changes {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.age(now)
	var ch Changes
	for i := range spans {
		if i%touchAhead == 0 {
			m.counted.touch(spans[i:min(i+touchAhead, len(spans))])
		}
		m.addSpan(&spans[i], now, &ch)
	}
	return ch
}

// touchAhead is how many spans' slots of the table of span ids
// AddSpans reads before adding them one by one (spanIDs.touch).
const touchAhead = 32

var zeroSpanID [8]byte

// probeAgents are the User-Agent prefixes of the health checkers and
// scrapers that call every instance of a service on their own schedule,
// without a trace to join: the kubelet's HTTP probes, Google Cloud's and
// AWS's load balancer health checks, Envoy's active health checks,
// Consul's, and Prometheus's scrapes.
var probeAgents = []string{"kube-probe/", "GoogleHC/", "ELB-HealthChecker/", "Envoy/HC", "Consul Health Check", "Prometheus/"}

// probePaths are the paths health checks and scrapes ask for by
// convention (Kubernetes' components, Spring Boot's actuator,
// Prometheus's own).
var probePaths = []string{"/healthz", "/readyz", "/livez", "/health", "/healthcheck", "/ready", "/live", "/ping", "/metrics",
	"/actuator/health", "/actuator/health/liveness", "/actuator/health/readiness", "/actuator/prometheus", "/-/healthy", "/-/ready"}

// googleHealthRanges are the addresses Google Cloud's load balancers
// send their health checks from (cloud.google.com/load-balancing/docs/firewall-rules).
var googleHealthRanges = []netip.Prefix{
	netip.MustParsePrefix("35.191.0.0/16"), netip.MustParsePrefix("130.211.0.0/22"),
	netip.MustParsePrefix("2600:2d00:1:b029::/64"), netip.MustParsePrefix("2600:2d00:1:1::/64"),
}

// googleHealthCheck reports whether a request is Google Cloud's health
// checker's, by its User-Agent and the ranges it comes from.
func googleHealthCheck(a *telemetry.Attrs) bool {
	if !strings.HasPrefix(a.UserAgent, "GoogleHC/") {
		return false
	}
	ip, err := netip.ParseAddr(a.ClientAddress)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	return slices.ContainsFunc(googleHealthRanges, func(p netip.Prefix) bool { return p.Contains(ip) })
}

// probe reports whether a SERVER span that starts a trace is a health
// check or a metrics scrape: a request of the platform, not input from
// a caller outside the traced system. Counted as such it would make
// every service the kubelet probes an entry point, exposed, and a load
// balancer's health checks from its public ranges (Google Cloud's
// 35.191.0.0/16) a public client. It is one when its User-Agent is a
// known checker's, when it asks for a conventional health or metrics
// path (whoever asks: a container's HEALTHCHECK runs curl), or when it
// is a call of gRPC's health service.
func probe(sp *telemetry.Span) bool {
	if sp.Kind != telemetry.SpanKindServer {
		return false
	}
	a := &sp.Attrs
	for _, p := range probeAgents {
		if strings.HasPrefix(a.UserAgent, p) {
			return true
		}
	}
	if a.RPCService == "grpc.health.v1.Health" || strings.HasPrefix(sp.Name, "grpc.health.v1.Health/") {
		return true
	}
	path := a.HTTPRoute
	if path == "" {
		path = a.URLPath
	}
	return slices.Contains(probePaths, path)
}

func (m *Model) addSpan(sp *telemetry.Span, now time.Time, ch *Changes) {
	// A service is known by service.name: that is the name profilers
	// (Pyroscope application names, pprof labels) and scanners use too.
	// Its namespaces are recorded, several of them said (addNamespace).
	s := m.admit(sp.Service, ch)
	if s == nil {
		m.dropped.Spans++
		return
	}
	s.addNamespace(sp.Namespace, ch)
	s.addImage(sp.Image)
	if joins(sp) && m.counted.add(sp.SpanID, sp.Kind) {
		m.addCopy(s, sp, ch)
		return
	}
	s.seen(sp.Start, sp.End)
	s.spans.All++
	a := &sp.Attrs
	switch sp.Kind {
	case telemetry.SpanKindServer, telemetry.SpanKindConsumer:
		idx := s.endpoint(sp, m.cfg.MaxEndpoints)
		m.spanEndpoints.put(sp.SpanID, endpointRef{svc: s, idx: idx})
		// A checker's request from a public address is one of the
		// internet's, unless it is Google Cloud's health checker from its
		// own ranges: a User-Agent or a path is the client's to choose.
		if sp.ParentSpanID == zeroSpanID && probe(sp) && (!m.publicClient(a.ClientAddress) || googleHealthCheck(a)) {
			s.spans.Probes++
			return
		}
		if sp.Kind == telemetry.SpanKindServer {
			s.spans.Server++
			if m.publicClient(a.ClientAddress) {
				s.spans.PublicClients++
			}
		} else {
			s.spans.Consumer++
			m.linkProducers(s, sp, m.consume(s, sp, now, ch), now, ch)
			if a.MessagingOperation == "receive" {
				// A receive span of kind CONSUMER (fedThrough) is the
				// parent of the process span of each message of its
				// batch, as a receive CLIENT span is.
				m.call(sp.SpanID, caller{svc: s, error: sp.Error, many: true, start: sp.Start, end: sp.End}, ch)
			}
		}
		if sp.ParentSpanID == zeroSpanID {
			if fedThrough(sp) {
				s.spans.Own++
				return
			}
			s.spans.Root++
			return
		}
		if c, cur, ok := m.callers.lookup(sp.ParentSpanID); ok {
			if !c.many {
				m.callers.remove(sp.ParentSpanID, cur)
			}
			m.join(c, s, 1, ch)
			return
		}
		m.wait(sp.ParentSpanID, callee{svc: s, at: now.UnixNano(), n: 1}, now)
	case telemetry.SpanKindClient, telemetry.SpanKindProducer:
		var host string
		many := sp.Kind == telemetry.SpanKindProducer
		if sp.Kind == telemetry.SpanKindClient && consumerSide(a.MessagingOperation) {
			// A pull consumer's receive, or a consumer's settle: the
			// service takes from the destination, as a CONSUMER span's
			// does; counted as a store it reaches, the destination would
			// carry the service's blast radius to the destination's
			// consumers and not the producers' to the service. The
			// broker it asks is no host it sends data to. It stays a
			// caller: the process spans a consumer starts under its
			// receive span must find their parent in the traced system,
			// one per message of a batch.
			m.linkProducers(s, sp, m.consume(s, sp, now, ch), now, ch)
			many = true
		} else {
			if name, kind, system := m.storeOf(sp); name != "" {
				// A destination beyond the bound is counted apart: its
				// consumers cannot tell that the service produces to it.
				over := &s.overflow.Stores
				if kind == "messaging" {
					over = &s.overflow.Produces
				}
				st, isNew := s.touchStore(s.stores, name, kind, system, sp, m.cfg.MaxStores, over)
				if st != nil {
					st.Service = s.name
				}
				if isNew {
					ch.NewStores = append(ch.NewStores, *st)
				}
				if kind != "messaging" {
					return
				}
			}
			host = s.touchHost(sp, m.cfg.MaxHosts)
		}
		m.call(sp.SpanID, caller{svc: s, host: host, error: sp.Error, many: many, producer: sp.Kind == telemetry.SpanKindProducer, start: sp.Start, end: sp.End}, ch)
	}
}

// call joins c, the span id's caller, to the spans that wait for it or
// whose wait ended (joinWaiting), and keeps it for those to come: until
// one joins it, or for its window when many may (c.many).
func (m *Model) call(id [8]byte, c caller, ch *Changes) {
	if c.producer {
		m.joinWaitingLinks(id, c, ch)
	}
	if m.joinWaiting(id, c, ch) && !c.many {
		return
	}
	m.callers.put(id, c)
}

// joins reports whether a span takes part in joins: a CLIENT or
// PRODUCER span, which a SERVER or CONSUMER span may have for its
// parent, or a SERVER or CONSUMER span with a parent. A CONSUMER span
// that starts a trace (a receive span, one with links) is not kept: as
// for every span that starts one, a copy of it counts again.
func joins(sp *telemetry.Span) bool {
	if sp.SpanID == zeroSpanID {
		return false
	}
	switch sp.Kind {
	case telemetry.SpanKindClient, telemetry.SpanKindProducer:
		return true
	case telemetry.SpanKindServer, telemetry.SpanKindConsumer:
		return sp.ParentSpanID != zeroSpanID
	}
	return false
}

// addCopy takes a span of s that arrived again (counted): its first was
// counted, so the copy counts nothing. A SERVER or CONSUMER copy joins
// nothing either: its first joined its caller, waits for it, or ended
// its wait, which a caller arriving later still joins (ended). A CLIENT
// or PRODUCER copy joins the spans waiting for it, or whose wait ended:
// its first, forgotten by the callers table before they came, no longer
// can. A PRODUCER copy then waits for the consumers to come, as its
// first would have, and a receive span's copy for the process spans
// under it.
func (m *Model) addCopy(s *service, sp *telemetry.Span, ch *Changes) {
	c := caller{svc: s, error: sp.Error, start: sp.Start, end: sp.End}
	switch {
	case sp.Kind == telemetry.SpanKindConsumer && sp.Attrs.MessagingOperation == "receive",
		sp.Kind == telemetry.SpanKindClient && consumerSide(sp.Attrs.MessagingOperation):
		c.many = true
	case sp.Kind == telemetry.SpanKindClient, sp.Kind == telemetry.SpanKindProducer:
		if _, kind, _ := m.storeOf(sp); kind != "" && kind != "messaging" {
			return
		}
		c.host, _ = hostOf(&sp.Attrs)
		c.many, c.producer = sp.Kind == telemetry.SpanKindProducer, sp.Kind == telemetry.SpanKindProducer
	default:
		return
	}
	if c.many {
		m.call(sp.SpanID, c, ch)
		return
	}
	m.joinWaiting(sp.SpanID, c, ch)
}

// joinWaiting joins caller c, of span id, with the SERVER or CONSUMER
// spans waiting for it, and with those whose wait ended (Unlinked),
// which are linked late; it reports whether it joined any.
func (m *Model) joinWaiting(id [8]byte, c caller, ch *Changes) bool {
	joined := false
	if w, cur, ok := m.callees.lookup(id); ok {
		m.callees.remove(id, cur)
		for cl := range w.all {
			cl.svc.spans.Pending -= cl.n
			m.join(c, cl.svc, cl.n, ch)
		}
		joined = true
	}
	if e, cur, ok := m.ended.lookup(id); ok {
		m.ended.remove(id, cur)
		e.svc.spans.Unlinked -= int64(e.n)
		m.join(c, e.svc, int64(e.n), ch)
		if w, cur, ok := m.endedMore.lookup(id); e.more && ok {
			m.endedMore.remove(id, cur)
			for cl := range w.all {
				cl.svc.spans.Unlinked -= cl.n
				m.join(c, cl.svc, cl.n, ch)
			}
		}
		joined = true
	}
	return joined
}

// consumerSide reports whether a messaging operation type is one of a
// consumer's: receive (pull-based), process or settle (ack, nack, ...).
// The semantic conventions give receive and settle spans the kind
// CLIENT, as they give a send whose context is not the message's
// creation context: the kind alone does not tell a consumer's CLIENT
// span from a producer's.
func consumerSide(op string) bool {
	switch op {
	case "receive", "process", "settle":
		return true
	}
	return false
}

// consume counts a span of s, received now, that took messages from
// their destination: s consumes from it. It returns the destination, nil
// when the span names none or s consumes from max_stores others.
func (m *Model) consume(s *service, sp *telemetry.Span, now time.Time, ch *Changes) *Store {
	a := &sp.Attrs
	if a.MessagingDestination == "" {
		return nil
	}
	name := m.storeName(a.MessagingSystem, a.MessagingDestination, "")
	st, isNew := s.touchStore(s.consumes, name, "messaging", a.MessagingSystem, sp, m.cfg.MaxStores, &s.overflow.Consumes)
	if st != nil {
		st.Service = s.name
	}
	if isNew {
		st.Received = now
		ch.NewConsumes = append(ch.NewConsumes, *st)
	}
	return st
}

// touchHost counts a CLIENT or PRODUCER span's call to its remote host,
// creating it unless s has max hosts already: then it counts the call as
// overflow. It returns the host, "" for none.
func (s *service) touchHost(sp *telemetry.Span, max int) string {
	host, scheme := hostOf(&sp.Attrs)
	if host == "" {
		return ""
	}
	h := s.hosts[host]
	if h == nil && len(s.hosts) < max {
		h = &hostCalls{scheme: scheme, resolved: make(map[*service]int64)}
		s.hosts[host] = h
	}
	if h == nil {
		s.overflow.Hosts++
		return host
	}
	h.calls++
	if sp.Error {
		h.errors++
	}
	widen(&h.first, &h.last, sp.Start, sp.End)
	return host
}

// wait records a SERVER or CONSUMER span whose parent has not arrived:
// it waits for it in callees until age or a full table ends the wait.
func (m *Model) wait(parent [8]byte, c callee, now time.Time) {
	c.svc.spans.Pending += c.n
	m.joinLast = now
	w, cur, ok := m.callees.lookup(parent)
	if ok {
		// Another child of the same parent: both wait in the current
		// generation.
		w.add(c)
		if cur {
			m.callees.cur[parent] = w
			return
		}
		m.callees.remove(parent, cur)
	} else {
		w = callees{callee: c}
	}
	if m.callees.full() {
		m.rotateWaits(now)
		m.joinBorn = now
	}
	m.callees.put(parent, w)
}

// age ends the wait of the spans that have waited JoinWindow for their
// parent: the older generation when the current one is JoinWindow old,
// and both when no span waited since.
func (m *Model) age(now time.Time) {
	m.ageEnded(now)
	if now.Sub(m.joinBorn) < m.cfg.JoinWindow {
		return
	}
	cutoff := now.Add(-m.cfg.JoinWindow)
	m.rotateWaits(now)
	if !m.joinLast.After(cutoff) {
		m.rotateWaits(now)
	}
	m.joinBorn = now
}

// ageEnded forgets the spans whose wait ended more than LateJoinWindow
// ago: the older generation of ended when the current one is
// LateJoinWindow old, and both when it is twice that. Without it the
// table filled to its bound under traffic whose callers never come,
// however slowly (RSS from 1 M to 10 M spans, docs/architecture.md).
func (m *Model) ageEnded(now time.Time) {
	if m.lateBorn.IsZero() {
		m.lateBorn = now
		return
	}
	age := now.Sub(m.lateBorn)
	if age < m.cfg.LateJoinWindow {
		return
	}
	m.ended.rotate(nil)
	m.endedMore.rotate(nil)
	if age >= 2*m.cfg.LateJoinWindow {
		m.ended.rotate(nil)
		m.endedMore.rotate(nil)
	}
	m.lateBorn = now
}

// rotateWaits turns a generation of the waiting spans, ending the wait
// of the oldest (endWaits) with the join window ending now.
func (m *Model) rotateWaits(now time.Time) {
	cutoff := now.Add(-m.cfg.JoinWindow)
	m.callees.rotate(func(forgotten map[[8]byte]callees) { m.endWaits(forgotten, cutoff) })
}

// endWaits ends the wait of forgotten spans: they had no traced caller
// within the window (Unlinked), unless one arrives later still (ended). Those received after
// cutoff, forgotten by a full table before their join window passed, are
// counted in Overflow.Waits too: under such load the bound, not the
// window, decides how long a span waits.
func (m *Model) endWaits(forgotten map[[8]byte]callees, cutoff time.Time) {
	for parent, w := range forgotten {
		for c := range w.all {
			c.svc.spans.Pending -= c.n
			c.svc.spans.Unlinked += c.n
			if c.at > cutoff.UnixNano() {
				c.svc.overflow.Waits += c.n
			}
		}
		m.endWait(parent, w)
	}
}

// endWait keeps the spans whose wait for parent ended, w, for a caller
// that comes late. Children of one parent may end their waits in
// different generations: they are kept together, in the current one.
func (m *Model) endWait(parent [8]byte, w callees) {
	e, cur, ok := m.ended.lookup(parent)
	if ok {
		m.ended.remove(parent, cur)
	}
	var more callees
	if w, cur, ok := m.endedMore.lookup(parent); e.more && ok {
		m.endedMore.remove(parent, cur)
		more = w
	}
	e.more = more.svc != nil
	for c := range w.all {
		if e.svc == nil {
			e.svc = c.svc
		}
		if c.svc == e.svc && int64(e.n)+c.n <= math.MaxInt32 {
			e.n += int32(c.n)
			continue
		}
		c.at = 0
		if !e.more {
			more, e.more = callees{callee: c}, true
			continue
		}
		more.add(c)
	}
	m.ended.put(parent, e)
	if e.more {
		m.endedMore.put(parent, more)
	}
}

// Settle ends the wait of every span still waiting for its parent, and
// of every destination consumed from for its producers (Store.Waiting),
// as if the join window had passed: for a one-shot analysis, once all
// its input is read and no parent or producer can arrive any more.
func (m *Model) Settle() {
	m.mu.Lock()
	defer m.mu.Unlock()
	end := func(forgotten map[[8]byte]callees) { m.endWaits(forgotten, m.joinLast) }
	m.callees.rotate(end)
	m.callees.rotate(end)
	m.links = newGenerations[linkWaits](m.cfg.MaxPendingSpans)
	for _, s := range m.services {
		for _, st := range s.consumes {
			st.Received = time.Time{}
		}
	}
}

// join records that caller's span caused n SERVER or CONSUMER spans in
// callee: an edge between traced services, and a host that is a service.
func (m *Model) join(c caller, callee *service, n int64, ch *Changes) {
	if c.svc == callee {
		// A receive span of the service's own, a message it sent
		// itself or a call to itself is no traced caller: the input
		// came from the service, or through the destination
		// (SpanCounts.Own).
		callee.spans.Own += n
		return
	}
	callee.spans.Linked += n
	m.edge(c, callee, n, ch)
}

// edge counts n calls or messages of caller's span that reached callee:
// an edge between traced services, and a host that is a service.
func (m *Model) edge(c caller, callee *service, n int64, ch *Changes) {
	e := c.svc.edges[callee.name]
	if e == nil {
		e = &Edge{From: c.svc.name, To: callee.name}
		c.svc.edges[callee.name] = e
		defer func() { ch.NewEdges = append(ch.NewEdges, *e) }()
	}
	e.Calls += n
	if c.error {
		e.Errors += n
	}
	widen(&e.First, &e.Last, c.start, c.end)
	if h := c.svc.hosts[c.host]; h != nil {
		h.resolved[callee] += n
	}
}

// OtherEndpoints is the route of the endpoint that counts the calls of a
// service's endpoints beyond Config.MaxEndpoints.
const OtherEndpoints = "(other endpoints)"

// endpoint returns the index of the endpoint a SERVER or CONSUMER span
// served, counting the call; past max endpoints, a new one is counted
// under OtherEndpoints.
func (s *service) endpoint(sp *telemetry.Span, max int) int32 {
	a := &sp.Attrs
	var k endpointKey
	switch {
	case a.HTTPRoute != "" || a.HTTPMethod != "":
		k = endpointKey{kind: "http", method: a.HTTPMethod, route: a.HTTPRoute}
		if k.route == "" {
			// Without a route template the path would explode the
			// endpoint set; the span name is the instrumentation's
			// low-cardinality stand-in.
			k.route = sp.Name
		}
	case a.RPCMethod != "":
		k = endpointKey{kind: "rpc", method: a.RPCService, route: a.RPCMethod}
	case sp.Kind == telemetry.SpanKindConsumer && a.MessagingDestination != "":
		k = endpointKey{kind: "messaging", method: "process", route: a.MessagingDestination}
	default:
		k = endpointKey{kind: "span", route: sp.Name}
	}
	idx, ok := s.endpointIndex[k]
	if !ok && len(s.endpoints) >= max {
		s.overflow.Endpoints++
		k = endpointKey{kind: "span", route: OtherEndpoints}
		idx, ok = s.endpointIndex[k]
	}
	if !ok {
		idx = int32(len(s.endpoints))
		s.endpoints = append(s.endpoints, Endpoint{Kind: k.kind, Method: k.method, Route: k.route})
		s.endpointIndex[k] = idx
	}
	e := &s.endpoints[idx]
	e.Calls++
	if sp.Error {
		e.Errors++
	}
	widen(&e.First, &e.Last, sp.Start, sp.End)
	return idx
}

// storeOf names the data store a CLIENT or PRODUCER span reached, with
// the canonical names of DESIGN.md, or "" when it reached none.
func (m *Model) storeOf(sp *telemetry.Span) (name, kind, system string) {
	a := &sp.Attrs
	switch {
	case a.DBSystem != "":
		return m.storeName(a.DBSystem, a.DBNamespace, a.DBCollection), "database", a.DBSystem
	case a.S3Bucket != "":
		return m.storeName("s3", a.S3Bucket, ""), "objectstore", "s3"
	case a.MessagingSystem != "" && a.MessagingDestination != "":
		return m.storeName(a.MessagingSystem, a.MessagingDestination, ""), "messaging", a.MessagingSystem
	}
	return "", "", ""
}

// storeParts is what a store name is built of, and the name.
type storeParts struct {
	system, namespace, collection, name string
}

// storeName builds "<system>://<namespace>/<collection>", leaving out
// what is unknown, or returns the last one built when its parts are
// the same.
func (m *Model) storeName(system, namespace, collection string) string {
	l := &m.lastStore
	if l.name == "" || l.system != system || l.namespace != namespace || l.collection != collection {
		n := system + "://" + namespace
		if collection != "" {
			n += "/" + collection
		}
		*l = storeParts{system: system, namespace: namespace, collection: collection, name: n}
	}
	return l.name
}

// touchStore counts a call to a store of m, creating it unless m has max
// stores already: then it counts the call in overflow and returns nil.
func (s *service) touchStore(m map[string]*Store, name, kind, system string, sp *telemetry.Span, max int, overflow *int64) (*Store, bool) {
	st := m[name]
	isNew := st == nil
	if isNew && len(m) >= max {
		*overflow++
		return nil, false
	}
	if isNew {
		st = &Store{Name: name, Kind: kind, System: system}
		m[name] = st
	}
	st.Calls++
	if sp.Error {
		st.Errors++
	}
	widen(&st.First, &st.Last, sp.Start, sp.End)
	return st, isNew
}

// hostOf returns the remote host of a CLIENT span and the URL scheme used
// to name it.
func hostOf(a *telemetry.Attrs) (host, scheme string) {
	scheme = "https"
	if sch, rest, ok := strings.Cut(a.URLFull, "://"); ok {
		scheme = sch
		if a.ServerAddress == "" {
			// Parse only when the host must come from the URL: this
			// runs for every CLIENT span.
			if u, err := url.Parse(a.URLFull); err == nil {
				host = u.Hostname()
			} else {
				host = authorityHost(rest)
			}
		}
	}
	if a.ServerAddress != "" {
		host = a.ServerAddress
	}
	if host == "" {
		host = a.PeerService
	}
	return host, scheme
}

// authorityHost returns the host of what follows "scheme://" in a URL
// that does not parse: without the user info, which may hold a password
// that would otherwise name a third party in the report, and without the
// port, so that it is the host a URL that parses gives.
func authorityHost(rest string) string {
	auth, _, _ := strings.Cut(rest, "/")
	auth, _, _ = strings.Cut(auth, "?")
	auth, _, _ = strings.Cut(auth, "#")
	if i := strings.LastIndexByte(auth, '@'); i >= 0 {
		auth = auth[i+1:]
	}
	if h, ok := strings.CutPrefix(auth, "["); ok {
		h, _, _ = strings.Cut(h, "]")
		return h
	}
	if h, port, ok := strings.Cut(auth, ":"); ok && !strings.ContainsRune(port, ':') {
		return h
	}
	return auth
}

// publicClient is isPublic(addr), for the client address of a SERVER span.
func (m *Model) publicClient(addr string) bool {
	if addr != m.lastClient {
		m.lastClient, m.lastClientPublic = addr, isPublic(addr)
	}
	return m.lastClientPublic
}

// isPublic reports whether addr is an IP address on the public internet.
// It runs for every SERVER span, so it allocates nothing for an address
// and returns at once without one.
func isPublic(addr string) bool {
	if addr == "" {
		return false
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil || ip.Zone() != "" {
		// A zone is a link's: no address of the internet.
		return false
	}
	ip = ip.Unmap()
	if nat64.Contains(ip) {
		// An IPv4 address translated by NAT64: as public as it is.
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte(b[12:]))
	}
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !notPublic(ip)
}

// notPublic reports whether ip is in one of specialRanges.
func notPublic(ip netip.Addr) bool {
	for _, p := range specialRanges {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// specialRanges are the global unicast ranges that are no address on the
// internet (IANA's special-purpose registries): the shared address space
// of carrier-grade NAT, which cloud networks and Tailscale give pods and
// nodes (RFC 6598), the IETF's protocol assignments, the benchmarking
// range (RFC 2544) and the reserved class E.
var specialRanges = [...]netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// nat64 is the well-known prefix of NAT64 (RFC 6052), which embeds an
// IPv4 address in its last four bytes.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// isLocal reports whether a host is this machine, a private address or
// one of the special-purpose ranges that are not on the internet (a
// link-local one with its zone, fe80::1%eth0, included): never a third
// party, even when no traced service answers there.
func isLocal(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.WithZone("").Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || notPublic(ip)
}

// widen widens [first, last] to include start and end (a span of time,
// or two instants in either order); a zero first is unset. It is the same
// as widening by each in turn, with one comparison fewer: it runs a few
// times for every span.
func widen(first, last *time.Time, start, end time.Time) {
	if end.Before(start) {
		start, end = end, start
	}
	if first.IsZero() || start.Before(*first) {
		*first = start
	}
	if end.After(*last) {
		*last = end
	}
}
