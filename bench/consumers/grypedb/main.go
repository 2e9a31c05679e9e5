// Command grypedb builds a Grype vulnerability database (schema v6) from an
// osv.dev Go snapshot, offline, with Grype's own database builder: the
// records are laid out as vunnel's govulndb provider writes them (a
// workspace of OSV envelopes with a listing), and grype/db.Build turns that
// workspace into vulnerability.db exactly as grype-db does for the published
// database. Import the result with `grype db import DIR/vulnerability.db`.
//
//	go run . -zip osv-go.zip -out DIR [-built 2026-08-21]
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
	"strings"
	"time"

	grypedb "github.com/anchore/grype/grype/db"
	"github.com/anchore/grype/grype/db/provider"
	v6 "github.com/anchore/grype/grype/db/v6"
)

// The provider name and schema URLs are vunnel's: the OSV transformer picks
// the govulndb strategy for GO- ids, and the processor takes any OSV schema
// 1.x.
const (
	providerName   = "govulndb"
	stateSchemaURL = "https://raw.githubusercontent.com/anchore/vunnel/main/schema/provider-workspace-state/schema-1.0.3.json"
	osvSchemaURL   = "https://raw.githubusercontent.com/anchore/vunnel/main/schema/vulnerability/osv/schema-%s.json"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "grypedb:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("grypedb", flag.ContinueOnError)
	zipPath := fs.String("zip", "", "osv.dev Go snapshot (all.zip)")
	out := fs.String("out", "", "output directory for vulnerability.db")
	built := fs.String("built", "", "build date of the database, YYYY-MM-DD (default: today)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *zipPath == "" || *out == "" {
		return errors.New("-zip and -out are required")
	}
	when := time.Now().UTC()
	if *built != "" {
		t, err := time.Parse(time.DateOnly, *built)
		if err != nil {
			return fmt.Errorf("parse -built %q: %w", *built, err)
		}
		when = t
	}
	work, err := os.MkdirTemp("", "grypedb-workspace-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	n, err := writeWorkspace(*zipPath, work, when)
	if err != nil {
		return err
	}
	state, err := provider.ReadState(filepath.Join(work, providerName, "metadata.json"))
	if err != nil {
		return fmt.Errorf("read workspace state: %w", err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	err = grypedb.Build(grypedb.BuildConfig{
		SchemaVersion: v6.ModelVersion,
		Directory:     *out,
		States:        provider.States{*state},
		Timestamp:     when,
		Hydrate:       true,
	})
	if err != nil {
		return fmt.Errorf("build database from %d records: %w", n, err)
	}
	fmt.Printf("grypedb: %d records of %s -> %s\n", n, *zipPath, filepath.Join(*out, v6.VulnerabilityDBFileName))
	return nil
}

// writeWorkspace writes every record of the snapshot as a vunnel result
// envelope into a flat-file provider workspace under root, with the
// listing and state that grype/db/provider reads.
func writeWorkspace(zipPath, root string, when time.Time) (int, error) {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return 0, fmt.Errorf("open snapshot %s: %w", zipPath, err)
	}
	defer zr.Close()
	w := provider.NewWorkspaceWriter(root, providerName)
	var files []provider.File
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, ".json") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return 0, fmt.Errorf("open %s in %s: %w", f.Name, zipPath, err)
		}
		raw, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return 0, fmt.Errorf("read %s in %s: %w", f.Name, zipPath, err)
		}
		var head struct {
			ID            string `json:"id"`
			SchemaVersion string `json:"schema_version"`
		}
		if err := json.Unmarshal(raw, &head); err != nil || head.ID == "" {
			return 0, fmt.Errorf("record %s in %s: not an OSV record (%v)", f.Name, zipPath, err)
		}
		if head.SchemaVersion == "" {
			head.SchemaVersion = "1.3.1"
		}
		envelope, err := json.Marshal(struct {
			Identifier string          `json:"identifier"`
			Item       json.RawMessage `json:"item"`
			Schema     string          `json:"schema"`
		}{strings.ToLower(head.ID), raw, fmt.Sprintf(osvSchemaURL, head.SchemaVersion)})
		if err != nil {
			return 0, err
		}
		file, err := w.WriteResult(strings.ToLower(head.ID)+".json", envelope)
		if err != nil {
			return 0, err
		}
		files = append(files, *file)
	}
	if err := w.WriteListing(files); err != nil {
		return 0, err
	}
	listing, err := provider.NewFile(w.ListingPath())
	if err != nil {
		return 0, err
	}
	listing.Path = "results/listing.xxh64"
	err = w.WriteState(provider.State{
		Provider:  providerName,
		Version:   1,
		Processor: "evident bench/consumers/grypedb",
		Schema:    provider.Schema{Version: "1.0.3", URL: stateSchemaURL},
		URLs:      []string{"file://" + zipPath},
		Timestamp: when,
		Listing:   listing,
		Store:     "flat-file",
	})
	return len(files), err
}
