package engine

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/klauspost/compress/s2"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/telemetry"
)

// FuzzReplay feeds arbitrary bytes to the replay of the batch log, as a
// damaged or foreign row would reach it after a restart: decode must refuse
// them or give a batch that encodes back to itself; the engine must replay
// the batch and the good batch logged after it, and the checkpoint it then
// writes must restore. A batch decode refuses as a newer evident's
// (telemetry.ErrNewerVersion) is the exception: the engine must refuse
// to start over it, checkpointing nothing.
func FuzzReplay(f *testing.F) {
	kinds := []store.BatchKind{store.BatchTraceRequest, store.BatchSpans, store.BatchProfiles, store.BatchTraceRequestS2, store.BatchProfileRequestS2, store.BatchReceivedAt}
	folded := &telemetry.ProfileRequest{Profiles: []telemetry.ReceivedProfile{{
		Format: telemetry.FormatFolded, Data: []byte("main;golang.org/x/text/language.Parse 3\nmain;main.idle 97\n"), Service: "shop",
		Ingest: &telemetry.IngestWindow{Now: t0, SampleRate: 100},
	}}}
	for _, it := range []*item{
		{kind: store.BatchProfiles, preq: ingested(pprofOf(f, textProfile("", true), map[string][]string{"span_name": {"GET /"}}), "shop")},
		{kind: store.BatchProfiles, preq: folded},
		{kind: store.BatchSpans, spans: shopSpans()},
		{kind: store.BatchSpans, spans: shopSpans(), receivedAt: t0},
		{kind: store.BatchProfiles, profiles: []*telemetry.ProfileBatch{textProfile("shop", true)}},
		{kind: store.BatchProfiles, profiles: []*telemetry.ProfileBatch{textProfile("shop", true)}, receivedAt: t0},
		{kind: store.BatchProfiles, profiles: []*telemetry.ProfileBatch{{Service: "x", Locations: [][]attribution.Frame{{}}, Samples: []telemetry.Sample{{Locations: []int32{5, -1, 0}, Count: 1}}}}},
	} {
		kind, payload, err := encode(it, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(slices.Index(kinds, kind)), payload)
	}
	// Spans as the log held them before it held trace requests.
	f.Add(uint8(1), gobSpans(f, shopSpans()))
	f.Add(uint8(0), []byte("not protobuf"))
	// A profile request of a version a newer evident writes.
	newer := telemetry.AppendProfileRequest(nil, folded)
	newer[0]++
	f.Add(uint8(slices.Index(kinds, store.BatchProfileRequestS2)), s2.Encode(nil, newer))
	f.Add(uint8(1), []byte("not gob"))
	goodKind, good, err := encode(&item{kind: store.BatchSpans, spans: shopSpans()}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, k uint8, payload []byte) {
		kind := kinds[int(k)%len(kinds)]
		it, derr := decode(new(telemetry.ProfileDecoder), kind, payload)
		if derr == nil {
			kind2, again, err := encode(&it, nil)
			if err != nil {
				t.Fatalf("decoded batch does not encode: %v", err)
			}
			back, err := decode(new(telemetry.ProfileDecoder), kind2, again)
			if err != nil {
				t.Fatalf("re-encoded batch does not decode: %v", err)
			}
			if diff := cmp.Diff(it, back, cmp.AllowUnexported(item{}), cmpopts.IgnoreUnexported(telemetry.ReceivedProfile{}), cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("batch does not round-trip (-decoded +again):\n%s", diff)
			}
		}

		ctx := context.Background()
		st := &memStore{seq: 2, batches: []memBatch{{1, kind, payload}, {2, goodKind, good}}}
		e := newEngine(t, testConfig(), st, nil, nil)
		if errors.Is(derr, telemetry.ErrNewerVersion) {
			// A newer evident's encoding of a known kind: refused, and
			// nothing checkpointed over it.
			if err := e.Start(ctx); !errors.Is(err, store.ErrSchemaTooNew) {
				t.Fatalf("start over a batch of a newer version = %v, want ErrSchemaTooNew", err)
			}
			if err := e.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if st.checkSeq != 0 {
				t.Fatalf("a refused start checkpointed at %d", st.checkSeq)
			}
			return
		}
		if err := e.Start(ctx); err != nil {
			t.Fatalf("start over a log with a fuzzed batch: %v", err)
		}
		if e.model.Snapshot().Service("orders") == nil {
			t.Error("the good batch after the fuzzed one was not replayed")
		}
		if err := e.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		seq, state, _ := st.LoadCheckpoint(ctx)
		if seq != 2 {
			t.Fatalf("shutdown checkpointed at %d, want 2", seq)
		}
		restored := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
		if err := restored.UnmarshalBinary(state); err != nil {
			t.Fatalf("checkpoint after replay does not restore: %v", err)
		}
	})
}

// gobSpans encodes spans as the log held them before it held OTLP trace
// requests.
func gobSpans(t testing.TB, spans []telemetry.Span) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(spans); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
