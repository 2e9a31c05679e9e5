package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/postgres"
	"github.com/evidentsec/evident/internal/store/postgres/pgtest"
)

// pgServer is the PostgreSQL server of this package's tests, started by
// the first test that needs it and stopped by TestMain.
var pgServer pgtest.Server

// postgresStore is a store configuration of an empty database of its own
// on the test server; it skips t where there is no PostgreSQL.
func postgresStore(t *testing.T) storeConfig {
	t.Helper()
	st := defaultStoreConfig()
	st.Backend, st.Postgres.DSN = backendPostgres, pgServer.DSN(t)
	return st
}

// shopDecided waits until every finding of the shop at api has a verdict
// and returns the verdicts, keyed by service, vulnerability and package.
func shopDecided(t *testing.T, api string) map[string]string {
	t.Helper()
	var got map[string]string
	waitWithin(t, 2*time.Minute, "every finding of the shop decided", func() bool {
		got = findingVerdicts(t, api)
		return len(got) > 0 && !slices.Contains(slices.Collect(maps.Values(got)), "unknown")
	})
	return got
}

// findingVerdicts maps every finding at api to its verdict.
func findingVerdicts(t *testing.T, api string) map[string]string {
	t.Helper()
	var body struct {
		Findings []struct {
			Service       string
			Vulnerability struct{ ID string }
			Package       struct{ PURL string }
			Reachability  struct{ Verdict string }
		}
	}
	getJSON(t, api+"/api/v1/findings?limit=10000", &body)
	out := map[string]string{}
	for _, f := range body.Findings {
		out[fmt.Sprintf("%s %s %s", f.Service, f.Vulnerability.ID, f.Package.PURL)] = f.Reachability.Verdict
	}
	return out
}

// TestServePostgres runs serve on the PostgreSQL store: the shop's
// recording polled into it gives the verdicts the SQLite store gives, a
// second serve on the same database (another replica, polling nothing)
// answers the same findings from the shared state, and the token and
// audit commands work on it through --config.
func TestServePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("polls the shop's recording twice")
	}
	pg := postgresStore(t)

	lite := startShopServer(t)
	want := shopDecided(t, lite.apiURL())
	counts := map[string]int{}
	for _, v := range want {
		counts[v]++
	}
	t.Logf("SQLite: %d findings, by verdict %v", len(want), counts)
	shutdown(t, lite)

	primary := startShopServerStore(t, t.TempDir(), pg)
	defer shutdown(t, primary)
	if diff := cmp.Diff(want, shopDecided(t, primary.apiURL())); diff != "" {
		t.Errorf("verdicts on PostgreSQL differ from SQLite's (-sqlite +postgres):\n%s", diff)
	}

	resp, err := http.Get(primary.apiURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"evident_store_committed_batches_total ", "evident_store_pool_connections{"} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("/metrics on PostgreSQL lacks %s", m)
		}
	}

	// Another replica: its own data directory, no sources to poll, the
	// same database. It restores the findings and the model the first
	// one stored.
	cfg, err := loadConfig(filepath.Join(shop, "evident.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	test := serveTestConfig(t)
	cfg.Serve.API, cfg.Serve.OTLP, cfg.Serve.Pyroscope, cfg.Serve.Engine.AssessInterval, cfg.Serve.ShutdownTimeout =
		test.Serve.API, test.Serve.OTLP, test.Serve.Pyroscope, test.Serve.Engine.AssessInterval, test.Serve.ShutdownTimeout
	cfg.Serve.Store = pg
	// A second serve that would ingest too is refused: its engine's
	// checkpoints would drop batches the first one logged.
	g := &globals{stdout: io.Discard, stderr: io.Discard, dataDir: t.TempDir()}
	fl := serveFlags{vulns: []string{filepath.Join(shop, "recorded", "osv")}}
	if srv, err := startServer(t.Context(), g, cfg, fl, slog.New(slog.DiscardHandler)); !errors.Is(err, postgres.ErrIngestLocked) {
		if srv != nil {
			shutdown(t, srv)
		}
		t.Fatalf("a second ingesting serve on the database started (err %v), want postgres.ErrIngestLocked", err)
	}
	cfg.Serve.OTLP.GRPCEndpoint, cfg.Serve.OTLP.HTTPEndpoint, cfg.Serve.Pyroscope.Endpoint = "", "", ""
	replica := startTestServerConfig(t, t.TempDir(), cfg, fl)
	defer shutdown(t, replica)
	if diff := cmp.Diff(want, shopDecided(t, replica.apiURL())); diff != "" {
		t.Errorf("verdicts of the second replica differ (-sqlite +replica):\n%s", diff)
	}

	// The token and audit commands reach the same database through the
	// configuration file, and never print the DSN's password.
	file := filepath.Join(t.TempDir(), "evident.yml")
	if err := os.WriteFile(file, fmt.Appendf(nil, "serve:\n  store:\n    backend: postgres\n    postgres:\n      dsn: %q\n", pg.Postgres.DSN+" password=s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := run(t, "--data", t.TempDir(), "token", "create", "--config", file, "--name", "replica-test", "--role", "read")
	if code != ExitOK || !strings.HasPrefix(out, "evd_") {
		t.Fatalf("token create on PostgreSQL = %d %q %s", code, out, stderr)
	}
	code, out, stderr = run(t, "--data", t.TempDir(), "audit", "verify", "--config", file)
	if code != ExitOK || strings.Contains(out+stderr, "s3cret") {
		t.Errorf("audit verify on PostgreSQL = %d %q %s", code, out, stderr)
	}
	var audit struct {
		Entries []struct{ Action string }
	}
	getJSON(t, replica.apiURL()+"/api/v1/audit", &audit)
	if !slices.ContainsFunc(audit.Entries, func(e struct{ Action string }) bool { return e.Action == store.ActionTokenCreate }) {
		t.Errorf("the replica's audit log %v lacks the token the command created", audit.Entries)
	}
}
