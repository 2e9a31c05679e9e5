package sourcetest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

// Tempo serves Tempo's query endpoints over traces held in memory:
// GET /api/v2/search/tag/resource.service.name/values, GET /api/search
// with the TraceQL queries the source sends
// ({ resource.service.name = "x" && kind = server [&& name = "n"]
// [&& name != "m" …] } [| select(name)]), and
// GET /api/v2/traces/<id> as protobuf (tempopb.TraceByIDResponse, what
// Tempo answers to Accept: application/protobuf; its JSON is not served).
// Shapes follow Tempo's docs/sources/tempo/api_docs and pkg/tempopb (as of
// v3.0.3): search trace ids are hex without leading zeros (Tempo pads them
// only with the per-tenant left_pad_trace_ids), span ids 16 hex digits,
// startTimeUnixNano and durationNanos strings (uint64 in proto3 JSON).
type Tempo struct {
	// MaxBytesPerTrace, when positive, is Tempo's max_bytes_per_trace: a
	// larger trace is answered in part, with status PARTIAL. Set it
	// before serving.
	MaxBytesPerTrace int
	// OrgID, when set, makes the server multi-tenant (multitenancy_enabled)
	// with its traces held for this tenant: a request without
	// X-Scope-OrgID is answered 401 "no org id", as Tempo does, and another
	// tenant sees no traces. Set it before serving.
	OrgID string
	// MaxDuration, when positive, is the search's max_duration (a week
	// by default): a search or tag values query over a longer window is
	// answered 400 "range specified by start and end exceeds …", as
	// Tempo's query frontend does. Set it before serving.
	MaxDuration time.Duration

	mu     sync.Mutex
	traces map[string]*storedTrace // by hex trace id, 32 digits
}

// storedTrace is one trace as OTLP protobuf, with the fields search
// filters on.
type storedTrace struct {
	raw   []byte
	spans []spanRef
}

// NewTempo returns an empty server.
func NewTempo() *Tempo { return &Tempo{traces: map[string]*storedTrace{}} }

// Add stores the spans of td, grouped by trace id.
func (t *Tempo) Add(td ptrace.Traces) {
	byID := map[string]ptrace.Traces{}
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				id := sp.TraceID().String()
				tr, ok := byID[id]
				if !ok {
					tr = ptrace.NewTraces()
					byID[id] = tr
				}
				nrs := tr.ResourceSpans().AppendEmpty()
				rs.Resource().CopyTo(nrs.Resource())
				nss := nrs.ScopeSpans().AppendEmpty()
				ss.Scope().CopyTo(nss.Scope())
				sp.CopyTo(nss.Spans().AppendEmpty())
			}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, tr := range byID {
		if old, ok := t.traces[id]; ok {
			// Spans of a trace that came in several batches.
			prev, _ := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(old.raw)
			prev.ResourceSpans().MoveAndAppendTo(tr.ResourceSpans())
		}
		raw, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(tr)
		t.traces[id] = &storedTrace{raw: raw, spans: spanRefs(tr)}
	}
}

// Len returns the number of traces held.
func (t *Tempo) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.traces)
}

// Handler returns the HTTP handler of the endpoints.
func (t *Tempo) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v2/search/tag/resource.service.name/values", t.serviceNames)
	mux.HandleFunc("GET /api/search", t.search)
	mux.HandleFunc("GET /api/v2/traces/{id}", t.trace)
	if t.OrgID == "" {
		return mux
	}
	other := NewTempo().Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("X-Scope-OrgID") {
		case "":
			http.Error(w, "no org id", http.StatusUnauthorized)
		case t.OrgID:
			mux.ServeHTTP(w, r)
		default:
			other.ServeHTTP(w, r)
		}
	})
}

// window reads a query's start and end, in seconds, and holds them to
// MaxDuration.
func (t *Tempo) window(r *http.Request) (startNs, endNs int64, err error) {
	start, err1 := strconv.ParseInt(r.FormValue("start"), 10, 64)
	end, err2 := strconv.ParseInt(r.FormValue("end"), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("invalid start or end")
	}
	if t.MaxDuration > 0 && time.Duration(end-start)*time.Second > t.MaxDuration {
		return 0, 0, fmt.Errorf("range specified by start and end exceeds %s. received start=%d end=%d", t.MaxDuration, start, end)
	}
	return start * 1e9, end * 1e9, nil
}

// spanRef is what search filters on and returns of a span.
type spanRef struct {
	service, kind, name, id string
	start, end              int64
	root                    bool
}

func spanRefs(td ptrace.Traces) []spanRef {
	var out []spanRef
	for _, rs := range td.ResourceSpans().All() {
		svc, _ := rs.Resource().Attributes().Get("service.name")
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				out = append(out, spanRef{
					service: svc.AsString(), kind: strings.ToLower(sp.Kind().String()), name: sp.Name(), id: sp.SpanID().String(),
					start: int64(sp.StartTimestamp()), end: int64(sp.EndTimestamp()), root: sp.ParentSpanID().IsEmpty(),
				})
			}
		}
	}
	return out
}

// in reports whether s overlaps the window: Tempo answers from the
// blocks whose time range overlaps it, and a block's range takes in its
// spans' starts and ends.
func (s spanRef) in(startNs, endNs int64) bool { return s.start <= endNs && s.end >= startNs }

func (t *Tempo) serviceNames(w http.ResponseWriter, r *http.Request) {
	startNs, endNs, err := t.window(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	t.mu.Lock()
	seen := map[string]bool{}
	for _, tr := range t.traces {
		for _, s := range tr.spans {
			if s.in(startNs, endNs) {
				seen[s.service] = true
			}
		}
	}
	t.mu.Unlock()
	type value struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	resp := struct {
		TagValues []value        `json:"tagValues"`
		Metrics   map[string]any `json:"metrics"`
	}{TagValues: []value{}, Metrics: map[string]any{}}
	for _, s := range slices.Sorted(maps.Keys(seen)) {
		resp.TagValues = append(resp.TagValues, value{"string", s})
	}
	writeJSON(w, resp)
}

var filterRE = regexp.MustCompile(`^\{ resource\.service\.name = ("(?:[^"\\]|\\.)*") && kind = (server|client|producer|consumer|internal)(?: && name = ("(?:[^"\\]|\\.)*"))?((?: && name != "(?:[^"\\]|\\.)*")*) \}( \| select\(name\))?$`)

// notNameRE is one condition name != "…" of a query filterRE matched.
var notNameRE = regexp.MustCompile(` && name != ("(?:[^"\\]|\\.)*")`)

// searchSpan, searchSpanSet and searchTrace are tempopb's search messages
// as Tempo marshals them to JSON. A span carries its name only when the
// query filters on it or selects it (| select(name)), and the attributes
// the query's conditions name, as Tempo (checked against a live Tempo
// 3.1.0-dev) answers.
type searchSpan struct {
	SpanID            string           `json:"spanID"`
	Name              string           `json:"name,omitempty"`
	StartTimeUnixNano string           `json:"startTimeUnixNano"`
	DurationNanos     string           `json:"durationNanos"`
	Attributes        []searchKeyValue `json:"attributes"`
}

// searchKeyValue is an attribute of a search span, as OTLP JSON.
type searchKeyValue struct {
	Key   string `json:"key"`
	Value struct {
		StringValue string `json:"stringValue"`
	} `json:"value"`
}

func stringAttr(k, v string) searchKeyValue {
	kv := searchKeyValue{Key: k}
	kv.Value.StringValue = v
	return kv
}

type searchSpanSet struct {
	Spans   []searchSpan `json:"spans"`
	Matched int          `json:"matched"`
}

type searchTrace struct {
	TraceID           string          `json:"traceID"`
	RootServiceName   string          `json:"rootServiceName,omitempty"`
	RootTraceName     string          `json:"rootTraceName,omitempty"`
	StartTimeUnixNano string          `json:"startTimeUnixNano"`
	DurationMs        int64           `json:"durationMs,omitempty"`
	SpanSet           *searchSpanSet  `json:"spanSet,omitempty"`
	SpanSets          []searchSpanSet `json:"spanSets"`
}

func (t *Tempo) search(w http.ResponseWriter, r *http.Request) {
	startNs, endNs, err := t.window(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m := filterRE.FindStringSubmatch(r.FormValue("q"))
	if m == nil {
		http.Error(w, fmt.Sprintf("invalid TraceQL query: unsupported by the test server: %q", r.FormValue("q")), http.StatusBadRequest)
		return
	}
	svc, _ := strconv.Unquote(m[1])
	name := ""
	if m[3] != "" {
		name, _ = strconv.Unquote(m[3])
	}
	notNames := map[string]bool{}
	for _, nm := range notNameRE.FindAllStringSubmatch(m[4], -1) {
		n, _ := strconv.Unquote(nm[1])
		notNames[n] = true
	}
	withName := m[3] != "" || m[4] != "" || m[5] != ""
	limit, err := strconv.Atoi(r.FormValue("limit"))
	if err != nil {
		limit = 20
	}
	spss, err := strconv.Atoi(r.FormValue("spss"))
	if err != nil {
		spss = 3
	}
	t.mu.Lock()
	var out []searchTrace
	for id, tr := range t.traces {
		var set searchSpanSet
		var first, last int64
		root := spanRef{}
		for _, s := range tr.spans {
			st, en := s.start, s.end
			if first == 0 || st < first {
				first = st
			}
			last = max(last, en)
			if s.root {
				root = s
			}
			if s.service != svc || s.kind != m[2] || (name != "" && s.name != name) || notNames[s.name] {
				continue
			}
			set.Matched++
			if len(set.Spans) < spss {
				sp := searchSpan{
					SpanID:            s.id,
					StartTimeUnixNano: strconv.FormatInt(st, 10), DurationNanos: strconv.FormatInt(en-st, 10),
					Attributes: []searchKeyValue{stringAttr("service.name", s.service), stringAttr("kind", s.kind)},
				}
				if withName {
					sp.Name = s.name
				}
				set.Spans = append(set.Spans, sp)
			}
		}
		// Tempo returns the traces whose time range overlaps the
		// window's whole seconds, whatever the time of the matching spans.
		if set.Matched == 0 || first > endNs || last < startNs {
			continue
		}
		out = append(out, searchTrace{
			TraceID: strings.TrimLeft(id, "0"), RootServiceName: root.service, RootTraceName: root.name,
			StartTimeUnixNano: strconv.FormatInt(first, 10), DurationMs: (last - first) / 1e6,
			SpanSet: &set, SpanSets: []searchSpanSet{set},
		})
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b searchTrace) int {
		as, _ := strconv.ParseInt(a.StartTimeUnixNano, 10, 64)
		bs, _ := strconv.ParseInt(b.StartTimeUnixNano, 10, 64)
		if as != bs {
			return cmp.Compare(bs, as)
		}
		return strings.Compare(a.TraceID, b.TraceID)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	if out == nil {
		out = []searchTrace{}
	}
	writeJSON(w, map[string]any{"traces": out, "metrics": map[string]any{"inspectedTraces": len(t.traces)}})
}

func (t *Tempo) trace(w http.ResponseWriter, r *http.Request) {
	// Tempo reads the id as hex of up to 32 digits, left-padded with
	// zeros (util.HexStringToTraceID).
	id := strings.ToLower(r.PathValue("id"))
	if len(id) < 32 {
		id = strings.Repeat("0", 32-len(id)) + id
	}
	t.mu.Lock()
	tr, ok := t.traces[id]
	t.mu.Unlock()
	if !ok {
		http.Error(w, "trace not found", http.StatusNotFound)
		return
	}
	if !strings.Contains(r.Header.Get("Accept"), "application/protobuf") {
		http.Error(w, "the test server answers traces as protobuf only (Accept: application/protobuf)", http.StatusBadRequest)
		return
	}
	raw, partial := tr.raw, false
	if limit := t.MaxBytesPerTrace; limit > 0 && len(raw) > limit {
		raw, partial = truncate(raw, limit), true
	}
	// TraceByIDResponse{Trace trace = 1; TraceByIDMetrics metrics = 2;
	// PartialStatus status = 3; string message = 4}; tempopb.Trace has
	// its resource spans at field 1, as OTLP's TracesData.
	body := protowire.AppendTag(nil, 1, protowire.BytesType)
	body = protowire.AppendBytes(body, raw)
	if partial {
		body = protowire.AppendTag(body, 3, protowire.VarintType)
		body = protowire.AppendVarint(body, 1)
		body = protowire.AppendTag(body, 4, protowire.BytesType)
		body = protowire.AppendString(body, fmt.Sprintf("Trace exceeds maximum size of %d bytes, a partial trace is returned", t.MaxBytesPerTrace))
	}
	w.Header().Set("Content-Type", "application/protobuf")
	w.Write(body)
}

// truncate keeps the resource spans of a trace, in order, that fit in
// limit bytes, as Tempo's trace combiner stops adding to a trace at its
// size limit.
func truncate(raw []byte, limit int) []byte {
	td, _ := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(raw)
	out := ptrace.NewTraces()
	size := 0
	for _, rs := range td.ResourceSpans().All() {
		one := ptrace.NewTraces()
		rs.CopyTo(one.ResourceSpans().AppendEmpty())
		n := (&ptrace.ProtoMarshaler{}).TracesSize(one)
		if size+n > limit {
			break
		}
		size += n
		rs.CopyTo(out.ResourceSpans().AppendEmpty())
	}
	b, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(out)
	return b
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
