package store

import (
	"context"
	"fmt"
	"sync"
)

// Bounds of one group commit: a commit holds the backend's write lock
// for its whole group, which delays checkpoints and other writes.
const (
	maxGroupBatches = 256
	maxGroupBytes   = 16 << 20
)

// Pending is one appended batch waiting for the commit of its group.
type Pending struct {
	// Tenant, Kind and Payload are the batch; Payload is the caller's,
	// lent until its wait returns (Store.SubmitBatch).
	Tenant  string
	Kind    BatchKind
	Payload []byte

	ctx  context.Context
	done chan pendingResult // buffered: the committer never waits for the caller
}

type pendingResult struct {
	seq int64
	err error
}

// GroupCommitter commits the batches that the backends append, all that
// are waiting in one commit (group commit: one PostgreSQL transaction,
// one write of a SQLite store's log segment), so concurrent receivers
// pay for one sync of the log together instead of one each. One
// goroutine commits, in the order the batches were handed over.
type GroupCommitter struct {
	commit  func(group []*Pending) ([]int64, error)
	appends chan *Pending
	stop    chan struct{}
	done    sync.WaitGroup
}

// NewGroupCommitter starts committing with commit, which stores the
// batches of group all at once (a transaction, a write), in order, and returns their
// sequence numbers, or the error that stored none of them. commit runs
// on one goroutine, which Stop ends.
func NewGroupCommitter(commit func(group []*Pending) ([]int64, error)) *GroupCommitter {
	g := &GroupCommitter{commit: commit, appends: make(chan *Pending, maxGroupBatches), stop: make(chan struct{})}
	g.done.Go(g.loop)
	return g
}

// Submit checks a batch and hands it to the committer, which reads
// payload until wait returns (the caller must not change it before); wait
// returns its sequence number once the commit that holds it is durable.
// A batch not yet handed over when ctx ends is not stored; once handed
// over, wait waits for the commit even if ctx ends, so that its answer
// says truly whether the batch is stored. Every wait must be called
// before Stop.
func (g *GroupCommitter) Submit(ctx context.Context, tenant string, kind BatchKind, payload []byte) (wait func() (int64, error), err error) {
	if err := kind.Validate(); err != nil {
		return nil, err
	}
	if len(payload) == 0 {
		return nil, fmt.Errorf("%w: empty payload", ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := &Pending{Tenant: tenant, Kind: kind, Payload: payload, ctx: ctx, done: make(chan pendingResult, 1)}
	select {
	case g.appends <- p:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return func() (int64, error) {
		r := <-p.done
		return r.seq, r.err
	}, nil
}

// Stop ends the committer once its current commit is done. Call it once,
// after every wait returned.
func (g *GroupCommitter) Stop() {
	close(g.stop)
	g.done.Wait()
}

func (g *GroupCommitter) loop() {
	for {
		var first *Pending
		select {
		case <-g.stop:
			return
		case first = <-g.appends:
		}
		group, size := []*Pending{first}, len(first.Payload)
	collect:
		for len(group) < maxGroupBatches && size < maxGroupBytes {
			select {
			case p := <-g.appends:
				group, size = append(group, p), size+len(p.Payload)
			default:
				break collect
			}
		}
		g.commitGroup(group)
	}
}

// commitGroup commits the batches of group whose caller still waits and
// tells each its sequence number, or the error of the whole group.
func (g *GroupCommitter) commitGroup(group []*Pending) {
	live := group[:0]
	for _, p := range group {
		if err := p.ctx.Err(); err != nil {
			p.done <- pendingResult{err: err} // gave up while waiting: not stored
			continue
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return
	}
	seqs, err := g.commit(live)
	if err == nil && len(seqs) != len(live) {
		err = fmt.Errorf("commit returned %d sequence numbers for %d batches", len(seqs), len(live))
	}
	for i, p := range live {
		if err != nil {
			p.done <- pendingResult{err: err}
		} else {
			p.done <- pendingResult{seq: seqs[i]}
		}
	}
}
