package cli

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidentsec/evident/internal/waf"
	"github.com/prometheus/client_golang/prometheus"
)

// TestWAFExamplesProven is issue 14's acceptance on the examples: every
// executed and exposed vulnerability of the shop and of each example gets a
// patch built from its exploit knowledge, proven in the embedded engine (every variant
// and mutation blocked, by the proxy's rules and by the exported SecLang
// alone; every legitimate request of the traces and of its format's corpus
// passing) and, through evident waf proxy over HTTP, every variant is
// denied before the upstream while the legitimate corpus reaches it.
func TestWAFExamplesProven(t *testing.T) {
	type run struct {
		name        string
		report      []byte
		osv, traces string
		want        []string // service/vulnerability of the executed and exposed findings
	}
	runs := []run{{name: "shop", report: analyzeShop(t, "json"), osv: filepath.Join(shop, "recorded", "osv"),
		traces: filepath.Join(shop, "recorded", "traces.jsonl"), want: []string{"gateway/GO-2026-5970"}}}
	for _, e := range examples {
		runs = append(runs, run{name: e.dir, report: e.analyze(t, "json"), osv: e.path("recorded", "osv"),
			traces: e.path("recorded", e.traces), want: e.executedExposed})
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			rules, _, set := examplePatches(t, r.report, r.osv, r.traces)
			var got []string
			for _, p := range set.Patches {
				got = append(got, p.Service+"/"+p.Vulnerability)
			}
			if strings.Join(got, " ") != strings.Join(r.want, " ") {
				t.Fatalf("patches %v, want %v (skipped %+v)", got, r.want, set.Skipped)
			}
			var reached int
			upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				io.Copy(io.Discard, req.Body)
				reached++
			}))
			defer upstream.Close()
			reg := prometheus.NewRegistry()
			cfg := waf.DefaultProxyConfig()
			cfg.Upstream, cfg.Listen, cfg.Directives = upstream.URL, "127.0.0.1:0", rules
			proxy, err := waf.NewProxy(cfg, slog.New(slog.DiscardHandler), reg, reg)
			if err != nil {
				t.Fatal(err)
			}
			if err := proxy.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer proxy.Shutdown(context.Background())
			base := "http://" + proxy.Addr()
			for _, p := range set.Patches {
				v := p.Validation
				if p.Knowledge == nil {
					t.Errorf("%s: detections from %s, want exploit knowledge", p.Vulnerability, p.Detections)
					continue
				}
				t.Logf("%s in %s: %s; exploits %d/%d (exported SecLang alone %d), mutations %d/%d (alone %d) %v, legitimate %d/%d, %s corpus %d/%d",
					p.Vulnerability, p.Service, p.Detections, v.ExploitsBlocked, v.ExploitsTotal, v.ExploitsBlockedExported,
					v.MutationsBlocked, v.MutationsTotal, v.MutationsBlockedExported, v.Mutations,
					v.LegitimatePassed, v.LegitimateTotal, p.Knowledge.Format, v.CorpusPassed, v.CorpusTotal)
				switch {
				case v.Unproven != "" || v.DetectionOnly != 0:
					t.Errorf("%s: unproven %q, %d rules detection-only", p.Vulnerability, v.Unproven, v.DetectionOnly)
				case v.ExploitsTotal < 3 || v.ExploitsBlocked != v.ExploitsTotal || v.ExploitsBlockedExported != v.ExploitsTotal:
					t.Errorf("%s: %d exploit requests, %d blocked, %d by the exported SecLang alone", p.Vulnerability, v.ExploitsTotal, v.ExploitsBlocked, v.ExploitsBlockedExported)
				case v.MutationsTotal == 0 || v.MutationsBlocked != v.MutationsTotal || v.MutationsBlockedExported != v.MutationsTotal:
					t.Errorf("%s: %d mutations, %d blocked, %d by the exported SecLang alone: missed %v", p.Vulnerability, v.MutationsTotal, v.MutationsBlocked, v.MutationsBlockedExported, v.MutationsMissed)
				case v.LegitimateTotal == 0 || v.LegitimatePassed != v.LegitimateTotal || v.CorpusTotal == 0 || v.CorpusPassed != v.CorpusTotal:
					t.Errorf("%s: legitimate %d/%d, corpus %d/%d: %v %v", p.Vulnerability, v.LegitimatePassed, v.LegitimateTotal, v.CorpusPassed, v.CorpusTotal, v.Blocked, v.CorpusBlocked)
				}
				for _, ep := range p.Endpoints {
					for _, s := range p.Knowledge.Variants {
						if code := sendSample(t, base, ep, s); code != http.StatusForbidden {
							t.Errorf("%s %q to %s through the proxy: status %d, want 403", p.Vulnerability, s.Name, ep, code)
						}
					}
				}
			}
			if reached != 0 {
				t.Errorf("%d exploit requests reached the upstream", reached)
			}
		})
	}
}

// sendSample sends an exploit variant to an endpoint the way the sample
// says (a query parameter, a header, a form field or a whole body).
func sendSample(t *testing.T, base string, ep waf.Endpoint, s waf.Sample) int {
	t.Helper()
	// Each parameter segment of the route (:id, {id}, *) becomes "1".
	segs := strings.Split(ep.Route, "/")
	for i, seg := range segs {
		if strings.ContainsAny(seg, "{:*") {
			segs[i] = "1"
		}
	}
	path := strings.Join(segs, "/")
	param := s.Param
	if param == "" {
		param = "q"
	}
	value := url.QueryEscape(s.Payload)
	if s.Encoded {
		value = s.Payload
	}
	var body io.Reader
	headers := map[string]string{}
	switch {
	case s.In == waf.InQuery || s.In == waf.InPath:
		path += "?" + url.QueryEscape(param) + "=" + value
	case s.In == waf.InHeader:
		headers[s.Header] = s.Payload
	case s.In == waf.InBody && s.ContentType == "":
		headers["Content-Type"] = "application/x-www-form-urlencoded"
		body = strings.NewReader(url.QueryEscape(param) + "=" + value)
	default:
		headers["Content-Type"] = s.ContentType
		body = strings.NewReader(s.Payload)
	}
	for k, v := range s.Headers {
		headers[k] = v
	}
	req, err := http.NewRequest(ep.Method, base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
