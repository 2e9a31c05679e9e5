package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
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
