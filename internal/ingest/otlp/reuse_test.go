package otlp

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/evidentsec/evident/internal/telemetry"
)

// handedOn is what a consumer was handed: where the spans and the
// request's message were, and a copy of the spans.
type handedOn struct {
	first *telemetry.Span
	msg   *byte
	texts *telemetry.Texts
	spans []telemetry.Span
}

// giver is a consumer that keeps a copy of what it is given and, with
// release set, gives the spans back when it is done, as the engine does
// once it has applied them.
type giver struct {
	release bool
	mu      sync.Mutex
	got     []handedOn
}

func (g *giver) Consume(ctx context.Context, spans []telemetry.Span) error {
	h := handedOn{first: &spans[0], spans: slices.Clone(spans)}
	if msg, texts, ok := telemetry.Received(ctx, spans); ok {
		h.msg, h.texts = &msg[0], texts
	}
	g.mu.Lock()
	g.got = append(g.got, h)
	g.mu.Unlock()
	if release := telemetry.Releaser(ctx, spans); g.release && release != nil {
		release(spans)
	}
	return nil
}

// TestTraceMemoryReused: a request is read into the buffer of the
// request before, decoded into the spans the consumer gave back, its
// texts recorded in the Texts of the request before, and it decodes as
// into new memory; spans the consumer keeps are not reused.
func TestTraceMemoryReused(t *testing.T) {
	first := tracesRequest(5, false)
	second := tracesRequest(3, false)
	second.Traces().ResourceSpans().At(0).Resource().Attributes().PutStr("service.name", "billing")
	var want []telemetry.Span
	if err := telemetry.DecodeTraceRequest(mustProto(t, second), "second", func(s []telemetry.Span) error {
		want = append(want, s...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sendGRPC := func(t *testing.T, r *Receiver, req ptraceotlp.ExportRequest) {
		cc, err := grpc.NewClient(r.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		if _, err := ptraceotlp.NewGRPCClient(cc).Export(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}
	sendHTTP := func(t *testing.T, r *Receiver, req ptraceotlp.ExportRequest) {
		resp, err := http.Post("http://"+r.HTTPAddr()+TracesPath, "application/x-protobuf", bytes.NewReader(mustProto(t, req)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	for _, tc := range []struct {
		name    string
		send    func(*testing.T, *Receiver, ptraceotlp.ExportRequest)
		release bool
	}{
		{"grpc, given back", sendGRPC, true},
		{"grpc, kept", sendGRPC, false},
		{"http, given back", sendHTTP, true},
		{"http, kept", sendHTTP, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &giver{release: tc.release}
			r, _ := startReceiver(t, testConfig(), g, nil)
			tc.send(t, r, first)
			tc.send(t, r, second)
			g.mu.Lock()
			got := g.got
			g.mu.Unlock()
			if len(got) != 2 {
				t.Fatalf("consumer got %d batches, want 2", len(got))
			}
			if reused := got[1].first == got[0].first; reused != tc.release {
				t.Errorf("second request decoded into the first's spans: %v, want %v", reused, tc.release)
			}
			if got[1].msg != got[0].msg {
				t.Error("second message not read into the first's")
			}
			if got[1].texts == nil || got[1].texts != got[0].texts {
				t.Error("second request's texts not recorded in the first's Texts")
			}
			if diff := cmp.Diff(want, got[1].spans); diff != "" {
				t.Errorf("second request's spans (-decoded anew +as handed on):\n%s", diff)
			}
		})
	}
}

// TestFreeList: a free list keeps at most freeSlices slices, none larger
// than maxFree bytes.
func TestFreeList(t *testing.T) {
	for _, tc := range []struct {
		name string
		put  [][]telemetry.Span
		want int
	}{
		{"none", nil, 0},
		{"one", [][]telemetry.Span{make([]telemetry.Span, 3)}, 1},
		{"empty ones are not kept", [][]telemetry.Span{nil, make([]telemetry.Span, 0)}, 0},
		{"too large", [][]telemetry.Span{make([]telemetry.Span, maxFree/int(unsafe.Sizeof(telemetry.Span{}))+1)}, 0},
		{"more than the bound", slices.Repeat([][]telemetry.Span{make([]telemetry.Span, 1)}, freeSlices+3), freeSlices},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFreeList(sliceBytes[telemetry.Span])
			for _, s := range tc.put {
				f.put(s)
			}
			n := 0
			for s := f.get(); s != nil; s = f.get() {
				if cap(s) == 0 {
					t.Error("got a slice without memory")
				}
				n++
			}
			if n != tc.want {
				t.Errorf("got %d slices back, want %d", n, tc.want)
			}
		})
	}
}
