// Package redact masks secrets and personal data in span attributes before
// evident stores or sends anything: values of query parameters and request
// headers named like credentials, cookies, literals in SQL statements,
// credentials in URLs, e-mail addresses, card numbers, and whatever extra
// patterns the configuration names (docs/security.md).
//
// It runs on the ingest hot path, so a value with nothing to mask costs a
// scan and no allocation; only a value that changes is copied.
package redact

import (
	"bytes"
	"fmt"
	"maps"
	"math/bits"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/evidentsec/evident/internal/telemetry"
)

// Attribute names Value knows; any other name gets the rules for free text.
const (
	FieldURLQuery    = "url.query"
	FieldURLFull     = "url.full"
	FieldDBQueryText = "db.query.text"
	// FieldDBStatement is the older name of FieldDBQueryText.
	FieldDBStatement = "db.statement"
	// HeaderPrefix starts the attribute name of a captured request header,
	// followed by the lower-case header name.
	HeaderPrefix = "http.request.header."
)

// headerPrefixes start the attribute names of captured headers and
// metadata, each followed by the header's name: the request's and the
// response's (a Set-Cookie is only ever in a response), HTTP's and
// gRPC's and Connect's metadata (semantic conventions).
var headerPrefixes = []string{
	HeaderPrefix, "http.response.header.",
	"rpc.grpc.request.metadata.", "rpc.grpc.response.metadata.",
	"rpc.connect_rpc.request.metadata.", "rpc.connect_rpc.response.metadata.",
}

// headerName returns the header name of an attribute of a captured
// header, and whether key is one.
func headerName(key string) (string, bool) {
	for _, p := range headerPrefixes {
		if name, ok := strings.CutPrefix(key, p); ok {
			return name, true
		}
	}
	return "", false
}

// Redactor applies a Config. It is immutable and safe for concurrent use.
type Redactor struct {
	cfg Config
	c   compiled
	// keys caches the rule of each attribute key Attribute has seen, up
	// to maxKeys: a request repeats the same few dozen keys on every span.
	// The map is replaced, never modified, so reads take no lock.
	keys   atomic.Pointer[map[string]keyRule]
	keysMu sync.Mutex
}

// keyRule is how Attribute treats the values of an attribute key.
type keyRule uint8

const (
	ruleValue keyRule = iota // Value's rules for the key: a field it knows, a header, or free text
	ruleMask                 // named like a credential: masked whole
	ruleURL                  // an older name of url.full
)

// maxKeys bounds the attribute keys whose rule is cached: keys beyond it,
// which only a sender making them up would reach, are looked at each time.
const maxKeys = 1024

var _ telemetry.Masker = (*Redactor)(nil)

// New checks cfg and returns its Redactor.
func New(cfg Config) (*Redactor, error) {
	c, err := cfg.compile()
	if err != nil {
		return nil, err
	}
	return &Redactor{cfg: cfg, c: c}, nil
}

// Enabled reports whether r masks anything.
func (r *Redactor) Enabled() bool { return r != nil && r.cfg.Enabled }

// Mask returns what a masked value is replaced with.
func (r *Redactor) Mask() string { return r.cfg.Mask }

// Value returns v, an attribute value as received, with what must not be
// kept masked. field is the attribute's semantic-convention name
// (FieldURLQuery, HeaderPrefix+"cookie", ...). It returns v itself when
// nothing is masked.
//
// A value is redacted again until nothing changes, as what one pass masks
// can change how the next reads it (URL credentials masked before a query
// parameter's name, digits masked in a statement's "$4444...$"): a redacted
// value redacted again stays as it is. One that still changes after
// maxValuePasses is masked whole.
func (r *Redactor) Value(field, v string) string {
	if !r.Enabled() || v == "" {
		return v
	}
	for range maxValuePasses {
		next := r.valueOnce(field, v)
		if next == v {
			return v
		}
		v = next
	}
	return r.cfg.Mask
}

// maxValuePasses bounds the passes of Value.
const maxValuePasses = 4

// valueOnce is one pass of Value's rules over v.
func (r *Redactor) valueOnce(field, v string) string {
	switch {
	case field == FieldURLQuery:
		// Pairs are what query reads: the text rules need not again.
		return r.textRules(r.query(v), false)
	case field == FieldURLFull:
		v = r.urlQuery(v)
	case field == FieldDBQueryText || field == FieldDBStatement:
		// The sanitizer first, then the rules for free text.
		if r.cfg.SQL {
			v = sanitizeSQL(v)
		}
	}
	if name, ok := headerName(field); ok {
		return r.header(name, v)
	}
	return r.text(v)
}

// Attribute returns v, the string value of the span, resource, event or
// link attribute key as received (or one element of an array value),
// with what must not be kept masked: the attributes Value knows by name
// (and http.url and http.target, the older names of url.full and of a
// path with its query) get their rules, an attribute named like a
// credential (Names, NamePatterns, AllowNames, as for query parameters
// and headers) is masked whole, and any other gets the rules for free
// text. It returns v itself when nothing is masked. It serves the
// redaction of requests as received (telemetry.RedactTraceRequest), which
// reaches the attributes evident does not decode as well.
func (r *Redactor) Attribute(key, v string) string {
	if !r.Enabled() || v == "" {
		return v
	}
	switch r.ruleOf(key) {
	case ruleURL:
		return r.Value(FieldURLFull, v)
	case ruleMask:
		return r.cfg.Mask
	}
	// Value picks the rules of a known field or a header by key, and
	// applies the rules for free text to any other.
	return r.Value(key, v)
}

// ruleOf returns the rule of the attribute key, from the cache when it
// is there.
func (r *Redactor) ruleOf(key string) keyRule {
	cache := r.keys.Load()
	if cache != nil {
		if rule, ok := (*cache)[key]; ok {
			return rule
		}
	}
	rule := ruleValue
	switch {
	case key == FieldURLQuery || key == FieldURLFull || key == FieldDBQueryText || key == FieldDBStatement:
		// Value's own rules (a header's name is looked at by them).
	case key == "http.url" || key == "http.target":
		rule = ruleURL
	case r.secretName(key):
		rule = ruleMask
	}
	if _, ok := headerName(key); ok {
		// Value's own rules: a header's name is looked at by them.
		rule = ruleValue
	}
	if cache == nil || len(*cache) < maxKeys {
		r.keysMu.Lock()
		defer r.keysMu.Unlock()
		old := r.keys.Load()
		var next map[string]keyRule
		if old == nil {
			next = make(map[string]keyRule, 64)
		} else if len(*old) < maxKeys {
			next = make(map[string]keyRule, len(*old)+1)
			maps.Copy(next, *old)
		}
		if next != nil {
			// key may point into a request's buffer.
			next[strings.Clone(key)] = rule
			r.keys.Store(&next)
		}
	}
	return rule
}

// Text returns v, free text, with the rules for free text applied: URL
// credentials, e-mail addresses, card numbers and the configured value
// patterns, again until nothing changes as Value does. It returns v itself
// when nothing is masked.
func (r *Redactor) Text(v string) string {
	return r.Value("", v)
}

// Spans returns spans with their attributes redacted. spans itself is
// never modified, so that detections can still look at the values as
// received: when nothing needs masking the result is spans, otherwise a
// copy in which only the masked values differ.
func (r *Redactor) Spans(spans []telemetry.Span) []telemetry.Span {
	if !r.Enabled() {
		return spans
	}
	var out []telemetry.Span
	for i := range spans {
		sp, changed := r.span(&spans[i])
		if !changed {
			continue
		}
		if out == nil {
			out = make([]telemetry.Span, len(spans))
			copy(out, spans)
		}
		out[i] = sp
	}
	if out == nil {
		return spans
	}
	return out
}

// TraceRequest redacts a batch of spans that came with the OTLP request
// they were decoded from, req, and the texts the decoder recorded in it
// (telemetry.Texts; nil when not known), before the request is logged or
// sent on. It returns the request to keep and the spans to go with it:
// req and spans as they are when nothing in req is masked, which the
// texts tell without walking it; else req redacted on the wire, which
// reaches every attribute, also those evident does not decode, with the
// spans decoded again from it, so that they are what a decoder of the
// kept request gives. When the wire redaction cannot follow req (err
// says why), kept is nil and out is the spans Spans gives: the caller
// keeps them encoded again instead of the request.
func (r *Redactor) TraceRequest(spans []telemetry.Span, req []byte, texts *telemetry.Texts) (kept []byte, out []telemetry.Span, redacted bool, err error) {
	if !r.Enabled() || texts != nil && !texts.Masks(r) {
		return req, spans, false, nil
	}
	masked, changed, err := telemetry.RedactTraceRequest(req, r)
	switch {
	case err != nil:
		out, redacted := r.spansRedacted(spans)
		return nil, out, redacted, err
	case !changed:
		return req, spans, false, nil
	}
	decoded, err := telemetry.TraceRequestSpans(masked, "the redacted request")
	if err == nil && len(decoded) != len(spans) {
		err = fmt.Errorf("%d spans, %d received", len(decoded), len(spans))
	}
	if err != nil {
		// Redaction changes values, never which spans decode.
		out, redacted := r.spansRedacted(spans)
		return nil, out, redacted, fmt.Errorf("redacted trace request does not decode as received: %w", err)
	}
	return masked, decoded, true, nil
}

// spansRedacted is Spans, also saying whether anything was masked.
func (r *Redactor) spansRedacted(spans []telemetry.Span) ([]telemetry.Span, bool) {
	out := r.Spans(spans)
	return out, len(out) > 0 && &out[0] != &spans[0]
}

// Profiles returns profile batches with the span names their samples
// carry (pprof span_name labels, OTLP links) and their source redacted as
// text: a receiver's source names what the request said, a Pyroscope
// application name with its labels ("app.cpu{token=...}"). Like Spans it
// never modifies ps: a batch with a changed name is copied, the others
// are shared, and ps itself is returned when nothing changed.
func (r *Redactor) Profiles(ps []*telemetry.ProfileBatch) []*telemetry.ProfileBatch {
	if !r.Enabled() {
		return ps
	}
	var out []*telemetry.ProfileBatch
	for i, b := range ps {
		source := r.text(b.Source)
		var samples []telemetry.Sample
		for j := range b.Samples {
			name := b.Samples[j].SpanName
			if m := r.text(name); m != name {
				if samples == nil {
					samples = slices.Clone(b.Samples)
				}
				samples[j].SpanName = m
			}
		}
		if samples == nil && source == b.Source {
			continue
		}
		if out == nil {
			out = slices.Clone(ps)
		}
		nb := *b
		nb.Source = source
		if samples != nil {
			nb.Samples = samples
		}
		out[i] = &nb
	}
	if out == nil {
		return ps
	}
	return out
}

// ProfileRequest redacts ps, the batches decoded from req (nil when they
// came without their request), as Profiles does, and reports whether any
// was masked and whether req may be kept as received: only when neither
// its batches nor what it holds beyond them (ProfileRequest.Masks) would
// be masked. It is the one rule of the engine's log and of the Kafka
// records, which keep a request as received or its batches redacted.
func (r *Redactor) ProfileRequest(ps []*telemetry.ProfileBatch, req *telemetry.ProfileRequest) (clean []*telemetry.ProfileBatch, redacted, keep bool) {
	clean = r.Profiles(ps)
	redacted = len(ps) > 0 && &clean[0] != &ps[0]
	keep = req != nil && !redacted && !(r.Enabled() && (req.Masks(r) || r.sourceMasked(req)))
	return clean, redacted, keep
}

// sourceMasked reports whether the source of a profile of req would be
// masked: Profiles masks it in the batches, but a profile that decoded to
// none would keep it in req.
func (r *Redactor) sourceMasked(req *telemetry.ProfileRequest) bool {
	return slices.ContainsFunc(req.Profiles, func(p telemetry.ReceivedProfile) bool { return r.text(p.Source) != p.Source })
}

// span returns a redacted copy of sp and whether anything changed.
func (r *Redactor) span(in *telemetry.Span) (telemetry.Span, bool) {
	sp := *in
	a := &sp.Attrs
	changed := false
	set := func(dst *string, v string) {
		if v != *dst {
			*dst, changed = v, true
		}
	}
	set(&sp.Name, r.text(sp.Name))
	set(&a.URLPath, r.text(a.URLPath))
	set(&a.URLQuery, r.Value(FieldURLQuery, a.URLQuery))
	set(&a.URLFull, r.Value(FieldURLFull, a.URLFull))
	set(&a.UserAgent, r.text(a.UserAgent))
	set(&a.DBQueryText, r.Value(FieldDBQueryText, a.DBQueryText))
	var headers map[string]string
	for k, v := range a.RequestHeaders {
		if m := r.header(k, v); m != v {
			if headers == nil {
				headers = maps.Clone(a.RequestHeaders)
			}
			headers[k] = m
		}
	}
	if headers != nil {
		a.RequestHeaders, changed = headers, true
	}
	return sp, changed
}

// header redacts the value of the header name, of a request or a
// response, in any case, with "_" for "-" as older semantic conventions
// wrote it (http.request.header.x_api_key).
func (r *Redactor) header(name, v string) string {
	if v == "" {
		return v
	}
	for _, h := range r.c.headers {
		if sameHeader(name, h) {
			return r.cfg.Mask
		}
	}
	if r.secretName(name) {
		return r.cfg.Mask
	}
	return r.text(v)
}

// sameHeader reports whether the header names a and b are the same, in
// any case and with "_" and "-" the same.
func sameHeader(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if x != y && ('a' > x|0x20 || x|0x20 > 'z' || x|0x20 != y|0x20) {
			return false
		}
	}
	return true
}

// secretName reports whether a parameter or header named name holds a
// secret.
func (r *Redactor) secretName(name string) bool {
	if len(name) < r.c.minName && len(r.c.namePatterns) == 0 {
		return false
	}
	// Names are short: lower-casing into a buffer on the stack lets the
	// substring search run at full speed without allocating.
	var buf [64]byte
	lower, escaped := buf[:0], false
	if len(name) <= len(buf) {
		for i := 0; i < len(name); i++ {
			c := name[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			escaped = escaped || c == '%' || c == '+'
			lower = append(lower, c)
		}
	}
	if escaped || len(name) > len(buf) {
		// Legitimate clients do not encode names; decoding keeps an
		// encoded "pass%77ord" from slipping through.
		name = unescape(name)
		lower = []byte(strings.ToLower(name))
	}
	hit := false
	for _, n := range r.c.names {
		if bytes.Contains(lower, n) {
			hit = true
			break
		}
	}
	if !hit {
		for _, re := range r.c.namePatterns {
			if re.MatchString(name) {
				hit = true
				break
			}
		}
	}
	if !hit {
		return false
	}
	for _, re := range r.c.allowNames {
		if re.MatchString(name) {
			return false
		}
	}
	return true
}

// queryName reports whether a URL parameter named name holds a secret:
// its name is a secret's (secretName), or one of QueryNames.
func (r *Redactor) queryName(name string) bool {
	return r.secretName(name) || r.queryListed(name)
}

// queryListed reports whether name is one of QueryNames and not allowed:
// queryName for a name secretName already said no to.
func (r *Redactor) queryListed(name string) bool {
	if strings.IndexByte(name, '%') >= 0 || strings.IndexByte(name, '+') >= 0 {
		name = unescape(name)
	}
	for _, n := range r.c.queryNames {
		if strings.EqualFold(name, n) {
			for _, re := range r.c.allowNames {
				if re.MatchString(name) {
					return false
				}
			}
			return true
		}
	}
	return false
}

// query masks the values of secret parameters in a query string.
func (r *Redactor) query(q string) string {
	e := editor{src: q}
	for start := 0; start < len(q); {
		end := strings.IndexByte(q[start:], '&')
		if end < 0 {
			end = len(q)
		} else {
			end += start
		}
		if eq := strings.IndexByte(q[start:end], '='); eq >= 0 {
			name, val := q[start:start+eq], q[start+eq+1:end]
			if val != "" && val != r.cfg.Mask && r.queryName(name) {
				e.replace(start+eq+1, end, r.cfg.Mask)
			}
		}
		start = end + 1
	}
	return e.String()
}

// urlQuery masks the secret parameters of the query of a URL, and of
// its fragment: OAuth's implicit flow returns the access token there
// (#access_token=...), which a browser's instrumentation records with
// the page's URL, and a hash route carries its own query (#/reset?token=).
func (r *Redactor) urlQuery(u string) string {
	base, frag, hasFrag := strings.Cut(u, "#")
	b := base
	if i := strings.IndexByte(base, '?'); i >= 0 {
		if q := r.query(base[i+1:]); q != base[i+1:] {
			b = base[:i+1] + q
		}
	}
	f := frag
	if hasFrag {
		f = r.query(frag)
	}
	if b == base && f == frag {
		return u
	}
	if !hasFrag {
		return b
	}
	return b + "#" + f
}

// text applies the rules for free text: URL credentials, JSON Web
// Tokens, secrets in pairs, e-mail addresses, card numbers and the
// configured value patterns.
func (r *Redactor) text(v string) string { return r.textRules(v, r.cfg.Pairs) }

// textRules is text, with the rule for pairs if pairs is set.
func (r *Redactor) textRules(v string, pairs bool) string {
	if v == "" {
		return v
	}
	// One pass tells which rules can match at all: most values have no
	// "://", no "@" and too few digits.
	sh := shapeOf(v)
	if r.cfg.Credentials && sh.colon {
		v = r.credentials(v)
	}
	if r.cfg.Tokens && strings.Contains(v, "eyJ") {
		v = r.jwts(v)
	}
	if pairs && (sh.colon || strings.IndexByte(v, '=') >= 0) {
		v = r.pairs(v)
	}
	if pairs && sh.dashOrLT {
		if strings.Contains(v, " -") || strings.HasPrefix(v, "-") {
			v = r.options(v)
		}
		if strings.Contains(v, "</") {
			v = r.elements(v)
		}
	}
	if r.cfg.Emails && sh.atOrPercent {
		v = r.emails(v)
	}
	if r.cfg.CardNumbers && sh.digits >= 13 {
		v = r.cards(v)
	}
	for _, re := range r.c.values {
		v = r.pattern(re, v)
	}
	return v
}

// allowed reports whether an allow-list pattern keeps match.
func (r *Redactor) allowed(match string) bool {
	for _, re := range r.c.allowVals {
		if re.MatchString(match) {
			return true
		}
	}
	return false
}

// credentials masks the user information of URLs: scheme://user:pass@host
// becomes scheme://REDACTED:REDACTED@host, as the semantic conventions
// ask of url.full.
func (r *Redactor) credentials(s string) string {
	e := editor{src: s}
	for off := 0; ; {
		i := strings.Index(s[off:], "://")
		if i < 0 {
			break
		}
		start := off + i + 3
		end := start
		for end < len(s) && !strings.ContainsRune("/?#\"' \t\r\n<>", rune(s[end])) {
			end++
		}
		if at := strings.LastIndexByte(s[start:end], '@'); at > 0 {
			user := s[start : start+at]
			mask := r.cfg.Mask
			if strings.IndexByte(user, ':') >= 0 {
				mask += ":" + r.cfg.Mask
			}
			if user != mask {
				e.replace(start, start+at, mask)
			}
		}
		off = end
	}
	return e.String()
}

// jwts masks JSON Web Tokens: a base64url header that starts "eyJ" (a
// JSON object) and is as long as the shortest ({"alg":"none"}), a
// payload, and a signature that may be empty, each part after a dot (a
// JWE has five parts).
func (r *Redactor) jwts(s string) string {
	e := editor{src: s}
	for off := 0; ; {
		i := strings.Index(s[off:], "eyJ")
		if i < 0 {
			break
		}
		start := off + i
		end, parts, header := start, 0, 0
		for {
			j := end
			for j < len(s) && base64URLChar(s[j]) {
				j++
			}
			if j == end && parts < 2 {
				break
			}
			if parts == 0 {
				header = j - end
			}
			end, parts = j, parts+1
			if end >= len(s) || s[end] != '.' || parts == 5 {
				break
			}
			end++
		}
		if parts >= 3 && header >= minJWTHeader && (start == 0 || !base64URLChar(s[start-1])) && !r.allowed(s[start:end]) {
			e.replace(start, end, r.cfg.Mask)
			off = end
			continue
		}
		off = start + 3
	}
	return e.String()
}

// pairs masks the values of name=value pairs, and of "name": "value"
// pairs, in free text whose name is a secret's (secretName): a connection
// string's Password=...; (ADO.NET, ODBC, libpq's password=...), a JDBC
// URL's ;password=... or &password=..., a JSON body's "api_key": "...", a
// command line's --token=..., and a URL's parameter after ? or & whose
// name is one of QueryNames (...&sig=...). A value runs to a separator
// (whitespace ; & , and brackets), or is quoted, or in ODBC's braces; an
// authentication scheme (Bearer, Basic, ...) takes the credentials after
// it too. An unquoted name before ':' is a YAML mapping's or a dumped
// header's only when it starts a line and one word follows it to the
// line's end or a comment (password: hunter2, Authorization: Bearer
// abc): "auth: failed for bob" is prose.
func (r *Redactor) pairs(s string) string {
	e := editor{src: s}
	// The separators are found with IndexByte, which is vectorised: most
	// text has few, and a value of kilobytes costs little more than none.
	eq, colon := indexFrom(s, 0, '='), indexFrom(s, 0, ':')
	for {
		i := min(eq, colon)
		if i == len(s) {
			break
		}
		c := s[i]
		if i == eq {
			eq = indexFrom(s, i+1, '=')
		} else {
			colon = indexFrom(s, i+1, ':')
		}
		if c == '=' && (i+1 < len(s) && s[i+1] == '=' || i > 0 && strings.IndexByte("=!<>", s[i-1]) >= 0) {
			continue // a comparison: ==, !=, <=, >=
		}
		// The name, and the quotes around it, before the separator.
		end := i
		for end > 0 && (s[end-1] == ' ' || s[end-1] == '\t') {
			end--
		}
		var quote byte
		if end > 0 && (s[end-1] == '"' || s[end-1] == '\'') {
			quote = s[end-1]
			end--
		}
		// YAML wants a space after the colon of a plain key.
		yaml := c == ':' && quote == 0
		if yaml && (i+1 == len(s) || s[i+1] != ' ' && s[i+1] != '\t') {
			continue
		}
		start := end
		for start > 0 && pairNameChar(s[start-1]) {
			start--
		}
		if start == end || quote != 0 && (start == 0 || s[start-1] != quote) || yaml && !lineStart(s, start) {
			continue
		}
		// The value.
		v := i + 1
		for v < len(s) && (s[v] == ' ' || s[v] == '\t') {
			v++
		}
		// Nothing to mask, masked already (by the URL rules, which know a
		// fragment ends a value), or "?": a statement's parameter, or its
		// literal masked. Then the name, before the value's end is
		// looked for: most names are no secret's.
		if v == len(s) || pairDelimiter(s[v]) && s[v] != '"' && s[v] != '\'' && s[v] != '{' ||
			strings.HasPrefix(s[v:], r.cfg.Mask) || s[v] == '?' && (v+1 == len(s) || pairDelimiter(s[v+1])) {
			continue
		}
		if !r.secretName(s[start:end]) && (c != '=' || start == 0 || s[start-1] != '?' && s[start-1] != '&' || !r.queryListed(s[start:end])) {
			continue
		}
		from, to := v, v
		switch {
		case s[v] == '"' || s[v] == '\'':
			from, to = v+1, closingQuote(s, v+1, s[v])
		case s[v] == '{':
			// ODBC's braces, in which "}}" is a brace of the value.
			from, to = v+1, v+1
			for to < len(s) && (s[to] != '}' || to+1 < len(s) && s[to+1] == '}') {
				if s[to] == '}' {
					to++
				}
				to++
			}
		case yaml:
			to = wordEnd(s, v)
			if authScheme(s[v:to]) && to+1 < len(s) && s[to] == ' ' {
				to = wordEnd(s, to+1)
			}
			if !lineEnd(s, to) {
				continue
			}
		default:
			to = pairValueEnd(s, v)
			if authScheme(s[v:to]) && to+1 < len(s) && s[to] == ' ' {
				to = pairValueEnd(s, to+1)
			}
		}
		if from >= to || strings.HasPrefix(s[from:to], r.cfg.Mask) {
			continue
		}
		e.replace(from, to, r.cfg.Mask)
		if eq < to {
			eq = indexFrom(s, to, '=')
		}
		if colon < to {
			colon = indexFrom(s, to, ':')
		}
	}
	return e.String()
}

// lineStart reports whether the name at i starts a line of s: only
// indentation, and a YAML sequence's "- ", before it.
func lineStart(s string, i int) bool {
	for i > 0 && (s[i-1] == ' ' || s[i-1] == '\t') {
		i--
	}
	if i > 0 && s[i-1] == '-' {
		i--
		for i > 0 && (s[i-1] == ' ' || s[i-1] == '\t') {
			i--
		}
	}
	return i == 0 || s[i-1] == '\n' || s[i-1] == '\r'
}

// wordEnd returns the end of the run of non-space characters at i.
func wordEnd(s string, i int) int {
	for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n' {
		i++
	}
	return i
}

// lineEnd reports whether only spaces, and a YAML comment, follow i to
// the end of its line.
func lineEnd(s string, i int) bool {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i == len(s) || s[i] == '\r' || s[i] == '\n' || s[i] == '#' && s[i-1] == ' '
}

// indexFrom returns the index of the first c in s at or after i, len(s)
// when there is none.
func indexFrom(s string, i int, c byte) int {
	if i >= len(s) {
		return len(s)
	}
	if k := strings.IndexByte(s[i:], c); k >= 0 {
		return i + k
	}
	return len(s)
}

// options masks the value of a command line's option whose name is a
// secret's, given after a space (--password hunter2, -token abc), as
// pairs does --password=hunter2: a process's command line
// (process.command_line) holds what its operator typed.
func (r *Redactor) options(s string) string {
	e := editor{src: s}
	for i := strings.IndexByte(s, '-'); i >= 0 && i < len(s); {
		next := func() int {
			if k := strings.IndexByte(s[i+1:], '-'); k >= 0 {
				return i + 1 + k
			}
			return -1
		}
		if i > 0 && s[i-1] != ' ' && s[i-1] != '\t' {
			i = next()
			continue
		}
		start := i
		for start < len(s) && s[start] == '-' {
			start++
		}
		end := start
		for end < len(s) && pairNameChar(s[end]) {
			end++
		}
		// The value: after one space, not another option, not empty.
		v := end + 1
		if start == end || end >= len(s) || s[end] != ' ' || v >= len(s) || s[v] == '-' || pairDelimiter(s[v]) && s[v] != '"' && s[v] != '\'' ||
			strings.HasPrefix(s[v:], r.cfg.Mask) || !r.secretName(s[start:end]) {
			i = next()
			continue
		}
		from, to := v, pairValueEnd(s, v)
		if s[v] == '"' || s[v] == '\'' {
			from, to = v+1, closingQuote(s, v+1, s[v])
		}
		if from < to {
			e.replace(from, to, r.cfg.Mask)
		}
		if k := strings.IndexByte(s[to:], '-'); k >= 0 {
			i = to + k
		} else {
			i = -1
		}
	}
	return e.String()
}

// elements masks the text of XML elements whose name is a secret's
// (<password>hunter2</password>, <wsse:Password Type="…">…</wsse:Password>
// of a SOAP request in an exception message), as pairs does a JSON
// member: up to the element's end tag.
func (r *Redactor) elements(s string) string {
	e := editor{src: s}
	for i := strings.IndexByte(s, '<'); i >= 0 && i+1 < len(s); {
		next := func(from int) int {
			if k := strings.IndexByte(s[from:], '<'); k >= 0 {
				return from + k
			}
			return -1
		}
		start := i + 1
		end := start
		for end < len(s) && (pairNameChar(s[end]) || s[end] == ':') {
			end++
		}
		// The name without its namespace prefix, and the start tag's end.
		name := s[start:end]
		if k := strings.LastIndexByte(name, ':'); k >= 0 {
			name = name[k+1:]
		}
		gt := strings.IndexByte(s[end:], '>')
		if name == "" || gt < 0 || end < len(s) && s[end] != '>' && s[end] != ' ' || s[end+gt-1] == '/' || !r.secretName(name) {
			i = next(start)
			continue
		}
		from := end + gt + 1
		closing := strings.Index(s[from:], "</"+s[start:end])
		if closing < 0 {
			i = next(start)
			continue
		}
		to := from + closing
		if from < to && s[from:to] != r.cfg.Mask {
			e.replace(from, to, r.cfg.Mask)
		}
		i = next(to + 2)
	}
	return e.String()
}

// pairNameChar reports whether c can be in the name of a pair: a word, a
// dotted or dashed name, an option's leading dashes.
func pairNameChar(c byte) bool { return isAlnum(c) || c == '_' || c == '-' || c == '.' }

// pairValueEnd returns the end of an unquoted value starting at i.
func pairValueEnd(s string, i int) int {
	for i < len(s) && !pairDelimiter(s[i]) {
		i++
	}
	return i
}

// pairDelimiter reports whether c ends an unquoted value.
func pairDelimiter(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', ';', '&', ',', '"', '\'', '(', ')', '[', ']', '{', '}', '<', '>':
		return true
	}
	return false
}

// closingQuote returns the index of the quote q that closes a quoted
// value starting at i, a backslash escaping the next character; len(s)
// when it is not closed.
func closingQuote(s string, i int, q byte) int {
	for i < len(s) && s[i] != q {
		if s[i] == '\\' {
			i++
		}
		i++
	}
	return min(i, len(s))
}

// authScheme reports whether w is an HTTP authentication scheme that
// credentials follow.
func authScheme(w string) bool {
	for _, s := range []string{"bearer", "basic", "digest", "token", "negotiate"} {
		if strings.EqualFold(w, s) {
			return true
		}
	}
	return false
}

// minJWTHeader is the length of the shortest JWT header, {"alg":"none"}
// in base64url.
const minJWTHeader = 19

func base64URLChar(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }

// emails masks e-mail addresses, local part and domain, with the "@"
// written as it is or as %40.
func (r *Redactor) emails(s string) string {
	if strings.IndexByte(s, '@') < 0 && !strings.Contains(s, "%40") {
		return s
	}
	e := editor{src: s}
	// local is where the run of local-part characters before i starts:
	// kept as i goes rather than found by reading back from each "@",
	// which read a value of "%40%40..." (all local-part characters) back
	// to its start from every one.
	local := 0
	for i := 0; i < len(s); i++ {
		at := 0
		switch {
		case s[i] == '@':
			at = 1
		case s[i] == '%' && i+2 < len(s) && s[i+1] == '4' && s[i+2] == '0':
			at = 3
		case !localChar(s[i]):
			local = i + 1
			continue
		default:
			continue
		}
		l := local
		if at == 1 {
			// "@" is no local-part character; "%40" is three. What
			// follows up to d is domain characters, which all are.
			local = i + 1
		}
		d := i + at
		for d < len(s) && domainChar(s[d]) {
			d++
		}
		for d > i+at && (s[d-1] == '.' || s[d-1] == '-') {
			d--
		}
		if l == i || !validDomain(s[i+at:d]) || s[l:i] == r.cfg.Mask || r.allowed(s[l:d]) {
			continue
		}
		e.replace(l, d, r.cfg.Mask)
		i = d - 1
	}
	return e.String()
}

func localChar(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

func domainChar(c byte) bool { return isAlnum(c) || c == '.' || c == '-' }

// validDomain reports whether d looks like a domain: labels separated by
// dots, the last of at least two letters.
func validDomain(d string) bool {
	dot := strings.LastIndexByte(d, '.')
	if dot <= 0 || d[0] == '.' || len(d)-dot-1 < 2 {
		return false
	}
	for i := dot + 1; i < len(d); i++ {
		if !('a' <= d[i]|0x20 && d[i]|0x20 <= 'z') {
			return false
		}
	}
	return true
}

// cards masks what looks like a payment card number.
func (r *Redactor) cards(s string) string {
	if len(s) < 13 || shapeOf(s).digits < 13 {
		return s
	}
	e := editor{src: s}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) || (i > 0 && isAlnum(s[i-1])) {
			continue
		}
		var digits [19]byte
		n, j := 0, i
		for j < len(s) {
			c := s[j]
			if isDigit(c) {
				if n < len(digits) {
					digits[n] = c - '0'
				}
				n++
				j++
				continue
			}
			if (c == ' ' || c == '-' || c == '+') && j+1 < len(s) && isDigit(s[j+1]) {
				j++
				continue
			}
			break
		}
		if n >= 13 && n <= 19 && digits[0] >= 2 && digits[0] <= 6 && (j == len(s) || !isAlnum(s[j])) &&
			luhn(digits[:n]) && !r.allowed(s[i:j]) {
			e.replace(i, j, r.cfg.Mask)
		}
		i = j
	}
	return e.String()
}

// shape is what the rules for free text look for first in a value.
type shape struct {
	colon, atOrPercent bool // a ':' (URL credentials), a '@' or '%' (e-mail addresses)
	dashOrLT           bool // a '-' (a command line's options) or '<' (XML elements)
	digits             int  // ASCII digits (card numbers)
}

// shapeOf reads s once, eight bytes at a time: every string attribute of
// every span goes through it.
func shapeOf(s string) shape {
	const (
		ones  = 0x0101010101010101
		low7  = 0x7f7f7f7f7f7f7f7f
		highs = 0x8080808080808080
	)
	// zero has the high bit of each zero byte of v set, and may set it
	// for a 0x01 byte after a zero one: it tells whether v has a zero
	// byte, which is all it is used for.
	zero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	var sh shape
	var colon, at, dash uint64
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		colon |= zero(x ^ (ones * ':'))
		at |= zero(x^(ones*'@')) | zero(x^(ones*'%'))
		dash |= zero(x^(ones*'-')) | zero(x^(ones*'<'))
		// A byte b below 0x80 is a digit when '0'-1 < b < '9'+1: the two
		// sums carry into a byte's high bit exactly then, and never into
		// the next byte (Bit Twiddling Hacks, "determine if a word has a
		// byte between m and n").
		y := x & low7
		sh.digits += bits.OnesCount64((ones*(127+('9'+1)) - y) & ^x & (y + ones*(127-('0'-1))) & highs)
	}
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c == ':':
			colon = 1
		case c == '@' || c == '%':
			at = 1
		case c == '-' || c == '<':
			dash = 1
		case c-'0' < 10:
			sh.digits++
		}
	}
	sh.colon, sh.atOrPercent, sh.dashOrLT = colon != 0, at != 0, dash != 0
	return sh
}

// luhn reports whether digits pass the Luhn check.
func luhn(digits []byte) bool {
	sum := 0
	for i := range digits {
		d := int(digits[len(digits)-1-i])
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// pattern masks what re matches in s.
func (r *Redactor) pattern(re *regexp.Regexp, s string) string {
	locs := re.FindAllStringIndex(s, -1)
	if locs == nil {
		return s
	}
	e := editor{src: s}
	for _, l := range locs {
		if l[0] < l[1] && !r.allowed(s[l[0]:l[1]]) {
			e.replace(l[0], l[1], r.cfg.Mask)
		}
	}
	return e.String()
}

// editor builds a copy of src with ranges replaced, in order; it
// allocates only at the first replacement.
type editor struct {
	src  string
	buf  []byte
	last int
}

// replace replaces src[i:j]. Ranges come in increasing order; a range
// that overlaps the last one is cut to what follows it.
func (e *editor) replace(i, j int, with string) {
	i = max(i, e.last)
	if j <= i {
		return
	}
	if e.buf == nil {
		e.buf = make([]byte, 0, len(e.src)+len(with))
	}
	e.buf = append(e.buf, e.src[e.last:i]...)
	e.buf = append(e.buf, with...)
	e.last = j
}

// String returns the edited text, src itself when nothing was replaced.
func (e *editor) String() string {
	if e.buf == nil {
		return e.src
	}
	return string(append(e.buf, e.src[e.last:]...))
}

// unescape percent-decodes s leniently, "+" as a space.
func unescape(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlnum(c byte) bool { return isDigit(c) || 'a' <= c|0x20 && c|0x20 <= 'z' }

func isHex(c byte) bool { return isDigit(c) || 'a' <= c|0x20 && c|0x20 <= 'f' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c | 0x20 - 'a' + 10
}
