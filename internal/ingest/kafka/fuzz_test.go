package kafka

import (
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
	f.Add(formatProfileRequest, telemetry.AppendProfileRequest(nil, &telemetry.ProfileRequest{Limits: telemetry.DefaultLimits(), Profiles: []telemetry.ReceivedProfile{
		{Format: telemetry.FormatFolded, Data: []byte("main;cart 3\n"), Source: "cart.folded", Service: "cart"},
	}}))
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
