package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/store"
)

// memStore is a hand-written in-memory Store with the contract of
// store.Store: what it keeps survives an engine being dropped, as a
// database survives a crash of the process.
type memStore struct {
	mu          sync.Mutex
	seq         int64
	batches     []memBatch
	checkSeq    int64
	checkState  []byte
	findings    []findings.Finding
	verdicts    []store.VerdictChange
	appendCalls int
	// held, when set, makes every SubmitBatch's wait block until the test
	// closes the channel it sends there; the batch is logged at once and
	// numbered in submission order, as a commit in progress.
	held chan chan struct{}
}

type memBatch struct {
	seq     int64
	kind    store.BatchKind
	payload []byte
}

// inner is b as it was logged before the engine put its receipt time
// after it (store.BatchReceivedAt), b itself when it has none.
func (b memBatch) inner(t testing.TB) memBatch {
	t.Helper()
	if b.kind != store.BatchReceivedAt {
		return b
	}
	kind, payload, _, err := splitReceivedAt(b.payload)
	if err != nil {
		t.Fatalf("logged batch %d: %v", b.seq, err)
	}
	return memBatch{b.seq, kind, payload}
}

func (s *memStore) SubmitBatch(_ context.Context, kind store.BatchKind, payload []byte) func() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appendCalls++
	if err := kind.Validate(); err != nil || len(payload) == 0 {
		return func() (int64, error) { return 0, fmt.Errorf("append: %w", store.ErrInvalid) }
	}
	s.seq++
	seq := s.seq
	s.batches = append(s.batches, memBatch{seq, kind, slices.Clone(payload)})
	if s.held == nil {
		return func() (int64, error) { return seq, nil }
	}
	commit := make(chan struct{})
	s.held <- commit
	return func() (int64, error) {
		<-commit
		return seq, nil
	}
}

func (s *memStore) Batches(ctx context.Context, after int64, fn func(int64, store.BatchKind, []byte) error) error {
	s.mu.Lock()
	bs := slices.Clone(s.batches)
	s.mu.Unlock()
	for _, b := range bs {
		if b.seq <= after {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(b.seq, b.kind, b.payload); err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) Checkpoint(_ context.Context, seq int64, state []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq < s.checkSeq || seq > s.seq {
		return fmt.Errorf("checkpoint %d: %w", seq, store.ErrInvalid)
	}
	s.checkSeq, s.checkState = seq, slices.Clone(state)
	s.batches = slices.DeleteFunc(s.batches, func(b memBatch) bool { return b.seq <= seq })
	return nil
}

func (s *memStore) LoadCheckpoint(context.Context) (int64, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkSeq, slices.Clone(s.checkState), nil
}

func (s *memStore) PutFindings(_ context.Context, u store.FindingsUpdate) error {
	if err := u.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := slices.DeleteFunc(slices.Clone(s.findings), func(f findings.Finding) bool { return u.Replaces(f.Service) })
	s.findings = append(kept, u.Findings...)
	return nil
}

// allFindings is an update that replaces every finding with fs.
func allFindings(fs ...findings.Finding) store.FindingsUpdate {
	return store.FindingsUpdate{Findings: fs, Source: "test", Actor: "test", Time: time.Now()}
}

func (s *memStore) Findings(context.Context) ([]findings.Finding, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.findings), nil
}

func (s *memStore) AppendVerdicts(_ context.Context, cs []store.VerdictChange) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.verdicts = append(s.verdicts, cs...)
	return nil
}

func (s *memStore) stats() (appends, logged int, checkpoint int64, verdicts []store.VerdictChange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appendCalls, len(s.batches), s.checkSeq, slices.Clone(s.verdicts)
}
