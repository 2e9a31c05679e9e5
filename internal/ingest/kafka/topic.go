package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnsureTopic creates cfg.Topic with cfg.Partitions partitions, replicated
// cfg.ReplicationFactor times, kept cfg.Retention and taking records of
// cfg.MaxRecordBytes (max.message.bytes), unless it exists
// already: an existing topic is left as it is (its partitions can only
// grow, with kafka-topics --alter or rpk topic add-partitions, and growing
// them moves services between partitions; see docs/scaling.md).
func EnsureTopic(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if logger == nil {
		logger = slog.Default()
	}
	opts, err := clientOpts(cfg, logger)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("create kafka admin client: %w", err)
	}
	defer cl.Close()
	retention := strconv.FormatInt(cfg.Retention.Milliseconds(), 10)
	maxMessage := strconv.Itoa(cfg.MaxRecordBytes)
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, cfg.Partitions, cfg.ReplicationFactor,
		map[string]*string{"retention.ms": &retention, "max.message.bytes": &maxMessage}, cfg.Topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		logger.Info("created the kafka topic of the ingest log", "topic", cfg.Topic, "partitions", cfg.Partitions)
		return nil
	case errors.Is(err, kerr.TopicAlreadyExists):
		return nil
	default:
		return fmt.Errorf("create kafka topic %s: %w", cfg.Topic, err)
	}
}
