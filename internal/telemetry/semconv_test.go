package telemetry

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// kv is an attribute, in the order a request sends it.
type kv struct {
	key string
	v   any
}

// decodeOneSpan returns the span a request of one span with attrs, in
// their order, decodes to, through the wire decoder and through the JSON one (pdata),
// failing the test when the two differ or when the span does not
// survive AppendTraceRequest, which the ingest log writes.
func decodeOneSpan(t *testing.T, kind ptrace.SpanKind, attrs ...kv) Span {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "poller")
	s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetTraceID([16]byte{1})
	s.SetSpanID([8]byte{2})
	s.SetKind(kind)
	s.SetName("span")
	for _, a := range attrs {
		if err := s.Attributes().PutEmpty(a.key).FromRaw(a.v); err != nil {
			t.Fatal(err)
		}
	}
	req := ptraceotlp.NewExportRequestFromTraces(td)
	pb, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	js, err := req.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var wire, fromJSON []Span
	if err := DecodeTraceRequest(pb, "protobuf", func(s []Span) error { wire = append(wire, s...); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := DecodeTracesJSON(js, "json", func(s []Span) error { fromJSON = append(fromJSON, s...); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(wire) != 1 {
		t.Fatalf("%d spans decoded, want 1", len(wire))
	}
	if diff := cmp.Diff(wire, fromJSON); diff != "" {
		t.Errorf("JSON decoding differs from protobuf (-protobuf +json):\n%s", diff)
	}
	if diff := cmp.Diff(wire, roundTrip(t, wire)); diff != "" {
		t.Errorf("AppendTraceRequest round trip (-want +got):\n%s", diff)
	}
	return wire[0]
}

// TestDecodeMessagingOperation: messaging.operation.type, or the
// messaging.operation it replaced, with the deprecated values read as
// the current ones.
func TestDecodeMessagingOperation(t *testing.T) {
	tests := []struct {
		name  string
		attrs []kv
		want  string
	}{
		{"none", []kv{{"messaging.system", "kafka"}}, ""},
		{"receive", []kv{{"messaging.operation.type", "receive"}}, "receive"},
		{"settle", []kv{{"messaging.operation.type", "settle"}}, "settle"},
		{"create", []kv{{"messaging.operation.type", "create"}}, "create"},
		{"old name receive", []kv{{"messaging.operation", "receive"}}, "receive"},
		{"old name publish is send", []kv{{"messaging.operation", "publish"}}, "send"},
		{"old name deliver is process", []kv{{"messaging.operation", "deliver"}}, "process"},
		{"deprecated value publish of the current name", []kv{{"messaging.operation.type", "publish"}}, "send"},
		{"current name wins, after the old one", []kv{{"messaging.operation", "receive"}, {"messaging.operation.type", "process"}}, "process"},
		{"current name wins, before the old one", []kv{{"messaging.operation.type", "send"}, {"messaging.operation", "receive"}}, "send"},
		{"custom value kept", []kv{{"messaging.operation.type", "ack"}}, "ack"},
		{"case kept", []kv{{"messaging.operation.type", "Receive"}}, "Receive"},
		{"system-specific name is not the type", []kv{{"messaging.operation.name", "poll"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decodeOneSpan(t, ptrace.SpanKindClient, tt.attrs...).Attrs.MessagingOperation; got != tt.want {
				t.Errorf("MessagingOperation = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDecodeDBSystem: the system of a database span is db.system.name,
// or db.system, with the values db.system.name renamed (the semantic
// conventions' db-migration.md) read as the current ones, whichever of
// the two attributes carries them.
func TestDecodeDBSystem(t *testing.T) {
	renamed := []struct{ old, cur string }{
		{"adabas", "softwareag.adabas"}, {"intersystems_cache", "intersystems.cache"}, {"cache", "intersystems.cache"},
		{"cosmosdb", "azure.cosmosdb"}, {"db2", "ibm.db2"}, {"dynamodb", "aws.dynamodb"}, {"firebird", "firebirdsql"},
		{"h2", "h2database"}, {"hanadb", "sap.hana"}, {"informix", "ibm.informix"}, {"ingres", "actian.ingres"},
		{"maxdb", "sap.maxdb"}, {"mssql", "microsoft.sql_server"}, {"netezza", "ibm.netezza"}, {"oracle", "oracle.db"},
		{"redshift", "aws.redshift"}, {"spanner", "gcp.spanner"},
	}
	type test struct {
		name  string
		attrs []kv
		want  string
	}
	var tests []test
	for _, r := range renamed {
		tests = append(tests,
			test{"db.system " + r.old, []kv{{"db.system", r.old}}, r.cur},
			test{"db.system.name " + r.cur, []kv{{"db.system.name", r.cur}}, r.cur},
			test{"db.system.name with the old value " + r.old, []kv{{"db.system.name", r.old}}, r.cur},
		)
	}
	tests = append(tests,
		test{"none", []kv{{"db.namespace", "shop"}}, ""},
		test{"unchanged value", []kv{{"db.system", "postgresql"}}, "postgresql"},
		test{"current name wins, after the old one", []kv{{"db.system", "mssql"}, {"db.system.name", "postgresql"}}, "postgresql"},
		test{"current name wins, before the old one", []kv{{"db.system.name", "postgresql"}, {"db.system", "mssql"}}, "postgresql"},
		test{"both names, one system", []kv{{"db.system", "mssql"}, {"db.system.name", "microsoft.sql_server"}}, "microsoft.sql_server"},
		test{"removed value kept", []kv{{"db.system", "sybase"}}, "sybase"},
		test{"custom value kept", []kv{{"db.system.name", "tidb"}}, "tidb"},
		test{"case kept", []kv{{"db.system", "MSSQL"}}, "MSSQL"},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decodeOneSpan(t, ptrace.SpanKindClient, tt.attrs...).Attrs.DBSystem; got != tt.want {
				t.Errorf("DBSystem = %q, want %q", got, tt.want)
			}
		})
	}
}

// renamedValuesRequest is a trace request whose spans name a database
// and a messaging operation by values the conventions renamed, under the
// old attributes and the new, for the fuzz targets to start from.
func renamedValuesRequest(t testing.TB) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "poller")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i, attrs := range [][]kv{
		{{"db.system", "mssql"}, {"db.namespace", "shop"}, {"db.sql.table", "orders"}},
		{{"db.system.name", "oracle"}, {"db.namespace", "ledger"}},
		{{"messaging.system", "kafka"}, {"messaging.destination", "orders"}, {"messaging.operation", "publish"}},
		{{"messaging.system", "kafka"}, {"messaging.destination.name", "orders"}, {"messaging.operation.type", "receive"}},
	} {
		s := spans.AppendEmpty()
		s.SetTraceID([16]byte{1})
		s.SetSpanID([8]byte{byte(i + 1)})
		s.SetKind(ptrace.SpanKindClient)
		for _, a := range attrs {
			s.Attributes().PutStr(a.key, a.v.(string))
		}
	}
	return marshalTraces(t, td)
}
