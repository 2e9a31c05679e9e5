//go:build unix

package storetest

import (
	"syscall"
	"testing"
	"time"
)

// MeasureCPU starts counting the CPU time of the process, user and
// system, and returns the function that reports it per operation of b
// as "cpu-ns/op", and the system part alone as "sys-ns/op": on a loaded
// machine wall time per operation hides what a commit costs in system
// calls, and a benchmark's goroutines waiting on a sync are not CPU.
// Call the function after the loop.
func MeasureCPU(b *testing.B) (stop func()) {
	user, sys := processCPU(b)
	return func() {
		if b.N > 0 {
			u, s := processCPU(b)
			b.ReportMetric(float64(u-user+s-sys)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(s-sys)/float64(b.N), "sys-ns/op")
		}
	}
}

func processCPU(b *testing.B) (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}
