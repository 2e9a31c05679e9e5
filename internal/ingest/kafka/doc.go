// Package kafka is the ingest log of the scaled-out deployment: a Kafka
// topic between stateless receivers and the engines.
//
// A Producer is what the receivers hand accepted batches to: it writes
// one record per service (the key; the tenant and the encoding are
// headers) and returns once the brokers acknowledged them, or a
// *pipeline.UnavailableError the receivers answer with 503/UNAVAILABLE
// and a retry hint. A Reader is an engine's member of the consumer
// group: it hands the records of its partitions to an Applier in batches
// and commits their offsets only after the batch is applied and
// checkpointed; the Applier keeps Offsets with its state so that a batch
// read again after a crash is not counted twice. EnsureTopic creates the
// topic. docs/scaling.md describes the deployment, the topic and the
// versions of Apache Kafka and Redpanda the configuration is written for.
package kafka
