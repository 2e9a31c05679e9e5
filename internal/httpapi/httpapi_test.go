package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/report"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/sqlite"
	"github.com/evidentsec/evident/internal/telemetry"
	"github.com/evidentsec/evident/internal/vulndb"
	"github.com/evidentsec/evident/internal/waf"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// state is a State over a model and a real store: SetFindings stores the
// update, and re-assesses what the store then holds.
type state struct {
	mu  sync.Mutex
	m   *model.Model
	st  *sqlite.Store
	res *report.Result
}

func (s *state) Result() *report.Result { s.mu.Lock(); defer s.mu.Unlock(); return s.res }

func (s *state) SetFindings(ctx context.Context, u store.FindingsUpdate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.PutFindings(ctx, u); err != nil {
		return err
	}
	fs, err := s.st.Findings(ctx)
	if err != nil {
		return err
	}
	snap := s.m.Snapshot()
	cfg := assess.DefaultConfig()
	cfg.Sensitivity = []assess.SensitivityRule{{Store: "sqlite://shop/*", Labels: []string{"pii"}}}
	a := assess.New(cfg, nil, snap)
	as := a.Assess(fs)
	s.res = &report.Result{Generated: t0, Version: "test", Summary: assess.Summarize(as), Assessments: as, Snapshot: snap, Exposure: a.ServiceExposures()}
	return nil
}

func newState(t testing.TB) *state {
	t.Helper()
	m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{GoModules: []string{"golang.org/x/text"}}))
	sp := func(svc string, kind telemetry.SpanKind, id, parent byte, a telemetry.Attrs) telemetry.Span {
		return telemetry.Span{Service: svc, SpanID: [8]byte{7: id}, ParentSpanID: [8]byte{7: parent}, Kind: kind, Name: "s", Start: t0, End: t0.Add(time.Millisecond), Attrs: a}
	}
	m.AddSpans([]telemetry.Span{
		sp("app", telemetry.SpanKindServer, 1, 0, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/lang"}),
		sp("app", telemetry.SpanKindClient, 2, 1, telemetry.Attrs{DBSystem: "sqlite", DBNamespace: "shop", DBCollection: "customers"}),
	})
	m.AddProfile(&telemetry.ProfileBatch{Service: "app", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: time.Hour,
		Locations: [][]attribution.Frame{{{Function: "golang.org/x/text/language.Parse", File: "golang.org/x/text@v0.3.5/language/parse.go"}}, {{Function: "runtime.mcall", File: "runtime/proc.go"}}},
		Samples:   []telemetry.Sample{{Locations: []int32{0}, Count: 50, Value: 500_000_000, SpanID: "0000000000000001"}, {Locations: []int32{1}, Count: 5000}}})
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := &state{m: m, st: st}
	purl, _ := osv.PURL(osv.EcosystemGo, "golang.org/x/text", "v0.3.5")
	initial := []findings.Finding{{
		Service: "app", Package: findings.Package{PURL: purl, Ecosystem: osv.EcosystemGo, Name: "golang.org/x/text", Version: "v0.3.5"},
		Vulnerability: findings.Vulnerability{ID: "GO-2021-0113", Aliases: []string{"CVE-2021-38561"}}, Severity: findings.Severity{Level: "high", Score: 7.5},
		Static: findings.StaticCalled, Symbols: []string{"golang.org/x/text/language.Parse"}, Sources: []findings.Source{{Tool: "govulncheck"}},
	}}
	if err := s.SetFindings(t.Context(), store.FindingsUpdate{Findings: initial, Actor: "test", Time: t0}); err != nil {
		t.Fatal(err)
	}
	return s
}

// alerts is an Alerts feed over the alerts of a real store.
type alerts struct {
	st *sqlite.Store

	mu   sync.Mutex
	subs []chan any
}

func (a *alerts) Recent(ctx context.Context, q store.AlertQuery) ([]store.Alert, error) {
	return a.st.Alerts(ctx, q)
}

func (a *alerts) Subscribe() (<-chan any, func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch := make(chan any, 4)
	a.subs = append(a.subs, ch)
	return ch, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		for i, c := range a.subs {
			if c == ch {
				a.subs = append(a.subs[:i], a.subs[i+1:]...)
				close(ch)
			}
		}
	}
}

// fire stores the alert and sends it to the subscribers.
func (a *alerts) fire(t *testing.T, al store.Alert) {
	t.Helper()
	if err := a.st.PutAlert(t.Context(), al); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.subs {
		c <- al
	}
}

func start(t *testing.T, deps Deps) (*Server, string) {
	t.Helper()
	return startConfig(t, func(*Config) {}, deps)
}

// startConfig starts a server as start does, with the configuration
// changed by edit.
func startConfig(t *testing.T, edit func(*Config), deps Deps) (*Server, string) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Endpoint = "127.0.0.1:0"
	cfg.MaxUploadBytes = 1 << 20
	edit(&cfg)
	s := New(cfg, deps)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s, "http://" + s.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func importer(r io.Reader, name, format string) ([]findings.Finding, []error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, []error{err}
	}
	if f, _ := findings.Detect(data); f == findings.FormatEvident && format == "auto" {
		return findings.ParseDocument(bytes.NewReader(data), name)
	}
	if format != "auto" && format != "govulncheck" {
		return nil, []error{findings.ErrUnknownFormat}
	}
	return findings.ParseGovulncheck(bytes.NewReader(data), name)
}

func TestRoutes(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "evident_test_total", Help: "test"}))
	st := newState(t)
	_, base := start(t, Deps{State: st, Alerts: &alerts{st: st.st}, Importer: importer, Gatherer: reg})
	id := report.FindingID(newState(t).Result().Assessments[0].Finding)
	tests := []struct {
		path     string
		status   int
		contains string
	}{
		{"/api/v1/services", 200, `"name": "app"`},
		{"/api/v1/services/app", 200, `"GET /lang"`},
		{"/api/v1/services/nope", 404, `no service \"nope\"`},
		{"/api/v1/graph", 200, `"sqlite://shop/customers"`},
		{"/api/v1/findings", 200, `"verdict": "executed"`},
		{"/api/v1/findings?verdict=not_observed", 200, `"findings": []`},
		{"/api/v1/findings?vulnerability=CVE-2021-38561&sort=score", 200, `"GO-2021-0113"`},
		{"/api/v1/findings?sort=random", 400, `sort \"random\"`},
		{"/api/v1/findings/" + id, 200, `"stack"`},
		{"/api/v1/findings/0000", 404, "no finding"},
		{"/api/v1/summary", 200, `"decided_reduction": 0`},
		{"/api/v1/report", 200, `"backlog_reduction"`},
		{"/api/v1/inventory", 200, `"bomFormat": "CycloneDX"`},
		{"/api/v1/export/openvex", 200, `"https://openvex.dev/ns/v0.2.0"`},
		{"/api/v1/export/sarif", 200, `"version": "2.1.0"`},
		{"/api/v1/alerts", 200, `"alerts": []`},
		{"/api/v1/alerts?limit=0", 400, "limit"},
		{"/api/v1/vulndb", 503, "no vulnerability database"},
		{"/healthz", 200, "ok"},
		{"/readyz", 200, `"ready": true`},
		{"/metrics", 200, "evident_test_total 0"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			status, body := get(t, base+tt.path)
			if status != tt.status || !strings.Contains(body, tt.contains) {
				t.Errorf("GET %s = %d %s; want %d containing %s", tt.path, status, body, tt.status, tt.contains)
			}
		})
	}
}

// TestSummaryWithoutEvidence is issue 10's headline: when no finding is
// decided (no profiles of the service), the summary claims no cut.
func TestSummaryWithoutEvidence(t *testing.T) {
	st := newState(t)
	purl, _ := osv.PURL(osv.EcosystemGo, "golang.org/x/text", "v0.3.5")
	if err := st.SetFindings(t.Context(), store.FindingsUpdate{Actor: "test", Time: t0, Findings: []findings.Finding{{
		Service: "unprofiled", Package: findings.Package{PURL: purl, Ecosystem: osv.EcosystemGo, Name: "golang.org/x/text", Version: "v0.3.5"},
		Vulnerability: findings.Vulnerability{ID: "GO-2021-0113"}, Severity: findings.Severity{Level: "high"}, Sources: []findings.Source{{Tool: "govulncheck"}},
	}}}); err != nil {
		t.Fatal(err)
	}
	_, base := start(t, Deps{State: st})
	status, body := get(t, base+"/api/v1/summary")
	if status != http.StatusOK {
		t.Fatalf("GET /api/v1/summary = %d %s", status, body)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"findings": 1.0, "need_action": 0.0, "decided": 0.0, "decided_share": 0.0, "cleared": 0.0, "backlog_reduction": 0.0, "decided_reduction": nil}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (body %s)", k, got[k], v, body)
		}
	}
}

// TestReadyzChecks: /readyz names the health of each source, and a
// failing one does not make the service unready.
func TestReadyzChecks(t *testing.T) {
	_, base := start(t, Deps{State: newState(t), Ready: func() bool { return true }, Checks: func() map[string]error {
		return map[string]error{"tempo": nil, "pyroscope": errors.New("pyroscope: 401 Unauthorized")}
	}})
	status, body := get(t, base+"/readyz")
	if status != http.StatusOK {
		t.Fatalf("GET /readyz = %d %s, want 200", status, body)
	}
	var got struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"tempo": "ok", "pyroscope": "pyroscope: 401 Unauthorized"}
	if !got.Ready || !cmp.Equal(want, got.Checks) {
		t.Errorf("GET /readyz = %s, want ready with checks %v", body, want)
	}
}

// TestExportProducts checks that the VEX exports name the products the
// products setting gives, and the service's own product otherwise.
func TestExportProducts(t *testing.T) {
	tests := []struct {
		name     string
		products report.Products
		want     string
	}{
		{"from telemetry", nil, "pkg:generic/app"},
		{"configured", report.Products{"app": "pkg:oci/app@sha256:abc"}, "pkg:oci/app@sha256:abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, base := start(t, Deps{State: newState(t), Products: tt.products})
			for path, want := range map[string]string{
				"/api/v1/export/openvex": `"@id": "` + tt.want + `"`,
				"/api/v1/inventory":      `"bom-ref": "product:` + tt.want + `"`,
			} {
				if status, body := get(t, base+path); status != 200 || !strings.Contains(body, want) {
					t.Errorf("GET %s = %d %s; want 200 containing %s", path, status, body, want)
				}
			}
		})
	}
}

func TestUpload(t *testing.T) {
	st := newState(t)
	_, base := start(t, Deps{State: st, Importer: importer})
	report, err := os.ReadFile(filepath.Join("testdata", "app.govulncheck.json"))
	if err != nil {
		t.Fatal(err)
	}
	clean, err := os.ReadFile(filepath.Join("testdata", "orders-clean.govulncheck.json"))
	if err != nil {
		t.Fatal(err)
	}
	// evident's own findings of two services (findings import --format
	// json), and of a service that cannot be named.
	fs, _ := findings.ParseGovulncheck(bytes.NewReader(report), "app.govulncheck.json")
	document := func(services ...string) []byte {
		var all []findings.Finding
		for _, svc := range services {
			for _, f := range fs {
				f.Service = svc
				all = append(all, f)
			}
		}
		var b bytes.Buffer
		if err := findings.WriteJSON(&b, all); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	tests := []struct {
		name, query string
		body        []byte
		status      int
		contains    string
	}{
		// A report given without a service is the service's it scanned,
		// as analyze takes it; never a service named "".
		{"no service", "", report, 200, `"vulnapp"`},
		// evident's own findings keep the services they name.
		{"evident's findings", "", document("orders", "gateway"), 200, `"services": [
    "gateway",
    "orders"
  ]`},
		// Those of its findings that name none get the one their report
		// scanned.
		{"evident's findings, some of no service", "", document("gateway", ""), 200, `"services": [
    "gateway",
    "vulnapp"
  ]`},
		{"evident's findings of a bad service", "", document("gateway", "bad\nname"), 200, `findings[6] (GO-2021-0113): service \"bad\\nname\": want a service name`},
		// A clean scan (real govulncheck v1.9.0 output of a module with
		// no vulnerable code) has no findings to name its service; the
		// report does (its root, example.com/shop/cmd/orders), and the
		// scan clears orders's findings.
		{"no findings, no service", "", clean, 200, `"services": [
    "orders"
  ]`},
		// One that does not say is asked for, not answered 200 with
		// every finding left in place.
		{"no findings, nothing named", "", []byte(`{"config":{"protocol_version":"v1.0.0","scanner_name":"govulncheck","scan_level":"symbol"}}`), 400,
			"the report holds no findings and does not say which service it scanned: name it with ?service="},
		{"no findings of a service", "?service=app", clean, 200, `"findings": 0`},
		{"empty service", "?service=", report, 400, `service \"\": want a service name`},
		{"blank service", "?service=%20%0A", report, 400, `service \" \\n\": want a service name`},
		{"govulncheck", "?service=app", report, 200, `"findings": 6`},
		{"garbage", "", []byte("{not json"), 400, "error"},
		{"too big", "", bytes.Repeat([]byte(" "), 2<<20), 413, "over 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(base+"/api/v1/findings"+tt.query, "application/json", bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.contains) {
				t.Errorf("POST = %d %s; want %d containing %s", resp.StatusCode, b, tt.status, tt.contains)
			}
		})
	}
	services := map[string]int{}
	for _, a := range st.Result().Assessments {
		services[a.Finding.Service]++
	}
	// orders's findings were cleared by its clean scan, which named it.
	if diff := cmp.Diff(map[string]int{"app": 6, "vulnapp": 6, "gateway": 6}, services); diff != "" {
		t.Errorf("findings by service after the uploads (-want +got):\n%s", diff)
	}
}

// TestUploadEncodings uploads a report gzipped, as HTTP says it
// (Content-Encoding) and as a gzipped file is sent as it is, and in an
// encoding evident does not read: the first two are read, the last is a
// 415 naming the encoding, and the upload limit bounds what a gzip body
// holds as well as the body.
// TestUploadOneVulnerabilityUnderTwoIDs uploads evident's findings of two
// reports in which npm audit names a lodash flaw GHSA-35jh-r3h4-6jhm and
// Trivy names it CVE-2021-23337 (testdata/web.findings.json: `evident
// --data <empty> findings import --format json
// web=ecosystems/npm/npm-audit.json web=merge/lodash-cve.trivy.json` in
// internal/findings/testdata, without a database): with the record that
// says they are one, the upload stores one finding of it, as analyze
// makes one.
func TestUploadOneVulnerabilityUnderTwoIDs(t *testing.T) {
	db, _, err := vulndb.Load(context.Background(), vulndb.Options{Sources: []string{filepath.Join("..", "findings", "testdata", "ecosystems", "osv")}})
	if err != nil {
		t.Fatal(err)
	}
	report, err := os.ReadFile(filepath.Join("testdata", "web.findings.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		db   *vulndb.DB
		want []string
	}{
		{"without a database", nil, []string{"CVE-2021-23337 [] [trivy]", "GHSA-35jh-r3h4-6jhm [] [npm-audit]", "GHSA-p6mc-m468-83gw [] [npm-audit]"}},
		{"with the database", db, []string{"GHSA-35jh-r3h4-6jhm [CVE-2021-23337] [npm-audit trivy]", "GHSA-p6mc-m468-83gw [] [npm-audit]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newState(t)
			_, base := start(t, Deps{State: st, Importer: importer, Vulns: tt.db})
			if status, body := do(t, "POST", base+"/api/v1/findings", "", "application/json", report); status != 200 {
				t.Fatalf("POST = %d %s", status, body)
			}
			var got []string
			for _, a := range st.Result().Assessments {
				if f := a.Finding; f.Service == "web" && f.Package.PURL == "pkg:npm/lodash@4.17.15" {
					var tools []string
					for _, s := range f.Sources {
						tools = append(tools, s.Tool)
					}
					got = append(got, fmt.Sprintf("%s %v %v", f.Vulnerability.ID, f.Vulnerability.Aliases, tools))
				}
			}
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("lodash findings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUploadEncodings(t *testing.T) {
	st := newState(t)
	_, base := start(t, Deps{State: st, Importer: importer})
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name, encoding string
		body           []byte
		status         int
		contains       string
	}{
		{"Content-Encoding gzip", "gzip", read("app.govulncheck.json.gz"), 200, `"findings": 6`},
		{"Content-Encoding x-gzip", "x-gzip", read("app.govulncheck.json.gz"), 200, `"findings": 6`},
		{"a gzipped file", "", read("app.govulncheck.json.gz"), 200, `"findings": 6`},
		{"identity", "identity", read("app.govulncheck.json"), 200, `"findings": 6`},
		{"gzip that is not", "gzip", read("app.govulncheck.json"), 400, "read report: gzip: invalid header"},
		{"cut short", "gzip", read("app.govulncheck.json.gz")[:100], 400, "read report: gzip stream: unexpected EOF"},
		{"over the limit once decompressed", "gzip", read("spaces.gz"), 413, "report over 1048576 bytes once decompressed"},
		{"brotli", "br", read("app.govulncheck.json"), 415, `content encoding \"br\": want gzip or none`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), "POST", base+"/api/v1/findings?service=app", bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if tt.encoding != "" {
				req.Header.Set("Content-Encoding", tt.encoding)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.contains) {
				t.Errorf("POST = %d %s; want %d containing %s", resp.StatusCode, b, tt.status, tt.contains)
			}
			if tt.status == http.StatusUnsupportedMediaType && resp.Header.Get("Accept-Encoding") != "gzip" {
				t.Errorf("Accept-Encoding = %q, want gzip", resp.Header.Get("Accept-Encoding"))
			}
		})
	}
}

func TestAlertStream(t *testing.T) {
	st := newState(t)
	feed := &alerts{st: st.st}
	_, base := start(t, Deps{State: st, Alerts: feed})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/alerts/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, ":") {
		t.Fatalf("first line %q, want a comment", line)
	}
	// The subscription exists once the comment arrived.
	feed.fire(t, store.Alert{ID: "a1", Kind: "first_execution", Service: "app", Severity: "high", Summary: "s", Time: t0})
	var event, data string
	for data == "" {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event: "))
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimSpace(strings.TrimPrefix(line, "data: "))
		}
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(data), &got); err != nil || event != "alert" || got["kind"] != "first_execution" {
		t.Errorf("event %q data %q (%v)", event, data, err)
	}
}

// TestAlertStreamEndsAtShutdown: an open alert stream ends when the
// server's Shutdown begins, as a profile does: waited for, it held the
// shutdown until its context ended, and serve's engines and sinks, which
// stop after the API, were left none of their shutdown_timeout.
func TestAlertStreamEndsAtShutdown(t *testing.T) {
	st := newState(t)
	s, base := start(t, Deps{State: st, Alerts: &alerts{st: st.st}})
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/api/v1/alerts/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, ":") {
		t.Fatalf("first line %q, want a comment", line)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a stream open: %v", err)
	}
	if _, err := io.ReadAll(r); err != nil {
		t.Errorf("the stream after Shutdown: %v, want its end", err)
	}
}

func TestLifecycle(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Endpoint, cfg.MaxUploadBytes = "127.0.0.1:0", 1
	s := New(cfg, Deps{State: newState(t)})
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown without Start: %v", err)
	}
	for range 2 {
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{Endpoint: "nohostport", MaxUploadBytes: 1}).Validate(); err == nil {
		t.Error("bad endpoint accepted")
	}
	if err := (Config{Endpoint: ":8080"}).Validate(); err == nil {
		t.Error("zero upload limit accepted")
	}
}

func TestPatches(t *testing.T) {
	_, base := start(t, Deps{State: newState(t), Patches: patcher})
	_, noPatches := start(t, Deps{State: newState(t)})
	tests := []struct {
		url      string
		status   int
		contains string
	}{
		{base + "/api/v1/waf/patches", 200, `"id_range"`},
		{base + "/api/v1/waf/patches/nope", 404, `no patches for service \"nope\"`},
		{noPatches + "/api/v1/waf/patches", 503, "not configured"},
	}
	for _, tt := range tests {
		status, body := get(t, tt.url)
		if status != tt.status || !strings.Contains(body, tt.contains) {
			t.Errorf("GET %s = %d %s; want %d containing %s", tt.url, status, body, tt.status, tt.contains)
		}
	}
	status, body := get(t, base+"/api/v1/waf/patches")
	var set waf.PatchSet
	if err := json.Unmarshal([]byte(body), &set); err != nil || status != 200 {
		t.Fatalf("patches: %d %v", status, err)
	}
	if len(set.Patches)+len(set.Skipped) == 0 {
		t.Fatalf("no patch and no skipped finding: %s", body)
	}
	for _, svc := range set.Services() {
		if status, conf := get(t, base+"/api/v1/waf/patches/"+svc); status != 200 || !strings.Contains(conf, "SecRule") {
			t.Errorf("GET patches/%s = %d %.200s", svc, status, conf)
		}
	}
}

// TestUploadSlots: uploads beyond max_concurrent_uploads are refused with
// 429 and Retry-After while the others are parsed, and /healthz answers.
func TestUploadSlots(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	blocking := func(r io.Reader, name, format string) ([]findings.Finding, []error) {
		entered <- struct{}{}
		<-release
		return nil, []error{errors.New("nothing")}
	}
	cfg := DefaultConfig()
	cfg.Endpoint, cfg.MaxConcurrentUploads = "127.0.0.1:0", 1
	s := New(cfg, Deps{State: newState(t), Importer: blocking})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr().String()
	done := make(chan int)
	go func() {
		resp, err := http.Post(base+"/api/v1/findings", "application/json", strings.NewReader("{}"))
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-entered
	resp, err := http.Post(base+"/api/v1/findings", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second upload: %d Retry-After %q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz during an upload: %d", code)
	}
	close(release)
	if got := <-done; got != http.StatusBadRequest {
		t.Errorf("first upload: %d, want 400 (the importer found nothing)", got)
	}
}

// TestErrorsAreJSON: unknown routes, wrong methods, unknown parameters
// and filter values answer a JSON error that names what is wrong.
func TestErrorsAreJSON(t *testing.T) {
	st := newState(t)
	_, base := start(t, Deps{State: st, Alerts: &alerts{st: st.st}})
	tests := []struct {
		method, path string
		status       int
		allow        string
		contains     string
	}{
		{"GET", "/api/v1/nope", 404, "", `no route GET /api/v1/nope`},
		{"GET", "/", 404, "", `no route GET /`},
		{"DELETE", "/api/v1/findings", 405, "GET, HEAD, POST", `method DELETE not allowed on /api/v1/findings: allowed GET, HEAD, POST`},
		{"POST", "/api/v1/summary", 405, "GET, HEAD", `allowed GET, HEAD`},
		{"GET", "/api/v1/findings?tier=P9", 400, "", `tier \"P9\": want one of P1, P2, P3, P4`},
		{"GET", "/api/v1/findings?verdict=ran", 400, "", `verdict \"ran\": want one of executed, loaded, not_observed, unknown`},
		{"GET", "/api/v1/findings?exposure=public", 400, "", `exposure \"public\": want one of exposed, internal, no_input, unknown`},
		{"GET", "/api/v1/findings?kev=yes", 400, "", `kev \"yes\": want one of true, false`},
		{"GET", "/api/v1/findings?teir=P1", 400, "", `parameter \"teir\": this route takes service, verdict, tier, exposure, vulnerability, kev, q, sort, limit, cursor, tenant`},
		{"GET", "/api/v1/findings?tier=P1&tier=P2", 400, "", `parameter \"tier\" given 2 times`},
		{"GET", "/api/v1/findings?cursor=abc", 400, "", `cursor \"abc\": not a next_cursor of findings sorted by priority`},
		{"GET", "/api/v1/summary?x=1", 400, "", `parameter \"x\": this route takes tenant`},
		{"GET", "/api/v1/summary?tenant=default&x=1", 400, "", `parameter \"x\": this route takes tenant`},
		{"GET", "/api/v1/alerts?kind=boom", 400, "", `kind \"boom\": want one of first_execution, exposed_to_sensitive_store, exploit_payload, request_rate_anomaly, error_rate_anomaly, new_outbound_host`},
		{"GET", "/api/v1/alerts?since=0926-10-01T00:00:00Z", 400, "", `since: time 0926-10-01 00:00:00 +0000 UTC is outside the years 1678 to 2262`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, base+tt.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body apiError
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("%s %s: body is not a JSON error: %v", tt.method, tt.path, err)
			}
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Allow") != tt.allow ||
				!strings.Contains(strconvQuote(body.Error), tt.contains) {
				t.Errorf("%s %s = %d %q Allow %q %q; want %d Allow %q containing %s", tt.method, tt.path, resp.StatusCode,
					resp.Header.Get("Content-Type"), resp.Header.Get("Allow"), body.Error, tt.status, tt.allow, tt.contains)
			}
		})
	}
}

// TestEmptyFilterValues: an empty filter value (kind=, as a form's empty
// field submits it) does not filter, on every list alike.
func TestEmptyFilterValues(t *testing.T) {
	st := newState(t)
	feed := &alerts{st: st.st}
	feed.fire(t, store.Alert{ID: "a1", Kind: "exploit_payload", Severity: "high", Service: "app", Summary: "s", Details: []byte(`{}`), Time: t0, ReceivedAt: t0})
	_, base := start(t, Deps{State: st, Alerts: feed})
	for path, want := range map[string]string{
		"/api/v1/alerts?kind=&service=&since=":                    `"a1"`,
		"/api/v1/findings?verdict=&tier=&exposure=&kev=&sort=&q=": `"GO-2021-0113"`,
	} {
		if code, body := get(t, base+path); code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d %.200s, want 200 with %s", path, code, body, want)
		}
	}
}

// strconvQuote quotes s as JSON does, so wants can be written as in the
// body.
func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestUIPaths: with a UI, / and /ui/ are the UI's, and every other
// unknown route is still a JSON error.
func TestUIPaths(t *testing.T) {
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ui "+r.URL.Path) })
	_, base := start(t, Deps{State: newState(t), UI: ui})
	for path, want := range map[string]string{"/": "ui /", "/ui/findings/x": "ui /ui/findings/x", "/findings/x": `"no route GET /findings/x"`, "/api/v1/nope": `"error"`, "/healthz": "ok"} {
		if _, body := get(t, base+path); !strings.Contains(body, want) {
			t.Errorf("GET %s = %q, want %q", path, body, want)
		}
	}
}

// TestPagination walks every list a page at a time and checks the pages
// add up to the whole list, in its order.
func TestPagination(t *testing.T) {
	st := newState(t)
	upload, err := os.ReadFile(filepath.Join("testdata", "app.govulncheck.json"))
	if err != nil {
		t.Fatal(err)
	}
	fs, _ := importer(bytes.NewReader(upload), "upload", "auto")
	for i := range fs {
		fs[i].Service = []string{"app", "api", "web"}[i%3]
	}
	for i, svc := range []string{"api", "web", "db-proxy"} {
		st.m.AddSpans([]telemetry.Span{{Service: svc, SpanID: [8]byte{7: byte(10 + i)}, Kind: telemetry.SpanKindServer, Name: "s", Start: t0, End: t0.Add(time.Millisecond)}})
	}
	if err := st.SetFindings(t.Context(), store.FindingsUpdate{Findings: fs, Actor: "test", Time: t0}); err != nil {
		t.Fatal(err)
	}
	feed := &alerts{st: st.st}
	for i := range 5 {
		// Two alerts per time: the ID breaks the tie.
		feed.fire(t, store.Alert{ID: fmt.Sprintf("a%d", i), Kind: "first_execution", Severity: "high", Summary: "s", Time: t0.Add(time.Duration(i/2) * time.Minute)})
	}
	_, base := start(t, Deps{State: st, Alerts: feed, Audit: st.st})
	type page struct {
		Findings   []struct{ ID string }
		Alerts     []struct{ ID string }
		Entries    []struct{ Seq int64 }
		Services   []struct{ Name string }
		NextCursor string `json:"next_cursor"`
	}
	ids := func(p page) []string {
		var out []string
		for _, f := range p.Findings {
			out = append(out, f.ID)
		}
		for _, a := range p.Alerts {
			out = append(out, a.ID)
		}
		for _, e := range p.Entries {
			out = append(out, fmt.Sprint(e.Seq))
		}
		for _, s := range p.Services {
			out = append(out, s.Name)
		}
		return out
	}
	fetch := func(t *testing.T, url string) page {
		t.Helper()
		status, body := get(t, url)
		var p page
		if err := json.Unmarshal([]byte(body), &p); status != 200 || err != nil {
			t.Fatalf("GET %s = %d %.300s", url, status, body)
		}
		return p
	}
	for _, list := range []string{
		"/api/v1/findings?", "/api/v1/findings?sort=score&", "/api/v1/findings?sort=service&", "/api/v1/findings?sort=vulnerability&", "/api/v1/findings?sort=verdict&",
		"/api/v1/findings?service=app&", "/api/v1/alerts?", "/api/v1/audit?", "/api/v1/services?",
	} {
		t.Run(list, func(t *testing.T) {
			all := fetch(t, base+list+"limit=10000")
			want := ids(all)
			if all.NextCursor != "" || len(want) < 2 {
				t.Fatalf("whole list: %v next %q; want 2 or more and no next", want, all.NextCursor)
			}
			var got []string
			url := base + list + "limit=2"
			for pages := 0; ; pages++ {
				p := fetch(t, url)
				got = append(got, ids(p)...)
				if p.NextCursor == "" || pages > len(want) {
					break
				}
				if len(ids(p)) != 2 {
					t.Errorf("a page before the last with %d items, want 2", len(ids(p)))
				}
				url = base + list + "limit=2&cursor=" + p.NextCursor
			}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("pages (-got +want):\n%s", diff)
			}
		})
	}
	// A cursor of one order is refused by another.
	p := fetch(t, base+"/api/v1/findings?limit=1")
	if status, body := get(t, base+"/api/v1/findings?sort=score&cursor="+p.NextCursor); status != 400 || !strings.Contains(body, "findings sorted by priority") {
		t.Errorf("a priority cursor with sort=score: %d %s, want 400", status, body)
	}
}

// TestSecureHeaders: every answer is nosniff, and the API's are not
// cached (the UI sets its own, and its assets are cached).
func TestSecureHeaders(t *testing.T) {
	_, base := start(t, Deps{State: newState(t)})
	for _, tt := range []struct{ path, cache string }{
		{"/api/v1/summary", "no-store"},
		{"/api/v1/nope", "no-store"},
		{"/healthz", ""},
	} {
		resp, err := http.Get(base + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q, want nosniff", tt.path, got)
		}
		if got := resp.Header.Get("Cache-Control"); got != tt.cache {
			t.Errorf("%s: Cache-Control %q, want %q", tt.path, got, tt.cache)
		}
	}
}
