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
const heapObjects = "/memory/classes/heap/objects:bytes"

// HeapPeak runs f and returns by how much the heap grew at most while it
// ran, sampled every millisecond, over what it held after a GC before.
// Allocations of the test's own client count too, so attacks should be
// small on the client's side (compressed bombs, one shared body).
func HeapPeak(f func()) uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: heapObjects}}
	metrics.Read(s)
	base := s[0].Value.Uint64()
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []metrics.Sample{{Name: heapObjects}}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
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
	if peak < base {
		return 0
	}
	return peak - base
}
