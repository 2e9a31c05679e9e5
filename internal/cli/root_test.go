package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// run executes the command line as main does and returns its exit code and
// outputs.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestRootUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{name: "version", args: []string{"version"}, wantCode: ExitOK, wantOut: "evident "},
		{name: "help", args: []string{"--help"}, wantCode: ExitOK, wantOut: "Usage:"},
		{name: "completion", args: []string{"completion", "bash"}, wantCode: ExitOK, wantOut: "bash completion"},
		{name: "completion tcsh", args: []string{"completion", "tcsh"}, wantCode: ExitUsage,
			wantErr: "evident: unsupported shell tcsh (want bash, zsh, fish, powershell)\n"},
		{name: "completion without shell", args: []string{"completion"}, wantCode: ExitUsage,
			wantErr: "evident: name a shell (want bash, zsh, fish, powershell)\n"},
		{name: "complete analyze format", args: []string{"__complete", "analyze", "--format", ""}, wantCode: ExitOK,
			wantOut: "table\njson\nsarif\nopenvex\ncyclonedx\nmarkdown\n:4\n"},
		{name: "complete fail-on", args: []string{"__complete", "analyze", "--fail-on", ""}, wantCode: ExitOK,
			wantOut: "P1\nP2\nP3\nexecuted\nloaded\nkev\n:4\n"},
		{name: "complete ecosystem", args: []string{"__complete", "db", "update", "--ecosystem", ""}, wantCode: ExitOK,
			wantOut: "CRAN\nConanCenter\nGo\nHackage\nHex\nMaven\nNuGet\nPackagist\nPub\nPyPI\nRubyGems\nSwiftURL\ncrates.io\nnpm\n:4\n"},
		{name: "complete findings format", args: []string{"__complete", "findings", "import", "--format", ""}, wantCode: ExitOK,
			wantOut: "table\njson\n:4\n"},
		{name: "findings import without a file", args: []string{"findings", "import"}, wantCode: ExitUsage,
			wantErr: "evident: name at least one scanner report, SBOM, Go binary or lockfile, or a directory of them\n"},
		{name: "token revoke without an id", args: []string{"token", "revoke"}, wantCode: ExitUsage,
			wantErr: "evident: name the ID of each token to revoke (evident token list shows them)\n"},
		{name: "waf proxy without flags", args: []string{"waf", "proxy"}, wantCode: ExitUsage,
			wantErr: "evident: --upstream and --rules are required\n"},
		{name: "waf proxy without --rules", args: []string{"waf", "proxy", "--upstream", "http://127.0.0.1:1"}, wantCode: ExitUsage,
			wantErr: "evident: --rules is required\n"},
		{name: "waf generate without -o", args: []string{"waf", "generate", "--report", "report.json"}, wantCode: ExitUsage,
			wantErr: "evident: -o is required\n"},
		{name: "demo negative duration", args: []string{"demo", "--duration", "-5s"}, wantCode: ExitUsage,
			wantErr: "evident: --duration -5s: want a positive duration, or 0 to run until Ctrl-C\n"},
		{name: "healthcheck negative timeout", args: []string{"healthcheck", "--timeout", "-1s"}, wantCode: ExitUsage,
			wantErr: "evident: --timeout -1s: want a positive duration\n"},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: ExitUsage, wantErr: `unknown command "frobnicate"`},
		// A group's help and status 0 let a typo in a script pass.
		{name: "unknown db command", args: []string{"db", "updte"}, wantCode: ExitUsage,
			wantErr: "evident: unknown command \"updte\" for \"evident db\" (want stats, update); did you mean update?\n"},
		{name: "unknown waf command", args: []string{"waf", "export"}, wantCode: ExitUsage,
			wantErr: "evident: unknown command \"export\" for \"evident waf\" (want generate, proxy)\n"},
		{name: "unknown token command", args: []string{"token", "bogus"}, wantCode: ExitUsage, wantErr: `unknown command "bogus" for "evident token"`},
		{name: "a group alone is its help", args: []string{"db"}, wantCode: ExitOK, wantOut: "Available Commands:"},
		{name: "complete db", args: []string{"__complete", "db", ""}, wantCode: ExitOK, wantOut: "stats\tPrint what the vulnerability database holds\nupdate\t"},
		{name: "unknown flag", args: []string{"version", "--nope"}, wantCode: ExitUsage, wantErr: "unknown flag: --nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, errOut)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout = %q, want it to contain %q", out, tt.wantOut)
			}
			if !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", errOut, tt.wantErr)
			}
		})
	}
}

// TestVersion checks that evident --version and evident version print the
// same line, and the line for the builds a user meets.
func TestVersion(t *testing.T) {
	_, flag, _ := run(t, "--version")
	_, cmd, _ := run(t, "version")
	if flag != cmd || !strings.HasPrefix(flag, "evident ") || !strings.HasSuffix(flag, "\n") {
		t.Errorf("evident --version = %q, evident version = %q: want the same line", flag, cmd)
	}
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "6ed2aaf3d1c07b62727d8fdecfb8f54cf5608519"},
			{Key: "vcs.time", Value: "2026-11-24T11:43:23Z"}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{name: "no build info", want: "evident (devel)"},
		{name: "release", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}},
			want: "evident v1.2.0 go1.26.8"},
		{name: "checkout", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261124114323-6ed2aaf3d1c0"}, Settings: vcs("false")},
			want: "evident v0.0.0-20261124114323-6ed2aaf3d1c0 commit 6ed2aaf3d1c0 (2026-11-24T11:43:23Z) go1.26.8"},
		{name: "dirty checkout", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs("true")},
			want: "evident (devel) commit 6ed2aaf3d1c0+dirty (2026-11-24T11:43:23Z) go1.26.8"},
		{name: "no vcs stamp", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			want: "evident (devel) go1.26.8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionLine(tt.bi); got != tt.want {
				t.Errorf("versionLine = %q, want %q", got, tt.want)
			}
		})
	}
	// evident_build_info carries the same.
	reg := prometheus.NewRegistry()
	reg.MustRegister(buildInfoMetric(tests[3].bi))
	want := `# HELP evident_build_info 1, labelled with the version, the commit (revision) and the Go version evident was built with.
# TYPE evident_build_info gauge
evident_build_info{goversion="go1.26.8",revision="6ed2aaf3d1c07b62727d8fdecfb8f54cf5608519+dirty",version="(devel)"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// golden compares got with the file at path, rewriting it under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}
