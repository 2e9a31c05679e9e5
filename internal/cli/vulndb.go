package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/evidentsec/evident/internal/knowledge"
	"github.com/evidentsec/evident/internal/vulndb"
)

// openVulnDB loads the vulnerability database that commands read: the
// sources named with --vulns, else <data>/vulndb, with evident's
// knowledge base merged in, and over it the knowledge files of the
// configuration (userKnowledge); kev and epss name a KEV catalog and an
// EPSS file instead of those in <data>/vulndb. also are read beside
// either. The load errors of single records and knowledge entries are
// returned for the caller to report; the error is fatal.
func openVulnDB(ctx context.Context, g *globals, sources []string, kev, epss string, userKnowledge []string, also ...string) (*vulndb.DB, []vulndb.LoadError, error) {
	kb, kbProblems, err := loadKnowledge(userKnowledge)
	if err != nil {
		return nil, nil, err
	}
	opts := vulndb.Options{Sources: also, KEV: kev, EPSS: epss, Knowledge: kb}
	var (
		db       *vulndb.DB
		problems []vulndb.LoadError
	)
	if len(sources) > 0 {
		opts.Sources = append(slices.Clone(sources), also...)
		db, problems, err = vulndb.Load(ctx, opts)
	} else {
		db, problems, err = vulndb.OpenDir(ctx, filepath.Join(g.dataDir, "vulndb"), opts)
		if errors.Is(err, vulndb.ErrNoDatabase) {
			err = fmt.Errorf(`%w (run "evident db update", or name sources with --vulns)`, err)
		}
	}
	return db, append(kbProblems, problems...), err
}

// errKnowledge marks the errors of the configuration's knowledge files,
// which are not those of the sources the database is read from.
var errKnowledge = errors.New("knowledge")

// loadKnowledge returns the shipped knowledge base with the files named
// read over it, in order. A file that cannot be read, or is refused whole
// (not YAML, another version), is an error naming it; its invalid entries
// are returned as problems, one each, and its valid ones used.
func loadKnowledge(files []string) (*knowledge.Base, []vulndb.LoadError, error) {
	kb, err := knowledge.Default()
	if err != nil {
		return nil, nil, err
	}
	var problems []vulndb.LoadError
	for _, path := range files {
		user, err := readKnowledge(path)
		if user == nil {
			return nil, nil, fmt.Errorf("%w: %w", errKnowledge, err)
		}
		for _, e := range knowledge.EntryErrors(err) {
			problems = append(problems, vulndb.LoadError{File: e.Place, Reason: e.Err.Error(), Err: knowledge.ErrInvalid})
		}
		kb = kb.Merge(user)
	}
	return kb, problems, nil
}

// readKnowledge loads the knowledge file at path; see knowledge.Load.
func readKnowledge(path string) (*knowledge.Base, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return knowledge.Load(f, path)
}
