package findings

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/vulndb"
)

// testDB loads the real Go vulnerability records under testdata/sbom/osv
// (copied unchanged from the osv.dev snapshot, see testdata/README.md).
func testDB(t testing.TB) *vulndb.DB {
	t.Helper()
	db, lerrs, err := vulndb.Load(context.Background(), vulndb.Options{Sources: []string{filepath.Join("testdata", "sbom", "osv")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range lerrs {
		t.Errorf("load test records: %v", e)
	}
	return db
}

// withMatcher adapts an SBOM importer to the parser signature that the
// shared golden, bad-input and fuzz helpers take.
func withMatcher(parse func(io.Reader, string, Matcher) ([]Finding, []error), m Matcher) parser {
	return func(r io.Reader, name string) ([]Finding, []error) { return parse(r, name, m) }
}

func TestComponentPackage(t *testing.T) {
	tests := []struct {
		name, purl, version string
		want                Package
		wantErr             string
	}{
		{
			name: "go module with qualifiers",
			purl: "pkg:golang/golang.org/x/text@v0.3.5?goarch=amd64&goos=linux&type=module",
			want: Package{PURL: "pkg:golang/golang.org/x/text@v0.3.5", Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.5"},
		},
		{
			name: "cyclonedx-gomod standard library",
			purl: "pkg:golang/std@go1.26.8?type=module",
			want: Package{PURL: "pkg:golang/stdlib@v1.26.8", Ecosystem: "Go", Name: "stdlib", Version: "v1.26.8"},
		},
		{
			name: "syft standard library",
			purl: "pkg:golang/stdlib@1.22.1",
			want: Package{PURL: "pkg:golang/stdlib@v1.22.1", Ecosystem: "Go", Name: "stdlib", Version: "v1.22.1"},
		},
		{
			name:    "version from the component",
			purl:    "pkg:npm/%40babel/core",
			version: "7.24.0",
			want:    Package{PURL: "pkg:npm/%40babel/core@7.24.0", Ecosystem: "npm", Name: "@babel/core", Version: "7.24.0"},
		},
		{
			name:    "package URL version wins",
			purl:    "pkg:pypi/Django@4.2.1",
			version: "4.2",
			want:    Package{PURL: "pkg:pypi/django@4.2.1", Ecosystem: "PyPI", Name: "django", Version: "4.2.1"},
		},
		// Syft's UNKNOWN is no version (TestSyftUnknownVersion), but
		// the package URL's wins over it.
		{
			name:    "package URL version over UNKNOWN",
			purl:    "pkg:deb/debian/openssl@1.1.1n-0%2Bdeb11u1?distro=debian-11.3",
			version: "UNKNOWN",
			want:    Package{PURL: "pkg:deb/debian/openssl@1.1.1n-0%2Bdeb11u1", Ecosystem: "Debian:11", Name: "openssl", Version: "1.1.1n-0+deb11u1"},
		},
		{
			name: "distribution package",
			purl: "pkg:deb/debian/libssl1.1@1.1.1d-0%2Bdeb10u2?arch=amd64&distro=debian-10.2",
			want: Package{PURL: "pkg:deb/debian/libssl1.1@1.1.1d-0%2Bdeb10u2", Ecosystem: "Debian:10", Name: "libssl1.1", Version: "1.1.1d-0+deb10u2"},
		},
		// Trivy's CycloneDX and SPDX components (deb and rpm) and Syft's
		// (rpm) give the epoch as a qualifier and the version with it;
		// without it, "2.36-9" compared below every fix of epoch 0 and
		// named a package no report of the same image names. An rpm's
		// PURL keeps the qualifier, as the package URL specification
		// has it (TestDistroVEXPURL).
		{
			name:    "trivy debian epoch qualifier",
			purl:    "pkg:deb/debian/libpam0g@1.5.2-6%2Bdeb12u1?arch=amd64&distro=debian-12.5&epoch=1",
			version: "1:1.5.2-6+deb12u1",
			want: Package{PURL: "pkg:deb/debian/libpam0g@1:1.5.2-6%2Bdeb12u1", Ecosystem: "Debian:12", Name: "libpam0g", Version: "1:1.5.2-6+deb12u1",
				ScannerPURL: "pkg:deb/debian/libpam0g@1.5.2-6%2Bdeb12u1?epoch=1"},
		},
		{
			name:    "syft rpm epoch qualifier",
			purl:    "pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?arch=x86_64&epoch=1&upstream=openssl-3.0.7-24.el9.src.rpm&distro=rhel-9.3",
			version: "1:3.0.7-24.el9",
			want:    Package{PURL: "pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?epoch=1", Ecosystem: "Red Hat", Name: "openssl-libs", Version: "1:3.0.7-24.el9"},
		},
		{
			name: "epoch qualifier without component version",
			purl: "pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?arch=x86_64&epoch=1",
			want: Package{PURL: "pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?epoch=1", Ecosystem: "Red Hat", Name: "openssl-libs", Version: "1:3.0.7-24.el9"},
		},
		{
			name: "epoch zero",
			purl: "pkg:rpm/redhat/bash@5.1.8-6.el9?arch=x86_64&epoch=0",
			want: Package{PURL: "pkg:rpm/redhat/bash@5.1.8-6.el9", Ecosystem: "Red Hat", Name: "bash", Version: "5.1.8-6.el9"},
		},
		// OSV keys Debian's, Ubuntu's and Alpine's records by release
		// alone, which the distro qualifier (os-release's ID-VERSION_ID,
		// as Syft and Trivy write it) tells; matched as the bare
		// distribution, a package met no record and looked clean.
		{
			name: "syft ubuntu lts",
			purl: "pkg:deb/ubuntu/libssl3@3.0.2-0ubuntu1.10?arch=amd64&upstream=openssl&distro=ubuntu-22.04",
			want: Package{PURL: "pkg:deb/ubuntu/libssl3@3.0.2-0ubuntu1.10", Ecosystem: "Ubuntu:22.04:LTS", Name: "libssl3", Version: "3.0.2-0ubuntu1.10"},
		},
		{
			name: "ubuntu interim release",
			purl: "pkg:deb/ubuntu/openssl@3.0.10-1ubuntu2?arch=amd64&distro=ubuntu-23.10",
			want: Package{PURL: "pkg:deb/ubuntu/openssl@3.0.10-1ubuntu2", Ecosystem: "Ubuntu:23.10", Name: "openssl", Version: "3.0.10-1ubuntu2"},
		},
		{
			name: "alpine point release",
			purl: "pkg:apk/alpine/busybox@1.36.1-r2?arch=x86_64&upstream=busybox&distro=alpine-3.18.4",
			want: Package{PURL: "pkg:apk/alpine/busybox@1.36.1-r2", Ecosystem: "Alpine:v3.18", Name: "busybox", Version: "1.36.1-r2"},
		},
		// Matched, these are errors that say so (TestDistroNoRelease);
		// a scanned BOM's findings of them stay.
		{
			name: "debian without distro",
			purl: "pkg:deb/debian/openssl@1.1.1n-0%2Bdeb11u1?arch=amd64",
			want: Package{PURL: "pkg:deb/debian/openssl@1.1.1n-0%2Bdeb11u1", Ecosystem: "Debian", Name: "openssl", Version: "1.1.1n-0+deb11u1"},
		},
		{
			name: "syft debian testing",
			purl: "pkg:deb/debian/openssl@3.3.2-2?arch=amd64&distro=debian",
			want: Package{PURL: "pkg:deb/debian/openssl@3.3.2-2", Ecosystem: "Debian", Name: "openssl", Version: "3.3.2-2"},
		},
		{
			name: "trivy debian testing",
			purl: "pkg:deb/debian/openssl@3.3.2-2?arch=amd64&distro=debian-trixie%2Fsid",
			want: Package{PURL: "pkg:deb/debian/openssl@3.3.2-2", Ecosystem: "Debian", Name: "openssl", Version: "3.3.2-2"},
		},
		{
			name: "wolfi has no releases",
			purl: "pkg:apk/wolfi/glibc@2.38-r1?arch=x86_64&distro=wolfi-20230201",
			want: Package{PURL: "pkg:apk/wolfi/glibc@2.38-r1", Ecosystem: "Wolfi", Name: "glibc", Version: "2.38-r1"},
		},
		{name: "go development build", purl: "pkg:golang/example.com/vulnapp@(devel)", wantErr: "development build"},
		{name: "no package URL", wantErr: "no package URL"},
		{name: "bad package URL", purl: "golang.org/x/text@v0.3.5", wantErr: `parse package URL "golang.org/x/text@v0.3.5": purl scheme is not "pkg": "golang.org/x/text@v0.3.5"`},
		{name: "no version", purl: "pkg:golang/golang.org/x/text", wantErr: "package golang.org/x/text: no version"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := componentPackage(tc.purl, tc.version)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("package mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
