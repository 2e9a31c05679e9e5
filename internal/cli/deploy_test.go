package cli

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	if code, out, stderr := run(t, "--data", t.TempDir(), "serve", "--config", good, "--api", "0.0.0.0:8080", "--check-config"); code != ExitOK || out != "evident: configuration ok\n" {
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
}
