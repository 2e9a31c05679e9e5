package findings

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-cmp/cmp"
	"github.com/openvex/go-vex/pkg/vex"

	"github.com/evidentsec/evident/internal/vulndb"
)

// distroDB loads Debian's and AlmaLinux's records of testdata/distro/osv
// (see testdata/README.md).
func distroDB(t testing.TB) *vulndb.DB {
	t.Helper()
	db, lerrs, err := vulndb.Load(context.Background(), vulndb.Options{Sources: []string{filepath.Join("testdata", "distro", "osv")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range lerrs {
		t.Errorf("load test records: %v", e)
	}
	return db
}

// fuzzDB loads the Go records of testDB and the distributions' records of
// distroDB, for the SBOM fuzzers to match both.
func fuzzDB(t testing.TB) *vulndb.DB {
	t.Helper()
	db, lerrs, err := vulndb.Load(context.Background(), vulndb.Options{Sources: []string{
		filepath.Join("testdata", "sbom", "osv"), filepath.Join("testdata", "distro", "osv")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range lerrs {
		t.Errorf("load test records: %v", e)
	}
	return db
}

// fixtures reads files under testdata, as fuzz seeds.
func fixtures(t testing.TB, names ...string) []string {
	t.Helper()
	var out []string
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(data))
	}
	return out
}

// TestDistroSBOM matches the SBOMs that Syft and Trivy write of a Debian
// 11 root file system against Debian's record of CVE-2022-1292, which
// OSV files under "Debian:11". Read as the bare "Debian", the packages
// met no record, and the SBOMs looked clean; libssl1.1, which Debian's
// records do not name, is matched by its source package, openssl.
func TestDistroSBOM(t *testing.T) {
	db := distroDB(t)
	type match struct{ PURL, Ecosystem, ID, Fix, Match string }
	openssl := match{"pkg:deb/debian/openssl@1.1.1n-0%2Bdeb11u1", "Debian:11", "DEBIAN-CVE-2022-1292", "1.1.1n-0+deb11u3", ""}
	// libssl1.1 is built from openssl, which Debian's record names.
	libssl := match{"pkg:deb/debian/libssl1.1@1.1.1n-0%2Bdeb11u1", "Debian:11", "DEBIAN-CVE-2022-1292", "1.1.1n-0+deb11u3",
		"the record names source package openssl, which libssl1.1 is built from"}
	tests := []struct {
		input string
		parse func(io.Reader, string, Matcher) ([]Finding, []error)
		want  []match
	}{
		{"syft.cdx.json", ParseCycloneDX, []match{libssl, openssl}},
		{"trivy.cdx.json", ParseCycloneDX, []match{libssl, openssl}},
		{"syft.spdx.json", ParseSPDX, []match{libssl, openssl}},
		{"trivy.spdx.json", ParseSPDX, []match{libssl, openssl}},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "distro", tt.input))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fs, errs := tt.parse(f, tt.input, db)
			for _, err := range errs {
				t.Errorf("unexpected error: %v", err)
			}
			var got []match
			for _, f := range fs {
				got = append(got, match{f.Package.PURL, f.Package.Ecosystem, f.Vulnerability.ID, f.FixedVersion, f.Sources[0].Match})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("findings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDistroNoRelease: the SBOMs of Debian testing, whose os-release
// names no release (Syft writes distro=debian, Trivy
// distro=debian-trixie/sid), cannot be matched against Debian's records,
// and each package says so rather than looking clean.
func TestDistroNoRelease(t *testing.T) {
	db := distroDB(t)
	tests := []struct {
		input    string
		wantErrs []string
	}{
		{"syft-sid.cdx.json", []string{
			"syft-sid.cdx.json: pkg:deb/debian/libssl3t64@3.3.2-2?arch=amd64&distro=debian&package-id=6b564d93caff750c&upstream=openssl: package pkg:deb/debian/libssl3t64@3.3.2-2: the input names no Debian release (the distro qualifier of its package URL), by which OSV's Debian records are keyed: release unknown, not matched",
			"syft-sid.cdx.json: pkg:deb/debian/openssl@3.3.2-2?arch=amd64&distro=debian&package-id=f398b03831773add: package pkg:deb/debian/openssl@3.3.2-2: the input names no Debian release (the distro qualifier of its package URL), by which OSV's Debian records are keyed: release unknown, not matched",
		}},
		{"trivy-sid.cdx.json", []string{
			"trivy-sid.cdx.json: pkg:deb/debian/libssl3t64@3.3.2-2?arch=amd64&distro=debian-trixie%2Fsid: package pkg:deb/debian/libssl3t64@3.3.2-2: the input names no Debian release (the distro qualifier of its package URL), by which OSV's Debian records are keyed: release unknown, not matched",
			"trivy-sid.cdx.json: pkg:deb/debian/openssl@3.3.2-2?arch=amd64&distro=debian-trixie%2Fsid: package pkg:deb/debian/openssl@3.3.2-2: the input names no Debian release (the distro qualifier of its package URL), by which OSV's Debian records are keyed: release unknown, not matched",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "distro", tt.input))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fs, errs := ParseCycloneDX(f, tt.input, db)
			if len(fs) != 0 {
				t.Errorf("got %d findings, want none", len(fs))
			}
			var got []string
			for _, err := range errs {
				if !errors.Is(err, errNoRelease) {
					t.Errorf("error %v does not wrap errNoRelease", err)
				}
				got = append(got, err.Error())
			}
			if diff := cmp.Diff(tt.wantErrs, got); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDistroScannedNoRelease: a scanned BOM's own vulnerability of a
// package whose release is unknown is the scanner's finding, which needs
// no release to be kept.
func TestDistroScannedNoRelease(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "distro", "trivy-sid.cdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	var bom map[string]any
	if err := json.Unmarshal(data, &bom); err != nil {
		t.Fatal(err)
	}
	const ref = "pkg:deb/debian/openssl@3.3.2-2?arch=amd64&distro=debian-trixie%2Fsid"
	bom["vulnerabilities"] = []any{map[string]any{"id": "CVE-2024-13176", "ratings": []any{map[string]any{"severity": "medium"}},
		"affects": []any{map[string]any{"ref": ref}}}}
	if data, err = json.Marshal(bom); err != nil {
		t.Fatal(err)
	}
	fs, errs := ParseCycloneDX(bytes.NewReader(data), "scanned.json", distroDB(t))
	for _, err := range errs {
		t.Errorf("unexpected error: %v", err)
	}
	if len(fs) != 1 || fs[0].Vulnerability.ID != "CVE-2024-13176" || fs[0].Package.PURL != "pkg:deb/debian/openssl@3.3.2-2" {
		t.Errorf("got %+v, want the BOM's CVE-2024-13176 of openssl", fs)
	}
}

// TestDistroSource reads the source package of a binary package as Syft
// (upstream qualifier, with the source's version when it differs, as for
// a binNMU) and Trivy (CycloneDX properties) name it.
func TestDistroSource(t *testing.T) {
	trivy := func(kv ...string) []cdx.Property {
		var props []cdx.Property
		for i := 0; i < len(kv); i += 2 {
			props = append(props, cdx.Property{Name: "aquasecurity:trivy:" + kv[i], Value: kv[i+1]})
		}
		return props
	}
	tests := []struct {
		name, purl  string
		props       []cdx.Property
		wantName    string
		wantVersion string
	}{
		{name: "syft", purl: "pkg:deb/debian/libssl1.1@1.1.1n-0%2Bdeb11u1?arch=amd64&distro=debian-11.3&upstream=openssl", wantName: "openssl"},
		{name: "syft binNMU", purl: "pkg:deb/debian/libx@1.0-1%2Bb1?distro=debian-12&upstream=x%401.0-1", wantName: "x", wantVersion: "1.0-1"},
		{name: "syft alpine origin", purl: "pkg:apk/alpine/libcrypto3@3.1.4-r0?arch=x86_64&upstream=openssl&distro=alpine-3.18.4", wantName: "openssl"},
		{name: "rpm source is a file name", purl: "pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?upstream=openssl-3.0.7-24.el9.src.rpm&distro=rhel-9.3"},
		{name: "trivy", purl: "pkg:deb/debian/libssl1.1@1.1.1n-0%2Bdeb11u1?arch=amd64&distro=debian-11.3",
			props: trivy("SrcName", "openssl", "SrcRelease", "0+deb11u1", "SrcVersion", "1.1.1n"), wantName: "openssl", wantVersion: "1.1.1n-0+deb11u1"},
		{name: "trivy epoch", purl: "pkg:deb/debian/libpam0g@1.5.2-6%2Bdeb12u1?arch=amd64&distro=debian-12.5&epoch=1",
			props: trivy("SrcName", "pam", "SrcVersion", "1.5.2", "SrcRelease", "6+deb12u1", "SrcEpoch", "1"), wantName: "pam", wantVersion: "1:1.5.2-6+deb12u1"},
		// AlmaLinux's records name binary packages: Trivy's SrcName of an
		// rpm, its source RPM's name, is no name to look up. Trivy writes
		// an rpm so (trivy-rhel9.cdx.json): the epoch a qualifier, and
		// in SrcEpoch.
		{name: "trivy rpm", purl: "pkg:rpm/alma/openssl-libs@3.0.7-24.el9?arch=x86_64&distro=alma-9.2&epoch=1",
			props: trivy("SrcName", "openssl", "SrcVersion", "3.0.7", "SrcRelease", "24.el9", "SrcEpoch", "1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cdx.Component{Type: cdx.ComponentTypeLibrary, PackageURL: tt.purl}
			if tt.props != nil {
				c.Properties = &tt.props
			}
			comp, ok, err := cdxToComponent(&c)
			if err != nil || !ok {
				t.Fatalf("cdxToComponent: %v, %v", ok, err)
			}
			if comp.SourceName != tt.wantName || comp.SourceVersion != tt.wantVersion {
				t.Errorf("source %q %q, want %q %q", comp.SourceName, comp.SourceVersion, tt.wantName, tt.wantVersion)
			}
		})
	}
}

// TestDistroRPM matches the SBOMs that Syft and Trivy write of an
// AlmaLinux 8, an AlmaLinux 10 and a Red Hat Enterprise Linux 9 root file
// system. AlmaLinux's records name the major release ("AlmaLinux:8"), and
// Trivy writes the distribution as alma; matched as "AlmaLinux" or as the
// unknown "rpm" the package met no record. Trivy's package is named as
// Syft's, and as Trivy writes it in ScannerPURL. AlmaLinux 10's skopeo is
// at the fix of ALSA-2025:7467, 2:1.18.1-1.el10_0, and is not affected:
// its epoch, which both write as a qualifier, is in the version compared.
// Red Hat's records are keyed by product and repository, which an SBOM
// does not name: each package is a skipped record that says so, not a
// package that looks clean.
func TestDistroRPM(t *testing.T) {
	db := distroDB(t)
	type match struct{ PURL, ScannerPURL, Ecosystem, ID, Fix string }
	alma := func(scanner string) []match {
		return []match{{"pkg:rpm/almalinux/libsndfile-devel@1.0.28-8.el8", scanner, "AlmaLinux:8", "ALSA-2020:1636", "1.0.28-10.el8"}}
	}
	const rhel = "package pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?epoch=1: evident cannot match OS packages of Red Hat yet, and looks up none of its records: distribution not supported, not matched"
	tests := []struct {
		input    string
		parse    func(io.Reader, string, Matcher) ([]Finding, []error)
		want     []match
		wantErrs []string
	}{
		{"syft-almalinux8.cdx.json", ParseCycloneDX, alma(""), nil},
		{"trivy-almalinux8.cdx.json", ParseCycloneDX, alma("pkg:rpm/alma/libsndfile-devel@1.0.28-8.el8"), nil},
		{"syft-almalinux8.spdx.json", ParseSPDX, alma(""), nil},
		{"trivy-almalinux8.spdx.json", ParseSPDX, alma("pkg:rpm/alma/libsndfile-devel@1.0.28-8.el8"), nil},
		{"syft-almalinux10.cdx.json", ParseCycloneDX, nil, nil},
		{"trivy-almalinux10.cdx.json", ParseCycloneDX, nil, nil},
		{"syft-almalinux10.spdx.json", ParseSPDX, nil, nil},
		{"trivy-almalinux10.spdx.json", ParseSPDX, nil, nil},
		{"syft-rhel9.cdx.json", ParseCycloneDX, nil, []string{
			"syft-rhel9.cdx.json: pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?arch=x86_64&distro=rhel-9.2&epoch=1&package-id=cfbb94d0e05eed09&upstream=openssl-libs-3.0.7-24.el9.src.rpm: " + rhel}},
		{"trivy-rhel9.cdx.json", ParseCycloneDX, nil, []string{
			"trivy-rhel9.cdx.json: pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?arch=x86_64&distro=redhat-9.2&epoch=1: " + rhel}},
		{"syft-rhel9.spdx.json", ParseSPDX, nil, []string{
			"syft-rhel9.spdx.json: SPDXRef-Package-rpm-openssl-libs-cfbb94d0e05eed09: " + rhel}},
		{"trivy-rhel9.spdx.json", ParseSPDX, nil, []string{
			"trivy-rhel9.spdx.json: SPDXRef-Package-657b05fb4eaf7069: " + rhel}},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "distro", tt.input))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fs, errs := tt.parse(f, tt.input, db)
			var got []match
			for _, f := range fs {
				got = append(got, match{f.Package.PURL, f.Package.ScannerPURL, f.Package.Ecosystem, f.Vulnerability.ID, f.FixedVersion})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("findings mismatch (-want +got):\n%s", diff)
			}
			var gotErrs []string
			for _, err := range errs {
				if !errors.Is(err, errUnmatchedDistro) {
					t.Errorf("error %v does not wrap errUnmatchedDistro", err)
				}
				gotErrs = append(gotErrs, err.Error())
			}
			if diff := cmp.Diff(tt.wantErrs, gotErrs); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDistroRPMMerge: Syft's and Trivy's SBOMs of one AlmaLinux 8 root
// file system give one finding of libsndfile-devel, which names the
// package as both write it; as pkg:rpm/almalinux and pkg:rpm/alma it was
// two findings of one package.
func TestDistroRPMMerge(t *testing.T) {
	db := distroDB(t)
	var all []Finding
	for _, in := range []struct {
		name  string
		parse func(io.Reader, string, Matcher) ([]Finding, []error)
	}{
		{"syft-almalinux8.cdx.json", ParseCycloneDX},
		{"trivy-almalinux8.cdx.json", ParseCycloneDX},
		{"syft-almalinux8.spdx.json", ParseSPDX},
		{"trivy-almalinux8.spdx.json", ParseSPDX},
	} {
		f, err := os.Open(filepath.Join("testdata", "distro", in.name))
		if err != nil {
			t.Fatal(err)
		}
		fs, errs := in.parse(f, in.name, db)
		f.Close()
		for _, err := range errs {
			t.Errorf("unexpected error: %v", err)
		}
		all = append(all, fs...)
	}
	type merged struct {
		PURL, ScannerPURL, ID string
		Sources               int
	}
	var got []merged
	for _, f := range Merge(all) {
		got = append(got, merged{f.Package.PURL, f.Package.ScannerPURL, f.Vulnerability.ID, len(f.Sources)})
	}
	want := []merged{{"pkg:rpm/almalinux/libsndfile-devel@1.0.28-8.el8", "pkg:rpm/alma/libsndfile-devel@1.0.28-8.el8", "ALSA-2020:1636", 4}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged findings mismatch (-want +got):\n%s", diff)
	}
}

// TestNoRecords: the packages of an ecosystem that the vulnerability
// database holds no record of (the Debian packages of Syft's SBOM against
// the Go records alone, as evident db update downloads Go, npm, PyPI and
// Maven by default) are one skipped record naming it; they looked clean.
func TestNoRecords(t *testing.T) {
	tests := []struct {
		input, osv string
		wantErrs   []string
	}{
		{"syft.cdx.json", filepath.Join("testdata", "sbom", "osv"), []string{
			"syft.cdx.json: Debian packages: the vulnerability database holds no Debian records, so none of the input's Debian packages is matched (download them: evident db update --ecosystem Debian): no records of the ecosystem, not matched"}},
		{"syft.cdx.json", filepath.Join("testdata", "distro", "osv"), nil},
		{"syft-almalinux8.cdx.json", filepath.Join("testdata", "ecosystems", "osv"), []string{
			"syft-almalinux8.cdx.json: AlmaLinux packages: the vulnerability database holds no AlmaLinux records, so none of the input's AlmaLinux packages is matched (download them: evident db update --ecosystem AlmaLinux): no records of the ecosystem, not matched"}},
	}
	for _, tt := range tests {
		t.Run(tt.input+" "+tt.osv, func(t *testing.T) {
			db, lerrs, err := vulndb.Load(context.Background(), vulndb.Options{Sources: []string{tt.osv}})
			if err != nil || len(lerrs) > 0 {
				t.Fatal(err, lerrs)
			}
			f, err := os.Open(filepath.Join("testdata", "distro", tt.input))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, errs := ParseCycloneDX(f, tt.input, db)
			var got []string
			for _, err := range errs {
				if !errors.Is(err, errNoRecords) {
					t.Errorf("error %v does not wrap errNoRecords", err)
				}
				got = append(got, err.Error())
			}
			if diff := cmp.Diff(tt.wantErrs, got); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDistroScannedMerge: the same vulnerability of one rpm, in scanned
// BOMs of one root file system that Syft (as Grype writes its findings)
// and Trivy name differently (amzn and amazon, ol and oracle, sles and
// suse, almalinux and alma), is one finding, which names the package as
// Syft does and, in ScannerPURL, as Trivy does; it was two.
func TestDistroScannedMerge(t *testing.T) {
	// scanned is the findings of input with a vulnerability of its
	// first package added, as a scanner would report it.
	scanned := func(input string) []Finding {
		t.Helper()
		data, err := os.ReadFile(filepath.Join("testdata", "distro", input))
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		var ref any
		for _, c := range doc["components"].([]any) {
			if c := c.(map[string]any); c["purl"] != nil {
				ref = c["bom-ref"]
				break
			}
		}
		doc["vulnerabilities"] = []any{map[string]any{"id": "CVE-2023-0286", "ratings": []any{map[string]any{"severity": "high"}},
			"affects": []any{map[string]any{"ref": ref}}}}
		if data, err = json.Marshal(doc); err != nil {
			t.Fatal(err)
		}
		fs, errs := ParseCycloneDX(bytes.NewReader(data), input, nil)
		for _, err := range errs {
			t.Errorf("unexpected error: %v", err)
		}
		return fs
	}
	tests := []struct {
		distro, wantPURL, wantScanner, wantName string
	}{
		{"amzn2023", "pkg:rpm/amzn/openssl-libs@3.0.7-24.el9?epoch=1", "pkg:rpm/amazon/openssl-libs@3.0.7-24.el9?epoch=1", "amzn/openssl-libs"},
		{"ol9", "pkg:rpm/ol/openssl-libs@3.0.7-24.el9?epoch=1", "pkg:rpm/oracle/openssl-libs@3.0.7-24.el9?epoch=1", "ol/openssl-libs"},
		{"sles15", "pkg:rpm/sles/openssl-libs@3.0.7-24.el9?epoch=1", "pkg:rpm/suse/openssl-libs@3.0.7-24.el9?epoch=1", "openssl-libs"},
		{"almalinux8", "pkg:rpm/almalinux/libsndfile-devel@1.0.28-8.el8", "pkg:rpm/alma/libsndfile-devel@1.0.28-8.el8", "libsndfile-devel"},
	}
	for _, tt := range tests {
		// The merged finding is the same whichever tool's comes first:
		// Merge keeps the first one's package.
		for _, order := range [][2]string{{"syft", "trivy"}, {"trivy", "syft"}} {
			t.Run(tt.distro+"/"+order[0]+"-first", func(t *testing.T) {
				fs := Merge(append(scanned(order[0]+"-"+tt.distro+".cdx.json"), scanned(order[1]+"-"+tt.distro+".cdx.json")...))
				if len(fs) != 1 || fs[0].Package.PURL != tt.wantPURL || fs[0].Package.ScannerPURL != tt.wantScanner || fs[0].Package.Name != tt.wantName || len(fs[0].Sources) != 2 {
					t.Errorf("got %+v, want one finding of %s %s (%s) with two sources", fs, tt.wantName, tt.wantPURL, tt.wantScanner)
				}
			})
		}
	}
}

// TestDistroVEXPURL: every OS package of Syft's and Trivy's SBOMs is
// named, in PURL or ScannerPURL, by a package URL that go-vex, through
// which Trivy applies a VEX document, matches to the one the tool wrote,
// so that a VEX statement of evident's applies to it. An rpm's epoch in
// the version (pkg:rpm/redhat/openssl-libs@1:3.0.7-24.el9) matched
// neither tool's package URL, which has it in the epoch qualifier; a
// Debian package's, as Syft writes it (pkg:deb/debian/libaudit1@1:3.0-2),
// did not match Trivy's (@3.0-2?epoch=1).
func TestDistroVEXPURL(t *testing.T) {
	for _, input := range []string{
		"syft-almalinux8.cdx.json", "trivy-almalinux8.cdx.json", "syft-almalinux8.spdx.json", "trivy-almalinux8.spdx.json",
		"syft-almalinux10.cdx.json", "trivy-almalinux10.cdx.json", "syft-almalinux10.spdx.json", "trivy-almalinux10.spdx.json",
		"syft-rhel9.cdx.json", "trivy-rhel9.cdx.json", "syft-rhel9.spdx.json", "trivy-rhel9.spdx.json",
		"syft-amzn2023.cdx.json", "trivy-amzn2023.cdx.json", "syft-ol9.cdx.json", "trivy-ol9.cdx.json",
		"syft-sles15.cdx.json", "trivy-sles15.cdx.json",
		"syft.cdx.json", "trivy.cdx.json", "syft.spdx.json", "trivy.spdx.json",
		"syft-debian11-epoch.cdx.json", "trivy-debian11-epoch.cdx.json",
	} {
		t.Run(input, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "distro", input))
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Components []struct {
					PURL string `json:"purl"`
				} `json:"components"`
				Packages []struct {
					ExternalRefs []struct {
						Locator string `json:"referenceLocator"`
					} `json:"externalRefs"`
				} `json:"packages"`
			}
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			var purls []string
			for _, c := range doc.Components {
				purls = append(purls, c.PURL)
			}
			for _, p := range doc.Packages {
				for _, r := range p.ExternalRefs {
					purls = append(purls, r.Locator)
				}
			}
			n := 0
			for _, purl := range purls {
				if !strings.HasPrefix(purl, "pkg:") {
					continue
				}
				n++
				p, err := componentPackage(purl, "")
				if err != nil {
					t.Fatalf("%s: %v", purl, err)
				}
				if !vex.PurlMatches(p.PURL, purl) && (p.ScannerPURL == "" || !vex.PurlMatches(p.ScannerPURL, purl)) {
					t.Errorf("%s: PURL %s, ScannerPURL %q: neither matches it", purl, p.PURL, p.ScannerPURL)
				}
			}
			if n == 0 {
				t.Fatal("no package URL in the SBOM")
			}
		})
	}
}

// TestDistroUnmatched: an OS package of a distribution whose OSV records
// evident cannot look up, or whose release the package URL does not name,
// and a package of a type no OSV ecosystem is known for, are skipped
// records naming the distribution or type; one of a distribution or
// ecosystem it matches is looked up. Rocky Linux's, Red Hat's, AlmaLinux's and Wolfi's
// package URLs are as Syft or Trivy wrote them of the root file systems of
// testdata/distro; the others are written in their shape.
func TestDistroUnmatched(t *testing.T) {
	tests := []struct {
		purl       string
		wantErr    error
		wantDistro string
	}{
		{purl: "pkg:rpm/rocky/openssl-libs@3.0.7-24.el9?arch=x86_64&distro=rocky-9.2&epoch=1", wantErr: errUnmatchedDistro, wantDistro: "of Rocky Linux yet"},
		{purl: "pkg:rpm/redhat/openssl@3.0.7-24.el9?arch=x86_64&distro=rhel-9.2", wantErr: errUnmatchedDistro, wantDistro: "of Red Hat yet"},
		{purl: "pkg:rpm/opensuse/openssl-3@3.1.4-150600.5.3.1?arch=x86_64&distro=opensuse-leap-15.6", wantErr: errUnmatchedDistro, wantDistro: "of openSUSE yet"},
		{purl: "pkg:rpm/suse/libopenssl3@3.1.4-150600.5.3.1?arch=x86_64&distro=sles-15.6", wantErr: errUnmatchedDistro, wantDistro: "of SUSE yet"},
		{purl: "pkg:rpm/centos/openssl-libs@1.0.2k-19.el7?arch=x86_64&distro=centos-7", wantErr: errUnmatchedDistro, wantDistro: "of rpm/centos yet"},
		{purl: "pkg:rpm/amazon/openssl-libs@1.0.2k-24.amzn2.0.4?arch=x86_64&distro=amazon-2", wantErr: errUnmatchedDistro, wantDistro: "of rpm/amzn yet"},
		{purl: "pkg:deb/kali/openssl@3.0.11-1?arch=amd64&distro=kali-2023.4", wantErr: errUnmatchedDistro, wantDistro: "of deb/kali yet"},
		{purl: "pkg:apk/postmarketos/openssl@3.1.4-r0?arch=x86_64", wantErr: errUnmatchedDistro, wantDistro: "of apk/postmarketos yet"},
		{purl: "pkg:alpm/arch/openssl@3.2.0-1?arch=x86_64&distro=arch", wantErr: errUnmatchedDistro, wantDistro: "of alpm/arch yet"},
		{purl: "pkg:ebuild/dev-libs/openssl@3.0.13", wantErr: errUnmatchedDistro, wantDistro: "of ebuild yet"},
		{purl: "pkg:rpm/almalinux/libsndfile-devel@1.0.28-8.el8?arch=x86_64", wantErr: errNoRelease, wantDistro: "no AlmaLinux release"},
		{purl: "pkg:rpm/almalinux/libsndfile-devel@1.0.28-8.el8?arch=x86_64&distro=almalinux-8.9"},
		{purl: "pkg:rpm/alma/libsndfile-devel@1.0.28-8.el8?arch=x86_64&distro=alma-8.9"},
		{purl: "pkg:apk/wolfi/haproxy-3.0@3.0.9-r0?arch=x86_64&distro=wolfi-20230201"},
		{purl: "pkg:apk/chainguard/haproxy-2.2@2.2.33-r0?arch=x86_64"},
		{purl: "pkg:golang/github.com/gin-gonic/gin@v1.9.0"},
		// Package URL types that no OSV ecosystem evident knows names,
		// as Syft writes them (a Podfile.lock, a binary it classified,
		// a workflow's action).
		{purl: "pkg:cocoapods/AFNetworking@2.5.0", wantErr: errUnmatchedType, wantDistro: "of cocoapods packages"},
		{purl: "pkg:generic/python@3.11.2", wantErr: errUnmatchedType, wantDistro: "of generic packages"},
		{purl: "pkg:github/actions/checkout@v4", wantErr: errUnmatchedType, wantDistro: "of github packages"},
		{purl: "pkg:swift/github.com/apple/swift-nio@2.41.0"},
		{purl: "pkg:hackage/aeson@2.0.3.0"},
		{purl: "pkg:cran/commonmark@1.8.0"},
		{purl: "pkg:conan/zlib@1.2.13"},
	}
	db := distroDB(t)
	for _, tt := range tests {
		t.Run(tt.purl, func(t *testing.T) {
			p, err := componentPackage(tt.purl, "")
			if err != nil {
				t.Fatal(err)
			}
			_, errs := matchComponents([]Component{{Ref: tt.purl, Package: p}}, db, "SBOM", "bom.json")
			switch {
			case tt.wantErr == nil && len(errs) > 0 && !errors.Is(errs[0], errNoRecords):
				// The test records are Debian's and AlmaLinux's: a
				// package of another ecosystem it would look up is
				// one the database holds no record of.
				t.Errorf("got %v, want it looked up", errs)
			case tt.wantErr != nil && (len(errs) != 1 || !errors.Is(errs[0], tt.wantErr) || !strings.Contains(errs[0].Error(), tt.wantDistro)):
				t.Errorf("got %v, want one error wrapping %v that names %q", errs, tt.wantErr, tt.wantDistro)
			}
		})
	}
}
