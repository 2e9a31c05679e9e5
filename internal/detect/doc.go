// Package detect holds evident's streaming detections: pure functions and
// single-owner state machines over what the runtime model learns batch by
// batch. It starts no goroutines and does no I/O; the engine feeds it and
// hands the alerts it returns to the alert router.
//
// The detections are:
//   - first execution of a vulnerable function in a service
//     (FirstExecution), from the functions a profile batch showed for the
//     first time;
//   - a new path from an exposed service to a sensitive store
//     (SensitivePaths), from the edges and stores a span batch showed for
//     the first time;
//   - exploit payloads in span attributes (Rules), a rule set kept as data
//     (DefaultRules, docs/detections.md);
//   - request and error rate anomalies per endpoint against an EWMA
//     baseline, and outbound hosts a service calls for the first time
//     (Anomalies).
package detect

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Kind names a detection.
type Kind string

// Kinds of alerts.
const (
	KindFirstExecution Kind = "first_execution"
	KindSensitivePath  Kind = "exposed_to_sensitive_store"
	KindExploitPayload Kind = "exploit_payload"
	KindRequestRate    Kind = "request_rate_anomaly"
	KindErrorRate      Kind = "error_rate_anomaly"
	KindNewHost        Kind = "new_outbound_host"
)

// Kinds lists every kind of alert.
var Kinds = []Kind{KindFirstExecution, KindSensitivePath, KindExploitPayload, KindRequestRate, KindErrorRate, KindNewHost}

// Severity is the level of an alert.
type Severity string

// Severities, highest first.
const (
	Critical Severity = "critical"
	High     Severity = "high"
	Medium   Severity = "medium"
	Low      Severity = "low"
	Info     Severity = "info"
)

// Valid reports whether s is one of the severities.
func (s Severity) Valid() bool {
	switch s {
	case Critical, High, Medium, Low, Info:
		return true
	}
	return false
}

// Alert is one detection.
type Alert struct {
	Kind     Kind     `json:"kind"`
	Severity Severity `json:"severity"`
	// Service is the service the alert is about.
	Service string `json:"service,omitempty"`
	// Summary is one line for humans.
	Summary  string   `json:"summary"`
	Evidence Evidence `json:"evidence"`
	// DedupeKey identifies the condition: alerts with the same key
	// within the router's window are one alert.
	DedupeKey string `json:"dedupe_key"`
	// Time is when the detection fired.
	Time time.Time `json:"time"`
	// Observed is when the telemetry showed the condition, in the
	// telemetry's own time: the start of the profile (first execution)
	// or of the span (exploit payload, new outbound host), the first
	// call of the newest edge or store of the path (sensitive path), the
	// start of the bucket (rate anomalies). With DedupeKey it names the
	// occurrence, whenever and however often the telemetry is applied:
	// an engine that applies a batch again after a crash fires an alert
	// with the same ID (alert.Alert.ID), which the store keeps once, and
	// the router knows for the one fired before (alert.Router.Seed). It
	// is zero for an alert no telemetry triggered (a service found
	// exposed when its callers' spans did not come).
	Observed time.Time `json:"observed,omitzero"`
	// ReceivedAt is when evident received the telemetry that triggered
	// it: Time - ReceivedAt is the detection latency.
	ReceivedAt time.Time `json:"received_at"`
}

// Text is s as an alert's text (its summary and dedupe key, and the
// store's columns of it): with U+FFFD in place of each NUL and each run
// of bytes that are not UTF-8. The text holds what a request chose (a
// path decoded from /a%00b), which PostgreSQL's text does not hold. The
// detections build their text with it, so that the dedupe key a store
// keeps, and seeds a router with after a restart (alert.Router.Seed), is
// the one the detection makes again, and the alert is not fired twice.
func Text(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\ufffd"), "\x00", "\ufffd")
}

// dedupeKey is the DedupeKey of an alert of kind k about parts, as Text:
// every detection makes its keys here, so that none keeps what a store
// would not.
func dedupeKey(k Kind, parts ...string) string {
	return Text(string(k) + "|" + strings.Join(parts, "|"))
}

// Evidence is what made an alert fire; fields that do not apply to a kind
// are empty.
type Evidence struct {
	// Rule, Class and Field name the exploit rule that matched, its class
	// and the span attribute it matched in; Match is the matched text and
	// Value the decoded attribute value (both truncated, and redacted:
	// Pending.Alert).
	Rule  string `json:"rule,omitempty"`
	Class string `json:"class,omitempty"`
	Field string `json:"field,omitempty"`
	Match string `json:"match,omitempty"`
	Value string `json:"value,omitempty"`
	// Offset and Length locate the match in the decoded attribute value
	// as received, before redaction, in bytes.
	Offset int `json:"offset,omitempty"`
	Length int `json:"length,omitempty"`
	// TraceID and SpanID identify the span, in hex.
	TraceID string `json:"trace_id,omitempty"`
	SpanID  string `json:"span_id,omitempty"`
	// Endpoint is the endpoint the span served ("GET /products/{id}").
	Endpoint string `json:"endpoint,omitempty"`
	// Finding identifies the finding of a first execution.
	Finding *FindingRef `json:"finding,omitempty"`
	// Function is the vulnerable function seen running.
	Function string `json:"function,omitempty"`
	// Store, Labels and Path describe a path to a sensitive store: the
	// store, its sensitivity labels and the services from the exposed one
	// to the one calling the store.
	Store  string   `json:"store,omitempty"`
	Labels []string `json:"labels,omitempty"`
	Path   []string `json:"path,omitempty"`
	// Host is an outbound host seen for the first time.
	Host string `json:"host,omitempty"`
	// Observed and Expected are an anomaly's value and its baseline (per
	// second for rates, a fraction for error rates).
	Observed float64 `json:"observed,omitempty"`
	Expected float64 `json:"expected,omitempty"`
}

// FindingRef identifies a finding: service, vulnerability and package.
type FindingRef struct {
	Service string `json:"service"`
	VulnID  string `json:"vuln_id"`
	PURL    string `json:"purl"`
}

// truncate shortens evidence text so one alert stays small whatever the
// attacker sent.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
