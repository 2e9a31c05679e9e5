package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/logtest"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/telemetry"
	"github.com/evidentsec/evident/internal/tlsconfig"
)

const topic = "evident-ingest"

// cluster starts an in-process Kafka with the topic seeded.
func cluster(t testing.TB, partitions int32) Config {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	if partitions > 0 {
		opts = append(opts, kfake.SeedTopics(partitions, topic))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := DefaultConfig()
	cfg.Brokers = c.ListenAddrs()
	cfg.ReplicationFactor = 1
	cfg.ApplyBackoff = 10 * time.Millisecond
	return cfg
}

// state is what engines share through the store: per partition, the
// names applied and the offset they reach, checkpointed together.
type state struct {
	mu      sync.Mutex
	parts   map[int32]*partState
	skipped int
	// down fails every checkpoint: the store is unavailable.
	down    bool
	changed chan struct{}
}

type partState struct {
	next  int64
	names map[string][]string // tenant/service -> span names and profile sources, in applied order
}

func (p *partState) clone() *partState {
	c := &partState{next: p.next, names: map[string][]string{}}
	for k, v := range p.names {
		c.names[k] = slices.Clone(v)
	}
	return c
}

func newState() *state {
	return &state{parts: map[int32]*partState{}, changed: make(chan struct{}, 1)}
}

// names returns every name checkpointed, by tenant/service.
func (st *state) names() map[string][]string {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := map[string][]string{}
	for _, p := range st.parts {
		for k, v := range p.names {
			out[k] = append(out[k], v...)
		}
	}
	return out
}

// applier is one engine: the partitions it holds, applied in memory and
// checkpointed to st.
type applier struct {
	st *state
	mu sync.Mutex
	// mem are the partitions this engine holds.
	mem map[int32]*partState
	// applied, when set, is called after each Apply.
	applied func()
	// each, when set, is given each record applied.
	each func(Record)
	// refuse, when set, is asked about each record before it is
	// applied: an error ends Apply there.
	refuse func(Record) error
	// refusePartition, when set, is asked about each partition Assign
	// restores: an error refuses it, in a *RefusedError.
	refusePartition func(int32) error
}

func newApplier(st *state) *applier { return &applier{st: st, mem: map[int32]*partState{}} }

func (a *applier) Assign(_ context.Context, parts []int32) (Offsets, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.st.mu.Lock()
	defer a.st.mu.Unlock()
	offs := Offsets{}
	refused := map[int32]error{}
	for _, p := range parts {
		if a.refusePartition != nil {
			if err := a.refusePartition(p); err != nil {
				refused[p] = err
				continue
			}
		}
		if ps, ok := a.st.parts[p]; ok {
			a.mem[p] = ps.clone()
			offs[p] = ps.next
		} else {
			a.mem[p] = &partState{names: map[string][]string{}}
		}
	}
	if len(refused) > 0 {
		return offs, &RefusedError{Partitions: refused}
	}
	return offs, nil
}

func (a *applier) Apply(_ context.Context, recs []Record) error {
	a.mu.Lock()
	for _, r := range recs {
		ps := a.mem[r.Partition]
		if ps == nil || (ps.next > r.Offset) {
			a.st.mu.Lock()
			a.st.skipped++
			a.st.mu.Unlock()
			continue
		}
		if a.refuse != nil {
			if err := a.refuse(r); err != nil {
				a.mu.Unlock()
				return err
			}
		}
		if a.each != nil {
			a.each(r)
		}
		k := r.Tenant + "/" + r.Service
		for _, s := range r.Spans {
			ps.names[k] = append(ps.names[k], s.Name)
		}
		for _, p := range r.Profiles {
			ps.names[k] = append(ps.names[k], p.Source)
		}
		ps.next = r.Offset + 1
	}
	a.mu.Unlock()
	if a.applied != nil {
		a.applied()
	}
	return nil
}

func (a *applier) Checkpoint(context.Context) (Offsets, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.checkpoint(nil)
}

// checkpoint stores the partitions of only, or all; a.mu is held.
func (a *applier) checkpoint(only []int32) (Offsets, error) {
	a.st.mu.Lock()
	defer a.st.mu.Unlock()
	if a.st.down {
		return nil, errors.New("store unavailable")
	}
	offs := Offsets{}
	for p, ps := range a.mem {
		if only != nil && !slices.Contains(only, p) {
			continue
		}
		a.st.parts[p] = ps.clone()
		offs[p] = ps.next
	}
	select {
	case a.st.changed <- struct{}{}:
	default:
	}
	return offs, nil
}

func (a *applier) Revoke(_ context.Context, parts []int32, lost bool) Offsets {
	a.mu.Lock()
	defer a.mu.Unlock()
	var offs Offsets
	if !lost {
		offs, _ = a.checkpoint(parts)
	}
	for _, p := range parts {
		delete(a.mem, p)
	}
	return offs
}

// waitFor waits until st holds n names in all, failing after a minute
// (a bound against a hang, not a speed requirement).
func (st *state) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		got := 0
		for _, ns := range st.names() {
			got += len(ns)
		}
		if got >= n {
			return
		}
		select {
		case <-st.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("applied %d of %d", got, n)
		}
	}
}

// startReader starts a reader of a's checkpointed every every, logging
// to log (nil: slog.Default), stopped at the test's end.
func startReader(t *testing.T, cfg Config, a Applier, every time.Duration, log *slog.Logger) *Reader {
	t.Helper()
	r, err := NewReader(cfg, a, every, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	return r
}

func newProducer(t testing.TB, cfg Config) *Producer {
	t.Helper()
	p, err := NewProducer(cfg, nil, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	return p
}

func spans(service string, names ...string) []telemetry.Span {
	var out []telemetry.Span
	for _, n := range names {
		out = append(out, telemetry.Span{Service: service, Name: n, Kind: telemetry.SpanKindServer,
			TraceID: [16]byte{1}, SpanID: [8]byte{byte(len(out) + 1)},
			Start: time.Unix(1700000000, 0).UTC(), End: time.Unix(1700000001, 0).UTC()})
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	cfg := cluster(t, 3)
	p := newProducer(t, cfg)
	ctx := auth.WithTenant(context.Background(), "acme")
	// One request with two services is split into a record per service.
	req := append(spans("cart", "GET /cart", "POST /cart"), spans("pay", "POST /pay")...)
	if err := p.Traces().Consume(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := p.Profiles().Consume(context.Background(), []*telemetry.ProfileBatch{{Service: "cart", Source: "cart.pprof"}}); err != nil {
		t.Fatal(err)
	}
	// A record no receiver wrote is skipped, and the others applied.
	raw, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.DefaultProduceTopic(cfg.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.ProduceSync(context.Background(), &kgo.Record{Key: []byte("cart"), Value: []byte("junk")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := p.Traces().Consume(ctx, spans("cart", "GET /done")); err != nil {
		t.Fatal(err)
	}
	st := newState()
	startReader(t, cfg, newApplier(st), 50*time.Millisecond, nil)
	st.waitFor(t, 5)
	want := map[string][]string{
		"acme/cart":    {"GET /cart", "POST /cart", "GET /done"},
		"acme/pay":     {"POST /pay"},
		"default/cart": {"cart.pprof"},
	}
	if diff := cmp.Diff(st.names(), want); diff != "" {
		t.Errorf("applied (-got +want):\n%s", diff)
	}
}

func TestOrderPerService(t *testing.T) {
	cfg := cluster(t, 4)
	p := newProducer(t, cfg)
	services := []string{"cart", "pay", "ship", "auth"}
	const n = 25
	want := map[string][]string{}
	for i := range n {
		for _, s := range services {
			name := fmt.Sprintf("%s-%03d", s, i)
			want["default/"+s] = append(want["default/"+s], name)
			if err := p.Traces().Consume(context.Background(), spans(s, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg.MaxPollRecords = 7 // several batches
	st := newState()
	startReader(t, cfg, newApplier(st), 50*time.Millisecond, nil)
	st.waitFor(t, n*len(services))
	if diff := cmp.Diff(st.names(), want); diff != "" {
		t.Errorf("applied (-got +want):\n%s", diff)
	}
}

// TestKilledBeforeCommit kills an engine that applied more than it
// checkpointed (its store went down): the next engine of the group
// resumes from the checkpoint, reads the rest again and counts nothing
// twice nor loses anything.
func TestKilledBeforeCommit(t *testing.T) {
	cfg := cluster(t, 2)
	p := newProducer(t, cfg)
	var want int
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			for _, s := range []string{"cart", "pay"} {
				if err := p.Traces().Consume(context.Background(), spans(s, fmt.Sprint(i))); err != nil {
					t.Fatal(err)
				}
				want++
			}
		}
	}
	st := newState()
	first := newApplier(st)
	inMemory := func() int {
		first.mu.Lock()
		defer first.mu.Unlock()
		n := 0
		for _, ps := range first.mem {
			for _, names := range ps.names {
				n += len(names)
			}
		}
		return n
	}
	// The first five rounds are checkpointed. The store goes down as the
	// first engine applies a record after them, before the checkpoint
	// that would hold it (the reader checkpoints on the goroutine that
	// applies): it holds that record in memory only, and dies with it.
	// Taking the store down from the test instead raced with the
	// reader's checkpoints, which run whether records came or not: one
	// that failed before the next records were polled paused the reader
	// with none applied.
	const checkpointed = 2 * 5
	first.applied = func() {
		if inMemory() > checkpointed {
			st.mu.Lock()
			st.down = true
			st.mu.Unlock()
		}
	}
	r, err := NewReader(cfg, first, 10*time.Millisecond, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	produce(0, 5)
	st.waitFor(t, checkpointed)
	produce(5, 10)
	// It applies records in memory until its next checkpoint fails, then
	// pauses.
	deadline := time.After(time.Minute)
	for {
		n := inMemory()
		if n > checkpointed {
			break
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("the first engine applied %d, none after its last checkpoint", n)
		}
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, names := range st.names() {
		stored += len(names)
	}
	if stored != checkpointed {
		t.Fatalf("the first engine checkpointed %d records, want the %d before the store went down", stored, checkpointed)
	}
	st.mu.Lock()
	st.down = false
	st.mu.Unlock()
	startReader(t, cfg, newApplier(st), 50*time.Millisecond, nil)
	st.waitFor(t, want)
	for k, names := range st.names() {
		seen := map[string]int{}
		for _, n := range names {
			seen[n]++
			if seen[n] > 1 {
				t.Errorf("%s: %q applied %d times", k, n, seen[n])
			}
		}
		if len(names) != 10 {
			t.Errorf("%s: applied %d spans, want 10", k, len(names))
		}
	}
}

// TestApplyRetried pauses on an applier whose checkpoints fail (the store
// is down) and checkpoints the same records once it recovers.
func TestApplyRetried(t *testing.T) {
	cfg := cluster(t, 1)
	p := newProducer(t, cfg)
	if err := p.Traces().Consume(context.Background(), spans("cart", "a", "b")); err != nil {
		t.Fatal(err)
	}
	st := newState()
	st.down = true
	reg := prometheus.NewRegistry()
	r, err := NewReader(cfg, newApplier(st), 50*time.Millisecond, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	checkpoints := func(result string) float64 {
		return testutil.ToFloat64(r.checkpoints.WithLabelValues(result))
	}
	time.Sleep(200 * time.Millisecond)
	st.mu.Lock()
	st.down = false
	st.mu.Unlock()
	st.waitFor(t, 2)
	if diff := cmp.Diff(st.names(), map[string][]string{"default/cart": {"a", "b"}}); diff != "" {
		t.Errorf("applied (-got +want):\n%s", diff)
	}
	// The checkpoint that succeeds is counted once it returns, which can
	// be a moment after the records it holds are seen applied.
	deadline := time.Now().Add(10 * time.Second)
	for checkpoints("ok") == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if failed, ok := checkpoints("error"), checkpoints("ok"); failed == 0 || ok == 0 {
		t.Errorf("evident_kafka_checkpoints_total error %v, ok %v; want both counted", failed, ok)
	}
}

func TestUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := DefaultConfig()
	cfg.Brokers = []string{addr}
	cfg.ProduceTimeout = time.Second
	cfg.RetryAfter = 3 * time.Second
	var logs logtest.Buffer
	p, err := NewProducer(cfg, nil, slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	err = p.Traces().Consume(context.Background(), spans("cart", "GET /cart"))
	var ue *pipeline.UnavailableError
	if !errors.Is(err, pipeline.ErrUnavailable) || !errors.As(err, &ue) || ue.RetryAfter != cfg.RetryAfter {
		t.Fatalf("Consume with no broker = %v, want a *pipeline.UnavailableError retrying after %v", err, cfg.RetryAfter)
	}
	if pipeline.IsPermanent(err) || errors.Is(err, pipeline.ErrFull) {
		t.Errorf("Consume with no broker = %v: permanent or full", err)
	}
	// Why is in the log, from the client: franz-go's own log was dropped.
	if got := logs.String(); !strings.Contains(got, addr) || !strings.Contains(got, "connection refused") {
		t.Errorf("log has no word of the broker %s refusing the connection:\n%s", addr, got)
	}
}

func TestEnsureTopic(t *testing.T) {
	cfg := cluster(t, 0)
	cfg.Partitions = 6
	for range 2 { // the second finds it
		if err := EnsureTopic(context.Background(), cfg, nil); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(context.Background(), cfg.Topic)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(td[cfg.Topic].Partitions); got != 6 {
		t.Errorf("partitions = %d, want 6", got)
	}
	rc, err := adm.DescribeTopicConfigs(context.Background(), cfg.Topic)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rc.On(cfg.Topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range c.Configs {
		if kv.Value != nil {
			got[kv.Key] = *kv.Value
		}
	}
	for key, want := range map[string]string{"retention.ms": "86400000", "max.message.bytes": "1000012"} {
		if got[key] != want {
			t.Errorf("%s = %q, want %s", key, got[key], want)
		}
	}
}

func TestLifecycle(t *testing.T) {
	cfg := cluster(t, 1)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r, err := NewReader(cfg, newApplier(newState()), time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown without Start: %v", err)
		}
	}
	r, err = NewReader(cfg, newApplier(newState()), time.Second, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	p, err := NewProducer(cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := p.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"default", func(*Config) {}, nil},
		{"no brokers", func(c *Config) { c.Brokers = nil }, []string{"brokers is empty"}},
		{"empty broker", func(c *Config) { c.Brokers = []string{""} }, []string{"brokers[0] is empty"}},
		{"broker forms", func(c *Config) {
			c.Brokers = []string{"kafka", "kafka-0:9093", "10.0.0.1", "::1", "[::1]", "[fd00::1]:9092"}
		}, nil},
		{"broker ports", func(c *Config) { c.Brokers = []string{"kafka:notport", "kafka:0", "kafka:65536", "kafka:", "a:b:c"} }, []string{
			`brokers[0] "kafka:notport" has port "notport", not 1 to 65535`, `brokers[1] "kafka:0" has port "0", not 1 to 65535`,
			`brokers[2] "kafka:65536" has port "65536", not 1 to 65535`, `brokers[3] "kafka:" has port "", not 1 to 65535`,
			`brokers[4] "a:b:c" is not host, host:port nor an IPv6 address`}},
		{"topic and group", func(c *Config) { c.Topic, c.Group = "", "" }, []string{"topic is empty", "group is empty"}},
		{"shape", func(c *Config) { c.Partitions, c.ReplicationFactor, c.Retention = 0, 0, 0 },
			[]string{"partitions 0 is below 1", "replication_factor 0 is below 1", "retention 0s is not positive"}},
		{"timeouts", func(c *Config) { c.ProduceTimeout, c.RetryAfter, c.ApplyBackoff = time.Millisecond, 0, 0 },
			[]string{"produce_timeout 1ms is below 1s", "retry_after 0s is not positive", "apply_backoff 0s is not positive"}},
		{"batch", func(c *Config) { c.MaxPollRecords = 0 }, []string{"max_poll_records 0 is below 1"}},
		{"record size", func(c *Config) { c.MaxRecordBytes = 1000 }, []string{"max_record_bytes 1000 is not between 65536 and 1073741824"}},
		{"tls", func(c *Config) { c.TLS = &tlsconfig.ClientConfig{CertFile: "c.pem"} }, []string{"tls cert_file and key_file go together"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
			for _, w := range tc.want {
				if !containsLine(err.Error(), w) {
					t.Errorf("Validate = %v, want a line with %q", err, w)
				}
			}
		})
	}
}

func containsLine(s, sub string) bool {
	return slices.ContainsFunc(strings.Split(s, "\n"), func(l string) bool { return strings.HasSuffix(l, sub) })
}

// TestReceivedRequest: a request of one service is written as it was
// received, attributes evident does not decode included; a request of
// two services is written as a record per service.
func TestReceivedRequest(t *testing.T) {
	td := ptrace.NewTraces()
	for _, svc := range []string{"cart", "pay"} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName("GET /" + svc)
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetTraceID(pcommon.TraceID{1})
		sp.SetSpanID(pcommon.SpanID{byte(len(svc))})
		sp.Attributes().PutStr("app.note", "kept as received")
	}
	two, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		v, _ := rs.Resource().Attributes().Get("service.name")
		return v.Str() == "pay"
	})
	one, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cluster(t, 1)
	p := newProducer(t, cfg)
	for _, req := range [][]byte{one, two} {
		var decoded []telemetry.Span
		if err := telemetry.DecodeTraceRequest(req, "test", func(s []telemetry.Span) error {
			decoded = append(decoded, s...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		ctx := telemetry.WithReceived(context.Background(), req, nil, decoded)
		if err := p.Traces().Consume(ctx, decoded); err != nil {
			t.Fatal(err)
		}
	}
	got := readLog(t, cfg, 3)
	if len(got) != 3 {
		t.Fatalf("%d records, want 3: the request of one service, then one per service of the other", len(got))
	}
	if !bytes.Equal(got[0].Value, one) {
		t.Errorf("the request of one service was written as %d bytes, not as the %d received", len(got[0].Value), len(one))
	}
	for i, r := range got {
		rec, err := decode(r)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		want := []string{"cart", "cart", "pay"}[i]
		if rec.Service != want || len(rec.Spans) != 1 || rec.Spans[0].Name != "GET /"+want {
			t.Errorf("record %d: service %q, %d spans, want one span of %q", i, rec.Service, len(rec.Spans), want)
		}
		// As a consumer of OTLP reads the record: with what evident
		// does not decode, each service's part of the request as
		// received.
		er := ptraceotlp.NewExportRequest()
		if err := er.UnmarshalProto(r.Value); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		rss := er.Traces().ResourceSpans()
		if rss.Len() != 1 {
			t.Fatalf("record %d: %d resources, want 1", i, rss.Len())
		}
		sp := rss.At(0).ScopeSpans().At(0).Spans().At(0)
		if v, _ := sp.Attributes().Get("app.note"); v.Str() != "kept as received" {
			t.Errorf("record %d: app.note %q, want it kept as received", i, v.Str())
		}
	}
}

// TestRedacted: nothing the producer writes to the log holds a secret the
// redaction rules mask, whether the spans came with their request (logged
// as received, also the attributes evident does not decode) or without
// it, and in the span names of profile samples.
func TestRedacted(t *testing.T) {
	// request returns a request of a span of each service, as received,
	// with secrets in attributes evident decodes and does not.
	request := func(services ...string) ([]byte, []telemetry.Span, *telemetry.Texts) {
		td := ptrace.NewTraces()
		for i, svc := range services {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", svc)
			sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			sp.SetName("GET /" + svc)
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetTraceID(pcommon.TraceID{1})
			sp.SetSpanID(pcommon.SpanID{byte(i + 1)})
			sp.Attributes().PutStr("url.query", "id=7&access_token=s3cr3t-query")
			sp.Attributes().PutStr("app.api_key", "s3cr3t-undecoded")
		}
		req, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		received, texts, err := telemetry.DecodeReceivedTraceRequest(nil, nil, req, "test", func(int) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		return req, received, texts
	}
	req, received, texts := request("cart")
	two, twoReceived, twoTexts := request("cart", "pay")
	bare := spans("pay", "POST /pay")
	bare[0].Attrs.URLQuery = "password=s3cr3t-bare"
	bare[0].Attrs.DBQueryText = "SELECT * FROM users WHERE pass = 's3cr3t-sql'"
	// Its samples carry api_key=s3cr3t-label, a label evident does not
	// decode: only the request as received holds it.
	secretPprof, err := os.ReadFile("testdata/cpu-secret.pb.gz")
	if err != nil {
		t.Fatal(err)
	}
	secretPprof = gunzip(t, secretPprof)
	batches := []struct {
		name    string
		records int
		consume func(p *Producer) error
	}{
		{"a request as received, with its texts", 1, func(p *Producer) error {
			return p.Traces().Consume(telemetry.WithReceived(context.Background(), req, texts, received), received)
		}},
		{"a request as received, without its texts", 1, func(p *Producer) error {
			spans := slices.Clone(received)
			return p.Traces().Consume(telemetry.WithReceived(context.Background(), req, nil, spans), spans)
		}},
		{"a request of two services as received", 2, func(p *Producer) error {
			return p.Traces().Consume(telemetry.WithReceived(context.Background(), two, twoTexts, twoReceived), twoReceived)
		}},
		{"spans without their request", 1, func(p *Producer) error {
			return p.Traces().Consume(context.Background(), bare)
		}},
		{"a pprof request with a credential label", 1, func(p *Producer) error {
			req := &telemetry.ProfileRequest{Limits: telemetry.DefaultLimits(), Profiles: []telemetry.ReceivedProfile{
				{Format: telemetry.FormatPprof, Data: secretPprof, Source: "pyroscope /ingest cart.cpu", Service: "cart"},
			}}
			ps, err := req.Limits.DecodeProfile(&req.Profiles[0])
			if err != nil {
				return err
			}
			return p.Profiles().Consume(telemetry.WithReceivedProfiles(context.Background(), req, ps), ps)
		}},
		{"a Pyroscope /ingest request with a credential in its name's labels", 1, func(p *Producer) error {
			name := url.QueryEscape("cart.cpu{env=prod,api_key=s3cr3t-name}")
			post(t, startPyroscope(t, p.Profiles())+"/ingest?format=folded&name="+name, "text/plain", []byte("main;cart 2\n"))
			return nil
		}},
		{"profiles", 1, func(p *Producer) error {
			return p.Profiles().Consume(context.Background(), []*telemetry.ProfileBatch{{Service: "cart", Source: "cart.pprof",
				Samples: []telemetry.Sample{{SpanName: "GET /users/bob@example.com"}}}})
		}},
	}
	cfg := cluster(t, 1)
	p := newProducer(t, cfg)
	var of []string // the batch of each record
	for _, b := range batches {
		if err := b.consume(p); err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		for range b.records {
			of = append(of, b.name)
		}
	}
	got := readLog(t, cfg, len(of))
	if len(got) != len(of) {
		t.Fatalf("%d records, want %d", len(got), len(of))
	}
	for i, r := range got {
		for _, secret := range []string{"s3cr3t", "bob@example.com"} {
			if bytes.Contains(r.Value, []byte(secret)) {
				t.Errorf("record %d of %s holds %q", i, of[i], secret)
			}
		}
		if strings.Contains(of[i], "as received") && !bytes.Contains(r.Value, []byte("app.api_key")) {
			t.Errorf("record %d of %s: the attribute evident does not decode is gone, want it kept, masked", i, of[i])
		}
		rec, err := decode(r)
		if err != nil {
			t.Fatalf("record %d of %s: %v", i, of[i], err)
		}
		for _, s := range rec.Spans {
			if !strings.Contains(s.Attrs.URLQuery, "REDACTED") {
				t.Errorf("record %d of %s: url.query %q, want the secret masked", i, of[i], s.Attrs.URLQuery)
			}
		}
	}
}

// TestKeepReceived: keep_received writes the telemetry as accepted.
func TestKeepReceived(t *testing.T) {
	cfg := cluster(t, 1)
	cfg.KeepReceived = true
	p := newProducer(t, cfg)
	bare := spans("pay", "POST /pay")
	bare[0].Attrs.URLQuery = "password=s3cr3t-bare"
	if err := p.Traces().Consume(context.Background(), bare); err != nil {
		t.Fatal(err)
	}
	got := readLog(t, cfg, 1)
	if len(got) != 1 || !bytes.Contains(got[0].Value, []byte("password=s3cr3t-bare")) {
		t.Errorf("%d records; want the one written as accepted", len(got))
	}
}

// readLog reads the records of the log's topic until it has n of them or
// 10 s passed.
func readLog(t *testing.T, cfg Config, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ConsumeTopics(cfg.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n && ctx.Err() == nil {
		got = append(got, cl.PollFetches(ctx).Records()...)
	}
	return got
}

// TestMetricsFromZero: every signal and outcome is a series at 0 before
// the first record, so a rate of failures is 0 rather than "no data".
func TestMetricsFromZero(t *testing.T) {
	cfg := cluster(t, 1)
	reg := prometheus.NewRegistry()
	p, err := NewProducer(cfg, nil, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	if _, err := NewReader(cfg, newApplier(newState()), time.Second, nil, reg); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"evident_kafka_produced_records_total": 6, "evident_kafka_read_records_total": 4, "evident_kafka_partitions_stopped": 1, "evident_kafka_checkpoints_total": 2, "evident_kafka_lost_records_total": 1} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != want {
			t.Errorf("%s: %d series (%v), want %d", name, n, err, want)
		}
	}
}

// TestNewerFormat: a record whose format this evident does not know was
// written by a newer receiver. The engine applies what comes before it
// in its partition, then stops reading the partition: nothing from that
// record on is applied, and the offset committed stays at it, for an
// engine that knows the format to read; it says so in its log and its
// metrics. A record of a known format that does not decode is still
// skipped. Another engine given the partition stops at the same record.
func TestNewerFormat(t *testing.T) {
	cfg := cluster(t, 1)
	p := newProducer(t, cfg)
	raw, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.DefaultProduceTopic(cfg.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ctx := auth.WithTenant(context.Background(), "acme")
	write := func(format string, value []byte) {
		t.Helper()
		if err := raw.ProduceSync(ctx, &kgo.Record{Key: []byte("cart"), Value: value, Headers: []kgo.RecordHeader{
			{Key: headerTenant, Value: []byte("acme")}, {Key: headerFormat, Value: []byte(format)},
		}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	receive := func(name string) {
		t.Helper()
		if err := p.Traces().Consume(ctx, spans("cart", name)); err != nil {
			t.Fatal(err)
		}
	}
	receive("a")                                         // offset 0
	write(formatGobSpans, []byte("not gob"))             // 1: damaged, skipped
	receive("b")                                         // 2
	write("otlp-traces/2", []byte("a newer receiver's")) // 3: the partition stops here
	receive("c")                                         // 4
	const newer = 3

	adm := kadm.NewClient(raw)
	committed := func() int64 {
		t.Helper()
		offs, err := adm.FetchOffsets(context.Background(), cfg.Group)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := offs.Lookup(cfg.Topic, 0)
		return o.At
	}
	st := newState()
	// engine starts a reader and checks it once it stopped at the newer
	// record and a checkpoint after that was committed, and a few more
	// checkpoints went by.
	engine := func(read map[string]float64) *Reader {
		t.Helper()
		var logs logtest.Buffer
		r := startReader(t, cfg, newApplier(st), 20*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
		deadline := time.Now().Add(time.Minute)
		for testutil.ToFloat64(r.m.WithLabelValues("too_new")) == 0 || committed() != newer {
			if time.Now().After(deadline) {
				t.Fatalf("in a minute: %v records too new, offset %d committed", testutil.ToFloat64(r.m.WithLabelValues("too_new")), committed())
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Neither is what the partition receives after it stopped.
		receive("later")
		time.Sleep(200 * time.Millisecond)
		if diff := cmp.Diff(st.names(), map[string][]string{"acme/cart": {"a", "b"}}); diff != "" {
			t.Errorf("applied (-got +want):\n%s", diff)
		}
		if got := committed(); got != newer {
			t.Errorf("committed offset %d, want %d: the newer record's", got, newer)
		}
		for outcome, want := range read {
			if got := testutil.ToFloat64(r.m.WithLabelValues(outcome)); got != want {
				t.Errorf("evident_kafka_read_records_total{outcome=%q} %v, want %v", outcome, got, want)
			}
		}
		if got := testutil.ToFloat64(r.stopped); got != 1 {
			t.Errorf("evident_kafka_partitions_stopped %v, want 1", got)
		}
		want := fmt.Sprintf(`level=ERROR msg="stop reading a partition of the ingest log at a record of a newer format" topic=%s partition=0 offset=%d format=otlp-traces/2 `, cfg.Topic, newer)
		if got := logs.String(); !strings.Contains(got, want) || !strings.Contains(got, newerFormatHint) {
			t.Errorf("log:\n%s\nwant a line with %s and the hint", got, want)
		}
		t.Logf("log:\n%s", logs.String())
		return r
	}
	first := engine(map[string]float64{"applied": 2, "malformed": 1, "too_new": 1})
	// The partition goes to another engine, as to an upgraded one: it
	// reads from the newer record.
	if err := first.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	engine(map[string]float64{"applied": 0, "malformed": 0, "too_new": 1})
}

// TestNewerFormatGivenBack: a partition stopped at a record of a newer
// format and taken away is read again from its checkpoint when the group
// gives it back, not left stopped: by then an engine that knows the
// format may have read past the record.
func TestNewerFormatGivenBack(t *testing.T) {
	cfg := cluster(t, 2)
	raw, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.DefaultProduceTopic(cfg.Topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for p := range int32(2) {
		if err := raw.ProduceSync(context.Background(), &kgo.Record{Partition: p, Key: []byte("cart"), Value: []byte("a newer receiver's"), Headers: []kgo.RecordHeader{
			{Key: headerTenant, Value: []byte("acme")}, {Key: headerFormat, Value: []byte("otlp-traces/2")},
		}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	st := newState()
	reader := func() *Reader {
		return startReader(t, cfg, newApplier(st), 20*time.Millisecond, slog.New(slog.DiscardHandler))
	}
	// waitFor waits until r stopped at n records too new and holds
	// stopped partitions.
	waitFor := func(r *Reader, what string, n, stopped float64) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			gotN, gotStopped := testutil.ToFloat64(r.m.WithLabelValues("too_new")), testutil.ToFloat64(r.stopped)
			if gotN == n && gotStopped == stopped {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: in a minute, %v records too new and %v partitions stopped; want %v and %v", what, gotN, gotStopped, n, stopped)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	first := reader()
	waitFor(first, "the first engine alone", 2, 2)
	second := reader()
	waitFor(second, "the second engine, given a partition", 1, 1)
	waitFor(first, "the first engine, a partition taken away", 2, 1)
	if err := second.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(first, "the first engine, the partition given back", 3, 2)
}

// TestPoisonTenant writes, to one partition of two, a record whose tenant
// no engine can take, between records of a tenant it takes, and checks
// that the other partition is applied and committed meanwhile: a bad
// record holds up its own partition at most, never the engine's others.
// A tenant no receiver writes (it fails store.ValidateTenant) is damage,
// skipped and counted as malformed; one the applier refuses until the
// engine is changed (a *StopError: a tenant beyond max_tenants) stops its
// partition there, with nothing from it on committed.
func TestPoisonTenant(t *testing.T) {
	for _, tc := range []struct {
		name, tenant string
		// refused is whether the applier refuses the tenant.
		refused bool
		// want are the names applied: the partition with the bad record
		// and the other.
		want map[string][]string
		// committed is partition 0's committed offset.
		committed int64
		outcomes  map[string]float64
		stopped   float64
		log       string
	}{{
		name: "tenant no receiver writes", tenant: "no/such",
		want:      map[string][]string{"acme/cart": {"a", "c"}, "acme/orders": {"x"}},
		committed: 3,
		outcomes:  map[string]float64{"applied": 3, "malformed": 1, "refused": 0},
		log:       `level=WARN msg="skip a malformed record of the ingest log" err="decode record evident-ingest/0@1: evident-tenant header: invalid argument: tenant \"no/such\"`,
	}, {
		name: "tenant the applier refuses", tenant: "beyond", refused: true,
		want:      map[string][]string{"acme/cart": {"a"}, "acme/orders": {"x"}},
		committed: 1,
		outcomes:  map[string]float64{"applied": 2, "malformed": 0, "refused": 1},
		stopped:   1,
		log:       `level=ERROR msg="stop reading a partition of the ingest log at a record this engine refuses" topic=evident-ingest partition=0 offset=1 err="too many tenants"`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cluster(t, 2)
			raw, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.DefaultProduceTopic(cfg.Topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			write := func(p int32, tenant, service, name string) {
				t.Helper()
				value, format, err := encodeSpans(spans(service, name))
				if err != nil {
					t.Fatal(err)
				}
				if err := raw.ProduceSync(context.Background(), &kgo.Record{Partition: p, Key: []byte(service), Value: value, Headers: []kgo.RecordHeader{
					{Key: headerTenant, Value: []byte(tenant)}, {Key: headerFormat, Value: []byte(format)},
				}}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			write(0, "acme", "cart", "a")    // offset 0
			write(0, tc.tenant, "cart", "b") // 1
			write(0, "acme", "cart", "c")    // 2
			write(1, "acme", "orders", "x")  // partition 1, offset 0

			st := newState()
			a := newApplier(st)
			a.refuse = func(r Record) error {
				if tc.refused && r.Tenant == tc.tenant {
					return &StopError{Partition: r.Partition, Offset: r.Offset, Err: errors.New("too many tenants")}
				}
				return nil
			}
			var logs logtest.Buffer
			r := startReader(t, cfg, a, 20*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
			adm := kadm.NewClient(raw)
			committed := func() (int64, int64) {
				offs, err := adm.FetchOffsets(context.Background(), cfg.Group)
				if err != nil {
					return -1, -1
				}
				o0, _ := offs.Lookup(cfg.Topic, 0)
				o1, _ := offs.Lookup(cfg.Topic, 1)
				return o0.At, o1.At
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				c0, c1 := committed()
				if c0 == tc.committed && c1 == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("in 20 s: committed offsets %d and %d, want %d and 1; applied %v", c0, c1, tc.committed, st.names())
				}
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // a few more checkpoints
			if diff := cmp.Diff(st.names(), tc.want); diff != "" {
				t.Errorf("applied (-got +want):\n%s", diff)
			}
			if c0, _ := committed(); c0 != tc.committed {
				t.Errorf("partition 0 committed at %d, want %d", c0, tc.committed)
			}
			for outcome, want := range tc.outcomes {
				if got := testutil.ToFloat64(r.m.WithLabelValues(outcome)); got != want {
					t.Errorf("evident_kafka_read_records_total{outcome=%q} %v, want %v", outcome, got, want)
				}
			}
			if got := testutil.ToFloat64(r.stopped); got != tc.stopped {
				t.Errorf("evident_kafka_partitions_stopped %v, want %v", got, tc.stopped)
			}
			if got := logs.String(); !strings.Contains(got, tc.log) {
				t.Errorf("log:\n%s\nwant a line with %s", got, tc.log)
			}
		})
	}
}

// TestRefusedPartition: a partition whose state the applier cannot
// restore (a *RefusedError from Assign: a stored shard of a tenant beyond
// max_tenants) is not read, and the engine's other partitions are read
// and committed meanwhile, rather than the group assigning again and
// again with every partition of the engine stalled.
func TestRefusedPartition(t *testing.T) {
	cfg := cluster(t, 2)
	raw, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.DefaultProduceTopic(cfg.Topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for i, p := range []int32{0, 1, 1} {
		value, format, err := encodeSpans(spans("cart", fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := raw.ProduceSync(context.Background(), &kgo.Record{Partition: p, Key: []byte("cart"), Value: value, Headers: []kgo.RecordHeader{
			{Key: headerTenant, Value: []byte("acme")}, {Key: headerFormat, Value: []byte(format)},
		}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	st := newState()
	a := newApplier(st)
	a.refusePartition = func(p int32) error {
		if p == 0 {
			return errors.New("create a shard of tenant beyond: too many tenants")
		}
		return nil
	}
	var logs logtest.Buffer
	r := startReader(t, cfg, a, 20*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
	adm := kadm.NewClient(raw)
	deadline := time.Now().Add(20 * time.Second)
	for {
		offs, err := adm.FetchOffsets(context.Background(), cfg.Group)
		if err == nil {
			if o, ok := offs.Lookup(cfg.Topic, 1); ok && o.At == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("in 20 s partition 1 was not committed at 2; applied %v; log:\n%s", st.names(), logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a few more polls
	if diff := cmp.Diff(st.names(), map[string][]string{"acme/cart": {"1", "2"}}); diff != "" {
		t.Errorf("applied (-got +want):\n%s", diff)
	}
	if offs, err := adm.FetchOffsets(context.Background(), cfg.Group); err != nil {
		t.Fatal(err)
	} else if o, ok := offs.Lookup(cfg.Topic, 0); ok && o.At >= 0 {
		t.Errorf("partition 0 committed at %d, want nothing committed", o.At)
	}
	if got := testutil.ToFloat64(r.stopped); got != 1 {
		t.Errorf("evident_kafka_partitions_stopped %v, want 1", got)
	}
	line := fmt.Sprintf(`level=ERROR msg="stop reading a partition of the ingest log whose state this engine cannot restore" topic=%s partition=0 err="create a shard of tenant beyond: too many tenants"`, cfg.Topic)
	if got := logs.String(); !strings.Contains(got, line) {
		t.Errorf("log:\n%s\nwant a line with %s", got, line)
	}
}

// TestRetentionGap: an engine given a partition reads it from its
// checkpoint; when the topic's retention deleted records past it (an
// engine down for longer than the retention), the client goes on from
// the start of the log. The records are lost either way; the engine says
// so, with the topic, partition and offsets, and counts them, instead of
// going on as if nothing were missing. A record skipped as malformed,
// and records the checkpoint covers, are no gap.
func TestRetentionGap(t *testing.T) {
	for _, tc := range []struct {
		name string
		// checkpoint is the stored offset; deleteTo the log's start after
		// the retention (0: nothing deleted).
		checkpoint, deleteTo int64
		want                 []string
		lost                 float64
	}{
		{name: "deleted past the checkpoint", checkpoint: 2, deleteTo: 4, want: []string{"a", "b", "e"}, lost: 2},
		{name: "deleted up to the checkpoint", checkpoint: 3, deleteTo: 3, want: []string{"a", "b", "d", "e"}},
		{name: "nothing deleted", checkpoint: 1, want: []string{"a", "b", "d", "e"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cluster(t, 1)
			p := newProducer(t, cfg)
			raw, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.DefaultProduceTopic(cfg.Topic))
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			for _, n := range []string{"a", "b", "c", "d", "e"} {
				if n == "c" {
					// Offset 2, damaged: skipped, and no gap.
					if err := raw.ProduceSync(context.Background(), &kgo.Record{Key: []byte("cart"), Value: []byte("not gob"), Headers: []kgo.RecordHeader{
						{Key: headerTenant, Value: []byte("default")}, {Key: headerFormat, Value: []byte(formatGobSpans)},
					}}).FirstErr(); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := p.Traces().Consume(context.Background(), spans("cart", n)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.deleteTo > 0 {
				offs := kadm.Offsets{}
				offs.Add(kadm.Offset{Topic: cfg.Topic, Partition: 0, At: tc.deleteTo})
				res, err := kadm.NewClient(raw).DeleteRecords(context.Background(), offs)
				if err == nil {
					err = res.Error()
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			st := newState()
			// What the checkpoint holds: the names before it, c excepted.
			held := slices.DeleteFunc(slices.Clone([]string{"a", "b", "c", "d", "e"}[:tc.checkpoint]), func(n string) bool { return n == "c" })
			st.parts[0] = &partState{next: tc.checkpoint, names: map[string][]string{"default/cart": held}}
			var logs logtest.Buffer
			r := startReader(t, cfg, newApplier(st), 20*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
			st.waitFor(t, len(tc.want))
			time.Sleep(100 * time.Millisecond) // a few more polls
			if diff := cmp.Diff(st.names(), map[string][]string{"default/cart": tc.want}); diff != "" {
				t.Errorf("applied (-got +want):\n%s", diff)
			}
			if got := testutil.ToFloat64(r.lost); got != tc.lost {
				t.Errorf("evident_kafka_lost_records_total %v, want %v", got, tc.lost)
			}
			line := fmt.Sprintf(`level=ERROR msg="records of the ingest log were deleted before this engine applied them" topic=%s partition=0 from=%d to=%d records=%d `, cfg.Topic, tc.checkpoint, tc.deleteTo, tc.deleteTo-tc.checkpoint)
			if got := strings.Contains(logs.String(), line); got != (tc.lost > 0) {
				t.Errorf("log:\n%s\nhas %s: %v, want %v", logs.String(), line, got, tc.lost > 0)
			}
		})
	}
}

// TestLargeRequestSplit: telemetry of one service that takes more than
// max_record_bytes is written as several records, each within it, that
// read back as the whole in order; a span that cannot fit alone is
// refused, naming the limit. Before, the brokers' 1 MB default refused a
// Collector's usual batch of thousands of spans as a permanent error. A
// received request is split as received: each record is an OTLP request
// with the attributes evident does not decode (they were lost when its
// spans were encoded again).
func TestLargeRequestSplit(t *testing.T) {
	const n = 1500
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("GET /item/%04d/%s", i, strings.Repeat("x", 100)))
	}
	// request returns the request of the spans named names, of the
	// services given in turn, as received and decoded.
	request := func(services ...string) ([]byte, []telemetry.Span) {
		td := ptrace.NewTraces()
		for s, svc := range services {
			ss := td.ResourceSpans().AppendEmpty()
			ss.Resource().Attributes().PutStr("service.name", svc)
			for i := s * n / len(services); i < (s+1)*n/len(services); i++ {
				sp := ss.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
				sp.SetName(names[i])
				sp.SetKind(ptrace.SpanKindServer)
				sp.SetTraceID(pcommon.TraceID{1})
				sp.SetSpanID(pcommon.SpanID{byte(i >> 8), byte(i), 1})
				sp.Attributes().PutStr("app.cart.id", fmt.Sprintf("cart-%04d", i))
			}
		}
		req, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		var received []telemetry.Span
		if err := telemetry.DecodeTraceRequest(req, "test", func(s []telemetry.Span) error {
			received = append(received, s...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return req, received
	}
	req, received := request("cart")
	req2, received2 := request("cart", "pay")
	// A profile of n samples, each of its own location.
	prof := &telemetry.ProfileBatch{Service: "cart", Source: "cart.pprof", SampleType: "cpu", Unit: "nanoseconds"}
	for i := range n {
		prof.Locations = append(prof.Locations, []attribution.Frame{{Function: fmt.Sprintf("main.handler%04d", i), File: strings.Repeat("f", 100) + ".go"}})
		prof.Samples = append(prof.Samples, telemetry.Sample{Locations: []int32{int32(i), int32(i / 2)}, Count: int64(i + 1)})
	}
	tests := []struct {
		name    string
		consume func(p *Producer) error
	}{
		{"spans", func(p *Producer) error { return p.Traces().Consume(context.Background(), spans("cart", names...)) }},
		{"received request", func(p *Producer) error {
			return p.Traces().Consume(telemetry.WithReceived(context.Background(), req, nil, received), received)
		}},
		{"received request of two services", func(p *Producer) error {
			return p.Traces().Consume(telemetry.WithReceived(context.Background(), req2, nil, received2), received2)
		}},
		{"profile", func(p *Producer) error {
			return p.Profiles().Consume(context.Background(), []*telemetry.ProfileBatch{prof})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := cluster(t, 1)
			cfg.MaxRecordBytes = minRecordBytes
			p := newProducer(t, cfg)
			if err := tt.consume(p); err != nil {
				t.Fatal(err)
			}
			written := int(testutil.ToFloat64(p.m.WithLabelValues("traces", "written")) + testutil.ToFloat64(p.m.WithLabelValues("profiles", "written")))
			if written < 2 {
				t.Fatalf("%d records written, want the request split", written)
			}
			type sample struct {
				leaf, caller string
				count        int64
			}
			var gotNames, gotCarts []string
			var gotSamples []sample
			for _, r := range readLog(t, cfg, written) {
				if strings.HasPrefix(tt.name, "received request") {
					// As a consumer of OTLP reads the record, not evident.
					er := ptraceotlp.NewExportRequest()
					if err := er.UnmarshalProto(r.Value); err != nil {
						t.Fatalf("record at %d: %v", r.Offset, err)
					}
					rss := er.Traces().ResourceSpans()
					for i := range rss.Len() {
						for j := range rss.At(i).ScopeSpans().Len() {
							sps := rss.At(i).ScopeSpans().At(j).Spans()
							for k := range sps.Len() {
								v, _ := sps.At(k).Attributes().Get("app.cart.id")
								gotCarts = append(gotCarts, v.Str())
							}
						}
					}
				}
				if size := len(r.Value) + len(r.Key) + 100; size > cfg.MaxRecordBytes {
					t.Errorf("record at %d: about %d bytes, over %d", r.Offset, size, cfg.MaxRecordBytes)
				}
				rec, err := decode(r)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range rec.Spans {
					gotNames = append(gotNames, s.Name)
				}
				for _, b := range rec.Profiles {
					for _, smp := range b.Samples {
						gotSamples = append(gotSamples, sample{b.Locations[smp.Locations[0]][0].Function, b.Locations[smp.Locations[1]][0].Function, smp.Count})
					}
				}
			}
			if tt.name != "profile" {
				if diff := cmp.Diff(gotNames, names); diff != "" {
					t.Errorf("spans read back (-got +want):\n%s", diff)
				}
				if strings.HasPrefix(tt.name, "received request") {
					var want []string
					for i := range n {
						want = append(want, fmt.Sprintf("cart-%04d", i))
					}
					if diff := cmp.Diff(gotCarts, want); diff != "" {
						t.Errorf("app.cart.id of the spans read back (-got +want):\n%s", diff)
					}
				}
				return
			}
			var want []sample
			for _, smp := range prof.Samples {
				want = append(want, sample{prof.Locations[smp.Locations[0]][0].Function, prof.Locations[smp.Locations[1]][0].Function, smp.Count})
			}
			if diff := cmp.Diff(gotSamples, want, cmp.AllowUnexported(sample{})); diff != "" {
				t.Errorf("samples read back (-got +want):\n%s", diff)
			}
		})
	}

	t.Run("one span too large", func(t *testing.T) {
		cfg := cluster(t, 1)
		cfg.MaxRecordBytes = minRecordBytes
		p := newProducer(t, cfg)
		big := spans("cart", "GET /"+strings.Repeat("x", minRecordBytes))
		err := p.Traces().Consume(context.Background(), big)
		if !pipeline.IsPermanent(err) || !errors.Is(err, kerr.MessageTooLarge) || !strings.Contains(err.Error(), `service "cart"`) || !strings.Contains(err.Error(), "max_record_bytes 65536") {
			t.Errorf("err = %v, want a permanent error naming the service and max_record_bytes", err)
		}
	})
}

// TestPartlyMalformedRequest: a request of which the receiver accepted
// some spans and refused others (a partial success: a span without ids)
// is written as received, the refused spans with it; the engine applies
// the accepted ones, as the receiver told the client it would, rather
// than skip the record as malformed. A service all of whose spans were
// refused gets no record.
func TestPartlyMalformedRequest(t *testing.T) {
	tests := []struct {
		name     string
		services []string
		refused  string // a service of refused spans alone
		// renamed, when set, is the service the first span handed on
		// is of, which no part of the request is: the spans are
		// written encoded again.
		renamed string
	}{
		{name: "one service", services: []string{"cart"}},
		{name: "two services", services: []string{"cart", "pay"}},
		{name: "a service of refused spans alone", services: []string{"cart"}, refused: "pay"},
		{name: "two services and one of refused spans alone", services: []string{"cart", "pay"}, refused: "shop"},
		{name: "spans of a service no part of the request is", services: []string{"cart", "pay"}, renamed: "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := ptrace.NewTraces()
			want := map[string][]string{}
			for i, svc := range tt.services {
				rs := td.ResourceSpans().AppendEmpty()
				rs.Resource().Attributes().PutStr("service.name", svc)
				ss := rs.ScopeSpans().AppendEmpty()
				sp := ss.Spans().AppendEmpty()
				sp.SetName("GET /" + svc)
				sp.SetKind(ptrace.SpanKindServer)
				sp.SetTraceID(pcommon.TraceID{1})
				sp.SetSpanID(pcommon.SpanID{byte(i + 1)})
				ss.Spans().AppendEmpty().SetName("no ids")
				want["default/"+svc] = []string{"GET /" + svc}
			}
			if tt.refused != "" {
				rs := td.ResourceSpans().AppendEmpty()
				rs.Resource().Attributes().PutStr("service.name", tt.refused)
				rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("no ids")
			}
			want["default/done"] = []string{"GET /done"}
			req, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
			if err != nil {
				t.Fatal(err)
			}
			received, texts, derr := telemetry.DecodeReceivedTraceRequest(nil, nil, req, "test", func(int) error { return nil })
			if derr == nil || len(received) != len(tt.services) {
				t.Fatalf("the receiver decoded %d spans (%v), want %d and the others refused", len(received), derr, len(tt.services))
			}
			if tt.renamed != "" {
				delete(want, "default/"+received[0].Service)
				received[0].Service = tt.renamed
				want["default/"+tt.renamed] = []string{received[0].Name}
			}
			cfg := cluster(t, 1)
			p := newProducer(t, cfg)
			if err := p.Traces().Consume(telemetry.WithReceived(context.Background(), req, texts, received), received); err != nil {
				t.Fatal(err)
			}
			// A record after it, in the one partition: once it is
			// applied, the request's records were read.
			if err := p.Traces().Consume(context.Background(), spans("done", "GET /done")); err != nil {
				t.Fatal(err)
			}
			st := newState()
			r := startReader(t, cfg, newApplier(st), 50*time.Millisecond, nil)
			deadline := time.After(20 * time.Second)
			for st.names()["default/done"] == nil {
				select {
				case <-st.changed:
				case <-time.After(50 * time.Millisecond):
				case <-deadline:
					t.Fatalf("in 20 s the last record was not applied; applied %v", st.names())
				}
			}
			if diff := cmp.Diff(st.names(), want); diff != "" {
				t.Errorf("applied (-got +want):\n%s", diff)
			}
			if n := testutil.ToFloat64(r.m.WithLabelValues("malformed")); n != 0 {
				t.Errorf("%v records skipped as malformed, want none", n)
			}
		})
	}
}
