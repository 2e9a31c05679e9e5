package source

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/evidentsec/evident/internal/telemetry"
)

// tempoVersion is what the Tempo source needs of the server.
const tempoVersion = "a Tempo with TraceQL search (/api/search?q=) and /api/v2/traces (checked against Tempo v3.0.3)"

// TempoConfig configures a Tempo source and its sampling.
type TempoConfig struct {
	HTTPConfig
	// TraceBudget bounds the traces fetched per window, over all services.
	TraceBudget int
	// PerGroup bounds the trace ids searched per service and span kind,
	// and per endpoint or edge.
	PerGroup int
	// SpansPerSpanSet is Tempo's spss: the matching spans a search
	// returns per trace, which name the endpoints and edges.
	SpansPerSpanSet int
}

// DefaultTempoConfig returns the defaults: 5000 traces per window, 100
// per endpoint or edge.
func DefaultTempoConfig() TempoConfig {
	return TempoConfig{HTTPConfig: DefaultHTTPConfig(), TraceBudget: 5000, PerGroup: 100, SpansPerSpanSet: 100}
}

// Validate reports a bad configuration.
func (c TempoConfig) Validate() error {
	if c.TraceBudget <= 0 || c.PerGroup <= 0 || c.SpansPerSpanSet <= 0 {
		return errors.New("trace budget, per-group limit and spans per span set must be positive")
	}
	return c.HTTPConfig.Validate()
}

// Tempo reads traces through Tempo's HTTP API. It is not safe for
// concurrent use.
type Tempo struct {
	cfg TempoConfig
	c   *client
}

// NewTempo returns a source for the Tempo at cfg.URL. logger gets what its
// TLS client says (a client certificate that has expired or was not
// reloaded); nil discards it.
func NewTempo(cfg TempoConfig, logger *slog.Logger) (*Tempo, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("tempo source: %w", err)
	}
	c, err := newClient("tempo", cfg.HTTPConfig, logger)
	if err != nil {
		return nil, err
	}
	c.api = "Tempo's HTTP API"
	return &Tempo{cfg: cfg, c: c}, nil
}

// Stats returns the requests made and bytes read so far.
func (t *Tempo) Stats() Stats { return t.c.stats }

// OrgID returns the tenant the source reads (Auth.OrgID, sent as
// X-Scope-OrgID), "" for none.
func (t *Tempo) OrgID() string { return t.cfg.Auth.OrgID }

// searchResponse is the part of Tempo's /api/search answer evident reads
// (tempopb.SearchResponse as JSON).
type searchResponse struct {
	Traces []struct {
		TraceID           string          `json:"traceID"`
		RootServiceName   string          `json:"rootServiceName"`
		StartTimeUnixNano string          `json:"startTimeUnixNano"`
		SpanSets          []searchSpanSet `json:"spanSets"`
		SpanSet           *searchSpanSet  `json:"spanSet"`
	} `json:"traces"`
}

// searchSpanSet is the spans of a trace a search matched, at most spss
// of them, and how many matched.
type searchSpanSet struct {
	Spans   []searchSpan `json:"spans"`
	Matched int          `json:"matched"`
}

// searchSpan is a span a search matched.
type searchSpan struct {
	SpanID            string `json:"spanID"`
	Name              string `json:"name"`
	StartTimeUnixNano string `json:"startTimeUnixNano"`
	DurationNanos     string `json:"durationNanos"`
}

// end returns the time sp ended, Unix nanoseconds, and whether Tempo
// said it.
func (sp searchSpan) end() (int64, bool) {
	start, err1 := strconv.ParseInt(sp.StartTimeUnixNano, 10, 64)
	d, err2 := strconv.ParseInt(sp.DurationNanos, 10, 64)
	return start + max(d, 0), err1 == nil && err2 == nil
}

// tagValuesResponse is /api/v2/search/tag/<tag>/values.
type tagValuesResponse struct {
	TagValues []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"tagValues"`
}

// Services returns the resource service.name values of the window, sorted.
func (t *Tempo) Services(ctx context.Context, w Window) ([]string, error) {
	q := url.Values{"start": {unixSec(w.From)}, "end": {endSec(w)}}
	body, _, err := t.c.get(ctx, "/api/v2/search/tag/resource.service.name/values?"+q.Encode(), "application/json", tempoVersion)
	if err != nil {
		return nil, err
	}
	var r tagValuesResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("tempo: decode tag values: %w", err)
	}
	var out []string
	for _, v := range r.TagValues {
		out = append(out, v.Value)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// traceRef is one trace a search found.
type traceRef struct {
	id    string
	start int64
}

// search runs one TraceQL search and returns the traces newest first,
// the names of the spans that matched, and whether Tempo returned limit
// traces (so that it may have found more).
func (t *Tempo) search(ctx context.Context, traceql string, w Window, limit int) ([]traceRef, []string, bool, error) {
	q := url.Values{"q": {traceql}, "start": {unixSec(w.From)}, "end": {endSec(w)},
		"limit": {strconv.Itoa(limit)}, "spss": {strconv.Itoa(t.cfg.SpansPerSpanSet)}}
	body, _, err := t.c.get(ctx, "/api/search?"+q.Encode(), "application/json", tempoVersion)
	if err != nil {
		return nil, nil, false, err
	}
	var r searchResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, nil, false, fmt.Errorf("tempo: decode search %s: %w", traceql, err)
	}
	var refs []traceRef
	var names []string
	for _, tr := range r.Traces {
		sets := tr.SpanSets
		if tr.SpanSet != nil && len(sets) == 0 {
			sets = append(sets, *tr.SpanSet)
		}
		// Tempo finds the traces that overlap the window, in whole
		// seconds, and a pull hands on only the spans that end in the
		// window (Pull.traces), so that consecutive windows (serve) read
		// each span once. A trace is kept when a span it matched ends in
		// the window, or may (one not listed, over spss; a server that
		// lists none), so that a trace that started in an earlier window
		// (a message consumed minutes after it was produced, a request
		// that lasted minutes) is read for the spans Tempo did not hold
		// then.
		newest, err := strconv.ParseInt(tr.StartTimeUnixNano, 10, 64)
		in := err != nil || len(sets) == 0
		for _, ss := range sets {
			for _, sp := range ss.Spans {
				end, ok := sp.end()
				if !ok || w.holds(end) {
					in = true
					newest = max(newest, end)
					names = append(names, sp.Name)
				}
			}
			in = in || ss.Matched > len(ss.Spans)
		}
		if in {
			refs = append(refs, traceRef{tr.TraceID, newest})
		}
	}
	slices.SortStableFunc(refs, func(a, b traceRef) int { return -cmpInt(a.start, b.start) })
	slices.Sort(names)
	return refs, slices.Compact(names), len(r.Traces) >= limit, nil
}

// maxNameSearches bounds the searches for the span names a full search
// did not show, per service, span kind and part of the window: span
// names that are not templated (a URL path with its ids) are endless.
// maxNameQuery bounds the TraceQL of one, which names every name seen:
// a proxy in front of Tempo refuses a longer URL (nginx: 8 KiB a
// request line), which would fail the window at every poll.
const (
	maxNameSearches = 16
	maxNameQuery    = 3000
)

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Sample picks the traces of a window to fetch, bounded by the trace
// budget, so that every service, every SERVER endpoint and every
// CLIENT/PRODUCER/CONSUMER edge is covered: per service and span kind one
// search names the spans (select(name)), and while a search returns as
// many traces as it may, one more names those of the other names; per
// span name one search finds its newest traces (PerGroup each); the
// groups are then drawn from in turn, newest first, until the budget is
// spent. The window is given in
// parts, in time order (windowParts), with the services of each: they
// are searched newest first, and a group takes the traces of older parts
// only while it has fewer than PerGroup. It returns the trace ids, hex.
func (t *Tempo) Sample(ctx context.Context, services []string, parts []Window, have [][]string) ([]string, error) {
	type key struct{ service, kind, name string }
	var order []key
	groups := map[key][]traceRef{}
	add := func(k key, refs []traceRef) {
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		g := append(groups[k], refs...)
		groups[k] = g[:min(len(g), t.cfg.PerGroup)]
	}
	for i := len(parts) - 1; i >= 0; i-- {
		for _, svc := range services {
			if !slices.Contains(have[i], svc) {
				continue
			}
			for _, kind := range []string{"server", "client", "producer", "consumer"} {
				base := fmt.Sprintf("resource.service.name = %s && kind = %s", strconv.Quote(svc), kind)
				// Tempo returns of a matching span only its id, times and
				// the attributes the query names: select(name) adds the
				// name.
				refs, names, full, err := t.search(ctx, "{ "+base+" } | select(name)", parts[i], t.cfg.PerGroup)
				if err != nil {
					return nil, fmt.Errorf("service %s: %w", svc, err)
				}
				// A full search may hold the traces of the busy spans
				// alone: the others are searched for, by the names not
				// yet seen, until a search is not full. The query grows
				// by the names each search adds, not built again.
				var q strings.Builder
				q.WriteString("{ " + base)
				exclude := func(names []string) {
					for _, name := range names {
						q.WriteString(" && name != ")
						q.WriteString(strconv.Quote(name))
					}
				}
				exclude(names)
				for n := 0; full && len(names) > 0 && n < maxNameSearches && q.Len()-2 <= maxNameQuery; n++ {
					var more []string
					if _, more, full, err = t.search(ctx, q.String()+" } | select(name)", parts[i], t.cfg.PerGroup); err != nil {
						return nil, fmt.Errorf("service %s: %w", svc, err)
					}
					more = slices.DeleteFunc(more, func(name string) bool { _, found := slices.BinarySearch(names, name); return found })
					if len(more) == 0 {
						break
					}
					exclude(more)
					names = slices.Sorted(slices.Values(slices.Concat(names, more)))
				}
				if len(names) <= 1 {
					add(key{svc, kind, strings.Join(names, "")}, refs)
					continue
				}
				for _, n := range names {
					k := key{svc, kind, n}
					left := t.cfg.PerGroup - len(groups[k])
					if left <= 0 {
						continue
					}
					refs, _, _, err := t.search(ctx, fmt.Sprintf("{ %s && name = %s }", base, strconv.Quote(n)), parts[i], left)
					if err != nil {
						return nil, fmt.Errorf("service %s span %q: %w", svc, n, err)
					}
					add(k, refs)
				}
			}
		}
	}
	seen := map[string]bool{}
	var out []string
	for i := 0; len(out) < t.cfg.TraceBudget; i++ {
		more := false
		for _, k := range order {
			g := groups[k]
			if i >= len(g) {
				continue
			}
			more = true
			if id := g[i].id; !seen[id] && len(out) < t.cfg.TraceBudget {
				seen[id] = true
				out = append(out, id)
			}
		}
		if !more {
			break
		}
	}
	return out, nil
}

// Trace fetches one trace and hands its spans to emit. A trace Tempo no
// longer has (404 on an id the search found) is reported as ErrNotFound;
// a trace Tempo returned only in part (over its max_bytes_per_trace, or
// pruned) has its spans emitted and is reported as ErrPartial. Tempo
// answers protobuf when asked (Accept: application/protobuf); its JSON
// wraps the trace and encodes ids in base64, so any other answer is
// refused rather than read as an empty trace.
func (t *Tempo) Trace(ctx context.Context, id string, w Window, emit func([]telemetry.Span) error) error {
	q := url.Values{"start": {unixSec(w.From)}, "end": {endSec(w)}}
	path := "/api/v2/traces/" + url.PathEscape(id) + "?" + q.Encode()
	body, ctype, err := t.c.get(ctx, path, "application/protobuf", tempoVersion)
	if err != nil {
		return err
	}
	if mt, _, _ := strings.Cut(ctype, ";"); strings.TrimSpace(mt) != "application/protobuf" {
		return fmt.Errorf("tempo trace %s: answered %q to Accept: application/protobuf: need %s", id, ctype, tempoVersion)
	}
	r, err := decodeTraceByID(body)
	if err != nil {
		return fmt.Errorf("tempo trace %s: %w", id, err)
	}
	// tempopb.Trace has its resource spans at field 1, as OTLP's
	// TracesData, so it decodes as an export request.
	if err := telemetry.DecodeTraces(bytes.NewReader(r.trace), "tempo trace "+id, emit); err != nil {
		return err
	}
	if r.partial {
		return fmt.Errorf("tempo trace %s: %w: %s", id, ErrPartial, r.message)
	}
	return nil
}

// traceByID is the part of tempopb.TraceByIDResponse evident reads:
// trace = 1 (tempopb.Trace), status = 3 (PartialStatus: COMPLETE = 0,
// PARTIAL = 1), message = 4.
type traceByID struct {
	trace   []byte
	partial bool
	message string
}

func decodeTraceByID(msg []byte) (traceByID, error) {
	var r traceByID
	for len(msg) > 0 {
		num, typ, l := protowire.ConsumeTag(msg)
		if l < 0 {
			return r, fmt.Errorf("%w: malformed response: %w", telemetry.ErrMalformed, protowire.ParseError(l))
		}
		msg = msg[l:]
		l = protowire.ConsumeFieldValue(num, typ, msg)
		if l < 0 {
			return r, fmt.Errorf("%w: malformed response: %w", telemetry.ErrMalformed, protowire.ParseError(l))
		}
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, _ := protowire.ConsumeBytes(msg[:l])
			r.trace = append(r.trace, v...)
		case num == 3 && typ == protowire.VarintType:
			v, _ := protowire.ConsumeVarint(msg[:l])
			r.partial = v == 1
		case num == 4 && typ == protowire.BytesType:
			v, _ := protowire.ConsumeBytes(msg[:l])
			r.message = string(v)
		}
		msg = msg[l:]
	}
	return r, nil
}

// holds reports whether the time ns (Unix nanoseconds) lies in w, its
// start included, its end not.
func (w Window) holds(ns int64) bool {
	return ns >= w.From.UnixNano() && ns < w.To.UnixNano()
}

// spanEnd is the time a span is of a window by: its end, when an SDK
// exports it, so that the lag of a poll covers its export whatever the
// span lasted (its start, when it has no end).
func spanEnd(sp *telemetry.Span) int64 {
	if sp.End.Before(sp.Start) {
		return sp.Start.UnixNano()
	}
	return sp.End.UnixNano()
}

// unixSec is t in Tempo's unit, seconds.
func unixSec(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// endSec is the end of w in seconds, rounded up so that the last second
// of the window is searched.
func endSec(w Window) string {
	end := w.To.Unix()
	if w.To.After(time.Unix(end, 0)) {
		end++
	}
	return strconv.FormatInt(end, 10)
}
