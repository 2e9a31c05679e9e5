package redact

import (
	"slices"
	"strings"
)

// sanitizeSQL replaces the literals of a SQL statement with "?": quoted
// strings ('...', and "..." which MySQL reads as a string), numbers that
// are not part of a name, PostgreSQL dollar-quoted strings, and Oracle's
// passwords, which are names (IDENTIFIED BY tiger).
// Backquoted names are kept. Comments are not: they can carry values too
// (sqlcommenter tags), so a quote in a comment starts a literal. An
// unterminated literal is replaced up to the end: it is most likely an
// injection, and what follows it cannot be told apart from data. It
// returns s itself when there is no literal.
//
// Whether a backslash escapes a quote depends on the database (MySQL:
// yes; PostgreSQL with standard_conforming_strings, SQLite, SQL Server:
// no), so a statement with a backslash in it is read both ways: where
// one reading ends every literal and the other leaves one unterminated,
// the first is the database's; otherwise what either reading takes for
// a literal is replaced, so that the value of 'C:\', 'hunter2' is not
// read as a name between two literals.
func sanitizeSQL(s string) string {
	lits, open := sqlLiterals(s, true)
	if strings.IndexByte(s, '\\') >= 0 {
		std, stdOpen := sqlLiterals(s, false)
		switch {
		case slices.Equal(lits, std), open && !stdOpen:
			lits = std
		case !open && stdOpen:
		default:
			lits = unionRanges(lits, std)
		}
	}
	e := editor{src: s}
	for _, l := range lits {
		e.replace(l[0], l[1], "?")
	}
	return e.String()
}

// sqlLiterals returns where the literals of s are, in order, and whether
// the last is unterminated; backslash says whether a backslash escapes
// the next character in a quoted string.
func sqlLiterals(s string, backslash bool) (lits [][2]int, open bool) {
	// Oracle's passwords are names, not literals (IDENTIFIED BY tiger,
	// and ALTER USER's REPLACE with the old one after the new): expect
	// is whether the next word is one, pw whether the last token was.
	var prev string
	pw, expect := false, false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			j, ok := endQuoted(s, i+1, c, backslash)
			lits = append(lits, [2]int{i, j})
			open = !ok
			pw, expect = expect, false
			i = j
		case c == '`':
			i = skipTo(s, i+1, "`")
		case c == '$':
			j, ok := dollarQuoted(s, i)
			if ok {
				lits = append(lits, [2]int{i, j})
			}
			i = j
		case isDigit(c):
			j := i
			for j < len(s) && (isIdentChar(s[j]) || s[j] == '.') {
				j++
			}
			lits = append(lits, [2]int{i, j})
			i = j
		case isIdentChar(c):
			// Digits inside a name (table2, $1) are part of it.
			j := i
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			word := s[i:j]
			if expect {
				lits = append(lits, [2]int{i, j})
				prev, pw, expect = "", true, false
			} else {
				// Lengths first: this runs for every word of every statement.
				expect = len(word) == 2 && len(prev) == 10 && strings.EqualFold(word, "by") && strings.EqualFold(prev, "identified") ||
					pw && len(word) == 7 && strings.EqualFold(word, "replace")
				prev, pw = word, false
			}
			i = j
		default:
			if c > ' ' { // not a space or a control character
				// A "?" is a password masked before (Value's next pass).
				pw, expect = expect && c == '?', false
			}
			i++
		}
	}
	return lits, open
}

// unionRanges merges two ordered lists of ranges into one of the ranges
// either covers, overlapping ones joined.
func unionRanges(a, b [][2]int) [][2]int {
	all := slices.Concat(a, b)
	slices.SortFunc(all, func(x, y [2]int) int { return x[0] - y[0] })
	var out [][2]int
	for _, r := range all {
		if n := len(out); n > 0 && r[0] <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], r[1])
			continue
		}
		out = append(out, r)
	}
	return out
}

// endQuoted returns the end of a literal quoted with q that starts at i
// (after the opening quote): after the closing quote and true, len(s)
// and false if there is none. A doubled quote escapes the next
// character, and so does a backslash if backslash is set.
func endQuoted(s string, i int, q byte, backslash bool) (int, bool) {
	for i < len(s) {
		switch s[i] {
		case q:
			if i+1 < len(s) && s[i+1] == q {
				i += 2
				continue
			}
			return i + 1, true
		case '\\':
			if backslash {
				i += 2
				continue
			}
			i++
		default:
			i++
		}
	}
	return len(s), false
}

// skipTo returns the index after the first end at or after i, len(s) if
// there is none.
func skipTo(s string, i int, end string) int {
	if i >= len(s) {
		return len(s)
	}
	k := strings.Index(s[i:], end)
	if k < 0 {
		return len(s)
	}
	return i + k + len(end)
}

// dollarQuoted reads a PostgreSQL $tag$...$tag$ string at s[i] == '$'. It
// returns the end and true for one, or the end of what is not one ($1
// parameters) and false.
func dollarQuoted(s string, i int) (int, bool) {
	j := i + 1
	for j < len(s) && isIdentChar(s[j]) && s[j] != '$' {
		j++
	}
	if j >= len(s) || s[j] != '$' || (j > i+1 && isDigit(s[i+1])) {
		return j, false
	}
	tag := s[i : j+1]
	k := strings.Index(s[j+1:], tag)
	if k < 0 {
		return len(s), true
	}
	return j + 1 + k + len(tag), true
}

func isIdentChar(c byte) bool { return isAlnum(c) || c == '_' || c == '$' || c >= 0x80 }
