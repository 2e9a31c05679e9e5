// Command mkvulndb turns a snapshot of the Go vulnerability database in
// osv.dev's all.zip layout (flat <ID>.json OSV files) into the vuln.go.dev
// layout that govulncheck reads with -db file:///dir:
//
//	index/db.json       {"modified": RFC 3339}
//	index/modules.json  [{path, vulns: [{id, modified, fixed?}]}]
//	index/vulns.json    [{id, modified, aliases}]
//	ID/<id>.json        the OSV entry
//
// so that `make record` can run govulncheck without network.
package main

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/semver"
)

func main() {
	zipPath := flag.String("zip", "", "osv.dev all.zip of the Go ecosystem")
	out := flag.String("out", ".vulndb", "directory to write the database to")
	flag.Parse()
	if err := run(*zipPath, *out); err != nil {
		fmt.Fprintln(os.Stderr, "mkvulndb:", err)
		os.Exit(1)
	}
}

// entry is the part of an OSV record the indexes need.
type entry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases"`
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
		Ranges []struct {
			Events []struct {
				Fixed string `json:"fixed"`
			} `json:"events"`
		} `json:"ranges"`
	} `json:"affected"`
}

type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Fixed    string    `json:"fixed,omitempty"`
}

type module struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

type vuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases"`
}

func run(zipPath, out string) error {
	if zipPath == "" {
		return errors.New("-zip is required")
	}
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return fmt.Errorf("open %s: %w", zipPath, err)
	}
	defer zr.Close()
	if err := os.MkdirAll(filepath.Join(out, "ID"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(out, "index"), 0o755); err != nil {
		return err
	}
	var (
		modified time.Time
		vulns    []vuln
		modules  = map[string]*module{}
		bad      []error
	)
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, ".json") || strings.Contains(f.Name, "/") {
			continue
		}
		raw, err := readAll(f)
		if err != nil {
			bad = append(bad, fmt.Errorf("%s in %s: %w", f.Name, zipPath, err))
			continue
		}
		var e entry
		if err := json.Unmarshal(raw, &e); err != nil || e.ID == "" {
			bad = append(bad, fmt.Errorf("%s in %s: not an OSV entry: %v", f.Name, zipPath, err))
			continue
		}
		if err := os.WriteFile(filepath.Join(out, "ID", e.ID+".json"), raw, 0o644); err != nil {
			return err
		}
		// Snapshots such as osv-go-2026-08-21.zip zero every "modified";
		// the time the snapshot wrote the file is then the best stand-in.
		if e.Modified.IsZero() {
			e.Modified = f.Modified.UTC()
		}
		if e.Modified.After(modified) {
			modified = e.Modified
		}
		vulns = append(vulns, vuln{ID: e.ID, Modified: e.Modified, Aliases: nonNil(e.Aliases)})
		// One module can be named by several "affected" entries of one
		// record (different ranges or packages): index it once, with the
		// latest fixed version of them all.
		fixed := map[string]string{}
		for _, a := range e.Affected {
			name := a.Package.Name
			if _, ok := fixed[name]; !ok {
				fixed[name] = ""
			}
			for _, r := range a.Ranges {
				for _, ev := range r.Events {
					if ev.Fixed != "" && (fixed[name] == "" || semver.Compare("v"+ev.Fixed, "v"+fixed[name]) > 0) {
						fixed[name] = ev.Fixed
					}
				}
			}
		}
		for name, fix := range fixed {
			m := modules[name]
			if m == nil {
				m = &module{Path: name}
				modules[name] = m
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: e.Modified, Fixed: fix})
		}
	}
	slices.SortFunc(vulns, func(a, b vuln) int { return strings.Compare(a.ID, b.ID) })
	mods := make([]*module, 0, len(modules))
	for _, m := range modules {
		slices.SortFunc(m.Vulns, func(a, b moduleVuln) int { return strings.Compare(a.ID, b.ID) })
		mods = append(mods, m)
	}
	slices.SortFunc(mods, func(a, b *module) int { return strings.Compare(a.Path, b.Path) })
	for name, v := range map[string]any{
		"db.json":      map[string]time.Time{"modified": modified},
		"vulns.json":   vulns,
		"modules.json": mods,
	} {
		js, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, "index", name), js, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("mkvulndb: %d entries, %d modules, modified %s, into %s\n", len(vulns), len(mods), modified.Format(time.RFC3339), out)
	return errors.Join(bad...)
}

func readAll(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
