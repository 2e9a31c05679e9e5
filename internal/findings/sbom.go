package findings

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/vulndb"
)

// Matcher finds the vulnerabilities that affect a package version.
// *vulndb.DB implements it. Implementations must be safe for concurrent
// use; the importers do not modify what they return.
type Matcher interface {
	// Affecting returns the records that affect version of package name
	// in ecosystem (an OSV ecosystem name), or none.
	Affecting(ecosystem, name, version string) []*vulndb.Vuln
	// FixedVersion returns the lowest version above version that fixes
	// v, or "" when none is known.
	FixedVersion(v *vulndb.Vuln, ecosystem, name, version string) string
	// Names reports whether a record names package name of ecosystem,
	// at any version.
	Names(ecosystem, name string) bool
	// Stats counts the records, per ecosystem among others: a package of
	// an ecosystem with none is not looked up, but named.
	Stats() vulndb.Stats
}

var _ Matcher = (*vulndb.DB)(nil)

// Component is one package version that an SBOM or a binary lists.
type Component struct {
	// Ref locates the component in its input: the CycloneDX bom-ref, the
	// SPDX SPDXID, or the module path in a Go binary.
	Ref string
	// Package is the package version, normalized as in findings.
	Package Package
	// GOOS and GOARCH are the platform a Go component was built for,
	// when the input says; they narrow the Go records that apply.
	GOOS, GOARCH string
	// VersionUnknown says the component's version is Syft's UNKNOWN
	// (syftStub): it is matched against no record.
	VersionUnknown bool
	// SourceName and SourceVersion are the source package a
	// distribution's binary package was built from, when the input says
	// and it is not the package itself: Debian's, Ubuntu's and Alpine's
	// records name source packages (openssl, not libssl1.1). SourceVersion
	// is empty when it is the package's own.
	SourceName, SourceVersion string
}

// Go module names that SBOM tools give the standard library: OSV,
// govulncheck, Syft and Trivy call it "stdlib"; cyclonedx-gomod "std".
const (
	goStdlib  = "stdlib"
	goStdName = "std"
)

// goDevel is the version of a Go main module built from a work tree
// (go build without version control information, go run).
const goDevel = "(devel)"

// syftUnknown is the version Syft gives a package whose version it could
// not read (its compliance default, missing-version: stub), with a package
// URL that names none: no version to match, though every range from 0
// would take it for one.
const syftUnknown = "UNKNOWN"

// syftStub reports whether a component's version is Syft's UNKNOWN: it
// says so and its package URL names none.
func syftStub(purl, version string) bool {
	if version != syftUnknown {
		return false
	}
	p, err := packageurl.FromString(purl)
	return err == nil && p.Version == ""
}

// errDevel reports a Go module at version (devel): the application
// itself, not a published version that advisories could name. Importers
// skip such components without reporting them.
var errDevel = errors.New("development build")

// componentPackage builds the package of an SBOM component from its
// package URL, with the version the component states when the URL has
// none. The standard library gets the name the Go
// vulnerability database uses, so that an SBOM and govulncheck name it
// alike.
func componentPackage(purl, version string) (Package, error) {
	if purl == "" {
		return Package{}, errors.New("no package URL")
	}
	eco, name, v, err := osv.PackageFromPURL(purl)
	unknownEco := errors.Is(err, osv.ErrUnknownEcosystem)
	if unknownEco {
		if p, perr := packageurl.FromString(purl); perr == nil {
			v = p.Version
		}
	}
	switch {
	case err == nil && eco == osv.EcosystemGo && cmp.Or(v, version) == goDevel:
		return Package{}, errDevel
	case err == nil && eco == osv.EcosystemGo && (name == goStdName || name == goStdlib):
		return newPackage(eco, goStdlib, cmp.Or(v, version), "")
	case err == nil:
		return newPackage(eco, name, cmp.Or(v, version), "")
	case unknownEco:
		if v != "" {
			version = ""
		}
		return distroPackage(purl, version)
	}
	return Package{}, err
}

// distroSource is the source package that a distribution package's URL
// names in its upstream qualifier, as Syft writes it: "openssl", or
// "glibc@2.31-13+deb11u5" when the source's version is not the
// package's. It returns "" for other package URLs: an rpm's upstream is
// its source RPM's file name, and Red Hat's records name binary packages.
func distroSource(purl string) (name, version string) {
	if !sourceNamed(purl) {
		return "", ""
	}
	p, err := packageurl.FromString(purl)
	if err != nil {
		return "", ""
	}
	name, version, _ = strings.Cut(p.Qualifiers.Map()["upstream"], "@")
	return name, version
}

// sourceNamed reports whether purl is a package of a distribution whose
// records name source packages (Debian's, Ubuntu's, Alpine's: deb and
// apk), so that a binary package is also looked up by its source's
// name. An rpm's records (AlmaLinux's, Red Hat's) name binary packages.
func sourceNamed(purl string) bool {
	return strings.HasPrefix(purl, "pkg:deb/") || strings.HasPrefix(purl, "pkg:apk/")
}

// releaseEcosystems are the distributions whose OSV records all name a
// release ("Debian:11", "Ubuntu:22.04:LTS", "Alpine:v3.18",
// "AlmaLinux:8"), none the bare distribution.
var releaseEcosystems = []string{"Debian", "Ubuntu", "Alpine", "AlmaLinux"}

// rollingEcosystems are the distributions whose OSV records name the bare
// distribution, there being no release ("Wolfi", "Chainguard", as
// osv-scalibr's purl/ecosystem maps their package URLs).
var rollingEcosystems = []string{"Wolfi", "Chainguard"}

// osPURLTypes are the package URL types of the packages of an operating
// system that Syft and Trivy write (dpkg, rpm, apk, pacman, portage).
var osPURLTypes = []string{packageurl.TypeDebian, packageurl.TypeRPM, packageurl.TypeApk, packageurl.TypeAlpm, packageurl.TypeEbuild}

// errNoRelease reports a distribution package whose release is not known,
// so that no record of its distribution can be matched to it.
var errNoRelease = errors.New("release unknown, not matched")

// errUnmatchedDistro reports a package of a distribution whose OSV
// records evident does not know how to look up.
var errUnmatchedDistro = errors.New("distribution not supported, not matched")

// errUnmatchedType reports a package whose package URL type evident knows
// no OSV ecosystem of (cocoapods, generic, github): looked up under the
// type, it would meet no record, whatever the database holds.
var errUnmatchedType = errors.New("package type not supported, not matched")

// unmatched returns why a package cannot be matched, or nil when it can:
// it is an OS package whose distribution keys its records by a release
// the input does not name (errNoRelease), or whose records evident does
// not know under which OSV ecosystem, release and version ordering the
// distribution files (errUnmatchedDistro: Red Hat keys them by product and
// repository, "Red Hat:enterprise_linux:9::appstream", which a package URL
// does not name; Rocky Linux, SUSE, openSUSE, CentOS, Amazon Linux and
// others, by what no SBOM fixture here proves), or its package URL type
// has no OSV ecosystem evident knows (errUnmatchedType). Looked up as it
// is, such a package meets no record and looks clean.
func unmatched(p Package) error {
	base, release, _ := strings.Cut(p.Ecosystem, ":")
	switch {
	case slices.Contains(releaseEcosystems, base):
		if release == "" {
			return fmt.Errorf("the input names no %s release (the distro qualifier of its package URL), by which OSV's %s records are keyed: %w", base, base, errNoRelease)
		}
		return nil
	case slices.Contains(rollingEcosystems, p.Ecosystem):
		return nil
	}
	u, err := packageurl.FromString(p.PURL)
	if err != nil {
		return nil
	}
	if !slices.Contains(osPURLTypes, u.Type) {
		if _, _, _, err := osv.PackageFromPURL(p.PURL); errors.Is(err, osv.ErrUnknownEcosystem) {
			return fmt.Errorf("evident knows no OSV ecosystem of %s packages, and looks none up: %w", u.Type, errUnmatchedType)
		}
		return nil
	}
	distro := p.Ecosystem
	// The namespace names the vendor (rpm/centos, alpm/arch), but an
	// ebuild's is its category (dev-libs).
	if distro == u.Type && u.Namespace != "" && u.Type != packageurl.TypeEbuild {
		distro = u.Type + "/" + u.Namespace
	}
	return fmt.Errorf("evident cannot match OS packages of %s yet, and looks up none of its records: %w", distro, errUnmatchedDistro)
}

// errNoRecords reports packages of an ecosystem that the vulnerability
// database holds no record of (evident db update downloads Go, npm, PyPI
// and Maven unless told otherwise): looked up, each would look clean.
var errNoRecords = errors.New("no records of the ecosystem, not matched")

// heldEcosystems returns the base ecosystems ("Debian" of "Debian:11")
// that m holds records of.
func heldEcosystems(m Matcher) map[string]bool {
	held := map[string]bool{}
	for eco := range m.Stats().Ecosystems {
		base, _, _ := strings.Cut(eco, ":")
		held[base] = true
	}
	return held
}

// matchComponents looks every component up in m and returns a finding
// for each record that affects it, merged. A Maven artifact that ships
// under several coordinates (maven_aliases.yaml) is also looked up under
// the others, and a record found only that way says so in its source's
// Match; a distribution's binary package is also looked up under its
// source package. An OS package that could not meet a record of its
// distribution, whose release the input does not tell or whose records
// evident cannot look up, and a package of a type no OSV ecosystem is
// known for, are not looked up: each is a *RecordError (errNoRelease,
// errUnmatchedDistro, errUnmatchedType) rather than a package that looks
// clean. Nor are the packages of an ecosystem m holds no record of: one
// *RecordError (errNoRecords) names the ecosystem. A component at Syft's
// UNKNOWN is matched against nothing, and is a *RecordError
// (errNoVersion) when m has records of its package. A nil m matches
// nothing.
// Components that name the same package version are looked up once.
func matchComponents(comps []Component, m Matcher, tool, file string) ([]Finding, []error) {
	if m == nil {
		return nil, nil
	}
	var (
		out  []Finding
		errs []error
	)
	seen := map[string]bool{}
	held := heldEcosystems(m)
	missing := map[string]bool{}
	for _, c := range comps {
		p := c.Package
		key := p.PURL + "\x00" + c.GOOS + "\x00" + c.GOARCH
		if seen[key] {
			continue
		}
		seen[key] = true
		if err := unmatched(p); err != nil {
			errs = append(errs, recordErr(file, cmp.Or(c.Ref, p.Name), "package %s: %w", p.PURL, err))
			continue
		}
		if c.VersionUnknown {
			// Said only of a package that records name: Syft also
			// lists the scanned application's own jar so, which none
			// does.
			if m.Names(p.Ecosystem, p.Name) {
				errs = append(errs, recordErr(file, cmp.Or(c.Ref, p.Name), "%s package %s: records name it, but its version is %s, Syft's for one it could not read: %w", p.Ecosystem, p.Name, syftUnknown, errNoVersion))
			}
			continue
		}
		if base, _, _ := strings.Cut(p.Ecosystem, ":"); !held[base] {
			if !missing[base] {
				missing[base] = true
				errs = append(errs, recordErr(file, base+" packages", "the vulnerability database holds no %s records, so none of the input's %s packages is matched (download them: evident db update --ecosystem %s): %w", base, base, base, errNoRecords))
			}
			continue
		}
		found := map[string]bool{}
		match := func(name, version, how string) {
			for _, v := range m.Affecting(p.Ecosystem, name, version) {
				if found[v.Entry.ID] || p.Ecosystem == osv.EcosystemGo && !onPlatform(v, p.Name, c.GOOS, c.GOARCH) {
					continue
				}
				found[v.Entry.ID] = true
				fix := m.FixedVersion(v, p.Ecosystem, name, version)
				if fix != "" && p.Ecosystem == osv.EcosystemGo {
					fix = goVersion(fix)
				}
				out = append(out, Finding{
					Package:       p,
					Vulnerability: Vulnerability{ID: v.Entry.ID, Aliases: sortedSet(v.Entry.Aliases)},
					Severity:      DBSeverity(v.Severity),
					FixedVersion:  fix,
					// The SBOM only shows that the module is in the build.
					Static:  StaticRequired,
					Sources: []Source{{Tool: tool, File: file, Match: how}},
				})
			}
		}
		match(p.Name, p.Version, "")
		if p.Ecosystem == osv.EcosystemMaven {
			for _, a := range mavenAliasesOf(p.Name) {
				match(a.name, p.Version, a.explain(p.Name))
			}
		}
		if c.SourceName != "" && c.SourceName != p.Name {
			match(c.SourceName, cmp.Or(c.SourceVersion, p.Version), fmt.Sprintf("the record names source package %s, which %s is built from", c.SourceName, p.Name))
		}
	}
	return Merge(out), errs
}

// onPlatform reports whether a Go record can affect module on goos/goarch:
// some affected entry of the module has an import that is not restricted
// to other platforms, as govulncheck decides. An unknown platform (empty)
// keeps every record.
func onPlatform(v *vulndb.Vuln, module, goos, goarch string) bool {
	if goos == "" && goarch == "" {
		return true
	}
	fits := func(list []string, x string) bool { return x == "" || len(list) == 0 || slices.Contains(list, x) }
	for _, a := range v.Entry.Affected {
		if !strings.EqualFold(a.Package.Ecosystem, osv.EcosystemGo) || a.Package.Name != module {
			continue
		}
		if a.EcosystemSpecific == nil || len(a.EcosystemSpecific.Imports) == 0 {
			return true
		}
		for _, imp := range a.EcosystemSpecific.Imports {
			if fits(imp.GOOS, goos) && fits(imp.GOARCH, goarch) {
				return true
			}
		}
	}
	return false
}
