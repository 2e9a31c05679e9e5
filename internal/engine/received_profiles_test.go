package engine

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/pprof/profile"
	"github.com/klauspost/compress/s2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/telemetry"
)

// consumeReceivedProfiles hands req to the engine as a receiver does: the
// batches decoded from it, with the request in the context.
func consumeReceivedProfiles(t testing.TB, e *Engine, req *telemetry.ProfileRequest) {
	t.Helper()
	ps, err := req.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ProfilesConsumer().Consume(telemetry.WithReceivedProfiles(context.Background(), req, ps), ps); err != nil {
		t.Fatal(err)
	}
}

// pprofOf is b as an uncompressed pprof CPU profile, as pyroscope-go
// sends it once the receiver has gunzipped it, with labels on every
// sample.
func pprofOf(t testing.TB, b *telemetry.ProfileBatch, labels map[string][]string) []byte {
	t.Helper()
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        b.Period,
		TimeNanos:     b.Start.UnixNano(),
		DurationNanos: int64(b.Duration),
		Comments:      []string{"made by the engine's tests"},
	}
	for i, loc := range b.Locations {
		l := &profile.Location{ID: uint64(i + 1)}
		for _, f := range loc {
			fn := &profile.Function{ID: uint64(len(p.Function) + 1), Name: f.Function, SystemName: f.Function, Filename: f.File}
			p.Function = append(p.Function, fn)
			l.Line = append(l.Line, profile.Line{Function: fn, Line: 1})
		}
		p.Location = append(p.Location, l)
	}
	for _, s := range b.Samples {
		ps := &profile.Sample{Value: []int64{s.Count, s.Value}, Label: labels}
		for _, i := range s.Locations {
			ps.Location = append(ps.Location, p.Location[i])
		}
		p.Sample = append(p.Sample, ps)
	}
	var buf bytes.Buffer
	if err := p.WriteUncompressed(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ingested is a profile as Pyroscope's /ingest receives it: pprof of
// svc, with the query's window.
func ingested(data []byte, svc string) *telemetry.ProfileRequest {
	return &telemetry.ProfileRequest{Limits: telemetry.DefaultLimits(), Profiles: []telemetry.ReceivedProfile{{
		Format: telemetry.FormatPprof, Data: data, Source: "pyroscope /ingest " + svc + " from 127.0.0.1:1", Service: svc,
		Ingest: &telemetry.IngestWindow{From: t0, Until: t0.Add(10 * time.Second), Now: t0.Add(11 * time.Second), SampleRate: 100},
	}}}
}

// named is req with its profile's source set to source.
func named(req *telemetry.ProfileRequest, source string) *telemetry.ProfileRequest {
	req.Profiles[0].Source = source
	return req
}

// TestLogReceivedProfiles: a profile with nothing to mask is logged as
// received, byte for byte, with what its decoder took from the request;
// one with something to mask, in what evident decodes (a span name, the
// source: a Pyroscope application name's labels) or not (a label named
// like a credential), or in a format whose texts the
// redaction does not follow (JFR), is logged as its redacted batches, as
// before. Either way a replay of the log gives the model applied live.
func TestLogReceivedProfiles(t *testing.T) {
	jfr, err := os.ReadFile(filepath.Join("..", "telemetry", "testdata", "jfr", "shop.jfr"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		req      *telemetry.ProfileRequest
		kind     store.BatchKind
		redacted bool
		secret   string
	}{
		{name: "nothing to mask", kind: store.BatchProfileRequestS2,
			req: ingested(pprofOf(t, textProfile("", true), map[string][]string{"span_name": {"GET /orders/{id}"}}), "shop")},
		{name: "span name", kind: store.BatchProfiles, redacted: true, secret: "alice@example.com",
			req: ingested(pprofOf(t, textProfile("", true), map[string][]string{"span_name": {"GET /users/alice@example.com"}}), "shop")},
		{name: "label named like a credential", kind: store.BatchProfiles, secret: "hunter2",
			req: ingested(pprofOf(t, textProfile("", true), map[string][]string{"session_token": {"hunter2"}}), "shop")},
		{name: "credential in the application name's labels", kind: store.BatchProfiles, redacted: true, secret: "s3cr3t",
			req: named(ingested(pprofOf(t, textProfile("", true), nil), "shop"), "pyroscope /ingest shop.cpu{env=prod,api_key=s3cr3t} from 127.0.0.1:1")},
		{name: "jfr", kind: store.BatchProfiles, req: &telemetry.ProfileRequest{Limits: telemetry.DefaultLimits(), Profiles: []telemetry.ReceivedProfile{
			{Format: telemetry.FormatPyroscopeJFR, Data: jfr, Source: "pyroscope /ingest inventory", Service: "inventory", Ingest: &telemetry.IngestWindow{Now: t0}},
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &memStore{}
			reg := prometheus.NewRegistry()
			e := newEngine(t, testConfig(), st, nil, reg)
			start(t, e)
			consumeReceivedProfiles(t, e, tc.req)
			st.mu.Lock()
			logged := st.batches[0].inner(t)
			crashed := &memStore{batches: slices.Clone(st.batches), seq: st.seq}
			st.mu.Unlock()
			if logged.kind != tc.kind {
				t.Errorf("logged as %q, want %q", logged.kind, tc.kind)
			}
			if logged.kind == store.BatchProfileRequestS2 {
				b, err := s2.Decode(nil, logged.payload)
				if err != nil {
					t.Fatal(err)
				}
				req, err := telemetry.ParseProfileRequest(b)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.req, req, cmpopts.IgnoreUnexported(telemetry.ReceivedProfile{})); diff != "" {
					t.Errorf("logged request (-received +logged):\n%s", diff)
				}
			} else if tc.secret != "" && bytes.Contains(logged.payload, []byte(tc.secret)) {
				t.Errorf("the log holds %q", tc.secret)
			}
			if n := testutil.ToFloat64(e.m.redacted.WithLabelValues("profiles")); (n == 1) != tc.redacted {
				t.Errorf("evident_engine_redacted_batches_total{signal=profiles} = %v", n)
			}
			if err := e.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			replayed := newEngine(t, testConfig(), crashed, nil, nil)
			start(t, replayed)
			if len(replayed.model.Snapshot().Services) == 0 {
				t.Fatal("nothing replayed")
			}
			if diff := cmp.Diff(e.model.Snapshot(), replayed.model.Snapshot()); diff != "" {
				t.Errorf("model replayed from the log (-applied live +replayed):\n%s", diff)
			}
		})
	}
}

// TestReplayLogProfilesGob: testdata/log-profiles-gob.json is the store
// of an engine of the version before the log kept profiles as received,
// written by it: a checkpoint after a pprof CPU profile of orders (the
// decoded batches in encoding/gob, kind "profiles"), then, logged the same
// way and not yet checkpointed, an allocation profile of orders and a CPU
// profile of gateway (internal/telemetry/testdata/go-cpu.pb.gz and
// go-allocs.pb.gz). It restores into the model this version builds from
// the same profiles received as requests.
func TestReplayLogProfilesGob(t *testing.T) {
	old := oldLog(t, "log-profiles-gob.json", store.BatchProfiles, store.BatchProfiles)
	restored := newEngine(t, testConfig(), old, nil, nil)
	start(t, restored)

	st := &memStore{}
	live := newEngine(t, testConfig(), st, nil, nil)
	start(t, live)
	for _, p := range []struct{ file, svc string }{{"go-cpu.pb.gz", "orders"}, {"go-allocs.pb.gz", "orders"}, {"go-cpu.pb.gz", "gateway"}} {
		gz, err := os.ReadFile(filepath.Join("..", "telemetry", "testdata", p.file))
		if err != nil {
			t.Fatal(err)
		}
		// The receivers hand on a profile gunzipped.
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		consumeReceivedProfiles(t, live, &telemetry.ProfileRequest{Limits: telemetry.DefaultLimits(), Profiles: []telemetry.ReceivedProfile{
			{Format: telemetry.FormatPprof, Data: raw, Source: "pyroscope /ingest " + p.svc + " from 127.0.0.1:1", Service: p.svc},
		}})
	}
	st.mu.Lock()
	var kinds []store.BatchKind
	for _, b := range st.batches {
		kinds = append(kinds, b.inner(t).kind)
	}
	st.mu.Unlock()
	if diff := cmp.Diff([]store.BatchKind{store.BatchProfileRequestS2, store.BatchProfileRequestS2, store.BatchProfileRequestS2}, kinds); diff != "" {
		t.Errorf("logged now (-want +got):\n%s", diff)
	}
	if err := live.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if restored.model.Snapshot().Service("gateway") == nil {
		t.Fatal("nothing replayed")
	}
	if diff := cmp.Diff(live.model.Snapshot(), restored.model.Snapshot(), windowsOfOldCheckpoints); diff != "" {
		t.Errorf("model restored from the previous version's log (-applied live +restored):\n%s", diff)
	}
}
