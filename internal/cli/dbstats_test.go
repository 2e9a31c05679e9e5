package cli

import (
	"path/filepath"
	"testing"
)

func TestDBStats(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		// golden holds stdout, then a line "--- stderr", then stderr.
		golden string
	}{
		{
			name:     "data directory",
			args:     []string{"--data", "testdata/dbstats/data", "db", "stats"},
			wantCode: ExitOK,
			golden:   "data.golden",
		},
		{
			name:     "vuln.go.dev layout, KEV and EPSS by flag",
			args:     []string{"db", "stats", "--vulns", "../vulndb/testdata/govulndb", "--kev", "../vulndb/testdata/kev.json", "--epss", "../vulndb/testdata/epss.csv"},
			wantCode: ExitOK,
			golden:   "govulndb.golden",
		},
		{
			name:     "skipped record",
			args:     []string{"db", "stats", "--vulns", "testdata/dbstats/bad"},
			wantCode: ExitSkipped,
			golden:   "skipped.golden",
		},
		{
			// PyPA withdrew PYSEC-2022-15 by emptying its affected entry:
			// counted as withdrawn, not skipped, exit 0.
			name:     "withdrawn record",
			args:     []string{"db", "stats", "--vulns", "../vulndb/testdata/pypa"},
			wantCode: ExitOK,
			golden:   "withdrawn.golden",
		},
		{
			name:     "text file named .zip",
			args:     []string{"db", "stats", "--vulns", "testdata/dbstats/notzip.zip"},
			wantCode: ExitUsage,
			golden:   "notzip.golden",
		},
		{
			// A user's entry gives the npm record a function; the
			// invalid one is named and skipped.
			name:     "knowledge files of the configuration",
			args:     []string{"--data", "testdata/dbstats/data", "db", "stats", "--config", "testdata/dbstats/knowledge.yml"},
			wantCode: ExitSkipped,
			golden:   "knowledge.golden",
		},
		{
			name:     "no database",
			args:     []string{"--data", "testdata/dbstats/nope", "db", "stats"},
			wantCode: ExitUsage,
			golden:   "nodb.golden",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, errOut)
			}
			got := out + "--- stderr\n" + errOut
			golden(t, filepath.Join("testdata", "dbstats", tt.golden), []byte(got))
		})
	}
}
