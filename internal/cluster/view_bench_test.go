package cluster

import (
	"context"
	"fmt"
	"testing"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/engine"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/store/postgres"
	"github.com/evidentsec/evident/internal/telemetry"
)

// BenchmarkViewSync measures an API replica's Sync over 50 tenants, each
// with one shard of 20 services: "every tenant" is a Sync that rebuilds
// every tenant's view (reads its shards and joins, merges them, and its
// engine re-assesses them), as every Sync did before the views had
// versions, and as the first Sync of a replica does; "no change" a Sync
// when no shard or join changed since the last, which now reads the
// versions and rebuilds nothing.
func BenchmarkViewSync(b *testing.B) {
	ctx := b.Context()
	pg := openStore(b)
	const tenants, services = 50, 20
	_, owner, _, err := pg.ClaimPartition(ctx, 0)
	if err != nil {
		b.Fatal(err)
	}
	var shards []postgres.Shard
	engines := map[string]*engine.Engine{}
	for i := range tenants {
		tenant := fmt.Sprintf("t%02d", i)
		m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
		for s := range services {
			m.AddSpans([]telemetry.Span{span(fmt.Sprintf("svc%02d", s), telemetry.SpanKindServer, byte(s+1), 0, telemetry.Attrs{})})
		}
		state, err := m.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		shards = append(shards, postgres.Shard{Tenant: tenant, State: state})
		em := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
		e, err := engine.New(engine.DefaultConfig(), engine.Deps{Store: pg, Model: em})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Start(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { e.Shutdown(context.Background()) })
		engines[tenant] = e
	}
	if err := pg.CheckpointPartition(ctx, 0, owner, 1, shards); err != nil {
		b.Fatal(err)
	}
	newView := func() *View {
		v, err := NewView(DefaultConfig(), ViewDeps{
			Tenants: pg.ShardTenants,
			Read: func(ctx context.Context, tenant string) ([][]byte, model.Joins, error) {
				st, err := pg.ForTenant(tenant)
				if err != nil {
					return nil, model.Joins{}, err
				}
				return st.View(ctx)
			},
			ViewVersions:     pg.ViewVersions,
			Engine:           func(_ context.Context, tenant string) (*engine.Engine, error) { return engines[tenant], nil },
			FindingsVersions: pg.FindingsVersions,
			Engines:          func() map[string]*engine.Engine { return engines },
			Lead:             func(context.Context) (bool, error) { return false, nil },
			Leader:           &Leader{},
		})
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	v := newView()
	if err := v.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	for _, every := range []bool{true, false} {
		name := "no change"
		if every {
			name = "every tenant"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if every {
					// What the view was given is forgotten: every
					// tenant's is built again.
					v.mu.Lock()
					v.built = nil
					v.mu.Unlock()
				}
				if err := v.Sync(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
