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
// service.name; the artifact a report scanned: the image a service of the
// telemetry runs, or the name of a service in the telemetry, or any name
// when there is no telemetry to check it against), or from the telemetry
// when that has exactly one service. Otherwise it is
// refused: a report of service "" matches no profile and would be ranked
// as if nothing ran. What was inferred is said on stderr.

// importedFindings are the findings of one report or SBOM, before they
// are assigned to services and merged.
type importedFindings struct {
	findingsFile
	fs []findings.Finding
}

// artifact is what the report says it scanned, "" when it does not: of
// the findings that name no service, the ones a service is inferred for.
func (in importedFindings) artifact() string {
	for _, f := range in.fs {
		if f.Service != "" {
			continue
		}
		for _, s := range f.Sources {
			if s.Artifact != "" {
				return s.Artifact
			}
		}
	}
	return ""
}

// seenServices are the services of the telemetry.
type seenServices struct {
	// names are the services, sorted.
	names []string
	// byImage maps the repository of a container image
	// ("registry.example.com/shop/gateway") to the services that run it.
	byImage map[string][]string
}

// assignFindings gives the findings of every input its services, inferring
// the service of an input given without one from the services of the
// telemetry, and merges them all, with the vulnerability database db
// telling which ids are one vulnerability (findings.MergeWith). note is
// told what was inferred. The error names every input whose service
// cannot be told.
func assignFindings(inputs []importedFindings, seen seenServices, db findings.Matcher, note func(string)) ([]findings.Finding, error) {
	var (
		all  []findings.Finding
		errs []error
	)
	for _, in := range inputs {
		// The findings that name no service (all but evident's own,
		// findings import --format json) get the inferred one.
		fs := in.fs
		if in.services == "" && len(fs) > 0 && !findings.NameServices(fs) {
			svc, why, err := inferService(in.artifact(), seen)
			if err != nil {
				errs = append(errs, fmt.Errorf("--findings %s: %w; give it as --findings SERVICE=%s", in.path, err, in.path))
				continue
			}
			note(fmt.Sprintf("--findings %s: service %s (%s)", in.path, svc, why))
			fs = slices.Clone(fs) // the input's are the caller's
			findings.FillServices(fs, svc)
		}
		all = append(all, forServices(fs, in.services)...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return findings.MergeWith(all, db), nil
}

// inferService decides the service of a report that scanned artifact
// ("" when it does not say), given the services of the telemetry. why
// says how, for the user.
func inferService(artifact string, telemetry seenServices) (svc, why string, err error) {
	if svcs := telemetry.byImage[imageRepository(artifact)]; artifact != "" && len(svcs) == 1 {
		return svcs[0], "the report scanned " + artifact + ", the image its telemetry names", nil
	}
	seen := telemetry.names
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

// imageRepository is an image reference without its tag or digest.
func imageRepository(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}

// analyzeHandler feeds decoded telemetry into a model, noting the
// services it names and the images they run, and holding back the
// profiles that name no service until every file is read
// (resolveProfiles).
type analyzeHandler struct {
	m *model.Model
	// services maps each service to the repositories of its images.
	services map[string]map[string]bool
	// traced are the services of the spans.
	traced  map[string]bool
	unnamed []unnamedProfile
}

// unnamedProfile is a profile that names no service, with the flag that
// named its file: a profile given to --traces is read all the same, and
// the user is told about the flag they used.
type unnamedProfile struct {
	b    *telemetry.ProfileBatch
	flag string
}

func newAnalyzeHandler(m *model.Model) *analyzeHandler {
	return &analyzeHandler{m: m, services: map[string]map[string]bool{}, traced: map[string]bool{}}
}

// saw notes a service and the image it runs (nil when unknown).
func (h *analyzeHandler) saw(service string, img *telemetry.Image) {
	if service == "" {
		return
	}
	images := h.services[service]
	if images == nil {
		images = map[string]bool{}
		h.services[service] = images
	}
	if img == nil {
		return
	}
	if img.Name != "" {
		images[imageRepository(img.Name)] = true
	}
	for _, d := range img.RepoDigests {
		images[imageRepository(d)] = true
	}
}

// Profile takes a profile read from the sources (--pyroscope); from
// gives the handler of the files of a flag.
func (h *analyzeHandler) Profile(b *telemetry.ProfileBatch) error {
	return h.profile(b, "--pyroscope")
}

func (h *analyzeHandler) profile(b *telemetry.ProfileBatch, flag string) error {
	if b.Service == "" {
		h.unnamed = append(h.unnamed, unnamedProfile{b, flag})
		return nil
	}
	h.saw(b.Service, b.Image)
	h.m.AddProfile(b)
	return nil
}

// from returns h as the handler of the files named by flag (--traces,
// --profiles).
func (h *analyzeHandler) from(flag string) telemetry.Handler { return flagHandler{h, flag} }

// flagHandler is an analyzeHandler for the files of one flag.
type flagHandler struct {
	*analyzeHandler
	flag string
}

func (f flagHandler) Profile(b *telemetry.ProfileBatch) error { return f.profile(b, f.flag) }

func (h *analyzeHandler) Spans(spans []telemetry.Span) error {
	last := ""
	for i := range spans {
		h.saw(spans[i].Service, spans[i].Image)
		if svc := spans[i].Service; svc != "" && svc != last {
			last, h.traced[svc] = svc, true
		}
	}
	h.m.AddSpans(spans)
	return nil
}

// seen returns the services of the telemetry.
func (h *analyzeHandler) seen() seenServices {
	s := seenServices{names: slices.Sorted(maps.Keys(h.services)), byImage: map[string][]string{}}
	for _, svc := range s.names {
		for img := range h.services[svc] {
			s.byImage[img] = append(s.byImage[img], svc)
		}
	}
	return s
}

// unmatchedServices returns the services of findings that the telemetry,
// which has services, has none of, sorted: their verdicts can only be
// unknown, most often because the findings name a service otherwise than
// its telemetry does (--findings gw=... for the service gateway).
func unmatchedServices(all []findings.Finding, seen seenServices) []string {
	if len(seen.names) == 0 {
		return nil
	}
	var out []string
	for _, f := range all {
		if _, ok := slices.BinarySearch(seen.names, f.Service); !ok && !slices.Contains(out, f.Service) {
			out = append(out, f.Service)
		}
	}
	slices.Sort(out)
	return out
}

// unnamedFile is the file of unnamed profiles and the flag that named it.
type unnamedFile struct{ path, flag string }

// resolveProfiles gives the profiles that name no service the only service
// of the telemetry, or refuses them.
func (h *analyzeHandler) resolveProfiles(note func(string)) error {
	if len(h.unnamed) == 0 {
		return nil
	}
	// A file named by two flags is the first flag's.
	var files []unnamedFile
	for _, u := range h.unnamed {
		files = append(files, unnamedFile{u.b.Source, u.flag})
	}
	slices.SortStableFunc(files, func(a, b unnamedFile) int { return strings.Compare(a.path, b.path) })
	files = slices.CompactFunc(files, func(a, b unnamedFile) bool { return a.path == b.path })
	seen := h.seen().names
	if len(seen) != 1 {
		tell := "the telemetry names no service"
		if len(seen) > 1 {
			tell = "the telemetry has several services (" + strings.Join(seen, ", ") + ")"
		}
		var errs []error
		for _, f := range files {
			errs = append(errs, fmt.Errorf("%s %s: the profile has no service_name label or service.name, and %s; give it as %s SERVICE=%s", f.flag, f.path, tell, f.flag, f.path))
		}
		return errors.Join(errs...)
	}
	for _, f := range files {
		note(fmt.Sprintf("%s %s: service %s (the only service in the telemetry)", f.flag, f.path, seen[0]))
	}
	for _, u := range h.unnamed {
		u.b.Service = seen[0]
		h.saw(u.b.Service, u.b.Image)
		h.m.AddProfile(u.b)
	}
	h.unnamed = nil
	return nil
}
