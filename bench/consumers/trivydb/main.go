// Command trivydb builds a Trivy vulnerability database (trivy.db and
// metadata.json, schema 2) from an osv.dev Go snapshot, offline, with
// trivy-db's own builder: the records are laid out where trivy-db's govulndb
// source reads them, and trivy-db's vulndb.Build inserts, optimizes and
// cleans up as it does for the published database. Use the result with
// `trivy --cache-dir C --skip-db-update --offline-scan` after copying it to
// C/db/.
//
//	go run . -zip osv-go.zip -out DIR [-ghsa DIR]
//
// trivy-db's govulndb source keeps only the standard library and
// golang.org/x/* modules; the published database takes every other Go module
// from the GitHub advisory database, which the snapshot does not hold. So a
// second source runs trivy-db's OSV importer on the same records, with the
// same data source, for the other modules (the toolchain left out, as the
// govulndb source leaves it out).
//
// -ghsa DIR adds the OSV records of DIR (records of the GitHub advisory
// database for npm, PyPI and Maven, as internal/findings/testdata/ecosystems
// holds them) through the same OSV importer, under the GitHub advisory
// database's data source, as the published database carries them.
package main

import (
	"archive/zip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/ecosystem"
	"github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy-db/pkg/vulndb"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/govulndb"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/osv"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/vulnerability"
)

// osvDir is where trivy-db's govulndb source reads the records, under the
// cache directory.
var osvDir = filepath.Join("govulndb", "data", "osv")

// modulesSource is the target name of the second source.
const modulesSource types.SourceID = "govulndb-modules"

// ghsaDir is where the -ghsa records are laid out, under the cache
// directory.
var ghsaDir = filepath.Join("ghsa", "data", "osv")

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "trivydb:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("trivydb", flag.ContinueOnError)
	zipPath := fs.String("zip", "", "osv.dev Go snapshot (all.zip)")
	out := fs.String("out", "", "output directory for trivy.db and metadata.json")
	ghsa := fs.String("ghsa", "", "directory of OSV records of npm, PyPI and Maven packages to add (optional)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *zipPath == "" || *out == "" {
		return errors.New("-zip and -out are required")
	}
	cache, err := os.MkdirTemp("", "trivydb-cache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cache)
	n, err := unzip(*zipPath, filepath.Join(cache, osvDir))
	if err != nil {
		return err
	}
	if err := db.Init(*out); err != nil {
		return fmt.Errorf("open %s: %w", db.Path(*out), err)
	}
	defer db.Close()
	srcs := map[types.SourceID]vulnsrc.VulnSrc{
		vulnerability.GoVulnDB: govulndb.NewVulnSrc(),
		modulesSource:          modules{},
	}
	targets := []string{string(vulnerability.GoVulnDB), string(modulesSource)}
	if *ghsa != "" {
		m, err := copyJSON(*ghsa, filepath.Join(cache, ghsaDir))
		if err != nil {
			return err
		}
		n += m
		srcs[vulnerability.GHSA] = ghsaSource{}
		targets = append(targets, string(vulnerability.GHSA))
	}
	// A year between updates: trivy runs with --skip-db-update anyway.
	tdb := vulndb.New(cache, *out, 365*24*time.Hour, vulndb.WithVulnSrcs(srcs))
	if err := tdb.Build(targets); err != nil {
		return fmt.Errorf("build database from %d records: %w", n, err)
	}
	fmt.Printf("trivydb: %d records of %s -> %s\n", n, *zipPath, db.Path(*out))
	return nil
}

// unzip writes the JSON records of the snapshot into dir.
func unzip(zipPath, dir string) (int, error) {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return 0, fmt.Errorf("open snapshot %s: %w", zipPath, err)
	}
	defer zr.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	n := 0
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, ".json") || strings.Contains(f.Name, "/") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return 0, fmt.Errorf("open %s in %s: %w", f.Name, zipPath, err)
		}
		dst, err := os.Create(filepath.Join(dir, f.Name))
		if err == nil {
			_, err = io.Copy(dst, rc)
			if cerr := dst.Close(); err == nil {
				err = cerr
			}
		}
		rc.Close()
		if err != nil {
			return 0, fmt.Errorf("extract %s from %s: %w", f.Name, zipPath, err)
		}
		n++
	}
	return n, nil
}

// copyJSON copies the JSON records of src into dir.
func copyJSON(src, dir string) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	paths, err := filepath.Glob(filepath.Join(src, "*.json"))
	if err != nil {
		return 0, err
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return 0, err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), data, 0o644); err != nil {
			return 0, err
		}
	}
	return len(paths), nil
}

// ghsaSource is trivy-db's OSV importer over the -ghsa records, with the
// data source of the GitHub advisory database for each ecosystem.
type ghsaSource struct{}

func (ghsaSource) Name() types.SourceID { return vulnerability.GHSA }

func (ghsaSource) Update(root string) error {
	ds := func(eco string) types.DataSource {
		return types.DataSource{ID: vulnerability.GHSA, Name: "GitHub Security Advisory " + eco, URL: "https://github.com/advisories?query=type%3Areviewed+ecosystem%3A" + eco}
	}
	dataSources := map[ecosystem.Type]types.DataSource{
		ecosystem.Npm: ds("npm"), ecosystem.Pip: ds("pip"), ecosystem.Maven: ds("maven"),
	}
	return osv.New(ghsaDir, vulnerability.GHSA, dataSources).Update(root)
}

// modules is the source of the Go modules that the govulndb source leaves
// to the GitHub advisory database: trivy-db's OSV importer over the same
// records, with the govulndb data source.
type modules struct{}

func (modules) Name() types.SourceID { return modulesSource }

func (modules) Update(root string) error {
	dataSources := map[ecosystem.Type]types.DataSource{
		ecosystem.Go: {ID: vulnerability.GoVulnDB, Name: "The Go Vulnerability Database", URL: "https://pkg.go.dev/vuln/"},
	}
	return osv.New(osvDir, vulnerability.GoVulnDB, dataSources, osv.WithTransformer(modules{})).Update(root)
}

// PostParseAffected records the platforms that the record's imports are
// limited to, as the govulndb source does.
func (modules) PostParseAffected(adv osv.Advisory, affected osv.Affected) (osv.Advisory, error) {
	seen := map[string]bool{}
	for _, imp := range affected.EcosystemSpecific.Imports {
		for _, goos := range imp.GOOS {
			if !seen["os/"+goos] {
				seen["os/"+goos] = true
				adv.OSes = append(adv.OSes, goos)
			}
		}
		for _, goarch := range imp.GOARCH {
			if !seen["arch/"+goarch] {
				seen["arch/"+goarch] = true
				adv.Arches = append(adv.Arches, goarch)
			}
		}
	}
	return adv, nil
}

// TransformAdvisories keeps the advisories of the modules the govulndb
// source drops: not the standard library, the toolchain or golang.org/x/*.
func (modules) TransformAdvisories(advs []osv.Advisory, _ osv.Entry) ([]osv.Advisory, error) {
	var keep []osv.Advisory
	for _, adv := range advs {
		if adv.PkgName == "stdlib" || adv.PkgName == "toolchain" || strings.HasPrefix(adv.PkgName, "golang.org/x/") {
			continue
		}
		keep = append(keep, adv)
	}
	return keep, nil
}
