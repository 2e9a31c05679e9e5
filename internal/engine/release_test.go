package engine

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/telemetry"
)

// TestReleaseAfterApply: the engine gives a batch's spans back
// (telemetry.WithRelease) once it has applied them, once, and the next
// request decoded into them, read into the first one's message buffer,
// as the OTLP receiver does, changes nothing of what the first did: the
// model is the one two fresh decodes build, the first's alert is about
// the first's span, and its log entry is the first request.
func TestReleaseAfterApply(t *testing.T) {
	second := requestOf(t, []telemetry.Span{span("billing", telemetry.SpanKindServer, 9, 0,
		telemetry.Attrs{HTTPMethod: "POST", HTTPRoute: "/pay", URLPath: "/pay"})})
	for _, tc := range []struct{ name, secret string }{
		{"nothing to mask", ""},
		{"secrets: applied as decoded again", "hunter2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := instrumented(t, "note", tc.secret)
			st := &memStore{}
			rec := &recorder{}
			e := newEngine(t, testConfig(), st, rec, nil)
			start(t, e)
			released := make(chan []telemetry.Span, 4)
			msg := make([]byte, 0, max(len(first), len(second)))
			send := func(dst []telemetry.Span, req []byte) []telemetry.Span {
				t.Helper()
				msg = append(msg[:0], req...)
				spans, texts, err := telemetry.DecodeReceivedTraceRequest(dst, nil, msg, "test", func(int) error { return nil })
				if err != nil {
					t.Fatal(err)
				}
				ctx := telemetry.WithReceived(context.Background(), msg, texts, spans)
				ctx = telemetry.WithRelease(ctx, spans, func(s []telemetry.Span) { released <- s })
				if err := e.TracesConsumer().Consume(ctx, spans); err != nil {
					t.Fatal(err)
				}
				return spans
			}
			wait := func(spans []telemetry.Span) []telemetry.Span {
				t.Helper()
				select {
				case s := <-released:
					if len(s) != len(spans) || &s[0] != &spans[0] {
						t.Fatalf("released %d spans at %p, want the %d consumed at %p", len(s), s, len(spans), spans)
					}
					return s
				case <-time.After(5 * time.Second):
					t.Fatal("the spans were not released")
					return nil
				}
			}
			a := wait(send(nil, first))
			alerts := rec.of(detect.KindExploitPayload)
			if len(alerts) != 1 {
				t.Fatalf("%d exploit alerts after the first request, want 1", len(alerts))
			}
			b := wait(send(a[:0], second))
			if &b[0] != &a[0] {
				t.Fatal("the second request was not decoded into the first's spans")
			}
			// Shutdown checkpoints, which drops the log before.
			st.mu.Lock()
			logged := slices.Clone(st.batches)
			st.mu.Unlock()
			if err := e.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			select {
			case s := <-released:
				t.Fatalf("released again: %d spans", len(s))
			default:
			}

			fresh := newEngine(t, testConfig(), &memStore{}, nil, nil)
			start(t, fresh)
			consumeReceived(t, fresh, first)
			consumeReceived(t, fresh, second)
			if err := fresh.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(fresh.model.Snapshot(), e.model.Snapshot()); diff != "" {
				t.Errorf("model (-fresh decodes +reused memory):\n%s", diff)
			}
			if diff := cmp.Diff(alerts, rec.of(detect.KindExploitPayload)); diff != "" {
				t.Errorf("exploit alerts (-after the first +after the second):\n%s", diff)
			}
			ev := alerts[0].Evidence
			if ev.TraceID != "00000000000000000000000000000001" || ev.SpanID != "0000000000000001" || ev.Endpoint != "GET /orders/{id}" || alerts[0].Service != "gateway" {
				t.Errorf("alert evidence %+v of %s, want the first request's span", ev, alerts[0].Service)
			}
			if len(logged) != 2 {
				t.Fatalf("%d batches logged, want 2", len(logged))
			}
			if got := uncompressed(t, logged[0]); bytes.Equal(got, first) == (tc.secret != "") {
				t.Errorf("first batch logged as received: %v, want %v", bytes.Equal(got, first), tc.secret == "")
			}
			if tc.secret != "" && bytes.Contains(uncompressed(t, logged[0]), []byte(tc.secret)) {
				t.Error("the log holds the secret")
			}
			if !bytes.Equal(uncompressed(t, logged[1]), second) {
				t.Error("second batch not logged as received")
			}
			spans, err := telemetry.TraceRequestSpans(uncompressed(t, logged[0]), "the log")
			if err != nil || len(spans) != 1 || spans[0].Service != "gateway" || spans[0].Attrs.URLPath != "/orders/7" {
				t.Errorf("first logged batch decodes to %+v, %v; want the first request's span", spans, err)
			}
		})
	}
}
