package otlp

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/evidentsec/evident/internal/ingest/admission"
	"github.com/evidentsec/evident/internal/telemetry"
)

// grpcFuzzReceiver starts a receiver on a loopback gRPC port whose
// consumers accept everything, and a client connection to it.
func grpcFuzzReceiver(f *testing.F) (*grpc.ClientConn, *recorder[[]telemetry.Span], *recorder[[]*telemetry.ProfileBatch]) {
	cfg := testConfig()
	cfg.HTTPEndpoint = ""
	cfg.MaxRequestBytes = 1 << 20
	traces := &recorder[[]telemetry.Span]{}
	profiles := &recorder[[]*telemetry.ProfileBatch]{}
	r, err := New(cfg, traces, profiles, nil, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	if err := r.Start(f.Context()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.Shutdown(f.Context()) })
	cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { cc.Close() })
	return cc, traces, profiles
}

// refused reports whether err refuses a request as bad data:
// INVALID_ARGUMENT.
func refused(err error) bool { return status.Code(err) == codes.InvalidArgument }

// FuzzGRPCTraces sends arbitrary bytes to the OTLP/gRPC TraceService over
// a real connection (rawCodec sends them as they are, under the name of
// the proto codec, so the server decodes them as an exporter's request).
// Of a request that both pdata and protobuf-go (with OTLP's generated
// types) decode, every span with both ids must reach the consumer and
// every other be counted in the partial success, unless no span has both:
// then the request is refused. Each reference alone is
// lenient somewhere: pdata skips a group that never ends, protobuf-go
// takes a field of the wrong wire type as unknown. A request that either
// cannot decode gets what telemetry's decoder, run on the same bytes,
// makes of it, since a bad record never takes the others down: refused
// (INVALID_ARGUMENT) with nothing
// consumed when no span survives the damage, else exactly the spans
// before it consumed and the damaged records counted in the partial
// success.
func FuzzGRPCTraces(f *testing.F) {
	f.Add(mustProto(f, tracesRequest(2, true)))
	f.Add(mustProto(f, tracesRequest(1, false)))
	f.Add([]byte("\x0a\x02\x12\x00"))
	f.Add([]byte{})
	cc, traces, _ := grpcFuzzReceiver(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		req := ptraceotlp.NewExportRequest()
		decodeErr := req.UnmarshalProto(data)
		if decodeErr == nil {
			decodeErr = proto.Unmarshal(data, &coltracepb.ExportTraceServiceRequest{})
		}
		before := len(traces.all())
		var out []byte
		err := cc.Invoke(t.Context(), "/opentelemetry.proto.collector.trace.v1.TraceService/Export", data, &out, grpc.ForceCodec(rawCodec{}))
		got := traces.all()[before:]
		if decodeErr != nil {
			var want []telemetry.Span
			derr := telemetry.DecodeTraceRequest(data, "fuzz", func(s []telemetry.Span) error {
				want = append(want, s...)
				return nil
			})
			if derr != nil && len(want) == 0 {
				if !refused(err) || len(got) != 0 {
					t.Fatalf("undecodable request (%v; %v): status %v, %d batches consumed; want a refusal and none", decodeErr, derr, err, len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("undecodable request (%v) with %d spans before the damage (%v) refused: %v", decodeErr, len(want), derr, err)
			}
			resp := ptraceotlp.NewExportResponse()
			if err := resp.UnmarshalProto(out); err != nil {
				t.Fatalf("response does not decode: %v", err)
			}
			var rejected int64
			if derr != nil {
				rejected = countRecords(derr)
			}
			if ps := resp.PartialSuccess(); ps.RejectedSpans() != rejected || (derr != nil) != (ps.ErrorMessage() != "") {
				t.Errorf("partial success %d %q, want %d rejected for %v", ps.RejectedSpans(), ps.ErrorMessage(), rejected, derr)
			}
			var consumed []telemetry.Span
			for _, b := range got {
				consumed = append(consumed, b...)
			}
			if len(consumed) != len(want) {
				t.Fatalf("consumer got %d spans, want the decoder's %d", len(consumed), len(want))
			}
			for i := range want {
				if consumed[i].TraceID != want[i].TraceID || consumed[i].SpanID != want[i].SpanID || consumed[i].Name != want[i].Name {
					t.Errorf("span %d consumed %x/%x %q, want the decoder's %x/%x %q", i, consumed[i].TraceID, consumed[i].SpanID, consumed[i].Name, want[i].TraceID, want[i].SpanID, want[i].Name)
				}
			}
			return
		}
		var total, noID int
		rss := req.Traces().ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			sss := rss.At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				spans := sss.At(j).Spans()
				for k := 0; k < spans.Len(); k++ {
					total++
					if spans.At(k).TraceID().IsEmpty() || spans.At(k).SpanID().IsEmpty() {
						noID++
					}
				}
			}
		}
		if total > 0 && noID == total {
			// Not one span can be taken: the request is refused as a
			// whole, as one that does not decode is.
			if !refused(err) || len(got) != 0 {
				t.Fatalf("request of %d spans, none with both ids: status %v, %d batches consumed; want a refusal and none", total, err, len(got))
			}
			return
		}
		if err != nil {
			t.Fatalf("decodable request refused: %v", err)
		}
		resp := ptraceotlp.NewExportResponse()
		if err := resp.UnmarshalProto(out); err != nil {
			t.Fatalf("response does not decode: %v", err)
		}
		if rejected := resp.PartialSuccess().RejectedSpans(); rejected != int64(noID) {
			t.Errorf("rejected %d spans, want the %d without ids", rejected, noID)
		}
		if n := countSpans(got); n != total-noID {
			t.Errorf("consumer got %d spans, want %d of %d", n, total-noID, total)
		}
		for _, b := range got {
			for _, sp := range b {
				if sp.TraceID == ([16]byte{}) || sp.SpanID == ([8]byte{}) {
					t.Errorf("span without ids reached the consumer: %+v", sp)
				}
			}
		}
	})
}

// FuzzGRPCProfiles sends arbitrary bytes to the OTLP/gRPC ProfilesService
// over a real connection: what does not decode is refused, and
// every batch that reaches the consumer names its source and only refers
// to locations it has.
func FuzzGRPCProfiles(f *testing.F) {
	f.Add(mustProto(f, profilesRequest(false)))
	f.Add(mustProto(f, profilesRequest(true)))
	f.Add([]byte{})
	cc, _, profiles := grpcFuzzReceiver(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		req := pprofileotlp.NewExportRequest()
		decodeErr := req.UnmarshalProto(data)
		before := len(profiles.all())
		var out []byte
		err := cc.Invoke(t.Context(), "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export", data, &out, grpc.ForceCodec(rawCodec{}))
		got := profiles.all()[before:]
		if decodeErr != nil || err != nil {
			if !refused(err) || len(got) != 0 {
				t.Fatalf("request (decode error %v): status %v, %d batches consumed; want a refusal and none", decodeErr, err, len(got))
			}
			return
		}
		resp := pprofileotlp.NewExportResponse()
		if err := resp.UnmarshalProto(out); err != nil {
			t.Fatalf("response does not decode: %v", err)
		}
		if resp.PartialSuccess().RejectedProfiles() < 0 {
			t.Errorf("rejected %d profiles", resp.PartialSuccess().RejectedProfiles())
		}
		for _, bs := range got {
			for _, b := range bs {
				if !strings.HasPrefix(b.Source, "OTLP/gRPC ProfilesService from 127.0.0.1:") {
					t.Errorf("batch source %q does not name the peer", b.Source)
				}
				for _, s := range b.Samples {
					if slices.ContainsFunc(s.Locations, func(l int32) bool { return l < 0 || int(l) >= len(b.Locations) }) {
						t.Errorf("sample refers to locations %v of %d", s.Locations, len(b.Locations))
					}
				}
			}
		}
	})
}

// grpcBodyEncodings are the grpc-encoding values FuzzGRPCBody picks from
// by its first byte.
var grpcBodyEncodings = []string{"", "identity", "gzip", "zstd", "snappy"}

// FuzzGRPCBody reads arbitrary bytes as the body of a gRPC call (a
// length-prefixed message, compressed or not) with readGRPCMessage, with
// a 64 KiB max_request_bytes and a 1 MiB budget. It must end either with
// one message within the limit, the length its prefix states when that
// was not compressed, and the body's own message then, or what the
// standard library's gzip makes of it when gzip-compressed; or with an
// error; and the ticket must give every byte back.
func FuzzGRPCBody(f *testing.F) {
	frame := func(flag byte, msg []byte) []byte {
		b := []byte{flag, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
		return append(b, msg...)
	}
	msg := mustProto(f, tracesRequest(3, false))
	var gz bytes.Buffer
	if err := collectorGzip(&gz, msg); err != nil {
		f.Fatal(err)
	}
	var zs, sn bytes.Buffer
	if err := collectorZstd(&zs, msg); err != nil {
		f.Fatal(err)
	}
	if err := collectorSnappy(&sn, msg); err != nil {
		f.Fatal(err)
	}
	f.Add(byte(0), frame(0, msg))
	f.Add(byte(0), frame(0, nil))
	f.Add(byte(2), frame(1, gz.Bytes()))
	f.Add(byte(3), frame(1, zs.Bytes()))
	f.Add(byte(4), frame(1, sn.Bytes()))
	f.Add(byte(0), frame(1, gz.Bytes()))
	f.Add(byte(2), frame(1, gz.Bytes())[:20])
	f.Add(byte(0), []byte{0, 0, 1})
	f.Add(byte(0), []byte{2, 0, 0, 0, 0})
	f.Add(byte(0), []byte{0, 0xff, 0xff, 0xff, 0xff})
	cfg := DefaultConfig()
	cfg.MaxRequestBytes = 64 << 10
	acfg := admission.DefaultConfig()
	acfg.MaxBufferedBytes = 1 << 20
	adm, err := admission.New(acfg, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	r, err := New(cfg, &recorder[[]telemetry.Span]{}, nil, nil, nil, adm)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pick byte, data []byte) {
		enc := grpcBodyEncodings[int(pick)%len(grpcBodyEncodings)]
		tk := adm.Ticket()
		b := r.getBody()
		defer r.freeBodies.put(b)
		out, compressed, err := r.readGRPCMessage(bytes.NewReader(data), enc, b, tk)
		if err == nil && compressed {
			out, err = r.decompressGRPC(out, enc, b, tk)
		}
		tk.Release()
		if n := adm.Buffered(); n != 0 {
			t.Fatalf("%d bytes still reserved after the ticket's release", n)
		}
		if err != nil {
			return
		}
		if int64(len(out)) > cfg.MaxRequestBytes {
			t.Fatalf("message of %d bytes read, limit %d", len(out), cfg.MaxRequestBytes)
		}
		n := int(binary.BigEndian.Uint32(data[1:5])) // read whole, or err
		if len(data) != 5+n {
			t.Fatalf("a message of %d bytes read from a body with %d bytes after it", n, len(data)-5-n)
		}
		switch {
		case data[0] == 0:
			if !bytes.Equal(out, data[5:5+n]) {
				t.Fatalf("uncompressed message of %d bytes read as %d bytes, or changed", n, len(out))
			}
		case enc == "gzip":
			zr, err := gzip.NewReader(bytes.NewReader(data[5 : 5+n]))
			if err != nil {
				t.Fatalf("gzip message read that the standard library refuses: %v", err)
			}
			want, err := io.ReadAll(zr)
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("gzip message read that the standard library refuses: %v", err)
			}
			if err == nil && !bytes.Equal(out, want) {
				t.Fatalf("gzip message decompressed to %d bytes, the standard library to %d", len(out), len(want))
			}
		}
	})
}
