// Package ingesttest holds what the receivers' tests share: the memory a
// receiver takes while a test attacks it, so that they can assert a
// ceiling, and the check that what they hand on replays from the log.
package ingesttest

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"time"
)

// heapObjects is the memory of live and not yet swept heap objects: what
// a decompression bomb or a flood of buffered requests makes grow.
// goTotal is all the memory the Go runtime has mapped, of which
// heapReleased it gave back to the system.
const (
	heapObjects  = "/memory/classes/heap/objects:bytes"
	goTotal      = "/memory/classes/total:bytes"
	heapReleased = "/memory/classes/heap/released:bytes"
)

// Peak is what Measure saw while its function ran.
type Peak struct {
	// Heap is by how much the heap grew at most, over what it held after
	// a GC before.
	Heap uint64
	// Go is the most memory the Go runtime held (mapped and not
	// released): the process's resident memory but for what lies outside
	// the runtime's accounting, such as the race detector's shadow
	// memory, several times the heap, which a test built with -race
	// would otherwise count.
	Go uint64
}

// HeapPeak runs f and returns by how much the heap grew at most while it
// ran (Measure's Heap).
func HeapPeak(f func()) uint64 { return Measure(f).Heap }

// Measure runs f and returns the peaks of its memory, sampled every
// millisecond. Allocations of the test's own client count too, so
// attacks should be small on the client's side (compressed bombs, one
// shared body).
func Measure(f func()) Peak {
	runtime.GC()
	s := []metrics.Sample{{Name: heapObjects}, {Name: goTotal}, {Name: heapReleased}}
	metrics.Read(s)
	base := s[0].Value.Uint64()
	var peak Peak
	sample := func() {
		metrics.Read(s)
		peak.Heap = max(peak.Heap, s[0].Value.Uint64())
		peak.Go = max(peak.Go, s[1].Value.Uint64()-s[2].Value.Uint64())
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			sample()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	f()
	close(stop)
	wg.Wait()
	peak.Heap = max(peak.Heap, base) - base
	return peak
}
