package postgres

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/store"
)

// TestCluster checkpoints partitions of two tenants with pending calls,
// joins them across partitions (and never across tenants), reads the
// view, refuses a stale checkpoint (behind the stored offset, or of an
// engine whose partition another claimed since) with its calls, and
// expires calls never joined.
func TestCluster(t *testing.T) {
	ctx := t.Context()
	st, err := Open(ctx, newDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	other, err := st.ForTenant("other")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	id := func(b byte) [8]byte { return [8]byte{7, 0, 0, 0, 0, 0, 0, b} }
	caller := func(b byte, svc, host string, errd bool) model.PendingCaller {
		return model.PendingCaller{SpanID: id(b), Service: svc, Host: host, Error: errd, Start: t0.Add(time.Duration(b) * time.Second), End: t0.Add(time.Duration(b)*time.Second + time.Millisecond)}
	}
	callee := func(b byte, svc string) model.PendingCallee {
		return model.PendingCallee{ParentSpanID: id(b), Service: svc, At: t0}
	}

	// viewVersions checks which tenants' ViewVersions changed since the
	// last call.
	var lastViews map[string]string
	viewVersions := func(what string, changed ...string) {
		t.Helper()
		v, err := st.ViewVersions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for tenant := range v {
			if _, ok := lastViews[tenant]; !ok || v[tenant] != lastViews[tenant] {
				got = append(got, tenant)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, changed) {
			t.Errorf("%s: the view versions of %v changed (%v, then %v), want those of %v", what, got, lastViews, v, changed)
		}
		lastViews = v
	}

	next, o0, loaded, err := st.ClaimPartition(ctx, 0)
	if err != nil || next != -1 || len(loaded) != 0 {
		t.Fatalf("ClaimPartition of a new partition = %d %v %v, want -1, none", next, loaded, err)
	}
	_, o1, _, err := st.ClaimPartition(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Partition 0 has gateway's calls; partition 1 orders' answers, and
	// a call of tenant other with span id 1, which must not join
	// tenant default's. orders receives a message too: its process span
	// joins its own receive span (Own, not Linked), which waits for the
	// rest of the batch.
	receive := caller(20, "orders", "", false)
	receive.Producer = true
	if err := st.CheckpointPartition(ctx, 0, o0, 10, []Shard{{Tenant: store.DefaultTenant, State: []byte("gateway"), Pending: model.Pending{
		Callers: []model.PendingCaller{caller(1, "gateway", "orders.internal", false), caller(2, "gateway", "orders.internal", true), caller(3, "gateway", "untraced.example.com", false)},
	}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.CheckpointPartition(ctx, 1, o1, 5, []Shard{
		{Tenant: store.DefaultTenant, State: []byte("orders"), Pending: model.Pending{
			Callers: []model.PendingCaller{receive},
			Callees: []model.PendingCallee{callee(1, "orders"), callee(2, "orders"), callee(9, "orders"), callee(20, "orders")},
		}},
		{Tenant: "other", State: []byte("other orders"), Pending: model.Pending{Callers: []model.PendingCaller{caller(4, "x", "h", false)}, Callees: []model.PendingCallee{callee(1, "y")}}},
	}); err != nil {
		t.Fatal(err)
	}
	// The same calls handed over again (a record applied twice) count
	// once.
	if err := st.CheckpointPartition(ctx, 1, o1, 5, []Shard{{Tenant: store.DefaultTenant, State: []byte("orders"), Pending: model.Pending{Callees: []model.PendingCallee{callee(1, "orders")}}}}); err != nil {
		t.Fatal(err)
	}
	viewVersions("the first checkpoints", store.DefaultTenant, "other")
	if err := st.CheckpointPartition(ctx, 1, o1, 4, nil); !errors.Is(err, ErrStaleCheckpoint) {
		t.Fatalf("checkpoint behind the stored offset = %v, want ErrStaleCheckpoint", err)
	}
	// Another engine claims partition 1; the one that had it, paused,
	// does not know and checkpoints records the new owner has not read
	// yet, ahead of its offset, with the call of span 3. Refused, and the
	// call does not reach the join: the new owner hands it over when it
	// applies the record, and it would be joined twice.
	if _, o, _, err := st.ClaimPartition(ctx, 1); err != nil || o == o1 {
		t.Fatalf("second ClaimPartition = owner %d, %v; want other than %d", o, err, o1)
	}
	if err := st.CheckpointPartition(ctx, 1, o1, 7, []Shard{{Tenant: store.DefaultTenant, State: []byte("stale orders"), Pending: model.Pending{
		Callees: []model.PendingCallee{callee(3, "orders")},
	}}}); !errors.Is(err, ErrStaleCheckpoint) {
		t.Fatalf("checkpoint of the previous owner = %v, want ErrStaleCheckpoint", err)
	}
	viewVersions("refused checkpoints")
	joined, expired, err := st.Join(ctx, t0, time.Hour)
	if err != nil || joined != 3 || expired != 0 {
		t.Fatalf("Join = %d joined, %d expired, %v; want 3, 0 (not the stale checkpoint's call)", joined, expired, err)
	}
	viewVersions("a join of tenant default's calls", store.DefaultTenant)
	if _, _, err := st.Join(ctx, t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	viewVersions("a join with nothing to join")
	states, joins, err := st.View(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantJoins := model.Joins{
		Edges:    []model.Edge{{From: "gateway", To: "orders", Calls: 2, Errors: 1, First: t0.Add(time.Second), Last: t0.Add(2*time.Second + time.Millisecond)}},
		Linked:   map[string]int64{"orders": 2},
		Own:      map[string]int64{"orders": 1},
		Resolved: []model.Resolution{{Service: "gateway", Host: "orders.internal", Callee: "orders", Calls: 2}},
		// orders' span 9 waits for its caller.
		Pending:  map[string]int64{"orders": 1},
		Unlinked: map[string]int64{},
	}
	if diff := cmp.Diff(wantJoins, joins); diff != "" {
		t.Errorf("joins (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]byte{[]byte("gateway"), []byte("orders")}, states); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	// Joins add up across runs.
	if err := st.CheckpointPartition(ctx, 0, o0, 12, []Shard{{Tenant: store.DefaultTenant, State: []byte("gateway 2"), Pending: model.Pending{
		Callers: []model.PendingCaller{caller(9, "gateway", "orders.internal", false)},
	}}}); err != nil {
		t.Fatal(err)
	}
	viewVersions("a checkpoint of tenant default", store.DefaultTenant)
	if joined, _, err := st.Join(ctx, t0, time.Hour); err != nil || joined != 1 {
		t.Fatalf("second Join = %d, %v; want 1", joined, err)
	}
	viewVersions("the second join", store.DefaultTenant)
	_, joins, _ = st.View(ctx)
	if joins.Edges[0].Calls != 3 || joins.Linked["orders"] != 3 || joins.Resolved[0].Calls != 3 {
		t.Errorf("joins after the second run = %+v, want 3 calls", joins)
	}
	if next, _, states, err := st.ClaimPartition(ctx, 1); err != nil || next != 5 || string(states["other"]) != "other orders" || string(states[store.DefaultTenant]) != "orders" {
		t.Errorf("ClaimPartition(1) = %d %q %v", next, states, err)
	}
	// What never found its other side expires after the window: the
	// untraced host's call, orders' receive span and both of tenant
	// other's.
	if _, expired, err := st.Join(ctx, time.Now().Add(time.Hour), time.Minute); err != nil || expired != 4 {
		t.Errorf("expiring Join = %d expired, %v; want 4", expired, err)
	}
	viewVersions("the expiring join", store.DefaultTenant, "other")
	if _, joins, _ := other.View(ctx); len(joins.Edges) != 0 || len(joins.Linked) != 0 || joins.Unlinked["y"] != 1 || len(joins.Pending) != 0 {
		t.Errorf("tenant other's joins = %+v, want none, and y's span unlinked", joins)
	}

	// Each tenant's findings have a version of their own: an upload
	// changes its tenant's alone, a replacement by nothing of nothing
	// changes none.
	versions := func() map[string]int64 {
		t.Helper()
		v, err := st.FindingsVersions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	put := func(s *Store, services []string, fs ...findings.Finding) {
		t.Helper()
		if err := s.PutFindings(ctx, store.FindingsUpdate{Time: t0, Actor: "test", Source: "test", Services: services, Findings: fs}); err != nil {
			t.Fatal(err)
		}
	}
	gateway := gatewayFinding()
	put(st, nil, gateway)
	v0 := versions()
	put(other, nil, gateway)
	v1 := versions()
	if v1["other"] == v0["other"] || v1[store.DefaultTenant] != v0[store.DefaultTenant] {
		t.Errorf("findings versions %v, then %v after an upload of tenant other: want other's alone changed", v0, v1)
	}
	put(other, []string{"orders"})
	if v2 := versions(); v2["other"] != v1["other"] {
		t.Errorf("findings versions %v, then %v after a replacement of no findings by none: want none changed", v1, v2)
	}
	put(other, []string{"gateway"})
	if v3 := versions(); v3["other"] == v1["other"] || v3[store.DefaultTenant] != v1[store.DefaultTenant] {
		t.Errorf("findings versions %v, then %v after tenant other's findings were removed: want other's alone changed", v1, v3)
	}
}

// gatewayFinding is a finding of service gateway.
func gatewayFinding() findings.Finding {
	return findings.Finding{Service: "gateway", Package: findings.Package{PURL: "pkg:golang/example.com/lib@v1.0.0", Ecosystem: "Go", Name: "example.com/lib", Version: "v1.0.0"},
		Vulnerability: findings.Vulnerability{ID: "GO-2026-0001"}}
}

// TestEmptySeesShards: a tenant whose only rows are the shards an engine
// checkpointed (the scaled-out deployment, whose API replicas serve
// them) is not empty.
func TestEmptySeesShards(t *testing.T) {
	ctx := t.Context()
	st, err := Open(ctx, newDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	_, owner, _, err := st.ClaimPartition(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CheckpointPartition(ctx, 0, owner, 1, []Shard{{Tenant: "sharded", State: []byte("state")}}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"sharded": false, "never": true, store.DefaultTenant: true} {
		ts, err := st.ForTenant(id)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ts.Empty(ctx); err != nil || got != want {
			t.Errorf("Empty of %q = %v, %v; want %v", id, got, err, want)
		}
	}
}

// TestJoinChildrenOfOneParent joins every span of a service with the
// same parent: the SERVER spans of a retried or fanned-out CLIENT span,
// the process spans of a batch under its receive span. A child handed
// over again (a record applied twice, a checkpoint retried) counts once,
// before its join or after; those whose parent never came are each
// unlinked.
func TestJoinChildrenOfOneParent(t *testing.T) {
	ctx := t.Context()
	st, err := Open(ctx, newDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	parent := [8]byte{7, 0, 0, 0, 0, 0, 0, 1}
	children := func(svc string, ids ...byte) []model.PendingCallee {
		var cs []model.PendingCallee
		for _, b := range ids {
			cs = append(cs, model.PendingCallee{SpanID: [8]byte{9, 0, 0, 0, 0, 0, 0, b}, ParentSpanID: parent, Service: svc, At: t0})
		}
		return cs
	}
	client := model.PendingCaller{SpanID: parent, Service: "gateway", Start: t0, End: t0.Add(time.Millisecond)}
	receive := model.PendingCaller{SpanID: parent, Service: "orders", Producer: true, Start: t0, End: t0.Add(time.Millisecond)}
	tests := []struct {
		name        string
		checkpoints []model.Pending // of partition 0, one after the other
		// late is how long after t0 the join after each checkpoint
		// runs, with a window of an hour.
		late time.Duration
		want model.Joins
	}{
		{
			name:        "three SERVER spans of one CLIENT span",
			checkpoints: []model.Pending{{Callers: []model.PendingCaller{client}, Callees: children("orders", 1, 2, 3)}},
			want: model.Joins{Edges: []model.Edge{{From: "gateway", To: "orders", Calls: 3, First: t0, Last: t0.Add(time.Millisecond)}},
				Linked: map[string]int64{"orders": 3}, Own: map[string]int64{}, Pending: map[string]int64{}, Unlinked: map[string]int64{}},
		},
		{
			name:        "three process spans of one receive span",
			checkpoints: []model.Pending{{Callers: []model.PendingCaller{receive}, Callees: children("orders", 1, 2, 3)}},
			want:        model.Joins{Linked: map[string]int64{}, Own: map[string]int64{"orders": 3}, Pending: map[string]int64{}, Unlinked: map[string]int64{}},
		},
		{
			name: "children handed over twice",
			checkpoints: []model.Pending{
				{Callees: children("orders", 1, 2)},
				{Callees: children("orders", 1, 2, 3)},
				{Callers: []model.PendingCaller{client}, Callees: children("orders", 3)},
			},
			want: model.Joins{Edges: []model.Edge{{From: "gateway", To: "orders", Calls: 3, First: t0, Last: t0.Add(time.Millisecond)}},
				Linked: map[string]int64{"orders": 3}, Own: map[string]int64{}, Pending: map[string]int64{}, Unlinked: map[string]int64{}},
		},
		{
			// A checkpoint whose commit the engine did not hear of
			// (RestorePending) hands the same calls over again, after
			// a join, from another engine, took them.
			name: "a child and its CLIENT span handed over again after their join",
			checkpoints: []model.Pending{
				{Callers: []model.PendingCaller{client}, Callees: children("orders", 1)},
				{Callers: []model.PendingCaller{client}, Callees: children("orders", 1)},
			},
			want: model.Joins{Edges: []model.Edge{{From: "gateway", To: "orders", Calls: 1, First: t0, Last: t0.Add(time.Millisecond)}},
				Linked: map[string]int64{"orders": 1}, Own: map[string]int64{}, Pending: map[string]int64{}, Unlinked: map[string]int64{}},
		},
		{
			name: "process spans handed over again after their join",
			checkpoints: []model.Pending{
				{Callers: []model.PendingCaller{receive}, Callees: children("orders", 1, 2)},
				{Callees: children("orders", 1, 2)},
			},
			want: model.Joins{Linked: map[string]int64{}, Own: map[string]int64{"orders": 2}, Pending: map[string]int64{}, Unlinked: map[string]int64{}},
		},
		{
			name:        "a child handed over again after its window passed",
			checkpoints: []model.Pending{{Callees: children("orders", 1)}, {Callees: children("orders", 1)}},
			late:        90 * time.Minute,
			want:        model.Joins{Linked: map[string]int64{}, Own: map[string]int64{}, Pending: map[string]int64{}, Unlinked: map[string]int64{"orders": 1}},
		},
		{
			name:        "children of two services",
			checkpoints: []model.Pending{{Callers: []model.PendingCaller{client}, Callees: append(children("orders", 1, 2), children("billing", 3)...)}},
			want: model.Joins{Edges: []model.Edge{{From: "gateway", To: "billing", Calls: 1, First: t0, Last: t0.Add(time.Millisecond)}, {From: "gateway", To: "orders", Calls: 2, First: t0, Last: t0.Add(time.Millisecond)}},
				Linked: map[string]int64{"billing": 1, "orders": 2}, Own: map[string]int64{}, Pending: map[string]int64{}, Unlinked: map[string]int64{}},
		},
		{
			name:        "children whose parent never came",
			checkpoints: []model.Pending{{Callees: children("orders", 1, 2, 3)}, {Callees: children("orders", 3)}},
			want:        model.Joins{Linked: map[string]int64{}, Own: map[string]int64{}, Pending: map[string]int64{}, Unlinked: map[string]int64{"orders": 3}},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A partition and a tenant of its own, so the joins of the
			// other cases do not mix.
			partition := int32(i)
			ts, err := st.ForTenant(fmt.Sprintf("case%d", i))
			if err != nil {
				t.Fatal(err)
			}
			_, owner, _, err := st.ClaimPartition(ctx, partition)
			if err != nil {
				t.Fatal(err)
			}
			for n, p := range tt.checkpoints {
				if err := st.CheckpointPartition(ctx, partition, owner, int64(n+1), []Shard{{Tenant: ts.tenant, State: []byte("state"), Pending: p}}); err != nil {
					t.Fatal(err)
				}
				if _, _, err := st.Join(ctx, t0.Add(tt.late), time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			// The window passes: what waits is unlinked.
			if _, _, err := st.Join(ctx, time.Now().Add(time.Hour), time.Minute); err != nil {
				t.Fatal(err)
			}
			_, got, err := ts.View(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("joins (-want +got):\n%s", diff)
			}
			// Two windows on, the callees the join was done with are gone.
			var rows int
			if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM join_callees WHERE tenant = $1`, ts.tenant).Scan(&rows); err != nil || rows != 0 {
				t.Errorf("join_callees holds %d rows of the tenant (%v), want none", rows, err)
			}
		})
	}
}

// TestCheckpointed: a partition is checkpointed when its stored offset is
// the checkpoint's, of the same claim; a checkpoint not stored, one
// behind the stored offset and one of an engine whose partition another
// claimed since are not.
func TestCheckpointed(t *testing.T) {
	ctx := t.Context()
	st, err := Open(ctx, newDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	claim := func(p int32) int64 {
		t.Helper()
		_, owner, _, err := st.ClaimPartition(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return owner
	}
	o0, o1, o2 := claim(0), claim(1), claim(2)
	if stale, err := st.CheckpointPartitions(ctx, []Partition{{Partition: 0, Owner: o0, Next: 5}, {Partition: 1, Owner: o1, Next: 3}, {Partition: 2, Owner: o2, Next: 4}}); err != nil || len(stale) != 0 {
		t.Fatalf("CheckpointPartitions = %v, %v", stale, err)
	}
	claim(2) // another engine has partition 2 now
	// A claim stores its owner with the offset it read: a part at that
	// offset is reported checkpointed though no checkpoint committed,
	// which is why the Applier writes only the partitions past it.
	o4 := claim(4)
	for _, tt := range []struct {
		name  string
		parts []Partition
		want  []int32
	}{
		{"Stored", []Partition{{Partition: 0, Owner: o0, Next: 5}, {Partition: 1, Owner: o1, Next: 3}}, []int32{0, 1}},
		{"NotStored", []Partition{{Partition: 0, Owner: o0, Next: 6}, {Partition: 3, Owner: 1, Next: 1}}, nil},
		{"Behind", []Partition{{Partition: 1, Owner: o1, Next: 2}}, nil},
		{"ClaimedSince", []Partition{{Partition: 2, Owner: o2, Next: 4}}, nil},
		{"FreshClaim", []Partition{{Partition: 4, Owner: o4, Next: -1}}, []int32{4}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := st.Checkpointed(ctx, tt.parts)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Checkpointed = %v, want %v", got, tt.want)
			}
		})
	}
}
