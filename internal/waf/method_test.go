package waf

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/evidentsec/evident/internal/assess"
)

// TestHEADExploitBlocked: a GET endpoint's patch also guards HEAD, which
// net/http's "GET /search", Express's app.get and most frameworks serve
// with the GET handler. The exported rules once scoped the patch with
// REQUEST_METHOD "@streq GET", so HEAD /search?q=%C0%AF%FF%FE passed stock
// Coraza and the proxy and reached the handler.
func TestHEADExploitBlocked(t *testing.T) {
	dir, set := shopRules(t)
	const exploit = "/search?q=%C0%AF%FF%FE"

	// The validation sent every exploit request as HEAD too, as a
	// mutation, and the patch stopped them all.
	v := set.Patches[0].Validation
	if !slices.Contains(v.Mutations, "method HEAD") || v.MutationsBlocked != v.MutationsTotal || v.Unproven != "" {
		t.Errorf("mutations %v: %d of %d blocked, unproven %q; want HEAD among them, all blocked", v.Mutations, v.MutationsBlocked, v.MutationsTotal, v.Unproven)
	}

	// Stock Coraza loading the exported files alone.
	exported := loadExported(t, dir, "gateway.conf")
	for _, tt := range []struct {
		method, target string
		blocked        bool
	}{
		{"GET", exploit, true},
		{"HEAD", exploit, true},
		{"HEAD", "/search?q=tea", false},
		{"HEAD", "/products/%ff", false}, // another endpoint: not the patch's
	} {
		_, by, err := replay(exported, Request{Method: tt.method, Target: tt.target})
		if err != nil {
			t.Fatal(err)
		}
		if (by != 0) != tt.blocked {
			t.Errorf("exported rules, %s %s: blocked by %d, want blocked %v", tt.method, tt.target, by, tt.blocked)
		}
	}

	// The proxy over HTTP: the exploit as HEAD never reaches the upstream.
	var reached []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = append(reached, r.Method+" "+r.URL.RequestURI())
	}))
	defer upstream.Close()
	p, _ := startProxy(t, dir, upstream.URL, nil)
	client := &http.Client{}
	defer client.CloseIdleConnections()
	resp, err := client.Head("http://" + p.Addr() + exploit)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(reached) != 0 {
		t.Errorf("HEAD %s through the proxy: status %d, upstream got %q; want 403 and nothing", exploit, resp.StatusCode, reached)
	}
}

// TestScopeMethods: a GET or HEAD endpoint's scope takes both methods,
// exactly; any other method only itself.
func TestScopeMethods(t *testing.T) {
	for _, tt := range []struct {
		endpoint string
		match    []string
		miss     []string
	}{
		{"GET /search", []string{"GET", "HEAD"}, []string{"POST", "GE", "HEA", "GETS", "get", ""}},
		{"HEAD /search", []string{"GET", "HEAD"}, []string{"POST", "OPTIONS"}},
		{"POST /orders", []string{"POST"}, []string{"GET", "HEAD", "PUT"}},
		{"DELETE /orders/{id}", []string{"DELETE"}, []string{"GET", "HEAD"}},
	} {
		t.Run(tt.endpoint, func(t *testing.T) {
			p := Patch{Service: "gateway", Vulnerability: "TEST-1", Classification: Classification{Class: ClassSQLInjection}}
			p.Endpoints = mergeEndpoints(nil, []string{tt.endpoint}, &p.Notes)
			build(DefaultConfig(), &p, 4_900_100, NewTraffic(0))
			scope := p.Rules[0]
			if scope.Kind != KindScope || !strings.HasPrefix(scope.SecLang, "SecRule REQUEST_METHOD ") {
				t.Fatalf("first rule is not the method scope:\n%s", scope.SecLang)
			}
			// A request in scope is denied by a rule on the patch's variable.
			w, err := newWAF(scope.SecLang, `SecRule TX:evident_4900100 "@eq 1" "id:1,phase:1,deny,status:403"`)
			if err != nil {
				t.Fatal(err)
			}
			target := examplePath(p.Endpoints[0].Route, "1")
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

// TestValidationCatchesGETOnlyScope: were a GET endpoint's scope to match
// GET alone again, evident's own validation would say so: the exploits
// sent as HEAD get through, and the patch is not proven.
func TestValidationCatchesGETOnlyScope(t *testing.T) {
	traffic := shopTraffic()
	set, err := Generate(DefaultConfig(), []assess.Assessment{executedExposed("gateway", "GO-2026-5970", "golang.org/x/text", "GET /search")}, loadRecords(t), traffic)
	if err != nil {
		t.Fatal(err)
	}
	p := &set.Patches[0]
	p.Rules[0].links[0].op = "@streq GET"
	p.Rules[0].render(p)
	corpus, err := LoadCorpus(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(context.Background(), set, traffic, corpus); err != nil {
		t.Fatal(err)
	}
	v := p.Validation
	if v.MutationsBlocked == v.MutationsTotal || !strings.Contains(v.Unproven, "method HEAD") {
		t.Errorf("mutations %d of %d blocked, missed %q, unproven %q; want the HEAD requests missed and the patch unproven", v.MutationsBlocked, v.MutationsTotal, v.MutationsMissed, v.Unproven)
	}
	for _, m := range v.MutationsMissed {
		if !strings.Contains(m, "method HEAD") {
			t.Errorf("missed %q: not a HEAD request", m)
		}
	}
}
