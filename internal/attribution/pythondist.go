package attribution

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
)

// PythonDistsOf reads the installed distributions of a site-packages or
// dist-packages directory and maps each top-level import name to the
// distribution that ships it, for Config.PythonDists: from
// <name>.dist-info/top_level.txt (wheels built by setuptools), else from the
// first element of every file in <name>.dist-info/RECORD (every wheel has
// one), and from <name>.egg-info/top_level.txt (Debian's and setuptools'
// installs). A file path alone cannot tell that "yaml" ships in PyYAML or
// "jwt" in PyJWT; these files can. The distribution's name is the one of its
// metadata directory ("PyYAML-6.0.dist-info" ships PyYAML); attribution
// normalizes it.
//
// An import name that two distributions claim (namespace packages such as
// "google" or "azure") is left out; where their RECORDs tell, each of them
// is mapped by the shortest dotted module under it that it alone ships
// ("azure.storage.blob" of azure-storage-blob, "azure.core" of
// azure-core), for Config.PythonDists' longest-prefix match. A metadata
// directory that cannot be read is reported in the returned error, joined
// with the others, and the rest are still read.
func PythonDistsOf(fsys fs.FS) (map[string]string, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read python distributions: %w", err)
	}
	tops := make(claims)
	// records are the dist-info directories, whose RECORD may tell the
	// modules of a shared name apart.
	type record struct{ dir, dist string }
	var records []record
	var errs []error
	for _, e := range entries {
		dir := e.Name()
		kind := path.Ext(dir)
		if !e.IsDir() || (kind != ".dist-info" && kind != ".egg-info") {
			continue
		}
		dist, _, _ := strings.Cut(strings.TrimSuffix(dir, kind), "-")
		if dist == "" {
			continue
		}
		names, err := topLevelNames(fsys, dir, kind == ".dist-info")
		if err != nil {
			errs = append(errs, fmt.Errorf("read python distribution %s: %w", dir, err))
			continue
		}
		for _, n := range names {
			tops.add(n, dist)
		}
		if kind == ".dist-info" {
			records = append(records, record{dir, dist})
		}
	}
	out := tops.sole()
	shared := make(map[string]bool)
	for n, dists := range tops {
		if len(dists) > 1 {
			shared[n] = true
		}
	}
	if len(shared) == 0 {
		return out, errors.Join(errs...)
	}
	sub := make(claims)
	// inits are the packages whose __init__.py a RECORD lists; the
	// others under the shared names are namespace packages (PEP 420).
	inits := make(map[string]bool)
	for _, r := range records {
		mine := false
		for n := range shared {
			mine = mine || slices.Contains(tops[n], r.dist)
		}
		if !mine {
			continue
		}
		mods, pkgs, err := recordModules(fsys, r.dir, shared)
		if err != nil {
			errs = append(errs, fmt.Errorf("read python distribution %s: %w", r.dir, err))
			continue
		}
		for _, m := range mods {
			sub.add(m, r.dist)
		}
		for _, p := range pkgs {
			inits[p] = true
		}
	}
	// roots are the packages that py-spy's short file names start with
	// (the outermost of a run of packages with an __init__.py below a
	// namespace package: azure.storage.blob, whose files show as
	// "blob/…"), with the distributions that ship modules under them.
	roots := make(claims)
	for m, dists := range sub {
		parent := m[:strings.LastIndexByte(m, '.')]
		if len(dists) == 1 && (shared[parent] || len(sub[parent]) > 1) {
			out[m] = dists[0]
		}
		if root := shortNameRoot(m, inits); strings.IndexByte(root, '.') > 0 {
			for _, d := range dists {
				roots.add(root, d)
			}
		}
	}
	// A root that one distribution alone ships names it, so that the
	// short names under it get their namespace back
	// (Attributor.pythonNamespace).
	maps.Copy(out, roots.sole())
	return out, errors.Join(errs...)
}

// shortNameRoot returns the package that py-spy's short file name of
// module m starts with: py-spy drops the directories above the file up
// to the outermost one of the run of directories with an __init__.py
// that holds it (inits), so the root is that directory. "" when the
// module's own directory has none (a namespace package's).
func shortNameRoot(m string, inits map[string]bool) string {
	p := m
	if !inits[m] {
		i := strings.LastIndexByte(m, '.')
		if i < 0 {
			return ""
		}
		p = m[:i]
	}
	root := ""
	for inits[p] {
		root = p
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return root
}

// recordModules returns the dotted packages and modules below the
// top-level names in tops that a dist-info directory's RECORD lists: for
// "azure/storage/blob/_blob_client.py", "azure.storage",
// "azure.storage.blob" and "azure.storage.blob._blob_client" (a module
// tells distributions apart that share its package, as
// azure-storage-blob-changefeed shares azure.storage.blob); and the
// packages among them whose __init__.py it lists (azure.storage.blob).
func recordModules(fsys fs.FS, dir string, tops map[string]bool) (mods, inits []string, err error) {
	modSet := make(map[string]struct{})
	initSet := make(map[string]struct{})
	err = eachLine(fsys, path.Join(dir, "RECORD"), func(line string) {
		p, _, _ := strings.Cut(line, ",")
		if !strings.HasSuffix(p, ".py") && !strings.HasSuffix(p, ".so") && !strings.HasSuffix(p, ".pyd") {
			return
		}
		elems := strings.Split(p, "/")
		if len(elems) < 3 || !tops[elems[0]] {
			return
		}
		// The module: "_blob_client.py", an extension module
		// "_message.abi3.so"; a package's __init__ is the package.
		file, _, _ := strings.Cut(elems[len(elems)-1], ".")
		if file != "__init__" {
			elems[len(elems)-1] = file
			elems = append(elems, "")
		}
		for i := 2; i < len(elems); i++ {
			if !isIdentifier(elems[i-1]) || elems[i-1] == "__pycache__" {
				return
			}
			modSet[strings.Join(elems[:i], ".")] = struct{}{}
		}
		if file == "__init__" {
			initSet[strings.Join(elems[:len(elems)-1], ".")] = struct{}{}
		}
	})
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return slices.Sorted(maps.Keys(modSet)), slices.Sorted(maps.Keys(initSet)), err
}

// topLevelNames returns the top-level import names a metadata directory
// lists. A directory with neither file names none.
func topLevelNames(fsys fs.FS, dir string, record bool) ([]string, error) {
	var names []string
	err := eachLine(fsys, path.Join(dir, "top_level.txt"), func(line string) {
		if isIdentifier(line) {
			names = append(names, line)
		}
	})
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !record {
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		return names, err
	}
	err = eachLine(fsys, path.Join(dir, "RECORD"), func(line string) {
		// RECORD is CSV: path,hash,size. Paths with commas are quoted;
		// no importable name has one.
		p, _, _ := strings.Cut(line, ",")
		first, _, nested := strings.Cut(p, "/")
		var name string
		switch {
		case nested:
			// A package directory; not the metadata ("x.dist-info",
			// "x.data"), caches or scripts outside ("../../bin/x").
			if strings.Contains(first, ".") || first == "__pycache__" {
				return
			}
			name = first
		case strings.HasSuffix(first, ".py"):
			name = strings.TrimSuffix(first, ".py")
		case strings.HasSuffix(first, ".so"), strings.HasSuffix(first, ".pyd"):
			// An extension module: "_yaml.cpython-311-x86_64-linux-gnu.so".
			name, _, _ = strings.Cut(first, ".")
		default:
			return
		}
		if isIdentifier(name) && !slices.Contains(names, name) {
			names = append(names, name)
		}
	})
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return names, err
}

// eachLine calls fn with every trimmed, non-empty line of a file of at
// most 16 MiB.
func eachLine(fsys fs.FS, name string, fn func(string)) error {
	f, err := fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			fn(line)
		}
	}
	return sc.Err()
}
