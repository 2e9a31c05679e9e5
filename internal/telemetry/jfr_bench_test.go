package telemetry

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkJFRDecode decodes a recording of testdata/jfr/src and reports
// samples per second and the peak heap, beside the time the JDK's jfr
// print --json takes on the same file (jfr-print-s/op). The recording
// lasts EVIDENT_JFR_SECONDS (60 by default, as issue 13 asks); set it
// lower for a quick run. Without a JDK it decodes the committed fixture
// and does not compare.
func BenchmarkJFRDecode(b *testing.B) {
	path := jfrFixture
	seconds := 60
	if s, err := strconv.Atoi(os.Getenv("EVIDENT_JFR_SECONDS")); err == nil && s > 0 {
		seconds = s
	}
	var printTime time.Duration
	if _, err := exec.LookPath("jfr"); err == nil {
		path = recordJFR(b, seconds)
		start := time.Now()
		if err := exec.Command("jfr", "print", "--json", "--stack-depth", "4096",
			"--events", "jdk.ExecutionSample,jdk.NativeMethodSample", path).Run(); err != nil {
			b.Fatalf("jfr print: %v", err)
		}
		printTime = time.Since(start)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	samples := 0
	batches, err := Limits{}.DecodeJFR(data, path)
	if err != nil {
		b.Fatal(err)
	}
	for _, bt := range batches {
		for _, s := range bt.Samples {
			samples += int(s.Count)
		}
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	peak := peakHeap(func() {
		if _, err := (Limits{}).DecodeJFRReader(bytes.NewReader(data), path); err != nil {
			b.Fatal(err)
		}
	})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := (Limits{}).DecodeJFRReader(bytes.NewReader(data), path); err != nil {
			b.Fatal(err)
		}
	}
	perOp := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(samples)/perOp.Seconds(), "samples/s")
	b.ReportMetric(float64(samples), "samples")
	b.ReportMetric(float64(peak-before.HeapAlloc)/(1<<20), "peak-heap-MiB")
	if printTime > 0 {
		b.ReportMetric(printTime.Seconds(), "jfr-print-s/op")
		b.ReportMetric(printTime.Seconds()/perOp.Seconds(), "x-faster")
	}
}

// peakHeap runs f while sampling the heap, and returns the highest
// HeapAlloc seen.
func peakHeap(f func()) uint64 {
	done := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var m runtime.MemStats
		var max uint64
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > max {
				max = m.HeapAlloc
			}
			select {
			case <-done:
				peak <- max
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	f()
	close(done)
	return <-peak
}
