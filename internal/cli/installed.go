package cli

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/evidentsec/evident/internal/attribution"
)

// maxJars bounds the jars one --packages directory may hold, so that a
// mistyped path (/) fails instead of reading a whole disk.
const maxJars = 10_000

// installed is what the services' installed packages tell attribution.
type installed struct {
	// javaPackages maps the packages of the jars read to their artifacts.
	javaPackages map[string]string
	// pythonDists maps top-level import names to distributions.
	pythonDists map[string]string
}

// readInstalled reads the --packages paths: jar files, directories of jars
// (WEB-INF/lib, target/dependency, a Spring Boot BOOT-INF/lib), and Python
// site-packages or dist-packages directories (those holding *.dist-info or
// *.egg-info). A jar or metadata directory that cannot be read is passed
// to warn and skipped; a path that does not exist or holds none of these
// is an error.
func readInstalled(paths []string, warn func(error)) (installed, error) {
	in := installed{javaPackages: make(map[string]string), pythonDists: make(map[string]string)}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			if svc, path, ok := strings.Cut(p, "="); ok {
				// SERVICE=PATH, as --findings and --profiles take it.
				if _, serr := os.Stat(path); serr == nil {
					return in, fmt.Errorf("--packages %s: a path only, not %s=: the packages serve every service", p, svc)
				}
			}
			return in, fmt.Errorf("--packages: %w", err)
		}
		if !st.IsDir() {
			if !strings.HasSuffix(p, ".jar") {
				return in, fmt.Errorf("--packages %s: not a jar or a directory", p)
			}
			in.addJar(p, warn)
			continue
		}
		found := false
		if entries, err := os.ReadDir(p); err == nil {
			for _, e := range entries {
				if ext := filepath.Ext(e.Name()); e.IsDir() && (ext == ".dist-info" || ext == ".egg-info") {
					found = true
					break
				}
			}
		}
		if found {
			dists, err := attribution.PythonDistsOf(os.DirFS(p))
			if err != nil {
				warn(fmt.Errorf("--packages %s: %w", p, err))
			}
			maps.Copy(in.pythonDists, dists)
			continue
		}
		jars := 0
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".jar") {
				return nil
			}
			if jars++; jars > maxJars {
				return fmt.Errorf("more than %d jars", maxJars)
			}
			in.addJar(path, warn)
			found = true
			return nil
		})
		if err != nil {
			return in, fmt.Errorf("--packages %s: %w", p, err)
		}
		if !found {
			return in, fmt.Errorf("--packages %s: no jars, no *.dist-info or *.egg-info", p)
		}
	}
	return in, nil
}

// addJar adds the packages of one jar.
func (in installed) addJar(path string, warn func(error)) {
	f, err := os.Open(path)
	if err != nil {
		warn(fmt.Errorf("--packages: %w", err))
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		warn(fmt.Errorf("--packages: %w", err))
		return
	}
	j, err := attribution.ReadJar(f, st.Size(), path)
	if err != nil {
		warn(fmt.Errorf("--packages: %w", err))
		return
	}
	maps.Copy(in.javaPackages, j.JavaPackages())
}

// apply puts what the installed packages say over cfg: a jar's packages
// are facts and win over prefixes guessed from coordinates; installed
// Python metadata wins over cfg.PythonDists (the findings' namespace
// modules), except where configured (the configuration file's
// python_dists) names a distribution: the configuration says what
// installed metadata cannot.
func (in installed) apply(cfg attribution.Config, configured map[string]string) attribution.Config {
	if len(in.javaPackages) > 0 {
		pkgs := maps.Clone(cfg.JavaPackages)
		if pkgs == nil {
			pkgs = make(map[string]string, len(in.javaPackages))
		}
		maps.Copy(pkgs, in.javaPackages)
		cfg.JavaPackages = pkgs
	}
	if len(in.pythonDists) > 0 {
		dists := maps.Clone(cfg.PythonDists)
		if dists == nil {
			dists = make(map[string]string, len(in.pythonDists))
		}
		maps.Copy(dists, in.pythonDists)
		maps.Copy(dists, configured)
		cfg.PythonDists = dists
	}
	return cfg
}
