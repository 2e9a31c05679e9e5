package waf

import (
	"cmp"
	"maps"
	"mime"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/evidentsec/evident/internal/telemetry"
)

// Request is one HTTP request as the validator replays it.
type Request struct {
	Method string `json:"method"`
	// Target is the request target: path and query, as sent.
	Target string `json:"target"`
	// Headers are the request headers; keys are canonical or lower-case.
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
}

// String returns "METHOD target".
func (r Request) String() string { return r.Method + " " + r.Target }

// EndpointTraffic is what the traces show about one endpoint's legitimate
// requests.
type EndpointTraffic struct {
	Endpoint Endpoint
	// Requests counts the SERVER spans seen.
	Requests int
	// Params maps each query parameter name seen to the longest value.
	Params map[string]int
	// Headers maps each captured request header (lower-case) to the
	// longest value.
	Headers map[string]int
	// ContentTypes are the media types of the captured Content-Type
	// headers, without parameters.
	ContentTypes []string
	// MaxQuery and MaxPath are the longest query and path seen.
	MaxQuery, MaxPath int
	// Bodies counts the spans that recorded a request body size
	// (http.request.body.size or a captured Content-Length), and MaxBody
	// is the largest of them.
	Bodies  int
	MaxBody int64
	// Queries counts the spans that recorded a query string. Many
	// instrumentations leave url.query out, so an endpoint without any
	// says nothing about its parameters.
	Queries int
	// Replay holds distinct requests rebuilt from the spans, at most
	// Config.ReplayPerEndpoint of them.
	Replay []Request
	// Unreplayable counts spans without a path to rebuild a request from.
	Unreplayable int
	seen         map[string]bool
}

// Traffic is the legitimate traffic per service and endpoint, built from
// SERVER spans. It is not safe for concurrent use.
type Traffic struct {
	replayLimit int
	services    map[string]map[Endpoint]*EndpointTraffic
	// hosts are the hosts each service's requests were sent to
	// (spanHost).
	hosts map[string]map[string]bool
}

// NewTraffic returns empty traffic that keeps at most replayPerEndpoint
// distinct requests per endpoint for replay (0: no limit).
func NewTraffic(replayPerEndpoint int) *Traffic {
	return &Traffic{replayLimit: replayPerEndpoint, services: map[string]map[Endpoint]*EndpointTraffic{}, hosts: map[string]map[string]bool{}}
}

// Clone returns a copy of t that later Adds to t do not change, for
// reading while t goes on learning.
func (t *Traffic) Clone() *Traffic {
	c := &Traffic{replayLimit: t.replayLimit, services: make(map[string]map[Endpoint]*EndpointTraffic, len(t.services)), hosts: make(map[string]map[string]bool, len(t.hosts))}
	for svc, hosts := range t.hosts {
		c.hosts[svc] = maps.Clone(hosts)
	}
	for svc, eps := range t.services {
		ceps := make(map[Endpoint]*EndpointTraffic, len(eps))
		for ep, et := range eps {
			cet := *et
			cet.Params, cet.Headers, cet.seen = maps.Clone(et.Params), maps.Clone(et.Headers), maps.Clone(et.seen)
			cet.ContentTypes = slices.Clone(et.ContentTypes)
			// Requests are never changed once kept, only appended to.
			cet.Replay = slices.Clip(et.Replay)
			ceps[ep] = &cet
		}
		c.services[svc] = ceps
	}
	return c
}

// Add counts the HTTP SERVER spans among spans. The spans are not kept.
func (t *Traffic) Add(spans []telemetry.Span) {
	for i := range spans {
		t.add(&spans[i])
	}
}

// Keeps reports whether Add learns anything from sp: only HTTP SERVER
// spans (those with a request method) show legitimate requests. What
// prepares spans for Add (redaction) need prepare only these.
func Keeps(sp *telemetry.Span) bool {
	return sp.Kind == telemetry.SpanKindServer && sp.Attrs.HTTPMethod != ""
}

func (t *Traffic) add(sp *telemetry.Span) {
	if !Keeps(sp) {
		return
	}
	a := &sp.Attrs
	route := a.HTTPRoute
	if route == "" {
		// The model falls back to the span name too (internal/model).
		route = sp.Name
	}
	ep, err := ParseEndpoint(a.HTTPMethod + " " + route)
	if err != nil {
		return
	}
	svc := t.services[sp.Service]
	if svc == nil {
		svc = map[Endpoint]*EndpointTraffic{}
		t.services[sp.Service] = svc
	}
	et := svc[ep]
	if et == nil {
		et = &EndpointTraffic{Endpoint: ep, Params: map[string]int{}, Headers: map[string]int{}, seen: map[string]bool{}}
		svc[ep] = et
	}
	et.Requests++
	// A host already kept was checked when it was first seen: the
	// expression runs once per host, not once per span.
	own := t.hosts[sp.Service]
	if host := spanHost(a); host != "" && !own[host] && hostName.MatchString(host) {
		if own == nil {
			own = map[string]bool{}
			t.hosts[sp.Service] = own
		}
		own[host] = true
	}

	path, query := a.URLPath, a.URLQuery
	if path == "" && a.URLFull != "" {
		if u, err := url.Parse(a.URLFull); err == nil {
			path, query = u.EscapedPath(), u.RawQuery
		}
	}
	et.MaxQuery = max(et.MaxQuery, len(query))
	if query != "" {
		et.Queries++
	}
	et.MaxPath = max(et.MaxPath, len(path))
	if vals, err := url.ParseQuery(query); err == nil {
		for k, vs := range vals {
			for _, v := range vs {
				et.Params[k] = max(et.Params[k], len(v))
			}
		}
	}
	body := a.RequestBodySize
	if n, err := strconv.ParseInt(a.RequestHeaders["content-length"], 10, 64); err == nil && body == 0 {
		body = n
	}
	if body > 0 {
		et.Bodies++
		et.MaxBody = max(et.MaxBody, body)
	}
	headers := map[string]string{}
	for k, v := range a.RequestHeaders {
		if k != "user-agent" {
			et.Headers[k] = max(et.Headers[k], len(v))
		}
		headers[k] = v
		if k == "content-type" {
			if mt, _, err := mime.ParseMediaType(v); err == nil && !slices.Contains(et.ContentTypes, mt) {
				et.ContentTypes = append(et.ContentTypes, mt)
				slices.Sort(et.ContentTypes)
			}
		}
	}
	if a.UserAgent != "" {
		// Replayed, but not limited: the next browser release would
		// trip a limit learned from the clients of one window.
		headers["user-agent"] = a.UserAgent
	}
	if path == "" {
		et.Unreplayable++
		return
	}
	target := path
	if query != "" {
		target += "?" + query
	}
	req := Request{Method: ep.Method, Target: target, Headers: headers}
	key := requestKey(req)
	if et.seen[key] || (t.replayLimit > 0 && len(et.Replay) >= t.replayLimit) {
		return
	}
	et.seen[key] = true
	et.Replay = append(et.Replay, req)
}

// hostName is a host name or IPv4 address as spanHost keeps it: lower
// case, without a port or a final dot.
var hostName = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$`)

// spanHost returns the host the request of a SERVER span was sent to:
// server.address (net.host.name), which the semantic conventions take
// from the Host header or :authority, else the host of url.full, else a
// captured Host header; lower-cased, without a port or a final dot. It is
// kept only when hostName matches it: any client puts what it likes in
// the Host header, so a value that is no host name or IPv4 address (a
// quote, a newline, an IPv6 literal) is left out rather than written
// into a rule.
func spanHost(a *telemetry.Attrs) string {
	host := a.ServerAddress
	if host == "" && a.URLFull != "" {
		if u, err := url.Parse(a.URLFull); err == nil {
			host = u.Hostname()
		}
	}
	if host == "" {
		host = a.RequestHeaders["host"]
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// OtherHosts returns the hosts the traces show requests of other
// services sent to and no request of service, sorted; none when they show
// no host of service: then nothing tells which hosts are its own.
func (t *Traffic) OtherHosts(service string) []string {
	own := t.hosts[service]
	if len(own) == 0 {
		return nil
	}
	others := map[string]bool{}
	for svc, hosts := range t.hosts {
		if svc == service {
			continue
		}
		for h := range hosts {
			if !own[h] {
				others[h] = true
			}
		}
	}
	if len(others) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(others))
}

func requestKey(r Request) string {
	var b strings.Builder
	b.WriteString(r.Method + " " + r.Target)
	keys := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteString("\n" + k + ": " + r.Headers[k])
	}
	return b.String()
}

// Endpoint returns the traffic of one endpoint of a service, nil when
// none was seen.
func (t *Traffic) Endpoint(service string, ep Endpoint) *EndpointTraffic {
	return t.services[service][ep]
}

// Endpoints returns the traffic of every endpoint of a service, in
// endpoint order.
func (t *Traffic) Endpoints(service string) []*EndpointTraffic {
	out := make([]*EndpointTraffic, 0, len(t.services[service]))
	for _, et := range t.services[service] {
		out = append(out, et)
	}
	slices.SortFunc(out, func(a, b *EndpointTraffic) int {
		return cmp.Or(cmp.Compare(a.Endpoint.Route, b.Endpoint.Route), cmp.Compare(a.Endpoint.Method, b.Endpoint.Method))
	})
	return out
}

// Requests returns the replayable requests of a service, endpoint by
// endpoint.
func (t *Traffic) Requests(service string) []Request {
	var out []Request
	for _, et := range t.Endpoints(service) {
		out = append(out, et.Replay...)
	}
	return out
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
