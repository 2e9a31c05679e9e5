package findings

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

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

// TestDistroSBOM matches the SBOMs that Syft and Trivy write of a Debian
// 11 root file system against Debian's record of CVE-2022-1292, which
// OSV files under "Debian:11". Read as the bare "Debian", the packages
// met no record, and the SBOMs looked clean.
func TestDistroSBOM(t *testing.T) {
	db := distroDB(t)
	type match struct{ PURL, Ecosystem, ID, Fix string }
	openssl := match{"pkg:deb/debian/openssl@1.1.1n-0%2Bdeb11u1", "Debian:11", "DEBIAN-CVE-2022-1292", "1.1.1n-0+deb11u3"}
	tests := []struct {
		input string
		parse func(io.Reader, string, Matcher) ([]Finding, []error)
		want  []match
	}{
		{"syft.cdx.json", ParseCycloneDX, []match{openssl}},
		{"trivy.cdx.json", ParseCycloneDX, []match{openssl}},
		{"syft.spdx.json", ParseSPDX, []match{openssl}},
		{"trivy.spdx.json", ParseSPDX, []match{openssl}},
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
				got = append(got, match{f.Package.PURL, f.Package.Ecosystem, f.Vulnerability.ID, f.FixedVersion})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("findings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
