package cli

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/evidentsec/evident/internal/alert"
	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/postgres"
	"github.com/evidentsec/evident/internal/store/sqlite"
)

// BenchmarkSeedAlerts seeds a router from a store holding as many alerts
// as it remembers (alert.Config.MaxKeys), as an engine does for each
// tenant when partitions of the ingest log are assigned to it, and as a
// tenant starts ("start"), and again on every later assignment
// ("rebalance"): what that costs is how long the seeding holds up the
// records of the partitions the engine applies.
func BenchmarkSeedAlerts(b *testing.B) {
	open := map[string]func(b *testing.B) store.Store{
		"sqlite": func(b *testing.B) store.Store {
			cfg := sqlite.DefaultConfig()
			cfg.Synchronous = "normal"
			st, err := sqlite.Open(b.Context(), b.TempDir(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			return st
		},
		"postgres": func(b *testing.B) store.Store {
			cfg := postgres.DefaultConfig()
			cfg.DSN = pgServer.DSN(b)
			st, err := postgres.Open(b.Context(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			return st
		},
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			st := open[backend](b)
			defer st.Close()
			cfg := alert.DefaultConfig()
			log := newAlertLog(st, slog.New(slog.DiscardHandler))
			now := time.Now()
			var g errgroup.Group
			g.SetLimit(8)
			for i := range cfg.MaxKeys {
				g.Go(func() error {
					a := alert.Alert{Alert: firstExecutionAlert(i, now.Add(-time.Duration(i)*time.Second))}
					a.ID = fmt.Sprintf("%016x", i)
					return log.Send(context.Background(), a)
				})
			}
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
			newRouter := func(b *testing.B) *alert.Router {
				r, err := alert.NewRouter(cfg, nil, alert.Deps{Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				return r
			}
			// A tenant's router starts, and is seeded.
			b.Run("start", func(b *testing.B) {
				for b.Loop() {
					if err := newRouter(b).Seed(b.Context(), log); err != nil {
						b.Fatal(err)
					}
				}
			})
			// Partitions are assigned again: the router of a tenant
			// seeded before is seeded again.
			b.Run("rebalance", func(b *testing.B) {
				r := newRouter(b)
				if err := r.Seed(b.Context(), log); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if err := r.Seed(b.Context(), log); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// firstExecutionAlert is the i-th first execution of a vulnerable
// function, fired at at, as the engine builds one.
func firstExecutionAlert(i int, at time.Time) detect.Alert {
	svc := fmt.Sprintf("svc-%d", i%500)
	return detect.Alert{
		Kind: detect.KindFirstExecution, Severity: detect.High, Service: svc,
		Summary:   fmt.Sprintf("GO-2026-%04d: vulnerable golang.org/x/text/unicode/norm.Form.String ran for the first time in %s", i%10000, svc),
		DedupeKey: fmt.Sprintf("first_execution|%s|GO-2026-%04d|%d", svc, i%10000, i),
		Time:      at, Observed: at.Add(-15 * time.Second), ReceivedAt: at.Add(-time.Millisecond),
		Evidence: detect.Evidence{Function: "golang.org/x/text/unicode/norm.Form.String"},
	}
}
