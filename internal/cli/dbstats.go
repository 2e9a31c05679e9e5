package cli

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/evidentsec/evident/internal/knowledge"
	"github.com/evidentsec/evident/internal/vulndb"
)

func newDBStatsCmd(g *globals) *cobra.Command {
	var vulns []string
	var kev, epss, config string
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Print what the vulnerability database holds",
		Long: `Load the vulnerability database and print what it holds: records per
ecosystem, how many name affected functions (from OSV or from evident's
knowledge base), how many are known to be exploited (CISA KEV) or withdrawn,
the KEV catalog version, the EPSS scores' date and the newest record.

By default the database is <data>/vulndb, as "evident db update" writes it.
--vulns reads other sources instead: a directory of OSV JSON files, an osv.dev
all.zip, a vuln.go.dev layout (directory or vulndb.zip) or a single record;
the kind is detected.

Records that cannot be read are reported on stderr with the file, the record
and the reason, and skipped. An invalid affected entry is reported the same
way, naming the entry ("affected[1]: ..."), and left out: the record loads
with its other entries, and is skipped only when none is valid. A withdrawn
record is counted as withdrawn, never skipped, whatever it says it affects; an
affected entry with neither ranges nor versions (valid OSV) affects no version
and is no problem. A source of the wrong kind (a file named .zip that is not a
zip archive) is named as such.
--config reads the knowledge files the configuration names (knowledge:) over
evident's own, as analyze and serve do, and reports their invalid entries as
skipped records.
Exit status 3 if any record or entry was skipped, 2 if nothing could be read.`,
		Example: `  evident db stats
  evident db stats --vulns ./vulndb.zip --kev known_exploited_vulnerabilities.json
  evident db stats --config evident.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			where := filepath.Join(g.dataDir, "vulndb")
			if len(vulns) > 0 {
				where = strings.Join(vulns, ", ")
			}
			cfg, err := loadConfig(config)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			db, problems, err := openVulnDB(cmd.Context(), g, vulns, kev, epss, cfg.Knowledge)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			entries := 0
			for _, p := range problems {
				fmt.Fprintf(g.stderr, "evident: skipped %v\n", p)
				if errors.Is(p, knowledge.ErrInvalid) {
					entries++
				}
			}
			if err := writeDBStats(g.stdout, where, db.Stats(), entries); err != nil {
				return withCode(ExitUsage, err)
			}
			if len(problems) > 0 {
				return withCode(ExitSkipped, errSkipped)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&vulns, "vulns", nil, "OSV source to read instead of <data>/vulndb: directory, zip or vuln.go.dev layout (repeatable)")
	f.StringVar(&kev, "kev", "", "CISA KEV catalog (JSON feed) to read instead of <data>/vulndb/kev.json")
	f.StringVar(&epss, "epss", "", "FIRST's EPSS scores (CSV, gzipped or not) to read instead of <data>/vulndb/epss.csv.gz")
	f.StringVar(&config, "config", "", "configuration file whose knowledge files to read over evident's knowledge base")
	return cmd
}

// writeDBStats prints s as a table, one row per ecosystem and a total,
// and the number of knowledge entries skipped, when there are any.
func writeDBStats(w io.Writer, where string, s vulndb.Stats, knowledgeSkipped int) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "vulnerability database: %s\n\n", where)
	fmt.Fprintln(tw, "ecosystem\trecords\twith symbols\twith knowledge\tknown exploited\twithdrawn\t")
	for _, eco := range slices.Sorted(maps.Keys(s.Ecosystems)) {
		e := s.Ecosystems[eco]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t\n", eco, e.Records, e.WithSymbols, e.WithKnowledge, e.KnownExploited, e.Withdrawn)
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d\t\n", s.Records, s.WithSymbols, s.WithKnowledge, s.KnownExploited, s.Withdrawn)
	if err := tw.Flush(); err != nil {
		return err
	}
	kev := "none"
	if s.HasKEV() {
		kev = "version " + s.KEVVersion
		if !s.KEVReleased.IsZero() {
			kev += ", released " + s.KEVReleased.UTC().Format(time.DateOnly)
		}
		kev += fmt.Sprintf(", %d entries", s.KEVCount)
	}
	epss := "none"
	if s.HasEPSS() {
		epss = fmt.Sprintf("model %s, scored %s, %d CVEs", s.EPSSModel, s.EPSSDate.Format(time.DateOnly), s.EPSSCount)
	}
	newest := "unknown"
	if !s.LastModified.IsZero() {
		newest = s.LastModified.UTC().Format(time.RFC3339)
	}
	if _, err := fmt.Fprintf(w, "\nKEV catalog: %s\nEPSS scores: %s\nnewest record modified: %s\nskipped: %d\n", kev, epss, newest, s.Skipped); err != nil {
		return err
	}
	if knowledgeSkipped > 0 {
		_, err := fmt.Fprintf(w, "knowledge entries skipped: %d\n", knowledgeSkipped)
		return err
	}
	return nil
}
