package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/store"
)

// tenant opens the store of tenant id beside s.
func tenant(t *testing.T, s store.Store, id string) store.Store {
	t.Helper()
	ts, err := s.Tenant(id)
	if err != nil {
		t.Fatalf("Tenant(%q): %v", id, err)
	}
	return ts
}

// testTenantIsolation fills two tenants with the same keys and different
// rows, and checks that every read of one returns its own rows only, and
// that a checkpoint of one leaves the other's log alone.
func testTenantIsolation(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	ctx := t.Context()
	a, b := tenant(t, s, "team-a"), tenant(t, s, "team-b")

	la := appendAll(t, a, []batch{{Kind: store.BatchSpans, Payload: "a1"}, {Kind: store.BatchProfiles, Payload: "a2"}})
	lb := appendAll(t, b, []batch{{Kind: store.BatchSpans, Payload: "b1"}})
	if diff := cmp.Diff(la, replay(t, a, 0)); diff != "" {
		t.Errorf("tenant a replay (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(lb, replay(t, b, 0)); diff != "" {
		t.Errorf("tenant b replay (-want +got):\n%s", diff)
	}
	if got := replay(t, s, 0); len(got) != 0 {
		t.Errorf("default tenant replays %v, want nothing", got)
	}
	// b's batch has the highest seq; a checkpoint of a at it must not
	// drop b's batch.
	if err := a.Checkpoint(ctx, lb[0].Seq, []byte("state a")); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(lb, replay(t, b, 0)); diff != "" {
		t.Errorf("tenant b replay after a's checkpoint (-want +got):\n%s", diff)
	}
	if seq, state, err := b.LoadCheckpoint(ctx); err != nil || seq != 0 || state != nil {
		t.Errorf("tenant b checkpoint = %d, %q, %v; want none", seq, state, err)
	}
	if seq, state, err := a.LoadCheckpoint(ctx); err != nil || seq != lb[0].Seq || string(state) != "state a" {
		t.Errorf("tenant a checkpoint = %d, %q, %v; want %d, %q", seq, state, err, lb[0].Seq, "state a")
	}

	// The same finding key in both, with different contents.
	fa := finding("shop", "pkg:golang/example.com/lib", "GO-1", "high")
	fb := finding("shop", "pkg:golang/example.com/lib", "GO-1", "low")
	fb2 := finding("billing", "pkg:golang/example.com/other", "GO-2", "low")
	if err := a.PutFindings(ctx, replaceAll(fa)); err != nil {
		t.Fatal(err)
	}
	if err := b.PutFindings(ctx, replaceAll(fb, fb2)); err != nil {
		t.Fatal(err)
	}
	// Replacing all of a's findings, or a's findings of a service b has,
	// leaves b's alone.
	if err := a.PutFindings(ctx, replaceServices([]string{"billing"})); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]findings.Finding{fa}, mustFindings(t, a)); diff != "" {
		t.Errorf("tenant a findings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]findings.Finding{fb2, fb}, mustFindings(t, b)); diff != "" {
		t.Errorf("tenant b findings (-want +got):\n%s", diff)
	}
	if got := mustFindings(t, s); len(got) != 0 {
		t.Errorf("default tenant findings %v, want none", got)
	}

	vc := store.VerdictChange{Time: t0, Service: "shop", VulnID: "GO-1", PURL: fa.Package.PURL, From: assess.Unknown, To: assess.Executed, Reason: "a"}
	if err := a.AppendVerdicts(ctx, []store.VerdictChange{vc}); err != nil {
		t.Fatal(err)
	}
	if h, err := b.VerdictHistory(ctx, "shop", "GO-1", 0); err != nil || len(h) != 0 {
		t.Errorf("tenant b verdict history = %v, %v; want none", h, err)
	}
	if h, err := a.VerdictHistory(ctx, "shop", "GO-1", 0); err != nil || len(h) != 1 {
		t.Errorf("tenant a verdict history = %v, %v; want 1 change", h, err)
	}

	// The same alert ID in both: each keeps its own.
	aa, ab := alert("x", "exploit", "shop", 1), alert("x", "exploit", "billing", 2)
	aa.DedupeKey, ab.DedupeKey = "exploit|shop", "exploit|billing"
	if err := a.PutAlert(ctx, aa); err != nil {
		t.Fatal(err)
	}
	if err := b.PutAlert(ctx, ab); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		s    store.Store
		want []store.Alert
	}{{a, []store.Alert{aa}}, {b, []store.Alert{ab}}, {s, nil}} {
		for _, q := range []store.AlertQuery{{}, {Service: "shop"}, {Service: "billing"}, {Kind: "exploit"}, {Since: t0}} {
			got, err := c.s.Alerts(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var want []store.Alert
			for _, w := range c.want {
				if q.Service == "" || q.Service == w.Service {
					want = append(want, w)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("alerts %+v (-want +got):\n%s", q, diff)
			}
		}
		got, err := c.s.FiredAlerts(ctx, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		var want []store.FiredAlert
		for _, w := range c.want {
			want = append(want, store.FiredAlert{DedupeKey: w.DedupeKey, Time: w.Time})
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("fired alerts (-want +got):\n%s", diff)
		}
	}

	// Audit entries about a tenant's data name it.
	es := auditLog(t, s)
	if len(es) == 0 || es[len(es)-1].Target != "team-a/services billing" {
		t.Errorf("audit log %+v, want it to end with team-a's findings of billing", es)
	}

	// Retain is the deployment's: it reaches every tenant.
	n, err := s.Retain(ctx, t0.Add(365*24*time.Hour), store.Retention{Alerts: time.Hour, VerdictHistory: time.Hour})
	if err != nil || n != 3 {
		t.Errorf("Retain = %d, %v; want 3 records of both tenants", n, err)
	}
}

func testTenantRejectsBadID(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	for _, id := range []string{"", ".", "..", "a/b", "a|b", "a b", "é", string(make([]byte, 151))} {
		if _, err := s.Tenant(id); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Tenant(%q) = %v, want ErrInvalid", id, err)
		}
	}
	for _, id := range []string{"default", "team-a", "Org_1.prod", "a!*'()"} {
		if _, err := s.Tenant(id); err != nil {
			t.Errorf("Tenant(%q) = %v", id, err)
		}
	}
}

// testTenantEmpty writes one kind of row into a tenant of its own for
// each case, and checks that Empty sees it, before and after the store
// is opened again (a restart, whose tenants are built from the store),
// and that no other tenant looks any less empty for it.
func testTenantEmpty(t *testing.T, open Opener) {
	ctx := t.Context()
	tests := []struct {
		tenant string
		write  func(s store.Store) error
	}{
		{"batch", func(s store.Store) error { _, err := s.AppendBatch(ctx, store.BatchSpans, []byte("x")); return err }},
		{"checkpoint", func(s store.Store) error { return s.Checkpoint(ctx, 0, []byte("state")) }},
		{"findings", func(s store.Store) error {
			return s.PutFindings(ctx, replaceAll(finding("shop", "pkg:golang/example.com/lib", "GO-1", "high")))
		}},
		{"verdicts", func(s store.Store) error {
			return s.AppendVerdicts(ctx, []store.VerdictChange{{Time: t0, Service: "shop", VulnID: "GO-1", PURL: "pkg:golang/example.com/lib",
				From: assess.Unknown, To: assess.Executed}})
		}},
		{"alert", func(s store.Store) error { return s.PutAlert(ctx, alert("x", "exploit", "shop", 1)) }},
	}
	empty := func(t *testing.T, s store.Store, id string) bool {
		t.Helper()
		got, err := tenant(t, s, id).Empty(ctx)
		if err != nil {
			t.Fatalf("Empty of %q: %v", id, err)
		}
		return got
	}
	// Nobody but the tenant of each case, nor the default tenant, nor a
	// tenant whose name only starts like one, holds anything.
	others := []string{store.DefaultTenant, "never", "batc", "alert-2"}

	s, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		if !empty(t, s, tt.tenant) {
			t.Errorf("tenant %q is not empty before its write", tt.tenant)
		}
		if err := tt.write(tenant(t, s, tt.tenant)); err != nil {
			t.Fatalf("tenant %q: %v", tt.tenant, err)
		}
	}
	// Tokens and the audit log are the deployment's.
	if err := s.CreateToken(ctx, token("t1", t0), "test"); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, s store.Store) {
		for _, tt := range tests {
			if empty(t, s, tt.tenant) {
				t.Errorf("tenant %q is empty after its %s was written", tt.tenant, tt.tenant)
			}
		}
		for _, id := range others {
			if !empty(t, s, id) {
				t.Errorf("tenant %q is not empty, and nothing of it was written", id)
			}
		}
	}
	t.Run("Open", func(t *testing.T) { check(t, s) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	t.Run("Reopened", func(t *testing.T) { check(t, mustOpen(t, open)) })
}
