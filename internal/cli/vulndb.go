package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/evidentsec/evident/internal/knowledge"
	"github.com/evidentsec/evident/internal/vulndb"
)

// openVulnDB loads the vulnerability database that commands read: the
// sources named with --vulns, else <data>/vulndb, with evident's
// knowledge base merged in; kev and epss name a KEV catalog and an EPSS
// file instead of those in <data>/vulndb. also are read beside either.
// The load errors of single records are returned for the caller to
// report; the error is fatal.
func openVulnDB(ctx context.Context, g *globals, sources []string, kev, epss string, also ...string) (*vulndb.DB, []vulndb.LoadError, error) {
	kb, err := knowledge.Default()
	if err != nil {
		return nil, nil, err
	}
	opts := vulndb.Options{Sources: also, KEV: kev, EPSS: epss, Knowledge: kb}
	if len(sources) > 0 {
		opts.Sources = append(slices.Clone(sources), also...)
		return vulndb.Load(ctx, opts)
	}
	db, problems, err := vulndb.OpenDir(ctx, filepath.Join(g.dataDir, "vulndb"), opts)
	if errors.Is(err, vulndb.ErrNoDatabase) {
		return nil, nil, fmt.Errorf(`%w (run "evident db update", or name sources with --vulns)`, err)
	}
	return db, problems, err
}
