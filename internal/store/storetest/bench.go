package storetest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/store"
)

// Benchmark measures the store's main operations. Every backend runs it
// from its own tests, with the same code and sizes, so their numbers
// compare (docs/scaling.md). newDB returns the Opener of a fresh, empty
// database, as Run's does.
func Benchmark(b *testing.B, newDB func(b *testing.B) Opener) {
	open := func(b *testing.B) store.Store {
		b.Helper()
		s, err := newDB(b)(b.Context())
		if err != nil {
			b.Fatalf("open: %v", err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	payload := bytes.Repeat([]byte("span "), 4096/5) // about one OTLP request of 20 spans

	// One writer: every append pays for its own commit.
	b.Run("AppendBatch", func(b *testing.B) {
		s := open(b)
		b.SetBytes(int64(len(payload)))
		stop := MeasureCPU(b)
		for b.Loop() {
			if _, err := s.AppendBatch(b.Context(), store.BatchTraceRequest, payload); err != nil {
				b.Fatal(err)
			}
		}
		stop()
	})
	// Many receivers at once: concurrent appends share commits.
	b.Run("SubmitBatchParallel", func(b *testing.B) {
		s := open(b)
		b.SetBytes(int64(len(payload)))
		b.SetParallelism(8)
		stop := MeasureCPU(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.SubmitBatch(context.Background(), store.BatchTraceRequest, payload)(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		stop()
	})
	// A checkpoint of a 1 MiB model after 10 batches, which it drops.
	b.Run("Checkpoint", func(b *testing.B) {
		s := open(b)
		state := bytes.Repeat([]byte("model "), (1<<20)/6)
		b.SetBytes(int64(len(state)))
		for b.Loop() {
			var seq int64
			for range 10 {
				var err error
				if seq, err = s.AppendBatch(b.Context(), store.BatchTraceRequest, payload); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Checkpoint(b.Context(), seq, state); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A scanner import: 200 findings of one service replaced, half of
	// them changed, with its audit entry.
	b.Run("PutFindings", func(b *testing.B) {
		s := open(b)
		fs := make([][]findings.Finding, 2)
		for v := range fs {
			for i := range 200 {
				level := "high"
				if i%2 == 0 && v == 1 {
					level = "critical"
				}
				fs[v] = append(fs[v], finding("shop", fmt.Sprintf("pkg:golang/example.com/m%03d@1.0.0", i), fmt.Sprintf("GO-2026-%04d", i), level))
			}
		}
		i := 0
		for b.Loop() {
			u := replaceServices([]string{"shop"}, fs[i%2]...)
			if err := s.PutFindings(b.Context(), u); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	// The alerts page: the newest 50 of one service among 5000.
	b.Run("Alerts", func(b *testing.B) {
		s := open(b)
		for i := range 5000 {
			service := fmt.Sprintf("svc-%d", i%10)
			a := alert(fmt.Sprintf("a%05d", i), "first_execution", service, i)
			a.Time = t0.Add(time.Duration(i) * time.Second)
			if err := s.PutAlert(b.Context(), a); err != nil {
				b.Fatal(err)
			}
		}
		for b.Loop() {
			got, err := s.Alerts(b.Context(), store.AlertQuery{Service: "svc-3", Limit: 50})
			if err != nil || len(got) != 50 {
				b.Fatalf("Alerts = %d alerts, %v; want 50", len(got), err)
			}
		}
	})
}
