package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/evidentsec/evident/internal/assess"
)

// writeMarkdown renders a pull-request comment: the headline, the
// findings that need action with their evidence, and the rest folded.
func writeMarkdown(w io.Writer, r *Result) error {
	var b strings.Builder
	b.WriteString("## evident: runtime evidence for vulnerability findings\n\n")
	b.WriteString("**" + headline(r.Summary) + "**\n\n")
	var now, later []assess.Assessment
	for _, a := range r.Assessments {
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
	_, err := io.WriteString(w, b.String())
	return err
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
