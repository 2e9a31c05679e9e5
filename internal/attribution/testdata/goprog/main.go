// Command goprog is the helper that produces the Go CPU profiles under
// testdata: it spends CPU time in every symbol shape the attribution package
// must understand (pointer and value receivers, generics, closures, method
// values, goroutine and defer wrappers, range-over-func bodies, a
// dependency whose last path element has a dot) and writes a runtime/pprof CPU
// profile to the file named by its only argument. See ../README.md.
package main

import (
	"fmt"
	"iter"
	"os"
	"runtime/pprof"
	"sync"
	"time"

	"example.com/attrdemo/v2/internal/work"
	"gopkg.in/yaml.v3"
)

// budget is how long each shape is kept busy: long enough for a few dozen
// samples at 100 Hz, short enough to keep the profile small.
const budget = 150 * time.Millisecond

var sink uint64

// T has pointer-receiver methods.
type T struct{ n uint64 }

// Method is a pointer-receiver method.
//
//go:noinline
func (t *T) Method() { t.n += work.Spin(1000) }

// V has value-receiver methods.
type V struct{ n int }

// ValueMethod is a value-receiver method.
//
//go:noinline
func (v V) ValueMethod() uint64 { return work.Spin(1000 + v.n) }

// List is a generic type with a pointer-receiver method.
type List[E any] struct{ items []E }

// Push is a method of a generic type.
//
//go:noinline
func (l *List[E]) Push(e E) {
	l.items = append(l.items[:0], e)
	sink += work.Spin(1000)
}

// Generic is a generic function, instantiated with int and string.
//
//go:noinline
func Generic[E any](e E) E {
	sink += work.Spin(1000)
	return e
}

// Seq is an iterator whose loop body becomes a range-over-func closure.
func Seq(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := 0; i < n; i++ {
			if !yield(i) {
				return
			}
		}
	}
}

// busy calls f until the budget is spent. It is not inlined so that method
// values reach it as real -fm wrappers.
//
//go:noinline
func busy(f func()) {
	for start := time.Now(); time.Since(start) < budget; {
		f()
	}
}

// deferred runs its argument in a defer statement with arguments, which the
// compiler wraps in a deferwrap closure.
//
//go:noinline
func deferred(n int) {
	defer spinInto(nil, n)
	sink += work.Spin(n)
}

// spinInto spins and signals wg when it is not nil; called through go and
// defer statements with arguments, which the compiler wraps in gowrap and
// deferwrap closures.
//
//go:noinline
func spinInto(wg *sync.WaitGroup, n int) {
	sink += work.Spin(n)
	if wg != nil {
		wg.Done()
	}
}

//go:noinline
func yamlRoundTrip() {
	var v map[string]any
	if err := yaml.Unmarshal([]byte("a: [1, 2, 3]\nb: {c: d}\n"), &v); err != nil {
		panic(err)
	}
	if _, err := yaml.Marshal(v); err != nil {
		panic(err)
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: goprog <cpu-profile.pb.gz>")
		os.Exit(2)
	}
	f, err := os.Create(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	t := &T{}
	busy(t.Method)
	busy(func() { sink += V{n: 1}.ValueMethod() })
	l := &List[int]{}
	busy(func() { l.Push(1) })
	busy(func() { sink += uint64(Generic(1)) })
	busy(func() { _ = Generic("s") })
	busy(func() {
		for i := range Seq(10) {
			sink += work.Spin(100 + i)
		}
	})
	busy(func() { deferred(1000) })
	busy(func() {
		var wg sync.WaitGroup
		wg.Add(2)
		go func(n int) {
			defer wg.Done()
			sink += work.Spin(n)
		}(100000)
		go spinInto(&wg, 100000)
		wg.Wait()
	})
	busy(yamlRoundTrip)

	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
