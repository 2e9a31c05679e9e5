package redact

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/telemetry"
)

func newDefault(t testing.TB) *Redactor {
	t.Helper()
	r, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestValue(t *testing.T) {
	r := newDefault(t)
	tests := []struct {
		name, field, in, want string
	}{
		{"query token", FieldURLQuery, "access_token=SECRET123&q=1", "access_token=REDACTED&q=1"},
		{"query case and position", FieldURLQuery, "q=shoes&API_KEY=abc&Password=x", "q=shoes&API_KEY=REDACTED&Password=REDACTED"},
		{"query encoded name", FieldURLQuery, "pass%77ord=hunter2", "pass%77ord=REDACTED"},
		{"query empty value kept", FieldURLQuery, "token=&q=1", "token=&q=1"},
		{"query clean", FieldURLQuery, "q=1&page=2", "q=1&page=2"},
		{"query email", FieldURLQuery, "to=bob%40example.com&x=1", "to=REDACTED&x=1"},
		{"query card with plus", FieldURLQuery, "n=4111+1111+1111+1111", "n=REDACTED"},
		{"url full", FieldURLFull, "https://u:p@shop.example/a?sign=1&session_id=abc#frag", "https://REDACTED:REDACTED@shop.example/a?sign=1&session_id=REDACTED#frag"},
		// Secrets whose parameter names are too short or common to be
		// looked for inside other names: an Azure SAS's signature, an
		// OAuth authorization code.
		{"url azure sas", FieldURLFull, "https://acct.blob.core.windows.net/c/b.txt?sv=2022-11-02&se=2026-12-08T00%3A00%3A00Z&sr=b&sp=r&sig=Ab3%2Bd%2FeF%3D", "https://acct.blob.core.windows.net/c/b.txt?sv=2022-11-02&se=2026-12-08T00%3A00%3A00Z&sr=b&sp=r&sig=REDACTED"},
		{"url oauth code", FieldURLFull, "https://app.example/cb?code=4%2F0AX4XfWh&state=xyz&scope=email", "https://app.example/cb?code=REDACTED&state=xyz&scope=email"},
		{"query exact names only", FieldURLQuery, "Code=abc&country_code=DE&design=2", "Code=REDACTED&country_code=DE&design=2"},
		{"pair url parameter in text", "exception.message", "GET https://app.example/cb?state=1&code=abc failed, exit code=3", "GET https://app.example/cb?state=1&code=REDACTED failed, exit code=3"},
		{"url fragment token", FieldURLFull, "https://app.example/cb#access_token=eyJ0eXAi&token_type=Bearer&expires_in=3600", "https://app.example/cb#access_token=REDACTED&token_type=REDACTED&expires_in=3600"},
		{"url query and fragment", FieldURLFull, "https://app.example/cb?state=1&code_verifier=x#id_token=abc", "https://app.example/cb?state=1&code_verifier=x#id_token=REDACTED"},
		{"url hash route query", FieldURLFull, "https://app.example/#/reset?token=abc&step=2", "https://app.example/#/reset?token=REDACTED&step=2"},
		{"url fragment clean", FieldURLFull, "https://app.example/docs#section-2", "https://app.example/docs#section-2"},
		{"url user only", FieldURLFull, "ftp://anonymous@files.example/x", "ftp://REDACTED@files.example/x"},
		{"sql string", FieldDBQueryText, "SELECT * FROM users WHERE password='hunter2'", "SELECT * FROM users WHERE password=?"},
		{"sql escapes", FieldDBQueryText, `SELECT 'it''s', 'a\'b', "dq" FROM t2 WHERE id = 42 AND x IN (1, 2.5)`, `SELECT ?, ?, ? FROM t2 WHERE id = ? AND x IN (?, ?)`},
		// A backslash that ends a standard string (PostgreSQL, SQLite,
		// SQL Server) was read as escaping the quote, which made the next
		// value a name between two literals.
		{"sql backslash ends a string", FieldDBQueryText, `INSERT INTO t VALUES ('C:\', 'hunter2')`, `INSERT INTO t VALUES (?, ?)`},
		{"sql backslash ends a double-quoted string", FieldDBQueryText, `INSERT INTO t VALUES ("C:\", "hunter2")`, `INSERT INTO t VALUES (?, ?)`},
		{"sql backslash escapes a quote", FieldDBQueryText, `UPDATE u SET name = 'O\'Brien', pw = 'hunter2' WHERE id = 7`, `UPDATE u SET name = ?, pw = ? WHERE id = ?`},
		// Unterminated either way: what either reading takes for a
		// literal is masked.
		{"sql backslash both ways", FieldDBQueryText, `SELECT 'a\'' AS x, 'hunter2\' AS y`, `SELECT ?`},
		{"sql unterminated", FieldDBQueryText, "SELECT * FROM u WHERE name='' OR '1'='1", "SELECT * FROM u WHERE name=? OR ?=?"},
		{"sql injection tail", FieldDBQueryText, "SELECT * FROM u WHERE name='x' OR 'a", "SELECT * FROM u WHERE name=? OR ?"},
		{"sql params and comments", FieldDBQueryText, "SELECT a FROM t WHERE b = $1 AND `col9` = ? /*traceparent='00-ab'*/ -- it's 5", "SELECT a FROM t WHERE b = $1 AND `col9` = ? /*traceparent=?*/ -- it?"},
		{"sql dollar", FieldDBQueryText, "SELECT $$secret$$, $tag$x$y$tag$", "SELECT ?, ?"},
		{"sql connection string", FieldDBQueryText, "ATTACH 'x' AS postgres://admin:pw@db/x", "ATTACH ? AS postgres://REDACTED:REDACTED@db/x"},
		{"header authorization", HeaderPrefix + "authorization", "Bearer abc", "REDACTED"},
		{"header cookie", HeaderPrefix + "cookie", "sid=1", "REDACTED"},
		{"header by name", HeaderPrefix + "x-auth-token", "abc", "REDACTED"},
		{"header clean", HeaderPrefix + "accept", "text/html", "text/html"},
		{"jwt in a path", "url.path", "/reset/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c/done", "/reset/REDACTED/done"},
		{"jwt in a parameter named otherwise", FieldURLFull, "https://h.example/p?jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fw&x=1", "https://h.example/p?jwt=REDACTED&x=1"},
		{"jwt unsigned", "exception.message", "token eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMjM0In0. expired", "token REDACTED expired"},
		{"jwt in a header named otherwise", HeaderPrefix + "x-forwarded-identity", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abc", "REDACTED"},
		{"not a jwt: short header", "url.path", "/files/eyJfoo.txt.bak", "/files/eyJfoo.txt.bak"},
		{"not a jwt: one part", "url.path", "/c/eyJhbGciOiJIUzI1NiJ9", "/c/eyJhbGciOiJIUzI1NiJ9"},
		{"not a jwt: inside a word", "url.path", "/c/xeyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abc", "/c/xeyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abc"},
		{"text email", "user_agent.original", "mailer (ops@example.com)", "mailer (REDACTED)"},
		{"text card dashes", "url.path", "/pay/5555-5555-5555-4444/x", "/pay/REDACTED/x"},
		{"text not luhn", "url.path", "/pay/4111111111111112", "/pay/4111111111111112"},
		{"text epoch millis", "url.path", "/t/1700000000000", "/t/1700000000000"},
		{"text digits in word", "url.path", "/a4111111111111111", "/a4111111111111111"},
		{"text not an email", "url.path", "/@me/x@y", "/@me/x@y"},
		{"text mask not remasked", FieldURLFull, "https://REDACTED:REDACTED@h.example/", "https://REDACTED:REDACTED@h.example/"},
		// Secrets in free text by the name before them: the connection
		// strings of ADO.NET, ODBC, libpq and JDBC that drivers put in
		// exception messages and db.connection_string, JSON bodies,
		// command lines.
		{"pair ado.net", "db.connection_string", "Server=db;Database=shop;User Id=sa;Password=hunter2;", "Server=db;Database=shop;User Id=sa;Password=REDACTED;"},
		{"pair spaces and case", "exception.message", "login failed: Uid = sa; PWD = hunter2 ; Encrypt=yes", "login failed: Uid = sa; PWD = REDACTED ; Encrypt=yes"},
		{"pair odbc braces", "db.connection_string", "Driver={ODBC Driver 18};PWD={hun;ter2};UID=sa", "Driver={ODBC Driver 18};PWD={REDACTED};UID=sa"},
		{"pair odbc doubled brace", "db.connection_string", "PWD={ab}}cd;ef};UID=sa", "PWD={REDACTED};UID=sa"},
		{"option and its value", "process.command_line", "mysqldump --user app --password hunter2 --all-databases", "mysqldump --user app --password REDACTED --all-databases"},
		{"option quoted", "process.command_line", `tool -api-key 'a b c' -v`, `tool -api-key 'REDACTED' -v`},
		{"option without value", "process.command_line", "vault login --token -method=github", "vault login --token -method=github"},
		{"option otherwise kept", "process.command_line", "app --port 8080 --well-known x", "app --port 8080 --well-known x"},
		{"xml element", "exception.message", "fault in <login><user>bob</user><password>hunter2</password></login>", "fault in <login><user>bob</user><password>REDACTED</password></login>"},
		{"xml element with a prefix and attributes", "exception.message", `<wsse:Password Type="PasswordText">s3cr3t</wsse:Password><wsse:Nonce>x</wsse:Nonce>`, `<wsse:Password Type="PasswordText">REDACTED</wsse:Password><wsse:Nonce>x</wsse:Nonce>`},
		{"xml empty and unclosed kept", "exception.message", "<token/> and <apikey>never closed", "<token/> and <apikey>never closed"},
		{"xml element named by a substring of a name", "exception.message", "<user>bob</user><keyword>shoes</keyword>x", "<user>bob</user><keyword>REDACTED</keyword>x"},
		{"pair libpq", "exception.message", "connect host=db user=app password=hunter2 dbname=shop: refused", "connect host=db user=app password=REDACTED dbname=shop: refused"},
		{"pair jdbc query", "exception.message", "cannot open jdbc:mysql://db:3306/shop?user=app&password=hunter2&useSSL=true", "cannot open jdbc:mysql://db:3306/shop?user=app&password=REDACTED&useSSL=true"},
		{"pair jdbc sql server", "exception.message", "jdbc:sqlserver://db:1433;databaseName=shop;user=sa;password=hunter2;encrypt=true", "jdbc:sqlserver://db:1433;databaseName=shop;user=sa;password=REDACTED;encrypt=true"},
		{"pair json", "exception.message", `bad body {"user":"bob", "api_key" : "k-123\"4", "n":1}`, `bad body {"user":"bob", "api_key" : "REDACTED", "n":1}`},
		{"pair command line", "process.command_line", "worker --queue=jobs --auth-token=abc123 --verbose", "worker --queue=jobs --auth-token=REDACTED --verbose"},
		{"pair auth scheme", "exception.message", "upstream sent Authorization=Bearer abc.def, retrying", "upstream sent Authorization=REDACTED, retrying"},
		{"pair comparison kept", "code.function", "if token == nil || key != old && pwd >= 1", "if token == nil || key != old && pwd >= 1"},
		{"pair prose kept", "exception.message", "auth: failed for user bob; key: see docs", "auth: failed for user bob; key: see docs"},
		// YAML and header dumps: an unquoted name that starts a line,
		// with one word after it (or credentials after a scheme).
		{"yaml mapping", "exception.message", "bad config:\ndb:\n  user: app\n  password: hunter2\n  port: 5432\n", "bad config:\ndb:\n  user: app\n  password: REDACTED\n  port: 5432\n"},
		{"yaml list item, comment", "exception.message", "- name: billing\n  api_key: k-1,2;3 # rotated\r\n- name: x", "- name: billing\n  api_key: REDACTED # rotated\r\n- name: x"},
		{"yaml quoted value", "exception.message", "secret_key: 'a b c'\ntoken: \"x\"", "secret_key: 'REDACTED'\ntoken: \"REDACTED\""},
		{"header dump", "exception.message", "GET / HTTP/1.1\r\nAuthorization: Bearer abc.def\r\nAccept: */*", "GET / HTTP/1.1\r\nAuthorization: REDACTED\r\nAccept: */*"},
		{"yaml prose kept", "exception.message", "token: expired for user bob\nsee: docs", "token: expired for user bob\nsee: docs"},
		{"pair names otherwise kept", "db.connection_string", "Server=db;Database=shop;Timeout=30", "Server=db;Database=shop;Timeout=30"},
		// Oracle's passwords are names, not literals.
		{"sql oracle identified by", FieldDBQueryText, "CREATE USER scott IDENTIFIED BY tiger DEFAULT TABLESPACE users", "CREATE USER scott IDENTIFIED BY ? DEFAULT TABLESPACE users"},
		{"sql oracle replace", FieldDBQueryText, "alter user scott identified by lion replace tiger", "alter user scott identified by ? replace ?"},
		{"sql oracle quoted", FieldDBQueryText, `ALTER USER scott IDENTIFIED BY "Li0n" REPLACE tiger`, `ALTER USER scott IDENTIFIED BY ? REPLACE ?`},
		{"sql oracle database link", FieldDBQueryText, "CREATE DATABASE LINK l CONNECT TO app IDENTIFIED BY hunter2 USING 'db'", "CREATE DATABASE LINK l CONNECT TO app IDENTIFIED BY ? USING ?"},
		{"sql replace otherwise kept", FieldDBQueryText, "SELECT REPLACE(name, a, b) FROM t ORDER BY name", "SELECT REPLACE(name, a, b) FROM t ORDER BY name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Value(tt.field, tt.in)
			if got != tt.want {
				t.Errorf("Value(%s, %q) = %q, want %q", tt.field, tt.in, got, tt.want)
			}
			if again := r.Value(tt.field, got); again != got {
				t.Errorf("Value is not idempotent: %q then %q", got, again)
			}
		})
	}
}

func TestConfiguredRules(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mask = "***"
	cfg.NamePatterns = []string{`^sig$`}
	cfg.AllowNames = []string{`^keyword$`}
	cfg.ValuePatterns = []string{`\b\d{3}-\d{2}-\d{4}\b`}
	cfg.AllowValues = []string{`@example\.com$`}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ field, in, want string }{
		{FieldURLQuery, "sig=1&keyword=shoes&monkey=2", "sig=***&keyword=shoes&monkey=***"},
		{"span.name", "ssn 123-45-6789", "ssn ***"},
		{"url.path", "/u/ops@example.com/ops@corp.io", "/u/ops@example.com/***"},
	}
	for _, tt := range tests {
		if got := r.Value(tt.field, tt.in); got != tt.want {
			t.Errorf("Value(%s, %q) = %q, want %q", tt.field, tt.in, got, tt.want)
		}
	}

	off, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := off.Value(FieldURLQuery, "token=x"); got != "token=x" {
		t.Errorf("disabled: %q", got)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"default", func(*Config) {}, nil},
		{"disabled ignores the rest", func(c *Config) { *c = Config{Mask: ""} }, nil},
		{"bad", func(c *Config) {
			c.Mask = ""
			c.Names = []string{"token", ""}
			c.NamePatterns = []string{"("}
			c.ValuePatterns = []string{"a*"}
		}, []string{"mask is empty", "names[1] is empty", `name_patterns[0] "("`, `value_patterns[0] "a*" matches the empty string`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestSpans(t *testing.T) {
	r := newDefault(t)
	clean := telemetry.Span{Service: "shop", Name: "GET /products", Attrs: telemetry.Attrs{
		HTTPMethod: "GET", URLPath: "/products", URLQuery: "q=1", RequestHeaders: map[string]string{"accept": "*/*"},
	}}
	dirty := telemetry.Span{Service: "shop", Name: "SELECT", Attrs: telemetry.Attrs{
		URLQuery: "access_token=SECRET123&q=1", URLFull: "http://a:b@h.example/p?token=SECRET123",
		DBQueryText: "SELECT * FROM users WHERE password='hunter2'", UserAgent: "bot ops@corp.io",
		RequestHeaders: map[string]string{"authorization": "Basic Zm9v", "accept": "*/*"},
	}}
	in := []telemetry.Span{clean}
	if got := r.Spans(in); &got[0] != &in[0] {
		t.Error("a batch with nothing to mask was copied")
	}
	in = []telemetry.Span{clean, dirty}
	got := r.Spans(in)
	if diff := cmp.Diff(in[0], got[0]); diff != "" {
		t.Errorf("clean span changed (-in +got):\n%s", diff)
	}
	want := dirty
	want.Attrs.URLQuery = "access_token=REDACTED&q=1"
	want.Attrs.URLFull = "http://REDACTED:REDACTED@h.example/p?token=REDACTED"
	want.Attrs.DBQueryText = "SELECT * FROM users WHERE password=?"
	want.Attrs.UserAgent = "bot REDACTED"
	want.Attrs.RequestHeaders = map[string]string{"authorization": "REDACTED", "accept": "*/*"}
	if diff := cmp.Diff(want, got[1]); diff != "" {
		t.Errorf("redacted span (-want +got):\n%s", diff)
	}
	if in[1].Attrs.URLQuery != dirty.Attrs.URLQuery || in[1].Attrs.RequestHeaders["authorization"] != "Basic Zm9v" {
		t.Error("the input batch was modified")
	}
}

func TestCleanValuesDoNotAllocate(t *testing.T) {
	r := newDefault(t)
	sp := []telemetry.Span{{Name: "GET /products/{id}", Attrs: telemetry.Attrs{
		URLPath: "/products/42", URLQuery: "q=shoes&page=2&sort=price", URLFull: "https://shop.example/products/42?q=shoes",
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", DBQueryText: "SELECT name FROM products WHERE id = $1",
		RequestHeaders: map[string]string{"accept": "text/html", "content-type": "application/json"},
	}}}
	if n := testing.AllocsPerRun(100, func() { r.Spans(sp) }); n != 0 {
		t.Errorf("Spans of a clean span allocates %v times", n)
	}
}

func TestProfiles(t *testing.T) {
	r := newDefault(t)
	clean := &telemetry.ProfileBatch{Service: "shop", Samples: []telemetry.Sample{{Count: 1, SpanName: "GET /users/{id}"}}}
	dirty := &telemetry.ProfileBatch{Service: "shop", Samples: []telemetry.Sample{
		{Count: 1, SpanName: "GET /users/{id}"}, {Count: 2, SpanName: "GET /users/bob@example.com"},
	}}
	in := []*telemetry.ProfileBatch{clean}
	if got := r.Profiles(in); &got[0] != &in[0] {
		t.Error("profiles with nothing to mask were copied")
	}
	in = []*telemetry.ProfileBatch{clean, dirty}
	got := r.Profiles(in)
	if got[0] != clean || got[1] == dirty {
		t.Fatal("want the clean batch shared and the other copied")
	}
	if n := got[1].Samples[1].SpanName; n != "GET /users/REDACTED" {
		t.Errorf("span name = %q", n)
	}
	if dirty.Samples[1].SpanName != "GET /users/bob@example.com" {
		t.Error("the input batch was modified")
	}
	// A Pyroscope receiver's source holds the application name as sent,
	// with its labels.
	named := &telemetry.ProfileBatch{Service: "shop", Source: "pyroscope /ingest shop.cpu{env=prod,api_key=s3cr3t} from 10.0.0.7:51234",
		Samples: []telemetry.Sample{{Count: 1, SpanName: "GET /users/{id}"}}}
	got = r.Profiles([]*telemetry.ProfileBatch{named})
	if want := "pyroscope /ingest shop.cpu{env=prod,api_key=REDACTED} from 10.0.0.7:51234"; got[0].Source != want {
		t.Errorf("source = %q, want %q", got[0].Source, want)
	}
	if &got[0].Samples[0] != &named.Samples[0] {
		t.Error("the samples, with nothing to mask, were copied")
	}
}

// naiveShape is shapeOf a byte at a time.
func naiveShape(s string) shape {
	var sh shape
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ':':
			sh.colon = true
		case c == '@' || c == '%':
			sh.atOrPercent = true
		case c == '-' || c == '<':
			sh.dashOrLT = true
		case '0' <= c && c <= '9':
			sh.digits++
		}
	}
	return sh
}

func TestShapeOf(t *testing.T) {
	for _, s := range []string{"", "1", "abc", "4111 1111 1111 1111", "0123456789", "/:09@`", "\x80\xb0\xb9\xff09",
		"Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0", "ü9ä8ö7ß6€5 4321", "https://u:p@host/x", "bob%40example.com",
		"\x00\x01:\x01\x00@\x01%", "abcdefgh:", "abcdefgh@abcdefg", "abcdefg-", "--token x", "a<b>c</b>d", "12345678<"} {
		if got, want := shapeOf(s), naiveShape(s); got != want {
			t.Errorf("shapeOf(%q) = %+v, want %+v", s, got, want)
		}
	}
}

// TestHeaderAttributes checks that the header rules reach every
// attribute of a captured header or metadata entry: of a response as of
// a request (a Set-Cookie is only in a response), of gRPC and Connect
// metadata, and with the "_" older semantic conventions wrote for "-".
func TestHeaderAttributes(t *testing.T) {
	r := newDefault(t)
	tests := []struct{ key, in, want string }{
		{"http.response.header.set-cookie", "sid=s3cr3t; Path=/; HttpOnly", "REDACTED"},
		{"http.response.header.Set-Cookie", "sid=s3cr3t", "REDACTED"},
		{"http.request.header.set_cookie", "sid=s3cr3t", "REDACTED"},
		{"http.request.header.cookie", "sid=s3cr3t", "REDACTED"},
		{"rpc.grpc.request.metadata.cookie", "sid=s3cr3t", "REDACTED"},
		{"rpc.grpc.response.metadata.set-cookie", "sid=s3cr3t", "REDACTED"},
		{"rpc.connect_rpc.request.metadata.authorization", "Bearer s3cr3t", "REDACTED"},
		{"http.response.header.x-api-key", "s3cr3t", "REDACTED"},
		{"http.response.header.content-type", "text/html", "text/html"},
		{"http.response.header.location", "https://u:p@h.example/", "https://REDACTED:REDACTED@h.example/"},
		{"rpc.grpc.request.metadata.user-agent", "grpc-go/1.70", "grpc-go/1.70"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := r.Attribute(tt.key, tt.in); got != tt.want {
				t.Errorf("Attribute(%s, %q) = %q, want %q", tt.key, tt.in, got, tt.want)
			}
			if got := r.Value(tt.key, tt.in); got != tt.want {
				t.Errorf("Value(%s, %q) = %q, want %q", tt.key, tt.in, got, tt.want)
			}
		})
	}
}
