package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/evidentsec/evident/internal/alert"
	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/cluster"
	"github.com/evidentsec/evident/internal/engine"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/httpapi"
	"github.com/evidentsec/evident/internal/ingest/admission"
	"github.com/evidentsec/evident/internal/ingest/kafka"
	"github.com/evidentsec/evident/internal/ingest/otlp"
	"github.com/evidentsec/evident/internal/ingest/pyroscope"
	"github.com/evidentsec/evident/internal/knowledge"
	"github.com/evidentsec/evident/internal/listener"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/redact"
	"github.com/evidentsec/evident/internal/report"
	"github.com/evidentsec/evident/internal/source"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/postgres"
	"github.com/evidentsec/evident/internal/telemetry"
	"github.com/evidentsec/evident/internal/tenant"
	"github.com/evidentsec/evident/internal/tlsconfig"
	"github.com/evidentsec/evident/internal/ui"
	"github.com/evidentsec/evident/internal/vulndb"
	"github.com/evidentsec/evident/internal/waf"
)

// serveFlags are the command-line inputs of evident serve; the listener
// flags override the configuration file when they are given.
type serveFlags struct {
	config, kev, epss                  string
	vulns, findings                    []string
	api, otlpGRPC, otlpHTTP, pyroscope string
	// insecure serves listeners beyond loopback without credentials.
	insecure bool
	// role is the part of the scaled-out deployment this process plays,
	// or all of them.
	role string
	// checkConfig stops after the configuration and flags are checked.
	checkConfig bool
	// alsoVulns are read beside --vulns or <data>/vulndb: the demo's
	// examples' recorded records.
	alsoVulns []string
}

func newServeCmd(g *globals) *cobra.Command {
	var fl serveFlags
	cmd := &cobra.Command{
		Use:   "serve [--config FILE] [--vulns PATH] [--findings [SERVICE=]FILE...]",
		Short: "Receive traces and profiles, keep verdicts up to date, serve the API and fire alerts",
		Long: `Run evident as a service: OTLP traces and profiles (gRPC and HTTP) and
Pyroscope profiles (POST /ingest) are logged to the store (embedded SQLite
under --data, or the PostgreSQL database of serve.store), applied to the
runtime model, and the findings re-assessed as the evidence arrives.
Detections (a vulnerable function running for the first time,
exploit payloads, new paths to sensitive stores, anomalies) become alerts,
sent to the configured sinks and kept for the API.

Findings come from --findings (as in analyze) or, without it, from the store
(the last ones uploaded to POST /api/v1/findings). Vulnerability records come
from --vulns or <data>/vulndb ("evident db update").

Every listener binds to loopback unless configured otherwise; an empty
--otlp-grpc, --otlp-http or --pyroscope turns that listener off (the API's cannot be
turned off: it serves /healthz, /metrics, the API and the UI). A listener
bound beyond loopback asks every client for a token ("evident token create")
or an OIDC JWT; without any, evident refuses to start unless --insecure
(docs/security.md). Flags override the configuration file
(docs/configuration.md). SIGINT or SIGTERM stops the
receivers first, so that what they accepted drains into the store.`,
		Example: `  evident serve --vulns examples/shop/recorded/osv --findings examples/shop/recorded/findings
  evident token create --name ops --role admin && evident serve --config evident.yaml --api 0.0.0.0:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(fl.config)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			if err := fl.override(cmd, &cfg.Serve); err != nil {
				return withCode(ExitUsage, err)
			}
			if err := validateRole(fl.role, cfg); err != nil {
				return withCode(ExitUsage, err)
			}
			if fl.checkConfig {
				if err := checkServe(cmd.Context(), g, cfg, fl); err != nil {
					return withCode(ExitUsage, err)
				}
				_, err := fmt.Fprintln(g.stdout, "evident: configuration ok")
				return err
			}
			log := slog.New(slog.NewTextHandler(g.stderr, nil))
			srv, err := startServer(cmd.Context(), g, cfg, fl, log)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			srv.printAddrs(g.stdout)
			<-cmd.Context().Done()
			log.Info("shutting down", "timeout", cfg.Serve.ShutdownTimeout)
			ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), cfg.Serve.ShutdownTimeout)
			defer cancel()
			return srv.Shutdown(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.config, "config", "", "configuration file (docs/configuration.md)")
	f.StringSliceVar(&fl.vulns, "vulns", nil, "OSV source instead of <data>/vulndb: directory, all.zip or vuln.go.dev layout (repeatable)")
	f.StringVar(&fl.kev, "kev", "", "CISA KEV catalog (JSON feed) instead of <data>/vulndb/kev.json")
	f.StringVar(&fl.epss, "epss", "", "FIRST's EPSS scores (CSV, gzipped or not) instead of <data>/vulndb/epss.csv.gz")
	f.StringArrayVar(&fl.findings, "findings", nil, "scanner report or SBOM as [SERVICE[,SERVICE]=]FILE, or a directory of SERVICE.* reports (repeatable); replaces the stored findings")
	f.StringVar(&fl.api, "api", "", "HTTP API listen address (default 127.0.0.1:8080)")
	f.StringVar(&fl.otlpGRPC, "otlp-grpc", "", `OTLP/gRPC listen address (default 127.0.0.1:4317; "" turns it off)`)
	f.StringVar(&fl.otlpHTTP, "otlp-http", "", `OTLP/HTTP listen address (default 127.0.0.1:4318; "" turns it off)`)
	f.StringVar(&fl.pyroscope, "pyroscope", "", `Pyroscope /ingest listen address (default 127.0.0.1:4040; "" turns it off)`)
	f.StringVar(&fl.role, "role", roleAll, "part of the scaled-out deployment to run: receiver, engine, api, or all of them in one process (docs/scaling.md)")
	f.BoolVar(&fl.checkConfig, "check-config", false, "check the configuration file, the flags, the listen addresses, whether a listener beyond loopback could admit anyone, and the files they name (findings, vulnerability database, certificates), as a start would; print what is wrong, and exit without serving (status 2 if anything is)")
	f.BoolVar(&fl.insecure, "insecure", false, "serve listeners bound beyond loopback WITHOUT authentication (anyone who reaches them can read and replace findings)")
	return cmd
}

// override applies the listener flags that were given, a default value
// given too, and refuses an address that is none naming its flag, not
// the key of the file it replaces; then it checks the serve section as
// the flags left it and fl.role runs it (forRole), naming the file
// (loadConfig does not check it).
func (fl serveFlags) override(cmd *cobra.Command, c *serveConfig) error {
	var errs []error
	for _, l := range []struct {
		flag, value string
		endpoint    *string
	}{
		{"api", fl.api, &c.API.Endpoint},
		{"otlp-grpc", fl.otlpGRPC, &c.OTLP.GRPCEndpoint},
		{"otlp-http", fl.otlpHTTP, &c.OTLP.HTTPEndpoint},
		{"pyroscope", fl.pyroscope, &c.Pyroscope.Endpoint},
	} {
		if !cmd.Flags().Changed(l.flag) {
			continue
		}
		*l.endpoint = l.value
		switch {
		case l.value == "" && l.flag == "api":
			errs = append(errs, errors.New(`--api "": the API listener cannot be turned off (it serves /healthz, /metrics, the API and the web UI); give it a host:port, e.g. 127.0.0.1:8080`))
		case l.value != "":
			if err := listener.ValidateEndpoint(l.value); err != nil {
				errs = append(errs, fmt.Errorf("--%s %q: %w", l.flag, l.value, err))
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// The file is often shared by every role: the receivers' settings,
	// which an engine or an API replica turns off, are not its to refuse.
	if err := c.forRole(fl.role).Validate(); err != nil {
		if fl.config != "" {
			return fmt.Errorf("config %s: %w", fl.config, err)
		}
		return err
	}
	return nil
}

// server is evident serve composed: the store, the engine, the alert
// router, the API and the receivers, started in that order and shut
// down in the reverse one, so that receivers stop taking data first and
// what they accepted drains through the engine into the store.
type server struct {
	log  *slog.Logger
	st   servedStore
	auth *auth.Authenticator
	// eng, alerts and router are the default tenant's; tenants holds
	// them and every other tenant's.
	eng     *engine.Engine
	alerts  *alertLog
	router  *alert.Router
	tenants *tenant.Registry[*tenantUnit]
	api     *httpapi.Server
	adm     *admission.Controller
	otlp    *otlp.Receiver
	pyro    *pyroscope.Receiver
	retain  *retainer
	poll    *source.Poller
	// vulnDB describes the vulnerability database read at start, which
	// every report of every tenant states (report.Result.VulnDB).
	vulnDB vulndb.Stats
	// role is the part of the scaled-out deployment this server plays;
	// producer (receiver), reader (engine), view and leader (API) are
	// that role's.
	role     string
	producer *kafka.Producer
	reader   *kafka.Reader
	view     *cluster.View
	leader   cluster.Leader
	// closers are the sinks that hold files, closed after the router.
	closers []io.Closer
	// started are the components that started, in start order.
	started []pipeline.Component
	ready   atomic.Bool

	// apiScheme, otlpScheme and pyroScheme are "https" for a listener
	// that serves TLS, else "http": the addresses printed and linked to
	// name them.
	apiScheme, otlpScheme, pyroScheme string

	shutdownOnce sync.Once
	shutdownErr  error
}

// startServer opens the store under g.dataDir, builds every component
// from cfg and starts them. On an error it shuts down what it started.
func startServer(ctx context.Context, g *globals, cfg fileConfig, fl serveFlags, log *slog.Logger) (*server, error) {
	sc := cfg.Serve
	role := cmp.Or(fl.role, roleAll)
	if err := validateRole(role, cfg); err != nil {
		return nil, err
	}
	sc = sc.forRole(role)
	s := &server{log: log, role: role}
	ok := false
	defer func() {
		if !ok {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sc.ShutdownTimeout)
			defer cancel()
			s.Shutdown(sctx)
		}
	}()

	var vulns assess.Vulns
	// A --findings path that cannot be opened is told before the
	// database is looked for, as analyze does.
	if err := findingsExist(fl.findings); err != nil {
		return nil, err
	}
	db, problems, err := serveVulnDB(ctx, g, fl, role, cfg.Knowledge)
	if err != nil {
		return nil, err
	}
	records := 0
	for _, p := range problems {
		if errors.Is(p, knowledge.ErrInvalid) {
			// db stats reads no configuration: each is said here.
			log.Warn("knowledge: entry skipped", "err", p)
		} else {
			records++
		}
	}
	if records > 0 {
		log.Warn("vulnerability database: records or affected entries skipped (evident db stats lists them)", "skipped", records)
	}
	if db != nil {
		vulns = db
	}
	s.vulnDB = db.Stats()
	initial, err := serveFindings(fl, db, func(err error) { log.Warn("findings: skipped", "err", err) }, func(s string) { log.Info(s) })
	if err != nil {
		return nil, err
	}

	// evident's own metrics, the Go runtime's and the process's: a
	// dashboard of evident's health needs all three.
	reg := prometheus.NewRegistry()
	if err := errors.Join(
		reg.Register(collectors.NewGoCollector()),
		reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
		reg.Register(buildInfoMetric(readBuildInfo())),
	); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	s.st, err = openStore(ctx, g.dataDir, sc.Store, storeServe, func(err error) { log.Warn("store", "err", err) })
	if err != nil {
		return nil, err
	}
	// SQLite's Open already keeps every other serve out; a PostgreSQL
	// database is shared, and only one serve may ingest into it.
	pg, _ := s.st.(*postgres.Store)
	if pg != nil && sc.ingests() && role == roleAll {
		if err := pg.LockIngest(ctx); err != nil {
			return nil, err
		}
	}
	if err := reg.Register(s.st.Collector()); err != nil {
		return nil, fmt.Errorf("register store metrics: %w", err)
	}
	guard, err := s.guards(ctx, sc, fl.insecure, reg)
	if err != nil {
		return nil, err
	}

	s.apiScheme, s.otlpScheme, s.pyroScheme = httpScheme(sc.API.TLS), httpScheme(sc.OTLP.TLS), httpScheme(sc.Pyroscope.TLS)
	if sc.Alerts.LinkPrefix == "" {
		prefix, named, err := defaultLinkPrefix(sc.API, os.Hostname)
		switch {
		case err != nil:
			log.Warn("alerts link to an address nobody paged can reach; serve.alerts.link_prefix sets it", "link_prefix", prefix, "err", err)
		case named:
			log.Info("alerts link to this machine's hostname, as the API listens on every address; serve.alerts.link_prefix sets the links", "link_prefix", prefix)
		}
		sc.Alerts.LinkPrefix = prefix
	}
	sinks, closers, err := buildSinks(sc.Alerts, log.With("component", "alert"))
	s.closers = closers
	if err != nil {
		return nil, err
	}
	// Each tenant has its own store view, alert router (whose store sink,
	// live feed and configured sinks are the tenant's only) and engine
	// with its model; their metrics carry a tenant label.
	red, err := redact.New(sc.Redaction)
	if err != nil {
		return nil, err
	}
	corpus, err := waf.LoadCorpus(nil)
	if err != nil {
		return nil, err
	}
	// An engine attributes frames with what its tenant's findings tell
	// attribution, made again whenever they change (an upload).
	attributorOf := func(fs []findings.Finding) *attribution.Attributor {
		return attribution.New(attributionConfig(fs, nil, cfg.attribution()))
	}
	newUnit := func(id string) (*tenantUnit, error) {
		st, tlog, treg := store.Store(s.st), log, prometheus.WrapRegistererWith(prometheus.Labels{"tenant": id}, reg)
		alertTenant := "" // the default tenant's alerts name none, as before tenants
		if id != store.DefaultTenant {
			if st, err = s.st.Tenant(id); err != nil {
				return nil, err
			}
			tlog, alertTenant = log.With("tenant", id), id
		}
		u := &tenantUnit{alerts: newAlertLog(st, tlog), store: st}
		if u.router, err = alert.NewRouter(sc.Alerts.Config, append([]alert.Sink{u.alerts}, sinks[id]...),
			alert.Deps{Logger: tlog.With("component", "alert"), Registerer: treg, Tenant: alertTenant}); err != nil {
			return nil, err
		}
		var (
			est     engine.Store   = st
			alerter engine.Alerter = u.router
		)
		if role == roleAPI {
			// The merged view's verdict changes and topology alerts are
			// the leading API replica's to record; the engine starts from
			// the view.
			tst, err := pg.ForTenant(id)
			if err != nil {
				return nil, err
			}
			est, alerter = cluster.RestoreFromView(s.leader.Store(st), tst.View), s.leader.Alerter(u.router)
		}
		if u.eng, err = engine.New(sc.Engine, engine.Deps{
			Store: est, Model: model.New(sc.modelConfig(), attributorOf(nil)), Attribution: attributorOf, Vulns: vulns, KEV: s.vulnDB.HasKEV(),
			Assess: cfg.Config, Alerter: alerter, Redactor: red, Logger: tlog.With("component", "engine"), Registerer: treg,
		}); err != nil {
			return nil, err
		}
		u.state = &liveState{eng: u.eng, vulnDB: s.vulnDB}
		// The requests that validate virtual patches are the tenant's.
		u.patches = &patcher{cfg: sc.WAF.config(), vulns: db, corpus: corpus, redact: red}
		u.patches.traffic = waf.NewTraffic(u.patches.cfg.ReplayPerEndpoint)
		u.traces, u.profiles = u.patches.tap(u.eng.TracesConsumer()), u.eng.ProfilesConsumer()
		if s.producer != nil {
			// A receiver writes the tenant's telemetry to the ingest log,
			// within the tenant's limits.
			u.traces, u.profiles = s.producer.Traces(), s.producer.Profiles()
		}
		return u, nil
	}
	if role == roleReceiver {
		if s.producer, err = kafka.NewProducer(cfg.Cluster.Kafka, red, log.With("component", "kafka"), reg); err != nil {
			return nil, err
		}
	}
	def, err := newUnit(store.DefaultTenant)
	if err != nil {
		return nil, err
	}
	s.eng, s.alerts, s.router = def.eng, def.alerts, def.router
	s.tenants, err = tenant.New(sc.Tenants, func(_ context.Context, id string) (*tenantUnit, error) {
		if id == store.DefaultTenant {
			return def, nil
		}
		return newUnit(id)
	}, func(ctx context.Context, id string) (bool, error) {
		st, err := s.st.Tenant(id)
		if err != nil {
			return false, err
		}
		empty, err := st.Empty(ctx)
		return !empty, err
	}, log.With("component", "tenants"), reg)
	if err != nil {
		return nil, err
	}
	// A read of a tenant that does not exist sees what a new tenant's
	// engine shows, and patches validated against no traffic.
	units := unitsOf{r: s.tenants, st: s.st, log: log, vulnDB: s.vulnDB,
		empty:     engine.EmptyView(cfg.Config, vulns, model.New(sc.modelConfig(), attributorOf(nil)), time.Time{}),
		noTraffic: &patcher{cfg: sc.WAF.config(), vulns: db, corpus: corpus, redact: red}}
	units.noTraffic.traffic = waf.NewTraffic(units.noTraffic.cfg.ReplayPerEndpoint)
	if len(fl.findings) > 0 {
		// Before Start this only stores them; Start loads them.
		u := store.FindingsUpdate{Findings: initial, Source: "serve --findings " + strings.Join(fl.findings, " "), Actor: cliActor(), Time: time.Now()}
		if err := s.eng.SetFindings(ctx, u); err != nil {
			return nil, err
		}
	}

	parsers := importParsers()
	maps.Copy(parsers, sbomParsers(func() (findings.Matcher, error) { return db, nil }))
	deps := httpapi.Deps{
		Tenants: units, Vulns: db,
		Importer: func(r io.Reader, name, format string) ([]findings.Finding, []error) {
			return importUpload(r, name, format, parsers)
		},
		Patches: func(ctx context.Context, res *report.Result) (*waf.PatchSet, error) {
			u, err := units.read(ctx, auth.TenantFromContext(ctx))
			if err != nil {
				return nil, err
			}
			return u.patches.generate(ctx, res)
		},
		Audit:    s.st,
		Gatherer: reg, Registerer: reg, Logger: log.With("component", "api"), Products: cfg.Products, Ready: s.ready.Load,
		Guard: guard(listenerAPI),
		// A receiver's and an engine's listener is for probes and
		// metrics: the API replicas serve the state.
		Ops: role == roleReceiver || role == roleEngine,
	}
	// What /readyz shows beside readiness: serve works on without them,
	// and retries them.
	checks := map[string]func() error{}
	if src := sc.Sources; src.Tempo != "" || src.Pyroscope != "" {
		// The poller is made below, before anything starts.
		checks["sources"] = func() error {
			ok, err := s.poll.Healthy()
			if !ok && err == nil {
				err = errors.New("no poll has finished yet")
			}
			return err
		}
	}
	if s.producer != nil {
		// A receiver answers UNAVAILABLE (503) while it cannot write to
		// the ingest log; the check says why.
		checks["kafka"] = func() error {
			ctx, cancel := context.WithTimeout(context.Background(), kafkaPingTimeout)
			defer cancel()
			return s.producer.Ping(ctx)
		}
	}
	if len(checks) > 0 {
		deps.Checks = func() map[string]error {
			out := make(map[string]error, len(checks))
			for name, check := range checks {
				out[name] = check()
			}
			return out
		}
	}
	if deps.Ops {
		// no UI
	} else if deps.UI, err = ui.New(ui.Deps{
		Tenant: func(ctx context.Context, id string) (ui.Source, error) {
			u, err := units.read(ctx, id)
			if err != nil {
				return nil, err
			}
			return uiSource{u.state, u.store}, nil
		},
		Patches: deps.Patches, Products: cfg.Products, Checks: deps.Checks, KEV: db.Stats().HasKEV(), Logger: log.With("component", "ui"),
	}); err != nil {
		return nil, err
	}
	s.api = httpapi.New(sc.API, deps)
	if s.adm, err = admission.New(sc.Memory, log.With("component", "admission"), reg); err != nil {
		return nil, err
	}
	traces, profiles := tracesOf(s.tenants), profilesOf(s.tenants)
	// The services the receivers bring to the sources' tenant: a poll of
	// selected services hands on of those only the spans that join them
	// to the selected ones (source.Pull.Elsewhere).
	received := traces
	var seen *source.Received
	if src := sc.Sources; src.Tempo != "" && len(src.Services) > 0 {
		tenant := cmp.Or(src.Tenant, store.DefaultTenant)
		seen = source.NewReceived(func(ctx context.Context) bool { return auth.TenantFromContext(ctx) == tenant })
		received = seen.Consumer(traces)
	}
	if sc.OTLP.GRPCEndpoint != "" || sc.OTLP.HTTPEndpoint != "" {
		s.otlp, err = otlp.New(sc.OTLP, received, profiles, log.With("component", "otlp"), reg, s.adm)
		if err != nil {
			return nil, err
		}
		s.otlp.Guard(guard(listenerOTLPGRPC), guard(listenerOTLPHTTP))
	}
	if sc.Pyroscope.Endpoint != "" {
		s.pyro, err = pyroscope.New(sc.Pyroscope, profiles, log.With("component", "pyroscope"), reg, s.adm)
		if err != nil {
			return nil, err
		}
		s.pyro.Guard(guard(listenerPyroscope))
	}
	s.retain = &retainer{st: s.st, cfg: sc.Retention, log: log}
	if src := sc.Sources; src.Tempo != "" || src.Pyroscope != "" {
		pull, err := src.flags().newPull(os.Getenv, log.With("component", "sources"))
		if err != nil {
			return nil, fmt.Errorf("serve sources: %w", err)
		}
		if seen != nil {
			pull.Elsewhere = seen.Has
		}
		// What is polled goes to the tenant of the sources, as what a
		// listener receives goes to the tenant its guard decides.
		tenant := cmp.Or(src.Tenant, store.DefaultTenant)
		deps := source.PollerDeps{
			Pull: pull, Watermarks: s.st,
			Traces: pipeline.ConsumerFunc[[]telemetry.Span](func(ctx context.Context, spans []telemetry.Span) error {
				return traces.Consume(auth.WithTenant(ctx, tenant), spans)
			}),
			Profiles: pipeline.ConsumerFunc[[]*telemetry.ProfileBatch](func(ctx context.Context, ps []*telemetry.ProfileBatch) error {
				return profiles.Consume(auth.WithTenant(ctx, tenant), ps)
			}),
			Logger: log.With("component", "sources"), Registerer: reg,
		}
		if red.Enabled() {
			deps.Redact = red.Text
		}
		name := pollerName(src, pull)
		if pg != nil {
			// Of the receivers that share a database and these sources,
			// one polls; the others take over when it stops.
			deps.Lead = func(ctx context.Context) (bool, error) { return pg.TryLock(ctx, "evident sources "+name) }
		}
		s.poll, err = source.NewPoller(name, src.PollerConfig, deps)
		if err != nil {
			return nil, err
		}
	}

	// Sinks before sources: the engine restores and replays before the
	// router and the API see anything, and receivers come last.
	if err := s.cluster(ctx, cfg, pg, vulns, red, attributorOf, reg); err != nil {
		return nil, err
	}
	order := []pipeline.Component{s.auth, s.tenants, s.retain}
	// The engine's reader and the API's view work on the tenants'
	// units; the receivers' producer takes what they accept.
	if s.reader != nil {
		order = append(order, s.reader)
	}
	if s.view != nil {
		order = append(order, s.view)
	}
	if s.producer != nil {
		order = append(order, s.producer)
	}
	order = append(order, s.api, s.adm)
	if s.otlp != nil {
		order = append(order, s.otlp)
	}
	if s.pyro != nil {
		order = append(order, s.pyro)
	}
	if s.poll != nil {
		order = append(order, s.poll)
	}
	for _, c := range order {
		if err := c.Start(ctx); err != nil {
			return nil, err
		}
		s.started = append(s.started, c)
	}
	s.ready.Store(true)
	ok = true
	return s, nil
}

// pollerName keys the watermark of the sources, the record of a window
// left unfinished and the lock of the replicas that poll them: a change
// of URL or of a source's tenant (its org id, as pull reads it) starts over
// from the lookback instead of resuming another server's or tenant's
// watermark and window, and deployments that read other tenants of the
// same servers into one store each poll.
func pollerName(c sourcesConfig, pull source.Pull) string {
	name := "tempo=" + c.Tempo + " pyroscope=" + c.Pyroscope
	if len(c.Services) > 0 {
		// Receivers that share the sources by service keep a watermark
		// each.
		name += " services=" + strings.Join(c.Services, ",")
	}
	if c.Tenant != "" && c.Tenant != store.DefaultTenant {
		// Another tenant starts over from the lookback: what was read
		// went to the tenant before.
		name += " tenant=" + c.Tenant
	}
	// Added only when set: the key of a deployment without org ids is
	// the one recorded before they were part of it, and it reads
	// nothing again.
	if pull.Tempo != nil && pull.Tempo.OrgID() != "" {
		name += " tempo_org=" + pull.Tempo.OrgID()
	}
	if pull.Pyroscope != nil && pull.Pyroscope.OrgID() != "" {
		name += " pyroscope_org=" + pull.Pyroscope.OrgID()
	}
	return name
}

// Names of the listeners, in logs, metrics and the refusal to start.
const (
	listenerAPI       = "api"
	listenerOTLPGRPC  = "otlp-grpc"
	listenerOTLPHTTP  = "otlp-http"
	listenerPyroscope = "pyroscope"
)

// guards builds the authenticator over the store's tokens and decides
// each listener's mode (auth.Authenticator.Modes); it returns the guard
// of a listener by name. A listener left open beyond loopback is logged
// loudly.
func (s *server) guards(ctx context.Context, sc serveConfig, insecure bool, reg prometheus.Registerer) (func(name string) *auth.Guard, error) {
	var err error
	s.auth, err = auth.New(ctx, sc.Auth, auth.Deps{Tokens: s.st, Logger: s.log.With("component", "auth"), Registerer: reg})
	if err != nil {
		return nil, err
	}
	if err := s.auth.Reload(ctx); err != nil {
		return nil, err
	}
	ls, modes, err := listenerModes(s.auth, sc, insecure)
	if err != nil {
		return nil, err
	}
	for _, l := range ls {
		if modes[l.Name] == auth.Insecure {
			s.log.Warn("LISTENING BEYOND LOOPBACK WITHOUT AUTHENTICATION (--insecure): anyone who reaches it can send telemetry, read every finding and replace them",
				"listener", l.Name, "endpoint", l.Endpoint)
		} else {
			s.log.Info("listener auth", "listener", l.Name, "endpoint", l.Endpoint, "mode", modes[l.Name])
		}
	}
	return func(name string) *auth.Guard { return s.auth.Guard(name, modes[name]) }, nil
}

// Shutdown stops the components in the reverse order of their start,
// then closes the sink files and the store. It is safe to call twice.
func (s *server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.ready.Store(false)
		var errs []error
		for _, c := range slices.Backward(s.started) {
			errs = append(errs, c.Shutdown(ctx))
		}
		if s.router != nil && !slices.Contains(s.started, pipeline.Component(s.tenants)) {
			// A router that never started still owns its queues.
			errs = append(errs, s.router.Shutdown(ctx))
		}
		for _, c := range s.closers {
			errs = append(errs, c.Close())
		}
		if s.st != nil {
			errs = append(errs, s.st.Close())
		}
		s.shutdownErr = errors.Join(errs...)
	})
	return s.shutdownErr
}

// httpScheme is the scheme of the URLs of a listener with tls c.
func httpScheme(c tlsconfig.ServerConfig) string {
	if c.Enabled() {
		return "https"
	}
	return "http"
}

// defaultLinkPrefix is where alerts link to without a configured
// link_prefix: the API's configured endpoint, in https when it serves
// TLS; none when its port is 0, chosen only as it listens. An endpoint
// on every address (0.0.0.0, [::] or no host) names no host whoever is
// paged can reach, so the machine's hostname stands for it, and named
// says so; err is why it could not, the endpoint then kept as it is.
func defaultLinkPrefix(api httpapi.Config, hostname func() (string, error)) (prefix string, named bool, err error) {
	endpoint := api.Endpoint
	host, port, splitErr := net.SplitHostPort(endpoint)
	if port == "0" {
		return "", false, nil
	}
	if ip := net.ParseIP(host); splitErr == nil && (host == "" || ip != nil && ip.IsUnspecified()) {
		name, herr := hostname()
		if herr == nil && name == "" {
			herr = errors.New("the hostname is empty")
		}
		if herr != nil {
			err = fmt.Errorf("alert links: the API listens on %s, and the hostname to link to instead is unknown: %w", endpoint, herr)
		} else {
			endpoint, named = net.JoinHostPort(name, port), true
		}
	}
	return httpScheme(api.TLS) + "://" + endpoint + "/api/v1", named, err
}

// apiURL is the base URL of the API.
func (s *server) apiURL() string { return s.apiScheme + "://" + s.api.Addr().String() }

// uiURL is the web UI's address.
func (s *server) uiURL() string { return s.apiURL() + "/" }

// printAddrs says where evident listens. A receiver's and an engine's
// API listener serves probes and metrics only: it names no UI nor API.
func (s *server) printAddrs(w io.Writer) {
	if s.role == roleReceiver || s.role == roleEngine {
		fmt.Fprintf(w, "evident serve: %s: health %s/healthz, %s/readyz, metrics %s/metrics (the UI and API are the api role's)\n", s.role, s.apiURL(), s.apiURL(), s.apiURL())
	} else {
		fmt.Fprintf(w, "evident serve: UI %s\n", s.uiURL())
		fmt.Fprintf(w, "evident serve: API %s/api/v1 (metrics %s/metrics)\n", s.apiURL(), s.apiURL())
	}
	if s.otlp != nil {
		if a := s.otlp.GRPCAddr(); a != "" {
			fmt.Fprintf(w, "evident serve: OTLP/gRPC %s\n", a)
		}
		if a := s.otlp.HTTPAddr(); a != "" {
			fmt.Fprintf(w, "evident serve: OTLP/HTTP %s://%s (/v1/traces, /v1development/profiles)\n", s.otlpScheme, a)
		}
	}
	if s.pyro != nil {
		fmt.Fprintf(w, "evident serve: Pyroscope %s://%s/ingest\n", s.pyroScheme, s.pyro.Addr())
	}
}

// attributionConfig is base (the configuration file's) with what the
// findings and the other components of their SBOMs (components, by
// ecosystem: sbomComponents) tell attribution: the Go module paths, for
// frames of builds whose file paths carry no module@version; the Java
// packages their Maven artifacts likely ship, for JFR frames, which name
// classes and not jars; and the modules of namespace packages that their
// PyPI distributions ship (attribution.PythonModulesOf), for py-spy's
// short file names, where base does not name a distribution for them.
func attributionConfig(fs []findings.Finding, components map[string][]string, base attribution.Config) attribution.Config {
	var mods []string
	coords := slices.Clone(components[osv.EcosystemMaven])
	dists := slices.Clone(components[osv.EcosystemPyPI])
	for _, f := range fs {
		switch f.Package.Ecosystem {
		case osv.EcosystemGo:
			mods = append(mods, f.Package.Name)
		case osv.EcosystemMaven:
			coords = append(coords, f.Package.Name)
		case osv.EcosystemPyPI:
			dists = append(dists, f.Package.Name)
		}
	}
	slices.Sort(mods)
	base.GoModules, base.JavaPackages = slices.Compact(mods), attribution.JavaPackagesOf(coords)
	if py := attribution.PythonModulesOf(dists); len(py) > 0 {
		maps.Copy(py, base.PythonDists)
		base.PythonDists = py
	}
	return base
}

// importUpload reads an uploaded report with the parsers of findings
// import. Go executables need random access, so they go through a
// temporary file; every other format is read from memory.
func importUpload(r io.Reader, name, format string, parsers map[findings.Format]importer) ([]findings.Finding, []error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, []error{fmt.Errorf("read %s: %w", name, err)}
	}
	f := findings.Format(format)
	if format == "auto" {
		if f, err = findings.DetectFile(name, body[:min(len(body), detectPrefix)]); err != nil {
			if errors.Is(err, findings.ErrEmpty) {
				return nil, []error{fmt.Errorf("%s: the request body is empty: send the report or SBOM as the body", name)}
			}
			return nil, []error{fmt.Errorf("%s: %w (name it with ?format=)", name, err)}
		}
	}
	parse, ok := parsers[f]
	if !ok {
		return nil, []error{fmt.Errorf("%s: format %q is not one evident reads (want auto or one of %s)", name, f, strings.Join(importFormats(), ", "))}
	}
	in := importInput{path: name, name: name, r: bytes.NewReader(body)}
	if f == findings.FormatGoBinary {
		tmp, err := os.CreateTemp("", "evident-upload-*")
		if err != nil {
			return nil, []error{fmt.Errorf("%s: %w", name, err)}
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		if _, err := tmp.Write(body); err != nil {
			return nil, []error{fmt.Errorf("%s: %w", name, err)}
		}
		in.file = tmp
	}
	return parse(in)
}

// tenantUnit is one tenant's state: its engine, its alert router and the
// router's store sink, the engine's view as the API reads it, and the
// traffic its virtual patches are validated with.
type tenantUnit struct {
	eng    *engine.Engine
	router *alert.Router
	alerts *alertLog
	// feed, when set, is what the API reads alerts from instead: those of
	// a tenant that does not exist yet (unitsOf.read).
	feed  httpapi.Alerts
	state *liveState
	// store is the tenant's view of the store.
	store store.Store
	// patches learns the tenant's requests from traces, the consumer
	// of its spans, and validates its virtual patches with them; profiles
	// is the consumer of its profiles. A receiver's consumers write to
	// the ingest log instead.
	patches  *patcher
	traces   pipeline.Consumer[[]telemetry.Span]
	profiles pipeline.Consumer[[]*telemetry.ProfileBatch]
}

// Start seeds the router's deduplication from the stored alerts,
// restores the engine, then starts the router, in the order the server
// started them before tenants.
func (u *tenantUnit) Start(ctx context.Context) error {
	// Before the engine replays the log: an alert its replay fires again
	// is a duplicate of the one stored before the restart.
	if err := u.router.Seed(ctx, u.alerts); err != nil {
		return err
	}
	if err := u.eng.Start(ctx); err != nil {
		return err
	}
	return u.router.Start(ctx)
}

// Shutdown drains the engine, then the router: the engine's drain
// applies what is queued and re-assesses, which may fire alerts (a
// vulnerable function's first execution), and the router delivers and
// stores them before it stops.
func (u *tenantUnit) Shutdown(ctx context.Context) error {
	err := u.eng.Shutdown(ctx)
	return errors.Join(err, u.router.Shutdown(ctx))
}

// unitsOf is the registry as the API and the UI read and change it
// (httpapi.Tenants): writes create tenants, reads create none.
type unitsOf struct {
	r   *tenant.Registry[*tenantUnit]
	st  store.Store
	log *slog.Logger
	// empty is the view of a tenant that does not exist
	// (engine.EmptyView); noTraffic validates its patches.
	empty     *engine.View
	noTraffic *patcher
	vulnDB    vulndb.Stats
}

// Tenant returns the state and alerts of tenant id for a write, creating
// the tenant the first time.
func (t unitsOf) Tenant(ctx context.Context, id string) (httpapi.State, httpapi.Alerts, error) {
	u, err := t.r.Get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return u.state, u.alerts, nil
}

// Lookup returns the state and alerts of tenant id for a read, which
// creates no tenant (unitsOf.read).
func (t unitsOf) Lookup(ctx context.Context, id string) (httpapi.State, httpapi.Alerts, error) {
	u, err := t.read(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if u.feed != nil {
		return u.state, u.feed, nil
	}
	return u.state, u.alerts, nil
}

// read returns the unit of tenant id for a read, which creates no tenant
// (tenant.Registry.Lookup): the tenant's unit, or, for a tenant that does
// not exist, one that is never started nor kept, made of the empty view,
// its store view (which holds nothing, unless a write has created the
// tenant since), alerts over that view whose feed waits for the tenant
// (awaitedAlerts), and patches without traffic. Its state refuses
// SetFindings, which only a write calls.
func (t unitsOf) read(ctx context.Context, id string) (*tenantUnit, error) {
	u, ok, err := t.r.Lookup(ctx, id)
	if err != nil || ok {
		return u, err
	}
	st, err := t.st.Tenant(id)
	if err != nil {
		return nil, err
	}
	v := *t.empty
	v.At = time.Now()
	alerts := awaitedAlerts{alertLog: newAlertLog(st, t.log.With("tenant", id)), r: t.r, id: id}
	return &tenantUnit{state: &liveState{empty: &v, vulnDB: t.vulnDB}, alerts: alerts.alertLog, feed: alerts, store: st, patches: t.noTraffic}, nil
}

// awaitTenantEvery is how often the alert stream of a tenant that does
// not exist yet looks it up again.
const awaitTenantEvery = time.Second

// awaitedAlerts are the alerts of a tenant that does not exist yet: the
// stored ones (none, unless a write created it since), and a feed that
// looks the tenant up every awaitTenantEvery, as a read, and once a write
// has created it (here, or in the store: another replica) relays its
// unit's feed, so that a stream opened before the tenant's first write
// still receives its alerts. The alerts fired between the subscription
// and the lookup that found the tenant (its first write fires them at
// once) are relayed from the store first.
type awaitedAlerts struct {
	*alertLog
	r  *tenant.Registry[*tenantUnit]
	id string
}

// awaitedReplay bounds the alerts relayed from the store.
const awaitedReplay = 100

// Subscribe returns the feed; the goroutine that relays it is the
// subscription's, and the function that ends it waits for it.
func (a awaitedAlerts) Subscribe() (<-chan any, func()) {
	out := make(chan any, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	since := time.Now()
	go func() {
		defer close(done)
		t := time.NewTicker(awaitTenantEvery)
		defer t.Stop()
		var u *tenantUnit
		for u == nil {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if got, ok, err := a.r.Lookup(ctx, a.id); err == nil && ok {
				u = got
			}
		}
		send := func(al any) {
			select {
			case out <- al:
			default: // a slow reader misses it, as from the unit's feed
			}
		}
		// Subscribed first: an alert stored after the query below is in
		// the feed; one in both is relayed once.
		in, end := u.alerts.Subscribe()
		defer end()
		past, err := u.alerts.Recent(ctx, store.AlertQuery{Since: since, Limit: awaitedReplay})
		if err != nil && ctx.Err() == nil {
			a.log.Warn("relay the alerts of a new tenant", "err", err)
		}
		sent := map[string]bool{}
		for _, al := range slices.Backward(past) {
			sent[al.ID] = true
			send(al)
		}
		for {
			select {
			case <-ctx.Done():
				return
			case al := <-in:
				if sa, ok := al.(store.Alert); !ok || !sent[sa.ID] {
					send(al)
				}
			}
		}
	}()
	var once sync.Once
	return out, func() {
		once.Do(func() {
			cancel()
			<-done
			close(out)
		})
	}
}

// tracesOf and profilesOf route each batch to its tenant's engine.
func tracesOf(r *tenant.Registry[*tenantUnit]) pipeline.Consumer[[]telemetry.Span] {
	return tenant.Route(r, func(u *tenantUnit) pipeline.Consumer[[]telemetry.Span] { return u.traces },
		func(spans []telemetry.Span) int { return len(spans) })
}

func profilesOf(r *tenant.Registry[*tenantUnit]) pipeline.Consumer[[]*telemetry.ProfileBatch] {
	return tenant.Route(r, func(u *tenantUnit) pipeline.Consumer[[]*telemetry.ProfileBatch] { return u.profiles },
		func(ps []*telemetry.ProfileBatch) int { return len(ps) })
}

// liveState is the engine's latest view as the API's report.Result.
type liveState struct {
	eng *engine.Engine
	// empty, without eng, is the only view: a tenant that does not exist
	// (unitsOf.read).
	empty *engine.View
	// vulnDB is what every result says of the vulnerability database.
	vulnDB vulndb.Stats

	mu   sync.Mutex
	view *engine.View
	res  *report.Result
}

// errNoTenant is SetFindings's of a tenant that does not exist: a write
// creates the tenant first (unitsOf.Tenant), so only a bug gets it.
var errNoTenant = errors.New("the tenant does not exist: only a write creates it")

// Result returns the result of the latest view, built once per view.
func (l *liveState) Result() *report.Result {
	v := l.empty
	if l.eng != nil {
		v = l.eng.View()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if v != l.view || l.res == nil {
		l.view = v
		l.res = &report.Result{Version: buildVersion(), VulnDB: l.vulnDB}
		if v != nil {
			l.res.Generated, l.res.Summary, l.res.Assessments, l.res.Snapshot, l.res.Exposure = v.At.UTC(), v.Summary, v.Assessments, v.Snapshot, v.Exposure
		}
	}
	return l.res
}

// SetFindings replaces findings in the engine.
func (l *liveState) SetFindings(ctx context.Context, u store.FindingsUpdate) error {
	if l.eng == nil {
		return errNoTenant
	}
	return l.eng.SetFindings(ctx, u)
}

// uiSource is a tenant as the web UI reads it: the live result, and the
// alerts and verdict history of its store.
type uiSource struct {
	*liveState
	store.Store
}

// alertLog is the sink that keeps alerts in the store for the API, and
// the live feed of the API's Server-Sent Events stream.
type alertLog struct {
	st  store.Store
	log *slog.Logger

	mu   sync.Mutex
	subs map[chan any]struct{}
}

var (
	_ alert.Sink     = (*alertLog)(nil)
	_ alert.History  = (*alertLog)(nil)
	_ httpapi.Alerts = (*alertLog)(nil)
)

func newAlertLog(st store.Store, log *slog.Logger) *alertLog {
	return &alertLog{st: st, log: log, subs: map[chan any]struct{}{}}
}

// Name names the sink in metrics.
func (a *alertLog) Name() string { return storeSinkName }

// alertDetails is what the store keeps of an alert beyond its headline.
// DedupeKey and Observed are what the router is seeded with after a
// restart (alertLog.Fired).
type alertDetails struct {
	Evidence    any       `json:"evidence"`
	DedupeKey   string    `json:"dedupe_key,omitempty"`
	Observed    time.Time `json:"observed,omitzero"`
	Link        string    `json:"link,omitempty"`
	FindingLink string    `json:"finding_link,omitempty"`
}

// Send stores the alert and hands it to every subscriber that keeps up.
func (a *alertLog) Send(ctx context.Context, al alert.Alert) error {
	details, err := json.Marshal(alertDetails{Evidence: al.Evidence, DedupeKey: al.DedupeKey, Observed: al.Observed, Link: al.Link, FindingLink: al.FindingLink})
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("alert %s: %w", al.ID, err))
	}
	sa := store.Alert{
		ID: al.ID, Kind: string(al.Kind), Severity: string(al.Severity), Service: al.Service,
		Summary: al.Summary, Details: details, Time: al.Time, ReceivedAt: al.ReceivedAt,
		DedupeKey: al.DedupeKey, Observed: al.Observed,
	}
	if err := a.st.PutAlert(ctx, sa); err != nil {
		return fmt.Errorf("store alert %s: %w", al.ID, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for ch := range a.subs {
		select {
		case ch <- sa:
		default: // a slow reader misses it rather than holding the sink
		}
	}
	return nil
}

// Fired returns the dedupe keys, times and observations of the stored
// alerts that fired at or after since, newest first, at most limit of
// them; an alert stored before its observation was kept has none.
func (a *alertLog) Fired(ctx context.Context, since time.Time, limit int) ([]alert.Fired, error) {
	stored, err := a.st.FiredAlerts(ctx, since, limit)
	if err != nil {
		return nil, fmt.Errorf("read alerts since %v: %w", since, err)
	}
	fired := make([]alert.Fired, 0, len(stored))
	for _, f := range stored {
		if f.DedupeKey == "" {
			// Stored before the store kept the key: it is in the
			// details Send wrote.
			var d struct {
				DedupeKey string    `json:"dedupe_key"`
				Observed  time.Time `json:"observed"`
			}
			if len(f.Details) == 0 || json.Unmarshal(f.Details, &d) != nil || d.DedupeKey == "" {
				continue // stored by an alert without a key, or not by Send
			}
			f.DedupeKey, f.Observed = d.DedupeKey, d.Observed
		}
		fired = append(fired, alert.Fired{DedupeKey: f.DedupeKey, Time: f.Time, Observed: f.Observed})
	}
	return fired, nil
}

// Recent returns stored alerts, newest first.
func (a *alertLog) Recent(ctx context.Context, q store.AlertQuery) ([]store.Alert, error) {
	return a.st.Alerts(ctx, q)
}

// Subscribe returns a feed of new alerts.
func (a *alertLog) Subscribe() (<-chan any, func()) {
	ch := make(chan any, 64)
	a.mu.Lock()
	a.subs[ch] = struct{}{}
	a.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			a.mu.Lock()
			delete(a.subs, ch)
			a.mu.Unlock()
			close(ch)
		})
	}
}

// buildSinks builds the configured alert sinks, by the tenant whose
// alerts they receive; closers are those that hold files.
func buildSinks(c alertsConfig, log *slog.Logger) (sinks map[string][]alert.Sink, closers []io.Closer, err error) {
	sinks = map[string][]alert.Sink{}
	// add(tenant)(sink, err) files a sink under its tenant.
	add := func(tenant string) func(alert.Sink, error) error {
		return func(s alert.Sink, err error) error {
			if err == nil {
				tenant = cmp.Or(tenant, store.DefaultTenant)
				sinks[tenant] = append(sinks[tenant], s)
			}
			return err
		}
	}
	for _, w := range c.Webhooks {
		hc, err := sinkClient(w.Name, w.TLS, log)
		if err == nil {
			err = add(w.Tenant)(alert.NewWebhook(w.Name, w.URL, w.Secret, hc))
		}
		if err != nil {
			return nil, closers, fmt.Errorf("alerts webhooks %s: %w", w.Name, err)
		}
	}
	for _, m := range c.Alertmanager {
		hc, err := sinkClient(m.Name, m.TLS, log)
		if err == nil {
			err = add(m.Tenant)(alert.NewAlertmanager(m.Name, m.URL, m.OrgID, m.resolveAfter(), hc))
		}
		if err != nil {
			return nil, closers, fmt.Errorf("alerts alertmanager %s: %w", m.Name, err)
		}
	}
	for _, s := range c.Slack {
		hc, err := sinkClient(s.Name, s.TLS, log)
		if err == nil {
			err = add(s.Tenant)(alert.NewSlack(s.Name, s.URL, hc))
		}
		if err != nil {
			return nil, closers, fmt.Errorf("alerts slack %s: %w", s.Name, err)
		}
	}
	for _, j := range c.JSONLines {
		s, err := alert.OpenJSONLines(j.Name, j.Path)
		if err != nil {
			return nil, closers, fmt.Errorf("alerts json_lines %s: %w", j.Name, err)
		}
		add(j.Tenant)(s, nil)
		closers = append(closers, s)
	}
	return sinks, closers, nil
}

// sinkClient is the HTTP client of the alert sink called name:
// http.DefaultClient (nil) unless its tls block says otherwise.
func sinkClient(name string, tc tlsconfig.ClientConfig, log *slog.Logger) (*http.Client, error) {
	if tc == (tlsconfig.ClientConfig{}) {
		return nil, nil
	}
	t, err := tlsconfig.NewTransport(tc, "alert sink "+name, log)
	return &http.Client{Transport: t}, err
}

// retainer applies the store's retention at start and then hourly.
type retainer struct {
	st  store.Store
	cfg store.Retention
	log *slog.Logger

	loop pipeline.Loop
}

// retainEvery is how often old verdict changes and alerts are deleted.
const retainEvery = time.Hour

// kafkaPingTimeout bounds /readyz's check of the brokers: under
// Kubernetes' default probe timeout (1 s), so that brokers that do not
// answer show as a failing check, not as a probe that timed out.
const kafkaPingTimeout = 500 * time.Millisecond

// Start starts the retention loop; it is safe to call twice.
func (r *retainer) Start(ctx context.Context) error { return r.loop.Start(ctx, nil, r.run) }

// run applies the retention now and every retainEvery until ctx ends.
func (r *retainer) run(ctx context.Context) {
	t := time.NewTicker(retainEvery)
	defer t.Stop()
	for {
		if n, err := r.st.Retain(ctx, time.Now(), r.cfg); err != nil && ctx.Err() == nil {
			r.log.Error("apply retention", "err", err)
		} else if n > 0 {
			r.log.Info("applied retention", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Shutdown stops the loop and waits for it; safe twice and without Start.
func (r *retainer) Shutdown(ctx context.Context) error { return r.loop.Stop(ctx) }

// patcher keeps the legitimate traffic that spans show, for the virtual
// patches the API writes on request (GET /api/v1/waf/patches).
type patcher struct {
	cfg    waf.Config
	vulns  waf.Vulns
	corpus waf.Corpus
	// redact masks the spans' secrets before their requests are kept
	// for replay and shown in validation results.
	redact *redact.Redactor

	mu      sync.Mutex // guards traffic, which is not safe for concurrent use
	traffic *waf.Traffic
}

// tap learns the requests of the spans, redacted, on their way to next.
// Only the spans the traffic keeps (waf.Keeps) are redacted: in most
// batches there are few or none. It reads them before handing them on:
// after Consume, next owns them.
func (p *patcher) tap(next pipeline.Consumer[[]telemetry.Span]) pipeline.Consumer[[]telemetry.Span] {
	return pipeline.ConsumerFunc[[]telemetry.Span](func(ctx context.Context, spans []telemetry.Span) error {
		var kept []telemetry.Span
		for i := range spans {
			if waf.Keeps(&spans[i]) {
				kept = append(kept, spans[i])
			}
		}
		if len(kept) > 0 {
			clean := p.redact.Spans(kept)
			p.mu.Lock()
			p.traffic.Add(clean)
			p.mu.Unlock()
		}
		return next.Consume(ctx, spans)
	})
}

// generate writes the patches of a result's executed and exposed findings
// and validates them against the exploit corpus and the traffic so far,
// a copy of it: compiling and running the rules in Coraza takes a while,
// and the spans' tap must not wait for it (a reader of the patches would
// hold up ingest).
func (p *patcher) generate(ctx context.Context, res *report.Result) (*waf.PatchSet, error) {
	p.mu.Lock()
	traffic := p.traffic.Clone()
	p.mu.Unlock()
	set, err := waf.Generate(p.cfg, res.Assessments, p.vulns, traffic)
	if err != nil {
		return nil, err
	}
	return set, waf.Validate(ctx, set, traffic, p.corpus)
}
