//go:build unix

package storetest

import (
	"syscall"
	"testing"
	"time"
)

// MeasureCPU starts counting the CPU time of the process, user and
// system, and returns the function that reports it per operation of b
// as "cpu-ns/op": on a loaded machine wall time per operation hides what
// a commit costs in system calls, and a benchmark's goroutines waiting
// on a sync are not CPU. Call the function after the loop.
func MeasureCPU(b *testing.B) (stop func()) {
	start := processCPU(b)
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
