package findings

import (
	"strconv"
	"testing"
)

func TestParseGrype(t *testing.T) {
	runGolden(t, ParseGrype, []goldenCase{
		{name: "go module directory", input: "grype/dir.json", golden: "grype/dir.golden"},
		{name: "container image", input: "grype/image.json", golden: "grype/image.golden"},
	})
}

func TestParseGrypeBad(t *testing.T) {
	const good = `{"vulnerability": {"id": "GHSA-ppp9-7jff-5vj2", "severity": "High", "fix": {"versions": ["0.3.7"], "state": "fixed"}}, "relatedVulnerabilities": [{"id": "CVE-2021-38561"}], "artifact": {"name": "golang.org/x/text", "version": "v0.3.5", "type": "go-module", "purl": "pkg:golang/golang.org/x/text@v0.3.5"}}`
	runBad(t, ParseGrype, []badCase{
		{
			name: "bad records are skipped",
			input: `{"matches": [
				{"vulnerability": {"severity": "High"}, "artifact": {"name": "golang.org/x/text", "version": "v0.3.5"}},
				{"vulnerability": {"id": "GHSA-69ch-w2m2-3vjp"}, "artifact": {"version": "v0.3.5"}},
				{"vulnerability": {"id": "GHSA-69ch-w2m2-3vjp", "cvss": {}}, "artifact": {"name": "golang.org/x/text"}},
				{"vulnerability": {"id": "GHSA-69ch-w2m2-3vjp"}, "artifact": {"name": "golang.org/x/text", "type": "go-module"}},
				null,
				` + good + `],
				"descriptor": {"name": "grype"}}`,
			wantFindings: 1,
			wantErrs: []string{
				"in.json: matches[0]: no vulnerability.id",
				"in.json: matches[1] (GHSA-69ch-w2m2-3vjp): no artifact.name and no artifact.purl",
				"in.json: matches[2]: json: cannot unmarshal object into Go struct field grypeVulnerability.vulnerability.cvss of type []findings.grypeCVSS",
				"in.json: matches[3] (GHSA-69ch-w2m2-3vjp): package golang.org/x/text: no version",
				"in.json: matches[4]: no vulnerability.id",
			},
		},
		{
			name:     "truncated",
			input:    `{"matches": [` + good + `, {"vulnerability": {"id": "GHSA-`,
			wantErrs: []string{"in.json: it ends inside its JSON: it is cut short: malformed input"},
			wantIs:   ErrMalformed,
		},
		{
			name:     "two reports",
			input:    "{\"matches\": [" + good + "]}\n{\"matches\": [" + good + "]}\n",
			wantErrs: []string{"in.json: a second JSON value ({) follows its JSON object, which ends at byte " + strconv.Itoa(len(good)+15) + ": give each report as an input of its own: malformed input"},
			wantIs:   ErrMalformed,
		},
		{
			// grype's notice of a newer version, on its standard error,
			// when that went into the report's file too.
			name:         "text after the report",
			input:        `{"matches": [` + good + `]}` + "\nA newer version of grype is available for download: 0.87.0 (installed version is 0.86.1)\n",
			wantFindings: 1,
		},
		{
			name:     "trivy report",
			input:    `{"SchemaVersion": 2, "Results": []}`,
			wantErrs: []string{"in.json: not a Grype JSON document (no matches): not the expected format"},
			wantIs:   ErrWrongFormat,
		},
		{
			name:     "another tool",
			input:    `{"matches": [], "descriptor": {"name": "syft"}}`,
			wantErrs: []string{`in.json: written by "syft", not grype: not the expected format`},
			wantIs:   ErrWrongFormat,
		},
	})
}

func FuzzParseGrype(f *testing.F) {
	fuzzParser(f, ParseGrype,
		`{"matches": [{"vulnerability": {"id": "GHSA-1", "severity": "High", "cvss": [{"type": "Primary", "version": "3.1", "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", "metrics": {"baseScore": 7.5}}], "fix": {"versions": ["0.3.7"], "state": "fixed"}}, "relatedVulnerabilities": [{"id": "CVE-1"}], "artifact": {"name": "a/b", "version": "v0.3.5", "type": "go-module", "purl": "pkg:golang/a/b@v0.3.5"}}], "descriptor": {"name": "grype"}}`,
		`{"matches": [{"vulnerability": {"id": "CVE-1"}, "artifact": {"name": "busybox", "version": "1.34.1", "type": "binary"}}], "distro": {"name": "debian"}}`,
	)
}
