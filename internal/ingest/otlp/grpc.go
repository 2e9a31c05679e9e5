package otlp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/ingest"
	"github.com/evidentsec/evident/internal/ingest/admission"
	"github.com/evidentsec/evident/internal/listener"
	"github.com/evidentsec/evident/internal/telemetry"
)

// serveGRPC serves the gRPC listener, in front of the gRPC server
// (grpc.Server.ServeHTTP): it checks a call's credentials (the guard),
// then memory (admission), before anything of its message is read, and
// answers a refusal with the call's status; then it hands the call to
// the gRPC server with a body that reserves the message on the byte
// budget as it arrives and decompresses it (grpcBody). Request slots
// are taken by the handlers once the message is read (recvGRPC).
// net/http's HTTP/2 server bounds each call's streams, windows and read
// time (read_timeout), as listener.Options sets them.
func (r *Receiver) serveGRPC(w http.ResponseWriter, req *http.Request) {
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
		// A method not served: grpc-go answers UNIMPLEMENTED, and reads
		// nothing of what the client sends.
		req.Body = http.NoBody
		r.grpcSrv.ServeHTTP(w, req)
		return
	}
	if err := r.adm.Admit(); err != nil {
		listener.WriteGRPCStatus(w, status.Convert(r.refuseGRPC(signal, err)))
		return
	}
	enc := strings.ToLower(req.Header.Get("Grpc-Encoding"))
	switch enc {
	case "", "identity", "gzip", "zstd", "snappy":
	default:
		// As gRPC answers a compression it does not know.
		r.m.refusedRequest("grpc", signal, ingest.ReasonUnsupported)
		w.Header().Set("Grpc-Accept-Encoding", grpcEncodings)
		listener.WriteGRPCStatus(w, status.Newf(codes.Unimplemented, "grpc-encoding %q is not supported; use %s or none", enc, grpcEncodings))
		return
	}
	// grpcBody decompresses: grpc-go sees an uncompressed message, and
	// answers uncompressed.
	req.Header.Del("Grpc-Encoding")
	t := r.adm.Ticket()
	defer t.Release()
	body := newGRPCBody(r, req.Body, t, enc)
	// ServeHTTP returns once grpc-go has stopped reading the body.
	defer body.putBuffers()
	req = req.WithContext(context.WithValue(req.Context(), callKey{}, &grpcCall{t: t, body: body}))
	req.Body = body
	r.grpcSrv.ServeHTTP(w, req)
}

// grpcCall is what serveGRPC gives a call's handler: its ticket on the
// byte budget and its body.
type grpcCall struct {
	t    *admission.Ticket
	body *grpcBody
}

type callKey struct{}

// rawMessage is a gRPC message as it travels: messageCodec copies a
// request into it without decoding it, and sends one as it is.
type rawMessage struct{ b []byte }

// messageCodec is the server's gRPC codec: it hands requests over as
// received, for telemetry's OTLP decoder, the one OTLP/HTTP uses, to
// decode once, and sends answers marshalled already. grpcBody has
// decompressed a compressed message before grpc-go reads it.
type messageCodec struct {
	// free holds the messages of finished requests, to copy the next
	// ones into.
	free freeList[[]byte]
}

// Marshal encodes v; see grpcencoding.CodecV2.
func (messageCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawMessage)
	if !ok {
		return nil, fmt.Errorf("otlp grpc codec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
}

// Unmarshal copies data into v; see grpcencoding.CodecV2. grpc-go frees
// data when Unmarshal returns, so the message is copied, into the
// message of a finished request when one is free and large enough (the
// handlers give them back).
func (c messageCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return fmt.Errorf("otlp grpc codec: cannot unmarshal into %T", v)
	}
	n := data.Len()
	b := c.free.get()
	if cap(b) < n {
		b = make([]byte, n)
	}
	b = b[:n]
	data.CopyTo(b)
	m.b = b
	return nil
}

// Name is the codec's content-subtype, proto, as OTLP's.
func (messageCodec) Name() string { return "proto" }

// Full method names of the OTLP services served.
const (
	tracesMethod   = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
	profilesMethod = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"
)

// exportDesc describes an OTLP service whose Export is served as a
// stream of one request and one response, which is a unary call on the
// wire: the handler receives the message undecoded (messageCodec), and
// takes a request slot only once the message is read.
func exportDesc(service, proto string, export func(*grpcServer, grpc.ServerStream) error) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: service,
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{
			StreamName: "Export",
			Handler:    func(srv any, stream grpc.ServerStream) error { return export(srv.(*grpcServer), stream) },
		}},
		Metadata: proto,
	}
}

// grpcServer serves OTLP/gRPC's TraceService and ProfilesService
// (v1development).
type grpcServer struct{ r *Receiver }

// traces reads one request, decodes its spans, as OTLP/HTTP does, and
// hands them to the traces consumer.
func (s *grpcServer) traces(stream grpc.ServerStream) error {
	r := s.r
	start := time.Now()
	defer r.m.observe("grpc", "traces", start)
	msg, t, err := r.recvGRPC(stream, "traces")
	if err != nil {
		return err
	}
	defer r.release()
	ctx := stream.Context()
	resp, err := r.exportTraces(ctx, "grpc", t, grpcSource(ctx, "TraceService"), msg, nil)
	// The consumer has taken what it keeps of the message (the engine, a
	// compressed copy for its log), and the spans hold copies of its
	// strings: the next request can be read into it.
	r.freeMessages.put(msg)
	if err != nil {
		var ce *consumerError
		switch {
		case errors.As(err, &ce):
			return grpcStatus(ce.code, ce.err, ce.retry)
		case errors.Is(err, admission.ErrBudget), errors.Is(err, admission.ErrTooLarge):
			return r.refuseGRPC("traces", err)
		}
		r.m.refusedRequest("grpc", "traces", ingest.ReasonMalformed)
		return status.Error(codes.InvalidArgument, err.Error())
	}
	out, err := resp.MarshalProto()
	if err != nil {
		return status.Error(codes.Internal, "marshal response: "+err.Error())
	}
	return stream.SendMsg(&rawMessage{b: out})
}

// profiles reads one request, decodes its profiles, as OTLP/HTTP does,
// and hands them to the profiles consumer. It checks the development
// version in the metadata first, as pdata's own service does.
func (s *grpcServer) profiles(stream grpc.ServerStream) error {
	r := s.r
	start := time.Now()
	defer r.m.observe("grpc", "profiles", start)
	ctx := stream.Context()
	if err := pprofileotlp.ValidateDevelopmentVersion(metadata.ValueFromIncomingContext(ctx, pprofileotlp.DevelopmentVersionHeader)); err != nil {
		r.m.refusedRequest("grpc", "profiles", ingest.ReasonMalformed)
		return status.Error(codes.InvalidArgument, err.Error())
	}
	msg, _, err := r.recvGRPC(stream, "profiles")
	if err != nil {
		return err
	}
	defer r.release()
	req := pprofileotlp.NewExportRequest()
	if err := req.UnmarshalProto(msg); err != nil {
		r.m.refusedRequest("grpc", "profiles", ingest.ReasonMalformed)
		return status.Error(codes.InvalidArgument, fmt.Sprintf("%v: %v", errMalformed, err))
	}
	resp, err := r.exportProfiles(ctx, "grpc", grpcSource(ctx, "ProfilesService"), req, msg)
	if err != nil {
		var ce *consumerError
		if errors.As(err, &ce) {
			return grpcStatus(ce.code, ce.err, ce.retry)
		}
		r.m.refusedRequest("grpc", "profiles", ingest.ReasonMalformed)
		return status.Error(codes.InvalidArgument, err.Error())
	}
	out, err := resp.MarshalProto()
	if err != nil {
		return status.Error(codes.Internal, "marshal response: "+err.Error())
	}
	return stream.SendMsg(&rawMessage{b: out})
}

// grpcSource names where a request came from, for the records decoded
// from it.
func grpcSource(ctx context.Context, service string) string {
	source := "OTLP/gRPC " + service
	if p, ok := peer.FromContext(ctx); ok {
		source += " from " + p.Addr.String()
	}
	return source
}

// recvGRPC reads the call's message, which its body reserved as it
// arrived (grpcBody), keeps only the copy it returns reserved, and takes
// a request slot for decoding it, which the caller releases. A client
// that sends slowly holds only the bytes it sent, never a slot, as over
// OTLP/HTTP. Refusals come back as the status to answer.
func (r *Receiver) recvGRPC(stream grpc.ServerStream, signal string) ([]byte, *admission.Ticket, error) {
	c, ok := stream.Context().Value(callKey{}).(*grpcCall)
	if !ok {
		return nil, nil, status.Error(codes.Internal, "otlp grpc call served without its body") // serveGRPC serves every call
	}
	// grpc-go answers a failed RecvMsg itself, as UNAVAILABLE for
	// whatever the body failed with: the call waits for its body first,
	// and answers a failure as what it is.
	if err := c.body.wait(stream.Context()); err != nil {
		return nil, nil, r.refuseRead(signal, err)
	}
	// The codec's copy, made while grpc-go still holds what it read.
	if err := c.t.ReserveRead(c.body.size); err != nil {
		return nil, nil, r.refuseGRPC(signal, err)
	}
	m := &rawMessage{}
	if err := stream.RecvMsg(m); err != nil {
		return nil, nil, err
	}
	// grpc-go has let go of what it read: the call holds its copy alone.
	if err := c.t.Resize(int64(len(m.b))); err != nil {
		r.freeMessages.put(m.b)
		return nil, nil, r.refuseGRPC(signal, err)
	}
	if !r.acquire() {
		r.freeMessages.put(m.b)
		r.m.refusedRequest("grpc", signal, ingest.ReasonFull)
		return nil, nil, grpcStatus(codes.ResourceExhausted, fmt.Errorf("%d requests in flight, retry later", r.cfg.MaxConcurrentRequests), busyRetry)
	}
	return m.b, c.t, nil
}

// refuseRead answers a message that could not be read, by why.
func (r *Receiver) refuseRead(signal string, body error) error {
	switch {
	case errors.Is(body, context.Canceled), errors.Is(body, context.DeadlineExceeded):
		return status.FromContextError(body).Err()
	case errors.Is(body, admission.ErrBudget), errors.Is(body, admission.ErrTooLarge), errors.Is(body, ingest.ErrTooLarge):
		return r.refuseGRPC(signal, body)
	case errors.Is(body, os.ErrDeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "the message did not arrive within read_timeout")
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
