package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/evidentsec/evident/internal/assess"
)

// writeMarkdown renders a pull-request comment: the headline, the
// findings that need action with their evidence, and the rest folded.
// With maxBytes > 0, it keeps the headline and as many findings as fit,
// in priority order, and says how many it cut.
func writeMarkdown(w io.Writer, r *Result, maxBytes int) error {
	n := len(r.Assessments)
	out := markdown(r, n, maxBytes)
	if maxBytes > 0 && len(out) > maxBytes {
		if out = markdown(r, 0, maxBytes); len(out) > maxBytes {
			return fmt.Errorf("markdown: the headline alone takes %d bytes, more than the cap of %d", len(out), maxBytes)
		}
		// The largest number of findings that fits: the size grows with
		// every finding shown.
		lo, hi := 0, n-1
		for lo < hi {
			mid := (lo + hi + 1) / 2
			if len(markdown(r, mid, maxBytes)) <= maxBytes {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		out = markdown(r, lo, maxBytes)
	}
	_, err := io.WriteString(w, out)
	return err
}

// markdown renders the first shown findings and, when that is not all,
// the line that says how many were cut to fit maxBytes.
func markdown(r *Result, shown, maxBytes int) string {
	var b strings.Builder
	b.WriteString("## evident: runtime evidence for vulnerability findings\n\n")
	b.WriteString("**" + Headline(r.Summary) + "**\n\n")
	if note := unloadedNote(r.VulnDB, func(s string) string { return "`" + s + "`" }); note != "" {
		b.WriteString("> " + note + "\n\n")
	}
	var now, later []assess.Assessment
	for _, a := range r.Assessments[:shown] {
		if a.Priority.Tier == "P1" || a.Priority.Tier == "P2" {
			now = append(now, a)
		} else {
			later = append(later, a)
		}
	}
	if len(now) > 0 {
		b.WriteString("### Needs action now\n\n")
		mdTable(&b, now)
		for _, a := range now {
			fmt.Fprintf(&b, "\n<details><summary>%s in %s: why %s</summary>\n\n", a.Finding.Vulnerability.ID, mdEscape(a.Finding.Service), a.Priority.Tier)
			for _, reason := range a.Priority.Reasons {
				fmt.Fprintf(&b, "- %s\n", mdEscape(reason))
			}
			if ev := a.Reachability.Evidence; len(ev) > 0 && len(ev[0].Stack) > 0 {
				fmt.Fprintf(&b, "\nExample stack of `%s`:\n\n```\n%s\n```\n", ev[0].Symbol, strings.Join(ev[0].Stack, "\n"))
			}
			b.WriteString("\n</details>\n")
		}
	}
	if len(later) > 0 {
		fmt.Fprintf(&b, "\n<details><summary>%d findings with no evidence that they need action now</summary>\n\n", len(later))
		mdTable(&b, later)
		b.WriteString("\n</details>\n")
	}
	if cut := len(r.Assessments) - shown; cut > 0 {
		fmt.Fprintf(&b, "\n_%d more findings not shown (cut to fit %d bytes)._\n", cut, maxBytes)
	}
	return b.String()
}

func mdTable(b *strings.Builder, as []assess.Assessment) {
	b.WriteString("| Tier | Score | Service | Vulnerability | Package | Fixed | Verdict | Exposure | Evidence |\n")
	b.WriteString("| --- | ---: | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, a := range as {
		f := a.Finding
		id := f.Vulnerability.ID
		if a.KnownExploited {
			id += " (KEV)"
		}
		fmt.Fprintf(b, "| %s | %d | %s | %s | `%s@%s` | %s | %s | %s | %s |\n",
			a.Priority.Tier, a.Priority.Score, mdEscape(dash(f.Service)), id, f.Package.Name, f.Package.Version,
			dash(f.FixedVersion), a.Reachability.Verdict, a.Exposure.Level, mdEscape(evidenceCell(a)))
	}
}

// mdEscape keeps table cells and list items from breaking the Markdown.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "\n", " ").Replace(s)
}
