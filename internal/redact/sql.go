package redact

import "strings"

// sanitizeSQL replaces the literals of a SQL statement with "?": quoted
// strings ('...', and "..." which MySQL reads as a string), numbers that
// are not part of a name, and PostgreSQL dollar-quoted strings.
// Backquoted names are kept. Comments are not: they can carry values too
// (sqlcommenter tags), so a quote in a comment starts a literal. An
// unterminated literal is replaced up to the end: it is most likely an
// injection, and what follows it cannot be told apart from data. It
// returns s itself when there is no literal.
func sanitizeSQL(s string) string {
	e := editor{src: s}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			j := endQuoted(s, i+1, c)
			e.replace(i, j, "?")
			i = j
		case c == '`':
			i = skipTo(s, i+1, "`")
		case c == '$':
			j, ok := dollarQuoted(s, i)
			if ok {
				e.replace(i, j, "?")
			}
			i = j
		case isDigit(c):
			j := i
			for j < len(s) && (isIdentChar(s[j]) || s[j] == '.') {
				j++
			}
			e.replace(i, j, "?")
			i = j
		case isIdentChar(c):
			// Digits inside a name (table2, $1) are part of it.
			for i < len(s) && isIdentChar(s[i]) {
				i++
			}
		default:
			i++
		}
	}
	return e.String()
}

// endQuoted returns the end of a literal quoted with q that starts at i
// (after the opening quote): after the closing quote, len(s) if there is
// none. A doubled quote and a backslash escape the next character.
func endQuoted(s string, i int, q byte) int {
	for i < len(s) {
		switch s[i] {
		case '\\':
			i += 2
		case q:
			if i+1 < len(s) && s[i+1] == q {
				i += 2
				continue
			}
			return i + 1
		default:
			i++
		}
	}
	return len(s)
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
