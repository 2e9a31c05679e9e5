package pipeline

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestErrors(t *testing.T) {
	full := fmt.Errorf("traces: %w", &FullError{RetryAfter: time.Second})
	if !errors.Is(full, ErrFull) {
		t.Error("a wrapped *FullError is not ErrFull")
	}
	var fe *FullError
	if !errors.As(full, &fe) || fe.RetryAfter != time.Second {
		t.Errorf("errors.As(*FullError) = %v", fe)
	}
	bad := fmt.Errorf("decode: %w", Permanent(errors.New("truncated")))
	if !IsPermanent(bad) || IsPermanent(full) || Permanent(nil) != nil {
		t.Error("IsPermanent is wrong")
	}
	if bad.Error() != "decode: truncated" {
		t.Errorf("message = %q", bad)
	}
}

func TestConsumerFunc(t *testing.T) {
	var got int
	var c Consumer[int] = ConsumerFunc[int](func(_ context.Context, n int) error { got = n; return nil })
	if err := c.Consume(context.Background(), 7); err != nil || got != 7 {
		t.Errorf("Consume = %v, got %d", err, got)
	}
}

func TestUnavailableError(t *testing.T) {
	cause := errors.New("kafka down")
	err := fmt.Errorf("traces: %w", &UnavailableError{RetryAfter: 2 * time.Second, Err: cause})
	var ue *UnavailableError
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, cause) || !errors.As(err, &ue) || ue.RetryAfter != 2*time.Second {
		t.Errorf("%v: not an UnavailableError of its cause", err)
	}
	if errors.Is(err, ErrFull) || IsPermanent(err) {
		t.Errorf("%v: full or permanent", err)
	}
	if got, want := err.Error(), "traces: kafka down, retry after 2s"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}
