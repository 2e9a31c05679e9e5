package findings

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/evidentsec/evident/internal/osv"
)

// mavenAliasesYAML is the table of Maven artifacts that ship the same code
// under several coordinates; see the file for what belongs there.
//
//go:embed maven_aliases.yaml
var mavenAliasesYAML []byte

// mavenAliasGroup is one set of coordinates of the same code.
type mavenAliasGroup struct {
	Reason     string   `yaml:"reason"`
	References []string `yaml:"references"`
	Names      []string `yaml:"names"`
}

// mavenAliases maps each coordinate ("group:artifact") of the table to its
// group. The table is parsed once, on first use.
var mavenAliases = sync.OnceValues(func() (map[string]*mavenAliasGroup, error) {
	return parseMavenAliases(mavenAliasesYAML)
})

// parseMavenAliases reads the alias table strictly: unknown keys, groups
// without a reason, references or two names, and a name in two groups are
// errors.
func parseMavenAliases(data []byte) (map[string]*mavenAliasGroup, error) {
	var doc struct {
		Groups []*mavenAliasGroup `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("parse maven alias table: %w", err)
	}
	out := map[string]*mavenAliasGroup{}
	for i, g := range doc.Groups {
		switch {
		case strings.TrimSpace(g.Reason) == "":
			return nil, fmt.Errorf("maven alias table: groups[%d]: no reason", i)
		case len(g.References) == 0:
			return nil, fmt.Errorf("maven alias table: groups[%d]: no references", i)
		case len(g.Names) < 2:
			return nil, fmt.Errorf("maven alias table: groups[%d]: fewer than two names", i)
		}
		for _, n := range g.Names {
			if strings.Count(n, ":") != 1 {
				return nil, fmt.Errorf("maven alias table: groups[%d]: %q is not group:artifact", i, n)
			}
			if _, dup := out[n]; dup {
				return nil, fmt.Errorf("maven alias table: %s is in two groups", n)
			}
			out[n] = g
		}
	}
	if len(out) == 0 {
		return nil, errors.New("maven alias table: no groups")
	}
	return out, nil
}

// mavenAlias is another name of a Maven package, with why it is one.
type mavenAlias struct {
	name  string
	group *mavenAliasGroup
}

// mavenAliasesOf returns the other coordinates of a Maven package's
// group, in the table's order; none when it is in no group.
func mavenAliasesOf(name string) []mavenAlias {
	table, err := mavenAliases()
	if err != nil {
		return nil // the table's test fails; matching goes on by name
	}
	g := table[name]
	if g == nil {
		return nil
	}
	var out []mavenAlias
	for _, n := range g.Names {
		if n != name {
			out = append(out, mavenAlias{name: n, group: g})
		}
	}
	return out
}

// explain is the match of a finding found through the alias: which
// coordinates the record names, why they are the package's, and where
// that is shown.
func (a mavenAlias) explain(name string) string {
	return fmt.Sprintf("the record names %s, not %s: %s (%s)", a.name, name,
		strings.Join(strings.Fields(a.group.Reason), " "), strings.Join(a.group.References, "; "))
}

// SameArtifact reports whether a and b name the same code in ecosystem:
// the same name as the ecosystem compares names (PyPI's normalized as PEP
// 503 has it, so that the functions GitHub's record gives for "PyYAML"
// are looked for in a finding of "pyyaml"; NuGet's and Packagist's
// without regard to case), or Maven coordinates of one group of the
// alias table (maven_aliases.yaml), so that the functions a record gives
// for bcprov-jdk18on are looked for in a finding of Debian's bcprov.
func SameArtifact(ecosystem, a, b string) bool {
	if sameName(ecosystem, a, b) {
		return true
	}
	if ecosystem != osv.EcosystemMaven {
		return false
	}
	for _, alias := range mavenAliasesOf(a) {
		if alias.name == b {
			return true
		}
	}
	return false
}

// sameName reports whether a and b are the same package name in
// ecosystem, as the ecosystem compares names: PyPI's normalized as PEP
// 503 has it, NuGet's and Packagist's without regard to case, the
// others byte for byte.
func sameName(ecosystem, a, b string) bool {
	switch ecosystem {
	case osv.EcosystemPyPI:
		return osv.NormalizePyPI(a) == osv.NormalizePyPI(b)
	case osv.EcosystemNuGet, osv.EcosystemPackagist:
		return strings.EqualFold(a, b)
	}
	return a == b
}
