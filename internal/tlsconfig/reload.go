package tlsconfig

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// reloader holds what build made of the contents of some files, and
// rebuilds it when they change, checking at most once per interval. It
// is safe for concurrent use: the handshake that finds the interval over
// re-reads the files while the others go on with the current value.
type reloader[T any] struct {
	paths    []string
	interval time.Duration
	build    func(contents [][]byte) (T, error)
	// reloaded is told of every change found: the new value, or the
	// error that kept the old one.
	reloaded func(v T, err error)
	now      func() time.Time

	cur atomic.Pointer[loaded[T]]

	mu     sync.Mutex // held by the one checking the files
	next   time.Time
	failed [][]byte // the contents that last failed to build, not retried
}

type loaded[T any] struct {
	contents [][]byte
	v        T
}

// newReloader reads and builds the files once; an error there is the
// caller's to report, as nothing is being served yet.
func newReloader[T any](paths []string, interval time.Duration, build func([][]byte) (T, error), reloaded func(T, error)) (*reloader[T], error) {
	r := &reloader[T]{paths: paths, interval: interval, build: build, reloaded: reloaded, now: time.Now}
	contents, err := r.read()
	if err != nil {
		return nil, err
	}
	v, err := build(contents)
	if err != nil {
		return nil, err
	}
	r.cur.Store(&loaded[T]{contents: contents, v: v})
	r.next = r.now().Add(interval)
	return r, nil
}

func (r *reloader[T]) read() ([][]byte, error) {
	contents := make([][]byte, len(r.paths))
	for i, p := range r.paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		contents[i] = b
	}
	return contents, nil
}

// get returns the current value, after checking the files if the
// interval is over.
func (r *reloader[T]) get() T {
	r.check()
	return r.cur.Load().v
}

func (r *reloader[T]) check() {
	if !r.mu.TryLock() {
		return // another handshake is checking
	}
	defer r.mu.Unlock()
	now := r.now()
	if now.Before(r.next) {
		return
	}
	r.next = now.Add(r.interval)
	contents, err := r.read()
	if err != nil {
		// A file being replaced can be missing for a moment; a file gone
		// for good is reported at every interval.
		var zero T
		r.reloaded(zero, err)
		return
	}
	if same(contents, r.cur.Load().contents) || same(contents, r.failed) {
		return
	}
	v, err := r.build(contents)
	if err != nil {
		r.failed = contents
		r.reloaded(v, err)
		return
	}
	r.failed = nil
	r.cur.Store(&loaded[T]{contents: contents, v: v})
	r.reloaded(v, nil)
}

func same(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
