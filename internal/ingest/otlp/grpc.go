package otlp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcencoding "google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/evidentsec/evident/internal/ingest"
	"github.com/evidentsec/evident/internal/ingest/admission"
	"github.com/evidentsec/evident/internal/telemetry"
)

// rawMessage is a gRPC message as it travels: traceCodec copies a request
// into it without decoding it, and sends one as it is.
type rawMessage struct{ b []byte }

// traceCodec is the server's gRPC codec: it hands TraceService requests
// over as received, for telemetry's OTLP decoder, the one OTLP/HTTP uses,
// to decode once; every other message goes through the registered proto
// codec (pdata's, for the ProfilesService). grpc-go decompresses before
// the codec, so compressed calls arrive here as protobuf too.
type traceCodec struct {
	proto grpcencoding.CodecV2
	// free holds the messages of finished requests, to copy the next
	// ones into.
	free freeList[[]byte]
}

// Marshal encodes v; see grpcencoding.CodecV2.
func (c traceCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*rawMessage); ok {
		return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
	}
	return c.proto.Marshal(v)
}

// Unmarshal decodes data into v; see grpcencoding.CodecV2. grpc-go frees data
// when Unmarshal returns, so a raw message takes a copy, into the message
// of a finished request when one is free and large enough
// (traceServer.export gives it back).
func (c traceCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*rawMessage); ok {
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
	return c.proto.Unmarshal(data, v)
}

// Name is the codec's content-subtype, proto, as OTLP's.
func (traceCodec) Name() string { return protoCodecName }

const protoCodecName = "proto"

// traceServiceDesc is OTLP's TraceService
// (opentelemetry/proto/collector/trace/v1/trace_service.proto) served as
// a stream of one request and one response, which is a unary call on the
// wire: grpc-go calls a stream's handler before it reads the message, so
// the handler can reserve the bytes of the read on the byte budget, and
// wait for them, before grpc-go takes them (traceServer.export).
var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*traceExporter)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName: "Export",
		Handler: func(srv any, stream grpc.ServerStream) error {
			return srv.(traceExporter).export(stream)
		},
	}},
	Metadata: "opentelemetry/proto/collector/trace/v1/trace_service.proto",
}

// traceExporter is what traceServiceDesc calls.
type traceExporter interface {
	export(stream grpc.ServerStream) error
}

// traceServer is the OTLP/gRPC TraceService.
type traceServer struct{ r *Receiver }

// export reads one request, decodes its spans, as OTLP/HTTP does, and
// hands them to the traces consumer.
func (s *traceServer) export(stream grpc.ServerStream) error {
	r := s.r
	ctx := stream.Context()
	start := time.Now()
	defer r.m.observe("grpc", "traces", start)
	t := ticketFrom(ctx, r.adm)
	// grpc-go reads the message whole, and only then is its size known:
	// the read reserves the most it can take, and keeps what the message
	// turns out to be. It waits its turn rather than being refused, until
	// the call's read_timeout: it holds no bytes while it waits, only its
	// slot, and reads are quick, so the budget comes round.
	if err := t.ReserveWait(ctx, r.grpcReadBytes()); err != nil {
		return r.refuseGRPC("traces", err)
	}
	req := &rawMessage{}
	if err := stream.RecvMsg(req); err != nil {
		return err
	}
	if err := t.Resize(int64(len(req.b))); err != nil {
		return r.refuseGRPC("traces", err)
	}
	source := "OTLP/gRPC TraceService"
	if p, ok := peer.FromContext(ctx); ok {
		source += " from " + p.Addr.String()
	}
	resp, err := r.exportTraces(ctx, "grpc", t, source, req.b, nil)
	// The consumer has taken what it keeps of the message (the engine, a
	// compressed copy for its log), and the spans hold copies of its
	// strings: the next request can be read into it.
	r.freeMessages.put(req.b)
	req.b = nil
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

// profileServer is the OTLP/gRPC ProfilesService (v1development); pdata
// checks the development-version metadata before Export is called.
type profileServer struct {
	pprofileotlp.UnimplementedGRPCServer
	r *Receiver
}

// Export decodes the profiles of one request and hands them on.
func (s *profileServer) Export(ctx context.Context, req pprofileotlp.ExportRequest) (pprofileotlp.ExportResponse, error) {
	r := s.r
	start := time.Now()
	defer r.m.observe("grpc", "profiles", start)
	source := "OTLP/gRPC ProfilesService"
	if p, ok := peer.FromContext(ctx); ok {
		source += " from " + p.Addr.String()
	}
	resp, err := r.exportProfiles(ctx, "grpc", source, req, nil)
	if err != nil {
		if ce, ok := err.(*consumerError); ok {
			return pprofileotlp.ExportResponse{}, grpcStatus(ce.code, ce.err, ce.retry)
		}
		r.m.refusedRequest("grpc", "profiles", ingest.ReasonMalformed)
		return pprofileotlp.ExportResponse{}, status.Error(codes.InvalidArgument, err.Error())
	}
	return resp, nil
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
// as it is. The request is marshalled again when it came over gRPC or in
// JSON (protoData nil): profiles arrive a few times a minute per process,
// and one decoder is worth more than that copy. Profiles the decoder drops are reported as
// rejected in the response; consumer refusals come back as
// *consumerError.
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
