package source_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/source"
	"github.com/evidentsec/evident/internal/source/sourcetest"
	"github.com/evidentsec/evident/internal/store/sqlite"
	"github.com/evidentsec/evident/internal/telemetry"
)

// counting consumers stand for the engine's.
type counts struct{ spans, profiles atomic.Int64 }

func (c *counts) deps(pull source.Pull, wm source.Watermarks, now time.Time, reg prometheus.Registerer) source.PollerDeps {
	return source.PollerDeps{
		Pull: pull, Watermarks: wm, Registerer: reg, Now: func() time.Time { return now },
		Traces: pipeline.ConsumerFunc[[]telemetry.Span](func(_ context.Context, s []telemetry.Span) error {
			c.spans.Add(int64(len(s)))
			return nil
		}),
		Profiles: pipeline.ConsumerFunc[[]*telemetry.ProfileBatch](func(_ context.Context, b []*telemetry.ProfileBatch) error {
			c.profiles.Add(int64(len(b)))
			return nil
		}),
	}
}

// recordingSpan returns the first and last span start of the recording.
func recordingSpan(t *testing.T) (first, last time.Time) {
	t.Helper()
	var c collect
	files, err := telemetry.Discover([]telemetry.Input{{Path: filepath.Join(recorded, "traces.jsonl")}})
	if err != nil {
		t.Fatal(err)
	}
	h := &spanTimes{collect: &c}
	if err := telemetry.Load(context.Background(), files, h); err != nil {
		t.Fatal(err)
	}
	return h.first, h.last
}

type spanTimes struct {
	*collect
	first, last time.Time
}

func (s *spanTimes) Spans(spans []telemetry.Span) error {
	for _, sp := range spans {
		if s.first.IsZero() || sp.Start.Before(s.first) {
			s.first = sp.Start
		}
		if sp.Start.After(s.last) {
			s.last = sp.Start
		}
	}
	return s.collect.Spans(spans)
}

// TestPollerResumesFromWatermark reads the recording through the poller,
// restarts on the same store, and checks that nothing is read twice.
func TestPollerResumesFromWatermark(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := loadServers(t)
	srv := httptest.NewServer(s.handler())
	defer srv.Close()
	first, last := recordingSpan(t)
	cfg := source.DefaultPollerConfig()
	cfg.Lookback = last.Sub(first) + 2*time.Hour
	cfg.MaxWindow = 24 * time.Hour
	now := last.Add(cfg.Lag + time.Second)
	dir := t.TempDir()

	var want collect
	if err := newPull(t, srv.URL, source.Auth{}, nil).Run(context.Background(), window, &want, func(error) {}); err != nil {
		t.Fatal(err)
	}

	var c counts
	for run := range 2 {
		st, err := sqlite.Open(t.Context(), dir, sqlite.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		p, err := source.NewPoller("tempo+pyroscope", cfg, c.deps(newPull(t, srv.URL, source.Auth{}, nil), st, now, reg))
		if err != nil {
			t.Fatal(err)
		}
		caughtUp, err := p.Poll(t.Context())
		if err != nil || !caughtUp {
			t.Fatalf("run %d: poll: caught up %v, %v", run, caughtUp, err)
		}
		if got := c.spans.Load(); got != int64(want.spans) {
			t.Errorf("run %d: %d spans consumed, want %d (each once)", run, got, want.spans)
		}
		if got := c.profiles.Load(); got != int64(len(want.profiles)) {
			t.Errorf("run %d: %d profiles consumed, want %d", run, got, len(want.profiles))
		}
		if up := gauge(t, reg, "evident_source_up"); up != 1 {
			t.Errorf("run %d: evident_source_up %v, want 1", run, up)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// gauge returns the value of the one gauge (or counter) named name in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			if c := mf.GetMetric()[0].GetCounter(); c != nil {
				return c.GetValue()
			}
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestPollerFailingSource checks that a failing source is reported, keeps
// its watermark, and that the running poller survives it.
func TestPollerFailingSource(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var fail atomic.Bool
	fail.Store(true)
	s := loadServers(t)
	next := s.handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	}))
	defer srv.Close()
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := source.DefaultPollerConfig()
	cfg.Interval = 20 * time.Millisecond
	var c counts
	p, err := source.NewPoller("tempo+pyroscope", cfg, c.deps(newPull(t, srv.URL, source.Auth{}, nil), st, time.Now(), nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Poll(t.Context()); !errors.Is(err, source.ErrRetryable) {
		t.Errorf("poll of a failing source: %v, want ErrRetryable", err)
	}
	if wm, _ := st.SourceWatermark(t.Context(), "tempo+pyroscope"); !wm.IsZero() {
		t.Errorf("watermark advanced to %v by a failed poll", wm)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	fail.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ok, _ := p.Healthy(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the poller did not recover once the source did")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for range 2 {
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPollerShutdownWithoutStart checks the component contract.
func TestPollerShutdownWithoutStart(t *testing.T) {
	p, err := source.NewPoller("x", source.DefaultPollerConfig(), source.PollerDeps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestPollerShortLag checks that a lag shorter than the sources need is
// warned about at start, naming what it misses and the least to keep.
func TestPollerShortLag(t *testing.T) {
	pull := newPull(t, "http://127.0.0.1:1", source.Auth{}, nil)
	for _, tc := range []struct {
		name string
		pull source.Pull
		lag  time.Duration
		want string // "" for no warning
	}{
		{"tempo, default", pull, time.Minute, ""},
		{"tempo, 30s", pull, 30 * time.Second, "sources: lag 30s is shorter than the stores need (Tempo's search finds spans up to 1m0s after they arrive): what they hold only after its window is read is never read; keep lag at 1m0s or more"},
		{"pyroscope, 30s", source.Pull{Pyroscope: pull.Pyroscope}, 30 * time.Second, ""},
		{"pyroscope, 10s", source.Pull{Pyroscope: pull.Pyroscope}, 10 * time.Second, "sources: lag 10s is shorter than the stores need (a profiler uploads at the end of its period, pyroscope-go every 15s, and Pyroscope stores it seconds later): what they hold only after its window is read is never read; keep lag at 30s or more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			cfg := source.DefaultPollerConfig()
			cfg.Lag = tc.lag
			if _, err := source.NewPoller("x", cfg, source.PollerDeps{Pull: tc.pull, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}); err != nil {
				t.Fatal(err)
			}
			got := ""
			if logs.Len() > 0 {
				var r struct{ Level, Msg string }
				if err := json.Unmarshal(logs.Bytes(), &r); err != nil || r.Level != "WARN" {
					t.Errorf("logged %q (%v), want one warning", logs.String(), err)
				}
				got = r.Msg
			}
			if got != tc.want {
				t.Errorf("warned %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPollerServiceWithoutCPU checks that a service with memory
// profiles only, which every poll finds again, is logged at debug level,
// not as a skip, and that the other services' profiles are read.
func TestPollerServiceWithoutCPU(t *testing.T) {
	rec, pyro := recordingAndPyroscope(t)
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	if err := pyro.AddAt("reporter", rec.Profiles["reporter"][0], t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	var allocs bytes.Buffer
	if err := pprof.Lookup("allocs").WriteTo(&allocs, 0); err != nil {
		t.Fatal(err)
	}
	if err := pyro.AddAt("allocs", allocs.Bytes(), t0.Add(20*time.Minute)); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs bytes.Buffer
	var c counts
	deps := c.deps(source.Pull{Pyroscope: newPull(t, pyroscopeURL(t, pyro), source.Auth{}, nil).Pyroscope}, st, t0.Add(time.Hour), prometheus.NewRegistry())
	deps.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := source.NewPoller("pyroscope", source.DefaultPollerConfig(), deps)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := c.profiles.Load(); got != 1 {
		t.Errorf("%d profiles consumed, want reporter's", got)
	}
	var said []string
	for line := range bytes.Lines(logs.Bytes()) {
		var r struct{ Level, Msg, Reason string }
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		said = append(said, r.Level+" "+r.Msg+": "+r.Reason)
	}
	want := []string{"DEBUG source: no CPU samples: pyroscope: service allocs: no CPU samples in the window (process_cpu:cpu:nanoseconds:cpu:nanoseconds)"}
	if !slices.Equal(said, want) {
		t.Errorf("logged %q, want %q", said, want)
	}
}

// ledger records what reached the engine: how often each span and each
// service's samples, by the span they are linked to.
type ledger struct {
	spans   map[string]int
	samples map[string]int64
	// names are the spans' names, by service and span id.
	names map[string]string
}

func newLedger() *ledger {
	return &ledger{spans: map[string]int{}, samples: map[string]int64{}, names: map[string]string{}}
}

func (l *ledger) Spans(spans []telemetry.Span) error {
	for _, sp := range spans {
		k := sp.Service + " " + hex.EncodeToString(sp.SpanID[:])
		l.spans[k]++
		l.names[k] = sp.Name
	}
	return nil
}

// endpoints returns the samples by the name of the span they are linked
// to: a profile links the samples of an endpoint to one of its spans
// (SpanGroup), the first handed on, which may be another when a window
// is read in another order.
func (l *ledger) endpoints() map[string]int64 {
	out := map[string]int64{}
	for k, n := range l.samples {
		svc, rest, _ := strings.Cut(k, " ")
		id, name, _ := strings.Cut(rest, " ")
		out[svc+" "+l.names[svc+" "+id]+" "+name] += n
	}
	return out
}

func (l *ledger) Profile(b *telemetry.ProfileBatch) error {
	for _, s := range b.Samples {
		l.samples[b.Service+" "+s.SpanID+" "+s.SpanName] += s.Count
	}
	return nil
}

// consumers stand for the engine's: accept hands each batch on to l by
// calling handOn, or refuses it as the engine would.
func (l *ledger) consumers(accept func(handOn func() error) error) (pipeline.Consumer[[]telemetry.Span], pipeline.Consumer[[]*telemetry.ProfileBatch]) {
	return pipeline.ConsumerFunc[[]telemetry.Span](func(_ context.Context, s []telemetry.Span) error {
			return accept(func() error { return l.Spans(s) })
		}), pipeline.ConsumerFunc[[]*telemetry.ProfileBatch](func(_ context.Context, bs []*telemetry.ProfileBatch) error {
			return accept(func() error {
				for _, b := range bs {
					if err := l.Profile(b); err != nil {
						return err
					}
				}
				return nil
			})
		})
}

// servedRecording serves the recording and returns its server (the caller
// closes it), what a pull of it without failure hands on, and a poller
// configuration whose first window, polled at now, holds all of it.
func servedRecording(t *testing.T) (srv *httptest.Server, want *ledger, cfg source.PollerConfig, now time.Time) {
	t.Helper()
	first, last := recordingSpan(t)
	srv = httptest.NewServer(loadServers(t).handler())
	want = newLedger()
	if err := newPull(t, srv.URL, source.Auth{}, nil).Run(context.Background(), window, want, func(error) {}); err != nil {
		srv.Close()
		t.Fatal(err)
	}
	cfg = source.DefaultPollerConfig()
	cfg.Lookback = last.Sub(first) + 2*time.Hour
	cfg.MaxWindow = 24 * time.Hour
	return srv, want, cfg, last.Add(cfg.Lag + time.Second)
}

// checkOnce checks that what reached the engine (got) is what a pull
// without failure hands on (want), each span once.
func checkOnce(t *testing.T, got, want *ledger) {
	t.Helper()
	for k, n := range got.spans {
		if n != 1 {
			t.Errorf("span %s reached the engine %d times", k, n)
		}
	}
	if len(got.spans) != len(want.spans) {
		t.Errorf("%d spans reached the engine, want %d", len(got.spans), len(want.spans))
	}
	if !maps.Equal(got.endpoints(), want.endpoints()) {
		t.Errorf("samples by the name of the linked span:\n got %v\nwant %v", got.endpoints(), want.endpoints())
	}
}

// TestPollerResumesFailedWindow checks that a window which fails
// part-way, by the engine's queue or by a source, is read again to the
// same end by the next polls and reaches the engine once: every span
// once, every service's samples linked to the same spans as in a pull
// without failure; and that what the engine refuses for good is skipped,
// not tried again.
func TestPollerResumesFailedWindow(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	clean, want, cfg, start := servedRecording(t)
	defer clean.Close()
	next := clean.Config.Handler
	full := &pipeline.FullError{RetryAfter: time.Second}
	for _, tc := range []struct {
		name string
		// refuse is the engine's answer to its call-th batch, counted
		// from 1 over spans and profiles; fail says whether the source
		// answers its n-th request of a path holding which with a 503.
		refuse func(call int) error
		which  string
		fail   func(n int) bool
		// polls is how many polls read the window; skipped how many
		// batches were refused for good.
		polls, skipped int
	}{
		{name: "queue full", refuse: func(call int) error {
			if call == 2 || call == 5 || call == 9 {
				return full
			}
			return nil
		}, polls: 4},
		{name: "tempo failing part-way", which: "/api/v2/traces/", fail: func(n int) bool { return n == 3 }, polls: 2},
		{name: "pyroscope failing part-way", which: "SelectMerge", fail: func(n int) bool { return n == 2 }, polls: 2},
		{name: "refused for good", refuse: func(call int) error {
			if call == 3 {
				return pipeline.Permanent(errors.New("larger than the burst"))
			}
			return nil
		}, polls: 1, skipped: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.fail != nil && strings.Contains(r.URL.Path, tc.which) && tc.fail(int(requests.Add(1))) {
					http.Error(w, "overloaded", http.StatusServiceUnavailable)
					return
				}
				next.ServeHTTP(w, r)
			}))
			defer srv.Close()

			got := newLedger()
			calls := 0
			traces, profiles := got.consumers(func(handOn func() error) error {
				calls++
				if tc.refuse != nil {
					if err := tc.refuse(calls); err != nil {
						return err
					}
				}
				return handOn()
			})
			st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			now := start
			end := now.Add(-cfg.Lag)
			var logs bytes.Buffer
			p, err := source.NewPoller("tempo+pyroscope", cfg, source.PollerDeps{
				Pull: newPull(t, srv.URL, source.Auth{}, nil), Watermarks: st,
				Now:    func() time.Time { return now },
				Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
				Traces: traces, Profiles: profiles,
			})
			if err != nil {
				t.Fatal(err)
			}
			for poll := 1; ; poll++ {
				caughtUp, err := p.Poll(t.Context())
				if err == nil {
					if poll != tc.polls {
						t.Errorf("the window was read in %d polls, want %d", poll, tc.polls)
					}
					// Later polls have a later now: the window kept its end.
					if wm, _ := st.SourceWatermark(t.Context(), "tempo+pyroscope"); !wm.Equal(end) {
						t.Errorf("watermark %v after the window, want its end %v", wm, end)
					}
					if caughtUp != (poll == 1) {
						t.Errorf("poll %d: caught up %v", poll, caughtUp)
					}
					break
				}
				if !errors.Is(err, pipeline.ErrFull) && !errors.Is(err, source.ErrRetryable) {
					t.Fatalf("poll %d: %v, want a failure to retry", poll, err)
				}
				if poll == 10 {
					t.Fatalf("the window was not read in %d polls: %v", poll, err)
				}
				if wm, _ := st.SourceWatermark(t.Context(), "tempo+pyroscope"); !wm.IsZero() {
					t.Fatalf("poll %d failed and moved the watermark to %v", poll, wm)
				}
				now = now.Add(time.Minute)
			}
			skipped := strings.Count(logs.String(), "refused: larger than the burst")
			if skipped != tc.skipped {
				t.Errorf("%d batches skipped as refused, want %d:\n%s", skipped, tc.skipped, logs.String())
			}
			if tc.skipped > 0 {
				for k, n := range got.spans {
					if n != 1 {
						t.Errorf("span %s reached the engine %d times", k, n)
					}
				}
				return
			}
			checkOnce(t, got, want)
		})
	}
}

// TestPollerResumesAfterRestart checks that a window left unfinished by
// a shutdown is resumed by the next serve on the same store, to the same
// end and without what was handed on before, and that a record which
// cannot be read makes the window be read from its start.
func TestPollerResumesAfterRestart(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv, want, cfg, start := servedRecording(t)
	defer srv.Close()
	for _, tc := range []struct {
		name string
		// record replaces what the first serve recorded; nil keeps it.
		record []byte
		// twice is whether what the first serve handed on is handed on
		// again.
		twice bool
		// crash makes the first serve die at the stop, 31 s after each
		// batch: the store holds what it recorded as it went.
		crash bool
		// redact is the redaction of span names.
		redact func(string) string
	}{
		{name: "resumed"},
		{name: "redacted", redact: func(s string) string { return strings.ReplaceAll(s, "{id}", "REDACTED") }},
		{name: "crashed", crash: true},
		{name: "unreadable record", record: []byte(`{"version":99}`), twice: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := start
			// end is where the window read ends: the first serve's, unless
			// the second reads a window of its own.
			end := now.Add(-cfg.Lag)
			dir := t.TempDir()
			got := newLedger()
			// stop, when set, is the batch at which serve is stopped.
			serve := func(stop int) (*bytes.Buffer, error) {
				st, err := sqlite.Open(t.Context(), dir, sqlite.DefaultConfig())
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				calls := 0
				var crashed []byte
				traces, profiles := got.consumers(func(handOn func() error) error {
					if calls++; calls == stop {
						if tc.crash {
							if crashed, err = st.SourceProgress(t.Context(), "tempo+pyroscope"); crashed == nil {
								t.Fatalf("nothing recorded of the window after %d batches: %v", calls-1, err)
							}
						}
						cancel()
						return ctx.Err()
					}
					return handOn()
				})
				var tick time.Duration
				var logs bytes.Buffer
				p, err := source.NewPoller("tempo+pyroscope", cfg, source.PollerDeps{
					Pull: newPull(t, srv.URL, source.Auth{}, nil), Watermarks: st,
					Now: func() time.Time {
						t := now.Add(tick)
						if tc.crash {
							tick += 31 * time.Second
						}
						return t
					},
					Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
					Traces: traces, Profiles: profiles, Redact: tc.redact,
				})
				if err != nil {
					t.Fatal(err)
				}
				_, err = p.Poll(ctx)
				if stop == 0 {
					if wm, _ := st.SourceWatermark(t.Context(), "tempo+pyroscope"); !wm.Equal(end) {
						t.Errorf("watermark %v, want %v", wm, end)
					}
					if rec, err := st.SourceProgress(t.Context(), "tempo+pyroscope"); rec != nil || err != nil {
						t.Errorf("the record of the window read is still there: %q, %v", rec, err)
					}
				} else if rec, _ := st.SourceProgress(t.Context(), "tempo+pyroscope"); tc.redact != nil && (rec == nil || bytes.Contains(rec, []byte("{id}"))) {
					t.Errorf("the record of the window holds what redaction masks, or nothing: %s", rec)

				} else if tc.record != nil || tc.crash {
					// What the store holds after the first serve.
					rec := tc.record
					if tc.crash {
						rec = crashed
					}
					if err := st.SetSourceProgress(t.Context(), "tempo+pyroscope", rec); err != nil {
						t.Fatal(err)
					}
				}
				return &logs, err
			}
			if _, err := serve(6); !errors.Is(err, context.Canceled) {
				t.Fatalf("serve stopped part-way: %v", err)
			}
			handed := len(got.spans)
			if handed == 0 {
				t.Fatal("nothing was handed on before the stop")
			}
			// Later: a window resumed keeps its end.
			now = now.Add(5 * time.Minute)
			if tc.twice {
				end = now.Add(-cfg.Lag)
			}
			logs, err := serve(0)
			if err != nil {
				t.Fatal(err)
			}
			twice := 0
			for k, n := range got.spans {
				if n > 1 {
					twice++
				}
				if n > 2 {
					t.Errorf("span %s reached the engine %d times", k, n)
				}
			}
			if tc.twice {
				if twice != handed {
					t.Errorf("%d spans handed on twice, want the %d handed on before the stop", twice, handed)
				}
				if !strings.Contains(logs.String(), "cannot be read; reading the window from its start") {
					t.Errorf("the unreadable record was not logged:\n%s", logs)
				}
				return
			}
			expected := want
			if tc.redact != nil {
				// The group of a name left out of the record links no
				// sample after the resume: only the spans compare.
				expected = &ledger{spans: want.spans, samples: got.samples, names: got.names}
			}
			checkOnce(t, got, expected)
			if !strings.Contains(logs.String(), "resuming the window left unfinished") {
				t.Errorf("the resumption was not logged:\n%s", logs)
			}
		})
	}
}

// TestPollerReplicas checks that of two replicas sharing a store only
// the one that leads polls, and that the other, when it takes the lead,
// resumes the window the first left unfinished: every span reaches the
// engine once.
func TestPollerReplicas(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv, want, cfg, now := servedRecording(t)
	defer srv.Close()
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	end := now.Add(-cfg.Lag)

	got := newLedger()
	var leader atomic.Int64 // the replica that holds the lock
	calls := 0
	type replica struct {
		p    *source.Poller
		reg  *prometheus.Registry
		logs bytes.Buffer
	}
	traces, profiles := got.consumers(func(handOn func() error) error {
		// The first replica's poll fails at the fifth batch.
		if calls++; calls == 5 {
			return &pipeline.FullError{RetryAfter: time.Second}
		}
		return handOn()
	})
	replicas := make([]*replica, 2)
	for i := range replicas {
		r := &replica{reg: prometheus.NewRegistry()}
		r.p, err = source.NewPoller("tempo+pyroscope", cfg, source.PollerDeps{
			Pull: newPull(t, srv.URL, source.Auth{}, nil), Watermarks: st, Registerer: r.reg,
			Now:    func() time.Time { return now },
			Logger: slog.New(slog.NewJSONHandler(&r.logs, nil)),
			Lead:   func(context.Context) (bool, error) { return leader.Load() == int64(i), nil },
			Traces: traces, Profiles: profiles,
		})
		if err != nil {
			t.Fatal(err)
		}
		replicas[i] = r
	}
	a, b := replicas[0], replicas[1]
	if caughtUp, err := b.p.Poll(t.Context()); err != nil || !caughtUp {
		t.Fatalf("the replica standing by: caught up %v, %v", caughtUp, err)
	}
	if calls != 0 {
		t.Fatalf("the replica standing by handed on %d batches", calls)
	}
	if _, err := a.p.Poll(t.Context()); !errors.Is(err, pipeline.ErrFull) {
		t.Fatalf("the first replica's poll: %v, want its failure part-way", err)
	}
	// The first replica stops leading (it died, or lost its connection).
	leader.Store(1)
	now = now.Add(time.Minute)
	for _, r := range []*replica{a, b} {
		if _, err := r.p.Poll(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if wm, _ := st.SourceWatermark(t.Context(), "tempo+pyroscope"); !wm.Equal(end) {
		t.Errorf("watermark %v, want the end of the window the first replica began, %v", wm, end)
	}
	checkOnce(t, got, want)
	if _, err := a.p.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i, r := range replicas {
		polling := gauge(t, r.reg, "evident_source_polling")
		if wantPolling := float64(i); polling != wantPolling {
			t.Errorf("replica %d: evident_source_polling %v, want %v", i, polling, wantPolling)
		}
		if wm := gauge(t, r.reg, "evident_source_watermark_timestamp_seconds"); wm != float64(end.UnixNano())/1e9 {
			t.Errorf("replica %d: evident_source_watermark_timestamp_seconds %v, want the shared watermark", i, wm)
		}
	}
	for i, want := range []string{"this replica polls", "another replica polls; standing by"} {
		if !strings.Contains(replicas[i].logs.String(), want) {
			t.Errorf("replica %d did not log %q:\n%s", i, want, replicas[i].logs.String())
		}
	}
}

// TestPollerLosesLead checks that a replica which loses the lock in the
// middle of a window stops within a checkpoint, and that the replica
// that leads next, another or the same one taking the lock back,
// resumes from the last record: only what was handed on after it
// reaches the engine twice.
func TestPollerLosesLead(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv, want, cfg, start := servedRecording(t)
	defer srv.Close()
	for _, next := range []int64{1, 0} {
		t.Run(fmt.Sprintf("replica %d leads next", next), func(t *testing.T) {
			st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			// Every reading of the clock is 31 s after the one before:
			// each batch is followed by a checkpoint.
			var tick time.Duration
			now := func() time.Time { t := start.Add(tick); tick += 31 * time.Second; return t }

			got := newLedger()
			var leader atomic.Int64
			calls, lastBatch := 0, 0
			traces, profiles := got.consumers(func(handOn func() error) error {
				// The first replica loses the lock as it hands on its
				// fourth batch, a trace's.
				if calls++; calls != 4 {
					return handOn()
				}
				leader.Store(-1)
				before := len(got.spans)
				err := handOn()
				lastBatch = len(got.spans) - before
				return err
			})
			replicas := make([]*source.Poller, 2)
			for i := range replicas {
				replicas[i], err = source.NewPoller("tempo+pyroscope", cfg, source.PollerDeps{
					Pull: newPull(t, srv.URL, source.Auth{}, nil), Watermarks: st, Now: now,
					Lead:   func(context.Context) (bool, error) { return leader.Load() == int64(i), nil },
					Traces: traces, Profiles: profiles,
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if _, err := replicas[0].Poll(t.Context()); err == nil || !strings.Contains(err.Error(), "lost the lead") {
				t.Fatalf("the poll of the replica that lost the lock: %v, want it stopped", err)
			}
			handed := len(got.spans)
			leader.Store(next)
			if _, err := replicas[next].Poll(t.Context()); err != nil {
				t.Fatal(err)
			}
			twice := 0
			for _, n := range got.spans {
				if n > 1 {
					twice++
				}
			}
			if twice != lastBatch {
				t.Errorf("%d spans reached the engine twice, want the %d of the batch handed on after the last record (of %d handed on before)", twice, lastBatch, handed)
			}
			if len(got.spans) != len(want.spans) || !maps.Equal(got.samples, want.samples) {
				t.Errorf("%d spans and samples %v reached the engine, want %d and %v", len(got.spans), got.samples, len(want.spans), want.samples)
			}
		})
	}
}

// TestPollerResumesTraceAnsweredOtherwise checks that a trace whose
// window failed part-way is resumed by what was handed on, not by the
// position of its resources: Tempo's answer to the same trace may hold
// them in another order, or one more (a batch that arrived since), and
// every span still reaches the engine once.
func TestPollerResumesTraceAnsweredOtherwise(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	batch := map[string]ptrace.Traces{
		"gateway": traceSpan(1, "gateway", ptrace.SpanKindServer, 1, 0, t0),
		"orders":  traceSpan(1, "orders", ptrace.SpanKindServer, 2, 1, t0.Add(time.Millisecond)),
		"catalog": traceSpan(1, "catalog", ptrace.SpanKindServer, 3, 1, t0.Add(2*time.Millisecond)),
		"billing": traceSpan(1, "billing", ptrace.SpanKindServer, 4, 2, t0.Add(3*time.Millisecond)),
	}
	tempoOf := func(order ...string) *sourcetest.Tempo {
		tempo := sourcetest.NewTempo()
		// sourcetest.Tempo answers the batch added last first.
		for _, s := range slices.Backward(order) {
			tempo.Add(batch[s])
		}
		return tempo
	}
	for _, tc := range []struct {
		name          string
		before, after []string // the trace's resources in Tempo's answers before and after the failure
	}{
		{"resources in another order", []string{"gateway", "orders", "catalog"}, []string{"catalog", "gateway", "orders"}},
		{"a resource more first", []string{"gateway", "orders", "catalog"}, []string{"billing", "gateway", "orders", "catalog"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var serving atomic.Pointer[http.Handler]
			before, after := tempoOf(tc.before...).Handler(), tempoOf(tc.after...).Handler()
			serving.Store(&before)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*serving.Load()).ServeHTTP(w, r) }))
			defer srv.Close()
			got := newLedger()
			calls := 0
			traces, profiles := got.consumers(func(handOn func() error) error {
				if calls++; calls == 2 {
					return &pipeline.FullError{RetryAfter: time.Second}
				}
				return handOn()
			})
			st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			cfg := source.DefaultPollerConfig()
			now := t0.Add(30 * time.Minute)
			p, err := source.NewPoller("tempo", cfg, source.PollerDeps{
				Pull: source.Pull{Tempo: newPull(t, srv.URL, source.Auth{}, nil).Tempo}, Watermarks: st,
				Now: func() time.Time { return now }, Traces: traces, Profiles: profiles,
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Poll(t.Context()); !errors.Is(err, pipeline.ErrFull) {
				t.Fatalf("first poll: %v, want the queue full", err)
			}
			serving.Store(&after)
			now = now.Add(time.Minute)
			if _, err := p.Poll(t.Context()); err != nil {
				t.Fatalf("second poll: %v", err)
			}
			want := map[string]int{}
			for _, svc := range tc.after {
				id := batch[svc].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SpanID()
				want[svc+" "+hex.EncodeToString(id[:])] = 1
			}
			if !maps.Equal(got.spans, want) {
				t.Errorf("spans handed on, by service and span id:\n got %v\nwant %v, each once", got.spans, want)
			}
		})
	}
}

// TestPollerClockSkew checks that a store whose clock (its Date header)
// is behind evident's by more than a quarter of lag is warned about, once
// while it lasts, and shown in evident_source_clock_skew_seconds: the
// window ends at evident's clock minus lag, so what the apps stamp by a
// clock that far behind may be read by no window.
func TestPollerClockSkew(t *testing.T) {
	srv, _, cfg, now := servedRecording(t)
	defer srv.Close()
	for _, tc := range []struct {
		name     string
		behind   time.Duration // the server's clock behind the local one
		wantWarn bool
	}{
		{"in step", 0, false},
		{"a few seconds behind", 3 * time.Second, false},
		{"minutes behind", 5 * time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			skewed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Date", time.Now().Add(-tc.behind).UTC().Format(http.TimeFormat))
				srv.Config.Handler.ServeHTTP(w, r)
			}))
			defer skewed.Close()
			st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			var logs bytes.Buffer
			reg := prometheus.NewRegistry()
			c := &counts{}
			deps := c.deps(newPull(t, skewed.URL, source.Auth{}, nil), st, now, reg)
			deps.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
			p, err := source.NewPoller("tempo+pyroscope", cfg, deps)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if _, err := p.Poll(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if got := strings.Count(logs.String(), "this clock is"); got != map[bool]int{true: 1}[tc.wantWarn] {
				t.Errorf("warned of the clock %d times, want %v once:\n%s", got, tc.wantWarn, logs.String())
			}
			if got := gauge(t, reg, "evident_source_clock_skew_seconds"); got < tc.behind.Seconds()-2 || got > tc.behind.Seconds()+2 {
				t.Errorf("evident_source_clock_skew_seconds = %v, want about %v", got, tc.behind.Seconds())
			}
		})
	}
}

// TestPollerGivesUpFailingItem checks that a trace or a service's profile
// whose request fails at every poll, while the source answers the rest,
// is given up after a few polls, logged as an error naming it and
// counted, and that the rest of the window reaches the engine once, the
// polls counted across restarts of serve; and that a source failing as a
// whole is never given up on.
func TestPollerGivesUpFailingItem(t *testing.T) {
	clean, want, cfg, start := servedRecording(t)
	defer clean.Close()
	for _, tc := range []struct {
		name string
		// fails says whether a request fails, with status; the first
		// request of a path holding which decides the item that fails.
		which  string
		status int
		whole  bool // every request of the source fails
		// searchLimit, when set, is Tempo's search max_duration: the
		// window is searched in parts.
		searchLimit time.Duration
		// polls is how many polls read the window; 0: none of 10, and
		// nothing is given up.
		polls int
		// restart makes a new poller, as a restarted serve does, for
		// every poll.
		restart bool
	}{
		{"a trace that times out", "/api/v2/traces/", http.StatusGatewayTimeout, false, 0, 5, false},
		{"a trace answered 400", "/api/v2/traces/", http.StatusBadRequest, false, 0, 5, false},
		{"a trace answered 400, the window searched in parts", "/api/v2/traces/", http.StatusBadRequest, false, time.Hour, 5, false},
		{"a profile's merge failing", "SelectMerge", http.StatusServiceUnavailable, false, 0, 5, false},
		{"a trace rate-limited", "/api/v2/traces/", http.StatusTooManyRequests, false, 0, 0, false},
		{"tempo down", "/api/", http.StatusServiceUnavailable, true, 0, 0, false},
		{"a trace answered 400, serve restarted at every poll", "/api/v2/traces/", http.StatusBadRequest, false, 0, 5, true},
		{"a profile's merge failing, serve restarted at every poll", "SelectMerge", http.StatusServiceUnavailable, false, 0, 5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := loadServers(t)
			s.tempo.MaxDuration = tc.searchLimit
			next := s.handler()
			var item atomic.Value
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.URL.Path, tc.which) {
					body, _ := io.ReadAll(r.Body)
					r.Body = io.NopCloser(bytes.NewReader(body))
					key := r.URL.Path + string(body)
					item.CompareAndSwap(nil, key)
					if tc.whole || item.Load() == key {
						http.Error(w, "failing", tc.status)
						return
					}
				}
				next.ServeHTTP(w, r)
			}))
			defer srv.Close()
			got := newLedger()
			traces, profiles := got.consumers(func(handOn func() error) error { return handOn() })
			st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			now := start
			var logs bytes.Buffer
			var reg *prometheus.Registry
			newPoller := func() *source.Poller {
				reg = prometheus.NewRegistry()
				p, err := source.NewPoller("tempo+pyroscope", cfg, source.PollerDeps{
					Pull: newPull(t, srv.URL, source.Auth{}, nil), Watermarks: st,
					Now:    func() time.Time { return now },
					Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Registerer: reg,
					Traces: traces, Profiles: profiles,
				})
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			p := newPoller()
			polls := 0
			for poll := 1; poll <= 10 && polls == 0; poll++ {
				if tc.restart && poll > 1 {
					if err := p.Shutdown(t.Context()); err != nil {
						t.Fatal(err)
					}
					p = newPoller()
				}
				if _, err := p.Poll(t.Context()); err == nil {
					polls = poll
				}
				now = now.Add(time.Minute)
			}
			if polls != tc.polls {
				t.Fatalf("the window was read in %d polls, want %d (0: none in 10):\n%s", polls, tc.polls, logs.String())
			}
			gaveUp := gauge(t, reg, "evident_source_given_up_total")
			if tc.polls == 0 {
				if gaveUp != 0 {
					t.Errorf("gave up %v items of a source down or limiting", gaveUp)
				}
				return
			}
			if gaveUp != 1 || !strings.Contains(logs.String(), `"level":"ERROR","msg":"source: given up`) {
				t.Errorf("given up %v, want 1 logged as an error:\n%s", gaveUp, logs.String())
			}
			// The rest reached the engine, once.
			for k, n := range got.spans {
				if n != 1 {
					t.Errorf("span %s reached the engine %d times", k, n)
				}
			}
			if tc.which == "/api/v2/traces/" {
				if len(got.spans) >= len(want.spans) || len(got.spans) == 0 {
					t.Errorf("%d spans reached the engine, want fewer than %d (a trace given up) and some", len(got.spans), len(want.spans))
				}
				if len(got.samples) == 0 {
					t.Error("no profile reached the engine")
				}
			} else if len(got.spans) != len(want.spans) {
				t.Errorf("%d spans reached the engine, want %d", len(got.spans), len(want.spans))
			}
		})
	}
}
