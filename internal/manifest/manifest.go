// Package manifest finds where a source tree declares a dependency: the
// manifest file (go.mod, package-lock.json, pom.xml, requirements.txt)
// and the line of the requirement, so that a finding about a package
// points at the line a fix changes.
//
// The parsers read files from outside (a repository being analysed);
// each returns an error naming what is wrong, and Scan leaves a manifest
// it cannot read out without stopping the walk.
package manifest

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/evidentsec/evident/internal/osv"
)

// Requirement is one dependency a manifest declares.
type Requirement struct {
	// Name is the package as its ecosystem names it: a Go module path
	// ("stdlib" for the go or toolchain directive), an npm package,
	// Maven groupId:artifactId, a PyPI name normalized by PEP 503.
	Name string
	// Version is the version the manifest pins, as written; empty when
	// it pins none (a range, a property it does not resolve).
	Version string
	// Line is the 1-based line of the requirement.
	Line int
}

// Location is where a dependency is declared.
type Location struct {
	// Path is the manifest, slash-separated and relative to the root of
	// the tree.
	Path string
	// Line is the 1-based line of the requirement, 0 when the manifest
	// is the best guess but does not name the package (a transitive
	// dependency a lock file does not list, a manifest that failed to
	// parse).
	Line int
}

// format is a kind of manifest: the file name it has, the ecosystem it
// declares packages of, and its parser.
type format struct {
	file      string
	ecosystem string
	parse     func([]byte) ([]Requirement, error)
}

var formats = []format{
	{"go.mod", osv.EcosystemGo, ParseGoMod},
	{"package-lock.json", osv.EcosystemNPM, ParsePackageLock},
	{"pom.xml", osv.EcosystemMaven, ParsePOM},
	{"requirements.txt", osv.EcosystemPyPI, ParseRequirements},
}

// skipDirs are never walked: version control, vendored and installed
// dependencies (their manifests declare their own dependencies, not the
// project's) and Go test fixtures.
var skipDirs = map[string]bool{"node_modules": true, "vendor": true, "testdata": true}

// file is one parsed manifest.
type file struct {
	path      string // slash-separated, relative to the root
	ecosystem string
	reqs      []Requirement
}

// Tree is the manifests of a source tree. It is safe for concurrent use
// once Scan returns it.
type Tree struct {
	root  string
	files []file // sorted by path
}

// ErrNotDirectory is returned by Scan for a root that is not a directory.
var ErrNotDirectory = errors.New("not a directory")

// Scan walks root for the manifests of the given ecosystems and parses
// them. It does not follow symbolic links, and skips hidden directories,
// node_modules, vendor and testdata. A manifest that cannot be read or
// parsed is reported in skipped and kept without requirements, so that
// it can still be pointed at; err is set only when root cannot be
// walked at all.
func Scan(root string, ecosystems []string) (t *Tree, skipped []error, err error) {
	info, err := os.Stat(root)
	if err != nil {
		return nil, nil, err
	}
	if !info.IsDir() {
		return nil, nil, fmt.Errorf("%s: %w", root, ErrNotDirectory)
	}
	byName := map[string]format{}
	for _, f := range formats {
		if slices.Contains(ecosystems, f.ecosystem) {
			byName[f.file] = f
		}
	}
	t = &Tree{root: root}
	if len(byName) == 0 {
		return t, nil, nil
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			skipped = append(skipped, err)
			return nil
		}
		if d.IsDir() {
			if p != root && (strings.HasPrefix(d.Name(), ".") || skipDirs[d.Name()]) {
				return filepath.SkipDir
			}
			return nil
		}
		f, ok := byName[d.Name()]
		if !ok || !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		mf := file{path: filepath.ToSlash(rel), ecosystem: f.ecosystem}
		data, err := os.ReadFile(p)
		if err == nil {
			mf.reqs, err = f.parse(data)
		}
		if err != nil {
			skipped = append(skipped, fmt.Errorf("manifest %s: %w", p, err))
		}
		t.files = append(t.files, mf)
		return nil
	})
	if err != nil {
		return nil, skipped, err
	}
	slices.SortFunc(t.files, func(a, b file) int { return strings.Compare(a.path, b.path) })
	return t, skipped, nil
}

// Locate returns the manifest that declares the package name of
// ecosystem, with the line of the requirement. Several manifests may
// declare it (a monorepo): the one in a directory named after service
// comes first, then one that pins the finding's version, then the one
// nearest the root. When none declares it, the manifest of the
// ecosystem in the service's directory, or the only one, or the one at
// the root, is returned with Line 0. ok is false when there is no such
// manifest.
func (t *Tree) Locate(ecosystem, name, version, service string) (loc Location, ok bool) {
	if t == nil {
		return Location{}, false
	}
	name = normalizeName(ecosystem, name)
	type candidate struct {
		file
		line                 int
		inService, atVersion bool
	}
	var found, all []candidate
	for _, f := range t.files {
		if f.ecosystem != ecosystem {
			continue
		}
		c := candidate{file: f, inService: inServiceDir(f.path, service)}
		all = append(all, c)
		for _, r := range f.reqs {
			if r.Name != name {
				continue
			}
			atVersion := sameVersion(r.Version, version)
			if c.line == 0 || (atVersion && !c.atVersion) {
				c.line, c.atVersion = r.Line, atVersion
			}
		}
		if c.line > 0 {
			found = append(found, c)
		}
	}
	better := func(a, b candidate) int {
		if a.inService != b.inService {
			return boolFirst(a.inService)
		}
		if a.atVersion != b.atVersion {
			return boolFirst(a.atVersion)
		}
		return cmp.Or(cmp.Compare(depth(a.path), depth(b.path)), strings.Compare(a.path, b.path))
	}
	if len(found) > 0 {
		best := slices.MinFunc(found, better)
		return Location{Path: best.path, Line: best.line}, true
	}
	if len(all) == 0 {
		return Location{}, false
	}
	best := slices.MinFunc(all, better)
	if best.inService || len(all) == 1 || depth(best.path) == 0 {
		return Location{Path: best.path}, true
	}
	// Several manifests, none of them the service's or the root's:
	// pointing at one would be a guess.
	return Location{}, false
}

// Rel returns the path of a file (as the process names it) relative to
// the root of the tree, slash-separated, when the file lies inside it.
func (t *Tree) Rel(p string) (string, bool) {
	if t == nil || p == "" {
		return "", false
	}
	// Absolute paths, so that a relative root and an absolute file (or
	// the reverse) compare.
	root, err := filepath.Abs(t.root)
	if err != nil {
		return "", false
	}
	if p, err = filepath.Abs(p); err != nil {
		return "", false
	}
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// boolFirst orders true before false.
func boolFirst(a bool) int {
	if a {
		return -1
	}
	return 1
}

func depth(p string) int { return strings.Count(p, "/") }

// inServiceDir reports whether a directory of the manifest's path is
// named after the service (services/gateway/go.mod for gateway).
func inServiceDir(p, service string) bool {
	if service == "" {
		return false
	}
	return slices.Contains(strings.Split(path.Dir(p), "/"), service)
}

// sameVersion compares versions as manifests and findings write them:
// v1.2.3, 1.2.3 and go1.2.3 alike.
func sameVersion(a, b string) bool {
	trim := func(v string) string { return strings.TrimPrefix(strings.TrimPrefix(v, "go"), "v") }
	return a != "" && trim(a) == trim(b)
}

// normalizeName brings a finding's package name to the form the parsers
// give requirements.
func normalizeName(ecosystem, name string) string {
	switch ecosystem {
	case osv.EcosystemPyPI:
		return NormalizePyPI(name)
	case osv.EcosystemGo:
		if name == "toolchain" {
			return "stdlib"
		}
	}
	return name
}
