package cli

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/evidentsec/evident/internal/alert"
	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/engine"
	"github.com/evidentsec/evident/internal/httpapi"
	"github.com/evidentsec/evident/internal/ingest/admission"
	"github.com/evidentsec/evident/internal/ingest/otlp"
	"github.com/evidentsec/evident/internal/ingest/pyroscope"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/redact"
	"github.com/evidentsec/evident/internal/report"
	"github.com/evidentsec/evident/internal/source"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/tenant"
	"github.com/evidentsec/evident/internal/tlsconfig"
	"github.com/evidentsec/evident/internal/waf"
)

// fileConfig is the configuration file, docs/configuration.md. Each
// section belongs to the package it configures; the file only composes
// them.
type fileConfig struct {
	assess.Config `yaml:",inline"`
	// Products names what each service is deployed as, for the VEX
	// formats; analyze and serve both use it.
	Products report.Products `yaml:"products"`
	// FirstParty names the code packages of the services themselves
	// (attribution.Config.FirstParty): Java packages, which profiles
	// cannot tell from a library's.
	FirstParty []string `yaml:"first_party"`
	// JavaRelocations maps the packages that shaded jars relocated
	// libraries to, to the libraries' own (attribution.Config.JavaRelocations),
	// for relocations that keep no marker element such as ".shaded.".
	JavaRelocations map[string]string `yaml:"java_relocations"`
	// PythonDists maps Python modules, top-level or dotted, to the PyPI
	// distributions that ship them (attribution.Config.PythonDists), over
	// what --packages reads from installed metadata.
	PythonDists map[string]string `yaml:"python_dists"`
	// Knowledge names files of affected functions (docs/knowledge.md)
	// read over the shipped knowledge base: an entry with the id and
	// package of a shipped one replaces it, the others are added.
	Knowledge []string `yaml:"knowledge"`
	// Serve configures evident serve; analyze ignores it.
	Serve serveConfig `yaml:"serve"`
	// Cluster configures the roles of the scaled-out evident serve
	// (--role); the single process ignores it.
	Cluster clusterConfig `yaml:"cluster"`
}

// attribution is what the file tells attribution about the services' code.
func (c fileConfig) attribution() attribution.Config {
	return attribution.Config{FirstParty: c.FirstParty, JavaRelocations: c.JavaRelocations, PythonDists: c.PythonDists}
}

// serveConfig composes the Configs of the parts of evident serve.
type serveConfig struct {
	API       httpapi.Config   `yaml:"api"`
	OTLP      otlp.Config      `yaml:"otlp"`
	Pyroscope pyroscope.Config `yaml:"pyroscope"`
	Memory    admission.Config `yaml:"memory"`
	Engine    engine.Config    `yaml:"engine"`
	// Model bounds every structure of the runtime model that grows with
	// the telemetry ingested (docs/architecture.md, "Memory").
	Model     model.Config    `yaml:"model"`
	Store     storeConfig     `yaml:"store"`
	Retention store.Retention `yaml:"retention"`
	Alerts    alertsConfig    `yaml:"alerts"`
	Auth      auth.Config     `yaml:"auth"`
	// Redaction masks secrets and personal data in spans before they
	// are stored or sent (docs/security.md).
	Redaction redact.Config `yaml:"redaction"`
	Tenants   tenant.Config `yaml:"tenants"`
	Sources   sourcesConfig `yaml:"sources"`
	// WAF configures the virtual patches the API writes
	// (GET /api/v1/waf/patches), as waf generate's flags do its own.
	WAF serveWAFConfig `yaml:"waf"`
	// ShutdownTimeout bounds the whole shutdown: receivers drain, the
	// engine applies what is queued and checkpoints, sinks deliver.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// alertsConfig is the alert router and its sinks. Every sink receives
// the alerts of one tenant, its Tenant (empty: the default tenant), and
// never another's: each tenant's router is given its own sinks only.
type alertsConfig struct {
	alert.Config `yaml:",inline"`
	Webhooks     []webhookSink      `yaml:"webhooks"`
	Alertmanager []alertmanagerSink `yaml:"alertmanager"`
	Slack        []slackSink        `yaml:"slack"`
	JSONLines    []jsonLinesSink    `yaml:"json_lines"`
}

type webhookSink struct {
	Name   string `yaml:"name"`
	Tenant string `yaml:"tenant"`
	URL    string `yaml:"url"`
	// Secret signs each request's timestamp and body (HMAC-SHA256, see
	// alert.Sign); empty sends them unsigned.
	Secret string                 `yaml:"secret"`
	TLS    tlsconfig.ClientConfig `yaml:"tls"`
}

type alertmanagerSink struct {
	Name   string `yaml:"name"`
	Tenant string `yaml:"tenant"`
	URL    string `yaml:"url"`
	// OrgID is the X-Scope-OrgID sent to a multi-tenant Alertmanager;
	// empty sends the sink's tenant, none for the default tenant.
	OrgID        string                 `yaml:"org_id"`
	ResolveAfter time.Duration          `yaml:"resolve_after"`
	TLS          tlsconfig.ClientConfig `yaml:"tls"`
}

type slackSink struct {
	Name   string                 `yaml:"name"`
	Tenant string                 `yaml:"tenant"`
	URL    string                 `yaml:"url"`
	TLS    tlsconfig.ClientConfig `yaml:"tls"`
}

type jsonLinesSink struct {
	Name   string `yaml:"name"`
	Tenant string `yaml:"tenant"`
	Path   string `yaml:"path"`
}

// defaultResolveAfter is an Alertmanager sink's resolve_after when the
// sink does not set one.
const defaultResolveAfter = time.Hour

// storeSinkName is the name of the sink that keeps every tenant's alerts
// in the store (alertLog), which no configured sink may take.
const storeSinkName = "store"

// Validate reports every problem of the router's settings and of the
// sinks: their tenants, names (unique among a tenant's sinks, as its
// router needs them; docs/security.md gives two tenants a sink "soc"
// each) and, with the sinks' own constructors, their URLs and settings.
// It opens no file and connects to nothing, so --check-config and a
// start refuse the same configurations.
func (c alertsConfig) Validate() error {
	errs := []error{c.Config.Validate()}
	type tenantName struct{ tenant, name string }
	taken := map[tenantName]bool{}
	check := func(kind string, i int, name, tenant string, build func() error) {
		key := fmt.Sprintf("serve.alerts.%s[%d]", kind, i)
		if name != "" {
			key += " (" + name + ")"
		}
		tn := tenantName{cmp.Or(tenant, store.DefaultTenant), name}
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("%s: name is empty: every sink needs a name, unique among its tenant's", key))
		case name == storeSinkName:
			errs = append(errs, fmt.Errorf("%s: name %q is the store's sink's", key, name))
		case taken[tn]:
			errs = append(errs, fmt.Errorf("%s: name %q is taken by another sink of tenant %s", key, name, tn.tenant))
		}
		taken[tn] = true
		if tenant != "" {
			if err := store.ValidateTenant(tenant); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
			}
		}
		if build != nil {
			if err := build(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
			}
		}
	}
	for i, w := range c.Webhooks {
		check("webhooks", i, w.Name, w.Tenant, func() error { _, err := alert.NewWebhook(w.Name, w.URL, w.Secret, nil); return err })
	}
	for i, m := range c.Alertmanager {
		check("alertmanager", i, m.Name, m.Tenant, func() error {
			_, err := alert.NewAlertmanager(m.Name, m.URL, m.OrgID, m.resolveAfter(), nil)
			return err
		})
	}
	for i, s := range c.Slack {
		check("slack", i, s.Name, s.Tenant, func() error { _, err := alert.NewSlack(s.Name, s.URL, nil); return err })
	}
	for i, j := range c.JSONLines {
		check("json_lines", i, j.Name, j.Tenant, nil)
	}
	return errors.Join(errs...)
}

// resolveAfter is the sink's resolve_after, defaultResolveAfter when it
// sets none.
func (m alertmanagerSink) resolveAfter() time.Duration {
	if m.ResolveAfter == 0 {
		return defaultResolveAfter
	}
	return m.ResolveAfter
}

// defaultFileConfig is what runs when no file is given.
func defaultFileConfig() fileConfig {
	return fileConfig{Config: assess.DefaultConfig(), Serve: defaultServeConfig(), Cluster: defaultClusterConfig()}
}

func defaultServeConfig() serveConfig {
	return serveConfig{
		API: httpapi.DefaultConfig(), OTLP: otlp.DefaultConfig(), Pyroscope: pyroscope.DefaultConfig(), Memory: admission.DefaultConfig(),
		Engine: engine.DefaultConfig(), Model: model.DefaultConfig(), Store: defaultStoreConfig(), Retention: store.DefaultRetention(), Tenants: tenant.DefaultConfig(),
		Alerts:          alertsConfig{Config: alert.DefaultConfig()},
		Auth:            auth.DefaultConfig(),
		Redaction:       redact.DefaultConfig(),
		Sources:         sourcesConfig{PollerConfig: source.DefaultPollerConfig(), Timeout: source.DefaultHTTPConfig().Timeout},
		ShutdownTimeout: 15 * time.Second,
	}
}

// serveWAFConfig is what the file sets of serve's virtual patches: the
// settings waf generate takes as flags.
type serveWAFConfig struct {
	// HostScope is waf generate's --host-scope (waf.Config.HostScope):
	// off by default, for it is right only for a WAF in front of
	// something that routes by Host.
	HostScope bool `yaml:"host_scope"`
}

// config is the waf.Config of serve's patches.
func (c serveWAFConfig) config() waf.Config {
	cfg := waf.DefaultConfig()
	cfg.HostScope = c.HostScope
	return cfg
}

// sourcesConfig is serve's query-API sources, polled on an interval
// (docs/sources.md); credentials come from the environment as for
// analyze --tempo/--pyroscope.
type sourcesConfig struct {
	Tempo     string   `yaml:"tempo"`
	Pyroscope string   `yaml:"pyroscope"`
	Services  []string `yaml:"services"`
	// Tenant is the evident tenant the telemetry polled goes to
	// (docs/security.md, Tenants); store.DefaultTenant when empty.
	Tenant string `yaml:"tenant"`
	// TraceBudget and TracesPerEndpoint bound the traces of one window.
	TraceBudget       int `yaml:"trace_budget"`
	TracesPerEndpoint int `yaml:"traces_per_endpoint"`
	// Timeout bounds each request to a source.
	Timeout             time.Duration `yaml:"timeout"`
	source.PollerConfig `yaml:",inline"`
}

// Validate reports every problem of the sources section.
func (c sourcesConfig) Validate() error {
	var errs []error
	if (c.TraceBudget != 0) != (c.TracesPerEndpoint != 0) || c.TraceBudget < 0 || c.TracesPerEndpoint < 0 {
		errs = append(errs, fmt.Errorf("serve sources: trace_budget %d and traces_per_endpoint %d: set both, positive, or neither", c.TraceBudget, c.TracesPerEndpoint))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("serve sources: timeout %s: want a positive duration", c.Timeout))
	}
	if err := c.PollerConfig.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("serve %w", err))
	}
	if c.Tenant != "" {
		if err := store.ValidateTenant(c.Tenant); err != nil {
			errs = append(errs, fmt.Errorf("serve sources: %w", err))
		}
	}
	return errors.Join(errs...)
}

// modelConfig is the Model's configuration with LateJoinWindow at least
// the pull's lag and interval when a pull of Tempo selects services: it
// hands on their callers that far behind the receivers, and a span the
// receivers brought, whose wait for them ended, still joins them.
func (c serveConfig) modelConfig() model.Config {
	m := c.Model
	if c.Sources.Tempo != "" && len(c.Sources.Services) > 0 {
		m.LateJoinWindow = max(m.LateJoinWindow, c.Sources.Lag+c.Sources.Interval)
	}
	return m
}

// ingests reports whether serve takes telemetry in: a receiver listens or
// a source is polled.
func (c serveConfig) ingests() bool {
	return c.OTLP.GRPCEndpoint != "" || c.OTLP.HTTPEndpoint != "" || c.Pyroscope.Endpoint != "" ||
		c.Sources.Tempo != "" || c.Sources.Pyroscope != ""
}

// Validate reports every problem of the serve sections.
func (c serveConfig) Validate() error {
	errs := []error{c.API.Validate(), c.Memory.Validate(), c.Engine.Validate(), c.Model.Validate(), c.Store.Validate(), c.Retention.Validate(), c.Alerts.Validate(), c.Auth.Validate(), c.Redaction.Validate(), c.Tenants.Validate()}
	// The listeners can each be turned off by an empty endpoint (a flag
	// of ""); the receivers' own Validate refuses that for one alone.
	if c.OTLP.GRPCEndpoint != "" || c.OTLP.HTTPEndpoint != "" {
		errs = append(errs, c.OTLP.Validate())
	}
	if c.Pyroscope.Endpoint != "" {
		errs = append(errs, c.Pyroscope.Validate())
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("serve shutdown_timeout %v is not positive", c.ShutdownTimeout))
	}
	if c.Sources.Tempo != "" || c.Sources.Pyroscope != "" {
		errs = append(errs, c.Sources.Validate())
	}
	return errors.Join(errs...)
}

// expandEnv replaces ${NAME}, in every scalar of the document n (keys
// and values, not comments), with the environment variable NAME. It
// works on the parsed document, not its text, so a value holds whatever
// the variable does (" #", ": ", quotes, backslashes) and never changes
// what the file says around it. $${ is a literal ${. An unset variable,
// or a ${ that is not a reference, is an error naming the line and the
// key, so that a typo does not silently empty or keep a value.
func expandEnv(file string, n *yaml.Node) error {
	var errs []error
	var walk func(n *yaml.Node, path string)
	scalar := func(n *yaml.Node, path string) {
		v, err := expandRefs(n.Value)
		if err != nil {
			if path == "" {
				path = "the document"
			}
			errs = append(errs, fmt.Errorf("%s:%d: %s: %w", file, n.Line, path, err))
			return
		}
		if v == n.Value {
			return
		}
		n.Value = v
		if n.Style&(yaml.TaggedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			return
		}
		// A plain value is what its text resolves to (an integer, a
		// boolean), as when the reference is written out; but a variable
		// set to "" or "null" is that string, not a missing value that
		// keeps the default.
		n.Tag = ""
		if n.ShortTag() == "!!null" {
			n.Tag = "!!str"
		}
	}
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				key, value := n.Content[i], n.Content[i+1]
				scalar(key, path)
				keyPath := key.Value
				if path != "" {
					keyPath = path + "." + key.Value
				}
				walk(value, keyPath)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		case yaml.ScalarNode:
			scalar(n, path)
		}
		// An alias is its anchor's node, expanded where it stands: once,
		// so that a $${ is not read again as a reference.
	}
	walk(n, "")
	return errors.Join(errs...)
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandRefs is s with each ${NAME} replaced by the environment variable
// NAME, and each $${ by ${.
func expandRefs(s string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for s != "" {
		switch {
		case strings.HasPrefix(s, "$${"):
			b.WriteString("${")
			s = s[3:]
		case strings.HasPrefix(s, "${"):
			name, rest, ok := strings.Cut(s[2:], "}")
			if !ok || !envName.MatchString(name) {
				ref := s
				if ok {
					ref = s[:len(name)+3]
				}
				return "", fmt.Errorf("%q is not a reference to an environment variable: write ${NAME}, or $${ for a literal ${", ref)
			}
			v, set := os.LookupEnv(name)
			if !set {
				return "", fmt.Errorf("environment variable %s is not set", name)
			}
			b.WriteString(v)
			s = rest
		default:
			i := strings.Index(s[1:], "$") + 1
			if i == 0 {
				i = len(s)
			}
			b.WriteString(s[:i])
			s = s[i:]
		}
	}
	return b.String(), nil
}

// loadConfig reads a configuration file strictly: unknown keys are
// errors, in every section, and so is anything the sections every
// command uses reject (assess, products, attribution). An empty path
// gives the defaults. The serve section is checked by the commands that
// use it, serve once its flags replaced the values they name
// (serveFlags.override), as a flag that turns a listener off or fixes
// its address makes the file's value moot, and the token and audit
// commands only its store (openSharedStore); analyze and db stats, which
// use none of it, do not refuse a section they ignore.
func loadConfig(path string) (fileConfig, error) {
	cfg := defaultFileConfig()
	if path == "" {
		return cfg, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	doc, err := parseConfig(raw, path)
	if err != nil {
		return cfg, err
	}
	if doc != nil {
		if err := expandEnv(path, doc); err != nil {
			return cfg, err
		}
		// The strict decoder reads text only: the expanded document is
		// written out again, its values quoted as they need.
		expanded, err := yaml.Marshal(doc)
		if err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(expanded))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, explainConfig(doc, path, reflect.TypeOf(cfg), err)
		}
	}
	if err := errors.Join(cfg.Validate(), cfg.Products.Validate(), cfg.attribution().Validate()); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// parseConfig parses the one YAML document of a configuration file; nil
// for a file without any (empty, or only comments). A second document
// is an error: the decoder would ignore it, and everything it sets (an
// empty one, a --- at the end, sets nothing).
func parseConfig(raw []byte, path string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	for {
		var next yaml.Node
		switch err := dec.Decode(&next); {
		case errors.Is(err, io.EOF):
			return &doc, nil
		case err != nil:
			return nil, fmt.Errorf("config %s: %w", path, err)
		case len(next.Content) > 0 && next.Content[0].ShortTag() != "!!null":
			return nil, fmt.Errorf("%s:%d: a second YAML document: the configuration is one document, without ---", path, next.Line)
		}
	}
}
