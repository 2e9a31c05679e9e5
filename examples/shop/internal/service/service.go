// Package service runs one shop service process: logging, telemetry, the
// HTTP listener (when the service has one) and a graceful stop on SIGINT or
// SIGTERM that flushes spans and the CPU profile.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"example.com/shop/internal/telemetry"
)

// Env returns the environment variable key, or def when it is unset.
func Env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// Main runs a service until SIGINT/SIGTERM and exits with its status. setup
// is called after telemetry is installed (so that it can create tracers) and
// returns the HTTP handler to serve on addr, or nil for a service with no
// inbound traffic, plus a background job (or nil) that runs until ctx ends.
func Main(name, addr string, setup func(ctx context.Context, logger *slog.Logger) (http.Handler, func(context.Context) error, error)) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("service", name)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, name, addr, logger, setup); err != nil {
		logger.Error("exit", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, name, addr string, logger *slog.Logger, setup func(context.Context, *slog.Logger) (http.Handler, func(context.Context) error, error)) (err error) {
	shutdown, err := telemetry.Start(ctx, name, logger)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = errors.Join(err, shutdown(sctx))
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h, job, err := setup(ctx, logger)
	if err != nil {
		return err
	}
	// Whichever part ends first (a signal, a failed job, a failed listener)
	// cancels ctx and so stops the others; every error is kept.
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	if job != nil {
		wg.Go(func() {
			errc <- job(ctx)
			cancel()
		})
	}
	if h != nil {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		wg.Go(func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", addr, err)
			}
			cancel()
		})
		wg.Go(func() {
			<-ctx.Done()
			sctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
			defer stop()
			errc <- srv.Shutdown(sctx)
		})
		logger.Info("listening", "addr", ln.Addr().String())
	}
	<-ctx.Done()
	wg.Wait()
	close(errc)
	var errs []error
	for e := range errc {
		errs = append(errs, e)
	}
	logger.Info("stopped")
	return errors.Join(errs...)
}
