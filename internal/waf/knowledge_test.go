package waf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/corazawaf/coraza/v3"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/knowledge"
	"go.yaml.in/yaml/v3"
)

// TestShippedExploitKnowledge: every shipped entry loads, names only
// checks evident implements, and has its three independent variants.
func TestShippedExploitKnowledge(t *testing.T) {
	x, err := knowledge.DefaultExploits()
	if err != nil {
		t.Fatal(err)
	}
	if x.Len() < 4 {
		t.Fatalf("%d entries, want at least 4", x.Len())
	}
	for _, id := range []string{"GO-2026-5970", "GO-2020-0036", "CVE-2025-30204", "CVE-2021-44228"} {
		for _, e := range x.Lookup(id) {
			if _, _, err := knowledgeDetections(e); err != nil {
				t.Errorf("%s: %v", id, err)
			}
		}
	}
	byFormat, err := legitimateCorpus()
	if err != nil {
		t.Fatal(err)
	}
	// A variant or a legitimate sample that its own format's parser
	// refuses proves nothing: the application would refuse it too.
	samples := map[string][]Sample{}
	for f, ss := range byFormat {
		samples["legitimate "+f] = ss
	}
	for _, id := range []string{"GO-2020-0036", "CVE-2020-36518", "CVE-2022-1471", "CVE-2019-10744", "CVE-2021-23337", "CVE-2020-1747", "CVE-2024-22195", "CVE-2024-34064", "CVE-2021-44228", "CVE-2022-42889", "CVE-2021-44906"} {
		for _, e := range x.Lookup(id) {
			for _, v := range e.Variants {
				samples[id] = append(samples[id], Sample(v))
			}
		}
	}
	for what, ss := range samples {
		for _, s := range ss {
			ct := s.ContentType
			if ct == "" {
				ct = s.Headers["Content-Type"]
			}
			switch {
			case strings.Contains(ct, "json") && !json.Valid([]byte(s.Payload)):
				t.Errorf("%s %q: not JSON", what, s.Name)
			case strings.Contains(ct, "yaml"):
				dec := yaml.NewDecoder(strings.NewReader(s.Payload))
				for {
					var n yaml.Node
					if err := dec.Decode(&n); errors.Is(err, io.EOF) {
						break
					} else if err != nil {
						t.Errorf("%s %q: not YAML: %v", what, s.Name, err)
						break
					}
				}
			}
		}
	}
}

// TestExploitKnowledgeAcceptance is the acceptance of issue 14 for the
// patches built from exploit knowledge: every variant of the
// vulnerability, and every mutation of it, is denied, and every legitimate
// request (the traces and the legitimate corpus of the format) passes,
// both through evident waf proxy (over HTTP, bodies also chunked) and
// through Coraza loading the exported SecLang without proxy/, but for the
// exploits the validation marks proxy_only (a compressed archive), whose
// rules the patch's header lists.
func TestExploitKnowledgeAcceptance(t *testing.T) {
	traffic := shopTraffic()
	// The shop's executed and exposed finding on its own endpoint, with
	// its recorded traffic; every other shipped entry on an endpoint of
	// its own, found by an alias where the record has one.
	as := []assess.Assessment{
		executedExposed("gateway", "GO-2026-5970", "golang.org/x/text", "GET /search"),
		executedExposed("gateway", "GO-2025-3553", "github.com/golang-jwt/jwt/v5", "GET /account"),
		executedExposed("gateway", "GHSA-jfh8-c2jp-5v3q", "org.apache.logging.log4j:log4j-core", "POST /orders"),
	}
	x, err := knowledge.DefaultExploits()
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"GO-2020-0036", "CVE-2022-22965", "CVE-2022-42889", "CVE-2020-36518", "CVE-2022-1471", "CVE-2019-10744", "CVE-2020-1747", "CVE-2024-41946", "GO-2024-2958", "GO-2026-5030", "CVE-2021-23337", "CVE-2024-22195", "CVE-2024-34064", "CVE-2021-44906", "GO-2026-5025", "GO-2026-5027", "GO-2026-5029", "CVE-2024-45590", "CVE-2024-29041", "CVE-2023-42503", "CVE-2024-25710", "CVE-2020-28500", "CVE-2024-26308", "GO-2026-5028"} {
		e := x.Lookup(id)
		if len(e) != 1 {
			t.Fatalf("%s: %d entries", id, len(e))
		}
		as = append(as, executedExposed("gateway", id, e[0].Package, fmt.Sprintf("POST /e%d", i)))
	}
	if len(as) != x.Len() {
		t.Fatalf("%d assessments for %d shipped entries: list every entry here", len(as), x.Len())
	}
	set, err := Generate(DefaultConfig(), as, loadRecords(t), traffic)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Patches) != len(as) {
		t.Fatalf("%d patches, want %d (skipped %v)", len(set.Patches), len(as), set.Skipped)
	}
	corpus, err := LoadCorpus(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(context.Background(), set, traffic, corpus); err != nil {
		t.Fatal(err)
	}
	proxyOnly := map[string]bool{} // vulnerability NUL variant: stopped by the proxy alone
	for _, p := range set.Patches {
		v := p.Validation
		if p.Knowledge == nil {
			t.Errorf("%s: built from the class template, want exploit knowledge", p.Vulnerability)
			continue
		}
		if p.Knowledge.NoVariants != "" {
			// Nothing proves it: every detection is detection-only, the
			// reason said in the patch, and legitimate traffic passes.
			t.Logf("%s: %s; unproven: %s", p.Vulnerability, p.Detections, v.Unproven)
			if !strings.Contains(v.Unproven, "no exploit variant") || !strings.Contains(p.SecLang(), "# not proven, so every detection is detection-only: no exploit variant") {
				t.Errorf("%s: no variant, and the patch does not say so: unproven %q", p.Vulnerability, v.Unproven)
			}
			for _, r := range p.Rules {
				if r.Kind == KindDetection && r.Mode != ModeDetect {
					t.Errorf("%s: rule %d %q blocks without a variant to prove it", p.Vulnerability, r.ID, r.Name)
				}
			}
			if v.LegitimatePassed != v.LegitimateTotal || v.CorpusPassed != v.CorpusTotal || v.CorpusTotal == 0 {
				t.Errorf("%s: legitimate %d/%d, corpus %d/%d", p.Vulnerability, v.LegitimatePassed, v.LegitimateTotal, v.CorpusPassed, v.CorpusTotal)
			}
			continue
		}
		t.Logf("%s: %s; exploits %d/%d (export %d), mutations %d/%d (export %d) %v, legitimate %d/%d, %s corpus %d/%d",
			p.Vulnerability, p.Detections, v.ExploitsBlocked, v.ExploitsTotal, v.ExploitsBlockedExported,
			v.MutationsBlocked, v.MutationsTotal, v.MutationsBlockedExported, v.Mutations,
			v.LegitimatePassed, v.LegitimateTotal, p.Knowledge.Format, v.CorpusPassed, v.CorpusTotal)
		// What only the proxy stops (a compressed archive, which SecLang
		// cannot open) must be said so: each such exploit and mutation is
		// marked proxy_only, and the patch's header lists the proxy-only
		// rules. The exported SecLang alone must stop every other one.
		nProxyOnly := 0
		for _, e := range v.Exploits {
			if e.ProxyOnly {
				nProxyOnly++
				proxyOnly[p.Vulnerability+"\x00"+e.Sample] = true
			}
		}
		if nProxyOnly > 0 && !strings.Contains(p.SecLang(), "# enforced only by evident waf proxy") {
			t.Errorf("%s: %d exploits only the proxy stops, and the exported header lists no proxy-only rule", p.Vulnerability, nProxyOnly)
		}
		if v.ExploitsTotal < 3 || v.ExploitsBlocked != v.ExploitsTotal || v.ExploitsBlockedExported+nProxyOnly != v.ExploitsTotal {
			t.Errorf("%s: %d exploits, %d blocked, %d by the export alone, %d said to need the proxy", p.Vulnerability, v.ExploitsTotal, v.ExploitsBlocked, v.ExploitsBlockedExported, nProxyOnly)
		}
		for _, m := range v.MutationsProxyOnly {
			proxyOnly[p.Vulnerability+"\x00"+m] = true
		}
		if nProxyOnly+len(v.MutationsProxyOnly) > 0 && !strings.Contains(p.SecLang(), "# enforced only by evident waf proxy") {
			t.Errorf("%s: %d mutations only the proxy stops, and the exported header lists no proxy-only rule", p.Vulnerability, len(v.MutationsProxyOnly))
		}
		if v.MutationsBlocked != v.MutationsTotal || v.MutationsBlockedExported+len(v.MutationsProxyOnly) != v.MutationsTotal {
			t.Errorf("%s: mutations %d/%d blocked, %d by the export alone; missed %v", p.Vulnerability, v.MutationsBlocked, v.MutationsTotal, v.MutationsBlockedExported, v.MutationsMissed)
		}
		if v.Unproven != "" || v.CorpusTotal == 0 {
			t.Errorf("%s: unproven %q, %d requests of the legitimate %s corpus", p.Vulnerability, v.Unproven, v.CorpusTotal, p.Knowledge.Format)
		}
		if v.LegitimatePassed != v.LegitimateTotal || v.CorpusPassed != v.CorpusTotal || v.DetectionOnly != 0 {
			t.Errorf("%s: legitimate %d/%d, corpus %d/%d, %d rules detection-only; blocked %v %v",
				p.Vulnerability, v.LegitimatePassed, v.LegitimateTotal, v.CorpusPassed, v.CorpusTotal, v.DetectionOnly, v.Blocked, v.CorpusBlocked)
		}
	}

	dir := t.TempDir()
	if err := Export(dir, set); err != nil {
		t.Fatal(err)
	}
	reached := 0
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		reached++
	}))
	defer upstream.Close()
	proxy, _ := startProxy(t, dir, upstream.URL, nil)
	srv := httptest.NewServer(proxy.handler)
	defer srv.Close()
	exported := loadExported(t, dir, "gateway.conf")
	send := func(r Request, chunked bool) int {
		t.Helper()
		var body io.Reader
		if r.Body != "" {
			body = strings.NewReader(r.Body)
			if chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
		}
		req, err := http.NewRequest(r.Method, srv.URL+r.Target, body)
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		for k, v := range r.Headers {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range set.Patches {
		for _, ep := range p.Endpoints {
			et := traffic.Endpoint(p.Service, ep)
			for _, s := range p.Knowledge.Variants {
				req := instantiate(s, ep, et)
				reqs := []mutation{{"as published", req}}
				reqs = append(reqs, mutations(req, tamperMethod(ep, traffic.Endpoints(p.Service)), readsDocuments(&p))...)
				for _, m := range reqs {
					for _, chunked := range []bool{false, true} {
						if chunked && m.req.Body == "" {
							continue
						}
						if code := send(m.req, chunked); code != http.StatusForbidden {
							t.Errorf("%s %q, %s (chunked %v): proxy status %d, want 403", p.Vulnerability, s.Name, m.name, chunked, code)
						}
					}
					if _, by, err := replay(exported, m.req); err != nil || by == 0 && !proxyOnly[p.Vulnerability+"\x00"+s.Name] && !proxyOnly[p.Vulnerability+"\x00"+s.Name+", "+m.name] {
						t.Errorf("%s %q, %s: the exported SecLang alone lets it through (%v)", p.Vulnerability, s.Name, m.name, err)
					}
				}
			}
		}
	}
	if reached != 0 {
		t.Errorf("%d exploit requests reached the upstream", reached)
	}
	byFormat, _ := legitimateCorpus()
	for _, p := range set.Patches {
		var good []Request
		for _, ep := range p.Endpoints {
			for _, s := range byFormat[p.Knowledge.Format] {
				good = append(good, instantiate(s, ep, traffic.Endpoint(p.Service, ep)))
			}
		}
		good = append(good, traffic.Requests(p.Service)...)
		for _, r := range good {
			if code := send(r, false); code != http.StatusOK {
				t.Errorf("%s: legitimate %s: proxy status %d, want 200", p.Vulnerability, truncate(r.String(), 120), code)
			}
			if _, by, err := replay(exported, r); err != nil || by != 0 {
				t.Errorf("%s: legitimate %s: the exported SecLang denies it (rule %d, %v)", p.Vulnerability, truncate(r.String(), 120), by, err)
			}
		}
	}
}

// TestUnprovenPatchIsDetectionOnly: a patch that lets one of its own
// exploit variants through ships every detection detection-only, with the
// reason; a check evident does not implement falls back on the template.
func TestUnprovenPatchIsDetectionOnly(t *testing.T) {
	const file = `version: 1
entries:
  - id: GO-2026-5970
    summary: test entry
    ecosystem: Go
    package: golang.org/x/text
    vectors: [{in: query}]
    format: text
    condition: invalid UTF-8
    checks: [{check: invalid_utf8, reference: "https://example.com/fix"}]
    variants:
      - {name: overlong, source: "https://example.com/a", in: query, encoded: true, payload: "%c0%af"}
      - {name: truncated, source: "https://example.com/b", in: query, encoded: true, payload: "%c0"}
      - {name: valid text the check cannot see, source: "https://example.com/c", in: query, payload: "tea"}
  - id: GO-2020-0036
    summary: test entry
    ecosystem: Go
    package: gopkg.in/yaml.v2
    vectors: [{in: body}]
    format: yaml
    condition: unknown
    checks: [{check: no_such_check, reference: "https://example.com/fix"}]
    variants:
      - {name: a, source: "https://example.com/a", in: body, payload: "a"}
      - {name: b, source: "https://example.com/b", in: body, payload: "b"}
      - {name: c, source: "https://example.com/c", in: body, payload: "c"}
`
	x, err := knowledge.LoadExploits(strings.NewReader(file), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Exploits = x
	traffic := shopTraffic()
	set, err := Generate(cfg, []assess.Assessment{
		executedExposed("gateway", "GO-2026-5970", "golang.org/x/text", "GET /search"),
		executedExposed("gateway", "GO-2020-0036", "gopkg.in/yaml.v2", "POST /config"),
	}, loadRecords(t), traffic)
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
	for _, p := range set.Patches {
		switch p.Vulnerability {
		case "GO-2026-5970":
			if p.Validation.Unproven == "" || !strings.Contains(p.SecLang(), "# not proven") {
				t.Errorf("unproven patch not said so: %+v", p.Validation)
			}
			for _, r := range p.Rules {
				if r.Kind != KindScope && (r.Mode != ModeDetect || !strings.Contains(r.Reason, "not proven")) {
					t.Errorf("rule %d %q: mode %s (%s), want detection-only as not proven", r.ID, r.Name, r.Mode, r.Reason)
				}
			}
		case "GO-2020-0036":
			if p.Knowledge != nil || !strings.HasPrefix(p.Detections, "class template") || !strings.Contains(strings.Join(p.Notes, "\n"), "no_such_check") {
				t.Errorf("unknown check: detections %q, notes %q; want the class template and a note", p.Detections, p.Notes)
			}
		}
	}
}

// TestCheckPatterns: the regular expressions of the HTML checks (built
// without look-ahead) and of param_depth against inputs on either side of
// their condition.
func TestCheckPatterns(t *testing.T) {
	tests := []struct {
		check, in string
		threshold int
		want      bool
	}{
		{"html_foreign_raw_text", `<svg><desc><span></desc><mtext><style><!--</style><img src=1 onerror=alert(1)>-->`, 0, true},
		{"html_foreign_raw_text", `<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>`, 0, true},
		{"html_foreign_raw_text", `<MATH><MTEXT><TABLE><MGLYPH><STYLE><IMG SRC=x ONERROR=alert(1)>`, 0, true},
		{"html_foreign_raw_text", `<svg><noscript><p title="</noscript><img src=x onerror=alert(1)>">`, 0, true},
		{"html_foreign_raw_text", `<svg><title>4 stars</title><style>.star { fill: gold } .a > b { }</style><path d="M1 1"/></svg>`, 0, false},
		{"html_foreign_raw_text", `<svg><style>.a{}</style ><style>.b{}</STYLE></svg>`, 0, false},
		{"html_foreign_raw_text", `<style><img src=x></style> outside foreign content`, 0, false},
		{"html_doctype_reference", `<!DOCTYPE html SYSTEM "&#62;&lt;img src=x onerror=alert(1)&gt;">`, 0, true},
		{"html_doctype_reference", `<!doctype &gt;>`, 0, true},
		{"html_doctype_reference", `<!DOCTYPE html PUBLIC "-//W3C//DTD HTML 4.01//EN" "http://www.w3.org/TR/html4/strict.dtd"><p>Tea &amp; cake</p>`, 0, false},
		{"param_depth", "a" + strings.Repeat("[p]", 33), 32, true},
		{"param_depth", "a" + strings.Repeat("[]", 40), 32, true},
		{"param_depth", "a" + strings.Repeat("[p]", 32), 32, false},
		{"param_depth", "user[address][city]", 32, false},
	}
	for _, tt := range tests {
		ds, err := checkDetections(knowledge.Check{Kind: tt.check, Threshold: tt.threshold}, []knowledge.Vector{{In: "body"}})
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(strings.TrimPrefix(ds[0].links[0].op, "@rx "))
		if got := re.MatchString(tt.in); got != tt.want {
			t.Errorf("%s on %q: %v, want %v", tt.check, tt.in, got, tt.want)
		}
	}
}

// loadExported loads the engine file and the service's file that an
// export wrote into dir, alone, as stock Coraza would.
func loadExported(t *testing.T, dir, service string) coraza.WAF {
	t.Helper()
	engine, err := os.ReadFile(filepath.Join(dir, EngineFile))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(dir, service))
	if err != nil {
		t.Fatal(err)
	}
	w, err := newWAF(string(engine), string(conf))
	if err != nil {
		t.Fatalf("stock SecLang: %v", err)
	}
	return w
}
