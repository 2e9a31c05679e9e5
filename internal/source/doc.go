// Package source reads the telemetry teams already store, through the
// stores' own query APIs, so that evident needs no change to any
// application: traces from Grafana Tempo's HTTP API and profiles from
// Pyroscope's Connect query API (querier.v1.QuerierService), self-hosted
// or Grafana Cloud.
//
// Both sources hand what they read to a telemetry.Handler as the decoded
// batches the file loaders produce, so that a report computed from a
// source is the report computed from the same telemetry in files.
//
// Every request carries the configured Auth (basic, bearer,
// X-Scope-OrgID, TLS client certificates), has a timeout, and reads at
// most MaxResponseBytes. Failures are classified into the sentinels of
// errors.go so that callers can say which credential is missing or which
// server version was expected.
package source
