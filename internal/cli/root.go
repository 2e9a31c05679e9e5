// Package cli implements the evident command line: one cobra command tree,
// run with injected arguments and output streams so that tests drive it as
// a user would.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes shared by every command.
const (
	ExitOK      = 0 // success
	ExitPolicy  = 1 // the run completed and a --fail-on policy was violated, or a check it made failed (audit verify, demo's expected verdicts)
	ExitUsage   = 2 // wrong flags or arguments, or an input that could not be read at all
	ExitSkipped = 3 // the run completed, but some records or files were skipped (see stderr)
)

// exitError carries an exit code up to Run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withCode wraps err so that Run exits with code.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// errSkipped is returned by a command whose output is complete except for
// inputs it reported on stderr and skipped.
var errSkipped = errors.New("some inputs were skipped")

// globals are the settings every command shares.
type globals struct {
	stdout, stderr io.Writer
	// dataDir holds the vulnerability database and the embedded store.
	dataDir string
}

// Run executes the evident command line with args (without the program
// name) and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRootCmd(g)
	root.SetArgs(args)
	return exitStatus(root.ExecuteContext(ctx), stderr)
}

// exitStatus is the exit code of a command that returned err, whose
// message it prints to stderr.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if !errors.Is(ee.err, errSkipped) {
			fmt.Fprintf(stderr, "evident: %v\n", err)
		}
		return ee.code
	}
	// Errors that did not choose a code are about usage: unknown commands
	// and flags, bad arguments.
	fmt.Fprintf(stderr, "evident: %v\n", err)
	return ExitUsage
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "evident",
		Short: "Evidence-backed vulnerability priorities from the telemetry you already collect",
		Long: `evident reads the traces and profiles a team already ships (OTLP, Pyroscope,
pprof) and the findings of its scanners (govulncheck, Trivy, Grype, OSV-Scanner,
SBOMs), and says for every vulnerability and service whether the vulnerable code
runs, how exposed the service is and what it can reach, ranked with the evidence.`,
		Version:       versionLine(readBuildInfo()),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	defaultData := os.Getenv("EVIDENT_DATA")
	if defaultData == "" {
		defaultData = "evident-data"
	}
	root.PersistentFlags().StringVar(&g.dataDir, "data", defaultData, "data directory for the vulnerability database and the store (env EVIDENT_DATA)")
	root.AddCommand(
		newVersionCmd(g),
		newFindingsCmd(g),
		newDBCmd(g),
		newAnalyzeCmd(g),
		newWAFCmd(g),
		newServeCmd(g),
		newTokenCmd(g),
		newAuditCmd(g),
		newDemoCmd(g),
		newHealthcheckCmd(g),
	)
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			refuseUnknownShell(c)
		} else {
			refuseUnknownSubcommands(c)
		}
	}
	return root
}

// refuseUnknownSubcommands makes a group of commands (evident db, waf,
// token, ...) refuse an argument that names none of its commands, as the
// root refuses an unknown command: cobra prints such a group's help and
// exits 0, so "evident db updte" in a script would pass. With no argument
// the group prints its help, as before. It recurses into subgroups.
func refuseUnknownSubcommands(group *cobra.Command) {
	if !group.HasSubCommands() {
		return
	}
	for _, c := range group.Commands() {
		refuseUnknownSubcommands(c)
	}
	if group.Runnable() {
		return
	}
	group.Args = cobra.ArbitraryArgs
	group.SuggestionsMinimumDistance = 2 // cobra's default for the root
	group.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		var names []string
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() {
				names = append(names, c.Name())
			}
		}
		msg := fmt.Sprintf("unknown command %q for %q (want %s)", args[0], cmd.CommandPath(), strings.Join(names, ", "))
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
		}
		return withCode(ExitUsage, errors.New(msg))
	}
}

// completionShells are the shells evident completion writes scripts for
// (cobra's generators).
var completionShells = []string{"bash", "zsh", "fish", "powershell"}

// refuseUnknownShell makes evident completion with no shell or an
// unsupported one (tcsh) a usage error instead of its help and status 0.
func refuseUnknownShell(completion *cobra.Command) {
	completion.Args = cobra.ArbitraryArgs
	completion.RunE = func(_ *cobra.Command, args []string) error {
		want := strings.Join(completionShells, ", ")
		if len(args) == 0 {
			return withCode(ExitUsage, fmt.Errorf("name a shell (want %s)", want))
		}
		return withCode(ExitUsage, fmt.Errorf("unsupported shell %s (want %s)", args[0], want))
	}
}

// required names the flags, given as name and value pairs, whose value is
// empty: "--rules is required", "--upstream and --rules are required"; nil
// when none is.
func required(pairs ...string) error {
	var missing []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			missing = append(missing, pairs[i])
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%s is required", missing[0])
	}
	return fmt.Errorf("%s and %s are required", strings.Join(missing[:len(missing)-1], ", "), missing[len(missing)-1])
}

// atLeastOne requires an argument, as cobra.MinimumNArgs(1) does, with an
// error that says what to name rather than cobra's count of arguments.
func atLeastOne(what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) == 0 {
			return withCode(ExitUsage, fmt.Errorf("name %s", what))
		}
		return nil
	}
}

// completeFlag offers values as the completions of a flag of cmd.
// Registering a flag cmd does not have is a programming error.
func completeFlag(cmd *cobra.Command, flag string, values []string) {
	err := cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
	if err != nil {
		panic(err)
	}
}
