package waf

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidentsec/evident/internal/logtest"
	"github.com/evidentsec/evident/internal/telemetry"
)

// TestProxyAuditNamesService: a proxy that enforces the patches of two
// services (--service gateway,storefront) says in each audit line whose
// patch's rule decided, and, for a request no patch's rule denied, whose
// patched endpoints it was sent to; the lines named no service, so an
// operator could not tell which service's rule blocked.
func TestProxyAuditNamesService(t *testing.T) {
	var spans []telemetry.Span
	queries := []string{"q=creme", "q=cr%C3%A8me+br%C3%BBl%C3%A9e", "q=tea"}
	for i := range 40 {
		q := queries[i%len(queries)]
		spans = append(spans,
			serverSpan("gateway", "GET", "/search", "/search", q, nil),
			serverSpan("storefront", "GET", "/search", "/search", q, nil),
			serverSpan("storefront", "GET", "/find", "/find", q, nil),
		)
	}
	dir, _ := exportedRules(t, trafficFromSpans(spans, 0),
		executedExposed("gateway", "GO-2026-5970", "golang.org/x/text", "GET /search"),
		executedExposed("storefront", "GO-2026-5970", "golang.org/x/text", "GET /find", "GET /search"),
	)
	// A rule of the directory that is no patch's, after the patches'
	// scope rules (phase 1) have run.
	engine := filepath.Join(dir, EngineFile)
	data, err := os.ReadFile(engine)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, "SecRule REQUEST_HEADERS:X-Deny \"@streq 1\" \"id:1000,phase:2,deny,status:403,nolog\"\n"...)
	if err := os.WriteFile(engine, data, 0o644); err != nil {
		t.Fatal(err)
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer upstream.Close()
	audit := &logtest.Buffer{}
	p, _ := startProxy(t, dir, upstream.URL, audit)

	tests := []struct {
		name, target string
		deny         bool // send X-Deny: 1
		wantRule     int  // 0: a patch's
		wantService  string
	}{
		{name: "storefront's endpoint", target: "/find?q=%C0%AF", wantService: "storefront"},
		{name: "both services' endpoint", target: "/search?q=%C0%AF", wantService: "gateway"},
		{name: "other rule, storefront's endpoint", target: "/find?q=tea", deny: true, wantRule: 1000, wantService: "storefront"},
		{name: "other rule, both services' endpoint", target: "/search?q=tea", deny: true, wantRule: 1000, wantService: "gateway,storefront"},
		{name: "other rule, no patched endpoint", target: "/products", deny: true, wantRule: 1000, wantService: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(audit.String())
			req, err := http.NewRequest("GET", "http://"+p.Addr()+tt.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.deny {
				req.Header.Set("X-Deny", "1")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
			var blocked []AuditRecord
			for _, line := range strings.Split(strings.TrimSpace(audit.String()[before:]), "\n") {
				var rec AuditRecord
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("audit line %q: %v", line, err)
				}
				if !strings.Contains(line, `"service":`) {
					t.Errorf("audit line %s has no service field", line)
				}
				if rec.Action == "blocked" {
					blocked = append(blocked, rec)
				}
			}
			if len(blocked) != 1 {
				t.Fatalf("blocked lines %+v, want one", blocked)
			}
			got := blocked[0]
			if got.Service != tt.wantService {
				t.Errorf("blocked by rule %d of service %q, want %q", got.RuleID, got.Service, tt.wantService)
			}
			switch {
			case tt.wantRule == 0 && got.Vuln != "GO-2026-5970":
				t.Errorf("blocked by rule %d (vulnerability %q), want a patch's rule", got.RuleID, got.Vuln)
			case tt.wantRule != 0 && got.RuleID != tt.wantRule:
				t.Errorf("blocked by rule %d, want %d", got.RuleID, tt.wantRule)
			}
		})
	}
}
