package findings

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// DocumentVersion is the version of the JSON document that WriteJSON
// writes. It changes when a field changes meaning or goes away; new
// fields do not change it.
const DocumentVersion = 1

// Document is evident's JSON document of findings.
type Document struct {
	Version  int       `json:"version"`
	Findings []Finding `json:"findings"`
}

// WriteJSON writes findings as an indented Document.
func WriteJSON(w io.Writer, fs []Finding) error {
	if fs == nil {
		fs = []Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(Document{Version: DocumentVersion, Findings: fs}); err != nil {
		return fmt.Errorf("write findings: %w", err)
	}
	return nil
}

// ParseDocument reads a Document, as WriteJSON (evident findings import
// --format json) writes it, back into its findings: each keeps its
// service, package, vulnerability, severity, static reachability and the
// reports it came from. Fields a later version of the same document
// added are ignored, as the version's promise allows; a document of a
// later version is refused (ErrWrongFormat), as its fields may mean
// something else.
//
// A finding that cannot be one (no vulnerability id, a package without
// ecosystem, name and version, no source, an unknown severity or static
// reachability, a blank service or one with control characters) is
// reported as a *RecordError naming it ("findings[3]
// (GO-2026-5025)") and skipped. An input that is not a Document wraps
// ErrWrongFormat; broken JSON ErrMalformed.
func ParseDocument(r io.Reader, name string) ([]Finding, []error) {
	doc, err := decodeDocument(r)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", name, err)}
	}
	var (
		version int
		records []json.RawMessage
	)
	if doc["version"] == nil || doc["findings"] == nil {
		err = fmt.Errorf("not a document of evident's findings (no version and findings): %w", ErrWrongFormat)
	} else if _, err = field(doc, "version", &version); err == nil {
		_, err = field(doc, "findings", &records)
	}
	switch {
	case err != nil:
	case version < 1:
		err = fmt.Errorf("findings document version %d: versions start at 1: %w", version, ErrWrongFormat)
	case version > DocumentVersion:
		err = fmt.Errorf("findings document version %d, this evident reads version %d (a later evident wrote it: read it with that evident): %w", version, DocumentVersion, ErrWrongFormat)
	}
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", name, err)}
	}
	var (
		found []Finding
		errs  []error
	)
	for i, raw := range records {
		rec := fmt.Sprintf("findings[%d]", i)
		var f Finding
		if err := json.Unmarshal(raw, &f); err != nil {
			errs = append(errs, recordErr(name, rec, "%v", err))
			continue
		}
		if f.Vulnerability.ID != "" {
			rec += " (" + f.Vulnerability.ID + ")"
		}
		if err := checkDocumentFinding(&f); err != nil {
			errs = append(errs, &RecordError{File: name, Record: rec, Err: err})
			continue
		}
		found = append(found, f)
	}
	return Merge(found), errs
}

// checkDocumentFinding checks that f is a finding evident could have
// written, and makes its package as an import makes it from its
// ecosystem, name and version.
func checkDocumentFinding(f *Finding) error {
	if f.Vulnerability.ID == "" {
		return errors.New("no vulnerability id")
	}
	if f.Service != "" && !ValidService(f.Service) {
		return fmt.Errorf("service %q: want a service name (not blank, no control characters)", f.Service)
	}
	pkg, err := newPackage(f.Package.Ecosystem, f.Package.Name, f.Package.Version, f.Package.PURL)
	if err != nil {
		return err
	}
	f.Package = pkg
	switch f.Severity.Level {
	case LevelCritical, LevelHigh, LevelMedium, LevelLow, LevelUnknown:
	case "":
		f.Severity.Level = LevelUnknown
	default:
		return fmt.Errorf("severity level %q, want critical, high, medium, low or unknown", f.Severity.Level)
	}
	switch f.Static {
	case StaticUnknown, StaticRequired, StaticImported, StaticCalled:
	default:
		return fmt.Errorf("static reachability %q, want required, imported or called", f.Static)
	}
	if len(f.Sources) == 0 {
		return errors.New("no source: the report it came from is not named")
	}
	for i, s := range f.Sources {
		if s.Tool == "" {
			return fmt.Errorf("sources[%d]: no tool", i)
		}
	}
	return nil
}

// NameServices reports whether every finding of fs names its service,
// as those of evident's own documents do: no service is then inferred
// for them.
func NameServices(fs []Finding) bool {
	for _, f := range fs {
		if f.Service == "" {
			return false
		}
	}
	return len(fs) > 0
}

// FillServices gives svc to the findings of fs that name no service.
func FillServices(fs []Finding, svc string) {
	for i := range fs {
		if fs[i].Service == "" {
			fs[i].Service = svc
		}
	}
}

// ValidService reports whether name can name a service: not blank, no
// control characters.
func ValidService(name string) bool {
	return strings.TrimSpace(name) != "" && !strings.ContainsFunc(name, unicode.IsControl)
}
