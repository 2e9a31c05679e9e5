package kafka

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/evidentsec/evident/internal/tlsconfig"
)

// Config is the connection to the ingest log and the shape of its topic.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string `yaml:"brokers"`
	// Topic is the ingest log's topic.
	Topic string `yaml:"topic"`
	// Partitions and ReplicationFactor are used by EnsureTopic when it
	// creates the topic; an existing topic is left as it is. Partitions
	// bound the number of engines that share the work.
	Partitions        int32 `yaml:"partitions"`
	ReplicationFactor int16 `yaml:"replication_factor"`
	// Retention is the topic's retention.ms when EnsureTopic creates it:
	// how long an engine may be behind (or down) before it loses data.
	Retention time.Duration `yaml:"retention"`
	// ClientID names this process to the brokers (logs, quotas).
	ClientID string `yaml:"client_id"`
	// Group is the consumer group of the engines.
	Group string `yaml:"group"`
	// ProduceTimeout bounds the wait for the brokers' acknowledgement of
	// one request's records; past it the request is refused as
	// unavailable and the sender retries after RetryAfter.
	ProduceTimeout time.Duration `yaml:"produce_timeout"`
	RetryAfter     time.Duration `yaml:"retry_after"`
	// MaxRecordBytes is the size of the largest record a receiver
	// writes, its key and headers included: a request whose telemetry
	// takes more is written as several records, in order. It must not
	// be above what the brokers accept (the topic's max.message.bytes,
	// which EnsureTopic sets to it when it creates the topic).
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// MaxPollRecords is the most records an engine applies as one batch.
	MaxPollRecords int `yaml:"max_poll_records"`
	// ApplyBackoff is the wait before an engine retries a batch its
	// store refused (the store is down): consumption pauses meanwhile.
	ApplyBackoff time.Duration `yaml:"apply_backoff"`
	// TLS, when set, encrypts the connections to the brokers; nil is
	// plaintext.
	TLS *tlsconfig.ClientConfig `yaml:"tls"`
	// KeepReceived makes receivers write telemetry to the log as they
	// accepted it, secrets included, instead of redacted: the engines'
	// exploit rules then see payloads where redaction masks them
	// (cookies, parameters named like credentials, SQL literals), as
	// the single process's rules do. The engines still redact before a
	// model, checkpoint or alert.
	KeepReceived bool `yaml:"keep_received"`
}

// DefaultConfig returns a local broker, the topic evident-ingest with 12
// partitions (enough for 12 engines) replicated 3 times and kept 24 h,
// the group evident-engines, a 5 s produce timeout, records of at most
// 1,000,012 bytes (franz-go's default, under what Kafka's brokers,
// 1,048,588, and Redpanda's, 1 MiB, accept by default) and batches of at
// most 1000 records.
func DefaultConfig() Config {
	return Config{
		Brokers: []string{"localhost:9092"}, Topic: "evident-ingest",
		Partitions: 12, ReplicationFactor: 3, Retention: 24 * time.Hour,
		ClientID: "evident", Group: "evident-engines",
		ProduceTimeout: 5 * time.Second, RetryAfter: time.Second,
		MaxRecordBytes: 1000012, MaxPollRecords: 1000, ApplyBackoff: time.Second,
	}
}

// The bounds of MaxRecordBytes: room for a span or a small profile and
// the headers beside it, and franz-go's own upper bound (1 GiB).
const (
	minRecordBytes = 64 << 10
	maxRecordBytes = 1 << 30
)

// ErrInvalidConfig is wrapped by the errors of Validate.
var ErrInvalidConfig = errors.New("invalid kafka configuration")

// Validate reports every problem in c.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if len(c.Brokers) == 0 {
		bad("brokers is empty")
	}
	for i, b := range c.Brokers {
		if b == "" {
			bad("brokers[%d] is empty", i)
		} else if err := checkBroker(b); err != nil {
			bad("brokers[%d] %q %v", i, b, err)
		}
	}
	if c.Topic == "" {
		bad("topic is empty")
	}
	if c.Partitions < 1 {
		bad("partitions %d is below 1", c.Partitions)
	}
	if c.ReplicationFactor < 1 {
		bad("replication_factor %d is below 1", c.ReplicationFactor)
	}
	if c.Retention <= 0 {
		bad("retention %v is not positive", c.Retention)
	}
	if c.Group == "" {
		bad("group is empty")
	}
	if c.ProduceTimeout < time.Second {
		// franz-go refuses a record timeout below one second.
		bad("produce_timeout %v is below 1s", c.ProduceTimeout)
	}
	if c.RetryAfter <= 0 {
		bad("retry_after %v is not positive", c.RetryAfter)
	}
	if c.MaxRecordBytes < minRecordBytes || c.MaxRecordBytes > maxRecordBytes {
		bad("max_record_bytes %d is not between %d and %d", c.MaxRecordBytes, minRecordBytes, maxRecordBytes)
	}
	if c.MaxPollRecords < 1 {
		bad("max_poll_records %d is below 1", c.MaxPollRecords)
	}
	if c.ApplyBackoff <= 0 {
		bad("apply_backoff %v is not positive", c.ApplyBackoff)
	}
	if c.TLS != nil {
		if err := c.TLS.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrInvalidConfig, err))
		}
	}
	return errors.Join(errs...)
}

// checkBroker reports a seed broker address that the client would refuse
// when it is created, which is after the listeners of a receiver are
// configured: the forms it takes are host, host:port, an IPv6 address,
// bracketed or not, and [ipv6]:port (no port: 9092).
func checkBroker(b string) error {
	_, port, err := net.SplitHostPort(b)
	switch {
	case err == nil:
	case !strings.Contains(b, ":"), strings.HasPrefix(b, "[") && strings.HasSuffix(b, "]"), net.ParseIP(b) != nil:
		return nil
	default:
		return errors.New("is not host, host:port nor an IPv6 address")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("has port %q, not 1 to 65535", port)
	}
	return nil
}
