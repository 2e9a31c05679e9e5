package otlp

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/ingest"
	"github.com/evidentsec/evident/internal/ingest/admission"
	"github.com/evidentsec/evident/internal/listener"
	"github.com/evidentsec/evident/internal/telemetry"
)

// Full method names of the OTLP services served.
const (
	tracesMethod   = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
	profilesMethod = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"
)

// grpcEncodings are the grpc-encoding values a call may use: the
// compressions the OpenTelemetry Collector's otlp exporter offers
// (configgrpc: gzip, zstd, snappy), decompressed by the decompressor
// OTLP/HTTP uses.
const grpcEncodings = "gzip,zstd,snappy"

// Errors a malformed call ends with: answered INVALID_ARGUMENT or, for a
// compression grpc-go would have failed to undo, INTERNAL, as grpc-go
// answers both.
var (
	errGRPCFrame      = fmt.Errorf("%w: gRPC message", errMalformed)
	errGRPCCompressed = errors.New("compressed message with no grpc-encoding")
	errGRPCNoMessage  = fmt.Errorf("%w: the call carried no message", errMalformed)
	errGRPCMore       = fmt.Errorf("%w: the call carried more than its one message (Export is unary)", errMalformed)
)

// serveGRPC serves OTLP/gRPC: the Export calls of the TraceService and
// of the ProfilesService (v1development), unary calls of gRPC over
// HTTP/2 (PROTOCOL-HTTP2.md in grpc/grpc), on net/http's HTTP/2 server,
// which bounds each connection's streams, windows and read time as
// listener.Options sets them. It checks a call's credentials (the
// guard), then memory (admission), before anything of its message is
// read; reads the message as OTLP/HTTP reads a body, reserving its bytes
// on the byte budget as they arrive (readGRPCMessage); takes a request
// slot once the message is read; decodes it with telemetry's decoder,
// the one OTLP/HTTP uses; and answers with the response message, or
// with a refusal's status alone (a Trailers-Only response). Answers go
// uncompressed, as a gRPC server may answer any call.
func (r *Receiver) serveGRPC(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	// What grpc-go's own handler of gRPC over net/http answers as HTTP:
	// the request is not a gRPC call.
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "gRPC calls are POST requests, not "+req.Method, http.StatusMethodNotAllowed)
		return
	}
	subtype, ok := grpcContentSubtype(req.Header.Get("Content-Type"))
	if !ok {
		http.Error(w, fmt.Sprintf("content-type %q is not gRPC's (application/grpc)", req.Header.Get("Content-Type")), http.StatusUnsupportedMediaType)
		return
	}
	signal := ""
	switch {
	case req.URL.Path == tracesMethod && r.traces != nil:
		signal = "traces"
	case req.URL.Path == profilesMethod && r.profiles != nil:
		signal = "profiles"
	}
	if r.grpcGuard != nil {
		var err error
		if req, err = r.grpcGuard.GRPC(auth.RoleIngest, req); err != nil {
			listener.WriteGRPCStatus(w, status.Convert(err))
			return
		}
	}
	if signal == "" {
		listener.WriteGRPCStatus(w, status.Newf(codes.Unimplemented, "unknown method %s", req.URL.Path))
		return
	}
	defer r.m.observe("grpc", signal, start)
	if subtype != "proto" {
		r.m.refusedRequest("grpc", signal, ingest.ReasonUnsupported)
		listener.WriteGRPCStatus(w, status.Newf(codes.Unimplemented, "content-subtype %q is not supported; OTLP's messages are proto", subtype))
		return
	}
	if err := r.exportGRPC(w, req, signal, start); err != nil {
		listener.WriteGRPCStatus(w, status.Convert(err))
	}
}

// grpcContentSubtype returns the subtype of a gRPC content-type
// (application/grpc+proto: proto, application/grpc: proto, gRPC's
// default), and whether contentType is gRPC's.
func grpcContentSubtype(contentType string) (string, bool) {
	ct := strings.ToLower(contentType)
	if !strings.HasPrefix(ct, "application/grpc") {
		return "", false
	}
	rest := ct[len("application/grpc"):]
	switch {
	case rest == "":
		return "proto", true
	case rest[0] == '+' || rest[0] == ';':
		return cmp.Or(rest[1:], "proto"), true
	}
	return "", false
}

// exportGRPC serves an Export call of signal whose credentials were
// accepted, and writes its answer; a refusal comes back as the status to
// answer, with nothing written.
func (r *Receiver) exportGRPC(w http.ResponseWriter, req *http.Request, signal string, start time.Time) error {
	ctx := req.Context()
	if v := req.Header.Get("Grpc-Timeout"); v != "" {
		d, err := parseGRPCTimeout(v)
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
		// The message is read within the call's deadline too, when that
		// comes before read_timeout's.
		if deadline := start.Add(d); r.cfg.ReadTimeout <= 0 || deadline.Before(start.Add(r.cfg.ReadTimeout)) {
			// net/http's HTTP/2 server sets a stream's read deadline.
			_ = http.NewResponseController(w).SetReadDeadline(deadline)
		}
	}
	if signal == "profiles" {
		// As pdata's own service checks it.
		if err := pprofileotlp.ValidateDevelopmentVersion(req.Header.Values(pprofileotlp.DevelopmentVersionHeader)); err != nil {
			r.m.refusedRequest("grpc", signal, ingest.ReasonMalformed)
			return status.Error(codes.InvalidArgument, err.Error())
		}
	}
	if err := r.adm.Admit(); err != nil {
		return r.refuseGRPC(signal, err)
	}
	enc := strings.ToLower(req.Header.Get("Grpc-Encoding"))
	switch enc {
	case "", "identity", "gzip", "zstd", "snappy":
	default:
		// As gRPC answers a compression it does not know.
		r.m.refusedRequest("grpc", signal, ingest.ReasonUnsupported)
		w.Header().Set("Grpc-Accept-Encoding", grpcEncodings)
		return status.Errorf(codes.Unimplemented, "grpc-encoding %q is not supported; use %s or none", enc, grpcEncodings)
	}
	t := r.adm.Ticket()
	defer t.Release()
	b := r.getBody()
	defer r.freeBodies.put(b)
	msg, compressed, err := r.readGRPCMessage(req.Body, enc, b, t)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return status.FromContextError(cerr).Err()
		}
		return r.refuseRead(signal, err)
	}
	if !r.acquire() {
		r.m.refusedRequest("grpc", signal, ingest.ReasonFull)
		return grpcStatus(codes.ResourceExhausted, fmt.Errorf("%d requests in flight, retry later", r.cfg.MaxConcurrentRequests), busyRetry)
	}
	defer r.release()
	if compressed {
		// Under the slot: a crafted message can make inflating it cost
		// seconds of CPU, which MaxConcurrentRequests bounds so.
		if msg, err = r.decompressGRPC(msg, enc, b, t); err != nil {
			return r.refuseRead(signal, err)
		}
	}
	var out []byte
	if signal == "traces" {
		resp, err := r.exportTraces(ctx, "grpc", t, "OTLP/gRPC TraceService from "+req.RemoteAddr, msg, nil)
		if err != nil {
			return r.refuseExport(signal, err)
		}
		if out, err = resp.MarshalProto(); err != nil {
			return status.Error(codes.Internal, "marshal response: "+err.Error())
		}
	} else {
		preq := pprofileotlp.NewExportRequest()
		if err := preq.UnmarshalProto(msg); err != nil {
			r.m.refusedRequest("grpc", signal, ingest.ReasonMalformed)
			return status.Error(codes.InvalidArgument, fmt.Sprintf("%v: %v", errMalformed, err))
		}
		resp, err := r.exportProfiles(ctx, "grpc", "OTLP/gRPC ProfilesService from "+req.RemoteAddr, preq, msg)
		if err != nil {
			return r.refuseExport(signal, err)
		}
		if out, err = resp.MarshalProto(); err != nil {
			return status.Error(codes.Internal, "marshal response: "+err.Error())
		}
	}
	writeGRPCMessage(w, out)
	return nil
}

// refuseExport answers a request that was read but not exported: the
// consumer's refusal, the budget's, or a request of which nothing
// decodes.
func (r *Receiver) refuseExport(signal string, err error) error {
	var ce *consumerError
	switch {
	case errors.As(err, &ce):
		return grpcStatus(ce.code, ce.err, ce.retry)
	case errors.Is(err, admission.ErrBudget), errors.Is(err, admission.ErrTooLarge):
		return r.refuseGRPC(signal, err)
	}
	r.m.refusedRequest("grpc", signal, ingest.ReasonMalformed)
	return status.Error(codes.InvalidArgument, err.Error())
}

// readGRPCMessage reads a call's message into b: a Length-Prefixed-Message
// of gRPC over HTTP/2 (a compressed flag byte, a 4-byte big-endian
// length, the message) of at most max_request_bytes, reserving on t the
// bytes as they arrive, as OTLP/HTTP reads a body, so that a client that
// sends slowly, or stops, holds only what it sent. It reports whether
// the message is compressed: decompressGRPC inflates it, under a request
// slot, as OTLP/HTTP does. OTLP's Export is unary: a call whose stream
// goes on after its message is refused, as gRPC's servers refuse it,
// rather than acknowledged with what follows dropped.
func (r *Receiver) readGRPCMessage(src io.Reader, encoding string, b *body, t *admission.Ticket) (msg []byte, compressed bool, err error) {
	var prefix [5]byte
	if _, err := io.ReadFull(src, prefix[:]); err != nil {
		switch err {
		case io.EOF:
			return nil, false, errGRPCNoMessage
		case io.ErrUnexpectedEOF:
			return nil, false, fmt.Errorf("%w prefix cut short", errGRPCFrame)
		}
		return nil, false, err
	}
	flag, n := prefix[0], int64(binary.BigEndian.Uint32(prefix[1:]))
	limit := r.cfg.MaxRequestBytes
	switch {
	case flag > 1:
		return nil, false, fmt.Errorf("%w flag %d, want 0 or 1 (compressed)", errGRPCFrame, flag)
	case n > limit:
		return nil, false, fmt.Errorf("%w: a message of %d bytes, max_request_bytes %d", ingest.ErrTooLarge, n, limit)
	case flag == 1 && (encoding == "" || encoding == "identity"):
		return nil, false, errGRPCCompressed
	}
	raw, err := ingest.ReadBody(b.raw, io.LimitReader(src, n), n, limit, t)
	if err != nil {
		return nil, false, err
	}
	b.raw = raw
	if int64(len(raw)) < n {
		return nil, false, fmt.Errorf("%w cut short: the body ended after %d of the %d bytes its prefix states", errGRPCFrame, len(raw), n)
	}
	// A unary call's client ends its stream with its message, so the
	// end is already there.
	var more [1]byte
	switch _, err := io.ReadFull(src, more[:]); err {
	case io.EOF:
	case nil:
		return nil, false, errGRPCMore
	default:
		return nil, false, err
	}
	return raw, flag == 1, nil
}

// decompressGRPC inflates raw, a compressed message of a call read into
// b, within max_request_bytes, reserving on t what it inflates.
func (r *Receiver) decompressGRPC(raw []byte, encoding string, b *body, t *admission.Ticket) ([]byte, error) {
	plain, err := r.dec.Decompress(b.plain, raw, encoding, r.cfg.MaxRequestBytes, t)
	if err != nil {
		return nil, err
	}
	if cap(plain) > 0 && (cap(raw) == 0 || &plain[:1][0] != &raw[:1][0]) {
		b.plain = plain // keep its storage for the next call
	}
	return plain, nil
}

// writeGRPCMessage answers a call with msg and an OK status: headers,
// the message, uncompressed, with its prefix, and grpc-status 0 in the
// trailers.
func writeGRPCMessage(w http.ResponseWriter, msg []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	w.WriteHeader(http.StatusOK)
	out := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
	_, _ = w.Write(append(out, msg...)) // a write error is the client gone: no one to tell
	// A header set after the headers went, under http.TrailerPrefix, is
	// sent as a trailer.
	h.Set(http.TrailerPrefix+"Grpc-Status", "0")
}

// parseGRPCTimeout parses a grpc-timeout: at most 8 digits and a unit,
// H, M, S, m (milliseconds), u (microseconds) or n (nanoseconds). A
// timeout beyond what a time.Duration holds (about 292 years) is taken
// as the longest one.
func parseGRPCTimeout(v string) (time.Duration, error) {
	bad := fmt.Errorf("malformed grpc-timeout %q: want 1 to 8 digits and a unit (H, M, S, m, u, n)", v)
	if len(v) < 2 || len(v) > 9 {
		return 0, bad
	}
	n, err := strconv.ParseUint(v[:len(v)-1], 10, 64)
	if err != nil || v[0] == '+' {
		return 0, bad
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, bad
	}
	if n > uint64(math.MaxInt64/unit) {
		return math.MaxInt64, nil
	}
	return time.Duration(n) * unit, nil
}

// refuseRead answers a message that could not be read, by why.
func (r *Receiver) refuseRead(signal string, body error) error {
	switch {
	case errors.Is(body, context.Canceled), errors.Is(body, context.DeadlineExceeded):
		return status.FromContextError(body).Err()
	case errors.Is(body, admission.ErrBudget), errors.Is(body, admission.ErrTooLarge), errors.Is(body, ingest.ErrTooLarge):
		return r.refuseGRPC(signal, body)
	case errors.Is(body, os.ErrDeadlineExceeded):
		r.m.refusedRequest("grpc", signal, ingest.ReasonTimeout)
		return status.Error(codes.DeadlineExceeded, "the message did not arrive in time (read_timeout, or the call's grpc-timeout)")
	case errors.Is(body, ingest.ErrCorrupt), errors.Is(body, errGRPCCompressed):
		// As grpc-go answers a message it cannot decompress.
		r.m.refusedRequest("grpc", signal, ingest.ReasonMalformed)
		return status.Error(codes.Internal, body.Error())
	case errors.Is(body, errMalformed):
		r.m.refusedRequest("grpc", signal, ingest.ReasonMalformed)
		return status.Error(codes.InvalidArgument, body.Error())
	}
	return status.Error(codes.Unavailable, body.Error())
}

// grpcStatus builds the status of a refusal; a throttling status carries
// a RetryInfo so that OTLP clients retry RESOURCE_EXHAUSTED
// (protocols.md §1.1).
func grpcStatus(code codes.Code, err error, retry time.Duration) error {
	st := status.New(code, err.Error())
	if retry > 0 {
		if with, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retry)}); derr == nil {
			st = with
		}
	}
	return st.Err()
}

// exportProfiles decodes a profiles request with telemetry's OTLP
// decoder, the same for both transports, and hands the batches on with
// the request (telemetry.WithReceivedProfiles), for the consumer to log
// as it is. The request is marshalled again when it came in JSON
// (protoData nil): profiles arrive a few times a minute per process, and
// one decoder is worth more than that copy. Profiles the decoder drops
// are reported as rejected in the response; consumer refusals come back
// as *consumerError.
func (r *Receiver) exportProfiles(ctx context.Context, transport, source string, req pprofileotlp.ExportRequest, protoData []byte) (pprofileotlp.ExportResponse, error) {
	total := 0
	rps := req.Profiles().ResourceProfiles()
	for i := 0; i < rps.Len(); i++ {
		sps := rps.At(i).ScopeProfiles()
		for j := 0; j < sps.Len(); j++ {
			total += sps.At(j).Profiles().Len()
		}
	}
	if protoData == nil {
		var err error
		if protoData, err = req.MarshalProto(); err != nil {
			return pprofileotlp.ExportResponse{}, fmt.Errorf("%w: re-encode profiles: %w", errMalformed, err)
		}
	}
	preq := &telemetry.ProfileRequest{Limits: r.cfg.Profiles, Profiles: []telemetry.ReceivedProfile{{Format: telemetry.FormatOTLPProfiles, Data: protoData, Source: source}}}
	batches, derr := preq.Limits.DecodeProfile(&preq.Profiles[0])
	if derr != nil && len(batches) == 0 && total > 0 {
		return pprofileotlp.ExportResponse{}, derr
	}
	rejected := int64(max(0, total-len(batches)))
	if rejected > 0 {
		r.m.RefusedProfiles.WithLabelValues("otlp", transport, ingest.ReasonMalformed).Add(float64(rejected))
	}
	if len(batches) > 0 {
		if err := r.profiles.Consume(telemetry.WithReceivedProfiles(ctx, preq, batches), batches); err != nil {
			st, code, retry, reason := consumerStatus(err)
			r.m.RefusedProfiles.WithLabelValues("otlp", transport, reason).Add(float64(len(batches)))
			return pprofileotlp.ExportResponse{}, &consumerError{err: err, status: st, code: code, retry: retry}
		}
		r.m.AcceptedProfiles.WithLabelValues("otlp", transport).Add(float64(len(batches)))
	}
	resp := pprofileotlp.NewExportResponse()
	if derr != nil {
		// rejected may be 0: then the message is a warning about dropped
		// samples, as OTLP allows.
		resp.PartialSuccess().SetRejectedProfiles(rejected)
		resp.PartialSuccess().SetErrorMessage(derr.Error())
	}
	return resp, nil
}
