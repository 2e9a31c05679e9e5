package waf

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/knowledge"
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
	if _, err := legitimateCorpus(); err != nil {
		t.Fatal(err)
	}
}

// TestExploitKnowledgeAcceptance is the acceptance of issue 14 for the
// patches built from exploit knowledge: every variant of the
// vulnerability, and every mutation of it, is denied, and every legitimate
// request (the traces and the legitimate corpus of the format) passes,
// both through evident waf proxy (over HTTP, bodies also chunked) and
// through Coraza loading the exported SecLang without proxy/ (what only
// the proxy enforces is listed in the patch).
func TestExploitKnowledgeAcceptance(t *testing.T) {
	traffic := shopTraffic()
	as := []assess.Assessment{
		executedExposed("gateway", "GO-2026-5970", "golang.org/x/text", "GET /search"),
		executedExposed("gateway", "GO-2020-0036", "gopkg.in/yaml.v2", "POST /config"),
		executedExposed("gateway", "GO-2025-3553", "github.com/golang-jwt/jwt/v5", "GET /account"),
		executedExposed("gateway", "GHSA-jfh8-c2jp-5v3q", "org.apache.logging.log4j:log4j-core", "POST /orders"),
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
	for _, p := range set.Patches {
		v := p.Validation
		if p.Knowledge == nil {
			t.Errorf("%s: built from the class template, want exploit knowledge", p.Vulnerability)
			continue
		}
		t.Logf("%s: %s; exploits %d/%d (export %d), mutations %d/%d (export %d) %v, legitimate %d/%d, %s corpus %d/%d",
			p.Vulnerability, p.Detections, v.ExploitsBlocked, v.ExploitsTotal, v.ExploitsBlockedExported,
			v.MutationsBlocked, v.MutationsTotal, v.MutationsBlockedExported, v.Mutations,
			v.LegitimatePassed, v.LegitimateTotal, p.Knowledge.Format, v.CorpusPassed, v.CorpusTotal)
		if v.ExploitsTotal < 3 || v.ExploitsBlocked != v.ExploitsTotal || v.ExploitsBlockedExported != v.ExploitsTotal {
			t.Errorf("%s: %d exploits, %d blocked, %d by the export alone", p.Vulnerability, v.ExploitsTotal, v.ExploitsBlocked, v.ExploitsBlockedExported)
		}
		if v.MutationsBlocked != v.MutationsTotal || v.MutationsBlockedExported != v.MutationsTotal {
			t.Errorf("%s: mutations %d/%d blocked, %d by the export alone; missed %v", p.Vulnerability, v.MutationsBlocked, v.MutationsTotal, v.MutationsBlockedExported, v.MutationsMissed)
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
	srv := httptest.NewServer(proxy.Handler())
	defer srv.Close()
	engine, err := os.ReadFile(filepath.Join(dir, EngineFile))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "gateway.conf"))
	if err != nil {
		t.Fatal(err)
	}
	exported, err := newWAF(string(engine), string(conf))
	if err != nil {
		t.Fatalf("stock SecLang: %v", err)
	}
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
				req := s.instantiate(ep, et)
				reqs := []mutation{{"as published", req}}
				reqs = append(reqs, mutations(req)...)
				for _, m := range reqs {
					for _, chunked := range []bool{false, true} {
						if chunked && m.req.Body == "" {
							continue
						}
						if code := send(m.req, chunked); code != http.StatusForbidden {
							t.Errorf("%s %q, %s (chunked %v): proxy status %d, want 403", p.Vulnerability, s.Name, m.name, chunked, code)
						}
					}
					if _, by, err := replay(exported, m.req); err != nil || by == 0 {
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
				good = append(good, s.instantiate(ep, traffic.Endpoint(p.Service, ep)))
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
