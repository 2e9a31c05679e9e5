package source_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http/httptest"
	"runtime"
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

// BenchmarkPull24h pulls 24 hours of the example scaled up into the
// runtime model: the recording's 4 services copied 3 times (12
// services), one profile per service per hour, and the recorded traces
// repeated every 30 minutes with fresh ids. It reports
// the requests and bytes of the pull and the peak heap of the process,
// test servers included.
func BenchmarkPull24h(b *testing.B) {
	rec, err := sourcetest.LoadRecording(recorded)
	if err != nil {
		b.Fatal(err)
	}
	day := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	pyro, err := sourcetest.NewPyroscope(nil)
	if err != nil {
		b.Fatal(err)
	}
	tempo := sourcetest.NewTempo()
	const copies = 3
	for c := range copies {
		for svc, profs := range rec.Profiles {
			for h := range 24 {
				for _, raw := range profs {
					if err := pyro.AddAt(fmt.Sprintf("%s-%d", svc, c), raw, day.Add(time.Duration(h)*time.Hour)); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		for slot := range 24 * 2 {
			at := day.Add(time.Duration(slot) * 30 * time.Minute)
			for _, td := range rec.Traces {
				tempo.Add(shifted(td, c, slot, at))
			}
		}
	}
	srv := httptest.NewServer(servers{pyro, tempo}.handler())
	defer srv.Close()
	w := source.Window{From: day, To: day.Add(24 * time.Hour)}
	b.Logf("held: %d traces, %d services", tempo.Len(), 4*copies)
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
		tc.URL = srv.URL
		pc := source.DefaultPyroscopeConfig()
		pc.URL = srv.URL
		tp, err := source.NewTempo(tc)
		if err != nil {
			b.Fatal(err)
		}
		p, err := source.NewPyroscope(pc)
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
	}
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
