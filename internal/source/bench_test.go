package source_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/source"
	"github.com/evidentsec/evident/internal/source/sourcetest"
	"github.com/evidentsec/evident/internal/telemetry"
)

// modelHandler feeds the runtime model, as analyze does.
type modelHandler struct{ m *model.Model }

func (h modelHandler) Profile(b *telemetry.ProfileBatch) error { h.m.AddProfile(b); return nil }
func (h modelHandler) Spans(s []telemetry.Span) error          { h.m.AddSpans(s); return nil }

// benchDay is the day BenchmarkPull24h pulls.
var benchDay = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

// benchServerEnv makes TestBenchServer serve BenchmarkPull24h's
// telemetry from a process of its own, so that the benchmark measures
// the client's memory alone.
const benchServerEnv = "EVIDENT_SOURCE_BENCH_SERVER"

// TestBenchServer serves 24 hours of the example scaled up, as Tempo and
// Pyroscope, when BenchmarkPull24h runs it in a process of its own: it
// writes its address on stdout and serves until stdin is closed.
func TestBenchServer(t *testing.T) {
	if os.Getenv(benchServerEnv) == "" {
		t.Skip("the server of BenchmarkPull24h; runs only under it")
	}
	rec, pyro := recordingAndPyroscope(t)
	tempo := sourcetest.NewTempo()
	const copies = 3
	for c := range copies {
		for svc, profs := range rec.Profiles {
			for h := range 24 {
				for _, raw := range profs {
					if err := pyro.AddAt(fmt.Sprintf("%s-%d", svc, c), raw, benchDay.Add(time.Duration(h)*time.Hour)); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		for slot := range 24 * 2 {
			at := benchDay.Add(time.Duration(slot) * 30 * time.Minute)
			for _, td := range rec.Traces {
				tempo.Add(shifted(td, c, slot, at))
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: servers{pyro, tempo}.handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Printf("%s %d %d\n", ln.Addr(), tempo.Len(), 4*copies)
	io.Copy(io.Discard, os.Stdin)
}

// BenchmarkPull24h pulls 24 hours of the example scaled up into the
// runtime model: the recording's 4 services copied 3 times (12
// services), one profile per service per hour, and the recorded traces
// repeated every 30 minutes with fresh ids. The servers run in a process
// of their own (TestBenchServer); it reports the requests and bytes of
// the pull and the peak heap and resident set of the client's process
// (the sources and the model they fill; the resident set is the
// process's high-water mark, so it is the figure of the first run).
func BenchmarkPull24h(b *testing.B) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchServer$", "-test.count=1")
	cmd.Env = append(os.Environ(), benchServerEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	var addr string
	var traces, services int
	if _, err := fmt.Fscanln(stdout, &addr, &traces, &services); err != nil {
		b.Fatalf("the bench server did not start: %v", err)
	}
	url := "http://" + addr
	w := source.Window{From: benchDay, To: benchDay.Add(24 * time.Hour)}
	b.Logf("held: %d traces, %d services", traces, services)
	runtime.GC()
	b.ResetTimer()
	for b.Loop() {
		var peak atomic.Uint64
		done := make(chan struct{})
		go func() {
			defer close(done)
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-time.After(50 * time.Millisecond):
				case <-b.Context().Done():
					return
				}
				if peak.Load() == ^uint64(0) {
					return
				}
			}
		}()
		tc := source.DefaultTempoConfig()
		tc.URL = url
		pc := source.DefaultPyroscopeConfig()
		pc.URL = url
		tp, err := source.NewTempo(tc, nil)
		if err != nil {
			b.Fatal(err)
		}
		p, err := source.NewPyroscope(pc, nil)
		if err != nil {
			b.Fatal(err)
		}
		m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
		if err := (source.Pull{Tempo: tp, Pyroscope: p}).Run(context.Background(), w, modelHandler{m}, func(err error) { b.Error(err) }); err != nil {
			b.Fatal(err)
		}
		peakSeen := peak.Load()
		peak.Store(^uint64(0))
		<-done
		ts, ps := tp.Stats(), p.Stats()
		b.ReportMetric(float64(ts.Requests+ps.Requests), "requests")
		b.ReportMetric(float64(ts.Bytes+ps.Bytes)/(1<<20), "MiB_read")
		b.ReportMetric(float64(peakSeen)/(1<<20), "peak_heap_MiB")
		if kib, ok := peakRSS(); ok {
			b.ReportMetric(float64(kib)/(1<<10), "peak_rss_MiB")
		}
	}
}

// peakRSS is the peak resident set of this process so far, in KiB, from
// Linux's /proc/self/status (VmHWM); false elsewhere.
func peakRSS() (int64, bool) {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kib, err == nil
		}
	}
	return 0, false
}

// shifted returns a copy of td with the services of copy c, fresh trace
// and span ids, and its spans moved to start at.
func shifted(td ptrace.Traces, c, slot int, at time.Time) ptrace.Traces {
	out := ptrace.NewTraces()
	td.CopyTo(out)
	var first pcommon.Timestamp
	for _, rs := range out.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				if first == 0 || sp.StartTimestamp() < first {
					first = sp.StartTimestamp()
				}
			}
		}
	}
	delta := int64(at.UnixNano()) - int64(first)
	remix := func(b []byte) {
		v := binary.BigEndian.Uint32(b[:4])
		binary.BigEndian.PutUint32(b[:4], v^uint32(c*100000+slot+1))
	}
	for _, rs := range out.ResourceSpans().All() {
		if v, ok := rs.Resource().Attributes().Get("service.name"); ok {
			v.SetStr(fmt.Sprintf("%s-%d", v.Str(), c))
		}
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				tid := sp.TraceID()
				remix(tid[:])
				sp.SetTraceID(tid)
				sid := sp.SpanID()
				remix(sid[:])
				sp.SetSpanID(sid)
				if !sp.ParentSpanID().IsEmpty() {
					pid := sp.ParentSpanID()
					remix(pid[:])
					sp.SetParentSpanID(pid)
				}
				sp.SetStartTimestamp(pcommon.Timestamp(int64(sp.StartTimestamp()) + delta))
				sp.SetEndTimestamp(pcommon.Timestamp(int64(sp.EndTimestamp()) + delta))
			}
		}
	}
	return out
}
