package cli

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corazawaf/coraza/v3"
	txhttp "github.com/corazawaf/coraza/v3/http"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/evidentsec/evident/internal/waf"
)

// TestWAFShop is the end-to-end test of issue 5's acceptance: the patch
// evident generates for the example shop, enforced by the proxy in front
// of the real gateway, lets the shop's normal load through with zero
// blocks and denies the exploits of the patch's class, naming the
// vulnerability in the audit log. It needs the Go toolchain and the
// shop's modules, and skips when the shop cannot be built.
func TestWAFShop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example shop behind the waf proxy")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := t.Context()

	rules, dir, set := shopPatches(t)
	if len(set.Patches) != 1 {
		t.Fatalf("%d patches, want 1 (gateway, GO-2026-5970): %+v", len(set.Patches), set.Patches)
	}
	patch := set.Patches[0]
	if patch.Service != "gateway" || patch.Vulnerability != "GO-2026-5970" || patch.Class != "oversized_input" {
		t.Fatalf("patch %s %s %s, want gateway GO-2026-5970 oversized_input", patch.Service, patch.Vulnerability, patch.Class)
	}
	if v := patch.Validation; v == nil || v.ExploitsTotal == 0 || v.ExploitsBlocked != v.ExploitsTotal {
		t.Fatalf("patch validation %+v: want every exploit blocked in the embedded engine", v)
	}

	work := t.TempDir()
	bin := shopBinaries(t)
	procs := &procGroup{logDir: work}
	defer procs.stop()
	gateway := startShopServices(t, procs, bin, work)

	auditPath := filepath.Join(work, "audit.jsonl")
	auditFile, err := os.Create(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	defer auditFile.Close()
	reg := prometheus.NewRegistry()
	cfg := waf.DefaultProxyConfig()
	cfg.Upstream, cfg.Listen, cfg.Directives, cfg.AuditLog = "http://"+gateway, "127.0.0.1:0", rules, auditFile
	proxy, err := waf.NewProxy(cfg, slog.New(slog.DiscardHandler), reg, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := proxy.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := proxy.Shutdown(sctx); err != nil {
			t.Error(err)
		}
		// The proxy forwards with http.DefaultTransport: its idle
		// connections to the gateway would outlive the test.
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	}()
	base := "http://" + proxy.Addr()
	client := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()

	// Stock Coraza's middleware in front of the same gateway, loading the
	// exported evident-engine.conf and gateway.conf alone: a deployment
	// without evident's proxy.
	stockWAF, err := coraza.NewWAF(coraza.NewWAFConfig().
		WithDirectivesFromFile(filepath.Join(dir, waf.EngineFile)).
		WithDirectivesFromFile(filepath.Join(dir, "gateway.conf")))
	if err != nil {
		t.Fatalf("stock Coraza loading the exported files: %v", err)
	}
	stock := httptest.NewServer(txhttp.WrapHandler(stockWAF, httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: gateway})))
	defer stock.Close()

	// (1) The shop's own load driver, pointed at the proxy: it fails on
	// any response of 400 or more, so every request got the gateway's
	// own answer.
	const n = 240
	if err := procs.run(ctx, bin, "load", "-gateway", base, "-n", "240", "-c", "4", "-rate", "200"); err != nil {
		log, _ := os.ReadFile(filepath.Join(work, "load.log"))
		t.Fatalf("normal load through the proxy: %v\n%s", err, log)
	}
	if got := metricSum(t, reg, "evident_waf_blocked_total", ""); got != 0 {
		t.Fatalf("normal load: %v requests blocked, want 0", got)
	}
	if got := metricSum(t, reg, "evident_waf_requests_total", "passed"); got < n {
		t.Errorf("normal load: %v requests passed, want at least %d", got, n)
	}
	// A legitimate search gets the same answer through the proxy and
	// stock Coraza as from the gateway, and so does one by a method the
	// gateway's "GET /search" does not take (405): the patch's scope
	// takes every method to /search in, its detections let it through.
	const search = "/search?q=creme+stoneware"
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		direct, code := send(t, client, method, "http://"+gateway+search, "")
		for _, front := range []string{base, stock.URL} {
			got, gcode := send(t, client, method, front+search, "")
			if gcode != code || got != direct {
				t.Errorf("%s %s through %s: answered %d %q, gateway %d %q", method, search, front, gcode, got, code, direct)
			}
		}
	}

	// (2) The exploit variants of GO-2026-5970's exploit knowledge, which
	// the patch was validated with (the report truncates long requests,
	// so they are rebuilt from the variants, on the endpoint's parameter
	// q), and a bare invalid UTF-8 query, are denied and audited.
	if patch.Knowledge == nil {
		t.Fatalf("the patch was built from the class template: %s", patch.Detections)
	}
	targets := []string{"/search?q=%C0%AF%FF%FE"}
	for _, s := range patch.Knowledge.Variants {
		if s.In != waf.InQuery {
			t.Fatalf("exploit %q: sent in %s, the test sends only query samples", s.Name, s.In)
		}
		param, value := s.Param, s.Payload
		if param == "" {
			param = "q"
		}
		if !s.Encoded {
			value = url.QueryEscape(value)
		}
		targets = append(targets, "/search?"+url.QueryEscape(param)+"="+value)
	}
	if len(targets) != 1+patch.Validation.ExploitsTotal {
		t.Fatalf("%d exploit samples, the validation sent %d", len(targets)-1, patch.Validation.ExploitsTotal)
	}
	// The gateway's "GET /search" serves HEAD too, so each is also sent
	// as HEAD: the scope once matched GET alone, and HEAD reached it. And
	// as POST: the scope then matched GET and HEAD alone, and a route
	// registered for every method ("/search") would serve POST with the
	// same handler. And as POST with the query as a form body, which
	// FormValue reads as it reads the query. Through the proxy and
	// through stock Coraza.
	methods := []struct {
		method string
		form   bool // the query sent as the form body
	}{{http.MethodGet, false}, {http.MethodHead, false}, {http.MethodPost, false}, {http.MethodPost, true}}
	for _, target := range targets {
		path, query, _ := strings.Cut(target, "?")
		for _, m := range methods {
			for _, front := range []string{base, stock.URL} {
				u, form := front+target, ""
				if m.form {
					u, form = front+path, query
				}
				if body, code := send(t, client, m.method, u, form); code != http.StatusForbidden {
					t.Errorf("exploit %s %s (form body %v) through %s: status %d (%q), want 403", m.method, target, m.form, front, code, body)
				}
			}
		}
	}
	if got := metricSum(t, reg, "evident_waf_blocked_total", ""); got != float64(len(methods)*len(targets)) {
		t.Errorf("blocked requests %v, want %d", got, len(methods)*len(targets))
	}
	audit, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	blocked := 0
	for line := range strings.Lines(string(audit)) {
		if strings.Contains(line, `"action":"blocked"`) && strings.Contains(line, `"vulnerability":"GO-2026-5970"`) {
			blocked++
		}
	}
	if blocked != len(methods)*len(targets) {
		t.Errorf("audit log has %d blocks naming GO-2026-5970, want %d:\n%s", blocked, len(methods)*len(targets), audit)
	}
}

// shopPatches generates, validates and exports the patches of the
// recorded example the way evident waf generate does, and returns the
// rules to enforce, the export directory and the set.
func shopPatches(t *testing.T) (rules, dir string, set *waf.PatchSet) {
	t.Helper()
	rec := filepath.Join(shop, "recorded")
	return examplePatches(t, analyzeShop(t, "json"), filepath.Join(rec, "osv"), filepath.Join(rec, "traces.jsonl"))
}

// examplePatches generates, validates and exports the patches of an
// analyze report with the example's records and traces, the way evident
// waf generate does, and returns the rules to enforce, the export
// directory and the set.
func examplePatches(t *testing.T, report []byte, osvDir, traces string) (rules, dir string, set *waf.PatchSet) {
	t.Helper()
	ctx := t.Context()
	as, problems, err := parseReportAssessments(report, "analyze.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("report problems: %v", problems)
	}
	db, dbProblems, err := openVulnDB(ctx, &globals{dataDir: t.TempDir()}, []string{osvDir}, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(dbProblems) > 0 {
		t.Fatalf("vulnerability records: %v", dbProblems)
	}
	cfg := waf.DefaultConfig()
	traffic := waf.NewTraffic(cfg.ReplayPerEndpoint)
	warn := func(err error) { t.Errorf("traces: %v", err) }
	if err := loadTelemetry(ctx, "--traces", []string{traces}, trafficHandler{traffic}, warn); err != nil {
		t.Fatal(err)
	}
	corpus, err := waf.LoadCorpus(nil)
	if err != nil {
		t.Fatal(err)
	}
	if set, err = waf.Generate(cfg, as, db, traffic); err != nil {
		t.Fatal(err)
	}
	if err := waf.Validate(ctx, set, traffic, corpus); err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if err := waf.Export(dir, set); err != nil {
		t.Fatal(err)
	}
	if rules, err = waf.LoadRules(dir, nil); err != nil {
		t.Fatal(err)
	}
	return rules, dir, set
}

// startShopServices starts the payment sandbox, catalog, orders and
// gateway without telemetry, as startShop does, and returns the
// gateway's address once it listens.
func startShopServices(t *testing.T, procs *procGroup, bin, work string) string {
	t.Helper()
	gw, err := startShopListeners(t.Context(), procs, bin, work, nil, func(name, taken string) {
		t.Logf("%s: %s was taken before it listened on it; another port", name, taken)
	})
	if err != nil {
		t.Error(err)
		logTails(t, work)
		t.FailNow()
	}
	return gw
}

// send sends a request, with form as its urlencoded form body when not
// "", and returns the response's body and status.
func send(t *testing.T, client *http.Client, method, target, form string) (string, int) {
	t.Helper()
	var in io.Reader
	if form != "" {
		in = strings.NewReader(form)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, target, in)
	if err != nil {
		t.Fatal(err)
	}
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body), resp.StatusCode
}

// metricSum adds up the counter series of a metric in reg, only those
// whose outcome label is outcome when it is not empty.
func metricSum(t *testing.T, reg *prometheus.Registry, name, outcome string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if outcome != "" && l.GetName() == "outcome" && l.GetValue() != outcome {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
