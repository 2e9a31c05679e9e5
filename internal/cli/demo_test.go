package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/report"
)

// builtShop is the example shop built once per test binary, into a
// directory TestMain removes: the tests that run it share one build
// rather than compile its packages twice at once.
var builtShop struct {
	once     sync.Once
	dir, bin string
	err      error
}

// shopBinaries returns the directory of the shop's built commands; it
// skips the test when the shop cannot be built (no Go toolchain, no
// module cache and no module proxy).
func shopBinaries(t *testing.T) string {
	t.Helper()
	builtShop.once.Do(func() {
		if builtShop.dir, builtShop.err = os.MkdirTemp("", "evident-shop-"); builtShop.err != nil {
			return
		}
		builtShop.bin = filepath.Join(builtShop.dir, "bin")
		builtShop.err = buildShop(context.Background(), shop, builtShop.bin, new(buildCounts))
	})
	if errors.Is(builtShop.err, errBuildExample) {
		t.Skipf("the example shop cannot be built here (no Go toolchain or module cache?): %v", builtShop.err)
	}
	if builtShop.err != nil {
		t.Fatal(builtShop.err)
	}
	return builtShop.bin
}

func TestMain(m *testing.M) {
	if addr, ok := os.LookupEnv(listenHelperEnv); ok {
		// The test binary run as a process of procGroup's
		// (TestProcGroupListen).
		os.Exit(listenHelper(addr))
	}
	code := m.Run()
	if err := pgServer.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop PostgreSQL: %v\n", err)
		code = 1
	}
	if builtShop.dir != "" {
		os.RemoveAll(builtShop.dir)
	}
	os.Exit(code)
}

// listenHelperEnv makes the test binary a process that listens on the
// address it names until SIGTERM (listenHelper), or exits 1 at once when
// it is "fail".
const listenHelperEnv = "EVIDENT_TEST_LISTEN_ON"

// listenHelper listens on addr as the examples' services do, and says why
// on stderr, exiting 1, when it cannot.
func listenHelper(addr string) int {
	if addr == "fail" {
		fmt.Fprintln(os.Stderr, "no configuration")
		return 1
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer ln.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return 0
}

// TestDemo runs the real example shop against evident serve for a while
// and checks that the table shows findings executed and that the first
// execution alert fired. It needs the Go toolchain and the shop's
// modules, and skips when the shop cannot be built.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo builds and runs the example shop for about a minute")
	}
	t.Parallel()
	// The demo builds the shop itself; the shared build before it fills
	// the build cache, so that its build only links.
	shopBinaries(t)
	var out bytes.Buffer
	g := &globals{stdout: &out, stderr: io.Discard}
	// The examples in other languages replay their recordings:
	// TestDemoExamplesLive runs them live.
	fl := demoFlags{duration: 40 * time.Second, example: shop, examples: examplesReplay}
	if err := runDemo(t.Context(), g, fl, false); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^evident demo: built in (\d+m)?\d+s \(linked from the build cache\)$`), // after the shared build
		regexp.MustCompile(`API http://127\.0\.0\.1:\d+/api/v1`),
		regexp.MustCompile(`(?m)^evident demo: open http://127\.0\.0\.1:\d+/ in a browser to watch the findings change live$`),
		regexp.MustCompile(`\(0 executed, 0 loaded, 0 not_observed, \d+ unknown\)`), // before any telemetry
		regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d  gateway GO-2026-5970 golang.org/x/text: unknown -> executed \(P\d\)$`),
		regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d  ALERT .* first_execution: GO-2026-5970`),
		regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d  verdicts at the end:\nTIER`),
		regexp.MustCompile(`\([1-9]\d* executed`),
		regexp.MustCompile(`evident demo: stopping`),
		// Each example's findings and their verdicts, those of its
		// recorded/expected.yaml.
		regexp.MustCompile(`(?m)^evident demo: java-inventory replayed its recording \(--examples replay\): inventory 1 executed, 2 loaded, 3 not_observed, 0 unknown, as \S+/java-inventory/recorded/expected.yaml expects$`),
		regexp.MustCompile(`(?m)^evident demo: node-reviews replayed its recording \(--examples replay\): reviews 1 executed, 3 loaded, 1 not_observed, 0 unknown, as \S+/node-reviews/recorded/expected.yaml expects$`),
		regexp.MustCompile(`(?m)^evident demo: python-reports replayed its recording \(--examples replay\): reports \d+ executed, \d+ loaded, \d+ not_observed, 0 unknown, as \S+/python-reports/recorded/expected.yaml expects$`),
		regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d  node-reviews: replayed: its spans to OTLP/HTTP, its profile to /ingest$`),
		regexp.MustCompile(`(?m)^P\d +\d+ +inventory +GHSA-mjmj-j48q-9wg2 +org.yaml:snakeyaml .* executed `),
	} {
		if !want.MatchString(got) {
			t.Errorf("demo output does not match %s:\n%s", want, tail(got, 4000))
		}
	}
	// The shop's binaries, database and logs lived in a temporary
	// directory, removed on the way out.
	if m := regexp.MustCompile(`logs in (\S+);`).FindStringSubmatch(got); m == nil {
		t.Error("the demo did not say where its logs are")
	} else if _, err := os.Stat(m[1]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temporary directory %s is still there (%v)", m[1], err)
	}
}

// TestDemoExamplesLive runs each example beside the shop live, as the
// demo does where its runtime is installed: its service with its
// profiler, its load, its profile sent to serve's /ingest as its
// runtime's Pyroscope client sends one, and checks that every finding
// gets the verdict of its recorded/expected.yaml. An example whose
// runtime is missing here is skipped, saying why (the demo replays its
// recording instead; TestDemo checks that).
func TestDemoExamplesLive(t *testing.T) {
	if testing.Short() {
		t.Skip("each example runs for 20 s or more")
	}
	for _, e := range findExamples(shop, examplesAuto) {
		t.Run(e.dir, func(t *testing.T) {
			t.Parallel()
			var prep sync.WaitGroup
			e.startPrepare(t.Context(), &prep, t.TempDir(), examplesAuto)
			prep.Wait()
			if e.prepErr != nil {
				t.Skipf("%s cannot run live here: %v", e.dir, e.prepErr)
			}
			cfg := serveTestConfig(t)
			var fs serveFlags
			if err := e.addTo(&fs, &cfg); err != nil {
				t.Fatal(err)
			}
			// No database under --data: the recorded records alone.
			fs.vulns, fs.alsoVulns = fs.alsoVulns, nil
			srv := startTestServerConfig(t, t.TempDir(), cfg, fs)
			defer shutdown(t, srv)
			procs := &procGroup{logDir: t.TempDir()}
			defer logTails(t, procs.logDir)
			defer procs.stop()
			e.run(t.Context(), procs, srv, func(line string) { t.Log(line) })
			if how, why := e.outcome(); how != exampleLive {
				t.Fatalf("%s %s (%s), want it run live", e.dir, how, why)
			}
			state := &liveState{eng: srv.eng}
			var line string
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				if line, _ = e.summary(state.Result()); strings.HasSuffix(line, "expects") {
					break
				}
			}
			if !strings.HasSuffix(line, "expects") {
				t.Errorf("verdicts of the live run: %s", line)
			}
		})
	}
}

// logTails logs the end of each process log in dir if t failed: they go
// with the test's temporary directory, and a failure in CI is read from
// what the test printed.
func logTails(t *testing.T, dir string) {
	if !t.Failed() {
		return
	}
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Log(err)
	}
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			t.Log(err)
			continue
		}
		t.Logf("%s ends:\n%s", filepath.Base(l), tail(string(b), 3000))
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[strings.LastIndex(s[:len(s)-n], "\n")+1:]
}

// TestLiveView plays recorded engine results and an alert through the
// demo's view with a fake clock, and compares what it prints on a pipe
// (transitions, alerts, the table once settled and at the end) and on a
// terminal (the screen redrawn in place) with golden files.
func TestLiveView(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	finding := func(service, id, pkg string) findings.Finding {
		return findings.Finding{Service: service, Vulnerability: findings.Vulnerability{ID: id},
			Package: findings.Package{Name: pkg, Version: "v1.0.0"}}
	}
	gateway := finding("gateway", "GO-2026-5970", "golang.org/x/text")
	orders := finding("orders", "GO-2026-4001", "modernc.org/sqlite")
	unknown := func(f findings.Finding) assess.Assessment {
		return assess.Assessment{Finding: f, Priority: assess.Priority{Tier: "P4", Score: 10},
			Reachability: assess.Reachability{Verdict: assess.Unknown, Reason: "no profiles of the service yet"}}
	}
	executed := assess.Assessment{Finding: gateway, Priority: assess.Priority{Tier: "P1", Score: 90},
		Exposure: assess.ExposureResult{Level: assess.Exposed},
		Reachability: assess.Reachability{Verdict: assess.Executed, Endpoints: []string{"GET /search"},
			Evidence: []assess.FunctionEvidence{{Symbol: "norm.Form.String", Samples: 12, TimeSamples: 12}}}}
	loaded := func(window float64) assess.Assessment {
		return assess.Assessment{Finding: orders, Priority: assess.Priority{Tier: "P3", Score: 40},
			Reachability: assess.Reachability{Verdict: assess.Loaded, Bound: &assess.Bound{Share: 0.01, CPU: true, WindowSeconds: window}}}
	}
	result := func(as ...assess.Assessment) *report.Result {
		return &report.Result{Generated: t0, Assessments: as, Summary: assess.Summarize(as)}
	}
	// What the engine shows every 2 s: nothing yet, both unknown, the
	// first profiles, bounds that grow with the window and then settle.
	steps := []struct {
		at    time.Duration
		res   *report.Result
		alert string
	}{
		{at: 0, res: &report.Result{}},
		{at: 2 * time.Second, res: result(unknown(gateway), unknown(orders))},
		{at: 16 * time.Second, res: result(executed, loaded(15))},
		{at: 16 * time.Second, alert: "ALERT high first_execution: GO-2026-5970 runs in gateway"},
		{at: 31 * time.Second, res: result(executed, loaded(30))},
		{at: 46 * time.Second, res: result(executed, loaded(45))},
		{at: 50 * time.Second, res: result(executed, loaded(45))},
	}
	end := result(executed, loaded(60))
	for _, tty := range []bool{false, true} {
		name := "pipe"
		if tty {
			name = "terminal"
		}
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			table, err := report.Lookup("table", report.Options{})
			if err != nil {
				t.Fatal(err)
			}
			v := &liveView{w: &out, tty: tty, table: table, ui: "http://127.0.0.1:8080/", api: "http://127.0.0.1:8080/api/v1/findings", settle: demoSettle}
			for _, s := range steps {
				if s.alert != "" {
					v.alert(t0.Add(s.at), s.alert)
				} else {
					v.update(t0.Add(s.at), s.res)
				}
			}
			v.finish(t0.Add(time.Minute), end)
			golden(t, filepath.Join("testdata", "demo", name+".golden"), out.Bytes())
		})
	}
}

// TestExampleSummary checks the demo's last line per example: how it took
// part, its service's verdicts, and how they compare with its
// recorded/expected.yaml.
func TestExampleSummary(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "recorded"), 0o755); err != nil {
		t.Fatal(err)
	}
	expected := filepath.Join(dir, "recorded", "expected.yaml")
	if err := os.WriteFile(expected, []byte("findings:\n  - {id: GHSA-a, service: reviews, verdict: executed}\n  - {id: GHSA-b, service: reviews, verdict: not_observed}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "recorded", "osv"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"GHSA-a", "GHSA-b", "GHSA-c"} {
		rec := `{"id": "` + id + `", "aliases": ["CVE-` + id + `"]}`
		if err := os.WriteFile(filepath.Join(dir, "recorded", "osv", id+".json"), []byte(rec), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	assessment := func(service, id string, v assess.Verdict) assess.Assessment {
		return assess.Assessment{Finding: findings.Finding{Service: service, Vulnerability: findings.Vulnerability{ID: id}},
			Reachability: assess.Reachability{Verdict: v}}
	}
	asExpected := &report.Result{Assessments: []assess.Assessment{
		assessment("reviews", "GHSA-a", assess.Executed), assessment("reviews", "GHSA-b", assess.NotObserved),
		assessment("gateway", "GHSA-a", assess.Loaded), // another service's
	}}
	differs := &report.Result{Assessments: []assess.Assessment{assessment("reviews", "GHSA-a", assess.Loaded)}}
	tests := []struct {
		name     string
		how, why string
		res      *report.Result
		want     string
		// wantCode is the demo's exit status with this example alone.
		wantCode int
	}{
		{"live", exampleLive, "", asExpected,
			"node-reviews ran live: reviews 1 executed, 0 loaded, 1 not_observed, 0 unknown, as " + expected + " expects", ExitOK},
		{"replayed", exampleReplayed, "no npm on PATH", asExpected,
			"node-reviews replayed its recording (no npm on PATH): reviews 1 executed, 0 loaded, 1 not_observed, 0 unknown, as " + expected + " expects", ExitOK},
		{"differs", exampleLive, "", differs,
			"node-reviews ran live: reviews 0 executed, 1 loaded, 0 not_observed, 0 unknown; differs from " + expected + ": GHSA-a loaded (expected executed), GHSA-b absent (expected not_observed)", ExitPolicy},
		{"replay differs", exampleReplayed, "--examples replay", &report.Result{},
			"node-reviews replayed its recording (--examples replay): reviews 0 executed, 0 loaded, 0 not_observed, 0 unknown; differs from " + expected + ": GHSA-a absent (expected executed), GHSA-b absent (expected not_observed)", ExitPolicy},
		{"a finding of a record beyond the recording", exampleLive, "", &report.Result{Assessments: append(slices.Clone(asExpected.Assessments), assessment("reviews", "GHSA-zzzz", assess.NotObserved))},
			"node-reviews ran live: reviews 1 executed, 0 loaded, 2 not_observed, 0 unknown (1 of records beyond its recording, not compared), as " + expected + " expects", ExitOK},
		{"a finding of a recorded record not expected", exampleLive, "", &report.Result{Assessments: append(slices.Clone(asExpected.Assessments), assessment("reviews", "CVE-GHSA-c", assess.Loaded))},
			"node-reviews ran live: reviews 1 executed, 1 loaded, 1 not_observed, 0 unknown; differs from " + expected + ": CVE-GHSA-c loaded (expected absent)", ExitPolicy},
		{"still running", "", "", differs, "node-reviews still running when the demo stopped (a longer --duration lets it finish)", ExitOK},
		{"skipped", exampleSkipped, "--examples off", asExpected, "node-reviews skipped (--examples off)", ExitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &includedExample{demoExample: demoExample{dir: "node-reviews", service: "reviews"}, path: dir}
			e.set(tt.how, tt.why)
			var out bytes.Buffer
			err := printSummaries(&out, []*includedExample{e}, tt.res)
			if got, want := out.String(), "evident demo: "+tt.want+"\n"; got != want {
				t.Errorf("summary:\n got %s\nwant %s", got, want)
			}
			var stderr bytes.Buffer
			if got := exitStatus(err, &stderr); got != tt.wantCode {
				t.Errorf("exit %d (%v), want %d", got, err, tt.wantCode)
			}
			if tt.wantCode != ExitOK && !strings.Contains(stderr.String(), "the verdicts of node-reviews differ from their recorded/expected.yaml") {
				t.Errorf("stderr %q does not name the example", stderr.String())
			}
		})
	}
}

// TestDemoSetUp checks where the demo keeps its store and which records
// it reads: its own temporary data directory unless --data is given to
// it (EVIDENT_DATA names the user's, which it leaves alone), the shop's
// recorded records or the database of --data, and every example's
// recorded records beside either, those its expected.yaml was made with.
func TestDemoSetUp(t *testing.T) {
	withDB := t.TempDir()
	record, err := os.ReadFile(filepath.Join("testdata", "dbupdate", "GO-2021-0113.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(withDB, "vulndb", "Go"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(withDB, "vulndb", "Go", "GO-2021-0113.json"), record, 0o644); err != nil {
		t.Fatal(err)
	}
	shopRecords := filepath.Join(shop, "recorded", "osv")
	tests := []struct {
		name string
		// env is EVIDENT_DATA; args are the demo's.
		env  string
		args []string
		// wantTemp: the store goes under the demo's temporary directory.
		wantTemp  bool
		wantVulns []string
		// wantRecords are in the database besides every example's.
		wantRecords []string
	}{
		{name: "neither", wantTemp: true, wantVulns: []string{shopRecords}, wantRecords: []string{"GO-2026-5970"}},
		{name: "EVIDENT_DATA with a database", env: withDB, wantTemp: true, wantVulns: []string{shopRecords}, wantRecords: []string{"GO-2026-5970"}},
		{name: "--data without a database", args: []string{"--data", t.TempDir()}, wantVulns: []string{shopRecords}, wantRecords: []string{"GO-2026-5970"}},
		{name: "--data with a database", args: []string{"--data", withDB}, wantRecords: []string{"GO-2021-0113"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("EVIDENT_DATA", tt.env)
			g := &globals{stdout: io.Discard, stderr: io.Discard}
			root := newRootCmd(g)
			demo, _, err := root.Find([]string{"demo"})
			if err != nil {
				t.Fatal(err)
			}
			if err := demo.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			work := t.TempDir()
			_, fs, examples, err := setUpDemo(g, shop, examplesReplay, demoDataNamed(demo), work)
			if err != nil {
				t.Fatal(err)
			}
			if inWork := strings.HasPrefix(g.dataDir, work+string(filepath.Separator)); inWork != tt.wantTemp {
				t.Errorf("data directory %s, in the temporary %s: %v, want %v", g.dataDir, work, inWork, tt.wantTemp)
			}
			if diff := cmp.Diff(tt.wantVulns, fs.vulns); diff != "" {
				t.Errorf("vulns (-want +got):\n%s", diff)
			}
			db, _, err := serveVulnDB(t.Context(), g, fs, roleAll, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(tt.wantRecords)
			for _, e := range examples {
				exp, err := expectedVerdicts(e.rec("expected.yaml"))
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, slices.Sorted(maps.Keys(exp))...)
			}
			for _, id := range want {
				if db.Get(id) == nil {
					t.Errorf("record %s is not loaded", id)
				}
			}
		})
	}
}

// TestPrepareWithoutRuntime checks what the demo says of an example whose
// runtime is not installed: it replays the recording for that reason.
func TestPrepareWithoutRuntime(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no java, javac, node or npm
	for _, tt := range []struct {
		dir, want string
	}{
		{"java-inventory", "no java on PATH"},
		{"node-reviews", "no node on PATH"},
	} {
		t.Run(tt.dir, func(t *testing.T) {
			i := slices.IndexFunc(demoExamples, func(d demoExample) bool { return d.dir == tt.dir })
			if i < 0 {
				t.Fatalf("no example %s", tt.dir)
			}
			_, err := demoExamples[i].prepare(t.Context(), filepath.Join("..", "..", "examples", tt.dir), t.TempDir())
			if err == nil || err.Error() != tt.want {
				t.Errorf("prepare: %v, want %q", err, tt.want)
			}
		})
	}
}

// TestDemoExampleNotShop checks that a --example that is not the shop is
// refused as a usage error naming it, before anything is built.
func TestDemoExampleNotShop(t *testing.T) {
	empty := t.TempDir()
	file := filepath.Join(empty, "shop.txt")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, dir, want string
	}{
		{"missing", filepath.Join(empty, "nope"), "no such directory"},
		{"a file", file, "not a directory"},
		{"another directory", empty, "not the example shop (examples/shop of the evident repository): it has no go.mod"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, "demo", "--example", tt.dir, "--duration", "1s")
			if code != ExitUsage || !strings.Contains(stderr, "--example "+tt.dir+": "+tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, ExitUsage, tt.want)
			}
		})
	}
}
