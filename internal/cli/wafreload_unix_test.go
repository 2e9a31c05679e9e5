//go:build unix

package cli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/logtest"
)

// TestWAFProxySIGHUP: SIGHUP reloads the rules and reopens the audit log,
// and the proxy serves on until the context ends; it ended the process,
// without draining requests in flight. The audit log is created 0640.
func TestWAFProxySIGHUP(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := run(t, "waf", "generate", "--report", "testdata/waf/analyze.json", "--traces", "testdata/waf/traces.jsonl",
		"--vulns", "testdata/waf/records", "-o", dir); code != ExitOK {
		t.Fatalf("waf generate: exit %d: %s", code, errOut)
	}
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut logtest.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"waf", "proxy", "--upstream", "http://127.0.0.1:1", "--listen", "127.0.0.1:0",
			"--rules", dir, "--audit-log", audit}, &out, &errOut)
	}()
	waitFor := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(errOut.String(), what); {
			select {
			case code := <-done:
				t.Fatalf("waf proxy ended with %d before logging %q: %s", code, what, errOut.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log: %s", what, errOut.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(`msg="waf proxy listening"`)
	fi, err := os.Stat(audit)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o640 {
		t.Errorf("audit log mode %v, want -rw-r-----", got)
	}
	if err := os.Rename(audit, audit+".1"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(`msg="reloaded waf rules"`)
	if log := errOut.String(); !strings.Contains(log, "services=gateway") || !strings.Contains(log, "rule_counts=") {
		t.Errorf("reload log lacks the services and rule counts: %s", log)
	}
	// docs/waf.md shows the line this reload of the shop's patches logs.
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "waf.md"))
	if err != nil {
		t.Fatal(err)
	}
	if counts := regexp.MustCompile(`rule_counts="[^"]*"`).Find(doc); counts == nil || !strings.Contains(errOut.String(), string(counts)) {
		t.Errorf("docs/waf.md shows %s, the reload logged: %s", counts, errOut.String())
	}
	if _, err := os.Stat(audit); err != nil {
		t.Errorf("audit log not reopened at its path: %v", err)
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Errorf("exit %d after the reload, want 0: %s", code, errOut.String())
	}
}
