package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

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
}

func newDemoCmd(g *globals) *cobra.Command {
	var fl demoFlags
	cmd := &cobra.Command{
		Use:   "demo [--duration D] [--data DIR]",
		Short: "Run evident serve against the example shop, live, and show the verdicts as they change",
		Long: `Start evident serve in this process with the embedded store (in a temporary
directory unless --data is given), build and start the example shop's services
(examples/shop: real OpenTelemetry SDK traces over OTLP/HTTP, real pyroscope-go
profiles to /ingest), drive bounded load at its gateway on loopback, import the
example's govulncheck findings, and print the prioritised table whenever the
verdicts change, with the API's URL. The first profiles arrive after about 15 s
(pyroscope-go's upload period).

Ctrl-C stops everything: the shop's processes are stopped and waited for, and
temporary directories removed. --duration stops by itself after D.

Run it from the evident repository (go run ./cmd/evident demo); it needs the
Go toolchain to build the shop.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fl.duration < 0 {
				return withCode(ExitUsage, fmt.Errorf("--duration %v: want a positive duration, or 0 to run until Ctrl-C", fl.duration))
			}
			dataSet := cmd.Flags().Changed("data") || os.Getenv("EVIDENT_DATA") != ""
			err := runDemo(cmd.Context(), g, fl, dataSet)
			if err != nil && cmd.Context().Err() != nil {
				// Ctrl-C before the shop ran (during its build): not a failure.
				fmt.Fprintf(g.stderr, "evident demo: interrupted (%v)\n", err)
				return nil
			}
			if err != nil {
				return withCode(ExitUsage, err)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&fl.duration, "duration", 0, "stop after this long (0: until Ctrl-C)")
	cmd.Flags().StringVar(&fl.example, "example", "", "the example shop's directory (default: examples/shop of the repository around the working directory)")
	return cmd
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
	}
	work, err := os.MkdirTemp("", "evident-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if !dataSet {
		g.dataDir = filepath.Join(work, "data")
	}

	cfg, err := loadConfig(filepath.Join(shop, "evident.yaml"))
	if err != nil {
		return err
	}
	cfg.Serve.API.Endpoint = "127.0.0.1:0"
	cfg.Serve.OTLP.GRPCEndpoint, cfg.Serve.OTLP.HTTPEndpoint = "", "127.0.0.1:0"
	cfg.Serve.Pyroscope.Endpoint = "127.0.0.1:0"
	// The demo lasts minutes: re-assess and refresh often.
	cfg.Serve.Engine.RefreshInterval = 2 * time.Second

	var fs serveFlags
	if _, err := os.Stat(filepath.Join(g.dataDir, "vulndb")); err != nil {
		fs.vulns = []string{filepath.Join(shop, "recorded", "osv")}
	}
	for _, s := range shopServices {
		fs.findings = append(fs.findings, s+"="+filepath.Join(shop, "recorded", "findings", s+".json"))
	}

	logFile, err := os.Create(filepath.Join(work, "evident.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	log := slog.New(slog.NewTextHandler(logFile, nil))

	fmt.Fprintf(g.stdout, "evident demo: building the example shop (%s)\n", shop)
	bin := filepath.Join(work, "bin")
	if err := buildShop(ctx, shop, bin); err != nil {
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

	if fl.duration > 0 {
		// Counted from here: building the shop can take a minute.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, fl.duration)
		defer cancel()
	}
	alerts, unsubscribe := srv.alerts.Subscribe()
	defer unsubscribe()
	showLive(ctx, g.stdout, srv, alerts, loadDone)
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
		if _, err := os.Stat(filepath.Join(shop, "go.mod")); err == nil {
			return shop, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("examples/shop not found above the working directory: run the demo from the evident repository, or name it with --example")
		}
		dir = parent
	}
}

// buildShop builds every command of the shop into bin.
func buildShop(ctx context.Context, shop, bin string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin+string(os.PathSeparator), "./cmd/...")
	cmd.Dir = shop
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w in %s: %w\n%s", errBuildExample, shop, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// startShop starts the payment sandbox and the four services reporting
// to srv, and then the load driver, which runs bounded rounds until ctx
// ends; loadDone is closed when it stops.
func startShop(ctx context.Context, procs *procGroup, bin, work string, srv *server) (loadDone <-chan struct{}, err error) {
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	gw, catalog, orders, payments := ports[0], ports[1], ports[2], ports[3]
	telemetryEnv := []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + srv.otlp.HTTPAddr(),
		"OTEL_BSP_SCHEDULE_DELAY=1000",
		"PYROSCOPE_SERVER_ADDRESS=http://" + srv.pyro.Addr(),
	}
	db := filepath.Join(work, "shop.db")
	ca := filepath.Join(work, "payments-ca.pem")
	if err := procs.start(ctx, bin, "payments", nil, "-listen", payments, "-ca-out", ca); err != nil {
		return nil, err
	}
	if err := waitPort(ctx, payments); err != nil {
		return nil, err
	}
	if err := procs.start(ctx, bin, "catalog", append(telemetryEnv, "SHOP_ADDR="+catalog)); err != nil {
		return nil, err
	}
	if err := procs.start(ctx, bin, "orders", append(telemetryEnv, "SHOP_ADDR="+orders, "SHOP_DB="+db,
		"SHOP_PAYMENTS_URL=https://payments.example.com", "SHOP_PAYMENTS_DIAL="+payments, "SHOP_PAYMENTS_CA="+ca)); err != nil {
		return nil, err
	}
	for _, p := range []string{catalog, orders} { // orders listens once its database is seeded
		if err := waitPort(ctx, p); err != nil {
			return nil, err
		}
	}
	if err := procs.start(ctx, bin, "gateway", append(telemetryEnv, "SHOP_ADDR="+gw,
		"SHOP_CATALOG_URL=http://"+catalog, "SHOP_ORDERS_URL=http://"+orders)); err != nil {
		return nil, err
	}
	if err := procs.start(ctx, bin, "reporter", append(telemetryEnv, "SHOP_DB="+db, "SHOP_REPORT_EVERY=1s")); err != nil {
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

// showLive prints the prioritised table every 2 s when it changed, and
// the alerts as they fire, until ctx ends. On a terminal it redraws the
// screen; elsewhere it appends snapshots.
func showLive(ctx context.Context, w io.Writer, srv *server, alerts <-chan any, loadDone <-chan struct{}) {
	tty := false
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		tty = true
	}
	table, _ := report.Lookup("table", report.Options{Color: tty && os.Getenv("NO_COLOR") == ""})
	state := &liveState{eng: srv.eng}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	var last string
	var recent []string
	render := func(force bool) {
		var buf bytes.Buffer
		table.Write(&buf, state.Result())
		if buf.String() == last && !force {
			return
		}
		last = buf.String()
		if tty {
			fmt.Fprint(w, "\033[H\033[2J")
		}
		fmt.Fprintf(w, "\n== %s  API %s/api/v1/findings\n", time.Now().Format(time.TimeOnly), srv.apiURL())
		fmt.Fprint(w, last)
		if tty && len(recent) > 0 {
			fmt.Fprintf(w, "\nalerts:\n%s", strings.Join(recent, ""))
		}
	}
	render(true)
	for {
		select {
		case <-ctx.Done():
			render(false)
			fmt.Fprintln(w, "evident demo: stopping")
			return
		case <-loadDone:
			loadDone = nil
		case a, ok := <-alerts:
			if !ok {
				alerts = nil
				continue
			}
			line := alertLine(a)
			recent = append(recent, line)
			if len(recent) > 8 {
				recent = recent[len(recent)-8:]
			}
			if !tty {
				fmt.Fprint(w, line)
			} else {
				render(true)
			}
		case <-tick.C:
			render(false)
		}
	}
}

func alertLine(a any) string {
	if sa, ok := a.(store.Alert); ok {
		return fmt.Sprintf("ALERT %s %s %s: %s\n", sa.Time.Format(time.TimeOnly), sa.Severity, sa.Kind, sa.Summary)
	}
	return fmt.Sprintf("ALERT %v\n", a)
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
	procs  []*exec.Cmd
	wg     sync.WaitGroup
}

// procStopGrace is how long a process has to exit after SIGTERM.
const procStopGrace = 5 * time.Second

func (p *procGroup) command(bin, name string, env []string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.OpenFile(filepath.Join(p.logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	return cmd, nil
}

// start starts a long-running process; stop ends it.
func (p *procGroup) start(ctx context.Context, bin, name string, env []string, args ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cmd, err := p.command(bin, name, env, args...)
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		cmd.Stdout.(io.Closer).Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p.mu.Lock()
	p.procs = append(p.procs, cmd)
	p.mu.Unlock()
	return nil
}

// run runs a process to its end; ctx ending stops it with SIGTERM.
func (p *procGroup) run(ctx context.Context, bin, name string, args ...string) error {
	cmd, err := p.command(bin, name, nil, args...)
	if err != nil {
		return err
	}
	defer cmd.Stdout.(io.Closer).Close()
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	c.Env, c.Stdout, c.Stderr = cmd.Env, cmd.Stdout, cmd.Stderr
	c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
	c.WaitDelay = procStopGrace
	if err := c.Run(); err != nil {
		return fmt.Errorf("%s: %w (see %s)", name, err, filepath.Join(p.logDir, name+".log"))
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
		cmd := procs[i]
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(procStopGrace):
			cmd.Process.Kill()
			<-done
		}
		cmd.Stdout.(io.Closer).Close()
	}
	p.wg.Wait()
}
