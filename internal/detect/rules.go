package detect

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
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

// fields are the Fields in the order of their indexes (fieldURLPath ...),
// which the scan of a span names them by.
var fields = []Field{FieldURLPath, FieldURLQuery, FieldURLFull, FieldUserAgent, FieldRequestHeader, FieldDBQueryText, FieldServerAddress}

// Indexes of the Fields in fields.
const (
	fieldURLPath = iota
	fieldURLQuery
	fieldURLFull
	fieldUserAgent
	fieldRequestHeader
	fieldDBQueryText
	fieldServerAddress
)

// Rule is one exploit-payload rule, as data: docs/detections.md describes
// the built-in set and how to add rules.
type Rule struct {
	// ID names the rule in alerts ("jndi-lookup").
	ID string `yaml:"id" json:"id"`
	// Class is the attack class (jndi-injection, path-traversal, ...).
	Class string `yaml:"class" json:"class"`
	// Fields are the span attributes the rule looks at.
	Fields []Field `yaml:"fields" json:"fields"`
	// Pattern is an RE2 expression matched against the decoded value
	// (URL-decoded until stable, at most three rounds; overlong UTF-8
	// "/", "\" and "." folded; Log4j lookups such as ${lower:j}
	// flattened; ASCII lower-cased). Every match must start with literal
	// text (its anchors, derived by CompileRules): one pass over a value
	// finds the anchors of all rules, and a pattern is tried only where
	// one of its anchors occurs, anchored there. That keeps a clean
	// value at a table walk per byte, and an unanchored Go regular
	// expression would be scanned at every offset of every value.
	Pattern  string   `yaml:"pattern" json:"pattern"`
	Severity Severity `yaml:"severity" json:"severity"`
}

// ErrInvalidRule is wrapped by the errors of CompileRules.
var ErrInvalidRule = errors.New("invalid exploit rule")

// Rules is a compiled rule set. It is immutable and safe for concurrent
// use.
type Rules struct {
	rules []*compiled
	// byField holds the prefilter of each field, by its index in fields;
	// nil when no rule looks at the field.
	byField [7]*prefilter
	// texts are buffers values are lower-cased or decoded into when a
	// pattern is to be tried: the regexp package keeps what it reads.
	texts sync.Pool
}

type compiled struct {
	Rule
	// re is the pattern anchored at its start, tried where an anchor
	// occurs; search the pattern itself, for a value whose anchors occur
	// too often to try each (maxTries).
	re, search *regexp.Regexp
	anchors    []string
	fields     uint8
	// behind is set when a match can begin with an assertion about the
	// text before it (looksBehind): the pattern is searched for once,
	// from the byte before its first anchor, never tried at an anchor.
	behind bool
}

// prefilter finds, in one pass, the anchors of every rule of a field;
// rules lists, per anchor, the indexes of the rules it starts a match of.
type prefilter struct {
	ac    *automaton
	rules [][]int32
}

// bit is the field's bit in compiled.fields.
func (f Field) bit() uint8 { return 1 << slices.Index(fields, f) }

// CompileRules checks and compiles rs. Every rule is checked; the error
// names each bad rule by index and id.
func CompileRules(rs []Rule) (*Rules, error) {
	out := &Rules{texts: sync.Pool{New: func() any { return new([]byte) }}}
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
		// The pattern compiled as it is: it compiled anchored.
		search := regexp.MustCompile(r.Pattern)
		as, err := deriveAnchors(r.Pattern)
		if err != nil {
			bad("pattern: %v", err)
			continue
		}
		tree, _ := syntax.Parse(r.Pattern, syntax.Perl) // deriveAnchors parsed it
		c := &compiled{Rule: r, re: re, search: search, anchors: as, behind: looksBehind(tree.Simplify())}
		ok := true
		for _, f := range r.Fields {
			if !slices.Contains(fields, f) {
				bad("unknown field %q", f)
				ok = false
				continue
			}
			c.fields |= f.bit()
		}
		if !ok {
			continue
		}
		out.rules = append(out.rules, c)
	}
	for i, f := range fields {
		ids := map[string]int32{}
		var anchors []string
		var rules [][]int32
		for ri, c := range out.rules {
			if c.fields&f.bit() == 0 {
				continue
			}
			for _, a := range c.anchors {
				id, ok := ids[a]
				if !ok {
					id = int32(len(anchors))
					ids[a] = id
					anchors = append(anchors, a)
					rules = append(rules, nil)
				}
				rules[id] = append(rules[id], int32(ri))
			}
		}
		if len(anchors) > 0 {
			out.byField[i] = &prefilter{ac: newAutomaton(anchors), rules: rules}
		}
	}
	return out, errors.Join(errs...)
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
// each rule that matches, once per rule. A value in which no anchor
// occurs costs one pass of the automaton and allocates nothing.
func (r *Rules) Scan(sp *telemetry.Span, hit func(Hit)) {
	s := scan{r: r}
	s.span(sp, hit)
	if s.text != nil {
		r.texts.Put(s.text)
	}
}

// scan is the state of one Scan: the rules that fired.
type scan struct {
	r *Rules
	// memo, when set, holds what the rules found in values scanned
	// before, by field index and value.
	memo *generations[memoEntry]
	// text is the buffer patterns read a value from when it is not the
	// value itself; Rules.Scan takes one from its pool when it needs it.
	text *[]byte
	// found holds the matches of the value at hand, nil for a new one.
	found *[]found
	// clean, when set, holds by field index a copy of the last value
	// the automaton found nothing in, which a value equal to it skips.
	clean [][]byte
	// fired are the rules that fired, by index; more holds those past
	// the first 128. (No slice of fired: a scan pointing into itself
	// would be moved to the heap.)
	fired [2]uint64
	more  map[int32]bool
}

// found is a rule matching a value: rule (its index) matched
// d[at:at+len] of the decoded value d.
type found struct {
	rule, at, len int32
}

// fire marks rule i as fired and reports whether it had not yet.
func (s *scan) fire(i int32) bool {
	if i >= 128 {
		if s.more[i] {
			return false
		}
		if s.more == nil {
			s.more = map[int32]bool{}
		}
		s.more[i] = true
		return true
	}
	bit := uint64(1) << (i % 64)
	if s.fired[i/64]&bit != 0 {
		return false
	}
	s.fired[i/64] |= bit
	return true
}

// span scans the attributes of sp. (hit is a parameter, not a field of
// scan: escape analysis would move it to the heap with what the memo
// keeps.)
func (s *scan) span(sp *telemetry.Span, hit func(Hit)) {
	a := &sp.Attrs
	s.value(fieldURLPath, "", a.URLPath, hit)
	s.value(fieldURLQuery, "", a.URLQuery, hit)
	s.value(fieldURLFull, "", a.URLFull, hit)
	s.value(fieldUserAgent, "", a.UserAgent, hit)
	s.value(fieldDBQueryText, "", a.DBQueryText, hit)
	if sp.Kind == telemetry.SpanKindClient {
		s.value(fieldServerAddress, "", a.ServerAddress, hit)
	}
	for name, v := range a.RequestHeaders {
		s.value(fieldRequestHeader, name, v, hit)
	}
}

// maxTries is how many times a rule's anchors may occur in a value for
// its pattern to be tried at each occurrence; beyond, it is searched for
// once (scan.match).
const maxTries = 8

// stackBytes is the size of the buffer values are decoded in without
// allocating; a longer value is decoded in a new one.
const stackBytes = 512

// value matches the rules of field fields[fi] against a value, or takes
// what they matched from the memo, and reports the rules that did not
// fire on the span yet; header is the header's name for
// FieldRequestHeader.
func (s *scan) value(fi int, header, v string, hit func(Hit)) {
	pf := s.r.byField[fi]
	if v == "" || pf == nil {
		return
	}
	if s.clean != nil && string(s.clean[fi]) == v {
		return
	}
	query := plusOf[fi]
	need := needsDecode(v, query)
	var occBuf [32]occurrence
	var occ []occurrence
	if need != decodeFull {
		// The automaton folds case itself: a value that needs no
		// decoding and holds no anchor is done, memo or not.
		if occ = find(pf.ac, v, occBuf[:0]); len(occ) == 0 {
			if s.clean != nil && len(v) <= memoKeyBytes {
				// A copy: the value may be part of a request's
				// buffer, which a later request overwrites.
				s.clean[fi] = append(s.clean[fi][:0], v...)
			}
			return
		}
	}
	// The memo's key is the field's index and the value: the same text
	// decodes differently in url.query and url.full ("+" is a space in
	// a query), and the rules differ by field.
	var keyBuf [memoKeyBytes]byte
	var key []byte
	var e memoEntry
	ok := false
	if s.memo != nil && 1+len(v) <= len(keyBuf) {
		key = append(append(keyBuf[:0], byte(fi)), v...)
		e, ok = s.memo.get(key)
	}
	if !ok {
		var buf [stackBytes]byte
		var dst []found
		if s.found != nil {
			dst = (*s.found)[:0]
		}
		e.decoded, e.found = s.match(pf, v, query, need, buf[:0], occ, dst)
		if s.found != nil {
			*s.found = e.found
		}
		if key != nil {
			// The memo keeps copies: the value may be part of a
			// request's buffer, and found is reused.
			m := memoEntry{decoded: e.decoded, same: e.decoded == v}
			if m.same {
				m.decoded = ""
			}
			if len(e.found) > 0 {
				m.found = append([]found(nil), e.found...)
			}
			s.memo.put(key, m)
		}
	}
	d := e.decoded
	if e.same {
		d = v
	}
	for _, m := range e.found {
		if !s.fire(m.rule) {
			continue
		}
		name := string(fields[fi])
		if fi == fieldRequestHeader {
			name += "." + header
		}
		hit(Hit{Rule: &s.r.rules[m.rule].Rule, Field: name, Match: d[m.at : m.at+m.len], Value: d, Raw: v, Offset: int(m.at)})
	}
}

// match appends to dst the leftmost match in v of each rule of pf and
// returns it, with the decoded value the matches are in ("" when there
// are none); occ are the anchors found in v when it needs no decoding.
func (s *scan) match(pf *prefilter, v string, query plus, need int, buf []byte, occ []occurrence, dst []found) (string, []found) {
	str, lower, decoded := normalizeAs(buf, v, query, need)
	if need == decodeFull {
		var occBuf [32]occurrence
		if decoded != nil {
			occ = find(pf.ac, decoded, occBuf[:0])
		} else {
			occ = find(pf.ac, str, occBuf[:0])
		}
	}
	if len(occ) == 0 {
		return "", dst
	}
	// The patterns read the value lower-cased or decoded in a reused
	// buffer (as bytes: a string would be a new copy per value), or the
	// value itself.
	var text []byte
	if decoded != nil || lower {
		if s.text == nil {
			s.text = s.r.texts.Get().(*[]byte)
		}
		if decoded != nil {
			text = append((*s.text)[:0], decoded...)
		} else {
			text = append((*s.text)[:0], str...)
			for i, c := range text {
				if 'A' <= c && c <= 'Z' {
					text[i] = c + 'a' - 'A'
				}
			}
		}
		*s.text = text
	}
	// The automaton reports occurrences by their end; trying them by
	// start makes a rule report its leftmost match, as an unanchored
	// search would.
	slices.SortStableFunc(occ, func(a, b occurrence) int { return cmp.Compare(a.start, b.start) })
	// A rule is tried at each occurrence of its anchors, in order, until
	// it matches; a try reads from its anchor as far as the pattern goes.
	// A rule whose anchors occur more than maxTries times is searched for
	// once instead, unanchored, from its first anchor on: every match
	// starts at an anchor, so the search finds the same leftmost match,
	// in one pass however many anchors there are. Trying each of them
	// would read a value of newlines to its end from every one (a
	// pattern's \s* after its \n), and stopping after some would leave
	// the anchors after them, and a payload there, untried.
	var leftBuf [64]int32
	left := leftBuf[:]
	if len(s.r.rules) > len(leftBuf) {
		left = make([]int32, len(s.r.rules))
	}
	for _, o := range occ {
		for _, ri := range pf.rules[o.pat] {
			left[ri]++
		}
	}
	n := len(dst)
	for _, o := range occ {
		for _, ri := range pf.rules[o.pat] {
			if left[ri] == 0 { // matched, or searched for
				continue
			}
			c := s.r.rules[ri]
			re, from := c.re, o.start
			switch {
			case c.behind:
				// From the byte before, which \b, \B and (?m)^ look
				// at, and ^ is told is not the start: no match starts
				// there, before the rule's first anchor.
				re, left[ri] = c.search, 0
				from = max(from-1, 0)
			case left[ri] > maxTries:
				re, left[ri] = c.search, 0
			default:
				left[ri]--
			}
			// Match and MatchString allocate nothing; where the match
			// is is only needed when there is one.
			var loc []int
			if text != nil {
				if re.Match(text[from:]) {
					loc = re.FindIndex(text[from:])
				}
			} else if re.MatchString(str[from:]) {
				loc = re.FindStringIndex(str[from:])
			}
			if loc != nil {
				left[ri] = 0
				dst = append(dst, found{rule: ri, at: from + int32(loc[0]), len: int32(loc[1] - loc[0])})
			}
		}
	}
	if len(dst) == n {
		return "", dst
	}
	if text != nil {
		return string(text), dst
	}
	return str, dst
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

// Pending is an alert known by what decides its delivery, its kind,
// service, dedupe key and receipt, before the rest is built: a router
// that drops it as a duplicate or over its rate never calls Alert, so
// that the spans of a scanner, which repeat the same payload against
// the same endpoint, cost little more than clean ones. A Pending is
// valid only during the call it is passed to.
type Pending struct {
	Kind      Kind
	Service   string
	DedupeKey string
	// Observed is the start of the span (Alert.Observed).
	Observed   time.Time
	ReceivedAt time.Time

	// The exploit-payload hit the alert is about: the span, which holds
	// the values as received, its endpoint redacted, the redaction of
	// the evidence and when the detection fired.
	sp       *telemetry.Span
	hit      Hit
	endpoint string
	red      Redactor
	now      time.Time
}

// Alert builds the alert. With red set (NewScanner), the evidence
// holds no more than red lets through: Value is the redacted value,
// decoded; Match is kept when it is still found there and is red's mask
// otherwise; Offset and Length locate it in the decoded value as
// received. nil red keeps the evidence verbatim.
func (p *Pending) Alert() Alert {
	sp, h := p.sp, p.hit
	match, value := h.Match, h.Value
	if p.red != nil {
		value = decode(p.red.Value(h.Field, h.Raw), plusIn(h.Field))
		if !strings.Contains(value, match) {
			match = p.red.Mask()
		}
	}
	return Alert{
		Kind:     p.Kind,
		Severity: h.Rule.Severity,
		Service:  p.Service,
		Summary:  Text(fmt.Sprintf("%s payload (%s) in %s of %s %s", h.Rule.Class, h.Rule.ID, h.Field, sp.Service, p.endpoint)),
		Evidence: Evidence{
			Rule: h.Rule.ID, Class: h.Rule.Class, Field: h.Field,
			Match: truncate(match, 200), Value: truncate(value, 512),
			Offset: h.Offset, Length: len(h.Match),
			TraceID: fmtID(sp.TraceID[:]), SpanID: fmtID(sp.SpanID[:]),
			Endpoint: p.endpoint,
		},
		DedupeKey:  p.DedupeKey,
		Time:       p.now,
		Observed:   p.Observed,
		ReceivedAt: p.ReceivedAt,
	}
}

// Scanner runs a rule set over spans as Rules.Scan does, and remembers
// what the rules found in the values it scanned last: telemetry repeats
// attribute values (user agents, polling query strings, templated
// statements, a scanner's payloads), and a value seen before skips
// decoding, the automaton and the patterns. Values that need no
// decoding and hold no anchor are not remembered in the memo, whose
// lookup costs about what the automaton's pass that tells so does; only
// the last such value of each field is kept, and the same value again
// (a span's user agent or statement like the one before) is skipped. It also remembers the dedupe keys of
// its alerts by service, endpoint and rule, so that an alert a router
// drops costs no redaction nor key. The memos are bounded: 4096 values
// of up to 511 bytes, 1024 keys, the older half forgotten at the bound
// (docs/architecture.md, Memory). A Scanner is not safe for concurrent
// use: each engine's worker owns one, over Rules it may share.
type Scanner struct {
	rules *Rules
	red   Redactor
	// values holds what the rules found, by field index and value; keys
	// the exploit keys, by service, endpoint and rule.
	values  generations[memoEntry]
	keys    generations[exploitKey]
	text    []byte
	found   []found
	clean   [][]byte // scan.clean
	pending Pending
	// last is the key of the last hit and what it was made of: a hit
	// mostly has the service, endpoint and rule of the one before (a
	// scanner's requests, one endpoint's spans in a batch).
	last lastKey
}

// lastKey is an exploit key with the service, endpoint parts
// (endpointParts) and rule it is of.
type lastKey struct {
	service, a, sep, b string
	rule               *Rule
	key                exploitKey
}

// NewScanner returns a scanner of r whose alerts' evidence red redacts
// (Pending.Alert); nil red keeps it verbatim.
func (r *Rules) NewScanner(red Redactor) *Scanner {
	return &Scanner{rules: r, red: red, values: newGenerations[memoEntry](valueEntries), keys: newGenerations[exploitKey](keyEntries),
		clean: make([][]byte, len(fields))}
}

// Scan is Rules.Scan, with the memo.
func (s *Scanner) Scan(sp *telemetry.Span, hit func(Hit)) {
	sc := scan{r: s.rules, memo: &s.values, text: &s.text, found: &s.found, clean: s.clean}
	sc.span(sp, hit)
}

// Exploits runs the rules over a span, which holds the values as
// received, and calls fire with the exploit-payload alert of each hit.
func (s *Scanner) Exploits(sp *telemetry.Span, receivedAt, now time.Time, fire func(*Pending)) {
	s.Scan(sp, func(h Hit) {
		k := s.key(sp, h.Rule)
		p := &s.pending
		*p = Pending{
			Kind: KindExploitPayload, Service: sp.Service, DedupeKey: k.dedupe, Observed: sp.Start, ReceivedAt: receivedAt,
			sp: sp, hit: h, endpoint: k.endpoint, red: s.red, now: now,
		}
		fire(p)
		*p = Pending{} // keeps nothing of the span
	})
}

// key returns the dedupe key of the alerts of rule on the endpoint of
// sp, and the endpoint, redacted.
func (s *Scanner) key(sp *telemetry.Span, rule *Rule) exploitKey {
	a, sep, b := endpointParts(sp)
	if l := &s.last; l.rule == rule && l.service == sp.Service && l.a == a && l.sep == sep && l.b == b {
		return l.key
	}
	k := s.newKey(sp, rule, a, sep, b)
	s.last = lastKey{service: sp.Service, a: a, sep: sep, b: b, rule: rule, key: k}
	return k
}

// newKey is key of a hit unlike the last one: from the memo, else made.
func (s *Scanner) newKey(sp *telemetry.Span, rule *Rule, a, sep, b string) exploitKey {
	var buf [memoKeyBytes]byte
	raw := buf[:0]
	if len(rule.ID)+len(sp.Service)+len(a)+len(sep)+len(b)+2*binary.MaxVarintLen64 <= len(buf) {
		raw = binary.AppendUvarint(raw, uint64(len(rule.ID)))
		raw = endpointKey(append(raw, rule.ID...), sp.Service, a, sep, b)
		if k, ok := s.keys.get(raw); ok {
			return k
		}
	}
	ep := a + sep + b
	if s.red != nil {
		ep = s.red.Value("span.name", ep)
	}
	k := exploitKey{dedupe: dedupeKey(KindExploitPayload, sp.Service, ep, rule.ID), endpoint: ep}
	if len(raw) > 0 {
		s.keys.put(raw, k)
	}
	return k
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

// endpointKey appends to b the key of the endpoint a+sep+c (endpointParts)
// of service: the service's length, the service and the endpoint, which
// no other service and endpoint share.
func endpointKey(b []byte, service, a, sep, c string) []byte {
	b = binary.AppendUvarint(b, uint64(len(service)))
	return append(append(append(append(b, service...), a...), sep...), c...)
}

// endpointParts returns the endpoint of sp in three parts, so that it can
// be looked up without being made: the endpoint a span belongs to is named
// the way the runtime model names it, "GET /products/{id}", "rpc
// Service/Method", else the span name.
func endpointParts(sp *telemetry.Span) (a, sep, b string) {
	at := &sp.Attrs
	switch {
	case at.HTTPRoute != "" || at.HTTPMethod != "":
		route := at.HTTPRoute
		if route == "" {
			route = sp.Name
		}
		if at.HTTPMethod == "" {
			return "", "", route
		}
		return at.HTTPMethod, " ", route
	case at.RPCMethod != "":
		return at.RPCService, " ", at.RPCMethod
	}
	return "", "", sp.Name
}

// maxDecodeRounds bounds URL-decoding: attackers double- and
// triple-encode to slip past single-pass filters, and a bound keeps the
// cost linear whatever they send.
const maxDecodeRounds = 3

// normalize normalizes v for matching (see Rule.Pattern), copying only
// when decoding needs it: it returns v itself as s (lower when it
// matches once ASCII lower-cased), or the decoded value as b, decoded
// in buf. (Three results, not a struct: escape analysis would let the
// value's escape move buf to the heap.)
func normalize(buf []byte, v string, query plus) (s string, lower bool, b []byte) {
	return normalizeAs(buf, v, query, needsDecode(v, query))
}

// normalizeAs is normalize of a value that needs what needsDecode says.
func normalizeAs(buf []byte, v string, query plus, need int) (s string, lower bool, b []byte) {
	switch need {
	case decodeNone:
		return v, false, nil
	case decodeCase:
		// Most user agents and headers only need lower-casing, which
		// the automaton does as it reads, and strings.ToLower in one
		// pass when a pattern is to be tried.
		return v, true, nil
	}
	b = append(buf, v...)
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
	if bytes.Contains(b, []byte("${")) {
		return flattenLookups(string(b)), false, nil
	}
	return "", false, b
}

// decode is v as the rules see it, as a string; query says where "+"
// is a space.
func decode(v string, query plus) string {
	s, lower, b := normalize(nil, v, query)
	switch {
	case b != nil:
		return string(b)
	case lower:
		return strings.ToLower(s)
	}
	return s
}

// plus says where "+" is a space in a value, as a server decoding a
// form-encoded query reads it.
type plus uint8

const (
	plusNone  plus = iota // nowhere: a path, a header, a statement
	plusQuery             // everywhere: url.query
	plusURL               // after the first "?": url.full
)

// plusOf is where "+" is a space in the field of each index.
var plusOf = [7]plus{fieldURLQuery: plusQuery, fieldURLFull: plusURL}

// plusIn is plusOf of a field by name (a Hit's Field).
func plusIn(field string) plus {
	switch Field(field) {
	case FieldURLQuery:
		return plusQuery
	case FieldURLFull:
		return plusURL
	}
	return plusNone
}

// Decoding a value needs.
const (
	decodeNone = iota // nothing: match the value as it is
	decodeCase        // only ASCII lower-casing
	decodeFull        // escapes, overlong forms or lookups
)

// What a byte tells needsDecode, by byte (byteNeeds).
const (
	byteNothing = iota
	byteUpper   // A-Z: lower-casing
	byteEscape  // '%' and bytes from 0x80: decoding
	bytePlus    // '+': a space in a query
	byteDollar  // '$': a lookup when "{" follows
)

// byteNeeds classifies bytes for needsDecode, so that the usual byte
// costs one look-up.
var byteNeeds = func() (t [256]uint8) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = byteUpper
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = byteEscape
	}
	t['%'], t['+'], t['$'] = byteEscape, bytePlus, byteDollar
	return t
}()

func needsDecode(v string, query plus) int {
	need := decodeNone
	for i := 0; i < len(v); i++ {
		switch byteNeeds[v[i]] {
		case byteNothing:
		case byteUpper:
			need = decodeCase
		case byteEscape:
			return decodeFull
		case bytePlus:
			if query == plusQuery || query == plusURL && strings.IndexByte(v[:i], '?') >= 0 {
				return decodeFull
			}
		case byteDollar:
			if i+1 < len(v) && v[i+1] == '{' {
				return decodeFull
			}
		}
	}
	return need
}

// percentDecode decodes %XX and IIS-style %uXXXX escapes in place,
// leniently: a malformed escape stays as it is. In a query, "+" is a
// space: in all of url.query, and in url.full after its first "?".
func percentDecode(b []byte, query plus) ([]byte, bool) {
	out := b[:0]
	changed := false
	inQuery := query == plusQuery
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '?' && query == plusURL:
			inQuery = true
			out = append(out, c)
		case c == '+' && inQuery:
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
// obfuscations of "${jndi:": ${lower:j}, ${upper:j}, ${date:'j'}, and a
// default after ":-", whatever the lookup's name (${k8s:x:-j},
// ${env:NOPE:-j}, ${::-j}) or with none (${nope:-j}): a lookup that
// finds nothing, or a name Log4j does not know, gives its default.
var lookupRE = regexp.MustCompile(`\$\{(?:lower:|upper:|(?:[^:{}$]*:)?[^:{}$]*:-|date:')([^${}']*)'?\}`)

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
