package kafka

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evidentsec/evident/internal/telemetry"
)

// FuzzDecode feeds decode records as a broker could hold them: any
// value under any format. It must return an error or a record, never
// panic.
func FuzzDecode(f *testing.F) {
	v, format, err := encodeSpans(spans("cart", "GET /cart"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(format, v)
	v, format, err = encodeProfiles([]*telemetry.ProfileBatch{{Service: "cart", Source: "x"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(format, v)
	f.Add(formatGobSpans, []byte{0x01, 0xff})
	f.Fuzz(func(t *testing.T, format string, value []byte) {
		rec, err := decode(&kgo.Record{Topic: topic, Key: []byte("cart"), Value: value, Headers: []kgo.RecordHeader{
			{Key: headerTenant, Value: []byte("acme")}, {Key: headerFormat, Value: []byte(format)},
		}})
		if err == nil && rec.Tenant != "acme" {
			t.Errorf("tenant = %q", rec.Tenant)
		}
	})
}

// FuzzSplitTraceRequest feeds splitTraceRequest any bytes as a received
// request: it must not panic, and the parts of a request it splits are
// each within the limit and decode as the spans of the whole, in order
// (a part of malformed spans alone decodes none, as they do not in the
// whole).
func FuzzSplitTraceRequest(f *testing.F) {
	v, _, err := encodeSpans(spans("cart", "GET /cart", "GET /item", "POST /order"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v, 200)
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00}, 10)
	f.Fuzz(func(t *testing.T, req []byte, limit int) {
		parts, err := splitTraceRequest(req, limit)
		if err != nil {
			return
		}
		want, werr := telemetry.TraceRequestSpans(req, "the request")
		var got []telemetry.Span
		for i, p := range parts {
			if len(p) > limit {
				t.Fatalf("part %d: %d bytes, over %d", i, len(p), limit)
			}
			// A part of malformed spans alone decodes none, as the
			// engine reads it: the decoder drops them from the whole.
			s, _ := telemetry.TraceRequestSpans(p, "a part")
			got = append(got, s...)
		}
		if werr != nil && len(got) > 0 || werr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("parts decode as %d spans, the whole as %d (%v)", len(got), len(want), werr)
		}
	})
}
