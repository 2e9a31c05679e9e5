package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestGroupCommitter holds the first commit until more batches wait, and
// checks they share the next commit, in the order handed over, and that
// a failed commit fails every batch of its group and none other.
func TestGroupCommitter(t *testing.T) {
	var (
		next    int64
		groups  [][]string
		started = make(chan struct{})
		release = make(chan struct{})
		failNth = 2
	)
	g := NewGroupCommitter(func(group []*Pending) ([]int64, error) {
		var payloads []string
		for _, p := range group {
			payloads = append(payloads, p.Tenant+":"+string(p.Payload))
		}
		groups = append(groups, payloads)
		if len(groups) == 1 {
			close(started)
			<-release
		}
		if len(groups) == failNth {
			return nil, errors.New("disk full")
		}
		seqs := make([]int64, len(group))
		for i := range seqs {
			next++
			seqs[i] = next
		}
		return seqs, nil
	})
	defer g.Stop()
	submit := func(tenant, payload string) func() (int64, error) {
		t.Helper()
		w, err := g.Submit(t.Context(), tenant, BatchSpans, []byte(payload))
		if err != nil {
			t.Fatalf("Submit %s: %v", payload, err)
		}
		return w
	}
	first := submit("a", "0")
	<-started
	var waits []func() (int64, error)
	for i := range 3 {
		waits = append(waits, submit("b", fmt.Sprint(i+1)))
	}
	close(release)
	if seq, err := first(); err != nil || seq != 1 {
		t.Errorf("first batch = %d, %v; want 1, nil", seq, err)
	}
	// The three waited while the first committed: one commit, which
	// fails them all.
	for i, w := range waits {
		if seq, err := w(); err == nil || err.Error() != "disk full" {
			t.Errorf("batch %d = %d, %v; want the group's error", i+1, seq, err)
		}
	}
	// After a failed group, the next commits again.
	if seq, err := submit("a", "after")(); err != nil || seq != 2 {
		t.Errorf("batch after the failed group = %d, %v; want 2, nil", seq, err)
	}
	if diff := cmp.Diff(groups, [][]string{{"a:0"}, {"b:1", "b:2", "b:3"}, {"a:after"}}); diff != "" {
		t.Errorf("commits (-got +want):\n%s", diff)
	}
}

func TestGroupCommitterRejects(t *testing.T) {
	// A commit that numbers no batch: a bug of the backend, reported.
	g := NewGroupCommitter(func(group []*Pending) ([]int64, error) { return nil, nil })
	defer g.Stop()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tt := range []struct {
		name    string
		ctx     context.Context
		kind    BatchKind
		payload []byte
		want    error
	}{
		{"UnknownKind", t.Context(), "logs", []byte("x"), ErrInvalid},
		{"EmptyPayload", t.Context(), BatchSpans, nil, ErrInvalid},
		{"Canceled", ctx, BatchSpans, []byte("x"), context.Canceled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := g.Submit(tt.ctx, DefaultTenant, tt.kind, tt.payload); !errors.Is(err, tt.want) {
				t.Errorf("Submit = %v, want %v", err, tt.want)
			}
		})
	}
	w, err := g.Submit(t.Context(), DefaultTenant, BatchSpans, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if seq, err := w(); err == nil || err.Error() != "commit returned 0 sequence numbers for 1 batches" {
		t.Errorf("wait = %d, %v; want the miscount reported", seq, err)
	}
}
