// Package fold makes text comparable across accents and case, with
// golang.org/x/text/unicode/norm: at the pinned version that package has
// GO-2026-5970, and the gateway's search and the reporter both run it.
package fold

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// String removes diacritics and case: "Crème Brûlée" → "creme brulee". It
// decomposes (NFKD), drops the combining marks, lowers and recomposes (NFC).
func String(s string) string {
	d := norm.NFKD.String(s)
	var b strings.Builder
	b.Grow(len(d))
	for _, r := range d {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return norm.NFC.String(b.String())
}
