package osv

import "testing"

func TestPackageFromPURL(t *testing.T) {
	tests := []struct {
		purl               string
		eco, name, version string
		wantErr            bool
	}{
		{purl: "pkg:golang/golang.org/x/net@v0.1.0", eco: EcosystemGo, name: "golang.org/x/net", version: "v0.1.0"},
		// Module paths keep their case, which the package URL library
		// lowercases.
		{purl: "pkg:golang/github.com/Masterminds/semver/v3@v3.1.0", eco: EcosystemGo, name: "github.com/Masterminds/semver/v3", version: "v3.1.0"},
		{purl: "pkg:golang/github.com/BurntSushi/toml@v1.0.0?type=module#sub", eco: EcosystemGo, name: "github.com/BurntSushi/toml", version: "v1.0.0"},
		{purl: "pkg:golang/github.com/%41zure/azure-sdk-for-go@v68.0.0%2Bincompatible", eco: EcosystemGo, name: "github.com/Azure/azure-sdk-for-go", version: "v68.0.0+incompatible"},
		{purl: "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", eco: EcosystemMaven, name: "org.apache.logging.log4j:log4j-core", version: "2.14.1"},
		{purl: "pkg:npm/%40babel/core@7.0.0", eco: EcosystemNPM, name: "@babel/core", version: "7.0.0"},
		{purl: "pkg:npm/lodash@4.17.20", eco: EcosystemNPM, name: "lodash", version: "4.17.20"},
		{purl: "pkg:pypi/PyYAML@5.3", eco: EcosystemPyPI, name: "pyyaml", version: "5.3"},
		{purl: "pkg:pypi/zope.interface@5.0", eco: EcosystemPyPI, name: "zope-interface", version: "5.0"},
		{purl: "pkg:gem/rails@6.0.0", eco: EcosystemRubyGems, name: "rails", version: "6.0.0"},
		{purl: "pkg:cargo/regex@1.5.4", eco: EcosystemCratesIO, name: "regex", version: "1.5.4"},
		{purl: "pkg:nuget/Newtonsoft.Json@12.0.1", eco: EcosystemNuGet, name: "Newtonsoft.Json", version: "12.0.1"},
		// As Syft writes them of a Package.resolved, a
		// cabal.project.freeze, an R library and a conan.lock.
		{purl: "pkg:swift/github.com/apple/swift-nio@2.41.0", eco: EcosystemSwiftURL, name: "github.com/apple/swift-nio", version: "2.41.0"},
		{purl: "pkg:hackage/aeson@2.0.3.0", eco: EcosystemHackage, name: "aeson", version: "2.0.3.0"},
		{purl: "pkg:cran/commonmark@1.8.0", eco: EcosystemCRAN, name: "commonmark", version: "1.8.0"},
		{purl: "pkg:conan/zlib@1.2.13", eco: EcosystemConanCenter, name: "zlib", version: "1.2.13"},
		{purl: "pkg:deb/debian/openssl@1.1.1", wantErr: true},
		{purl: "pkg:cocoapods/AFNetworking@2.5.0", wantErr: true},
		{purl: "not a purl", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.purl, func(t *testing.T) {
			eco, name, version, err := PackageFromPURL(tt.purl)
			if (err != nil) != tt.wantErr {
				t.Fatalf("PackageFromPURL(%q) error = %v, wantErr %v", tt.purl, err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if eco != tt.eco || name != tt.name || version != tt.version {
				t.Errorf("PackageFromPURL(%q) = %q, %q, %q; want %q, %q, %q", tt.purl, eco, name, version, tt.eco, tt.name, tt.version)
			}
			back, err := PURL(eco, name, version)
			if err != nil {
				t.Fatalf("PURL(%q, %q, %q): %v", eco, name, version, err)
			}
			eco2, name2, version2, err := PackageFromPURL(back)
			if err != nil || eco2 != eco || name2 != name || version2 != version {
				t.Errorf("round trip %q -> %q -> %q, %q, %q, %v", tt.purl, back, eco2, name2, version2, err)
			}
		})
	}
}

func TestNormalizePyPI(t *testing.T) {
	for in, want := range map[string]string{"PyYAML": "pyyaml", "Foo__Bar.baz": "foo-bar-baz", "a-b": "a-b", "Jinja2": "jinja2"} {
		if got := NormalizePyPI(in); got != want {
			t.Errorf("NormalizePyPI(%q) = %q, want %q", in, got, want)
		}
	}
}
