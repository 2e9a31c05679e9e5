package findings

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/vulndb"
)

// parseFixture parses a file under testdata and fails the test on any
// error.
func parseFixture(t testing.TB, parse parser, file string) []Finding {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs, errs := parse(f, file)
	if len(errs) > 0 {
		t.Fatalf("parse %s: %v", file, errs)
	}
	return fs
}

// sameApp is the govulncheck/app program as four tools reported it.
func sameApp(t testing.TB) []Finding {
	var all []Finding
	for _, in := range []struct {
		parse parser
		file  string
	}{
		{ParseGovulncheck, "govulncheck/symbol.json"},
		{ParseGrype, "grype/dir.json"},
		{ParseTrivy, "trivy/fs.json"},
		{ParseOSVScanner, "osvscanner/app.json"},
	} {
		for _, f := range parseFixture(t, in.parse, in.file) {
			f.Service = "app"
			all = append(all, f)
		}
	}
	return all
}

func TestMergeSameAppFromFourTools(t *testing.T) {
	all := sameApp(t)
	got := Merge(all)
	checkGolden(t, "testdata/merge/app.golden", marshalResult(t, got, nil))

	wantSources := map[string][]string{
		"GO-2021-0113": {"govulncheck", "grype", "osv-scanner", "trivy"},
		"GO-2022-1059": {"govulncheck", "grype", "osv-scanner", "trivy"},
		"GO-2026-5970": {"govulncheck", "osv-scanner"},
		"GO-2020-0036": {"govulncheck", "grype", "osv-scanner", "trivy"},
		"GO-2021-0061": {"govulncheck", "grype", "osv-scanner", "trivy"},
		"GO-2022-0956": {"govulncheck", "grype", "osv-scanner", "trivy"},
	}
	if len(got) != len(wantSources) {
		t.Fatalf("got %d findings, want %d", len(got), len(wantSources))
	}
	for _, f := range got {
		var tools []string
		for _, s := range f.Sources {
			tools = append(tools, s.Tool)
		}
		if diff := cmp.Diff(wantSources[f.Vulnerability.ID], tools); diff != "" {
			t.Errorf("%s sources (-want +got):\n%s", f.Vulnerability.ID, diff)
		}
	}
	// Severity comes from Trivy and Grype, Static and Symbols from
	// govulncheck and OSV-Scanner, all on the one finding.
	first := got[0]
	if first.Vulnerability.ID != "GO-2021-0113" || first.Severity.Level != LevelHigh || first.Static != StaticCalled ||
		!slices.Equal(first.Symbols, []string{"golang.org/x/text/language.Parse"}) || first.FixedVersion != "v0.3.7" {
		t.Errorf("first finding = %+v", first)
	}

	// The order of the inputs does not matter, and merging is idempotent.
	rev := slices.Clone(all)
	slices.Reverse(rev)
	if diff := cmp.Diff(got, Merge(rev)); diff != "" {
		t.Errorf("Merge depends on input order (-forward +reverse):\n%s", diff)
	}
	if diff := cmp.Diff(got, Merge(got)); diff != "" {
		t.Errorf("Merge is not idempotent:\n%s", diff)
	}
}

func TestMerge(t *testing.T) {
	const purl = "pkg:golang/golang.org/x/text@v0.3.5"
	pkg := Package{PURL: purl, Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5"}
	f := func(tool, id string, aliases ...string) Finding {
		return Finding{Package: pkg, Vulnerability: Vulnerability{ID: id, Aliases: aliases},
			Severity: Severity{Level: LevelUnknown}, Sources: []Source{{Tool: tool, File: tool + ".json"}}}
	}
	with := func(x Finding, edit func(*Finding)) Finding { edit(&x); return x }
	tests := []struct {
		name string
		in   []Finding
		want []Finding
	}{
		{
			name: "aliases resolve transitively",
			in: []Finding{
				f("govulncheck", "GO-2021-0113", "CVE-2021-38561", "GHSA-ppp9-7jff-5vj2"),
				f("trivy", "CVE-2021-38561"),
				f("grype", "GHSA-ppp9-7jff-5vj2", "CVE-2021-38561"),
			},
			want: []Finding{{
				Package:       pkg,
				Vulnerability: Vulnerability{ID: "GO-2021-0113", Aliases: []string{"CVE-2021-38561", "GHSA-ppp9-7jff-5vj2"}},
				Severity:      Severity{Level: LevelUnknown},
				Sources:       []Source{{Tool: "govulncheck", File: "govulncheck.json"}, {Tool: "grype", File: "grype.json"}, {Tool: "trivy", File: "trivy.json"}},
			}},
		},
		{
			name: "a chain of aliases joins findings that share no id directly",
			in:   []Finding{f("a", "CVE-1"), f("b", "GHSA-x", "CVE-1", "PYSEC-1"), f("c", "PYSEC-1")},
			want: []Finding{{
				Package:       pkg,
				Vulnerability: Vulnerability{ID: "GHSA-x", Aliases: []string{"CVE-1", "PYSEC-1"}},
				Severity:      Severity{Level: LevelUnknown},
				Sources:       []Source{{Tool: "a", File: "a.json"}, {Tool: "b", File: "b.json"}, {Tool: "c", File: "c.json"}},
			}},
		},
		{
			name: "a distribution advisory does not join the vulnerabilities it fixes",
			in:   []Finding{f("trivy", "CVE-2022-1292", "DSA-5169-1"), f("trivy", "CVE-2022-2068", "DSA-5169-1")},
			want: []Finding{f("trivy", "CVE-2022-1292", "DSA-5169-1"), f("trivy", "CVE-2022-2068", "DSA-5169-1")},
		},
		{
			// Syft's CycloneDX and SPDX SBOMs of one AlmaLinux image,
			// matched against AlmaLinux's record, which names no alias.
			name: "a distribution advisory found twice is one finding",
			in:   []Finding{f("syft-cdx", "ALSA-2020:1636"), f("syft-spdx", "ALSA-2020:1636"), f("trivy", "CVE-2018-13139", "ALSA-2020:1636")},
			want: []Finding{
				{
					Package:       pkg,
					Vulnerability: Vulnerability{ID: "ALSA-2020:1636"},
					Severity:      Severity{Level: LevelUnknown},
					Sources:       []Source{{Tool: "syft-cdx", File: "syft-cdx.json"}, {Tool: "syft-spdx", File: "syft-spdx.json"}},
				},
				f("trivy", "CVE-2018-13139", "ALSA-2020:1636"),
			},
		},
		{
			name: "other services and versions stay apart",
			in: []Finding{
				with(f("trivy", "CVE-1"), func(x *Finding) { x.Service = "b" }),
				with(f("trivy", "CVE-1"), func(x *Finding) { x.Service = "a" }),
				with(f("trivy", "CVE-1"), func(x *Finding) {
					x.Service = "a"
					x.Package = Package{PURL: "pkg:golang/golang.org/x/text@v0.3.6", Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.6"}
				}),
			},
			want: []Finding{
				with(f("trivy", "CVE-1"), func(x *Finding) { x.Service = "a" }),
				with(f("trivy", "CVE-1"), func(x *Finding) {
					x.Service = "a"
					x.Package = Package{PURL: "pkg:golang/golang.org/x/text@v0.3.6", Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.6"}
				}),
				with(f("trivy", "CVE-1"), func(x *Finding) { x.Service = "b" }),
			},
		},
		{
			name: "highest severity, strongest static, union of symbols, lowest fix above the installed version",
			in: []Finding{
				with(f("govulncheck", "GO-1", "CVE-1"), func(x *Finding) {
					x.Static, x.Symbols, x.FixedVersion = StaticCalled, []string{"p.F"}, "v0.3.7"
				}),
				with(f("govulncheck", "GO-1"), func(x *Finding) { x.Static = StaticImported }),
				with(f("osv-scanner", "GO-1"), func(x *Finding) {
					x.Static, x.Symbols, x.Severity = StaticRequired, []string{"p.G", "p.F"}, Severity{Level: LevelMedium, Score: 6.5}
				}),
				with(f("trivy", "CVE-1"), func(x *Finding) {
					x.Severity, x.FixedVersion = Severity{Level: LevelHigh, Score: 7.5, Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}, "0.3.4, 0.3.10, 0.3.8"
				}),
				with(f("grype", "CVE-1"), func(x *Finding) { x.Severity = Severity{Level: LevelHigh, Score: 7.1} }),
			},
			want: []Finding{{
				Package:       pkg,
				Vulnerability: Vulnerability{ID: "GO-1", Aliases: []string{"CVE-1"}},
				Severity:      Severity{Level: LevelHigh, Score: 7.5, Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"},
				FixedVersion:  "v0.3.7",
				Static:        StaticCalled,
				Symbols:       []string{"p.F", "p.G"},
				Sources: []Source{
					{Tool: "govulncheck", File: "govulncheck.json"}, {Tool: "grype", File: "grype.json"}, {Tool: "osv-scanner", File: "osv-scanner.json"}, {Tool: "trivy", File: "trivy.json"},
				},
			}},
		},
		{
			name: "empty",
			in:   nil,
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Merge(tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Merge() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// mergeDB loads real records: GHSA-35jh-r3h4-6jhm (lodash < 4.17.21,
// CVE-2021-23337) with the other records of testdata/ecosystems/osv, and
// GO-2022-0536, one record of two HTTP/2 flaws (CVE-2019-9512,
// CVE-2019-9514) in golang.org/x/net.
func mergeDB(t testing.TB) *vulndb.DB {
	t.Helper()
	db, lerrs, err := vulndb.Load(context.Background(), vulndb.Options{Sources: []string{
		filepath.Join("testdata", "ecosystems", "osv"), filepath.Join("testdata", "merge", "osv"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range lerrs {
		t.Errorf("load test records: %v", e)
	}
	return db
}

// mergedIDs summarizes findings as "PURL ID [ALIASES] [TOOLS]".
func mergedIDs(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		var tools []string
		for _, s := range f.Sources {
			tools = append(tools, s.Tool)
		}
		out = append(out, fmt.Sprintf("%s %s %v %v", f.Package.PURL, f.Vulnerability.ID, f.Vulnerability.Aliases, tools))
	}
	return out
}

func TestMergeWith(t *testing.T) {
	db := mergeDB(t)
	lock := testLock(t)
	// npm audit names the lodash flaw GHSA-35jh-r3h4-6jhm and nothing
	// else; the Trivy report names its CVE alone.
	var npmAudit Finding
	for _, f := range parseFixture(t, func(r io.Reader, name string) ([]Finding, []error) { return ParseNPMAudit(r, name, lock) }, "ecosystems/npm/npm-audit.json") {
		if f.Vulnerability.ID == "GHSA-35jh-r3h4-6jhm" {
			npmAudit = f
		}
	}
	trivy := parseFixture(t, ParseTrivy, "merge/lodash-cve.trivy.json")[0]
	inService := func(f Finding, svc string) Finding { f.Service = svc; return f }
	xnet := Package{PURL: "pkg:golang/golang.org/x/net@v0.0.0-20190311183353-d8887717615a", Ecosystem: "Go", Name: "golang.org/x/net", Version: "v0.0.0-20190311183353-d8887717615a"}
	report := func(pkg Package, id string, aliases ...string) Finding {
		return Finding{Package: pkg, Vulnerability: Vulnerability{ID: id, Aliases: aliases}, Severity: Severity{Level: LevelUnknown}, Sources: []Source{{Tool: "trivy"}}}
	}
	tool := func(f Finding, name string) Finding { f.Sources = []Source{{Tool: name}}; return f }
	gvc0536 := []string{"CVE-2019-9512", "CVE-2019-9514", "GHSA-39qc-96h7-956f", "GHSA-hgr8-6h9x-f7q9"}
	tests := []struct {
		name string
		in   []Finding
		// merge is what Merge gives, without the database.
		merge, want []string
	}{
		{
			name:  "npm audit's GHSA and a report's CVE of one lodash flaw",
			in:    []Finding{npmAudit, trivy},
			merge: []string{"pkg:npm/lodash@4.17.15 CVE-2021-23337 [] [trivy]", "pkg:npm/lodash@4.17.15 GHSA-35jh-r3h4-6jhm [] [npm-audit]"},
			want:  []string{"pkg:npm/lodash@4.17.15 GHSA-35jh-r3h4-6jhm [CVE-2021-23337] [npm-audit trivy]"},
		},
		{
			name:  "a finding alone keeps the ids its report gave",
			in:    []Finding{trivy},
			merge: []string{"pkg:npm/lodash@4.17.15 CVE-2021-23337 [] [trivy]"},
			want:  []string{"pkg:npm/lodash@4.17.15 CVE-2021-23337 [] [trivy]"},
		},
		{
			name:  "other services stay apart",
			in:    []Finding{inService(npmAudit, "a"), inService(trivy, "b")},
			merge: []string{"pkg:npm/lodash@4.17.15 GHSA-35jh-r3h4-6jhm [] [npm-audit]", "pkg:npm/lodash@4.17.15 CVE-2021-23337 [] [trivy]"},
			want:  []string{"pkg:npm/lodash@4.17.15 GHSA-35jh-r3h4-6jhm [] [npm-audit]", "pkg:npm/lodash@4.17.15 CVE-2021-23337 [] [trivy]"},
		},
		{
			name: "a record of two CVEs joins neither",
			in:   []Finding{report(xnet, "CVE-2019-9512"), report(xnet, "CVE-2019-9514")},
			merge: []string{
				"pkg:golang/golang.org/x/net@v0.0.0-20190311183353-d8887717615a CVE-2019-9512 [] [trivy]",
				"pkg:golang/golang.org/x/net@v0.0.0-20190311183353-d8887717615a CVE-2019-9514 [] [trivy]",
			},
			want: []string{
				"pkg:golang/golang.org/x/net@v0.0.0-20190311183353-d8887717615a CVE-2019-9512 [] [trivy]",
				"pkg:golang/golang.org/x/net@v0.0.0-20190311183353-d8887717615a CVE-2019-9514 [] [trivy]",
			},
		},
		{
			// govulncheck and OSV-Scanner name GO-2022-0536 with its
			// record's aliases, two CVEs and their two GHSAs; Trivy and
			// Grype name each flaw apart.
			name: "a finding of several CVEs joins the others by its own id alone",
			in: []Finding{
				tool(report(xnet, "GO-2022-0536", gvc0536...), "govulncheck"), tool(report(xnet, "GO-2022-0536", gvc0536...), "osv-scanner"),
				report(xnet, "CVE-2019-9512"), report(xnet, "CVE-2019-9514"),
				tool(report(xnet, "GHSA-hgr8-6h9x-f7q9", "CVE-2019-9512"), "grype"), tool(report(xnet, "GHSA-39qc-96h7-956f", "CVE-2019-9514"), "grype"),
			},
			merge: []string{
				"pkg:golang/golang.org/x/net@v0.0.0-20190311183353-d8887717615a GHSA-39qc-96h7-956f [CVE-2019-9514] [grype trivy]",
				"pkg:golang/golang.org/x/net@v0.0.0-20190311183353-d8887717615a GHSA-hgr8-6h9x-f7q9 [CVE-2019-9512] [grype trivy]",
				"pkg:golang/golang.org/x/net@v0.0.0-20190311183353-d8887717615a GO-2022-0536 [CVE-2019-9512 CVE-2019-9514 GHSA-39qc-96h7-956f GHSA-hgr8-6h9x-f7q9] [govulncheck osv-scanner]",
			},
			want: []string{
				"pkg:golang/golang.org/x/net@v0.0.0-20190311183353-d8887717615a GHSA-39qc-96h7-956f [CVE-2019-9514] [grype trivy]",
				"pkg:golang/golang.org/x/net@v0.0.0-20190311183353-d8887717615a GHSA-hgr8-6h9x-f7q9 [CVE-2019-9512] [grype trivy]",
				"pkg:golang/golang.org/x/net@v0.0.0-20190311183353-d8887717615a GO-2022-0536 [CVE-2019-9512 CVE-2019-9514 GHSA-39qc-96h7-956f GHSA-hgr8-6h9x-f7q9] [govulncheck osv-scanner]",
			},
		},
		{
			// A shape (the id is a placeholder): a finding that names two
			// lodash flaws, each with the real record of its own.
			name: "a finding of several CVEs is linked to no record of one of them",
			in: []Finding{
				report(npmAudit.Package, "OSV-X", "CVE-2020-8203", "CVE-2021-23337", "GHSA-35jh-r3h4-6jhm", "GHSA-p6mc-m468-83gw"),
				report(npmAudit.Package, "CVE-2021-23337"), report(npmAudit.Package, "CVE-2020-8203"),
			},
			merge: []string{
				"pkg:npm/lodash@4.17.15 CVE-2020-8203 [] [trivy]",
				"pkg:npm/lodash@4.17.15 CVE-2021-23337 [] [trivy]",
				"pkg:npm/lodash@4.17.15 OSV-X [CVE-2020-8203 CVE-2021-23337 GHSA-35jh-r3h4-6jhm GHSA-p6mc-m468-83gw] [trivy]",
			},
			want: []string{
				"pkg:npm/lodash@4.17.15 CVE-2020-8203 [] [trivy]",
				"pkg:npm/lodash@4.17.15 CVE-2021-23337 [] [trivy]",
				"pkg:npm/lodash@4.17.15 OSV-X [CVE-2020-8203 CVE-2021-23337 GHSA-35jh-r3h4-6jhm GHSA-p6mc-m468-83gw] [trivy]",
			},
		},
		{
			name: "a record whose CVE is not the report's joins nothing",
			in:   []Finding{report(npmAudit.Package, "GHSA-35jh-r3h4-6jhm", "CVE-2020-8203"), trivy},
			merge: []string{
				"pkg:npm/lodash@4.17.15 CVE-2021-23337 [] [trivy]",
				"pkg:npm/lodash@4.17.15 GHSA-35jh-r3h4-6jhm [CVE-2020-8203] [trivy]",
			},
			want: []string{
				"pkg:npm/lodash@4.17.15 CVE-2021-23337 [] [trivy]",
				"pkg:npm/lodash@4.17.15 GHSA-35jh-r3h4-6jhm [CVE-2020-8203] [trivy]",
			},
		},
		{
			name:  "a version the record does not affect",
			in:    []Finding{report(Package{PURL: "pkg:npm/lodash@4.17.21", Ecosystem: "npm", Name: "lodash", Version: "4.17.21"}, "GHSA-35jh-r3h4-6jhm"), report(Package{PURL: "pkg:npm/lodash@4.17.21", Ecosystem: "npm", Name: "lodash", Version: "4.17.21"}, "CVE-2021-23337")},
			merge: []string{"pkg:npm/lodash@4.17.21 CVE-2021-23337 [] [trivy]", "pkg:npm/lodash@4.17.21 GHSA-35jh-r3h4-6jhm [] [trivy]"},
			want:  []string{"pkg:npm/lodash@4.17.21 CVE-2021-23337 [] [trivy]", "pkg:npm/lodash@4.17.21 GHSA-35jh-r3h4-6jhm [] [trivy]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.merge, mergedIDs(Merge(tt.in))); diff != "" {
				t.Errorf("Merge() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, mergedIDs(MergeWith(tt.in, db))); diff != "" {
				t.Errorf("MergeWith() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(mergedIDs(Merge(tt.in)), mergedIDs(MergeWith(tt.in, nil))); diff != "" {
				t.Errorf("MergeWith(nil) is not Merge (-Merge +MergeWith):\n%s", diff)
			}
		})
	}
}

func TestPrimaryID(t *testing.T) {
	tests := []struct {
		ids  []string
		want string
	}{
		{[]string{"CVE-2021-38561", "GHSA-ppp9-7jff-5vj2", "GO-2021-0113"}, "GO-2021-0113"},
		{[]string{"CVE-2021-38561", "GHSA-ppp9-7jff-5vj2"}, "GHSA-ppp9-7jff-5vj2"},
		{[]string{"CVE-2021-23337", "PYSEC-2021-1"}, "PYSEC-2021-1"},
		{[]string{"GHSA-b", "GHSA-a"}, "GHSA-a"},
		{[]string{"DSA-5169-1", "CVE-2022-1292"}, "CVE-2022-1292"},
		{[]string{"RHSA-2023:2165"}, "RHSA-2023:2165"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.ids), func(t *testing.T) {
			if got := primaryID(tt.ids); got != tt.want {
				t.Errorf("primaryID(%q) = %q, want %q", tt.ids, got, tt.want)
			}
		})
	}
}

func TestIsBundleID(t *testing.T) {
	for id, want := range map[string]bool{
		"DSA-5169-1": true, "DLA-3008-1": true, "RHSA-2023:2165": true, "ALAS-2023-1234": true, "ALAS2-2023-2000": true,
		"ALAS2023-2023-100": true, "USN-5488-1": true, "SUSE-SU-2022:2100-1": true, "openSUSE-SU-2022:0001-1": true,
		"CVE-2022-1292": false, "GHSA-ppp9-7jff-5vj2": false, "GO-2021-0113": false, "ALASKA-1": false, "SUSE-2022-1": false, "DSA": false,
	} {
		if got := isBundleID(id); got != want {
			t.Errorf("isBundleID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestLowestFix(t *testing.T) {
	tests := []struct {
		name                 string
		ecosystem, installed string
		fixes                []string
		want                 string
	}{
		{name: "go adds v", ecosystem: "Go", installed: "v0.3.5", fixes: []string{"0.3.7"}, want: "v0.3.7"},
		{name: "numeric not lexical", ecosystem: "Go", installed: "v1.20.1", fixes: []string{"1.19.8, 1.20.3", "v1.20.10"}, want: "v1.20.3"},
		{name: "debian revision", ecosystem: "Debian", installed: "1.1.1n-0+deb11u1", fixes: []string{"1.1.1n-0+deb11u3", "1.1.1n-0+deb11u10"}, want: "1.1.1n-0+deb11u3"},
		{name: "npm", ecosystem: "npm", installed: "4.17.20", fixes: []string{"4.17.21"}, want: "4.17.21"},
		{name: "none above installed keeps the highest", ecosystem: "Go", installed: "v2.0.0", fixes: []string{"1.0.1", "1.2.0"}, want: "v1.2.0"},
		{name: "unknown ecosystem compares strings", ecosystem: "generic", installed: "1.0", fixes: []string{"1.2", "1.1"}, want: "1.1"},
		{name: "no fix", ecosystem: "Go", installed: "v1.0.0", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lowestFix(tt.ecosystem, tt.installed, tt.fixes); got != tt.want {
				t.Errorf("lowestFix(%q, %q, %q) = %q, want %q", tt.ecosystem, tt.installed, tt.fixes, got, tt.want)
			}
		})
	}
}

func BenchmarkMerge(b *testing.B) {
	// Many services each reporting the same app through four tools: the
	// shape of a large import.
	base := sameApp(b)
	var all []Finding
	for s := range 500 {
		for _, f := range base {
			f.Service = fmt.Sprintf("svc-%03d", s)
			all = append(all, f)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		Merge(all)
	}
	b.ReportMetric(float64(len(all))*float64(b.N)/b.Elapsed().Seconds(), "findings/s")
}
