//go:build unix

package cli

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidentsec/evident/internal/logtest"
	"github.com/evidentsec/evident/internal/store/sqlite"
)

// TestStoreModeWarning: a store whose database others may read (made
// with the umask's 0644 before evident created it 0600) is named, with
// its mode and the chmod that fixes it, once by serve's log and once by
// each token command; its mode is left as it is. A store of its owner's
// only is not.
func TestStoreModeWarning(t *testing.T) {
	for _, tt := range []struct {
		mode os.FileMode
		// want is in serve's log and the token command's stderr, and "" in
		// neither when empty.
		want string
	}{
		{0o600, ""},
		{0o644, "has mode 0644 (-rw-r--r--): its group or others can read the API tokens' hashes"},
		{0o640, "has mode 0640 (-rw-r-----)"},
	} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			data := t.TempDir()
			if code, _, stderr := run(t, "--data", data, "token", "create", "--name", "ops", "--role", "read"); code != ExitOK {
				t.Fatalf("token create = %d: %s", code, stderr)
			}
			path := filepath.Join(data, "store", sqlite.FileName)
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			chmod := "chmod 600 " + path
			check := func(where, out string, warnings int) {
				t.Helper()
				switch {
				case tt.want == "" && warnings != 0:
					t.Errorf("%s:\n%s\nwant no warning of the store's mode", where, out)
				case tt.want != "" && (warnings != 1 || !strings.Contains(out, tt.want) || !strings.Contains(out, chmod)):
					t.Errorf("%s:\n%s\nwant one warning with %q and %q", where, out, tt.want, chmod)
				}
			}

			code, _, stderr := run(t, "--data", data, "token", "list")
			if code != ExitOK {
				t.Fatalf("token list = %d: %s", code, stderr)
			}
			check("token list's stderr", stderr, strings.Count(stderr, "evident: warning: "+path+" "))

			srv, log := startServerLogged(t, data)
			shutdown(t, srv)
			check("serve's log", log.String(), strings.Count(log.String(), `msg=store err="`+path+" "))

			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tt.mode {
				t.Errorf("the database's mode is %v after serve, want %v as it was", got, tt.mode)
			}
		})
	}
}

// startServerLogged starts serve on data with the test vulnerabilities,
// logging its warnings and errors to the buffer it returns.
func startServerLogged(t *testing.T, data string) (*server, *logtest.Buffer) {
	t.Helper()
	log := &logtest.Buffer{}
	g := &globals{stdout: io.Discard, stderr: io.Discard, dataDir: data}
	srv, err := startServer(t.Context(), g, serveTestConfig(t), serveFlags{vulns: []string{filepath.Join("testdata", "serve", "osv")}},
		slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	return srv, log
}

// TestStoreTailCutWarning: a commit that a crash cut short at the end of
// the telemetry log (here, bytes after its last record) is cut off when
// serve opens the store again, and serve's log says so, naming the
// segment; the spans acknowledged before are kept. A clean restart says
// nothing.
func TestStoreTailCutWarning(t *testing.T) {
	data := t.TempDir()
	srv := startTestServer(t, data, serveFlags{vulns: []string{filepath.Join("testdata", "serve", "osv")}})
	sendSpans(t, srv.otlp.HTTPAddr())
	shutdown(t, srv)

	restart := func() string {
		t.Helper()
		srv, log := startServerLogged(t, data)
		waitFor(t, "checkout replayed", func() bool {
			var body struct{ Services []struct{ Name string } }
			getJSON(t, srv.apiURL()+"/api/v1/services", &body)
			return len(body.Services) == 1 && body.Services[0].Name == "checkout"
		})
		shutdown(t, srv)
		return log.String()
	}
	if log := restart(); strings.Contains(log, "cut ") {
		t.Errorf("a clean restart's log:\n%s\nwant no cut", log)
	}

	segs, err := filepath.Glob(filepath.Join(data, "store", "log-*.seg"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no log segment under %s (%v)", data, err)
	}
	last := segs[len(segs)-1]
	f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("a commit cut short by a crash")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if log := restart(); !strings.Contains(log, "msg=store") || !strings.Contains(log, "cut 29 bytes off the end of "+last) {
		t.Errorf("the log after a torn commit:\n%s\nwant a warning that cut 29 bytes off %s", log, last)
	}
}
