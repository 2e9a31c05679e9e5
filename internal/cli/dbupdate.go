package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/evidentsec/evident/internal/dbupdate"
	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/tlsconfig"
)

func newDBUpdateCmd(g *globals) *cobra.Command {
	var (
		ecosystems               []string
		all, noKEV, noEPSS       bool
		quiet                    bool
		baseURL, kevURL, epssURL string
		timeout                  time.Duration
		tlsFlags                 tlsconfig.ClientConfig
	)
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Download the vulnerability database: osv.dev archives, the CISA KEV catalog and EPSS scores",
		Long: `Download osv.dev's bulk archive of each chosen ecosystem, CISA's Known
Exploited Vulnerabilities catalog and FIRST's daily EPSS scores into
<data>/vulndb. osv.dev's archives hold the GHSA records of each ecosystem
beside its own (GO-, PYSEC-): evident rates a record that carries no CVSS,
as Go's do, by the records of the same vulnerability.

Ecosystems are named as osv.dev names them (Go, PyPI, npm, Maven, crates.io,
RubyGems, NuGet, ...). Another spelling of one ("golang", "pypi", "cargo") is
refused with the right name; a name the OSV schema does not list is looked up
in <base-url>/ecosystems.txt before it is downloaded.

Every file is checked (size, the MD5 and CRC32C the server announces, and its
content) before it replaces the old one, so a failed or interrupted update
leaves the previous database intact. Archives that have not changed since the
last update are not downloaded again.

Failures that a retry cannot cure (a host that does not resolve, a refused
connection, a TLS error, HTTP 4xx, more than ten redirects or one to a
file:// URL) fail the file at once; timeouts, dropped connections and HTTP
408, 429 and 5xx are retried with backoff, and each retry is printed. --timeout bounds each file's update, retries included.

A mirror behind a private CA is trusted with --ca-file; one that asks for a
client certificate gets --cert-file and --key-file. A machine without access
to the internet reads a copy of the export on a mounted share: --base-url
file:///mnt/osv-vulnerabilities (<Ecosystem>/all.zip, as osv.dev lays it
out), --kev-url and --epss-url file:///... too, or --no-kev and --no-epss; an
archive whose file is no newer than the last update is not copied again.

Exit status 3 if some files could not be updated and the others were (each
failure named on stderr): the database is usable, partly old. Exit status 2 if
none could be, or the flags are wrong.`,
		Example: `  evident db update
  evident db update --ecosystem Go --ecosystem PyPI --no-kev --no-epss
  evident db update --all --base-url https://mirror.example.com/osv-vulnerabilities
  evident db update --ecosystem Go --base-url file:///mnt/osv-vulnerabilities --no-kev --no-epss
  evident db update --ecosystem Go --timeout 2m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := dbupdate.DefaultConfig()
			tc, err := tlsconfig.NewClient(tlsFlags, "db update", slog.New(slog.NewTextHandler(g.stderr, nil)))
			if err != nil {
				return withCode(ExitUsage, err)
			}
			cfg.HTTPClient = dbupdate.NewHTTPClient(tc)
			// The client's keep-alive connections end with the command.
			defer cfg.HTTPClient.CloseIdleConnections()
			cfg.Dir = g.dataDir
			cfg.BaseURL = baseURL
			cfg.KEVURL = kevURL
			if noKEV {
				cfg.KEVURL = ""
			}
			cfg.EPSSURL = epssURL
			if noEPSS {
				cfg.EPSSURL = ""
			}
			if cmd.Flags().Changed("ecosystem") {
				cfg.Ecosystems = ecosystems
			}
			if all {
				cfg.Ecosystems = nil
				cfg.AllEcosystems = true
			}
			cfg.Timeout = timeout
			cfg.UserAgent = "evident/" + buildVersion()
			if !quiet {
				cfg.Progress = g.stderr
				cfg.ProgressBar = isTerminal(g.stderr)
			}
			if err := cfg.Validate(); err != nil {
				return withCode(ExitUsage, err)
			}
			res, err := dbupdate.Update(cmd.Context(), cfg)
			if !quiet {
				fmt.Fprintln(g.stderr, summaryLine(filepath.Join(cfg.Dir, "vulndb"), res))
			}
			return updateExit(res, err)
		},
	}
	def := dbupdate.DefaultConfig()
	f := cmd.Flags()
	f.StringSliceVar(&ecosystems, "ecosystem", def.Ecosystems, "osv.dev ecosystem to download, as spelt in ecosystems.txt (repeatable)")
	f.BoolVar(&all, "all", false, "download every ecosystem listed in <base-url>/ecosystems.txt")
	f.StringVar(&baseURL, "base-url", dbupdate.DefaultBaseURL, "root of the osv.dev bulk export, or of a mirror of it (http, https, or file:///path)")
	f.StringVar(&kevURL, "kev-url", dbupdate.DefaultKEVURL, "URL of the CISA KEV JSON feed")
	f.BoolVar(&noKEV, "no-kev", false, "do not download the CISA KEV feed")
	f.StringVar(&epssURL, "epss-url", dbupdate.DefaultEPSSURL, "URL of FIRST's EPSS scores (gzipped CSV)")
	f.BoolVar(&noEPSS, "no-epss", false, "do not download the EPSS scores")
	f.DurationVar(&timeout, "timeout", def.Timeout, "give up on a file after this long, retries included (0: no limit)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print nothing but errors")
	completeFlag(cmd, "ecosystem", osv.Ecosystems())
	f.StringVar(&tlsFlags.CAFile, "ca-file", "", "PEM file of the CAs that sign the servers' certificates, instead of the system's roots")
	f.StringVar(&tlsFlags.CertFile, "cert-file", "", "PEM client certificate, for a mirror that asks for one (with --key-file)")
	f.StringVar(&tlsFlags.KeyFile, "key-file", "", "PEM key of --cert-file")
	cmd.MarkFlagsMutuallyExclusive("ecosystem", "all")
	cmd.MarkFlagsMutuallyExclusive("kev-url", "no-kev")
	cmd.MarkFlagsMutuallyExclusive("epss-url", "no-epss")
	return cmd
}

// updateExit is the outcome of an update as db update exits with it:
// ExitSkipped when some files failed and others were updated (the run
// completed, and the database is usable with the failed ones old or
// missing), ExitUsage when nothing was, or the update could not start.
func updateExit(res dbupdate.Result, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("update vulnerability database: %w", err)
	if failed := len(res.Failed()); failed > 0 && failed < len(res.Files) {
		return withCode(ExitSkipped, fmt.Errorf("%w (the other files were updated)", err))
	}
	return withCode(ExitUsage, err)
}

// summaryLine counts the outcomes of an update.
func summaryLine(dir string, res dbupdate.Result) string {
	var n [3]int
	for _, f := range res.Files {
		n[f.Status]++
	}
	return fmt.Sprintf("%s: %d downloaded, %d up to date, %d failed",
		dir, n[dbupdate.StatusDownloaded], n[dbupdate.StatusUpToDate], n[dbupdate.StatusFailed])
}

// isTerminal reports whether w is a terminal, where redrawn progress bars
// are welcome; in files and CI logs they are noise.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
