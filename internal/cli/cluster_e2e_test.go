package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/evidentsec/evident/internal/source"
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
	pull, err := sf.newPull(func(string) string { return "" })
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
}

func startScaledOut(t *testing.T) *scaledOut {
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
	d := &scaledOut{}
	// The API first: it stores the findings the engines load.
	d.api = start(roleAPI, serveFlags{vulns: []string{filepath.Join(rd, "osv")}, findings: []string{filepath.Join(rd, "findings")}})
	for range 2 {
		d.engines = append(d.engines, start(roleEngine, serveFlags{vulns: []string{filepath.Join(rd, "osv")}}))
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
