package waf

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/telemetry"
)

// TestMethodTamperingBlocked: the shop's patch guards GET /search by any
// method, since the traces show no other endpoint on /search. The exported
// rules once scoped the patch with REQUEST_METHOD "@streq GET", so HEAD
// /search?q=%C0%AF%FF%FE passed stock Coraza and the proxy and reached the
// handler; then with "@rx ^(?:GET|HEAD)$", so POST did, which a route
// registered for every method (net/http's "/search" without a method,
// Express's app.all) serves with the same handler. The rules learned from
// the GET traffic (the parameter allow-list) keep to GET and HEAD.
func TestMethodTamperingBlocked(t *testing.T) {
	dir, set := shopRules(t)
	const exploit = "/search?q=%C0%AF%FF%FE"

	// The validation sent every exploit request as HEAD and as POST too,
	// as mutations, and the patch stopped them all.
	v := set.Patches[0].Validation
	if !slices.Contains(v.Mutations, "method HEAD") || !slices.Contains(v.Mutations, "method POST") || v.MutationsBlocked != v.MutationsTotal || v.Unproven != "" {
		t.Errorf("mutations %v: %d of %d blocked, unproven %q; want HEAD and POST among them, all blocked", v.Mutations, v.MutationsBlocked, v.MutationsTotal, v.Unproven)
	}

	// Stock Coraza loading the exported files alone.
	exported := loadExported(t, dir, "gateway.conf")
	for _, tt := range []struct {
		method, target string
		blocked        bool
	}{
		{"GET", exploit, true},
		{"HEAD", exploit, true},
		{"POST", exploit, true},
		{"PUT", exploit, true},
		{"OPTIONS", exploit, true},
		{"HEAD", "/search?q=tea", false},
		{"POST", "/search?q=tea", false},
		{"GET", "/search?q=tea&debug=1", true}, // outside the parameters seen with GET
		{"POST", "/search?q=tea&debug=1", false},
		{"POST", "/products/%ff", false}, // another endpoint: not the patch's
	} {
		_, by, err := replay(exported, Request{Method: tt.method, Target: tt.target})
		if err != nil {
			t.Fatal(err)
		}
		if (by != 0) != tt.blocked {
			t.Errorf("exported rules, %s %s: blocked by %d, want blocked %v", tt.method, tt.target, by, tt.blocked)
		}
	}

	// The proxy over HTTP: the exploit as HEAD or POST never reaches the
	// upstream.
	var reached []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = append(reached, r.Method+" "+r.URL.RequestURI())
	}))
	defer upstream.Close()
	p, _ := startProxy(t, dir, upstream.URL, nil)
	client := &http.Client{}
	defer client.CloseIdleConnections()
	for _, method := range []string{http.MethodHead, http.MethodPost} {
		req, err := http.NewRequest(method, "http://"+p.Addr()+exploit, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s %s through the proxy: status %d, want 403", method, exploit, resp.StatusCode)
		}
	}
	if len(reached) != 0 {
		t.Errorf("the upstream got %q, want nothing", reached)
	}
}

// TestScopeMethods: a patch's scope rules match its endpoints' routes by
// every method but those the traces show on the route only at other
// endpoints; GET and HEAD go together.
func TestScopeMethods(t *testing.T) {
	for _, tt := range []struct {
		name      string
		endpoints []string // the patch's; none: every endpoint seen
		seen      []string // the endpoints in the traces
		methods   []string // Patch.Methods
		match     []string
		miss      []string
	}{
		{
			name: "GET route seen with GET only", endpoints: []string{"GET /search"}, seen: []string{"GET /search", "DELETE /orders/{id}"},
			methods: []string{"/search by any method"},
			match:   []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get", "PROPFIND"},
		},
		{
			name: "GET vulnerable, DELETE seen", endpoints: []string{"GET /items/{id}"}, seen: []string{"GET /items/{id}", "DELETE /items/{id}", "PUT /items"},
			methods: []string{"/items/{id} by any method but DELETE (seen at another endpoint)"},
			match:   []string{"GET", "HEAD", "POST", "PUT", "PATCH", "OPTIONS", "DELET", "DELETES"},
			miss:    []string{"DELETE"},
		},
		{
			name: "POST endpoint", endpoints: []string{"POST /orders"}, seen: []string{"POST /orders", "GET /orders", "PATCH /orders"},
			methods: []string{"/orders by any method but GET, PATCH (seen at another endpoint)"},
			match:   []string{"POST", "PUT", "DELETE", "HEAD", "OPTIONS"},
			miss:    []string{"GET", "PATCH"},
		},
		{
			name: "HEAD endpoint takes GET", endpoints: []string{"HEAD /search"}, seen: []string{"HEAD /search", "GET /search", "POST /search"},
			methods: []string{"/search by any method but POST (seen at another endpoint)"},
			match:   []string{"GET", "HEAD", "PUT"},
			miss:    []string{"POST"},
		},
		{
			name: "two endpoints on one route", endpoints: []string{"GET /x", "POST /x"}, seen: []string{"GET /x", "POST /x", "PUT /x"},
			methods: []string{"/x by any method but PUT (seen at another endpoint)"},
			match:   []string{"GET", "HEAD", "POST", "PATCH"},
			miss:    []string{"PUT"},
		},
		{
			name: "every endpoint seen", seen: []string{"GET /x", "DELETE /x"},
			methods: []string{"/x by any method"},
			match:   []string{"GET", "DELETE", "POST"},
		},
		{
			name:  "whole service",
			match: []string{"GET", "HEAD", "POST", "DELETE", "PROPFIND"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var spans []telemetry.Span
			for _, s := range tt.seen {
				ep, err := ParseEndpoint(s)
				if err != nil {
					t.Fatal(err)
				}
				spans = append(spans, serverSpan("gateway", ep.Method, ep.Route, examplePath(ep.Route, "1"), "", nil))
			}
			p := Patch{Service: "gateway", Vulnerability: "TEST-1", Classification: Classification{Class: ClassSQLInjection}}
			p.Endpoints = mergeEndpoints(nil, tt.endpoints, &p.Notes)
			build(DefaultConfig(), &p, 4_900_100, trafficFromSpans(spans, 0))
			var got []string
			for _, rm := range p.Methods {
				got = append(got, rm.String())
			}
			if diff := cmp.Diff(tt.methods, got); diff != "" {
				t.Errorf("methods (-want +got):\n%s", diff)
			}
			// A request in scope is denied by a rule on the patch's variable.
			var rules []string
			for _, r := range p.Rules {
				if r.Kind == KindScope {
					rules = append(rules, r.SecLang)
				}
			}
			w, err := newWAF(append(rules, `SecRule TX:evident_4900100 "@eq 1" "id:1,phase:1,deny,status:403"`)...)
			if err != nil {
				t.Fatal(err)
			}
			target := "/anything"
			if len(p.Endpoints) > 0 {
				target = examplePath(p.Endpoints[0].Route, "1")
			}
			for _, m := range append(tt.match, tt.miss...) {
				tx := w.NewTransaction()
				it, err := inspectRequest(tx, Request{Method: m, Target: target})
				tx.Close()
				if err != nil {
					t.Fatal(err)
				}
				if want := slices.Contains(tt.match, m); (it != nil) != want {
					t.Errorf("%q %s: in scope %v, want %v", m, target, it != nil, want)
				}
			}
		})
	}
}

// TestValidationCatchesNarrowScope: were the scope of a GET endpoint on a
// route seen with GET alone to match fewer methods again, evident's own
// validation would say so: the exploits sent with the methods left out
// get through, and the patch is not proven. So would a detection that
// reads the query string alone: the exploit moved into a form body gets
// through.
func TestValidationCatchesNarrowScope(t *testing.T) {
	for _, tt := range []struct {
		op     string   // the method scope added, "" for none
		vars   string   // what the detection reads instead of its own, "" for its own
		missed []string // the methods whose mutations get through
	}{
		{"@rx ^(?:GET|HEAD)$", "", []string{"method POST"}},
		{"@streq GET", "", []string{"method HEAD", "method POST"}},
		{"", "ARGS_GET", []string{"method POST and query as form body"}},
	} {
		t.Run(tt.op+tt.vars, func(t *testing.T) {
			traffic := shopTraffic()
			set, err := Generate(DefaultConfig(), []assess.Assessment{executedExposed("gateway", "GO-2026-5970", "golang.org/x/text", "GET /search")}, loadRecords(t), traffic)
			if err != nil {
				t.Fatal(err)
			}
			p := &set.Patches[0]
			if tt.op != "" {
				p.Rules[0].links = append([]link{{vars: "REQUEST_METHOD", op: tt.op}}, p.Rules[0].links...)
			}
			p.Rules[0].render(p)
			for i := range p.Rules {
				r := &p.Rules[i]
				for j := range r.links {
					if l := &r.links[j]; tt.vars != "" && l.vars == "ARGS|ARGS_NAMES" {
						l.vars = tt.vars
						r.render(p)
					}
				}
			}
			corpus, err := LoadCorpus(nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(context.Background(), set, traffic, corpus); err != nil {
				t.Fatal(err)
			}
			v := p.Validation
			if v.MutationsBlocked == v.MutationsTotal || v.Unproven == "" {
				t.Errorf("mutations %d of %d blocked, unproven %q; want some missed and the patch unproven", v.MutationsBlocked, v.MutationsTotal, v.Unproven)
			}
			for _, want := range tt.missed {
				if !slices.ContainsFunc(v.MutationsMissed, func(m string) bool { return strings.Contains(m, ", "+want) }) {
					t.Errorf("missed %q: no %s request", v.MutationsMissed, want)
				}
			}
			for _, m := range v.MutationsMissed {
				if !slices.ContainsFunc(tt.missed, func(want string) bool { return strings.Contains(m, ", "+want) }) {
					t.Errorf("missed %q: not sent with %v", m, tt.missed)
				}
			}
		})
	}
}

// TestOtherEndpointsOfTheRoutePass: the legitimate requests of a route's
// other endpoints are replayed too. Its DELETE endpoint takes relative
// paths with ".." that the patch of GET /files would deny: the scope
// leaves DELETE out, so they pass and every rule blocks; a scope that
// took DELETE in would have its detection matched and downgraded, as any
// false positive.
func TestOtherEndpointsOfTheRoutePass(t *testing.T) {
	var spans []telemetry.Span
	for range 20 {
		spans = append(spans,
			serverSpan("gateway", "GET", "/files", "/files", "path=shared%2Freadme.txt", nil),
			serverSpan("gateway", "DELETE", "/files", "/files", "path=..%2Fshared%2Fold.txt", nil))
	}
	traffic := trafficFromSpans(spans, 0)
	corpus, err := LoadCorpus(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name          string
		widen         bool
		detectionOnly int
	}{
		{"DELETE left out", false, 0},
		{"DELETE taken in", true, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := Patch{Service: "gateway", Vulnerability: "TEST-1", Classification: Classification{Class: ClassPathTraversal}}
			p.Endpoints = mergeEndpoints(nil, []string{"GET /files"}, &p.Notes)
			build(DefaultConfig(), &p, 4_900_100, traffic)
			if got := p.Rules[0].SecLang; !strings.HasPrefix(got, `SecRule REQUEST_METHOD "!@rx ^(?:DELETE)$"`) {
				t.Fatalf("scope rule:\n%s\nwant DELETE left out", got)
			}
			if tt.widen {
				p.Rules[0].links = p.Rules[0].links[1:]
				p.Rules[0].render(&p)
			}
			set := &PatchSet{IDRange: [2]int{4_900_000, 4_999_999}, Patches: []Patch{p}}
			if err := Validate(context.Background(), set, traffic, corpus); err != nil {
				t.Fatal(err)
			}
			got := set.Patches[0]
			v := got.Validation
			if v.LegitimateTotal != 2 || v.LegitimatePassed != v.LegitimateTotal || v.DetectionOnly != tt.detectionOnly {
				t.Errorf("legitimate %d of %d passed, %d rules detection-only; want 2 of 2, %d", v.LegitimatePassed, v.LegitimateTotal, v.DetectionOnly, tt.detectionOnly)
			}
			// The exploits, sent with a method the traces do not show on
			// /files, are denied.
			if !slices.Contains(v.Mutations, "method POST") || v.MutationsBlocked != v.MutationsTotal && !tt.widen {
				t.Errorf("mutations %v: %d of %d blocked; want POST among them, all blocked", v.Mutations, v.MutationsBlocked, v.MutationsTotal)
			}
			for _, r := range got.Rules {
				if tt.widen && r.Mode == ModeDetect && !strings.Contains(r.Reason, "DELETE /files?path=..%2Fshared") {
					t.Errorf("rule %d detection-only for %q, want the DELETE request named", r.ID, r.Reason)
				}
			}
		})
	}
}
