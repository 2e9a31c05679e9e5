package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/evidentsec/evident/internal/source"
	"github.com/evidentsec/evident/internal/telemetry"
)

// sourceFlags are analyze's query-API sources: where telemetry is read
// when it is not in files.
type sourceFlags struct {
	tempo, pyroscope string
	since            time.Duration
	from, to         string
	services         []string
	// traceBudget and perEndpoint bound the traces read from Tempo.
	traceBudget, perEndpoint int
	// timeout bounds each request to a source; the default when 0.
	timeout time.Duration
}

func (s *sourceFlags) register(f *pflag.FlagSet) {
	f.StringVar(&s.tempo, "tempo", "", "read traces from this Tempo query URL (credentials from EVIDENT_TEMPO_*, docs/sources.md)")
	f.StringVar(&s.pyroscope, "pyroscope", "", "read profiles from this Pyroscope query URL (credentials from EVIDENT_PYROSCOPE_*)")
	f.DurationVar(&s.since, "since", 24*time.Hour, "--tempo/--pyroscope: read the window that ends now and lasts this long")
	f.StringVar(&s.from, "from", "", "--tempo/--pyroscope: start of the window (RFC 3339) instead of --since")
	f.StringVar(&s.to, "to", "", "--tempo/--pyroscope: end of the window (RFC 3339; default now)")
	d := source.DefaultTempoConfig()
	f.IntVar(&s.traceBudget, "trace-budget", d.TraceBudget, "--tempo: read at most this many traces")
	f.IntVar(&s.perEndpoint, "traces-per-endpoint", d.PerGroup, "--tempo: read at most this many traces per service and span kind, and per endpoint or edge, newest first")
	f.DurationVar(&s.timeout, "source-timeout", source.DefaultHTTPConfig().Timeout, "--tempo/--pyroscope: give up on a request after this long (a merged profile of a long window may need more)")
	f.StringSliceVar(&s.services, "service", nil, "--tempo/--pyroscope: read only these services (comma-separated or repeated)")
}

// validate reports every flag that is out of range, contradicts another
// or selects what no source reads; given reports whether a flag was on
// the command line. It reads nothing, so that analyze refuses such flags
// before any input is read.
func (s *sourceFlags) validate(given func(flag string) bool) error {
	var errs []error
	if s.since <= 0 {
		errs = append(errs, fmt.Errorf("--since %s: want a positive duration", s.since))
	}
	for _, n := range []struct {
		flag string
		v    int
	}{{"--trace-budget", s.traceBudget}, {"--traces-per-endpoint", s.perEndpoint}} {
		if n.v <= 0 {
			errs = append(errs, fmt.Errorf("%s %d: want a positive number of traces", n.flag, n.v))
		}
	}
	if s.timeout <= 0 {
		errs = append(errs, fmt.Errorf("--source-timeout %s: want a positive duration", s.timeout))
	}
	if given("since") && s.from != "" {
		// --to with --since is a window that ends at --to.
		errs = append(errs, errors.New("--since and --from both set the start of the window: give one of them"))
	}
	var selecting []string
	for _, f := range []string{"service", "since", "from", "to"} {
		if given(f) {
			selecting = append(selecting, "--"+f)
		}
	}
	switch {
	case s.tempo == "" && s.pyroscope == "" && (len(selecting) > 0 || given("source-timeout")):
		if len(selecting) > 0 {
			errs = append(errs, fmt.Errorf("%s %s what --tempo and --pyroscope read: name a source", joinFlags(selecting), agree(selecting, "select")))
		}
		if given("source-timeout") {
			errs = append(errs, errors.New("--source-timeout bounds the requests to --tempo and --pyroscope: name a source"))
		}
	case s.tempo == "":
		var tempoOnly []string
		for _, f := range []string{"trace-budget", "traces-per-endpoint"} {
			if given(f) {
				tempoOnly = append(tempoOnly, "--"+f)
			}
		}
		if len(tempoOnly) > 0 {
			errs = append(errs, fmt.Errorf("%s %s what --tempo reads: name a Tempo with --tempo", joinFlags(tempoOnly), agree(tempoOnly, "bound")))
		}
	}
	return errors.Join(errs...)
}

// joinFlags is "--a", "--a and --b" or "--a, --b and --c".
func joinFlags(flags []string) string {
	if len(flags) < 2 {
		return strings.Join(flags, "")
	}
	return strings.Join(flags[:len(flags)-1], ", ") + " and " + flags[len(flags)-1]
}

// agree is verb in agreement with joinFlags(flags): "selects" for one
// flag, "select" for several.
func agree(flags []string, verb string) string {
	if len(flags) == 1 {
		return verb + "s"
	}
	return verb
}

// window returns the window the flags name, ending at now by default.
func (s *sourceFlags) window(now time.Time) (source.Window, error) {
	w := source.Window{From: now.Add(-s.since), To: now}
	if s.to != "" {
		t, err := time.Parse(time.RFC3339, s.to)
		if err != nil {
			return w, fmt.Errorf("--to %q: want RFC 3339 (2026-12-01T00:00:00Z): %w", s.to, err)
		}
		w.To, w.From = t, t.Add(-s.since)
	}
	if s.from != "" {
		t, err := time.Parse(time.RFC3339, s.from)
		if err != nil {
			return w, fmt.Errorf("--from %q: want RFC 3339 (2026-12-01T00:00:00Z): %w", s.from, err)
		}
		w.From = t
	}
	if !w.From.Before(w.To) {
		return w, fmt.Errorf("window %s to %s: the start must be before the end", w.From.Format(time.RFC3339), w.To.Format(time.RFC3339))
	}
	return w, nil
}

// newPull builds the sources the flags name, with credentials from the
// environment; a zero Pull when none is named. logger gets what their TLS
// clients say, as every other client's.
func (s *sourceFlags) newPull(getenv func(string) string, logger *slog.Logger) (source.Pull, error) {
	p := source.Pull{Services: s.services}
	if s.tempo != "" {
		auth, err := source.AuthFromEnv("EVIDENT_TEMPO", getenv)
		if err != nil {
			return p, fmt.Errorf("--tempo: %w", err)
		}
		cfg := source.DefaultTempoConfig()
		cfg.URL, cfg.Auth = s.tempo, auth
		if s.timeout != 0 {
			cfg.Timeout = s.timeout
		}
		if s.traceBudget != 0 {
			cfg.TraceBudget, cfg.PerGroup = s.traceBudget, s.perEndpoint
		}
		if p.Tempo, err = source.NewTempo(cfg, logger); err != nil {
			return p, fmt.Errorf("--tempo: %w", err)
		}
	}
	if s.pyroscope != "" {
		auth, err := source.AuthFromEnv("EVIDENT_PYROSCOPE", getenv)
		if err != nil {
			return p, fmt.Errorf("--pyroscope: %w", err)
		}
		cfg := source.DefaultPyroscopeConfig()
		cfg.URL, cfg.Auth = s.pyroscope, auth
		if s.timeout != 0 {
			cfg.Timeout = s.timeout
		}
		if p.Pyroscope, err = source.NewPyroscope(cfg, logger); err != nil {
			return p, fmt.Errorf("--pyroscope: %w", err)
		}
	}
	return p, nil
}

// pullSources reads the window of the sources the flags name into h and
// says on stderr what was transferred. elsewhere says which services h
// has the spans of already (source.Pull.Elsewhere).
func pullSources(ctx context.Context, s sourceFlags, now time.Time, h telemetry.Handler, elsewhere func(string) bool, stderr io.Writer, warn func(error)) error {
	if s.tempo == "" && s.pyroscope == "" {
		// validate refused the flags that select from a source.
		return nil
	}
	w, err := s.window(now)
	if err != nil {
		return err
	}
	p, err := s.newPull(os.Getenv, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return err
	}
	p.Elsewhere = elsewhere
	held := &heldHandler{next: h}
	skip := func(err error) {
		// Not a skip: the report has the service's findings as unknown,
		// for want of profiles.
		if errors.Is(err, source.ErrNoCPUSamples) {
			fmt.Fprintf(stderr, "evident: %v\n", err)
			return
		}
		warn(err)
	}
	if err := p.Run(ctx, w, held, skip); err != nil {
		return err
	}
	type read struct {
		name  string
		stats source.Stats
	}
	var reads []read
	if p.Tempo != nil {
		reads = append(reads, read{"Tempo", p.Tempo.Stats()})
	}
	if p.Pyroscope != nil {
		reads = append(reads, read{"Pyroscope", p.Pyroscope.Stats()})
	}
	var st source.Stats
	var split []string
	for _, r := range reads {
		st.Requests += r.stats.Requests
		st.Bytes += r.stats.Bytes
		if r.stats.Parts > 1 {
			// The parts are of equal length, to the millisecond.
			part := (w.To.Sub(w.From) / time.Duration(r.stats.Parts)).Round(time.Second)
			split = append(split, fmt.Sprintf("%s in %d parts of %s", r.name, r.stats.Parts, part))
		}
	}
	parts := ""
	if len(split) > 0 {
		parts = fmt.Sprintf(" (%s: the window is longer than it takes in one query)", strings.Join(split, ", "))
	}
	fmt.Fprintf(stderr, "evident: read %s to %s from the sources: %d requests, %d bytes%s%s\n", w.From.UTC().Format(time.RFC3339), w.To.UTC().Format(time.RFC3339), st.Requests, st.Bytes, parts, held)
	return nil
}

// heldHandler passes telemetry on and notes the time it covers: a store
// answers the part of a window it no longer keeps (Pyroscope's
// max_query_lookback, Tempo's retention) as empty, and the window asked
// for is not the one the report is about.
type heldHandler struct {
	next             telemetry.Handler
	traces, profiles source.Window
}

func (h *heldHandler) Spans(spans []telemetry.Span) error {
	for i := range spans {
		widen(&h.traces, spans[i].Start, spans[i].Start)
	}
	return h.next.Spans(spans)
}

func (h *heldHandler) Profile(b *telemetry.ProfileBatch) error {
	if !b.Start.IsZero() {
		widen(&h.profiles, b.Start, b.Start.Add(b.Duration))
	}
	return h.next.Profile(b)
}

// widen makes w cover from to to.
func widen(w *source.Window, from, to time.Time) {
	if w.From.IsZero() || from.Before(w.From) {
		w.From = from
	}
	if to.After(w.To) {
		w.To = to
	}
}

// String says what the sources held: "; traces T to T, profiles T to T".
func (h *heldHandler) String() string {
	var parts []string
	for _, k := range []struct {
		what string
		w    source.Window
	}{{"traces", h.traces}, {"profiles", h.profiles}} {
		if !k.w.From.IsZero() {
			parts = append(parts, fmt.Sprintf("%s %s to %s", k.what, k.w.From.UTC().Format(time.RFC3339), k.w.To.UTC().Format(time.RFC3339)))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, ", ")
}
