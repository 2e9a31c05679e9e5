package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/evidentsec/evident/internal/source/sourcetest"
)

// grafanaDir holds the provisionable dashboards (docs/metrics.md).
var grafanaDir = filepath.Join("..", "..", "deploy", "grafana")

// dashboard is what the test reads of a Grafana dashboard.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

// variable is a dashboard's template variable; Query is a string, or an
// object with the query, by Grafana's version.
type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *datasource     `json:"datasource"`
}

type panel struct {
	Title      string      `json:"title"`
	Type       string      `json:"type"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	// Panels are a collapsed row's.
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// loadDashboards reads every dashboard in deploy/grafana/dashboards.
func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(grafanaDir, "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s (%v)", grafanaDir, err)
	}
	out := map[string]dashboard{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = d
	}
	return out
}

// grafanaVars are Grafana's variables in a query: $name, ${name} and
// ${name:format}.
var grafanaVars = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)

// promQL turns a panel's query into PromQL as Grafana sends it: its
// interval variables become a duration and the dashboard's variables a
// regular expression matching every value (they are only used in =~).
func promQL(expr string) string {
	return grafanaVars.ReplaceAllStringFunc(expr, func(v string) string {
		name := strings.Trim(v, "${}")
		name, _, _ = strings.Cut(name, ":")
		if strings.HasPrefix(name, "__") {
			return "5m" // $__rate_interval, $__interval, $__range
		}
		return ".*"
	})
}

// metricNames are the metric names a PromQL query selects, found by
// Prometheus's own parser.
func metricNames(t *testing.T, where, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(promQL(expr))
	if err != nil {
		t.Errorf("%s: query %q does not parse: %v", where, expr, err)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					name = m.Value
				}
			}
			if name == "" {
				t.Errorf("%s: query %q selects no metric by name", where, expr)
			}
			names = append(names, name)
		}
		return nil
	})
	return names
}

// query is a query of a dashboard: PromQL, or a variable's
// label_values(metric, label).
type query struct {
	where, expr string
	// labelValues is set for a label_values query: its metric selector
	// and label.
	labelValues *[2]string
}

// names are the metric names the query selects.
func (q query) names(t *testing.T) []string {
	if q.labelValues != nil {
		return metricNames(t, q.where, q.labelValues[0])
	}
	return metricNames(t, q.where, q.expr)
}

// labelValuesQuery is a variable's label_values(selector, label).
var labelValuesQuery = regexp.MustCompile(`^label_values\((.*),\s*(\w+)\s*\)$`)

// queries are the queries of a dashboard's panels and variables; it
// checks on the way that each uses the datasource variable.
func (d dashboard) queries(t *testing.T) []query {
	t.Helper()
	var out []query
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" || p.Type == "text" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", d.Title, p.Title)
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("%s: panel %q: datasource %+v, want the ${datasource} variable", d.Title, p.Title, p.Datasource)
			}
			for _, tg := range p.Targets {
				if tg.Datasource != nil && tg.Datasource.UID != "${datasource}" {
					t.Errorf("%s: panel %q query %s: datasource %+v, want the ${datasource} variable", d.Title, p.Title, tg.RefID, tg.Datasource)
				}
				out = append(out, query{where: fmt.Sprintf("%s: panel %q query %s", d.Title, p.Title, tg.RefID), expr: tg.Expr})
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		if json.Unmarshal(v.Query, &q) != nil {
			var obj struct {
				Query string `json:"query"`
			}
			json.Unmarshal(v.Query, &obj)
			q = obj.Query
		}
		qq := query{where: fmt.Sprintf("%s: variable %s", d.Title, v.Name), expr: q}
		if m := labelValuesQuery.FindStringSubmatch(q); m != nil {
			qq.labelValues = &[2]string{m[1], m[2]}
		}
		out = append(out, qq)
		if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
			t.Errorf("%s: datasource %+v, want the ${datasource} variable", qq.where, v.Datasource)
		}
	}
	return out
}

// TestDashboards checks the dashboards' form: a datasource variable that
// every panel and variable uses, unique uids, and the provisioning file
// pointing Grafana at them.
func TestDashboards(t *testing.T) {
	uids := map[string]string{}
	for file, d := range loadDashboards(t) {
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: uid %q title %q, want both", file, d.UID, d.Title)
		}
		if other, ok := uids[d.UID]; ok {
			t.Errorf("%s and %s share uid %q", file, other, d.UID)
		}
		uids[d.UID] = file
		i := slices.IndexFunc(d.Templating.List, func(v variable) bool { return v.Name == "datasource" })
		if i < 0 || d.Templating.List[i].Type != "datasource" || string(d.Templating.List[i].Query) != `"prometheus"` {
			t.Errorf("%s: no datasource variable of type prometheus", file)
		}
		if len(d.queries(t)) == 0 {
			t.Errorf("%s: no queries", file)
		}
	}
	raw, err := os.ReadFile(filepath.Join(grafanaDir, "provisioning", "dashboards", "evident.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name    string `yaml:"name"`
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(raw, &prov); err != nil {
		t.Fatal(err)
	}
	if prov.APIVersion != 1 || len(prov.Providers) != 1 || prov.Providers[0].Type != "file" || prov.Providers[0].Options.Path == "" {
		t.Errorf("provisioning: %+v, want one file provider with a path", prov)
	}
}

// TestDashboardMetricsExist is the dashboards' acceptance: every metric
// every panel and variable queries is in the /metrics of a serve that
// ingested the example's recording (serveRecording).
func TestDashboardMetricsExist(t *testing.T) {
	// Cleanups run last first: this one after serve's shutdown.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	api := serveRecording(t)
	exposed := scrapeMetrics(t, api+"/metrics")
	for file, d := range loadDashboards(t) {
		for _, q := range d.queries(t) {
			for _, name := range q.names(t) {
				if !exposed[name] {
					t.Errorf("%s: %s: metric %s is not in evident's /metrics", file, q.where, name)
				}
			}
		}
	}
	if t.Failed() {
		t.Logf("/metrics has: %s", strings.Join(slices.Sorted(maps.Keys(exposed)), " "))
	}
}

// serveRecording runs serve on the example's recording, its traces
// through the OTLP/HTTP receiver, a profile through the Pyroscope
// receiver and its profiles polled from a Pyroscope holding them, until
// its verdicts and alerts are in; it returns the API's URL.
func serveRecording(t *testing.T) string {
	t.Helper()
	rd := filepath.Join(shop, "recorded")
	rec, err := sourcetest.LoadRecording(rd)
	if err != nil {
		t.Fatal(err)
	}
	pyro, _, err := rec.Servers()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(pyro.Handler())
	ps := httptest.NewServer(mux)
	t.Cleanup(ps.Close)

	cfg, err := loadConfig(filepath.Join(shop, "evident.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	base := serveTestConfig(t)
	cfg.Serve.API, cfg.Serve.OTLP, cfg.Serve.Pyroscope, cfg.Serve.Engine, cfg.Serve.ShutdownTimeout =
		base.Serve.API, base.Serve.OTLP, base.Serve.Pyroscope, base.Serve.Engine, base.Serve.ShutdownTimeout
	cfg.Serve.Sources.Pyroscope = ps.URL
	// The recording is from the past: one window reaches back to it.
	cfg.Serve.Sources.Lookback = 10 * 365 * 24 * time.Hour
	cfg.Serve.Sources.MaxWindow = cfg.Serve.Sources.Lookback
	g := &globals{stdout: io.Discard, stderr: io.Discard, dataDir: t.TempDir()}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	// A KEV catalog, without which evident_findings_known_exploited,
	// which a panel shows, is not exported.
	kev := filepath.Join("..", "dbupdate", "testdata", "kev.json")
	srv, err := startServer(t.Context(), g, cfg, serveFlags{vulns: []string{filepath.Join(rd, "osv")}, findings: []string{filepath.Join(rd, "findings")}, kev: kev}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, srv) })
	api := srv.apiURL()

	var m ptrace.ProtoMarshaler
	for i, td := range rec.Traces {
		body, err := m.MarshalTraces(td)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post("http://"+srv.otlp.HTTPAddr()+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST traces %d: %s", i, resp.Status)
		}
	}
	postProfile(t, srv.pyro.Addr())
	waitFor(t, "GO-2026-5970 executed in reporter and an alert", func() bool {
		var fs struct {
			Findings []struct {
				Vulnerability struct{ ID string }
				Reachability  struct{ Verdict string }
			}
		}
		getJSON(t, api+"/api/v1/findings?service=reporter", &fs)
		var as struct{ Alerts []struct{ Kind string } }
		getJSON(t, api+"/api/v1/alerts", &as)
		executed := false
		for _, f := range fs.Findings {
			executed = executed || f.Vulnerability.ID == "GO-2026-5970" && f.Reachability.Verdict == "executed"
		}
		return executed && len(as.Alerts) > 0
	})
	return api
}

// scrapeMetrics returns the names of the series /metrics exposes: each
// family's name, and for histograms and summaries their _bucket, _sum
// and _count series.
func scrapeMetrics(t *testing.T, url string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for name, mf := range scrapeFamilies(t, url) {
		names[name] = true
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name+"_sum"], names[name+"_count"] = true, true
		}
	}
	return names
}

// TestDashboardsInPrometheus loads the dashboards' queries into a real
// Prometheus (Debian's prometheus package; PROMETHEUS names another
// binary) scraping a serve that ingested the example's recording: every
// query evaluates without error and returns data, and every variable
// has values.
func TestDashboardsInPrometheus(t *testing.T) {
	bin := os.Getenv("PROMETHEUS")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("prometheus"); err != nil {
			t.Skip("no prometheus binary on PATH (Debian's prometheus package; .ci/run installs it) and PROMETHEUS unset")
		}
	}
	api := serveRecording(t)
	target := strings.TrimPrefix(api, "http://")
	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, `global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: evident
    static_configs: [{targets: [%q]}]
`, target), 0o644); err != nil {
		t.Fatal(err)
	}
	// Stopped with SIGTERM (its log ends in the test's output if it
	// failed), on a port taken from under it tried again on another.
	procs := &procGroup{logDir: dir}
	t.Cleanup(func() {
		procs.stop()
		logTails(t, dir)
	})
	promDir, promName := filepath.Split(bin)
	promAddr, err := procs.listen(t.Context(), promName, func(addr string) (<-chan struct{}, error) {
		return procs.start(t.Context(), promDir, promName, nil,
			"--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	}, func(taken string) { t.Logf("prometheus: %s was taken before it listened on it; another port", taken) })
	if err != nil {
		t.Fatal(err)
	}
	promQuery := func(q string) (result []json.RawMessage, err error) {
		resp, err := http.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var body struct {
			Status, Error string
			Data          struct{ Result []json.RawMessage }
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return nil, err
		}
		if body.Status != "success" {
			return nil, fmt.Errorf("%s", body.Error)
		}
		return body.Data.Result, nil
	}
	// Enough scrapes for a rate: five, a second apart.
	waitFor(t, "five scrapes of evident", func() bool {
		r, err := promQuery(`count_over_time(up{job="evident"}[1m]) >= 5`)
		return err == nil && len(r) == 1
	})
	for file, d := range loadDashboards(t) {
		for _, q := range d.queries(t) {
			expr := promQL(q.expr)
			if q.labelValues != nil {
				expr = fmt.Sprintf("group by (%s) (%s)", q.labelValues[1], promQL(q.labelValues[0]))
			}
			r, err := promQuery(expr)
			switch {
			case err != nil:
				t.Errorf("%s: %s: %s: %v", file, q.where, expr, err)
			case len(r) == 0:
				t.Errorf("%s: %s: %s returns no data", file, q.where, expr)
			}
		}
	}
}
