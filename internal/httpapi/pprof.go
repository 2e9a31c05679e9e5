package httpapi

import (
	"net/http/pprof"

	"github.com/evidentsec/evident/internal/auth"
)

// pprofRoutes serve Go's runtime profiles, as Prometheus, Tempo and Loki
// do on their HTTP port, so that an operator profiles a running serve
// with `go tool pprof http://host:8080/debug/pprof/heap` rather than a
// rebuilt binary. They are net/http/pprof's handlers registered on the
// API's mux: importing the package for its side effect would register
// them on http.DefaultServeMux, which evident does not serve.
//
// They need the admin role, the highest auth defines: a goroutine dump
// and the command line tell much about the process (paths, flags,
// what every tenant's requests are doing), and a CPU profile or an
// execution trace costs CPU for as long as the caller asks. They show
// the whole process, so a principal bound to a tenant is refused, as
// for /metrics.
//
// They are not API routes (routes): openapi.json leaves them out, as
// Prometheus' API documentation does, and they resolve no tenant and
// take net/http/pprof's own parameters (debug, gc, seconds; the
// addresses symbol looks up are the raw query or the POST body), which
// its handlers check.
//
// A CPU profile, a trace and a delta profile (?seconds=N) answer after N
// seconds: net/http/pprof moves the request's write deadline to
// write_timeout past N (checked with Go 1.26, which go.mod requires,
// December 2026; it used to refuse an N beyond write_timeout), so the
// listener does not cut them off, as long as no middleware hides the
// ResponseWriter's SetWriteDeadline (TestPprofOutlastsWriteTimeout).
func pprofRoutes() []route {
	return []route{
		// The index, and by name the profiles of runtime/pprof: allocs,
		// block, goroutine, heap, mutex, threadcreate.
		{pattern: "GET /debug/pprof/", need: auth.RoleAdmin, h: pprof.Index},
		{pattern: "GET /debug/pprof/cmdline", need: auth.RoleAdmin, h: pprof.Cmdline},
		{pattern: "GET /debug/pprof/profile", need: auth.RoleAdmin, h: pprof.Profile},
		// pprof's symbolizer posts the addresses.
		{pattern: "GET /debug/pprof/symbol", need: auth.RoleAdmin, h: pprof.Symbol},
		{pattern: "POST /debug/pprof/symbol", need: auth.RoleAdmin, h: pprof.Symbol},
		{pattern: "GET /debug/pprof/trace", need: auth.RoleAdmin, h: pprof.Trace},
	}
}
