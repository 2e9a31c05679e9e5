package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/report"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/vulndb"
	"github.com/evidentsec/evident/internal/waf"
)

// loadOpenAPI loads and validates the embedded document as OpenAPI 3.1.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPI)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi.json is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc
}

// TestOpenAPIRoutes: every route of the server is in the document with
// the query parameters it takes, the tenant among them, and the
// document has no other.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	s := New(DefaultConfig(), Deps{Gatherer: prometheus.NewRegistry()})
	got := map[string][]string{}
	for _, rt := range s.routes() {
		got[rt.pattern] = slices.Sorted(slices.Values(append(slices.Clip(rt.params), auth.TenantParam)))
	}
	want := map[string][]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			var params []string
			for _, p := range append(item.Parameters, op.Parameters...) {
				if p.Value.In == openapi3.ParameterInQuery {
					params = append(params, p.Value.Name)
				}
			}
			slices.Sort(params)
			want[method+" "+path] = params
		}
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("routes (-server +openapi.json):\n%s", diff)
	}
}

// patcher generates and validates patches as serve does, against the
// built-in corpus.
func patcher(ctx context.Context, res *report.Result) (*waf.PatchSet, error) {
	traffic := waf.NewTraffic(0)
	set, err := waf.Generate(waf.DefaultConfig(), res.Assessments, nil, traffic)
	if err != nil {
		return nil, err
	}
	corpus, err := waf.LoadCorpus(nil)
	if err != nil {
		return nil, err
	}
	return set, waf.Validate(ctx, set, traffic, corpus)
}

// TestOpenAPIResponses sends real requests, answers and errors, to a
// server with every dependency, and validates each response (status,
// headers, content type and body) against the document.
func TestOpenAPIResponses(t *testing.T) {
	doc := loadOpenAPI(t)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	st := newState(t)
	a, admin, read, _ := tokens(t, st)
	feed := &alerts{st: st.st}
	for i, kind := range []string{"first_execution", "exploit_payload", "first_execution"} {
		feed.fire(t, store.Alert{ID: "alert" + string(rune('a'+i)), Kind: kind, Severity: "high", Service: "app", Summary: kind,
			Details: []byte(`{"link":"x"}`), Time: t0.Add(time.Duration(i) * time.Minute), ReceivedAt: t0})
	}
	db, _, err := vulndb.Load(t.Context(), vulndb.Options{Sources: []string{filepath.Join("..", "..", "examples", "shop", "recorded", "osv")}, KEV: filepath.Join("testdata", "kev.json")})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "evident_test_total", Help: "test"}))
	_, base := start(t, Deps{State: st, Alerts: feed, Importer: importer, Gatherer: reg, Audit: st.st, Vulns: db, Patches: patcher,
		Guard: a.Guard("api", auth.Required), Ready: func() bool { return true }})
	_, bare := start(t, Deps{State: st, Guard: a.Guard("api", auth.Required)})
	upload, err := os.ReadFile(filepath.Join("testdata", "app.govulncheck.json"))
	if err != nil {
		t.Fatal(err)
	}
	id := report.FindingID(st.Result().Assessments[0].Finding)

	tests := []struct {
		method, path string
		token        string // admin when empty; "-" for none
		contentType  string
		body         []byte
		base         string // base when empty
		status       int
	}{
		{method: "GET", path: "/api/v1/services", status: 200},
		{method: "GET", path: "/api/v1/services?limit=1", status: 200},
		{method: "GET", path: "/api/v1/services?cursor=nope", status: 400},
		{method: "GET", path: "/api/v1/services/app", status: 200},
		{method: "GET", path: "/api/v1/services/nope", status: 404},
		{method: "GET", path: "/api/v1/graph", status: 200},
		{method: "GET", path: "/api/v1/inventory", status: 200},
		{method: "GET", path: "/api/v1/findings", status: 200},
		{method: "GET", path: "/api/v1/findings?tier=P1&verdict=executed&exposure=exposed&kev=false&q=text&sort=score&limit=5", status: 200},
		{method: "GET", path: "/api/v1/findings?tier=P9", status: 400},
		{method: "GET", path: "/api/v1/findings?kev=true", base: bare, status: 400}, // no KEV catalog
		{method: "GET", path: "/api/v1/findings?colour=red", status: 400},
		{method: "GET", path: "/api/v1/findings/" + id, status: 200},
		{method: "GET", path: "/api/v1/findings/0000", status: 404},
		{method: "POST", path: "/api/v1/findings?service=app", contentType: "application/json", body: upload, status: 200},
		{method: "POST", path: "/api/v1/findings", contentType: "application/json", body: []byte("{not json"), status: 400},
		{method: "POST", path: "/api/v1/findings", contentType: "text/plain", body: upload, status: 415},
		{method: "POST", path: "/api/v1/findings", token: "read", contentType: "application/json", body: upload, status: 403},
		{method: "POST", path: "/api/v1/findings", base: bare, contentType: "application/json", body: upload, status: 503},
		{method: "GET", path: "/api/v1/summary", status: 200},
		{method: "GET", path: "/api/v1/summary", token: "-", status: 401},
		{method: "GET", path: "/api/v1/report", status: 200},
		{method: "GET", path: "/api/v1/export/openvex", status: 200},
		{method: "GET", path: "/api/v1/export/sarif", status: 200},
		{method: "GET", path: "/api/v1/export/cyclonedx", status: 200},
		{method: "GET", path: "/api/v1/alerts", status: 200},
		{method: "GET", path: "/api/v1/alerts?kind=first_execution&service=app&since=2026-01-01T00:00:00Z&limit=1", status: 200},
		{method: "GET", path: "/api/v1/alerts?kind=boom", status: 400},
		{method: "GET", path: "/api/v1/alerts", base: bare, status: 503},
		{method: "GET", path: "/api/v1/alerts/alerta", status: 200},
		{method: "GET", path: "/api/v1/alerts/nope", status: 404},
		{method: "GET", path: "/api/v1/alerts/nope", base: bare, status: 503},
		{method: "GET", path: "/api/v1/vulndb", status: 200},
		{method: "GET", path: "/api/v1/vulndb", base: bare, status: 503},
		{method: "GET", path: "/api/v1/waf/patches", status: 200},
		{method: "GET", path: "/api/v1/waf/patches", base: bare, status: 503},
		{method: "GET", path: "/api/v1/waf/patches/nope", status: 404},
		{method: "GET", path: "/api/v1/audit", status: 200},
		{method: "GET", path: "/api/v1/audit?after=1&limit=1", status: 200},
		{method: "GET", path: "/api/v1/audit?after=x", status: 400},
		{method: "GET", path: "/api/v1/audit", token: "read", status: 403},
		{method: "GET", path: "/api/v1/audit", base: bare, status: 503},
		{method: "GET", path: "/api/v1/openapi.json", status: 200},
		{method: "GET", path: "/metrics", status: 200},
		{method: "GET", path: "/healthz", token: "-", status: 200},
		{method: "GET", path: "/readyz", token: "-", status: 200},
		{method: "GET", path: "/api/v1/graph?tenant=default", status: 200},
		{method: "GET", path: "/api/v1/graph?tenant=..", status: 400},
		{method: "GET", path: "/api/v1/summary?x=1", status: 400},
		{method: "GET", path: "/healthz?tenant=a%7Cb", token: "-", status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			authz := "Bearer " + admin
			switch tt.token {
			case "-":
				authz = ""
			case "read":
				authz = "Bearer " + read
			}
			b := tt.base
			if b == "" {
				b = base
			}
			req, err := http.NewRequestWithContext(t.Context(), tt.method, b+tt.path, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if authz != "" {
				req.Header.Set("Authorization", authz)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("%s %s = %d %.300s, want %d", tt.method, tt.path, resp.StatusCode, body, tt.status)
			}
			validateResponse(t, router, req, resp, body)
		})
	}
}

// validateResponse checks a response against the document's operation
// for req: its status is documented, and its body and headers match the
// schema of its content type.
func validateResponse(t *testing.T, router routers.Router, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	// The document's server is the default endpoint; routes are found by
	// path and method.
	docReq := req.Clone(t.Context())
	docReq.URL.Scheme, docReq.URL.Host = "http", "127.0.0.1:8080"
	route, params, err := router.FindRoute(docReq)
	if err != nil {
		t.Fatalf("%s %s: not in openapi.json: %v", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: docReq, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(t.Context(), in); err != nil {
		t.Errorf("%s %s = %d: %v\nbody: %.500s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
}

// TestOpenAPIStream: the alert stream answers the content type the
// document gives it (its body never ends, so it is not read whole).
func TestOpenAPIStream(t *testing.T) {
	doc := loadOpenAPI(t)
	st := newState(t)
	_, base := start(t, Deps{State: st, Alerts: &alerts{st: st.st}})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/alerts/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	content := doc.Paths.Value("/api/v1/alerts/stream").Get.Responses.Status(200).Value.Content
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || content.Get(ct) == nil || !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("stream: %d %q, want 200 text/event-stream as documented", resp.StatusCode, ct)
	}
}

// TestOpenAPIEnums: the values the document lists for each filter are
// those the server accepts.
func TestOpenAPIEnums(t *testing.T) {
	doc := loadOpenAPI(t)
	param := func(path, name string) []any {
		op := doc.Paths.Value(path).Get
		for _, p := range op.Parameters {
			if p.Value.Name == name {
				return p.Value.Schema.Value.Enum
			}
		}
		t.Fatalf("%s has no parameter %s", path, name)
		return nil
	}
	strs := func(vs ...any) []string {
		var out []string
		for _, v := range vs {
			out = append(out, fmt.Sprint(v))
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name      string
		doc, code []string
	}{
		{"verdict", strs(doc.Components.Schemas["Verdict"].Value.Enum...), sortedStrings(assess.Verdicts)},
		{"tier", strs(doc.Components.Schemas["Tier"].Value.Enum...), sortedStrings(assess.Tiers)},
		{"exposure", strs(param("/api/v1/findings", "exposure")...), sortedStrings(assess.Exposures)},
		{"sort", strs(param("/api/v1/findings", "sort")...), sortedStrings(report.FindingSorts)},
		{"kind", strs(param("/api/v1/alerts", "kind")...), sortedStrings(detect.Kinds)},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.doc, tt.code); diff != "" {
			t.Errorf("%s (-openapi.json +server):\n%s", tt.name, diff)
		}
	}
}

// sortedStrings is vs as sorted strings.
func sortedStrings[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	slices.Sort(out)
	return out
}
