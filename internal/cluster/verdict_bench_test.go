package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/engine"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/telemetry"
)

// textFinding is GO-2022-1059 (golang.org/x/text/language.Parse) in svc.
func textFinding(svc string) findings.Finding {
	return findings.Finding{
		Service:       svc,
		Package:       findings.Package{PURL: "pkg:golang/golang.org/x/text@v0.3.7", Ecosystem: "Go", Name: "golang.org/x/text", Version: "v0.3.7"},
		Vulnerability: findings.Vulnerability{ID: "GO-2022-1059"},
		Symbols:       []string{"golang.org/x/text/language.Parse"},
	}
}

// parseProfile is a CPU profile of svc in which
// golang.org/x/text/language.Parse runs.
func parseProfile(svc string, at time.Time) *telemetry.ProfileBatch {
	return &telemetry.ProfileBatch{
		Service: svc, SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: at, Duration: 10 * time.Second,
		Locations: [][]attribution.Frame{
			{{Function: "golang.org/x/text/language.Parse", File: "/home/u/go/pkg/mod/golang.org/x/text@v0.3.7/language/parse.go"}},
			{{Function: "main.handle", File: "/src/app/main.go"}},
		},
		Samples: []telemetry.Sample{{Locations: []int32{0, 1}, Count: 5, Value: 50_000_000}},
	}
}

// verdictOf is the verdict of svc's finding in eng's current view.
func verdictOf(eng *engine.Engine, svc string) assess.Verdict {
	for _, a := range eng.Assessments() {
		if a.Finding.Service == svc {
			return a.Reachability.Verdict
		}
	}
	return ""
}

// BenchmarkReceiptToVerdict runs BenchmarkReceiptToCheckpoint's steady
// traffic through 2 engines and an API replica (a View and its tenant's
// engine) with the default intervals (checkpoint_interval 5 s,
// view_interval 2 s). Every 1.15 s it writes a profile in which the
// vulnerable function of one more service's finding runs, and takes the
// time from that write (the receipt) to the moment the replica's engine
// shows the service's verdict as executed. It reports the p50 and p99 of
// those times over 24 verdict changes, and the receipt-to-checkpoint p99
// of the same run. Run it with -benchtime=1x.
func BenchmarkReceiptToVerdict(b *testing.B) {
	const (
		changes = 24
		// Out of step with both intervals.
		every = 1150 * time.Millisecond
	)
	svcs := make([]string, changes)
	fs := make([]findings.Finding, changes)
	for i := range svcs {
		svcs[i] = fmt.Sprintf("vulnerable-%02d", i)
		fs[i] = textFinding(svcs[i])
	}
	for range b.N {
		ctx := context.Background()
		cfg := DefaultConfig()
		s := startSteady(b, cfg, fs)
		// The API replica: the tenant's engine assesses the merged view.
		var leader Leader
		eng, err := engine.New(engine.DefaultConfig(), engine.Deps{
			Store: leader.Store(s.pg), Model: model.New(model.DefaultConfig(), attribution.New(attribution.Config{})),
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := eng.Start(ctx); err != nil {
			b.Fatal(err)
		}
		v, err := NewView(cfg, ViewDeps{
			Versions: s.pg.ViewVersions,
			Read: func(ctx context.Context, tenant string) ([][]byte, model.Joins, error) {
				st, err := s.pg.ForTenant(tenant)
				if err != nil {
					return nil, model.Joins{}, err
				}
				return st.View(ctx)
			},
			Engine:           func(context.Context, string) (*engine.Engine, error) { return eng, nil },
			FindingsVersions: s.pg.FindingsVersions,
			Engines:          func() map[string]*engine.Engine { return map[string]*engine.Engine{store.DefaultTenant: eng} },
			Lead:             func(ctx context.Context) (bool, error) { return s.pg.TryLock(ctx, "evident lead ") },
			Leader:           &leader, Logger: slog.New(slog.DiscardHandler),
			SeedAlerts: skipSeed,
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := v.Start(ctx); err != nil {
			b.Fatal(err)
		}
		for _, svc := range svcs {
			if got := verdictOf(eng, svc); got == assess.Executed {
				b.Fatalf("verdict of %s before its profile = %s", svc, got)
			}
		}

		var wg sync.WaitGroup
		lat := make([]time.Duration, changes)
		sent, next := 0, time.Now().Add(every)
		s.run(b, changes*every+time.Second, func(int) {
			if sent == changes || time.Now().Before(next) {
				return
			}
			k := sent
			sent, next = sent+1, next.Add(every)
			receipt := time.Now()
			if err := s.p.Profiles().Consume(ctx, []*telemetry.ProfileBatch{parseProfile(svcs[k], receipt)}); err != nil {
				b.Fatal(err)
			}
			wg.Go(func() {
				for deadline := receipt.Add(time.Minute); verdictOf(eng, svcs[k]) != assess.Executed; time.Sleep(5 * time.Millisecond) {
					if time.Now().After(deadline) {
						return // counted as missing below
					}
				}
				lat[k] = time.Since(receipt)
			})
		})
		wg.Wait()
		if sent < changes {
			b.Fatalf("wrote %d of %d profiles: the traffic fell behind", sent, changes)
		}
		for k, d := range lat {
			if d == 0 {
				b.Fatalf("the verdict of %s did not change within a minute", svcs[k])
			}
		}
		slices.Sort(lat)
		b.ReportMetric(lat[len(lat)/2].Seconds(), "p50-s")
		b.ReportMetric(lat[len(lat)*99/100].Seconds(), "p99-s")
		b.ReportMetric(float64(changes), "changes")
		if cp := s.checkpointLatencies(); len(cp) > 0 {
			b.ReportMetric(cp[len(cp)*99/100].Seconds(), "checkpoint-p99-s")
		}
		v.Shutdown(ctx)
		eng.Shutdown(ctx)
		s.close()
	}
}
