package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/evidentsec/evident/internal/source/sourcetest"
	"github.com/evidentsec/evident/internal/tlsconfig/tlstest"
)

// requireAuth refuses requests without the basic auth and tenant the
// test sets, counting the requests that had them.
func requireAuth(user, password, org string, n *atomic.Int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != password || r.Header.Get("X-Scope-OrgID") != org {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		n.Add(1)
		next.ServeHTTP(w, r)
	})
}

// TestAnalyzeShopFromSources is issue 12's acceptance: the example's
// recorded telemetry served by Tempo's and Pyroscope's query APIs gives
// exactly the report analyze gives from the files.
func TestAnalyzeShopFromSources(t *testing.T) {
	rec, err := sourcetest.LoadRecording(filepath.Join(shop, "recorded"))
	if err != nil {
		t.Fatal(err)
	}
	pyro, tempo, err := rec.Servers()
	if err != nil {
		t.Fatal(err)
	}
	// A service with allocation profiles only: Pyroscope lists it, with
	// no CPU samples. Nothing of it is skipped: the line says so, the
	// exit status does not.
	var allocs bytes.Buffer
	if err := pprof.Lookup("allocs").WriteTo(&allocs, 0); err != nil {
		t.Fatal(err)
	}
	if err := pyro.AddAt("allocs", allocs.Bytes(), time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	// Servers that take shorter windows than the hour asked for: the
	// hour is read in parts, and the report is the same.
	pyro.MaxQueryLength, tempo.MaxDuration = 15*time.Minute, 30*time.Minute
	var tempoReqs, pyroReqs atomic.Int64
	ts := httptest.NewServer(requireAuth("1234", "tempo-token", "shop", &tempoReqs, tempo.Handler()))
	defer ts.Close()
	mux := http.NewServeMux()
	mux.Handle(pyro.Handler())
	ps := httptest.NewServer(requireAuth("5678", "pyro-token", "shop", &pyroReqs, mux))
	defer ps.Close()
	t.Setenv("EVIDENT_TEMPO_USER", "1234")
	t.Setenv("EVIDENT_TEMPO_PASSWORD", "tempo-token")
	t.Setenv("EVIDENT_TEMPO_ORG_ID", "shop")
	t.Setenv("EVIDENT_PYROSCOPE_USER", "5678")
	t.Setenv("EVIDENT_PYROSCOPE_PASSWORD", "pyro-token")
	t.Setenv("EVIDENT_PYROSCOPE_ORG_ID", "shop")

	want := analyzeShop(t, "json")

	recDir := filepath.Join(shop, "recorded")
	var out, errOut bytes.Buffer
	g := &globals{stdout: &out, stderr: &errOut, dataDir: t.TempDir()}
	err = runAnalyze(context.Background(), g, analyzeFlags{
		vulns:      []string{filepath.Join(recDir, "osv")},
		findings:   []string{filepath.Join(recDir, "findings")},
		sources:    sourceFlags{tempo: ts.URL, pyroscope: ps.URL, from: "2026-11-24T10:00:00Z", to: "2026-11-24T11:00:00Z"},
		config:     filepath.Join(shop, "evident.yaml"),
		format:     "json",
		sourceRoot: shop,
		now:        func() time.Time { return time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatalf("analyze: %v\n%s", err, errOut.String())
	}
	// Only the provenance of the profiles differs, a file or a query, and
	// their times: a merged profile says only that its samples are from
	// the window asked for.
	got := regexp.MustCompile(`"source": "pyroscope \{service_name=\\"(\w+)\\"\}"`).ReplaceAllString(out.String(), `"source": "../../examples/shop/recorded/profiles/$1/cpu.pb.gz"`)
	times := regexp.MustCompile(`"(start|end|first_seen|last_seen|series_end)": "[^"]*"|"window_seconds": [0-9.]+|CPU over [0-9hms.]+`)
	got, wantText := times.ReplaceAllString(got, "time"), times.ReplaceAllString(string(want), "time")
	if diff := cmp.Diff(wantText, got); diff != "" {
		t.Errorf("report from the sources differs from the report from files (-files +sources):\n%s", diff)
	}
	// The line says what the window held, besides what was asked for.
	held := regexp.MustCompile(`read 2026-11-24T10:00:00Z to 2026-11-24T11:00:00Z from the sources: \d+ requests, \d+ bytes \(Tempo in 2 parts of 30m0s, Pyroscope in 4 parts of 15m0s: the window is longer than it takes in one query\); traces 2026-11-24T10:4\d:\d\dZ to 2026-11-24T10:4\d:\d\dZ, profiles 2026-11-24T10:\d\d:\d\dZ to 2026-11-24T1\d:\d\d:\d\dZ\n`)
	noCPU := "evident: pyroscope: service allocs: no CPU samples in the window (process_cpu:cpu:nanoseconds:cpu:nanoseconds)\n"
	if got := errOut.String(); !held.MatchString(got) || !strings.Contains(got, noCPU) || strings.Contains(got, "skipped") || strings.Contains(got, "token") {
		t.Errorf("stderr:\n%s", got)
	}
	if tempoReqs.Load() == 0 || pyroReqs.Load() == 0 {
		t.Errorf("authorized requests: tempo %d, pyroscope %d", tempoReqs.Load(), pyroReqs.Load())
	}
}

// TestServeFromSources is issue 12's serve acceptance: with no receiver
// at all, serve polls the example's Tempo and Pyroscope and its verdicts
// become the ones analyze gives from the files; the sources' health is
// in /metrics.
func TestServeFromSources(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec, err := sourcetest.LoadRecording(filepath.Join(shop, "recorded"))
	if err != nil {
		t.Fatal(err)
	}
	pyro, tempo, err := rec.Servers()
	if err != nil {
		t.Fatal(err)
	}
	// Closed before goleak looks, which t.Cleanup would be too late for.
	ts := httptest.NewServer(tempo.Handler())
	defer ts.Close()
	mux := http.NewServeMux()
	mux.Handle(pyro.Handler())
	ps := httptest.NewServer(mux)
	defer ps.Close()

	cfg := serveTestConfig(t)
	cfg.Serve.OTLP.GRPCEndpoint, cfg.Serve.OTLP.HTTPEndpoint, cfg.Serve.Pyroscope.Endpoint = "", "", ""
	cfg.Serve.Sources.Tempo, cfg.Serve.Sources.Pyroscope = ts.URL, ps.URL
	// The recording is from the past: one window reaches back to it.
	cfg.Serve.Sources.Lookback = 10 * 365 * 24 * time.Hour
	cfg.Serve.Sources.MaxWindow = cfg.Serve.Sources.Lookback
	rd := filepath.Join(shop, "recorded")
	g := &globals{stdout: io.Discard, stderr: io.Discard, dataDir: t.TempDir()}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := startServer(t.Context(), g, cfg, serveFlags{vulns: []string{filepath.Join(rd, "osv")}, findings: []string{filepath.Join(rd, "findings")}}, log)
	if err != nil {
		t.Fatal(err)
	}
	api := srv.apiURL()
	waitFor(t, "GO-2026-5970 executed in reporter", func() bool {
		var body struct {
			Findings []struct {
				Vulnerability struct{ ID string }
				Service       string
				Reachability  struct{ Verdict string }
			}
		}
		getJSON(t, api+"/api/v1/findings?service=reporter", &body)
		for _, f := range body.Findings {
			if f.Vulnerability.ID == "GO-2026-5970" && f.Reachability.Verdict == "executed" {
				return true
			}
		}
		return false
	})
	resp, err := http.Get(api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(metrics, []byte("evident_source_up{")) || !bytes.Contains(metrics, []byte("evident_source_watermark_timestamp_seconds{")) {
		t.Errorf("/metrics has no source health:\n%.800s", metrics)
	}
	var ready struct {
		Checks map[string]string `json:"checks"`
	}
	getJSON(t, api+"/readyz", &ready)
	if ready.Checks["sources"] != "ok" {
		t.Errorf("/readyz checks = %v, want sources ok", ready.Checks)
	}
	shutdown(t, srv)
}

// TestServeSourcesTenant polls the shop's recording into the tenant the
// sources name: that tenant has the shop's services, the default tenant
// none.
func TestServeSourcesTenant(t *testing.T) {
	tempoURL, pyroURL := shopSources(t)
	cfg := serveTestConfig(t)
	cfg.Serve.OTLP.GRPCEndpoint, cfg.Serve.OTLP.HTTPEndpoint, cfg.Serve.Pyroscope.Endpoint = "", "", ""
	src := &cfg.Serve.Sources
	src.Tempo, src.Pyroscope, src.Tenant = tempoURL, pyroURL, "team-a"
	src.Lookback = 10 * 365 * 24 * time.Hour
	src.MaxWindow = src.Lookback
	srv := startTestServerConfig(t, t.TempDir(), cfg, serveFlags{vulns: []string{filepath.Join(shop, "recorded", "osv")}})
	defer shutdown(t, srv)
	services := func(tenant string) []string {
		code, body := getAs(t, srv.apiURL()+"/api/v1/services", "", tenant)
		var list struct{ Services []struct{ Name string } }
		if err := json.Unmarshal([]byte(body), &list); code != http.StatusOK || err != nil {
			t.Fatalf("GET /api/v1/services as %q: %d %v", tenant, code, err)
		}
		var names []string
		for _, s := range list.Services {
			names = append(names, s.Name)
		}
		return names
	}
	waitFor(t, "the shop's services in tenant team-a", func() bool { return slices.Contains(services("team-a"), "gateway") })
	if got := services(""); len(got) != 0 {
		t.Errorf("the default tenant has services %v, want none: the sources name team-a", got)
	}
}

// TestAnalyzeSourceUsage checks the source flags' usage errors, before
// any request.
func TestAnalyzeSourceUsage(t *testing.T) {
	findingsDir := filepath.Join(shop, "recorded", "findings")
	vulns := filepath.Join(shop, "recorded", "osv")
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"service without a source", []string{"--service", "gateway"}, nil, "name a source"},
		{"since without a source", []string{"--since", "1h"}, nil, "evident: --since selects what --tempo and --pyroscope read: name a source\n"},
		{"window without a source", []string{"--since", "1h", "--to", "2026-12-01T00:00:00Z", "--service", "gateway"}, nil,
			"evident: --service, --since and --to select what --tempo and --pyroscope read: name a source\n"},
		{"since and from", []string{"--tempo", "http://127.0.0.1:1", "--since", "1h", "--from", "2026-01-01T00:00:00Z"}, nil,
			"evident: --since and --from both set the start of the window: give one of them\n"},
		{"negative since", []string{"--tempo", "http://127.0.0.1:1", "--since", "-1h"}, nil, "evident: --since -1h0m0s: want a positive duration\n"},
		{"negative trace budget", []string{"--tempo", "http://127.0.0.1:1", "--trace-budget", "-5"}, nil, "evident: --trace-budget -5: want a positive number of traces\n"},
		{"no traces per endpoint", []string{"--tempo", "http://127.0.0.1:1", "--traces-per-endpoint", "0"}, nil, "evident: --traces-per-endpoint 0: want a positive number of traces\n"},
		{"no source timeout", []string{"--tempo", "http://127.0.0.1:1", "--source-timeout", "0s"}, nil, "evident: --source-timeout 0s: want a positive duration\n"},
		{"source timeout without a source", []string{"--source-timeout", "5m"}, nil,
			"evident: --source-timeout bounds the requests to --tempo and --pyroscope: name a source\n"},
		{"trace budget without Tempo", []string{"--pyroscope", "http://127.0.0.1:1", "--trace-budget", "10"}, nil,
			"evident: --trace-budget bounds what --tempo reads: name a Tempo with --tempo\n"},
		{"every problem at once", []string{"--since", "1h", "--from", "2026-01-01T00:00:00Z", "--trace-budget", "-5"}, nil,
			"evident: --trace-budget -5: want a positive number of traces\n" +
				"--since and --from both set the start of the window: give one of them\n" +
				"--since and --from select what --tempo and --pyroscope read: name a source\n"},
		{"bad --from", []string{"--tempo", "http://127.0.0.1:1", "--from", "yesterday"}, nil, "--from \"yesterday\": want RFC 3339"},
		{"empty window", []string{"--tempo", "http://127.0.0.1:1", "--from", "2026-12-02T00:00:00Z", "--to", "2026-12-01T00:00:00Z"}, nil, "the start must be before the end"},
		{"credentials in the URL", []string{"--pyroscope", "https://1234:glc_secret@profiles.example.com"}, nil, "want no credentials in the URL"},
		{"query in the URL", []string{"--tempo", "https://tempo.example.com/tempo?token=glc_secret"}, nil,
			`evident: --tempo: tempo source: URL "https://tempo.example.com/tempo": want no query or fragment`},
		{"fragment in the URL", []string{"--pyroscope", "https://profiles.example.com/#glc_secret"}, nil, "want no query or fragment"},
		{"password without user", []string{"--tempo", "http://127.0.0.1:1"}, map[string]string{"EVIDENT_TEMPO_PASSWORD": "glc_secret"}, "a password without a user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := append([]string{"--data", t.TempDir(), "analyze", "--vulns", vulns, "--findings", findingsDir}, tt.args...)
			code, _, stderr := run(t, args...)
			if code != ExitUsage || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q: want %d and %q", code, stderr, ExitUsage, tt.wantErr)
			}
			if strings.Contains(stderr, "glc_secret") {
				t.Errorf("stderr shows the secret: %s", stderr)
			}
		})
	}
}

// shopSources serves the example shop's recording through Tempo's and
// Pyroscope's query APIs until the test ends, and returns their URLs.
func shopSources(t *testing.T) (tempoURL, pyroscopeURL string) {
	t.Helper()
	rec, err := sourcetest.LoadRecording(filepath.Join(shop, "recorded"))
	if err != nil {
		t.Fatal(err)
	}
	pyro, tempo, err := rec.Servers()
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(tempo.Handler())
	t.Cleanup(ts.Close)
	mux := http.NewServeMux()
	mux.Handle(pyro.Handler())
	ps := httptest.NewServer(mux)
	t.Cleanup(ps.Close)
	return ts.URL, ps.URL
}

// TestSourceClientCertExpired checks that a source's client certificate
// that has already expired is said at start, by analyze and by serve, as
// every other client's is: every Tempo or Pyroscope that verifies it
// refuses the handshake.
func TestSourceClientCertExpired(t *testing.T) {
	tempoURL, pyroURL := shopSources(t)
	cert, key := tlstest.NewCA(t, "ca").IssueUntil(t, time.Now().Add(-time.Hour), "evident").Write(t, t.TempDir(), "client")
	analyze := func(flag, url string) func(t *testing.T) string {
		return func(t *testing.T) string {
			code, _, stderr := run(t, "--data", t.TempDir(), "analyze", "--vulns", filepath.Join(shop, "recorded", "osv"),
				"--findings", filepath.Join(shop, "recorded", "findings"), flag, url, "--from", "2026-11-24T10:00:00Z", "--to", "2026-11-24T11:00:00Z")
			if code != 0 {
				t.Errorf("analyze exit %d:\n%s", code, stderr)
			}
			return stderr
		}
	}
	tests := []struct {
		name   string
		prefix string
		client string
		run    func(t *testing.T) string
	}{
		{"analyze tempo", "EVIDENT_TEMPO", "tempo source", analyze("--tempo", tempoURL)},
		{"analyze pyroscope", "EVIDENT_PYROSCOPE", "pyroscope source", analyze("--pyroscope", pyroURL)},
		{"serve", "EVIDENT_PYROSCOPE", "pyroscope source", func(t *testing.T) string {
			cfg := serveTestConfig(t)
			cfg.Serve.OTLP.GRPCEndpoint, cfg.Serve.OTLP.HTTPEndpoint, cfg.Serve.Pyroscope.Endpoint = "", "", ""
			cfg.Serve.Sources.Tempo, cfg.Serve.Sources.Pyroscope = tempoURL, pyroURL
			var logged bytes.Buffer
			g := &globals{stdout: io.Discard, stderr: io.Discard, dataDir: t.TempDir()}
			srv, err := startServer(t.Context(), g, cfg, serveFlags{vulns: []string{filepath.Join(shop, "recorded", "osv")}}, slog.New(slog.NewTextHandler(&logged, nil)))
			if err != nil {
				t.Fatal(err)
			}
			shutdown(t, srv)
			return logged.String()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(tt.prefix+"_CERT_FILE", cert)
			t.Setenv(tt.prefix+"_KEY_FILE", key)
			got := tt.run(t)
			want := regexp.MustCompile(`level=WARN msg="tls client certificate has expired: every server that verifies it refuses the handshake" .*client="` + tt.client + `" cert_file=` + regexp.QuoteMeta(cert) + " ")
			if !want.MatchString(got) {
				t.Errorf("logged:\n%s\nwant a line with %s", got, want)
			}
		})
	}
}

// TestPollerName checks the key of the sources' watermark, progress and
// lock: another tenant of Tempo or Pyroscope (EVIDENT_*_ORG_ID) is
// another key, so that its lookback is read and another deployment with
// other org ids polls too; without org ids the key is the one kept
// before they were part of it, so that nothing is read again.
func TestPollerName(t *testing.T) {
	const tempo, pyro = "https://tempo.example.com", "https://pyroscope.example.com"
	src := sourcesConfig{Tempo: tempo, Pyroscope: pyro}
	for _, tc := range []struct {
		name string
		src  sourcesConfig
		env  map[string]string
		want string
	}{
		{"no org ids", src, nil, "tempo=" + tempo + " pyroscope=" + pyro},
		{"services and tenant", sourcesConfig{Tempo: tempo, Services: []string{"a", "b"}, Tenant: "team-a"}, nil, "tempo=" + tempo + " pyroscope= services=a,b tenant=team-a"},
		{"tempo org", src, map[string]string{"EVIDENT_TEMPO_ORG_ID": "acme"}, "tempo=" + tempo + " pyroscope=" + pyro + " tempo_org=acme"},
		{"both orgs", src, map[string]string{"EVIDENT_TEMPO_ORG_ID": "acme", "EVIDENT_PYROSCOPE_ORG_ID": "acme-prof"}, "tempo=" + tempo + " pyroscope=" + pyro + " tempo_org=acme pyroscope_org=acme-prof"},
		{"org of a source not polled", sourcesConfig{Tempo: tempo}, map[string]string{"EVIDENT_PYROSCOPE_ORG_ID": "acme"}, "tempo=" + tempo + " pyroscope="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pull, err := tc.src.flags().newPull(func(k string) string { return tc.env[k] }, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := pollerName(tc.src, pull); got != tc.want {
				t.Errorf("pollerName = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSourceTimeout checks --source-timeout: a Tempo slower than it is
// given up on as too slow, and one within it is read, so that a slow
// store (a merge of a long window) can be allowed more than the 30 s
// default.
func TestSourceTimeout(t *testing.T) {
	tempoURL, _ := shopSources(t)
	target, err := url.Parse(tempoURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	for _, tc := range []struct {
		name    string
		timeout string
		wantErr string // "" for a read
	}{
		{"slower than the timeout", "100ms", "server too slow"},
		{"within the timeout", "5s", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The first answer alone is slow: the rest of the window is
			// read at once.
			var first atomic.Bool
			slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if first.CompareAndSwap(false, true) {
					select {
					case <-time.After(300 * time.Millisecond):
					case <-r.Context().Done():
						return
					}
				}
				proxy.ServeHTTP(w, r)
			}))
			defer slow.Close()
			code, _, stderr := run(t, "--data", t.TempDir(), "analyze", "--vulns", filepath.Join(shop, "recorded", "osv"),
				"--findings", filepath.Join(shop, "recorded", "findings"), "--tempo", slow.URL, "--from", "2020-01-01T00:00:00Z",
				"--service", "gateway", "--source-timeout", tc.timeout)
			switch {
			case tc.wantErr != "" && !strings.Contains(stderr, tc.wantErr):
				t.Errorf("exit %d, stderr %q: want %q", code, stderr, tc.wantErr)
			case tc.wantErr == "" && !strings.Contains(stderr, "from the sources"):
				t.Errorf("exit %d, stderr %q: want the window read", code, stderr)
			}
		})
	}
}

// TestAnalyzeItemFailingAlone checks that a trace or a service's profile
// whose request fails while its source answers the rest does not fail
// analyze: the item is named on stderr as skipped, the report is made of
// the rest, and the exit status is 3 (some inputs skipped), as for any
// skipped input.
func TestAnalyzeItemFailingAlone(t *testing.T) {
	tempoURL, pyroscopeURL := shopSources(t)
	for _, tc := range []struct {
		name, which string
		status      int
		wantItem    string
	}{
		{"a trace answered 400", "/api/v2/traces/", http.StatusBadRequest, "tempo trace "},
		{"a trace that times out", "/api/v2/traces/", http.StatusGatewayTimeout, "tempo trace "},
		{"a profile's merge failing", "SelectMergeStacktraces", http.StatusServiceUnavailable, "pyroscope: service "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The first request of a path holding which fails, and
			// every other request of that path and body.
			var item atomic.Value
			failing := func(target string) string {
				u, err := url.Parse(target)
				if err != nil {
					t.Fatal(err)
				}
				proxy := httputil.NewSingleHostReverseProxy(u)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if strings.Contains(r.URL.Path, tc.which) {
						body, _ := io.ReadAll(r.Body)
						r.Body = io.NopCloser(bytes.NewReader(body))
						key := r.URL.Path + string(body)
						item.CompareAndSwap(nil, key)
						if item.Load() == key {
							http.Error(w, "failing", tc.status)
							return
						}
					}
					proxy.ServeHTTP(w, r)
				}))
				t.Cleanup(srv.Close)
				return srv.URL
			}
			code, stdout, stderr := run(t, "--data", t.TempDir(), "analyze", "--vulns", filepath.Join(shop, "recorded", "osv"),
				"--findings", filepath.Join(shop, "recorded", "findings"), "--config", filepath.Join(shop, "evident.yaml"),
				"--tempo", failing(tempoURL), "--pyroscope", failing(pyroscopeURL),
				"--from", "2026-11-24T10:00:00Z", "--to", "2026-11-24T11:00:00Z", "--format", "json")
			if code != ExitSkipped {
				t.Errorf("exit %d, want %d (skipped)\nstderr:\n%s", code, ExitSkipped, stderr)
			}
			if !strings.Contains(stderr, "evident: skipped "+tc.wantItem) || !strings.Contains(stderr, "failing") {
				t.Errorf("stderr does not name the item failed (%q) and its error:\n%s", tc.wantItem, stderr)
			}
			// The findings come from --findings whatever the sources
			// answered: an executed one shows the rest of the traces
			// and profiles were read.
			type finding struct {
				Reachability struct {
					Verdict string `json:"verdict"`
				} `json:"reachability"`
			}
			var report struct {
				Findings []finding `json:"findings"`
			}
			executed := func(f finding) bool { return f.Reachability.Verdict == "executed" }
			if err := json.Unmarshal([]byte(stdout), &report); err != nil || !slices.ContainsFunc(report.Findings, executed) {
				t.Errorf("no executed finding: the rest of the telemetry was not read (%v):\n%.300s", err, stdout)
			}
		})
	}
}

// TestAnalyzeServiceWithTracesFiles checks analyze --service with
// --traces files that hold the other services' spans: the traces of the
// selected service read from Tempo hold spans of those services too,
// which are not counted again: their stores' calls are the files'.
func TestAnalyzeServiceWithTracesFiles(t *testing.T) {
	tempoURL, _ := shopSources(t)
	recorded := filepath.Join(shop, "recorded", "traces.jsonl")
	// The recording without gateway's spans, which Tempo gives.
	data, err := os.ReadFile(recorded)
	if err != nil {
		t.Fatal(err)
	}
	var others bytes.Buffer
	for line := range bytes.Lines(data) {
		var doc struct {
			ResourceSpans []json.RawMessage `json:"resourceSpans"`
		}
		if err := json.Unmarshal(line, &doc); err != nil {
			t.Fatal(err)
		}
		doc.ResourceSpans = slices.DeleteFunc(doc.ResourceSpans, func(rs json.RawMessage) bool {
			return bytes.Contains(rs, []byte(`{"key":"service.name","value":{"stringValue":"gateway"}}`))
		})
		if len(doc.ResourceSpans) > 0 {
			out, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			others.Write(append(out, '\n'))
		}
	}
	othersFile := filepath.Join(t.TempDir(), "others.jsonl")
	if err := os.WriteFile(othersFile, others.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	type report struct {
		Services []struct {
			Name   string `json:"name"`
			Stores []struct {
				Name  string `json:"name"`
				Calls int64  `json:"calls"`
			} `json:"stores"`
		} `json:"services"`
	}
	stores := func(args ...string) map[string]int64 {
		t.Helper()
		code, stdout, stderr := run(t, append([]string{"--data", t.TempDir(), "analyze", "--vulns", filepath.Join(shop, "recorded", "osv"),
			"--findings", filepath.Join(shop, "recorded", "findings"), "--format", "json"}, args...)...)
		if code != ExitOK {
			t.Fatalf("analyze %v: exit %d\n%s", args, code, stderr)
		}
		var r report
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, s := range r.Services {
			for _, st := range s.Stores {
				out[s.Name+" "+st.Name] = st.Calls
			}
		}
		return out
	}
	want := stores("--traces", recorded)
	got := stores("--traces", othersFile, "--tempo", tempoURL, "--service", "gateway", "--from", "2026-11-24T10:00:00Z", "--to", "2026-11-24T11:00:00Z")
	if len(want) == 0 {
		t.Fatal("the recording's services call no store")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stores' calls (-the files +the files without gateway's spans and Tempo's gateway):\n%s", diff)
	}
}
