package model

import (
	"bytes"
	"encoding/gob"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/telemetry"
)

// FuzzUnmarshalBinary feeds arbitrary bytes to the checkpoint decoder, as
// a damaged or foreign checkpoint row would: it must refuse them with an
// error or restore a model that snapshots without panicking and checkpoints
// again to the same state.
func FuzzUnmarshalBinary(f *testing.F) {
	m := newModel()
	spans := shopSpans()
	spans[0].Image = &telemetry.Image{Name: "registry.example.com/shop/gateway", Digest: "sha256:0123", Tags: []string{"v1"}}
	m.AddSpans(spans)
	m.AddProfile(&telemetry.ProfileBatch{
		Service: "orders", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: time.Minute,
		Locations: [][]attribution.Frame{{frameParse}, {frameHandler}},
		Samples:   []telemetry.Sample{{Locations: []int32{0, 1}, Count: 4, Value: 40_000_000, SpanID: "0000000000000003"}},
	})
	for _, mm := range []*Model{m, newModel()} {
		data, err := mm.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("not gob"))
	// Hand-made states that MarshalBinary would never write: references
	// out of range, a service twice.
	fn := attribution.Func{Language: attribution.Go, Package: "p", Symbol: "F"}
	for _, st := range []modelState{
		{Version: stateVersion, Services: []serviceState{{Name: "a", Funcs: []attribution.Func{fn}, Stacks: []stackState{{Funcs: []int32{0}, Samples: 1, Endpoints: map[int32]int64{3: 1}}}}}},
		{Version: stateVersion, Services: []serviceState{{Name: "a", Funcs: []attribution.Func{fn}, Stacks: []stackState{{Funcs: []int32{1}}}}}},
		{Version: stateVersion, Services: []serviceState{{Name: "a", Funcs: []attribution.Func{fn, fn}}, {Name: "a"}}},
		// A database under its old db.system value and its current one,
		// which restore as one store.
		{Version: stateVersion, Services: []serviceState{{Name: "a", Stores: []Store{
			{Name: "mssql://shop/orders", Kind: "database", System: "mssql", Service: "a", Calls: 2},
			{Name: "microsoft.sql_server://shop/orders", Kind: "database", System: "microsoft.sql_server", Service: "a", Calls: 1},
		}}}},
	} {
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(st); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		restored := newModel()
		if err := restored.UnmarshalBinary(data); err != nil {
			if snap := restored.Snapshot(); len(snap.Services) != 0 {
				t.Fatalf("refused checkpoint (%v) left %d services behind", err, len(snap.Services))
			}
			return
		}
		snap := restored.Snapshot()
		again, err := restored.MarshalBinary()
		if err != nil {
			t.Fatalf("restored model does not checkpoint: %v", err)
		}
		second := newModel()
		if err := second.UnmarshalBinary(again); err != nil {
			t.Fatalf("checkpoint of a restored model refused: %v", err)
		}
		if diff := cmp.Diff(snap, second.Snapshot()); diff != "" {
			t.Errorf("checkpoint does not round-trip (-first +second):\n%s", diff)
		}
	})
}
