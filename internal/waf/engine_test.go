package waf

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/knowledge"
	"github.com/evidentsec/evident/internal/telemetry"
)

// TestEngineReadsAsTheApplication: requests the patch's rules would read
// otherwise than the application does are blocked: a payload after 1000
// padding arguments (Coraza's default SecArgumentsLimit hid what followed
// from ARGS), more arguments than the engine inspects, a form whose media
// type starts with a Unicode space (Go and Node.js trim it, Coraza read the
// body raw), two Content-Type headers (the application reads the first,
// the engine tested them all and read the body raw). Legitimate requests
// of the same shapes pass.
func TestEngineReadsAsTheApplication(t *testing.T) {
	const base = 4900000
	p := &Patch{Service: "gateway", Vulnerability: "CVE-TEST-1", Classification: Classification{Class: ClassSQLInjection}}
	for _, e := range []string{"GET /search", "POST /login"} {
		ep, err := ParseEndpoint(e)
		if err != nil {
			t.Fatal(err)
		}
		p.Endpoints = append(p.Endpoints, ep)
	}
	build(DefaultConfig(), p, base+100, NewTraffic(0))
	w, err := newWAF(engineSettings(), bodyProcessorRules(base), p.SecLang())
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("a&", 1000)
	const sqli = "user=1'+UNION+SELECT+password+FROM+users--"
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for _, tt := range []struct {
		name    string
		req     Request
		blocked bool
	}{
		{"query padded by 1000 arguments", Request{Method: "GET", Target: "/search?" + pad + sqli}, true},
		{"form padded by 1000 arguments", Request{Method: "POST", Target: "/login", Headers: form, Body: pad + sqli}, true},
		{"JSON padded by 1000 elements", Request{Method: "POST", Target: "/login", Headers: map[string]string{"Content-Type": "application/json"},
			Body: `{"a":[` + strings.Repeat("0,", 1000) + `0],"user":"1' UNION SELECT password FROM users--"}`}, true},
		{"more arguments than the engine inspects", Request{Method: "POST", Target: "/login", Headers: form, Body: strings.Repeat("a&", engineArgumentsLimit+1) + "b=1"}, true},
		{"form media type after a no-break space", Request{Method: "POST", Target: "/login", Headers: map[string]string{"Content-Type": "\u00a0application/x-www-form-urlencoded"}, Body: sqli}, true},
		{"legitimate form", Request{Method: "POST", Target: "/login", Headers: form, Body: pad + "user=alice"}, false},
		{"legitimate form after a no-break space", Request{Method: "POST", Target: "/login", Headers: map[string]string{"Content-Type": "\u00a0application/x-www-form-urlencoded"}, Body: "user=alice"}, false},
		{"legitimate query of 1000 arguments", Request{Method: "GET", Target: "/search?" + pad + "q=tea"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, by, err := replay(w, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if blocked := by != 0; blocked != tt.blocked {
				t.Errorf("blocked by rule %d, want blocked %v", by, tt.blocked)
			}
		})
	}
	t.Run("two Content-Type headers", func(t *testing.T) {
		for _, second := range []string{"", "text/plain"} {
			tx := w.NewTransaction()
			tx.ProcessConnection("192.0.2.1", 40000, "192.0.2.2", 80)
			tx.ProcessURI("/login", "POST", "HTTP/1.1")
			tx.AddRequestHeader("Host", "shop")
			tx.AddRequestHeader("Content-Type", "application/x-www-form-urlencoded")
			if second != "" {
				tx.AddRequestHeader("Content-Type", second)
			}
			it := tx.ProcessRequestHeaders()
			if it == nil {
				if _, _, err := tx.WriteRequestBody([]byte(sqli)); err != nil {
					t.Fatal(err)
				}
				it, err = tx.ProcessRequestBody()
				if err != nil {
					t.Fatal(err)
				}
			}
			if it == nil {
				t.Errorf("a form with a SQL injection and Content-Type %q: not blocked", "application/x-www-form-urlencoded, "+second)
			}
			tx.Close()
		}
	})
}

// TestPoisonedParameterNames: a parameter name that is not text, which
// any client can put in the traces (?%0A=1, ?%FF=1), is left out of the
// learned allow-list: it broke the rules of every patch (a newline ended
// the rule's line, invalid UTF-8 its regular expression), and so all
// virtual patching. A request naming it is refused as any unseen name.
func TestPoisonedParameterNames(t *testing.T) {
	tr := shopTraffic()
	tr.Add([]telemetry.Span{
		serverSpan("gateway", "GET", "/search", "/search", "%0A=1", nil),
		serverSpan("gateway", "GET", "/search", "/search", "%FF=1", nil),
	})
	ep, err := ParseEndpoint("GET /search")
	if err != nil {
		t.Fatal(err)
	}
	p := &Patch{Service: "gateway", Vulnerability: "CVE-TEST-1", Classification: Classification{Class: ClassSQLInjection}, Endpoints: []Endpoint{ep}}
	build(DefaultConfig(), p, 4900100, tr)
	w, err := newWAF(engineSettings(), bodyProcessorRules(4900000), p.SecLang())
	if err != nil {
		t.Fatalf("the patch does not compile: %v", err)
	}
	for target, blocked := range map[string]bool{"/search?q=tea": false, "/search?%0A=1": true, "/search?%FF=1": true} {
		if _, by, err := replay(w, Request{Method: "GET", Target: target}); err != nil || (by != 0) != blocked {
			t.Errorf("%s: blocked by %d (%v), want blocked %v", target, by, err, blocked)
		}
	}
}

// TestTemplatesReadRawBodies: the SQL injection and path traversal
// templates read a body kept raw (JSON sent as text/plain or with no media
// type, which many handlers decode all the same; XML): they read only
// ARGS, and such bodies passed.
func TestTemplatesReadRawBodies(t *testing.T) {
	for _, tt := range []struct {
		class Class
		body  string
	}{
		{ClassSQLInjection, `{"user":"admin' OR '1'='1'--"}`},
		{ClassPathTraversal, `{"file":"../../../../etc/passwd"}`},
		{ClassPathTraversal, `<a><f>../../etc/passwd</f></a>`},
	} {
		ep, err := ParseEndpoint("POST /login")
		if err != nil {
			t.Fatal(err)
		}
		p := &Patch{Service: "gateway", Vulnerability: "CVE-TEST-1", Classification: Classification{Class: tt.class}, Endpoints: []Endpoint{ep}}
		build(DefaultConfig(), p, 4900100, NewTraffic(0))
		w, err := newWAF(engineSettings(), bodyProcessorRules(4900000), p.SecLang())
		if err != nil {
			t.Fatal(err)
		}
		for _, ct := range []string{"text/plain", "application/xml", ""} {
			h := map[string]string{}
			if ct != "" {
				h["Content-Type"] = ct
			}
			if _, by, err := replay(w, Request{Method: "POST", Target: "/login", Headers: h, Body: tt.body}); err != nil || by == 0 {
				t.Errorf("%s: %s as %q: not blocked (%v)", tt.class, tt.body, ct, err)
			}
		}
	}
}

// TestCompressedBodies: Express's body-parser inflates a gzip or deflate
// request body before the handler reads it, and Coraza reads the
// compressed bytes, so lodash's template option (CVE-2021-23337) sent in a
// gzip-compressed form passed the patch that denies it in the same form
// uncompressed. Every patch refuses a body in a Content-Encoding other than
// identity on its endpoints; other endpoints keep theirs.
func TestCompressedBodies(t *testing.T) {
	set, err := Generate(DefaultConfig(), []assess.Assessment{executedExposed("reviews", "GHSA-35jh-r3h4-6jhm", "lodash", "POST /render")}, loadRecords(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := newWAF(engineSettings(), bodyProcessorRules(4_900_000), set.Patches[0].SecLang())
	if err != nil {
		t.Fatal(err)
	}
	compress := func(enc, s string) string {
		var b bytes.Buffer
		var zw io.WriteCloser
		if enc == "gzip" {
			zw = gzip.NewWriter(&b)
		} else if zw, err = flate.NewWriter(&b, flate.DefaultCompression); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(zw, s); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	const form = "application/x-www-form-urlencoded"
	exploit := "variable=" + url.QueryEscape("){console.log(process.env)}; with(obj")
	tests := []struct {
		name, target, ct, encoding, body string
		blocked                          bool
	}{
		{"exploit in a form", "/render", form, "", exploit, true},
		{"exploit in a gzip form", "/render", form, "gzip", compress("gzip", exploit), true},
		{"exploit in a deflate form", "/render", form, "deflate", compress("deflate", exploit), true},
		{"exploit in a gzip form, encoding in capitals", "/render", form, "GZIP", compress("gzip", exploit), true},
		{"exploit in a gzip text body", "/render", "text/plain", "gzip", compress("gzip", exploit), true},
		{"form", "/render", form, "", "variable=data", false},
		{"form in identity", "/render", form, "identity", "variable=data", false},
		{"gzip form to another endpoint", "/reviews", form, "gzip", compress("gzip", "stars=5"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{"Content-Type": tt.ct}
			if tt.encoding != "" {
				h["Content-Encoding"] = tt.encoding
			}
			_, by, err := replay(w, Request{Method: "POST", Target: tt.target, Headers: h, Body: tt.body})
			if err != nil || (by != 0) != tt.blocked {
				t.Errorf("denied by rule %d (%v), want denied %v", by, err, tt.blocked)
			}
		})
	}
}

// TestMultipartStrict: a multipart field named twice in its
// Content-Disposition (name="x"; name="…") is named "" by Go's
// mime/multipart, and so by Coraza, and by its last name by Werkzeug 3.1
// (Flask's request.form), so a key that reaches Jinja2's xmlattr
// (CVE-2024-34064) passed the patch that reads ARGS_NAMES. The engine
// refuses a multipart body that fails Coraza's strict checks, as Coraza's
// recommended configuration does; well-formed uploads pass.
func TestMultipartStrict(t *testing.T) {
	set, err := Generate(DefaultConfig(), []assess.Assessment{executedExposed("reports", "GHSA-h75v-3vvj-5mfj", "jinja2", "POST /render")}, loadRecords(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := newWAF(engineSettings(), bodyProcessorRules(4_900_000), set.Patches[0].SecLang())
	if err != nil {
		t.Fatal(err)
	}
	const key = "onclick=alert(1) x"
	tests := []struct {
		name, partHeaders string
		blocked           bool
	}{
		{"key as the field's name", `Content-Disposition: form-data; name="` + key + `"`, true},
		{"key as the second of two names", `Content-Disposition: form-data; name="title"; name="` + key + `"`, true},
		{"two Content-Disposition headers", "Content-Disposition: form-data; name=\"title\"\r\nContent-Disposition: form-data; name=\"" + key + `"`, true},
		{"field", `Content-Disposition: form-data; name="title"`, false},
		{"file", "Content-Disposition: form-data; name=\"report\"; filename=\"q3.csv\"\r\nContent-Type: text/csv", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := "--b7MA4YWxk\r\n" + tt.partHeaders + "\r\n\r\nquarterly\r\n--b7MA4YWxk--\r\n"
			_, by, err := replay(w, Request{Method: "POST", Target: "/render", Headers: map[string]string{"Content-Type": "multipart/form-data; boundary=b7MA4YWxk"}, Body: body})
			if err != nil || (by != 0) != tt.blocked {
				t.Errorf("denied by rule %d (%v), want denied %v", by, err, tt.blocked)
			}
		})
	}
}

// TestEncodingRefusalsWhenDetectionsAreFull: the refusals of a body in a
// Content-Encoding and of a multipart part with a Content-Transfer-Encoding
// came after the knowledge's detections, so exploit knowledge whose checks
// filled the patch's detection ids left them out, and a gzip-compressed or
// quoted-printable exploit passed a patch that denies it as sent. The
// knowledge's detections are cut first: the refusals are always in.
func TestEncodingRefusalsWhenDetectionsAreFull(t *testing.T) {
	check := "      - {check: yaml_alias_expansion, threshold: 20, reference: \"https://github.com/go-yaml/yaml/blob/05262c8778b068d5a6be0044ad83d6c775e1f8c9/limit_test.go\"}\n"
	file := `version: 1
entries:
  - id: GO-2020-0036
    summary: test entry whose checks take more detection ids than a patch has
    ecosystem: Go
    package: gopkg.in/yaml.v2
    vectors: [{in: body}]
    format: yaml
    condition: aliases expanded far beyond the document's size
    checks:
` + strings.Repeat(check, detectIDs) + `    variants:
      - {name: a, source: "https://example.com/a", in: body, content_type: application/yaml, payload: "a: &a [x,x]\nb: &b [*a,*a]"}
      - {name: b, source: "https://example.com/b", in: body, content_type: application/yaml, payload: "a: &a [x,x]\nc: &c [*a,*a]"}
      - {name: c, source: "https://example.com/c", in: body, content_type: application/yaml, payload: "a: &a [x,x]\nd: &d [*a,*a]"}
`
	x, err := knowledge.LoadExploits(strings.NewReader(file), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Exploits = x
	set, err := Generate(cfg, []assess.Assessment{executedExposed("config", "GO-2020-0036", "gopkg.in/yaml.v2", "POST /config")}, loadRecords(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := set.Patches[0]
	// The note says how many of the knowledge's detections the patch
	// kept (it said how many detections it has, refusals with them).
	kept := 0
	for _, r := range p.Rules {
		if r.Kind == KindDetection && r.Name != encodedBody.name && r.Name != encodedPart.name {
			kept++
		}
	}
	if note := fmt.Sprintf("left out: a patch has room for %d detections beside", kept); !strings.Contains(strings.Join(p.Notes, "\n"), note) {
		t.Fatalf("notes %q: want %q (the knowledge's detections did not fill the patch, or the note miscounts them)", p.Notes, note)
	}
	w, err := newWAF(engineSettings(), bodyProcessorRules(4_900_000), p.SecLang())
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := io.WriteString(zw, "replicas: 3"); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	const multipart = "multipart/form-data; boundary=b7MA4YWxk"
	tests := []struct {
		name, ct, encoding, body string
		blocked                  bool
	}{
		{"gzip body", "application/yaml", "gzip", gz.String(), true},
		{"quoted-printable part", multipart, "", "--b7MA4YWxk\r\nContent-Disposition: form-data; name=\"f\"; filename=\"c.yaml\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nreplicas=3A 3\r\n--b7MA4YWxk--\r\n", true},
		{"yaml body", "application/yaml", "", "replicas: 3", false},
		{"upload", multipart, "", "--b7MA4YWxk\r\nContent-Disposition: form-data; name=\"f\"; filename=\"c.yaml\"\r\n\r\nreplicas: 3\r\n--b7MA4YWxk--\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{"Content-Type": tt.ct}
			if tt.encoding != "" {
				h["Content-Encoding"] = tt.encoding
			}
			_, by, err := replay(w, Request{Method: "POST", Target: "/config", Headers: h, Body: tt.body})
			if err != nil || (by != 0) != tt.blocked {
				t.Errorf("denied by rule %d (%v), want denied %v", by, err, tt.blocked)
			}
		})
	}
}
