package knowledge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/evidentsec/evident/internal/osv"
	"go.yaml.in/yaml/v3"
)

// Version is the file format version that Load reads.
const Version = 1

// maxFileSize bounds what Load reads, so that a wrong path (a log, a device)
// fails fast instead of filling memory.
const maxFileSize = 64 << 20

// ecosystems are the OSV ecosystem names an entry may use.
var ecosystems = []string{
	osv.EcosystemGo, osv.EcosystemNPM, osv.EcosystemPyPI, osv.EcosystemMaven,
	osv.EcosystemNuGet, osv.EcosystemRubyGems, osv.EcosystemCratesIO,
	osv.EcosystemPackagist, osv.EcosystemHex, osv.EcosystemPub,
}

// fileDoc is the top level of a knowledge base file. Entries stay nodes so
// that each is checked on its own: a bad entry never hides the good ones.
type fileDoc struct {
	Version *int      `yaml:"version"`
	Entries yaml.Node `yaml:"entries"`
}

// entryDoc and functionDoc are the YAML shapes of Entry and Function; their
// keys are the only ones allowed (see entryKeys and functionKeys).
type entryDoc struct {
	ID        string        `yaml:"id"`
	Aliases   []string      `yaml:"aliases"`
	Summary   string        `yaml:"summary"`
	Ecosystem string        `yaml:"ecosystem"`
	Package   string        `yaml:"package"`
	Functions []functionDoc `yaml:"functions"`
}

type functionDoc struct {
	Package   string `yaml:"package"`
	File      string `yaml:"file"`
	Symbol    string `yaml:"symbol"`
	Reference string `yaml:"reference"`
}

var (
	entryKeys    = []string{"id", "aliases", "summary", "ecosystem", "package", "functions"}
	functionKeys = []string{"package", "file", "symbol", "reference"}
)

// Load reads a knowledge base in the format of docs/knowledge.md; name names
// the input in errors.
//
// A file that is not YAML, is not a mapping of version and entries, or has
// another version yields a nil Base and an error. Otherwise Load returns a
// Base with every valid entry, and, when some entries are invalid, an error
// that joins one error per invalid entry, each naming the file, the line,
// the entry's index and id, and the field. All errors wrap ErrInvalid except
// read errors.
func Load(r io.Reader, name string) (*Base, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read knowledge base %s: %w", name, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("knowledge base %s: larger than %d bytes: %w", name, maxFileSize, ErrInvalid)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var doc fileDoc
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("knowledge base %s: empty file: %w", name, ErrInvalid)
		}
		return nil, fmt.Errorf("knowledge base %s: %w: %w", name, ErrInvalid, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("knowledge base %s: more than one YAML document: %w", name, ErrInvalid)
	}
	switch {
	case doc.Version == nil:
		return nil, fmt.Errorf("knowledge base %s: version is missing (want %d): %w", name, Version, ErrInvalid)
	case *doc.Version != Version:
		return nil, fmt.Errorf("knowledge base %s: version %d is not supported (want %d): %w", name, *doc.Version, Version, ErrInvalid)
	}

	// An absent or null entries is an empty base, as an empty list is.
	if doc.Entries.Kind != 0 && doc.Entries.Kind != yaml.SequenceNode && doc.Entries.ShortTag() != "!!null" {
		return nil, fmt.Errorf("knowledge base %s:%d: entries is not a list: %w", name, doc.Entries.Line, ErrInvalid)
	}
	entries := make([]Entry, 0, len(doc.Entries.Content))
	seen := make(map[key]int, len(doc.Entries.Content))
	var errs []error
	for i, n := range doc.Entries.Content {
		e, err := decodeEntry(n)
		if err == nil {
			if first, dup := seen[keyOf(e)]; dup {
				err = fmt.Errorf("id %s and package %s repeat entry %d", e.ID, e.Package, first)
			}
		}
		if err != nil {
			errs = append(errs, entryError(name, n, i, err))
			continue
		}
		seen[keyOf(e)] = i
		entries = append(entries, e)
	}
	if len(errs) > 0 {
		return newBase(entries), fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return newBase(entries), nil
}

// EntryError is the error of one invalid entry of a file, which Load and
// LoadExploits skip: "FILE:LINE: entry I (ID): what is wrong".
type EntryError struct {
	// Place is "FILE:LINE", where the entry starts.
	Place string
	// Err says which entry and what is wrong with it: "entry 2
	// (CVE-2022-0001): functions[0]: reference ... is not an https URL".
	Err error
}

func (e *EntryError) Error() string { return e.Place + ": " + e.Err.Error() }

func (e *EntryError) Unwrap() error { return e.Err }

// entryError is the EntryError of entry i, at node n of file name.
func entryError(name string, n *yaml.Node, i int, err error) *EntryError {
	return &EntryError{Place: fmt.Sprintf("%s:%d", name, n.Line), Err: fmt.Errorf("entry %d%s: %w", i, idOf(n), err)}
}

// EntryErrors returns the errors of the entries that the error of Load or
// LoadExploits says were skipped, in file order; none for another error.
func EntryErrors(err error) []*EntryError {
	var out []*EntryError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case *EntryError:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, err := range e.Unwrap() {
				walk(err)
			}
		}
	}
	walk(err)
	return out
}

// idOf returns " (<id>)" for an entry node that has a scalar id, so that an
// error names the entry even when the entry is broken elsewhere.
func idOf(n *yaml.Node) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], n.Content[i+1]; k.Value == "id" && v.Kind == yaml.ScalarNode && v.Value != "" {
			return " (" + v.Value + ")"
		}
	}
	return ""
}

// checkKeys reports the first key of a mapping node that is not allowed.
// yaml.v3 checks known fields only when it decodes a whole document, and
// each entry is decoded on its own, so the check is done here.
func checkKeys(n *yaml.Node, what string, allowed []string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: %s is not a mapping", n.Line, what)
	}
	for i := 0; i < len(n.Content); i += 2 {
		k := n.Content[i]
		if !slices.Contains(allowed, k.Value) {
			return fmt.Errorf("line %d: %s: unknown field %q (allowed: %s)", k.Line, what, k.Value, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// decodeEntry checks the keys of an entry node, decodes it and validates it.
func decodeEntry(n *yaml.Node) (Entry, error) {
	if err := checkKeys(n, "entry", entryKeys); err != nil {
		return Entry{}, err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "functions" || n.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for j, f := range n.Content[i+1].Content {
			if err := checkKeys(f, fmt.Sprintf("functions[%d]", j), functionKeys); err != nil {
				return Entry{}, err
			}
		}
	}
	var d entryDoc
	if err := n.Decode(&d); err != nil {
		return Entry{}, err
	}
	e := Entry{
		ID:        strings.TrimSpace(d.ID),
		Aliases:   d.Aliases,
		Summary:   strings.TrimSpace(d.Summary),
		Ecosystem: d.Ecosystem,
		Package:   strings.TrimSpace(d.Package),
		Functions: make([]Function, len(d.Functions)),
	}
	for i, f := range d.Functions {
		e.Functions[i] = Function{
			Package:   strings.TrimSpace(f.Package),
			File:      strings.TrimSpace(f.File),
			Symbol:    strings.TrimSpace(f.Symbol),
			Reference: strings.TrimSpace(f.Reference),
		}
	}
	return e, validate(e)
}

// validate checks the rules of docs/knowledge.md on a decoded entry.
func validate(e Entry) error {
	if err := validateIdentity(e.ID, e.Aliases, e.Ecosystem, e.Package); err != nil {
		return err
	}
	if len(e.Functions) == 0 {
		return errors.New("functions is empty: list at least one")
	}
	for i, f := range e.Functions {
		if err := validateFunction(e.Ecosystem, f); err != nil {
			return fmt.Errorf("functions[%d]: %w", i, err)
		}
	}
	return nil
}

// validateIdentity checks what names an entry of either file: the id, the
// aliases, the ecosystem and the package.
func validateIdentity(id string, aliases []string, ecosystem, pkg string) error {
	switch {
	case id == "":
		return errors.New("id is missing")
	case strings.ContainsAny(id, " \t\n"):
		return fmt.Errorf("id %q has white space", id)
	case ecosystem == "":
		return fmt.Errorf("ecosystem is missing (one of %s)", strings.Join(ecosystems, ", "))
	case !slices.Contains(ecosystems, ecosystem):
		return fmt.Errorf("ecosystem %q is not an OSV ecosystem (one of %s)", ecosystem, strings.Join(ecosystems, ", "))
	case pkg == "":
		return errors.New("package is missing")
	}
	ids := map[string]bool{normID(id): true}
	for i, a := range aliases {
		switch n := normID(a); {
		case n == "":
			return fmt.Errorf("aliases[%d] is empty", i)
		case strings.ContainsAny(n, " \t\n"):
			return fmt.Errorf("aliases[%d] %q has white space", i, a)
		case ids[n]:
			return fmt.Errorf("aliases[%d] %q repeats the id or another alias", i, a)
		default:
			ids[n] = true
		}
	}
	return nil
}

func validateFunction(ecosystem string, f Function) error {
	switch {
	case strings.ContainsAny(f.Package, " \t\n"):
		return fmt.Errorf("package %q has white space", f.Package)
	case f.File != "" && ecosystem != osv.EcosystemNPM:
		return fmt.Errorf("file %q: only npm functions name their file (profiles name %s code by its package)", f.File, ecosystem)
	case f.File != "" && f.Package == "":
		return fmt.Errorf("file %q without the package that holds it", f.File)
	case f.File != "" && (path.Clean(f.File) != f.File || path.IsAbs(f.File) || strings.HasPrefix(f.File, "../") || f.File == ".." || strings.ContainsAny(f.File, " \t\n\\")):
		return fmt.Errorf("file %q is not a clean path inside the package (\"verify.js\", \"lib/parse.js\")", f.File)
	case f.Symbol == "":
		return errors.New("symbol is missing")
	case strings.ContainsAny(f.Symbol, " \t\n()"):
		return fmt.Errorf("symbol %q is not a bare name (no spaces, no parameter lists)", f.Symbol)
	case f.Reference == "":
		return errors.New("reference is missing")
	}
	u, err := url.Parse(f.Reference)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("reference %q is not an https URL", f.Reference)
	}
	return nil
}
