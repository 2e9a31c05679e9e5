package ui

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/report"
	"github.com/evidentsec/evident/internal/store"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// source is a Source over a fixed result, with history and alerts in
// memory.
type source struct {
	res     *report.Result
	history []store.VerdictChange
	alerts  []store.Alert
}

func (s *source) Result() *report.Result { return s.res }

func (s *source) Alerts(_ context.Context, q store.AlertQuery) ([]store.Alert, error) {
	// As the stores do: a time they cannot hold is store.ErrInvalid.
	if _, _, err := store.AlertQueryTimes(q); err != nil {
		return nil, err
	}
	var out []store.Alert
	for _, a := range s.alerts {
		if (q.Service == "" || a.Service == q.Service) && (q.Kind == "" || a.Kind == q.Kind) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *source) VerdictHistory(_ context.Context, service, vulnID string, _ int) ([]store.VerdictChange, error) {
	var out []store.VerdictChange
	for _, c := range s.history {
		if c.Service == service && c.VulnID == vulnID {
			out = append(out, c)
		}
	}
	return out, nil
}

// shop is a small result: an exposed gateway calling orders, which
// writes a PII store; gateway runs its vulnerable function, orders does
// not.
func shop() *source {
	snap := &model.Snapshot{Services: []*model.Service{
		{Name: "gateway", Last: t0, Spans: model.SpanCounts{All: 10, Server: 10, Root: 10},
			Edges: []model.Edge{{From: "gateway", To: "orders", Calls: 60, Errors: 3, First: t0.Add(-time.Minute), Last: t0}},
			Windows: []model.Window{
				{Start: t0.Add(-time.Minute), End: t0, Samples: 200, SampleType: "cpu", Unit: "nanoseconds", TimeSampled: true, Source: "pyroscope"},
				{Start: t0.Add(-time.Minute), End: t0, Samples: 19781, SampleType: "alloc_objects", Unit: "count", Source: "pyroscope"},
			}},
		{Name: "orders", Last: t0,
			Stores: []model.Store{{Name: "sqlite://shop/customers", Kind: "database", Service: "orders", Calls: 90, First: t0.Add(-time.Minute), Last: t0}}},
	}}
	pii := []assess.StoreRef{{Name: "sqlite://shop/customers", Kind: "database", Labels: []string{"pii"}, Via: []string{"orders"}}}
	exec := assess.Assessment{
		Finding: findings.Finding{Service: "gateway", Vulnerability: findings.Vulnerability{ID: "GO-2026-5970", Aliases: []string{"CVE-2026-56852"}},
			Package: findings.Package{PURL: "pkg:golang/golang.org/x/text@v0.37.0", Name: "golang.org/x/text", Version: "v0.37.0"}},
		Reachability: assess.Reachability{Verdict: assess.Executed, Basis: assess.BasisSymbol, Samples: 29, TimeSamples: 22,
			Symbols: []string{"golang.org/x/text/unicode/norm.Form.String"},
			Evidence: []assess.FunctionEvidence{
				{Symbol: "golang.org/x/text/unicode/norm.Form.String", Samples: 27, TimeSamples: 20, First: t0, Last: t0,
					Endpoints: []model.NamedSamples{{Name: "GET /search", Samples: 27, TimeSamples: 20}},
					Stack:     []string{"golang.org/x/text/unicode/norm.Form.String", "main.search", "net/http.serve"},
					Series:    []model.Bucket{{Start: t0.Add(-2 * time.Minute), Samples: 12}, {Start: t0, Samples: 8}}, SeriesEnd: t0.Add(time.Minute)},
				{Symbol: "golang.org/x/text/unicode/norm.Form.Bytes", Samples: 2, TimeSamples: 2, First: t0, Last: t0,
					Stack: []string{"golang.org/x/text/unicode/norm.Form.Bytes", "main.search", "net/http.serve"}},
			}},
		Exposure:    assess.ExposureResult{Level: assess.Exposed, Rule: "entry point"},
		BlastRadius: pii,
		Priority:    assess.Priority{Tier: "P1", Score: 80, Reasons: []string{"+35 severity critical", "+30 reachability executed", "+15 exposure exposed"}},
		VEX:         assess.VEX{Status: "affected"},
	}
	quiet := assess.Assessment{
		Finding: findings.Finding{Service: "orders", Vulnerability: findings.Vulnerability{ID: "GO-2024-2958"},
			Package: findings.Package{PURL: "pkg:golang/github.com/gorilla/schema@v1.2.0", Name: "github.com/gorilla/schema", Version: "v1.2.0"}},
		KnownExploited: true,
		Reachability: assess.Reachability{Verdict: assess.NotObserved, Basis: assess.BasisSymbol,
			Bound: &assess.Bound{Share: 0.015, CPUSeconds: 0.03, WindowSeconds: 60, Samples: 200}},
		Exposure:    assess.ExposureResult{Level: assess.Internal, Rule: "only called by traced services"},
		BlastRadius: pii,
		// orders called more stores than the model keeps.
		BlastRadiusIncomplete: "incomplete: orders calls stores beyond max_stores (2 calls)",
		Priority:              assess.Priority{Tier: "P3", Score: 30, Reasons: []string{"+15 known exploited (CISA KEV)"}},
	}
	as := []assess.Assessment{exec, quiet}
	return &source{
		res: &report.Result{Generated: t0, Summary: assess.Summarize(as), Assessments: as, Snapshot: snap,
			Exposure: map[string]assess.ExposureResult{"gateway": exec.Exposure, "orders": quiet.Exposure}},
		history: []store.VerdictChange{
			{Time: t0.Add(-time.Hour), Service: "gateway", VulnID: "GO-2026-5970", PURL: exec.Finding.Package.PURL, From: assess.Unknown, To: assess.Executed, Reason: "seen in 22 samples"},
			{Time: t0.Add(-48 * time.Hour), Service: "orders", VulnID: "GO-2024-2958", PURL: quiet.Finding.Package.PURL, From: assess.Unknown, To: assess.NotObserved},
		},
		alerts: []store.Alert{
			{ID: "a1", Kind: "first_execution", Severity: "high", Service: "gateway", Summary: "GO-2026-5970 runs in gateway", Time: t0,
				Details: []byte(`{"evidence":{"symbol":"norm.Form.String"},"finding_link":"http://127.0.0.1:8080/api/v1/findings/` + report.FindingID(exec.Finding) + `?tenant=team-a"}`)},
			{ID: "a2", Kind: "new_outbound_host", Severity: "medium", Service: "orders", Summary: "orders called a new host", Time: t0},
		},
	}
}

func newTestServer(t *testing.T, src *source) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(newUI(t, src))
	t.Cleanup(ts.Close)
	return ts
}

// newUI is the UI of newTestServer.
func newUI(t *testing.T, src *source) *UI {
	t.Helper()
	u, err := New(Deps{
		Tenant: func(context.Context, string) (Source, error) { return src, nil },
		Checks: func() map[string]error {
			return map[string]error{"sources": errors.New("tempo: 503 Service Unavailable")}
		},
		// The shop was assessed with a KEV catalog: GO-2024-2958 is in it.
		KEV: true,
		Now: func() time.Time { return t0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestLinksKeepTenant opens every page with ?tenant=: where the guard
// took it as the request's tenant, every link to this server names it
// and every form sends it, so that the pages reached from there show that
// tenant too, without the script; each of those links that is a page
// opens. A ?tenant= the guard did not take is named nowhere.
func TestLinksKeepTenant(t *testing.T) {
	src := shop()
	u := newUI(t, src)
	// As the API's listener does: ?tenant= becomes X-Scope-OrgID, which
	// its guard takes for credentials that may pick a tenant: team-a is
	// taken, any other is not (the page then shows the credentials'
	// tenant).
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if t := q.Get(auth.TenantParam); t != "" {
			r.Header.Set(auth.TenantHeader, t)
			q.Del(auth.TenantParam)
			r.URL.RawQuery = q.Encode()
			if t == "team-a" {
				r = r.WithContext(auth.WithTenant(r.Context(), t))
			}
		}
		u.ServeHTTP(w, r)
	}))
	defer ts.Close()
	execID := report.FindingID(src.res.Assessments[0].Finding)
	pages := []string{"/", "/ui/", "/ui/findings", "/ui/findings?sort=score&page=1", "/ui/findings/" + execID, "/ui/map", "/ui/services/orders", "/ui/alerts", "/ui/nope"}
	href := regexp.MustCompile(`href="([^"#][^"]*)"`)
	form := regexp.MustCompile(`(?s)<form[^>]*method="get".*?</form>`)
	for _, path := range pages {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		_, _, body := get(t, ts.URL+path+sep+"tenant=team-a")
		if !strings.Contains(body, `<p class="tenant">Tenant <strong>team-a</strong></p>`) {
			t.Errorf("%s: the header does not show tenant team-a", path)
		}
		links := 0
		for _, m := range href.FindAllStringSubmatch(body, -1) {
			link := html.UnescapeString(m[1])
			if !strings.HasPrefix(link, "/") || strings.HasPrefix(link, "/ui/assets/") {
				continue
			}
			links++
			lu, err := url.Parse(link)
			if err != nil || lu.Query().Get("tenant") != "team-a" {
				t.Errorf("%s: link %q does not name tenant team-a", path, link)
				continue
			}
			if strings.HasPrefix(link, "/api/") {
				continue // served by the API, not the UI
			}
			if status, _, _ := get(t, ts.URL+link); status != http.StatusOK {
				t.Errorf("%s: link %q: status %d", path, link, status)
			}
		}
		if links == 0 {
			t.Errorf("%s: no link read", path)
		}
		for _, f := range form.FindAllString(body, -1) {
			if !strings.Contains(f, `<input type="hidden" name="tenant" value="team-a">`) {
				t.Errorf("%s: form does not send tenant team-a: %s", path, f)
			}
		}
		_, _, other := get(t, ts.URL+path+sep+"tenant=team-b")
		if strings.Contains(other, "team-b") || strings.Contains(other, `class="tenant"`) {
			t.Errorf("%s: a tenant the guard did not take is named in the page", path)
		}
	}
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// TestPages checks each page's status and what it must show.
func TestPages(t *testing.T) {
	src := shop()
	ts := newTestServer(t, src)
	execID := report.FindingID(src.res.Assessments[0].Finding)
	quietID := report.FindingID(src.res.Assessments[1].Finding)
	tests := []struct {
		name, path string
		status     int
		want       []string
		dontWant   []string
	}{
		{"overview", "/", 200, []string{
			`<strong class="big">1</strong> of 2 findings need action now`,
			`href="/ui/findings?tier=P1&amp;verdict=executed"`,
			"1 verdict changes: 1 to", // the other change is older than a day
			`<a href="/ui/services/gateway">gateway</a>`,
			// A heap profile's objects are no samples of time.
			`<span class="source">pyroscope</span>: 200 time samples, 19781 samples of other profiles, last`,
			`Polled sources: <span class="error">tempo: 503 Service Unavailable</span>`,
		}, []string{"GO-2024-2958</a>"}},
		{"findings", "/ui/findings", 200, []string{"Findings 1–2 of 2", "GO-2026-5970", "GO-2024-2958", `aria-sort="descending"`}, nil},
		{"filtered", "/ui/findings?kev=true", 200, []string{"Findings 1–1 of 1", "GO-2024-2958"}, []string{"GO-2026-5970</a>"}},
		{"text filter", "/ui/findings?q=cve-2026-56852", 200, []string{"GO-2026-5970</a>"}, []string{"GO-2024-2958</a>"}},
		{"sorted", "/ui/findings?sort=service&service=orders", 200, []string{`aria-sort="ascending"`, "GO-2024-2958"}, []string{"GO-2026-5970</a>"}},
		{"bad filter", "/ui/findings?verdict=maybe", 400, []string{`role="alert">verdict &#34;maybe&#34;: want one of executed, loaded, not_observed, unknown`}, nil},
		{"page beyond", "/ui/findings?page=3", 404, []string{"page 3: there are 1"}, nil},
		{"bad page", "/ui/findings?page=0&tier=P1", 400, []string{`role="alert">page &#34;0&#34;: want a page number, 1 or more`}, nil},
		{"by vulnerability alias", "/ui/findings?vulnerability=CVE-2026-56852", 200,
			[]string{"GO-2026-5970</a>", `<input type="hidden" name="vulnerability" value="CVE-2026-56852">`}, []string{"GO-2024-2958</a>"}},
		{"executed finding", "/ui/findings/" + execID, 200, []string{
			`<g class="frame vulnerable"><title>golang.org/x/text/unicode/norm.Form.String: 20 time samples (vulnerable)</title>`,
			"<td class=\"num\">+30</td><td>reachability executed</td>",
			// Time samples, then samples of every profile.
			"<code>GET /search</code></td><td class=\"num\">20</td><td class=\"num\">27</td>",
			"<code>golang.org/x/text/unicode/norm.Form.String</code></td><td class=\"num\">20</td><td class=\"num\">27</td>",
			"No bound is needed: the vulnerable code was seen running, in 22 profile samples.",
			`<a href="/ui/services/gateway">gateway</a> → <a href="/ui/services/orders">orders</a> → <strong>sqlite://shop/customers</strong>`,
			"Virtual patches are not configured.",
			`<title id="series-title-0">Time samples of golang.org/x/text/unicode/norm.Form.String per minute</title>`,
			`<desc id="series-desc-0">20 time samples from 2026-11-24 09:01:00 UTC to 2026-11-24 10:01:00 UTC, at most 12 in the minute from 2026-11-24 09:58:00 UTC;`,
			`<rect class="bar" x="570" y="0" width="8" height="48"><title>2026-11-24 09:58:00 UTC: 12 time samples</title></rect>`,
			`<tr><td><time datetime="2026-11-24T10:00:00Z">2026-11-24 10:00:00 UTC</time></td><td class="num">8</td></tr>`,
		}, []string{`id="series-title-1"`, "The blast radius is"}}, // Form.Bytes has no series
		{"not observed finding", "/ui/findings/" + quietID, 200, []string{
			"The service&#39;s time-sampled profiles took 200 samples over 60 s of observation",
			"more than 1.5% of the service&#39;s CPU",
			"rule of three: 3 / 200",
			"evident writes virtual patches for findings whose vulnerable code was executed in an exposed service",
			"<p>The blast radius is incomplete: orders calls stores beyond max_stores (2 calls).</p>",
		}, []string{`id="flame"`}},
		{"unknown finding", "/ui/findings/0000", 404, []string{"No finding &#34;0000&#34;"}, nil},
		{"map", "/ui/map", 200, []string{
			`data-node="sqlite://shop/customers" data-kind="database" data-labels="pii" data-downstream-of="gateway"`,
			`class="edge hot" data-from="orders" data-to="sqlite://shop/customers"`,
			`<a href="/ui/services/gateway" class="node-link">`,
		}, nil},
		{"service", "/ui/services/orders", 200, []string{"GO-2024-2958</a>", "<strong>sqlite://shop/customers</strong>"},
			[]string{`href="/ui/services/sqlite`}}, // a store is not a service: no page of its own
		{"unknown service", "/ui/services/nope", 404, []string{"No service &#34;nope&#34;"}, nil},
		{"alerts", "/ui/alerts", 200, []string{
			`<a href="/ui/findings/` + execID + `">evidence<span class="visually-hidden"> of the first_execution alert in gateway</span></a>`,
			`<a href="/ui/services/orders">evidence<span class="visually-hidden"> of the new_outbound_host alert in orders</span></a>`,
			"&#34;symbol&#34;: &#34;norm.Form.String&#34;",
		}, nil},
		{"alerts by kind", "/ui/alerts?kind=new_outbound_host", 200, []string{"orders called a new host"}, []string{"runs in gateway"}},
		// The alerts page reads its filters with the API's code
		// (httpapi.ParseAlertQuery, httpapi.CheckQuery): a mistyped kind is
		// refused in the API's words, never a quiet "No alert matches".
		{"bad alert kind", "/ui/alerts?kind=bogus", 400, []string{
			`role="alert">kind &#34;bogus&#34;: want one of first_execution, exposed_to_sensitive_store, exploit_payload, request_rate_anomaly, error_rate_anomaly, new_outbound_host</p>`,
		}, []string{"No alert", "<tr data-alert="}},
		{"bad alert since", "/ui/alerts?since=yesterday", 400, []string{`role="alert">since &#34;yesterday&#34;: want an RFC 3339 time</p>`}, []string{"No alert"}},
		// A time the store cannot hold is the request's fault, as in the
		// API (400), not the server's (503).
		{"alert since out of range", "/ui/alerts?since=3000-01-01T00:00:00Z", 400, []string{
			`role="alert">read alerts: invalid argument: since: time 3000-01-01 00:00:00 &#43;0000 UTC is outside the years 1678 to 2262</p>`,
		}, []string{"No alert", "<tr data-alert="}},
		{"alert kind twice", "/ui/alerts?kind=first_execution&kind=exploit_payload", 400, []string{
			`role="alert">parameter &#34;kind&#34; given 2 times: give it once</p>`,
		}, []string{"No alert", "<tr data-alert="}},
		{"alerts misspelt filter", "/ui/alerts?knd=exploit_payload", 400, []string{
			`role="alert">parameter &#34;knd&#34;: this route takes since, service, kind, tenant</p>`,
		}, nil},
		{"tier twice", "/ui/findings?tier=P2&tier=P3", 400, []string{
			`role="alert">parameter &#34;tier&#34; given 2 times: give it once</p>`,
		}, []string{`<table class="findings"`}},
		{"findings misspelt filter", "/ui/findings?teir=P1", 400, []string{
			`role="alert">parameter &#34;teir&#34;: this route takes service, verdict, tier, exposure, vulnerability, kev, q, sort, page, tenant</p>`,
		}, nil},
		{"no page", "/ui/nope", 404, []string{"No page at /ui/nope."}, nil},
		{"no export", "/ui/export/sarif", 404, []string{"No export &#34;sarif&#34; here"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := get(t, ts.URL+tt.path)
			if status != tt.status {
				t.Errorf("status %d, want %d", status, tt.status)
			}
			if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
			checkPage(t, body, tt.want, tt.dontWant)
			// Nothing is loaded from elsewhere, and no inline style or
			// script (the policy would block them).
			if m := regexp.MustCompile(`(src|href)="(https?:)?//|style="|<script>|\son[a-z]+="`).FindString(body); m != "" {
				t.Errorf("page has %q", m)
			}
		})
	}
}

// checkPage reports each of want that body lacks and each of dontWant
// it has.
func checkPage(t *testing.T, body string, want, dontWant []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("page has no %q", w)
		}
	}
	for _, w := range dontWant {
		if strings.Contains(body, w) {
			t.Errorf("page has %q", w)
		}
	}
}

// TestFindingBlastRadius checks what a finding's page says of its blast
// radius: stores or none, and whether the model kept all there are.
func TestFindingBlastRadius(t *testing.T) {
	const incomplete = "incomplete: orders sends messages to destinations beyond max_stores (3 calls), whose consumers are not known"
	tests := []struct {
		name       string
		stores     []assess.StoreRef
		incomplete string
		want       []string
		dontWant   []string
	}{
		{"stores", []assess.StoreRef{{Name: "sqlite://shop/customers", Kind: "database", Via: []string{"orders"}}}, "",
			[]string{"<strong>sqlite://shop/customers</strong>"}, []string{"No data store", "The blast radius is"}},
		{"none", nil, "",
			[]string{"<p>No data store or third party is reachable from orders in the traces.</p>"}, []string{"The blast radius is"}},
		// None kept is not none there: the page says the model kept less.
		{"none, incomplete", nil, incomplete, []string{
			"<p>No data store or third party is reachable from orders in the traces that the model kept.</p>",
			"<p>The blast radius is " + incomplete + ".</p>",
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := shop()
			a := &src.res.Assessments[1]
			a.BlastRadius, a.BlastRadiusIncomplete = tt.stores, tt.incomplete
			ts := newTestServer(t, src)
			status, _, body := get(t, ts.URL+"/ui/findings/"+report.FindingID(a.Finding))
			if status != 200 {
				t.Fatalf("status %d, want 200", status)
			}
			checkPage(t, body, tt.want, tt.dontWant)
		})
	}
}

// TestExport checks the exports the UI serves itself.
func TestExport(t *testing.T) {
	ts := newTestServer(t, shop())
	for format, want := range map[string]string{"markdown": "GO-2026-5970", "table": "GO-2024-2958"} {
		status, h, body := get(t, ts.URL+"/ui/export/"+format)
		if status != 200 || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment; filename=") || !strings.Contains(body, want) {
			t.Errorf("%s: %d %q, body %.200q", format, status, h.Get("Content-Disposition"), body)
		}
		// A tenant's findings, as the API's exports: not for caches on
		// the way.
		if cc := h.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", format, cc)
		}
	}
}

// TestAssets checks that the embedded assets are served with their
// types; that the pages link them by a version of their content, which
// browsers keep for good, while a bare name is checked again each time
// (an upgraded evident's pages never run the script of the one before);
// and that the assets' directory is not listed.
func TestAssets(t *testing.T) {
	ts := newTestServer(t, shop())
	_, _, page := get(t, ts.URL+"/ui/findings")
	for path, ct := range map[string]string{"ui.css": "text/css; charset=utf-8", "ui.js": "text/javascript; charset=utf-8", "icon.svg": "image/svg+xml"} {
		data, err := os.ReadFile(filepath.Join("assets", path))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		versioned := "/ui/assets/" + path + "?v=" + hex.EncodeToString(sum[:6])
		if !strings.Contains(page, `"`+versioned+`"`) {
			t.Errorf("the findings page does not link %s", versioned)
		}
		for _, tc := range []struct{ url, cache string }{
			{versioned, "public, max-age=31536000, immutable"},
			{"/ui/assets/" + path, "no-cache"},
			{"/ui/assets/" + path + "?v=0123456789ab", "no-cache"},
		} {
			status, h, _ := get(t, ts.URL+tc.url)
			if status != 200 || h.Get("Content-Type") != ct || h.Get("Cache-Control") != tc.cache {
				t.Errorf("%s: %d %q %q, want 200 %q %q", tc.url, status, h.Get("Content-Type"), h.Get("Cache-Control"), ct, tc.cache)
			}
		}
	}
	for _, dir := range []string{"/ui/assets/", "/ui/assets/nope.js"} {
		if status, _, body := get(t, ts.URL+dir); status != http.StatusNotFound || strings.Contains(body, `href="ui.js"`) {
			t.Errorf("%s: %d, want 404 and no listing:\n%s", dir, status, body)
		}
	}
}

func TestFilterWith(t *testing.T) {
	f := filter{FindingQuery: report.FindingQuery{Service: "a b", Tier: "P1"}, Page: 3}
	tests := []struct {
		kv   []string
		want string
	}{
		{[]string{"sort", "score"}, "/ui/findings?service=a+b&sort=score&tier=P1"},
		{[]string{"page", "4"}, "/ui/findings?page=4&service=a+b&tier=P1"},
		{[]string{"tier", "", "service", ""}, "/ui/findings"},
	}
	for _, tt := range tests {
		if got := f.With(tt.kv...); got != tt.want {
			t.Errorf("With(%q) = %s, want %s", tt.kv, got, tt.want)
		}
	}
}

// TestFlameGraph merges two stacks that share their root: the shared
// frames span both, the leaves split the width by samples.
func TestFlameGraph(t *testing.T) {
	g := newFlameGraph(shop().res.Assessments[0].Reachability)
	type frame struct {
		Name       string
		X, Y, W    float64
		Vulnerable bool
	}
	var got []frame
	for _, f := range g.Frames {
		got = append(got, frame{f.Name, math.Round(f.X), f.Y, math.Round(f.W), f.Vulnerable})
	}
	want := []frame{
		{"net/http.serve", 0, 0, 960, false},
		{"main.search", 0, 20, 960, false},
		{"golang.org/x/text/unicode/norm.Form.Bytes", 0, 40, 87, false},
		{"golang.org/x/text/unicode/norm.Form.String", 87, 40, 873, true},
	}
	// Form.Bytes is vulnerable too: it is one of the evidence's symbols.
	want[2].Vulnerable = true
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("frames (-want +got):\n%s", diff)
	}
	if g.Height != 60 || g.Samples != 22 {
		t.Errorf("height %v, samples %d", g.Height, g.Samples)
	}
	if newFlameGraph(assess.Reachability{Verdict: assess.NotObserved}) != nil {
		t.Error("a flame graph without evidence")
	}
}

// TestFlameGraphTimeSamples: the flame graph is as wide as the
// functions' time samples when any was seen in a time-sampled profile,
// and as their samples of the other profiles when none was. A function
// in 59 CPU samples and 19,781 allocated objects took 99.7% of the width
// beside one in 59 CPU samples alone.
func TestFlameGraphTimeSamples(t *testing.T) {
	stack := func(leaf string) []string { return []string{leaf, "main.handle"} }
	tests := []struct {
		name     string
		evidence []assess.FunctionEvidence
		widths   map[string]float64 // of the leaves
		samples  int64
		of       string
	}{
		{"CPU and allocations", []assess.FunctionEvidence{
			{Symbol: "a.Alloc", Samples: 59 + 19781, TimeSamples: 59, Stack: stack("a.Alloc")},
			{Symbol: "a.Spin", Samples: 59, TimeSamples: 59, Stack: stack("a.Spin")},
			{Symbol: "a.Only", Samples: 300, Stack: stack("a.Only")},
		}, map[string]float64{"a.Alloc": 480, "a.Spin": 480}, 118, "time samples"},
		{"allocations alone", []assess.FunctionEvidence{
			{Symbol: "a.Alloc", Samples: 300, Stack: stack("a.Alloc")},
			{Symbol: "a.Only", Samples: 100, Stack: stack("a.Only")},
		}, map[string]float64{"a.Alloc": 720, "a.Only": 240}, 400, "samples of allocation and contention profiles"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newFlameGraph(assess.Reachability{Verdict: assess.Executed, Evidence: tt.evidence})
			widths := map[string]float64{}
			for _, f := range g.Frames {
				if f.Name != "main.handle" {
					widths[f.Name] = math.Round(f.W)
				}
			}
			if diff := cmp.Diff(tt.widths, widths); diff != "" || g.Samples != tt.samples || g.Of != tt.of {
				t.Errorf("%d %s, widths (-want +got):\n%s; want %d %s", g.Samples, g.Of, diff, tt.samples, tt.of)
			}
		})
	}
}

// TestSeriesChart checks the bars of a function's samples per minute:
// one per minute with samples, placed in the hour, as high as its share
// of the busiest minute, at least 2 units.
func TestSeriesChart(t *testing.T) {
	r := assess.Reachability{Evidence: []assess.FunctionEvidence{
		{Symbol: "a.F", SeriesEnd: t0, Series: []model.Bucket{
			{Start: t0.Add(-60 * time.Minute), Samples: 100}, {Start: t0.Add(-30 * time.Minute), Samples: 50}, {Start: t0.Add(-time.Minute), Samples: 1},
		}},
		{Symbol: "a.G", SeriesEnd: t0}, // beyond the model's series bound
	}}
	charts := newSeriesCharts(r)
	if len(charts) != 1 {
		t.Fatalf("%d charts, want 1", len(charts))
	}
	c := charts[0]
	type bar struct{ X, Y, H float64 }
	var got []bar
	for _, b := range c.Bars {
		got = append(got, bar{b.X, b.Y, b.H})
	}
	want := []bar{{0, 0, 48}, {300, 24, 24}, {590, 46, 2}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bars (-want +got):\n%s", diff)
	}
	if c.Samples != 151 || c.Peak.Samples != 100 || !c.Start.Equal(t0.Add(-time.Hour)) || c.Width != 600 {
		t.Errorf("samples %d, peak %d, start %v, width %v", c.Samples, c.Peak.Samples, c.Start, c.Width)
	}
}

// TestLayoutGraph checks the map's columns, the stores downstream of the
// exposed service and the calls on exposed paths.
func TestLayoutGraph(t *testing.T) {
	g := layoutGraph(shop().res)
	type node struct {
		Column     int
		Downstream []string
		Sensitive  bool
	}
	got := map[string]node{}
	for _, n := range g.Nodes {
		got[n.ID] = node{n.Column, n.Downstream, n.Sensitive}
	}
	want := map[string]node{
		"gateway":                 {0, nil, false},
		"orders":                  {1, []string{"gateway"}, false},
		"sqlite://shop/customers": {2, []string{"gateway"}, true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
	for _, e := range g.Edges {
		if !e.Exposed {
			t.Errorf("%s -> %s is not on the exposed path", e.From, e.To)
		}
		if e.Rate != 1.5 && e.Rate != 1 {
			t.Errorf("%s -> %s: rate %v", e.From, e.To, e.Rate)
		}
	}
	if g.Width != 2*margin+3*nodeWidth+2*colGap {
		t.Errorf("width %v", g.Width)
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct {
		got, want string
	}{
		{percent(0), "0%"}, {percent(0.0312), "3.1%"}, {percent(0.5), "50%"}, {percent(0.00012), "0.012%"}, {percent(0.02), "2%"},
		{duration(0.25), "250 ms"}, {duration(45), "45 s"}, {duration(720), "12 min"}, {duration(3 * 3600), "3 h"}, {duration(5 * 86400), "5 d"},
		{formatRate(0), ""}, {formatRate(12.3), "12/s"}, {formatRate(0.5), "0.5/s"}, {formatRate(0.01), "0.6/min"},
		{fitLabel("golang.org/x/text", 60, 7), "golang…"}, {fitLabel("abc", 20, 7), ""}, {fitLabel("norm", 100, 7), "norm"},
		{shortFrame("golang.org/x/text/unicode/norm.Form.String"), "norm.Form.String"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// TestContrast checks the stylesheet's colour pairs against WCAG AA
// (4.5:1 for text), in the light and the dark scheme.
func TestContrast(t *testing.T) {
	css, err := os.ReadFile("assets/ui.css")
	if err != nil {
		t.Fatal(err)
	}
	light, dark, ok := strings.Cut(string(css), "@media (prefers-color-scheme: dark)")
	if !ok {
		t.Fatal("no dark scheme in ui.css")
	}
	vars := func(block string) map[string]string {
		m := map[string]string{}
		for _, v := range regexp.MustCompile(`--([a-z0-9-]+):\s*(#[0-9a-f]{6})`).FindAllStringSubmatch(block, -1) {
			m[v[1]] = v[2]
		}
		return m
	}
	pairs := [][2]string{
		{"fg", "bg"}, {"fg", "card"}, {"muted", "bg"}, {"muted", "card"}, {"link", "card"}, {"link", "bg"},
		{"p1-fg", "p1-bg"}, {"p2-fg", "p2-bg"}, {"p3-fg", "p3-bg"}, {"p4-fg", "p4-bg"},
		{"exec", "card"}, {"loaded", "card"}, {"notobs", "card"}, {"unknown", "card"}, {"exposed", "card"}, {"internal", "card"},
		{"sensitive-fg", "sensitive-bg"}, {"frame-fg", "frame"}, {"frame-vuln-fg", "frame-vuln"},
	}
	lv := vars(light)
	for name, scheme := range map[string]map[string]string{"light": lv, "dark": vars(dark)} {
		for _, p := range pairs {
			fg, bg := scheme[p[0]], scheme[p[1]]
			if fg == "" || bg == "" {
				t.Errorf("%s: --%s or --%s is not set", name, p[0], p[1])
				continue
			}
			if r := contrast(fg, bg); r < 4.5 {
				t.Errorf("%s: --%s %s on --%s %s has contrast %.2f, want 4.5 or more", name, p[0], fg, p[1], bg, r)
			}
		}
	}
}

// contrast is the WCAG 2 contrast ratio of two #rrggbb colours.
func contrast(a, b string) float64 {
	lum := func(hex string) float64 {
		var l float64
		for i, w := range []float64{0.2126, 0.7152, 0.0722} {
			v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
			c := float64(v) / 255
			if c <= 0.03928 {
				c /= 12.92
			} else {
				c = math.Pow((c+0.055)/1.055, 2.4)
			}
			l += w * c
		}
		return l
	}
	la, lb := lum(a), lum(b)
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

// TestEmpty renders every page of a serve that has no telemetry and no
// findings yet.
func TestEmpty(t *testing.T) {
	ts := newTestServer(t, &source{res: &report.Result{Summary: assess.Summarize(nil)}})
	for path, want := range map[string]string{
		"/":            "No service has sent telemetry yet.",
		"/ui/findings": "No finding matches.",
		"/ui/map":      "No traces yet",
		"/ui/alerts":   "No alert has fired yet.",
	} {
		status, _, body := get(t, ts.URL+path)
		if status != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: %d, want 200 and %q in:\n%.500s", path, status, want, body)
		}
	}
}

// TestPagination pages through 30 findings, 25 a page, with the filter
// kept in the links.
func TestPagination(t *testing.T) {
	var as []assess.Assessment
	for i := range 30 {
		as = append(as, assess.Assessment{
			Finding:      findings.Finding{Service: "gateway", Vulnerability: findings.Vulnerability{ID: fmt.Sprintf("GO-2026-%04d", i)}, Package: findings.Package{PURL: "pkg:golang/x@v1"}},
			Reachability: assess.Reachability{Verdict: assess.Unknown},
			Exposure:     assess.ExposureResult{Level: assess.Exposed},
			Priority:     assess.Priority{Tier: "P4", Score: 10},
		})
	}
	ts := newTestServer(t, &source{res: &report.Result{Summary: assess.Summarize(as), Assessments: as}})
	_, _, body := get(t, ts.URL+"/ui/findings?exposure=exposed")
	for _, want := range []string{"Findings 1–25 of 30", `href="/ui/findings?exposure=exposed&amp;page=2" rel="next"`, "GO-2026-0024</a>"} {
		if !strings.Contains(body, want) {
			t.Errorf("page 1 has no %q", want)
		}
	}
	_, _, body = get(t, ts.URL+"/ui/findings?exposure=exposed&page=2")
	for _, want := range []string{"Findings 26–30 of 30", `href="/ui/findings?exposure=exposed" rel="prev"`, "GO-2026-0029</a>"} {
		if !strings.Contains(body, want) {
			t.Errorf("page 2 has no %q", want)
		}
	}
	if strings.Contains(body, "GO-2026-0024</a>") {
		t.Error("page 2 repeats page 1")
	}
}

// countingSource counts the history queries.
type countingSource struct {
	*source
	queries int
}

func (s *countingSource) VerdictHistory(ctx context.Context, service, vulnID string, limit int) ([]store.VerdictChange, error) {
	s.queries++
	return s.source.VerdictHistory(ctx, service, vulnID, limit)
}

// TestChangeCache reads a tenant's changes once per changeTTL.
func TestChangeCache(t *testing.T) {
	src := &countingSource{source: shop()}
	c := changeCache{entries: map[string]cachedChanges{}}
	for _, tt := range []struct {
		tenant  string
		at      time.Duration
		queries int
	}{
		{"default", 0, 2}, {"default", 10 * time.Second, 2}, {"team-a", 10 * time.Second, 4}, {"default", changeTTL, 6},
	} {
		got, err := c.recent(t.Context(), tt.tenant, src, src.res, t0.Add(tt.at))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].VulnID != "GO-2026-5970" {
			t.Errorf("%s at %v: changes %v, want GO-2026-5970's of the last day", tt.tenant, tt.at, got)
		}
		if src.queries != tt.queries {
			t.Errorf("%s at %v: %d queries, want %d", tt.tenant, tt.at, src.queries, tt.queries)
		}
	}
}

// TestChangeCacheSkipsEmpty: the overviews of tenants without findings
// (any tenant ID a reader names, which the registry does not create)
// leave nothing in the cache.
func TestChangeCacheSkipsEmpty(t *testing.T) {
	src := &countingSource{source: shop()}
	c := changeCache{entries: map[string]cachedChanges{}}
	for i := range 100 {
		got, err := c.recent(t.Context(), fmt.Sprint("probe-", i), src, &report.Result{}, t0)
		if err != nil || len(got) != 0 {
			t.Fatalf("changes of an empty result = %v, %v; want none", got, err)
		}
	}
	if len(c.entries) != 0 || src.queries != 0 {
		t.Errorf("cache of %d entries after %d queries, want none", len(c.entries), src.queries)
	}
}

// TestKEVFilterNeedsCatalog: without a KEV catalog the findings table
// refuses a kev filter in the API's words, rather than showing "No
// finding matches" for kev=true, which reads as "nothing is exploited",
// and its column says "unknown" rather than "no".
func TestKEVFilterNeedsCatalog(t *testing.T) {
	src := shop()
	u, err := New(Deps{Tenant: func(context.Context, string) (Source, error) { return src, nil }, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(u)
	defer ts.Close()
	const how = `: no KEV catalog is loaded, so no finding is known to be exploited or not: run &#34;evident db update&#34;`
	tests := []struct {
		path     string
		status   int
		want     string
		dontWant string
	}{
		{"/ui/findings?kev=true", 400, `role="alert">kev &#34;true&#34;` + how, "No finding matches"},
		{"/ui/findings?kev=false", 400, `role="alert">kev &#34;false&#34;` + how, `<table class="findings"`},
		{"/ui/findings?kev=", 200, "Findings 1–2 of 2", `role="alert"`},
		// Nor does the table say "no" of a finding no catalog marked.
		{"/ui/findings", 200, `<td><span class="muted" title="no KEV catalog is loaded">unknown</span></td>`, `<span class="muted">no</span>`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			status, _, body := get(t, ts.URL+tt.path)
			if status != tt.status || !strings.Contains(body, tt.want) || strings.Contains(body, tt.dontWant) {
				t.Errorf("GET %s = %d, want %d, with %q and without %q:\n%s", tt.path, status, tt.status, tt.want, tt.dontWant, body)
			}
		})
	}
}

// TestServiceOfFindingsOnly opens the page of a service known from an
// uploaded scanner report only, before any of its telemetry: the
// findings table and the finding page link to it, so it must show its
// findings, not answer 404 as it did for a service the runtime model
// does not hold.
func TestServiceOfFindingsOnly(t *testing.T) {
	src := shop()
	checkout := assess.Assessment{
		Finding:      findings.Finding{Service: "checkout", Vulnerability: findings.Vulnerability{ID: "GO-2025-0001"}},
		Reachability: assess.Reachability{Verdict: assess.Unknown},
		Priority:     assess.Priority{Tier: "P2", Score: 50},
	}
	src.res.Assessments = append(src.res.Assessments, checkout)
	// gateway is two services of that name, merged.
	gw := src.res.Snapshot.Service("gateway")
	gw.Namespace, gw.Namespaces = "shop", []string{"shop", "billing"}
	ts := newTestServer(t, src)
	tests := []struct {
		name, path string
		status     int
		want       []string
	}{
		{"telemetry", "/ui/services/orders", 200, []string{"GO-2024-2958</a>", "<strong>sqlite://shop/customers</strong>"}},
		{"two namespaces merged", "/ui/services/gateway", 200, []string{"The services named gateway in the namespaces shop, billing (service.namespace) are merged into this one"}},
		{"findings only", "/ui/services/checkout", 200, []string{
			"GO-2025-0001</a>", "No telemetry of checkout has arrived yet: it is known from its findings only.",
		}},
		{"neither", "/ui/services/nope", 404, []string{"No service &#34;nope&#34; in the runtime model or the findings."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := get(t, ts.URL+tt.path)
			if status != tt.status {
				t.Errorf("status %d, want %d", status, tt.status)
			}
			checkPage(t, body, tt.want, nil)
		})
	}
	// Every service link of the findings table opens.
	_, _, body := get(t, ts.URL+"/ui/findings")
	links := regexp.MustCompile(`href="(/ui/services/[^"]*)"`).FindAllStringSubmatch(body, -1)
	if len(links) == 0 {
		t.Fatal("the findings table links no service")
	}
	for _, m := range links {
		if status, _, _ := get(t, ts.URL+html.UnescapeString(m[1])); status != http.StatusOK {
			t.Errorf("findings table: link %s: status %d", m[1], status)
		}
	}
}

// TestEndpointsOf checks the bars of the endpoints that led to a
// vulnerable function: as wide as their share of the heaviest, and a
// number even when no endpoint has samples (a width of NaN is no SVG).
func TestEndpointsOf(t *testing.T) {
	tests := []struct {
		name string
		ev   []assess.FunctionEvidence
		want []endpointSamples
	}{
		{"shares", []assess.FunctionEvidence{
			{Endpoints: []model.NamedSamples{{Name: "GET /search", Samples: 20}}, SpanNames: []model.NamedSamples{{Name: "batch", Samples: 5}}},
			{Endpoints: []model.NamedSamples{{Name: "GET /search", Samples: 20}}},
		}, []endpointSamples{{Name: "GET /search", Samples: 40, Width: 200}, {Name: "batch", Samples: 5, Width: 25}}},
		// An endpoint's 1000 allocated objects beside another's 10 CPU
		// samples made a bar a hundred times as wide.
		{"time samples", []assess.FunctionEvidence{
			{Endpoints: []model.NamedSamples{{Name: "GET /export", Samples: 1002, TimeSamples: 2}, {Name: "GET /search", Samples: 10, TimeSamples: 10}}},
		}, []endpointSamples{{Name: "GET /search", Samples: 10, TimeSamples: 10, Width: 200}, {Name: "GET /export", Samples: 1002, TimeSamples: 2, Width: 40}}},
		{"no samples", []assess.FunctionEvidence{
			{Endpoints: []model.NamedSamples{{Name: "GET /a", Samples: 0}, {Name: "GET /b", Samples: 0}}},
		}, []endpointSamples{{Name: "GET /a", Width: 0}, {Name: "GET /b", Width: 0}}},
		{"none", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := endpointsOf(tt.ev)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("endpointsOf (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDotServiceNames: a service named "." or ".." had links to
// /ui/services/. and /ui/services/.., which a browser resolves as dot
// segments (to /ui/services/ and /ui/) and Go's ServeMux redirects so: its
// page could not be opened. Every link to such a service, resolved as a
// browser does, opens its page.
func TestDotServiceNames(t *testing.T) {
	src := shop()
	// Each its own finding, so that a link to one that opens the other's
	// page is told apart.
	ids := map[string]string{".": "GO-2025-0001", "..": "GO-2025-0002"}
	for _, name := range []string{".", ".."} {
		src.res.Snapshot.Services = append(src.res.Snapshot.Services, &model.Service{Name: name, Last: t0, Spans: model.SpanCounts{All: 1, Server: 1, Root: 1}})
		src.res.Assessments = append(src.res.Assessments, assess.Assessment{
			Finding:      findings.Finding{Service: name, Vulnerability: findings.Vulnerability{ID: ids[name]}},
			Reachability: assess.Reachability{Verdict: assess.Unknown},
			Priority:     assess.Priority{Tier: "P2", Score: 50},
		})
	}
	gw := src.res.Snapshot.Services[0]
	gw.Edges = append(gw.Edges, model.Edge{From: "gateway", To: ".", Calls: 1, First: t0, Last: t0})
	src.alerts = append(src.alerts, store.Alert{ID: "a3", Kind: "new_outbound_host", Severity: "medium", Service: "..", Summary: ".. called a new host", Time: t0})
	ts := newTestServer(t, src)
	link := regexp.MustCompile(`<a href="([^"]*)"[^>]*>(?:(\.\.?)</a>|evidence<span[^<]*alert in (\.\.)</span>|<g [^>]*data-node="(\.\.?)")`)
	for _, page := range []string{"/", "/ui/findings", "/ui/map", "/ui/alerts", "/ui/services/gateway"} {
		t.Run(page, func(t *testing.T) {
			_, _, body := get(t, ts.URL+page)
			ms := link.FindAllStringSubmatch(body, -1)
			if len(ms) == 0 {
				t.Fatal("no link to a service named . or ..")
			}
			for _, m := range ms {
				// Resolved against the page, as a browser resolves it
				// (RFC 3986's dot segments).
				ref, err := url.Parse(html.UnescapeString(m[1]))
				if err != nil {
					t.Fatal(err)
				}
				target, _ := url.Parse(ts.URL + page)
				name := m[2] + m[3] + m[4]
				other := ids["."]
				if name == "." {
					other = ids[".."]
				}
				status, _, got := get(t, target.ResolveReference(ref).String())
				if status != http.StatusOK || !strings.Contains(got, ids[name]) || strings.Contains(got, other) {
					t.Errorf("link %q to %s opens %s: status %d, not that service's page", m[1], name, target.ResolveReference(ref).Path, status)
				}
			}
		})
	}
}
