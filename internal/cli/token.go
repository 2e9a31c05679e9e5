package cli

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/sqlite"
)

// cliActor names the person running a command in the audit log.
func cliActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

// openSharedStore opens the store of serve's configuration file config
// (serve.store; SQLite's under --data without one) beside a running
// evident serve, for the token and audit commands, as access says. Only
// token create makes a SQLite store that is not there (tokens may come
// before the first serve): the commands that read one refuse a directory
// without it, as a mistyped --data would otherwise list no tokens and
// find an empty audit log intact, and leave a new store behind.
func openSharedStore(ctx context.Context, g *globals, config string, access storeAccess) (store.Store, error) {
	cfg, err := loadConfig(config)
	if err != nil {
		return nil, err
	}
	// Of the serve section, only the store is theirs to check.
	if err := cfg.Serve.Store.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", config, err)
	}
	if cfg.Serve.Store.Backend != backendPostgres && access != storeCreate {
		path := filepath.Join(g.dataDir, "store", sqlite.FileName)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no store at %s: evident serve or evident token create makes one; --data names the data directory of the serve to manage (default ./evident-data), --config a configuration whose serve.store is PostgreSQL", path)
		}
	}
	return openStore(ctx, g.dataDir, cfg.Serve.Store, access, func(err error) { fmt.Fprintf(g.stderr, "evident: warning: %v\n", err) })
}

// addStoreConfigFlag adds --config, the file whose serve.store says
// where the store is, to the token and audit commands.
func addStoreConfigFlag(cmd *cobra.Command, config *string) {
	cmd.PersistentFlags().StringVar(config, "config", "", "evident serve's configuration file, whose serve.store says where the store is (default: SQLite under --data)")
}

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke the API tokens of evident serve",
		Long: `API tokens authenticate the clients of evident serve: telemetry senders (role
ingest), readers of the API and dashboards (read), and administrators, who
upload findings and read the audit log (admin, which includes the others).
The store under --data keeps the SHA-256 of each token's secret, never the
secret; a running evident serve picks up a new or revoked token within
serve.auth.reload_interval (5 s by default). Every creation and revocation is
recorded in the audit log. docs/security.md describes the model.`,
	}
	var config string
	addStoreConfigFlag(cmd, &config)
	cmd.AddCommand(newTokenCreateCmd(g, &config), newTokenGenerateCmd(g), newTokenListCmd(g, &config), newTokenRevokeCmd(g, &config))
	return cmd
}

func newTokenCreateCmd(g *globals, config *string) *cobra.Command {
	var (
		name, secretFile string
		roles            []string
		expires          time.Duration
		tenant           string
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME --role ROLE [--role ROLE] [--expires DURATION] [--tenant TENANT] [--secret-file FILE]",
		Short: "Create a token and print it, once",
		Long: `Create a token and print it on stdout; it is not shown again. Give it to the
client as "Authorization: Bearer <token>", or as the password of HTTP basic
auth (any user name). A token with --tenant acts in that tenant only; one
without may pick any with the X-Scope-OrgID header (docs/security.md).

With --secret-file, the token is the one in FILE, made beforehand by "evident
token generate" and kept where the deployment keeps its secrets (a Kubernetes
Secret, a compose secret); nothing is printed. Running it again with the same
file, name and roles does nothing, so a deployment can run it at every start
(docs/deploy.md); a file whose token is stored under another name or roles,
or was revoked, is an error.`,
		Example: `  evident token create --name otel-collector --role ingest
  evident token create --name grafana --role read --expires 2160h
  TOKEN=$(evident token create --name ci-upload --role admin)
  evident token create --name team-a-collector --role ingest --tenant team-a
  evident token create --config evident.yaml --name collector --role ingest --secret-file /run/secrets/ingest-token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(name) == "" {
				return withCode(ExitUsage, errors.New("token create: --name is required: say what the token is for"))
			}
			r, err := auth.ParseRoles(roles)
			if err != nil {
				return withCode(ExitUsage, fmt.Errorf("token create: --role: %w", err))
			}
			if r == 0 {
				return withCode(ExitUsage, errors.New("token create: --role is required: ingest (send telemetry), read (read the API) or admin (everything)"))
			}
			var secret string
			var tok store.Token
			if secretFile != "" {
				raw, err := os.ReadFile(secretFile)
				if err != nil {
					return withCode(ExitUsage, fmt.Errorf("token create: --secret-file: %w", err))
				}
				secret = strings.TrimSpace(string(raw))
				tok, err = auth.TokenOf(secret, name, r, time.Now(), expires)
				if err != nil {
					return withCode(ExitUsage, fmt.Errorf("token create: --secret-file %s: %w", secretFile, err))
				}
			} else if secret, tok, err = auth.NewToken(name, r, time.Now(), expires); err != nil {
				return withCode(ExitUsage, fmt.Errorf("token create: %w", err))
			}
			if tenant != "" {
				if err := store.ValidateTenant(tenant); err != nil {
					return withCode(ExitUsage, fmt.Errorf("token create: --tenant: %w", err))
				}
				tok.Tenant = tenant
			}
			st, err := openSharedStore(cmd.Context(), g, *config, storeCreate)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			defer st.Close()
			in := ""
			if tenant != "" {
				in = ", tenant " + tenant
			}
			if secretFile != "" {
				created, err := provisionToken(cmd.Context(), st, tok)
				if err != nil {
					return withCode(ExitUsage, fmt.Errorf("token create: --secret-file %s: %w", secretFile, err))
				}
				if created {
					fmt.Fprintf(g.stderr, "evident: token %s (%s, roles %s%s) created from %s\n", tok.ID, tok.Name, r, in, secretFile)
				} else {
					fmt.Fprintf(g.stderr, "evident: token %s (%s, roles %s%s) is already stored\n", tok.ID, tok.Name, r, in)
				}
				return nil
			}
			if err := st.CreateToken(cmd.Context(), tok, cliActor()); err != nil {
				return withCode(ExitUsage, err)
			}
			fmt.Fprintln(g.stdout, secret)
			fmt.Fprintf(g.stderr, "evident: token %s (%s, roles %s%s) created; it is shown once: store it now\n", tok.ID, tok.Name, r, in)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "what the token is for (shown in lists and the audit log)")
	f.StringSliceVar(&roles, "role", nil, "ingest, read or admin (repeatable)")
	f.DurationVar(&expires, "expires", 0, "lifetime, e.g. 720h (default: never expires)")
	f.StringVar(&tenant, "tenant", "", "the only tenant the token acts in (default: any, picked with X-Scope-OrgID)")
	f.StringVar(&secretFile, "secret-file", "", `store the token read from FILE (made by "evident token generate") instead of a new one; again with the same file: nothing to do`)
	return cmd
}

// provisionToken stores tok, a token provisioned from a file, unless the
// store has it already with the same secret, name, roles and tenant
// (created is then false): deployments run it at every start, several
// replicas at once. A stored token of the same ID that differs, or was
// revoked, is an error: revoking and replacing it is the operator's call.
func provisionToken(ctx context.Context, st store.Store, tok store.Token) (created bool, err error) {
	stored := func() (bool, error) {
		ts, err := st.Tokens(ctx)
		if err != nil {
			return false, err
		}
		for _, t := range ts {
			if t.ID != tok.ID {
				continue
			}
			switch {
			case !bytes.Equal(t.SecretHash, tok.SecretHash):
				return true, fmt.Errorf("token %s is stored with another secret", t.ID)
			case !t.Revoked.IsZero():
				return true, fmt.Errorf("token %s (%s) was revoked: generate a new one", t.ID, t.Name)
			case t.Name != tok.Name || !slices.Equal(t.Roles, tok.Roles) || t.Tenant != tok.Tenant:
				return true, fmt.Errorf("token %s is stored as %s (roles %s, tenant %s): revoke it to store it otherwise",
					t.ID, t.Name, strings.Join(t.Roles, ","), cmp.Or(t.Tenant, "any"))
			}
			return true, nil
		}
		return false, nil
	}
	if found, err := stored(); found || err != nil {
		return false, err
	}
	if err := st.CreateToken(ctx, tok, cliActor()); err != nil {
		// Another replica may have stored it in the meantime.
		if found, serr := stored(); found && serr == nil {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

func newTokenGenerateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "generate",
		Short: "Print a new token without storing it, for token create --secret-file",
		Long: `Print a new random token on stdout and store nothing: keep it where the
deployment keeps its secrets, give it to the client, and have evident store it
with "evident token create --secret-file" (docs/deploy.md).`,
		Example: `  kubectl create secret generic evident-tokens --from-literal=ingest="$(evident token generate)"`,
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			token, err := auth.GenerateToken()
			if err != nil {
				return withCode(ExitUsage, err)
			}
			_, err = fmt.Fprintln(g.stdout, token)
			return err
		},
	}
}

func newTokenListCmd(g *globals, config *string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openSharedStore(cmd.Context(), g, *config, storeRead)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			defer st.Close()
			ts, err := st.Tokens(cmd.Context())
			if err != nil {
				return withCode(ExitUsage, err)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tROLES\tTENANT\tCREATED\tEXPIRES\tSTATUS")
			now := time.Now()
			for _, t := range ts {
				expires, status := "never", "active"
				if !t.Expires.IsZero() {
					expires = t.Expires.Format(time.RFC3339)
					if !now.Before(t.Expires) {
						status = "expired"
					}
				}
				if !t.Revoked.IsZero() {
					status = "revoked " + t.Revoked.Format(time.RFC3339)
				}
				tenant := cmp.Or(t.Tenant, "any")
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, strings.Join(t.Roles, ","), tenant, t.Created.Format(time.RFC3339), expires, status)
			}
			return tw.Flush()
		},
	}
}

func newTokenRevokeCmd(g *globals, config *string) *cobra.Command {
	return &cobra.Command{
		Use:     "revoke ID...",
		Short:   "Revoke tokens by ID (the part after evd_, as token list shows it)",
		Example: `  evident token revoke 3f9a0c1d2e4b5a69`,
		Args:    atLeastOne("the ID of each token to revoke (evident token list shows them)"),
		RunE: func(cmd *cobra.Command, ids []string) error {
			st, err := openSharedStore(cmd.Context(), g, *config, storeWrite)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			defer st.Close()
			var errs []error
			for _, id := range ids {
				if err := st.RevokeToken(cmd.Context(), id, time.Now(), cliActor()); err != nil {
					if errors.Is(err, store.ErrNotFound) {
						err = fmt.Errorf("no token %s (evident token list shows the IDs)", id)
					}
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(g.stderr, "evident: token %s revoked\n", id)
			}
			return withCode(ExitUsage, errors.Join(errs...))
		},
	}
}

func newAuditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check the audit log of evident serve",
		Long: `The audit log records every token creation and revocation, every change of the
findings (uploads, --findings at start) and every change of a VEX status
evident states: who, what and when. It is append-only and hash-chained: each
entry carries the SHA-256 of the one before and of its own content.`,
	}
	var config string
	addStoreConfigFlag(cmd, &config)
	cmd.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Walk the hash chain of the audit log and name the first bad entry",
		Long: `Walk the audit log of the store (under --data, or serve.store of --config)
from its first entry and check each: its sequence number follows the one
before, it carries the hash of the one before, and its content matches its
own hash. Prints the number of entries and
the hash of the last one (the head: keep it elsewhere to detect a later
truncation of the log). Exit status 1 names the first entry that fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openSharedStore(cmd.Context(), g, config, storeRead)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			defer st.Close()
			var chain store.AuditChain
			const page = 1000
			for after := int64(0); ; {
				es, err := st.AuditLog(cmd.Context(), after, page)
				if err != nil {
					return withCode(ExitUsage, err)
				}
				for _, e := range es {
					if err := chain.Next(e); err != nil {
						return withCode(ExitPolicy, fmt.Errorf("audit log is NOT intact: %w", err))
					}
					after = e.Seq
				}
				if len(es) < page {
					break
				}
			}
			n, head := chain.Checked()
			fmt.Fprintf(g.stdout, "audit log intact: %d entries, head %s\n", n, head)
			return nil
		},
	})
	return cmd
}
