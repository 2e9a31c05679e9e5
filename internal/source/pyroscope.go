package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/evidentsec/evident/internal/telemetry"
)

// pyroscopeVersion is what the Pyroscope source needs of the server.
const pyroscopeVersion = "a Pyroscope with the querier.v1.QuerierService Connect API (checked against github.com/grafana/pyroscope/api v1.6.0)"

// PyroscopeConfig configures a Pyroscope source.
type PyroscopeConfig struct {
	HTTPConfig
	// SpanBatch is how many span ids one span_selector query carries.
	SpanBatch int
}

// DefaultPyroscopeConfig returns the defaults.
func DefaultPyroscopeConfig() PyroscopeConfig {
	return PyroscopeConfig{HTTPConfig: DefaultHTTPConfig(), SpanBatch: 500}
}

// Validate reports a bad configuration.
func (c PyroscopeConfig) Validate() error {
	if c.SpanBatch <= 0 {
		return errors.New("span batch must be positive")
	}
	return c.HTTPConfig.Validate()
}

// Pyroscope reads merged CPU profiles from Pyroscope's query API. It is
// not safe for concurrent use.
type Pyroscope struct {
	cfg     PyroscopeConfig
	c       *client
	querier querierv1connect.QuerierServiceClient
	// legacy is set once the server said it lacks the pprof format of
	// SelectMergeStacktraces: SelectMergeProfile is used from then on.
	legacy bool
}

// NewPyroscope returns a source for the Pyroscope at cfg.URL. logger gets what its
// TLS client says (a client certificate that has expired or was not
// reloaded); nil discards it.
func NewPyroscope(cfg PyroscopeConfig, logger *slog.Logger) (*Pyroscope, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pyroscope source: %w", err)
	}
	c, err := newClient("pyroscope", cfg.HTTPConfig, logger)
	if err != nil {
		return nil, err
	}
	c.api = "Pyroscope's query API"
	hc := &http.Client{Transport: &connectCheck{c: c, next: c.http.Transport}, Timeout: c.http.Timeout, CheckRedirect: c.checkRedirect}
	q := querierv1connect.NewQuerierServiceClient(hc, c.cfg.URL, connect.WithReadMaxBytes(int(cfg.MaxResponseBytes)))
	return &Pyroscope{cfg: cfg, c: c, querier: q}, nil
}

// connectCheck refuses answers that no Connect server gives, so that
// they are reported as ErrNotAPI: Connect itself reads them as code
// unknown ("invalid content-type", "501 Unsupported method"), which
// would say the server is busy. A Connect unary answer is
// application/proto when it succeeds and application/json when it fails
// (501 is Connect's unimplemented, so only a 405 or 501 that is not
// JSON is refused).
type connectCheck struct {
	c    *client
	next http.RoundTripper
}

func (t *connectCheck) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	ctype := resp.Header.Get("Content-Type")
	var answered string
	switch code, mt := resp.StatusCode, mediaType(ctype); {
	case code >= 200 && code < 300 && mt != "application/proto":
		answered = describeType(ctype) + ", not application/proto"
		if mt == "text/html" {
			answered = "an HTML page"
		}
	case (code == http.StatusMethodNotAllowed || code == http.StatusNotImplemented) && mt != "application/json":
		answered = "HTTP " + resp.Status
	default:
		return resp, nil
	}
	resp.Body.Close()
	return nil, t.c.notAPI(r, answered)
}

// Stats returns the requests made and bytes read so far.
func (p *Pyroscope) Stats() Stats { return p.c.stats }

// OrgID returns the tenant the source reads (Auth.OrgID, sent as
// X-Scope-OrgID), "" for none.
func (p *Pyroscope) OrgID() string { return p.cfg.Auth.OrgID }

// Services returns the service_name label values of the window, sorted.
func (p *Pyroscope) Services(ctx context.Context, w Window) ([]string, error) {
	p.c.stats.Requests++
	resp, err := p.querier.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{Name: "service_name", Start: w.startMs(), End: w.endMs()}))
	if err != nil {
		return nil, p.rpcError("LabelValues", err)
	}
	names := slices.Clone(resp.Msg.GetNames())
	slices.Sort(names)
	return names, nil
}

// ProfileType names the profile types a CPU profile is read from.
type ProfileType struct {
	// CPU is the type whose values are CPU time, e.g.
	// process_cpu:cpu:nanoseconds:cpu:nanoseconds.
	CPU string
	// Samples is the type that counts the same samples
	// (process_cpu:samples:count:cpu:nanoseconds), "" when the server
	// has none.
	Samples string
}

// CPUProfileType returns the CPU profile type the server holds in the
// window: process_cpu (Go, Python, Node, .NET, Java through JFR) when
// there, else another type whose sample type is cpu; with the type that
// counts its samples, when the server has it. Without a CPU type it
// returns ErrNoCPUSamples.
func (p *Pyroscope) CPUProfileType(ctx context.Context, w Window) (ProfileType, error) {
	p.c.stats.Requests++
	resp, err := p.querier.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: w.startMs(), End: w.endMs()}))
	if err != nil {
		return ProfileType{}, p.rpcError("ProfileTypes", err)
	}
	types := resp.Msg.GetProfileTypes()
	var ids []string
	var best *typesv1.ProfileType
	for _, t := range types {
		ids = append(ids, t.GetID())
		switch {
		case t.GetName() == "process_cpu" && t.GetSampleType() == "cpu":
			best = t
		case best == nil && t.GetSampleType() == "cpu":
			best = t
		}
	}
	if best == nil {
		return ProfileType{}, fmt.Errorf("%w: no CPU profile type among %q", ErrNoCPUSamples, ids)
	}
	pt := ProfileType{CPU: best.GetID()}
	for _, t := range types {
		if t.GetName() == best.GetName() && t.GetSampleType() == "samples" && t.GetSampleUnit() == "count" &&
			t.GetPeriodType() == best.GetPeriodType() && t.GetPeriodUnit() == best.GetPeriodUnit() {
			pt.Samples = t.GetID()
		}
	}
	return pt, nil
}

// defaultPeriod is the sampling period assumed when the server cannot
// count a service's samples: 100 Hz, the rate of pyroscope-go, of the
// Java, Python and .NET agents and, near enough (97 Hz), of Alloy's eBPF
// profiler.
const defaultPeriod = 10_000_000

// extent returns the sampling period of a service's CPU profile cpu and
// the part of w its samples are from. A merged profile tells neither:
// Pyroscope gives it a period of one second for every process_cpu
// profile, the end of the query as its time and no duration. The period
// is cpu's CPU time over the number of samples of the same merge of the
// samples type; the part is from the series of the samples type, whose
// points are at the end of their step (and whose steps Pyroscope aligns,
// so that they may reach a step before w: the series cannot count the
// samples of w). Without a samples type the period is defaultPeriod and
// the part is w.
func (p *Pyroscope) extent(ctx context.Context, typ ProfileType, sel string, w Window, cpu *telemetry.ProfileBatch) (int64, Window, error) {
	if typ.Samples == "" || cpu.Unit != "nanoseconds" {
		return defaultPeriod, w, nil
	}
	counts, err := p.merge(ctx, typ.Samples, sel, w, nil)
	if err != nil || counts == nil {
		return defaultPeriod, w, err
	}
	var ns, n int64
	for _, s := range cpu.Samples {
		ns += s.Value
	}
	for _, s := range counts.Samples {
		n += s.Value
	}
	if n == 0 || ns < n {
		return defaultPeriod, w, nil
	}
	period := (ns + n/2) / n
	step := max(time.Second, w.To.Sub(w.From)/maxPoints).Truncate(time.Second)
	p.c.stats.Requests++
	resp, err := p.querier.SelectSeries(ctx, connect.NewRequest(&querierv1.SelectSeriesRequest{
		ProfileTypeID: typ.Samples, LabelSelector: sel, Start: w.startMs(), End: w.endMs(), Step: step.Seconds(),
	}))
	if err != nil {
		return 0, w, p.rpcError("SelectSeries", err)
	}
	var first, last int64
	for _, sr := range resp.Msg.GetSeries() {
		for _, pt := range sr.GetPoints() {
			if pt.GetValue() <= 0 {
				continue
			}
			if ts := pt.GetTimestamp(); first == 0 || ts < first {
				first = ts
			}
			last = max(last, pt.GetTimestamp())
		}
	}
	if first == 0 {
		return period, w, nil
	}
	// A point stands for the step that ends at its time.
	part := Window{From: maxTime(time.UnixMilli(first).Add(-step), w.From).UTC(), To: minTime(time.UnixMilli(last), w.To).UTC()}
	if !part.From.Before(part.To) {
		return period, w, nil
	}
	return period, part, nil
}

// maxPoints bounds the points of the series extent reads: the window in
// at most maxPoints steps of whole seconds.
const maxPoints = 1000

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// setPeriod gives b the period and counts its samples by it.
func setPeriod(b *telemetry.ProfileBatch, period int64) {
	b.Period = period
	for i := range b.Samples {
		s := &b.Samples[i]
		if s.Value > 0 {
			s.Count = max(1, (s.Value+period/2)/period)
		}
	}
}

// SpanGroup is the span ids of one endpoint of a service: its SERVER or
// CONSUMER spans of one name, as the traces showed them (hex ids).
type SpanGroup struct {
	Name string
	IDs  []string
}

// Profile fetches the merged CPU profile of service over w, as one batch
// whose samples carry the span links a profile file would: samples the
// server links (span_selector) to the spans of a group carry the group's
// first span id, so that the model attributes them to the endpoint as it
// does from files; the other samples of a span_name series carry that
// span name. It returns ErrNoCPUSamples when the service has no samples
// in the window. The batch's time is the part of w its samples are from,
// to the step of a series (see extent).
func (p *Pyroscope) Profile(ctx context.Context, typ ProfileType, service string, w Window, groups []SpanGroup) (*telemetry.ProfileBatch, error) {
	profileType := typ.CPU
	sel := fmt.Sprintf("{service_name=%q}", service)
	all, err := p.merge(ctx, profileType, sel, w, nil)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", service, err)
	}
	if all == nil || len(all.Samples) == 0 {
		return nil, fmt.Errorf("pyroscope: service %s: %w (%s)", service, ErrNoCPUSamples, profileType)
	}
	all.Service = service
	period, seen, err := p.extent(ctx, typ, sel, w, all)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", service, err)
	}
	all.Start, all.Duration = seen.From, seen.To.Sub(seen.From)
	setPeriod(all, period)
	if p.legacy {
		return all, nil
	}
	type part struct {
		span, name string
		count      int64
	}
	parts := map[string][]part{}
	// Span names are series labels: one query per name.
	p.c.stats.Requests++
	resp, err := p.querier.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{
		Name: "span_name", Matchers: []string{sel}, Start: w.startMs(), End: w.endMs(),
	}))
	if err != nil {
		return nil, p.rpcError("LabelValues", err)
	}
	named := map[string]map[string]int64{} // span name → stack → samples
	for _, name := range resp.Msg.GetNames() {
		b, err := p.merge(ctx, profileType, fmt.Sprintf("{service_name=%q,span_name=%q}", service, name), w, nil)
		if err != nil {
			return nil, fmt.Errorf("service %s: span name %q: %w", service, name, err)
		}
		if b == nil {
			continue
		}
		setPeriod(b, period)
		byStack := map[string]int64{}
		for _, s := range b.Samples {
			byStack[stackKey(b, s.Locations)] += s.Count
		}
		named[name] = byStack
	}
	left := map[string]int64{}
	for _, s := range all.Samples {
		left[stackKey(all, s.Locations)] += s.Count
	}
	for _, g := range groups {
		for chunk := range slices.Chunk(g.IDs, p.cfg.SpanBatch) {
			b, err := p.merge(ctx, profileType, sel, w, chunk)
			if err != nil {
				return nil, fmt.Errorf("service %s: span profiles of %q: %w", service, g.Name, err)
			}
			if b == nil {
				continue
			}
			setPeriod(b, period)
			for _, s := range b.Samples {
				k := stackKey(b, s.Locations)
				n := min(s.Count, left[k])
				if n <= 0 {
					continue
				}
				left[k] -= n
				parts[k] = append(parts[k], part{span: g.IDs[0], count: n})
				// The profiler labels a linked sample with its root
				// span's name too: it is no longer that name's to place.
				if byStack := named[g.Name]; byStack != nil {
					byStack[k] -= min(n, byStack[k])
				}
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(named)) {
		for k, n := range named[name] {
			if n = min(n, left[k]); n > 0 {
				left[k] -= n
				parts[k] = append(parts[k], part{name: name, count: n})
			}
		}
	}
	if len(parts) == 0 {
		return all, nil
	}
	// Split each stack of the merged profile into its parts and the
	// rest, keeping one batch so that the window is counted once.
	out := make([]telemetry.Sample, 0, len(all.Samples))
	for _, s := range all.Samples {
		k := stackKey(all, s.Locations)
		for len(parts[k]) > 0 && s.Count > 0 {
			pt := &parts[k][0]
			n := min(pt.count, s.Count)
			sp := s
			sp.Count, sp.Value, sp.SpanID, sp.SpanName = n, valueShare(s, n), pt.span, pt.name
			out = append(out, sp)
			s.Value -= sp.Value
			s.Count -= n
			if pt.count -= n; pt.count == 0 {
				parts[k] = parts[k][1:]
			}
		}
		if s.Count > 0 {
			out = append(out, s)
		}
	}
	all.Samples = out
	return all, nil
}

// valueShare is the part of s's value that n of its samples carry.
func valueShare(s telemetry.Sample, n int64) int64 {
	if s.Count == 0 {
		return 0
	}
	return s.Value / s.Count * n
}

// stackKey identifies a stack by its frames, which stay the same across
// the separately built profiles of several queries.
func stackKey(b *telemetry.ProfileBatch, locs []int32) string {
	var sb strings.Builder
	for _, l := range locs {
		for _, f := range b.Locations[l] {
			sb.WriteString(f.Function)
			sb.WriteByte(0)
			sb.WriteString(f.File)
			sb.WriteByte(1)
		}
		sb.WriteByte(2)
	}
	return sb.String()
}

// merge runs one merge query and decodes its pprof; nil when the server
// returned no profile.
func (p *Pyroscope) merge(ctx context.Context, profileType, sel string, w Window, spans []string) (*telemetry.ProfileBatch, error) {
	var raw []byte
	if !p.legacy {
		p.c.stats.Requests++
		resp, err := p.querier.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: profileType, LabelSelector: sel, Start: w.startMs(), End: w.endMs(),
			Format: querierv1.ProfileFormat_PROFILE_FORMAT_PPROF, SpanSelector: spans,
		}))
		if err != nil {
			return nil, p.rpcError("SelectMergeStacktraces", err)
		}
		prof := resp.Msg.GetPprof().GetProfile()
		if prof == nil && resp.Msg.GetFlamegraph() != nil && len(spans) == 0 {
			// A server that predates the pprof format answers with the
			// default flame graph: ask the older RPC.
			p.legacy = true
		} else if len(prof.GetSample()) == 0 {
			// No profile, or an empty one (Pyroscope's own service_name
			// "pyroscope" answers so): nothing in the window.
			return nil, nil
		} else {
			if raw, err = prof.MarshalVT(); err != nil {
				return nil, fmt.Errorf("pyroscope: encode profile: %w", err)
			}
		}
	}
	if p.legacy {
		if len(spans) > 0 {
			return nil, nil
		}
		p.c.stats.Requests++
		//lint:ignore SA1019 servers that predate the pprof format of SelectMergeStacktraces have only this RPC.
		resp, err := p.querier.SelectMergeProfile(ctx, connect.NewRequest(&querierv1.SelectMergeProfileRequest{
			ProfileTypeID: profileType, LabelSelector: sel, Start: w.startMs(), End: w.endMs(),
		}))
		if err != nil {
			return nil, p.rpcError("SelectMergeProfile", err)
		}
		if len(resp.Msg.GetSample()) == 0 {
			return nil, nil
		}
		if raw, err = resp.Msg.MarshalVT(); err != nil {
			return nil, fmt.Errorf("pyroscope: encode profile: %w", err)
		}
	}
	p.c.stats.Bytes += int64(len(raw))
	batches, err := telemetry.DecodePprof(raw, "pyroscope "+sel)
	if len(batches) == 0 {
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	b := batches[0]
	for _, o := range batches[1:] {
		// The merged profile names no service; DecodePprof splits only
		// by service_name labels, which a merge drops.
		b.Samples = append(b.Samples, o.Samples...)
	}
	return b, nil
}

// rpcError classifies a Connect error with the sentinels.
func (p *Pyroscope) rpcError(method string, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	what := "pyroscope " + method
	if na, ok := errors.AsType[*notAPIError](err); ok {
		return fmt.Errorf("%s: %w", what, na)
	}
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated, connect.CodePermissionDenied:
		code := 401
		if connect.CodeOf(err) == connect.CodePermissionDenied {
			code = 403
		}
		return fmt.Errorf("%s: %w (sent %s): %s: %w", what, ErrUnauthorized, p.c.cfg.Auth, p.c.authHint(code, err.Error()), err)
	case connect.CodeUnimplemented, connect.CodeNotFound:
		return fmt.Errorf("%s: %w: check the URL %s or upgrade the server: evident needs %s: %w", what, ErrNotFound, p.c.cfg.URL, pyroscopeVersion, err)
	case connect.CodeResourceExhausted:
		if connect.IsWireError(err) {
			// The server's own: a limit of its (HTTP 429, a tenant's
			// queries over its share), which passes; only the client's
			// read limit (WithReadMaxBytes) is an answer too large.
			return rateLimitError{fmt.Errorf("%s: %w: %w", what, ErrRetryable, err)}
		}
		return fmt.Errorf("%s: %w: more than %d bytes (raise the limit or narrow the window): %w", what, ErrTooLarge, p.c.cfg.MaxResponseBytes, err)
	case connect.CodeDeadlineExceeded:
		return fmt.Errorf("%s: %w: no answer within %s: %w", what, ErrTimeout, p.c.cfg.Timeout, err)
	case connect.CodeUnavailable, connect.CodeCanceled:
		// Connect calls a connection the server reset while the request
		// was written canceled (its server's view: the client left); the
		// request's own cancellation was returned above. A server's own
		// "unavailable" (503) is retryable.
		if unreachable(err) {
			return fmt.Errorf("%s: %w: %w", what, ErrUnreachable, err)
		}
		// A port that speaks gRPC alone closes the connection on an
		// HTTP/1 request, which Connect reports as a write or read on a
		// closed connection: not worth a retry.
		if na := p.c.probeHTTP2(context.Background(), err); na != nil {
			return fmt.Errorf("%s: %w", what, na)
		}
		return fmt.Errorf("%s: %w: %w", what, ErrRetryable, err)
	case connect.CodeInternal, connect.CodeUnknown:
		return fmt.Errorf("%s: %w: %w", what, ErrRetryable, err)
	case connect.CodeInvalidArgument:
		// Pyroscope's query frontend: "the query time range exceeds the
		// limit (max_query_length, actual: 48h0m0s, limit: 1d)".
		if strings.Contains(err.Error(), "(max_query_length,") {
			return fmt.Errorf("%s: %w: %w", what, ErrWindowTooLong, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Window is a time range [From, To).
type Window struct{ From, To time.Time }

// startMs and endMs are the range of milliseconds a Pyroscope query of w
// gives. Pyroscope selects the profiles whose time in nanoseconds is
// within start and end, both included, so the end is the millisecond
// before To's: a window read as [From, To] counted a profile stamped on
// the millisecond it shares with the next (one pushed to /ingest with
// from in whole seconds, on a boundary of whole seconds as analyze's
// parts of a long window have) in both. What is left out is a profile
// stamped within that millisecond but not on it, which milliseconds
// cannot tell from the next window's: a sample too few, never one twice,
// which would make a bound of samples that were not taken.
func (w Window) startMs() int64 { return w.From.UnixMilli() }

func (w Window) endMs() int64 { return max(w.startMs(), w.To.UnixMilli()-1) }
