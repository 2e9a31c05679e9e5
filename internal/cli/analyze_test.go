package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidentsec/evident/internal/assess"
)

func TestParseFailOn(t *testing.T) {
	as := []assess.Assessment{
		{Priority: assess.Priority{Tier: "P1"}, Reachability: assess.Reachability{Verdict: assess.Executed}},
		{Priority: assess.Priority{Tier: "P3"}, Reachability: assess.Reachability{Verdict: assess.Loaded}, KnownExploited: true},
		{Priority: assess.Priority{Tier: "P4"}, Reachability: assess.Reachability{Verdict: assess.NotObserved}},
	}
	tests := []struct {
		values  []string
		want    int
		wantErr string
	}{
		{values: nil, want: 0},
		{values: []string{"P1"}, want: 1},
		{values: []string{"P3"}, want: 2},
		{values: []string{"P1", "P3"}, want: 2},
		{values: []string{"loaded"}, want: 1},
		{values: []string{"kev"}, want: 1},
		{values: []string{"executed", "kev"}, want: 2},
		{values: []string{"p3"}, want: 2},
		{values: []string{"Executed", "KEV"}, want: 2},
		{values: []string{"P5"}, wantErr: `--fail-on "P5": want P1, P2, P3, executed, loaded or kev`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.values, ","), func(t *testing.T) {
			p, err := parseFailOn(tt.values)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.violations(as); got != tt.want {
				t.Errorf("violations = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestAnalyzeUsage(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no findings", []string{"analyze"}, "no findings"},
		{"bad format", []string{"analyze", "--findings", "x.json", "--format", "xml"}, `unknown report format "xml"`},
		{"bad fail-on", []string{"analyze", "--findings", "x.json", "--fail-on", "sometimes"}, `--fail-on "sometimes"`},
		{"missing config", []string{"analyze", "--findings", "x.json", "--config", "nope.yml"}, "read config"},
		{"missing database", []string{"analyze", "--data", "/nonexistent", "--findings", "x.json"}, `run "evident db update"`},
		{"missing findings file", []string{"analyze", "--vulns", "../../examples/shop/recorded/osv", "--findings", "nope.json"}, "--findings nope.json"},
		{"database without records", []string{"analyze", "--vulns", "testdata/config", "--findings", "../../examples/shop/recorded/findings"}, "read source testdata/config: no OSV records in it"},
		{"negative max-bytes", []string{"analyze", "--findings", "x.json", "--max-bytes", "-1"}, "--max-bytes -1"},
		{"missing source root", []string{"analyze", "--vulns", "../../examples/shop/recorded/osv", "--findings", "../../examples/shop/recorded/findings", "--format", "sarif", "--source-root", "nope"}, "--source-root: stat nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, tt.args...)
			if code != ExitUsage || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, ExitUsage, tt.wantErr)
			}
		})
	}
}

func TestSourceRoot(t *testing.T) {
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	findings := filepath.Join("..", "..", "examples", "shop", "recorded", "findings")
	tests := []struct {
		name string
		flag string
		args []string
		want string
	}{
		{"the flag", "repo", []string{"x.json"}, "repo"},
		{"a findings directory", "", []string{findings}, abs(findings)},
		{"a file's directory", "", []string{"gateway=" + filepath.Join(findings, "gateway.json")}, abs(findings)},
		{"the directory all share", "", []string{filepath.Join(findings, "gateway.json"), filepath.Join("testdata", "x.json")}, abs(filepath.Join("..", ".."))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sourceRoot(tt.flag, tt.args); got != tt.want {
				t.Errorf("sourceRoot = %q, want %q", got, tt.want)
			}
		})
	}
}
