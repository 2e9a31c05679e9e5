package assess

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/telemetry"
)

// TestMergedNamespacesNotAffected: reporter runs in the namespace batch,
// profiled for two hours without language.Parse, and another service
// named reporter runs in shop, unprofiled; the model merges the two, so
// their profiles cannot clear either, and a finding of reporter is
// under_investigation where one reporter alone would be not_affected.
func TestMergedNamespacesNotAffected(t *testing.T) {
	tests := []struct {
		name       string
		namespaces []string
		want       string
	}{
		{"one namespace", []string{"batch", "batch"}, StatusNotAffected},
		{"one without a namespace", []string{"batch", ""}, StatusNotAffected},
		{"two namespaces", []string{"batch", "shop"}, StatusUnderInvestigation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := ptrace.NewTraces()
			for i, ns := range tt.namespaces {
				rs := td.ResourceSpans().AppendEmpty()
				rs.Resource().Attributes().PutStr("service.name", "reporter")
				if ns != "" {
					rs.Resource().Attributes().PutStr("service.namespace", ns)
				}
				sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
				sp.SetTraceID(pcommon.TraceID{byte(i + 1)})
				sp.SetSpanID(pcommon.SpanID{byte(i + 1)})
				sp.SetKind(ptrace.SpanKindInternal)
				sp.SetName("report")
				sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
				sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Second)))
			}
			body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
			if err != nil {
				t.Fatal(err)
			}
			m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{GoModules: []string{"golang.org/x/text"}}))
			if err := telemetry.DecodeTraceRequest(body, "test", func(s []telemetry.Span) error {
				m.AddSpans(s)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			m.AddProfile(&telemetry.ProfileBatch{
				Service: "reporter", Namespace: "batch", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: 2 * time.Hour,
				Locations: [][]attribution.Frame{{{Function: "runtime.mcall", File: "runtime/proc.go"}}},
				Samples:   []telemetry.Sample{{Locations: []int32{0}, Count: 10_000, Value: 10_000 * 10_000_000}},
			})
			got := New(DefaultConfig(), nil, m.Snapshot()).One(textFinding("reporter", findings.StaticRequired))
			if got.Reachability.Verdict != NotObserved {
				t.Errorf("verdict = %s (%s), want not_observed", got.Reachability.Verdict, got.Reachability.Reason)
			}
			if got.VEX.Status != tt.want {
				t.Errorf("vex = %s (%s), want %s", got.VEX.Status, got.VEX.Statement, tt.want)
			}
		})
	}
}
