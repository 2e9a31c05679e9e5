package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/report"
	"github.com/evidentsec/evident/internal/telemetry"
	"github.com/evidentsec/evident/internal/tlsconfig"
	"github.com/evidentsec/evident/internal/waf"
)

func newWAFCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "waf",
		Short: "Virtual patches: SecLang rules per finding, validated in Coraza, and an enforcing proxy",
	}
	cmd.AddCommand(newWAFGenerateCmd(g), newWAFProxyCmd(g))
	return cmd
}

type wafGenerateFlags struct {
	report, output, kev, exploits string
	vulns, traces                 []string
	hostScope                     bool
}

func newWAFGenerateCmd(g *globals) *cobra.Command {
	var fl wafGenerateFlags
	cmd := &cobra.Command{
		Use:   "generate --report analyze.json --traces PATH... -o DIR",
		Short: "Write and validate virtual patches for the executed and exposed findings of a report",
		Long: `Read evident's JSON report (evident analyze --format json) and, for every
finding whose vulnerable code was executed in an exposed service, write SecLang
rules (ModSecurity v3 / Coraza) scoped to the endpoints that reach it. The rules
detect the vulnerability's attack class and are tightened by the legitimate
traffic in --traces. Each patch is replayed in an embedded Coraza engine against
the exploit corpus of its class (which must be blocked) and the legitimate
requests rebuilt from the traces (which must pass); a rule that blocks a
legitimate request is written detection-only, with the reason.

DIR receives <service>.conf, evident-engine.conf, plugins/ (CRS v4 plugin
layout) and patches.json. docs/waf.md describes them.

Exit status: 0 ok, 2 usage or unreadable input, 3 the patches are written but
some inputs were skipped or an exploit sample was not blocked (see stderr).`,
		Example: `  evident analyze --format json -o analyze.json --findings ... --traces traces.jsonl
  evident waf generate --report analyze.json --traces traces.jsonl -o patches/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWAFGenerate(cmd.Context(), g, fl)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.report, "report", "", "evident JSON report (required)")
	f.StringArrayVar(&fl.traces, "traces", nil, "trace file or directory with the legitimate traffic (repeatable)")
	f.StringSliceVar(&fl.vulns, "vulns", nil, "OSV source instead of <data>/vulndb (repeatable)")
	f.StringVar(&fl.kev, "kev", "", "CISA KEV catalog instead of <data>/vulndb/kev.json")
	f.StringVar(&fl.exploits, "exploits", "", "directory of exploit corpus files (<class>.yaml) instead of the built-in corpus")
	f.StringVarP(&fl.output, "output", "o", "", "directory to write the patches to (required)")
	f.BoolVar(&fl.hostScope, "host-scope", false, "leave out of each patch the requests to hosts the traces show only other services serving; only for a WAF in front of something that routes by Host (docs/waf.md)")
	return cmd
}

func runWAFGenerate(ctx context.Context, g *globals, fl wafGenerateFlags) error {
	if err := required("--report", fl.report, "-o", fl.output); err != nil {
		return withCode(ExitUsage, err)
	}
	data, err := os.ReadFile(fl.report)
	if err != nil {
		return withCode(ExitUsage, fmt.Errorf("--report: %w", err))
	}
	as, problems, err := parseReportAssessments(data, fl.report)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	warn, skipped := skipWarner(g.stderr)
	for _, p := range problems {
		warn(p)
	}
	db, dbProblems, err := openVulnDB(ctx, g, fl.vulns, fl.kev, "", nil)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	for _, p := range dbProblems {
		warn(p)
	}
	if len(fl.traces) == 0 {
		fmt.Fprintln(g.stderr, "evident: warning: no --traces: no legitimate traffic was checked, so the patches may block legitimate requests; nothing was learned from traffic either")
	}
	cfg := waf.DefaultConfig()
	cfg.HostScope = fl.hostScope
	traffic := waf.NewTraffic(cfg.ReplayPerEndpoint)
	if err := loadTelemetry(ctx, "--traces", fl.traces, trafficHandler{traffic}, warn); err != nil {
		return withCode(ExitUsage, err)
	}
	var corpusFS = os.DirFS(fl.exploits)
	if fl.exploits == "" {
		corpusFS = nil
	}
	corpus, err := waf.LoadCorpus(corpusFS)
	if err != nil {
		if len(corpus) == 0 {
			return withCode(ExitUsage, fmt.Errorf("--exploits %s: %w", fl.exploits, err))
		}
		warn(err)
	}
	set, err := waf.Generate(cfg, as, db, traffic)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	if err := waf.Validate(ctx, set, traffic, corpus); err != nil {
		return err
	}
	if err := waf.Export(fl.output, set); err != nil {
		return withCode(ExitUsage, err)
	}
	for _, p := range set.Patches {
		if len(fl.traces) > 0 && p.Validation != nil && p.Validation.LegitimateTotal == 0 {
			fmt.Fprintf(g.stderr, "evident: warning: %s in %s: the traces hold no request of the patched endpoints, so no legitimate traffic was checked\n", p.Vulnerability, p.Service)
		}
	}
	if writePatchReport(g.stdout, set) {
		*skipped = true
		fmt.Fprintln(g.stderr, "evident: some exploit samples or their mutations were not blocked (see patches.json)")
	}
	if *skipped {
		return withCode(ExitSkipped, errSkipped)
	}
	return nil
}

// writePatchReport prints one line per patch with both validation
// figures, and reports whether any exploit got through. DETECTION-ONLY
// counts every rule emitted detection-only, whatever the reason: a rule
// that matched legitimate traffic, and every detection of a patch that
// is not proven (Validation.DetectionOnly counts only the former, so an
// unproven patch read as 0 detection-only, as if it blocked).
func writePatchReport(w io.Writer, set *waf.PatchSet) (missed bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tVULNERABILITY\tCLASS\tENDPOINTS\tRULES\tDETECTION-ONLY\tEXPLOITS BLOCKED\tLEGITIMATE PASSED")
	for _, p := range set.Patches {
		v := p.Validation
		detect := 0
		for _, r := range p.Rules {
			if r.Mode == waf.ModeDetect {
				detect++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d/%d\t%d/%d\n", p.Service, p.Vulnerability, p.Class, len(p.Endpoints), len(p.Rules),
			detect, v.ExploitsBlocked, v.ExploitsTotal, v.LegitimatePassed, v.LegitimateTotal)
		missed = missed || v.ExploitsBlocked < v.ExploitsTotal || v.MutationsBlocked < v.MutationsTotal
	}
	tw.Flush()
	for _, s := range set.Skipped {
		fmt.Fprintf(w, "no patch for %s in %s: %s\n", s.Vulnerability, s.Service, s.Reason)
	}
	return missed
}

// trafficHandler keeps the spans' requests; profiles are not needed.
type trafficHandler struct{ t *waf.Traffic }

func (trafficHandler) Profile(*telemetry.ProfileBatch) error { return nil }
func (h trafficHandler) Spans(s []telemetry.Span) error      { h.t.Add(s); return nil }

// reportDoc is the part of the JSON report (docs/report-json.md) that
// patches need.
type reportDoc struct {
	Version  int               `json:"version"`
	Findings []json.RawMessage `json:"findings"`
}

type reportFinding struct {
	Vulnerability findings.Vulnerability `json:"vulnerability"`
	Package       findings.Package       `json:"package"`
	Service       string                 `json:"service"`
	Reachability  struct {
		Verdict   assess.Verdict `json:"verdict"`
		Endpoints []string       `json:"endpoints"`
	} `json:"reachability"`
	Exposure assess.ExposureResult `json:"exposure"`
}

// parseReportAssessments reads the findings of an evident JSON report.
// A finding that cannot be read is returned as a problem (naming the
// file and its index) and left out.
func parseReportAssessments(data []byte, name string) ([]assess.Assessment, []error, error) {
	const want = "--report takes evident's JSON report (evident analyze --format json)"
	var doc reportDoc
	err := json.Unmarshal(data, &doc)
	if err != nil || doc.Version == 0 {
		// Some other JSON that evident reads or writes is the likely
		// mistake; a decoding error would not say so.
		if what := describeInput(data); what != "" {
			return nil, nil, fmt.Errorf("read report %s: this is %s; %s", name, what, want)
		}
	}
	// Nor would a decoding error, or "version 0", say what is wrong with
	// an empty file, a file that is not JSON or JSON of another shape.
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return nil, nil, fmt.Errorf("read report %s: the file is empty; %s", name, want)
	case !json.Valid(data):
		return nil, nil, fmt.Errorf("read report %s: not a JSON document; %s", name, want)
	case err != nil || doc.Version == 0:
		return nil, nil, fmt.Errorf("read report %s: JSON, but not an object with a \"version\" and \"findings\"; %s", name, want)
	}
	if doc.Version != report.JSONVersion {
		return nil, nil, fmt.Errorf("read report %s: version %d, want %d (docs/report-json.md)", name, doc.Version, report.JSONVersion)
	}
	var out []assess.Assessment
	var problems []error
	for i, raw := range doc.Findings {
		var f reportFinding
		if err := json.Unmarshal(raw, &f); err != nil {
			problems = append(problems, fmt.Errorf("report %s: findings[%d]: %w", name, i, err))
			continue
		}
		if f.Vulnerability.ID == "" || f.Service == "" {
			problems = append(problems, fmt.Errorf("report %s: findings[%d]: no vulnerability id or service", name, i))
			continue
		}
		out = append(out, assess.Assessment{
			Finding:      findings.Finding{Service: f.Service, Package: f.Package, Vulnerability: f.Vulnerability},
			Reachability: assess.Reachability{Verdict: f.Reachability.Verdict, Endpoints: f.Reachability.Endpoints},
			Exposure:     f.Exposure,
		})
	}
	return out, problems, nil
}

type wafProxyFlags struct {
	upstream, rules, listen, auditLog, metricsPath string
	services                                       []string
	// tls is served to clients; upstreamTLS verifies an https upstream.
	tls             tlsconfig.ServerConfig
	upstreamTLS     tlsconfig.ClientConfig
	upstreamTimeout time.Duration
}

func newWAFProxyCmd(g *globals) *cobra.Command {
	def := waf.DefaultProxyConfig()
	fl := wafProxyFlags{listen: def.Listen, metricsPath: def.MetricsPath, tls: def.Limits.TLS, upstreamTimeout: def.UpstreamTimeout}
	cmd := &cobra.Command{
		Use:   "proxy --upstream URL --rules DIR",
		Short: "Run a reverse proxy that enforces the virtual patches with Coraza",
		Long: `Forward requests to --upstream, denying (403) those a virtual patch of --rules
(the directory of "evident waf generate") blocks. Prometheus metrics are served
on --metrics-path of the same listener (not forwarded); every blocked request,
and every match of a detection-only rule, is written to --audit-log as a JSON
line, with secrets and personal data redacted. Stops on SIGINT or SIGTERM,
letting requests in flight finish. On SIGHUP it loads --rules again (keeping
the rules in force if they do not load) and reopens --audit-log, for logrotate.`,
		Example: `  evident waf proxy --upstream http://127.0.0.1:18080 --rules patches/ --service gateway`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWAFProxy(cmd.Context(), g, fl)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.upstream, "upstream", "", "URL to forward requests to (required)")
	f.StringVar(&fl.rules, "rules", "", "directory written by evident waf generate (required)")
	f.StringVar(&fl.listen, "listen", fl.listen, "address to listen on")
	f.StringSliceVar(&fl.services, "service", nil, "enforce only the patches of these services (default: all)")
	f.StringVar(&fl.auditLog, "audit-log", "", "file to append the audit log (JSON lines) to; - for stderr")
	f.StringVar(&fl.metricsPath, "metrics-path", fl.metricsPath, "path of the Prometheus metrics on the proxy's listener; empty to disable")
	f.StringVar(&fl.tls.CertFile, "tls-cert-file", "", "serve TLS with this PEM certificate chain (with --tls-key-file); re-read when it changes")
	f.StringVar(&fl.tls.KeyFile, "tls-key-file", "", "PEM key of --tls-cert-file")
	f.StringVar(&fl.tls.ClientCAFile, "tls-client-ca-file", "", "ask clients for a certificate signed by these PEM CAs (mTLS)")
	f.StringVar(&fl.upstreamTLS.CAFile, "upstream-ca-file", "", "PEM CAs that sign an https upstream's certificate, instead of the system's roots")
	f.StringVar(&fl.upstreamTLS.CertFile, "upstream-cert-file", "", "PEM client certificate for an upstream that asks for one (with --upstream-key-file)")
	f.StringVar(&fl.upstreamTLS.KeyFile, "upstream-key-file", "", "PEM key of --upstream-cert-file")
	f.DurationVar(&fl.upstreamTimeout, "upstream-timeout", fl.upstreamTimeout, "longest wait to connect to the upstream and for its response headers (504 after)")
	return cmd
}

func runWAFProxy(ctx context.Context, g *globals, fl wafProxyFlags) error {
	if err := required("--upstream", fl.upstream, "--rules", fl.rules); err != nil {
		return withCode(ExitUsage, err)
	}
	if err := checkProxyTLSFlags(fl); err != nil {
		return withCode(ExitUsage, err)
	}
	rules, err := waf.LoadRules(fl.rules, fl.services)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	cfg := waf.DefaultProxyConfig()
	cfg.Upstream, cfg.Listen, cfg.Directives, cfg.MetricsPath = fl.upstream, fl.listen, rules, fl.metricsPath
	cfg.Limits.TLS, cfg.UpstreamTLS = fl.tls, fl.upstreamTLS
	cfg.UpstreamTimeout = fl.upstreamTimeout
	switch fl.auditLog {
	case "":
	case "-":
		cfg.AuditLog = g.stderr
	default:
		f, err := waf.OpenAuditFile(fl.auditLog)
		if err != nil {
			return withCode(ExitUsage, fmt.Errorf("--audit-log: %w", err))
		}
		defer f.Close()
		cfg.AuditLog = f
	}
	logger := slog.New(slog.NewTextHandler(g.stderr, nil))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p, err := waf.NewProxy(cfg, logger, reg, reg)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Before Start: a SIGHUP from then on reloads, and would otherwise
	// end the process without draining.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := p.Start(ctx); err != nil {
		return withCode(ExitUsage, err)
	}
	services := fl.services
	if len(services) == 0 {
		services = waf.PatchedServices(fl.rules)
	}
	if len(services) == 0 {
		// Not an error: a run of waf generate that found nothing to
		// patch writes such a directory, and the proxy in front of a
		// service stays in place. But it should not look like one that
		// enforces patches.
		logger.Warn("no virtual patches in --rules: the proxy enforces the engine settings only", "rules", fl.rules)
	}
	logger.Info("waf proxy listening", "addr", p.Addr(), "upstream", fl.upstream, "services", strings.Join(services, ","))
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-hup:
			// Reload logs what it loaded, or why it kept the rules in
			// force; the proxy serves on either way.
			_ = p.Reload(fl.rules, fl.services)
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Shutdown(shutdownCtx)
}

// checkProxyTLSFlags names the flags that go together. tlsconfig's own
// errors name the configuration file's keys (cert_file, client_ca_file),
// which the proxy, configured by flags only, has none of.
func checkProxyTLSFlags(fl wafProxyFlags) error {
	switch {
	case (fl.tls.CertFile == "") != (fl.tls.KeyFile == ""):
		return errors.New("--tls-cert-file and --tls-key-file go together")
	case fl.tls.ClientCAFile != "" && fl.tls.CertFile == "":
		return errors.New("--tls-client-ca-file needs --tls-cert-file and --tls-key-file: clients are asked for a certificate only over TLS")
	case (fl.upstreamTLS.CertFile == "") != (fl.upstreamTLS.KeyFile == ""):
		return errors.New("--upstream-cert-file and --upstream-key-file go together")
	}
	return nil
}

// inputNouns name the inputs of evident analyze --findings.
var inputNouns = map[findings.Format]string{
	findings.FormatGovulncheck: "a govulncheck report (an input of evident analyze --findings)",
	findings.FormatTrivy:       "a Trivy report (an input of evident analyze --findings)",
	findings.FormatGrype:       "a Grype report (an input of evident analyze --findings)",
	findings.FormatOSVScanner:  "an OSV-Scanner report (an input of evident analyze --findings)",
	findings.FormatCycloneDX:   "a CycloneDX BOM",
	findings.FormatSPDX:        "an SPDX document (an input of evident analyze --findings)",
	findings.FormatGoBinary:    "a Go executable (an input of evident analyze --findings)",
	findings.FormatNPMAudit:    "an npm audit report (an input of evident analyze --findings)",
	findings.FormatPipAudit:    "a pip-audit report (an input of evident analyze --findings)",
	findings.FormatLockfile:    "a lockfile (an input of evident analyze --findings)",
	findings.FormatEvident:     "evident's findings (evident findings import --format json; an input of evident analyze --findings)",
}

// describeInput says what data is when it is one of the other files
// evident reads or writes: a scanner report or SBOM, a SARIF log, an
// OpenVEX document, OTLP telemetry. It returns "" for anything else.
func describeInput(data []byte) string {
	if f, err := findings.Detect(data[:min(len(data), detectPrefix)]); err == nil {
		return inputNouns[f]
	}
	// The first JSON value: a stream or JSON lines hold several.
	var top map[string]json.RawMessage
	if json.NewDecoder(bytes.NewReader(data)).Decode(&top) != nil {
		return ""
	}
	switch {
	case top["runs"] != nil && top["version"] != nil:
		return "a SARIF log"
	case top["@context"] != nil && top["statements"] != nil:
		return "an OpenVEX document"
	case top["resourceSpans"] != nil:
		return "OTLP traces (an input of --traces)"
	case top["resourceProfiles"] != nil:
		return "OTLP profiles (an input of evident analyze --profiles)"
	}
	return ""
}
