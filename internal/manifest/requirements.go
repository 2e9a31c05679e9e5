package manifest

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// requirementLine is a requirement specifier: a name, optional extras,
// then the version specifiers (PEP 508, without URLs and markers, which
// are cut off first).
var requirementLine = regexp.MustCompile(`^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?\s*(.*)$`)

// pinned finds an exact pin (== or ===) among version specifiers.
var pinned = regexp.MustCompile(`===?\s*([^\s,;]+)`)

// ParseRequirements reads a pip requirements file: one requirement per
// line (a backslash continues it on the next, except on a comment line,
// as pip reads it), its name normalized by
// PEP 503, its version when pinned with == or ===. Comments, options
// (-r, -e, --hash...) and direct references (URLs, paths) are skipped.
func ParseRequirements(data []byte) ([]Requirement, error) {
	var out []Requirement
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	var (
		logical string
		start   int
	)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if logical == "" {
			start = n
		}
		// A comment line does not go on, even ending in a backslash: pip
		// joins lines before it strips comments, but not a comment line.
		if strings.HasSuffix(line, `\`) && !strings.HasPrefix(strings.TrimLeft(line, " \t"), "#") {
			logical += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		logical += line
		if r, ok := parseRequirement(logical); ok {
			r.Line = start
			out = append(out, r)
		}
		logical = ""
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse requirements.txt: %w", err)
	}
	return out, nil
}

func parseRequirement(s string) (Requirement, bool) {
	// A comment starts at a # at the line's start or after whitespace.
	if i := strings.Index(s, "#"); i == 0 || (i > 0 && strings.ContainsAny(s[i-1:i], " \t")) {
		s = s[:i]
	}
	if i := strings.Index(s, ";"); i >= 0 { // environment markers
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, "-") || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "/") {
		return Requirement{}, false
	}
	m := requirementLine.FindStringSubmatch(s)
	if m == nil {
		return Requirement{}, false
	}
	rest := strings.TrimSpace(m[2])
	switch {
	case strings.HasPrefix(rest, "@"): // name @ URL: a direct reference, no version
		rest = ""
	case rest != "" && !strings.ContainsAny(rest[:1], "=<>!~("):
		return Requirement{}, false // a URL, an archive path
	}
	r := Requirement{Name: NormalizePyPI(m[1])}
	if v := pinned.FindStringSubmatch(rest); v != nil {
		r.Version = v[1]
	}
	return r, true
}

var pep503 = regexp.MustCompile(`[-_.]+`)

// NormalizePyPI normalizes a Python package name as PEP 503 does:
// lowercase, with runs of -, _ and . as one -.
func NormalizePyPI(name string) string {
	return pep503.ReplaceAllString(strings.ToLower(name), "-")
}
