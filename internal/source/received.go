package source

import (
	"context"
	"sync"

	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/telemetry"
)

// maxReceived bounds the services a Received keeps, as the model's
// default max_services bounds the services it models: spans of a
// service beyond it are handed on by a pull as before.
const maxReceived = 10_000

// Received keeps the services whose spans a process's receivers
// delivered, so that a Poller's pull of selected services does not hand
// on again the spans the receivers brought of the others
// (Pull.Elsewhere). It is safe for concurrent use.
type Received struct {
	in       func(context.Context) bool
	mu       sync.RWMutex
	services map[string]bool
}

// NewReceived returns a Received that keeps the services of the batches
// in says go where the poll's do (its tenant); nil: every batch.
func NewReceived(in func(context.Context) bool) *Received {
	return &Received{in: in, services: map[string]bool{}}
}

// Consumer returns next, keeping the services of the spans it accepts:
// a batch it refuses did not reach the engine.
func (r *Received) Consumer(next pipeline.Consumer[[]telemetry.Span]) pipeline.Consumer[[]telemetry.Span] {
	return pipeline.ConsumerFunc[[]telemetry.Span](func(ctx context.Context, spans []telemetry.Span) error {
		// The services are read before: the engine owns spans once it
		// accepted them.
		var services []string
		if r.in == nil || r.in(ctx) {
			// A batch holds runs of one service's spans: one look-up a
			// run, under one read lock.
			last := ""
			r.mu.RLock()
			for i := range spans {
				if svc := spans[i].Service; i == 0 || svc != last {
					last = svc
					if !r.services[svc] {
						services = append(services, svc)
					}
				}
			}
			r.mu.RUnlock()
		}
		if err := next.Consume(ctx, spans); err != nil {
			return err
		}
		if len(services) > 0 {
			r.mu.Lock()
			for _, svc := range services {
				if len(r.services) < maxReceived {
					r.services[svc] = true
				}
			}
			r.mu.Unlock()
		}
		return nil
	})
}

// Has reports whether spans of service were received.
func (r *Received) Has(service string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.services[service]
}
