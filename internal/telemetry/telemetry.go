// Package telemetry decodes the telemetry evident reads from files and
// receivers — CPU and allocation profiles (pprof, OTLP profiles) and traces
// (OTLP, Tempo API) — into compact in-memory batches that the runtime model
// consumes. It keeps only what the model needs: frames, sample counts and
// the span identity and semantic-convention attributes of each span.
//
// Formats, recognised by content (gzip and zstd are undone first) or, for
// folded stacks, by extension:
//
//   - DecodePprof: pprof profiles from Go's runtime/pprof, Pyroscope
//     exports and its JFR, py-spy and Node conversions. A streaming
//     decoder on protowire reads only what is needed, without building a
//     profile.Profile; tests compare it with github.com/google/pprof.
//   - DecodeOTLPProfiles: OTLP profiles v1development, protobuf or JSON,
//     through pdata's pprofile (alpha; pinned in go.mod).
//   - DecodeJFR: JDK Flight Recorder recordings (the JDK's own and
//     async-profiler's), CPU and wall-clock samples, read a chunk at a
//     time with stacks resolved through each chunk's constant pools;
//     DecodePyroscopeJFR adds the Pyroscope Java agent's labels snapshot.
//     Tests compare every stack with the JDK's jfr print --json.
//   - DecodeFolded: folded (collapsed) stacks from py-spy, austin,
//     async-profiler and perf, recognised by the file's extension.
//   - DecodeTraces: OTLP traces as protobuf (a wire decoder, compared with
//     pdata in tests), OTLP JSON and JSON lines (pdata), the Collector file
//     exporter's framed files, and Tempo's /api/traces and /api/v2/traces
//     JSON with base64 ids.
//
// Discover and Load walk files and directories for the CLI.
//
// Every decoder drops a malformed record (a sample, a span, a line) and
// keeps the rest, reporting each drop as a *RecordError that matches
// ErrMalformed. A profile sample of no weight (a count of 0 or less) is
// left out without an error: it does not show code that ran.
package telemetry

import (
	"time"

	"github.com/evidentsec/evident/internal/attribution"
)

// ProfileBatch is one decoded profile.
type ProfileBatch struct {
	// Service is the service identity, "" if unknown (the caller may assign one).
	Service string
	// Namespace is the service namespace (resource service.namespace), when known.
	Namespace string
	// Image is the container image the service ran from, when the
	// resource said; nil otherwise.
	Image *Image
	// Source names the file or receiver the profile came from, for errors and evidence.
	Source string
	// SampleType is the sample type whose values were kept, e.g. "cpu", "samples", "alloc_space".
	SampleType string
	// Unit is the unit of SampleType: "nanoseconds", "count", "bytes".
	Unit string
	// Period is the sampling period in Unit (10_000_000 ns for 100 Hz CPU profiling); 0 if unknown.
	Period   int64
	Start    time.Time
	Duration time.Duration
	// Locations holds, per location index, the frames of one location,
	// callee (innermost inlined function) first.
	Locations [][]attribution.Frame
	Samples   []Sample
}

// TimeSampled reports whether a profile of a sample type and unit
// samples time: a profiler took its samples at a rate in time, of CPU time
// ("cpu", async-profiler's "itimer"), of wall-clock time ("wall") or
// counted as samples of either ("samples", "sample": py-spy, Pyroscope's
// folded stacks, Node's time profile, the OpenTelemetry eBPF profiler).
// Only such a profile tells how much of a service's time code could have
// taken without being seen in it (the rule-of-three bound,
// docs/priority.md), so only its samples count in one. An allocation
// profile (alloc_space, alloc_objects, Node's space and objects, austin's
// memory), a contention profile (contentions, delay, lock_*, mutex_*,
// block_*), an in-use memory or a goroutine profile shows code that ran
// too, but code that allocates nothing or never waits is never in it,
// however long it runs. This is the one place that tells them apart
// (docs/architecture.md, "Sample types and weights").
func TimeSampled(sampleType, unit string) bool {
	switch sampleType {
	case "cpu", "itimer", "wall", "samples", "sample":
	default:
		return false
	}
	switch unit {
	case "nanoseconds", "microseconds", "milliseconds", "seconds", "count":
		return true
	}
	return false
}

// Sample is one stack with its weight.
type Sample struct {
	// Locations are indexes into ProfileBatch.Locations, leaf first.
	Locations []int32
	// Count is the number of samples this entry represents: value/period
	// for CPU time, the value itself for "samples"/"count" types.
	Count int64
	// Value is the value of SampleType in Unit (CPU nanoseconds for CPU profiles).
	Value int64
	// SpanID, SpanName and TraceID come from the pprof labels span_id,
	// span_name and trace_id (otel-profiling-go, pyroscope) or from an OTLP
	// profile sample's link; empty when the sample is not tied to a span.
	SpanID, SpanName, TraceID string
}

// Image is the container image a resource ran from, from the
// OpenTelemetry resource attributes container.image.name,
// oci.manifest.digest, container.image.repo_digests and
// container.image.tags: what identifies a service to a scanner that scans
// the image.
type Image struct {
	// Name is container.image.name: "registry.example.com/shop/gateway".
	Name string
	// Digest is oci.manifest.digest: "sha256:…".
	Digest string
	// RepoDigests is container.image.repo_digests, as the container
	// runtime reports them: "registry.example.com/shop/gateway@sha256:…".
	RepoDigests []string
	// Tags is container.image.tags.
	Tags []string
}

// newImage returns the image the resource attributes describe, or nil
// when they name none.
func newImage(name, digest string, repoDigests, tags []string) *Image {
	if name == "" && len(repoDigests) == 0 {
		return nil
	}
	return &Image{Name: name, Digest: digest, RepoDigests: repoDigests, Tags: tags}
}

// SpanKind is the OTLP span kind, with the OTLP numeric values.
type SpanKind uint8

// Span kinds, numbered as in OTLP.
const (
	SpanKindUnspecified SpanKind = iota
	SpanKindInternal
	SpanKindServer
	SpanKindClient
	SpanKindProducer
	SpanKindConsumer
)

// String returns the OTLP name of the kind without its prefix ("SERVER").
func (k SpanKind) String() string {
	switch k {
	case SpanKindInternal:
		return "INTERNAL"
	case SpanKindServer:
		return "SERVER"
	case SpanKindClient:
		return "CLIENT"
	case SpanKindProducer:
		return "PRODUCER"
	case SpanKindConsumer:
		return "CONSUMER"
	default:
		return "UNSPECIFIED"
	}
}

// UnknownService is the service of spans whose resource has no
// service.name: the name OpenTelemetry's SDKs give a service that was not
// named, and what the Collector, Jaeger and Tempo show for one. A file cut
// short where a resource's attributes were (the Collector writes them
// after its spans) gives it too.
const UnknownService = "unknown_service"

// Span is one decoded span with the attributes the runtime model uses.
type Span struct {
	// Service is the resource attribute service.name (UnknownService when
	// the resource names none); Namespace is service.namespace.
	Service, Namespace string
	// Image is the container image of the resource, nil when it named
	// none. Spans of one resource share it; it must not be modified.
	Image        *Image
	TraceID      [16]byte
	SpanID       [8]byte
	ParentSpanID [8]byte
	Kind         SpanKind
	// LinksDropped counts the links of the span not in Links: those
	// beyond MaxSpanLinks, and those its SDK dropped (OTLP's
	// dropped_links_count).
	LinksDropped uint32
	Name         string
	Start, End   time.Time
	// Error is true when the status code is ERROR, or when a SERVER span
	// answered with an HTTP status code of 500 or more.
	Error bool
	Attrs Attrs
	// Links are the spans the span links to, as sent, at most
	// MaxSpanLinks; nil for none. A consumer that pulls messages, or
	// receives or processes them in batches, has no producer's span for
	// parent: its span links to the creation context of each message
	// instead, the producer's span (the semantic conventions' messaging
	// spans). A link that names no span (an empty or all-zero span_id)
	// is not kept.
	Links []Link
}

// Link is a span's link to another span, by its ids.
type Link struct {
	TraceID [16]byte
	SpanID  [8]byte
}

// MaxSpanLinks bounds the links kept of a span (Span.Links); those
// beyond it are counted (Span.LinksDropped). A batch consumer's span
// links to every message of the batch, and the links are what a span of
// an untrusted client can hold most of; the OpenTelemetry SDKs keep 128
// by default (OTEL_SPAN_LINK_COUNT_LIMIT).
const MaxSpanLinks = 64

// Attrs holds the semantic-convention attributes of a span, under their
// current names; older names (http.method, http.target, http.url,
// net.peer.name, peer.service, code.function, db.statement, ...) are mapped
// onto them when the current name is absent. DBSystem is db.system.name,
// or db.system, with the values db.system.name renamed read as the
// current ones (DBSystemName: mssql is microsoft.sql_server).
type Attrs struct {
	HTTPMethod, HTTPRoute, URLPath, URLQuery, URLFull, UserAgent  string
	StatusCode                                                    int
	RPCSystem, RPCService, RPCMethod                              string
	ServerAddress                                                 string
	ServerPort                                                    int
	ClientAddress                                                 string
	PeerService                                                   string
	DBSystem, DBNamespace, DBCollection, DBQueryText, DBOperation string
	MessagingSystem, MessagingDestination                         string
	S3Bucket                                                      string
	CodeFunction                                                  string
	// MessagingOperation is messaging.operation.type (formerly
	// messaging.operation): create, send, receive, process, settle or a
	// custom value; the deprecated publish and deliver are read as send
	// and process.
	MessagingOperation string
	// RequestHeaders holds captured http.request.header.* attributes,
	// keyed by lower-case header name; multiple values are joined with ", ".
	RequestHeaders map[string]string
	// RequestBodySize is the request body's size in bytes
	// (http.request.body.size, formerly http.request_content_length);
	// 0 when not recorded.
	RequestBodySize int64
}
