// Package storetest is the conformance suite of store.Store: every backend
// runs it from its own tests, so the engine can count on one behaviour
// whichever backend holds its state.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/store"
)

// Opener opens one database of the backend under test. Each call opens the
// same database again, as a restarted process would; the suite closes what
// it opens.
type Opener func(ctx context.Context) (store.Store, error)

// Run runs the suite. newDB is called once per behaviour and returns the
// Opener of a fresh, empty database that lives until the test ends.
func Run(t *testing.T, newDB func(t *testing.T) Opener) {
	tests := []struct {
		name string
		run  func(t *testing.T, open Opener)
	}{
		{"AppendThenReplayInOrder", testAppendReplay},
		{"ReplayAfterReopen", testReplayAfterReopen},
		{"AppendCopiesPayload", testAppendCopiesPayload},
		{"AppendRejectsBadBatch", testAppendRejects},
		{"ReplayStopsAtCallbackError", testReplayCallbackError},
		{"NoCheckpoint", testNoCheckpoint},
		{"CheckpointTruncatesLog", testCheckpointTruncates},
		{"CheckpointEmptyState", testCheckpointEmptyState},
		{"SequenceNeverReused", testSequenceNeverReused},
		{"CheckpointOutsideLog", testCheckpointBounds},
		{"ConcurrentAppends", testConcurrentAppends},
		{"SubmitOrder", testSubmitOrder},
		{"FindingsReplaceAll", testFindingsReplace},
		{"FindingsDuplicateKey", testFindingsDuplicate},
		{"FindingsReplaceServices", testFindingsServices},
		{"FindingsOutsideServices", testFindingsOutsideServices},
		{"TokensCreateListRevoke", testTokens},
		{"TokensRejectBadToken", testTokenRejects},
		{"AuditChainRecordsChanges", testAuditChain},
		{"AuditPaging", testAuditPaging},
		{"AuditRejectsNoActor", testAuditNoActor},
		{"AuditVEXChanges", testAuditVEX},
		{"VerdictHistoryOrderAndLimit", testVerdictHistory},
		{"VerdictRejectsZeroTime", testVerdictZeroTime},
		{"AlertsQuery", testAlertsQuery},
		{"AlertKeepsFirstByID", testAlertKeepsFirst},
		{"AlertRejectsBadAlert", testAlertRejects},
		{"AlertTextNotUTF8", testAlertText},
		{"FiredAlerts", testFiredAlerts},
		{"Retention", testRetention},
		{"TenantIsolation", testTenantIsolation},
		{"TenantRejectsBadID", testTenantRejectsBadID},
		{"TenantEmpty", testTenantEmpty},
		{"CanceledContext", testCanceled},
		{"CloseTwiceThenClosed", testClose},
		{"CloseDuringAppends", testCloseDuringAppends},
		{"SourceWatermarks", testSourceWatermarks},
		{"SourceProgress", testSourceProgress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, newDB(t))
		})
	}
}

// mustOpen opens the database and closes it when the test ends.
func mustOpen(t *testing.T, open Opener) store.Store {
	t.Helper()
	s, err := open(t.Context())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// batch is a logged batch as the suite compares it.
type batch struct {
	Seq     int64
	Kind    store.BatchKind
	Payload string
}

func appendAll(t *testing.T, s store.Store, bs []batch) []batch {
	t.Helper()
	out := make([]batch, len(bs))
	var last int64
	for i, b := range bs {
		seq, err := s.AppendBatch(t.Context(), b.Kind, []byte(b.Payload))
		if err != nil {
			t.Fatalf("AppendBatch %d: %v", i, err)
		}
		if seq <= last {
			t.Fatalf("AppendBatch %d: seq %d after %d, want increasing", i, seq, last)
		}
		last = seq
		out[i] = batch{seq, b.Kind, b.Payload}
	}
	return out
}

func replay(t *testing.T, s store.Store, after int64) []batch {
	t.Helper()
	var got []batch
	err := s.Batches(t.Context(), after, func(seq int64, kind store.BatchKind, payload []byte) error {
		got = append(got, batch{seq, kind, string(payload)}) // string() copies: payload is only lent
		return nil
	})
	if err != nil {
		t.Fatalf("Batches after %d: %v", after, err)
	}
	return got
}

func sampleBatches(n int) []batch {
	bs := make([]batch, n)
	for i := range bs {
		kind := store.BatchSpans
		if i%3 == 2 {
			kind = store.BatchProfiles
		}
		bs[i] = batch{Kind: kind, Payload: fmt.Sprintf("payload %d %s", i, bytes.Repeat([]byte{byte('a' + i%26)}, i*100))}
	}
	return bs
}

func testAppendReplay(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	want := appendAll(t, s, sampleBatches(7))
	for _, after := range []int64{0, want[2].Seq, want[6].Seq} {
		var tail []batch
		for _, b := range want {
			if b.Seq > after {
				tail = append(tail, b)
			}
		}
		if diff := cmp.Diff(replay(t, s, after), tail); diff != "" {
			t.Errorf("Batches after %d (-got +want):\n%s", after, diff)
		}
	}
}

func testReplayAfterReopen(t *testing.T, open Opener) {
	s, err := open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := appendAll(t, s, sampleBatches(5))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, open)
	if diff := cmp.Diff(replay(t, s, 0), want); diff != "" {
		t.Errorf("Batches after reopen (-got +want):\n%s", diff)
	}
}

func testAppendCopiesPayload(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	buf := []byte("original")
	if _, err := s.AppendBatch(t.Context(), store.BatchSpans, buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXXXXX") // the caller reuses its buffer
	if got := replay(t, s, 0); len(got) != 1 || got[0].Payload != "original" {
		t.Errorf("Batches = %+v, want the payload as appended", got)
	}
}

func testAppendRejects(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	for _, tt := range []struct {
		name    string
		kind    store.BatchKind
		payload []byte
	}{
		{"UnknownKind", "logs", []byte("x")},
		{"EmptyKind", "", []byte("x")},
		{"NilPayload", store.BatchSpans, nil},
		{"EmptyPayload", store.BatchProfiles, []byte{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.AppendBatch(t.Context(), tt.kind, tt.payload); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("AppendBatch(%q, %q) = %v, want ErrInvalid", tt.kind, tt.payload, err)
			}
		})
	}
	if got := replay(t, s, 0); len(got) != 0 {
		t.Errorf("Batches = %+v after rejected appends, want none", got)
	}
}

func testReplayCallbackError(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	appendAll(t, s, sampleBatches(5))
	stop := errors.New("stop here")
	calls := 0
	err := s.Batches(t.Context(), 0, func(int64, store.BatchKind, []byte) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if err != stop { // the contract: returned unwrapped, so == and not errors.Is
		t.Errorf("Batches = %v, want the callback's error unwrapped", err)
	}
	if calls != 2 {
		t.Errorf("callback ran %d times, want 2 (stop at the first error)", calls)
	}
}

func testNoCheckpoint(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	seq, state, err := s.LoadCheckpoint(t.Context())
	if err != nil || seq != 0 || state != nil {
		t.Errorf("LoadCheckpoint = %d, %q, %v; want 0, nil, nil", seq, state, err)
	}
}

func testCheckpointTruncates(t *testing.T, open Opener) {
	s, err := open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	bs := appendAll(t, s, sampleBatches(6))
	if err := s.Checkpoint(t.Context(), bs[1].Seq, []byte("model@1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint(t.Context(), bs[3].Seq, []byte("model@3")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, open)
	seq, state, err := s.LoadCheckpoint(t.Context())
	if err != nil || seq != bs[3].Seq || string(state) != "model@3" {
		t.Errorf("LoadCheckpoint = %d, %q, %v; want %d, \"model@3\", nil", seq, state, err, bs[3].Seq)
	}
	// The log keeps only the batches after the checkpoint, whatever
	// position the replay asks for.
	if diff := cmp.Diff(replay(t, s, 0), bs[4:]); diff != "" {
		t.Errorf("Batches after checkpoint (-got +want):\n%s", diff)
	}
}

func testCheckpointEmptyState(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	if err := s.Checkpoint(t.Context(), 0, nil); err != nil {
		t.Fatal(err)
	}
	seq, state, err := s.LoadCheckpoint(t.Context())
	if err != nil || seq != 0 || state == nil || len(state) != 0 {
		t.Errorf("LoadCheckpoint = %d, %#v, %v; want 0, empty non-nil state, nil", seq, state, err)
	}
}

func testSequenceNeverReused(t *testing.T, open Opener) {
	s, err := open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	bs := appendAll(t, s, sampleBatches(3))
	if err := s.Checkpoint(t.Context(), bs[2].Seq, []byte("all")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The log is empty now; a backend that numbers from its highest row
	// would start again at 1, below the checkpoint, and replay after the
	// checkpoint would skip the new batch.
	s = mustOpen(t, open)
	seq, err := s.AppendBatch(t.Context(), store.BatchSpans, []byte("next"))
	if err != nil {
		t.Fatal(err)
	}
	if seq <= bs[2].Seq {
		t.Errorf("AppendBatch after truncation = seq %d, want above the checkpoint %d", seq, bs[2].Seq)
	}
	want := []batch{{seq, store.BatchSpans, "next"}}
	if diff := cmp.Diff(replay(t, s, bs[2].Seq), want); diff != "" {
		t.Errorf("Batches after checkpoint (-got +want):\n%s", diff)
	}
}

func testCheckpointBounds(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	bs := appendAll(t, s, sampleBatches(4))
	if err := s.Checkpoint(t.Context(), bs[2].Seq, []byte("good")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		seq  int64
	}{
		{"BeyondLastBatch", bs[3].Seq + 1},
		{"BeforeStoredCheckpoint", bs[1].Seq},
		{"Negative", -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Checkpoint(t.Context(), tt.seq, []byte("bad")); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("Checkpoint(%d) = %v, want ErrInvalid", tt.seq, err)
			}
		})
	}
	seq, state, err := s.LoadCheckpoint(t.Context())
	if err != nil || seq != bs[2].Seq || string(state) != "good" {
		t.Errorf("LoadCheckpoint = %d, %q, %v; want the good checkpoint unchanged", seq, state, err)
	}
	if diff := cmp.Diff(replay(t, s, 0), bs[3:]); diff != "" {
		t.Errorf("Batches (-got +want):\n%s", diff)
	}
}

// testSubmitOrder hands batches over one after the other, waits for
// them in the reverse order, and checks that they are numbered in the
// order they were handed over.
func testSubmitOrder(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	const n = 20
	waits := make([]func() (int64, error), n)
	for i := range waits {
		waits[i] = s.SubmitBatch(t.Context(), store.BatchSpans, fmt.Appendf(nil, "%d", i))
	}
	seqs := make([]int64, n)
	for i := n - 1; i >= 0; i-- {
		seq, err := waits[i]()
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		seqs[i] = seq
	}
	for i := 1; i < n; i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("batch %d got seq %d after batch %d got %d: not in the order handed over", i, seqs[i], i-1, seqs[i-1])
		}
	}
	got := replay(t, s, 0)
	if len(got) != n || got[n-1].Payload != fmt.Sprint(n-1) {
		t.Errorf("Batches = %+v, want the %d batches in order", got, n)
	}
}

func testConcurrentAppends(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	const workers, each = 8, 25
	seqs := make([][]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				seq, err := s.AppendBatch(t.Context(), store.BatchSpans, fmt.Appendf(nil, "%d/%d", w, i))
				if err != nil {
					t.Errorf("worker %d append %d: %v", w, i, err)
					return
				}
				seqs[w] = append(seqs[w], seq)
			}
		})
	}
	wg.Wait()
	bySeq := map[int64]string{}
	for w, ss := range seqs {
		for i, seq := range ss {
			if prev, dup := bySeq[seq]; dup {
				t.Fatalf("seq %d returned for %s and %d/%d", seq, prev, w, i)
			}
			bySeq[seq] = fmt.Sprintf("%d/%d", w, i)
		}
	}
	got := replay(t, s, 0)
	if len(got) != workers*each {
		t.Fatalf("Batches returned %d batches, want %d", len(got), workers*each)
	}
	for i, b := range got {
		if i > 0 && b.Seq <= got[i-1].Seq {
			t.Errorf("batch %d: seq %d after %d, want increasing", i, b.Seq, got[i-1].Seq)
		}
		if bySeq[b.Seq] != b.Payload {
			t.Errorf("batch seq %d = %q, want %q", b.Seq, b.Payload, bySeq[b.Seq])
		}
	}
}

func finding(service, purl, id string, level string) findings.Finding {
	return findings.Finding{
		Service:       service,
		Package:       findings.Package{PURL: purl, Ecosystem: "Go", Name: purl[len("pkg:golang/"):], Version: "1.0.0"},
		Vulnerability: findings.Vulnerability{ID: id, Aliases: []string{"CVE-" + id}},
		Severity:      findings.Severity{Level: level, Score: 7.5, Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"},
		FixedVersion:  "1.0.1",
		Static:        findings.StaticCalled,
		Symbols:       []string{purl[len("pkg:golang/"):] + ".Parse"},
		Sources:       []findings.Source{{Tool: "govulncheck", File: "vuln.json"}},
	}
}

func testFindingsReplace(t *testing.T, open Opener) {
	s, err := open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	a := finding("shop", "pkg:golang/example.com/a@1.0.0", "GO-2024-0001", "high")
	b := finding("shop", "pkg:golang/example.com/b@1.0.0", "GO-2024-0002", "low")
	c := finding("api", "pkg:golang/example.com/c@1.0.0", "GO-2024-0003", "medium")
	noService := finding("", "pkg:golang/example.com/a@1.0.0", "GO-2024-0001", "high")
	if err := s.PutFindings(t.Context(), replaceAll(b, a)); err != nil {
		t.Fatal(err)
	}
	b2 := b
	b2.Severity.Level = "critical"
	if err := s.PutFindings(t.Context(), replaceAll(c, b2, noService)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, open)
	got, err := s.Findings(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Replaced, not merged: a is gone, b is the new b; ordered by
	// service, purl, vulnerability ID.
	if diff := cmp.Diff(got, []findings.Finding{noService, c, b2}); diff != "" {
		t.Errorf("Findings (-got +want):\n%s", diff)
	}
	if err := s.PutFindings(t.Context(), replaceAll()); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Findings(t.Context()); err != nil || len(got) != 0 {
		t.Errorf("Findings after replacing all with none = %v, %v; want none", got, err)
	}
}

func testFindingsDuplicate(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	a := finding("shop", "pkg:golang/example.com/a@1.0.0", "GO-2024-0001", "high")
	if err := s.PutFindings(t.Context(), replaceAll(a)); err != nil {
		t.Fatal(err)
	}
	b := finding("shop", "pkg:golang/example.com/b@1.0.0", "GO-2024-0002", "low")
	if err := s.PutFindings(t.Context(), replaceAll(b, a, a)); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("PutFindings with a duplicate = %v, want ErrInvalid", err)
	}
	got, err := s.Findings(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, []findings.Finding{a}); diff != "" {
		t.Errorf("Findings after the refused put (-got +want):\n%s", diff)
	}
}

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 123456789, time.UTC)

func testVerdictHistory(t *testing.T, open Opener) {
	s, err := open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	change := func(min int, service, vuln, purl string, from, to assess.Verdict) store.VerdictChange {
		return store.VerdictChange{
			Time: t0.Add(time.Duration(min) * time.Minute), Service: service, VulnID: vuln, PURL: purl,
			From: from, To: to, Reason: fmt.Sprintf("%s -> %s", from, to),
		}
	}
	const purl, purl2 = "pkg:golang/example.com/a@1.0.0", "pkg:golang/example.com/a@1.1.0"
	first := change(0, "shop", "GO-1", purl, assess.Unknown, assess.NotObserved)
	second := change(5, "shop", "GO-1", purl, assess.NotObserved, assess.Loaded)
	otherPURL := change(5, "shop", "GO-1", purl2, assess.Unknown, assess.Loaded) // same time: appended later, so newer
	third := change(9, "shop", "GO-1", purl, assess.Loaded, assess.Executed)
	otherService := change(7, "api", "GO-1", purl, assess.Unknown, assess.Executed)
	otherVuln := change(8, "shop", "GO-2", purl, assess.Unknown, assess.Loaded)
	// Appended out of time order, in two calls.
	if err := s.AppendVerdicts(t.Context(), []store.VerdictChange{second, otherPURL, otherService}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendVerdicts(t.Context(), []store.VerdictChange{third, first, otherVuln}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendVerdicts(t.Context(), nil); err != nil {
		t.Errorf("AppendVerdicts(nil) = %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, open)
	for _, tt := range []struct {
		name            string
		service, vulnID string
		limit           int
		want            []store.VerdictChange
	}{
		{"All", "shop", "GO-1", 0, []store.VerdictChange{third, otherPURL, second, first}},
		{"Limit", "shop", "GO-1", 2, []store.VerdictChange{third, otherPURL}},
		{"NegativeLimitIsAll", "shop", "GO-1", -1, []store.VerdictChange{third, otherPURL, second, first}},
		{"OtherService", "api", "GO-1", 0, []store.VerdictChange{otherService}},
		{"OtherVuln", "shop", "GO-2", 10, []store.VerdictChange{otherVuln}},
		{"None", "shop", "GO-3", 0, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.VerdictHistory(t.Context(), tt.service, tt.vulnID, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("VerdictHistory(%q, %q, %d) (-got +want):\n%s", tt.service, tt.vulnID, tt.limit, diff)
			}
		})
	}
}

func testVerdictZeroTime(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	good := store.VerdictChange{Time: t0, Service: "shop", VulnID: "GO-1", From: assess.Unknown, To: assess.Loaded}
	bad := good
	bad.Time = time.Time{}
	if err := s.AppendVerdicts(t.Context(), []store.VerdictChange{good, bad}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("AppendVerdicts with a zero time = %v, want ErrInvalid", err)
	}
	if got, err := s.VerdictHistory(t.Context(), "shop", "GO-1", 0); err != nil || len(got) != 0 {
		t.Errorf("VerdictHistory after the refused append = %v, %v; want none (all or nothing)", got, err)
	}
}

func alert(id, kind, service string, min int) store.Alert {
	return store.Alert{
		ID: id, Kind: kind, Severity: "high", Service: service,
		Summary:    kind + " in " + service,
		Details:    json.RawMessage(fmt.Sprintf(`{"service":%q,"n":%d}`, service, min)),
		Time:       t0.Add(time.Duration(min) * time.Minute),
		ReceivedAt: t0.Add(time.Duration(min)*time.Minute - 20*time.Millisecond),
	}
}

func testAlertsQuery(t *testing.T, open Opener) {
	s, err := open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	a1 := alert("a1", "first_execution", "shop", 1)
	a2 := alert("a2", "exploit_payload", "shop", 2)
	a3 := alert("a3", "first_execution", "api", 3)
	a4 := alert("a4", "new_edge", "api", 3) // same time as a3: ID breaks the tie
	a5 := alert("a5", "anomaly", "", 5)
	a5.Details, a5.ReceivedAt = nil, time.Time{}
	for _, a := range []store.Alert{a3, a1, a5, a2, a4} {
		if err := s.PutAlert(t.Context(), a); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, open)
	for _, tt := range []struct {
		name string
		q    store.AlertQuery
		want []store.Alert
	}{
		{"All", store.AlertQuery{}, []store.Alert{a5, a4, a3, a2, a1}},
		{"Limit", store.AlertQuery{Limit: 2}, []store.Alert{a5, a4}},
		{"SinceInclusive", store.AlertQuery{Since: a3.Time}, []store.Alert{a5, a4, a3}},
		{"Service", store.AlertQuery{Service: "shop"}, []store.Alert{a2, a1}},
		{"Kind", store.AlertQuery{Kind: "first_execution"}, []store.Alert{a3, a1}},
		{"ServiceAndKind", store.AlertQuery{Service: "api", Kind: "first_execution"}, []store.Alert{a3}},
		{"AllFilters", store.AlertQuery{Since: a2.Time, Service: "api", Kind: "new_edge", Limit: 5}, []store.Alert{a4}},
		{"ID", store.AlertQuery{ID: "a3"}, []store.Alert{a3}},
		{"AfterTiedTime", store.AlertQuery{After: &store.AlertKey{Time: a4.Time, ID: a4.ID}}, []store.Alert{a3, a2, a1}},
		{"AfterPage", store.AlertQuery{After: &store.AlertKey{Time: a3.Time, ID: a3.ID}, Limit: 1}, []store.Alert{a2}},
		{"AfterLast", store.AlertQuery{After: &store.AlertKey{Time: a1.Time, ID: a1.ID}}, nil},
		{"NoMatch", store.AlertQuery{Service: "billing"}, nil},
		{"SinceAfterAll", store.AlertQuery{Since: a5.Time.Add(time.Nanosecond)}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Alerts(t.Context(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Alerts(%+v) (-got +want):\n%s", tt.q, diff)
			}
		})
	}
}

// testFiredAlerts: FiredAlerts reads the dedupe keys, times and
// observations Alerts does, in its order, and leaves out the alerts
// without a key.
func testFiredAlerts(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	keyed := func(id string, min int, key string, observed time.Time) store.Alert {
		a := alert(id, "first_execution", "shop", min)
		a.DedupeKey, a.Observed = key, observed
		return a
	}
	a1 := keyed("a1", 1, "first_execution|shop|GO-2022-1059", t0.Add(-time.Second))
	a2 := keyed("a2", 2, "", time.Time{}) // no key: left out
	a3 := keyed("a3", 3, "exploit_payload|shop|GET /search", time.Time{})
	a4 := keyed("a4", 3, "new_edge|shop|db", t0.Add(time.Minute+time.Nanosecond))
	for _, a := range []store.Alert{a3, a1, a2, a4} {
		if err := s.PutAlert(t.Context(), a); err != nil {
			t.Fatal(err)
		}
	}
	fired := func(a store.Alert) store.FiredAlert {
		return store.FiredAlert{DedupeKey: a.DedupeKey, Time: a.Time, Observed: a.Observed}
	}
	for _, tt := range []struct {
		name  string
		since time.Time
		limit int
		want  []store.FiredAlert
	}{
		{"All", time.Time{}, 0, []store.FiredAlert{fired(a4), fired(a3), fired(a1)}},
		{"Limit", time.Time{}, 2, []store.FiredAlert{fired(a4), fired(a3)}},
		{"SinceInclusive", a3.Time, 0, []store.FiredAlert{fired(a4), fired(a3)}},
		{"SinceAfterAll", a4.Time.Add(time.Nanosecond), 0, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.FiredAlerts(t.Context(), tt.since, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("FiredAlerts(%v, %d) (-got +want):\n%s", tt.since, tt.limit, diff)
			}
		})
	}
	if _, err := s.FiredAlerts(t.Context(), time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), 0); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("FiredAlerts since 1600 = %v, want ErrInvalid", err)
	}
	got, err := s.Alerts(t.Context(), store.AlertQuery{ID: "a4"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, []store.Alert{a4}); diff != "" {
		t.Errorf("Alerts of a4 (-got +want):\n%s", diff)
	}
}

// testAlertKeepsFirst: an alert fired again with the same ID (the same
// telemetry applied again after a restart) is not stored twice, and the
// first stays as it was.
func testAlertKeepsFirst(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	a := alert("dup", "first_execution", "shop", 1)
	if err := s.PutAlert(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	again := a
	again.Summary, again.Time = "fired again", a.Time.Add(time.Hour)
	if err := s.PutAlert(t.Context(), again); err != nil {
		t.Fatal(err)
	}
	got, err := s.Alerts(t.Context(), store.AlertQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, []store.Alert{a}); diff != "" {
		t.Errorf("Alerts (-got +want):\n%s", diff)
	}
}

// testAlertText: an alert's text holds what a request chose (a path
// decoded from /a%00b%FF), which may be no UTF-8 text: it is stored with
// U+FFFD in place of each NUL and byte that is not UTF-8, as PostgreSQL's
// text holds neither, and read back so, by Alerts as by FiredAlerts.
func testAlertText(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	a := alert("text", "exploit_payload", "shop\x00", 1)
	// JSON takes bytes that are not UTF-8 inside a string; PostgreSQL's
	// text does not.
	a.Details = json.RawMessage(`{"match":"/a\u0000b\ufffd","value":"a` + "\xff" + `b"}`)
	a.Summary = "sqli payload (sqli-tautology) in query of shop GET /a\x00b\xff"
	a.DedupeKey, a.Observed = "exploit_payload|shop|GET /a\x00b\xff|sqli-tautology", t0
	if err := s.PutAlert(t.Context(), a); err != nil {
		t.Fatalf("PutAlert: %v", err)
	}
	want := a
	want.Service = "shop\ufffd"
	want.Summary = "sqli payload (sqli-tautology) in query of shop GET /a\ufffdb\ufffd"
	want.DedupeKey = "exploit_payload|shop|GET /a\ufffdb\ufffd|sqli-tautology"
	want.Details = json.RawMessage(`{"match":"/a\u0000b\ufffd","value":"a` + "\ufffd" + `b"}`)
	got, err := s.Alerts(t.Context(), store.AlertQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, []store.Alert{want}); diff != "" {
		t.Errorf("Alerts (-got +want):\n%s", diff)
	}
	fired, err := s.FiredAlerts(t.Context(), time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fired, []store.FiredAlert{{DedupeKey: want.DedupeKey, Time: a.Time, Observed: t0}}); diff != "" {
		t.Errorf("FiredAlerts (-got +want):\n%s", diff)
	}
}

func testAlertRejects(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	for _, tt := range []struct {
		name   string
		modify func(a *store.Alert)
	}{
		{"EmptyID", func(a *store.Alert) { a.ID = "" }},
		{"IDNotText", func(a *store.Alert) { a.ID = "a\x00" }},
		{"ZeroTime", func(a *store.Alert) { a.Time = time.Time{} }},
		{"DetailsNotJSON", func(a *store.Alert) { a.Details = json.RawMessage(`{"open":`) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := alert("x", "new_edge", "shop", 1)
			tt.modify(&a)
			if err := s.PutAlert(t.Context(), a); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("PutAlert = %v, want ErrInvalid", err)
			}
		})
	}
	if got, err := s.Alerts(t.Context(), store.AlertQuery{}); err != nil || len(got) != 0 {
		t.Errorf("Alerts after refused puts = %v, %v; want none", got, err)
	}
}

func testRetention(t *testing.T, open Opener) {
	now := t0.Add(48 * time.Hour)
	for _, tt := range []struct {
		name        string
		cfg         store.Retention
		wantDeleted int64
		wantAlerts  []string // IDs, newest first
		wantHistory int
	}{
		{"KeepForever", store.Retention{}, 0, []string{"new", "edge", "old"}, 3},
		{"AlertsOnly", store.Retention{Alerts: 24 * time.Hour}, 1, []string{"new", "edge"}, 3},
		{"HistoryOnly", store.Retention{VerdictHistory: 24 * time.Hour}, 1, []string{"new", "edge", "old"}, 2},
		// A record exactly at the cutoff is kept: "older than" is strict.
		{"Both", store.Retention{VerdictHistory: time.Hour, Alerts: 24 * time.Hour}, 3, []string{"new", "edge"}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpen(t, open)
			// Each subtest starts from the same records: the alerts by ID
			// replace themselves, the history is cleared below.
			if _, err := s.Retain(t.Context(), now.Add(1000*time.Hour), store.Retention{VerdictHistory: time.Nanosecond}); err != nil {
				t.Fatal(err)
			}
			for _, a := range []store.Alert{
				alertAt("old", now.Add(-25*time.Hour)), alertAt("edge", now.Add(-24*time.Hour)), alertAt("new", now.Add(-time.Minute)),
			} {
				if err := s.PutAlert(t.Context(), a); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.AppendVerdicts(t.Context(), []store.VerdictChange{
				{Time: now.Add(-30 * 24 * time.Hour), Service: "shop", VulnID: "GO-1", From: assess.Unknown, To: assess.NotObserved},
				{Time: now.Add(-2 * time.Hour), Service: "shop", VulnID: "GO-1", From: assess.NotObserved, To: assess.Loaded},
				{Time: now.Add(-time.Minute), Service: "shop", VulnID: "GO-1", From: assess.Loaded, To: assess.Executed},
			}); err != nil {
				t.Fatal(err)
			}
			deleted, err := s.Retain(t.Context(), now, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if deleted != tt.wantDeleted {
				t.Errorf("Retain deleted %d, want %d", deleted, tt.wantDeleted)
			}
			alerts, err := s.Alerts(t.Context(), store.AlertQuery{})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, a := range alerts {
				ids = append(ids, a.ID)
			}
			if diff := cmp.Diff(ids, tt.wantAlerts); diff != "" {
				t.Errorf("alerts kept (-got +want):\n%s", diff)
			}
			history, err := s.VerdictHistory(t.Context(), "shop", "GO-1", 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(history) != tt.wantHistory {
				t.Errorf("verdict changes kept = %d, want %d", len(history), tt.wantHistory)
			}
		})
	}
	t.Run("NegativeRetention", func(t *testing.T) {
		s := mustOpen(t, open)
		if _, err := s.Retain(t.Context(), now, store.Retention{Alerts: -time.Hour}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Retain with a negative retention = %v, want ErrInvalid", err)
		}
	})
}

// alertAt is a bare alert fired at at.
func alertAt(id string, at time.Time) store.Alert {
	return store.Alert{ID: id, Kind: "new_edge", Severity: "low", Service: "shop", Summary: id, Time: at}
}

func testCanceled(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.AppendBatch(ctx, store.BatchSpans, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("AppendBatch with a canceled context = %v, want context.Canceled", err)
	}
	if _, err := s.Findings(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Findings with a canceled context = %v, want context.Canceled", err)
	}
	if got := replay(t, s, 0); len(got) != 0 {
		t.Errorf("Batches = %+v, want none", got)
	}
}

func testClose(t *testing.T, open Opener) {
	s, err := open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := t.Context()
	calls := map[string]func() error{
		"AppendBatch": func() error { _, err := s.AppendBatch(ctx, store.BatchSpans, []byte("x")); return err },
		"Batches": func() error {
			return s.Batches(ctx, 0, func(int64, store.BatchKind, []byte) error { return nil })
		},
		"Checkpoint":     func() error { return s.Checkpoint(ctx, 0, nil) },
		"LoadCheckpoint": func() error { _, _, err := s.LoadCheckpoint(ctx); return err },
		"PutFindings":    func() error { return s.PutFindings(ctx, replaceAll()) },
		"CreateToken":    func() error { return s.CreateToken(ctx, token("t1", t0), "test") },
		"RevokeToken":    func() error { return s.RevokeToken(ctx, "t1", t0, "test") },
		"Tokens":         func() error { _, err := s.Tokens(ctx); return err },
		"AuditLog":       func() error { _, err := s.AuditLog(ctx, 0, 0); return err },
		"Findings":       func() error { _, err := s.Findings(ctx); return err },
		"AppendVerdicts": func() error { return s.AppendVerdicts(ctx, nil) },
		"VerdictHistory": func() error { _, err := s.VerdictHistory(ctx, "a", "b", 0); return err },
		"PutAlert":       func() error { return s.PutAlert(ctx, alertAt("x", t0)) },
		"Alerts":         func() error { _, err := s.Alerts(ctx, store.AlertQuery{}); return err },
		"Retain":         func() error { _, err := s.Retain(ctx, t0, store.Retention{}); return err },
		"Empty":          func() error { _, err := s.Empty(ctx); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if err := call(); !errors.Is(err, store.ErrClosed) {
				t.Errorf("%s after Close = %v, want ErrClosed", name, err)
			}
		})
	}
}

func testCloseDuringAppends(t *testing.T, open Opener) {
	s, err := open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	const workers = 8
	var (
		mu      sync.Mutex
		acked   = map[int64]string{}
		wg      sync.WaitGroup
		started = make(chan struct{}, workers)
	)
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				payload := fmt.Sprintf("%d/%d", w, i)
				seq, err := s.AppendBatch(t.Context(), store.BatchSpans, []byte(payload))
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("worker %d append %d: %v, want success or ErrClosed", w, i, err)
					return
				}
				mu.Lock()
				acked[seq] = payload
				mu.Unlock()
				if i == 0 {
					started <- struct{}{}
				}
			}
		})
	}
	for range workers {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close during appends: %v", err)
	}
	wg.Wait()
	s = mustOpen(t, open)
	found := map[int64]string{}
	for _, b := range replay(t, s, 0) {
		found[b.Seq] = b.Payload
	}
	for seq, payload := range acked {
		if found[seq] != payload {
			t.Errorf("acknowledged batch %d = %q after reopen, want %q", seq, found[seq], payload)
		}
	}
}

// watermarker is the optional watermark part of a store, for the
// query-API sources of serve.
type watermarker interface {
	SourceWatermark(ctx context.Context, name string) (time.Time, error)
	SetSourceWatermark(ctx context.Context, name string, t time.Time) error
	SourceProgress(ctx context.Context, name string) ([]byte, error)
	SetSourceProgress(ctx context.Context, name string, progress []byte) error
}

// testSourceWatermarks checks a source watermark persists across a
// reopen, is per source, and never moves back.
func testSourceWatermarks(t *testing.T, open Opener) {
	ctx := t.Context()
	s := mustOpen(t, open)
	w, ok := s.(watermarker)
	if !ok {
		t.Skip("the store keeps no source watermarks")
	}
	if got, err := w.SourceWatermark(ctx, "tempo"); err != nil || !got.IsZero() {
		t.Fatalf("watermark of a fresh store: %v, %v; want zero", got, err)
	}
	t1 := time.Date(2026, 12, 1, 10, 0, 0, 123, time.UTC)
	if err := w.SetSourceWatermark(ctx, "tempo", t1); err != nil {
		t.Fatal(err)
	}
	if err := w.SetSourceWatermark(ctx, "tempo", t1.Add(-time.Second)); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("moving back: %v, want ErrInvalid", err)
	}
	if err := w.SetSourceWatermark(ctx, "tempo", time.Time{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("zero time: %v, want ErrInvalid", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, open)
	w = s.(watermarker)
	if got, err := w.SourceWatermark(ctx, "tempo"); err != nil || !got.Equal(t1) {
		t.Errorf("after reopen: %v, %v; want %v", got, err, t1)
	}
	if got, err := w.SourceWatermark(ctx, "pyroscope"); err != nil || !got.IsZero() {
		t.Errorf("other source: %v, %v; want zero", got, err)
	}
}

// testSourceProgress checks that the record of a source's window left
// unfinished persists across a reopen, is per source, is replaced by the
// next, and that nil deletes it.
func testSourceProgress(t *testing.T, open Opener) {
	ctx := t.Context()
	s := mustOpen(t, open)
	w, ok := s.(watermarker)
	if !ok {
		t.Skip("the store keeps no source watermarks")
	}
	want := func(w watermarker, name, progress string) {
		t.Helper()
		got, err := w.SourceProgress(ctx, name)
		if err != nil || string(got) != progress || (progress == "") != (got == nil) {
			t.Errorf("progress of %s: %q, %v; want %q", name, got, err, progress)
		}
	}
	want(w, "tempo", "")
	for _, p := range []string{`{"version":1}`, `{"version":1,"sampled":true}`} {
		if err := w.SetSourceProgress(ctx, "tempo", []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, open)
	w = s.(watermarker)
	want(w, "tempo", `{"version":1,"sampled":true}`)
	want(w, "pyroscope", "")
	for range 2 {
		if err := w.SetSourceProgress(ctx, "tempo", nil); err != nil {
			t.Fatal(err)
		}
	}
	want(w, "tempo", "")
}
