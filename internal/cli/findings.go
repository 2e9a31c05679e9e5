package cli

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/telemetry"
	"github.com/evidentsec/evident/internal/vulndb"
)

func newFindingsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "findings",
		Short: "Import scanner reports and SBOMs as one list of findings",
	}
	cmd.AddCommand(newFindingsImportCmd(g))
	return cmd
}

// importInput is one input file of findings import.
type importInput struct {
	path string
	// name is path without the .gz of a gzipped file: what the name
	// tells of the format (yarn.lock.gz holds a yarn.lock).
	name string
	// file is the open file, for importers that need random access (Go
	// executables); r reads it from the start, buffered and gunzipped. A
	// gzipped file never goes to an importer that needs random access.
	file *os.File
	r    io.Reader
}

// importer reads one input into findings; see the findings.ParseXxx
// functions for the error contract.
type importer func(in importInput) ([]findings.Finding, []error)

// scannerReport adapts the parser of a scanner report.
func scannerReport(parse func(r io.Reader, name string) ([]findings.Finding, []error)) importer {
	return func(in importInput) ([]findings.Finding, []error) { return parse(in.r, in.path) }
}

// importParsers are the input formats that findings import reads, by format.
func importParsers() map[findings.Format]importer {
	return map[findings.Format]importer{
		findings.FormatGovulncheck: scannerReport(findings.ParseGovulncheck),
		findings.FormatTrivy:       scannerReport(findings.ParseTrivy),
		findings.FormatGrype:       scannerReport(findings.ParseGrype),
		findings.FormatOSVScanner:  scannerReport(findings.ParseOSVScanner),
		findings.FormatPipAudit:    scannerReport(findings.ParsePipAudit),
		findings.FormatNPMAudit:    npmAuditReport,
		findings.FormatEvident:     scannerReport(findings.ParseDocument),
	}
}

// npmAuditReport reads npm audit's report with the lockfile npm audit ran
// on, package-lock.json or npm-shrinkwrap.json in the report's directory,
// which has the installed versions the report does not state. Without one,
// every finding is a record error that says so. Only a report read from a
// file has a directory: an upload's name is no path on this host.
func npmAuditReport(in importInput) ([]findings.Finding, []error) {
	var lock findings.NPMLock
	dir := filepath.Dir(in.path)
	for _, base := range []string{"npm-shrinkwrap.json", "package-lock.json"} {
		if in.file == nil {
			break
		}
		f, err := os.Open(filepath.Join(dir, base))
		if err != nil {
			continue
		}
		lock, err = findings.ReadNPMLock(bufio.NewReader(f), f.Name())
		f.Close()
		if err != nil {
			return nil, []error{fmt.Errorf("%s: lockfile: %w", in.path, err)}
		}
		break
	}
	return findings.ParseNPMAudit(in.r, in.path, lock)
}

// sbomParsers are the SBOM formats: their packages are looked up in the
// vulnerability database, which db opens on first use.
func sbomParsers(db func() (findings.Matcher, error)) map[findings.Format]importer {
	withDB := func(parse func(in importInput, m findings.Matcher) ([]findings.Finding, []error)) importer {
		return func(in importInput) ([]findings.Finding, []error) {
			m, err := db()
			if err != nil {
				return nil, []error{fmt.Errorf("%s: %w", in.path, err)}
			}
			return parse(in, m)
		}
	}
	return map[findings.Format]importer{
		findings.FormatGoBinary: withDB(func(in importInput, m findings.Matcher) ([]findings.Finding, []error) {
			return findings.ParseGoBinary(in.file, in.path, m)
		}),
		findings.FormatSPDX: withDB(func(in importInput, m findings.Matcher) ([]findings.Finding, []error) {
			return findings.ParseSPDX(in.r, in.path, m)
		}),
		findings.FormatLockfile: withDB(func(in importInput, m findings.Matcher) ([]findings.Finding, []error) {
			// Lockfiles are known by their names.
			return findings.ParseLockfile(in.r, in.name, m)
		}),
		findings.FormatCycloneDX: func(in importInput) ([]findings.Finding, []error) {
			m, err := db()
			if err == nil {
				return findings.ParseCycloneDX(in.r, in.path, m)
			}
			// A BOM that carries vulnerabilities (a scanner's output)
			// needs no database; a bare SBOM does.
			fs, errs := findings.ParseCycloneDX(in.r, in.path, nil)
			if len(fs) == 0 && len(errs) == 0 {
				return nil, []error{fmt.Errorf("%s: %w", in.path, err)}
			}
			return fs, errs
		},
	}
}

// importFormats are the names of every input format, sorted.
func importFormats() []string {
	all := importParsers()
	maps.Copy(all, sbomParsers(nil)) // for their names only: no database is opened
	names := make([]string, 0, len(all))
	for f := range all {
		names = append(names, string(f))
	}
	slices.Sort(names)
	return names
}

// importOutputs are the output formats of findings import.
var importOutputs = []string{"table", "json"}

// detectPrefix is how much of an input format detection reads.
const detectPrefix = 64 << 10

func newFindingsImportCmd(g *globals) *cobra.Command {
	var (
		format, inputFormat, service string
		vulns                        []string
	)
	names := importFormats()
	cmd := &cobra.Command{
		Use:   "import [SERVICE[,SERVICE]=]FILE|DIR...",
		Short: "Read scanner reports and SBOMs, merge their findings and print them",
		Long: `Read the reports of vulnerability scanners (govulncheck, grype, osv-scanner,
trivy, npm audit --json, pip-audit --format json), SBOMs (cyclonedx, spdx,
gobinary: a Go executable) and lockfiles (package-lock.json, pnpm-lock.yaml,
yarn.lock, requirements.txt, poetry.lock, pom.xml, gradle.lockfile, go.mod), and
the JSON this command writes (--format json), normalise their findings and
merge them: the same vulnerability (under any of its ids: GO-,
GHSA-, CVE-...) in the same package version of the same service, reported by
several tools, is one finding that lists every tool. The vulnerability
database (<data>/vulndb, or --vulns) tells the ids of one vulnerability that the
reports name differently and without aliases in common (npm audit's GHSA,
another tool's CVE), and the packages of an SBOM are looked up in it.

A FILE written as SERVICE=FILE assigns its findings to SERVICE (SVC1,SVC2=FILE
to several services that run the same artifact); a DIR holds one report per
service, named after it (reports/gateway.json is the gateway's); --service
names the service of the files that say neither (findings of this command's
JSON keep the services they name). Without any of these, a report's service
is the one the artifact it scanned names, as analyze infers
it (the example.com/shop/cmd/gateway binary, the registry.example.com/shop/gateway:1.4
image: gateway), said on stderr. The format of each file is detected from its
content unless --input-format says it.

Records that cannot be read are reported on stderr with the file, the record
and the reason, and skipped; the others are printed. Exit status 3 if any
record was skipped, 2 if a file could not be read at all.`,
		Example: `  evident findings import govulncheck.json trivy.json
  evident findings import checkout=checkout.grype.json cart=cart.trivy.json --format json
  govulncheck -json ./... > gvc.json && evident findings import --service api gvc.json
  evident findings import --vulns osv-Go.zip api=sbom.cdx.json ./bin/worker`,
		Args: atLeastOne("at least one scanner report, SBOM, Go binary or lockfile, or a directory of them"),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The vulnerability database is opened by the first SBOM
			// that needs it, and only then.
			var (
				db     *vulndb.DB
				dbErr  error
				opened bool
			)
			openDB := func() (findings.Matcher, error) {
				if !opened {
					opened = true
					var problems []vulndb.LoadError
					db, problems, dbErr = openVulnDB(cmd.Context(), g, vulns, "", "", nil)
					if len(problems) > 0 {
						fmt.Fprintf(g.stderr, "evident: vulnerability database: %d records or affected entries skipped (evident db stats lists them)\n", len(problems))
					}
				}
				if dbErr != nil {
					return nil, dbErr
				}
				return db, nil
			}
			parsers := importParsers()
			maps.Copy(parsers, sbomParsers(openDB))
			if !slices.Contains(importOutputs, format) {
				return fmt.Errorf("--format %q: want %s", format, strings.Join(importOutputs, " or "))
			}
			if inputFormat != "auto" {
				if _, ok := parsers[findings.Format(inputFormat)]; !ok {
					return fmt.Errorf("--input-format %q: want auto, %s", inputFormat, strings.Join(names, ", "))
				}
			}
			var (
				all                     []findings.Finding
				inputs, unread, skipped int
			)
			for _, arg := range args {
				in, err := splitServiceArg(arg)
				var files []findingsFile
				if err == nil {
					files, err = findingsFiles(in.Service, in.Path)
				}
				if err != nil {
					fmt.Fprintf(g.stderr, "evident: %s: %v\n", arg, err)
					inputs++
					unread++
					continue
				}
				for _, in := range files {
					inputs++
					fs, errs := importFile(in.path, findings.Format(inputFormat), parsers)
					fileFailed := false
					for _, err := range errs {
						fmt.Fprintf(g.stderr, "evident: %v\n", err)
						if _, ok := errors.AsType[*findings.RecordError](err); !ok && len(fs) == 0 {
							fileFailed = true
						}
					}
					switch {
					case fileFailed:
						unread++
					case len(errs) > 0:
						skipped++
					}
					// SERVICE=FILE (or a directory's file name) wins;
					// --service only fills in what the input did not
					// say (evident's own findings name theirs); without
					// either, the artifact the report scanned names it,
					// as analyze and serve infer it (with no telemetry
					// to check the name against).
					if in.services == "" {
						findings.FillServices(fs, service)
						if !findings.NameServices(fs) && len(fs) > 0 {
							imported := importedFindings{findingsFile: in, fs: fs}
							if svc, why, err := inferService(imported.artifact(), seenServices{}); err == nil {
								fmt.Fprintf(g.stderr, "evident: %s: service %s (%s)\n", in.path, svc, why)
								findings.FillServices(fs, svc)
							}
						}
					}
					all = append(all, forServices(fs, in.services)...)
				}
			}
			if unread == inputs {
				// Nothing was read: an empty table or document would
				// pass for inputs without findings.
				if inputs == 1 {
					return withCode(ExitUsage, errors.New("the input could not be read"))
				}
				return withCode(ExitUsage, fmt.Errorf("none of the %d inputs could be read", inputs))
			}
			// The database, when there is one, tells the ids of one
			// vulnerability that reports name differently (npm audit's
			// GHSA, another tool's CVE); without one the reports' own ids
			// and aliases decide.
			tried := opened
			m, err := openDB()
			if err != nil && !tried && len(vulns) > 0 {
				fmt.Fprintf(g.stderr, "evident: %v: findings merged by the ids and aliases the reports give\n", err)
			}
			merged := findings.MergeWith(all, m)
			if format == "json" {
				err = findings.WriteJSON(g.stdout, merged)
			} else {
				err = findings.WriteTable(g.stdout, merged)
			}
			switch {
			case err != nil:
				return withCode(ExitUsage, err)
			case unread > 0:
				return withCode(ExitUsage, fmt.Errorf("%d of %d inputs could not be read", unread, inputs))
			case skipped > 0:
				return withCode(ExitSkipped, errSkipped)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "table", "output format: table or json")
	f.StringVar(&inputFormat, "input-format", "auto", "format of the inputs: auto (detect from the content), "+strings.Join(names, ", "))
	f.StringVar(&service, "service", "", "service of the findings of files given without SERVICE=")
	completeFlag(cmd, "format", importOutputs)
	completeFlag(cmd, "input-format", append([]string{"auto"}, names...))
	f.StringSliceVar(&vulns, "vulns", nil, "OSV sources to match SBOM packages against and to merge ids of one vulnerability by, instead of <data>/vulndb (repeatable)")
	return cmd
}

// splitServiceArg splits a [SERVICE[,SERVICE]=]PATH argument, of
// --findings as of --profiles and --traces: the part before the first "="
// is the service when it holds no path separator (telemetry.ParseInput),
// and then neither part may be empty. An argument that names an existing
// file is that file, even with an "=" in its name.
func splitServiceArg(arg string) (telemetry.Input, error) {
	if _, err := os.Stat(arg); err == nil {
		return telemetry.Input{Path: arg}, nil
	}
	if arg == "" {
		return telemetry.Input{}, errors.New("empty: want [SERVICE=]PATH")
	}
	in, err := telemetry.ParseInput(arg)
	if err != nil {
		// Its only other error; its words are about telemetry.
		return in, errors.New("want SERVICE=PATH with both parts, or a path")
	}
	return in, nil
}

// importFile reads one input, detecting its format when format is auto.
// A gzip-compressed input is read as what it holds, as telemetry files
// are: reports are often kept and passed on gzipped.
func importFile(path string, format findings.Format, parsers map[findings.Format]importer) ([]findings.Finding, []error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, []error{fmt.Errorf("read findings: %w", err)}
	}
	defer file.Close()
	br := bufio.NewReaderSize(file, detectPrefix)
	// name is what the name tells detection: yarn.lock.gz is a yarn.lock.
	name := path
	magic, err := br.Peek(len(gzipMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, []error{fmt.Errorf("read findings from %s: %w", path, err)}
	}
	gzipped := string(magic) == gzipMagic
	if gzipped {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, []error{fmt.Errorf("%s: gzip: %w", path, err)}
		}
		defer zr.Close()
		br = bufio.NewReaderSize(telemetry.CutShortReader(zr, "gzip"), detectPrefix)
		name = strings.TrimSuffix(path, ".gz")
	}
	if format == "auto" {
		prefix, err := br.Peek(detectPrefix)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, []error{fmt.Errorf("read findings from %s: %w", path, err)}
		}
		if format, err = findings.DetectFile(name, prefix); err != nil {
			what := ""
			if gzipped {
				what = " (gunzipped)"
			}
			if errors.Is(err, findings.ErrEmpty) {
				return nil, []error{fmt.Errorf("%s%s: the file is empty (want a scanner report, SBOM, Go binary or lockfile)", path, what)}
			}
			// The hint names every format; only findings import can be
			// told one with --input-format.
			return nil, []error{fmt.Errorf("%s%s: %w: not a report of %s", path, what, err, strings.Join(importFormats(), ", "))}
		}
	}
	if gzipped && format == findings.FormatGoBinary {
		// Build information is read from sections, by offset.
		return nil, []error{fmt.Errorf("%s: a gzip-compressed Go executable: gunzip it first", path)}
	}
	parse, ok := parsers[format]
	if !ok {
		return nil, []error{fmt.Errorf("%s: %s input is not supported by findings import", path, format)}
	}
	return parse(importInput{path: path, name: name, file: file, r: br})
}

// gzipMagic starts every gzip stream.
const gzipMagic = "\x1f\x8b"
