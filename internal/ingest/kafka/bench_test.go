package kafka

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evidentsec/evident/internal/telemetry"
)

// receivedFixture returns the runtime/pprof fixture's request as a
// Pyroscope receiver hands it on (gunzipped), and its batches.
func receivedFixture(b *testing.B) (*telemetry.ProfileRequest, []*telemetry.ProfileBatch) {
	gz, err := os.ReadFile("testdata/cpu.pb.gz")
	if err != nil {
		b.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		b.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		b.Fatal(err)
	}
	req := &telemetry.ProfileRequest{Limits: telemetry.DefaultLimits(), Profiles: []telemetry.ReceivedProfile{
		{Format: telemetry.FormatPprof, Data: data, Source: "pyroscope /ingest cart.cpu", Service: "cart"},
	}}
	ps, err := req.Limits.DecodeProfile(&req.Profiles[0])
	if err != nil {
		b.Fatal(err)
	}
	return req, ps
}

// BenchmarkProfiles measures the ack path of a received profile: the
// producer's Profiles consumer writing the batches of the runtime/pprof
// fixture, decoded as a Pyroscope receiver decodes it, to kfake and
// waiting for the acknowledgement.
func BenchmarkProfiles(b *testing.B) {
	req, ps := receivedFixture(b)
	cfg := cluster(b, 1)
	p := newProducer(b, cfg)
	ctx := telemetry.WithReceivedProfiles(context.Background(), req, ps)
	consume := p.Profiles()
	b.ReportAllocs()
	for b.Loop() {
		if err := consume.Consume(ctx, ps); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeProfiles measures what an engine does with a record of
// the runtime/pprof fixture's profile, in each format the producer
// writes it in.
func BenchmarkDecodeProfiles(b *testing.B) {
	req, ps := receivedFixture(b)
	gobValue, _, err := encodeProfiles(ps)
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range []struct {
		format string
		value  []byte
	}{
		{formatGobProfile, gobValue},
		{formatProfileRequest, telemetry.AppendProfileRequest(nil, req)},
	} {
		b.Run(f.format, func(b *testing.B) {
			r := &kgo.Record{Topic: topic, Key: []byte("cart"), Value: f.value, Headers: []kgo.RecordHeader{
				{Key: headerTenant, Value: []byte("default")}, {Key: headerFormat, Value: []byte(f.format)},
			}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decode(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
