package detect

import (
	"fmt"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxLitSet bounds the literals a concatenation may multiply out to;
// past it, extension stops and the shorter literals are kept.
const maxLitSet = 128

// maxClassLits is the largest character class that is spelt out as
// literals; a wider class (\w, [^}], .) can start with anything.
const maxClassLits = 16

// lit is a literal of a pattern: when exact, the match is s; otherwise
// the match starts with s.
type lit struct {
	s     string
	exact bool
}

// deriveAnchors returns the anchors of pattern: the literal strings
// every match starts with, derived from the pattern's syntax tree. The
// prefilter finds all rules' anchors in one pass over a value, and a
// pattern is tried only where one of its anchors occurs. Derivation is
// conservative (a literal is extended only while every match must
// continue with it), so the prefilter never hides a match;
// TestPrefilterEquivalence checks it. It is an error when a match could
// start with anything (or be empty), or when a literal could never occur
// in a decoded value.
func deriveAnchors(pattern string) ([]string, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, err
	}
	re = re.Simplify()
	if err := checkLower(re); err != nil {
		return nil, err
	}
	lits := prefixLits(re)
	var out []string
	for _, l := range lits {
		if l.s == "" {
			return nil, fmt.Errorf("a match can start with anything or be empty: begin the pattern with the text every match starts with")
		}
		out = append(out, l.s)
	}
	// Keep the shortest: a match that starts with "||" starts with "|"
	// too, and one anchor per position is enough.
	slices.Sort(out)
	out = slices.Compact(out)
	kept := out[:0]
	for _, s := range out {
		if len(kept) > 0 && strings.HasPrefix(s, kept[len(kept)-1]) {
			continue
		}
		kept = append(kept, s)
	}
	return kept, nil
}

// checkLower refuses what a lower-cased value never holds: a literal
// with ASCII upper case, which would leave the pattern, wherever the
// literal is in it, never matching (or never where the literal is, in an
// alternation), and a class of ASCII upper case alone.
func checkLower(re *syntax.Regexp) error {
	isUpper := func(r rune) bool { return 'A' <= r && r <= 'Z' }
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase == 0 && slices.ContainsFunc(re.Rune, isUpper) {
			return fmt.Errorf("literal %q has upper-case letters, but values are lower-cased before matching", string(re.Rune))
		}
	case syntax.OpCharClass:
		upper := len(re.Rune) > 0
		for i := 0; i+1 < len(re.Rune); i += 2 {
			upper = upper && isUpper(re.Rune[i]) && isUpper(re.Rune[i+1])
		}
		if upper {
			return fmt.Errorf("class %s has upper-case letters only, but values are lower-cased before matching", re)
		}
	}
	for _, sub := range re.Sub {
		if err := checkLower(sub); err != nil {
			return err
		}
	}
	return nil
}

// looksBehind reports whether a match of re can begin with an assertion
// about the text before it: ^ (of the text or, with (?m), of a line),
// \b or \B. Such a pattern cannot be tried at an anchor on the value cut
// there, which would hide that text: \Bfoo never matched in "xfoo", and
// \bor\b matched in "color".
func looksBehind(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginLine, syntax.OpBeginText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	case syntax.OpCapture, syntax.OpStar, syntax.OpQuest, syntax.OpPlus, syntax.OpRepeat:
		return looksBehind(re.Sub[0])
	case syntax.OpAlternate:
		return slices.ContainsFunc(re.Sub, looksBehind)
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if looksBehind(sub) {
				return true
			}
			if !nullable(sub) {
				return false
			}
		}
	}
	return false
}

// nullable reports whether re can match the empty string.
func nullable(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary, syntax.OpStar, syntax.OpQuest:
		return true
	case syntax.OpLiteral:
		return len(re.Rune) == 0
	case syntax.OpCapture, syntax.OpPlus:
		return nullable(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min == 0 || nullable(re.Sub[0])
	case syntax.OpConcat:
		return !slices.ContainsFunc(re.Sub, func(sub *syntax.Regexp) bool { return !nullable(sub) })
	case syntax.OpAlternate:
		return slices.ContainsFunc(re.Sub, nullable)
	}
	return false
}

// anything is the literal set of a pattern that can start with any text.
var anything = []lit{{s: "", exact: false}}

// prefixLits returns literals such that every match of re is one of the
// exact ones or starts with one of the others.
func prefixLits(re *syntax.Regexp) []lit {
	switch re.Op {
	case syntax.OpNoMatch:
		return nil
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		// Zero-width: assertions only narrow the matches.
		return []lit{{exact: true}}
	case syntax.OpLiteral:
		out := []lit{{exact: true}}
		for _, r := range re.Rune {
			rs := []rune{r}
			if re.Flags&syntax.FoldCase != 0 {
				rs = foldOrbit(r)
			}
			out = cross(out, runeLits(rs))
		}
		return out
	case syntax.OpCharClass:
		var rs []rune
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if 'A' <= r && r <= 'Z' {
					continue // lower-cased away before matching
				}
				if len(rs) == maxClassLits {
					return anything
				}
				rs = append(rs, r)
			}
		}
		return runeLits(rs)
	case syntax.OpCapture:
		return prefixLits(re.Sub[0])
	case syntax.OpStar:
		return append([]lit{{exact: true}}, inexact(prefixLits(re.Sub[0]))...)
	case syntax.OpQuest:
		return append([]lit{{exact: true}}, prefixLits(re.Sub[0])...)
	case syntax.OpPlus:
		return inexact(prefixLits(re.Sub[0]))
	case syntax.OpRepeat:
		sub := prefixLits(re.Sub[0])
		switch {
		case re.Min == 1 && re.Max == 1:
			return sub
		case re.Min >= 1:
			return inexact(sub)
		}
		return append([]lit{{exact: true}}, inexact(sub)...)
	case syntax.OpConcat:
		out := []lit{{exact: true}}
		for _, sub := range re.Sub {
			if !slices.ContainsFunc(out, func(l lit) bool { return l.exact }) {
				break
			}
			out = cross(out, prefixLits(sub))
		}
		return out
	case syntax.OpAlternate:
		var out []lit
		for _, sub := range re.Sub {
			out = append(out, prefixLits(sub)...)
		}
		return out
	}
	return anything // OpAnyChar, OpAnyCharNotNL
}

// cross extends the exact literals of a with each of b. Past maxLitSet
// literals it extends them with shorter prefixes of b (fewer distinct
// ones), and failing that returns a, inexact.
func cross(a, b []lit) []lit {
	longest := 0
	for _, y := range b {
		longest = max(longest, len(y.s))
	}
	for n := longest; n >= 0; n-- {
		if out, ok := crossPrefixes(a, b, n); ok {
			return out
		}
	}
	return inexact(a)
}

// crossPrefixes extends the exact literals of a with the prefixes of at
// most n bytes of each of b; ok is false past maxLitSet literals.
func crossPrefixes(a, b []lit, n int) ([]lit, bool) {
	var ys []lit
	seen := map[lit]bool{}
	for _, y := range b {
		if len(y.s) > n {
			y = lit{s: y.s[:n]}
		}
		if !seen[y] {
			seen[y] = true
			ys = append(ys, y)
		}
	}
	var out []lit
	for _, x := range a {
		if !x.exact {
			out = append(out, x)
			continue
		}
		for _, y := range ys {
			out = append(out, lit{s: x.s + y.s, exact: y.exact})
		}
		if len(out) > maxLitSet {
			return nil, false
		}
	}
	return out, true
}

func inexact(ls []lit) []lit {
	out := make([]lit, len(ls))
	for i, l := range ls {
		out[i] = lit{s: l.s}
	}
	return out
}

func runeLits(rs []rune) []lit {
	out := make([]lit, len(rs))
	for i, r := range rs {
		out[i] = lit{s: string(r), exact: true}
	}
	return out
}

// foldOrbit is r and every rune that case-folds to it, less ASCII upper
// case, which decoding lower-cases away.
func foldOrbit(r rune) []rune {
	var out []rune
	f := r
	for {
		if !('A' <= f && f <= 'Z') && utf8.ValidRune(f) {
			out = append(out, f)
		}
		f = unicode.SimpleFold(f)
		if f == r {
			return out
		}
	}
}
