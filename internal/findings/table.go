package findings

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteTable writes findings as a table with aligned columns, one finding
// a row, in the order given. Empty cells are "-".
func WriteTable(w io.Writer, fs []Finding) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tPACKAGE\tVERSION\tVULNERABILITY\tSEVERITY\tFIXED\tSTATIC\tSOURCES")
	for _, f := range fs {
		sev := f.Severity.Level
		if f.Severity.Score > 0 {
			sev += " " + strconv.FormatFloat(f.Severity.Score, 'f', 1, 64)
		}
		var tools []string
		for _, s := range f.Sources {
			if len(tools) == 0 || tools[len(tools)-1] != s.Tool {
				tools = append(tools, s.Tool)
			}
		}
		fmt.Fprintln(tw, strings.Join([]string{
			cell(f.Service), cell(f.Package.Name), cell(f.Package.Version), cell(f.Vulnerability.ID),
			cell(sev), cell(f.FixedVersion), cell(string(f.Static)), cell(strings.Join(tools, ",")),
		}, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write findings table: %w", err)
	}
	return nil
}

// cell keeps a table cell non-empty (so columns stay aligned and
// splittable) and on one line.
func cell(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
	if s == "" {
		return "-"
	}
	return s
}
