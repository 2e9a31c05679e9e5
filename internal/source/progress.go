package source

import (
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/evidentsec/evident/internal/telemetry"
)

// windowProgress is what the pulls of one window have handed on: each
// sampled trace, each service's profile of each part, and the endpoints'
// span ids of the traces, which link profile samples to the endpoints. A
// pull resumed with the progress of one that failed part-way (a source's
// 503, the engine's queue full) hands on only the rest, so that a window
// read again is counted once.
type windowProgress struct {
	w Window
	// ids are the traces sampled (Tempo.Sample), once sampled is set: a
	// resumed pull reads the same sample, within the same budget.
	ids     []string
	sampled bool
	// traces counts the resources of each trace handed on, traceDone
	// once all were: a trace read again (the same answer, decoded the
	// same) hands on the rest.
	traces   map[string]int
	profiles map[profilePart]bool
	// spans are the endpoints' span ids by service and span name.
	spans map[string]map[string][]string
	// checkpoint, when set, is called each time more was handed on
	// (and recorded here); its error stops the pull.
	checkpoint func() error
}

// handed calls the checkpoint, if any: more was handed on.
func (pr *windowProgress) handed() error {
	if pr.checkpoint == nil {
		return nil
	}
	return pr.checkpoint()
}

// traceDone marks a trace handed on whole.
const traceDone = -1

// profilePart keys a service's profile of a part of the window.
type profilePart struct {
	service  string
	from, to int64
}

// newWindowProgress returns the progress of a window nothing of which has been
// handed on.
func newWindowProgress(w Window) *windowProgress {
	return &windowProgress{w: w, traces: map[string]int{}, profiles: map[profilePart]bool{}, spans: map[string]map[string][]string{}}
}

// progressVersion is the version of windowProgress's encoding.
const progressVersion = 1

// progressJSON is windowProgress as marshal writes it.
type progressJSON struct {
	Version  int                            `json:"version"`
	From     time.Time                      `json:"from"`
	To       time.Time                      `json:"to"`
	Sampled  bool                           `json:"sampled"`
	IDs      []string                       `json:"ids,omitempty"`
	Traces   map[string]int                 `json:"traces,omitempty"`
	Profiles []profilePartJSON              `json:"profiles,omitempty"`
	Spans    map[string]map[string][]string `json:"spans,omitempty"`
}

type profilePartJSON struct {
	Service string `json:"service"`
	From    int64  `json:"from"`
	To      int64  `json:"to"`
}

// empty reports whether nothing of the window was handed on.
func (pr *windowProgress) empty() bool { return len(pr.traces) == 0 && len(pr.profiles) == 0 }

// marshal encodes pr (JSON), for a store to keep while its window
// is unfinished. keep, when set, says whether a service or span name may
// be written as it is (the redaction would leave it so): what it refuses
// is left out, so that the store never holds what redaction masks. A
// span group left out links no sample after a resume (its samples go by
// span name, or unlinked); a service's profile left out is read again
// by a resume.
func (pr *windowProgress) marshal(keep func(string) bool) ([]byte, error) {
	if keep == nil {
		keep = func(string) bool { return true }
	}
	j := progressJSON{Version: progressVersion, From: pr.w.From, To: pr.w.To, Sampled: pr.sampled, IDs: pr.ids, Traces: pr.traces, Spans: map[string]map[string][]string{}}
	for k := range pr.profiles {
		if keep(k.service) {
			j.Profiles = append(j.Profiles, profilePartJSON{k.service, k.from, k.to})
		}
	}
	for svc, byName := range pr.spans {
		if !keep(svc) {
			continue
		}
		kept := maps.Clone(byName)
		maps.DeleteFunc(kept, func(name string, _ []string) bool { return !keep(name) })
		if len(kept) > 0 {
			j.Spans[svc] = kept
		}
	}
	slices.SortFunc(j.Profiles, func(a, b profilePartJSON) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To))
	})
	return json.Marshal(j)
}

// unmarshalProgress decodes what marshal encoded. What it cannot
// take (another version, a window that ends before it starts, a trace
// counted below traceDone) is telemetry.ErrMalformed.
func unmarshalProgress(data []byte) (*windowProgress, error) {
	var j progressJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("source progress: %w: %w", telemetry.ErrMalformed, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("source progress: %w: %s", telemetry.ErrMalformed, fmt.Sprintf(format, a...))
	}
	switch {
	case j.Version != progressVersion:
		return nil, bad("version %d, want %d", j.Version, progressVersion)
	case !j.From.Before(j.To):
		return nil, bad("window %s to %s ends before it starts", j.From.Format(time.RFC3339Nano), j.To.Format(time.RFC3339Nano))
	case !j.Sampled && (len(j.IDs) > 0 || len(j.Traces) > 0):
		return nil, bad("traces handed on before any was sampled")
	}
	pr := newWindowProgress(Window{From: j.From, To: j.To})
	pr.sampled, pr.ids = j.Sampled, j.IDs
	for id, n := range j.Traces {
		if n < traceDone {
			return nil, bad("trace %s: %d resources handed on", id, n)
		}
		pr.traces[id] = n
	}
	for _, p := range j.Profiles {
		pr.profiles[profilePart{p.Service, p.From, p.To}] = true
	}
	maps.Copy(pr.spans, j.Spans)
	return pr, nil
}

// handSpans hands a trace's spans to h and, once h accepted them,
// records the ids of its SERVER and CONSUMER spans per service and span
// name: the endpoints profile samples are linked to.
func (pr *windowProgress) handSpans(h telemetry.Handler, spans []telemetry.Span) error {
	type endpoint struct{ service, name, id string }
	var ends []endpoint
	for i := range spans {
		sp := &spans[i]
		if sp.Kind == telemetry.SpanKindServer || sp.Kind == telemetry.SpanKindConsumer {
			ends = append(ends, endpoint{sp.Service, sp.Name, hex.EncodeToString(sp.SpanID[:])})
		}
	}
	// h owns spans once it accepted them: the ids are taken before.
	if err := h.Spans(spans); err != nil {
		return err
	}
	for _, e := range ends {
		byName := pr.spans[e.service]
		if byName == nil {
			byName = map[string][]string{}
			pr.spans[e.service] = byName
		}
		byName[e.name] = append(byName[e.name], e.id)
	}
	return nil
}

// groups returns the span ids of a service, one group per span name,
// in name order.
func (pr *windowProgress) groups(service string) []SpanGroup {
	byName := pr.spans[service]
	var out []SpanGroup
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		out = append(out, SpanGroup{name, byName[name]})
	}
	return out
}
