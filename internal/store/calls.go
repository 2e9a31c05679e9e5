package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Calls admits the calls of a backend's Store until Close, which waits for
// those in progress, and hands the backend's appends to its
// GroupCommitter. The zero value admits calls and has no committer yet.
type Calls struct {
	// mu is held for reading by every call and for writing by Close, so
	// Close waits for the calls in progress and later calls see closed.
	mu     sync.RWMutex
	closed bool

	// committer commits the appends; nil until StartCommits.
	committer *GroupCommitter
	// metrics are the committer's; nil until StartCommits.
	metrics *commitMetrics
}

// StartCommits starts the GroupCommitter that SubmitBatch hands batches
// to, committing with commit (see NewGroupCommitter), and timing each
// commit that succeeds. Call it once, before the Store is shared.
func (c *Calls) StartCommits(commit func(group []*Pending) ([]int64, error)) {
	c.metrics = newCommitMetrics()
	c.committer = NewGroupCommitter(func(group []*Pending) ([]int64, error) {
		start := time.Now()
		seqs, err := commit(group)
		if err == nil {
			c.metrics.observe(len(group), start)
		}
		return seqs, err
	})
}

// CommitCollector returns the metrics of the commits since StartCommits:
// evident_store_commit_duration_seconds and
// evident_store_committed_batches_total.
func (c *Calls) CommitCollector() prometheus.Collector {
	return Collectors{c.metrics.seconds, c.metrics.batches}
}

// Enter starts a call, or returns ErrClosed once Close began; every Enter
// that returns nil is paired with Leave.
func (c *Calls) Enter() error {
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// Leave ends a call that Enter started.
func (c *Calls) Leave() { c.mu.RUnlock() }

// SubmitBatch is Store.SubmitBatch of the tenant's batch: it hands the
// batch to the committer and returns at once; batches that arrive while a
// commit is in progress share the next commit. where names the database
// in errors.
func (c *Calls) SubmitBatch(ctx context.Context, where, tenant string, kind BatchKind, payload []byte) (wait func() (int64, error)) {
	fail := func(err error) func() (int64, error) {
		return func() (int64, error) { return 0, fmt.Errorf("append %s batch: %w", kind, err) }
	}
	if err := c.Enter(); err != nil {
		return fail(err)
	}
	w, err := c.committer.Submit(ctx, tenant, kind, payload)
	if err != nil {
		c.Leave()
		return fail(err)
	}
	// Close waits for every caller to leave, so the committer outlives
	// the wait.
	return func() (int64, error) {
		defer c.Leave()
		seq, err := w()
		if err != nil {
			return 0, fmt.Errorf("append %s batch to %s: %w", kind, where, err)
		}
		return seq, nil
	}
}

// Close stops admitting calls, waits for those in progress, stops the
// committer and then calls release, which closes the backend's
// connections. Only the first Close does so; a later one returns nil.
func (c *Calls) Close(release func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	// Every call and every SubmitBatch wait has returned (they hold mu),
	// so no request is left for the committer.
	if c.committer != nil {
		c.committer.Stop()
	}
	return release()
}
