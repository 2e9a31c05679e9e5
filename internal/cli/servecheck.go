package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
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
	for _, l := range listeners {
		if l.on && l.tls.Enabled() {
			srv, err := tlsconfig.NewServer(l.tls, tlsconfig.ServerOptions{Name: l.name})
			problem(l.key, err)
			// serve starts with it, as with no vulnerability database
			// yet: cert-manager may renew it before.
			if err == nil && tlsconfig.Expired(srv.Leaf(), time.Now()) {
				fmt.Fprintf(g.stderr, "evident: note: %s: %s expired at %s; serve starts with it, and every client that verifies it refuses the handshake\n",
					l.key, l.tls.CertFile, srv.Leaf().NotAfter.UTC().Format(time.RFC3339))
			}
		}
	}
	// A client sends its certificate as a listener serves its own: with
	// a note when it has expired, once the files read.
	clientTLS := func(key string, tc tlsconfig.ClientConfig, err error) {
		problem(key, err)
		if err == nil {
			noteExpiredClient(g.stderr, key, tc, time.Now())
		}
	}
	sinkTLS := func(kind string, i int, name string, tc tlsconfig.ClientConfig) {
		_, err := sinkClient(name, tc, nil)
		clientTLS(fmt.Sprintf("serve.alerts.%s[%d].tls", kind, i), tc, err)
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
		_, err := tlsconfig.NewClient(oidc.TLS, "oidc issuer", nil)
		clientTLS("serve.auth.oidc.tls", oidc.TLS, err)
	}
	if k := cfg.Cluster.Kafka; k.TLS != nil && (role == roleReceiver || role == roleEngine) {
		_, err := tlsconfig.NewClient(*k.TLS, "kafka", nil)
		clientTLS("cluster.kafka.tls", *k.TLS, err)
	}
	// validateRole refused sources for the roles that poll none.
	if src := sc.Sources; src.Tempo != "" || src.Pyroscope != "" {
		_, err := src.flags().newPull(os.Getenv, nil)
		problem("serve.sources", err)
		for _, s := range []struct{ name, url, env string }{{"tempo", src.Tempo, "EVIDENT_TEMPO"}, {"pyroscope", src.Pyroscope, "EVIDENT_PYROSCOPE"}} {
			if s.url != "" && err == nil {
				noteExpiredClient(g.stderr, fmt.Sprintf("serve.sources.%s (%s_CERT_FILE)", s.name, s.env),
					tlsconfig.ClientConfig{CertFile: os.Getenv(s.env + "_CERT_FILE"), KeyFile: os.Getenv(s.env + "_KEY_FILE")}, time.Now())
			}
		}
	}
	errs = append(errs, checkListenerAuth(ctx, g, sc, fl.insecure))
	return errors.Join(errs...)
}

// noteExpiredClient says on stderr, under key, that the client certificate
// of tc had expired at now. serve sends it, as it serves a listener's
// (there is no other to send), and every server that verifies it
// refuses the handshake. A tc whose files do not load was reported by the
// client's constructor.
func noteExpiredClient(stderr io.Writer, key string, tc tlsconfig.ClientConfig, now time.Time) {
	if tc.CertFile == "" {
		return
	}
	cert, err := tls.LoadX509KeyPair(tc.CertFile, tc.KeyFile)
	if err != nil || !tlsconfig.Expired(cert.Leaf, now) {
		return
	}
	fmt.Fprintf(stderr, "evident: note: %s: %s expired at %s; serve starts with it, and every server that verifies it refuses the handshake\n",
		key, tc.CertFile, cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
}

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
