package waf

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
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
			r := s.instantiate(Endpoint{Method: "GET", Route: "/p/{id}"}, nil)
			if r.Method != "GET" || r.Target == "" {
				t.Errorf("sample %q gives request %+v", s.Name, r)
			}
		}
	})
}
