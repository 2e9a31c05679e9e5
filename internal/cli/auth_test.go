package cli

import (
	"bytes"
	"database/sql"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidentsec/evident/internal/store/sqlite"
)

// TestServeRefusesOpenListener: a listener beyond loopback without any
// token makes serve refuse to start, with exit status 2 and what to do.
func TestServeRefusesOpenListener(t *testing.T) {
	data := t.TempDir()
	code, _, stderr := run(t, "--data", data, "serve", "--vulns", filepath.Join("testdata", "serve", "osv"),
		"--api", "0.0.0.0:0", "--otlp-grpc", "", "--otlp-http", "", "--pyroscope", "")
	if code != ExitUsage || !strings.Contains(stderr, "refusing to start: api (0.0.0.0:0) would need credentials") ||
		!strings.Contains(stderr, "evident token create") || !strings.Contains(stderr, "--insecure") {
		t.Errorf("serve --api 0.0.0.0:0 without tokens = %d\n%s\nwant %d and the refusal", code, stderr, ExitUsage)
	}
}

// request sends a request with an optional bearer token and returns the
// status.
func request(t *testing.T, method, url, token, contentType string, body []byte) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestTokensAuditEndToEnd makes tokens with the CLI, serves with
// credentials required (as beyond loopback), uploads findings as admin,
// revokes a token beside the running server, verifies the audit log, then
// edits an entry in the database and sees verify name it.
func TestTokensAuditEndToEnd(t *testing.T) {
	data := t.TempDir()
	mk := func(name, role string) string {
		code, out, stderr := run(t, "--data", data, "token", "create", "--name", name, "--role", role)
		if code != ExitOK || !strings.HasPrefix(out, "evd_") {
			t.Fatalf("token create = %d %q %s", code, out, stderr)
		}
		return strings.TrimSpace(out)
	}
	admin, reader := mk("ops", "admin"), mk("grafana", "read")

	cfg := serveTestConfig(t)
	cfg.Serve.Auth.RequireOnLoopback = true
	g := &globals{stdout: io.Discard, stderr: io.Discard, dataDir: data}
	srv, err := startServer(t.Context(), g, cfg, serveFlags{vulns: []string{filepath.Join("testdata", "serve", "osv")}},
		slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, srv)
	api := srv.apiURL()

	for _, path := range []string{"/api/v1/findings", "/api/v1/summary", "/api/v1/report", "/api/v1/export/openvex", "/api/v1/audit", "/metrics", "/", "/ui/findings", "/ui/assets/ui.js"} {
		if got := request(t, "GET", api+path, "", "", nil); got != http.StatusUnauthorized {
			t.Errorf("GET %s without a token = %d, want 401", path, got)
		}
	}
	if got := request(t, "POST", "http://"+srv.otlp.HTTPAddr()+"/v1/traces", "", "application/x-protobuf", nil); got != http.StatusUnauthorized {
		t.Errorf("OTLP/HTTP without a token = %d, want 401", got)
	}
	if got := request(t, "POST", "http://"+srv.pyro.Addr()+"/ingest?name=x", "", "", nil); got != http.StatusUnauthorized {
		t.Errorf("Pyroscope without a token = %d, want 401", got)
	}
	if got := request(t, "GET", api+"/api/v1/summary", reader, "", nil); got != http.StatusOK {
		t.Errorf("GET summary as reader = %d, want 200", got)
	}
	// A browser sends the token as basic auth's password.
	req, _ := http.NewRequest("GET", api+"/ui/findings", nil)
	req.SetBasicAuth("anyone", reader)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET the UI with the reader's token as password = %s, want 200", resp.Status)
	}
	report, err := os.ReadFile(filepath.Join("testdata", "serve", "checkout.govulncheck.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := request(t, "POST", api+"/api/v1/findings?service=checkout", reader, "application/json", report); got != http.StatusForbidden {
		t.Errorf("upload as reader = %d, want 403", got)
	}
	if got := request(t, "POST", api+"/api/v1/findings?service=checkout", admin, "text/plain", report); got != http.StatusUnsupportedMediaType {
		t.Errorf("upload as text/plain = %d, want 415", got)
	}
	if got := request(t, "POST", api+"/api/v1/findings?service=checkout", admin, "application/json", report); got != http.StatusOK {
		t.Errorf("upload as admin = %d, want 200", got)
	}

	// Revoked beside the running server; in effect at the next reload.
	code, list, _ := run(t, "--data", data, "token", "list")
	var readerID string
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == "grafana" {
			readerID = f[0]
		}
	}
	if code != ExitOK || readerID == "" || strings.Contains(list, reader) {
		t.Fatalf("token list = %d\n%s\nwant the grafana token's ID and no secret", code, list)
	}
	if code, _, stderr := run(t, "--data", data, "token", "revoke", readerID); code != ExitOK {
		t.Fatalf("token revoke = %d %s", code, stderr)
	}
	if err := srv.auth.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := request(t, "GET", api+"/api/v1/summary", reader, "", nil); got != http.StatusUnauthorized {
		t.Errorf("GET summary with the revoked token = %d, want 401", got)
	}
	if code, _, stderr := run(t, "--data", data, "token", "revoke", "0000000000000000"); code != ExitUsage || !strings.Contains(stderr, "no token 0000000000000000") {
		t.Errorf("revoke of an unknown token = %d %s", code, stderr)
	}

	code, out, stderr := run(t, "--data", data, "audit", "verify")
	if code != ExitOK || !strings.HasPrefix(out, "audit log intact: 4 entries, head ") {
		t.Errorf("audit verify = %d %q %s; want 4 entries (2 tokens, 1 upload, 1 revocation)", code, out, stderr)
	}
	shutdown(t, srv)

	// Someone with the file edits the upload's entry.
	db, err := sql.Open("sqlite", filepath.Join(data, "store", sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{`DROP TRIGGER audit_log_no_update`, `UPDATE audit_log SET actor = 'cli:nobody' WHERE seq = 3`} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	code, _, stderr = run(t, "--data", data, "audit", "verify")
	if code != ExitPolicy || !strings.Contains(stderr, "audit log is NOT intact: audit entry 3 (findings.replace services checkout by cli:nobody") {
		t.Errorf("audit verify after an edit = %d %s, want %d naming entry 3", code, stderr, ExitPolicy)
	}
}

// TestStoreReadersDoNotMigrate: token list and audit verify of this
// evident, beside an older evident serve, read the store as it is: an
// older schema is refused with what to do, and the database is left byte
// for byte as it was; token create migrates it, and they read it then.
// The store is one that evident wrote at 7a903a7 (its README).
func TestStoreReadersDoNotMigrate(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("..", "store", "sqlite", "testdata", "log-before-segments", sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	db := filepath.Join(data, "store", sqlite.FileName)
	if err := os.MkdirAll(filepath.Dir(db), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, old, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"token", "list"}, {"audit", "verify"}} {
		code, _, stderr := run(t, append([]string{"--data", data}, args...)...)
		if code != ExitUsage || !strings.Contains(stderr, "database schema is older than this evident") || !strings.Contains(stderr, "an older evident migrated it last") {
			t.Errorf("%s on an older store: exit %d, stderr %q; want %d saying the schema is older", strings.Join(args, " "), code, stderr, ExitUsage)
		}
		if got, err := os.ReadFile(db); err != nil || !bytes.Equal(got, old) {
			t.Errorf("%s changed the database (%v)", strings.Join(args, " "), err)
		}
	}
	if code, _, stderr := run(t, "--data", data, "token", "create", "--name", "ci", "--role", "ingest"); code != ExitOK {
		t.Fatalf("token create: exit %d, %s", code, stderr)
	}
	for _, args := range [][]string{{"token", "list"}, {"audit", "verify"}} {
		if code, _, stderr := run(t, append([]string{"--data", data}, args...)...); code != ExitOK {
			t.Errorf("%s after token create migrated the store: exit %d, %s", strings.Join(args, " "), code, stderr)
		}
	}
}

// TestStoreCommandsNeedAStore: the commands that read serve's store refuse
// a data directory without one (a mistyped --data) instead of making an
// empty store there and reporting on it; token create makes one.
func TestStoreCommandsNeedAStore(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"token", "list"}, ExitUsage},
		{[]string{"token", "revoke", "0123456789abcdef"}, ExitUsage},
		{[]string{"audit", "verify"}, ExitUsage},
		{[]string{"token", "create", "--name", "ci", "--role", "ingest"}, ExitOK},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[:2], " "), func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "evident-data")
			code, _, stderr := run(t, append([]string{"--data", data}, tt.args...)...)
			store := filepath.Join(data, "store", sqlite.FileName)
			_, statErr := os.Stat(store)
			if tt.want != ExitOK {
				if code != tt.want || !strings.Contains(stderr, "no store at "+store) {
					t.Errorf("exit %d, stderr %q; want %d naming %s", code, stderr, tt.want, store)
				}
				if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s was made (stat: %v)", data, err)
				}
				return
			}
			if code != ExitOK || statErr != nil {
				t.Errorf("exit %d, stderr %q, store: %v; want the store made", code, stderr, statErr)
			}
		})
	}
}
