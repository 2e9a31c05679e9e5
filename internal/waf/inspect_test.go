package waf

import (
	"archive/tar"
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/corazawaf/coraza/v3"
	"github.com/google/go-cmp/cmp"
)

// yamlBlockMappingBomb is the alias bomb of issue 14 written as block
// mappings: nine keys per level, each an alias of the level below.
func yamlBlockMappingBomb(levels int) string {
	var b strings.Builder
	b.WriteString("a: &a x\n")
	prev := "a"
	for l := range levels {
		name := string(rune('b' + l))
		fmt.Fprintf(&b, "%s: &%s\n", name, name)
		for k := range 9 {
			fmt.Fprintf(&b, "  k%d: *%s\n", k, prev)
		}
		prev = name
	}
	return b.String()
}

// The flow-sequence form is the one of CVE-2019-11253 (kubernetes
// apiserver) and the go-yaml regression test for GO-2020-0036.
const yamlFlowBomb = `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`

// A docker-compose style document with anchors and merge keys: the
// legitimate use of aliases.
const yamlCompose = `x-common: &common
  restart: unless-stopped
  logging:
    driver: json-file
    options: {max-size: 10m, max-file: "3"}
  environment: &env
    TZ: UTC
    LOG_LEVEL: info
services:
  gateway:
    <<: *common
    image: shop/gateway:1.4
    environment:
      <<: *env
      UPSTREAM: http://catalog:8081
  catalog:
    <<: *common
    image: shop/catalog:1.4
  reporter:
    <<: *common
    image: shop/reporter:1.4
    environment: *env
`

func TestInspectors(t *testing.T) {
	deepJSON := strings.Repeat("[", 200) + strings.Repeat("]", 200)
	var items []string
	for i := range 5000 {
		items = append(items, fmt.Sprintf(`{"sku":"tea-%d","qty":%d,"tags":["a","b"]}`, i, i%7))
	}
	largeJSON := `{"order":{"items":[` + strings.Join(items, ",") + `]}}`
	item := tarFile{tar.Header{Name: "a.txt", Format: tar.FormatPAX}, "a\n"}
	global := func(recs map[string]string) tarFile {
		return tarFile{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "g", PAXRecords: recs}}
	}
	badTar := buildTar(t, false, global(map[string]string{"atime": "1.5e3", "mtime": "12345678901234567890"}), item)
	brokenSum := bytes.Clone(badTar)
	brokenSum[0] ^= 1
	goodDump := buildDump(t, false, dumpNode{ino: 2, entries: []dumpEntry{{ino: 2, name: "."}, {ino: 3, name: "tea.json"}}}, dumpNode{ino: 3, data: "tea"})
	badDump := buildDump(t, false, dumpNode{ino: 2, entries: []dumpEntry{{ino: 2, name: ".", zero: true}}})
	badDumpSum := bytes.Clone(badDump)
	badDumpSum[3*dumpRecord+100] ^= 1 // the root inode's header (after TAPE, CLRI, BITS)
	tests := []struct {
		name  string
		f     func(string) uint64
		input string
		want  uint64
	}{
		{"yaml block-mapping bomb", func(s string) uint64 { return yamlExpansion(s, 1000) }, yamlBlockMappingBomb(8), 1001},
		{"yaml flow bomb", func(s string) uint64 { return yamlExpansion(s, 1000) }, yamlFlowBomb, 1001},
		{"yaml compose with merge keys", func(s string) uint64 { return yamlExpansion(s, 1000) }, yamlCompose, 2},
		{"yaml without aliases", func(s string) uint64 { return yamlExpansion(s, 1000) }, "a: 1\nb: [1, 2]\n", 1},
		{"not yaml", func(s string) uint64 { return yamlExpansion(s, 1000) }, "a: [\n", 0},
		{"json nested 200", jsonDepth, deepJSON, 200},
		{"json order of 5000 items", jsonDepth, largeJSON, 5},
		{"not json", jsonDepth, "{", 0},
		{"xml billion laughs", xmlEntities, `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;">]><lolz>&lol1;</lolz>`, 6},
		{"xml predefined and character references", xmlEntities, `<a>&lt;b&gt; &amp; &#233; &#x41;</a>`, 0},
		{"html duplicate href", htmlDuplicateAttrs, `<p>x</p><a href="javascript:alert(1)" HREF="https://example.com/">a</a>`, 1},
		{"html duplicate handlers, unquoted", htmlDuplicateAttrs, `<img src=x onerror=alert(1) onerror=alert(2)><b a=1 a=2>`, 2},
		{"html quoted values hide their contents", htmlDuplicateAttrs, `<img alt="href=1 href=2" src="a>b" title='x'>`, 0},
		{"html comparisons are not tags", htmlDuplicateAttrs, `1 < 2 and a<b x=1 y=2`, 0},
		{"html tag the input ends inside", htmlDuplicateAttrs, `a<b x=1 x=2`, 0},
		{"html unterminated value", htmlDuplicateAttrs, `<a href="x x=1 x=2`, 0},
		{"tar with two bad PAX times", tarBadPaxTimes, string(badTar), 2},
		{"tar.gz with two bad PAX times", tarBadPaxTimes, string(buildTar(t, true, global(map[string]string{"mtime": "1e3", "atime": "1.12345678901234567890"}), item)), 2},
		{"tar cut inside its PAX records", tarBadPaxTimes, string(badTar[:tarBlock+40]), 1},
		{"tar with good PAX times", tarBadPaxTimes, string(buildTar(t, false, global(map[string]string{"mtime": "-1647221103.5998539", "ctime": "0"}), item)), 0},
		{"tar header with a broken checksum", tarBadPaxTimes, string(brokenSum), 0},
		{"not a tar", tarBadPaxTimes, "30 mtime=9e9999999\n" + strings.Repeat("\x00", 1024), 0},
		{"gzip of text", tarBadPaxTimes, "\x1f\x8b\x08\x00garbage", 0},
		{"dump with a record of length 0 and a cycle", dumpDirectoryLoops, string(buildDump(t, false, dumpNode{ino: 2, entries: []dumpEntry{{ino: 3, name: "a"}}}, dumpNode{ino: 3, entries: []dumpEntry{{ino: 4, name: "b"}}}, dumpNode{ino: 4, entries: []dumpEntry{{ino: 3, name: "a"}, {ino: 5, name: "c", zero: true}}})), 2},
		{"dump of a directory and a file", dumpDirectoryLoops, string(goodDump), 0},
		{"dump cut inside its root directory", dumpDirectoryLoops, string(badDump[:5*dumpRecord]), 1},
		{"dump header with a broken checksum", dumpDirectoryLoops, string(badDumpSum), 0},
		{"whitespace run before a digit", whitespaceRun, "1" + strings.Repeat(" ", 5000) + "1", 5000},
		{"whitespace run at the end", whitespaceRun, "1" + strings.Repeat(" ", 5000), 0},
		{"JavaScript's Unicode spaces", whitespaceRun, "a\u00a0\u2003\u3000\ufeff\u2028\vb", 6},
		{"no-break space is not U+0085", whitespaceRun, "a\u0085\u0085b", 0},
		{"pack200 header with two counts beyond the archive", pack200Overcounts, string(pack200Header(false, pack200CPNumbers, []uint64{3, 0, 1 << 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 50, 0, 1 << 31}, "abc")), 2},
		{"pack200 header with a count the archive can hold", pack200Overcounts, string(pack200Header(false, 0, []uint64{3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 49, 0}, "abc")), 0},
		{"pack200 header cut short", pack200Overcounts, string(pack200Header(false, 0, []uint64{1 << 30}, "")), 0},
		{"pack200 of another version", pack200Overcounts, "\xca\xfe\xd0\x0d\x06\x96\x00\xff\xff\xff\xff\x0f", 0},
		{"not a dump", dumpDirectoryLoops, strings.Repeat("\x00", 4*dumpRecord), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f(tt.input); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

// TestStructuralOperators runs rules with the structural operators in
// Coraza: the exploits are denied, the legitimate documents pass.
func TestStructuralOperators(t *testing.T) {
	rules := engineSettings() + bodyProcessorRules(4_900_000) + `
SecRule REQUEST_BODY "@yamlExpansionGt 100" "id:1,phase:2,deny,status:403"
SecRule REQUEST_BODY "@xmlEntitiesGt 3" "id:3,phase:2,deny,status:403"
`
	w, err := newWAF(rules)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  Request
		want int
	}{
		{"yaml block-mapping bomb", Request{Method: "POST", Target: "/orders", Headers: map[string]string{"Content-Type": "application/yaml"}, Body: yamlBlockMappingBomb(8)}, 1},
		{"yaml flow bomb as text/plain", Request{Method: "POST", Target: "/orders", Headers: map[string]string{"Content-Type": "text/plain"}, Body: yamlFlowBomb}, 1},
		{"yaml compose", Request{Method: "POST", Target: "/orders", Headers: map[string]string{"Content-Type": "application/yaml"}, Body: yamlCompose}, 0},
		{"billion laughs", Request{Method: "POST", Target: "/", Headers: map[string]string{"Content-Type": "application/xml"}, Body: `<!DOCTYPE l [<!ENTITY a "x"><!ENTITY b "&a;&a;">]><l>&b;</l>`}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := w.NewTransaction()
			defer tx.Close()
			it, err := inspectRequest(tx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			if it != nil {
				got = it.RuleID
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("denying rule (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := newWAF(`SecRule REQUEST_BODY "@yamlExpansionGt many" "id:1,phase:2,deny"`); err == nil {
		t.Error("a non-numeric threshold compiled")
	}
}

// FuzzInspectors feeds outside input to every structural inspector: none
// may panic, and the YAML expansion stays within its saturation bound.
func FuzzInspectors(f *testing.F) {
	for _, s := range []string{yamlFlowBomb, yamlCompose, yamlBlockMappingBomb(3), `{"a":[{"b":1}]}`, `<!ENTITY a "&b;">&a;`, "a: &a [*a]"} {
		f.Add(s)
	}
	f.Add(string(buildTar(f, false, tarFile{tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "g", PAXRecords: map[string]string{"mtime": "9e9999999"}}, ""})))
	f.Add(string(buildTar(f, true, tarFile{tar.Header{Name: "a", Format: tar.FormatPAX, PAXRecords: map[string]string{"LIBARCHIVE.creationtime": "1.5"}}, "a"})))
	f.Add(string(buildDump(f, false, dumpNode{ino: 2, entries: []dumpEntry{{ino: 2, name: ".", zero: true}}})))
	f.Add(string(pack200Header(false, pack200FileHeaders|pack200SpecialFormats, []uint64{0, 64, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, "x")))
	if up, ok := asUpload(Request{Headers: map[string]string{"Content-Type": "application/yaml"}, Body: yamlFlowBomb}); ok {
		f.Add(up.Body)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := yamlExpansion(s, 1000); got > 1001 {
			t.Errorf("yaml expansion %d above the bound", got)
		}
		if got := perDocument(yamlExpansion)(nil, s, 1000); got > 1001 {
			t.Errorf("yaml expansion of the parts %d above the bound", got)
		}
		if n := len(bodyDocuments(s, "")); n < 1 || n > maxBodyParts {
			t.Errorf("%d documents", n)
		}
		jsonDepth(s)
		xmlEntities(s)
		htmlDuplicateAttrs(s)
		tarBadPaxTimes(s)
		dumpDirectoryLoops(s)
		whitespaceRun(s)
		pack200Overcounts(s)
	})
}

// TestMultipartFraming uploads a file that only a structural operator
// stops (a DUMP archive whose directories loop, CVE-2024-25710; a YAML
// block-mapping bomb) to a body kept raw, framed in the ways RFC 2046 and
// Go's mime/multipart allow: a preamble before the first boundary,
// transport padding after it, a boundary longer than 70 characters. The
// operators split the body by its first line, which only the plain framing
// starts with a 70-character boundary at most, and measured the others
// whole, as no archive or YAML: they passed. They now split it by the
// Content-Type's boundary, as the application does. The same framings
// carry a quoted-printable XXE file to a document patch, whose rule read a
// boundary line of 70 characters at most.
func TestMultipartFraming(t *testing.T) {
	w, err := newWAF(engineSettings() + `
SecAction "id:5,phase:1,pass,nolog,ctl:requestBodyProcessor=RAW"
SecRule REQUEST_BODY "@dumpDirectoryLoopsGt 0" "id:1,phase:2,deny,status:403"
SecRule REQUEST_BODY "@yamlExpansionGt 100" "id:2,phase:2,deny,status:403"
`)
	if err != nil {
		t.Fatal(err)
	}
	p := Patch{Service: "gateway", Vulnerability: "TEST-1", Classification: Classification{Class: ClassXXE}}
	p.Endpoints = mergeEndpoints(nil, []string{"POST /upload"}, &p.Notes)
	build(DefaultConfig(), &p, 4_900_100, NewTraffic(0))
	xxePatch, err := newWAF(engineSettings(), bodyProcessorRules(4_900_000), p.SecLang())
	if err != nil {
		t.Fatal(err)
	}
	const xxe = `<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>`

	loop := string(buildDump(t, false, dumpNode{ino: 2, entries: []dumpEntry{{ino: 3, name: "a"}}}, dumpNode{ino: 3, entries: []dumpEntry{{ino: 4, name: "b"}}}, dumpNode{ino: 4, entries: []dumpEntry{{ino: 3, name: "a"}, {ino: 5, name: "c", zero: true}}}))
	long := strings.Repeat("-", 20) + "WebKitFormBoundary" + strings.Repeat("7MA4YWxk", 5)
	framings := []struct {
		name, boundary, start string
	}{
		{"plain", "b7MA4YWxk", "--b7MA4YWxk\r\n"},
		{"preamble", "b7MA4YWxk", "This is a multi-part message in MIME format.\r\n--b7MA4YWxk\r\n"},
		{"transport padding", "b7MA4YWxk", "--b7MA4YWxk \t\r\n"},
		{"boundary of 78 characters", long, "--" + long + "\r\n"},
	}
	files := []struct {
		name    string
		w       coraza.WAF
		headers string // the file part's, after its Content-Disposition
		content string
		// want is the content as the application reads it.
		want string
	}{
		{"looping DUMP archive", w, "Content-Type: application/octet-stream\r\n", loop, loop},
		{"YAML bomb", w, "Content-Type: application/yaml\r\n", yamlBlockMappingBomb(8), yamlBlockMappingBomb(8)},
		{"XXE in quoted-printable", xxePatch, "Content-Type: application/xml\r\nContent-Transfer-Encoding: quoted-printable\r\n", quotedPrintable(xxe), xxe},
	}
	for _, fr := range framings {
		for _, f := range files {
			t.Run(fr.name+" "+f.name, func(t *testing.T) {
				r := Request{Method: "POST", Target: "/upload", Headers: map[string]string{"Content-Type": "multipart/form-data; boundary=" + fr.boundary},
					Body: fr.start + "Content-Disposition: form-data; name=\"file\"; filename=\"upload\"\r\n" + f.headers + "\r\n" + f.content + "\r\n--" + fr.boundary + "--\r\n"}
				if got := uploadedFile(t, r); got != f.want {
					t.Fatalf("Go's mime/multipart reads the file as %.60q, want %.60q", got, f.want)
				}
				if _, by, err := replay(f.w, r); err != nil || by == 0 {
					t.Errorf("the upload passed (%v)", err)
				}
			})
		}
	}
}
