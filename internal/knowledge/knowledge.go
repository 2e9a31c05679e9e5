// Package knowledge holds evident's affected-functions knowledge base: a
// curated file that maps a vulnerability (by record id or any alias) and an
// affected OSV package to the functions that carry the flaw, each with the
// reference that shows it.
//
// Most OSV records outside Go name no functions (GitHub removed
// ecosystem_specific from its OSV exports in 2025), yet evident decides
// "executed", "loaded" or "not observed" per function. The base fills that
// gap; internal/vulndb merges it over OSV records when it loads them. The file
// format is documented in docs/knowledge.md.
package knowledge

import (
	"bytes"
	_ "embed"
	"errors"
	"slices"
	"strings"

	"github.com/evidentsec/evident/internal/osv"
)

// shipped is the knowledge base that evident ships (functions.yaml).
//
//go:embed functions.yaml
var shipped []byte

// shippedName names the shipped file in errors.
const shippedName = "internal/knowledge/functions.yaml"

// ErrInvalid marks a file or an entry that breaks the format of
// docs/knowledge.md. Load wraps it in errors that name the file, the entry
// and the field.
var ErrInvalid = errors.New("invalid knowledge base")

// Function is one vulnerable function of an affected package.
type Function struct {
	// Package is the code package that holds the function, as a profile
	// frame names it: a Java package, a Python module, an npm package or a
	// Go import path. Empty means any code of the entry's OSV package.
	Package string
	// Symbol is the function within Package: Func, Class.method,
	// Outer$Inner.method or Recv.Method (Go, pointer dropped).
	Symbol string
	// File is, for npm, the script inside the package that defines the
	// function ("verify.js", "lib/parse.js"), where the name alone is
	// ambiguous: V8 names functions by what they are assigned to, and
	// jsonwebtoken's sign.js and verify.js both export a "module.exports".
	// Empty means any file of the package.
	File string
	// Reference is an https URL that shows this function is the vulnerable
	// one: a fix commit, an advisory or an analysis.
	Reference string
}

// Entry maps one vulnerability and one affected OSV package to its
// vulnerable functions.
type Entry struct {
	// ID is the primary id of the vulnerability (CVE, GHSA, PYSEC, GO, ...).
	ID string
	// Aliases are other ids of the same vulnerability.
	Aliases []string
	// Summary is a one-line description, for people.
	Summary string
	// Ecosystem is the OSV ecosystem of Package (Maven, PyPI, npm, ...).
	Ecosystem string
	// Package is the affected package as OSV names it in that ecosystem.
	Package string
	// Functions are the vulnerable functions, at least one.
	Functions []Function
}

// clone returns a deep copy of e, so that callers cannot change a Base.
func (e Entry) clone() Entry {
	e.Aliases = slices.Clone(e.Aliases)
	e.Functions = slices.Clone(e.Functions)
	return e
}

// key identifies an entry for duplicate checks and Merge: the id, compared
// case-insensitively, and the OSV package, with PyPI names normalised as OSV
// compares them (PEP 503), so that "PyYAML" and "pyyaml" are one package.
type key struct{ id, pkg string }

func keyOf(e Entry) key {
	pkg := e.Package
	if e.Ecosystem == osv.EcosystemPyPI {
		pkg = osv.NormalizePyPI(pkg)
	}
	return key{id: normID(e.ID), pkg: pkg}
}

// normID folds ids for comparison: OSV ids are case-insensitive in practice
// (GHSA ids are written in lower case after the prefix, CVE ids in upper).
func normID(id string) string {
	return strings.ToUpper(strings.TrimSpace(id))
}

// Base is a loaded knowledge base. It is immutable after it is made and safe
// for concurrent use; a nil *Base is an empty base.
type Base struct {
	entries []Entry
	// byID maps every normalised id and alias to the indexes of the
	// entries that carry it, in file order.
	byID map[string][]int
}

// newBase indexes entries; it takes ownership of the slice.
func newBase(entries []Entry) *Base {
	b := &Base{entries: entries, byID: make(map[string][]int, len(entries)*2)}
	for i, e := range entries {
		seen := make(map[string]bool, 1+len(e.Aliases))
		for _, id := range append([]string{e.ID}, e.Aliases...) {
			n := normID(id)
			if seen[n] {
				continue
			}
			seen[n] = true
			b.byID[n] = append(b.byID[n], i)
		}
	}
	return b
}

// Default returns the knowledge base that ships with evident, embedded in
// the binary. An error means the shipped file is broken, which its tests
// rule out.
func Default() (*Base, error) {
	return Load(bytes.NewReader(shipped), shippedName)
}

// Len returns the number of entries.
func (b *Base) Len() int {
	if b == nil {
		return 0
	}
	return len(b.entries)
}

// Lookup returns every entry whose id or one of whose aliases equals one of
// ids, ignoring case, each once and in file order. The entries are copies the
// caller owns. It returns nil when nothing matches.
func (b *Base) Lookup(ids ...string) []Entry {
	if b == nil {
		return nil
	}
	var hits []int
	for _, id := range ids {
		hits = append(hits, b.byID[normID(id)]...)
	}
	if len(hits) == 0 {
		return nil
	}
	slices.Sort(hits)
	hits = slices.Compact(hits)
	out := make([]Entry, len(hits))
	for i, h := range hits {
		out[i] = b.entries[h].clone()
	}
	return out
}

// Merge returns a new base with the entries of b and of other, where an entry
// of other replaces the entry of b with the same id (ignoring case) and OSV
// package, in b's place; other's new entries follow b's. Neither base
// changes. It is meant for a user's file over Default().
func (b *Base) Merge(other *Base) *Base {
	over := make(map[key]int, other.Len())
	if other != nil {
		for i, e := range other.entries {
			over[keyOf(e)] = i
		}
	}
	entries := make([]Entry, 0, b.Len()+other.Len())
	used := make([]bool, other.Len())
	if b != nil {
		for _, e := range b.entries {
			if i, ok := over[keyOf(e)]; ok {
				e, used[i] = other.entries[i], true
			}
			entries = append(entries, e)
		}
	}
	if other != nil {
		for i, e := range other.entries {
			if !used[i] {
				entries = append(entries, e)
			}
		}
	}
	return newBase(entries)
}
