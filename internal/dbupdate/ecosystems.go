package dbupdate

import (
	"slices"
	"strings"
)

// schemaEcosystems are the ecosystem names of the OSV schema
// (ossf/osv-schema validation/schema.json, $defs.ecosystemName, at 51b8156),
// spelt as osv.dev names its export directories and ecosystems.txt lists
// them. An osv.dev directory name is case-sensitive: "go" is not "Go".
var schemaEcosystems = []string{
	"AlmaLinux", "Alpaquita", "Alpine", "Android", "Azure Linux",
	"BellSoft Hardened Containers", "Bioconductor", "Bitnami", "Chainguard",
	"CleanStart", "ConanCenter", "CRAN", "crates.io", "Debian",
	"Docker Hardened Images", "Echo", "FreeBSD", "GHC", "GitHub Actions", "Go",
	"Hackage", "Hex", "Julia", "Kubernetes", "Linux", "Mageia", "Maven",
	"MinimOS", "npm", "NuGet", "opam", "openEuler", "openSUSE", "OSS-Fuzz",
	"Packagist", "Photon OS", "Pub", "PyPI", "Red Hat", "Rocky Linux", "Root",
	"RubyGems", "SUSE", "SwiftURL", "TuxCare", "Ubuntu", "VSCode", "Wolfi",
}

// ecosystemAliases maps what people call an ecosystem (the language, the
// package manager, the package URL type), folded by foldEcosystem, to
// osv.dev's name. None of the keys folds to a name of schemaEcosystems.
var ecosystemAliases = map[string]string{
	"golang":     "Go",
	"pip":        "PyPI",
	"python":     "PyPI",
	"node":       "npm",
	"nodejs":     "npm",
	"javascript": "npm",
	"js":         "npm",
	"typescript": "npm",
	"yarn":       "npm",
	"pnpm":       "npm",
	"java":       "Maven",
	"mvn":        "Maven",
	"gradle":     "Maven",
	"kotlin":     "Maven",
	"gem":        "RubyGems",
	"gems":       "RubyGems",
	"rubygem":    "RubyGems",
	"ruby":       "RubyGems",
	"cargo":      "crates.io",
	"crates":     "crates.io",
	"rust":       "crates.io",
	"dotnet":     "NuGet",
	"csharp":     "NuGet",
	"composer":   "Packagist",
	"php":        "Packagist",
	"elixir":     "Hex",
	"erlang":     "Hex",
	"hexpm":      "Hex",
	"dart":       "Pub",
	"flutter":    "Pub",
	"swift":      "SwiftURL",
	"haskell":    "Hackage",
	"r":          "CRAN",
	"ocaml":      "opam",
	"apk":        "Alpine",
	"deb":        "Debian",
	"rhel":       "Red Hat",
}

// foldEcosystem folds a name for comparison: lower case, without the
// spaces, dots, dashes and underscores people write differently ("Red
// Hat", "redhat", "crates-io").
func foldEcosystem(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '.', '-', '_':
			return -1
		}
		return r
	}, strings.ToLower(s))
}

// suggestEcosystem returns the name among known that eco most likely
// means, or "" when none: the one eco matches when case, spaces, dots,
// dashes and underscores are ignored, else the target of a common alias
// ("golang" → "Go", "pip" → "PyPI", "cargo" → "crates.io"), if known lists
// it. It returns "" for a name known holds as it is.
func suggestEcosystem(eco string, known []string) string {
	if slices.Contains(known, eco) {
		return ""
	}
	f := foldEcosystem(eco)
	for _, k := range known {
		if foldEcosystem(k) == f {
			return k
		}
	}
	if target, ok := ecosystemAliases[f]; ok && slices.Contains(known, target) {
		return target
	}
	return ""
}
