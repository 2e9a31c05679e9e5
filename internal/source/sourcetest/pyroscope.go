// Package sourcetest holds spec-faithful test servers for the sources:
// a Pyroscope querier built on the Connect handler interface of
// Pyroscope's own API module, serving real pprof profiles, and Tempo's
// search and trace-by-id endpoints, serving traces built with pdata in
// Tempo's documented shapes.
package sourcetest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/prometheus/common/model"
)

// CPUType and SamplesType are the profile type IDs the Pyroscope server
// holds: Pyroscope makes one of each sample type of a pushed profile.
const (
	CPUType     = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
	SamplesType = "process_cpu:samples:count:cpu:nanoseconds"
)

// mergedPeriod is the period Pyroscope gives every merged process_cpu
// profile, whatever the profiles' own (SetProfileMetadata in its
// pkg/pprof guesses it from the profile type's name).
const mergedPeriod = 1_000_000_000

// Pyroscope is a querier.v1.QuerierService over a fixed set of pprof
// profiles. Like Pyroscope it keeps span_name as a series label (queried
// with label selectors and LabelValues), merges the samples of a
// service's profiles in the window by stack without their labels, and
// filters by span_selector on the span_id labels. As Pyroscope (checked
// against v2.2.1 and main of 2026-08-21) a merged profile holds the
// requested sample type alone, its time is the end of the query and it
// has no duration, and its period is one second whatever the profiles'.
type Pyroscope struct {
	querierv1connect.UnimplementedQuerierServiceHandler
	mu       sync.Mutex
	profiles map[string][]*googlev1.Profile
	// Legacy makes the server act as one that predates the pprof format
	// of SelectMergeStacktraces: it answers with a flame graph.
	Legacy bool
	// MultiTenant makes the server refuse requests without an
	// X-Scope-OrgID as Pyroscope does with multitenancy_enabled: code
	// unauthenticated, "no org id".
	MultiTenant bool
	// MaxQueryLength, when set, makes the server refuse a query over a
	// longer window as Pyroscope's query frontend does with its
	// max_query_length: code invalid_argument, "the query time range
	// exceeds the limit (max_query_length, actual: 48h0m0s, limit: 1d)".
	MaxQueryLength time.Duration
}

// NewPyroscope returns a server holding the pprof profiles (gzipped or
// not) of each service.
func NewPyroscope(profiles map[string][][]byte) (*Pyroscope, error) {
	p := &Pyroscope{profiles: map[string][]*googlev1.Profile{}}
	for svc, list := range profiles {
		for _, raw := range list {
			if err := p.Add(svc, raw); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

// Add stores one more pprof profile (gzipped or not) of service.
func (p *Pyroscope) Add(service string, raw []byte) error { return p.AddAt(service, raw, time.Time{}) }

// AddAt stores a pprof profile (gzipped or not) of service as taken at
// at; the zero time keeps the profile's own.
func (p *Pyroscope) AddAt(service string, raw []byte, at time.Time) error {
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("gunzip profile of %s: %w", service, err)
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return fmt.Errorf("gunzip profile of %s: %w", service, err)
		}
	}
	prof := &googlev1.Profile{}
	if err := prof.UnmarshalVT(raw); err != nil {
		return fmt.Errorf("decode profile of %s: %w", service, err)
	}
	if !at.IsZero() {
		prof.TimeNanos = at.UnixNano()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.profiles[service] = append(p.profiles[service], prof)
	return nil
}

// Handler returns the path prefix and handler to mount.
func (p *Pyroscope) Handler(opts ...connect.HandlerOption) (string, http.Handler) {
	tenant := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if p.MultiTenant && req.Header().Get("X-Scope-OrgID") == "" {
				return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("no org id"))
			}
			if r, ok := req.Any().(timeRange); ok && p.MaxQueryLength > 0 {
				if d := time.Duration(r.GetEnd()-r.GetStart()) * time.Millisecond; d > p.MaxQueryLength {
					return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("the query time range exceeds the limit (max_query_length, actual: %s, limit: %s)", d, model.Duration(p.MaxQueryLength)))
				}
			}
			return next(ctx, req)
		}
	})
	return querierv1connect.NewQuerierServiceHandler(p, append(opts, connect.WithInterceptors(tenant))...)
}

// timeRange is a request over a window: every query of the API.
type timeRange interface {
	GetStart() int64
	GetEnd() int64
}

// ProfileTypes implements the RPC: the types of the profiles held in
// the window, one per sample type, named as Pyroscope names those of
// pprof pushed with __name__ process_cpu (a profile of period type cpu)
// or memory (any other).
func (p *Pyroscope) ProfileTypes(_ context.Context, req *connect.Request[querierv1.ProfileTypesRequest]) (*connect.Response[querierv1.ProfileTypesResponse], error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	byID := map[string]*typesv1.ProfileType{}
	for _, list := range p.profiles {
		for _, pr := range list {
			if !inWindow(pr, req.Msg.GetStart(), req.Msg.GetEnd()) {
				continue
			}
			str := func(i int64) string { return pr.StringTable[i] }
			name := "memory"
			if str(pr.GetPeriodType().GetType()) == "cpu" {
				name = "process_cpu"
			}
			for _, st := range pr.SampleType {
				t := &typesv1.ProfileType{Name: name, SampleType: str(st.Type), SampleUnit: str(st.Unit),
					PeriodType: str(pr.GetPeriodType().GetType()), PeriodUnit: str(pr.GetPeriodType().GetUnit())}
				t.ID = strings.Join([]string{t.Name, t.SampleType, t.SampleUnit, t.PeriodType, t.PeriodUnit}, ":")
				byID[t.ID] = t
			}
		}
	}
	resp := &querierv1.ProfileTypesResponse{}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		resp.ProfileTypes = append(resp.ProfileTypes, byID[id])
	}
	return connect.NewResponse(resp), nil
}

// LabelValues implements the RPC for service_name.
func (p *Pyroscope) LabelValues(_ context.Context, req *connect.Request[typesv1.LabelValuesRequest]) (*connect.Response[typesv1.LabelValuesResponse], error) {
	var names []string
	m := req.Msg
	p.mu.Lock()
	switch m.GetName() {
	case "service_name":
		for svc, list := range p.profiles {
			if slices.ContainsFunc(list, func(pr *googlev1.Profile) bool { return inWindow(pr, m.GetStart(), m.GetEnd()) }) {
				names = append(names, svc)
			}
		}
	case "span_name":
		for _, sel := range m.GetMatchers() {
			mt := selectorRE.FindStringSubmatch(sel)
			if mt == nil {
				p.mu.Unlock()
				return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("unsupported matcher %q", sel))
			}
			for _, pr := range p.profiles[mt[1]] {
				if !inWindow(pr, m.GetStart(), m.GetEnd()) {
					continue
				}
				for _, s := range pr.Sample {
					if n := label(pr, s, "span_name"); n != "" {
						names = append(names, n)
					}
				}
			}
		}
	}
	p.mu.Unlock()
	slices.Sort(names)
	names = slices.Compact(names)
	return connect.NewResponse(&typesv1.LabelValuesResponse{Names: names}), nil
}

var selectorRE = regexp.MustCompile(`^\{service_name="([^"]*)"(?:,span_name=("(?:[^"\\]|\\.)*"))?\}$`)

// SelectMergeStacktraces implements the RPC for the pprof format.
func (p *Pyroscope) SelectMergeStacktraces(_ context.Context, req *connect.Request[querierv1.SelectMergeStacktracesRequest]) (*connect.Response[querierv1.SelectMergeStacktracesResponse], error) {
	m := req.Msg
	if p.Legacy || m.GetFormat() != querierv1.ProfileFormat_PROFILE_FORMAT_PPROF {
		return connect.NewResponse(&querierv1.SelectMergeStacktracesResponse{Flamegraph: &querierv1.FlameGraph{}}), nil
	}
	prof, err := p.merge(m.GetProfileTypeID(), m.GetLabelSelector(), m.GetStart(), m.GetEnd(), m.GetSpanSelector())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&querierv1.SelectMergeStacktracesResponse{Pprof: &querierv1.PprofProfile{Profile: prof}}), nil
}

// SelectMergeProfile implements the older RPC.
func (p *Pyroscope) SelectMergeProfile(_ context.Context, req *connect.Request[querierv1.SelectMergeProfileRequest]) (*connect.Response[googlev1.Profile], error) {
	m := req.Msg
	prof, err := p.merge(m.GetProfileTypeID(), m.GetLabelSelector(), m.GetStart(), m.GetEnd(), nil)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(prof), nil
}

// SelectSeries implements the RPC as Pyroscope does: the sum of the
// selected values of the profiles of each step, a point at the end of
// its step, the steps starting one step before the window (so that the
// first point may count profiles from before it).
func (p *Pyroscope) SelectSeries(_ context.Context, req *connect.Request[querierv1.SelectSeriesRequest]) (*connect.Response[querierv1.SelectSeriesResponse], error) {
	m := req.Msg
	stepMs := int64(m.GetStep() * 1000)
	if stepMs <= 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("step %v: want a positive step", m.GetStep()))
	}
	start := m.GetStart() - stepMs
	prof, err := p.merge(m.GetProfileTypeID(), m.GetLabelSelector(), start, m.GetEnd(), nil)
	if err != nil {
		return nil, err
	}
	if len(prof.Sample) == 0 {
		return connect.NewResponse(&querierv1.SelectSeriesResponse{}), nil
	}
	mt := selectorRE.FindStringSubmatch(m.GetLabelSelector())
	points := map[int64]float64{}
	p.mu.Lock()
	for _, pr := range p.profiles[mt[1]] {
		if !inWindow(pr, start, m.GetEnd()) {
			continue
		}
		vi := slices.IndexFunc(pr.SampleType, func(vt *googlev1.ValueType) bool {
			return pr.StringTable[vt.Type] == pr.StringTable[prof.SampleType[0].Type]
		})
		ts := pr.GetTimeNanos() / 1e6
		if ts == 0 {
			ts = m.GetStart()
		}
		ts = start + (ts-start+stepMs-1)/stepMs*stepMs
		for _, s := range pr.Sample {
			points[ts] += float64(s.Value[vi])
		}
	}
	p.mu.Unlock()
	series := &typesv1.Series{}
	for _, ts := range slices.Sorted(maps.Keys(points)) {
		series.Points = append(series.Points, &typesv1.Point{Timestamp: ts, Value: points[ts]})
	}
	return connect.NewResponse(&querierv1.SelectSeriesResponse{Series: []*typesv1.Series{series}}), nil
}

// inWindow selects a profile as Pyroscope does: by its time in
// nanoseconds, between start and end in milliseconds, both included.
func inWindow(pr *googlev1.Profile, startMs, endMs int64) bool {
	t := pr.GetTimeNanos()
	return t == 0 || (t >= startMs*1e6 && t <= endMs*1e6)
}

// merge sums the samples of a service's profiles in the window by stack.
// The profiles of one service are assumed to share their tables when
// there are several (they are copies of one recording in the tests);
// otherwise only the first one's tables are kept.
func (p *Pyroscope) merge(typ, sel string, startMs, endMs int64, spans []string) (*googlev1.Profile, error) {
	var sampleType string
	switch typ {
	case CPUType:
		sampleType = "cpu"
	case SamplesType:
		sampleType = "samples"
	default:
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("unknown profile type %q", typ))
	}
	mt := selectorRE.FindStringSubmatch(sel)
	if mt == nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("unsupported label selector %q", sel))
	}
	spanName := ""
	if mt[2] != "" {
		spanName, _ = strconv.Unquote(mt[2])
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var out *googlev1.Profile
	index := map[string]*googlev1.Sample{}
	for _, pr := range p.profiles[mt[1]] {
		if !inWindow(pr, startMs, endMs) {
			continue
		}
		vi := slices.IndexFunc(pr.SampleType, func(vt *googlev1.ValueType) bool { return pr.StringTable[vt.Type] == sampleType })
		if vi < 0 {
			continue
		}
		if out == nil {
			out = &googlev1.Profile{
				SampleType: pr.SampleType[vi : vi+1], Mapping: pr.Mapping, Location: pr.Location, Function: pr.Function,
				StringTable: pr.StringTable, TimeNanos: endMs * 1e6, PeriodType: pr.PeriodType, Period: mergedPeriod,
			}
		}
		for _, s := range pr.Sample {
			if len(spans) > 0 && !slices.Contains(spans, strings.ToLower(spanLabel(pr, s))) {
				continue
			}
			if spanName != "" && label(pr, s, "span_name") != spanName {
				continue
			}
			key := fmt.Sprint(s.LocationId)
			if m, ok := index[key]; ok {
				m.Value[0] += s.Value[vi]
				continue
			}
			m := &googlev1.Sample{LocationId: s.LocationId, Value: []int64{s.Value[vi]}}
			index[key] = m
			out.Sample = append(out.Sample, m)
		}
	}
	if out == nil {
		// Pyroscope answers an empty merge with an empty message (not
		// even a string table).
		return &googlev1.Profile{}, nil
	}
	return out, nil
}

// spanLabel returns the span_id (or older profile_id) label of a sample.
func spanLabel(pr *googlev1.Profile, s *googlev1.Sample) string {
	if id := label(pr, s, "span_id"); id != "" {
		return id
	}
	return label(pr, s, "profile_id")
}

// label returns the value of a sample's string label.
func label(pr *googlev1.Profile, s *googlev1.Sample, key string) string {
	for _, l := range s.Label {
		if pr.StringTable[l.Key] == key {
			return pr.StringTable[l.Str]
		}
	}
	return ""
}
