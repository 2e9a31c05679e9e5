package waf

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// ErrRoute means an endpoint is not an HTTP method and route template that
// a rule can be scoped to.
var ErrRoute = errors.New("not an HTTP route")

// Endpoint is an HTTP method and route template, as the runtime model
// names endpoints ("GET /products/{id}").
type Endpoint struct {
	Method string `json:"method"`
	Route  string `json:"route"`
}

// String returns "METHOD /route".
func (e Endpoint) String() string { return e.Method + " " + e.Route }

// httpMethods are the methods a route can be scoped to.
var httpMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true,
	"CONNECT": true, "TRACE": true,
}

// ParseEndpoint parses "GET /products/{id}". Instrumentations that name
// spans after the route ("GET /search") and also report it as the route
// yield "GET GET /search"; the repeated method is dropped. Endpoints of
// RPC systems and messaging ("catalog.Catalog Get", "process orders") are
// not HTTP routes and return ErrRoute.
func ParseEndpoint(s string) (Endpoint, error) {
	method, route, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok || !httpMethods[method] {
		return Endpoint{}, fmt.Errorf("endpoint %q: %w: want METHOD /route", s, ErrRoute)
	}
	route = strings.TrimSpace(route)
	if m, r, ok := strings.Cut(route, " "); ok && m == method {
		route = strings.TrimSpace(r)
	}
	if err := checkRoute(route); err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %q: %w", s, err)
	}
	return Endpoint{Method: method, Route: route}, nil
}

func checkRoute(route string) error {
	if !strings.HasPrefix(route, "/") {
		return fmt.Errorf("%w: route %q does not start with /", ErrRoute, route)
	}
	if !utf8.ValidString(route) || strings.ContainsFunc(route, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '"' || r == '\'' }) {
		return fmt.Errorf("%w: route %q contains white space, control characters, quotes or invalid UTF-8", ErrRoute, route)
	}
	depth := 0
	for _, c := range route {
		switch c {
		case '{':
			depth++
		case '}':
			depth--
		case '/':
			// A placeholder is one segment (or the rest, "{p...}"): the
			// readers of a template split it at '/' first.
			if depth > 0 {
				return fmt.Errorf("%w: route %q has a placeholder across a '/'", ErrRoute, route)
			}
		}
		if depth < 0 || depth > 1 {
			return fmt.Errorf("%w: route %q has unbalanced braces", ErrRoute, route)
		}
	}
	if depth != 0 {
		return fmt.Errorf("%w: route %q has unbalanced braces", ErrRoute, route)
	}
	return nil
}

// RouteRegex converts a route template into an anchored regular
// expression over the request path (REQUEST_FILENAME). It understands
// the template forms of the common routers:
//
//	/products/{id}      net/http, OpenAPI, gorilla/mux, Spring  → one segment
//	/files/{path...}    net/http (Go 1.22) rest wildcard        → the rest
//	/users/:id          Express, Gin, Rails                      → one segment
//	/static/*  /*path   Express, Gin catch-all                   → the rest
//	/{$}                net/http exact match                     → nothing
//	/{id:[0-9]+}        gorilla/mux with a pattern               → one segment
//
// A trailing slash in a net/http pattern matches the whole subtree, and
// does so here too: "/" is every path (an Express "/" is the root only,
// which the scope then takes with the rest). Everything else matches literally.
//
// The expression matches both the decoded path (REQUEST_FILENAME) and the
// path as sent with its query (REQUEST_URI): routers match parameters on
// the escaped path, so /products/..%2F..%2Fadmin is still
// /products/{id}, which only the escaped form shows. A parameter never
// spans a "/" or the "?" that starts the query.
func RouteRegex(route string) (string, error) {
	if err := checkRoute(route); err != nil {
		return "", err
	}
	var b strings.Builder
	// Routers differ on what else reaches a route: Express and ASP.NET
	// Core ignore case and a trailing slash, Spring MVC (to 5.3) takes a
	// trailing slash and a ".json" suffix, servlet containers drop
	// ";name=value" from every segment. The scope takes all of them, so
	// that none skips the patch; to a router that does not, such a path
	// is another one, whose requests the patch then checks too.
	b.WriteString("(?i)^")
	segs := strings.Split(route[1:], "/")
	open := false // the path may go on with a trailing slash
	for i, seg := range segs {
		b.WriteString("/")
		last := i == len(segs)-1
		open = false
		switch {
		case seg == "{$}" && last:
			// "/{$}" matches only the path ending in the slash.
		case restSegment(seg, last):
			b.WriteString("[^?]*")
		case paramSegment(seg):
			b.WriteString("[^/?]+")
			open = last
		case seg == "" && last:
			// "/static/": the subtree below it; "/" alone is
			// net/http's catch-all, every path. Read as the root
			// only, a patch on a handler mounted at "/" checked no
			// other path that handler serves.
			b.WriteString("[^?]*")
		default:
			b.WriteString(literalSegment(seg))
			if last {
				b.WriteString(`(?:\.[^/?;]*)?`)
			}
			b.WriteString(`(?:;[^/?]*)?`)
			open = last && seg != ""
		}
	}
	if open {
		b.WriteString("/?")
	}
	b.WriteString(`(?:\?.*)?$`)
	re := b.String()
	if _, err := regexp.Compile(re); err != nil {
		return "", fmt.Errorf("%w: route %q: %v", ErrRoute, route, err)
	}
	return re, nil
}

// restSegment reports whether a segment of a route template matches the
// rest of the path, slashes included: net/http's "{name...}" and
// Express's "*" or "*name" at the end, and, wherever they stand, the
// catch-alls of ASP.NET Core ("{*name}", "{**name}"), the path converters
// of Starlette and FastAPI ("{name:path}") and of Werkzeug and Flask
// ("<path:name>"). Read as one segment, "/files/{p:path}" let
// "/files/a/b" out of the patch's scope.
func restSegment(seg string, last bool) bool {
	braced := strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}")
	switch {
	case braced && strings.HasSuffix(seg, "...}") && last,
		strings.HasPrefix(seg, "*") && last:
		return true
	case braced && (strings.HasPrefix(seg, "{*") || strings.HasSuffix(seg, ":path}")):
		return true
	}
	return strings.HasPrefix(seg, "<path:") && strings.HasSuffix(seg, ">")
}

// paramSegment reports whether a segment of a route template is one path
// parameter: "{name}" (net/http, OpenAPI, gorilla/mux with a pattern),
// ":name" (Express, Gin) and "<name>" or "<converter:name>" (Werkzeug and
// Flask, whose http.route is the rule as written: "/items/<int:id>" was
// matched literally, so the patch's scope never matched a request).
func paramSegment(seg string) bool {
	return strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") ||
		strings.HasPrefix(seg, ":") && len(seg) > 1 ||
		strings.HasPrefix(seg, "<") && strings.HasSuffix(seg, ">") && len(seg) > 2
}

// literalSegment quotes a segment that may still hold a {name} in the
// middle ("/v{version}/x") as a one-segment wildcard.
func literalSegment(seg string) string {
	var b strings.Builder
	for seg != "" {
		i := strings.IndexByte(seg, '{')
		if i < 0 {
			b.WriteString(regexp.QuoteMeta(seg))
			break
		}
		j := strings.IndexByte(seg[i:], '}')
		b.WriteString(regexp.QuoteMeta(seg[:i]))
		b.WriteString("[^/?]+")
		seg = seg[i+j+1:]
	}
	return b.String()
}

// examplePath fills a route template with value in every placeholder, for
// requests the validator builds when traffic shows no real path. It reads
// templates as RouteRegex does.
func examplePath(route, value string) string {
	segs := strings.Split(route, "/")
	for i, seg := range segs {
		last := i == len(segs)-1
		switch {
		case seg == "{$}" && last:
			segs[i] = ""
		case restSegment(seg, last), paramSegment(seg):
			segs[i] = value
		default:
			var b strings.Builder
			for seg != "" {
				j := strings.IndexByte(seg, '{')
				if j < 0 {
					b.WriteString(seg)
					break
				}
				k := strings.IndexByte(seg[j:], '}')
				b.WriteString(seg[:j] + value)
				seg = seg[j+k+1:]
			}
			segs[i] = b.String()
		}
	}
	return strings.Join(segs, "/")
}

// hasPlaceholder reports whether a route template has a path parameter.
func hasPlaceholder(route string) bool {
	for _, seg := range strings.Split(route, "/") {
		if (strings.HasPrefix(seg, "{") && seg != "{$}") || (strings.HasPrefix(seg, ":") && len(seg) > 1) || strings.HasPrefix(seg, "*") || paramSegment(seg) || restSegment(seg, true) {
			return true
		}
	}
	return false
}
