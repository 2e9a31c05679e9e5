package findings

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/vulndb"
)

// ecosystemsDB loads the npm, Maven, PyPI and SwiftURL records of
// testdata/ecosystems/osv (see testdata/README.md).
func ecosystemsDB(t testing.TB) *vulndb.DB {
	t.Helper()
	db, lerrs, err := vulndb.Load(context.Background(), vulndb.Options{Sources: []string{filepath.Join("testdata", "ecosystems", "osv")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range lerrs {
		t.Errorf("load test records: %v", e)
	}
	return db
}

// testLock is the lockfile npm audit ran on for npm/npm-audit.json.
func testLock(t testing.TB) NPMLock {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "ecosystems", "npm", "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lock, err := ReadNPMLock(f, f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return lock
}

func TestParseNPMAudit(t *testing.T) {
	lock := testLock(t)
	runGolden(t, func(r io.Reader, name string) ([]Finding, []error) { return ParseNPMAudit(r, name, lock) }, []goldenCase{
		{name: "npm 11", input: "ecosystems/npm/npm-audit.json", golden: "ecosystems/npm/npm-audit.golden"},
	})
}

func TestParseNPMAuditBad(t *testing.T) {
	lock := NPMLock{"node_modules/lodash": "4.17.15", "node_modules/minimist": "1.2.5"}
	runBad(t, func(r io.Reader, name string) ([]Finding, []error) { return ParseNPMAudit(r, name, lock) }, []badCase{
		{name: "npm 6 report", input: `{"actions": [], "advisories": {}}`, wantIs: ErrWrongFormat,
			wantErrs: []string{"in.json: npm 6 audit report (advisories, no auditReportVersion); run npm audit --json of npm 7 or later: not the expected format"}},
		{name: "other version", input: `{"auditReportVersion": 3, "vulnerabilities": {}}`, wantIs: ErrWrongFormat,
			wantErrs: []string{"in.json: auditReportVersion 3, want 2: not the expected format"}},
		{name: "truncated", input: `{"auditReportVersion": 2, "vulnerabilities": {"lodash": {`, wantIs: ErrMalformed,
			wantErrs: []string{"in.json: it ends inside its JSON: it is cut short: malformed input"}},
		{
			name: "a node not in the lockfile and an advisory without a GHSA do not take the others down",
			input: `{"auditReportVersion": 2, "vulnerabilities": {
				"lodash": {"name": "lodash", "via": [{"source": 1, "url": "https://github.com/advisories/GHSA-35jh-r3h4-6jhm", "severity": "high", "range": "<4.17.21"}],
					"nodes": ["node_modules/lodash", "node_modules/x/node_modules/lodash"]},
				"minimist": {"name": "minimist", "via": [{"source": 2, "url": "https://example.com/advisories/2", "severity": "low", "range": "<2"}, 7], "nodes": ["node_modules/minimist"]}}}`,
			wantFindings: 1,
			wantErrs: []string{
				"in.json: vulnerabilities.lodash (node_modules/x/node_modules/lodash): installed version unknown: the report does not state it, and the lockfile npm audit ran on (package-lock.json beside the report) does not list the node",
				`in.json: vulnerabilities.minimist.via[0] (advisory 2): url "https://example.com/advisories/2" names no GitHub advisory`,
				"in.json: vulnerabilities.minimist.via[1]: neither an advisory nor a package name",
			},
		},
	})
}

// TestParseNPMAuditNoLock: without the lockfile, every node is an error
// that says where its version would come from.
func TestParseNPMAuditNoLock(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "ecosystems", "npm", "npm-audit.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs, errs := ParseNPMAudit(f, "audit.json", nil)
	if len(fs) != 0 {
		t.Errorf("got %d findings without a lockfile, want 0", len(fs))
	}
	// jsonwebtoken, lodash, minimist (two nodes); mkdirp is vulnerable
	// only through minimist.
	if len(errs) != 4 {
		t.Fatalf("got %d errors, want 4: %v", len(errs), errs)
	}
	for _, err := range errs {
		if _, ok := errors.AsType[*RecordError](err); !ok || !strings.Contains(err.Error(), "installed version unknown") {
			t.Errorf("error %v: want a record error about the version", err)
		}
	}
}

func TestReadNPMLockBad(t *testing.T) {
	tests := []struct{ name, input, want string }{
		{"npm 6 lockfile", `{"lockfileVersion": 1, "dependencies": {}}`, "lock.json: lockfileVersion 1 has no packages (npm 6 lockfile; npm 7 or later writes them): not the expected format"},
		{"not a lockfile", `{"name": "x"}`, "lock.json: not an npm lockfile (no lockfileVersion): not the expected format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadNPMLock(strings.NewReader(tt.input), "lock.json")
			if err == nil || err.Error() != tt.want || !errors.Is(err, ErrWrongFormat) {
				t.Errorf("error %v, want %q wrapping ErrWrongFormat", err, tt.want)
			}
		})
	}
}

func TestNPMRangeFix(t *testing.T) {
	tests := []struct {
		rng, version string
		wantIn       bool
		wantFix      string
	}{
		{"<4.17.21", "4.17.15", true, "4.17.21"},
		{"<4.17.21", "4.17.21", false, ""},
		{">=1.0.0 <1.2.6", "1.2.5", true, "1.2.6"},
		{">=1.0.0 <1.2.6", "0.0.8", false, ""},
		{"<0.2.4 || >=1.0.0 <1.2.6", "0.0.8", true, "0.2.4"},
		{"<0.2.4 || >=1.0.0 <1.2.6", "1.2.5", true, "1.2.6"},
		{"<0.2.4 || >=1.0.0 <1.2.6", "0.2.4", false, ""},
		{"<=8.5.1", "8.5.1", true, ""},
		{">2.0.0-beta.1 <2.0.0", "2.0.0-beta.2", true, "2.0.0"},
		{"*", "1.0.0", true, ""},
		{"1.2.3", "1.2.3", true, ""},
		// What does not parse is taken as npm listed it: vulnerable.
		{"^1.2.3", "1.2.4", true, ""},
		{"<1.0.0 || ~2.1", "3.0.0", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.rng+" "+tt.version, func(t *testing.T) {
			in, fix := npmRangeFix(tt.rng, tt.version)
			if in != tt.wantIn || fix != tt.wantFix {
				t.Errorf("npmRangeFix(%q, %q) = %v, %q; want %v, %q", tt.rng, tt.version, in, fix, tt.wantIn, tt.wantFix)
			}
		})
	}
}

func TestParseTrivyEcosystems(t *testing.T) {
	runGolden(t, ParseTrivy, []goldenCase{
		{name: "npm", input: "ecosystems/npm/trivy-fs.json", golden: "ecosystems/npm/trivy-fs.golden"},
		{name: "pypi", input: "ecosystems/pypi/trivy-fs.json", golden: "ecosystems/pypi/trivy-fs.golden"},
		{name: "maven", input: "ecosystems/maven/trivy-fs.json", golden: "ecosystems/maven/trivy-fs.golden"},
	})
}

func TestParsePipAudit(t *testing.T) {
	runGolden(t, ParsePipAudit, []goldenCase{
		{name: "pip-audit 2", input: "ecosystems/pypi/pip-audit.json", golden: "ecosystems/pypi/pip-audit.golden"},
	})
}

func TestParsePipAuditBad(t *testing.T) {
	runBad(t, ParsePipAudit, []badCase{
		{name: "package.json", input: `{"name": "x", "dependencies": {"lodash": "4.17.15"}}`, wantIs: ErrWrongFormat,
			wantErrs: []string{"in.json: not a pip-audit JSON report (no dependencies and fixes): not the expected format"}},
		{name: "dependencies not a list", input: `{"dependencies": {}, "fixes": []}`, wantIs: ErrWrongFormat,
			wantErrs: []string{"in.json: dependencies: json: cannot unmarshal object into Go value of type []json.RawMessage: not the expected format"}},
		{
			name: "bad dependencies do not take the others down",
			input: `{"dependencies": [{"name": "requests", "version": "2.25.1", "vulns": [{"id": "PYSEC-2023-74", "fix_versions": ["2.31.0"]}]},
				{"name": "x", "version": "1.0", "vulns": [{"fix_versions": []}]}, {"name": "y", "vulns": []}, {"name": 3}], "fixes": []}`,
			wantFindings: 1,
			wantErrs: []string{
				"in.json: dependencies[1] (x): vulns[0]: no id",
				"in.json: dependencies[2] (y): package y: no version",
				"in.json: dependencies[3]: json: cannot unmarshal number into Go struct field pipAuditDependency.name of type string",
			},
		},
	})
}

func TestParseLockfile(t *testing.T) {
	db := ecosystemsDB(t)
	runGolden(t, withMatcher(ParseLockfile, db), []goldenCase{
		{name: "package-lock", input: "ecosystems/npm/package-lock.json", golden: "ecosystems/npm/package-lock.golden"},
		{name: "pnpm", input: "ecosystems/npm/pnpm-lock.yaml", golden: "ecosystems/npm/pnpm-lock.golden"},
		{name: "yarn", input: "ecosystems/npm/yarn.lock", golden: "ecosystems/npm/yarn.golden"},
		{name: "requirements", input: "ecosystems/pypi/requirements.txt", golden: "ecosystems/pypi/requirements.golden"},
		{name: "poetry", input: "ecosystems/pypi/poetry.lock", golden: "ecosystems/pypi/poetry.golden"},
		{name: "pom", input: "ecosystems/maven/pom.xml", golden: "ecosystems/maven/pom.golden"},
		{name: "gradle", input: "ecosystems/maven/gradle.lockfile", golden: "ecosystems/maven/gradle.golden"},
	})
}

// TestLockfilesAgree: the npm project's three lockfiles, npm audit on it
// and cyclonedx-npm's SBOM of it find the same vulnerabilities in the same
// package versions.
func TestLockfilesAgree(t *testing.T) {
	db := ecosystemsDB(t)
	read := func(name string, parse parser) map[string]bool {
		t.Helper()
		f, err := os.Open(filepath.Join("testdata", "ecosystems", "npm", name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fs, errs := parse(f, name)
		for _, err := range errs {
			t.Errorf("%v", err)
		}
		set := map[string]bool{}
		for _, x := range fs {
			set[x.Package.PURL+" "+x.Vulnerability.ID] = true
		}
		return set
	}
	lock := testLock(t)
	want := read("package-lock.json", withMatcher(ParseLockfile, db))
	if len(want) != 5 {
		t.Errorf("package-lock.json: %d findings, want 5 (lodash ×2, minimist ×2, jsonwebtoken): %v", len(want), want)
	}
	for name, parse := range map[string]parser{
		"pnpm-lock.yaml":         withMatcher(ParseLockfile, db),
		"yarn.lock":              withMatcher(ParseLockfile, db),
		"npm-audit.json":         func(r io.Reader, name string) ([]Finding, []error) { return ParseNPMAudit(r, name, lock) },
		"cyclonedx-npm.cdx.json": withMatcher(ParseCycloneDX, db),
	} {
		if diff := cmp.Diff(want, read(name, parse)); diff != "" {
			t.Errorf("%s: findings differ from package-lock.json's (-lock +%s):\n%s", name, name, diff)
		}
	}
}

func TestParseLockfileBad(t *testing.T) {
	db := ecosystemsDB(t)
	tests := []struct {
		name, file, input string
		wantIs            error
		want              string
	}{
		{"unknown name", "deps.txt", "requests==2.25.1\n", ErrWrongFormat, "deps.txt: not a lockfile evident reads (" + lockfileNames + "): not the expected format"},
		{"broken package-lock", "package-lock.json", `{"lockfileVersion": 3, "packages": {`, ErrMalformed, "package-lock.json: javascript/packagelockjson: "},
		{"broken pom", "pom.xml", `<project><dependencies>`, ErrMalformed, "pom.xml: java/pomxml: "},
		// PyYAML 5.3.1 is affected, the 6.0 pip installs is not.
		{"requirement at least", "requirements.txt", "PyYAML>=5.3.1\n", nil, "requirements.txt: PyYAML>=5.3.1: no pinned version (== or ===): >=5.3.1 is a bound, not the version pip installs"},
		{"requirement compatible release", "requirements.txt", "Jinja2 ~= 2.11.2 ; python_version >= '3.6'\n", nil, "requirements.txt: Jinja2 ~= 2.11.2 ; python_version >= '3.6': no pinned version (== or ===): ~=2.11.2 is a bound, not the version pip installs"},
		// PyYAML is pinned in base.txt, which is not read from here.
		{"requirements include", "requirements.txt", "-r base.txt # shared pins\n", nil, "requirements.txt: -r base.txt: the packages of base.txt are not read from here: give it too, named as evident reads a requirements file (*requirements*.txt)"},
		{"requirements include of a requirements file", "requirements.txt", "--requirement=requirements-base.txt\n", nil, "requirements.txt: --requirement=requirements-base.txt: the packages of requirements-base.txt are not read from here: give it too"},
		{"requirement at most", "requirements.txt", "jinja2<=2.11.2\n", nil, "requirements.txt: jinja2<=2.11.2: no pinned version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, errs := ParseLockfile(strings.NewReader(tt.input), tt.file, db)
			if len(fs) != 0 || len(errs) != 1 {
				t.Fatalf("got %d findings, errors %v; want one error", len(fs), errs)
			}
			if _, isRecord := errors.AsType[*RecordError](errs[0]); tt.wantIs == nil && !isRecord || tt.wantIs != nil && !errors.Is(errs[0], tt.wantIs) {
				t.Errorf("error %q: want a *RecordError (wantIs nil) or one wrapping %v", errs[0], tt.wantIs)
			}
			if !strings.HasPrefix(errs[0].Error(), tt.want) {
				t.Errorf("error %q, want prefix %q", errs[0], tt.want)
			}
		})
	}
}

// TestParseLockfilePOMVersions: a POM's dependency is matched at the
// version it pins, and one whose version the file does not tell (a range,
// a property of a parent POM) is a skipped record, not matched at a
// bound nor left out without a word.
func TestParseLockfilePOMVersions(t *testing.T) {
	db := ecosystemsDB(t)
	// GHSA-mjmj-j48q-9wg2 affects org.yaml:snakeyaml below 2.0.
	tests := []struct {
		name, deps string
		want       []string
		wantErrs   []string
	}{
		{"soft requirement", "<dependencies><dependency><groupId>org.yaml</groupId><artifactId>snakeyaml</artifactId><version>1.33</version></dependency></dependencies>",
			[]string{"org.yaml:snakeyaml@1.33 GHSA-mjmj-j48q-9wg2"}, nil},
		{"exact version", "<dependencies><dependency><groupId>org.yaml</groupId><artifactId>snakeyaml</artifactId><version>[1.33]</version></dependency></dependencies>",
			[]string{"org.yaml:snakeyaml@1.33 GHSA-mjmj-j48q-9wg2"}, nil},
		{"property of the file", "<properties><snakeyaml.version>1.33</snakeyaml.version></properties><dependencies><dependency><groupId>org.yaml</groupId><artifactId>snakeyaml</artifactId><version>${snakeyaml.version}</version></dependency></dependencies>",
			[]string{"org.yaml:snakeyaml@1.33 GHSA-mjmj-j48q-9wg2"}, nil},
		// Maven resolves [1.26,) to the newest release, 2.x.
		{"range", "<dependencies><dependency><groupId>org.yaml</groupId><artifactId>snakeyaml</artifactId><version>[1.26,)</version></dependency></dependencies>",
			nil, []string{"pom.xml: org.yaml:snakeyaml: no pinned version: [1.26,) is a range, and the version Maven resolves it to is not in the file"}},
		{"managed range", "<dependencyManagement><dependencies><dependency><groupId>org.yaml</groupId><artifactId>snakeyaml</artifactId><version>[1.26,2.1)</version></dependency></dependencies></dependencyManagement><dependencies><dependency><groupId>org.yaml</groupId><artifactId>snakeyaml</artifactId></dependency></dependencies>",
			nil, []string{"pom.xml: org.yaml:snakeyaml: no pinned version: [1.26,2.1) is a range, and the version Maven resolves it to is not in the file"}},
		{"own version over a managed range", "<dependencyManagement><dependencies><dependency><groupId>org.yaml</groupId><artifactId>snakeyaml</artifactId><version>[1.26,)</version></dependency></dependencies></dependencyManagement><dependencies><dependency><groupId>org.yaml</groupId><artifactId>snakeyaml</artifactId><version>1.33</version></dependency></dependencies>",
			[]string{"org.yaml:snakeyaml@1.33 GHSA-mjmj-j48q-9wg2"}, nil},
		{"property of a parent", "<parent><groupId>com.example</groupId><artifactId>parent</artifactId><version>1</version></parent><dependencies><dependency><groupId>org.yaml</groupId><artifactId>snakeyaml</artifactId><version>${snakeyaml.version}</version></dependency></dependencies>",
			nil, []string{"pom.xml: org.yaml:snakeyaml: version ${snakeyaml.version} names a property the file does not define (a parent POM's?): not read"}},
		// Spring Boot's starter parent, or an imported BOM, manages it.
		{"version of a parent", "<parent><groupId>org.springframework.boot</groupId><artifactId>spring-boot-starter-parent</artifactId><version>2.7.0</version></parent><dependencies><dependency><groupId>org.yaml</groupId><artifactId>snakeyaml</artifactId></dependency></dependencies>",
			nil, []string{"pom.xml: org.yaml:snakeyaml: version not in the file: a parent POM or an imported BOM gives it (dependencyManagement, properties), and evident reads only the file given"}},
		{"managed version of a parent's property", "<parent><groupId>com.example</groupId><artifactId>parent</artifactId><version>1</version></parent><dependencyManagement><dependencies><dependency><groupId>org.yaml</groupId><artifactId>snakeyaml</artifactId><version>${snakeyaml.version}</version></dependency></dependencies></dependencyManagement><dependencies><dependency><groupId>org.yaml</groupId><artifactId>snakeyaml</artifactId></dependency></dependencies>",
			nil, []string{"pom.xml: org.yaml:snakeyaml: version not in the file: a parent POM or an imported BOM gives it (dependencyManagement, properties), and evident reads only the file given"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pom := "<project><modelVersion>4.0.0</modelVersion><groupId>com.example</groupId><artifactId>app</artifactId><version>1.0.0</version>" + tt.deps + "</project>"
			fs, errs := ParseLockfile(strings.NewReader(pom), "pom.xml", db)
			var got, gotErrs []string
			for _, f := range fs {
				got = append(got, f.Package.Name+"@"+f.Package.Version+" "+f.Vulnerability.ID)
			}
			for _, err := range errs {
				if _, ok := errors.AsType[*RecordError](err); !ok {
					t.Errorf("error %v is not a *RecordError", err)
				}
				gotErrs = append(gotErrs, err.Error())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantErrs, gotErrs); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseLockfileNPMWorkspaces: a workspace of the project is its own
// source, not the registry package of its name; one that is also
// installed from the registry at that version is.
func TestParseLockfileNPMWorkspaces(t *testing.T) {
	db := ecosystemsDB(t)
	// lodash 4.17.20 is affected by GHSA-35jh-r3h4-6jhm, minimist 1.2.5
	// by GHSA-xvch-5gv4-984h; the workspace is named lodash to show it.
	const workspace = `"": {"name": "app", "workspaces": ["packages/*"]},
		"node_modules/lodash": {"resolved": "packages/lodash", "link": true},
		"packages/lodash": {"name": "lodash", "version": "4.17.20", "dependencies": {"minimist": "1.2.5"}},
		"node_modules/minimist": {"version": "1.2.5", "resolved": "https://registry.npmjs.org/minimist/-/minimist-1.2.5.tgz"}`
	tests := []struct {
		name, packages string
		want           []string
	}{
		{"workspace", workspace, []string{"minimist@1.2.5 GHSA-xvch-5gv4-984h"}},
		{"workspace and registry package", workspace + `,
		"node_modules/minimist/node_modules/lodash": {"version": "4.17.20", "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.20.tgz"}`,
			[]string{"lodash@4.17.20 GHSA-35jh-r3h4-6jhm", "minimist@1.2.5 GHSA-xvch-5gv4-984h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lock := `{"name": "app", "lockfileVersion": 3, "requires": true, "packages": {` + tt.packages + `}}`
			fs, errs := ParseLockfile(strings.NewReader(lock), "package-lock.json", db)
			for _, err := range errs {
				t.Error(err)
			}
			var got []string
			for _, f := range fs {
				got = append(got, f.Package.Name+"@"+f.Package.Version+" "+f.Vulnerability.ID)
			}
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMavenAliases: Debian's bcprov jar (syft names it
// org.bouncycastle:bcprov) and a pom's bcprov-jdk15on are matched to the
// record that names bcprov-jdk18on, and the finding says why.
func TestMavenAliases(t *testing.T) {
	db := ecosystemsDB(t)
	runGolden(t, withMatcher(ParseCycloneDX, db), []goldenCase{
		{name: "syft, Debian jars", input: "ecosystems/maven/syft-debian-jars.cdx.json", golden: "ecosystems/maven/syft-debian-jars.golden"},
	})
	f, err := os.Open(filepath.Join("testdata", "ecosystems", "maven", "pom.xml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs, _ := ParseLockfile(f, "pom.xml", db)
	var got []string
	for _, x := range fs {
		for _, s := range x.Sources {
			if s.Match != "" {
				got = append(got, x.Package.Name+" "+x.Vulnerability.ID+" "+s.Match[:strings.Index(s.Match, ":")])
			}
		}
	}
	want := []string{"org.bouncycastle:bcprov-jdk15on GHSA-hr8g-6v94-x4m9 the record names org.bouncycastle"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alias matches (-want +got):\n%s", diff)
	}
}

func TestParseMavenAliases(t *testing.T) {
	table, err := parseMavenAliases(mavenAliasesYAML)
	if err != nil {
		t.Fatalf("maven_aliases.yaml: %v", err)
	}
	if g := table["org.bouncycastle:bcprov"]; g == nil || g != table["org.bouncycastle:bcprov-jdk18on"] {
		t.Errorf("bcprov and bcprov-jdk18on are not one group")
	}
	tests := []struct{ name, input, want string }{
		{"unknown key", "groups: [{reason: r, references: [x], names: [a:b, a:c], url: y}]", "parse maven alias table: yaml: unmarshal errors:\n  line 1: field url not found in type findings.mavenAliasGroup"},
		{"no reason", "groups: [{references: [x], names: [a:b, a:c]}]", "maven alias table: groups[0]: no reason"},
		{"no references", "groups: [{reason: r, names: [a:b, a:c]}]", "maven alias table: groups[0]: no references"},
		{"one name", "groups: [{reason: r, references: [x], names: [a:b]}]", "maven alias table: groups[0]: fewer than two names"},
		{"not coordinates", "groups: [{reason: r, references: [x], names: [a:b, c]}]", `maven alias table: groups[0]: "c" is not group:artifact`},
		{"name in two groups", "groups: [{reason: r, references: [x], names: [a:b, a:c]}, {reason: r, references: [x], names: [a:b, a:d]}]", "maven alias table: a:b is in two groups"},
		{"empty", "groups: []", "maven alias table: no groups"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseMavenAliases([]byte(tt.input))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCycloneDXNPM(t *testing.T) {
	runGolden(t, withMatcher(ParseCycloneDX, ecosystemsDB(t)), []goldenCase{
		{name: "cyclonedx-npm 4.2.1", input: "ecosystems/npm/cyclonedx-npm.cdx.json", golden: "ecosystems/npm/cyclonedx-npm.golden"},
	})
}

// TestSwiftSBOM matches Syft's SBOM of a Package.resolved that pins
// swift-nio 2.41.0 against GitHub's record of CVE-2022-3215, which OSV
// files under SwiftURL (fixed in 2.42.0). Read as the unknown "swift",
// the package met no record and the SBOM looked clean.
func TestSwiftSBOM(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "ecosystems", "swift", "syft.cdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs, errs := ParseCycloneDX(f, "syft.cdx.json", ecosystemsDB(t))
	for _, err := range errs {
		t.Errorf("unexpected error: %v", err)
	}
	type match struct{ PURL, Ecosystem, Name, ID, Fix string }
	var got []match
	for _, f := range fs {
		got = append(got, match{f.Package.PURL, f.Package.Ecosystem, f.Package.Name, f.Vulnerability.ID, f.FixedVersion})
	}
	want := []match{{"pkg:swift/github.com/apple/swift-nio@2.41.0", "SwiftURL", "github.com/apple/swift-nio", "GHSA-7fj7-39wj-c64f", "2.42.0"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings mismatch (-want +got):\n%s", diff)
	}
}

// TestSyftUnknownVersion: Syft gives a package whose version it could
// not read (a pom.xml dependency without one, a Swift package pinned to a
// branch) the version UNKNOWN and a package URL without one. Matched as a
// version, UNKNOWN was affected by every range from 0 (snakeyaml by
// GHSA-mjmj-j48q-9wg2, fixed in 2.0; swift-nio by GHSA-7fj7-39wj-c64f);
// each is a skipped record that says so. One no record names is left
// out without a word: Syft lists the scanned application's own jar so.
func TestSyftUnknownVersion(t *testing.T) {
	tests := []struct {
		input    string
		parse    func(io.Reader, string, Matcher) ([]Finding, []error)
		wantErrs []string
	}{
		{"syft.cdx.json", ParseCycloneDX, []string{
			"syft.cdx.json: pkg:maven/org.yaml/snakeyaml?package-id=fe5a5c7f968447d2: Maven package org.yaml:snakeyaml: records name it, but its version is UNKNOWN, Syft's for one it could not read: no version",
			"syft.cdx.json: 8b95d0f82c17d610: SwiftURL package github.com/apple/swift-nio: records name it, but its version is UNKNOWN, Syft's for one it could not read: no version",
		}},
		{"syft.spdx.json", ParseSPDX, []string{
			"syft.spdx.json: SPDXRef-Package-java-archive-snakeyaml-fe5a5c7f968447d2: Maven package org.yaml:snakeyaml: records name it, but its version is UNKNOWN, Syft's for one it could not read: no version",
			"syft.spdx.json: SPDXRef-Package-swift-swift-nio-8b95d0f82c17d610: SwiftURL package github.com/apple/swift-nio: records name it, but its version is UNKNOWN, Syft's for one it could not read: no version",
		}},
	}
	db := ecosystemsDB(t)
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "ecosystems", "unknown", tt.input))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fs, errs := tt.parse(f, tt.input, db)
			for _, f := range fs {
				t.Errorf("unexpected finding %s of %s", f.Vulnerability.ID, f.Package.PURL)
			}
			var got []string
			for _, err := range errs {
				if !errors.Is(err, errNoVersion) {
					t.Errorf("error %v does not wrap errNoVersion", err)
				}
				got = append(got, err.Error())
			}
			if diff := cmp.Diff(tt.wantErrs, got); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDetectFile(t *testing.T) {
	tests := []struct {
		name, content string
		want          Format
		wantErr       bool
	}{
		{"yarn.lock", "# THIS IS AN AUTOGENERATED FILE.\n", FormatLockfile, false},
		{"app/requirements-prod.txt", "requests==2.25.1\n", FormatLockfile, false},
		{"pom.xml", "<?xml version=\"1.0\"?><project>", FormatLockfile, false},
		{"gradle.lockfile", "# This is a Gradle generated file\n", FormatLockfile, false},
		{"reports/checkout.json", `{"lockfileVersion": 3, "packages": {}}`, FormatLockfile, false},
		{"requirements.txt", `{"auditReportVersion": 2}`, FormatNPMAudit, false}, // content first
		{"reports/checkout.yarn.lock", "# THIS IS AN AUTOGENERATED FILE.\n", FormatLockfile, false},
		{"reports/catalog.pom.xml", "<?xml version=\"1.0\"?><project>", FormatLockfile, false},
		{"reports/api.requirements.txt", "requests==2.25.1\n", FormatLockfile, false},
		{"notes.txt", "requests==2.25.1\n", "", true},
		{"checkout.notes.txt", "requests==2.25.1\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DetectFile(tt.name, []byte(tt.content))
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("DetectFile(%q) = %q, %v; want %q, error %v", tt.name, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzParseNPMAudit(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("testdata", "ecosystems", "npm", "npm-audit.json"))
	if err != nil {
		f.Fatal(err)
	}
	lock := testLock(f)
	fuzzParser(f, func(r io.Reader, name string) ([]Finding, []error) { return ParseNPMAudit(r, name, lock) }, string(data))
}

func FuzzParsePipAudit(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("testdata", "ecosystems", "pypi", "pip-audit.json"))
	if err != nil {
		f.Fatal(err)
	}
	fuzzParser(f, ParsePipAudit, string(data))
}

// FuzzParseLockfile feeds each lockfile format (chosen by the seed's
// first line, a file name) to ParseLockfile.
func FuzzParseLockfile(f *testing.F) {
	db := ecosystemsDB(f)
	for _, name := range []string{"npm/package-lock.json", "npm/pnpm-lock.yaml", "npm/yarn.lock", "pypi/requirements.txt", "pypi/poetry.lock", "maven/pom.xml", "maven/gradle.lockfile"} {
		data, err := os.ReadFile(filepath.Join("testdata", "ecosystems", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(filepath.Base(name), data)
	}
	gomod, err := os.ReadFile(filepath.Join("testdata", "govulncheck", "app", "go.mod"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("go.mod", gomod)
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		if !IsLockfile(name) {
			return
		}
		fs, errs := ParseLockfile(strings.NewReader(string(data)), name, db)
		for _, x := range fs {
			if x.Package.PURL == "" || x.Vulnerability.ID == "" || len(x.Sources) == 0 {
				t.Errorf("incomplete finding %+v", x)
			}
		}
		if diff := cmp.Diff(fs, Merge(fs)); diff != "" {
			t.Errorf("output not merged:\n%s", diff)
		}
		for _, err := range errs {
			if !strings.HasPrefix(err.Error(), name+": ") {
				t.Errorf("error %q does not name the input", err)
			}
		}
	})
}

// TestTrivyAgrees: Trivy's report of each project's lockfiles (trivy fs
// with a database built from the same records) and evident's reading of
// the same lockfiles are the same findings once merged, but for what only
// evident finds: bcprov-jdk15on, through the alias table.
func TestTrivyAgrees(t *testing.T) {
	db := ecosystemsDB(t)
	open := func(name string) *os.File {
		t.Helper()
		f, err := os.Open(filepath.Join("testdata", "ecosystems", name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	tests := []struct {
		eco       string
		lockfiles []string
		onlyUs    []string
	}{
		{"npm", []string{"package-lock.json", "pnpm-lock.yaml", "yarn.lock"}, nil},
		{"pypi", []string{"requirements.txt", "poetry.lock"}, nil},
		{"maven", []string{"pom.xml", "gradle.lockfile"}, []string{"pkg:maven/org.bouncycastle/bcprov-jdk15on@1.70 GHSA-hr8g-6v94-x4m9"}},
	}
	for _, tt := range tests {
		t.Run(tt.eco, func(t *testing.T) {
			all, errs := ParseTrivy(open(tt.eco+"/trivy-fs.json"), "trivy-fs.json")
			for _, err := range errs {
				t.Error(err)
			}
			for _, name := range tt.lockfiles {
				fs, _ := ParseLockfile(open(tt.eco+"/"+name), name, db)
				all = append(all, fs...)
			}
			var onlyUs []string
			for _, f := range Merge(all) {
				tools := map[string]bool{}
				for _, s := range f.Sources {
					tools[s.Tool] = true
				}
				switch {
				case !tools[string(FormatLockfile)]:
					t.Errorf("%s %s: found by Trivy only", f.Package.PURL, f.Vulnerability.ID)
				case !tools[string(FormatTrivy)]:
					onlyUs = append(onlyUs, f.Package.PURL+" "+f.Vulnerability.ID)
				}
			}
			if diff := cmp.Diff(tt.onlyUs, onlyUs); diff != "" {
				t.Errorf("found by evident only (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSyftAgrees: syft's CycloneDX SBOM of each project (spec 1.7, every
// lockfile of the directory) matched against the database gives what the
// project's lockfiles give, the Maven alias match included.
func TestSyftAgrees(t *testing.T) {
	db := ecosystemsDB(t)
	set := func(fs []Finding, errs []error) map[string]bool {
		t.Helper()
		for _, err := range errs {
			t.Error(err)
		}
		out := map[string]bool{}
		for _, f := range fs {
			out[f.Package.PURL+" "+f.Vulnerability.ID] = true
		}
		return out
	}
	parseFile := func(name string, parse parser) ([]Finding, []error) {
		t.Helper()
		f, err := os.Open(filepath.Join("testdata", "ecosystems", name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return parse(f, filepath.Base(name))
	}
	for eco, lockfiles := range map[string][]string{
		"npm":   {"package-lock.json", "pnpm-lock.yaml", "yarn.lock"},
		"pypi":  {"requirements.txt", "poetry.lock"},
		"maven": {"pom.xml", "gradle.lockfile"},
	} {
		t.Run(eco, func(t *testing.T) {
			var fromLocks []Finding
			for _, name := range lockfiles {
				fs, _ := parseFile(eco+"/"+name, withMatcher(ParseLockfile, db))
				fromLocks = append(fromLocks, fs...)
			}
			want := set(fromLocks, nil)
			got := set(parseFile(eco+"/syft.cdx.json", withMatcher(ParseCycloneDX, db)))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("syft's SBOM and the lockfiles differ (-lockfiles +syft):\n%s", diff)
			}
		})
	}
}

// TestLockfileAfterService: in a directory of reports named after their
// services, a lockfile keeps its own name after the service's.
func TestLockfileAfterService(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "ecosystems", "npm", "yarn.lock"))
	if err != nil {
		t.Fatal(err)
	}
	fs, errs := ParseLockfile(strings.NewReader(string(data)), "reports/checkout.yarn.lock", ecosystemsDB(t))
	if len(fs) != 5 || len(errs) != 0 {
		t.Errorf("got %d findings, errors %v; want the 5 of yarn.lock", len(fs), errs)
	}
}

func TestSameArtifact(t *testing.T) {
	tests := []struct {
		eco, a, b string
		want      bool
	}{
		{"Maven", "org.bouncycastle:bcprov-jdk18on", "org.bouncycastle:bcprov", true},
		{"Maven", "org.bouncycastle:bcprov-jdk15on", "org.bouncycastle:bcprov-jdk18on", true},
		{"Maven", "org.bouncycastle:bcprov-jdk18on", "org.bouncycastle:bcpkix-jdk18on", false},
		{"Maven", "org.yaml:snakeyaml", "org.yaml:snakeyaml", true},
		{"npm", "org.bouncycastle:bcprov-jdk18on", "org.bouncycastle:bcprov", false},
		// GitHub's records name PyPI projects as PyPI displays them
		// (GHSA-8q59-q68h-6hv4: "PyYAML", with affected functions);
		// findings name them normalized (PEP 503).
		{"PyPI", "PyYAML", "pyyaml", true},
		{"PyPI", "ruamel.yaml", "ruamel-yaml", true},
		{"PyPI", "zope.interface", "zope-interface", true},
		{"PyPI", "pyyaml", "ruamel-yaml", false},
		// NuGet and Packagist names are case-insensitive.
		{"NuGet", "Newtonsoft.Json", "newtonsoft.json", true},
		{"Packagist", "Symfony/HTTP-Kernel", "symfony/http-kernel", true},
		// npm and Go names are case-sensitive.
		{"npm", "JSONStream", "jsonstream", false},
		{"Go", "github.com/BurntSushi/toml", "github.com/burntsushi/toml", false},
		// GHSA-3f63-hfp8-52jq names "Pillow"; findings normalize.
		{"PyPI", "Pillow", "pillow", true},
		{"PyPI", "Pillow", "pillow-heif", false},
		{"npm", "Lodash", "lodash", false},
	}
	for _, tt := range tests {
		if got := SameArtifact(tt.eco, tt.a, tt.b); got != tt.want {
			t.Errorf("SameArtifact(%s, %s, %s) = %v, want %v", tt.eco, tt.a, tt.b, got, tt.want)
		}
	}
}

// TestCycloneDXMaven reads a BOM in the shape cyclonedx-maven-plugin 2.9
// writes (ecosystems/maven/cyclonedx-maven.cdx.json, see the README): the
// project of pom.xml as metadata.component of type application, its
// dependencies as components whose bom-ref is their purl with the
// artifact's type qualifier (?type=jar), and the dependency graph. It
// gives pom.xml's findings, the BOM's subject names their artifact, and
// every component, the application included, is read with its bom-ref.
func TestCycloneDXMaven(t *testing.T) {
	db := ecosystemsDB(t)
	runGolden(t, withMatcher(ParseCycloneDX, db), []goldenCase{
		{name: "cyclonedx-maven 2.9", input: "ecosystems/maven/cyclonedx-maven.cdx.json", golden: "ecosystems/maven/cyclonedx-maven.golden"},
	})
	read := func(name string, parse parser) (map[string]bool, []Finding) {
		t.Helper()
		f, err := os.Open(filepath.Join("testdata", "ecosystems", "maven", name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fs, errs := parse(f, name)
		for _, err := range errs {
			t.Errorf("%s: %v", name, err)
		}
		set := map[string]bool{}
		for _, x := range fs {
			set[x.Package.Name+"@"+x.Package.Version+" "+x.Vulnerability.ID] = true
		}
		return set, fs
	}
	want, _ := read("pom.xml", withMatcher(ParseLockfile, db))
	got, fs := read("cyclonedx-maven.cdx.json", withMatcher(ParseCycloneDX, db))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings differ from pom.xml's (-pom.xml +cyclonedx-maven):\n%s", diff)
	}
	for _, f := range fs {
		if len(f.Sources) != 1 || f.Sources[0].Artifact != "catalog" {
			t.Errorf("%s %s: sources %+v, want one whose artifact is the BOM's subject, catalog", f.Package.Name, f.Vulnerability.ID, f.Sources)
		}
	}

	f, err := os.Open(filepath.Join("testdata", "ecosystems", "maven", "cyclonedx-maven.cdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	comps, errs := cycloneDXComponents(f, "cyclonedx-maven.cdx.json")
	if len(errs) > 0 {
		t.Errorf("components: %v", errs)
	}
	var refs []string
	for _, c := range comps {
		refs = append(refs, c.Ref+" "+c.Package.Ecosystem+" "+c.Package.Name+"@"+c.Package.Version)
	}
	wantRefs := []string{
		"pkg:maven/com.example.shop/catalog@1.0.0?type=jar Maven com.example.shop:catalog@1.0.0",
		"pkg:maven/org.yaml/snakeyaml@1.33?type=jar Maven org.yaml:snakeyaml@1.33",
		"pkg:maven/org.bouncycastle/bcprov-jdk15on@1.70?type=jar Maven org.bouncycastle:bcprov-jdk15on@1.70",
	}
	if diff := cmp.Diff(wantRefs, refs); diff != "" {
		t.Errorf("components (-want +got):\n%s", diff)
	}
}

// TestParseLockfileGoMod: what a go.mod does not give is said, naming the
// file: the modules needed indirectly, which a go.mod before go 1.17 does
// not list, and the version of a module replaced by a local directory.
func TestParseLockfileGoMod(t *testing.T) {
	db := testDB(t)
	// The requirements of testdata/govulncheck/app: golang.org/x/text
	// v0.3.5 and gopkg.in/yaml.v2 v2.2.2, with six findings.
	const require = "require (\n\tgolang.org/x/text v0.3.5\n\tgopkg.in/yaml.v2 v2.2.2\n)\n"
	const old = "before go 1.17 a go.mod lists only the modules the main module requires directly; those it needs indirectly are in go.sum, which evident does not read, and are not matched (give the service's executable, govulncheck's report or an SBOM)"
	tests := []struct {
		name, gomod string
		findings    int
		wantErrs    []string
	}{
		{"go 1.17", "module example.com/vulnapp\n\ngo 1.17\n\n" + require, 6, nil},
		{"toolchain", "module example.com/vulnapp\n\ngo 1.16\n\ntoolchain go1.22.0\n\n" + require, 6, nil},
		{"go 1.16", "module example.com/vulnapp\n\ngo 1.16\n\n" + require, 6, []string{"go.mod: go 1.16: " + old}},
		{"no go line", "module example.com/vulnapp\n\n" + require, 6, []string{"go.mod: no go line (go 1.16): " + old}},
		{"local replacement", "module example.com/vulnapp\n\ngo 1.22\n\n" + require + "require example.com/local v0.0.0\n\nreplace example.com/local => ../local\n", 6,
			[]string{"go.mod: example.com/local: replaced by directory ../local, which has no version to match"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, errs := ParseLockfile(strings.NewReader(tt.gomod), "go.mod", db)
			var got []string
			for _, err := range errs {
				got = append(got, err.Error())
			}
			if diff := cmp.Diff(tt.wantErrs, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if len(fs) != tt.findings {
				t.Errorf("got %d findings, want %d", len(fs), tt.findings)
			}
		})
	}
}

// TestParseLockfileJSLocal: a pnpm or yarn project's workspaces and the
// directories it depends on are its own source, not the registry
// packages of their names; lodash below 4.17.21 is affected by
// GHSA-35jh-r3h4-6jhm (from version 0, so a workspace's 0.0.0-use.local
// too), minimist 1.2.5 by GHSA-xvch-5gv4-984h. The packages are named
// lodash to show it.
func TestParseLockfileJSLocal(t *testing.T) {
	db := ecosystemsDB(t)
	const (
		yarnMinimist = "\n\"minimist@npm:1.2.5\":\n  version: 1.2.5\n  resolution: \"minimist@npm:1.2.5\"\n  languageName: node\n  linkType: hard\n"
		yarnHead     = "__metadata:\n  version: 8\n  cacheKey: 10c0\n\n\"app@workspace:.\":\n  version: 0.0.0-use.local\n  resolution: \"app@workspace:.\"\n  languageName: unknown\n  linkType: soft\n"
		pnpmHead     = "lockfileVersion: '9.0'\n\nsettings:\n  autoInstallPeers: true\n  excludeLinksFromLockfile: false\n\npackages:\n\n  minimist@1.2.5:\n    resolution: {integrity: sha512-FM9nNUYrRBAELZQT3xeZQ7fmMOBg6nWNmJKTcgsJeaLstP/UODVpGsr5OhXhhXg6f+qtJ8uiZ+PUxkDWcgIXLw==}\n\n"
		minimist     = "minimist@1.2.5 GHSA-xvch-5gv4-984h"
	)
	tests := []struct {
		name, file, lock string
		want             []string
	}{
		{"yarn workspace", "yarn.lock", yarnHead + "\n\"lodash@workspace:^, lodash@workspace:packages/lodash\":\n  version: 0.0.0-use.local\n  resolution: \"lodash@workspace:packages/lodash\"\n  languageName: unknown\n  linkType: soft\n" + yarnMinimist,
			[]string{minimist}},
		{"yarn link", "yarn.lock", yarnHead + "\n\"lodash@link:./vendor/lodash::locator=app%40workspace%3A.\":\n  version: 0.0.0-use.local\n  resolution: \"lodash@link:./vendor/lodash::locator=app%40workspace%3A.\"\n  languageName: node\n  linkType: soft\n" + yarnMinimist,
			[]string{minimist}},
		{"yarn directory", "yarn.lock", yarnHead + "\n\"lodash@file:./vendor/lodash::locator=app%40workspace%3A.\":\n  version: 4.17.20\n  resolution: \"lodash@file:./vendor/lodash#./vendor/lodash::hash=351be1&locator=app%40workspace%3A.\"\n  languageName: node\n  linkType: hard\n" + yarnMinimist,
			[]string{minimist}},
		// A tarball may well be the registry's package, kept.
		{"yarn tarball", "yarn.lock", yarnHead + "\n\"lodash@file:./vendor/lodash-4.17.20.tgz::locator=app%40workspace%3A.\":\n  version: 4.17.20\n  resolution: \"lodash@file:./vendor/lodash-4.17.20.tgz#./vendor/lodash-4.17.20.tgz::hash=351be1&locator=app%40workspace%3A.\"\n  languageName: node\n  linkType: hard\n" + yarnMinimist,
			[]string{"lodash@4.17.20 GHSA-35jh-r3h4-6jhm", minimist}},
		{"yarn classic directory", "yarn.lock", "# yarn lockfile v1\n\n\n\"lodash@file:./vendor/lodash\":\n  version \"4.17.20\"\n\nminimist@1.2.5:\n  version \"1.2.5\"\n  resolved \"https://registry.yarnpkg.com/minimist/-/minimist-1.2.5.tgz#67d66014b66a6a8aaa0c083c5fd58df4e4e97602\"\n  integrity sha512-FM9nNUYrRBAELZQT3xeZQ7fmMOBg6nWNmJKTcgsJeaLstP/UODVpGsr5OhXhhXg6f+qtJ8uiZ+PUxkDWcgIXLw==\n",
			[]string{minimist}},
		{"pnpm directory", "pnpm-lock.yaml", pnpmHead + "  lodash@file:vendor/lodash:\n    resolution: {directory: vendor/lodash, type: directory}\n    name: lodash\n    version: 4.17.20\n",
			[]string{minimist}},
		{"pnpm registry package", "pnpm-lock.yaml", pnpmHead + "  lodash@4.17.15:\n    resolution: {integrity: sha512-8xOcRHvCjnocdS5cpwXQXVzmmh5e5+saE2QGoeQmbKmRS6J3VQppPOIt0MnmE+4xlZoumy0GPG0D0MVIQbNA1A==}\n",
			[]string{"lodash@4.17.15 GHSA-35jh-r3h4-6jhm", "lodash@4.17.15 GHSA-p6mc-m468-83gw", minimist}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, errs := ParseLockfile(strings.NewReader(tt.lock), tt.file, db)
			for _, err := range errs {
				t.Error(err)
			}
			var got []string
			for _, f := range fs {
				got = append(got, f.Package.Name+"@"+f.Package.Version+" "+f.Vulnerability.ID)
			}
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}
