// Package report renders the result of an assessment in the formats
// people and tools read: a table for terminals, versioned JSON, SARIF
// 2.1.0 for code scanning, OpenVEX 0.2.0 and CycloneDX 1.6 (the Runtime
// BOM with VEX) for scanners, and Markdown for pull-request comments.
//
// Every format implements Format; all of them render the same Result.
package report

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/package-url/packageurl-go"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/manifest"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/vulndb"
)

// Result is everything a report shows: the assessments in priority order,
// their summary and the runtime model they were made against.
type Result struct {
	// Generated is when the assessment was made; reports print it as is,
	// so tests pass a fixed time.
	Generated time.Time
	// Version is the version of evident that made it.
	Version     string
	Summary     assess.Summary
	Assessments []assess.Assessment
	Snapshot    *model.Snapshot
	// Exposure is the exposure decided for each service of Snapshot,
	// with findings or without (assess.Assessor.ServiceExposures).
	Exposure map[string]assess.ExposureResult
	// VulnDB describes the vulnerability database the assessment was
	// made with. Without a KEV catalog no finding is known exploited and
	// without EPSS scores none has a score, whatever is true of it, so
	// every format says what was loaded; the zero Stats is neither.
	VulnDB vulndb.Stats
}

// Format writes a Result in one output format.
type Format interface {
	// Write renders r to w. It does not modify r.
	Write(w io.Writer, r *Result) error
}

// FormatFunc adapts a function to Format.
type FormatFunc func(w io.Writer, r *Result) error

// Write calls f(w, r).
func (f FormatFunc) Write(w io.Writer, r *Result) error { return f(w, r) }

// ErrUnknownFormat is returned by Lookup for a name that is not a format.
var ErrUnknownFormat = errors.New("unknown report format")

// Names lists the formats in the order help texts show them.
var Names = []string{"table", "json", "sarif", "openvex", "cyclonedx", "markdown"}

// Options tune the formats that have choices.
type Options struct {
	// Color enables ANSI colours in the table (on a terminal).
	Color bool
	// Products overrides the product that the VEX formats name for a
	// service (docs/priority.md).
	Products Products
	// Manifests locates the manifest lines that declare packages, for
	// SARIF; nil points every result at a file but no line.
	Manifests *manifest.Tree
	// MaxBytes caps the Markdown (a pull-request comment has a limit):
	// the lowest-priority findings are cut to fit. 0 is no cap.
	MaxBytes int
	// Warn, if not nil, is told of what a format had to leave out or
	// weaken: a VEX finding for which no product can be named.
	Warn func(error)
}

// Products maps a service name to the package URL of what is deployed as
// it (an image, a binary). The VEX formats name that as the product, with
// the vulnerable packages as its subcomponents; a service missing here is
// named by what its telemetry says (container image, else service name).
type Products map[string]string

// Validate reports every entry that is not a service name with a package
// URL.
func (p Products) Validate() error {
	var errs []error
	for _, service := range slices.Sorted(maps.Keys(p)) {
		purl := p[service]
		if service == "" {
			errs = append(errs, fmt.Errorf("products: an entry has no service name"))
			continue
		}
		if _, err := packageurl.FromString(purl); err != nil || !strings.HasPrefix(purl, "pkg:") {
			errs = append(errs, fmt.Errorf("products.%s: %q is not a package URL (pkg:oci/<name>@sha256:<digest>, pkg:generic/<name>, ...)", service, purl))
		}
	}
	return errors.Join(errs...)
}

// Lookup returns the format called name.
func Lookup(name string, opts Options) (Format, error) {
	switch name {
	case "table":
		return FormatFunc(func(w io.Writer, r *Result) error { return writeTable(w, r, opts.Color) }), nil
	case "json":
		return FormatFunc(writeJSON), nil
	case "markdown":
		return FormatFunc(func(w io.Writer, r *Result) error { return writeMarkdown(w, r, opts.MaxBytes) }), nil
	case "sarif":
		return FormatFunc(func(w io.Writer, r *Result) error { return writeSARIF(w, r, opts.Manifests) }), nil
	case "openvex":
		return FormatFunc(func(w io.Writer, r *Result) error { return writeOpenVEX(w, r, opts) }), nil
	case "cyclonedx":
		return FormatFunc(func(w io.Writer, r *Result) error { return writeCycloneDX(w, r, opts) }), nil
	}
	return nil, fmt.Errorf("%w %q (want one of %s)", ErrUnknownFormat, name, strings.Join(Names, ", "))
}

// unloadedNote says, in one sentence, which exploitation data the
// assessment was made without and how to load it; "" when it had both.
// code formats a command or flag (a Markdown code span, or as it is).
func unloadedNote(s vulndb.Stats, code func(string) string) string {
	update := code("evident db update")
	switch kev, epss := s.HasKEV(), s.HasEPSS(); {
	case !kev && !epss:
		return fmt.Sprintf("Without a CISA KEV catalog or EPSS scores, no finding is marked known exploited (KEV) or scored by EPSS, whether it should be or not; load them with %s, or %s and %s.", update, code("--kev FILE"), code("--epss FILE"))
	case !kev:
		return fmt.Sprintf("Without a CISA KEV catalog, no finding is marked known exploited (KEV), whether it is or not; load one with %s, or %s.", update, code("--kev FILE"))
	case !epss:
		return fmt.Sprintf("Without EPSS scores, no finding is scored by EPSS, whether FIRST scores it or not; load them with %s, or %s.", update, code("--epss FILE"))
	}
	return ""
}

// endpointsOf joins endpoints for one-line display, at most n.
func endpointsOf(eps []string, n int) string {
	if len(eps) > n {
		return strings.Join(eps[:n], ", ") + fmt.Sprintf(" (+%d)", len(eps)-n)
	}
	return strings.Join(eps, ", ")
}
