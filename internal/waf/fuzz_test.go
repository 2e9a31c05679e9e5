package waf

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/telemetry"
)

// FuzzRoute checks that every endpoint ParseEndpoint accepts gives an
// anchored expression that compiles and matches the route's example path.
func FuzzRoute(f *testing.F) {
	for _, s := range []string{"GET /products/{id}", "POST /files/{p...}", "GET /users/:id", "GET /{$}", "GET /a/*", "GET /v{x}/y", "GET GET /search"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ep, err := ParseEndpoint(s)
		if err != nil {
			return
		}
		re, err := RouteRegex(ep.Route)
		if err != nil {
			t.Fatalf("%q parsed but gives no regex: %v", s, err)
		}
		if !regexp.MustCompile(re).MatchString(examplePath(ep.Route, "1")) {
			t.Errorf("%s does not match the example path %s of %q", re, examplePath(ep.Route, "1"), ep.Route)
		}
	})
}

// FuzzParseCorpus checks that corpus parsing never panics and that what
// it accepts is instantiable.
func FuzzParseCorpus(f *testing.F) {
	for _, name := range []string{"sql_injection.yaml", "request_smuggling.yaml", "prototype_pollution.yaml"} {
		data, err := os.ReadFile(filepath.Join("exploits", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("class: xss\nsamples:\n  - {name: a, source: 'https://x.example/', in: query, payload: '<b>', extra: 1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, samples, _ := ParseCorpus(data, "fuzz.yaml")
		for _, s := range samples {
			r := instantiate(s, Endpoint{Method: "GET", Route: "/p/{id}"}, nil)
			if r.Method != "GET" || r.Target == "" {
				t.Errorf("sample %q gives request %+v", s.Name, r)
			}
		}
	})
}

// FuzzExportLoad generates the patch of one executed and exposed finding
// from fuzzed telemetry (the service name, the endpoint and one request's
// query and header), exports it, loads it back with LoadRules and compiles
// it in Coraza as the proxy does: whatever the telemetry held, what evident
// writes must load, and a request must pass through it without a panic.
func FuzzExportLoad(f *testing.F) {
	f.Add("gateway", "GET /search", "q=creme", "de-DE,de;q=0.9")
	f.Add("shop/gateway v2", "POST /files/{p...}", "a=1&b=%27", "")
	f.Add(`a"b'c\d`, "GET /users/:id", `x"=1`, "\n")
	f.Add("%{REQUEST_URI}", "GET /{$}", "k=v&k=w", "'")
	records := loadRecords(f)
	f.Fuzz(func(t *testing.T, service, endpoint, query, header string) {
		ep, err := ParseEndpoint(endpoint)
		if err != nil {
			return
		}
		var spans []telemetry.Span
		for range 3 {
			spans = append(spans, serverSpan(service, ep.Method, ep.Route, examplePath(ep.Route, "1"), query, map[string]string{"accept-language": header}))
		}
		set, err := Generate(DefaultConfig(), []assess.Assessment{executedExposed(service, "GO-2026-5970", "golang.org/x/text", endpoint)}, records, trafficFromSpans(spans, 0))
		if err != nil {
			t.Fatal(err)
		}
		if len(set.Patches) != 1 {
			t.Fatalf("got %d patches (skipped %+v), want 1", len(set.Patches), set.Skipped)
		}
		dir := t.TempDir()
		if err := Export(dir, set); err != nil {
			t.Fatalf("export the patch of service %q: %v", service, err)
		}
		rules, err := LoadRules(dir, []string{service})
		if err != nil {
			t.Fatal(err)
		}
		config, err := os.ReadFile(filepath.Join(dir, PluginsDir, "evident-"+fileName(service)+"-config.conf"))
		if err != nil {
			t.Fatal(err)
		}
		w, err := newWAF(string(config), rules)
		if err != nil {
			t.Fatalf("patch for service %q, endpoint %q, query %q does not compile: %v\n%s", service, endpoint, query, err, rules)
		}
		tx := w.NewTransaction()
		defer tx.Close()
		if _, err := inspectRequest(tx, Request{Method: ep.Method, Target: examplePath(ep.Route, "1") + "?" + query}); err != nil {
			t.Fatalf("inspect a request: %v", err)
		}
	})
}

// FuzzFileName: the names fileName gives two services differ, whatever
// the case, unless the services are the same, and each is a file name the
// file system takes and a TX variable name SecLang reads as one name.
func FuzzFileName(f *testing.F) {
	for _, pair := range [][2]string{
		{"shop/cart", "shop_cart"}, {"Cart", "cart"}, {"a..b", "a_b"}, {".conf", "_conf"},
		{"cart", "cart-h0123456789abcdef0123456789abcdef"}, {strings.Repeat("s", 300), strings.Repeat("s", 301)},
	} {
		f.Add(pair[0], pair[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		fa, fb := fileName(a), fileName(b)
		if a != b && strings.EqualFold(fa, fb) {
			t.Fatalf("fileName(%q) = %q and fileName(%q) = %q", a, fa, b, fb)
		}
		for _, name := range []string{fa, fb} {
			if name == "" || len(name) > maxFileName || name[0] == '.' || strings.Contains(name, "..") ||
				strings.IndexFunc(name, func(r rune) bool { return r > 0x7f || !nameByte(byte(r)) }) >= 0 {
				t.Fatalf("fileName gives %q", name)
			}
		}
	})
}
