package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/report"
	"github.com/evidentsec/evident/internal/telemetry"
	"github.com/evidentsec/evident/internal/vulndb"
)

// analyzeFlags are the inputs of one analysis.
type analyzeFlags struct {
	vulns, findings, profiles, traces []string
	kev, epss, config, format, output string
	failOn                            []string
	// sourceRoot is where SARIF locations are relative to; maxBytes caps
	// the Markdown.
	sourceRoot string
	maxBytes   int
	// packages are the services' installed packages: jars and Python
	// site-packages directories.
	packages []string
	// sources are the query APIs telemetry is read from.
	sources sourceFlags
	// now stamps the report; tests fix it.
	now func() time.Time
}

func newAnalyzeCmd(g *globals) *cobra.Command {
	fl := analyzeFlags{now: time.Now}
	cmd := &cobra.Command{
		Use:   "analyze --findings [SERVICE[,SERVICE]=]FILE... [--profiles [SERVICE=]PATH...] [--traces PATH...]",
		Short: "Rank vulnerability findings by the runtime evidence in profiles and traces",
		Long: `Read scanner findings and SBOMs, the OSV vulnerability database, and the
profiles and traces a team already collects, and say for every finding whether
the vulnerable code runs (executed, loaded, not_observed, unknown), how exposed
its service is and what it can reach, ranked P1-P4 with the evidence.

--findings takes scanner reports and SBOMs (govulncheck, Trivy, Grype,
OSV-Scanner, npm audit, pip-audit, CycloneDX, SPDX, Go binaries) and lockfiles
(package-lock.json, pnpm-lock.yaml, yarn.lock, requirements.txt, poetry.lock,
pom.xml, gradle.lockfile, go.mod), and evident findings import's JSON (whose
findings keep the services they name), gzipped or not; SERVICE=FILE or SVC1,SVC2=FILE
assigns them to services, and a directory holds one report per service named
after it (reports/gateway.json). --profiles takes pprof, OTLP profile, JFR
(.jfr) and folded stack (.folded, .collapsed, austin's .austin) files or
directories (a directory's subdirectories name services), SERVICE=PATH to
assign them; folded stacks end at their file's modification time
(docs/architecture.md).
--traces takes OTLP (protobuf, JSON, JSON lines) or Tempo JSON. A file is
read as what its content is, whichever of the two flags names it.
--packages takes the services' installed packages, where profiles cannot
tell which artifact or distribution a frame's code ships in: jars or
directories of jars (their pom.properties and classes), and Python
site-packages directories (the top_level.txt and RECORD of each
distribution).
--tempo URL and --pyroscope URL read traces and profiles from Grafana Tempo
and Pyroscope (self-hosted or Grafana Cloud) over --since or --from/--to,
with credentials from EVIDENT_TEMPO_* and EVIDENT_PYROSCOPE_*
(docs/sources.md).
Without --vulns, the database under <data>/vulndb ("evident db update").

An input without a service gets the one it names: a report the service whose
telemetry (container.image.name) runs the image it scanned, or the last
element of the image, directory or root package it scanned
(example.com/shop/cmd/gateway gives gateway) when the telemetry has that
service or there is no telemetry; a profile its service_name label or
resource service.name. Else it gets the only service of the telemetry.
Otherwise it is refused, with the SERVICE= form to use. What was inferred is
said on stderr, and so are the services of findings that the telemetry (if it
has services) has none of: their verdicts can only be unknown.

--fail-on POLICY exits 1 when a finding matches: a tier (P1, P2 or P3: that
tier or higher), a verdict (executed, loaded), or kev; comma-separated or
repeated, any one matching fails. A policy that could never match is refused
(status 2) rather than passing silently: kev without a KEV catalog loaded
(--kev FILE, or <data>/vulndb/kev.json from "evident db update" when --vulns
is not given), executed or loaded without any profiles or traces.

Exit status: 0 ok, 1 --fail-on matched, 2 usage or unreadable input, 3 the
report is complete but some records or files were skipped (named on stderr:
a trace or a service's profile a source failed to give while it gave the
rest is such a skip).`,
		Example: `  evident analyze --findings gateway=gateway.govulncheck.json \
      --profiles examples/shop/recorded/profiles --traces examples/shop/recorded/traces.jsonl
  evident analyze --findings reports/ --profiles gateway=cpu.pb.gz --traces traces.jsonl
  EVIDENT_TEMPO_USER=123456 EVIDENT_TEMPO_PASSWORD_FILE=tempo.token \
      evident analyze --findings reports/ --tempo https://tempo.example.com --pyroscope https://pyroscope.example.com --since 24h
  evident analyze --vulns osv-go.zip --findings trivy.json --format sarif -o evident.sarif --fail-on P1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := fl.sources.validate(cmd.Flags().Changed); err != nil {
				return withCode(ExitUsage, err)
			}
			return runAnalyze(cmd.Context(), g, fl)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&fl.vulns, "vulns", nil, "OSV source instead of <data>/vulndb: directory, all.zip or vuln.go.dev layout (repeatable)")
	f.StringVar(&fl.kev, "kev", "", "CISA KEV catalog (JSON feed) instead of <data>/vulndb/kev.json")
	f.StringVar(&fl.epss, "epss", "", "FIRST's EPSS scores (CSV, gzipped or not) instead of <data>/vulndb/epss.csv.gz")
	f.StringArrayVar(&fl.findings, "findings", nil, "scanner report or SBOM as [SERVICE[,SERVICE]=]FILE, or a directory of SERVICE.* reports (repeatable)")
	f.StringArrayVar(&fl.profiles, "profiles", nil, "profile file or directory, [SERVICE=]PATH (repeatable)")
	f.StringArrayVar(&fl.traces, "traces", nil, "trace file or directory (repeatable)")
	f.StringArrayVar(&fl.packages, "packages", nil, "installed packages: a jar, a directory of jars or a Python site-packages directory (repeatable)")
	f.StringVar(&fl.config, "config", "", "configuration file (docs/configuration.md)")
	f.StringVar(&fl.format, "format", "table", "output format: "+strings.Join(report.Names, ", "))
	f.StringVarP(&fl.output, "output", "o", "", "write the report to this file instead of stdout")
	f.StringSliceVar(&fl.failOn, "fail-on", nil, "exit 1 when a finding matches: P1, P2, P3, executed, loaded, kev")
	f.StringVar(&fl.sourceRoot, "source-root", "", "SARIF: the repository root, where manifests are looked up and locations are relative to (default: where the findings came from)")
	fl.sources.register(f)
	f.IntVar(&fl.maxBytes, "max-bytes", 60_000, "Markdown: cut the lowest-priority findings to fit this many bytes (a pull-request comment holds 65,536 characters); 0 for no cap")
	completeFlag(cmd, "format", report.Names)
	completeFlag(cmd, "fail-on", failOnValues)
	return cmd
}

func runAnalyze(ctx context.Context, g *globals, fl analyzeFlags) error {
	if len(fl.findings) == 0 {
		return withCode(ExitUsage, errors.New("no findings: name at least one scanner report or SBOM with --findings"))
	}
	policy, err := parseFailOn(fl.failOn)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	if fl.maxBytes < 0 {
		return withCode(ExitUsage, fmt.Errorf("--max-bytes %d: want 0 (no cap) or more", fl.maxBytes))
	}
	// Before the inputs are read: an analysis takes a while.
	if err := checkOutputFile(fl.output); err != nil {
		return withCode(ExitUsage, fmt.Errorf("--output %s: %w", fl.output, err))
	}
	cfg, err := loadConfig(fl.config)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	color := false
	out := g.stdout
	if fl.output == "" {
		if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) && os.Getenv("NO_COLOR") == "" {
			color = true
		}
	}
	// The format is checked before the inputs are read; it is looked up
	// again once SARIF's manifests are known.
	opts := report.Options{Color: color, Products: cfg.Products, MaxBytes: fl.maxBytes, Warn: func(err error) {
		fmt.Fprintf(g.stderr, "evident: warning: %v\n", err)
	}}
	if _, err := report.Lookup(fl.format, opts); err != nil {
		return withCode(ExitUsage, fmt.Errorf("--format: %w", err))
	}

	warn, skipped := skipWarner(g.stderr)

	if err := findingsExist(fl.findings); err != nil {
		return withCode(ExitUsage, err)
	}
	db, problems, err := openVulnDB(ctx, g, fl.vulns, fl.kev, fl.epss, cfg.Knowledge)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	for _, p := range problems {
		warn(p)
	}
	if err := policy.matchable(g, fl, db.Stats()); err != nil {
		return withCode(ExitUsage, err)
	}

	// The SBOMs' Maven and PyPI components, vulnerable or not, tell
	// attribution which packages each artifact ships (JFR frames name
	// classes only) and which namespace modules each distribution does
	// (py-spy's short names lose the namespace).
	sbom := &sbomComponents{Matcher: db}
	inputs, err := importFindings(fl.findings, sbom, warn)
	if err != nil {
		return withCode(ExitUsage, err)
	}

	var imported []findings.Finding
	for _, in := range inputs {
		imported = append(imported, in.fs...)
	}
	inst, err := readInstalled(fl.packages, warn)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	m := model.New(model.DefaultConfig(), attribution.New(inst.apply(attributionConfig(imported, sbom.names, cfg.attribution()), cfg.PythonDists)))
	h := newAnalyzeHandler(m)
	// Traces first: they resolve the span ids that profile samples carry
	// to the endpoints that led there.
	if err := loadTelemetry(ctx, "--traces", fl.traces, h.from("--traces"), warn); err != nil {
		return withCode(ExitUsage, err)
	}
	// The services of the --traces files: of the traces of the services
	// --service selects, their spans that the files hold too are not
	// handed on again (source.Pull.Elsewhere). A copy: the pull's spans
	// are traced too.
	traced := maps.Clone(h.traced)
	if err := pullSources(ctx, fl.sources, fl.now(), h, func(svc string) bool { return traced[svc] }, g.stderr, warn); err != nil {
		return withCode(ExitUsage, err)
	}
	if err := loadTelemetry(ctx, "--profiles", fl.profiles, h.from("--profiles"), warn); err != nil {
		return withCode(ExitUsage, err)
	}
	note := func(s string) { fmt.Fprintf(g.stderr, "evident: %s\n", s) }
	if err := h.resolveProfiles(note); err != nil {
		return withCode(ExitUsage, err)
	}
	seen := h.seen()
	all, err := assignFindings(inputs, seen, db, note)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	if svcs := unmatchedServices(all, seen); len(svcs) > 0 {
		note(fmt.Sprintf("warning: no telemetry of %s, whose findings stay unknown (the telemetry's services: %s); name a service as its telemetry does: --findings SERVICE=FILE",
			strings.Join(svcs, ", "), strings.Join(seen.names, ", ")))
	}

	if fl.format == "sarif" {
		if opts.Manifests, err = scanManifests(sourceRoot(fl.sourceRoot, fl.findings), all, warn); err != nil {
			return withCode(ExitUsage, err)
		}
	}
	format, err := report.Lookup(fl.format, opts)
	if err != nil {
		return withCode(ExitUsage, fmt.Errorf("--format: %w", err))
	}

	// All spans are in: a SERVER span whose caller did not come never will.
	m.Settle()
	snap := m.Snapshot()
	for _, s := range snap.Services {
		if len(s.Namespaces) > 1 {
			note(fmt.Sprintf("warning: the services named %s in the namespaces %s (service.namespace) are merged into one: their spans, profiles, calls, stores and findings mix, and none of its findings is not_affected; give them different service.name values, or analyze each namespace's telemetry apart",
				s.Name, strings.Join(s.Namespaces, ", ")))
		}
	}
	assessor := assess.New(cfg.Config, db, snap)
	as := assessor.Assess(all)
	res := &report.Result{Generated: fl.now().UTC(), Version: buildVersion(), Summary: assess.Summarize(as), Assessments: as, Snapshot: snap, Exposure: assessor.ServiceExposures(), VulnDB: db.Stats()}
	if err := writeReport(fl.output, out, format, res); err != nil {
		return withCode(ExitUsage, err)
	}
	if n := policy.violations(as); n > 0 {
		return withCode(ExitPolicy, fmt.Errorf("--fail-on %s: %d findings match", strings.Join(fl.failOn, ","), n))
	}
	if *skipped {
		return withCode(ExitSkipped, errSkipped)
	}
	return nil
}

// skipWarner returns the warn function of a command that goes on past
// inputs it cannot read in full: it says on stderr what was left out, and
// *skipped reports whether anything was. A file of which a part was used
// (a *partialReadError) is said to be read in part, not skipped.
func skipWarner(stderr io.Writer) (warn func(error), skipped *bool) {
	skipped = new(bool)
	return func(err error) {
		*skipped = true
		if _, ok := errors.AsType[*partialReadError](err); ok {
			fmt.Fprintf(stderr, "evident: %v\n", err)
			return
		}
		fmt.Fprintf(stderr, "evident: skipped %v\n", err)
	}, skipped
}

// partialReadError reports a telemetry file of which some spans or
// profiles were used and the rest could not be read.
type partialReadError struct {
	path            string
	spans, profiles int
	err             error
}

func (e *partialReadError) Error() string {
	var used []string
	if e.spans > 0 {
		used = append(used, plural(e.spans, "span"))
	}
	if e.profiles > 0 {
		used = append(used, plural(e.profiles, "profile"))
	}
	return fmt.Sprintf("read %s in part (%s used, the rest skipped): %v", e.path, strings.Join(used, " and "), e.err)
}

func (e *partialReadError) Unwrap() error { return e.err }

// plural is "1 span" or "2 spans".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// findingsExist tells, before the vulnerability database is opened (which
// takes a while, and which a new user may not have yet: its error would
// come first), of a --findings argument that names nothing that can be
// opened, in the words importFindings would use.
func findingsExist(args []string) error {
	for _, arg := range args {
		in, err := splitServiceArg(arg)
		if err != nil {
			return fmt.Errorf("--findings %q: %w", arg, err)
		}
		f, err := os.Open(in.Path)
		if err != nil {
			return fmt.Errorf("--findings: read findings: %w", err)
		}
		f.Close()
	}
	return nil
}

// importFindings reads every --findings argument, matching the packages
// of SBOMs against db; assignFindings then gives them their services. A
// file that cannot be read at all is an error; records that cannot be
// read are reported through warn and skipped. A directory holds one
// report per service, named after it: reports/gateway.json is the
// gateway's.
func importFindings(args []string, db findings.Matcher, warn func(error)) ([]importedFindings, error) {
	parsers := importParsers()
	maps.Copy(parsers, sbomParsers(func() (findings.Matcher, error) { return db, nil }))
	var all []importedFindings
	for _, arg := range args {
		in, err := splitServiceArg(arg)
		if err != nil {
			return nil, fmt.Errorf("--findings %q: %w", arg, err)
		}
		files, err := findingsFiles(in.Service, in.Path)
		if err != nil {
			return nil, fmt.Errorf("--findings %s: %w", arg, err)
		}
		for _, f := range files {
			fs, errs := importFile(f.path, "auto", parsers)
			for _, err := range errs {
				if _, ok := errors.AsType[*findings.RecordError](err); !ok && len(fs) == 0 {
					// importFile's errors name the file: the argument
					// is named too when it is a directory of reports.
					if f.path == in.Path {
						return nil, fmt.Errorf("--findings: %w", err)
					}
					return nil, fmt.Errorf("--findings %s: %w", arg, err)
				}
				warn(err)
			}
			all = append(all, importedFindings{f, fs})
		}
	}
	return all, nil
}

// findingsFile is one report or SBOM with the services it was given for
// (SVC1,SVC2=FILE or its name in a directory), "" when none.
type findingsFile struct{ services, path string }

// forServices assigns the findings of one input to the services it was
// given for: SVC1,SVC2=FILE means that the same artifact runs as several
// services. Without services, fs is returned as it is.
func forServices(fs []findings.Finding, services string) []findings.Finding {
	if services == "" {
		return fs
	}
	var out []findings.Finding
	for svc := range strings.SplitSeq(services, ",") {
		for _, f := range fs {
			f.Service = svc
			out = append(out, f)
		}
	}
	return out
}

// findingsFiles expands a directory into its files, each assigned to the
// service its name starts with.
func findingsFiles(services, path string) ([]findingsFile, error) {
	info, err := os.Stat(path)
	if err != nil || !info.IsDir() {
		// A missing file is reported by the importer, with its name.
		return []findingsFile{{services, path}}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var out []findingsFile
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") || strings.EqualFold(e.Name(), "README.md") {
			continue
		}
		svc := services
		if svc == "" {
			svc, _, _ = strings.Cut(e.Name(), ".")
		}
		out = append(out, findingsFile{svc, filepath.Join(path, e.Name())})
	}
	if len(out) == 0 {
		return nil, errors.New("the directory holds no reports")
	}
	return out, nil
}

// loadTelemetry decodes the telemetry files that the arguments of flag
// (--traces, --profiles) name into h. Files and records that cannot be
// read are reported through warn and skipped, a file of which a part was
// used as a *partialReadError. The error is fatal: an argument that is
// not [SERVICE=]PATH, no argument naming a file that can be read, or the
// end of ctx.
func loadTelemetry(ctx context.Context, flag string, args []string, h telemetry.Handler, warn func(error)) error {
	var inputs []telemetry.Input
	for _, arg := range args {
		in, err := splitServiceArg(arg)
		if err != nil {
			return fmt.Errorf("%s %q: %w", flag, arg, err)
		}
		inputs = append(inputs, in)
	}
	// All at once: a file that two arguments list (a directory and a
	// file in it) is read once. Each error names its file.
	files, err := telemetry.Discover(inputs)
	if err != nil {
		err = fmt.Errorf("%s: %w", flag, err)
		if len(files) == 0 {
			return err
		}
		warn(err)
	}
	// One file at a time, to tell a file of which nothing was used from
	// one cut short.
	for _, f := range files {
		c := &countingHandler{Handler: h}
		err := telemetry.Load(ctx, []telemetry.File{f}, c)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return err
		case c.spans > 0 || c.profiles > 0:
			warn(&partialReadError{path: f.Path, spans: c.spans, profiles: c.profiles, err: err})
		default:
			warn(err)
		}
	}
	return nil
}

// countingHandler counts what it hands on to its Handler.
type countingHandler struct {
	telemetry.Handler
	spans, profiles int
}

func (c *countingHandler) Profile(b *telemetry.ProfileBatch) error {
	c.profiles++
	return c.Handler.Profile(b)
}

func (c *countingHandler) Spans(spans []telemetry.Span) error {
	c.spans += len(spans)
	return c.Handler.Spans(spans)
}

// checkOutputFile reports why path cannot be created or replaced as a
// file, as far as can be told without writing: it is a directory, or its
// parent directory does not exist. "" (standard output) is fine.
func checkOutputFile(path string) error {
	if path == "" {
		return nil
	}
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		return errors.New("is a directory: name a file")
	}
	dir := filepath.Dir(path)
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("directory %s does not exist", dir)
	case err != nil:
		return err
	case !info.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

func writeReport(path string, stdout io.Writer, f report.Format, r *report.Result) error {
	if path == "" {
		return f.Write(stdout, r)
	}
	file, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	if err := f.Write(file, r); err != nil {
		file.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return file.Close()
}

// failPolicy is the parsed --fail-on.
type failPolicy struct {
	tier     string // fail on this tier or higher ("P1" < "P2")
	verdicts []assess.Verdict
	kev      bool
}

// failOnValues are the policies --fail-on takes, in any letter case.
var failOnValues = []string{"P1", "P2", "P3", string(assess.Executed), string(assess.Loaded), "kev"}

func parseFailOn(values []string) (failPolicy, error) {
	var p failPolicy
	for _, v := range values {
		if i := slices.IndexFunc(failOnValues, func(c string) bool { return strings.EqualFold(c, v) }); i >= 0 {
			v = failOnValues[i]
		}
		switch v {
		case "P1", "P2", "P3":
			if p.tier == "" || v > p.tier {
				p.tier = v
			}
		case string(assess.Executed), string(assess.Loaded):
			p.verdicts = append(p.verdicts, assess.Verdict(v))
		case "kev":
			p.kev = true
		default:
			return p, fmt.Errorf("--fail-on %q: want P1, P2, P3, executed, loaded or kev", v)
		}
	}
	return p, nil
}

// matchable refuses a policy that no finding could match with the
// inputs of fl, whatever the findings: a gate in CI that can never fail
// would pass silently. kev needs a KEV catalog (stats of the database
// loaded); executed and loaded need telemetry, which fl names none of.
func (p failPolicy) matchable(g *globals, fl analyzeFlags, stats vulndb.Stats) error {
	var errs []error
	if p.kev && !stats.HasKEV() {
		how := `name the catalog with --kev FILE (CISA's known_exploited_vulnerabilities.json), or run "evident db update", which fetches it into <data>/vulndb/kev.json`
		if len(fl.vulns) > 0 {
			how = "--vulns replaces <data>/vulndb, whose kev.json is then not read: name the catalog with --kev FILE"
			if kev := filepath.Join(g.dataDir, "vulndb", "kev.json"); fileExists(kev) {
				how += " (e.g. --kev " + kev + ")"
			} else {
				how += ` ("evident db update" fetches it into <data>/vulndb/kev.json)`
			}
		}
		errs = append(errs, fmt.Errorf("--fail-on kev: no KEV catalog is loaded, so no finding could match: %s", how))
	}
	telemetry := len(fl.profiles) > 0 || len(fl.traces) > 0 || fl.sources.tempo != "" || fl.sources.pyroscope != ""
	for _, v := range p.verdicts {
		if !telemetry {
			errs = append(errs, fmt.Errorf("--fail-on %s: no profiles or traces are read, so no finding could be %s: name them with --profiles, --traces, --pyroscope or --tempo", v, v))
		}
	}
	return errors.Join(errs...)
}

// fileExists reports whether path is a file that can be stat'ed.
func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir()
}

func (p failPolicy) violations(as []assess.Assessment) int {
	n := 0
	for _, a := range as {
		if (p.tier != "" && a.Priority.Tier <= p.tier) || slices.Contains(p.verdicts, a.Reachability.Verdict) || (p.kev && a.KnownExploited) {
			n++
		}
	}
	return n
}

// sbomComponents is the vulnerability database as SBOM parsers look their
// components up in it, noting the names of the Maven and PyPI ones, which
// tell attribution what the services ship (attributionConfig). It is safe
// for concurrent use.
type sbomComponents struct {
	findings.Matcher
	mu sync.Mutex
	// names are the components' names by ecosystem (osv.EcosystemMaven,
	// osv.EcosystemPyPI).
	names map[string][]string
}

// Affecting notes a Maven or PyPI component and looks it up.
func (m *sbomComponents) Affecting(ecosystem, name, version string) []*vulndb.Vuln {
	for _, eco := range [...]string{osv.EcosystemMaven, osv.EcosystemPyPI} {
		if strings.EqualFold(ecosystem, eco) {
			m.mu.Lock()
			if m.names == nil {
				m.names = make(map[string][]string)
			}
			m.names[eco] = append(m.names[eco], name)
			m.mu.Unlock()
		}
	}
	return m.Matcher.Affecting(ecosystem, name, version)
}
