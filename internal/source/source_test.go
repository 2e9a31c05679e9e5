package source_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc"

	"github.com/evidentsec/evident/internal/source"
	"github.com/evidentsec/evident/internal/source/sourcetest"
	"github.com/evidentsec/evident/internal/telemetry"
)

var recorded = filepath.Join("..", "..", "examples", "shop", "recorded")

// window covers the recording.
var window = source.Window{From: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}

type servers struct {
	pyro  *sourcetest.Pyroscope
	tempo *sourcetest.Tempo
}

func loadServers(t testing.TB) servers {
	t.Helper()
	rec, err := sourcetest.LoadRecording(recorded)
	if err != nil {
		t.Fatal(err)
	}
	p, tp, err := rec.Servers()
	if err != nil {
		t.Fatal(err)
	}
	return servers{p, tp}
}

// recordingAndPyroscope loads the recording and makes a Pyroscope that
// holds nothing yet, for a test that adds the recording's profiles at
// times of its own.
func recordingAndPyroscope(t testing.TB) (*sourcetest.Recording, *sourcetest.Pyroscope) {
	t.Helper()
	rec, err := sourcetest.LoadRecording(recorded)
	if err != nil {
		t.Fatal(err)
	}
	pyro, err := sourcetest.NewPyroscope(nil)
	if err != nil {
		t.Fatal(err)
	}
	return rec, pyro
}

// pyroscopeURL serves pyro alone for the test and returns its URL.
func pyroscopeURL(t *testing.T, pyro *sourcetest.Pyroscope) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(pyro.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// eachSource returns a pull of url's Tempo alone and one of its
// Pyroscope alone, by name.
func eachSource(t *testing.T, url string) map[string]source.Pull {
	t.Helper()
	p := newPull(t, url, source.Auth{}, nil)
	return map[string]source.Pull{"tempo": {Tempo: p.Tempo}, "pyroscope": {Pyroscope: p.Pyroscope}}
}

// handler is the union of both servers' endpoints.
func (s servers) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(s.pyro.Handler())
	mux.Handle("/api/", s.tempo.Handler())
	return mux
}

// collect is a telemetry.Handler that keeps what it is given.
type collect struct {
	spans    int
	profiles map[string]int64
	// periods are the sampling periods of the services' profiles.
	periods map[string]int64
}

func (c *collect) Profile(b *telemetry.ProfileBatch) error {
	if c.profiles == nil {
		c.profiles, c.periods = map[string]int64{}, map[string]int64{}
	}
	c.periods[b.Service] = b.Period
	for _, s := range b.Samples {
		c.profiles[b.Service] += s.Count
	}
	return nil
}

func (c *collect) Spans(s []telemetry.Span) error { c.spans += len(s); return nil }

func newPull(t *testing.T, url string, auth source.Auth, edit func(*source.HTTPConfig)) source.Pull {
	t.Helper()
	tc := source.DefaultTempoConfig()
	tc.URL, tc.Auth = url, auth
	pc := source.DefaultPyroscopeConfig()
	pc.URL, pc.Auth = url, auth
	if edit != nil {
		edit(&tc.HTTPConfig)
		edit(&pc.HTTPConfig)
	}
	tp, err := source.NewTempo(tc, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := source.NewPyroscope(pc, nil)
	if err != nil {
		t.Fatal(err)
	}
	return source.Pull{Tempo: tp, Pyroscope: p}
}

// TestPullMatchesFiles checks that every span and every sample of the
// recording comes back through the APIs.
func TestPullMatchesFiles(t *testing.T) {
	s := loadServers(t)
	srv := httptest.NewServer(s.handler())
	defer srv.Close()

	var want collect
	files, err := telemetry.Discover([]telemetry.Input{{Path: filepath.Join(recorded, "traces.jsonl")}, {Path: filepath.Join(recorded, "profiles")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := telemetry.Load(context.Background(), files, &want); err != nil {
		t.Fatal(err)
	}
	var got collect
	var skipped []error
	if err := newPull(t, srv.URL, source.Auth{}, nil).Run(context.Background(), window, &got, func(err error) { skipped = append(skipped, err) }); err != nil {
		t.Fatal(err)
	}
	if len(skipped) > 0 {
		t.Errorf("skipped: %v", skipped)
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(collect{})); diff != "" {
		t.Errorf("pulled telemetry (-files +sources):\n%s", diff)
	}
}

// TestAuthOnEveryRequest checks each auth scheme reaches every request
// of both sources.
func TestAuthOnEveryRequest(t *testing.T) {
	tests := []struct {
		name  string
		auth  source.Auth
		check func(*http.Request) bool
	}{
		{"basic", source.Auth{User: "123456", Password: "glc_token", OrgID: "tenant-a"}, func(r *http.Request) bool {
			u, p, ok := r.BasicAuth()
			return ok && u == "123456" && p == "glc_token" && r.Header.Get("X-Scope-OrgID") == "tenant-a"
		}},
		{"bearer", source.Auth{BearerToken: "secret"}, func(r *http.Request) bool {
			return r.Header.Get("Authorization") == "Bearer secret" && r.Header.Get("X-Scope-OrgID") == ""
		}},
	}
	s := loadServers(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var total, bad int
			next := s.handler()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				total++
				if !tt.check(r) {
					bad++
				}
				mu.Unlock()
				next.ServeHTTP(w, r)
			}))
			defer srv.Close()
			if err := newPull(t, srv.URL, tt.auth, nil).Run(context.Background(), window, &collect{}, func(error) {}); err != nil {
				t.Fatal(err)
			}
			if total == 0 || bad > 0 {
				t.Errorf("%d of %d requests without the auth", bad, total)
			}
		})
	}
}

// TestBadServers checks each failure is classified and explained.
func TestBadServers(t *testing.T) {
	s := loadServers(t)
	status := func(code int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "nope", code) })
	}
	multiTenant := sourcetest.NewTempo()
	multiTenant.OrgID = "shop"
	tests := []struct {
		name    string
		handler http.Handler
		auth    source.Auth
		edit    func(*source.HTTPConfig)
		want    error
		wantMsg string
	}{
		{name: "401 without credentials", handler: status(401), want: source.ErrUnauthorized, wantMsg: "set EVIDENT_TEMPO_USER and EVIDENT_TEMPO_PASSWORD"},
		{name: "401 without password", handler: status(401), auth: source.Auth{User: "1"}, want: source.ErrUnauthorized, wantMsg: "EVIDENT_TEMPO_PASSWORD_FILE"},
		// A multi-tenant Tempo asks for the tenant before any credentials.
		{name: "401 without tenant", handler: multiTenant.Handler(), want: source.ErrUnauthorized, wantMsg: "no tenant was sent: set EVIDENT_TEMPO_ORG_ID"},
		{name: "401 without tenant, with credentials", handler: multiTenant.Handler(), auth: source.Auth{User: "1", Password: "secret"}, want: source.ErrUnauthorized, wantMsg: "no tenant was sent: set EVIDENT_TEMPO_ORG_ID"},
		{name: "403", handler: status(403), auth: source.Auth{BearerToken: "x"}, want: source.ErrUnauthorized, wantMsg: "lack a permission"},
		{name: "404", handler: http.NotFoundHandler(), want: source.ErrNotFound, wantMsg: "checked against Tempo v3.0.3"},
		{name: "503", handler: status(503), want: source.ErrRetryable},
		{name: "429", handler: status(429), want: source.ErrRetryable},
		{name: "oversized", handler: s.handler(), edit: func(c *source.HTTPConfig) { c.MaxResponseBytes = 10 }, want: source.ErrTooLarge},
		{name: "slow", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}), edit: func(c *source.HTTPConfig) { c.Timeout = 100 * time.Millisecond }, want: source.ErrTimeout},
		{name: "truncated", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			w.Write([]byte(`{"tagValues":[`))
		}), wantMsg: "truncated"},
		// A server that ignores Accept: application/protobuf on a trace
		// (Tempo's JSON wraps the trace and has base64 ids).
		{name: "trace as JSON", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.URL.Path, "/api/v2/traces/") {
				s.handler().ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"trace":{"resourceSpans":[]},"metrics":{}}`))
		}), wantMsg: `answered "application/json" to Accept: application/protobuf: need a Tempo`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			err := newPull(t, srv.URL, tt.auth, tt.edit).Run(context.Background(), window, &collect{}, func(error) {})
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v: want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q: want it to say %q", err, tt.wantMsg)
			}
			if tt.auth.Password != "" && strings.Contains(err.Error(), tt.auth.Password) || tt.auth.BearerToken != "" && strings.Contains(err.Error(), tt.auth.BearerToken) {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + l.Addr().String()
		l.Close()
		for name, pull := range eachSource(t, url) {
			err := pull.Run(context.Background(), window, &collect{}, func(error) {})
			if !errors.Is(err, source.ErrUnreachable) {
				t.Errorf("%s: error %v: want ErrUnreachable", name, err)
			}
		}
	})

	// A gRPC port (OTLP/gRPC, or the server's own) answers an HTTP/1
	// request in HTTP/2 frames, or closes the connection on it: not the
	// API, and not worth a retry (Pyroscope's was "server busy").
	t.Run("a gRPC port", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		go srv.Serve(l)
		defer srv.Stop()
		url := "http://" + l.Addr().String()
		for name, pull := range eachSource(t, url) {
			err := pull.Run(context.Background(), window, &collect{}, func(error) {})
			if !errors.Is(err, source.ErrNotAPI) || !strings.Contains(fmt.Sprint(err), "answered in HTTP/2 frames, as a gRPC port") || !strings.Contains(fmt.Sprint(err), "check --"+name+"'s URL") {
				t.Errorf("%s: error %v: want ErrNotAPI saying the port speaks HTTP/2 only", name, err)
			}
		}
	})

	// A server that resets every connection: a server that cannot be
	// reached (a reset at the dial) or is failing (after it), for both
	// sources (Connect calls a reset while the request is written
	// "canceled", which is not the caller's).
	t.Run("connections reset", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
		}()
		url := "http://" + l.Addr().String()
		for range 20 {
			for name, pull := range eachSource(t, url) {
				err := pull.Run(context.Background(), window, &collect{}, func(error) {})
				// The reset may reach the dial (connect's result), or
				// the request once it is written.
				atDial := errors.Is(err, source.ErrUnreachable) && strings.Contains(err.Error(), "dial tcp")
				if !errors.Is(err, source.ErrRetryable) && !atDial {
					t.Fatalf("%s: error %v: want ErrRetryable, or ErrUnreachable at the dial", name, err)
				}
			}
		}
	})

	t.Run("pyroscope 404", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		err := source.Pull{Pyroscope: newPull(t, srv.URL, source.Auth{}, nil).Pyroscope}.Run(context.Background(), window, &collect{}, func(error) {})
		if !errors.Is(err, source.ErrNotFound) || !strings.Contains(err.Error(), "querier.v1.QuerierService") {
			t.Errorf("error %v: want ErrNotFound naming the version", err)
		}
	})
}

// TestWindowsPartitionTraces checks that consecutive windows, as serve
// polls them, read every span of the recording once: Tempo finds the
// traces that overlap a window's whole seconds, so a trace across the
// boundary is found by both searches.
func TestWindowsPartitionTraces(t *testing.T) {
	rec, err := sourcetest.LoadRecording(recorded)
	if err != nil {
		t.Fatal(err)
	}
	var first, last time.Time
	total := 0
	for _, td := range rec.Traces {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					total++
					if st := sp.StartTimestamp().AsTime(); first.IsZero() || st.Before(first) {
						first = st
					}
					if en := sp.EndTimestamp().AsTime(); en.After(last) {
						last = en
					}
				}
			}
		}
	}
	s := loadServers(t)
	srv := httptest.NewServer(s.handler())
	defer srv.Close()
	mid := first.Add(last.Sub(first) / 2)
	tests := []struct {
		name  string
		split time.Time
	}{
		{"mid-second", mid},
		{"on a second", mid.Truncate(time.Second)},
		{"a millisecond later", mid.Truncate(time.Second).Add(time.Millisecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := newPull(t, srv.URL, source.Auth{}, nil).Tempo
			var got collect
			for _, w := range []source.Window{{From: window.From, To: tt.split}, {From: tt.split, To: window.To}} {
				if err := (source.Pull{Tempo: tp}).Run(context.Background(), w, &got, func(err error) { t.Error(err) }); err != nil {
					t.Fatal(err)
				}
			}
			if got.spans != total {
				t.Errorf("spans read in two windows split at %s: %d, want %d", tt.split.Format(time.RFC3339Nano), got.spans, total)
			}
		})
	}
}

// TestTempoEmptyWindow checks that a window or a tenant in which Tempo
// holds no service is said to be empty, with or without a service
// selected.
func TestTempoEmptyWindow(t *testing.T) {
	s := loadServers(t)
	s.tempo.OrgID = "shop"
	srv := httptest.NewServer(s.tempo.Handler())
	defer srv.Close()
	empty := source.Window{From: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2001, 1, 2, 0, 0, 0, 0, time.UTC)}
	tests := []struct {
		name     string
		org      string
		w        source.Window
		services []string
		want     string
	}{
		{"empty window", "shop", empty, nil, "no service has traces"},
		{"another tenant", "other", window, nil, "no service has traces"},
		{"a selected service", "shop", empty, []string{"gateway"}, "service gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := source.Pull{Tempo: newPull(t, srv.URL, source.Auth{OrgID: tt.org}, nil).Tempo, Services: tt.services}
			var got collect
			var skipped []error
			if err := p.Run(context.Background(), tt.w, &got, func(err error) { skipped = append(skipped, err) }); err != nil {
				t.Fatal(err)
			}
			if len(skipped) != 1 || !errors.Is(skipped[0], source.ErrNoData) || !strings.Contains(skipped[0].Error(), tt.want) {
				t.Errorf("skipped %v: want one ErrNoData saying %q", skipped, tt.want)
			}
			if got.spans != 0 {
				t.Errorf("spans %d: want none", got.spans)
			}
		})
	}
}

// TestPartialTrace checks that a trace Tempo answers in part (over its
// max_bytes_per_trace) is read as far as it goes and reported, and the
// other traces are read whole.
func TestPartialTrace(t *testing.T) {
	s := loadServers(t)
	s.tempo.MaxBytesPerTrace = 2000
	srv := httptest.NewServer(s.handler())
	defer srv.Close()
	var all collect
	whole := loadServers(t)
	wsrv := httptest.NewServer(whole.handler())
	defer wsrv.Close()
	if err := (source.Pull{Tempo: newPull(t, wsrv.URL, source.Auth{}, nil).Tempo}).Run(context.Background(), window, &all, func(err error) { t.Errorf("skipped %v", err) }); err != nil {
		t.Fatal(err)
	}

	var got collect
	var partial int
	err := source.Pull{Tempo: newPull(t, srv.URL, source.Auth{}, nil).Tempo}.Run(context.Background(), window, &got, func(err error) {
		if !errors.Is(err, source.ErrPartial) || !strings.Contains(err.Error(), "Trace exceeds maximum size of 2000 bytes") {
			t.Errorf("skipped for %v: want ErrPartial with Tempo's message", err)
		}
		partial++
	})
	if err != nil {
		t.Fatal(err)
	}
	if partial == 0 || got.spans == 0 || got.spans >= all.spans {
		t.Errorf("%d partial traces, %d of %d spans: want some partial traces and some of their spans", partial, got.spans, all.spans)
	}
}

// TestServiceWithoutProfiles checks a selected service the server does
// not hold is skipped with the reason, and the others are still read.
func TestServiceWithoutProfiles(t *testing.T) {
	s := loadServers(t)
	srv := httptest.NewServer(s.handler())
	defer srv.Close()
	p := newPull(t, srv.URL, source.Auth{}, nil)
	p.Services = []string{"gateway", "billing"}
	var got collect
	var skipped []string
	if err := p.Run(context.Background(), window, &got, func(err error) {
		if !errors.Is(err, source.ErrNoData) {
			t.Errorf("skipped for %v: want ErrNoData", err)
		}
		skipped = append(skipped, err.Error())
	}); err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 2 || !strings.Contains(skipped[0], "billing") {
		t.Errorf("skipped %q: want billing in tempo and pyroscope", skipped)
	}
	if got.profiles["gateway"] == 0 || len(got.profiles) != 1 {
		t.Errorf("profiles %v: want gateway's only", got.profiles)
	}
}

// TestLegacyPyroscope checks that a server without the pprof format of
// SelectMergeStacktraces is read through SelectMergeProfile.
func TestLegacyPyroscope(t *testing.T) {
	s := loadServers(t)
	s.pyro.Legacy = true
	srv := httptest.NewServer(s.handler())
	defer srv.Close()
	var got collect
	if err := (source.Pull{Pyroscope: newPull(t, srv.URL, source.Auth{}, nil).Pyroscope}).Run(context.Background(), window, &got, func(err error) { t.Error(err) }); err != nil {
		t.Fatal(err)
	}
	if len(got.profiles) != 4 {
		t.Errorf("profiles of %d services, want 4", len(got.profiles))
	}
}

// TestTLS checks a custom CA and a client certificate.
func TestTLS(t *testing.T) {
	s := loadServers(t)
	srv := httptest.NewUnstartedServer(s.handler())
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	writePEM(t, ca, "CERTIFICATE", srv.Certificate().Raw)
	// The server's own certificate serves as the client's.
	cert, key := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	writePEM(t, cert, "CERTIFICATE", srv.TLS.Certificates[0].Certificate[0])
	der, err := x509.MarshalPKCS8PrivateKey(srv.TLS.Certificates[0].PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, key, "PRIVATE KEY", der)

	if err := newPull(t, srv.URL, source.Auth{CAFile: ca, CertFile: cert, KeyFile: key}, nil).Run(context.Background(), window, &collect{}, func(error) {}); err != nil {
		t.Fatal(err)
	}
	// Without the CA, either source: unreachable, not worth a retry.
	for name, pull := range eachSource(t, srv.URL) {
		err := pull.Run(context.Background(), window, &collect{}, func(error) {})
		if !errors.Is(err, source.ErrUnreachable) || errors.Is(err, source.ErrRetryable) {
			t.Errorf("%s without the CA: %v, want ErrUnreachable", name, err)
		}
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAuthFromEnv checks the environment and secret files.
func TestAuthFromEnv(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("glc_secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"X_USER": "42", "X_PASSWORD_FILE": tokenFile, "X_ORG_ID": "t"}
	got, err := source.AuthFromEnv("X", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(source.Auth{User: "42", Password: "glc_secret", OrgID: "t"}, got); diff != "" {
		t.Errorf("auth (-want +got):\n%s", diff)
	}
	if strings.Contains(got.String(), "glc_secret") {
		t.Errorf("String() shows the secret: %s", got)
	}
	for name, env := range map[string]map[string]string{
		"password without user": {"X_PASSWORD": "p"},
		"basic and bearer":      {"X_USER": "u", "X_TOKEN": "t"},
		"cert without key":      {"X_CERT_FILE": "c"},
		"missing secret file":   {"X_TOKEN_FILE": filepath.Join(dir, "none")},
	} {
		if _, err := source.AuthFromEnv("X", func(k string) string { return env[k] }); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestNotTheAPI checks that a server that is not Tempo or Pyroscope (a
// login page, a proxy, another server) is reported as such, with the
// URL requested and the flag to check, and that a failed answer's body
// is quoted by its first line only, an HTML page not at all.
func TestNotTheAPI(t *testing.T) {
	const loginPage = "<!DOCTYPE html>\n<html lang=\"en\">\n<head><title>Grafana</title></head>\n<body>\n<div>Log in</div>\n</body>\n</html>\n"
	answer := func(code int, ctype, body string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.WriteHeader(code)
			w.Write([]byte(body))
		})
	}
	// Python's http.server answers a POST it has no handler for with
	// its own reason phrase, which net/http cannot write.
	pythonServer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.0 501 Unsupported method ('POST')\r\nContent-Type: text/html;charset=utf-8\r\nConnection: close\r\n\r\n" + loginPage)
		buf.Flush()
	})
	const (
		tempoQuery = "/api/v2/search/tag/resource.service.name/values?end=1893456000&start=1577836800"
		tempoNeeds = "a Tempo with TraceQL search (/api/search?q=) and /api/v2/traces (checked against Tempo v3.0.3)"
	)
	tests := []struct {
		name    string
		source  string // "tempo" or "pyroscope"
		prefix  string // path prefix of the configured URL
		handler http.Handler
		want    error
		wantMsg string // {URL} stands for the server's URL
	}{
		{"tempo login page", "tempo", "", answer(200, "text/html; charset=utf-8", loginPage), source.ErrNotAPI,
			"tempo: GET {URL}/api/v2/search/tag/resource.service.name/values answered an HTML page: is this Tempo's HTTP API? check --tempo's URL and its path prefix"},
		{"tempo login page behind a prefix", "tempo", "/tempo", answer(200, "", loginPage), source.ErrNotAPI,
			"tempo: GET {URL}/tempo/api/v2/search/tag/resource.service.name/values answered an HTML page: is this Tempo's HTTP API? check --tempo's URL and its path prefix"},
		{"tempo text", "tempo", "", answer(200, "text/plain", "OK\n"), source.ErrNotAPI,
			"tempo: GET {URL}/api/v2/search/tag/resource.service.name/values answered text/plain, not JSON: is this Tempo's HTTP API? check --tempo's URL and its path prefix"},
		{"tempo empty", "tempo", "", answer(200, "application/json", ""), source.ErrNotAPI,
			"tempo: GET {URL}/api/v2/search/tag/resource.service.name/values answered an empty body, not JSON: is this Tempo's HTTP API? check --tempo's URL and its path prefix"},
		{"tempo 404 page", "tempo", "", answer(404, "text/html", loginPage), source.ErrNotFound,
			"tempo " + tempoQuery + ": API path not found (HTTP 404): check the URL {URL} (with its path prefix) or upgrade the server: evident needs " + tempoNeeds + ": an HTML page"},
		{"tempo 404 text", "tempo", "", answer(404, "text/plain", "no route\nsecond line\n"), source.ErrNotFound,
			"tempo " + tempoQuery + ": API path not found (HTTP 404): check the URL {URL} (with its path prefix) or upgrade the server: evident needs " + tempoNeeds + ": no route"},
		{"tempo 503 long line", "tempo", "", answer(503, "text/plain", strings.Repeat("x", 300)), source.ErrRetryable,
			"tempo " + tempoQuery + ": server busy or failing (HTTP 503): " + strings.Repeat("x", 200) + "…"},
		{"pyroscope login page", "pyroscope", "", answer(200, "text/html", loginPage), source.ErrNotAPI,
			"pyroscope LabelValues: POST {URL}/querier.v1.QuerierService/LabelValues answered an HTML page: is this Pyroscope's query API? check --pyroscope's URL and its path prefix"},
		{"pyroscope JSON", "pyroscope", "/pyroscope", answer(200, "application/json", "{}"), source.ErrNotAPI,
			"pyroscope LabelValues: POST {URL}/pyroscope/querier.v1.QuerierService/LabelValues answered application/json, not application/proto: is this Pyroscope's query API? check --pyroscope's URL and its path prefix"},
		{"pyroscope 501", "pyroscope", "", pythonServer, source.ErrNotAPI,
			"pyroscope LabelValues: POST {URL}/querier.v1.QuerierService/LabelValues answered HTTP 501 Unsupported method ('POST'): is this Pyroscope's query API? check --pyroscope's URL and its path prefix"},
		{"pyroscope 405", "pyroscope", "", answer(405, "text/plain", "Method Not Allowed"), source.ErrNotAPI,
			"pyroscope LabelValues: POST {URL}/querier.v1.QuerierService/LabelValues answered HTTP 405 Method Not Allowed: is this Pyroscope's query API? check --pyroscope's URL and its path prefix"},
		// Connect's own unimplemented is 501 with a JSON body: the API,
		// without the method.
		{"pyroscope unimplemented", "pyroscope", "", answer(501, "application/json", `{"code":"unimplemented","message":"querier.v1.QuerierService.LabelValues is not implemented"}`), source.ErrNotFound,
			"pyroscope LabelValues: API path not found: check the URL {URL} or upgrade the server: evident needs a Pyroscope with the querier.v1.QuerierService Connect API (checked against github.com/grafana/pyroscope/api v1.6.0): unimplemented: querier.v1.QuerierService.LabelValues is not implemented"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			all := newPull(t, srv.URL+tt.prefix, source.Auth{}, nil)
			pull := source.Pull{Tempo: all.Tempo}
			if tt.source == "pyroscope" {
				pull = source.Pull{Pyroscope: all.Pyroscope}
			}
			err := pull.Run(context.Background(), window, &collect{}, func(error) {})
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v: want %v", err, tt.want)
			}
			if err == nil {
				return
			}
			if got, want := err.Error(), strings.ReplaceAll(tt.wantMsg, "{URL}", srv.URL); got != want {
				t.Errorf("error\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestTempoLongWindow checks that a window longer than Tempo's search
// max_duration is read in parts: every span of the recording from a
// window of ten years, and of an endpoint's traces across three days the
// newest, PerGroup of them, from the newer parts first.
func TestTempoLongWindow(t *testing.T) {
	s := loadServers(t)
	s.tempo.MaxDuration = 168 * time.Hour
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i, at := range []time.Duration{time.Hour, 25 * time.Hour, 49 * time.Hour, 50 * time.Hour} {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "api")
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		id := pcommon.TraceID{0xa, byte(i + 1)}
		sp.SetTraceID(id)
		sp.SetSpanID(pcommon.SpanID{byte(i + 1)})
		sp.SetName("GET /a")
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(at)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(at + time.Millisecond)))
		s.tempo.Add(td)
		ids = append(ids, id.String())
	}
	srv := httptest.NewServer(s.handler())
	defer srv.Close()

	t.Run("ten years", func(t *testing.T) {
		var inParts, whole collect
		if err := (source.Pull{Tempo: newPull(t, srv.URL, source.Auth{}, nil).Tempo}).Run(context.Background(), window, &inParts, func(err error) { t.Error(err) }); err != nil {
			t.Fatal(err)
		}
		s.tempo.MaxDuration = 0
		defer func() { s.tempo.MaxDuration = 168 * time.Hour }()
		if err := (source.Pull{Tempo: newPull(t, srv.URL, source.Auth{}, nil).Tempo}).Run(context.Background(), window, &whole, func(err error) { t.Error(err) }); err != nil {
			t.Fatal(err)
		}
		if inParts.spans != whole.spans || whole.spans == 0 {
			t.Errorf("spans read in parts %d, in one window %d", inParts.spans, whole.spans)
		}
	})
	t.Run("newest of three days", func(t *testing.T) {
		s.tempo.MaxDuration = 24 * time.Hour
		defer func() { s.tempo.MaxDuration = 168 * time.Hour }()
		cfg := source.DefaultTempoConfig()
		cfg.URL, cfg.PerGroup = srv.URL, 2
		tp, err := source.NewTempo(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got traceIDs
		p := source.Pull{Tempo: tp, Services: []string{"api"}}
		if err := p.Run(context.Background(), source.Window{From: t0, To: t0.Add(72 * time.Hour)}, &got, func(err error) { t.Error(err) }); err != nil {
			t.Fatal(err)
		}
		if want := []string{ids[3], ids[2]}; fmt.Sprint(got.ids) != fmt.Sprint(want) {
			t.Errorf("traces %v, want the two newest %v", got.ids, want)
		}
	})
}

// traceIDs is a telemetry.Handler that keeps the trace ids of the spans,
// in the order read.
type traceIDs struct{ ids []string }

func (c *traceIDs) Spans(spans []telemetry.Span) error {
	for _, sp := range spans {
		c.ids = append(c.ids, hex.EncodeToString(sp.TraceID[:]))
	}
	return nil
}

func (c *traceIDs) Profile(*telemetry.ProfileBatch) error { return nil }

// TestRedirects checks that a redirect is followed on the server the
// URL names, and refused to any other: the credentials are added to
// every request, redirected ones included, so that they would reach the
// other host.
func TestRedirects(t *testing.T) {
	s := loadServers(t)
	auth := source.Auth{User: "123456", Password: "glc_token", OrgID: "tenant-a"}
	var mu sync.Mutex
	var reached []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached = append(reached, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization")+" "+r.Header.Get("X-Scope-OrgID"))
		mu.Unlock()
		s.handler().ServeHTTP(w, r)
	}))
	defer other.Close()
	tests := []struct {
		name string
		// to is where the server redirects a request under /old.
		to      func(self string) string
		wantErr bool
	}{
		{"same server", func(self string) string { return self }, false},
		{"another host", func(string) string { return strings.Replace(other.URL, "127.0.0.1", "localhost", 1) }, true},
		{"another port", func(string) string { return other.URL }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached = nil
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if rest, ok := strings.CutPrefix(r.URL.RequestURI(), "/old"); ok {
					// 307 keeps the method and body of Connect's POSTs.
					http.Redirect(w, r, tt.to(srv.URL)+rest, http.StatusTemporaryRedirect)
					return
				}
				s.handler().ServeHTTP(w, r)
			}))
			defer srv.Close()
			for name, pull := range map[string]func(source.Pull) source.Pull{
				"tempo":     func(p source.Pull) source.Pull { return source.Pull{Tempo: p.Tempo} },
				"pyroscope": func(p source.Pull) source.Pull { return source.Pull{Pyroscope: p.Pyroscope} },
			} {
				err := pull(newPull(t, srv.URL+"/old", auth, nil)).Run(context.Background(), window, &collect{}, func(error) {})
				switch {
				case !tt.wantErr && err != nil:
					t.Errorf("%s: %v", name, err)
				case tt.wantErr && (!errors.Is(err, source.ErrNotAPI) || !strings.Contains(fmt.Sprint(err), "a redirect to http://")):
					t.Errorf("%s: error %v: want ErrNotAPI naming the redirect", name, err)
				case tt.wantErr && strings.Contains(fmt.Sprint(err), auth.Password):
					t.Errorf("%s: error %q shows a secret", name, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(reached) > 0 {
				t.Errorf("the other server was sent %d requests, the first %q", len(reached), reached[0])
			}
		})
	}
}

// TestOversizedAnswer checks that one answer over MaxResponseBytes, a
// trace or a service's profile, is skipped and named, and the rest of
// the window is read: failing the window would read it again at every
// poll, and never get past it.
func TestOversizedAnswer(t *testing.T) {
	const limit = 4 << 20
	huge := bytes.Repeat([]byte{0}, limit+1)
	tests := []struct {
		name string
		// big reports whether r is the request answered with huge.
		big   func(r *http.Request, body []byte) bool
		ctype string
		pull  func(source.Pull) source.Pull
		want  string
	}{
		{"trace", func(r *http.Request, _ []byte) bool { return strings.HasPrefix(r.URL.Path, "/api/v2/traces/2") }, "application/protobuf",
			func(p source.Pull) source.Pull { return source.Pull{Tempo: p.Tempo} }, "tempo /api/v2/traces/2"},
		{"profile", func(r *http.Request, body []byte) bool {
			return strings.HasSuffix(r.URL.Path, "/SelectMergeStacktraces") && bytes.Contains(body, []byte(`{service_name="gateway"}`))
		}, "application/proto", func(p source.Pull) source.Pull { return source.Pull{Pyroscope: p.Pyroscope} }, "service gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := loadServers(t)
			var want collect
			wsrv := httptest.NewServer(s.handler())
			defer wsrv.Close()
			if err := tt.pull(newPull(t, wsrv.URL, source.Auth{}, nil)).Run(context.Background(), window, &want, func(err error) { t.Errorf("skipped %v", err) }); err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if tt.big(r, body) {
					w.Header().Set("Content-Type", tt.ctype)
					w.Write(huge)
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
				s.handler().ServeHTTP(w, r)
			}))
			defer srv.Close()
			var got collect
			var skipped []error
			err := tt.pull(newPull(t, srv.URL, source.Auth{}, func(c *source.HTTPConfig) { c.MaxResponseBytes = limit })).Run(context.Background(), window, &got, func(err error) { skipped = append(skipped, err) })
			if err != nil {
				t.Fatalf("window failed: %v", err)
			}
			if len(skipped) == 0 {
				t.Fatal("nothing skipped")
			}
			for _, err := range skipped {
				if !errors.Is(err, source.ErrTooLarge) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("skipped for %v: want ErrTooLarge naming %q", err, tt.want)
				}
			}
			if got.spans+len(got.profiles) == 0 || got.spans > want.spans || len(got.profiles) != max(0, len(want.profiles)-1) {
				t.Errorf("read %d spans and %d services' profiles, want the rest of %d and %d", got.spans, len(got.profiles), want.spans, len(want.profiles))
			}
		})
	}
}

// TestSpansOfATraceAcrossWindows checks that consecutive windows, read
// as serve reads them, each while Tempo holds only the spans that have
// ended by then (an SDK exports a span when it ends), read every span of
// a trace once, whichever window the trace started in: a message
// consumed minutes after it was produced, in the same trace, is read by
// the window it was consumed in, and a request that lasted minutes by
// the window it ended in.
func TestSpansOfATraceAcrossWindows(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 30, 0, time.UTC)
	windows := []source.Window{
		{From: t0.Add(-30 * time.Second), To: t0.Add(30 * time.Second)},
		{From: t0.Add(30 * time.Second), To: t0.Add(90 * time.Second)},
		{From: t0.Add(90 * time.Second), To: t0.Add(10 * time.Minute)},
	}
	type span struct {
		service  string
		kind     ptrace.SpanKind
		id       byte
		parent   byte
		at, took time.Duration // start after t0, duration (10 ms if 0)
	}
	tests := []struct {
		name  string
		spans []span
	}{
		{"consumed minutes later", []span{
			{"orders", ptrace.SpanKindProducer, 1, 0, 0, 0},
			{"worker", ptrace.SpanKindConsumer, 2, 1, 5 * time.Minute, 0},
		}},
		{"called across a boundary", []span{
			{"gateway", ptrace.SpanKindServer, 1, 0, 29 * time.Second, 0},
			{"gateway", ptrace.SpanKindClient, 2, 1, 29*time.Second + 900*time.Millisecond, 0},
			{"orders", ptrace.SpanKindServer, 3, 2, 30 * time.Second, 0},
		}},
		{"a job's spans over three windows", []span{
			{"reporter", ptrace.SpanKindServer, 1, 0, 0, 0},
			{"reporter", ptrace.SpanKindClient, 2, 1, time.Minute, 0},
			{"reporter", ptrace.SpanKindClient, 3, 1, 3 * time.Minute, 0},
		}},
		{"a request that lasted minutes", []span{
			{"reporter", ptrace.SpanKindServer, 1, 0, 0, 4 * time.Minute},
			{"reporter", ptrace.SpanKindClient, 2, 1, time.Second, 0},
			{"orders", ptrace.SpanKindServer, 3, 2, time.Second, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tempo := sourcetest.NewTempo()
			srv := httptest.NewServer(tempo.Handler())
			defer srv.Close()
			pull := source.Pull{Tempo: newPull(t, srv.URL, source.Auth{}, nil).Tempo}
			added := map[byte]bool{}
			var got collect
			for _, w := range windows {
				// Tempo holds what has ended by the time the window is
				// read (its end: a lag that covers export and ingestion).
				for _, s := range tt.spans {
					took := s.took
					if took == 0 {
						took = 10 * time.Millisecond
					}
					if at := t0.Add(s.at); !added[s.id] && at.Add(took).Before(w.To) {
						added[s.id] = true
						td := traceSpan(1, s.service, s.kind, s.id, s.parent, at)
						td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(took)))
						tempo.Add(td)
					}
				}
				if err := pull.Run(context.Background(), w, &got, func(error) {}); err != nil {
					t.Fatal(err)
				}
			}
			if got.spans != len(tt.spans) {
				t.Errorf("%d spans read in %d windows, want %d, each once", got.spans, len(windows), len(tt.spans))
			}
		})
	}
}

// traceSpan is one span of a trace, named for its service and id.
func traceSpan(trace int, service string, kind ptrace.SpanKind, id, parent byte, start time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{14: byte(trace >> 8), 15: byte(trace)})
	sp.SetSpanID(pcommon.SpanID{7: id})
	if parent != 0 {
		sp.SetParentSpanID(pcommon.SpanID{7: parent})
	}
	sp.SetKind(kind)
	sp.SetName(fmt.Sprintf("%s %d", service, id))
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(10 * time.Millisecond)))
	return td
}

// TestRareEndpointInABusyWindow checks that an endpoint is sampled
// however many traces of the service's other endpoints the window holds:
// the search that names a service's spans returns at most
// --traces-per-endpoint traces, which may all be of its busy endpoints;
// and that the searches for the names not seen stay within what a proxy
// in front of Tempo takes (nginx: 8 KiB a request line) when the names
// are endless.
func TestRareEndpointInABusyWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	w := source.Window{From: t0, To: t0.Add(time.Hour)}
	tests := []struct {
		name     string
		busy     int // traces of the busy endpoints, newer than the rare one's
		names    int // names of the busy endpoints
		wantRare bool
	}{
		{"under the limit", 5, 3, true},
		{"at the limit", 10, 3, true},
		{"over the limit", 35, 3, true},
		{"names with ids", 400, 400, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tempo := sourcetest.NewTempo()
			next := tempo.Handler()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if len(r.URL.RequestURI()) > 8<<10 {
					http.Error(w, "414 Request-URI Too Large", http.StatusRequestURITooLong)
					return
				}
				next.ServeHTTP(w, r)
			}))
			defer srv.Close()
			rare := traceSpan(1, "gateway", ptrace.SpanKindServer, 1, 0, t0.Add(time.Minute))
			rare.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetName("POST /admin")
			tempo.Add(rare)
			for i := range tt.busy {
				td := traceSpan(2+i, "gateway", ptrace.SpanKindServer, 1, 0, t0.Add(2*time.Minute+time.Duration(i)*time.Second))
				td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetName(fmt.Sprintf("GET /products/%08x-0000-4000-8000-%012x", i%tt.names, i%tt.names))
				tempo.Add(td)
			}
			cfg := source.DefaultTempoConfig()
			cfg.URL, cfg.PerGroup = srv.URL, 10
			tp, err := source.NewTempo(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got spanNames
			if err := (source.Pull{Tempo: tp}).Run(context.Background(), w, &got, func(err error) { t.Error(err) }); err != nil {
				t.Fatal(err)
			}
			if tt.wantRare && got["POST /admin"] != 1 {
				t.Errorf("spans of POST /admin read: %d, want 1 (read: %v)", got["POST /admin"], got)
			}
		})
	}
}

// spanNames counts the spans read by name.
type spanNames map[string]int

func (c *spanNames) Spans(spans []telemetry.Span) error {
	if *c == nil {
		*c = spanNames{}
	}
	for _, sp := range spans {
		(*c)[sp.Name]++
	}
	return nil
}

func (c *spanNames) Profile(*telemetry.ProfileBatch) error { return nil }
