package findings

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"go/version"
	"io"
	"path"
	"slices"
	"strings"
	"testing/fstest"

	"github.com/google/osv-scalibr/extractor"
	"github.com/google/osv-scalibr/extractor/filesystem"
	"github.com/google/osv-scalibr/extractor/filesystem/language/golang/gomod"
	"github.com/google/osv-scalibr/extractor/filesystem/language/java/gradlelockfile"
	"github.com/google/osv-scalibr/extractor/filesystem/language/java/pomxml"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/packagelockjson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/pnpmlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/yarnlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/poetrylock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/requirements"
	"github.com/google/osv-scalibr/extractor/filesystem/simplefileapi"
	"go.yaml.in/yaml/v3"
	"golang.org/x/mod/modfile"
)

// lockfileExtractors are osv-scalibr's extractors of the lockfiles and
// manifests evident reads, the same code OSV-Scanner runs on them. Each
// one says by the file's name whether it reads it.
//
// Some also log what they fail on (pomxml: "could not extract pom from
// pom.xml: ...") through osv-scalibr's own logger, which writes to the
// standard library's log, so to stderr outside evident's slog. They return
// the same error, which the caller reports; the only way to route the
// line is scalibr/log.SetLogger, which sets a package variable for the
// whole process, unsynchronised: global state, left alone.
var lockfileExtractors = []func() (filesystem.Extractor, error){
	func() (filesystem.Extractor, error) { return packagelockjson.New(nil) },
	func() (filesystem.Extractor, error) { return pnpmlock.New(nil) },
	func() (filesystem.Extractor, error) { return yarnlock.New(nil) },
	func() (filesystem.Extractor, error) { return requirements.New(nil) },
	func() (filesystem.Extractor, error) { return poetrylock.New(nil) },
	func() (filesystem.Extractor, error) { return pomxml.New(nil) },
	func() (filesystem.Extractor, error) { return gradlelockfile.New(nil) },
	func() (filesystem.Extractor, error) { return gomod.New(nil) },
}

// lockfileNames are the file names the extractors read, for messages and
// for DetectFile.
const lockfileNames = "package-lock.json, npm-shrinkwrap.json, pnpm-lock.yaml, yarn.lock, *requirements*.txt, poetry.lock, pom.xml, *.pom, gradle.lockfile, buildscript-gradle.lockfile, go.mod"

// lockfileFS is the file system of the extractor: the one file, under
// the name its extractor knows it by, so that the includes and parent POMs
// an uploaded file names cannot reach the host's files. The name is the
// file's base name or, in a directory of reports named after their
// services, what follows the service ("checkout.yarn.lock").
func lockfileFS(name string, data []byte) (fstest.MapFS, string) {
	base := path.Base(strings.ReplaceAll(name, `\`, "/"))
	if lockfileExtractor(fstest.MapFS{base: {}}, base) == nil {
		if _, rest, ok := strings.Cut(base, "."); ok && lockfileExtractor(fstest.MapFS{rest: {}}, rest) != nil {
			base = rest
		}
	}
	return fstest.MapFS{base: {Data: data}}, base
}

// lockfileExtractor returns the extractor that reads the file base of
// fsys, or nil.
func lockfileExtractor(fsys fstest.MapFS, base string) filesystem.Extractor {
	info, err := fsys.Stat(base)
	if err != nil {
		return nil
	}
	for _, newExtractor := range lockfileExtractors {
		x, err := newExtractor()
		if err == nil && x.FileRequired(simplefileapi.New(base, info)) {
			return x
		}
	}
	return nil
}

// IsLockfile reports whether name is the name of a lockfile or manifest
// that ParseLockfile reads, as its base name or after a service's name
// ("checkout.yarn.lock").
func IsLockfile(name string) bool { return lockfileExtractor(lockfileFS(name, nil)) != nil }

// ParseLockfile reads a lockfile or manifest of a package manager, chosen
// by the base of name (see IsLockfile): package-lock.json and
// npm-shrinkwrap.json, pnpm-lock.yaml, yarn.lock, requirements files,
// poetry.lock, pom.xml (the dependencies it pins, with properties of the
// same file resolved), Gradle lockfiles and go.mod (its requirements, with
// its replacements applied). The packages are read by
// osv-scalibr's extractors and looked up in m, the vulnerability database,
// as the packages of an SBOM are; a nil m matches nothing. A requirements
// file's "-r other.txt" includes are not followed (an uploaded file must
// not reach the host's files): each is a *RecordError that says to pass
// the file it names too.
//
// A go.mod's go and toolchain lines are not taken for the standard
// library's version, as OSV-Scanner takes them: they name the least
// version the module builds with, not the one that built the service, and
// an older standard library's vulnerabilities would be reported, and found
// running, in a service built with a fixed one. A Go executable, or
// govulncheck on it, tells the standard library's version.
//
// The project's own packages, which osv-scalibr reads as the registry
// packages of their names, are left out: a package-lock.json's workspaces
// and linked directories, a yarn.lock's workspaces and directories, a
// pnpm-lock.yaml's directories.
//
// A go.mod before go 1.17 (or with no go line) lists only the modules the
// main module requires directly: a *RecordError naming its go line says
// that the indirect ones, in go.sum, are not read. A module it replaces by
// a local directory has no version, and is a *RecordError naming both.
//
// A package without a pinned version (a requirements line such as
// "requests>=2" or "requests~=2.25.0", a Maven version range such as
// "[1.26,)", whose bound osv-scalibr gives as the version) is reported as
// a *RecordError naming it and skipped, and so is a POM's dependency
// whose version names a property the file does not define (osv-scalibr
// drops it). A
// name that is no lockfile's wraps ErrWrongFormat; a file the extractor
// cannot read wraps ErrMalformed.
func ParseLockfile(r io.Reader, name string, m Matcher) ([]Finding, []error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, []error{fmt.Errorf("read %s: %w", name, err)}
	}
	fsys, base := lockfileFS(name, data)
	x := lockfileExtractor(fsys, base)
	if f, _ := Detect(data); x == nil && f == FormatLockfile {
		// An npm lockfile under another name (reports/checkout.json).
		fsys, base = lockfileFS("package-lock.json", data)
		x = lockfileExtractor(fsys, base)
	}
	if x == nil {
		return nil, []error{fmt.Errorf("%s: not a lockfile evident reads (%s): %w", name, lockfileNames, ErrWrongFormat)}
	}
	var errs []error
	if x.Name() == requirements.Name {
		data, errs = requirementsIncludes(name, data)
		fsys[base].Data = data
	}
	info, err := fsys.Stat(base)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", name, err)}
	}
	inv, err := x.Extract(context.Background(), &filesystem.ScanInput{FS: fsys, Path: base, Info: info, Reader: bytes.NewReader(data)})
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %s: %v: %w", name, x.Name(), err, ErrMalformed)}
	}
	var (
		comps  []Component
		ranges map[string]string
	)
	// Some extractors collect packages in a map: in the file's order,
	// the errors read alike from one run to the next.
	slices.SortStableFunc(inv.Packages, func(a, b *extractor.Package) int {
		return cmp.Or(cmp.Compare(packageLine(a), packageLine(b)), strings.Compare(a.Name, b.Name))
	})
	if x.Name() == pomxml.Name {
		var unread []error
		ranges, unread = pomUnread(name, data, inv.Packages)
		errs = append(errs, unread...)
	}
	var local map[string]bool
	if x.Name() == packagelockjson.Name {
		local = npmLocal(data)
	}
	var localLines map[int]bool
	switch x.Name() {
	case pnpmlock.Name:
		localLines = pnpmLocal(data)
	case yarnlock.Name:
		localLines = yarnLocal(data)
	}
	var goDirs map[string]string
	if x.Name() == gomod.Name {
		var notes []error
		goDirs, notes = goModNotes(name, data)
		errs = append(errs, notes...)
	}
	for _, p := range inv.Packages {
		if x.Name() == gomod.Name && p.Name == "stdlib" || local[p.Name+"@"+p.Version] || localLines[packageLine(p)] {
			continue
		}
		rec := p.Name
		if p.Version != "" {
			rec += "@" + p.Version
		}
		switch {
		case p.Version == "" && x.Name() == pomxml.Name:
			// Maven takes a dependency's missing version from the
			// dependencyManagement of the POM, its parents and the BOMs
			// it imports; osv-scalibr fills in the POM's own, unless it
			// names a property the file does not define.
			errs = append(errs, recordErr(name, rec, "version not in the file: a parent POM or an imported BOM gives it (dependencyManagement, properties), and evident reads only the file given"))
			continue
		case p.Version == "" && goDirs[p.Name] != "":
			// osv-scalibr names the package by the directory.
			errs = append(errs, recordErr(name, goDirs[p.Name], "replaced by directory %s, which has no version to match", p.Name))
			continue
		case p.Version == "":
			errs = append(errs, recordErr(name, rec, "no pinned version"))
			continue
		}
		// The requirements extractor gives a bound (>=, <=, ~=) as the
		// version; pip installs the newest version the bounds allow, so
		// matching the bound would report what is fixed in what runs.
		if md, ok := p.Metadata.(*requirements.Metadata); ok && md.VersionComparator != "==" && md.VersionComparator != "===" {
			errs = append(errs, recordErr(name, md.Requirement, "no pinned version (== or ===): %s%s is a bound, not the version pip installs", md.VersionComparator, p.Version))
			continue
		}
		if r, ok := ranges[p.Name]; ok {
			errs = append(errs, recordErr(name, p.Name, "no pinned version: %s is a range, and the version Maven resolves it to is not in the file", r))
			continue
		}
		purl := p.PURL()
		if purl == nil {
			errs = append(errs, recordErr(name, rec, "no package URL for package type %q", p.PURLType))
			continue
		}
		pkg, err := componentPackage(purl.String(), p.Version)
		if err != nil {
			errs = append(errs, &RecordError{File: name, Record: rec, Err: err})
			continue
		}
		comps = append(comps, Component{Ref: rec, Package: pkg})
	}
	fs, merrs := matchComponents(comps, m, string(FormatLockfile), name)
	return fs, append(errs, merrs...)
}

// goModNotes reads in a go.mod what osv-scalibr's extractor does not
// say: the modules replaced by a local directory, as a map from the
// directory (which the extractor gives as the package's name) to the
// module, and an error when the file predates go 1.17. Before 1.17 a
// go.mod lists only the modules the main module needs directly (and no go
// line means go 1.16); the others are in go.sum, which the extractor reads
// only beside the go.mod on a disk, and so never here.
func goModNotes(file string, data []byte) (map[string]string, []error) {
	mf, err := modfile.Parse(file, data, nil)
	if err != nil {
		return nil, nil // the extractor read it; nothing to add
	}
	dirs := map[string]string{}
	for _, r := range mf.Replace {
		if r.New.Version == "" {
			dirs[r.New.Path] = r.Old.Path
		}
	}
	goLine := "no go line (go 1.16)"
	if mf.Go != nil {
		goLine = "go " + mf.Go.Version
	}
	if mf.Toolchain == nil && (mf.Go == nil || version.Compare("go"+mf.Go.Version, "go1.17") < 0) {
		return dirs, []error{recordErr(file, goLine, "before go 1.17 a go.mod lists only the modules the main module requires directly; those it needs indirectly are in go.sum, which evident does not read, and are not matched (give the service's executable, govulncheck's report or an SBOM)")}
	}
	return dirs, nil
}

// packageLine is the line of the file a package was read from, 0 when
// the extractor does not say.
func packageLine(p *extractor.Package) int {
	if d := p.Location.Descriptor; d != nil && d.File != nil {
		return d.File.LineNumber
	}
	return 0
}

// pomDependency is a dependency as a POM writes it.
type pomDependency struct {
	GroupID    string `xml:"groupId"`
	ArtifactID string `xml:"artifactId"`
	Version    string `xml:"version"`
}

func (d pomDependency) name() string {
	return strings.TrimSpace(d.GroupID) + ":" + strings.TrimSpace(d.ArtifactID)
}

// pomUnread compares the dependencies a POM writes with the packages
// osv-scalibr read from it, which resolves properties and drops without
// a word a dependency that names a property the file does not define (a
// parent POM's), and gives a version range as its lower bound. It returns
// the ranges by groupId:artifactId, whose packages have no version to
// match, and an error for each dependency that was dropped.
func pomUnread(file string, data []byte, pkgs []*extractor.Package) (map[string]string, []error) {
	var pom struct {
		Dependencies []pomDependency `xml:"dependencies>dependency"`
		Managed      []pomDependency `xml:"dependencyManagement>dependencies>dependency"`
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	// As osv-scalibr reads them: the names and versions are ASCII.
	dec.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	if dec.Decode(&pom) != nil {
		return nil, nil // the extractor read it; nothing to compare with
	}
	ranges := map[string]string{}
	// A dependency's own version wins over its managed one.
	for _, d := range slices.Concat(pom.Managed, pom.Dependencies) {
		switch v := strings.TrimSpace(d.Version); {
		case isMavenRange(v):
			ranges[d.name()] = v
		case v != "":
			delete(ranges, d.name())
		}
	}
	read := map[string]bool{}
	for _, p := range pkgs {
		read[p.Name] = true
	}
	var errs []error
	for _, d := range pom.Dependencies {
		if read[d.name()] || strings.Contains(d.name(), "${") || !strings.Contains(d.Version, "${") {
			continue
		}
		errs = append(errs, recordErr(file, d.name(), "version %s names a property the file does not define (a parent POM's?): not read", strings.TrimSpace(d.Version)))
	}
	return ranges, errs
}

// isMavenRange reports whether a Maven version is a range: [1.0,2.0),
// [1.5,), (,1.0], but not [1.0], which requires exactly 1.0.
func isMavenRange(v string) bool {
	if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") && !strings.Contains(v, ",") {
		return false
	}
	return strings.HasPrefix(v, "[") || strings.HasPrefix(v, "(")
}

// requirementsIncludes takes the -r (--requirement) lines out of a
// requirements file, keeping its lines where they are, and returns a
// *RecordError for each: the packages of the file it includes are not
// read unless that file is given too, and osv-scalibr, looking for it,
// would only write to the process's stderr.
func requirementsIncludes(file string, data []byte) ([]byte, []error) {
	var (
		errs []error
		out  = make([]byte, 0, len(data))
	)
	for line := range bytes.Lines(data) {
		text, _, _ := strings.Cut(string(line), " #")
		text = strings.TrimSpace(text)
		include, ok := strings.CutPrefix(text, "--requirement")
		if !ok {
			include, ok = strings.CutPrefix(text, "-r")
		}
		if !ok {
			out = append(out, line...)
			continue
		}
		include = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(include), "="))
		how := "give it too"
		if !IsLockfile(include) {
			how = "give it too, named as evident reads a requirements file (*requirements*.txt)"
		}
		errs = append(errs, recordErr(file, text, "the packages of %s are not read from here: %s", include, how))
		if bytes.HasSuffix(line, []byte("\n")) {
			out = append(out, '\n')
		}
	}
	return out, errs
}

// npmLocal returns, as name@version, the packages a package-lock.json
// (lockfile versions 2 and 3) lists outside node_modules: its workspaces
// and the directories its dependencies link to. They are the project's
// own source, as the root package is, which osv-scalibr leaves out; a
// registry package of the same name is another package. One installed
// under node_modules at the same version as well is not in the result.
func npmLocal(data []byte) map[string]bool {
	var lock struct {
		Packages map[string]struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			Link    bool   `json:"link"`
		} `json:"packages"`
	}
	if json.Unmarshal(data, &lock) != nil {
		return nil // the extractor read it; nothing to leave out
	}
	local, installed := map[string]bool{}, map[string]bool{}
	for key, p := range lock.Packages {
		if key == "" || p.Link {
			continue
		}
		// As osv-scalibr names a package without "name": by its
		// directory, with its scope.
		name := path.Base(key)
		if scope := path.Base(path.Dir(key)); strings.HasPrefix(scope, "@") {
			name = scope + "/" + name
		}
		at := cmp.Or(p.Name, name) + "@" + p.Version
		if strings.Contains("/"+key, "/node_modules/") {
			installed[at] = true
		} else {
			local[at] = true
		}
	}
	for at := range installed {
		delete(local, at)
	}
	return local
}

// pnpmLocal returns the lines of a pnpm-lock.yaml's packages that are
// directories of the project (file:../lib, resolution type directory),
// its own source, which osv-scalibr reads as the registry packages of
// their names. (Workspaces, link:, are not among the packages.)
func pnpmLocal(data []byte) map[int]bool {
	local := map[int]bool{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if dec.Decode(&doc) != nil || len(doc.Content) == 0 {
			return local // the extractor read it; nothing more to leave out
		}
		root := doc.Content[0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value != "packages" || root.Content[i+1].Kind != yaml.MappingNode {
				continue
			}
			pkgs := root.Content[i+1].Content
			for j := 0; j+1 < len(pkgs); j += 2 {
				var p struct {
					Resolution struct {
						Type string `yaml:"type"`
					} `yaml:"resolution"`
				}
				if pkgs[j+1].Decode(&p) == nil && p.Resolution.Type == "directory" {
					local[pkgs[j].Line] = true
				}
			}
		}
	}
}

// yarnLocal returns the lines of a yarn.lock's entries that are the
// project's own source, which osv-scalibr reads as the registry packages
// of their names: workspaces (lib@workspace:packages/lib, at version
// 0.0.0-use.local) and directories (link:, portal:, file: but for a
// tarball).
func yarnLocal(data []byte) map[int]bool {
	local := map[int]bool{}
	n := 0
	for line := range bytes.Lines(data) {
		n++
		header := strings.TrimRight(string(line), "\r\n")
		if header == "" || header[0] == ' ' || header[0] == '#' {
			continue
		}
		for desc := range strings.SplitSeq(strings.TrimSuffix(header, ":"), ",") {
			desc = strings.Trim(strings.TrimSpace(desc), `"`)
			at := strings.Index(desc[min(1, len(desc)):], "@") + 1 // past a scope's @
			if at == 0 {
				continue
			}
			protocol, target, _ := strings.Cut(desc[at+1:], ":")
			target, _, _ = strings.Cut(target, "::") // yarn 2+: ::locator=...
			switch protocol {
			case "workspace", "link", "portal":
				local[n] = true
			case "file":
				if !strings.HasSuffix(target, ".tgz") && !strings.HasSuffix(target, ".tar.gz") && !strings.HasSuffix(target, ".tar") {
					local[n] = true
				}
			}
		}
	}
	return local
}
