package model

import (
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
// version did not save (before 2, the functions' time series), so that
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
			if f == filepath.Join("testdata", "checkpoint-v1.gob") {
				for _, s := range want.Services {
					s.SeriesEnd = time.Time{}
					for i := range s.Functions {
						s.Functions[i].Series = nil
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
		})
	}
}
