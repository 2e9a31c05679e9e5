package assess

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/vulndb"
)

// TestTargetsOfAnotherName: a Maven artifact published under other
// coordinates (Debian's bcprov for bcprov-jdk18on) is looked for through
// the functions the record gives for the coordinates it names; an artifact
// of another name gets none of them.
func TestTargetsOfAnotherName(t *testing.T) {
	v := &vulndb.Vuln{Functions: []vulndb.Function{
		{Ecosystem: osv.EcosystemMaven, Module: "org.bouncycastle:bcprov-jdk18on", Package: "org.bouncycastle.jce.provider", Symbol: "X509LDAPCertStoreSpi.engineGetCRLs"},
		{Ecosystem: osv.EcosystemMaven, Module: "org.bouncycastle:bcprov-jdk18on", Package: "org.bouncycastle.jce.provider", Symbol: "X509LDAPCertStoreSpi.engineGetCertificates"},
	}}
	finding := func(name string) findings.Finding {
		return findings.Finding{Package: findings.Package{Ecosystem: osv.EcosystemMaven, Name: name, Version: "1.72"}}
	}
	tests := []struct {
		name string
		pkg  string
		want []target
	}{
		{"the named coordinates", "org.bouncycastle:bcprov-jdk18on", []target{
			{pkg: "org.bouncycastle.jce.provider", symbol: "X509LDAPCertStoreSpi.engineGetCRLs", module: "org.bouncycastle:bcprov-jdk18on"},
			{pkg: "org.bouncycastle.jce.provider", symbol: "X509LDAPCertStoreSpi.engineGetCertificates", module: "org.bouncycastle:bcprov-jdk18on"},
		}},
		{"Debian's coordinates", "org.bouncycastle:bcprov", []target{
			{pkg: "org.bouncycastle.jce.provider", symbol: "X509LDAPCertStoreSpi.engineGetCRLs", module: "org.bouncycastle:bcprov"},
			{pkg: "org.bouncycastle.jce.provider", symbol: "X509LDAPCertStoreSpi.engineGetCertificates", module: "org.bouncycastle:bcprov"},
		}},
		{"another artifact", "org.bouncycastle:bcpkix-jdk18on", []target{{module: "org.bouncycastle:bcpkix-jdk18on"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := targets(finding(tt.pkg), v)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(target{})); diff != "" {
				t.Errorf("targets (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTargetsOfDisplayName: GitHub's records name a PyPI project as PyPI
// displays it (GHSA-8q59-q68h-6hv4 affects "PyYAML" and lists
// yaml.constructor.FullConstructor), findings name it normalized
// ("pyyaml"); the record's functions are still the targets, or the
// verdict fell back to package level and was never executed.
func TestTargetsOfDisplayName(t *testing.T) {
	v := &vulndb.Vuln{Functions: []vulndb.Function{
		{Ecosystem: osv.EcosystemPyPI, Module: "PyYAML", Package: "yaml.constructor", Symbol: "FullConstructor"},
	}}
	f := findings.Finding{Package: findings.Package{Ecosystem: osv.EcosystemPyPI, Name: "pyyaml", Version: "5.3.1"}}
	want := []target{{pkg: "yaml.constructor", symbol: "FullConstructor", module: "pyyaml"}}
	if diff := cmp.Diff(want, targets(f, v), cmp.AllowUnexported(target{})); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
}
