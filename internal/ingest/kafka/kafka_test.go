package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/telemetry"
	"github.com/evidentsec/evident/internal/tlsconfig"
)

const topic = "evident-ingest"

// cluster starts an in-process Kafka with the topic seeded.
func cluster(t *testing.T, partitions int32) Config {
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

// state is what engines share through the store: the counts applied and
// the offsets they cover, checkpointed together.
type state struct {
	mu      sync.Mutex
	offsets Offsets
	names   map[string][]string // tenant/service -> span names and profile sources, in applied order
	skipped int
	changed chan struct{}
}

func newState() *state {
	return &state{offsets: Offsets{}, names: map[string][]string{}, changed: make(chan struct{}, 1)}
}

// applier applies to st; after, when set, runs after a batch is applied
// and checkpointed, and its error is Apply's.
type applier struct {
	st    *state
	after func(ctx context.Context) error
}

func (a applier) Apply(ctx context.Context, recs []Record) error {
	a.st.mu.Lock()
	fresh := a.st.offsets.Fresh(recs)
	a.st.skipped += len(recs) - len(fresh)
	for _, r := range fresh {
		k := r.Tenant + "/" + r.Service
		for _, s := range r.Spans {
			a.st.names[k] = append(a.st.names[k], s.Name)
		}
		for _, p := range r.Profiles {
			a.st.names[k] = append(a.st.names[k], p.Source)
		}
	}
	a.st.offsets.Advance(fresh)
	a.st.mu.Unlock()
	select {
	case a.st.changed <- struct{}{}:
	default:
	}
	if a.after != nil {
		return a.after(ctx)
	}
	return nil
}

// waitFor waits until st holds n names in all, failing after a minute
// (a bound against a hang, not a speed requirement).
func (st *state) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		st.mu.Lock()
		got := 0
		for _, ns := range st.names {
			got += len(ns)
		}
		st.mu.Unlock()
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

func startReader(t *testing.T, cfg Config, a Applier) *Reader {
	t.Helper()
	r, err := NewReader(cfg, a, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	return r
}

func newProducer(t *testing.T, cfg Config) *Producer {
	t.Helper()
	p, err := NewProducer(cfg, nil, prometheus.NewRegistry())
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
	startReader(t, cfg, applier{st: st})
	st.waitFor(t, 5)
	st.mu.Lock()
	defer st.mu.Unlock()
	want := map[string][]string{
		"acme/cart":    {"GET /cart", "POST /cart", "GET /done"},
		"acme/pay":     {"POST /pay"},
		"default/cart": {"cart.pprof"},
	}
	if diff := cmp.Diff(st.names, want); diff != "" {
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
	startReader(t, cfg, applier{st: st})
	st.waitFor(t, n*len(services))
	st.mu.Lock()
	defer st.mu.Unlock()
	if diff := cmp.Diff(st.names, want); diff != "" {
		t.Errorf("applied (-got +want):\n%s", diff)
	}
}

// TestKilledBeforeCommit kills an engine after it applied and
// checkpointed a batch but before it committed the offsets: the next
// engine of the group reads the batch again and counts nothing twice.
func TestKilledBeforeCommit(t *testing.T) {
	cfg := cluster(t, 2)
	p := newProducer(t, cfg)
	var want int
	for i := range 10 {
		for _, s := range []string{"cart", "pay"} {
			if err := p.Traces().Consume(context.Background(), spans(s, fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
			want++
		}
	}
	st := newState()
	applied := make(chan struct{})
	var once sync.Once
	first := startReader(t, cfg, applier{st: st, after: func(ctx context.Context) error {
		once.Do(func() { close(applied) })
		<-ctx.Done() // killed before the commit
		return ctx.Err()
	}})
	<-applied
	if err := first.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	before := len(st.offsets)
	st.mu.Unlock()
	if before == 0 {
		t.Fatal("the first engine checkpointed no offsets")
	}
	startReader(t, cfg, applier{st: st})
	st.waitFor(t, want)
	// Wait for the second engine to have read what the first applied.
	deadline := time.After(time.Minute)
	for {
		st.mu.Lock()
		skipped := st.skipped
		st.mu.Unlock()
		if skipped > 0 {
			break
		}
		select {
		case <-st.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("the second engine did not read the uncommitted batch again")
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for k, names := range st.names {
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

// TestApplyRetried pauses on an applier that fails (the store is down)
// and applies the same records once it recovers.
func TestApplyRetried(t *testing.T) {
	cfg := cluster(t, 1)
	p := newProducer(t, cfg)
	if err := p.Traces().Consume(context.Background(), spans("cart", "a", "b")); err != nil {
		t.Fatal(err)
	}
	st := newState()
	var mu sync.Mutex
	fails := 3
	startReader(t, cfg, failing{applier: applier{st: st}, fail: func() bool {
		mu.Lock()
		defer mu.Unlock()
		fails--
		return fails >= 0
	}})
	st.waitFor(t, 2)
	st.mu.Lock()
	defer st.mu.Unlock()
	if diff := cmp.Diff(st.names, map[string][]string{"default/cart": {"a", "b"}}); diff != "" {
		t.Errorf("applied (-got +want):\n%s", diff)
	}
}

type failing struct {
	applier
	fail func() bool
}

func (f failing) Apply(ctx context.Context, recs []Record) error {
	if f.fail() {
		return errors.New("store unavailable")
	}
	return f.applier.Apply(ctx, recs)
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
	p := newProducer(t, cfg)
	err = p.Traces().Consume(context.Background(), spans("cart", "GET /cart"))
	var ue *pipeline.UnavailableError
	if !errors.Is(err, pipeline.ErrUnavailable) || !errors.As(err, &ue) || ue.RetryAfter != cfg.RetryAfter {
		t.Fatalf("Consume with no broker = %v, want a *pipeline.UnavailableError retrying after %v", err, cfg.RetryAfter)
	}
	if pipeline.IsPermanent(err) || errors.Is(err, pipeline.ErrFull) {
		t.Errorf("Consume with no broker = %v: permanent or full", err)
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
	var retention string
	for _, kv := range c.Configs {
		if kv.Key == "retention.ms" && kv.Value != nil {
			retention = *kv.Value
		}
	}
	if retention != "86400000" {
		t.Errorf("retention.ms = %q, want 86400000", retention)
	}
}

func TestLifecycle(t *testing.T) {
	cfg := cluster(t, 1)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r, err := NewReader(cfg, applier{st: newState()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown without Start: %v", err)
		}
	}
	r, err = NewReader(cfg, applier{st: newState()}, nil, nil)
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
	p, err := NewProducer(cfg, nil, nil)
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
		{"topic and group", func(c *Config) { c.Topic, c.Group = "", "" }, []string{"topic is empty", "group is empty"}},
		{"shape", func(c *Config) { c.Partitions, c.ReplicationFactor, c.Retention = 0, 0, 0 },
			[]string{"partitions 0 is below 1", "replication_factor 0 is below 1", "retention 0s is not positive"}},
		{"timeouts", func(c *Config) { c.ProduceTimeout, c.RetryAfter, c.ApplyBackoff = time.Millisecond, 0, 0 },
			[]string{"produce_timeout 1ms is below 1s", "retry_after 0s is not positive", "apply_backoff 0s is not positive"}},
		{"batch", func(c *Config) { c.MaxPollRecords = 0 }, []string{"max_poll_records 0 is below 1"}},
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
