package postgres

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/storetest"
)

func TestMigrations(t *testing.T) {
	all, err := store.LoadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	versions := func(t *testing.T, s *Store) []int {
		t.Helper()
		rows, err := s.pool.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var vs []int
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			vs = append(vs, v)
		}
		return vs
	}
	var want []int
	for _, m := range all {
		want = append(want, m.Version)
	}

	t.Run("ReopenIsNoOp", func(t *testing.T) {
		cfg := newDatabase(t)
		for range 2 {
			s, err := Open(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := versions(t, s); !cmp.Equal(got, want) {
				t.Errorf("schema_migrations = %v, want %v", got, want)
			}
			s.Close()
		}
	})

	t.Run("FutureVersionRefused", func(t *testing.T) {
		cfg := newDatabase(t)
		s, err := Open(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from_the_future', 0)`, len(all)+1); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s, err = Open(t.Context(), cfg)
		if err == nil {
			s.Close()
			t.Fatal("Open of a database from a newer evident succeeded")
		}
		if !errors.Is(err, store.ErrSchemaTooNew) {
			t.Errorf("Open = %v, want ErrSchemaTooNew", err)
		}
		if want := fmt.Sprintf("schema version %d, this evident knows up to %d: %s", len(all)+1, len(all), store.TooNewHint); !strings.Contains(err.Error(), want) {
			t.Errorf("Open = %v, want it to say %q", err, want)
		}
	})

	// OpenReader reads a schema as it is: an empty database and one an
	// older evident migrated are refused and left as they were, the
	// current one is read.
	t.Run("ReaderDoesNotMigrate", func(t *testing.T) {
		cfg := newDatabase(t)
		if s, err := OpenReader(t.Context(), cfg); !errors.Is(err, store.ErrSchemaBehind) {
			if err == nil {
				s.Close()
			}
			t.Fatalf("OpenReader of an empty database = %v, want ErrSchemaBehind", err)
		}
		old, err := open(t.Context(), cfg, all[:len(all)-1], false)
		if err != nil {
			t.Fatal(err)
		}
		defer old.Close()
		s, err := OpenReader(t.Context(), cfg)
		if err == nil {
			s.Close()
			t.Fatal("OpenReader of an older schema succeeded")
		}
		if want := fmt.Sprintf("schema version %d, this evident's is %d", len(all)-1, len(all)); !errors.Is(err, store.ErrSchemaBehind) || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenReader = %v, want ErrSchemaBehind saying %q", err, want)
		}
		if got := versions(t, old); !cmp.Equal(got, want[:len(want)-1]) {
			t.Errorf("schema_migrations after OpenReader = %v, want %v", got, want[:len(want)-1])
		}
		cur, err := Open(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer cur.Close()
		s, err = OpenReader(t.Context(), cfg)
		if err != nil {
			t.Fatalf("OpenReader of the current schema: %v", err)
		}
		defer s.Close()
		if _, err := s.Tokens(t.Context()); err != nil {
			t.Errorf("Tokens through OpenReader: %v", err)
		}
	})

	// The findings stored before their versions were kept per tenant
	// (migration 5) have a version, each tenant's.
	t.Run("FindingsVersionsOfStoredFindings", func(t *testing.T) {
		cfg := newDatabase(t)
		before := slices.IndexFunc(all, func(m store.Migration) bool { return m.Version == 5 })
		old, err := open(t.Context(), cfg, all[:before], false)
		if err != nil {
			t.Fatal(err)
		}
		for _, tenant := range []string{store.DefaultTenant, "other"} {
			st, err := old.ForTenant(tenant)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.PutFindings(t.Context(), store.FindingsUpdate{Time: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), Actor: "test", Source: "test", Findings: []findings.Finding{gatewayFinding()}}); err != nil {
				t.Fatal(err)
			}
		}
		old.Close()
		cur, err := Open(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer cur.Close()
		got, err := cur.FindingsVersions(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]int64{store.DefaultTenant: 1, "other": 1}, got); diff != "" {
			t.Errorf("FindingsVersions after the migration (-want +got):\n%s", diff)
		}
	})

	// A callee waiting in the store before callees had their own span
	// id (migration 8) still waits, and joins its caller.
	t.Run("CalleeStoredWithoutItsID", func(t *testing.T) {
		cfg := newDatabase(t)
		before := slices.IndexFunc(all, func(m store.Migration) bool { return m.Version == 8 })
		old, err := open(t.Context(), cfg, all[:before], false)
		if err != nil {
			t.Fatal(err)
		}
		parent := []byte{7, 0, 0, 0, 0, 0, 0, 1}
		at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
		if _, err := old.pool.Exec(t.Context(), `INSERT INTO join_callees (tenant, span_id, service, at) VALUES ($1, $2, 'orders', $3)`,
			store.DefaultTenant, parent, at.UnixNano()); err != nil {
			t.Fatal(err)
		}
		old.Close()
		cur, err := Open(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer cur.Close()
		_, owner, _, err := cur.ClaimPartition(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := cur.CheckpointPartition(t.Context(), 0, owner, 1, []Shard{{Tenant: store.DefaultTenant, State: []byte("gateway"), Pending: model.Pending{
			Callers: []model.PendingCaller{{SpanID: [8]byte(parent), Service: "gateway", Start: at, End: at}},
		}}}); err != nil {
			t.Fatal(err)
		}
		if joined, _, err := cur.Join(t.Context(), at, time.Hour); err != nil || joined != 1 {
			t.Errorf("Join after the migration = %d, %v; want 1", joined, err)
		}
	})

	// The alerts stored before their dedupe keys and observations had
	// columns (migration 10) are read with their details, by FiredAlerts
	// as by Alerts.
	t.Run("AlertsStoredBeforeDedupeKey", func(t *testing.T) {
		cfg := newDatabase(t)
		before := slices.IndexFunc(all, func(m store.Migration) bool { return m.Version == 10 })
		old, err := open(t.Context(), cfg, all[:before], false)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range storetest.AlertsBeforeDedupeKey {
			if _, err := old.pool.Exec(t.Context(), `INSERT INTO alerts (tenant, id, kind, severity, service, summary, details, time, received_at)
				VALUES ('default', $1, 'first_execution', 'high', 'shop', 'summary', $2, $3, NULL)`, a.ID, a.Details, a.Time.UnixNano()); err != nil {
				t.Fatal(err)
			}
		}
		old.Close()
		cur, err := Open(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer cur.Close()
		storetest.CheckAlertsBeforeDedupeKey(t, cur)
	})

	t.Run("FailedMigrationRollsBack", func(t *testing.T) {
		cfg := newDatabase(t)
		broken := append(append([]store.Migration(nil), all...),
			store.Migration{Version: len(all) + 1, Name: "9999_broken", SQL: `CREATE TABLE x (a INTEGER); THIS IS NOT SQL;`})
		if s, err := open(t.Context(), cfg, broken, false); err == nil {
			s.Close()
			t.Fatal("open with a broken migration succeeded")
		} else if !strings.Contains(err.Error(), "apply migration 9999_broken") {
			t.Errorf("open = %v, want it to name the migration", err)
		}
		// Nothing of the failed run stayed: the real migrations apply
		// from scratch, table x was never created.
		s, err := Open(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var x *string
		if err := s.pool.QueryRow(t.Context(), `SELECT to_regclass('x')::text`).Scan(&x); err != nil || x != nil {
			t.Errorf("table x: %v, %v; want it rolled back", x, err)
		}
		if got := versions(t, s); !cmp.Equal(got, want) {
			t.Errorf("schema_migrations = %v, want %v", got, want)
		}
	})
}
