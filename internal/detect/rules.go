package detect

import (
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/evidentsec/evident/internal/telemetry"
)

// Field names a span attribute exploit rules look at, by its
// semantic-convention name.
type Field string

// Fields rules can match.
const (
	FieldURLPath   Field = "url.path"
	FieldURLQuery  Field = "url.query"
	FieldURLFull   Field = "url.full"
	FieldUserAgent Field = "user_agent.original"
	// FieldRequestHeader is every captured http.request.header.* value.
	FieldRequestHeader Field = "http.request.header"
	FieldDBQueryText   Field = "db.query.text"
	// FieldServerAddress is the host a CLIENT span called.
	FieldServerAddress Field = "server.address"
)

var fields = []Field{FieldURLPath, FieldURLQuery, FieldURLFull, FieldUserAgent, FieldRequestHeader, FieldDBQueryText, FieldServerAddress}

// Rule is one exploit-payload rule, as data: docs/detections.md describes
// the built-in set and how to add rules.
type Rule struct {
	// ID names the rule in alerts ("jndi-lookup").
	ID string `yaml:"id" json:"id"`
	// Class is the attack class (jndi-injection, path-traversal, ...).
	Class string `yaml:"class" json:"class"`
	// Fields are the span attributes the rule looks at.
	Fields []Field `yaml:"fields" json:"fields"`
	// Prefilter lists lower-case substrings, at least one of which must
	// occur in the decoded value before Pattern runs: the regular
	// expression is the costly part, and most values contain none.
	Prefilter []string `yaml:"prefilter" json:"prefilter"`
	// Pattern is an RE2 expression matched against the decoded value
	// (URL-decoded until stable, at most three rounds; overlong UTF-8
	// "/", "\" and "." folded; Log4j lookups such as ${lower:j}
	// flattened; ASCII lower-cased), anchored where a prefilter substring
	// occurs: a match must start with one of them. Anchoring is what
	// keeps a rule cheap: Go's regexp engine scans an unanchored pattern
	// at every offset, which cost microseconds per user agent.
	Pattern  string   `yaml:"pattern" json:"pattern"`
	Severity Severity `yaml:"severity" json:"severity"`
}

// ErrInvalidRule is wrapped by the errors of CompileRules.
var ErrInvalidRule = errors.New("invalid exploit rule")

// Rules is a compiled rule set. It is immutable and safe for concurrent
// use.
type Rules struct {
	byField map[Field][]*compiled
}

type compiled struct {
	Rule
	re *regexp.Regexp
}

// CompileRules checks and compiles rs. Every rule is checked; the error
// names each bad rule by index and id.
func CompileRules(rs []Rule) (*Rules, error) {
	out := &Rules{byField: make(map[Field][]*compiled)}
	var errs []error
	seen := map[string]bool{}
	for i, r := range rs {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%w: rules[%d] (%s): %s", ErrInvalidRule, i, r.ID, fmt.Sprintf(format, args...)))
		}
		switch {
		case r.ID == "":
			bad("id is empty")
			continue
		case seen[r.ID]:
			bad("id is used twice")
			continue
		case r.Class == "":
			bad("class is empty")
			continue
		case len(r.Fields) == 0:
			bad("no fields")
			continue
		case len(r.Prefilter) == 0:
			bad("no prefilter: every rule needs at least one substring")
			continue
		case !r.Severity.Valid():
			bad("severity %q is not one of critical, high, medium, low, info", r.Severity)
			continue
		}
		seen[r.ID] = true
		re, err := regexp.Compile(`^(?:` + r.Pattern + `)`)
		if err != nil {
			bad("pattern: %v", err)
			continue
		}
		c := &compiled{Rule: r, re: re}
		ok := true
		for _, p := range r.Prefilter {
			if p == "" || p != strings.ToLower(p) {
				bad("prefilter %q must be non-empty and lower case", p)
				ok = false
			}
		}
		for _, f := range r.Fields {
			if !validField(f) {
				bad("unknown field %q", f)
				ok = false
			}
		}
		if !ok {
			continue
		}
		for _, f := range r.Fields {
			out.byField[f] = append(out.byField[f], c)
		}
	}
	return out, errors.Join(errs...)
}

func validField(f Field) bool {
	for _, g := range fields {
		if f == g {
			return true
		}
	}
	return false
}

// Hit is a rule matching a span attribute.
type Hit struct {
	Rule *Rule
	// Field is the attribute, "http.request.header.<name>" for headers.
	Field string
	// Match is the matched text of the decoded value; Value the decoded
	// value; Raw the value as received.
	Match, Value, Raw string
	// Offset is where Match starts in Value.
	Offset int
}

// Scan runs the rules over the attributes of a span and calls hit for
// each rule that matches, once per rule. It allocates nothing for values
// that need no decoding and match no prefilter.
func (r *Rules) Scan(sp *telemetry.Span, hit func(Hit)) {
	var fired map[string]bool
	check := func(f Field, name, v string) {
		rules := r.byField[f]
		if v == "" || len(rules) == 0 {
			return
		}
		d := decode(v, f == FieldURLQuery)
		set := bytesOf(d)
		for _, c := range rules {
			if fired[c.ID] {
				continue
			}
			at, end, ok := c.find(d, &set)
			if !ok {
				continue
			}
			if fired == nil {
				fired = make(map[string]bool)
			}
			fired[c.ID] = true
			hit(Hit{Rule: &c.Rule, Field: name, Match: d[at:end], Value: d, Raw: v, Offset: at})
		}
	}
	a := &sp.Attrs
	check(FieldURLPath, string(FieldURLPath), a.URLPath)
	check(FieldURLQuery, string(FieldURLQuery), a.URLQuery)
	check(FieldURLFull, string(FieldURLFull), a.URLFull)
	check(FieldUserAgent, string(FieldUserAgent), a.UserAgent)
	check(FieldDBQueryText, string(FieldDBQueryText), a.DBQueryText)
	if sp.Kind == telemetry.SpanKindClient {
		check(FieldServerAddress, string(FieldServerAddress), a.ServerAddress)
	}
	for name, v := range a.RequestHeaders {
		check(FieldRequestHeader, string(FieldRequestHeader)+"."+name, v)
	}
}

// maxTries bounds the places a rule's pattern is tried per value, so
// that a value full of quotes costs a bounded number of matches.
const maxTries = 64

// byteSet is the set of bytes a value contains: a substring whose first
// or last byte is missing cannot occur, which rules out most prefilter
// substrings of most values without searching.
type byteSet [4]uint64

func bytesOf(s string) byteSet {
	var b byteSet
	for i := 0; i < len(s); i++ {
		b[s[i]>>6] |= 1 << (s[i] & 63)
	}
	return b
}

func (b *byteSet) has(c byte) bool { return b[c>>6]&(1<<(c&63)) != 0 }

// find tries the rule's pattern wherever a prefilter substring occurs in
// d and returns the bounds of the first match.
func (c *compiled) find(d string, set *byteSet) (start, end int, ok bool) {
	tries := 0
	for _, p := range c.Prefilter {
		if !set.has(p[0]) || !set.has(p[len(p)-1]) {
			continue
		}
		for off := 0; tries < maxTries; tries++ {
			i := strings.Index(d[off:], p)
			if i < 0 {
				break
			}
			at := off + i
			if loc := c.re.FindStringIndex(d[at:]); loc != nil {
				return at, at + loc[1], true
			}
			off = at + 1
		}
	}
	return 0, 0, false
}

// Redactor masks secrets and personal data in attribute values;
// *redact.Redactor satisfies it. It must be safe for concurrent use.
type Redactor interface {
	// Value returns v, the value of the attribute field as received, with
	// what must not be kept masked.
	Value(field, v string) string
	// Mask is what a masked value is replaced with.
	Mask() string
}

// Alerts runs the rules over a span, which holds the values as received,
// and returns an alert per hit. With red set, the evidence holds no more
// than red lets through: Value is the redacted value, decoded; Match is
// kept when it is still found there and is red's mask otherwise; Offset
// and Length locate it in the decoded value as received. nil red keeps
// the evidence verbatim.
func (r *Rules) Alerts(sp *telemetry.Span, red Redactor, receivedAt, now time.Time) []Alert {
	var out []Alert
	r.Scan(sp, func(h Hit) {
		ep := EndpointOf(sp)
		match, value := h.Match, h.Value
		if red != nil {
			ep = red.Value("span.name", ep)
			value = decode(red.Value(h.Field, h.Raw), h.Field == string(FieldURLQuery))
			if !strings.Contains(value, match) {
				match = red.Mask()
			}
		}
		out = append(out, Alert{
			Kind:     KindExploitPayload,
			Severity: h.Rule.Severity,
			Service:  sp.Service,
			Summary:  fmt.Sprintf("%s payload (%s) in %s of %s %s", h.Rule.Class, h.Rule.ID, h.Field, sp.Service, ep),
			Evidence: Evidence{
				Rule: h.Rule.ID, Class: h.Rule.Class, Field: h.Field,
				Match: truncate(match, 200), Value: truncate(value, 512),
				Offset: h.Offset, Length: len(h.Match),
				TraceID: fmtID(sp.TraceID[:]), SpanID: fmtID(sp.SpanID[:]),
				Endpoint: ep,
			},
			DedupeKey:  strings.Join([]string{string(KindExploitPayload), sp.Service, ep, h.Rule.ID}, "|"),
			Time:       now,
			ReceivedAt: receivedAt,
		})
	})
	return out
}

// fmtID formats a trace or span id in hex, "" when it is all zeros.
func fmtID(id []byte) string {
	for _, b := range id {
		if b != 0 {
			return hex.EncodeToString(id)
		}
	}
	return ""
}

// EndpointOf names the endpoint a span belongs to the way the runtime
// model does: "GET /products/{id}", "rpc Service/Method", else the span
// name.
func EndpointOf(sp *telemetry.Span) string {
	a := &sp.Attrs
	switch {
	case a.HTTPRoute != "" || a.HTTPMethod != "":
		route := a.HTTPRoute
		if route == "" {
			route = sp.Name
		}
		if a.HTTPMethod == "" {
			return route
		}
		return a.HTTPMethod + " " + route
	case a.RPCMethod != "":
		return a.RPCService + " " + a.RPCMethod
	}
	return sp.Name
}

// maxDecodeRounds bounds URL-decoding: attackers double- and
// triple-encode to slip past single-pass filters, and a bound keeps the
// cost linear whatever they send.
const maxDecodeRounds = 3

// decode normalizes a value for matching; see Rule.Pattern. It returns v
// itself when nothing needs changing.
func decode(v string, query bool) string {
	switch needsDecode(v, query) {
	case decodeNone:
		return v
	case decodeCase:
		// Most user agents and headers only need lower-casing, which
		// strings.ToLower does in one pass for ASCII.
		return strings.ToLower(v)
	}
	b := []byte(v)
	for range maxDecodeRounds {
		n, changed := percentDecode(b, query)
		b = n
		if !changed {
			break
		}
	}
	b = foldOverlong(b)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	s := string(b)
	if strings.Contains(s, "${") {
		s = flattenLookups(s)
	}
	return s
}

// Decoding a value needs.
const (
	decodeNone = iota // nothing: match the value as it is
	decodeCase        // only ASCII lower-casing
	decodeFull        // escapes, overlong forms or lookups
)

func needsDecode(v string, query bool) int {
	need := decodeNone
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '%' || (c == '+' && query) || c >= 0x80 || (c == '$' && i+1 < len(v) && v[i+1] == '{'):
			return decodeFull
		case 'A' <= c && c <= 'Z':
			need = decodeCase
		}
	}
	return need
}

// percentDecode decodes %XX and IIS-style %uXXXX escapes in place,
// leniently: a malformed escape stays as it is. In a query, "+" is a
// space.
func percentDecode(b []byte, query bool) ([]byte, bool) {
	out := b[:0]
	changed := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '+' && query:
			out = append(out, ' ')
			changed = true
		case c == '%' && i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]):
			out = append(out, unhex(b[i+1])<<4|unhex(b[i+2]))
			i += 2
			changed = true
		case c == '%' && i+5 < len(b) && (b[i+1] == 'u' || b[i+1] == 'U') && isHex(b[i+2]) && isHex(b[i+3]) && isHex(b[i+4]) && isHex(b[i+5]):
			r := rune(unhex(b[i+2]))<<12 | rune(unhex(b[i+3]))<<8 | rune(unhex(b[i+4]))<<4 | rune(unhex(b[i+5]))
			// %u escapes of ASCII are what filters miss; wider ones are
			// kept as one "?" to stay in place.
			if r < 0x80 {
				out = append(out, byte(r))
			} else {
				out = append(out, '?')
			}
			i += 5
			changed = true
		default:
			out = append(out, c)
		}
	}
	return out, changed
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// overlong lists invalid overlong UTF-8 encodings of "/", "\" and "."
// that old decoders accepted (the IIS "..%c0%af" traversal).
var overlong = []struct {
	seq string
	c   byte
}{
	{"\xc0\xaf", '/'}, {"\xe0\x80\xaf", '/'}, {"\xc1\x9c", '\\'}, {"\xc0\xae", '.'}, {"\xe0\x80\xae", '.'},
}

func foldOverlong(b []byte) []byte {
	hi := false
	for _, c := range b {
		if c == 0xc0 || c == 0xc1 || c == 0xe0 {
			hi = true
			break
		}
	}
	if !hi {
		return b
	}
	s := string(b)
	for _, o := range overlong {
		s = strings.ReplaceAll(s, o.seq, string(o.c))
	}
	return []byte(s)
}

// lookupRE matches one Log4j lookup that evaluates to its argument, the
// obfuscations of "${jndi:": ${lower:j}, ${upper:j}, ${::-j},
// ${env:NOPE:-j}, ${date:'j'}.
var lookupRE = regexp.MustCompile(`\$\{(?:lower:|upper:|::-|[a-z]+:[^:{}$]*:-|date:')([^${}']*)'?\}`)

// maxFlattenRounds bounds nested lookup flattening.
const maxFlattenRounds = 8

func flattenLookups(s string) string {
	for range maxFlattenRounds {
		n := lookupRE.ReplaceAllString(s, "$1")
		if n == s {
			break
		}
		s = n
	}
	return s
}
