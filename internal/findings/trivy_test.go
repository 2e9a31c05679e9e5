package findings

import "testing"

func TestParseTrivy(t *testing.T) {
	runGolden(t, ParseTrivy, []goldenCase{
		{name: "go module filesystem", input: "trivy/fs.json", golden: "trivy/fs.golden"},
		{name: "container image", input: "trivy/image.json", golden: "trivy/image.golden"},
	})
}

func TestParseTrivyBad(t *testing.T) {
	const good = `{"VulnerabilityID": "CVE-2021-38561", "PkgName": "golang.org/x/text", "PkgIdentifier": {"PURL": "pkg:golang/golang.org/x/text@v0.3.5"}, "InstalledVersion": "v0.3.5", "FixedVersion": "0.3.7", "Severity": "HIGH"}`
	runBad(t, ParseTrivy, []badCase{
		{
			name: "bad records are skipped",
			input: `{"SchemaVersion": 2, "Results": [
				{"Target": "go.mod", "Type": "gomod", "Vulnerabilities": [
					{"PkgName": "golang.org/x/text", "InstalledVersion": "v0.3.5"},
					{"VulnerabilityID": "CVE-2022-32149", "InstalledVersion": "v0.3.5"},
					{"VulnerabilityID": "CVE-2022-32149", "PkgName": "golang.org/x/text", "InstalledVersion": 5},
					{"VulnerabilityID": "CVE-2022-32149", "PkgName": "golang.org/x/text"},
					{"VulnerabilityID": "CVE-2022-32149", "PkgIdentifier": {"PURL": "pkg:"}, "PkgName": "x"},
					"CVE-2022-32149",
					` + good + `]},
				{"Type": 7}]}`,
			wantFindings: 1,
			wantErrs: []string{
				"in.json: Results[0].Vulnerabilities[0]: no VulnerabilityID",
				"in.json: Results[0].Vulnerabilities[1] (CVE-2022-32149): no PkgName and no PkgIdentifier.PURL",
				"in.json: Results[0].Vulnerabilities[2]: json: cannot unmarshal number into Go struct field trivyVulnerability.InstalledVersion of type string",
				"in.json: Results[0].Vulnerabilities[3] (CVE-2022-32149): package golang.org/x/text: no version",
				`in.json: Results[0].Vulnerabilities[4] (CVE-2022-32149): parse package URL "pkg:": purl is missing type or name`,
				"in.json: Results[0].Vulnerabilities[5]: json: cannot unmarshal string into Go value of type findings.trivyVulnerability",
				"in.json: Results[1]: json: cannot unmarshal number into Go struct field trivyResult.Type of type string",
			},
		},
		{
			name:     "truncated",
			input:    `{"SchemaVersion": 2, "Results": [{"Target": "go.mod", "Vulnerabilities": [` + good,
			wantErrs: []string{"in.json: it ends inside its JSON: it is cut short: malformed input"},
			wantIs:   ErrMalformed,
		},
		{
			name:     "schema version 1",
			input:    `[{"Target": "go.mod"}]`,
			wantErrs: []string{`in.json: not a JSON object (starts with '['): not the expected format`},
			wantIs:   ErrWrongFormat,
		},
		{
			name:     "future schema",
			input:    `{"SchemaVersion": 3, "Results": []}`,
			wantErrs: []string{"in.json: report SchemaVersion 3, want 2: not the expected format"},
			wantIs:   ErrWrongFormat,
		},
		{
			name:     "grype document",
			input:    `{"matches": []}`,
			wantErrs: []string{"in.json: not a Trivy JSON report (no SchemaVersion): not the expected format"},
			wantIs:   ErrWrongFormat,
		},
		{
			name:     "results of the wrong type",
			input:    `{"SchemaVersion": 2, "Results": {}}`,
			wantErrs: []string{"in.json: Results: json: cannot unmarshal object into Go value of type []json.RawMessage: not the expected format"},
			wantIs:   ErrWrongFormat,
		},
	})
}

func FuzzParseTrivy(f *testing.F) {
	fuzzParser(f, ParseTrivy,
		`{"SchemaVersion": 2, "Results": [{"Type": "gomod", "Vulnerabilities": [{"VulnerabilityID": "CVE-1", "VendorIDs": ["DSA-1"], "PkgName": "a/b", "InstalledVersion": "v1.0.0", "FixedVersion": "1.0.1, 2.0.1", "Severity": "HIGH", "SeveritySource": "nvd", "CVSS": {"nvd": {"V3Vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", "V3Score": 7.5}}}]}]}`,
		`{"SchemaVersion": 2, "Results": [{"Type": "debian", "Vulnerabilities": [{"VulnerabilityID": "CVE-1", "PkgName": "openssl", "PkgIdentifier": {"PURL": "pkg:deb/debian/openssl@1.1?arch=amd64"}, "InstalledVersion": "1.1", "FixedVersion": "1.2"}]}]}`,
	)
}
