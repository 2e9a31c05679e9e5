package model

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/evidentsec/evident/internal/telemetry"
)

// namespacedRequest is an OTLP export request, as an SDK sends it, of one
// SERVER span of the service name in each of namespaces ("" for a
// resource without service.namespace).
func namespacedRequest(t *testing.T, name string, namespaces ...string) []telemetry.Span {
	t.Helper()
	td := ptrace.NewTraces()
	for i, ns := range namespaces {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", name)
		if ns != "" {
			rs.Resource().Attributes().PutStr("service.namespace", ns)
		}
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{byte(i + 1)})
		sp.SetSpanID(pcommon.SpanID{byte(i + 1)})
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetName("GET /orders")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Millisecond)))
	}
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	var spans []telemetry.Span
	if err := telemetry.DecodeTraceRequest(body, "test", func(s []telemetry.Span) error {
		spans = append(spans, s...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return spans
}

// TestServiceNamespaces checks that services of one service.name in
// several service.namespace values, which the model merges, are never
// merged silently: the first namespace stays the one shown, the snapshot
// lists them all, the batch that brought the second says so once, and
// checkpoints and the merge of shards keep them.
func TestServiceNamespaces(t *testing.T) {
	tests := []struct {
		name           string
		batches        [][]string // namespaces of the spans of each batch
		wantNamespace  string
		wantNamespaces []string
		wantMerged     [][]NamespaceMerge // by batch
	}{
		{name: "one namespace", batches: [][]string{{"shop", "shop"}, {"", "shop"}},
			wantNamespace: "shop", wantMerged: [][]NamespaceMerge{nil, nil}},
		{name: "none", batches: [][]string{{""}}, wantMerged: [][]NamespaceMerge{nil}},
		{name: "two in one batch", batches: [][]string{{"shop", "billing", "shop"}, {"billing", "shop"}},
			wantNamespace: "shop", wantNamespaces: []string{"shop", "billing"},
			wantMerged: [][]NamespaceMerge{{{Service: "api", Namespaces: []string{"shop", "billing"}}}, nil}},
		{name: "second later, third said no more", batches: [][]string{{"", "shop"}, {"billing"}, {"admin"}},
			wantNamespace: "shop", wantNamespaces: []string{"shop", "billing", "admin"},
			wantMerged: [][]NamespaceMerge{nil, {{Service: "api", Namespaces: []string{"shop", "billing"}}}, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel()
			for i, nss := range tt.batches {
				ch := m.AddSpans(namespacedRequest(t, "api", nss...))
				if diff := cmp.Diff(tt.wantMerged[i], ch.MergedNamespaces); diff != "" {
					t.Errorf("batch %d: MergedNamespaces (-want +got):\n%s", i, diff)
				}
			}
			check := func(what string, snap *Snapshot) {
				t.Helper()
				s := snap.Service("api")
				if s == nil {
					t.Fatalf("%s: no service api", what)
				}
				if s.Namespace != tt.wantNamespace || !cmp.Equal(s.Namespaces, tt.wantNamespaces) {
					t.Errorf("%s: namespace %q, namespaces %q; want %q, %q", what, s.Namespace, s.Namespaces, tt.wantNamespace, tt.wantNamespaces)
				}
			}
			check("snapshot", m.Snapshot())
			data, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			restored := newModel()
			if err := restored.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			check("restored", restored.Snapshot())
			if ch := restored.AddSpans(namespacedRequest(t, "api", "shop", "billing")); len(ch.MergedNamespaces) > 0 && len(tt.wantNamespaces) > 0 {
				t.Errorf("restored model said again that api is merged: %+v", ch.MergedNamespaces)
			}

			// Each shard saw one batch; their merge has the namespaces
			// of all, the first shard's first.
			var states [][]byte
			for _, nss := range tt.batches {
				shard := newModel()
				shard.AddSpans(namespacedRequest(t, "api", nss...))
				data, err := shard.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				states = append(states, data)
			}
			merged, err := MergeStates(Joins{}, states...)
			if err != nil {
				t.Fatal(err)
			}
			view := newModel()
			if err := view.UnmarshalBinary(merged); err != nil {
				t.Fatal(err)
			}
			check("merged shards", view.Snapshot())
		})
	}
}
