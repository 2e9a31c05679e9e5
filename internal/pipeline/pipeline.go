// Package pipeline holds the contracts between the parts of evident's
// streaming path: receivers hand telemetry to consumers, components are
// started and stopped by the composition root, and errors say whether a
// sender should retry.
package pipeline

import (
	"context"
	"errors"
	"time"
)

// Consumer accepts data of type T. Consume may be called concurrently;
// after it returns, the consumer owns data and the caller must not touch
// it again. A nil error means the data is accepted: it will not be lost.
// An error wrapping ErrFull means the data was refused for now and the
// sender should retry after a while; a Permanent error means it never
// will be accepted.
type Consumer[T any] interface {
	Consume(ctx context.Context, data T) error
}

// ConsumerFunc adapts a function to Consumer, like http.HandlerFunc.
type ConsumerFunc[T any] func(ctx context.Context, data T) error

// Consume calls f(ctx, data).
func (f ConsumerFunc[T]) Consume(ctx context.Context, data T) error { return f(ctx, data) }

// Component is a part of the service with a lifetime: receivers, the
// engine, sinks, the store. Start must return promptly, leaving any work
// to goroutines the component owns. Shutdown stops them and waits for
// them, or gives up when ctx is done. Both are safe to call twice, and
// Shutdown is safe to call without Start.
type Component interface {
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// ErrFull is wrapped by the errors of a consumer whose bounded queue is
// full: the data was refused without being read, and the sender should
// retry later (HTTP 429/503 with Retry-After, gRPC RESOURCE_EXHAUSTED).
var ErrFull = errors.New("queue full")

// FullError is a refusal for backpressure with the time the sender
// should wait before retrying.
type FullError struct {
	RetryAfter time.Duration
	// Reason says what is full; empty is the queue.
	Reason string
}

func (e *FullError) Error() string {
	if e.Reason != "" {
		return e.Reason + ", retry after " + e.RetryAfter.String()
	}
	return "queue full, retry after " + e.RetryAfter.String()
}

// Is makes errors.Is(err, ErrFull) true for a *FullError.
func (e *FullError) Is(target error) bool { return target == ErrFull }

// permanent marks an error the sender must not retry.
// ErrUnavailable is wrapped by the errors of a consumer whose downstream
// (the ingest log, the store) cannot take the data now: nothing was
// accepted, and the sender should retry after a while (HTTP 503 with
// Retry-After, gRPC UNAVAILABLE with a RetryInfo).
var ErrUnavailable = errors.New("unavailable")

// UnavailableError is a refusal for an outage with the time the sender
// should wait before retrying.
type UnavailableError struct {
	RetryAfter time.Duration
	// Err is what is unavailable.
	Err error
}

func (e *UnavailableError) Error() string {
	return e.Err.Error() + ", retry after " + e.RetryAfter.String()
}

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnavailable) true for an *UnavailableError.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that IsPermanent reports true: the data is bad
// and retrying it cannot succeed (HTTP 400, gRPC INVALID_ARGUMENT).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was made by
// Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}
