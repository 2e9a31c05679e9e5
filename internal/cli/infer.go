package cli

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/telemetry"
)

// An input given without SERVICE= gets its service, in this order, from
// what it says itself (a profile's service_name label or resource
// service.name; the artifact a report scanned, when a service of that name
// is in the telemetry, or when there is no telemetry to check it against),
// or from the telemetry when that has exactly one service. Otherwise it is
// refused: a report of service "" matches no profile and would be ranked
// as if nothing ran. What was inferred is said on stderr.

// importedFindings are the findings of one report or SBOM, before they
// are assigned to services and merged.
type importedFindings struct {
	findingsFile
	fs []findings.Finding
}

// artifact is what the report says it scanned, "" when it does not.
func (in importedFindings) artifact() string {
	for _, f := range in.fs {
		for _, s := range f.Sources {
			if s.Artifact != "" {
				return s.Artifact
			}
		}
	}
	return ""
}

// assignFindings gives the findings of every input its services, inferring
// the service of an input given without one from seen, the services of the
// telemetry (sorted), and merges them all. note is told what was inferred.
// The error names every input whose service cannot be told.
func assignFindings(inputs []importedFindings, seen []string, note func(string)) ([]findings.Finding, error) {
	var (
		all  []findings.Finding
		errs []error
	)
	for _, in := range inputs {
		if in.services == "" && len(in.fs) > 0 {
			svc, why, err := inferService(in.artifact(), seen)
			if err != nil {
				errs = append(errs, fmt.Errorf("--findings %s: %w; give it as --findings SERVICE=%s", in.path, err, in.path))
				continue
			}
			note(fmt.Sprintf("--findings %s: service %s (%s)", in.path, svc, why))
			in.services = svc
		}
		all = append(all, forServices(in.fs, in.services)...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return findings.Merge(all), nil
}

// inferService decides the service of a report that scanned artifact
// ("" when it does not say), given the services of the telemetry. why
// says how, for the user.
func inferService(artifact string, seen []string) (svc, why string, err error) {
	name := findings.ServiceName(artifact)
	switch {
	case name != "" && (len(seen) == 0 || slices.Contains(seen, name)):
		return name, "the report scanned " + artifact, nil
	case len(seen) == 1:
		return seen[0], "the only service in the telemetry", nil
	case len(seen) == 0:
		return "", "", errors.New("the report does not say which service it scanned, and there is no telemetry to tell")
	case name != "":
		return "", "", fmt.Errorf("the report scanned %s, and no service in the telemetry is called %s (%s)", artifact, name, strings.Join(seen, ", "))
	}
	return "", "", fmt.Errorf("the report does not say which service it scanned, and the telemetry has several (%s)", strings.Join(seen, ", "))
}

// analyzeHandler feeds decoded telemetry into a model, noting the
// services it names and holding back the profiles that name none until
// every file is read (resolveProfiles).
type analyzeHandler struct {
	m        *model.Model
	services map[string]bool
	unnamed  []*telemetry.ProfileBatch
}

func newAnalyzeHandler(m *model.Model) *analyzeHandler {
	return &analyzeHandler{m: m, services: map[string]bool{}}
}

func (h *analyzeHandler) Profile(b *telemetry.ProfileBatch) error {
	if b.Service == "" {
		h.unnamed = append(h.unnamed, b)
		return nil
	}
	h.services[b.Service] = true
	h.m.AddProfile(b)
	return nil
}

func (h *analyzeHandler) Spans(spans []telemetry.Span) error {
	for i := range spans {
		if spans[i].Service != "" {
			h.services[spans[i].Service] = true
		}
	}
	h.m.AddSpans(spans)
	return nil
}

// seen returns the services of the telemetry, sorted.
func (h *analyzeHandler) seen() []string {
	return slices.Sorted(maps.Keys(h.services))
}

// resolveProfiles gives the profiles that name no service the only service
// of the telemetry, or refuses them.
func (h *analyzeHandler) resolveProfiles(note func(string)) error {
	if len(h.unnamed) == 0 {
		return nil
	}
	var files []string
	for _, b := range h.unnamed {
		files = append(files, b.Source)
	}
	slices.Sort(files)
	files = slices.Compact(files)
	seen := h.seen()
	if len(seen) != 1 {
		tell := "the telemetry names no service"
		if len(seen) > 1 {
			tell = "the telemetry has several services (" + strings.Join(seen, ", ") + ")"
		}
		var errs []error
		for _, f := range files {
			errs = append(errs, fmt.Errorf("--profiles %s: the profile has no service_name label or service.name, and %s; give it as --profiles SERVICE=%s", f, tell, f))
		}
		return errors.Join(errs...)
	}
	for _, f := range files {
		note(fmt.Sprintf("--profiles %s: service %s (the only service in the telemetry)", f, seen[0]))
	}
	for _, b := range h.unnamed {
		b.Service = seen[0]
		h.m.AddProfile(b)
	}
	h.unnamed = nil
	return nil
}
