package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/store"
)

// do sends a request with an optional Authorization header and returns
// the status and body.
func do(t *testing.T, method, url, authorization, contentType string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// tokens makes an admin, a read and an ingest token in st's store and an
// authenticator over it.
func tokens(t *testing.T, st *state) (a *auth.Authenticator, admin, read, ingest string) {
	t.Helper()
	mk := func(role auth.Role) string {
		secret, tok, err := auth.NewToken(role.String()+" token", role, t0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.st.CreateToken(t.Context(), tok, "test"); err != nil {
			t.Fatal(err)
		}
		return secret
	}
	admin, read, ingest = mk(auth.RoleAdmin), mk(auth.RoleRead), mk(auth.RoleIngest)
	a, err := auth.New(t.Context(), auth.DefaultConfig(), auth.Deps{Tokens: st.st})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	return a, admin, read, ingest
}

// TestEveryRouteNeedsAToken is the acceptance check: on a listener that
// needs credentials, no route but the probes answers without a token.
func TestEveryRouteNeedsAToken(t *testing.T) {
	st := newState(t)
	a, admin, read, ingest := tokens(t, st)
	reg := prometheus.NewRegistry()
	_, base := start(t, Deps{State: st, Alerts: &alerts{st: st.st}, Importer: importer, Gatherer: reg, Audit: st.st, Guard: a.Guard("api", auth.Required)})
	report, err := os.ReadFile(filepath.Join("testdata", "app.govulncheck.json"))
	if err != nil {
		t.Fatal(err)
	}
	routes := []struct {
		method, path string
		need         auth.Role // 0: open
	}{
		{"GET", "/api/v1/services", auth.RoleRead},
		{"GET", "/api/v1/services/app", auth.RoleRead},
		{"GET", "/api/v1/graph", auth.RoleRead},
		{"GET", "/api/v1/inventory", auth.RoleRead},
		{"GET", "/api/v1/findings", auth.RoleRead},
		{"GET", "/api/v1/findings/x", auth.RoleRead},
		{"GET", "/api/v1/summary", auth.RoleRead},
		{"GET", "/api/v1/report", auth.RoleRead},
		{"GET", "/api/v1/export/openvex", auth.RoleRead},
		{"GET", "/api/v1/export/sarif", auth.RoleRead},
		{"GET", "/api/v1/export/cyclonedx", auth.RoleRead},
		{"GET", "/api/v1/alerts", auth.RoleRead},
		{"GET", "/api/v1/vulndb", auth.RoleRead},
		{"GET", "/api/v1/waf/patches", auth.RoleRead},
		{"GET", "/api/v1/waf/patches/app", auth.RoleRead},
		{"GET", "/metrics", auth.RoleRead},
		{"POST", "/api/v1/findings?service=app", auth.RoleAdmin},
		{"GET", "/api/v1/audit", auth.RoleAdmin},
		{"GET", "/healthz", 0},
		{"GET", "/readyz", 0},
	}
	for _, r := range routes {
		t.Run(r.method+r.path, func(t *testing.T) {
			for _, tt := range []struct {
				who, authorization string
				roles              auth.Role
			}{
				{"nobody", "", 0}, {"ingest", "Bearer " + ingest, auth.RoleIngest},
				{"read", "Bearer " + read, auth.RoleRead}, {"admin", "Bearer " + admin, auth.RoleAdmin},
			} {
				status, body := do(t, r.method, base+r.path, tt.authorization, "application/json", report)
				var want []int
				switch {
				case r.need == 0 || tt.roles.Allows(r.need):
					want = []int{200, 404, 503} // admitted: the handler's own answer
				case tt.authorization == "":
					want = []int{401}
				default:
					want = []int{403}
				}
				found := false
				for _, w := range want {
					found = found || status == w
				}
				if !found {
					t.Errorf("%s: %s %s = %d %.100s, want one of %v", tt.who, r.method, r.path, status, body, want)
				}
			}
		})
	}
}

// TestUploadMergesPerService uploads for two services and checks each
// upload replaces its service's findings only, with an audit record that
// names the token.
func TestUploadMergesPerService(t *testing.T) {
	st := newState(t)
	a, admin, _, _ := tokens(t, st)
	now := t0.Add(time.Hour)
	_, base := start(t, Deps{State: st, Importer: importer, Audit: st.st, Guard: a.Guard("api", auth.Required), Now: func() time.Time { return now }})
	report, err := os.ReadFile(filepath.Join("testdata", "app.govulncheck.json"))
	if err != nil {
		t.Fatal(err)
	}
	bearer := "Bearer " + admin
	count := func() map[string]int {
		n := map[string]int{}
		for _, a := range st.Result().Assessments {
			n[a.Finding.Service]++
		}
		return n
	}
	for _, tt := range []struct {
		query, contentType string
		status             int
		want               map[string]int
	}{
		{"?service=gateway", "application/json", 200, map[string]int{"app": 1, "gateway": 6}},
		{"?service=orders", "application/json; charset=utf-8", 200, map[string]int{"app": 1, "gateway": 6, "orders": 6}},
		{"?service=gateway", "text/plain", 415, map[string]int{"app": 1, "gateway": 6, "orders": 6}},
		{"?service=gateway", "application/x-www-form-urlencoded", 415, map[string]int{"app": 1, "gateway": 6, "orders": 6}},
		{"?service=gateway", "", 415, map[string]int{"app": 1, "gateway": 6, "orders": 6}},
	} {
		status, body := do(t, "POST", base+"/api/v1/findings"+tt.query, bearer, tt.contentType, report)
		if status != tt.status {
			t.Errorf("POST %s as %q = %d %s, want %d", tt.query, tt.contentType, status, body, tt.status)
		}
		if got := count(); !mapsEqual(got, tt.want) {
			t.Errorf("after POST %s as %q: findings per service %v, want %v", tt.query, tt.contentType, got, tt.want)
		}
	}
	// A report without findings for a service clears that service only.
	clean := []byte(`{"config":{"protocol_version":"v1.0.0","scanner_name":"govulncheck","scan_level":"symbol"}}`)
	if status, body := do(t, "POST", base+"/api/v1/findings?service=orders", bearer, "application/json", clean); status != 200 {
		t.Errorf("empty upload = %d %s", status, body)
	}
	if got, want := count(), map[string]int{"app": 1, "gateway": 6}; !mapsEqual(got, want) {
		t.Errorf("after clearing orders: %v, want %v", got, want)
	}

	status, body := do(t, "GET", base+"/api/v1/audit?after=1", bearer, "", nil)
	var got struct{ Entries []store.AuditEntry }
	if err := json.Unmarshal([]byte(body), &got); err != nil || status != 200 {
		t.Fatalf("GET audit = %d %s (%v)", status, body, err)
	}
	var lines []string
	for _, e := range got.Entries {
		_, who, _ := strings.Cut(e.Actor, " ")
		lines = append(lines, e.Action+" "+e.Target+" by "+who+" at "+e.Time.Format(time.RFC3339))
	}
	// Entry 1 is newState's initial findings; 2-4 the admin token's
	// creation and the read and ingest tokens'.
	want := []string{
		"findings.replace services gateway by (admin token) at 2026-11-24T11:00:00Z",
		"findings.replace services orders by (admin token) at 2026-11-24T11:00:00Z",
		"findings.replace services orders by (admin token) at 2026-11-24T11:00:00Z",
	}
	if len(lines) < 3 || strings.Join(lines[len(lines)-3:], "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log:\n%s\nwant it to end with:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if status, body := do(t, "GET", base+"/api/v1/audit?limit=0", bearer, "", nil); status != 400 {
		t.Errorf("GET audit?limit=0 = %d %s, want 400", status, body)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestCORS(t *testing.T) {
	for _, tt := range []struct {
		name, origins, origin, method string
		preflight                     bool
		wantAllow                     string
		wantStatus                    int
	}{
		{"ClosedByDefault", "", "https://grafana.example.com", "GET", false, "", 200},
		{"ClosedPreflight", "", "https://grafana.example.com", "OPTIONS", true, "", 405},
		{"Configured", "https://grafana.example.com", "https://grafana.example.com", "GET", false, "https://grafana.example.com", 200},
		{"ConfiguredPreflight", "https://grafana.example.com", "https://grafana.example.com", "OPTIONS", true, "https://grafana.example.com", 204},
		{"OtherOrigin", "https://grafana.example.com", "https://evil.example", "GET", false, "", 200},
		{"OtherOriginPreflight", "https://grafana.example.com", "https://evil.example", "OPTIONS", true, "", 405},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Endpoint, cfg.MaxUploadBytes = "127.0.0.1:0", 1<<20
			if tt.origins != "" {
				cfg.CORS.AllowedOrigins = []string{tt.origins}
			}
			s := New(cfg, Deps{State: newState(t)})
			if err := s.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer s.Shutdown(t.Context())
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, "http://"+s.Addr().String()+"/api/v1/summary", nil)
			req.Header.Set("Origin", tt.origin)
			if tt.preflight {
				req.Header.Set("Access-Control-Request-Method", "POST")
				req.Header.Set("Access-Control-Request-Headers", "authorization")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.wantAllow || resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, Access-Control-Allow-Origin %q; want %d, %q", resp.StatusCode, got, tt.wantStatus, tt.wantAllow)
			}
			for k := range resp.Header {
				if strings.HasPrefix(k, "Access-Control-Allow-") && tt.wantAllow == "" {
					t.Errorf("header %s on an answer to an unconfigured origin", k)
				}
			}
			if tt.preflight && tt.wantAllow != "" && !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
				t.Errorf("preflight allows headers %q, want Authorization", resp.Header.Get("Access-Control-Allow-Headers"))
			}
		})
	}
	if err := (CORSConfig{AllowedOrigins: []string{"*"}}).Validate(); err == nil {
		t.Error("wildcard origin accepted")
	}
	if err := (CORSConfig{AllowedOrigins: []string{"https://a.example/path"}}).Validate(); err == nil {
		t.Error("origin with a path accepted")
	}
}

// TestProbesWithholdReasons: /healthz and /readyz answer a probe without
// credentials, but why a check fails (here an error naming a source's
// internal address) only a principal with the read role sees; wrong
// credentials are refused.
func TestProbesWithholdReasons(t *testing.T) {
	st := newState(t)
	a, admin, read, ingest := tokens(t, st)
	const secret = `tempo: Get "http://tempo.internal:3200/api/search": dial tcp 10.0.0.7:3200: connection refused`
	checks := func() map[string]error { return map[string]error{"sources": errors.New(secret)} }
	var notReady atomic.Bool
	newDeps := func(mode auth.Mode) Deps {
		return Deps{State: st, Ready: func() bool { return !notReady.Load() }, Checks: checks, Guard: a.Guard("api", mode)}
	}
	_, required := start(t, newDeps(auth.Required))
	_, loopback := start(t, newDeps(auth.Loopback))
	reasons := map[string]string{"sources": secret}
	withheld := map[string]string{"sources": "failing"}
	for _, tt := range []struct {
		name, base, host, authorization string
		wantStatus                      int
		// wantChecks nil: no JSON body to compare.
		wantChecks map[string]string
	}{
		{"Nobody", required, "", "", 200, withheld},
		{"IngestToken", required, "", "Bearer " + ingest, 200, withheld},
		{"ReadToken", required, "", "Bearer " + read, 200, reasons},
		{"AdminToken", required, "", "Bearer " + admin, 200, reasons},
		{"WrongToken", required, "", "Bearer evd_0000000000000000_nope", 401, nil},
		{"LoopbackAnonymous", loopback, "", "", 200, reasons},
		{"LoopbackForeignHost", loopback, "evil.example", "", 200, withheld},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), "GET", tt.base+"/readyz", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("GET /readyz = %d %s, want %d", resp.StatusCode, b, tt.wantStatus)
			}
			if tt.wantChecks == nil {
				return
			}
			var got struct {
				Ready  bool              `json:"ready"`
				Checks map[string]string `json:"checks"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if !got.Ready || !cmp.Equal(got.Checks, tt.wantChecks) {
				t.Errorf("GET /readyz = %s, want ready with checks %v", b, tt.wantChecks)
			}
		})
	}
	if status, body := do(t, "GET", required+"/healthz", "", "", nil); status != 200 || body != "ok\n" {
		t.Errorf("GET /healthz without a token = %d %q, want 200 ok", status, body)
	}
	notReady.Store(true)
	if status, body := do(t, "GET", required+"/readyz", "", "", nil); status != http.StatusServiceUnavailable || strings.Contains(body, "tempo") {
		t.Errorf("GET /readyz while not ready, without a token = %d %q, want 503 without the checks", status, body)
	}
}

// tenantsOf is a Tenants over one state and alert feed per tenant.
type tenantsOf map[string]struct {
	st *state
	al *alerts
}

func (ts tenantsOf) Tenant(_ context.Context, id string) (State, Alerts, error) {
	t, ok := ts[id]
	if !ok {
		return nil, nil, fmt.Errorf("no tenant %q", id)
	}
	return t.st, t.al, nil
}

func (ts tenantsOf) Lookup(ctx context.Context, id string) (State, Alerts, error) {
	return ts.Tenant(ctx, id)
}

// recordingTenants is a Tenants over one state that records, by
// request, whether it was asked to create the tenant (Tenant) or to
// look it up (Lookup).
type recordingTenants struct {
	st    *state
	al    *alerts
	mu    sync.Mutex
	calls []string
}

func (rt *recordingTenants) record(call string) (State, Alerts, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.calls = append(rt.calls, call)
	return rt.st, rt.al, nil
}

func (rt *recordingTenants) Tenant(context.Context, string) (State, Alerts, error) {
	return rt.record("Tenant")
}

func (rt *recordingTenants) Lookup(context.Context, string) (State, Alerts, error) {
	return rt.record("Lookup")
}

// TestReadsLookUpTenants: every route of the API that takes a tenant
// looks it up, which creates none, except those that change its state
// (POST), which create it: a reader cannot use up max_tenants.
func TestReadsLookUpTenants(t *testing.T) {
	st := newState(t)
	tenants := &recordingTenants{st: st, al: &alerts{st: st.st}}
	s, base := start(t, Deps{Tenants: tenants, Importer: importer, Audit: st.st, Patches: patcher, Gatherer: prometheus.NewRegistry()})
	for _, rt := range s.routes() {
		if rt.need == 0 || rt.probe || strings.HasSuffix(rt.pattern, "/stream") {
			continue // no tenant; the stream never ends
		}
		method, path, _ := strings.Cut(rt.pattern, " ")
		path = strings.NewReplacer("{name}", "app", "{id}", "x", "{service}", "app").Replace(path)
		want := "Lookup"
		if method != http.MethodGet {
			want = "Tenant"
		}
		t.Run(rt.pattern, func(t *testing.T) {
			tenants.mu.Lock()
			tenants.calls = nil
			tenants.mu.Unlock()
			req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(auth.TenantHeader, "probe-a")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			tenants.mu.Lock()
			defer tenants.mu.Unlock()
			if !cmp.Equal(tenants.calls, []string{want}) {
				t.Errorf("%s asked the tenants %v, want [%s]", rt.pattern, tenants.calls, want)
			}
		})
	}
}

// TestTenantParam follows the link of an alert of tenant team-a, which
// names its tenant as the tenant query parameter (a link carries no
// X-Scope-OrgID): the guard admits the parameter exactly as it admits
// the header, so a token bound to another tenant cannot read team-a's
// alert through it.
func TestTenantParam(t *testing.T) {
	def, teamA := newState(t), newState(t)
	a, _, read, _ := tokens(t, def)
	bound := func(tenant string) string {
		secret, tok, err := auth.NewToken("bound to "+tenant, auth.RoleRead, t0, 0)
		if err != nil {
			t.Fatal(err)
		}
		tok.Tenant = tenant
		if err := def.st.CreateToken(t.Context(), tok, "test"); err != nil {
			t.Fatal(err)
		}
		return secret
	}
	boundA, boundB := bound("team-a"), bound("team-b")
	if err := a.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	feedA := &alerts{st: teamA.st}
	feedA.fire(t, store.Alert{ID: "a1", Kind: "exploit_payload", Severity: "high", Service: "app", Summary: "s", Details: []byte(`{}`), Time: t0, ReceivedAt: t0})
	ts := tenantsOf{"default": {def, &alerts{st: def.st}}, "team-a": {teamA, feedA}, "team-b": {newState(t), &alerts{st: def.st}}}
	_, base := start(t, Deps{Tenants: ts, Gatherer: prometheus.NewRegistry(), Guard: a.Guard("api", auth.Required)})

	tests := []struct {
		name, path, token, header string
		want                      int
	}{
		{"operator, tenant named", "/api/v1/alerts/a1?tenant=team-a", read, "", 200},
		{"operator, no tenant", "/api/v1/alerts/a1", read, "", 404},
		{"operator, empty tenant", "/api/v1/alerts/a1?tenant=", read, "", 404},
		{"bound to it", "/api/v1/alerts/a1?tenant=team-a", boundA, "", 200},
		{"bound to it, none named", "/api/v1/alerts/a1", boundA, "", 200},
		{"bound to another", "/api/v1/alerts/a1?tenant=team-a", boundB, "", 403},
		{"bound to another, as the header", "/api/v1/alerts/a1", boundB, "team-a", 403},
		{"header agrees", "/api/v1/alerts/a1?tenant=team-a", read, "team-a", 200},
		{"header contradicts", "/api/v1/alerts/a1?tenant=team-a", read, "team-b", 400},
		{"twice", "/api/v1/alerts/a1?tenant=team-a&tenant=team-b", read, "", 400},
		{"not a tenant ID", "/api/v1/alerts/a1?tenant=..", read, "", 400},
		{"not a tenant ID, as the header", "/api/v1/alerts/a1", read, "a|b", 400},
		{"beside a route's parameters", "/api/v1/alerts?limit=1&tenant=team-a", read, "", 200},
		{"without a token", "/api/v1/alerts/a1?tenant=team-a", "", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), "GET", base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			if tt.header != "" {
				req.Header.Set(auth.TenantHeader, tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want {
				t.Fatalf("GET %s = %d %s, want %d", tt.path, resp.StatusCode, body, tt.want)
			}
			if tt.want == 200 && !strings.Contains(string(body), `"a1"`) {
				t.Errorf("GET %s = %s, want team-a's alert a1", tt.path, body)
			}
		})
	}
}
