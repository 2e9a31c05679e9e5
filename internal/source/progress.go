package source

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
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
	// traces marks the traces handed on whole (traceDone); a count
	// above it is how many resources of the trace a version 1 record
	// says were handed on, by position in Tempo's answer.
	traces map[string]int
	// handedSpans are the spans handed on of each trace not yet done: a
	// trace read again hands on the spans it does not hold,
	// whatever the order of Tempo's answer or what it holds since.
	handedSpans map[string]map[spanRef]bool
	profiles    map[profilePart]bool
	// spans are the endpoints' span ids by service and span name.
	spans map[string]map[string][]string
	// attempts counts, by item, the polls at which it failed while its
	// source answered, recorded with the rest so that a restarted serve
	// gives the item up when it would have; failures are those of the
	// current poll.
	attempts map[itemKey]int
	failures []error
	// tries is how many pulls try an item that fails alone before it is
	// given up: itemAttempts for a poller's, which reads the window
	// again; 1 for a pull that reads it once (Run).
	tries int
	// checkpoint, when set, is called each time more was handed on
	// (and recorded here); its error stops the pull.
	checkpoint func() error
}

// itemAttempts is how many polls try an item of a window that fails
// alone (a trace that times out at every request, a profile whose merge
// does, an answer to it alone that is a 4xx) before it is given up
// (ErrGaveUp), so that it does not hold the window, and everything
// after it, for good.
const itemAttempts = 5

// ErrGaveUp means an item of a window (a trace, a service's profile)
// failed at itemAttempts polls while its source answered the rest, and
// was given up: what it holds is not read.
var ErrGaveUp = errors.New("given up")

// itemKey names an item of a window that may fail alone: a trace (its
// id), or a service's profile of a part.
type itemKey struct {
	trace   string
	profile profilePart
}

// String names the item in errors and logs.
func (k itemKey) String() string {
	if k.trace != "" {
		return "tempo trace " + k.trace
	}
	p := k.profile
	return fmt.Sprintf("pyroscope: service %s, %s to %s", p.service, time.Unix(0, p.from).UTC().Format(time.RFC3339), time.Unix(0, p.to).UTC().Format(time.RFC3339))
}

// failed takes err, the failure of one item of the window. When the
// source fails as a whole (it limits the queries, or probe fails too: unreachable, busy), stop is err: the pull stops, to be
// read again after a backoff. Otherwise the item alone fails: the pull
// goes on with the rest of the window and fails at its end (settle), so
// that the item is tried at the next poll; at the tries-th such poll,
// gaveUp is the error saying it was given up. A pull that reads the
// window once (tries 1) leaves the item to settle.
func (pr *windowProgress) failed(ctx context.Context, item itemKey, err error, probe func(context.Context) error) (gaveUp, stop error) {
	if _, limited := errors.AsType[rateLimitError](err); limited || ctx.Err() != nil || probe(ctx) != nil {
		return nil, err
	}
	if pr.tries <= 1 {
		// Given up or not at the end of the source's items (settle).
		pr.failures = append(pr.failures, fmt.Errorf("%s: %w", item, err))
		return nil, nil
	}
	pr.attempts[item]++
	if n := pr.attempts[item]; n >= pr.tries {
		delete(pr.attempts, item)
		return fmt.Errorf("%s: %w after %d polls, while the source answered the rest of the window: %w", item, ErrGaveUp, n, err), nil
	}
	pr.failures = append(pr.failures, fmt.Errorf("%s (failed alone, read %d of %d before it is given up): %w", item, pr.attempts[item], pr.tries, err))
	return nil, nil
}

// settle ends the items of one source in this pull: it returns the
// failures of items, which the next poll tries again; nil when there are
// none. A pull that reads the window once (tries 1) gives up the items
// that failed instead, through skip, when the source answered another
// item (answered): a report of the rest is worth more than none; when it
// answered none, the source is failing and the pull fails.
func (pr *windowProgress) settle(answered bool, skip func(error)) error {
	if pr.tries > 1 || !answered {
		return errors.Join(pr.failures...)
	}
	for _, err := range pr.failures {
		skip(fmt.Errorf("%w (%w: it failed alone, while the source answered the rest of the window)", err, ErrGaveUp))
	}
	pr.failures = nil
	return nil
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
// handed on, read by polls (tries: itemAttempts).
func newWindowProgress(w Window) *windowProgress {
	return &windowProgress{w: w, tries: itemAttempts, attempts: map[itemKey]int{}, traces: map[string]int{}, handedSpans: map[string]map[spanRef]bool{}, profiles: map[profilePart]bool{}, spans: map[string]map[string][]string{}}
}

// progressVersion is the version of windowProgress's encoding. Version
// 1 counted a trace's resources handed on, which a resume matched by
// position; version 2 names the spans (Handed); version 3 adds the polls
// at which each item failed alone (Attempts), which a restart counted
// from 0 again, so that a restarted serve never gave an item up. Records
// of versions 1 and 2 are still resumed, their items counted from 0.
const progressVersion = 3

// progressJSON is windowProgress as marshal writes it.
type progressJSON struct {
	Version  int                            `json:"version"`
	From     time.Time                      `json:"from"`
	To       time.Time                      `json:"to"`
	Sampled  bool                           `json:"sampled"`
	IDs      []string                       `json:"ids,omitempty"`
	Traces   map[string]int                 `json:"traces,omitempty"`
	Handed   map[string][]string            `json:"handed,omitempty"`
	Profiles []profilePartJSON              `json:"profiles,omitempty"`
	Spans    map[string]map[string][]string `json:"spans,omitempty"`
	Attempts []attemptJSON                  `json:"attempts,omitempty"`
}

// attemptJSON is an item that failed alone (itemKey: a trace, or a
// service's profile of a part) and the polls at which it did.
type attemptJSON struct {
	Trace   string `json:"trace,omitempty"`
	Service string `json:"service,omitempty"`
	From    int64  `json:"from,omitempty"`
	To      int64  `json:"to,omitempty"`
	Polls   int    `json:"polls"`
}

type profilePartJSON struct {
	Service string `json:"service"`
	From    int64  `json:"from"`
	To      int64  `json:"to"`
}

// empty reports whether nothing of the window was handed on and no item
// of it failed.
func (pr *windowProgress) empty() bool {
	return len(pr.traces) == 0 && len(pr.handedSpans) == 0 && len(pr.profiles) == 0 && len(pr.attempts) == 0
}

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
	if len(pr.handedSpans) > 0 {
		j.Handed = map[string][]string{}
		for id, spans := range pr.handedSpans {
			refs := make([]string, 0, len(spans))
			for r := range spans {
				refs = append(refs, r.String())
			}
			slices.Sort(refs)
			j.Handed[id] = refs
		}
	}
	for k := range pr.profiles {
		if keep(k.service) {
			j.Profiles = append(j.Profiles, profilePartJSON{k.service, k.from, k.to})
		}
	}
	// A profile's failures left out are counted from 0 after a resume.
	for k, n := range pr.attempts {
		if k.trace != "" || keep(k.profile.service) {
			j.Attempts = append(j.Attempts, attemptJSON{k.trace, k.profile.service, k.profile.from, k.profile.to, n})
		}
	}
	slices.SortFunc(j.Attempts, func(a, b attemptJSON) int {
		return cmp.Or(strings.Compare(a.Trace, b.Trace), strings.Compare(a.Service, b.Service), cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To))
	})
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
	case j.Version < 1 || j.Version > progressVersion:
		return nil, bad("version %d, want 1 to %d", j.Version, progressVersion)
	case j.Version < 3 && len(j.Attempts) > 0:
		return nil, bad("version %d with items' failures", j.Version)
	case j.Version == 1 && len(j.Handed) > 0:
		return nil, bad("version 1 with spans handed on by id")
	case !j.From.Before(j.To):
		return nil, bad("window %s to %s ends before it starts", j.From.Format(time.RFC3339Nano), j.To.Format(time.RFC3339Nano))
	case !j.Sampled && (len(j.IDs) > 0 || len(j.Traces) > 0 || len(j.Handed) > 0):
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
	for id, spans := range j.Handed {
		if len(spans) > 0 && pr.traces[id] != traceDone {
			pr.handedSpans[id] = map[spanRef]bool{}
			for _, sp := range spans {
				r, err := parseSpanRef(sp)
				if err != nil {
					return nil, bad("trace %s: span %q handed on: %v", id, sp, err)
				}
				pr.handedSpans[id][r] = true
			}
		}
	}
	for _, p := range j.Profiles {
		pr.profiles[profilePart{p.Service, p.From, p.To}] = true
	}
	maps.Copy(pr.spans, j.Spans)
	for _, a := range j.Attempts {
		k := itemKey{trace: a.Trace}
		if a.Trace == "" {
			k.profile = profilePart{a.Service, a.From, a.To}
		}
		switch {
		case (a.Trace == "") == (a.Service == ""):
			return nil, bad("an item's failures name %q and %q: want a trace or a service", a.Trace, a.Service)
		case a.Polls < 1:
			return nil, bad("%s: failed at %d polls", k, a.Polls)
		}
		pr.attempts[k] = a.Polls
	}
	return pr, nil
}

// spanRef names a span within its trace: its id and its kind, as
// Zipkin's client and server of a call share one span id. It is a
// struct, not its string, so that naming every span a pull hands on
// allocates nothing.
type spanRef struct {
	id   [8]byte
	kind telemetry.SpanKind
}

func refOf(sp *telemetry.Span) spanRef { return spanRef{sp.SpanID, sp.Kind} }

// String is r as the record writes it: the id in hex, "/", the kind's
// OTLP number ("00f067aa0ba902b7/2").
func (r spanRef) String() string {
	return hex.EncodeToString(r.id[:]) + "/" + strconv.Itoa(int(r.kind))
}

// parseSpanRef reads what String wrote.
func parseSpanRef(s string) (spanRef, error) {
	var r spanRef
	id, kind, ok := strings.Cut(s, "/")
	if !ok || hex.DecodedLen(len(id)) != len(r.id) {
		return r, errors.New("want a span id of 16 hex digits, /, and a kind")
	}
	if _, err := hex.Decode(r.id[:], []byte(id)); err != nil {
		return r, err
	}
	k, err := strconv.ParseUint(kind, 10, 8)
	if err != nil || strconv.FormatUint(k, 10) != kind {
		return r, fmt.Errorf("kind %q: want a number of 0 to 255", kind)
	}
	r.kind = telemetry.SpanKind(k)
	return r, nil
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
