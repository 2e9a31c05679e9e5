package redact

import (
	"strings"
	"testing"
)

// FuzzValue feeds attribute values as a sender may write them: Value,
// Attribute (for a key it knows, a header, an older URL key and a key it
// does not know) and Text must not panic and must be idempotent, and Value
// must leave no secret parameter value in a query.
func FuzzValue(f *testing.F) {
	for _, s := range []string{
		"access_token=SECRET123&q=1", "SELECT * FROM t WHERE a='x' AND b=\"y\" -- c", "a@b.cc@d.ee",
		"https://u:p@h/x?token=1#f", "4111 1111 1111 1111", "$tag$x$tag$ $1 $$", "pass%77ord=x&%", "'\\", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig eyJ.eyJ",
	} {
		f.Add(s)
	}
	r := newDefault(f)
	fields := []string{FieldURLQuery, FieldURLFull, FieldDBQueryText, HeaderPrefix + "accept", "url.path"}
	keys := []string{FieldDBStatement, HeaderPrefix + "cookie", "http.response.header.set_cookie", "http.target", "exception.message"}
	f.Fuzz(func(t *testing.T, v string) {
		for _, field := range fields {
			got := r.Value(field, v)
			if again := r.Value(field, got); again != got {
				t.Errorf("Value(%s) not idempotent: %q -> %q -> %q", field, v, got, again)
			}
		}
		for _, key := range keys {
			got := r.Attribute(key, v)
			if again := r.Attribute(key, got); again != got {
				t.Errorf("Attribute(%s) not idempotent: %q -> %q -> %q", key, v, got, again)
			}
		}
		if got := r.Text(v); r.Text(got) != got {
			t.Errorf("Text not idempotent: %q -> %q -> %q", v, got, r.Text(got))
		}
		// Whatever a literal holds is gone from the statement.
		if lit := strings.Map(func(c rune) rune {
			if c == '\'' || c == '\\' {
				return -1
			}
			return c
		}, v); len(lit) >= 4 && !strings.Contains("SELECT * FROM t WHERE a = ? AND b = 1", lit) {
			stmt := r.Value(FieldDBQueryText, "SELECT * FROM t WHERE a = '"+lit+"' AND b = 1")
			if strings.Contains(stmt, lit) {
				t.Errorf("the literal %q survived: %q", lit, stmt)
			}
		}
		got := r.Value(FieldURLQuery, v)
		for _, pair := range strings.Split(got, "&") {
			name, val, ok := strings.Cut(pair, "=")
			if ok && val != "" && strings.Contains(strings.ToLower(name), "token") && val != r.Mask() {
				t.Errorf("query %q: %s kept its value: %q", v, name, got)
			}
		}
	})
}

func FuzzShapeOf(f *testing.F) {
	f.Add("4111 1111 1111 1111")
	f.Add("https://u:p@host/x?%40\x2f\x30\x39\x3a\xb0\xb9")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := shapeOf(s), naiveShape(s); got != want {
			t.Fatalf("shapeOf(%q) = %+v, want %+v", s, got, want)
		}
	})
}
