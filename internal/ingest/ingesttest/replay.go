package ingesttest

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/telemetry"
)

// ReplayProfiles checks what a receiver hands on with a batch of
// profiles: the request it decoded them from must come with them
// (telemetry.WithReceivedProfiles), and that request, written and read
// back as the engine's log keeps it, must decode into the same batches,
// as a replay of the log decodes it.
func ReplayProfiles(ctx context.Context, batches []*telemetry.ProfileBatch) error {
	req, ok := telemetry.ReceivedProfiles(ctx, batches)
	if !ok {
		return errors.New("the batches came without the request they were decoded from")
	}
	back, err := telemetry.ParseProfileRequest(telemetry.AppendProfileRequest(nil, req))
	if err != nil {
		return fmt.Errorf("read the request back: %w", err)
	}
	replayed, err := back.Decode()
	if len(replayed) == 0 {
		return fmt.Errorf("the request replays into nothing: %v", err)
	}
	if diff := cmp.Diff(batches, replayed); diff != "" {
		return fmt.Errorf("the request replays into other batches (-received +replayed):\n%s", diff)
	}
	return nil
}
