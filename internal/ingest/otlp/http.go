package otlp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"os"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/evidentsec/evident/internal/ingest"
	"github.com/evidentsec/evident/internal/ingest/admission"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/telemetry"
)

// OTLP/HTTP paths (protocols.md §1.2, §2.1).
const (
	TracesPath   = "/v1/traces"
	ProfilesPath = "/v1development/profiles"
)

// errMalformed marks a request body that does not decode.
var errMalformed = errors.New("malformed request body")

// encoding is the OTLP/HTTP body encoding, chosen by Content-Type; the
// response uses the same one.
type encoding uint8

const (
	encProto encoding = iota
	encJSON
)

func (e encoding) contentType() string {
	if e == encJSON {
		return "application/json"
	}
	return "application/x-protobuf"
}

// checkRequest answers 405 and 415 itself and returns the encoding of an
// acceptable request.
func (r *Receiver) checkRequest(w http.ResponseWriter, req *http.Request, signal string) (encoding, bool) {
	if req.Method != http.MethodPost {
		r.m.refusedRequest("http", signal, ingest.ReasonUnsupported)
		w.Header().Set("Allow", http.MethodPost)
		writeStatus(w, encJSON, http.StatusMethodNotAllowed, codes.Unimplemented, fmt.Sprintf("method %s not allowed, use POST", req.Method), 0)
		return 0, false
	}
	ct := req.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	switch {
	case err == nil && mt == "application/x-protobuf":
		return encProto, true
	case err == nil && mt == "application/json":
		return encJSON, true
	}
	r.m.refusedRequest("http", signal, ingest.ReasonUnsupported)
	writeStatus(w, encJSON, http.StatusUnsupportedMediaType, codes.InvalidArgument,
		fmt.Sprintf("content type %q not supported, use application/x-protobuf or application/json", ct), 0)
	return 0, false
}

// admitHTTP refuses a request before its body is read while memory is
// above the soft limit, and gives the handler a ticket on the byte
// budget for its body, released when it returns.
func (r *Receiver) admitHTTP(signal string, h func(http.ResponseWriter, *http.Request, *admission.Ticket)) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if err := r.adm.Admit(); err != nil {
			enc := encProto
			if mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); mt == "application/json" {
				enc = encJSON
			}
			r.refuseBody(w, enc, signal, err)
			return
		}
		t := r.adm.Ticket()
		defer t.Release()
		h(w, req, t)
	}
}

// body holds the buffers of one request, the body as read and
// decompressed, reused through Receiver.freeBodies.
type body struct {
	raw, plain []byte
}

// bodyBytes is the size of b's buffers, 0 for none.
func bodyBytes(b *body) int {
	if b == nil {
		return 0
	}
	return cap(b.raw) + cap(b.plain)
}

// getBody returns the buffers of a finished request, or new ones.
func (r *Receiver) getBody() *body {
	if b := r.freeBodies.get(); b != nil {
		return b
	}
	return new(body)
}

// readBody reads the body, then takes a request slot, then decompresses
// the body within MaxRequestBytes after decompression, reserving it on t.
// A client that sends slowly holds only the bytes it sent, never a slot,
// so slow clients cannot starve the others; decompressing, which a
// crafted body can make cost seconds of CPU, is done under the slot, so
// that MaxConcurrentRequests bounds it. It answers refusals itself; on
// success the caller calls release when done.
func (r *Receiver) readBody(w http.ResponseWriter, req *http.Request, enc encoding, signal string, b *body, t *admission.Ticket) (data []byte, release func(), ok bool) {
	limit := r.cfg.MaxRequestBytes
	data, err := ingest.ReadBody(b.raw, req.Body, req.ContentLength, limit, t)
	if err != nil {
		r.refuseBody(w, enc, signal, err)
		return nil, nil, false
	}
	b.raw = data
	if !r.acquire() {
		r.m.refusedRequest("http", signal, ingest.ReasonFull)
		writeStatus(w, enc, http.StatusTooManyRequests, codes.ResourceExhausted,
			fmt.Sprintf("%d requests in flight, retry later", r.cfg.MaxConcurrentRequests), busyRetry)
		return nil, nil, false
	}
	data, err = r.dec.Decompress(b.plain, data, req.Header.Get("Content-Encoding"), limit, t)
	if err != nil {
		r.release()
		r.refuseBody(w, enc, signal, err)
		return nil, nil, false
	}
	if cap(data) > 0 && cap(b.raw) > 0 && &data[:1][0] != &b.raw[:1][0] {
		b.plain = data // decompressed: keep its storage for the next request
	}
	return data, r.release, true
}

// refuseBody answers a body that could not be read or decoded.
func (r *Receiver) refuseBody(w http.ResponseWriter, enc encoding, signal string, err error) {
	switch {
	case errors.Is(err, admission.ErrMemory), errors.Is(err, admission.ErrBudget):
		r.m.refusedRequest("http", signal, ingest.ReasonMemory)
		writeStatus(w, enc, http.StatusTooManyRequests, codes.ResourceExhausted, err.Error(), busyRetry)
	case errors.Is(err, ingest.ErrTooLarge), errors.Is(err, telemetry.ErrTooLarge), errors.Is(err, admission.ErrTooLarge):
		r.m.refusedRequest("http", signal, ingest.ReasonTooLarge)
		writeStatus(w, enc, http.StatusRequestEntityTooLarge, codes.ResourceExhausted, err.Error(), 0)
	case errors.Is(err, ingest.ErrEncoding):
		r.m.refusedRequest("http", signal, ingest.ReasonUnsupported)
		writeStatus(w, enc, http.StatusUnsupportedMediaType, codes.InvalidArgument, err.Error(), 0)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// A slow client, not a malformed request: gRPC answers the same
		// with DEADLINE_EXCEEDED.
		r.m.refusedRequest("http", signal, ingest.ReasonTimeout)
		writeStatus(w, enc, http.StatusRequestTimeout, codes.DeadlineExceeded, ingest.BodyTimeout(r.cfg.ReadTimeout), 0)
	default:
		r.m.refusedRequest("http", signal, ingest.ReasonMalformed)
		writeStatus(w, enc, http.StatusBadRequest, codes.InvalidArgument, err.Error(), 0)
	}
}

// serveTraces handles POST /v1/traces.
func (r *Receiver) serveTraces(w http.ResponseWriter, req *http.Request, t *admission.Ticket) {
	start := time.Now()
	defer r.m.observe("http", "traces", start)
	enc, ok := r.checkRequest(w, req, "traces")
	if !ok {
		return
	}
	b := r.getBody()
	defer r.freeBodies.put(b)
	data, release, ok := r.readBody(w, req, enc, "traces", b, t)
	if !ok {
		return
	}
	defer release()
	source := "OTLP/HTTP " + TracesPath + " from " + req.RemoteAddr
	var received []byte
	var decode func(emit func([]telemetry.Span) error) error
	if enc == encProto {
		received = data
	} else {
		decode = func(emit func([]telemetry.Span) error) error {
			return telemetry.DecodeTracesJSON(data, source, emit)
		}
	}
	resp, err := r.exportTraces(req.Context(), "http", t, source, received, decode)
	if err != nil {
		var ce *consumerError
		if errors.As(err, &ce) {
			writeStatus(w, enc, ce.status, ce.code, ce.Error(), ce.retry)
			return
		}
		r.refuseBody(w, enc, "traces", err)
		return
	}
	var out []byte
	if enc == encJSON {
		out, err = resp.MarshalJSON()
	} else {
		out, err = resp.MarshalProto()
	}
	writeResponse(w, enc, out, err)
}

// exportTraces decodes a trace request, reserving the decoded spans on
// t, and hands the spans on. A request in protobuf, req (decode nil),
// goes through the same decoder for both transports, which also says
// where its texts are, and is handed on with them for the consumer to log
// as it is (telemetry.WithReceived); its spans are decoded into a slice
// the consumer gave back, when there is one, and handed on with the way
// to give theirs back (telemetry.WithRelease). Other forms (JSON) go
// through decode. What the decoder drops is reported as rejected in the
// response; a request of which nothing decodes, or that the budget cannot
// hold, comes back as the decoder's error, and consumer refusals as
// *consumerError.
func (r *Receiver) exportTraces(ctx context.Context, transport string, t *admission.Ticket, source string, req []byte, decode func(emit func([]telemetry.Span) error) error) (ptraceotlp.ExportResponse, error) {
	// Decoded spans are held until the consumer has them: a request waits
	// a little for those of others to go rather than being refused.
	wait, cancel := context.WithTimeout(ctx, busyRetry)
	defer cancel()
	reserve := func(n int) error { return t.ReserveWait(wait, int64(n)*admission.DecodedSpanBytes) }
	var spans []telemetry.Span
	var texts *telemetry.Texts
	var derr error
	proto := decode == nil
	if proto {
		spans, texts, derr = telemetry.DecodeReceivedTraceRequest(r.freeSpans.get()[:0], r.freeTexts.get(), req, source, reserve)
		// The consumer keeps nothing of texts once it returns.
		defer func() { r.freeTexts.put(texts) }()
	} else {
		derr = decode(func(s []telemetry.Span) error {
			if err := reserve(len(s)); err != nil {
				return err
			}
			if spans == nil {
				spans = s // the usual single resource: no copy
				return nil
			}
			spans = append(spans, s...)
			return nil
		})
	}
	if derr != nil && (len(spans) == 0 || errors.Is(derr, admission.ErrBudget) || errors.Is(derr, admission.ErrTooLarge)) {
		if proto {
			r.freeSpans.put(spans) // no one else has seen them
		}
		return ptraceotlp.ExportResponse{}, derr
	}
	var rejected int64
	if derr != nil {
		rejected = countRecords(derr)
		r.m.RefusedSpans.WithLabelValues("otlp", transport, ingest.ReasonMalformed).Add(float64(rejected))
	}
	if len(spans) > 0 {
		if proto {
			ctx = telemetry.WithReceived(ctx, req, texts, spans)
			ctx = telemetry.WithRelease(ctx, spans, r.putSpans)
		}
		if err := r.traces.Consume(ctx, spans); err != nil {
			st, code, retry, reason := consumerStatus(err)
			r.m.RefusedSpans.WithLabelValues("otlp", transport, reason).Add(float64(len(spans)))
			return ptraceotlp.ExportResponse{}, &consumerError{err: err, status: st, code: code, retry: retry}
		}
		r.m.AcceptedSpans.WithLabelValues("otlp", transport).Add(float64(len(spans)))
	} else if proto {
		r.freeSpans.put(spans)
	}
	resp := ptraceotlp.NewExportResponse()
	if derr != nil {
		resp.PartialSuccess().SetRejectedSpans(rejected)
		resp.PartialSuccess().SetErrorMessage(derr.Error())
	}
	return resp, nil
}

// serveProfiles handles POST /v1development/profiles.
func (r *Receiver) serveProfiles(w http.ResponseWriter, req *http.Request, t *admission.Ticket) {
	start := time.Now()
	defer r.m.observe("http", "profiles", start)
	enc, ok := r.checkRequest(w, req, "profiles")
	if !ok {
		return
	}
	if err := pprofileotlp.ValidateDevelopmentVersion(req.Header.Values(pprofileotlp.DevelopmentVersionHeader)); err != nil {
		r.refuseBody(w, enc, "profiles", fmt.Errorf("%w: header %s: %w", errMalformed, pprofileotlp.DevelopmentVersionHeader, err))
		return
	}
	b := r.getBody()
	defer r.freeBodies.put(b)
	data, release, ok := r.readBody(w, req, enc, "profiles", b, t)
	if !ok {
		return
	}
	defer release()
	var err error
	preq := pprofileotlp.NewExportRequest()
	var protoData []byte
	if enc == encJSON {
		if err = preq.UnmarshalJSON(data); err != nil {
			err = cmp.Or(telemetry.JSONSyntaxError(data), err)
		}
	} else {
		err, protoData = preq.UnmarshalProto(data), data
	}
	if err != nil {
		r.refuseBody(w, enc, "profiles", fmt.Errorf("%w: %w", errMalformed, err))
		return
	}
	resp, err := r.exportProfiles(req.Context(), "http", "OTLP/HTTP "+ProfilesPath+" from "+req.RemoteAddr, preq, protoData)
	if err != nil {
		var ce *consumerError
		if errors.As(err, &ce) {
			writeStatus(w, enc, ce.status, ce.code, ce.Error(), ce.retry)
			return
		}
		r.refuseBody(w, enc, "profiles", err)
		return
	}
	var out []byte
	if enc == encJSON {
		out, err = resp.MarshalJSON()
	} else {
		out, err = resp.MarshalProto()
	}
	writeResponse(w, enc, out, err)
}

// writeResponse writes a 200 with a marshalled Export*ServiceResponse.
func writeResponse(w http.ResponseWriter, enc encoding, out []byte, err error) {
	if err != nil {
		writeStatus(w, enc, http.StatusInternalServerError, codes.Internal, "marshal response: "+err.Error(), 0)
		return
	}
	w.Header().Set("Content-Type", enc.contentType())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// writeStatus writes an OTLP failure: a google.rpc.Status in the
// request's encoding, with Retry-After when retry > 0.
func writeStatus(w http.ResponseWriter, enc encoding, httpStatus int, code codes.Code, msg string, retry time.Duration) {
	st := &spb.Status{Code: int32(code), Message: msg}
	var out []byte
	if enc == encJSON {
		out, _ = protojson.Marshal(st)
	} else {
		out, _ = proto.Marshal(st)
	}
	h := w.Header()
	h.Set("Content-Type", enc.contentType())
	if retry > 0 {
		h.Set("Retry-After", retryAfterSeconds(retry))
	}
	w.WriteHeader(httpStatus)
	_, _ = w.Write(out)
}

// retryAfterSeconds rounds d up to whole seconds, at least 1, as
// Retry-After carries no fractions.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(max(1, math.Ceil(d.Seconds()))), 10)
}

// defaultRetry is the wait suggested when a consumer says it is full
// without saying for how long; OTLP clients treat RESOURCE_EXHAUSTED as
// retryable only with a RetryInfo, so one is always sent.
const defaultRetry = time.Second

// consumerError is a consumer's refusal with the answer it maps to.
type consumerError struct {
	err    error
	status int
	code   codes.Code
	retry  time.Duration
}

func (e *consumerError) Error() string { return e.err.Error() }
func (e *consumerError) Unwrap() error { return e.err }

// consumerStatus maps a consumer error onto OTLP's answers: full queues
// are throttling (429, RESOURCE_EXHAUSTED with RetryInfo), Permanent
// errors are bad data (400, INVALID_ARGUMENT), anything else is a
// retryable outage (503, UNAVAILABLE), with the retry hint of a
// *pipeline.UnavailableError.
func consumerStatus(err error) (status int, code codes.Code, retry time.Duration, reason string) {
	var fe *pipeline.FullError
	var ue *pipeline.UnavailableError
	switch {
	case errors.As(err, &fe):
		retry = fe.RetryAfter
		if retry <= 0 {
			retry = defaultRetry
		}
		return http.StatusTooManyRequests, codes.ResourceExhausted, retry, ingest.ReasonFull
	case errors.Is(err, pipeline.ErrFull):
		return http.StatusTooManyRequests, codes.ResourceExhausted, defaultRetry, ingest.ReasonFull
	case pipeline.IsPermanent(err):
		return http.StatusBadRequest, codes.InvalidArgument, 0, ingest.ReasonRejected
	case errors.As(err, &ue):
		return http.StatusServiceUnavailable, codes.Unavailable, max(ue.RetryAfter, defaultRetry), ingest.ReasonUnavailable
	default:
		return http.StatusServiceUnavailable, codes.Unavailable, 0, ingest.ReasonUnavailable
	}
}

// countRecords counts the records a decode error reports as dropped. The
// telemetry decoders report at most a few records one by one and sum up
// the rest in one error, which counts as one here: the count is a lower
// bound, and a record may be a whole resource rather than one span.
func countRecords(err error) int64 {
	if _, ok := err.(*telemetry.RecordError); ok {
		return 1
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var n int64
		for _, e := range j.Unwrap() {
			n += countRecords(e)
		}
		return n
	}
	if inner := errors.Unwrap(err); inner != nil {
		return countRecords(inner)
	}
	return 1
}
