package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/evidentsec/evident/internal/source"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/postgres"
	"github.com/evidentsec/evident/internal/telemetry"
)

// shopFindings maps every finding at api to what the report says of it:
// its verdict, its exposure and its blast radius.
func shopFindings(t *testing.T, api string) map[string]string {
	t.Helper()
	var body struct {
		Findings []struct {
			Service       string
			Vulnerability struct{ ID string }
			Package       struct{ PURL string }
			Reachability  struct{ Verdict string }
			Exposure      json.RawMessage `json:"exposure"`
			BlastRadius   json.RawMessage `json:"blast_radius"`
		}
	}
	getJSON(t, api+"/api/v1/findings?limit=10000", &body)
	out := map[string]string{}
	for _, f := range body.Findings {
		out[fmt.Sprintf("%s %s %s", f.Service, f.Vulnerability.ID, f.Package.PURL)] = fmt.Sprintf("%s exposure=%s blast_radius=%s", f.Reachability.Verdict, f.Exposure, f.BlastRadius)
	}
	return out
}

// recordedBatches pulls the shop's recording as serve's sources read it:
// the span batches, then the profile batches.
func recordedBatches(t *testing.T) ([][]telemetry.Span, []*telemetry.ProfileBatch) {
	t.Helper()
	tempoURL, pyroURL := shopSources(t)
	sf := sourceFlags{tempo: tempoURL, pyroscope: pyroURL}
	pull, err := sf.newPull(func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	var h batches
	now := time.Now()
	if err := pull.Run(t.Context(), source.Window{From: now.Add(-10 * 365 * 24 * time.Hour), To: now}, &h, func(error) {}); err != nil {
		t.Fatal(err)
	}
	if len(h.spans) == 0 || len(h.profiles) == 0 {
		t.Fatalf("the recording gave %d span batches and %d profiles", len(h.spans), len(h.profiles))
	}
	return h.spans, h.profiles
}

type batches struct {
	spans    [][]telemetry.Span
	profiles []*telemetry.ProfileBatch
}

func (b *batches) Spans(s []telemetry.Span) error {
	b.spans = append(b.spans, slices.Clone(s))
	return nil
}

func (b *batches) Profile(p *telemetry.ProfileBatch) error {
	b.profiles = append(b.profiles, p)
	return nil
}

// scaledOut is a deployment of the scaled-out serve in the test: Kafka
// (kfake), PostgreSQL, an API replica, two engines and two receivers.
type scaledOut struct {
	api                *server
	engines, receivers []*server
	kafka              *kfake.Cluster
	// start starts another replica of role in the deployment.
	start func(role string, fl serveFlags) *server
}

func startScaledOut(t *testing.T) *scaledOut {
	t.Helper()
	return startScaledOutConfig(t, nil)
}

// startScaledOutConfig starts a scaled-out deployment whose receivers
// have the configuration edit makes of theirs.
func startScaledOutConfig(t *testing.T, edit func(*fileConfig)) *scaledOut {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "evident-ingest"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	pg := postgresStore(t)
	base, err := loadConfig(filepath.Join(shop, "evident.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	test := serveTestConfig(t)
	base.Serve.API, base.Serve.Engine.AssessInterval, base.Serve.ShutdownTimeout = test.Serve.API, test.Serve.Engine.AssessInterval, test.Serve.ShutdownTimeout
	base.Serve.OTLP.GRPCEndpoint, base.Serve.OTLP.HTTPEndpoint, base.Serve.Pyroscope.Endpoint = "", "127.0.0.1:0", ""
	base.Serve.Sources.Tempo, base.Serve.Sources.Pyroscope = "", ""
	base.Serve.Store = pg
	k := &base.Cluster.Kafka
	k.Brokers, k.ReplicationFactor, k.Partitions, k.ApplyBackoff = kc.ListenAddrs(), 1, 4, 100*time.Millisecond
	base.Cluster.CheckpointInterval, base.Cluster.ViewInterval, base.Cluster.FindingsInterval = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond

	rd := filepath.Join(shop, "recorded")
	start := func(role string, fl serveFlags) *server {
		fl.role = role
		g := &globals{stdout: io.Discard, stderr: io.Discard, dataDir: t.TempDir()}
		log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})).With("role", role)
		srv, err := startServer(t.Context(), g, base, fl, log)
		if err != nil {
			t.Fatalf("start %s: %v", role, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 10*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
		})
		return srv
	}
	d := &scaledOut{start: start, kafka: kc}
	// The API first: it stores the findings the engines load.
	d.api = start(roleAPI, serveFlags{vulns: []string{filepath.Join(rd, "osv")}, findings: []string{filepath.Join(rd, "findings")}})
	for range 2 {
		d.engines = append(d.engines, start(roleEngine, serveFlags{vulns: []string{filepath.Join(rd, "osv")}}))
	}
	if edit != nil {
		edit(&base)
	}
	for range 2 {
		d.receivers = append(d.receivers, start(roleReceiver, serveFlags{}))
	}
	return d
}

// sendSpansTo sends a batch to a receiver over OTLP/HTTP, or, for spans
// OTLP cannot carry as they are, to the consumer its listener feeds.
func sendSpansTo(t *testing.T, r *server, spans []telemetry.Span) {
	t.Helper()
	body, err := telemetry.AppendTraceRequest(nil, spans)
	if err != nil {
		if err := tracesOf(r.tenants).Consume(t.Context(), spans); err != nil {
			t.Fatal(err)
		}
		return
	}
	resp, err := http.Post("http://"+r.otlp.HTTPAddr()+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/traces to a receiver: %s", resp.Status)
	}
}

// TestScaledOut replays the shop's recording through two receivers into
// two engines, and reads it from an API replica: the report equals a
// single serve's, verdicts, exposure and blast radius, also when an
// engine dies in the middle of the replay.
func TestScaledOut(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the shop's recording through a single serve and two scaled-out deployments")
	}
	spans, profiles := recordedBatches(t)
	lite := startShopServer(t)
	shopDecided(t, lite.apiURL())
	want := shopFindings(t, lite.apiURL())
	counts := map[string]int{}
	for _, v := range findingVerdicts(t, lite.apiURL()) {
		counts[v]++
	}
	t.Logf("single serve: %d findings, by verdict %v", len(want), counts)
	for k, v := range want {
		if strings.HasPrefix(k, "gateway ") {
			t.Logf("e.g. %s: %s", k, v)
			break
		}
	}
	shutdown(t, lite)

	for _, kill := range []bool{false, true} {
		t.Run(fmt.Sprintf("engine killed %v", kill), func(t *testing.T) {
			d := startScaledOut(t)
			for i, batch := range spans {
				if kill && i == len(spans)/2 {
					// A checkpoint reached the store: then the engine
					// dies, without a last checkpoint (its store goes
					// first) nor a commit.
					waitWithin(t, time.Minute, "a service in the API's view", func() bool {
						var body struct{ Services []any }
						getJSON(t, d.api.apiURL()+"/api/v1/services", &body)
						return len(body.Services) > 0
					})
					dead := d.engines[0]
					dead.st.Close()
					ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
					dead.Shutdown(ctx)
					cancel()
				}
				sendSpansTo(t, d.receivers[i%2], batch)
			}
			// Profiles after the spans, as serve's sources send them, so
			// that their samples find the spans they name.
			for i, p := range profiles {
				// The consumer the receiver's Pyroscope listener feeds.
				if err := profilesOf(d.receivers[i%2].tenants).Consume(t.Context(), []*telemetry.ProfileBatch{p}); err != nil {
					t.Fatal(err)
				}
			}
			var got map[string]string
			deadline := time.Now().Add(2 * time.Minute)
			for {
				got = shopFindings(t, d.api.apiURL())
				if cmp.Equal(want, got) || time.Now().After(deadline) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("the scaled-out report differs from a single serve's (-single +scaled-out):\n%s", diff)
			}
			// The shop's calls crossed shards: the store joined them.
			_, joins, err := d.api.st.(*postgres.Store).View(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("joined across shards: %+v", joins.Edges)
			if len(joins.Edges) == 0 {
				t.Error("no call was joined across shards")
			}
		})
	}
}

// TestScaledOutSources gives both receivers of a scaled-out deployment the
// same sources: one polls them, the other stands by and takes over when
// the first stops, from where it had read, so that nothing is read twice
// and the verdicts are those of the recording.
func TestScaledOutSources(t *testing.T) {
	if testing.Short() {
		t.Skip("polls the shop's recording into a scaled-out deployment")
	}
	tempoURL, pyroURL := shopSources(t)
	d := startScaledOutConfig(t, func(c *fileConfig) {
		c.Serve.OTLP.HTTPEndpoint = ""
		src := &c.Serve.Sources
		src.Tempo, src.Pyroscope = tempoURL, pyroURL
		src.Interval = 100 * time.Millisecond
		// The recording is from the past: one window reaches back to it.
		src.Lookback = 10 * 365 * 24 * time.Hour
		src.MaxWindow = src.Lookback
	})
	spans, profiles := recordedBatches(t)
	records := float64(len(profiles))
	for _, b := range spans {
		records += float64(len(b))
	}
	// metric is the sum of a metric's series at each receiver.
	metric := func(name string) []float64 {
		var out []float64
		for _, r := range d.receivers {
			resp, err := http.Get(r.apiURL() + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			parser := expfmt.NewTextParser(model.UTF8Validation)
			mfs, err := parser.TextToMetricFamilies(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			var sum float64
			for _, m := range mfs[name].GetMetric() {
				sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
			out = append(out, sum)
		}
		return out
	}
	var lead int
	waitWithin(t, time.Minute, "one receiver polling and the recording read", func() bool {
		polling, read := metric("evident_source_polling"), metric("evident_tenant_ingest_records_total")
		lead = slices.Index(polling, 1)
		return polling[0]+polling[1] == 1 && read[0]+read[1] >= records
	})
	verdicts := shopDecided(t, d.api.apiURL())
	if read := metric("evident_tenant_ingest_records_total"); read[0]+read[1] != records || read[1-lead] != 0 {
		t.Errorf("the receivers took %v records, want the recording's %v once, by receiver %d", read, records, lead)
	}
	counts := map[string]int{}
	for _, v := range verdicts {
		counts[v]++
	}
	t.Logf("polled by receiver %d: %d findings, by verdict %v", lead, len(verdicts), counts)

	// The receiver that polls stops; the other takes over, from the
	// watermark: it reads nothing again.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	d.receivers[lead].Shutdown(ctx)
	cancel()
	d.receivers = slices.Delete(d.receivers, lead, lead+1)
	waitWithin(t, time.Minute, "the other receiver polling", func() bool { return metric("evident_source_polling")[0] == 1 })
	time.Sleep(500 * time.Millisecond)
	if read := metric("evident_tenant_ingest_records_total")[0]; read != 0 {
		t.Errorf("the receiver that took over read %v records again", read)
	}
	if diff := cmp.Diff(verdicts, shopDecided(t, d.api.apiURL())); diff != "" {
		t.Errorf("the verdicts changed when the other receiver took over (-before +after):\n%s", diff)
	}
}

// TestScaledOutAPIReadsCreateNothing: API replicas serve the state of
// the shared PostgreSQL store and create no tenant for a read either.
// One replica takes stored-team's findings (a write); a second, with
// max_tenants 3, answers reads of four unknown tenants with empty 200s
// and no unit, reads stored-team's findings, which only the store holds
// for it, and still has room for another tenant's upload.
func TestScaledOutAPIReadsCreateNothing(t *testing.T) {
	cfg := serveTestConfig(t)
	cfg.Serve.Store = postgresStore(t)
	cfg.Serve.Tenants.MaxTenants = 3
	cfg.Cluster.ViewInterval = 200 * time.Millisecond
	fl := serveFlags{role: roleAPI, vulns: []string{filepath.Join("testdata", "serve", "osv")}}
	upload := func(api, tenant string) {
		t.Helper()
		uploadCheckout(t, api, tenant, tenant+"-svc")
	}
	first := startTestServerConfig(t, t.TempDir(), cfg, fl)
	defer shutdown(t, first)
	upload(first.apiURL(), "stored-team")

	second := startTestServerConfig(t, t.TempDir(), cfg, fl)
	defer shutdown(t, second)
	api := second.apiURL()
	for _, probe := range []string{"x1", "x2", "x3", "x4"} {
		for _, path := range []string{"/api/v1/findings", "/api/v1/services", "/api/v1/alerts", "/api/v1/summary", "/ui/findings"} {
			status, body := getAs(t, api+path, "", probe)
			if status != http.StatusOK || strings.Contains(body, "stored") {
				t.Errorf("GET %s of unknown tenant %s = %d %.300s, want 200 and nothing of stored-team", path, probe, status, body)
			}
		}
	}
	if _, body := getAs(t, api+"/api/v1/findings", "", "x1"); !strings.Contains(body, `"findings": []`) {
		t.Errorf("findings of unknown tenant x1 = %.300s, want none", body)
	}
	if got := tenantsGauge(t, api); got != "1" {
		t.Errorf("evident_tenants of the second replica after reads of unknown tenants = %s, want 1", got)
	}
	waitFor(t, "stored-team's findings on the second replica", func() bool {
		_, body := getAs(t, api+"/api/v1/findings", "", "stored-team")
		return strings.Contains(body, "stored-team-svc")
	})
	upload(api, "team-real")
	if _, body := getAs(t, api+"/api/v1/findings", "", "team-real"); !strings.Contains(body, "team-real-svc") || strings.Contains(body, "stored") {
		t.Errorf("team-real's findings = %.300s, want its own only", body)
	}
	if got := tenantsGauge(t, api); got != "3" {
		t.Errorf("evident_tenants of the second replica = %s, want 3 (default, stored-team, team-real)", got)
	}
}

// uploadCheckout uploads testdata/serve's govulncheck report as the
// findings of service in tenant ("" for the default one) to api.
func uploadCheckout(t *testing.T, api, tenant, service string) {
	t.Helper()
	report, err := os.ReadFile(filepath.Join("testdata", "serve", "checkout.govulncheck.json"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", api+"/api/v1/findings?service="+service, bytes.NewReader(report))
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload of %s's findings of %s = %d, want 200", tenant, service, resp.StatusCode)
	}
}

// TestScaledOutAPIsShareUploads: findings uploaded through one API
// replica reach every other within a few view intervals, for the tenants
// the other already holds in memory too: the default tenant, built at
// its start, and one it read before the upload.
func TestScaledOutAPIsShareUploads(t *testing.T) {
	cfg := serveTestConfig(t)
	cfg.Serve.Store = postgresStore(t)
	cfg.Cluster.ViewInterval = 200 * time.Millisecond
	fl := serveFlags{role: roleAPI, vulns: []string{filepath.Join("testdata", "serve", "osv")}}
	first := startTestServerConfig(t, t.TempDir(), cfg, fl)
	defer shutdown(t, first)
	second := startTestServerConfig(t, t.TempDir(), cfg, fl)
	defer shutdown(t, second)

	services := func(api, tenant string) []string {
		t.Helper()
		status, body := getAs(t, api+"/api/v1/findings?limit=10000", "", tenant)
		var got struct{ Findings []struct{ Service string } }
		if err := json.Unmarshal([]byte(body), &got); status != http.StatusOK || err != nil {
			t.Fatalf("GET findings of tenant %q = %d %.300s (%v)", tenant, status, body, err)
		}
		var svcs []string
		for _, f := range got.Findings {
			svcs = append(svcs, f.Service)
		}
		slices.Sort(svcs)
		return slices.Compact(svcs)
	}
	uploadCheckout(t, first.apiURL(), "team-a", "a1")
	waitFor(t, "team-a's first findings on the second replica", func() bool {
		return slices.Equal(services(second.apiURL(), "team-a"), []string{"a1"})
	})
	// Both tenants are now in the second replica's memory.
	uploadCheckout(t, first.apiURL(), "", "checkout")
	uploadCheckout(t, first.apiURL(), "team-a", "a2")
	waitFor(t, "the uploads through the first replica on the second", func() bool {
		return slices.Equal(services(second.apiURL(), ""), []string{"checkout"}) &&
			slices.Equal(services(second.apiURL(), "team-a"), []string{"a1", "a2"})
	})
	// And the other way round.
	uploadCheckout(t, second.apiURL(), "", "billing")
	waitFor(t, "the upload through the second replica on the first", func() bool {
		return slices.Equal(services(first.apiURL(), ""), []string{"billing", "checkout"})
	})
}

// TestScaledOutPrintsAddrs: what each role prints at start about its API
// listener is there: a receiver and an engine name their probes and
// metrics, not a UI nor an API they do not serve.
func TestScaledOutPrintsAddrs(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "evident-ingest"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	cfg := serveTestConfig(t)
	cfg.Serve.Store = postgresStore(t)
	k := &cfg.Cluster.Kafka
	k.Brokers, k.ReplicationFactor, k.Partitions = kc.ListenAddrs(), 1, 1
	urlRE := regexp.MustCompile(`https?://[^\s,()]+`)
	for _, role := range []string{roleReceiver, roleEngine, roleAPI} {
		t.Run(role, func(t *testing.T) {
			c := cfg
			if role != roleReceiver {
				c.Serve.OTLP.GRPCEndpoint, c.Serve.OTLP.HTTPEndpoint, c.Serve.Pyroscope.Endpoint = "", "", ""
			}
			srv := startTestServerConfig(t, t.TempDir(), c, serveFlags{role: role, vulns: []string{filepath.Join("testdata", "serve", "osv")}})
			defer shutdown(t, srv)
			var out bytes.Buffer
			srv.printAddrs(&out)
			hasUI := strings.Contains(out.String(), "evident serve: UI ")
			if hasUI != (role == roleAPI) {
				t.Errorf("printed:\n%s\nwant a UI line: %v", out.String(), role == roleAPI)
			}
			for _, u := range urlRE.FindAllString(out.String(), -1) {
				if !strings.HasPrefix(u, srv.apiURL()) || strings.HasSuffix(u, "/api/v1") {
					continue // another listener, or the API's base
				}
				resp, err := http.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusNotFound {
					t.Errorf("GET %s, printed at start, = %s:\n%s", u, resp.Status, out.String())
				}
			}
		})
	}
}

// TestScaledOutAPIRestart: an API replica that starts on a deployment
// holding state takes that state as its starting point, as the single
// process takes its checkpoint: when it leads, it records no verdict
// change for what was decided before it started.
func TestScaledOutAPIRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("replays the shop's recording into a scaled-out deployment")
	}
	spans, profiles := recordedBatches(t)
	d := startScaledOut(t)
	for i, batch := range spans {
		sendSpansTo(t, d.receivers[i%2], batch)
	}
	for i, p := range profiles {
		if err := profilesOf(d.receivers[i%2].tenants).Consume(t.Context(), []*telemetry.ProfileBatch{p}); err != nil {
			t.Fatal(err)
		}
	}
	decided := shopDecided(t, d.api.apiURL())
	pg := d.engines[0].st.(*postgres.Store) // the API replica's closes with it
	// history counts the verdict changes recorded of every finding.
	history := func() int {
		n := 0
		for key := range decided {
			f := strings.Fields(key) // service, vulnerability, package
			cs, err := pg.VerdictHistory(t.Context(), f[0], f[1], 0)
			if err != nil {
				t.Fatal(err)
			}
			n += len(cs)
		}
		return n
	}
	// The leader records a verdict change after the view shows it: wait
	// until the newest change of every finding is its verdict, or the
	// shutdown below may cancel the recording and the new replica record
	// it instead.
	waitWithin(t, time.Minute, "every verdict recorded", func() bool {
		for key, verdict := range decided {
			f := strings.Fields(key) // service, vulnerability, package
			cs, err := pg.VerdictHistory(t.Context(), f[0], f[1], 0)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(cs, func(c store.VerdictChange) bool { return c.PURL == f[2] })
			if i < 0 || string(cs[i].To) != verdict {
				return false
			}
		}
		return true
	})
	before := history()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	d.api.Shutdown(ctx)
	cancel()

	rd := filepath.Join(shop, "recorded")
	api := d.start(roleAPI, serveFlags{vulns: []string{filepath.Join(rd, "osv")}})
	waitWithin(t, time.Minute, "the new API replica leading", api.leader.Is)
	if diff := cmp.Diff(decided, shopDecided(t, api.apiURL())); diff != "" {
		t.Errorf("the new API replica's verdicts differ (-before +after):\n%s", diff)
	}
	time.Sleep(time.Second) // several view rebuilds
	if after := history(); after != before {
		t.Errorf("verdict changes recorded: %d before the API replica restarted, %d after; want none more", before, after)
	}
}

// TestScaledOutReadyzKafka: a receiver's /readyz says whether its brokers
// answer, and stays 200 when they do not: the receiver answers
// UNAVAILABLE meanwhile, and writes again once they are back.
func TestScaledOutReadyzKafka(t *testing.T) {
	d := startScaledOut(t)
	var ready struct {
		Checks map[string]string `json:"checks"`
	}
	api := d.receivers[0].apiURL() + "/readyz"
	getJSON(t, api, &ready)
	if ready.Checks["kafka"] != "ok" {
		t.Errorf("/readyz checks with Kafka up = %v, want kafka ok", ready.Checks)
	}
	d.kafka.Close()
	getJSON(t, api, &ready)
	if got := ready.Checks["kafka"]; got == "ok" || !strings.Contains(got, "kafka brokers") {
		t.Errorf("/readyz checks with Kafka down = %v, want kafka naming the brokers", ready.Checks)
	}
	t.Logf("Kafka down: %s", ready.Checks["kafka"])
}
