package pipeline

import (
	"context"
	"sync"
)

// Loop owns the one goroutine that a component runs between Start and
// Shutdown (a reload, a sampler, a poller), so that each component's
// Start and Shutdown keep the Component rules without writing them again.
// The zero value is ready; it is safe for concurrent use.
type Loop struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs run in a goroutine, with a context that keeps ctx's values
// but not its cancellation: Stop cancels it. prepare, if not nil, runs
// first; its error starts nothing and is returned. A second Start does
// nothing and returns nil.
func (l *Loop) Start(ctx context.Context, prepare func() error, run func(ctx context.Context)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done != nil {
		return nil
	}
	if prepare != nil {
		if err := prepare(); err != nil {
			return err
		}
	}
	ctx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	l.done = done
	go func() {
		defer close(done)
		run(ctx)
	}()
	return nil
}

// Stop cancels the goroutine's context and waits for run to return, or
// gives up when ctx is done. It is safe to call twice and without Start.
func (l *Loop) Stop(ctx context.Context) error {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
