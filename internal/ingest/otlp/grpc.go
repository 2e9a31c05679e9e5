package otlp

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/evidentsec/evident/internal/ingest"
	"github.com/evidentsec/evident/internal/ingest/admission"
	"github.com/evidentsec/evident/internal/telemetry"
)

// traceServer is the OTLP/gRPC TraceService.
type traceServer struct {
	ptraceotlp.UnimplementedGRPCServer
	r *Receiver
}

// Export hands the spans of one request to the traces consumer. pdata
// has already refused what does not decode (INVALID_ARGUMENT from
// grpc-go); spans without a trace or span id, which OTLP requires and the
// HTTP decoder drops, are rejected here with a partial success.
func (s *traceServer) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	r := s.r
	start := time.Now()
	defer r.m.observe("grpc", "traces", start)
	// The message's buffer is gone; its spans take its place.
	if err := ticketFrom(ctx, r.adm).Swap(int64(req.Traces().SpanCount()) * admission.DecodedSpanBytes); err != nil {
		return ptraceotlp.ExportResponse{}, r.refuseGRPC("traces", err)
	}
	spans := telemetry.SpansFromTraces(req.Traces())
	kept := spans[:0]
	for _, sp := range spans {
		if sp.TraceID != ([16]byte{}) && sp.SpanID != ([8]byte{}) {
			kept = append(kept, sp)
		}
	}
	rejected := len(spans) - len(kept)
	spans = kept
	resp := ptraceotlp.NewExportResponse()
	if rejected > 0 {
		r.m.RefusedSpans.WithLabelValues("otlp", "grpc", ingest.ReasonMalformed).Add(float64(rejected))
		resp.PartialSuccess().SetRejectedSpans(int64(rejected))
		resp.PartialSuccess().SetErrorMessage(fmt.Sprintf("%d spans without trace_id or span_id", rejected))
	}
	if len(spans) > 0 {
		if err := r.traces.Consume(ctx, spans); err != nil {
			_, code, retry, reason := consumerStatus(err)
			r.m.RefusedSpans.WithLabelValues("otlp", "grpc", reason).Add(float64(len(spans)))
			return ptraceotlp.ExportResponse{}, grpcStatus(code, err, retry)
		}
		r.m.AcceptedSpans.WithLabelValues("otlp", "grpc").Add(float64(len(spans)))
	}
	return resp, nil
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
// decoder, the same for both transports, and hands the batches on. The
// request is marshalled again when it came over gRPC (protoData nil):
// profiles arrive a few times a minute per process, and one decoder is
// worth more than that copy. Profiles the decoder drops are reported as
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
	batches, derr := r.cfg.Profiles.DecodeOTLPProfiles(protoData, source)
	if derr != nil && len(batches) == 0 && total > 0 {
		return pprofileotlp.ExportResponse{}, derr
	}
	rejected := int64(max(0, total-len(batches)))
	if rejected > 0 {
		r.m.RefusedProfiles.WithLabelValues("otlp", transport, ingest.ReasonMalformed).Add(float64(rejected))
	}
	if len(batches) > 0 {
		if err := r.profiles.Consume(ctx, batches); err != nil {
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
