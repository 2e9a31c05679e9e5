package telemetry

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/pprof/profile"
	"google.golang.org/protobuf/encoding/protowire"
)

// checkBatches asserts what every consumer of a ProfileBatch relies on:
// sample locations index into Locations, and every sample has weight.
func checkBatches(t *testing.T, bs []*ProfileBatch) {
	for _, b := range bs {
		for i, s := range b.Samples {
			if s.Count <= 0 {
				t.Fatalf("sample %d: count %d", i, s.Count)
			}
			for _, li := range s.Locations {
				if li < 0 || int(li) >= len(b.Locations) {
					t.Fatalf("sample %d: location %d out of range [0,%d)", i, li, len(b.Locations))
				}
			}
		}
	}
}

func FuzzDecodePprof(f *testing.F) {
	for _, name := range pprofFixtures {
		data := readFixture(f, name)
		f.Add(data)
		f.Add(gunzip(f, data))
	}
	first := readFixture(f, "go-cpu.pb.gz")
	f.Fuzz(func(t *testing.T, data []byte) {
		bs, err := DecodePprof(data, "fuzz")
		checkBatches(t, bs)
		// A decoder that decoded another profile first decodes data as a
		// fresh one does, and leaves what it returned before as it was.
		var dec ProfileDecoder
		prev, _ := dec.DecodePprof(Limits{}, first, "first")
		want := fmt.Sprint(flatten(prev))
		got, gotErr := dec.DecodePprof(Limits{}, data, "fuzz")
		if fmt.Sprint(gotErr) != fmt.Sprint(err) {
			t.Errorf("reused decoder: error %v, fresh one %v", gotErr, err)
		}
		if diff := cmp.Diff(bs, got); diff != "" {
			t.Errorf("reused decoder differs from a fresh one (-fresh +reused):\n%s", diff)
		}
		if fmt.Sprint(flatten(prev)) != want {
			t.Error("the first profile's batches changed when the decoder decoded another")
		}
	})
}

func FuzzDecodeOTLPProfiles(f *testing.F) {
	f.Add(readFixture(f, "profiles.pb"))
	f.Add(readFixture(f, "profiles.json"))
	// A pprof with several sample types: a Profile each, one recording.
	p, err := profile.Parse(bytes.NewReader(readFixture(f, "go-cpu.pb.gz")))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pprofToOTLP(f, p, "checkout"))
	f.Fuzz(func(t *testing.T, data []byte) {
		bs, _ := DecodeOTLPProfiles(data, "fuzz")
		checkBatches(t, bs)
	})
}

func FuzzDecodeTraces(f *testing.F) {
	for _, name := range []string{"traces.pb", "traces.jsonl", "traces-bad-line3.jsonl", "tempo-v1.json", "tempo-v2.json"} {
		f.Add(readFixture(f, name))
	}
	f.Add(renamedValuesRequest(f))
	f.Add(marshalTraces(f, linkedTraces(3, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = DecodeTraces(bytes.NewReader(data), "fuzz", func(spans []Span) error {
			for _, s := range spans {
				if s.Kind > SpanKindConsumer {
					t.Fatalf("span kind %d out of range", s.Kind)
				}
			}
			return nil
		})
	})
}

// FuzzDecodeTraceRequestMatchesPdata: of a request pdata and protobuf-go
// both decode, the wire decoder makes the spans the pdata path makes.
func FuzzDecodeTraceRequestMatchesPdata(f *testing.F) {
	f.Add(readFixture(f, "traces.pb"))
	f.Add(oneFieldRequest("", nil))
	f.Add(renamedValuesRequest(f))
	// Links beyond MaxSpanLinks, one that names no span.
	f.Add(marshalTraces(f, linkedTraces(MaxSpanLinks+2, 1)))
	f.Fuzz(func(t *testing.T, req []byte) {
		if diff, _ := diffFromPdata(req); diff != "" {
			t.Fatalf("the wire decoder differs from pdata (-pdata +wire):\n%s", diff)
		}
	})
}

func FuzzSniff(f *testing.F) {
	for _, name := range []string{"traces.pb", "profiles.pb", "tempo-v2.json", "profiles.json"} {
		f.Add(readFixture(f, name))
	}
	f.Add(gunzip(f, readFixture(f, "go-cpu.pb.gz")))
	f.Fuzz(func(t *testing.T, data []byte) {
		sniff(data)
	})
}

func FuzzDecodeJFR(f *testing.F) {
	data := readFixture(f, "jfr/shop.jfr")
	f.Add(data)
	f.Add(data[:jfrHeaderSize])
	f.Fuzz(func(t *testing.T, data []byte) {
		bs, _ := (Limits{MaxSamples: 1000, MaxLocations: 1000, MaxStackDepth: 100}).DecodeJFR(data, "fuzz")
		checkBatches(t, bs)
	})
}

func FuzzDecodeFolded(f *testing.F) {
	for _, name := range []string{"py-spy.folded", "austin3-cpu.austin", "austin3-full.austin", "austin1-wall.folded", "austin1-full.folded", "async-profiler.collapsed", "perf.folded"} {
		f.Add(readFixture(f, "folded/"+name), true)
	}
	f.Add([]byte("a;b;c\na;d\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, counted bool) {
		bs, _ := DecodeFolded(data, "fuzz", counted)
		checkBatches(t, bs)
	})
}

// FuzzAppendTraceRequest: whatever spans any trace decoder makes of the
// input, AppendTraceRequest either refuses them as not encodable or
// writes what DecodeTraceRequest decodes back to the same spans.
func FuzzAppendTraceRequest(f *testing.F) {
	for _, name := range []string{"traces.pb", "traces.jsonl", "tempo-v1.json", "tempo-v2.json"} {
		f.Add(readFixture(f, name))
	}
	// Renamed values decode to the current ones, which encode and decode
	// to themselves.
	f.Add(renamedValuesRequest(f))
	f.Add(marshalTraces(f, linkedTraces(MaxSpanLinks+2, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var spans []Span
		_ = DecodeTraces(bytes.NewReader(data), "fuzz", func(s []Span) error {
			spans = append(spans, s...)
			return nil
		})
		b, err := AppendTraceRequest(nil, spans)
		if errors.Is(err, ErrNotEncodable) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		var got []Span
		if err := DecodeTraceRequest(b, "fuzz", func(s []Span) error {
			got = append(got, s...)
			return nil
		}); err != nil {
			t.Fatalf("decode what AppendTraceRequest wrote: %v", err)
		}
		if diff := cmp.Diff(spans, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	})
}

// FuzzRedactTraceRequest: whatever the request, DecodeReceivedTraceRequest
// decodes the spans DecodeTraceRequest does (a replay decodes the log with
// the latter), and a redacted request redacts to itself, and decodes into
// the spans of the request as received, but for the masked texts.
func FuzzRedactTraceRequest(f *testing.F) {
	f.Add(readFixture(f, "traces.pb"))
	f.Add(marshalTraces(f, traceRequest("SECRET")))
	f.Add(marshalTraces(f, linkedTraces(3, 1)))
	// A span with a malformed value of an attribute evident does not read
	// (found by FuzzGRPCTraces): DecodeReceivedTraceRequest dropped it.
	f.Add([]byte("\x0a\x33\x12\x31\x12\x2f\x0a\x10\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x12\x08\x01\x02\x03\x04\x05\x06\x07\x08\x2a\x05\x47\x45\x54\x20\x2f\x4a\x0a\x0a\x05\x61\x70\x70\x2e\x78\x12\x01\x76"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var plain []Span
		received, texts, _ := DecodeReceivedTraceRequest(nil, nil, data, "fuzz", func(int) error { return nil })
		_ = DecodeTraceRequest(data, "fuzz", func(s []Span) error {
			plain = append(plain, s...)
			return nil
		})
		if diff := cmp.Diff(plain, received, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("DecodeReceivedTraceRequest (+) and DecodeTraceRequest (-) differ:\n%s", diff)
		}
		out, changed, err := RedactTraceRequest(data, &secretMasker{})
		if texts != nil && !texts.Masks(&secretMasker{}) && (err != nil || changed) {
			t.Fatalf("the decoder's texts mask nothing, RedactTraceRequest: changed %v, %v", changed, err)
		}
		if err != nil {
			return
		}
		again, changed, err := RedactTraceRequest(out, &secretMasker{})
		if err != nil || changed || !bytes.Equal(again, out) {
			t.Fatalf("redacting the redacted request again: changed %v, %v", changed, err)
		}
		ids := func(req []byte) [][8]byte {
			var ids [][8]byte
			_ = DecodeTraceRequest(req, "fuzz", func(s []Span) error {
				for _, sp := range s {
					ids = append(ids, sp.SpanID)
				}
				return nil
			})
			return ids
		}
		if want, got := ids(data), ids(out); !slices.Equal(want, got) {
			t.Fatalf("spans decoded: %x from the request, %x redacted", want, got)
		}
	})
}

// FuzzNextField: nextField's (readField's) fast paths read what protowire
// reads.
func FuzzNextField(f *testing.F) {
	f.Add([]byte{0x0a, 0x02, 'h', 'i'})
	f.Add([]byte{0x39, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{0x15, 1, 2, 3, 4})
	f.Add([]byte{0x0a, 0x81, 0x01})
	f.Add([]byte{0x18, 0x97, 0xf5, 0x24})
	f.Add([]byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkShortFields(t, b)
		got, n, err := nextField(b)
		num, typ, tn := protowire.ConsumeTag(b)
		if tn < 0 {
			if err == nil {
				t.Fatalf("nextField(%x) read a field protowire refuses", b)
			}
			return
		}
		m := protowire.ConsumeFieldValue(num, typ, b[tn:])
		if (m < 0) != (err != nil) {
			t.Fatalf("nextField(%x): err %v, protowire %d", b, err, m)
		}
		if err != nil {
			return
		}
		if n != tn+m || got.num != num || got.typ != typ {
			t.Fatalf("nextField(%x) = %+v, %d; protowire: field %d type %d, %d bytes", b, got, n, num, typ, tn+m)
		}
		switch typ {
		case protowire.BytesType:
			v, _ := protowire.ConsumeBytes(b[tn:])
			if !bytes.Equal(got.b, v) {
				t.Fatalf("nextField(%x) bytes %x, want %x", b, got.b, v)
			}
		case protowire.Fixed64Type:
			if v, _ := protowire.ConsumeFixed64(b[tn:]); got.v != v {
				t.Fatalf("nextField(%x) = %d, want %d", b, got.v, v)
			}
		case protowire.Fixed32Type:
			if v, _ := protowire.ConsumeFixed32(b[tn:]); got.v != uint64(v) {
				t.Fatalf("nextField(%x) = %d, want %d", b, got.v, v)
			}
		case protowire.VarintType:
			if v, _ := protowire.ConsumeVarint(b[tn:]); got.v != v {
				t.Fatalf("nextField(%x) = %d, want %d", b, got.v, v)
			}
		}
	})
}

// FuzzSplitTraceRequest feeds SplitTraceRequestByService and
// SplitTraceRequest any bytes as a received request, as the Kafka
// producer splits one: they must not panic, and the parts of a request
// they split decode as the spans of the whole, each service's in order,
// each part of one service and within the limit (a part of malformed
// spans alone decodes none, as they do not in the whole).
func FuzzSplitTraceRequest(f *testing.F) {
	var spans []Span
	for i, name := range []string{"GET /cart", "GET /item", "POST /order"} {
		spans = append(spans, Span{Service: "cart", Name: name, Kind: SpanKindServer,
			TraceID: [16]byte{1}, SpanID: [8]byte{byte(i + 1)},
			Start: time.Unix(1700000000, 0).UTC(), End: time.Unix(1700000001, 0).UTC()})
	}
	one, err := AppendTraceRequest(nil, spans)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(one, 200)
	spans[1].Service = "pay"
	three, err := AppendTraceRequest(nil, spans)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(three, 120)
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00}, 10)
	f.Fuzz(func(t *testing.T, req []byte, limit int) {
		services, err := SplitTraceRequestByService(req)
		if err != nil {
			return
		}
		whole, werr := TraceRequestSpans(req, "the request")
		var got []Span
		for _, svc := range services {
			parts, err := SplitTraceRequest(svc.Request, limit)
			if err != nil {
				continue
			}
			var of []Span
			for i, p := range parts {
				if len(p) > limit {
					t.Fatalf("service %q: part %d: %d bytes, over %d", svc.Service, i, len(p), limit)
				}
				// A part of malformed spans alone decodes none, as the
				// engine reads it: the decoder drops them from the whole.
				s, _ := TraceRequestSpans(p, "a part")
				of = append(of, s...)
			}
			var want []Span
			for _, s := range whole {
				if s.Service == svc.Service {
					want = append(want, s)
				}
			}
			if !reflect.DeepEqual(of, want) {
				t.Errorf("service %q: parts decode as %d spans, the whole's of the service are %d", svc.Service, len(of), len(want))
			}
			got = append(got, of...)
		}
		if werr != nil && len(got) > 0 {
			t.Errorf("parts decode as %d spans, the whole as none (%v)", len(got), werr)
		}
		for _, s := range whole {
			if !slices.ContainsFunc(services, func(svc ServiceRequest) bool { return svc.Service == s.Service }) {
				t.Fatalf("a span of service %q is in no part", s.Service)
			}
		}
	})
}
