package waf

import (
	"context"
	"testing"

	"github.com/evidentsec/evident/internal/telemetry"
)

// TestHostScope: in front of several services, the gateway's patch of
// GET /search (invalid UTF-8, GO-2026-5970) checked every host's
// /search, and denied the legacy service's legitimate Latin-1 search
// (q=cr%E8me). With Config.HostScope the patch leaves alone the requests
// to the host only the legacy service's spans show, and still checks the
// gateway's, a host the traces never showed, and a request without a
// Host header (HTTP/1.0), which a negated condition on the host would
// have let through.
func TestHostScope(t *testing.T) {
	var spans []telemetry.Span
	for range 20 {
		g := serverSpan("gateway", "GET", "/search", "/search", "q=tea", nil)
		g.Attrs.ServerAddress = "shop.example"
		l := serverSpan("legacy", "GET", "/search", "/search", "q=cr%E8me", nil)
		l.Attrs.URLFull = "https://Legacy.Example./search?q=cr%E8me"
		spans = append(spans, g, l)
	}
	traffic := trafficFromSpans(spans, 0)
	ep, err := ParseEndpoint("GET /search")
	if err != nil {
		t.Fatal(err)
	}
	const legacy, exploit = "/search?q=cr%E8me", "/search?q=%C0%AF"
	tests := []struct {
		name, host, target string
		hostScope          bool
		blocked            bool
	}{
		{"legacy's search on its host", "legacy.example", legacy, true, false},
		{"legacy's search, host in capitals with a port", "LEGACY.example:443", legacy, true, false},
		{"exploit on the gateway's host", "shop.example", exploit, true, true},
		{"exploit on a host the traces never showed", "gateway.internal", exploit, true, true},
		{"exploit on a host that ends in legacy's", "legacy.example.attacker.example", exploit, true, true},
		{"exploit without a Host header", "", exploit, true, true},
		{"without host scope, legacy's search is denied", "legacy.example", legacy, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.HostScope = tt.hostScope
			p := Patch{Service: "gateway", Vulnerability: "GO-2026-5970", Classification: Classification{Class: ClassOversizedInput}, Endpoints: []Endpoint{ep}}
			build(cfg, &p, 4_900_100, traffic)
			w, err := newWAF(engineSettings(), bodyProcessorRules(4_900_000), p.SecLang())
			if err != nil {
				t.Fatalf("the patch does not compile: %v", err)
			}
			by := 0
			if tt.host == "" {
				tx := w.NewTransaction()
				tx.ProcessURI(tt.target, "GET", "HTTP/1.0")
				if it := tx.ProcessRequestHeaders(); it != nil {
					by = it.RuleID
				} else if it, err := tx.ProcessRequestBody(); err != nil {
					t.Fatal(err)
				} else if it != nil {
					by = it.RuleID
				}
				tx.Close()
			} else if _, by, err = replay(w, Request{Method: "GET", Target: tt.target, Headers: map[string]string{"Host": tt.host}}); err != nil {
				t.Fatal(err)
			}
			if (by != 0) != tt.blocked {
				t.Errorf("Host %q, GET %s: denied by rule %d, want denied %v (except hosts %v)", tt.host, tt.target, by, tt.blocked, p.ExceptHosts)
			}
		})
	}

	// Validation, which sends no host of legacy's, finds the patch with
	// host scope blocking what the patch without blocks, and passing the
	// gateway's traffic.
	corpus, err := LoadCorpus(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []*Validation
	for _, hostScope := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.HostScope = hostScope
		p := Patch{Service: "gateway", Vulnerability: "GO-2026-5970", Classification: Classification{Class: ClassOversizedInput}, Endpoints: []Endpoint{ep}}
		build(cfg, &p, 4_900_100, traffic)
		set := &PatchSet{IDRange: [2]int{4_900_000, 4_999_999}, Patches: []Patch{p}}
		if err := Validate(context.Background(), set, traffic, corpus); err != nil {
			t.Fatal(err)
		}
		got = append(got, set.Patches[0].Validation)
		if hosts := set.Patches[0].ExceptHosts; hostScope && (len(hosts) != 1 || hosts[0] != "legacy.example") {
			t.Errorf("except hosts %v, want [legacy.example]", hosts)
		}
	}
	without, with := got[0], got[1]
	if with.ExploitsBlocked != without.ExploitsBlocked || with.MutationsBlocked != without.MutationsBlocked || with.LegitimatePassed != with.LegitimateTotal || len(with.PluginMissed) > 0 {
		t.Errorf("with host scope %d exploits and %d mutations blocked, %d of %d legitimate passed, plugin missed %v; without %d and %d blocked",
			with.ExploitsBlocked, with.MutationsBlocked, with.LegitimatePassed, with.LegitimateTotal, with.PluginMissed, without.ExploitsBlocked, without.MutationsBlocked)
	}
}

// TestSpanHost: the host of a SERVER span, as a host rule reads it. Any
// client writes the Host header the spans record, so what is no host
// name is left out of the rules, as poisoned parameter names are.
func TestSpanHost(t *testing.T) {
	tests := []struct {
		name  string
		attrs telemetry.Attrs
		want  string
	}{
		{"server.address", telemetry.Attrs{ServerAddress: "Shop.Example"}, "shop.example"},
		{"url.full", telemetry.Attrs{URLFull: "https://shop.example.:8443/search"}, "shop.example"},
		{"captured Host header with a port", telemetry.Attrs{RequestHeaders: map[string]string{"host": "shop.example:8080"}}, "shop.example"},
		{"server.address first", telemetry.Attrs{ServerAddress: "shop.example", URLFull: "http://10.0.0.7/search"}, "shop.example"},
		{"IPv4", telemetry.Attrs{ServerAddress: "10.0.0.7"}, "10.0.0.7"},
		{"a quote", telemetry.Attrs{ServerAddress: `shop.example"`}, ""},
		{"a newline", telemetry.Attrs{RequestHeaders: map[string]string{"host": "shop.example\nx"}}, ""},
		{"IPv6", telemetry.Attrs{ServerAddress: "::1"}, ""},
		{"none", telemetry.Attrs{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// As Traffic keeps it: when it is a host name.
			got := spanHost(&tt.attrs)
			if !hostName.MatchString(got) {
				got = ""
			}
			if got != tt.want {
				t.Errorf("spanHost = %q, want %q", got, tt.want)
			}
		})
	}
}
