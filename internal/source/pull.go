package source

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/telemetry"
)

// Pull reads one window from the configured sources into a
// telemetry.Handler: traces first, because they name the span ids that
// link profile samples to endpoints, then one merged CPU profile per
// service.
type Pull struct {
	// Tempo and Pyroscope are the sources; either may be nil.
	Tempo     *Tempo
	Pyroscope *Pyroscope
	// Services, when set, restricts the pull to these services: their
	// traces, and their profiles.
	Services []string
	// Elsewhere, when set with Services, says whether the spans of a
	// service not selected reach the handler another way too (serve's
	// receivers, analyze's --traces files). Of such a service, a trace
	// pulled hands on only the spans that join it to a selected service
	// (joinSpans), the others' last; its other spans (its calls further
	// on, its stores, its own callers) would be counted twice. Nil: the
	// traces of the selected services are handed on whole, and so are
	// the spans of services Elsewhere does not claim, which nothing else
	// gives.
	Elsewhere func(service string) bool
}

// Run pulls w into h. A service that cannot be read (a selected service
// not in the window, a trace gone) is reported through skip and the rest
// is still read; so is a trace Tempo returned only in part, whose spans
// are read. A service Pyroscope lists without CPU samples in the window
// is reported through skip as ErrNoCPUSamples: nothing of it was
// skipped, and a caller may say so as a note.
// So is a trace or a service's profile over MaxResponseBytes
// (ErrTooLarge), which would be as large at every retry.
// An error of a source as a whole (unreachable, unauthorized, wrong URL)
// or of h is returned. A trace or a service's profile whose request
// fails while the source still answers is given up (ErrGaveUp, naming
// it) and reported through skip, and the rest read: Run reads the window
// once, and one item must not cost the report of the others. A window
// longer than a source takes in one query is read from it in parts
// (windowParts).
func (p Pull) Run(ctx context.Context, w Window, h telemetry.Handler, skip func(error)) error {
	pr := newWindowProgress(w)
	pr.tries = 1
	return p.resume(ctx, pr, h, skip)
}

// resume pulls pr's window into h as Run does, skipping what pr says was
// handed on, and records in pr what it hands on: a trace's spans a
// resource at a time, as decoded. What h refuses for good
// (pipeline.Permanent: larger than a tenant's burst) is reported through
// skip and not tried again; any other error of h stops the pull, to be
// resumed. A trace or a service's profile whose request fails while the
// source still answers is left for the next pull of the same progress
// and the rest read, until pr.tries pulls failed on it (ErrGaveUp,
// reported through skip); the failures are returned at the end of the
// traces or of the profiles. The profiles wait for every trace of the
// window: their samples are linked to the spans handed on (groups), and
// a profile read before a trace was would link samples to spans not
// handed on.
func (p Pull) resume(ctx context.Context, pr *windowProgress, h telemetry.Handler, skip func(error)) error {
	pr.failures = nil
	if p.Tempo != nil {
		if err := p.traces(ctx, pr, h, skip); err != nil {
			return err
		}
	}
	if p.Pyroscope == nil {
		return nil
	}
	return p.profiles(ctx, pr, h, skip)
}

// traces samples the traces of pr's window, once, and hands on the
// spans that end in the window of each sampled trace not yet handed on.
func (p Pull) traces(ctx context.Context, pr *windowProgress, h telemetry.Handler, skip func(error)) error {
	w := pr.w
	if !pr.sampled {
		parts, have, err := windowParts(ctx, w, p.Tempo.Services)
		if err != nil {
			return err
		}
		p.Tempo.c.stats.Parts = len(parts)
		services := p.selected(union(have), "tempo", "no service has traces (check the window, the tenant EVIDENT_TEMPO_ORG_ID, and that spans reach Tempo as they happen: Tempo's search does not find spans much older than their arrival)", skip)
		if pr.ids, err = p.Tempo.Sample(ctx, services, parts, have); err != nil {
			return err
		}
		pr.sampled = true
	}
	// answered says Tempo answered a trace of this pull (settle).
	answered := false
	for _, id := range pr.ids {
		done := pr.traces[id]
		if done == traceDone {
			continue
		}
		var resources [][]telemetry.Span
		err := p.Tempo.Trace(ctx, id, w, func(s []telemetry.Span) error {
			resources = append(resources, s)
			return nil
		})
		resources = p.handedOf(resources, w)
		switch {
		case err == nil:
			answered = true
		case errors.Is(err, ErrNotFound):
			answered = true
			skip(fmt.Errorf("tempo trace %s: gone since the search: %w", id, ErrNoData))
		case errors.Is(err, telemetry.ErrMalformed), errors.Is(err, ErrPartial), errors.Is(err, ErrTooLarge):
			// A trace over MaxResponseBytes is as large at every
			// poll: failing the window would never get past it.
			answered = true
			skip(err)
		default:
			// The window's last minute: a window longer than Tempo
			// searches at once (windowParts) would fail the probe.
			probe := func(ctx context.Context) error {
				last := Window{From: w.To.Add(-minPart), To: w.To}
				if last.From.Before(w.From) {
					last.From = w.From
				}
				_, err := p.Tempo.Services(ctx, last)
				return err
			}
			gaveUp, err := pr.failed(ctx, itemKey{trace: id}, err, probe)
			if gaveUp == nil {
				if err != nil {
					return err
				}
				// Tried again at the next poll, with the rest of the
				// window read.
				continue
			}
			skip(gaveUp)
			resources = nil
		}
		handed := pr.handedSpans[id]
		for i, res := range resources {
			if i < done {
				// Handed on by a poller whose record counted resources.
				continue
			}
			if handed != nil {
				if res = slices.DeleteFunc(res, func(sp telemetry.Span) bool { return handed[refOf(&sp)] }); len(res) == 0 {
					continue
				}
			}
			keys := make([]spanRef, len(res))
			for j := range res {
				keys[j] = refOf(&res[j])
			}
			if err := pr.handSpans(h, res); err != nil {
				if !pipeline.IsPermanent(err) {
					return err
				}
				skip(fmt.Errorf("tempo trace %s: refused: %w", id, err))
			}
			if handed == nil {
				handed = map[spanRef]bool{}
				pr.handedSpans[id] = handed
			}
			for _, k := range keys {
				handed[k] = true
			}
			if err := pr.handed(); err != nil {
				return err
			}
		}
		delete(pr.handedSpans, id)
		pr.traces[id] = traceDone
	}
	return pr.settle(answered, skip)
}

// handedOf returns what a pull hands on of a trace's spans, resource by
// resource: the spans that end in w, since a trace's spans in other
// windows are theirs (Tempo.search) and each span is handed on by the
// window it ends in; and of a service Elsewhere claims, only its spans
// that join a selected service's (joinSpans), in resources after the
// others. Those go last so that a selected service's CLIENT or PRODUCER
// span joins the copy its callee's own telemetry brought, waiting or
// done waiting, before the copy handed on here arrives; the model counts
// a span once by its id, whichever copy comes first, and the copy here
// is the only one of a trace the receivers did not bring.
func (p Pull) handedOf(resources [][]telemetry.Span, w Window) [][]telemetry.Span {
	var join map[spanRef]bool
	if p.Elsewhere != nil && len(p.Services) > 0 && p.claimsAny(resources) {
		join = p.joinSpans(resources)
	}
	var own, joins [][]telemetry.Span
	var last string
	var claimed bool
	for _, s := range resources {
		kept, js := s[:0], []telemetry.Span(nil)
		for i := range s {
			sp := &s[i]
			if !w.holds(spanEnd(sp)) {
				continue
			}
			if join != nil && sp.Service != last {
				// A resource's spans are of one service.
				last = sp.Service
				claimed = !slices.Contains(p.Services, last) && p.Elsewhere(last)
			}
			switch {
			case join == nil || !claimed:
				kept = append(kept, *sp)
			case join[refOf(sp)]:
				js = append(js, *sp)
			}
		}
		if len(kept) > 0 {
			own = append(own, kept)
		}
		if len(js) > 0 {
			joins = append(joins, js)
		}
	}
	return append(own, joins...)
}

// claimsAny reports whether a service of a trace's spans that is not
// selected is one Elsewhere claims: most traces hold none, and need no
// joinSpans.
func (p Pull) claimsAny(resources [][]telemetry.Span) bool {
	var (
		last string
		seen bool
	)
	for _, s := range resources {
		for i := range s {
			if svc := s[i].Service; svc != last || !seen {
				last, seen = svc, true
				if !slices.Contains(p.Services, svc) && p.Elsewhere(svc) {
					return true
				}
			}
		}
	}
	return false
}

// joinSpans returns the spans of a trace's services not selected that
// join a selected service's span: the CLIENT or PRODUCER span that is
// the parent of a selected service's SERVER or CONSUMER span (its
// caller: without it the selected service seems called from outside the
// traced system, as its own telemetry may arrive a poll's lag after the
// caller's, beyond the model's join window), and the SERVER or CONSUMER
// span a selected service's CLIENT or PRODUCER span is the parent of
// (the edge, and through it the blast radius). The trace is taken whole,
// whatever window its spans end in: a caller's span ends after its
// callee's.
func (p Pull) joinSpans(resources [][]telemetry.Span) map[spanRef]bool {
	callers, calls := map[[8]byte]bool{}, map[[8]byte]bool{}
	var (
		last           string
		seen, selected bool
	)
	for _, s := range resources {
		for i := range s {
			if svc := s[i].Service; svc != last || !seen {
				last, seen, selected = svc, true, slices.Contains(p.Services, svc)
			}
			if !selected {
				continue
			}
			switch s[i].Kind {
			case telemetry.SpanKindServer, telemetry.SpanKindConsumer:
				if s[i].ParentSpanID != ([8]byte{}) {
					callers[s[i].ParentSpanID] = true
				}
			case telemetry.SpanKindClient, telemetry.SpanKindProducer:
				calls[s[i].SpanID] = true
			}
		}
	}
	join := map[spanRef]bool{}
	for _, s := range resources {
		for i := range s {
			sp := &s[i]
			switch sp.Kind {
			case telemetry.SpanKindClient, telemetry.SpanKindProducer:
				if callers[sp.SpanID] {
					join[refOf(sp)] = true
				}
			case telemetry.SpanKindServer, telemetry.SpanKindConsumer:
				if calls[sp.ParentSpanID] {
					join[refOf(sp)] = true
				}
			}
		}
	}
	return join
}

// profiles pulls one merged CPU profile per service of pr's window into
// h, one per part of the window where Pyroscope reads it in parts
// (windowParts), except those pr says were handed on. A service with no
// CPU samples is reported once, when no part has any.
func (p Pull) profiles(ctx context.Context, pr *windowProgress, h telemetry.Handler, skip func(error)) error {
	parts, have, err := windowParts(ctx, pr.w, p.Pyroscope.Services)
	if err != nil {
		return err
	}
	p.Pyroscope.c.stats.Parts = len(parts)
	services := p.selected(union(have), "pyroscope", "no service has profiles (Pyroscope answers a window older than its max_query_lookback, 7 days by default, as empty)", skip)
	noCPU := map[string]error{}
	read := map[string]bool{}
	// answered says Pyroscope answered a merge of this pull (settle).
	answered := false
	for i, part := range parts {
		key := func(svc string) profilePart { return profilePart{svc, part.From.UnixNano(), part.To.UnixNano()} }
		in := slices.DeleteFunc(slices.Clone(services), func(s string) bool {
			if pr.profiles[key(s)] {
				read[s] = true
				return true
			}
			return !slices.Contains(have[i], s)
		})
		if len(in) == 0 {
			continue
		}
		typ, err := p.Pyroscope.CPUProfileType(ctx, part)
		if errors.Is(err, ErrNoCPUSamples) {
			for _, svc := range in {
				noCPU[svc] = fmt.Errorf("pyroscope: service %s: %w", svc, err)
			}
			continue
		}
		if err != nil {
			return err
		}
		for _, svc := range in {
			b, err := p.Pyroscope.Profile(ctx, typ, svc, part, pr.groups(svc))
			switch {
			case err == nil:
				answered = true
			case errors.Is(err, ErrNoCPUSamples):
				answered = true
				noCPU[svc] = err
				continue
			case errors.Is(err, telemetry.ErrMalformed), errors.Is(err, ErrTooLarge):
				// As a trace: a profile over MaxResponseBytes would
				// fail the window at every poll.
				answered = true
				skip(err)
				continue
			default:
				probe := func(ctx context.Context) error { _, err := p.Pyroscope.Services(ctx, part); return err }
				gaveUp, err := pr.failed(ctx, itemKey{profile: key(svc)}, err, probe)
				if gaveUp == nil {
					if err != nil {
						return err
					}
					continue
				}
				skip(gaveUp)
				pr.profiles[key(svc)] = true
				continue
			}
			if err := h.Profile(b); err != nil {
				if !pipeline.IsPermanent(err) {
					return err
				}
				skip(fmt.Errorf("pyroscope: service %s: refused: %w", svc, err))
			}
			pr.profiles[key(svc)] = true
			if err := pr.handed(); err != nil {
				return err
			}
			read[svc] = true
		}
	}
	if err := pr.settle(answered, skip); err != nil {
		return err
	}
	for _, svc := range slices.Sorted(maps.Keys(noCPU)) {
		if !read[svc] {
			skip(noCPU[svc])
		}
	}
	return nil
}

// clockSkew returns how far the local clock is ahead of the source's
// furthest from it (negative: behind), as the sources' last answers
// showed, and that source's name; "" when no answer had a Date.
func (p Pull) clockSkew() (time.Duration, string) {
	var clients []*client
	if p.Tempo != nil {
		clients = append(clients, p.Tempo.c)
	}
	if p.Pyroscope != nil {
		clients = append(clients, p.Pyroscope.c)
	}
	var most time.Duration
	var which string
	for _, c := range clients {
		if d, ok := c.skew.get(); ok && (which == "" || d.Abs() > most.Abs()) {
			most, which = d, c.what
		}
	}
	return most, which
}

// minPart is the shortest part windowParts splits a window into, and
// maxParts the most parts: each costs queries, and a server that refuses
// every part must not make the split go on.
const (
	minPart  = time.Minute
	maxParts = 1024
)

// windowParts returns the parts of w a server answers queries over, and
// the services of each (from services): w itself, or, when the server
// refuses w as longer than it allows (ErrWindowTooLong: Pyroscope's
// max_query_length, a day by default while it keeps a week; Tempo's
// search max_duration, a week), w halved until the server takes each
// part.
func windowParts(ctx context.Context, w Window, services func(context.Context, Window) ([]string, error)) ([]Window, [][]string, error) {
	for n := 1; ; n *= 2 {
		parts := split(w, n)
		have := make([][]string, 0, n)
		var err error
		for _, part := range parts {
			var s []string
			if s, err = services(ctx, part); err != nil {
				break
			}
			have = append(have, s)
		}
		switch {
		case err == nil:
			return parts, have, nil
		case !errors.Is(err, ErrWindowTooLong):
			return nil, nil, err
		case parts[0].To.Sub(parts[0].From) < 2*minPart || 2*n > maxParts:
			return nil, nil, fmt.Errorf("%w (the window of %s read in %d parts; narrow it)", err, w.To.Sub(w.From), n)
		}
	}
}

// split cuts w into n parts of equal length, in whole milliseconds (the
// APIs' times), in time order; the last takes what is left.
func split(w Window, n int) []Window {
	d := w.To.Sub(w.From)
	parts := make([]Window, n)
	from := w.From
	for i := range n {
		to := w.To
		if i < n-1 {
			to = w.From.Add((d / time.Duration(n) * time.Duration(i+1)).Truncate(time.Millisecond))
		}
		parts[i] = Window{From: from, To: to}
		from = to
	}
	return parts
}

// union returns the services of every part, sorted, once each.
func union(have [][]string) []string {
	return slices.Compact(slices.Sorted(slices.Values(slices.Concat(have...))))
}

// selected keeps the services of the selection, and says which selected
// services the source does not have; without a selection, it says empty
// when the source has no service at all, so that an empty answer is not
// taken for a clean bill.
func (p Pull) selected(have []string, source, empty string, skip func(error)) []string {
	if len(p.Services) == 0 {
		if len(have) == 0 {
			skip(fmt.Errorf("%s: %w: %s", source, ErrNoData, empty))
		}
		return have
	}
	var out []string
	for _, s := range p.Services {
		if slices.Contains(have, s) {
			out = append(out, s)
		} else {
			skip(fmt.Errorf("%s: service %s: %w", source, s, ErrNoData))
		}
	}
	return out
}
