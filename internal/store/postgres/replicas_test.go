package postgres

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/store"
)

// TestReplicas opens one database from several Stores at once, as
// replicas of evident do (including their first Open, which migrates),
// and checks that their appends get distinct sequence numbers that
// replay in order, and that their audited writes form one chain.
func TestReplicas(t *testing.T) {
	cfg := newDatabase(t)
	const replicas, each = 4, 20
	stores := make([]*Store, replicas)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() {
			s, err := Open(t.Context(), cfg)
			if err != nil {
				t.Errorf("replica %d: Open: %v", i, err)
				return
			}
			stores[i] = s
		})
	}
	wg.Wait()
	for _, s := range stores {
		if s == nil {
			t.FailNow()
		}
		t.Cleanup(func() { s.Close() })
	}
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	var (
		mu    sync.Mutex
		acked = map[int64]string{}
	)
	for i, s := range stores {
		wg.Go(func() {
			for j := range each {
				payload := fmt.Sprintf("%d/%d", i, j)
				seq, err := s.AppendBatch(t.Context(), store.BatchSpans, []byte(payload))
				if err != nil {
					t.Errorf("replica %d append %d: %v", i, j, err)
					return
				}
				mu.Lock()
				if prev, dup := acked[seq]; dup {
					t.Errorf("seq %d acknowledged to %s and %s", seq, prev, payload)
				}
				acked[seq] = payload
				mu.Unlock()
				tok := store.Token{ID: "t-" + payload, Name: payload, Roles: []string{"read"}, SecretHash: make([]byte, 32), Created: t0}
				if err := s.CreateToken(t.Context(), tok, "cli:replica"); err != nil {
					t.Errorf("replica %d token %d: %v", i, j, err)
				}
			}
		})
	}
	wg.Wait()
	var last int64
	n := 0
	if err := stores[0].Batches(t.Context(), 0, func(seq int64, _ store.BatchKind, payload []byte) error {
		if seq <= last {
			t.Errorf("seq %d replayed after %d", seq, last)
		}
		if acked[seq] != string(payload) {
			t.Errorf("seq %d = %q, acknowledged as %q", seq, payload, acked[seq])
		}
		last = seq
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != replicas*each {
		t.Errorf("replayed %d batches, want %d", n, replicas*each)
	}
	es, err := stores[1].AuditLog(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var chain store.AuditChain
	for _, e := range es {
		if err := chain.Next(e); err != nil {
			t.Fatalf("audit chain: %v", err)
		}
	}
	if got, _ := chain.Checked(); got != replicas*each {
		t.Errorf("audit chain of %d entries, want %d", got, replicas*each)
	}
}

// TestAuditAppendOnly checks the database refuses to change or delete an
// audit entry, even to a client that bypasses the store.
func TestAuditAppendOnly(t *testing.T) {
	s, err := Open(t.Context(), newDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok := store.Token{ID: "t1", Name: "ci", Roles: []string{"read"}, SecretHash: make([]byte, 32), Created: time.Now()}
	if err := s.CreateToken(t.Context(), tok, "cli:root"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE audit_log SET actor = 'someone else'`, `DELETE FROM audit_log`, `TRUNCATE audit_log`} {
		if _, err := s.pool.Exec(t.Context(), q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s = %v, want the append-only refusal", q, err)
		}
	}
}
