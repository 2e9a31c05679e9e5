package pipeline

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"
)

func TestLoop(t *testing.T) {
	defer goleak.VerifyNone(t)
	var l Loop
	if err := l.Stop(context.Background()); err != nil {
		t.Fatalf("Stop without Start: %v", err)
	}
	runs := 0
	started := make(chan struct{}, 2)
	run := func(ctx context.Context) {
		runs++
		started <- struct{}{}
		<-ctx.Done()
	}
	parent, cancelParent := context.WithCancel(context.Background())
	if err := l.Start(parent, nil, run); err != nil {
		t.Fatal(err)
	}
	<-started
	// The parent's cancellation does not end the loop: only Stop does.
	cancelParent()
	if err := l.Start(context.Background(), nil, run); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	if err := l.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if runs != 1 {
		t.Errorf("run ran %d times, want once", runs)
	}
}

func TestLoopPrepareError(t *testing.T) {
	var l Loop
	want := errors.New("cannot read the store")
	if err := l.Start(context.Background(), func() error { return want }, func(context.Context) { t.Error("run ran although prepare failed") }); !errors.Is(err, want) {
		t.Fatalf("Start = %v, want %v", err, want)
	}
	// A failed Start leaves the loop unstarted: the next one runs.
	ran := make(chan struct{})
	if err := l.Start(context.Background(), nil, func(context.Context) { close(ran) }); err != nil {
		t.Fatal(err)
	}
	<-ran
	if err := l.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestLoopStopGivesUp(t *testing.T) {
	var l Loop
	release := make(chan struct{})
	defer close(release)
	if err := l.Start(context.Background(), nil, func(context.Context) { <-release }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Stop with a done context = %v, want context.Canceled", err)
	}
}
