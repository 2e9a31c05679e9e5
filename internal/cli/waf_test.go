package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/waf"
)

func TestWAFGenerate(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		golden   string
	}{
		{
			name: "shop report",
			args: []string{"waf", "generate", "--report", "testdata/waf/analyze.json", "--traces", "testdata/waf/traces.jsonl",
				"--vulns", "testdata/waf/records"},
			wantCode: ExitOK,
			golden:   "generate.golden",
		},
		{
			name:     "no traces",
			args:     []string{"waf", "generate", "--report", "testdata/waf/analyze.json", "--vulns", "testdata/waf/records"},
			wantCode: ExitOK,
			golden:   "notraces.golden",
		},
		{
			name:     "no report",
			args:     []string{"waf", "generate", "--traces", "testdata/waf/traces.jsonl"},
			wantCode: ExitUsage,
			golden:   "noreport.golden",
		},
		{
			name:     "not a report",
			args:     []string{"waf", "generate", "--report", "testdata/waf/traces.jsonl", "--vulns", "testdata/waf/records"},
			wantCode: ExitUsage,
			golden:   "badreport.golden",
		},
		{
			name:     "a SARIF log for a report",
			args:     []string{"waf", "generate", "--report", "testdata/analyze/shop.sarif.golden", "--vulns", "testdata/waf/records"},
			wantCode: ExitUsage,
			golden:   "sarifreport.golden",
		},
		{
			name: "exploits directory missing",
			args: []string{"waf", "generate", "--report", "testdata/waf/analyze.json", "--traces", "testdata/waf/traces.jsonl",
				"--vulns", "testdata/waf/records", "--exploits", "testdata/waf/nonexistent"},
			wantCode: ExitUsage,
			golden:   "noexploits.golden",
		},
		{
			name: "exploits directory without a corpus file",
			args: []string{"waf", "generate", "--report", "testdata/waf/analyze.json", "--traces", "testdata/waf/traces.jsonl",
				"--vulns", "testdata/waf/records", "--exploits", "testdata/waf/records"},
			wantCode: ExitUsage,
			golden:   "emptyexploits.golden",
		},
		{
			name:     "a govulncheck report for a report",
			args:     []string{"waf", "generate", "--report", "../findings/testdata/govulncheck/symbol.json", "--vulns", "testdata/waf/records"},
			wantCode: ExitUsage,
			golden:   "govulncheckreport.golden",
		},
		{
			name:     "an empty report",
			args:     []string{"waf", "generate", "--report", "testdata/waf/empty.json", "--vulns", "testdata/waf/records"},
			wantCode: ExitUsage,
			golden:   "emptyreport.golden",
		},
		{
			name:     "a YAML file for a report",
			args:     []string{"waf", "generate", "--report", "testdata/config/good.yml", "--vulns", "testdata/waf/records"},
			wantCode: ExitUsage,
			golden:   "yamlreport.golden",
		},
		{
			name:     "JSON without a version for a report",
			args:     []string{"waf", "generate", "--report", "testdata/waf/noversion.json", "--vulns", "testdata/waf/records"},
			wantCode: ExitUsage,
			golden:   "noversionreport.golden",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			code, out, errOut := run(t, append(tt.args, "-o", dir)...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, errOut)
			}
			got := out + "--- stderr\n" + errOut
			golden(t, filepath.Join("testdata", "waf", tt.golden), []byte(got))
			if tt.wantCode != ExitOK {
				return
			}
			for _, f := range []string{"gateway.conf", "evident-engine.conf", "patches.json", "plugins/evident-gateway-before.conf"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestParseReportAssessments(t *testing.T) {
	data := []byte(`{"version": 1, "findings": [
		{"vulnerability": {"id": "GO-2026-5970"}, "service": "gateway", "reachability": {"verdict": "executed", "endpoints": ["GET /search"]}, "exposure": {"level": "exposed"}},
		{"vulnerability": {"id": ""}, "service": "gateway"},
		{"vulnerability": 7}
	]}`)
	as, problems, err := parseReportAssessments(data, "r.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].Exposure.Level != "exposed" || as[0].Reachability.Endpoints[0] != "GET /search" {
		t.Errorf("assessments %+v", as)
	}
	if len(problems) != 2 {
		t.Errorf("problems %v, want 2 (findings[1] and findings[2])", problems)
	}
	if _, _, err := parseReportAssessments([]byte(`{"version": 2}`), "r.json"); err == nil {
		t.Error("version 2 accepted")
	}
}

// TestDescribeInput names the files that are given where evident's JSON
// report is wanted, and nothing else.
func TestDescribeInput(t *testing.T) {
	tests := []struct {
		file, want string
	}{
		{"testdata/analyze/shop.sarif.golden", "a SARIF log"},
		{"testdata/analyze/shop.openvex.golden", "an OpenVEX document"},
		{"testdata/analyze/shop.cyclonedx.golden", "a CycloneDX BOM"},
		{"../findings/testdata/govulncheck/symbol.json", "a govulncheck report (an input of evident analyze --findings)"},
		{"../findings/testdata/trivy/image.json", "a Trivy report (an input of evident analyze --findings)"},
		{"testdata/waf/traces.jsonl", "OTLP traces (an input of --traces)"},
		{"testdata/waf/analyze.json", ""},
		{"testdata/config/good.yml", ""},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			data, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if got := describeInput(data); got != tt.want {
				t.Errorf("describeInput = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParseReportAssessments(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "waf", "analyze.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"version":1,"findings":[{"vulnerability":{"id":"X"},"service":"s"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		as, problems, err := parseReportAssessments(data, "fuzz.json")
		if err != nil {
			return
		}
		var doc reportDoc
		if json.Unmarshal(data, &doc) == nil && len(as)+len(problems) != len(doc.Findings) {
			t.Errorf("%d findings, %d read and %d problems: some were lost", len(doc.Findings), len(as), len(problems))
		}
	})
}

// TestWAFProxyRuleErrors: evident waf proxy names what is wrong with its
// rules: a service without patches (and those with them), and the file,
// line and rule of a directive that does not compile.
func TestWAFProxyRuleErrors(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := run(t, "waf", "generate", "--report", "testdata/waf/analyze.json", "--traces", "testdata/waf/traces.jsonl",
		"--vulns", "testdata/waf/records", "-o", dir); code != ExitOK {
		t.Fatalf("waf generate: exit %d: %s", code, errOut)
	}
	proxy := func(args ...string) (int, string) {
		t.Helper()
		code, _, errOut := run(t, append([]string{"waf", "proxy", "--upstream", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--rules", dir}, args...)...)
		return code, errOut
	}
	want := "evident: load rules from " + dir + ": no patches for service orders: the services with patches are gateway\n"
	if code, errOut := proxy("--service", "orders"); code != ExitUsage || errOut != want {
		t.Errorf("--service orders: exit %d, stderr %q; want %d, %q", code, errOut, ExitUsage, want)
	}

	conf := filepath.Join(dir, "gateway.conf")
	data, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, `"@rx (?i)^/search(?:`) })
	if i < 0 {
		t.Fatalf("no scope rule for /search in:\n%s", data)
	}
	lines[i] = strings.Replace(lines[i], `^/search(?:`, `^/search((?:`, 1)
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	want = fmt.Sprintf("%s:%d (rule 4936800): failed to compile the directive \"secrule\": error parsing regexp: missing closing )", conf, i+1)
	if code, errOut := proxy("--service", "gateway"); code != ExitUsage || !strings.Contains(errOut, want) {
		t.Errorf("a broken rule: exit %d, stderr %q; want %d and %q", code, errOut, ExitUsage, want)
	}
}

// TestWritePatchReport: DETECTION-ONLY counts every rule emitted
// detection-only; an unproven patch's detections were left out, so the
// summary read 0 for a patch that blocks nothing.
func TestWritePatchReport(t *testing.T) {
	rules := func(modes ...waf.Mode) []waf.Rule {
		var out []waf.Rule
		for i, m := range modes {
			out = append(out, waf.Rule{ID: 4_900_100 + i, Mode: m})
		}
		return out
	}
	tests := []struct {
		name       string
		patch      waf.Patch
		wantDetect string
		wantMissed bool
	}{
		{"proven", waf.Patch{Rules: rules(waf.ModeBlock, waf.ModeBlock, waf.ModeBlock),
			Validation: &waf.Validation{ExploitsBlocked: 4, ExploitsTotal: 4}}, "0", false},
		{"matched legitimate traffic", waf.Patch{Rules: rules(waf.ModeBlock, waf.ModeDetect, waf.ModeBlock),
			Validation: &waf.Validation{ExploitsBlocked: 4, ExploitsTotal: 4, DetectionOnly: 1}}, "1", false},
		{"unproven", waf.Patch{Rules: rules(waf.ModeBlock, waf.ModeDetect, waf.ModeDetect),
			Validation: &waf.Validation{Unproven: "no exploit request was replayed"}}, "2", false},
		{"exploit through", waf.Patch{Rules: rules(waf.ModeBlock, waf.ModeDetect),
			Validation: &waf.Validation{ExploitsBlocked: 3, ExploitsTotal: 4, Unproven: "1 of 4"}}, "1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.patch.Service, tt.patch.Vulnerability, tt.patch.Class = "gateway", "GO-2026-5970", waf.ClassOversizedInput
			var b strings.Builder
			missed := writePatchReport(&b, &waf.PatchSet{Patches: []waf.Patch{tt.patch}})
			lines := strings.Split(strings.TrimSpace(b.String()), "\n")
			if len(lines) != 2 {
				t.Fatalf("report:\n%s\nwant a header and one line", b.String())
			}
			if got := strings.Fields(lines[1])[5]; got != tt.wantDetect {
				t.Errorf("DETECTION-ONLY %s, want %s:\n%s", got, tt.wantDetect, b.String())
			}
			if missed != tt.wantMissed {
				t.Errorf("missed = %v, want %v", missed, tt.wantMissed)
			}
		})
	}
}

// TestWAFProxyStartLog: the proxy says at start which services' patches
// it enforces, and warns when the rules directory holds none; it used to
// log only that it listened, as if patches were in force.
func TestWAFProxyStartLog(t *testing.T) {
	patched := t.TempDir()
	if code, _, errOut := run(t, "waf", "generate", "--report", "testdata/waf/analyze.json", "--traces", "testdata/waf/traces.jsonl",
		"--vulns", "testdata/waf/records", "-o", patched); code != ExitOK {
		t.Fatalf("waf generate: exit %d: %s", code, errOut)
	}
	empty := t.TempDir()
	if err := waf.Export(empty, &waf.PatchSet{IDRange: [2]int{4_900_000, 4_999_999}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir   string
		args        []string
		want        string
		wantWarning bool
	}{
		{"all services", patched, nil, "services=gateway", false},
		{"named service", patched, []string{"--service", "gateway"}, "services=gateway", false},
		{"no patches", empty, nil, `services=""`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			var out, errOut bytes.Buffer
			args := append([]string{"waf", "proxy", "--upstream", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--rules", tt.dir}, tt.args...)
			if code := Run(ctx, args, &out, &errOut); code != ExitOK {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			log := errOut.String()
			if !strings.Contains(log, `msg="waf proxy listening"`) || !strings.Contains(log, tt.want) {
				t.Errorf("log %q, want the listening line with %s", log, tt.want)
			}
			if got := strings.Contains(log, "no virtual patches in --rules"); got != tt.wantWarning {
				t.Errorf("warning %v, want %v: %q", got, tt.wantWarning, log)
			}
		})
	}
}

// TestWAFProxyTLSFlags: a TLS flag without its partner is refused with
// the flags' names; the error named the configuration file's keys
// (cert_file, client_ca_file), which the proxy has no file for.
func TestWAFProxyTLSFlags(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := run(t, "waf", "generate", "--report", "testdata/waf/analyze.json", "--traces", "testdata/waf/traces.jsonl",
		"--vulns", "testdata/waf/records", "-o", dir); code != ExitOK {
		t.Fatalf("waf generate: exit %d: %s", code, errOut)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"cert without key", []string{"--tls-cert-file", "c.pem"}, "evident: --tls-cert-file and --tls-key-file go together\n"},
		{"key without cert", []string{"--tls-key-file", "k.pem"}, "evident: --tls-cert-file and --tls-key-file go together\n"},
		{"client CA without TLS", []string{"--tls-client-ca-file", "ca.pem"},
			"evident: --tls-client-ca-file needs --tls-cert-file and --tls-key-file: clients are asked for a certificate only over TLS\n"},
		{"upstream cert without key", []string{"--upstream-cert-file", "c.pem"}, "evident: --upstream-cert-file and --upstream-key-file go together\n"},
		{"upstream key without cert", []string{"--upstream-key-file", "k.pem"}, "evident: --upstream-cert-file and --upstream-key-file go together\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"waf", "proxy", "--upstream", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--rules", dir}, tt.args...)
			code, _, errOut := run(t, args...)
			if code != ExitUsage || errOut != tt.want {
				t.Errorf("exit %d, stderr %q; want %d, %q", code, errOut, ExitUsage, tt.want)
			}
		})
	}
}
