package cli

import "github.com/spf13/cobra"

// newDBCmd is the parent of the commands that manage the vulnerability
// database under <data>/vulndb; each subcommand lives in its own file.
func newDBCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Manage the vulnerability database",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newDBStatsCmd(g))
	cmd.AddCommand(newDBUpdateCmd(g))
	return cmd
}
