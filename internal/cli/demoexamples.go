package cli

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/report"
)

// What evident demo does with the examples beside the shop (--examples).
const (
	// examplesAuto runs each example live where its runtime is installed
	// and replays its recording where it is not.
	examplesAuto = "auto"
	// examplesReplay replays every example's recording.
	examplesReplay = "replay"
	// examplesOff runs the shop alone.
	examplesOff = "off"
)

// How an example took part in the demo.
const (
	exampleLive     = "ran live"
	exampleReplayed = "replayed its recording"
	exampleSkipped  = "skipped"
)

// demoExample is an example service in another language beside the shop
// (examples/<dir>, issue 13): a real program with its runtime's profiler,
// and a recording of it (recorded/: traces, a profile, an SBOM, the OSV
// records, the expected verdicts) that the demo replays where the runtime
// is missing.
type demoExample struct {
	dir, service string
	// runtime names what a live run needs, for the demo's lines ("runs
	// live where <runtime> are installed").
	runtime string
	// send sends a profile to serve's Pyroscope /ingest the way the
	// example's runtime's Pyroscope client sends one.
	send profileSender
	// prepare checks that the runtime is installed and readies a live run
	// with work as its scratch directory; its error says why the example
	// cannot run live.
	prepare func(ctx context.Context, ex, work string) (*liveRun, error)
}

// liveRun is how to run an example live: its service, started with the
// demo's telemetry endpoints, then its load driver, run to its end.
type liveRun struct {
	// dir is the working directory of both.
	dir string
	// service returns the service's argv and environment: it listens on
	// addr, sends its spans to the OTLP/HTTP endpoint otlp and writes its
	// profile to the file profile when it stops (SIGTERM).
	service func(addr, otlp, profile string) (argv, env []string)
	// load returns the load driver's argv for the service at base.
	load func(base string) []string
	// requests is how many requests the load sends, for the demo's lines.
	requests int
}

// profileSender sends a profile of service, covering from to until, to
// the Pyroscope /ingest at addr.
type profileSender func(ctx context.Context, addr, service string, profile []byte, from, until time.Time) error

// demoExamples are the examples beside the shop, in the order the demo
// lists them. Each live run sends the load its tools/record.sh sends, so
// that its verdicts are those of recorded/expected.yaml.
var demoExamples = []demoExample{
	{dir: "java-inventory", service: "inventory", runtime: "Java 17 (java, javac) and Debian's snakeyaml 1.33, guava 31.1 and commons-compress 1.22 jars",
		send: sendJavaAgentJFR, prepare: prepareJava},
	{dir: "node-reviews", service: "reviews", runtime: "Node.js and npm (npm ci, from the npm registry or npm's cache)",
		send: sendNodeProfile, prepare: prepareNode},
	{dir: "python-reports", service: "reports", runtime: "Debian's python3 with python3-jinja2 3.1.2, python3-yaml 6.0, python3-requests 2.28.1 and python3-urllib3 1.26.12, and austin 2 or later (EVIDENT_AUSTIN)",
		send: sendFolded, prepare: preparePython},
}

// javaJars are the Debian jars the Java example deploys, under
// debianJava: the versions its SBOM names.
var javaJars = []string{"snakeyaml-1.33", "guava-31.1-jre", "commons-compress-1.22"}

// debianJava is where Debian installs jars.
const debianJava = "/usr/share/java"

// prepareJava compiles the Java example and its load driver into work
// against Debian's jars, as its tools/record.sh does, and runs it under
// the JDK's flight recorder with the example's settings (tools/cpu.jfc).
func prepareJava(ctx context.Context, ex, work string) (*liveRun, error) {
	for _, tool := range []string{"java", "javac"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("no %s on PATH", tool)
		}
	}
	var cp []string
	for _, jar := range javaJars {
		p := filepath.Join(debianJava, jar+".jar")
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s missing (apt-get install libyaml-snake-java libguava-java libcommons-compress-java)", p)
		}
		cp = append(cp, p)
	}
	classes, load := filepath.Join(work, "classes"), filepath.Join(work, "load")
	srcs, err := javaSources(filepath.Join(ex, "src"))
	if err != nil {
		return nil, err
	}
	loadSrcs, err := javaSources(filepath.Join(ex, "load"))
	if err != nil {
		return nil, err
	}
	if err := runQuiet(ctx, ex, "javac", append([]string{"--release", "17", "-nowarn", "-cp", strings.Join(cp, ":"), "-d", classes}, srcs...)...); err != nil {
		return nil, err
	}
	if err := runQuiet(ctx, ex, "javac", append([]string{"--release", "17", "-d", load}, loadSrcs...)...); err != nil {
		return nil, err
	}
	jfc := filepath.Join(ex, "tools", "cpu.jfc")
	return &liveRun{
		dir: work,
		service: func(addr, otlp, profile string) ([]string, []string) {
			return []string{"java", "-XX:StartFlightRecording=filename=" + profile + ",settings=" + jfc,
					"-cp", strings.Join(append([]string{classes}, cp...), ":"), "com.example.inventory.Main"},
				[]string{"INVENTORY_ADDR=" + addr, "OTEL_EXPORTER_OTLP_ENDPOINT=" + otlp}
		},
		load: func(base string) []string {
			return []string{"java", "-cp", load, "com.example.load.Load", base, "600", "2", "30"}
		},
		requests: 600,
	}, nil
}

// javaSources lists the .java files under dir.
func javaSources(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".java") {
			out = append(out, p)
		}
		return err
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("no .java files under %s", dir)
	}
	return out, err
}

// prepareNode installs the example's packages from its package-lock.json
// with npm ci into a copy of it under work, so that nothing is written in
// the repository.
func prepareNode(ctx context.Context, ex, work string) (*liveRun, error) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("no %s on PATH", tool)
		}
	}
	for _, f := range []string{"package.json", "package-lock.json", "server.js", "tracing.js", "profiling.js", "load.js"} {
		b, err := os.ReadFile(filepath.Join(ex, f))
		if err == nil {
			err = os.WriteFile(filepath.Join(work, f), b, 0o644)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := runQuiet(ctx, work, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"); err != nil {
		return nil, err
	}
	return &liveRun{
		dir: work,
		service: func(addr, otlp, profile string) ([]string, []string) {
			return []string{"node", "--require", "./tracing.js", "server.js"},
				[]string{"REVIEWS_ADDR=" + addr, "REVIEWS_PROFILE=" + profile, "OTEL_EXPORTER_OTLP_ENDPOINT=" + otlp}
		},
		load:     func(base string) []string { return []string{"node", "load.js", base, "400", "25"} },
		requests: 400,
	}, nil
}

// debianPython is Debian's python3, which sees the packages of
// debianDist.
const (
	debianPython = "/usr/bin/python3"
	debianDist   = "/usr/lib/python3/dist-packages"
)

// pythonDists are the distributions the Python example imports, at the
// versions its SBOM names.
var pythonDists = []string{"Jinja2-3.1.2", "PyYAML-6.0", "requests-2.28.1", "urllib3-1.26.12"}

// preparePython checks for Debian's python3 and packages and for austin
// 2 or later (EVIDENT_AUSTIN, else austin on PATH: Debian 12's austin 1
// cannot read Python 3.11; examples/python-reports/tools/austin-debian13.sh
// unpacks Debian 13's). The example runs from its directory under austin,
// as its tools/record.sh runs it, writing no bytecode there; SIGTERM to
// austin stops the service and writes the profile's duration.
func preparePython(ctx context.Context, ex, _ string) (*liveRun, error) {
	if _, err := os.Stat(debianPython); err != nil {
		return nil, fmt.Errorf("no %s (Debian's python3)", debianPython)
	}
	for _, d := range pythonDists {
		if m, _ := filepath.Glob(filepath.Join(debianDist, d+".*-info")); len(m) == 0 {
			return nil, fmt.Errorf("%s.*-info missing (apt-get install python3-jinja2 python3-yaml python3-requests python3-urllib3)", filepath.Join(debianDist, d))
		}
	}
	austin := strings.Fields(os.Getenv("EVIDENT_AUSTIN"))
	if len(austin) == 0 {
		path, err := exec.LookPath("austin")
		if err != nil {
			return nil, errors.New("no austin on PATH and EVIDENT_AUSTIN unset")
		}
		austin = []string{path}
	}
	out, err := exec.CommandContext(ctx, austin[0], append(austin[1:], "-V")...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s -V: %w", strings.Join(austin, " "), err)
	}
	fields := strings.Fields(string(out))
	var major int
	if len(fields) > 0 {
		major, _ = strconv.Atoi(strings.Split(fields[len(fields)-1], ".")[0])
	}
	if major < 2 {
		return nil, fmt.Errorf("%s cannot read Python 3.11: set EVIDENT_AUSTIN to austin 2 or later (examples/python-reports/tools/austin-debian13.sh)", strings.TrimSpace(string(out)))
	}
	return &liveRun{
		dir: ex,
		service: func(addr, otlp, profile string) ([]string, []string) {
			return append(slices.Clone(austin), "--sleepless", "--interval", "1000", "--output", profile, debianPython, "app.py"),
				[]string{"REPORTS_ADDR=" + addr, "OTEL_EXPORTER_OTLP_ENDPOINT=" + otlp, "PYTHONDONTWRITEBYTECODE=1"}
		},
		load:     func(base string) []string { return []string{debianPython, "load.py", base, "600", "40"} },
		requests: 600,
	}, nil
}

// runQuiet runs a preparation step; its error ends with the end of the
// step's output.
func runQuiet(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args[:min(len(args), 2)], " "), err, lastLines(out, 3))
	}
	return nil
}

// lastLines is the end of a command's output, on one line.
func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// includedExample is an example the demo includes, with what it did.
type includedExample struct {
	demoExample
	// path is the example's directory.
	path string

	// scratch is the live run's directory under the demo's temporary one:
	// its build, its packages, its profile.
	scratch string
	// prepared is closed when the preparation of the live run ends, with
	// live set or prepErr saying why the example cannot run live.
	prepared chan struct{}
	live     *liveRun
	prepErr  error

	mu sync.Mutex
	// how is exampleLive, exampleReplayed or exampleSkipped, empty while
	// it runs; why says why it was replayed or skipped.
	how, why string
}

// startPrepare readies the live run in the background, in wg, while the
// demo builds the shop: compiling the Java example and installing the
// Node.js example's packages take a while.
func (e *includedExample) startPrepare(ctx context.Context, wg *sync.WaitGroup, work, mode string) {
	e.prepared, e.scratch = make(chan struct{}), filepath.Join(work, e.dir)
	if how, _ := e.outcome(); how == exampleSkipped || mode != examplesAuto {
		e.prepErr = errors.New("--examples " + mode)
		close(e.prepared)
		return
	}
	wg.Go(func() {
		defer close(e.prepared)
		if e.prepErr = os.MkdirAll(e.scratch, 0o755); e.prepErr == nil {
			e.live, e.prepErr = e.prepare(ctx, e.path, e.scratch)
		}
	})
}

func (e *includedExample) set(how, why string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.how, e.why = how, why
}

func (e *includedExample) outcome() (how, why string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.how, e.why
}

// findExamples returns the examples beside the shop, each skipped with
// its reason when mode is off or its recording is not there.
func findExamples(shop, mode string) []*includedExample {
	var out []*includedExample
	// Absolute: the live runs work in other directories.
	if abs, err := filepath.Abs(shop); err == nil {
		shop = abs
	}
	for _, d := range demoExamples {
		e := &includedExample{demoExample: d, path: filepath.Join(filepath.Dir(shop), d.dir)}
		switch _, err := os.Stat(filepath.Join(e.path, "recorded", "expected.yaml")); {
		case mode == examplesOff:
			e.set(exampleSkipped, "--examples off")
		case err != nil:
			e.set(exampleSkipped, fmt.Sprintf("no recording beside the shop: %v", err))
		}
		out = append(out, e)
	}
	return out
}

// included says whether the example's findings are in the demo.
func (e *includedExample) included() bool {
	how, _ := e.outcome()
	return how != exampleSkipped
}

// rec is a path under the example's recording.
func (e *includedExample) rec(elem ...string) string {
	return filepath.Join(append([]string{e.path, "recorded"}, elem...)...)
}

// recordedFile is the one file of the recording matching pattern.
func (e *includedExample) recordedFile(pattern string) (string, error) {
	m, err := filepath.Glob(e.rec(pattern))
	if err == nil && len(m) != 1 {
		err = fmt.Errorf("%d files match %s, want one", len(m), e.rec(pattern))
	}
	if err != nil {
		return "", err
	}
	return m[0], nil
}

// addTo adds the example's findings (the SBOM of what it deploys), its
// recorded vulnerability records (those its expected.yaml was made with,
// read beside whatever else serve loads) and its first-party packages to
// serve's flags and configuration.
func (e *includedExample) addTo(fs *serveFlags, cfg *fileConfig) error {
	sbom, err := e.recordedFile(filepath.Join("findings", "*.cdx.json"))
	if err != nil {
		return err
	}
	ecfg, err := loadConfig(filepath.Join(e.path, "evident.yaml"))
	if err != nil {
		return err
	}
	fs.findings = append(fs.findings, e.service+"="+sbom)
	fs.alsoVulns = append(fs.alsoVulns, e.rec("osv"))
	cfg.FirstParty = append(cfg.FirstParty, ecfg.FirstParty...)
	return nil
}

// run runs the example live once its preparation succeeded, else
// replays its recording, saying on notes what it does. A live run that
// fails before its profile is sent falls back to the replay too.
func (e *includedExample) run(ctx context.Context, procs *procGroup, srv *server, notes func(string)) {
	select {
	case <-e.prepared:
	case <-ctx.Done():
		return
	}
	why := ""
	if e.prepErr != nil {
		why = e.prepErr.Error()
	} else if err := e.runLive(ctx, procs, srv, notes); err == nil || ctx.Err() != nil {
		return
	} else {
		why = err.Error()
	}
	notes(fmt.Sprintf("%s: replaying %s (%s)", e.dir, e.rec(), why))
	if err := e.replay(ctx, srv); err != nil {
		if ctx.Err() == nil {
			notes(fmt.Sprintf("%s: replay failed: %v", e.dir, err))
		}
		e.set(exampleSkipped, fmt.Sprintf("%s; its replay failed: %v", why, err))
		return
	}
	e.set(exampleReplayed, why)
	notes(fmt.Sprintf("%s: replayed: its spans to OTLP/HTTP, its profile to /ingest", e.dir))
}

// runLive runs the prepared example's service with its profiler and its
// load, stops the service (which writes its profile and flushes its
// spans) and sends the profile to /ingest. Requests of the load that
// failed (a busy machine) are said, not fatal: what ran is still real. An
// error says why no profile reached serve.
func (e *includedExample) runLive(ctx context.Context, procs *procGroup, srv *server, notes func(string)) error {
	lr := e.live
	profile := filepath.Join(e.scratch, "profile")
	svc, err := e.startService(ctx, procs, srv, profile, notes)
	if err != nil {
		return err
	}
	defer svc.stop()
	notes(fmt.Sprintf("%s: running live: %s on %s, %d requests", e.dir, e.service, svc.addr, lr.requests))
	loadErr := procs.runProc(ctx, demoProc{name: e.service + "-load", dir: lr.dir, argv: lr.load("http://" + svc.addr)})
	svc.stop() // SIGTERM: the service writes its profile and flushes its spans
	svcErr := <-svc.done
	until := time.Now()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if loadErr != nil {
		notes(fmt.Sprintf("%s: some requests failed: %v", e.dir, loadErr))
	}
	data, err := os.ReadFile(profile)
	if err != nil {
		return fmt.Errorf("live run: %s wrote no profile (%v): %w", e.service, svcErr, err)
	}
	if err := e.send(ctx, srv.pyro.Addr(), e.service, data, svc.start, until); err != nil {
		return fmt.Errorf("live run: send its profile: %w", err)
	}
	e.set(exampleLive, "")
	notes(fmt.Sprintf("%s: ran live for %v; its profile went to /ingest", e.dir, until.Sub(svc.start).Round(time.Second)))
	return nil
}

// liveService is an example's service started and listening: stop ends
// it (SIGTERM), and done says how it exited.
type liveService struct {
	addr  string
	start time.Time
	stop  context.CancelFunc
	done  <-chan error
}

// startService starts the example's service and waits until it listens
// (procGroup.listen).
func (e *includedExample) startService(ctx context.Context, procs *procGroup, srv *server, profile string, notes func(string)) (*liveService, error) {
	svc := &liveService{stop: func() {}}
	addr, err := procs.listen(ctx, e.service, func(addr string) (<-chan struct{}, error) {
		svc.stop() // an attempt before, which has exited
		argv, env := e.live.service(addr, "http://"+srv.otlp.HTTPAddr(), profile)
		svcCtx, stop := context.WithCancel(ctx)
		exited, done := make(chan struct{}), make(chan error, 1)
		svc.start, svc.stop, svc.done = time.Now(), stop, done
		go func() {
			done <- procs.runProc(svcCtx, demoProc{name: e.service, dir: e.live.dir, argv: argv, env: env})
			close(exited)
		}()
		return exited, nil
	}, func(taken string) {
		notes(fmt.Sprintf("%s: %s was taken before %s listened on it; another port", e.dir, taken, e.service))
	})
	if err != nil {
		svc.stop()
		if svc.done != nil {
			<-svc.done
		}
		return nil, err
	}
	svc.addr = addr
	return svc, nil
}

// replay sends the recording's spans to serve's OTLP/HTTP receiver, a
// request per line as the exporter sent them, and its profile to /ingest
// as the runtime's Pyroscope client sends one, covering the time the
// spans cover, ending now.
func (e *includedExample) replay(ctx context.Context, srv *server) error {
	traces, err := e.recordedFile("traces.jsonl*")
	if err != nil {
		return err
	}
	span, err := postTraces(ctx, "http://"+srv.otlp.HTTPAddr()+"/v1/traces", traces)
	if err != nil {
		return err
	}
	prof, err := e.recordedFile(filepath.Join("profiles", e.service, "*"))
	if err != nil {
		return err
	}
	data, err := os.ReadFile(prof)
	if err != nil {
		return err
	}
	until := time.Now()
	return e.send(ctx, srv.pyro.Addr(), e.service, data, until.Add(-span), until)
}

// postTraces posts each line of an OTLP/JSON lines file (gzipped or not)
// as one OTLP/HTTP request, and returns how long its spans last from the
// first start to the last end.
func postTraces(ctx context.Context, url, path string) (time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", path, err)
		}
		r = zr
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	var first, last uint64
	for n := 1; sc.Scan(); n++ {
		var body struct {
			ResourceSpans []struct {
				ScopeSpans []struct {
					Spans []struct {
						Start uint64 `json:"startTimeUnixNano,string"`
						End   uint64 `json:"endTimeUnixNano,string"`
					} `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		}
		if err := json.Unmarshal(sc.Bytes(), &body); err != nil {
			return 0, fmt.Errorf("read %s, line %d: %w", path, n, err)
		}
		for _, rs := range body.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					if first == 0 || s.Start < first {
						first = s.Start
					}
					last = max(last, s.End)
				}
			}
		}
		if err := post(ctx, url, "application/json", bytes.NewReader(sc.Bytes())); err != nil {
			return 0, fmt.Errorf("%s, line %d: %w", path, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	if last <= first {
		return 0, fmt.Errorf("%s: no spans", path)
	}
	return time.Duration(last - first), nil
}

// post posts body and wants 200.
func post(ctx context.Context, url, contentType string, body io.Reader) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// sendJavaAgentJFR sends a JFR recording as the Pyroscope Java agent's
// PyroscopeExporter does: gzipped, the query parameters in its order
// (name, units, aggregationType, from, until, spyName javaspy, sampleRate,
// format jfr), the application name with its empty label set, a form part
// "jfr" with file name "jfr" and no Content-Type of its own (OkHttp's
// addFormDataPart(name, filename, body) of a body without a media type).
// With the JDK's own recorder there are no context labels, so the agent
// sends no "labels" part.
func sendJavaAgentJFR(ctx context.Context, addr, app string, jfr []byte, from, until time.Time) error {
	gz, err := gzipped(jfr)
	if err != nil {
		return err
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="jfr"; filename="jfr"`)
	url := fmt.Sprintf("http://%s/ingest?name=%s%%7B%%7D&units=samples&aggregationType=sum&from=%d&until=%d&spyName=javaspy&sampleRate=1000&format=jfr",
		addr, app, from.Unix(), until.Unix())
	return postPart(ctx, url, h, gz)
}

// sendNodeProfile sends a gzipped pprof profile as @pyroscope/nodejs's
// exporter does: the query parameters from, name, spyName nodespy, until
// and sampleRate, one form part "profile" with file name "profile" and
// Content-Type application/octet-stream.
func sendNodeProfile(ctx context.Context, addr, app string, pprof []byte, from, until time.Time) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="profile"; filename="profile"`)
	h.Set("Content-Type", "application/octet-stream")
	url := fmt.Sprintf("http://%s/ingest?from=%d&name=%s&spyName=nodespy&until=%d&sampleRate=1000", addr, from.Unix(), app, until.Unix())
	return postPart(ctx, url, h, pprof)
}

// sendFolded sends folded stacks or austin's output (gzipped or not) as
// Pyroscope's documentation sends folded stacks with curl: the text as
// the body, name, from and until in seconds, format=folded.
func sendFolded(ctx context.Context, addr, app string, folded []byte, from, until time.Time) error {
	if zr, err := gzip.NewReader(bytes.NewReader(folded)); err == nil {
		if folded, err = io.ReadAll(zr); err != nil {
			return fmt.Errorf("read the folded stacks: %w", err)
		}
	}
	url := fmt.Sprintf("http://%s/ingest?name=%s&from=%d&until=%d&format=folded", addr, app, from.Unix(), until.Unix())
	return post(ctx, url, "text/plain", bytes.NewReader(folded))
}

// postPart posts data as the one part of a multipart form.
func postPart(ctx context.Context, url string, h textproto.MIMEHeader, data []byte) error {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, err := w.CreatePart(h)
	if err != nil {
		return err
	}
	part.Write(data)
	w.Close()
	return post(ctx, url, w.FormDataContentType(), &body)
}

// gzipped is data gzipped, or data itself if it already is.
func gzipped(data []byte) ([]byte, error) {
	if len(data) > 2 && data[0] == 0x1f && data[1] == 0x8b {
		return data, nil
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// expectedVerdicts reads the verdicts of an example's
// recorded/expected.yaml by vulnerability.
func expectedVerdicts(path string) (map[string]assess.Verdict, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var exp struct {
		Findings []struct {
			ID      string         `yaml:"id"`
			Verdict assess.Verdict `yaml:"verdict"`
		} `yaml:"findings"`
	}
	if err := yaml.Unmarshal(raw, &exp); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	out := make(map[string]assess.Verdict, len(exp.Findings))
	for _, f := range exp.Findings {
		out[f.ID] = f.Verdict
	}
	return out, nil
}

// recordedIDs are the ids and aliases, upper-cased, of the OSV records in
// dir, an example's recorded/osv.
func recordedIDs(dir string) (map[string]bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no records in %s", dir)
	}
	ids := map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var rec struct {
			ID      string   `json:"id"`
			Aliases []string `json:"aliases"`
		}
		if err := json.Unmarshal(raw, &rec); err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		for _, id := range append(rec.Aliases, rec.ID) {
			ids[strings.ToUpper(id)] = true
		}
	}
	return ids, nil
}

// summary is the example's line at the end of the demo: how it took part,
// the verdicts of its service's findings in res, and whether they are
// those of its recorded/expected.yaml. ok is false when they differ, or
// cannot be compared; an example skipped or still running has nothing to
// compare, and is ok.
func (e *includedExample) summary(res *report.Result) (line string, ok bool) {
	how, why := e.outcome()
	switch how {
	case exampleSkipped:
		return fmt.Sprintf("%s skipped (%s)", e.dir, why), true
	case "":
		return fmt.Sprintf("%s still running when the demo stopped (a longer --duration lets it finish)", e.dir), true
	case exampleReplayed:
		how += " (" + why + ")"
	}
	got := map[string]assess.Verdict{}
	counts := map[assess.Verdict]int{}
	for _, a := range res.Assessments {
		if a.Finding.Service == e.service {
			got[a.Finding.Vulnerability.ID] = a.Reachability.Verdict
			counts[a.Reachability.Verdict]++
		}
	}
	var parts []string
	for _, v := range []assess.Verdict{assess.Executed, assess.Loaded, assess.NotObserved, assess.Unknown} {
		parts = append(parts, strconv.Itoa(counts[v])+" "+string(v))
	}
	line = fmt.Sprintf("%s %s: %s %s", e.dir, how, e.service, strings.Join(parts, ", "))
	expected := e.rec("expected.yaml")
	want, err := expectedVerdicts(expected)
	if err != nil {
		return line + fmt.Sprintf("; cannot compare with the expected verdicts: %v", err), false
	}
	// A finding of a record the recording does not hold (a database of
	// --data holds more) is not one expected.yaml can speak of.
	recorded, err := recordedIDs(e.rec("osv"))
	if err != nil {
		return line + fmt.Sprintf("; cannot compare with the expected verdicts: %v", err), false
	}
	ids := map[string]bool{}
	for id := range want {
		ids[id] = true
	}
	others := 0
	for id := range got {
		if _, ok := want[id]; !ok && !recorded[strings.ToUpper(id)] {
			others++
			continue
		}
		ids[id] = true
	}
	if others > 0 {
		line += fmt.Sprintf(" (%d of records beyond its recording, not compared)", others)
	}
	var diffs []string
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		if got[id] != want[id] {
			diffs = append(diffs, fmt.Sprintf("%s %s (expected %s)", id, orNone(got[id]), orNone(want[id])))
		}
	}
	if len(diffs) > 0 {
		return line + "; differs from " + expected + ": " + strings.Join(diffs, ", "), false
	}
	return line + ", as " + expected + " expects", true
}

func orNone(v assess.Verdict) string {
	if v == "" {
		return "absent"
	}
	return string(v)
}
