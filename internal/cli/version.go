package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
)

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of evident (the same as evident --version)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(g.stdout, versionLine(readBuildInfo()))
			return err
		},
	}
}

// readBuildInfo is the running binary's build information, nil when it
// was built without module support.
func readBuildInfo() *debug.BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return bi
}

// buildVersion is the version of the evident module this binary was
// built at, as reports and the User-Agent carry it.
func buildVersion() string {
	return moduleVersion(readBuildInfo())
}

// moduleVersion is the version of the main module in bi: a tagged
// release, a pseudo-version (go install ...@commit), or "(devel)" for a
// build in a checkout.
func moduleVersion(bi *debug.BuildInfo) string {
	if bi == nil || bi.Main.Version == "" {
		return "(devel)"
	}
	return bi.Main.Version
}

// versionLine is what evident version and evident --version print: the
// module version, then the commit and its time when the go command
// stamped them (a build in a git checkout; -buildvcs=false turns that
// off), "+dirty" when the checkout had uncommitted changes, and the Go
// version.
func versionLine(bi *debug.BuildInfo) string {
	var b strings.Builder
	b.WriteString("evident " + moduleVersion(bi))
	if bi == nil {
		return b.String()
	}
	rev, at, dirty := vcsOf(bi)
	if rev != "" {
		fmt.Fprintf(&b, " commit %.12s%s", rev, dirty)
		if at != "" {
			fmt.Fprintf(&b, " (%s)", at)
		}
	}
	b.WriteString(" " + bi.GoVersion)
	return b.String()
}

// vcsOf is the commit and its time that the go command stamped into bi,
// and "+dirty" when the checkout had uncommitted changes; empty when it
// stamped none.
func vcsOf(bi *debug.BuildInfo) (rev, at, dirty string) {
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	return rev, at, dirty
}

// buildInfoMetric is evident_build_info, always 1, labelled with what
// versionLine prints, under the label names Prometheus's own build_info
// metrics use: version, revision (the commit, "+dirty" appended) and
// goversion.
func buildInfoMetric(bi *debug.BuildInfo) prometheus.Collector {
	labels := prometheus.Labels{"version": moduleVersion(bi), "revision": "", "goversion": runtime.Version()}
	if bi != nil {
		rev, _, dirty := vcsOf(bi)
		if rev != "" {
			labels["revision"] = rev + dirty
		}
		labels["goversion"] = bi.GoVersion
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "evident_build_info",
		Help:        "1, labelled with the version, the commit (revision) and the Go version evident was built with.",
		ConstLabels: labels,
	}, func() float64 { return 1 })
}
