package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/redact"
	"github.com/evidentsec/evident/internal/telemetry"
	"github.com/evidentsec/evident/internal/tlsconfig"
)

// Producer writes the batches the receivers accept to the ingest log.
// Its consumers return only once the brokers acknowledged every record
// of the batch, so that a receiver acknowledges its client only for what
// is in the log. Create it with NewProducer; it is a pipeline.Component
// and safe for concurrent use.
type Producer struct {
	cfg  Config
	red  *redact.Redactor
	cl   *kgo.Client
	log  *slog.Logger
	m    *prometheus.CounterVec
	once sync.Once
}

var _ pipeline.Component = (*Producer)(nil)

// NewProducer returns a producer for cfg. It does not connect: the first
// batch does. Producing uses franz-go's defaults, which are what the log
// needs: acks from all in-sync replicas and an idempotent producer (no
// duplicate or reordered record on a retry within the client). Records
// are placed by a hash of their key, the service, as Kafka's Java client
// does, so that one service's telemetry stays ordered in one partition.
//
// What goes into the log is redacted first with red (the default rules
// when nil), as the engine redacts what it logs: the log is kept for
// hours or days, by brokers evident does not own. cfg.KeepReceived
// writes it unredacted.
func NewProducer(cfg Config, red *redact.Redactor, logger *slog.Logger, reg prometheus.Registerer) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.KeepReceived {
		red = nil // a nil Redactor masks nothing
	} else if red == nil {
		var err error
		if red, err = redact.New(redact.DefaultConfig()); err != nil {
			return nil, err
		}
	}
	if logger == nil {
		logger = slog.Default()
	}
	opts, err := clientOpts(cfg, logger)
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(cfg.ProduceTimeout),
		kgo.ProducerBatchMaxBytes(int32(cfg.MaxRecordBytes)),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("create kafka producer: %w", err)
	}
	p := &Producer{cfg: cfg, red: red, cl: cl, log: logger, m: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "evident_kafka_produced_records_total",
		Help: "Records written to the ingest log, by signal and outcome (written, unavailable, rejected).",
	}, []string{"signal", "outcome"})}
	// Every signal and outcome from 0, so a rate of failed writes is 0
	// rather than "no data".
	for _, signal := range []string{"traces", "profiles"} {
		for _, outcome := range []string{"written", "unavailable", "rejected"} {
			p.m.WithLabelValues(signal, outcome)
		}
	}
	if reg != nil {
		if err := reg.Register(p.m); err != nil {
			cl.Close()
			return nil, fmt.Errorf("register kafka producer metrics: %w", err)
		}
	}
	return p, nil
}

// clientOpts are the options every client of the log shares. franz-go
// logs to logger: a broker it cannot reach, a refused SASL or TLS
// handshake, a rebalance, with their causes.
func clientOpts(cfg Config, logger *slog.Logger) ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.ClientID(cfg.ClientID), kgo.WithLogger(kslog.New(logger))}
	if cfg.TLS != nil {
		tc, err := tlsconfig.NewClient(*cfg.TLS, "kafka", logger)
		if err != nil {
			return nil, fmt.Errorf("kafka tls: %w", err)
		}
		if tc == nil {
			// The zero ClientConfig: TLS with Go's defaults.
			tc = &tls.Config{}
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	return opts, nil
}

// Traces returns the consumer of span batches: one record per service of
// the batch, redacted, or several in order when a service's spans take
// more than MaxRecordBytes. A batch that came with its OTLP request
// (telemetry.WithReceived) is written as that request, redacted on the
// wire (redact.Redactor.TraceRequest), not encoded again: split by the
// services of its ResourceSpans, each service's part whole when it fits
// in one record, else split at its spans, so that the log keeps the
// attributes evident does not decode. The engine decodes the same spans
// from it.
func (p *Producer) Traces() pipeline.Consumer[[]telemetry.Span] {
	return pipeline.ConsumerFunc[[]telemetry.Span](func(ctx context.Context, spans []telemetry.Span) error {
		if len(spans) == 0 {
			return nil
		}
		if req, texts, ok := telemetry.Received(ctx, spans); ok {
			kept, out, _, err := p.red.TraceRequest(spans, req, texts)
			if err == nil {
				var recs []*kgo.Record
				if recs, err = p.requestRecords(ctx, kept, out); err == nil {
					// produce waits for the brokers, so req, the
					// receiver's buffer, is not used after Consume
					// returns.
					return p.produce(ctx, "traces", recs)
				}
			}
			p.log.Debug("writing a trace request's spans encoded again", "spans", len(spans), "err", err)
			spans = out
		} else {
			spans = p.red.Spans(spans)
		}
		groups := groupBy(spans, func(s *telemetry.Span) string { return s.Service })
		return produceGroups(ctx, p, "traces", "spans", groups, func(g []telemetry.Span) string { return g[0].Service }, encodeSpans, nil)
	})
}

// requestRecords returns the records of req, an OTLP request of the
// spans: one service's part of it whole when it fits in one record, else
// its parts split at its spans. A service none of the spans is of has
// only spans the receiver refused in req, and no record of its own: the
// spans of one service, as an SDK sends them, are req whole, with no need
// to read its resources again, and any such ResourceSpans with them,
// whose spans the engine refuses again. It fails when a service of the spans has no part of
// req, for the caller to write the spans encoded again.
func (p *Producer) requestRecords(ctx context.Context, req []byte, spans []telemetry.Span) ([]*kgo.Record, error) {
	services := map[string]bool{}
	for i := range spans {
		if i == 0 || spans[i].Service != spans[i-1].Service {
			services[spans[i].Service] = true
		}
	}
	parts := []telemetry.ServiceRequest{{Service: spans[0].Service, Request: req}}
	if len(services) > 1 {
		var err error
		if parts, err = telemetry.SplitTraceRequestByService(req); err != nil {
			return nil, err
		}
	}
	var recs []*kgo.Record
	found := 0
	for _, part := range parts {
		if !services[part.Service] {
			continue
		}
		found++
		rec := record(ctx, part.Service, formatOTLPTraces, part.Request)
		limit := p.valueLimit(rec)
		if len(part.Request) <= limit {
			recs = append(recs, rec)
			continue
		}
		split, err := telemetry.SplitTraceRequest(part.Request, limit)
		if err != nil {
			return nil, fmt.Errorf("service %q: %w", part.Service, err)
		}
		for _, b := range split {
			recs = append(recs, record(ctx, part.Service, formatOTLPTraces, b))
		}
	}
	if found < len(services) {
		return nil, fmt.Errorf("spans of %d services, parts of the request of %d of them", len(services), found)
	}
	return recs, nil
}

// Profiles returns the consumer of profile batches: one record per
// service of the batch, redacted, or several in order when a service's
// profiles take more than MaxRecordBytes (a profile that does not fit
// alone is split by its samples, splitProfile). Batches that came with
// the request they were decoded from (telemetry.WithReceivedProfiles)
// are written as that request (profileRequestRecords), as the engine
// logs them, when redaction would mask nothing in it: the log keeps
// what evident does not decode, and the engine decodes the same batches
// from it with the same decoders.
func (p *Producer) Profiles() pipeline.Consumer[[]*telemetry.ProfileBatch] {
	return pipeline.ConsumerFunc[[]*telemetry.ProfileBatch](func(ctx context.Context, ps []*telemetry.ProfileBatch) error {
		if len(ps) == 0 {
			return nil
		}
		req, _ := telemetry.ReceivedProfiles(ctx, ps)
		clean, _, keep := p.red.ProfileRequest(ps, req)
		if keep {
			recs, err := p.profileRequestRecords(ctx, req, ps)
			if err == nil {
				// produce waits for the brokers, so req, the
				// receiver's buffers, is not used after Consume
				// returns.
				return p.produce(ctx, "profiles", recs)
			}
			p.log.Debug("writing a profile request's batches encoded again", "profiles", len(ps), "err", err)
		}
		groups := groupBy(clean, func(b **telemetry.ProfileBatch) string { return (*b).Service })
		return produceGroups(ctx, p, "profiles", "profiles", groups, func(g []*telemetry.ProfileBatch) string { return g[0].Service }, encodeProfiles, splitProfile)
	})
}

// profileRequestRecords returns the records of req, the request ps were
// decoded from (telemetry.ProfileRequest.Decode gives ps again): one
// per service, the profiles whose batches are of it, with req's limits,
// in as many records, each of whole profiles, as max_record_bytes asks
// for. It fails, for the caller to write ps encoded again, when a
// profile's batches are of several services (a pprof profile whose
// samples name several, an OTLP request of several resources: the
// profile cannot be split as received), when which batches a profile
// gave cannot be told (two profiles of one source), or when a profile
// does not fit in a record alone.
func (p *Producer) profileRequestRecords(ctx context.Context, req *telemetry.ProfileRequest, ps []*telemetry.ProfileBatch) ([]*kgo.Record, error) {
	if len(req.Profiles) > 1 {
		sources := make(map[string]bool, len(req.Profiles))
		for i := range req.Profiles {
			if sources[req.Profiles[i].Source] {
				return nil, fmt.Errorf("two profiles of source %q", req.Profiles[i].Source)
			}
			sources[req.Profiles[i].Source] = true
		}
	}
	// The decoders name every batch of a profile by its source, and a
	// request's batches are its profiles' in order.
	of := make([]string, len(req.Profiles)) // the service of each profile's batches
	given := make([]bool, len(req.Profiles))
	k := 0
	for _, b := range ps {
		for k < len(req.Profiles) && req.Profiles[k].Source != b.Source {
			k++
		}
		if k == len(req.Profiles) {
			return nil, fmt.Errorf("a batch of source %q is not of the request's profiles in order", b.Source)
		}
		if given[k] && of[k] != b.Service {
			return nil, fmt.Errorf("profile %s: batches of services %q and %q", req.Profiles[k].Source, of[k], b.Service)
		}
		of[k], given[k] = b.Service, true
	}
	var services []string
	byService := map[string][]telemetry.ReceivedProfile{}
	for i := range req.Profiles {
		if !given[i] {
			continue // it decoded to nothing, and a record of it applies nothing
		}
		if _, ok := byService[of[i]]; !ok {
			services = append(services, of[i])
		}
		byService[of[i]] = append(byService[of[i]], req.Profiles[i])
	}
	var recs []*kgo.Record
	for _, svc := range services {
		rs, err := records(ctx, p, svc, byService[svc], func(ps []telemetry.ReceivedProfile) ([]byte, string, error) {
			return telemetry.AppendProfileRequest(nil, &telemetry.ProfileRequest{Limits: req.Limits, Profiles: ps}), formatProfileRequest, nil
		}, nil)
		if err != nil {
			return nil, fmt.Errorf("service %q: %w", svc, err)
		}
		recs = append(recs, rs...)
	}
	return recs, nil
}

// produceGroups writes groups, each one service's telemetry of signal
// (what names its items in errors), as records (records), and waits for
// the brokers. A group that cannot be written (an item too large alone)
// writes none of the request, and its sender is told so.
func produceGroups[T any](ctx context.Context, p *Producer, signal, items string, groups [][]T, service func([]T) string, encode func([]T) ([]byte, string, error), halve func(T) (T, T, bool)) error {
	var recs []*kgo.Record
	for _, g := range groups {
		rs, err := records(ctx, p, service(g), g, encode, halve)
		if err != nil {
			p.m.WithLabelValues(signal, "rejected").Inc()
			return pipeline.Permanent(fmt.Errorf("write the %s of service %q: %w", items, service(g), err))
		}
		recs = append(recs, rs...)
	}
	return p.produce(ctx, signal, recs)
}

// records encodes xs, one service's telemetry, as records of at most
// MaxRecordBytes, in order: xs whole when it fits, else in as many parts
// as its size asks for, each split again until it fits. One item that
// does not fit alone is split by halve when it can be (nil: it cannot),
// else refused.
func records[T any](ctx context.Context, p *Producer, service string, xs []T, encode func([]T) ([]byte, string, error), halve func(T) (T, T, bool)) ([]*kgo.Record, error) {
	value, format, err := encode(xs)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	rec := record(ctx, service, format, value)
	limit := p.valueLimit(rec)
	if len(value) <= limit {
		return []*kgo.Record{rec}, nil
	}
	var parts [][]T
	switch {
	case len(xs) > 1:
		// One more part than the size asks for: items differ in size.
		n := min(len(xs), len(value)/limit+2)
		for i := range n {
			parts = append(parts, xs[i*len(xs)/n:(i+1)*len(xs)/n])
		}
	case halve != nil:
		x, y, ok := halve(xs[0])
		if !ok {
			return nil, fmt.Errorf("one sample takes %d bytes encoded, more than max_record_bytes %d allows: %w", len(value), p.cfg.MaxRecordBytes, kerr.MessageTooLarge)
		}
		parts = [][]T{{x}, {y}}
	default:
		// One span, or one profile as received.
		return nil, fmt.Errorf("one takes %d bytes encoded, more than max_record_bytes %d allows: %w", len(value), p.cfg.MaxRecordBytes, kerr.MessageTooLarge)
	}
	var recs []*kgo.Record
	for _, part := range parts {
		rs, err := records(ctx, p, service, part, encode, halve)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rs...)
	}
	return recs, nil
}

// groupBy splits xs by key, keeping the order of the keys' first
// appearance and the order within each group.
func groupBy[T any](xs []T, key func(*T) string) [][]T {
	at := map[string]int{}
	var groups [][]T
	for i := range xs {
		k := key(&xs[i])
		j, ok := at[k]
		if !ok {
			j = len(groups)
			at[k] = j
			groups = append(groups, nil)
		}
		groups[j] = append(groups[j], xs[i])
	}
	return groups
}

// record builds the record of one service's part of a request, with the
// tenant the receiver's guard decided.
func record(ctx context.Context, service, format string, value []byte) *kgo.Record {
	return &kgo.Record{Key: []byte(service), Value: value, Headers: []kgo.RecordHeader{
		{Key: headerTenant, Value: []byte(auth.TenantFromContext(ctx))},
		{Key: headerFormat, Value: []byte(format)},
	}}
}

// valueLimit is the largest value rec can have within MaxRecordBytes,
// its key and headers, and the record batch that holds it alone, taken:
// franz-go refuses a record whose batch of one would be larger.
func (p *Producer) valueLimit(rec *kgo.Record) int {
	// A batch's header is 61 bytes; a record's lengths, offset and
	// timestamp deltas are varints of at most 5 or 10 bytes each.
	n := 61 + 40 + len(rec.Key)
	for _, h := range rec.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return p.cfg.MaxRecordBytes - n
}

// produce writes recs and waits for the brokers' acknowledgement of all
// of them. A record the brokers refuse as too large is a Permanent
// error; any other failure (no broker reachable, no leader, the timeout)
// is a *pipeline.UnavailableError. The records of one request are not
// written atomically: when one fails after another was written, the
// sender's retry writes the written one again (at-least-once, as OTLP
// retries are).
func (p *Producer) produce(ctx context.Context, signal string, recs []*kgo.Record) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ProduceTimeout)
	defer cancel()
	err := p.cl.ProduceSync(ctx, recs...).FirstErr()
	switch {
	case err == nil:
		p.m.WithLabelValues(signal, "written").Add(float64(len(recs)))
		return nil
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		p.m.WithLabelValues(signal, "rejected").Add(float64(len(recs)))
		return pipeline.Permanent(fmt.Errorf("write %s to kafka topic %s: %w", signal, p.cfg.Topic, err))
	default:
		p.m.WithLabelValues(signal, "unavailable").Add(float64(len(recs)))
		return &pipeline.UnavailableError{RetryAfter: p.cfg.RetryAfter, Err: fmt.Errorf("write %s to kafka topic %s: %w", signal, p.cfg.Topic, err)}
	}
}

// Start does nothing: the client connects on the first batch.
func (p *Producer) Start(context.Context) error { return nil }

// Ping asks the brokers for the cluster's metadata: whether the receiver
// could write to the ingest log now, for /readyz.
func (p *Producer) Ping(ctx context.Context) error {
	if err := p.cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka brokers %s: %w", strings.Join(p.cfg.Brokers, ", "), err)
	}
	return nil
}

// Shutdown waits for the records in flight, or until ctx is done, and
// closes the client.
func (p *Producer) Shutdown(ctx context.Context) error {
	var err error
	p.once.Do(func() {
		if ferr := p.cl.Flush(ctx); ferr != nil {
			err = fmt.Errorf("flush kafka producer: %w", ferr)
		}
		p.cl.Close()
	})
	return err
}
