package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/sqlite"
)

// The engine's use of the log: append before acknowledging, checkpoint
// the model from time to time, and on start load the checkpoint and
// replay what came after it.
func Example() {
	dir, err := os.MkdirTemp("", "evident-data")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	s, err := sqlite.Open(ctx, dir, sqlite.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range []string{"spans 1", "spans 2", "spans 3"} {
		if _, err := s.AppendBatch(ctx, store.BatchSpans, []byte(p)); err != nil {
			log.Fatal(err) // not acknowledged: the client retries
		}
	}
	if err := s.Checkpoint(ctx, 2, []byte("model after 2 batches")); err != nil {
		log.Fatal(err)
	}
	// A crash here loses nothing; Close is only tidy.
	if err := s.Close(); err != nil {
		log.Fatal(err)
	}

	s, err = sqlite.Open(ctx, dir, sqlite.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	seq, state, err := s.LoadCheckpoint(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("checkpoint at %d: %s\n", seq, state)
	err = s.Batches(ctx, seq, func(seq int64, kind store.BatchKind, payload []byte) error {
		fmt.Printf("replay %d %s: %s\n", seq, kind, payload)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// checkpoint at 2: model after 2 batches
	// replay 3 spans: spans 3
}
