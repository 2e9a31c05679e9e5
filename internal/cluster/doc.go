// Package cluster runs the engines and API replicas of the scaled-out
// evident (docs/scaling.md): receivers write telemetry to the Kafka
// ingest log keyed by service; each engine keeps, for the partitions of
// the log the consumer group gives it, one model per tenant and partition
// (a shard), applies the records to it and raises the per-service alerts
// at once (Applier), and checkpoints the shards with the partition's
// offset to PostgreSQL; the calls between services of different shards
// are joined in the store; an API replica merges the shards and the
// joins of each tenant into one model and assesses it with the engine the
// single process uses (View), one replica at a time recording verdict
// history and topology alerts.
package cluster
