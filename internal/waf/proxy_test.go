package waf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/logtest"
	"github.com/evidentsec/evident/internal/redact"
	"github.com/evidentsec/evident/internal/telemetry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// shopRules generates, validates and exports the shop's patch and
// returns the export directory.
func shopRules(t testing.TB) (dir string, set *PatchSet) {
	t.Helper()
	return exportedRules(t, shopTraffic(), executedExposed("gateway", "GO-2026-5970", "golang.org/x/text", "GET /search"))
}

// exportedRules generates the patches of assessments against traffic,
// validates them and exports them into a new directory.
func exportedRules(t testing.TB, traffic *Traffic, assessments ...assess.Assessment) (dir string, set *PatchSet) {
	t.Helper()
	set, err := Generate(DefaultConfig(), assessments, loadRecords(t), traffic)
	if err != nil {
		t.Fatal(err)
	}
	corpus, err := LoadCorpus(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(context.Background(), set, traffic, corpus); err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if err := Export(dir, set); err != nil {
		t.Fatal(err)
	}
	return dir, set
}

func startProxy(t testing.TB, dir, upstream string, audit io.Writer) (*Proxy, *prometheus.Registry) {
	t.Helper()
	rules, err := LoadRules(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	cfg := DefaultProxyConfig()
	cfg.Upstream, cfg.Listen, cfg.Directives, cfg.AuditLog = upstream, "127.0.0.1:0", rules, audit
	p, err := NewProxy(cfg, slog.New(slog.DiscardHandler), reg, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return p, reg
}

func TestProxyEndToEnd(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream "+r.URL.RequestURI())
	}))
	defer upstream.Close()
	dir, _ := shopRules(t)
	audit := &logtest.Buffer{}
	p, reg := startProxy(t, dir, upstream.URL, audit)
	// Every outcome is a series at 0 before the first request.
	if n, err := testutil.GatherAndCount(reg, "evident_waf_requests_total"); err != nil || n != 4 {
		t.Errorf("requests_total before any request: %d series, %v; want passed, blocked, error and redirected", n, err)
	}
	base := "http://" + p.Addr()
	client := &http.Client{}
	defer client.CloseIdleConnections()

	send := func(r Request) int {
		t.Helper()
		req, err := http.NewRequest(r.Method, base+r.Target, strings.NewReader(r.Body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range r.Headers {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	legit := shopTraffic().Requests("gateway")
	for _, r := range legit {
		if got := send(r); got != http.StatusOK {
			t.Errorf("%s: status %d, want 200", r, got)
		}
	}
	if got := testutil.ToFloat64(p.requests.WithLabelValues("blocked")); got != 0 {
		t.Fatalf("normal load: %v requests blocked, want 0", got)
	}
	if got := send(Request{Method: "GET", Target: "/search?q=%ff%fe"}); got != http.StatusForbidden {
		t.Errorf("exploit: status %d, want 403", got)
	}
	if got := send(Request{Method: "GET", Target: "/products/%ff%fe"}); got != http.StatusOK {
		t.Errorf("out of scope: status %d, want 200", got)
	}

	if got, want := testutil.ToFloat64(p.requests.WithLabelValues("passed")), float64(len(legit)+1); got != want {
		t.Errorf("passed requests %v, want %v", got, want)
	}
	if got := testutil.ToFloat64(p.requests.WithLabelValues("blocked")); got != 1 {
		t.Errorf("blocked requests %v, want 1", got)
	}
	n, err := testutil.GatherAndCount(reg, "evident_waf_blocked_total")
	if err != nil || n != 1 {
		t.Errorf("blocked_total series: %d, %v; want 1", n, err)
	}
	if !strings.Contains(audit.String(), `"action":"blocked"`) || !strings.Contains(audit.String(), `"vulnerability":"GO-2026-5970"`) {
		t.Errorf("audit log lacks the block:\n%s", audit.String())
	}
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "evident_waf_request_duration_seconds_bucket") {
		t.Errorf("/metrics lacks the latency histogram")
	}
}

func TestProxyLifecycle(t *testing.T) {
	dir, _ := shopRules(t)
	rules, err := LoadRules(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultProxyConfig()
	cfg.Upstream, cfg.Listen, cfg.Directives = "http://127.0.0.1:1", "127.0.0.1:0", rules
	reg := prometheus.NewRegistry()
	p, err := NewProxy(cfg, slog.New(slog.DiscardHandler), reg, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Shutdown(ctx); err != nil {
		t.Errorf("shutdown without start: %v", err)
	}
	for i := range 2 {
		if err := p.Start(ctx); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if err := p.Start(ctx); err != nil {
			t.Fatalf("start twice %d: %v", i, err)
		}
		if p.Addr() == "" {
			t.Fatalf("no address after start %d", i)
		}
		for range 2 {
			if err := p.Shutdown(ctx); err != nil {
				t.Fatalf("shutdown %d: %v", i, err)
			}
		}
	}
}

// TestProxyUpstreamErrors: an upstream that does not answer in time gets
// 504, one that refuses 502, and each such request is counted once, as
// an error.
func TestProxyUpstreamErrors(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL
	refused.Close()

	dir, _ := shopRules(t)
	rules, err := LoadRules(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, upstream string
		want           int
	}{
		{"timeout", slow.URL, http.StatusGatewayTimeout},
		{"refused", refusedURL, http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			cfg := DefaultProxyConfig()
			cfg.Upstream, cfg.Listen, cfg.Directives, cfg.UpstreamTimeout = tt.upstream, "127.0.0.1:0", rules, 200*time.Millisecond
			p, err := NewProxy(cfg, slog.New(slog.DiscardHandler), reg, reg)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(p.handler)
			defer srv.Close()
			resp, err := srv.Client().Get(srv.URL + "/search?q=tea")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
			got := map[string]float64{}
			for _, o := range []string{"passed", "blocked", "error"} {
				got[o] = testutil.ToFloat64(p.requests.WithLabelValues(o))
			}
			if diff := cmp.Diff(map[string]float64{"passed": 0, "blocked": 0, "error": 1}, got); diff != "" {
				t.Errorf("requests by outcome (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProxyBodyLimit: an endpoint whose traffic records body sizes gets a
// limit learned from them, enforced on the declared length and on a
// chunked body once read, while other routes keep the engine's limit.
func TestProxyBodyLimit(t *testing.T) {
	var spans []telemetry.Span
	for i := range 20 {
		sp := serverSpan("gateway", "POST", "/orders", "/orders", "", map[string]string{"content-type": "application/yaml"})
		sp.Attrs.RequestBodySize = int64(300 + 100*(i%6))
		spans = append(spans, sp, serverSpan("gateway", "POST", "/upload", "/upload", "", nil))
	}
	traffic := trafficFromSpans(spans, 0)
	set, err := Generate(DefaultConfig(), []assess.Assessment{executedExposed("gateway", "GO-2020-0036", "gopkg.in/yaml.v2", "POST /orders", "POST /upload")}, loadRecords(t), traffic)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range set.Patches[0].Rules {
		if strings.Contains(r.Name, "request body") {
			names = append(names, r.Endpoint+": "+r.Name)
		}
	}
	want := []string{
		"POST /orders: request body longer than 4096 (largest seen 800): Content-Length",
		"POST /orders: request body longer than 4096 (largest seen 800)",
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("body limit rules (-want +got):\n%s", diff)
	}
	corpus, err := LoadCorpus(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(context.Background(), set, traffic, corpus); err != nil {
		t.Fatal(err)
	}
	v := set.Patches[0].Validation
	var proxyOnly []string
	for _, e := range v.Exploits {
		if e.ProxyOnly {
			proxyOnly = append(proxyOnly, e.Request[:len("POST /orders")])
		}
	}
	// The exploit knowledge of GO-2020-0036 adds a SecLang rule for alias
	// values in block mappings, so the export alone blocks its variants
	// too; the expansion factor stays the proxy's exact measure.
	if v.ExploitsBlocked != v.ExploitsTotal || v.ExploitsBlockedExported != v.ExploitsTotal || len(proxyOnly) != 0 {
		t.Errorf("blocked %d, by the export alone %d, of %d; proxy only %q; want all by both",
			v.ExploitsBlocked, v.ExploitsBlockedExported, v.ExploitsTotal, proxyOnly)
	}
	dir := t.TempDir()
	if err := Export(dir, set); err != nil {
		t.Fatal(err)
	}
	// The structural rule is exported apart: the service file loads in
	// stock Coraza and ModSecurity, and says what only the proxy enforces.
	conf, err := os.ReadFile(filepath.Join(dir, "gateway.conf"))
	if err != nil {
		t.Fatal(err)
	}
	proxyConf, err := os.ReadFile(filepath.Join(dir, ProxyDir, "gateway.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(conf), "@"+opYAMLExpansion) || !strings.Contains(string(conf), "# enforced only by evident waf proxy") {
		t.Errorf("gateway.conf holds a proxy-only operator or does not list the proxy-only rules:\n%s", conf)
	}
	if !strings.Contains(string(proxyConf), "@"+opYAMLExpansion+" 20") {
		t.Errorf("proxy/gateway.conf lacks the expansion rule:\n%s", proxyConf)
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer upstream.Close()
	p, _ := startProxy(t, dir, upstream.URL, nil)
	client := &http.Client{}
	defer client.CloseIdleConnections()
	send := func(path string, n int, chunked bool) int {
		t.Helper()
		body := "items:\n" + strings.Repeat("  - sku: tea\n", n/12)
		if n == 0 {
			body = yamlBlockMappingBomb(8)
		}
		var r io.Reader = strings.NewReader(body)
		if chunked {
			// Hide the length so the client sends it chunked.
			r = io.MultiReader(r)
		}
		req, err := http.NewRequest("POST", "http://"+p.Addr()+path, r)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/yaml")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	tests := []struct {
		path    string
		size    int
		chunked bool
		want    int
	}{
		{"/orders", 1000, false, http.StatusOK},
		{"/orders", 1000, true, http.StatusOK},
		{"/orders", 6000, false, http.StatusForbidden},
		{"/orders", 6000, true, http.StatusForbidden},
		{"/upload", 6000, false, http.StatusOK},
		{"/orders", 0, false, http.StatusForbidden}, // the alias bomb of issue 14
		{"/upload", 0, true, http.StatusForbidden},
	}
	for _, tt := range tests {
		if got := send(tt.path, tt.size, tt.chunked); got != tt.want {
			t.Errorf("POST %s of %d bytes (chunked %v): status %d, want %d", tt.path, tt.size, tt.chunked, got, tt.want)
		}
	}
}

// TestFileNameBounded: a service name of any length gives file names the
// file system takes (FuzzExportLoad: a name of 300 bytes made Export
// fail), and two long names that differ only past the cut stay apart.
func TestFileNameBounded(t *testing.T) {
	long := strings.Repeat("s", 300)
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{"shop/gateway v2", "shop/gateway v2", true},
		{long + "a", long + "a", true},
		{long + "a", long + "b", false},
	} {
		a, b := fileName(tt.a), fileName(tt.b)
		if len(a) > maxFileName || (a == b) != tt.same {
			t.Errorf("fileName(%.20q...) = %q, fileName(%.20q...) = %q: want at most %d bytes, equal %v", tt.a, a, tt.b, b, maxFileName, tt.same)
		}
	}
	dir := t.TempDir()
	set := &PatchSet{IDRange: [2]int{9500000, 9599999}, Patches: []Patch{{Service: long, IDs: [2]int{9500100, 9500109}}}}
	if err := Export(dir, set); err != nil {
		t.Fatalf("Export of a service named with %d bytes: %v", len(long), err)
	}
	if _, err := LoadRules(dir, []string{long}); err != nil {
		t.Fatal(err)
	}
}

// TestProxyCountsRedirects: the proxy answers a path that is not clean
// with a redirect to its clean form; each such request is counted too, as
// redirected. They were once missing from evident_waf_requests_total (12
// requests, a count of 10).
func TestProxyCountsRedirects(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer upstream.Close()
	dir, _ := shopRules(t)
	p, _ := startProxy(t, dir, upstream.URL, nil)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	tests := []struct {
		target string
		want   int
	}{
		{"/search?q=tea", http.StatusOK},
		{"/search?q=%ff%fe", http.StatusForbidden},
		{"//search?q=tea", http.StatusTemporaryRedirect},
		{"/a/../search?q=%ff%fe", http.StatusTemporaryRedirect},
		{"/products/1", http.StatusOK},
	}
	for _, tt := range tests {
		resp, err := client.Get("http://" + p.Addr() + tt.target)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET %s: status %d, want %d", tt.target, resp.StatusCode, tt.want)
		}
	}
	// Scrapes of the metrics are not requests to the upstream.
	resp, err := client.Get("http://" + p.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := map[string]float64{}
	for _, o := range []string{"passed", "blocked", "error", "redirected"} {
		got[o] = testutil.ToFloat64(p.requests.WithLabelValues(o))
	}
	if diff := cmp.Diff(map[string]float64{"passed": 2, "blocked": 1, "error": 0, "redirected": 2}, got); diff != "" {
		t.Errorf("requests by outcome (-want +got):\n%s", diff)
	}
}

// TestLoadRulesErrors: a rule file that does not compile is named with the
// line and the rule id, which Coraza's error lacks; a service without
// patches is said so, with the services that have them.
func TestLoadRulesErrors(t *testing.T) {
	dir, _ := shopRules(t)
	if _, err := LoadRules(dir, []string{"orders"}); !errors.Is(err, ErrNoPatches) ||
		!strings.Contains(err.Error(), "no patches for service orders: the services with patches are gateway") {
		t.Errorf("LoadRules(orders) = %v, want ErrNoPatches naming orders and gateway", err)
	}
	if _, err := LoadRules(dir, []string{"gateway", "orders", "catalog"}); err == nil || !strings.Contains(err.Error(), "no patches for services orders, catalog:") {
		t.Errorf("LoadRules(gateway, orders, catalog) = %v, want orders and catalog named", err)
	}

	name := filepath.Join(dir, "gateway.conf")
	conf, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	// Break the regular expression of the first traffic rule.
	lines := strings.Split(string(conf), "\n")
	line := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "id:4936830,") })
	broken := line + slices.IndexFunc(lines[max(line, 0):], func(l string) bool { return strings.Contains(l, `"!@rx ^(?:q)$"`) })
	if line < 1 || broken <= line {
		t.Fatalf("rule 4936830 not where the test expects it:\n%s", conf)
	}
	lines[broken] = strings.Replace(lines[broken], `^(?:q)$`, `^(?:q$`, 1)
	if err := os.WriteFile(name, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadRules(dir, nil)
	// The broken line is a chained SecRule after the line with the id
	// (lines count from 1).
	want := fmt.Sprintf("%s:%d (rule 4936830): failed to compile the directive \"secrule\": error parsing regexp: missing closing )", name, broken+1)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("LoadRules with a broken rule = %v, want it to contain %q", err, want)
	}
	// Rules given as text: the line within it.
	_, err = newWAF("SecRuleEngine On\n\n# a comment\nSecRule ARGS \"@rx (\" \\\n    \"id:7,phase:1,deny\"\n")
	if err == nil || !strings.Contains(err.Error(), "compile rules: line 4 of the rules (rule 7): failed to compile") {
		t.Errorf("newWAF with a broken rule = %v, want line 4 and rule 7 named", err)
	}
}

// TestProxyConfigMetricsPath: a metrics path the mux cannot take alone
// is a config error; http.ServeMux panicked on some ("metrics", "/") and
// read others as a pattern with a method or a wildcard.
func TestProxyConfigMetricsPath(t *testing.T) {
	tests := []struct {
		name, path string
		ok         bool
	}{
		{"default", "/metrics", true},
		{"none", "", true},
		{"nested", "/-/waf/metrics", true},
		{"relative", "metrics", false},
		{"root", "/", false},
		{"trailing slash", "/metrics/", false},
		{"double slash", "//metrics", false},
		{"dot dot", "/a/../metrics", false},
		{"space", "/m etrics", false},
		{"method", "GET /metrics", false},
		{"wildcard", "/a/{x}", false},
		{"query", "/metrics?x=1", false},
		{"control", "/metrics\t", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultProxyConfig()
			cfg.Upstream, cfg.Listen, cfg.MetricsPath = "http://127.0.0.1:1", "127.0.0.1:0", tt.path
			err := cfg.Validate()
			if got := err == nil; got != tt.ok {
				t.Fatalf("Validate() with metrics path %q = %v, want ok %v", tt.path, err, tt.ok)
			}
			if err != nil && (!errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), fmt.Sprintf("metrics path %q", tt.path))) {
				t.Errorf("Validate() = %v, want ErrConfig naming the path", err)
			}
			if err != nil {
				return
			}
			reg := prometheus.NewRegistry()
			cfg.Directives = "SecRuleEngine On\n"
			if _, err := NewProxy(cfg, slog.New(slog.DiscardHandler), reg, reg); err != nil {
				t.Errorf("NewProxy: %v", err)
			}
		})
	}
}

// TestProxyAuditsEveryBlock: a request the engine denies without an
// evident rule (a body over SecRequestBodyLimit, a rule of the directory
// that is no patch's) is audited like one a patch denies; it was counted
// as blocked with rule_id "0" and left out of the audit log.
func TestProxyAuditsEveryBlock(t *testing.T) {
	dir, _ := shopRules(t)
	engine := filepath.Join(dir, EngineFile)
	data, err := os.ReadFile(engine)
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), "SecRequestBodyLimit 13107200\nSecRequestBodyInMemoryLimit 131072", "SecRequestBodyInMemoryLimit 1024\nSecRequestBodyLimit 1024", 1))
	data = append(data, "SecRule REQUEST_HEADERS:X-Deny \"@streq 1\" \"id:1000,phase:1,deny,status:403,nolog\"\n"...)
	if err := os.WriteFile(engine, data, 0o644); err != nil {
		t.Fatal(err)
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer upstream.Close()
	audit := &logtest.Buffer{}
	p, _ := startProxy(t, dir, upstream.URL, audit)
	tests := []struct {
		name, method, target, body string
		header                     http.Header
		wantStatus                 int
		want                       string // in the audit line; "" for none
	}{
		{name: "legitimate", method: "POST", target: "/orders", body: "{}", wantStatus: http.StatusOK},
		{name: "patch", method: "GET", target: "/search?q=%C0%AF", wantStatus: http.StatusForbidden,
			want: `"action":"blocked","rule_id":4936810,"vulnerability":"GO-2026-5970"`},
		{name: "body limit", method: "POST", target: "/orders", body: strings.Repeat("a", 2048), wantStatus: http.StatusRequestEntityTooLarge,
			want: `"action":"blocked","rule_id":0,"vulnerability":"","service":"","msg":"request body larger than the engine limit (SecRequestBodyLimit)","method":"POST","uri":"/orders","client":"127.0.0.1"`},
		{name: "other rule", method: "GET", target: "/products", header: http.Header{"X-Deny": {"1"}}, wantStatus: http.StatusForbidden,
			want: `"action":"blocked","rule_id":1000,"vulnerability":"","service":"","msg":"denied by rule 1000, which is not an evident patch's"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := strings.Count(audit.String(), "\n")
			req, err := http.NewRequest(tt.method, "http://"+p.Addr()+tt.target, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			maps.Copy(req.Header, tt.header)
			req.Header.Set("Content-Type", "text/plain")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			lines := strings.Split(strings.TrimSuffix(audit.String(), "\n"), "\n")
			var got string
			if len(lines) > before && lines[len(lines)-1] != "" {
				got = lines[len(lines)-1]
			}
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("audit line %q, want one holding %q", got, tt.want)
			}
		})
	}
	if got := testutil.ToFloat64(p.requests.WithLabelValues("blocked")); got != 3 {
		t.Errorf("blocked requests %v, want 3", got)
	}
}

// TestLoadRulesServices: each way of naming the services loads each
// patch once; a service named twice failed with "duplicated rule id".
func TestLoadRulesServices(t *testing.T) {
	dir, _ := shopRules(t)
	for _, services := range [][]string{nil, {"gateway"}, {"gateway", "gateway"}} {
		t.Run(strings.Join(services, ","), func(t *testing.T) {
			rules, err := LoadRules(dir, services)
			if err != nil {
				t.Fatalf("LoadRules(%q) = %v", services, err)
			}
			if n := strings.Count(rules, "id:4936800,"); n != 1 {
				t.Errorf("LoadRules(%q) holds the scope rule %d times, want once", services, n)
			}
		})
	}
}

// TestProxyAuditRedacted: the audit line of a blocked request keeps the
// rule, the vulnerability and the matched variable, but none of the
// request's secrets; the file is created 0640. The URI was written as
// received, to a file created 0644.
func TestProxyAuditRedacted(t *testing.T) {
	p, _, _, path := auditedProxy(t)
	req, err := http.NewRequest("GET", "http://"+p.Addr()+"/search?q=%C0%AF&access_token=s3cr3t&contact=alice%40example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(data)
	for _, secret := range []string{"s3cr3t", "alice", "example.com", "eyJhbGciOiJIUzI1NiJ9", "Bearer"} {
		if strings.Contains(got, secret) {
			t.Errorf("audit log holds %q:\n%s", secret, got)
		}
	}
	for _, want := range []string{
		// The parameter allow-list denies it first: the shop's traffic
		// has only q.
		`"action":"blocked","rule_id":4936830,"vulnerability":"GO-2026-5970"`,
		`"uri":"/search?q=%C0%AF\u0026access_token=REDACTED\u0026contact=REDACTED"`,
		// Either name outside the allow-list: Coraza's order varies.
		`"data":"ARGS_GET_NAMES:`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("audit log lacks %s:\n%s", want, got)
		}
	}
	checkAuditMode(t, path)
}

// auditedProxy starts a proxy enforcing the shop's rules, written to
// dir, in front of an upstream that answers 200, with its audit log at
// path.
func auditedProxy(t *testing.T) (p *Proxy, reg *prometheus.Registry, dir, path string) {
	t.Helper()
	upstream := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(upstream.Close)
	dir, _ = shopRules(t)
	path = filepath.Join(t.TempDir(), "audit.jsonl")
	audit, err := OpenAuditFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { audit.Close() })
	p, reg = startProxy(t, dir, upstream.URL, audit)
	return p, reg, dir, path
}

// checkAuditMode checks that the audit log at path is readable by its
// owner's group and nobody else: it holds the requests' paths.
func checkAuditMode(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o640 {
		t.Errorf("audit log %s mode %v, want -rw-r-----", path, got)
	}
}

// TestProxyReload: Reload enforces the rules the directory holds now; a
// rule that does not compile keeps the rules in force and is reported
// with its file and line; the audit log is opened again at its path, so
// that after a rotation new lines go to a new file.
func TestProxyReload(t *testing.T) {
	p, reg, dir, path := auditedProxy(t)
	if n, err := testutil.GatherAndCount(reg, "evident_waf_reloads_total"); err != nil || n != 2 {
		t.Errorf("reloads_total before any reload: %d series, %v; want ok and error", n, err)
	}
	status := func(target string) int {
		t.Helper()
		resp, err := http.Get("http://" + p.Addr() + target)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	const oldExploit, newExploit = "/search?q=%C0%AF", "/search?q=evil"
	if got := status(oldExploit); got != http.StatusForbidden {
		t.Fatalf("before the reload, %s: status %d, want 403", oldExploit, got)
	}
	if got := status(newExploit); got != http.StatusOK {
		t.Fatalf("before the reload, %s: status %d, want 200", newExploit, got)
	}

	// The gateway's patch goes, another service's comes.
	for _, name := range []string{filepath.Join(dir, "gateway.conf"), filepath.Join(dir, ProxyDir, "gateway.conf")} {
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	other := filepath.Join(dir, "other.conf")
	newRule := "SecRule ARGS:q \"@streq evil\" \"id:1001,phase:1,deny,status:403,msg:'new patch',tag:'evident',tag:'evident/detection',tag:'GO-2026-0001'\"\n"
	if err := os.WriteFile(other, []byte(newRule), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("new rules", func(t *testing.T) {
		if err := p.Reload(dir, nil); err != nil {
			t.Fatalf("Reload = %v", err)
		}
		if got := status(newExploit); got != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403 from the new rule", newExploit, got)
		}
		if got := status(oldExploit); got != http.StatusOK {
			t.Errorf("%s: status %d, want 200: its patch was removed", oldExploit, got)
		}
		if got := testutil.ToFloat64(p.reloads.WithLabelValues("ok")); got != 1 {
			t.Errorf("reloads ok %v, want 1", got)
		}
	})
	t.Run("broken rule", func(t *testing.T) {
		broken := newRule + "SecRule ARGS \"@rx (\" \"id:1002,phase:1,deny\"\n"
		if err := os.WriteFile(other, []byte(broken), 0o644); err != nil {
			t.Fatal(err)
		}
		err := p.Reload(dir, nil)
		if err == nil || !strings.Contains(err.Error(), other+":2 (rule 1002)") {
			t.Errorf("Reload = %v, want an error naming %s:2 (rule 1002)", err, other)
		}
		if got := status(newExploit); got != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403 from the rules kept", newExploit, got)
		}
		if got := testutil.ToFloat64(p.reloads.WithLabelValues("error")); got != 1 {
			t.Errorf("reloads error %v, want 1", got)
		}
	})
	t.Run("audit log rotated", func(t *testing.T) {
		rotated := path + ".1"
		if err := os.Rename(path, rotated); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(other, []byte(newRule), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := p.Reload(dir, nil); err != nil {
			t.Fatalf("Reload = %v", err)
		}
		if got := status(newExploit + "&after=rotation"); got != http.StatusForbidden {
			t.Fatalf("status %d, want 403", got)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("no audit log at its path after the reload: %v", err)
		}
		if got := string(data); !strings.Contains(got, "after=rotation") || !strings.Contains(got, `"rule_id":1001,"vulnerability":"GO-2026-0001"`) {
			t.Errorf("new audit log lacks the block after the rotation:\n%s", got)
		}
		old, err := os.ReadFile(rotated)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(old), "after=rotation") {
			t.Errorf("the rotated audit log got a line after the reload:\n%s", old)
		}
		checkAuditMode(t, path)
	})
}

// TestProxyConfigRedaction: a redaction configuration redact refuses is
// a configuration error of the proxy, naming the audit log.
func TestProxyConfigRedaction(t *testing.T) {
	cfg := DefaultProxyConfig()
	cfg.Upstream = "http://127.0.0.1:1"
	cfg.Redaction.Mask = ""
	err := cfg.Validate()
	if !errors.Is(err, ErrConfig) || !errors.Is(err, redact.ErrInvalidConfig) || !strings.Contains(err.Error(), "audit log") {
		t.Errorf("Validate() with an empty mask = %v, want ErrConfig and redact.ErrInvalidConfig naming the audit log", err)
	}
}
