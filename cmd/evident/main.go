// Command evident turns the traces and profiles a team already collects into
// evidence-backed vulnerability priorities. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/evidentsec/evident/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
