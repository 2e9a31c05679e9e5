package findings

import "testing"

func TestParseGovulncheck(t *testing.T) {
	runGolden(t, ParseGovulncheck, []goldenCase{
		{name: "symbol level", input: "govulncheck/symbol.json", golden: "govulncheck/symbol.golden"},
		{name: "package level", input: "govulncheck/package.json", golden: "govulncheck/package.golden"},
		{name: "module level", input: "govulncheck/module.json", golden: "govulncheck/module.golden"},
		{name: "binary", input: "govulncheck/binary.json", golden: "govulncheck/binary.golden"},
	})
}

func TestParseGovulncheckBad(t *testing.T) {
	const (
		config = `{"config": {"protocol_version": "v1.0.0", "scanner_name": "govulncheck", "scan_level": "symbol"}}` + "\n"
		osvMsg = `{"osv": {"id": "GO-2021-0113", "modified": "2023-04-03T15:57:51Z", "aliases": ["CVE-2021-38561", "GHSA-ppp9-7jff-5vj2"]}}` + "\n"
		good   = `{"finding": {"osv": "GO-2021-0113", "fixed_version": "v0.3.7", "trace": [{"module": "golang.org/x/text", "version": "v0.3.5", "package": "golang.org/x/text/language", "function": "Parse"}]}}` + "\n"
	)
	runBad(t, ParseGovulncheck, []badCase{
		{
			name:         "truncated stream keeps what came before",
			input:        config + osvMsg + good + `{"finding": {"osv": "GO-2022-1059", "trace": [{"mod`,
			wantFindings: 1,
			wantErrs:     []string{"in.json: message 4: it ends inside its JSON: it is cut short (the rest of the stream is lost): malformed input"},
		},
		{
			name:         "wrong types",
			input:        config + `{"finding": {"osv": 42, "trace": []}}` + "\n" + `{"osv": {"id": ["x"]}}` + "\n" + good,
			wantFindings: 1,
			wantErrs: []string{
				"in.json: message 2 (finding): json: cannot unmarshal number into Go struct field govulncheckFinding.osv of type string",
				"in.json: message 3 (osv): json: cannot unmarshal array into Go struct field Entry.id of type string",
			},
		},
		{
			name: "missing ids and frames",
			input: config +
				`{"finding": {"fixed_version": "v1.0.0", "trace": [{"module": "m", "version": "v1.0.0"}]}}` + "\n" +
				`{"finding": {"osv": "GO-2000-0001"}}` + "\n" +
				`{"finding": {"osv": "GO-2000-0002", "trace": [{"version": "v1.0.0"}]}}` + "\n" +
				`{"finding": {"osv": "GO-2000-0003", "trace": [{"module": "m"}]}}` + "\n" +
				`{"finding": {"osv": "GO-2000-0004", "trace": [{"module": "m", "version": "v1.0.0", "function": "F"}]}}` + "\n" +
				`{"osv": {"aliases": ["CVE-2000-0001"]}}` + "\n" +
				good,
			wantFindings: 1,
			wantErrs: []string{
				"in.json: message 2 (finding): no osv id",
				"in.json: message 3 (finding GO-2000-0001): empty trace",
				"in.json: message 4 (finding GO-2000-0002): trace[0]: no module",
				"in.json: message 5 (finding GO-2000-0003): trace[0]: package m: no version",
				"in.json: message 6 (finding GO-2000-0004): trace[0]: function F without a package",
				"in.json: message 7 (osv): no id",
			},
		},
		{
			name:         "message with two fields",
			input:        config + `{"osv": {"id": "GO-1"}, "finding": {"osv": "GO-1"}}` + "\n" + good,
			wantFindings: 1,
			wantErrs:     []string{"in.json: message 2: a message must have exactly one of the fields config, progress, SBOM, osv, finding"},
		},
		{
			name:     "trivy report",
			input:    `{"SchemaVersion": 2, "Results": []}`,
			wantErrs: []string{"in.json: not a govulncheck JSON stream (the first value is not a message with one of the fields config, progress, SBOM, osv, finding): not the expected format"},
			wantIs:   ErrWrongFormat,
		},
		{
			name:     "not json",
			input:    "Scanning your code and 46 packages across 1 dependent module for known vulnerabilities...",
			wantErrs: []string{"in.json: not a govulncheck JSON stream: invalid character 'S' looking for beginning of value: not the expected format"},
			wantIs:   ErrWrongFormat,
		},
		{
			name:     "empty",
			input:    "",
			wantErrs: []string{"in.json: empty govulncheck stream: not the expected format"},
			wantIs:   ErrWrongFormat,
		},
		{
			name:     "future protocol",
			input:    `{"config": {"protocol_version": "v2.0.0"}}`,
			wantErrs: []string{`in.json: govulncheck protocol version "v2.0.0", want v1.x: not the expected format`},
			wantIs:   ErrWrongFormat,
		},
	})
}

func TestGoSymbol(t *testing.T) {
	tests := []struct {
		frame govulncheckFrame
		want  string
	}{
		{govulncheckFrame{Package: "golang.org/x/text/language", Function: "Parse"}, "golang.org/x/text/language.Parse"},
		{govulncheckFrame{Package: "gopkg.in/yaml.v2", Function: "Decode", Receiver: "*Decoder"}, "gopkg.in/yaml.v2.Decoder.Decode"},
		{govulncheckFrame{Package: "example.com/tree", Function: "Insert", Receiver: "*Tree[K,V]"}, "example.com/tree.Tree.Insert"},
		{govulncheckFrame{Package: "net/http", Function: "ServeConn", Receiver: "Server"}, "net/http.Server.ServeConn"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := goSymbol(tt.frame); got != tt.want {
				t.Errorf("goSymbol(%+v) = %q, want %q", tt.frame, got, tt.want)
			}
		})
	}
}

func FuzzParseGovulncheck(f *testing.F) {
	fuzzParser(f, ParseGovulncheck,
		`{"config": {"protocol_version": "v1.0.0", "scan_level": "symbol"}}
{"osv": {"id": "GO-2021-0113", "aliases": ["CVE-2021-38561"], "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}]}}
{"finding": {"osv": "GO-2021-0113", "fixed_version": "v0.3.7", "trace": [{"module": "golang.org/x/text", "version": "v0.3.5", "package": "golang.org/x/text/language", "function": "Parse", "receiver": "*T"}]}}
{"finding": {"osv": "GO-2021-0113", "trace": [{"module": "golang.org/x/text", "version": "v0.3.5"}]}}`,
	)
}
