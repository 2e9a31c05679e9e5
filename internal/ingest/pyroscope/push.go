package pyroscope

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"

	"github.com/evidentsec/evident/internal/ingest"
	"github.com/evidentsec/evident/internal/ingest/admission"
	"github.com/evidentsec/evident/internal/telemetry"
)

// pusher serves push.v1.PusherService over Connect (protobuf and JSON),
// gRPC and gRPC-Web, as connect-go does for one handler.
type pusher struct {
	pushv1connect.UnimplementedPusherServiceHandler
	r *Receiver
}

// Push decodes every raw profile of every series and hands the batches
// on in one call. The service is the series' service_name label. A
// profile that does not decode is dropped and logged; the request fails
// with INVALID_ARGUMENT only when none decodes, since Push has no partial
// success to report and a retry would not help. MaxRequestBytes bounds
// the profiles of the whole request after decompression, not each one:
// beyond it the request fails with INVALID_ARGUMENT naming the limit.
func (p *pusher) Push(ctx context.Context, req *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error) {
	r := p.r
	start := time.Now()
	defer r.m.observe("connect", start)
	dec, release, err := r.acquire()
	if err != nil {
		r.m.RefusedRequests.WithLabelValues("pyroscope", "connect", "profiles", ingest.ReasonFull).Inc()
		return nil, retryError(connect.CodeResourceExhausted, err, time.Second)
	}
	defer release()
	t := ticketFrom(ctx, r.adm)
	source := "pyroscope Push from " + req.Peer().Addr
	// The message Connect decoded holds a copy of every raw profile (and,
	// gzipped, inflated them): memory the ticket's reader did not see.
	var held int64
	for _, s := range req.Msg.GetSeries() {
		for _, smp := range s.GetSamples() {
			held += int64(len(smp.GetRawProfile()))
		}
	}
	switch err := t.Reserve(held); {
	case errors.Is(err, admission.ErrTooLarge):
		r.m.refusedRequest("connect", ingest.ReasonTooLarge)
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%s: the request's %d bytes of profiles: %w", source, held, err))
	case err != nil:
		r.m.refusedRequest("connect", ingest.ReasonMemory)
		return nil, retryError(connect.CodeResourceExhausted, err, time.Second)
	}
	left := r.cfg.MaxRequestBytes
	// The request handed on holds the profiles that decoded, each with
	// the service of its series.
	preq := &telemetry.ProfileRequest{Limits: r.cfg.Profiles}
	var batches []*telemetry.ProfileBatch
	var bad []error
	for i, s := range req.Msg.GetSeries() {
		var service, namespace string
		for _, l := range s.GetLabels() {
			switch l.GetName() {
			case "service_name":
				service = l.GetValue()
			case "service_namespace":
				namespace = l.GetValue()
			}
		}
		for j, smp := range s.GetSamples() {
			record := fmt.Sprintf("%s: series[%d].samples[%d]", source, i, j)
			raw, err := r.decompress(smp.GetRawProfile(), left, t)
			switch {
			case errors.Is(err, ingest.ErrTooLarge), errors.Is(err, admission.ErrTooLarge):
				r.m.refusedRequest("connect", ingest.ReasonTooLarge)
				return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%s: the request's profiles are over max_request_bytes %d after decompression: %w", record, r.cfg.MaxRequestBytes, err))
			case errors.Is(err, admission.ErrBudget):
				r.m.refusedRequest("connect", ingest.ReasonMemory)
				return nil, retryError(connect.CodeResourceExhausted, err, time.Second)
			}
			left -= int64(len(raw))
			var bs []*telemetry.ProfileBatch
			rp := telemetry.ReceivedProfile{Format: telemetry.FormatPprof, Data: raw, Source: record, Service: service, Namespace: namespace}
			if err == nil {
				bs, err = dec.Decode(r.cfg.Profiles, &rp)
			}
			if len(bs) == 0 {
				if err != nil {
					bad = append(bad, fmt.Errorf("%s: %w", record, err))
				}
				continue
			}
			if err != nil {
				r.log.Warn("pyroscope profile partly decoded", "err", err)
			}
			preq.Profiles = append(preq.Profiles, rp)
			batches = append(batches, bs...)
		}
	}
	if len(bad) > 0 {
		r.m.RefusedProfiles.WithLabelValues("pyroscope", "connect", ingest.ReasonMalformed).Add(float64(len(bad)))
		r.log.Warn("pyroscope profiles dropped", "count", len(bad), "err", errors.Join(bad...))
	}
	if len(batches) == 0 {
		if len(bad) > 0 {
			return nil, connect.NewError(connect.CodeInvalidArgument, errors.Join(bad...))
		}
		return connect.NewResponse(&pushv1.PushResponse{}), nil
	}
	if err := r.profiles.Consume(telemetry.WithReceivedProfiles(ctx, preq, batches), batches); err != nil {
		c := consumerStatus(err)
		r.m.RefusedProfiles.WithLabelValues("pyroscope", "connect", c.reason).Add(float64(len(batches)))
		code := connect.CodeUnavailable
		switch c.http {
		case http.StatusTooManyRequests:
			code = connect.CodeResourceExhausted
		case http.StatusBadRequest:
			code = connect.CodeInvalidArgument
		}
		return nil, retryError(code, err, c.retry)
	}
	r.m.AcceptedProfiles.WithLabelValues("pyroscope", "connect").Add(float64(len(batches)))
	return connect.NewResponse(&pushv1.PushResponse{}), nil
}

// retryError is a Connect error with a Retry-After when retry > 0.
func retryError(code connect.Code, err error, retry time.Duration) *connect.Error {
	cerr := connect.NewError(code, err)
	if retry > 0 {
		// Connect sends error metadata of a unary call as HTTP headers,
		// where Pyroscope clients look for Retry-After.
		cerr.Meta().Set("Retry-After", retryAfterSeconds(retry))
	}
	return cerr
}

// limitPush answers 413 for a Push body announced over the limit before
// Connect reads it, bounds what Connect can read when the length is not
// announced, and reserves what it reads on the request's ticket.
func (r *Receiver) limitPush(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.ContentLength > r.cfg.MaxRequestBytes {
			r.m.RefusedRequests.WithLabelValues("pyroscope", "connect", "profiles", ingest.ReasonTooLarge).Inc()
			http.Error(w, fmt.Sprintf("%v: %d bytes, limit %d", ingest.ErrTooLarge, req.ContentLength, r.cfg.MaxRequestBytes), http.StatusRequestEntityTooLarge)
			return
		}
		body := http.MaxBytesReader(w, req.Body, r.cfg.MaxRequestBytes)
		req.Body = &pushBody{Reader: ticketFrom(req.Context(), r.adm).Reader(body), Closer: body, r: r}
		h.ServeHTTP(w, req)
	})
}

// pushBody answers the ticket's refusals of a Push body as Push answers
// them: connect-go passes a *connect.Error from the body on as it is, and
// would make anything else UNKNOWN.
type pushBody struct {
	io.Reader
	io.Closer
	r *Receiver
}

func (b *pushBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	var over *http.MaxBytesError
	switch {
	case errors.As(err, &over):
		// A body whose length was not announced, over the limit.
		b.r.m.refusedRequest("connect", ingest.ReasonTooLarge)
		return n, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%w: the body is over max_request_bytes %d", ingest.ErrTooLarge, over.Limit))
	case errors.Is(err, admission.ErrTooLarge):
		b.r.m.refusedRequest("connect", ingest.ReasonTooLarge)
		return n, connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, admission.ErrBudget):
		b.r.m.refusedRequest("connect", ingest.ReasonMemory)
		return n, retryError(connect.CodeResourceExhausted, err, time.Second)
	}
	return n, err
}

// pushGzip is the gzip decompressor of Push messages (Connect's
// Content-Encoding, gRPC's grpc-encoding): it refuses a message over
// max_request_bytes as invalid, not throttled, as soon as it is. What it
// inflated is reserved by Push, with the message.
type pushGzip struct {
	r  *Receiver
	zr gzip.Reader
	n  int64
}

func (d *pushGzip) Reset(src io.Reader) error {
	d.n = 0
	return d.zr.Reset(src)
}

func (d *pushGzip) Read(p []byte) (int, error) {
	n, err := d.zr.Read(p)
	d.n += int64(n)
	if d.n > d.r.cfg.MaxRequestBytes {
		d.r.m.refusedRequest("connect", ingest.ReasonTooLarge)
		return n, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%w: the message is over max_request_bytes %d after decompression", ingest.ErrTooLarge, d.r.cfg.MaxRequestBytes))
	}
	return n, err
}

func (d *pushGzip) Close() error { return d.zr.Close() }
