package check

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// evidentBin is the evident binary the tests run: $EVIDENT, or one built
// from this checkout by TestMain.
var evidentBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	evidentBin = os.Getenv("EVIDENT")
	if evidentBin == "" {
		dir, err := os.MkdirTemp("", "evident-deploy-check")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		evidentBin = filepath.Join(dir, "evident")
		build := exec.Command("go", "build", "-o", evidentBin, "./cmd/evident")
		build.Dir = filepath.Join("..", "..")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build evident:", err)
			return 1
		}
	}
	return m.Run()
}

// evident runs the evident binary with args and env (NAME=value, beside
// a PATH) and returns its exit code and what it printed.
func evident(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(evidentBin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("run evident %q: %v", args, err)
		}
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// checkCommand checks one evident command line of a deployment, with the
// container paths in its arguments replaced by paths: evident serve with
// --check-config (the configuration file, the flags and what the role
// needs), and any other command with --help (its flags exist and parse).
func checkCommand(t *testing.T, what string, args []string, env []string, paths map[string]string) {
	t.Helper()
	local := make([]string, len(args))
	for i, a := range args {
		local[i] = hostPath(a, paths)
	}
	check := "--help"
	if len(local) > 0 && local[0] == "serve" {
		check = "--check-config"
	}
	code, out := evident(t, env, append(local, check)...)
	if code != 0 {
		t.Errorf("%s: evident %s %s = exit %d:\n%s", what, strings.Join(args, " "), check, code, out)
	}
}

// hostPath is s with a leading container path of paths replaced by the
// host's.
func hostPath(s string, paths map[string]string) string {
	for c, h := range paths {
		if s == c {
			return h
		}
		if rest, ok := strings.CutPrefix(s, c+"/"); ok {
			return filepath.Join(h, rest)
		}
	}
	return s
}

// shell runs a script and returns its exit code and output.
func shell(t *testing.T, script string, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(script, args...).CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("run %s: %v", script, err)
		}
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return code, string(out)
}
