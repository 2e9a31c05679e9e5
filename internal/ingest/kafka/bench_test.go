package kafka

import (
	"context"
	"os"
	"testing"

	"github.com/evidentsec/evident/internal/telemetry"
)

// BenchmarkProfiles measures the ack path of a received profile: the
// producer's Profiles consumer writing the batches of the runtime/pprof
// fixture, decoded as a Pyroscope receiver decodes it, to kfake and
// waiting for the acknowledgement.
func BenchmarkProfiles(b *testing.B) {
	data, err := os.ReadFile("testdata/cpu.pb.gz")
	if err != nil {
		b.Fatal(err)
	}
	cfg := cluster(b, 1)
	p := newProducer(b, cfg)
	req := &telemetry.ProfileRequest{Limits: telemetry.DefaultLimits(), Profiles: []telemetry.ReceivedProfile{
		{Format: telemetry.FormatPprof, Data: data, Source: "pyroscope /ingest cart.cpu", Service: "cart"},
	}}
	ps, err := req.Limits.DecodeProfile(&req.Profiles[0])
	if err != nil {
		b.Fatal(err)
	}
	ctx := telemetry.WithReceivedProfiles(context.Background(), req, ps)
	consume := p.Profiles()
	b.ReportAllocs()
	for b.Loop() {
		if err := consume.Consume(ctx, ps); err != nil {
			b.Fatal(err)
		}
	}
}
