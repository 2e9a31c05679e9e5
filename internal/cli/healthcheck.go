package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/evidentsec/evident/internal/tlsconfig"
)

// healthcheckUnhealthy is the exit status of a failed check: Docker's
// HEALTHCHECK reads 1 as unhealthy and reserves 2.
const healthcheckUnhealthy = 1

func newHealthcheckCmd(g *globals) *cobra.Command {
	var (
		url      string
		timeout  time.Duration
		tlsFlags tlsconfig.ClientConfig
	)
	cmd := &cobra.Command{
		Use:   "healthcheck [--url URL]",
		Short: "Ask a running evident serve's /healthz, for container health checks",
		Long: `GET the /healthz of a running evident serve and exit with status 0 if it
answers 200, 1 otherwise: the HEALTHCHECK of an image that has no shell nor
curl (docs/deploy.md). /healthz needs no credentials. An API listener with TLS
is asked over https, with --ca-file for a private CA and --server-name for the
name in its certificate.`,
		Example: `  evident healthcheck
  evident healthcheck --url https://127.0.0.1:8080/healthz --ca-file /etc/evident/tls/ca.crt --server-name evident-api`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				// http.Client would take it for no limit at all.
				return withCode(ExitUsage, fmt.Errorf("--timeout %s: want a positive duration", timeout))
			}
			tc, err := tlsconfig.NewClient(tlsFlags, "healthcheck", slog.New(slog.NewTextHandler(g.stderr, nil)))
			if err != nil {
				return withCode(ExitUsage, err)
			}
			client := &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: tc, Proxy: nil}}
			defer client.CloseIdleConnections()
			if err := healthcheck(cmd.Context(), client, url); err != nil {
				return withCode(healthcheckUnhealthy, err)
			}
			_, err = fmt.Fprintln(g.stdout, "ok")
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&url, "url", "http://127.0.0.1:8080/healthz", "the /healthz to ask")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "the longest wait for the answer")
	f.StringVar(&tlsFlags.CAFile, "ca-file", "", "PEM file of the CAs that sign the server's certificate, instead of the system's roots")
	f.StringVar(&tlsFlags.ServerName, "server-name", "", "the name checked in the server's certificate, if not the URL's host")
	return cmd
}

// healthcheck asks url with client and says why it is not healthy.
func healthcheck(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck %s: %s: %q", url, resp.Status, body)
	}
	return nil
}
