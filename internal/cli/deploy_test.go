package cli

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/tlsconfig/tlstest"
)

// TestTokenSecretFile provisions a token from a file, as a deployment
// does at every start: the first run stores it, the next ones find it,
// and a file that does not match what is stored is refused.
func TestTokenSecretFile(t *testing.T) {
	data := t.TempDir()
	code, token, stderr := run(t, "token", "generate")
	token = strings.TrimSpace(token)
	if code != ExitOK || !strings.HasPrefix(token, "evd_") {
		t.Fatalf("token generate = %d %q %s", code, token, stderr)
	}
	file := filepath.Join(t.TempDir(), "ingest")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	create := func(args ...string) (int, string, string) {
		return run(t, append([]string{"--data", data, "token", "create", "--secret-file", file}, args...)...)
	}
	for i, want := range []string{"created from " + file, "is already stored"} {
		code, out, stderr := create("--name", "collector", "--role", "ingest")
		if code != ExitOK || out != "" || !strings.Contains(stderr, want) {
			t.Errorf("token create --secret-file, run %d = %d %q %s; want 0, nothing on stdout and %q", i+1, code, out, stderr, want)
		}
	}
	code, list, _ := run(t, "--data", data, "token", "list")
	if code != ExitOK || strings.Count(list, "collector") != 1 || strings.Contains(list, token) {
		t.Errorf("token list = %d\n%s\nwant the collector token once, without its secret", code, list)
	}
	if code, _, stderr := create("--name", "collector", "--role", "admin"); code != ExitUsage || !strings.Contains(stderr, "is stored as collector (roles ingest, tenant any)") {
		t.Errorf("token create --secret-file with other roles = %d %s; want 2 and what is stored", code, stderr)
	}
	id := token[len("evd_") : len("evd_")+16]
	if code, _, stderr := run(t, "--data", data, "token", "revoke", id); code != ExitOK {
		t.Fatalf("token revoke = %d %s", code, stderr)
	}
	if code, _, stderr := create("--name", "collector", "--role", "ingest"); code != ExitUsage || !strings.Contains(stderr, "was revoked") {
		t.Errorf("token create --secret-file of a revoked token = %d %s; want 2 and revoked", code, stderr)
	}

	chosen := "evd_0123456789abcdef_hunter2hunter2"
	if err := os.WriteFile(file, []byte(chosen), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := create("--name", "x", "--role", "read"); code != ExitUsage || !strings.Contains(stderr, "evident token generate makes one") || strings.Contains(stderr, "hunter2") {
		t.Errorf("token create --secret-file with a chosen secret = %d %s; want 2, the way to make one, and not the secret", code, stderr)
	}
	if code, _, stderr := run(t, "--data", data, "token", "create", "--name", "x", "--role", "read", "--secret-file", filepath.Join(data, "absent")); code != ExitUsage || !strings.Contains(stderr, "--secret-file") {
		t.Errorf("token create --secret-file of a missing file = %d %s", code, stderr)
	}
}

// TestHealthcheck asks a real listener's /healthz.
func TestHealthcheck(t *testing.T) {
	healthy := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || !healthy {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	}))
	defer srv.Close()
	if code, out, stderr := run(t, "healthcheck", "--url", srv.URL+"/healthz"); code != ExitOK || out != "ok\n" {
		t.Errorf("healthcheck of a healthy server = %d %q %s; want 0 and ok", code, out, stderr)
	}
	healthy = false
	if code, _, stderr := run(t, "healthcheck", "--url", srv.URL+"/healthz"); code != healthcheckUnhealthy || !strings.Contains(stderr, "503 Service Unavailable") {
		t.Errorf("healthcheck of an unhealthy server = %d %s; want 1 and the status", code, stderr)
	}
	srv.Close()
	if code, _, stderr := run(t, "healthcheck", "--url", srv.URL+"/healthz", "--timeout", "1s"); code != healthcheckUnhealthy || !strings.Contains(stderr, "healthcheck") {
		t.Errorf("healthcheck of a closed port = %d %s; want 1", code, stderr)
	}
}

// TestServeCheckConfig: --check-config checks the file and the flags and
// serves nothing.
func TestServeCheckConfig(t *testing.T) {
	good := filepath.Join("testdata", "config", "good.yml")
	if code, out, stderr := run(t, "--data", t.TempDir(), "serve", "--config", good, "--api", "0.0.0.0:8080", "--insecure", "--check-config"); code != ExitOK || out != "evident: configuration ok\n" {
		t.Errorf("serve --check-config of %s = %d %q %s; want 0 and ok", good, code, out, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("serve:\n  store:\n    backend: postgers\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := run(t, "serve", "--config", bad, "--check-config"); code != ExitUsage || out != "" || !strings.Contains(stderr, "postgers") {
		t.Errorf("serve --check-config of a bad backend = %d %q %s; want 2 and the bad value", code, out, stderr)
	}
	if code, _, stderr := run(t, "serve", "--config", good, "--api", "nonsense", "--check-config"); code != ExitUsage || !strings.Contains(stderr, "nonsense") {
		t.Errorf("serve --check-config with a bad --api = %d %s; want 2 naming it", code, stderr)
	}
	missing := filepath.Join(t.TempDir(), "missing.yml")
	if err := os.WriteFile(missing, []byte("knowledge: [nope/affected-functions.yaml]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file is the configuration's, not --vulns'.
	if code, _, stderr := run(t, "--data", t.TempDir(), "serve", "--config", missing, "--vulns", filepath.Join(shop, "recorded", "osv"), "--check-config"); code != ExitUsage ||
		!strings.Contains(stderr, "evident: knowledge: open nope/affected-functions.yaml: no such file or directory") || strings.Contains(stderr, "--vulns") {
		t.Errorf("serve --check-config with a missing knowledge file = %d %s; want 2 naming it alone", code, stderr)
	}
}

// TestServeCheckConfigLeavesOldStore: --check-config of a newer evident
// reads the tokens of a store the previous version made (testdata/
// store-5daba4f, schema 6) and changes nothing in it. It used to
// migrate the schema, so the evident still running on that store, or
// the one an operator went back to after checking, refused to start:
// "database schema is newer than this evident".
func TestServeCheckConfigLeavesOldStore(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Join(data, "store")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(filepath.Join("testdata", "store-5daba4f", "evident.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "evident.db"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	// Beyond loopback: the check must read the store's token to pass.
	code, out, stderr := run(t, "--data", data, "serve", "--check-config", "--vulns", filepath.Join(shop, "recorded", "osv"),
		"--api", "0.0.0.0:18181", "--otlp-grpc", "", "--otlp-http", "", "--pyroscope", "")
	if code != ExitOK || out != "evident: configuration ok\n" {
		t.Errorf("serve --check-config = %d %q %s; want 0 and ok (the store's token read)", code, out, stderr)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("store directory after the check: %v, %v; want evident.db alone", entries, err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "evident.db")); err != nil || !bytes.Equal(got, old) {
		t.Errorf("the check changed evident.db (%v)", err)
	}
}

// refuseHint is what serve says to do when it refuses to start with a
// listener beyond loopback that nobody could be admitted to.
const refuseHint = `  Create a token first:        evident token create --name <what for> --role ingest|read|admin
  or configure OIDC:           serve.auth.oidc (docs/security.md)
  or listen on loopback only:  e.g. --api 127.0.0.1:8080
  or run without auth:         --insecure (anyone who reaches these ports can read every finding and replace them)`

// TestServeCheckConfigReadsFiles: --check-config reads what a start would
// read before serving, with the start's own functions, and names every
// file that would stop the start, each with its flag or key; it binds
// nothing and creates nothing.
func TestServeCheckConfigReadsFiles(t *testing.T) {
	rec := filepath.Join(shop, "recorded")
	osv, reports := filepath.Join(rec, "osv"), filepath.Join(rec, "findings")
	ca := tlstest.NewCA(t, "evident test CA")
	certs := t.TempDir()
	cert, key := ca.Issue(t, "localhost").Write(t, certs, "api")
	_, otherKey := ca.Issue(t, "localhost").Write(t, certs, "other")
	expiredAt := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()
	expiredCert, expiredKey := ca.IssueUntil(t, expiredAt, "localhost").Write(t, certs, "expired")
	alerts := filepath.Join(t.TempDir(), "alerts.jsonl")
	// clusterConfig is what every role but all needs, with the serve
	// section open.
	const clusterConfig = "cluster:\n  kafka:\n    brokers: [127.0.0.1:1]\nserve:\n  store:\n    backend: postgres\n    postgres:\n      dsn: postgres://evident@127.0.0.1:1/evident\n"
	tlsConfig := func(cert, key string) string {
		return "serve:\n  api:\n    tls:\n      cert_file: " + cert + "\n      key_file: " + key + "\n"
	}
	tests := []struct {
		name   string
		args   []string
		config string
		env    map[string]string
		// wantErr are the lines of the error, in order; none: the check passes.
		wantErr []string
		// wantNote is on stderr when the check passes.
		wantNote string
		// token: the store under --data holds a token, made with evident
		// token create before the check.
		token bool
	}{
		{
			name:   "every file reads",
			args:   []string{"--vulns", osv, "--findings", reports},
			config: tlsConfig(cert, key) + "  alerts:\n    json_lines:\n      - name: file\n        path: " + alerts + "\n",
		},
		{
			name:     "no vulnerability database yet",
			wantNote: "evident: note: open vulnerability database ",
		},
		{
			// Served, as a start has no other to keep; said, as every
			// verifying client refuses it.
			name:     "expired certificate",
			args:     []string{"--vulns", osv},
			config:   tlsConfig(expiredCert, expiredKey),
			wantNote: "evident: note: serve.api.tls: tls certificate has expired: every client that verifies it refuses the handshake (listener=api, cert_file=" + expiredCert + ", not_after=" + expiredAt.Format(time.RFC3339) + "); serve starts with it\n",
		},
		{
			// A client's, as a listener's: sent, as a start has no other,
			// and every verifying server refuses it.
			name:     "expired client certificate of an alert sink",
			args:     []string{"--vulns", osv},
			config:   "serve:\n  alerts:\n    webhooks:\n      - name: soc\n        url: https://hooks.example.com\n        tls: {cert_file: " + expiredCert + ", key_file: " + expiredKey + "}\n",
			wantNote: "evident: note: serve.alerts.webhooks[0].tls: tls client certificate has expired: every server that verifies it refuses the handshake (client=alert sink soc, cert_file=" + expiredCert + ", not_after=" + expiredAt.Format(time.RFC3339) + "); serve starts with it\n",
		},
		{
			name:     "expired client certificate of a source",
			args:     []string{"--vulns", osv},
			config:   "serve:\n  sources:\n    pyroscope: https://127.0.0.1:1\n",
			env:      map[string]string{"EVIDENT_PYROSCOPE_CERT_FILE": expiredCert, "EVIDENT_PYROSCOPE_KEY_FILE": expiredKey},
			wantNote: "evident: note: serve.sources: tls client certificate has expired: every server that verifies it refuses the handshake (client=pyroscope source, cert_file=" + expiredCert + ", not_after=" + expiredAt.Format(time.RFC3339) + "); serve starts with it\n",
		},
		{
			name:    "missing findings",
			args:    []string{"--vulns", osv, "--findings", "bad/nonexistent.json"},
			wantErr: []string{"--findings: read findings: open bad/nonexistent.json: no such file or directory"},
		},
		{
			name:    "findings without a service",
			args:    []string{"--vulns", osv, "--findings", "=app.json"},
			wantErr: []string{`--findings "=app.json": want SERVICE=PATH with both parts, or a path`},
		},
		{
			name:    "missing vulnerability source",
			args:    []string{"--vulns", "/nonexistent"},
			wantErr: []string{"--vulns /nonexistent: load vulnerabilities: no vulnerability source could be read: detect source /nonexistent: stat /nonexistent: no such file or directory"},
		},
		{
			name:    "missing KEV catalog",
			args:    []string{"--vulns", osv, "--kev", "/nonexistent/kev.json"},
			wantErr: []string{"--kev /nonexistent/kev.json: open /nonexistent/kev.json: no such file or directory"},
		},
		{
			name:    "missing certificate",
			args:    []string{"--vulns", osv},
			config:  tlsConfig("/nonexistent.pem", key),
			wantErr: []string{"serve.api.tls: tls of api: read /nonexistent.pem: open /nonexistent.pem: no such file or directory"},
		},
		{
			name:    "key of another certificate",
			args:    []string{"--vulns", osv},
			config:  tlsConfig(cert, otherKey),
			wantErr: []string{"serve.api.tls: tls of api: load " + cert + " and " + otherKey + ": tls: private key does not match public key"},
		},
		{
			name:    "missing CA of an alert sink",
			args:    []string{"--vulns", osv},
			config:  "serve:\n  alerts:\n    webhooks:\n      - name: soc\n        url: https://hooks.example.com\n        tls: {ca_file: /nonexistent/ca.pem}\n",
			wantErr: []string{"serve.alerts.webhooks[0].tls: tls of alert sink soc: read ca_file: open /nonexistent/ca.pem: no such file or directory"},
		},
		{
			name:    "alert file in a missing directory",
			args:    []string{"--vulns", osv},
			config:  "serve:\n  alerts:\n    json_lines:\n      - name: file\n        path: /nonexistent/dir/alerts.jsonl\n",
			wantErr: []string{"serve.alerts.json_lines[0].path /nonexistent/dir/alerts.jsonl: directory /nonexistent/dir does not exist"},
		},
		{
			name:    "missing credentials of a source",
			args:    []string{"--vulns", osv},
			config:  "serve:\n  sources:\n    tempo: http://127.0.0.1:1\n",
			env:     map[string]string{"EVIDENT_TEMPO_USER": "1", "EVIDENT_TEMPO_PASSWORD_FILE": "/nonexistent/tempo.token"},
			wantErr: []string{"serve.sources: --tempo: read EVIDENT_TEMPO_PASSWORD_FILE: open /nonexistent/tempo.token: no such file or directory"},
		},
		{
			name:    "listener beyond loopback that nobody could use",
			args:    []string{"--vulns", osv, "--api", "0.0.0.0:18181", "--otlp-grpc", "", "--otlp-http", "", "--pyroscope", ""},
			wantErr: []string{"refusing to start: api (0.0.0.0:18181) would need credentials, and there is no API token or OIDC issuer to authenticate anyone.", refuseHint},
		},
		{
			name:    "receivers beyond loopback that nobody could use",
			args:    []string{"--vulns", osv, "--otlp-http", ":4318", "--pyroscope", "0.0.0.0:4040"},
			wantErr: []string{"refusing to start: otlp-http (:4318), pyroscope (0.0.0.0:4040) would need credentials, and there is no API token or OIDC issuer to authenticate anyone.", refuseHint},
		},
		{
			name: "listener beyond loopback, --insecure",
			args: []string{"--vulns", osv, "--api", "0.0.0.0:18181", "--insecure"},
		},
		{
			name:  "listener beyond loopback with a token",
			args:  []string{"--vulns", osv, "--api", "0.0.0.0:18181"},
			token: true,
		},
		{
			name:     "listener beyond loopback, tokens in PostgreSQL",
			args:     []string{"--vulns", osv, "--api", "0.0.0.0:18181"},
			config:   "serve:\n  store:\n    backend: postgres\n    postgres:\n      dsn: postgres://evident@127.0.0.1:1/evident\n",
			wantNote: "evident: note: the API tokens are in PostgreSQL (serve.store), which --check-config does not connect to; serve refuses to start if it holds no live token: refusing to start: api (0.0.0.0:18181) would need credentials",
		},
		{
			name:    "port out of range",
			args:    []string{"--vulns", osv},
			config:  "serve:\n  api:\n    endpoint: 127.0.0.1:99999\n",
			wantErr: []string{`config $C: api endpoint "127.0.0.1:99999": port 99999 out of range (0 to 65535)`},
		},
		{
			name:    "port out of range of a flag",
			args:    []string{"--vulns", osv, "--otlp-grpc", "127.0.0.1:65536"},
			wantErr: []string{`--otlp-grpc "127.0.0.1:65536": port 65536 out of range (0 to 65535)`},
		},
		{
			// Each flag is named, not the key of the file it replaces.
			name: "addresses of two flags",
			args: []string{"--vulns", osv, "--otlp-http", "127.0.0.1", "--pyroscope", ":x"},
			wantErr: []string{`--otlp-http "127.0.0.1": address 127.0.0.1: missing port in address`,
				`--pyroscope ":x": port "x" is neither a number nor a known service name`},
		},
		{
			// One file for every role: an engine turns the receivers
			// off, and does not refuse their settings.
			name:   "receivers' settings of an engine",
			args:   []string{"--vulns", osv, "--role", "engine"},
			config: clusterConfig + "  otlp:\n    http_endpoint: 127.0.0.1:99999\n    tls: {cert_file: /etc/evident/otlp.crt}\n",
		},
		{
			name:   "receivers' settings of an API replica",
			args:   []string{"--vulns", osv, "--role", "api"},
			config: clusterConfig + "  pyroscope:\n    endpoint: 127.0.0.1:99999\n",
		},
		{
			name:    "receivers' settings of a receiver",
			args:    []string{"--vulns", osv, "--role", "receiver"},
			config:  clusterConfig + "  otlp:\n    http_endpoint: 127.0.0.1:99999\n",
			wantErr: []string{`config $C: invalid otlp receiver config: http_endpoint "127.0.0.1:99999": port 99999 out of range (0 to 65535)`},
		},
		{
			name:    "API turned off",
			args:    []string{"--vulns", osv, "--api", ""},
			wantErr: []string{`--api "": the API listener cannot be turned off (it serves /healthz, /metrics, the API and the web UI); give it a host:port, e.g. 127.0.0.1:8080`},
		},
		{
			name:   "every problem at once",
			args:   []string{"--vulns", "/nonexistent", "--findings", "bad/nonexistent.json"},
			config: tlsConfig("/nonexistent.pem", key),
			wantErr: []string{
				"--vulns /nonexistent: load vulnerabilities: no vulnerability source could be read: detect source /nonexistent: stat /nonexistent: no such file or directory",
				"--findings: read findings: open bad/nonexistent.json: no such file or directory",
				"serve.api.tls: tls of api: read /nonexistent.pem: open /nonexistent.pem: no such file or directory",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			data := t.TempDir()
			if tt.token {
				if code, _, stderr := run(t, "--data", data, "token", "create", "--name", "ci", "--role", "read"); code != ExitOK {
					t.Fatalf("token create = %d %s", code, stderr)
				}
			}
			args := []string{"--data", data, "serve", "--check-config"}
			config := filepath.Join(t.TempDir(), "evident.yaml")
			if tt.config != "" {
				if err := os.WriteFile(config, []byte(tt.config), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", config)
			}
			code, out, stderr := run(t, append(args, tt.args...)...)
			if len(tt.wantErr) == 0 {
				if code != ExitOK || out != "evident: configuration ok\n" || !strings.HasPrefix(stderr, tt.wantNote) || (tt.wantNote == "" && stderr != "") {
					t.Errorf("exit %d, stdout %q, stderr %q; want 0, ok and %q", code, out, stderr, tt.wantNote)
				}
			} else if want := "evident: " + strings.ReplaceAll(strings.Join(tt.wantErr, "\n"), "$C", config) + "\n"; code != ExitUsage || out != "" || stderr != want {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant %d and:\n%s", code, out, stderr, ExitUsage, want)
			}
			// No store, no alert file: nothing is created.
			if entries, err := os.ReadDir(data); !tt.token && (err != nil || len(entries) > 0) {
				t.Errorf("data directory after the check: %v, %v; want it empty", entries, err)
			}
			if _, err := os.Stat(alerts); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the check made the alert file %s (%v)", alerts, err)
			}
		})
	}
}
