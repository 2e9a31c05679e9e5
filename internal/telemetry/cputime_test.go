package telemetry

import (
	"syscall"
	"testing"
	"time"
)

// processCPU returns the CPU time this process has used (user + system,
// all threads, so GC work counts too).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuRate reports items per CPU-second besides the wall-clock rate: on a
// shared machine other processes stretch wall time, while CPU time stays
// what the code costs.
func cpuRate(b *testing.B, items int, unit string, cpuStart time.Duration) {
	b.ReportMetric(float64(items)/b.Elapsed().Seconds(), unit+"/s")
	if cpu := processCPU(b) - cpuStart; cpu > 0 {
		b.ReportMetric(float64(items)/cpu.Seconds(), unit+"/cpu-s")
	}
}
