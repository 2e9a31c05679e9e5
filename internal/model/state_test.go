package model

import (
	"bytes"
	"encoding/gob"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/telemetry"
)

var update = flag.Bool("update", false, "write the checkpoint of the current state version to testdata")

// checkpointModel is the model the checkpoints in testdata hold.
func checkpointModel() *Model {
	m := newModel()
	spans := shopSpans()
	spans[0].Image = &telemetry.Image{Name: "registry.example.com/shop/gateway", Digest: "sha256:0123", Tags: []string{"v1"}}
	m.AddSpans(spans)
	m.AddProfile(&telemetry.ProfileBatch{
		Service: "orders", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: time.Minute,
		Locations: [][]attribution.Frame{{frameParse}, {frameHandler}},
		Samples:   []telemetry.Sample{{Locations: []int32{0, 1}, Count: 4, Value: 40_000_000, SpanID: "0000000000000003"}},
	})
	return m
}

// TestLoadOldCheckpoints: a checkpoint written by every state version
// since 1 restores to the model it was written from, less what its
// version did not save (before 2, the functions' time series; before 5,
// when a destination was first consumed from, so none waits), so that
// an upgrade never loses the model. -update writes the current version's file; the
// files of older versions are never rewritten: a format change bumps
// stateVersion, teaches UnmarshalBinary to migrate the version before,
// and adds its own file here.
func TestLoadOldCheckpoints(t *testing.T) {
	current := filepath.Join("testdata", fmt.Sprintf("checkpoint-v%d.gob", stateVersion))
	if *update {
		data, err := checkpointModel().MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(current, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := filepath.Glob(filepath.Join("testdata", "checkpoint-v*.gob"))
	if err != nil || len(files) < stateVersion {
		t.Fatalf("checkpoints %v, %v; want one per state version up to %d", files, err, stateVersion)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := checkpointModel().Snapshot()
			// The checkpoints were written before windows kept their
			// languages (Window.Languages, added to version 4 as gob
			// adds a field, with no new version): they restore with
			// none, and count for every language, as before.
			for _, s := range want.Services {
				for i := range s.Windows {
					s.Windows[i].Languages = nil
				}
			}
			if f == filepath.Join("testdata", "checkpoint-v1.gob") {
				for _, s := range want.Services {
					s.SeriesEnd = time.Time{}
					for i := range s.Functions {
						s.Functions[i].Series = nil
					}
				}
			}
			if f != current {
				for _, s := range want.Services {
					for i := range s.Consumes {
						s.Consumes[i].Received, s.Consumes[i].Waiting = time.Time{}, false
					}
				}
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m := newModel()
			if err := m.UnmarshalBinary(data); err != nil {
				t.Fatalf("restore: %v", err)
			}
			if diff := cmp.Diff(want, m.Snapshot()); diff != "" {
				t.Errorf("restored model (-want +got):\n%s", diff)
			}
			// An API replica merges the shards an engine of the same
			// version checkpointed: the same migrations apply.
			merged, err := MergeStates(Joins{}, data)
			if err != nil {
				t.Fatalf("merge: %v", err)
			}
			m = newModel()
			if err := m.UnmarshalBinary(merged); err != nil {
				t.Fatalf("restore the merged state: %v", err)
			}
			if diff := cmp.Diff(want, m.Snapshot()); diff != "" {
				t.Errorf("merged model (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRestoreOldDBSystemNames: a checkpoint written while the spans'
// database systems were read as sent holds the databases of clients of
// the old conventions under the old db.system value; they restore under
// the current one, one store with the calls of both.
func TestRestoreOldDBSystemNames(t *testing.T) {
	db := func(system, coll string) telemetry.Attrs {
		return telemetry.Attrs{DBSystem: system, DBNamespace: "shop", DBCollection: coll}
	}
	tests := []struct {
		name  string
		attrs []telemetry.Attrs // of the spans the checkpoint saw
		want  []string          // stores restored: kind, system, name, calls
	}{
		{"old name", []telemetry.Attrs{db("mssql", "orders")}, []string{"database microsoft.sql_server microsoft.sql_server://shop/orders 1"}},
		{"old and current names", []telemetry.Attrs{db("mssql", "orders"), db("microsoft.sql_server", "orders"), db("mssql", "orders")},
			[]string{"database microsoft.sql_server microsoft.sql_server://shop/orders 3"}},
		{"current name", []telemetry.Attrs{db("oracle.db", "items")}, []string{"database oracle.db oracle.db://shop/items 1"}},
		{"no collection", []telemetry.Attrs{{DBSystem: "db2", DBNamespace: "ledger"}}, []string{"database ibm.db2 ibm.db2://ledger 1"}},
		{"unchanged system", []telemetry.Attrs{db("postgresql", "orders")}, []string{"database postgresql postgresql://shop/orders 1"}},
		{"a messaging system is no database", []telemetry.Attrs{{MessagingSystem: "oracle", MessagingDestination: "q"}}, []string{"messaging oracle oracle://q 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel()
			for i, a := range tt.attrs {
				m.AddSpans([]telemetry.Span{span("api", telemetry.SpanKindClient, byte(i+1), 0, "query", a)})
			}
			data, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			restored := newModel()
			if err := restored.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, st := range restored.Snapshot().Service("api").Stores {
				got = append(got, fmt.Sprintf("%s %s %s %d", st.Kind, st.System, st.Name, st.Calls))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("stores restored (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRestoreTimeSamples: a checkpoint of state version 3 or before
// summed the samples of every profile on a stack. testdata/cpu-allocs-v3.gob
// was written by version 3 from go-cpu.pb.gz and go-allocs.pb.gz of
// package telemetry, sent for one service as pyroscope-go sends them: its
// 59 CPU samples and 19,781 allocated objects are one count per stack
// that nothing splits. It restores, directly and through MergeStates, with
// every sample still showing the code that ran, none counting as a time
// sample, and none of its windows as time observed; the profiles received
// after count as before. testdata/checkpoint-v3.gob, of a CPU profile
// alone, restores with its samples as time samples (TestLoadOldCheckpoints).
func TestRestoreTimeSamples(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "cpu-allocs-v3.gob"))
	if err != nil {
		t.Fatal(err)
	}
	merged, err := MergeStates(Joins{}, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		state []byte
	}{{"restored", data}, {"merged", merged}} {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel()
			if err := m.UnmarshalBinary(tt.state); err != nil {
				t.Fatal(err)
			}
			s := m.Snapshot().Service("api")
			var timedWindows int
			for _, w := range s.Windows {
				if w.TimeSampled {
					timedWindows++
				}
			}
			var timed, value int64
			for _, fn := range s.Functions {
				timed, value = timed+fn.TimeSamples, value+fn.Value
			}
			got := fmt.Sprintf("%d samples, %d of go code, %d time samples of go code; %d windows, %d time-sampled; functions: %d time samples, value %d",
				s.Samples, s.LanguageSamples[attribution.Go], s.LanguageTimeSamples[attribution.Go], len(s.Windows), timedWindows, timed, value)
			want := "19840 samples, 19840 of go code, 0 time samples of go code; 2 windows, 0 time-sampled; functions: 0 time samples, value 0"
			if got != want {
				t.Errorf("got %s\nwant %s", got, want)
			}

			m.AddProfile(&telemetry.ProfileBatch{
				Service: "api", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: time.Minute,
				Locations: [][]attribution.Frame{{frameParse}},
				Samples:   []telemetry.Sample{{Locations: []int32{0}, Count: 40, Value: 400_000_000}},
			})
			s = m.Snapshot().Service("api")
			if got := s.LanguageTimeSamples[attribution.Go]; got != 40 {
				t.Errorf("after a CPU profile: %d time samples of go code, want 40", got)
			}
		})
	}
}

// TestMergeMigratesUnlinked: before state version 3 the SERVER and
// CONSUMER spans whose caller never came were not counted; restoring such
// a state counts them from the others, and so does merging it (an API
// replica merges the shards engines of the version before checkpointed),
// which writes the current version and so is never migrated after.
func TestMergeMigratesUnlinked(t *testing.T) {
	data, err := checkpointModel().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	st, err := decodeState(data)
	if err != nil {
		t.Fatal(err)
	}
	// A version 2 state of a service with two SERVER spans no caller
	// joined, which that version did not count.
	st.Version = 2
	st.Services[0].Spans.Server += 2
	st.Services[0].Spans.Unlinked = 0
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(st); err != nil {
		t.Fatal(err)
	}
	v2 := buf.Bytes()
	unlinked := func(data []byte) int64 {
		t.Helper()
		m := newModel()
		if err := m.UnmarshalBinary(data); err != nil {
			t.Fatal(err)
		}
		return m.Snapshot().Service(st.Services[0].Name).Spans.Unlinked
	}
	restored := unlinked(v2)
	if restored < 2 {
		t.Fatalf("restored: %d unlinked, want at least 2", restored)
	}
	merged, err := MergeStates(Joins{}, v2)
	if err != nil {
		t.Fatal(err)
	}
	if got := unlinked(merged); got != restored {
		t.Errorf("merged: %d unlinked, restored: %d; want the same", got, restored)
	}
}
