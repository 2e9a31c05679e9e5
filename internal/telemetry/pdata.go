package telemetry

import "go.opentelemetry.io/collector/pdata/ptrace"

// SpansFromTraces converts traces already decoded by pdata (the OTLP/gRPC
// receiver gets them that way from the collector's gRPC service) into
// spans, with the same attribute mapping as DecodeTraces. pdata has
// validated the structure, so no span is dropped.
func SpansFromTraces(td ptrace.Traces) []Span {
	var c jsonTraceConverter
	return c.convert(td)
}
