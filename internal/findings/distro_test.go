package findings

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/vulndb"
)

// distroDB loads Debian's record of testdata/distro/osv (see
// testdata/README.md).
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

// fuzzDB loads the Go records of testDB and the Debian record of
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
