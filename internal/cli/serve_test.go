package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/pprof/profile"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/logtest"
	"github.com/evidentsec/evident/internal/telemetry"
)

// serveTestConfig listens on free loopback ports and re-assesses quickly.
func serveTestConfig(t *testing.T) fileConfig {
	t.Helper()
	cfg := defaultFileConfig()
	cfg.Serve.API.Endpoint = "127.0.0.1:0"
	cfg.Serve.OTLP.GRPCEndpoint, cfg.Serve.OTLP.HTTPEndpoint = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Serve.Pyroscope.Endpoint = "127.0.0.1:0"
	cfg.Serve.Engine.AssessInterval = 50 * time.Millisecond
	cfg.Serve.ShutdownTimeout = 10 * time.Second
	return cfg
}

func startTestServer(t *testing.T, dataDir string, fl serveFlags) *server {
	t.Helper()
	return startTestServerConfig(t, dataDir, serveTestConfig(t), fl)
}

// startTestServerConfig is startTestServer with a configuration of the
// caller's.
func startTestServerConfig(t *testing.T, dataDir string, cfg fileConfig, fl serveFlags) *server {
	t.Helper()
	g := &globals{stdout: io.Discard, stderr: io.Discard, dataDir: dataDir}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := startServer(t.Context(), g, cfg, fl, log)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestServeEndToEnd sends spans with the OTel SDK's OTLP/HTTP exporter
// and a CPU profile as pyroscope-go posts it, for a service whose
// finding's vulnerable function is in the profile, and follows the
// finding from unknown to executed, the first-execution alert, and the
// verdict across a restart over the same data directory.
func TestServeEndToEnd(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	data := t.TempDir()
	fl := serveFlags{
		vulns:    []string{filepath.Join("testdata", "serve", "osv")},
		findings: []string{"checkout=" + filepath.Join("testdata", "serve", "checkout.govulncheck.json")},
	}
	srv := startTestServer(t, data, fl)
	api := srv.apiURL()

	if got := verdicts(t, api); got["GO-2026-5970"] != "unknown" {
		t.Fatalf("verdicts before telemetry = %v, want GO-2026-5970 unknown", got)
	}

	sendSpans(t, srv.otlp.HTTPAddr())
	postProfile(t, srv.pyro.Addr())

	waitFor(t, "GO-2026-5970 executed", func() bool { return verdicts(t, api)["GO-2026-5970"] == "executed" })
	waitFor(t, "a first_execution alert", func() bool {
		var body struct {
			Alerts []struct {
				Kind, Service string
			}
		}
		getJSON(t, api+"/api/v1/alerts", &body)
		for _, a := range body.Alerts {
			if a.Kind == "first_execution" && a.Service == "checkout" {
				return true
			}
		}
		return false
	})
	// The executed finding's service is exposed only if the spans say
	// so; either way the patch endpoint answers with the set it made.
	var patches struct {
		IDRange []int `json:"id_range"`
	}
	getJSON(t, api+"/api/v1/waf/patches", &patches)
	if len(patches.IDRange) != 2 {
		t.Errorf("waf patches: id_range %v", patches.IDRange)
	}
	resp, err := http.Get(api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(metrics, []byte("evident_")) {
		t.Errorf("/metrics has no evident_ metrics:\n%.500s", metrics)
	}

	shutdown(t, srv)
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Errorf("second Shutdown = %v", err)
	}

	// Restart without --findings: the findings, the model and the
	// verdict come back from the store.
	srv = startTestServer(t, data, serveFlags{vulns: fl.vulns})
	if got := verdicts(t, srv.apiURL()); got["GO-2026-5970"] != "executed" {
		t.Errorf("verdicts after restart = %v, want GO-2026-5970 executed", got)
	}
	shutdown(t, srv)
}

// TestServeLifecycle starts and stops serve twice over one data
// directory, and stops one whose start failed, without leaking.
func TestServeLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	data := t.TempDir()
	fl := serveFlags{vulns: []string{filepath.Join("testdata", "serve", "osv")}}
	for range 2 {
		srv := startTestServer(t, data, fl)
		// Sinks before sources: receivers start last and stop first.
		var got []string
		for _, c := range srv.started {
			got = append(got, fmt.Sprintf("%T", c))
		}
		// The tenants start each tenant's engine, then its alert router.
		want := []string{"*auth.Authenticator", "*tenant.Registry[*github.com/evidentsec/evident/internal/cli.tenantUnit]", "*cli.retainer", "*httpapi.Server", "*admission.Controller", "*otlp.Receiver", "*pyroscope.Receiver"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("start order (-want +got):\n%s", diff)
		}
		shutdown(t, srv)
	}
	t.Run("listen error", func(t *testing.T) {
		cfg := serveTestConfig(t)
		cfg.Serve.Pyroscope.Endpoint = "256.0.0.1:1"
		g := &globals{stdout: io.Discard, stderr: io.Discard, dataDir: data}
		if _, err := startServer(t.Context(), g, cfg, fl, slog.New(slog.DiscardHandler)); err == nil {
			t.Fatal("startServer with a bad listen address succeeded")
		}
	})
	t.Run("no vulnerability database", func(t *testing.T) {
		g := &globals{stdout: io.Discard, stderr: io.Discard, dataDir: t.TempDir()}
		_, err := startServer(t.Context(), g, serveTestConfig(t), serveFlags{}, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "evident db update") {
			t.Fatalf("startServer = %v, want the no-database hint", err)
		}
	})
	t.Run("missing findings file, no vulnerability database", func(t *testing.T) {
		g := &globals{stdout: io.Discard, stderr: io.Discard, dataDir: t.TempDir()}
		_, err := startServer(t.Context(), g, serveTestConfig(t), serveFlags{findings: []string{"nope.json"}}, slog.New(slog.DiscardHandler))
		if want := "--findings: read findings: open nope.json: no such file or directory"; err == nil || err.Error() != want {
			t.Fatalf("startServer = %v, want %q: the file is named before the database is looked for", err, want)
		}
	})
}

func shutdown(t *testing.T, srv *server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, 15*time.Second, what, cond)
}

// waitWithin waits up to d for cond.
func waitWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// verdicts maps the vulnerability IDs of checkout's findings to their
// verdicts.
func verdicts(t *testing.T, api string) map[string]string {
	t.Helper()
	return verdictsOf(t, api, "checkout")
}

// verdictsOf returns the verdicts of service's findings by id.
func verdictsOf(t *testing.T, api, service string) map[string]string {
	t.Helper()
	var body struct {
		Findings []struct {
			Vulnerability struct{ ID string }
			Reachability  struct{ Verdict string }
		}
	}
	getJSON(t, api+"/api/v1/findings?service="+service, &body)
	out := map[string]string{}
	for _, f := range body.Findings {
		out[f.Vulnerability.ID] = f.Reachability.Verdict
	}
	return out
}

// sendSpans exports one public request to checkout with the OTel SDK.
func sendSpans(t *testing.T, addr string) {
	t.Helper()
	exp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpoint(addr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "checkout"))))
	_, span := tp.Tracer("test").Start(t.Context(), "GET /search", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", "GET"), attribute.String("http.route", "/search"),
			attribute.String("url.path", "/search"), attribute.String("client.address", "198.51.100.7")))
	span.End()
	if err := tp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// postProfile posts a CPU profile of checkout in which x/text's
// norm.Form.String runs, as pyroscope-go uploads it: multipart with the
// profile and its sample type config.
func postProfile(t *testing.T, addr string) {
	t.Helper()
	postLabelledProfile(t, addr, nil)
}

// postLabelledProfile is postProfile with labels on every sample.
func postLabelledProfile(t *testing.T, addr string, labels map[string][]string) {
	t.Helper()
	fn := &profile.Function{ID: 1, Name: "golang.org/x/text/unicode/norm.Form.String", SystemName: "golang.org/x/text/unicode/norm.Form.String", Filename: "golang.org/x/text@v0.37.0/unicode/norm/normalize.go"}
	caller := &profile.Function{ID: 2, Name: "main.search", SystemName: "main.search", Filename: "example.com/checkout/main.go"}
	postStack(t, addr, "checkout", "gospy", labels, fn, caller)
}

// postStack posts, as a Pyroscope SDK does, a CPU profile of service
// over the last 10 s with 100 samples of the stack of fns (the innermost
// first), labelled with labels.
func postStack(t *testing.T, addr, service, spy string, labels map[string][]string, fns ...*profile.Function) {
	t.Helper()
	var locs []*profile.Location
	for i, fn := range fns {
		locs = append(locs, &profile.Location{ID: uint64(i + 1), Address: uint64(0x1000 * (i + 1)), Line: []profile.Line{{Function: fn, Line: int64(10 * (i + 1))}}})
	}
	now := time.Now()
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        10_000_000,
		TimeNanos:     now.Add(-10 * time.Second).UnixNano(),
		DurationNanos: int64(10 * time.Second),
		Function:      fns,
		Location:      locs,
	}
	for range 100 {
		p.Sample = append(p.Sample, &profile.Sample{Location: locs, Value: []int64{1, 10_000_000}, Label: labels})
	}
	var prof bytes.Buffer
	if err := p.Write(&prof); err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, part := range [][2]string{{"profile", prof.String()}, {"sample_type_config", `{"cpu":{"units":"nanoseconds","sampled":true}}`}} {
		fw, err := w.CreateFormFile(part[0], part[0]+".pprof")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write([]byte(part[1]))
	}
	w.Close()
	url := fmt.Sprintf("http://%s/ingest?name=%s%%7B%%7D&from=%d&until=%d&spyName=%s&sampleRate=100&units=samples&aggregationType=sum",
		addr, service, now.Add(-10*time.Second).Unix(), now.Unix(), spy)
	resp, err := http.Post(url, w.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /ingest: %s: %s", resp.Status, b)
	}
}

// TestServeAttributesWithUploadedFindings uploads, to a serve started
// without findings, a pip-audit report of azure-storage-blob, then posts
// a CPU profile as the Pyroscope Python SDK does (py-spy's short file
// names, which lose the namespace package's directories: "blob/…"): the
// engine attributes it with what the upload tells, and the finding is
// loaded. Before, serve attributed with the findings it started with, and
// the frames went to a distribution "blob": not_observed.
func TestServeAttributesWithUploadedFindings(t *testing.T) {
	srv := startTestServer(t, t.TempDir(), serveFlags{vulns: []string{filepath.Join("..", "vulndb", "testdata", "ghsa")}})
	defer shutdown(t, srv)
	api := srv.apiURL()
	report, err := os.ReadFile(filepath.Join("testdata", "analyze", "python", "blobs.pip-audit.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := request(t, "POST", api+"/api/v1/findings?service=blobs", "", "application/json", report); got != http.StatusOK {
		t.Fatalf("POST /api/v1/findings: %d", got)
	}
	postStack(t, srv.pyro.Addr(), "blobs", "pyspy", nil,
		&profile.Function{ID: 1, Name: "generate_blob", Filename: "blob/_shared_access_signature.py"},
		&profile.Function{ID: 2, Name: "generate_blob_sas", Filename: "blob/_shared_access_signature.py"},
		&profile.Function{ID: 3, Name: "main", Filename: "app.py"})
	waitFor(t, "GHSA-64x4-9hc6-r2h6 loaded", func() bool { return verdictsOf(t, api, "blobs")["GHSA-64x4-9hc6-r2h6"] == "loaded" })
}

// TestServeCommand runs evident serve as main does: the flags override
// the file, the listening addresses are printed, and the end of the
// context (SIGINT in main) stops it with status 0.
func TestServeCommand(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
		dontWant []string
	}{
		{
			name: "listeners from flags",
			args: []string{"--api", "127.0.0.1:0", "--otlp-grpc", "", "--otlp-http", "127.0.0.1:0", "--pyroscope", "127.0.0.1:0"},
			want: []string{"UI http://127.0.0.1:", "API http://127.0.0.1:", "OTLP/HTTP http://127.0.0.1:", "Pyroscope http://127.0.0.1:"}, dontWant: []string{"OTLP/gRPC"},
		},
		{
			name: "bad listen address", args: []string{"--api", "nonsense"}, wantCode: ExitUsage,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var out, errOut logtest.Buffer
			args := append([]string{"serve", "--data", t.TempDir(), "--vulns", filepath.Join("testdata", "serve", "osv")}, tt.args...)
			code := make(chan int, 1)
			go func() { code <- Run(ctx, args, &out, &errOut) }()
			if tt.wantCode == ExitOK {
				waitFor(t, "the listening addresses", func() bool { return strings.Contains(out.String(), "Pyroscope") })
				cancel()
			}
			if got := <-code; got != tt.wantCode {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", got, tt.wantCode, errOut.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout = %q, want %q", out.String(), w)
				}
			}
			for _, w := range tt.dontWant {
				if strings.Contains(out.String(), w) {
					t.Errorf("stdout = %q, want no %q", out.String(), w)
				}
			}
		})
	}
}

// TestServeAlertsWhileDraining: an alert the engine raises while serve
// stops is delivered and stored. The engine raises sensitive-path alerts
// when it assesses, and with an assessment interval of an hour the only
// assessment after the spans is the one that ends its drain.
func TestServeAlertsWhileDraining(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	data := t.TempDir()
	cfg := serveTestConfig(t)
	cfg.Serve.Engine.AssessInterval = time.Hour
	cfg.Sensitivity = []assess.SensitivityRule{{Store: "postgresql://shop/*", Labels: []string{"pii"}}}
	fl := serveFlags{vulns: []string{filepath.Join("testdata", "serve", "osv")}}
	srv := startTestServerConfig(t, data, cfg, fl)
	at := time.Now().Add(-time.Second)
	span := func(svc string, kind telemetry.SpanKind, id, parent byte, a telemetry.Attrs) telemetry.Span {
		return telemetry.Span{Service: svc, Kind: kind, SpanID: [8]byte{7: id}, ParentSpanID: [8]byte{7: parent},
			TraceID: [16]byte{15: 1}, Name: "op", Start: at, End: at.Add(time.Millisecond), Attrs: a}
	}
	// An exposed gateway calling orders, which reads a sensitive table.
	sendSpansTo(t, srv, []telemetry.Span{
		span("gateway", telemetry.SpanKindServer, 1, 0, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/orders/{id}", URLPath: "/orders/7"}),
		span("gateway", telemetry.SpanKindClient, 2, 1, telemetry.Attrs{ServerAddress: "orders"}),
		span("orders", telemetry.SpanKindServer, 3, 2, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/o/{id}"}),
		span("orders", telemetry.SpanKindClient, 4, 3, telemetry.Attrs{DBSystem: "postgresql", DBNamespace: "shop", DBCollection: "customers"}),
	})
	shutdown(t, srv)

	srv = startTestServerConfig(t, data, cfg, fl)
	defer shutdown(t, srv)
	var body struct {
		Alerts []struct{ Kind string }
	}
	getJSON(t, srv.apiURL()+"/api/v1/alerts", &body)
	var kinds []string
	for _, a := range body.Alerts {
		kinds = append(kinds, a.Kind)
	}
	if !slices.Contains(kinds, string(detect.KindSensitivePath)) {
		t.Errorf("alerts after the restart: %v, want the %s raised while draining", kinds, detect.KindSensitivePath)
	}
}

// TestServeStatesVulnDB checks that the API's report and SARIF export say
// whether serve read a KEV catalog, as analyze's do.
func TestServeStatesVulnDB(t *testing.T) {
	kev := filepath.Join("..", "dbupdate", "testdata", "kev.json")
	tests := []struct {
		name   string
		kev    string
		loaded bool
	}{
		{"without a catalog", "", false},
		{"with --kev", kev, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startTestServer(t, t.TempDir(), serveFlags{vulns: []string{filepath.Join("testdata", "serve", "osv")}, kev: tt.kev})
			defer shutdown(t, srv)
			type kevData struct {
				Loaded  bool   `json:"loaded"`
				Version string `json:"version"`
			}
			var report struct {
				VulnDB struct{ KEV kevData } `json:"vulndb"`
			}
			getJSON(t, srv.apiURL()+"/api/v1/report", &report)
			var sarif struct {
				Runs []struct {
					Properties map[string]struct{ KEV kevData } `json:"properties"`
				} `json:"runs"`
			}
			getJSON(t, srv.apiURL()+"/api/v1/export/sarif", &sarif)
			want := kevData{Loaded: tt.loaded}
			if tt.loaded {
				want.Version = "2024.12.10"
			}
			if got := report.VulnDB.KEV; got != want {
				t.Errorf("report vulndb.kev = %+v, want %+v", got, want)
			}
			if got := sarif.Runs[0].Properties["evident/vulndb"].KEV; got != want {
				t.Errorf("SARIF evident/vulndb kev = %+v, want %+v", got, want)
			}
		})
	}
}

// TestServeHostScope: serve's virtual patches took waf.DefaultConfig, so
// what waf generate --host-scope does could not be had from serve;
// serve.waf.host_scope sets it, off by default as in generate.
func TestServeHostScope(t *testing.T) {
	tests := []struct {
		name      string
		hostScope bool
		want      []string
	}{
		{"default", false, nil},
		{"host_scope", true, []string{"admin.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := serveTestConfig(t)
			cfg.Serve.WAF.HostScope = tt.hostScope
			srv := startTestServerConfig(t, t.TempDir(), cfg, serveFlags{
				vulns:    []string{filepath.Join("testdata", "serve", "osv")},
				findings: []string{"checkout=" + filepath.Join("testdata", "serve", "checkout.govulncheck.json")},
			})
			defer shutdown(t, srv)
			now := time.Now()
			span := func(service, host string, id byte) telemetry.Span {
				return telemetry.Span{Service: service, TraceID: [16]byte{id}, SpanID: [8]byte{id}, Kind: telemetry.SpanKindServer, Name: "GET /search",
					Start: now, End: now.Add(time.Millisecond),
					Attrs: telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/search", URLPath: "/search", ServerAddress: host, ClientAddress: "198.51.100.7", StatusCode: 200}}
			}
			sendSpansTo(t, srv, []telemetry.Span{span("checkout", "shop.example", 1), span("admin", "admin.example", 2)})
			postProfile(t, srv.pyro.Addr())
			var set struct {
				Patches []struct {
					Service     string   `json:"service"`
					ExceptHosts []string `json:"except_hosts"`
				} `json:"patches"`
			}
			waitFor(t, "a patch of checkout", func() bool {
				getJSON(t, srv.apiURL()+"/api/v1/waf/patches", &set)
				return len(set.Patches) > 0
			})
			if got := set.Patches[0]; got.Service != "checkout" || !slices.Equal(got.ExceptHosts, tt.want) {
				t.Errorf("patch of %s leaves out the hosts %q, want %q", got.Service, got.ExceptHosts, tt.want)
			}
		})
	}
}
