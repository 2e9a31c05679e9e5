package httpapi

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/evidentsec/evident/internal/auth"
)

func pprofOn(c *Config) { c.Pprof = true }

// isProfile checks that body is a pprof profile, as `go tool pprof`
// reads it, with the sample type want.
func isProfile(want string) func(*testing.T, string) {
	return func(t *testing.T, body string) {
		t.Helper()
		p, err := profile.ParseData([]byte(body))
		if err != nil {
			t.Fatalf("parse profile: %v (body %.100q)", err, body)
		}
		var types []string
		for _, st := range p.SampleType {
			types = append(types, st.Type)
		}
		if !slices.Contains(types, want) {
			t.Errorf("sample types %v, want %s among them", types, want)
		}
	}
}

// contains checks that body has each of want.
func contains(want ...string) func(*testing.T, string) {
	return func(t *testing.T, body string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("body %.300q does not contain %q", body, w)
			}
		}
	}
}

// TestPprof: Go's profiles are served only when configured, only to an
// admin not bound to a tenant, and on the operational listener of a
// receiver or an engine too.
func TestPprof(t *testing.T) {
	st := newState(t)
	a, admin, read, ingest := tokens(t, st)
	secret, tok, err := auth.NewToken("admin of acme", auth.RoleAdmin, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	tok.Tenant = "acme"
	if err := st.st.CreateToken(t.Context(), tok, "test"); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	credentials := map[string]string{"admin": admin, "read": read, "ingest": ingest, "acme admin": secret, "none": ""}
	guard := a.Guard("api", auth.Required)
	servers := map[string]string{}
	_, servers["default"] = start(t, Deps{State: st, Guard: guard})
	_, servers["pprof"] = startConfig(t, pprofOn, Deps{State: st, Guard: guard})
	_, servers["ops"] = startConfig(t, pprofOn, Deps{State: st, Guard: guard, Ops: true})
	_, servers["unguarded"] = startConfig(t, pprofOn, Deps{State: st})
	// A function of this binary, which symbol names.
	pc := fmt.Sprintf("%#x", reflect.ValueOf(TestPprof).Pointer())

	tests := []struct {
		name, server, method, path, who, body string
		status                                int
		check                                 func(*testing.T, string)
	}{
		{name: "off by default", server: "default", path: "/debug/pprof/heap", status: 404},
		{name: "off by default, index", server: "default", path: "/debug/pprof/", status: 404},
		{name: "index", path: "/debug/pprof/", status: 200,
			check: contains("allocs", "block", "cmdline", "goroutine", "heap", "mutex", "profile", "symbol", "threadcreate", "trace")},
		{name: "heap", path: "/debug/pprof/heap", status: 200, check: isProfile("inuse_space")},
		{name: "heap after a GC", path: "/debug/pprof/heap?gc=1", status: 200, check: isProfile("inuse_space")},
		{name: "allocs", path: "/debug/pprof/allocs", status: 200, check: isProfile("alloc_space")},
		{name: "goroutine", path: "/debug/pprof/goroutine", status: 200, check: isProfile("goroutine")},
		{name: "goroutine dump", path: "/debug/pprof/goroutine?debug=2", status: 200, check: contains("goroutine ", "TestPprof")},
		{name: "block", path: "/debug/pprof/block", status: 200, check: isProfile("contentions")},
		{name: "mutex", path: "/debug/pprof/mutex", status: 200, check: isProfile("contentions")},
		{name: "threadcreate", path: "/debug/pprof/threadcreate", status: 200, check: isProfile("threadcreate")},
		{name: "delta heap", path: "/debug/pprof/heap?seconds=1", status: 200, check: isProfile("inuse_space")},
		{name: "unknown profile", path: "/debug/pprof/nope", status: 404},
		{name: "cmdline", path: "/debug/pprof/cmdline", status: 200, check: contains("httpapi.test")},
		{name: "symbol", path: "/debug/pprof/symbol", status: 200, check: contains("num_symbols: 1")},
		{name: "symbol lookup", method: "POST", path: "/debug/pprof/symbol", body: pc, status: 200, check: contains(pc + " github.com/evidentsec/evident/internal/httpapi.TestPprof")},
		{name: "read role", path: "/debug/pprof/heap", who: "read", status: 403},
		{name: "ingest role", path: "/debug/pprof/heap", who: "ingest", status: 403},
		{name: "no credentials", path: "/debug/pprof/heap", who: "none", status: 401},
		{name: "admin of one tenant", path: "/debug/pprof/heap", who: "acme admin", status: 403, check: contains(`acts in tenant \"acme\" only`)},
		{name: "read role, index", path: "/debug/pprof/", who: "read", status: 403},
		{name: "read role, cmdline", path: "/debug/pprof/cmdline", who: "read", status: 403},
		{name: "read role, profile", path: "/debug/pprof/profile", who: "read", status: 403},
		{name: "read role, symbol", method: "POST", path: "/debug/pprof/symbol", body: pc, who: "read", status: 403},
		{name: "read role, trace", path: "/debug/pprof/trace", who: "read", status: 403},
		{name: "ops listener", server: "ops", path: "/debug/pprof/heap", status: 200, check: isProfile("inuse_space")},
		{name: "ops listener, read role", server: "ops", path: "/debug/pprof/heap", who: "read", status: 403},
		{name: "ops listener keeps the API off", server: "ops", path: "/api/v1/services", status: 404},
		{name: "without a guard", server: "unguarded", path: "/debug/pprof/heap", who: "none", status: 200, check: isProfile("inuse_space")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := cmp.Or(tt.method, "GET")
			authz := ""
			if c := credentials[cmp.Or(tt.who, "admin")]; c != "" {
				authz = "Bearer " + c
			}
			status, body := do(t, method, servers[cmp.Or(tt.server, "pprof")]+tt.path, authz, "text/plain", []byte(tt.body))
			if status != tt.status {
				t.Fatalf("%s %s as %s = %d %.200q, want %d", method, tt.path, cmp.Or(tt.who, "admin"), status, body, tt.status)
			}
			if tt.check != nil {
				tt.check(t, body)
			}
		})
	}
}

// TestPprofOutlastsWriteTimeout takes a CPU profile and an execution
// trace longer than the listener's write timeout, through every
// middleware of the API: net/http/pprof moves the write deadline past
// the duration asked for, so each answer is whole and covers it rather
// than being cut off when the timeout passes.
func TestPprofOutlastsWriteTimeout(t *testing.T) {
	st := newState(t)
	a, admin, _, _ := tokens(t, st)
	const writeTimeout = time.Second
	_, base := startConfig(t, func(c *Config) {
		c.Pprof = true
		c.WriteTimeout = writeTimeout
	}, Deps{State: st, Guard: a.Guard("api", auth.Required)})

	tests := []struct {
		path  string
		long  time.Duration
		check func(*testing.T, string)
	}{
		{"/debug/pprof/profile?seconds=2", 2 * time.Second, func(t *testing.T, body string) {
			isProfile("cpu")(t, body)
			p, _ := profile.ParseData([]byte(body))
			if got := time.Duration(p.DurationNanos); got < 2*time.Second {
				t.Errorf("profile covers %v, want 2s", got)
			}
		}},
		// A trace is streamed as it is taken: cut off, its body ends
		// early with an error.
		{"/debug/pprof/trace?seconds=1.5", 1500 * time.Millisecond, contains("go 1.")},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), "GET", base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+admin)
			began := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			took := time.Since(began)
			if err != nil {
				t.Fatalf("read the answer after %v: %v (write timeout %v)", took, err, writeTimeout)
			}
			if resp.StatusCode != 200 || took < tt.long {
				t.Fatalf("GET %s = %d after %v, want 200 after %v: %.200q", tt.path, resp.StatusCode, took, tt.long, b)
			}
			tt.check(t, string(b))
		})
	}
}

// TestPprofEndsAtShutdown: a CPU profile in flight ends when Shutdown
// begins, with what it took so far, rather than holding the shutdown
// until its context ends.
func TestPprofEndsAtShutdown(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Endpoint, cfg.Pprof = "127.0.0.1:0", true
	s := New(cfg, Deps{State: newState(t)})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		status int
		body   string
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := http.Get("http://" + s.Addr().String() + "/debug/pprof/profile?seconds=30")
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- answer{resp.StatusCode, string(b), err}
	}()
	// Until the profile is being taken: its handler sleeps in this
	// process.
	for {
		var dump strings.Builder
		if err := pprof.Lookup("goroutine").WriteTo(&dump, 2); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(dump.String(), "net/http/pprof.Profile") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// The profile asks for 30 s: Shutdown's 10 s pass unless it ends.
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a profile in flight: %v", err)
	}
	a := <-answered
	if a.err != nil || a.status != 200 {
		t.Fatalf("profile = %d, %v, want 200", a.status, a.err)
	}
	isProfile("cpu")(t, a.body)
}
