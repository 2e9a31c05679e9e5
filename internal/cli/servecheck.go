package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/sqlite"
	"github.com/evidentsec/evident/internal/tlsconfig"
	"github.com/evidentsec/evident/internal/vulndb"
)

// forRole is c as a process of role runs it: the engines and the API
// replicas take telemetry from Kafka and the store only, so their
// receivers are off.
func (c serveConfig) forRole(role string) serveConfig {
	if role == roleEngine || role == roleAPI {
		c.OTLP.GRPCEndpoint, c.OTLP.HTTPEndpoint, c.Pyroscope.Endpoint = "", "", ""
	}
	return c
}

// flags are the sources section as the source flags of analyze, which
// build the sources of both commands.
func (c sourcesConfig) flags() *sourceFlags {
	return &sourceFlags{tempo: c.Tempo, pyroscope: c.Pyroscope, services: c.Services, traceBudget: c.TraceBudget, perEndpoint: c.TracesPerEndpoint, timeout: c.Timeout}
}

// serveVulnDB opens the vulnerability database serve assesses with: the
// sources of --vulns, else <data>/vulndb, with the knowledge files of the
// configuration. A receiver assesses nothing and opens none (nil). The
// problems are the records, files and knowledge entries skipped.
func serveVulnDB(ctx context.Context, g *globals, fl serveFlags, role string, userKnowledge []string) (*vulndb.DB, []vulndb.LoadError, error) {
	if role == roleReceiver {
		return nil, nil, nil
	}
	db, problems, err := openVulnDB(ctx, g, fl.vulns, fl.kev, fl.epss, userKnowledge, fl.alsoVulns...)
	if err != nil && len(fl.vulns) > 0 && !errors.Is(err, errKnowledge) {
		err = fmt.Errorf("--vulns %s: %w", strings.Join(fl.vulns, ","), err)
	}
	return db, problems, err
}

// serveFindings reads the reports of --findings, matching SBOMs against
// db (nil matches nothing), and gives them their services: the artifact a
// report names, or SERVICE=FILE, as telemetry comes only later. warn is
// told of the records skipped, note of the services inferred. Without
// --findings it returns none, and serve takes the stored findings.
func serveFindings(fl serveFlags, db *vulndb.DB, warn func(error), note func(string)) ([]findings.Finding, error) {
	if len(fl.findings) == 0 {
		return nil, nil
	}
	inputs, err := importFindings(fl.findings, db, warn)
	if err != nil {
		return nil, err
	}
	return assignFindings(inputs, seenServices{}, db, note)
}

// checkServe reads what a start of serve with cfg and fl would read before
// it serves, with the functions the start reads it with: the
// vulnerability database, the reports of --findings, the certificates,
// keys and CAs of the listeners and of the outbound clients (alert sinks,
// OIDC, Kafka), the sources' credentials, where the alert files go, and
// whether a listener beyond loopback could admit anyone
// (checkListenerAuth). The listeners' endpoints were checked with the
// configuration (listener.ValidateEndpoint). It binds no listener,
// creates no file and connects to nothing; it reads the tokens of an
// existing store only when a listener beyond loopback needs them. The
// error names every problem, each with its flag or configuration key.
//
// A data directory without a vulnerability database is only noted on
// stderr: a deployment often fills it ("evident db update") just before
// serve starts, after the check.
func checkServe(ctx context.Context, g *globals, cfg fileConfig, fl serveFlags) error {
	role := fl.role
	sc := cfg.Serve.forRole(role)
	var errs []error
	problem := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}

	db, loadProblems, err := serveVulnDB(ctx, g, fl, role, cfg.Knowledge)
	switch {
	case err != nil && len(fl.vulns) == 0 && errors.Is(err, vulndb.ErrNoDatabase):
		fmt.Fprintf(g.stderr, "evident: note: %v; serve refuses to start without one\n", err)
	case err != nil:
		errs = append(errs, err)
	}
	// A file the user named that cannot be read at all is a problem; a
	// skipped record is not: serve starts without it.
	for _, p := range loadProblems {
		switch {
		case p.File == fl.kev && p.File != "":
			problem("--kev "+p.File, errors.New(p.Reason))
		case p.File == fl.epss && p.File != "":
			problem("--epss "+p.File, errors.New(p.Reason))
		case errors.Is(p, vulndb.ErrNoSource) && slices.Contains(fl.vulns, p.File):
			problem("--vulns "+p.File, errors.New(p.Reason))
		}
	}
	_, err = serveFindings(fl, db, func(error) {}, func(string) {})
	errs = append(errs, err)

	// The listeners read their certificates as they start.
	listeners := []struct {
		key, name string
		on        bool
		tls       tlsconfig.ServerConfig
	}{
		{"serve.api.tls", "api", sc.API.Endpoint != "", sc.API.TLS},
		{"serve.otlp.tls", "otlp receiver", sc.OTLP.GRPCEndpoint != "" || sc.OTLP.HTTPEndpoint != "", sc.OTLP.TLS},
		{"serve.pyroscope.tls", "pyroscope receiver", sc.Pyroscope.Endpoint != "", sc.Pyroscope.TLS},
	}
	// What the constructors warn of as serve starts (a certificate that
	// has expired, a server not verified), printed as notes: serve
	// starts with it.
	notes := func(key string) *slog.Logger { return slog.New(noteHandler{w: g.stderr, key: key}) }
	for _, l := range listeners {
		if l.on && l.tls.Enabled() {
			_, err := tlsconfig.NewServer(l.tls, tlsconfig.ServerOptions{Name: l.name, Logger: notes(l.key)})
			problem(l.key, err)
		}
	}
	sinkTLS := func(kind string, i int, name string, tc tlsconfig.ClientConfig) {
		key := fmt.Sprintf("serve.alerts.%s[%d].tls", kind, i)
		_, err := sinkClient(name, tc, notes(key))
		problem(key, err)
	}
	for i, w := range sc.Alerts.Webhooks {
		sinkTLS("webhooks", i, w.Name, w.TLS)
	}
	for i, m := range sc.Alerts.Alertmanager {
		sinkTLS("alertmanager", i, m.Name, m.TLS)
	}
	for i, s := range sc.Alerts.Slack {
		sinkTLS("slack", i, s.Name, s.TLS)
	}
	for i, j := range sc.Alerts.JSONLines {
		problem(fmt.Sprintf("serve.alerts.json_lines[%d].path %s", i, j.Path), checkOutputFile(j.Path))
	}
	if oidc := sc.Auth.OIDC; oidc.Issuer != "" {
		_, err := tlsconfig.NewClient(oidc.TLS, "oidc issuer", notes("serve.auth.oidc.tls"))
		problem("serve.auth.oidc.tls", err)
	}
	if k := cfg.Cluster.Kafka; k.TLS != nil && (role == roleReceiver || role == roleEngine) {
		_, err := tlsconfig.NewClient(*k.TLS, "kafka", notes("cluster.kafka.tls"))
		problem("cluster.kafka.tls", err)
	}
	// validateRole refused sources for the roles that poll none.
	if src := sc.Sources; src.Tempo != "" || src.Pyroscope != "" {
		_, err := src.flags().newPull(os.Getenv, notes("serve.sources"))
		problem("serve.sources", err)
	}
	errs = append(errs, checkListenerAuth(ctx, g, sc, fl.insecure))
	return errors.Join(errs...)
}

// noteHandler is a slog.Handler that prints what is logged at warning
// level or above as a note of --check-config, under the configuration
// key of what logged it: "evident: note: KEY: message (attributes); serve
// starts with it".
type noteHandler struct {
	w     io.Writer
	key   string
	attrs []slog.Attr
}

// Enabled reports whether l is worth a note: a warning or above.
func (h noteHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

// Handle prints r as one line.
func (h noteHandler) Handle(_ context.Context, r slog.Record) error {
	var attrs []string
	add := func(a slog.Attr) bool {
		v := a.Value.Resolve()
		if v.Kind() == slog.KindTime {
			attrs = append(attrs, a.Key+"="+v.Time().UTC().Format(time.RFC3339))
		} else {
			attrs = append(attrs, a.Key+"="+v.String())
		}
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	line := "evident: note: " + h.key + ": " + r.Message
	if len(attrs) > 0 {
		line += " (" + strings.Join(attrs, ", ") + ")"
	}
	_, err := fmt.Fprintln(h.w, line+"; serve starts with it")
	return err
}

// WithAttrs returns h with attrs added to every note.
func (h noteHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h.attrs = append(slices.Clone(h.attrs), attrs...)
	return h
}

// WithGroup returns h: a note is one line, its attributes ungrouped.
func (h noteHandler) WithGroup(string) slog.Handler { return h }

// listenerModes decides the mode of each listener sc binds with a's
// credentials (auth.Authenticator.Modes), and returns the listeners
// decided. It is the check that serve (server.guards) and --check-config
// both run before anything listens: a listener beyond loopback that
// nobody could be admitted to is refused (auth.ErrRefuse).
func listenerModes(a *auth.Authenticator, sc serveConfig, insecure bool) ([]auth.Listener, map[string]auth.Mode, error) {
	var ls []auth.Listener
	for _, l := range []auth.Listener{
		{Name: listenerAPI, Endpoint: sc.API.Endpoint}, {Name: listenerOTLPGRPC, Endpoint: sc.OTLP.GRPCEndpoint},
		{Name: listenerOTLPHTTP, Endpoint: sc.OTLP.HTTPEndpoint}, {Name: listenerPyroscope, Endpoint: sc.Pyroscope.Endpoint},
	} {
		if l.Endpoint != "" {
			ls = append(ls, l)
		}
	}
	modes, err := a.Modes(ls, insecure)
	return ls, modes, err
}

// tokenList is a fixed list of tokens, for an Authenticator that
// --check-config builds without a store.
type tokenList []store.Token

func (t tokenList) Tokens(context.Context) ([]store.Token, error) { return t, nil }

// checkListenerAuth runs listenerModes as serve would. With an OIDC
// issuer somebody can always be admitted (serve fetches its discovery
// document as it starts, which the check does not). Otherwise only the
// tokens can admit anyone, and they are read only when a listener
// beyond loopback needs them: from the SQLite store under --data if it
// exists (sqlite.ReadTokens, which leaves a store of an older evident at
// its schema; none exists before the first serve, so there is no token
// either). PostgreSQL is not
// connected to: its tokens go unchecked, which is noted on stderr.
func checkListenerAuth(ctx context.Context, g *globals, sc serveConfig, insecure bool) error {
	if sc.Auth.OIDC.Issuer != "" {
		return nil
	}
	modes := func(tokens auth.Tokens) error {
		a, err := auth.New(ctx, sc.Auth, auth.Deps{Tokens: tokens})
		if err != nil {
			return err
		}
		if err := a.Reload(ctx); err != nil {
			return err
		}
		_, _, err = listenerModes(a, sc, insecure)
		return err
	}
	err := modes(tokenList(nil))
	if !errors.Is(err, auth.ErrRefuse) {
		return err
	}
	if sc.Store.Backend == backendPostgres {
		fmt.Fprintf(g.stderr, "evident: note: the API tokens are in PostgreSQL (serve.store), which --check-config does not connect to; serve refuses to start if it holds no live token: %v\n", firstLine(err))
		return nil
	}
	dir := filepath.Join(g.dataDir, "store")
	if _, serr := os.Stat(filepath.Join(dir, sqlite.FileName)); serr != nil {
		return err
	}
	tokens, rerr := sqlite.ReadTokens(ctx, dir, sc.Store.Config)
	if rerr != nil {
		return fmt.Errorf("read the API tokens: %w", rerr)
	}
	return modes(tokenList(tokens))
}

// firstLine is the first line of err's message.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
