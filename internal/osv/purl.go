package osv

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/package-url/packageurl-go"
)

// Ecosystem names as OSV writes them.
const (
	EcosystemGo        = "Go"
	EcosystemNPM       = "npm"
	EcosystemPyPI      = "PyPI"
	EcosystemMaven     = "Maven"
	EcosystemNuGet     = "NuGet"
	EcosystemRubyGems  = "RubyGems"
	EcosystemCratesIO  = "crates.io"
	EcosystemPackagist = "Packagist"
	EcosystemHex       = "Hex"
	EcosystemPub       = "Pub"
	// The ecosystems below are those osv-scalibr (so OSV-Scanner) gives
	// the package URL types conan, swift, hackage and cran. A SwiftURL
	// package is named by its repository's URL without the scheme
	// ("github.com/apple/swift-nio"), as a swift package URL's namespace
	// and name write it.
	EcosystemConanCenter = "ConanCenter"
	EcosystemSwiftURL    = "SwiftURL"
	EcosystemHackage     = "Hackage"
	EcosystemCRAN        = "CRAN"
)

// ErrUnknownEcosystem reports a package URL type or ecosystem name that has
// no counterpart on the other side.
var ErrUnknownEcosystem = errors.New("unknown ecosystem")

// purlTypes maps package URL types to OSV ecosystems, one to one.
var purlTypes = map[string]string{
	packageurl.TypeGolang:   EcosystemGo,
	packageurl.TypeNPM:      EcosystemNPM,
	packageurl.TypePyPi:     EcosystemPyPI,
	packageurl.TypeMaven:    EcosystemMaven,
	packageurl.TypeNuget:    EcosystemNuGet,
	packageurl.TypeGem:      EcosystemRubyGems,
	packageurl.TypeCargo:    EcosystemCratesIO,
	packageurl.TypeComposer: EcosystemPackagist,
	packageurl.TypeHex:      EcosystemHex,
	packageurl.TypePub:      EcosystemPub,
	packageurl.TypeConan:    EcosystemConanCenter,
	packageurl.TypeSwift:    EcosystemSwiftURL,
	packageurl.TypeHackage:  EcosystemHackage,
	packageurl.TypeCran:     EcosystemCRAN,
}

// Ecosystems lists the ecosystems above, sorted: the ones evident maps to
// and from package URLs.
func Ecosystems() []string {
	return slices.Sorted(maps.Values(purlTypes))
}

// PackageFromPURL returns the OSV ecosystem, package name and version that a
// package URL names. Maven names are "group:artifact", npm scoped names
// "@scope/name", Go names the full module path, and PyPI names are
// normalised per PEP 503.
func PackageFromPURL(s string) (ecosystem, name, version string, err error) {
	p, err := packageurl.FromString(s)
	if err != nil {
		return "", "", "", fmt.Errorf("parse package URL %q: %w", s, err)
	}
	eco, ok := purlTypes[p.Type]
	if !ok {
		return "", "", "", fmt.Errorf("package URL %q: type %q: %w", s, p.Type, ErrUnknownEcosystem)
	}
	switch {
	case p.Namespace == "":
		name = p.Name
	case eco == EcosystemMaven:
		name = p.Namespace + ":" + p.Name
	default:
		name = p.Namespace + "/" + p.Name
	}
	if eco == EcosystemPyPI {
		name = NormalizePyPI(name)
	}
	if eco == EcosystemGo {
		// Go module paths are case-sensitive, as the Go vulnerability
		// database and a profile's frames write them
		// (github.com/Masterminds/semver); the package URL library
		// lowercases a golang package URL's namespace and name, as the
		// purl specification has it, which would match neither.
		if path, ok := goPURLPath(s); ok && strings.EqualFold(path, name) {
			name = path
		}
	}
	return eco, name, p.Version, nil
}

// goPURLPath returns the module path of a golang package URL as it is
// written: what follows the type, without the version, qualifiers or
// subpath, percent-decoded.
func goPURLPath(s string) (string, bool) {
	rest, ok := strings.CutPrefix(s, "pkg:")
	if !ok {
		return "", false
	}
	rest = strings.TrimLeft(rest, "/")
	typ, rest, ok := strings.Cut(rest, "/")
	if !ok || !strings.EqualFold(typ, packageurl.TypeGolang) {
		return "", false
	}
	rest, _, _ = strings.Cut(rest, "#")
	rest, _, _ = strings.Cut(rest, "?")
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[:i]
	}
	path, err := url.PathUnescape(strings.Trim(rest, "/"))
	return path, err == nil
}

// PURL returns the package URL of a package version in an OSV ecosystem.
func PURL(ecosystem, name, version string) (string, error) {
	for typ, eco := range purlTypes {
		if eco != ecosystem {
			continue
		}
		namespace := ""
		sep := "/"
		if eco == EcosystemMaven {
			sep = ":"
		}
		if i := strings.LastIndex(name, sep); i > 0 {
			namespace, name = name[:i], name[i+1:]
		}
		if eco == EcosystemPyPI {
			name = NormalizePyPI(name)
		}
		return packageurl.NewPackageURL(typ, namespace, name, version, nil, "").ToString(), nil
	}
	return "", fmt.Errorf("ecosystem %q: %w", ecosystem, ErrUnknownEcosystem)
}

// NormalizePyPI normalises a Python distribution name as PEP 503 does:
// lower case, with runs of "-", "_" and "." replaced by a single "-".
func NormalizePyPI(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	sep := false
	for _, r := range strings.ToLower(name) {
		if r == '-' || r == '_' || r == '.' {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		b.WriteRune(r)
	}
	return b.String()
}
