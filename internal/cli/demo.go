package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/report"
	"github.com/evidentsec/evident/internal/store"
)

// errBuildExample marks a demo that could not build the example app (no
// Go toolchain, no module cache and no network): tests skip on it.
var errBuildExample = errors.New("build the example app")

// demoFlags are the inputs of evident demo.
type demoFlags struct {
	duration time.Duration
	// example is the shop's directory; found from the working directory
	// when empty.
	example string
	// examples says what to do with the examples beside the shop:
	// examplesAuto, examplesReplay or examplesOff.
	examples string
}

func newDemoCmd(g *globals) *cobra.Command {
	var fl demoFlags
	cmd := &cobra.Command{
		Use:   "demo [--duration D] [--examples auto|replay|off] [--data DIR]",
		Short: "Run evident serve against the example shop, live, and show the verdicts as they change",
		Long: `Start evident serve in this process with the embedded store (in a temporary
directory unless --data is given to the demo: EVIDENT_DATA is not used, so the
demo never writes into, nor replaces the findings of, the data directory the
other commands use), build and start the example shop's services
(examples/shop: real OpenTelemetry SDK traces over OTLP/HTTP, real pyroscope-go
profiles to /ingest), drive bounded load at its gateway on loopback, import the
example's govulncheck findings, and show the verdicts as they change, with the
API's URL. The first profiles arrive after about 15 s (pyroscope-go's upload
period).

On a terminal the prioritised table is redrawn in place, with the latest verdict
changes and alerts under it. Elsewhere (a pipe, a CI log) each verdict change and
each alert is one line, and the table is printed once the verdicts have not
changed for 30 s, and at the end.

Ctrl-C stops everything: the shop's processes are stopped and waited for, and
temporary directories removed. --duration stops by itself after D, counted
from the end of the build.

The examples in other languages beside the shop (examples/java-inventory,
examples/node-reviews, examples/python-reports) join the same serve, with
their SBOMs and records. With --examples auto (the default) each runs live
where its runtime is installed: Java 17 with Debian's jars, Node.js with npm
(npm ci into the temporary directory), Debian's python3 with its packages
and austin 2 or later (EVIDENT_AUSTIN names it where the austin on PATH is
older). Its service runs under its profiler (the JDK's flight recorder,
@datadog/pprof, austin) with its spans going to serve over OTLP/HTTP, its
load driver sends the requests of its tools/record.sh, and the profile it
writes as it stops goes to /ingest the way its runtime's Pyroscope client
sends one (austin's output as folded stacks). Where the runtime is missing, or the live run fails, its
recording is replayed instead (spans over OTLP/HTTP, profile to /ingest),
and the demo says why. --examples replay replays all three, --examples off
leaves them out. At the end a line per example says whether it ran live,
was replayed or skipped, and whether its verdicts are those of its
recorded/expected.yaml; if any differ, the demo exits with status 1.

The vulnerability records are the shop's recorded ones, or the database of
--data if it has one ("evident db update"); each example's recorded records
(those its expected.yaml was made with) are read beside them; a finding of a
record beyond them is counted but not compared.

Run it from the evident repository (go run ./cmd/evident demo); it needs the
Go toolchain to build the shop. The first build downloads the shop's modules
from the Go module proxy (GOPROXY) and compiles them, which takes minutes; it
prints its progress.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains([]string{examplesAuto, examplesReplay, examplesOff}, fl.examples) {
				return withCode(ExitUsage, fmt.Errorf("--examples %q: want auto, replay or off", fl.examples))
			}
			if fl.duration < 0 {
				return withCode(ExitUsage, fmt.Errorf("--duration %v: want a positive duration, or 0 to run until Ctrl-C", fl.duration))
			}
			err := runDemo(cmd.Context(), g, fl, demoDataNamed(cmd))
			if err != nil && cmd.Context().Err() != nil {
				// Ctrl-C before the shop ran (during its build): not a failure.
				fmt.Fprintf(g.stderr, "evident demo: interrupted (%v)\n", err)
				return nil
			}
			if ee := (*exitError)(nil); errors.As(err, &ee) {
				return err
			}
			if err != nil {
				return withCode(ExitUsage, err)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&fl.duration, "duration", 0, "stop after this long (0: until Ctrl-C)")
	cmd.Flags().StringVar(&fl.examples, "examples", examplesAuto, "the examples in other languages beside the shop: auto (live where their runtime is installed, else their recordings replayed), replay or off")
	cmd.Flags().StringVar(&fl.example, "example", "", "the example shop's directory (default: examples/shop of the repository around the working directory)")
	return cmd
}

// demoDataNamed says whether the demo keeps its store in the data
// directory of --data: only when the flag is given to the demo itself.
// EVIDENT_DATA names the directory of the other commands' store and
// database, which the demo must not write into, nor replace its
// findings: without --data the demo's store is temporary.
func demoDataNamed(cmd *cobra.Command) bool {
	return cmd.Flags().Changed("data")
}

// shopServices are the example's services that report telemetry, in
// start order; their findings are recorded/findings/<name>.json.
var shopServices = [...]string{"catalog", "orders", "gateway", "reporter"}

func runDemo(ctx context.Context, g *globals, fl demoFlags, dataSet bool) (err error) {
	shop := fl.example
	if shop == "" {
		if shop, err = findShop(); err != nil {
			return err
		}
	} else if err := checkShop(shop); err != nil {
		return withCode(ExitUsage, fmt.Errorf("--example %s: %w", shop, err))
	}
	work, err := os.MkdirTemp("", "evident-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cfg, fs, examples, err := setUpDemo(g, shop, fl.examples, dataSet, work)
	if err != nil {
		return err
	}

	logFile, err := os.Create(filepath.Join(work, "evident.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	log := slog.New(slog.NewTextHandler(logFile, nil))

	// The examples' live runs are readied (compiled, installed) while the
	// shop builds.
	var prep sync.WaitGroup
	prepCtx, cancelPrep := context.WithCancel(ctx)
	defer prep.Wait()
	defer cancelPrep()
	for _, e := range examples {
		switch how, why := e.outcome(); {
		case how == exampleSkipped:
			fmt.Fprintf(g.stdout, "evident demo: %s skipped (%s)\n", e.dir, why)
		case fl.examples == examplesAuto:
			fmt.Fprintf(g.stdout, "evident demo: %s runs live where %s are installed, else replays its recording\n", e.dir, e.runtime)
		}
		e.startPrepare(prepCtx, &prep, work, fl.examples)
	}

	bin := filepath.Join(work, "bin")
	if err := buildShopProgress(ctx, g.stdout, shop, bin); err != nil {
		return err
	}

	srv, err := startServer(ctx, g, cfg, fs, log)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Serve.ShutdownTimeout)
		defer cancel()
		err = errors.Join(err, srv.Shutdown(sctx))
	}()
	srv.printAddrs(g.stdout)
	fmt.Fprintf(g.stdout, "evident demo: open %s in a browser to watch the findings change live\n", srv.uiURL())
	fmt.Fprintf(g.stdout, "evident demo: logs in %s; Ctrl-C stops\n", work)

	// The shop stops before the server (defers run last first), so that
	// its last spans and profiles still reach it.
	procs := &procGroup{logDir: work}
	defer procs.stop()
	shopCtx, stopShop := context.WithCancel(ctx)
	defer stopShop()
	loadDone, err := startShop(shopCtx, procs, bin, work, srv)
	if err != nil {
		return err
	}
	notes := make(chan string)
	note := func(line string) {
		select {
		case notes <- line:
		case <-shopCtx.Done():
		}
	}
	for _, e := range examples {
		if !e.included() {
			continue
		}
		procs.wg.Go(func() { e.run(shopCtx, procs, srv, note) })
	}

	if fl.duration > 0 {
		// Counted from here: building the shop can take a minute.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, fl.duration)
		defer cancel()
	}
	alerts, unsubscribe := srv.alerts.Subscribe()
	defer unsubscribe()
	res := showLive(ctx, g.stdout, srv, alerts, notes, loadDone)
	err = printSummaries(g.stdout, examples, res)
	fmt.Fprintln(g.stdout, "evident demo: stopping")
	return err
}

// setUpDemo is what the demo serves with: the shop's configuration with
// its listeners on free loopback ports, the findings of the shop and of
// the examples beside it, and the records to match them with.
//
// The store is in a data directory under work unless dataSet (the user
// named one with --data for the demo). The records are the shop's
// recorded ones, or the database of that data directory if it has one;
// each example's recorded records (those its expected.yaml was made
// with) are read beside either, so that its verdicts can be compared
// with expected.yaml whatever else is loaded.
func setUpDemo(g *globals, shop, mode string, dataSet bool, work string) (fileConfig, serveFlags, []*includedExample, error) {
	var fs serveFlags
	if !dataSet {
		g.dataDir = filepath.Join(work, "data")
	}
	cfg, err := loadConfig(filepath.Join(shop, "evident.yaml"))
	if err != nil {
		return cfg, fs, nil, err
	}
	cfg.Serve.API.Endpoint = "127.0.0.1:0"
	cfg.Serve.OTLP.GRPCEndpoint, cfg.Serve.OTLP.HTTPEndpoint = "", "127.0.0.1:0"
	cfg.Serve.Pyroscope.Endpoint = "127.0.0.1:0"
	// The demo lasts minutes: re-assess and refresh often.
	cfg.Serve.Engine.RefreshInterval = 2 * time.Second
	// Checked as serve checks it once its flags are applied.
	if err := cfg.Serve.Validate(); err != nil {
		return cfg, fs, nil, fmt.Errorf("config %s: %w", filepath.Join(shop, "evident.yaml"), err)
	}

	if _, err := os.Stat(filepath.Join(g.dataDir, "vulndb")); err != nil {
		fs.vulns = []string{filepath.Join(shop, "recorded", "osv")}
	}
	for _, s := range shopServices {
		fs.findings = append(fs.findings, s+"="+filepath.Join(shop, "recorded", "findings", s+".json"))
	}
	examples := findExamples(shop, mode)
	for _, e := range examples {
		if !e.included() {
			continue
		}
		if err := e.addTo(&fs, &cfg); err != nil {
			e.set(exampleSkipped, err.Error())
		}
	}
	return cfg, fs, examples, nil
}

// printSummaries prints each example's line at the end of the demo to w.
// An example whose verdicts differ from its recorded/expected.yaml makes
// it an ExitPolicy error naming them: the demo doubles as a check of the
// examples, and a mismatch is a failed check, as audit verify's bad
// entry is.
func printSummaries(w io.Writer, examples []*includedExample, res *report.Result) error {
	var differ []string
	for _, e := range examples {
		line, ok := e.summary(res)
		fmt.Fprintf(w, "evident demo: %s\n", line)
		if !ok {
			differ = append(differ, e.dir)
		}
	}
	if len(differ) > 0 {
		return withCode(ExitPolicy, fmt.Errorf("demo: the verdicts of %s differ from their recorded/expected.yaml (the differences are above)", strings.Join(differ, ", ")))
	}
	return nil
}

// findShop finds examples/shop in the evident module around the working
// directory.
func findShop() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		shop := filepath.Join(dir, "examples", "shop")
		if checkShop(shop) == nil {
			return shop, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("examples/shop not found above the working directory: run the demo from the evident repository, or name it with --example")
		}
		dir = parent
	}
}

// shopLayout are the files of the example shop that the demo reads
// before it builds the shop.
var shopLayout = [...]string{"go.mod", "evident.yaml", filepath.Join("recorded", "findings")}

// checkShop says why dir is not the example shop: it does not exist, is
// not a directory, or lacks a file of shopLayout.
func checkShop(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("no such directory")
	case err != nil:
		return err
	case !fi.IsDir():
		return errors.New("not a directory")
	}
	for _, f := range shopLayout {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return fmt.Errorf("not the example shop (examples/shop of the evident repository): it has no %s", f)
		}
	}
	return nil
}

// shopCommands are the shop's programs that the demo runs.
var shopCommands = [...]string{"payments", "catalog", "orders", "gateway", "reporter", "load"}

// buildCounts counts what a build has done so far.
type buildCounts struct {
	modules, packages atomic.Int64
}

// buildShop builds the shop's commands into bin with one go build, so
// that they share one module download and one build cache, counting the
// modules it downloads and the packages it compiles.
func buildShop(ctx context.Context, shop, bin string, counts *buildCounts) error {
	args := []string{"build", "-v", "-trimpath", "-o", bin + string(os.PathSeparator)}
	for _, c := range shopCommands {
		args = append(args, "./cmd/"+c)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = shop
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w in %s: %w", errBuildExample, shop, err)
	}
	var out bytes.Buffer
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		line := lines.Text()
		switch {
		case strings.HasPrefix(line, "go: downloading "):
			counts.modules.Add(1)
		case line != "" && !strings.ContainsAny(line, " :"):
			counts.packages.Add(1) // -v names each package as it compiles it
		default:
			out.WriteString(line + "\n")
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%w in %s: %w\n%s", errBuildExample, shop, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// buildShopProgress builds the shop, saying what the build does and how
// far it got: every second in place on a terminal, every 15 s elsewhere.
func buildShopProgress(ctx context.Context, w io.Writer, shop, bin string) error {
	fmt.Fprintf(w, "evident demo: building the example shop in %s (go build ./cmd/{%s})\n", shop, strings.Join(shopCommands[:], ","))
	fmt.Fprintln(w, "evident demo: the first build downloads up to 100 MB of modules from the Go module proxy (GOPROXY) and compiles about 400 packages, which takes minutes; later builds take seconds")
	tty := isTerminal(w)
	every := 15 * time.Second
	if tty {
		every = time.Second
	}
	start := time.Now()
	var counts buildCounts
	status := func() string {
		return fmt.Sprintf("%v: %d modules downloaded, %d packages compiled",
			time.Since(start).Round(time.Second), counts.modules.Load(), counts.packages.Load())
	}
	done := make(chan error, 1)
	go func() { done <- buildShop(ctx, shop, bin, &counts) }()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if tty {
				fmt.Fprint(w, "\r\033[K") // clear the progress line
			}
			if err != nil {
				return err
			}
			if counts.modules.Load() == 0 && counts.packages.Load() == 0 {
				fmt.Fprintf(w, "evident demo: built in %v (linked from the build cache)\n", time.Since(start).Round(time.Second))
			} else {
				fmt.Fprintf(w, "evident demo: built in %s\n", status())
			}
			return nil
		case <-tick.C:
			if tty {
				fmt.Fprintf(w, "\r\033[Kevident demo: building... %s", status())
			} else {
				fmt.Fprintf(w, "evident demo: building... %s\n", status())
			}
		}
	}
}

// startShop starts the payment sandbox and the four services reporting
// to srv, and then the load driver, which runs bounded rounds until ctx
// ends; loadDone is closed when it stops.
func startShop(ctx context.Context, procs *procGroup, bin, work string, srv *server) (loadDone <-chan struct{}, err error) {
	telemetryEnv := []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + srv.otlp.HTTPAddr(),
		"OTEL_BSP_SCHEDULE_DELAY=1000",
		"PYROSCOPE_SERVER_ADDRESS=http://" + srv.pyro.Addr(),
	}
	db := filepath.Join(work, "shop.db")
	gw, err := startShopListeners(ctx, procs, bin, work, telemetryEnv, func(name, taken string) {
		srv.log.Warn("a shop service's port was taken before it listened on it; another port", "service", name, "port", taken)
	})
	if err != nil {
		return nil, err
	}
	if _, err := procs.start(ctx, bin, "reporter", append(telemetryEnv, "SHOP_DB="+db, "SHOP_REPORT_EVERY=1s")); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	procs.wg.Go(func() {
		defer close(done)
		// Rounds of 240 requests, 12 a second: bounded, and again until
		// the demo stops.
		for ctx.Err() == nil {
			if err := procs.run(ctx, bin, "load", "-gateway", "http://"+gw, "-n", "240", "-c", "2", "-rate", "12"); err != nil && ctx.Err() == nil {
				srv.log.Error("load", "err", err)
				return
			}
		}
	})
	return done, nil
}

// startShopListeners starts the payment sandbox and the shop's three services,
// with env added to each service's environment, each on a free port once
// what it calls listens (orders listens once its database, under work, is
// seeded), and returns the gateway's address. retried is told of a port
// given up (procGroup.listen).
func startShopListeners(ctx context.Context, procs *procGroup, bin, work string, env []string, retried func(name, taken string)) (gateway string, err error) {
	ca := filepath.Join(work, "payments-ca.pem")
	listen := func(name string, args func(addr string) (env, args []string)) (string, error) {
		return procs.listen(ctx, name, func(addr string) (<-chan struct{}, error) {
			e, a := args(addr)
			return procs.start(ctx, bin, name, e, a...)
		}, func(taken string) { retried(name, taken) })
	}
	payments, err := listen("payments", func(addr string) ([]string, []string) {
		return nil, []string{"-listen", addr, "-ca-out", ca}
	})
	if err != nil {
		return "", err
	}
	catalog, err := listen("catalog", func(addr string) ([]string, []string) {
		return append(slices.Clip(env), "SHOP_ADDR="+addr), nil
	})
	if err != nil {
		return "", err
	}
	orders, err := listen("orders", func(addr string) ([]string, []string) {
		return append(slices.Clip(env), "SHOP_ADDR="+addr, "SHOP_DB="+filepath.Join(work, "shop.db"),
			"SHOP_PAYMENTS_URL=https://payments.example.com", "SHOP_PAYMENTS_DIAL="+payments, "SHOP_PAYMENTS_CA="+ca), nil
	})
	if err != nil {
		return "", err
	}
	return listen("gateway", func(addr string) ([]string, []string) {
		return append(slices.Clip(env), "SHOP_ADDR="+addr, "SHOP_CATALOG_URL=http://"+catalog, "SHOP_ORDERS_URL=http://"+orders), nil
	})
}

// demoSettle is how long the verdicts must stay the same before the demo
// prints the table: two upload periods of pyroscope-go.
const demoSettle = 30 * time.Second

// showLive shows the verdicts as they change, the alerts as they fire and
// the notes of the examples, checking the verdicts every 2 s, until ctx
// ends; it returns the last result.
func showLive(ctx context.Context, w io.Writer, srv *server, alerts <-chan any, notes <-chan string, loadDone <-chan struct{}) *report.Result {
	tty := isTerminal(w)
	table, _ := report.Lookup("table", report.Options{Color: tty && os.Getenv("NO_COLOR") == ""})
	view := &liveView{w: w, tty: tty, table: table, ui: srv.uiURL(), api: srv.apiURL() + "/api/v1/findings", settle: demoSettle}
	state := &liveState{eng: srv.eng, vulnDB: srv.vulnDB}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	view.update(time.Now(), state.Result())
	for {
		select {
		case <-ctx.Done():
			res := state.Result()
			view.finish(time.Now(), res)
			return res
		case line := <-notes:
			view.alert(time.Now(), line)
		case <-loadDone:
			loadDone = nil
		case a, ok := <-alerts:
			if !ok {
				alerts = nil
				continue
			}
			view.alert(time.Now(), alertLine(a))
		case <-tick.C:
			view.update(time.Now(), state.Result())
		}
	}
}

// liveView renders the demo's verdicts. On a terminal it redraws the
// screen in place: the table, then the latest events. Elsewhere (a pipe,
// a CI log) it appends only what changed: a line per verdict transition
// and per alert, and the table once the verdicts have not changed for
// settle, and at the end.
type liveView struct {
	w      io.Writer
	tty    bool
	table  report.Format
	ui     string // the web UI's URL
	api    string // the findings' URL
	settle time.Duration

	// verdicts are the last verdicts by finding, nil before the first
	// view of the engine.
	verdicts map[string]assess.Verdict
	// changed is the time of the last transition, zero before the first.
	changed time.Time
	// settled says the table was printed since the last transition.
	settled bool
	// screen is the table last drawn on the terminal, recent the latest
	// events under it.
	screen string
	recent []string
}

// liveRecent is how many events the terminal shows under the table.
const liveRecent = 8

// update takes the engine's latest result: it reports the verdicts that
// changed, and prints the table once they have settled.
func (v *liveView) update(now time.Time, res *report.Result) {
	if res.Generated.IsZero() {
		return // the engine has not assessed yet
	}
	if v.verdicts == nil {
		v.verdicts = make(map[string]assess.Verdict, len(res.Assessments))
		for _, a := range res.Assessments {
			v.verdicts[liveKey(a)] = a.Reachability.Verdict
		}
		v.event(now, fmt.Sprintf("%s; UI %s, API %s", report.Headline(res.Summary), v.ui, v.api))
		v.redraw(now, res, true)
		return
	}
	changed := false
	for _, a := range res.Assessments {
		key, verdict := liveKey(a), a.Reachability.Verdict
		before, seen := v.verdicts[key]
		if seen && before == verdict {
			continue
		}
		v.verdicts[key] = verdict
		from := "new"
		if seen {
			from = string(before)
		}
		v.event(now, fmt.Sprintf("%s: %s -> %s (%s)", key, from, verdict, a.Priority.Tier))
		changed = true
	}
	if changed {
		v.changed, v.settled = now, false
	}
	if !v.settled && !v.changed.IsZero() && now.Sub(v.changed) >= v.settle {
		v.settled = true
		if !v.tty {
			fmt.Fprintf(v.w, "%s  verdicts settled (no change for %v):\n", now.Format(time.TimeOnly), v.settle)
			v.table.Write(v.w, res)
		}
	}
	v.redraw(now, res, changed)
}

// alert reports an alert that fired.
func (v *liveView) alert(now time.Time, line string) {
	v.event(now, line)
	v.redraw(now, nil, true)
}

// finish prints the last table.
func (v *liveView) finish(now time.Time, res *report.Result) {
	v.update(now, res)
	if !v.tty {
		fmt.Fprintf(v.w, "%s  verdicts at the end:\n", now.Format(time.TimeOnly))
		v.table.Write(v.w, res)
	}
}

// event prints a line elsewhere, and keeps it for the terminal's screen.
func (v *liveView) event(now time.Time, line string) {
	line = now.Format(time.TimeOnly) + "  " + line
	if !v.tty {
		fmt.Fprintln(v.w, line)
		return
	}
	v.recent = append(v.recent, line)
	if len(v.recent) > liveRecent {
		v.recent = v.recent[len(v.recent)-liveRecent:]
	}
}

// redraw draws the terminal's screen again when the table changed (the
// bounds change as evidence accumulates), or when force says an event
// came; res nil keeps the last table.
func (v *liveView) redraw(now time.Time, res *report.Result, force bool) {
	if !v.tty {
		return
	}
	if res != nil {
		var buf bytes.Buffer
		v.table.Write(&buf, res)
		if buf.String() == v.screen && !force {
			return
		}
		v.screen = buf.String()
	}
	// Cursor home, clear to the end of the screen: the new screen
	// overwrites the last one.
	fmt.Fprintf(v.w, "\033[H\033[J== evident demo %s  UI %s  API %s  (Ctrl-C stops)\n\n%s", now.Format(time.TimeOnly), v.ui, v.api, v.screen)
	if len(v.recent) > 0 {
		fmt.Fprintf(v.w, "\n%s\n", strings.Join(v.recent, "\n"))
	}
}

// liveKey names a finding in the demo's lines.
func liveKey(a assess.Assessment) string {
	return a.Finding.Service + " " + a.Finding.Vulnerability.ID + " " + a.Finding.Package.Name
}

// alertLine is an alert on one line.
func alertLine(a any) string {
	if sa, ok := a.(store.Alert); ok {
		return fmt.Sprintf("ALERT %s %s: %s", sa.Severity, sa.Kind, sa.Summary)
	}
	return fmt.Sprintf("ALERT %v", a)
}

// freePorts returns n loopback addresses with ports free right now.
func freePorts(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// waitPort waits until something listens on addr.
func waitPort(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing listens on %s: %w", addr, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// procGroup owns the example's processes: each is stopped with SIGTERM
// (so it flushes its spans and profiles), killed if it does not exit in
// time, and waited for.
type procGroup struct {
	logDir string
	mu     sync.Mutex
	procs  []startedProc
	wg     sync.WaitGroup
}

// startedProc is a long-running process of procGroup.start: exited is
// closed once it has exited and its log is closed.
type startedProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// procStopGrace is how long a process has to exit after SIGTERM.
const procStopGrace = 5 * time.Second

// demoProc is a program the demo runs: its log file is name.log in the
// group's log directory, env adds to the demo's environment, and dir is
// its working directory (the demo's when empty).
type demoProc struct {
	name, dir string
	argv, env []string
}

// shopProc is the shop's command name in bin.
func shopProc(bin, name string, env []string, args ...string) demoProc {
	return demoProc{name: name, argv: append([]string{filepath.Join(bin, name)}, args...), env: env}
}

func (p *procGroup) command(ctx context.Context, dp demoProc) (*exec.Cmd, error) {
	cmd := exec.CommandContext(ctx, dp.argv[0], dp.argv[1:]...)
	cmd.Dir = dp.dir
	cmd.Env = append(os.Environ(), dp.env...)
	logf, err := os.OpenFile(filepath.Join(p.logDir, dp.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	return cmd, nil
}

// start starts a long-running process of the shop's; stop ends it. The
// channel is closed once it has exited.
func (p *procGroup) start(ctx context.Context, bin, name string, env []string, args ...string) (<-chan struct{}, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Not bound to ctx: stop ends it, with SIGTERM first.
	cmd, err := p.command(context.Background(), shopProc(bin, name, env, args...))
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cmd.Stdout.(io.Closer).Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	sp := startedProc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		cmd.Stdout.(io.Closer).Close()
		close(sp.exited)
	}()
	p.mu.Lock()
	p.procs = append(p.procs, sp)
	p.mu.Unlock()
	return sp.exited, nil
}

// portAttempts is how many ports procGroup.listen gives a process in turn.
const portAttempts = 3

// listen starts a long-running process that listens on the loopback
// address start starts it with, on a free port, and waits until it
// listens there; start returns a channel closed when it exits. freePorts'
// port is free when chosen, and another process can take it before this
// one binds it (a connection's local port, in a parallel test run): a
// process that exits before it listens, its log saying an address was in
// use, is started again on another port, up to portAttempts in all, and
// retried is told of each port given up.
func (p *procGroup) listen(ctx context.Context, name string, start func(addr string) (<-chan struct{}, error), retried func(taken string)) (string, error) {
	logPath := filepath.Join(p.logDir, name+".log")
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			return "", err
		}
		// Its log is appended to: what this attempt writes starts here.
		var from int64
		if fi, err := os.Stat(logPath); err == nil {
			from = fi.Size()
		}
		exited, err := start(ports[0])
		if err != nil {
			return "", err
		}
		// Waiting for its port ends when it does.
		listening, stop := context.WithCancel(ctx)
		go func() {
			select {
			case <-exited:
				stop()
			case <-listening.Done():
			}
		}()
		err = waitPort(listening, ports[0])
		stop()
		if err == nil {
			return ports[0], nil
		}
		select {
		case <-exited:
		default:
			return "", fmt.Errorf("%s: %w", name, err)
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if attempt < portAttempts && addrInUse(logPath, from) {
			retried(ports[0])
			continue
		}
		return "", fmt.Errorf("%s exited before it listened on %s (see %s)", name, ports[0], logPath)
	}
}

// addrInUse reports whether the log at path says, past from, that an
// address was in use: how Node ("EADDRINUSE: address already in use"),
// Python ("[Errno 98] Address already in use"), Java ("BindException:
// Address already in use") and Go say a listen failed on a taken port.
func addrInUse(path string, from int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, from, 1<<20))
	return err == nil && bytes.Contains(bytes.ToLower(b), []byte("address already in use"))
}

// run runs a command of the shop's to its end; ctx ending stops it with
// SIGTERM.
func (p *procGroup) run(ctx context.Context, bin, name string, args ...string) error {
	return p.runProc(ctx, shopProc(bin, name, nil, args...))
}

// runProc runs a process to its end; ctx ending stops it with SIGTERM,
// and kills it if it has not exited procStopGrace later.
func (p *procGroup) runProc(ctx context.Context, dp demoProc) error {
	c, err := p.command(ctx, dp)
	if err != nil {
		return err
	}
	defer c.Stdout.(io.Closer).Close()
	c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
	c.WaitDelay = procStopGrace
	if err := c.Run(); err != nil {
		return fmt.Errorf("%s: %w (see %s)", dp.name, err, filepath.Join(p.logDir, dp.name+".log"))
	}
	return nil
}

// stop ends every started process, last started first, and waits for
// them and for the load driver.
func (p *procGroup) stop() {
	p.mu.Lock()
	procs := p.procs
	p.procs = nil
	p.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		sp := procs[i]
		sp.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-sp.exited:
		case <-time.After(procStopGrace):
			sp.cmd.Process.Kill()
			<-sp.exited
		}
	}
	p.wg.Wait()
}
