package telemetry

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/pprof/profile"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/evidentsec/evident/internal/attribution"
)

var pprofFixtures = []string{"go-cpu.pb.gz", "go-cpu-busy.pb.gz", "go-allocs.pb.gz", "go-heap-delta.pb.gz", "go-mutex.pb.gz", "jfr-cpu.pb.gz", "python-cpu.pb.gz", "node-wall.pb.gz"}

// flatSample is a sample in a form both decoders can produce.
type flatSample struct {
	Frames                    []attribution.Frame
	Value                     int64
	SpanID, SpanName, TraceID string
}

func flatten(bs []*ProfileBatch) []flatSample {
	var out []flatSample
	for _, b := range bs {
		for _, s := range b.Samples {
			f := flatSample{Value: s.Value, SpanID: s.SpanID, SpanName: s.SpanName, TraceID: s.TraceID}
			for _, li := range s.Locations {
				f.Frames = append(f.Frames, b.Locations[li]...)
			}
			out = append(out, f)
		}
	}
	return out
}

// flattenProfile does the same from google/pprof's decoded profile,
// without the samples of no value, which DecodePprof drops.
func flattenProfile(p *profile.Profile, vi int) []flatSample {
	var out []flatSample
	for _, s := range p.Sample {
		if s.Value[vi] == 0 {
			continue
		}
		f := flatSample{Value: s.Value[vi]}
		label := func(k string) string {
			if v := s.Label[k]; len(v) > 0 {
				return v[0]
			}
			return ""
		}
		f.SpanID, f.SpanName, f.TraceID = label("span_id"), label("span_name"), label("trace_id")
		if f.SpanID == "" {
			f.SpanID = label("profile_id")
		}
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				name := l.Function.Name
				if name == "" {
					name = l.Function.SystemName
				}
				f.Frames = append(f.Frames, attribution.Frame{Function: name, File: l.Function.Filename})
			}
		}
		out = append(out, f)
	}
	return out
}

// TestDecodePprofMatchesProfileParse decodes every fixture both ways and
// compares frames, values, labels and totals; and every fixture again
// with its location ids moved up by 1<<20, whose varints take three
// bytes, more than the decoder's inline read of a location's fields takes
// (the fixtures' ids take one or two).
func TestDecodePprofMatchesProfileParse(t *testing.T) {
	variants := []struct {
		name   string
		change func(p *profile.Profile)
	}{
		{"as written", nil},
		{"location ids of three bytes", func(p *profile.Profile) {
			for _, loc := range p.Location {
				loc.ID += 1 << 20
			}
		}},
	}
	for _, name := range pprofFixtures {
		for _, variant := range variants {
			t.Run(name+"/"+variant.name, func(t *testing.T) {
				data := readFixture(t, name)
				if variant.change != nil {
					p, err := profile.Parse(bytes.NewReader(data))
					if err != nil {
						t.Fatal(err)
					}
					variant.change(p)
					var b bytes.Buffer
					if err := p.Write(&b); err != nil {
						t.Fatal(err)
					}
					data = b.Bytes()
				}
				matchesProfileParse(t, name, data)
			})
		}
	}
}

// matchesProfileParse decodes data both ways and compares frames, values,
// labels and totals.
func matchesProfileParse(t *testing.T, name string, data []byte) {
	t.Helper()
	got, err := DecodePprof(data, name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	vi := -1
	for i, st := range p.SampleType {
		if st.Type == got[0].SampleType && st.Unit == got[0].Unit {
			vi = i
		}
	}
	if vi < 0 {
		t.Fatalf("sample type %s/%s not in profile", got[0].SampleType, got[0].Unit)
	}
	want := flattenProfile(p, vi)
	// Batches split by service reorder samples; compare as multisets.
	key := func(f flatSample) string { return fmt.Sprint(f) }
	sortBy := cmp.Transformer("sort", func(in []flatSample) map[string]int {
		m := map[string]int{}
		for _, f := range in {
			m[key(f)]++
		}
		return m
	})
	if diff := cmp.Diff(want, flatten(got), sortBy); diff != "" {
		t.Errorf("samples differ from profile.Parse (-want +got):\n%s", diff)
	}
	var total, wantTotal int64
	for _, f := range flatten(got) {
		total += f.Value
	}
	for _, s := range p.Sample {
		wantTotal += s.Value[vi]
	}
	if total != wantTotal || total == 0 {
		t.Errorf("total %d, want %d (non-zero)", total, wantTotal)
	}
	if got[0].Period != p.Period || got[0].Duration.Nanoseconds() != p.DurationNanos || got[0].Start.UnixNano() != p.TimeNanos {
		t.Errorf("period/duration/start %d/%v/%v, want %d/%d/%d", got[0].Period, got[0].Duration, got[0].Start, p.Period, p.DurationNanos, p.TimeNanos)
	}
}

// TestDecodePprofSampleTypes checks the value chosen for each producer and
// how counts are derived.
func TestDecodePprofSampleTypes(t *testing.T) {
	tests := []struct {
		file                 string
		sampleType, unit     string
		services             []string
		countEqualsValueOver int64 // 0: Count == Value
		spanSamples          bool
		// absent is a function that must be in no sample: its samples
		// have no weight.
		absent string
	}{
		{"go-cpu.pb.gz", "cpu", "nanoseconds", []string{""}, 10_000_000, true, ""},
		{"go-allocs.pb.gz", "alloc_space", "bytes", []string{""}, -1, false, ""},
		// The second profile of godeltaprof holds the stacks of memory
		// allocated before it and still in use, with no allocation.
		{"go-heap-delta.pb.gz", "alloc_space", "bytes", []string{""}, -1, false, "telemetry.retain"},
		{"jfr-cpu.pb.gz", "cpu", "nanoseconds", []string{""}, 10_000_000, true, ""},
		{"python-cpu.pb.gz", "samples", "count", []string{"orders-py"}, 0, false, ""},
		{"node-wall.pb.gz", "sample", "count", []string{"web", "api"}, 0, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			bs, err := DecodePprof(readFixture(t, tt.file), tt.file)
			if err != nil {
				t.Fatal(err)
			}
			var services []string
			spans := false
			for _, b := range bs {
				services = append(services, b.Service)
				if b.SampleType != tt.sampleType || b.Unit != tt.unit || b.Source != tt.file {
					t.Errorf("batch %s/%s from %s, want %s/%s from %s", b.SampleType, b.Unit, b.Source, tt.sampleType, tt.unit, tt.file)
				}
				for _, s := range b.Samples {
					switch {
					case s.Count <= 0:
						t.Errorf("sample with count %d", s.Count)
					case tt.countEqualsValueOver == 0 && s.Count != s.Value:
						t.Errorf("count %d, want value %d", s.Count, s.Value)
					case tt.countEqualsValueOver > 0 && s.Count != s.Value/tt.countEqualsValueOver:
						t.Errorf("count %d, want %d/%d", s.Count, s.Value, tt.countEqualsValueOver)
					}
					spans = spans || s.SpanID != ""
					for _, li := range s.Locations {
						for _, f := range b.Locations[li] {
							if tt.absent != "" && strings.HasSuffix(f.Function, tt.absent) {
								t.Errorf("%s in a sample of count %d and value %d", f.Function, s.Count, s.Value)
							}
						}
					}
				}
			}
			if diff := cmp.Diff(tt.services, services); diff != "" {
				t.Errorf("services (-want +got):\n%s", diff)
			}
			if spans != tt.spanSamples {
				t.Errorf("samples tied to spans: %v, want %v", spans, tt.spanSamples)
			}
		})
	}
}

// TestDecodePprofCounts: a sample's count is the profile's own count of
// the samples its value sums, per stack, where the profile has one: a Go
// mutex profile's stack waited as many times as its contentions, not once
// however long in all.
func TestDecodePprofCounts(t *testing.T) {
	tests := []struct {
		file                 string
		valueType, countType string
		wantMaxCountAtLeast  int64
	}{
		{"go-cpu.pb.gz", "cpu", "samples", 2},
		{"go-allocs.pb.gz", "alloc_space", "alloc_objects", 2},
		{"go-mutex.pb.gz", "delay", "contentions", 2},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data := readFixture(t, tt.file)
			bs, err := DecodePprof(data, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			p, err := profile.Parse(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			vi, ci := -1, -1
			for i, st := range p.SampleType {
				switch st.Type {
				case tt.valueType:
					vi = i
				case tt.countType:
					ci = i
				}
			}
			// [value, count] of every sample with weight, as multisets.
			want := map[[2]int64]int{}
			for _, s := range p.Sample {
				if s.Value[ci] > 0 {
					want[[2]int64{s.Value[vi], s.Value[ci]}]++
				}
			}
			got := map[[2]int64]int{}
			var maxCount int64
			for _, b := range bs {
				if b.SampleType != tt.valueType {
					t.Errorf("value of type %s, want %s", b.SampleType, tt.valueType)
				}
				for _, s := range b.Samples {
					got[[2]int64{s.Value, s.Count}]++
					maxCount = max(maxCount, s.Count)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("[value, count] of samples (-want +got):\n%s", diff)
			}
			// The fixture's heaviest stack was sampled many times: the
			// comparison above is not of counts of 1.
			if maxCount < tt.wantMaxCountAtLeast {
				t.Errorf("largest count %d, want at least %d", maxCount, tt.wantMaxCountAtLeast)
			}
		})
	}
}

// TestDecodePprofSpanLabels checks that the labels set by pprof.Do in the
// generator reach the samples of the spinning function, and JFR's
// profile_id becomes the span id.
func TestDecodePprofSpanLabels(t *testing.T) {
	bs, err := DecodePprof(readFixture(t, "go-cpu.pb.gz"), "go-cpu")
	if err != nil {
		t.Fatal(err)
	}
	var labelled, spin int64
	for _, f := range flatten(bs) {
		if len(f.Frames) == 0 || !strings.HasSuffix(f.Frames[0].Function, "telemetry.spin") {
			continue
		}
		spin += f.Value
		if f.SpanID == "eee19b7ec3c1b174" && f.SpanName == "GET /cart/{id}" && f.TraceID == "5b8efff798038103d269b633813fc60c" {
			labelled += f.Value
		}
		if !strings.HasSuffix(f.Frames[0].File, "fixtures_test.go") {
			t.Errorf("spin frame file %q", f.Frames[0].File)
		}
	}
	if labelled == 0 || labelled == spin {
		t.Errorf("labelled spin %d of %d; want some with and some without labels", labelled, spin)
	}

	bs, err = DecodePprof(readFixture(t, "jfr-cpu.pb.gz"), "jfr")
	if err != nil {
		t.Fatal(err)
	}
	got := flatten(bs)[0]
	want := flatSample{
		Frames: []attribution.Frame{
			{Function: "org/apache/logging/log4j/core/lookup/JndiLookup.lookup"},
			{Function: "org/apache/logging/log4j/core/lookup/StrSubstitutor.resolveVariable"},
			{Function: "com/example/shop/CartController.get"},
		},
		Value: 30_000_000, SpanID: "00f067aa0ba902b7", SpanName: "GET /cart", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JFR sample (-want +got):\n%s", diff)
	}
}

// gunzip returns the raw protobuf of a fixture.
func gunzip(t testing.TB, data []byte) []byte {
	raw, err := maybeGunzip(data, "fixture")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// appendMsg appends field num holding the message built by fields.
func appendMsg(b []byte, num protowire.Number, fields ...[]byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), bytes.Join(fields, nil))
}

func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func TestDecodePprofErrors(t *testing.T) {
	gz := readFixture(t, "python-cpu.pb.gz")
	raw := gunzip(t, gz)
	raw = raw[:len(raw):len(raw)] // each case appends its own copy
	p, err := profile.ParseData(raw)
	if err != nil {
		t.Fatal(err)
	}
	nSamples := len(p.Sample)
	tests := []struct {
		name        string
		data        []byte
		wantErr     []string // substrings, in the error text
		wantSamples int      // -1: no batches at all
	}{
		{"truncated gzip", gz[:len(gz)/2], []string{"decode truncated gzip: gzip: malformed telemetry: the input ends inside its gzip stream, after ", " bytes decompressed: it is cut short"}, -1},
		{"truncated protobuf", raw[:len(raw)-3], []string{"decode pprof truncated protobuf", "malformed telemetry", "at byte"}, -1},
		{"not a profile", []byte("hello, world"), []string{"decode pprof not a profile"}, -1},
		{"empty", nil, []string{"decode pprof empty: malformed telemetry: empty profile"}, -1},
		{
			"sample referencing a missing location",
			appendMsg(raw, pprofSample, varintField(1, 999), varintField(2, 5)),
			[]string{fmt.Sprintf("sample referencing a missing location: sample %d: location id 999 does not exist", nSamples)},
			nSamples,
		},
		{
			"bad string index in a function",
			appendMsg(appendMsg(appendMsg(raw,
				pprofFunction, varintField(1, 500), varintField(2, 9999)),
				pprofLocation, varintField(1, 500), appendMsg(nil, 4, varintField(1, 500))),
				pprofSample, varintField(1, 500), varintField(1, 1), varintField(2, 2)),
			[]string{"function", "(id 500): string index 9999 out of range [0,"},
			nSamples + 1,
		},
		{
			"bad label string index",
			appendMsg(raw, pprofSample, varintField(1, 1), varintField(2, 1), appendMsg(nil, 3, varintField(1, 2), varintField(2, 12345))),
			[]string{"string index 12345 out of range"},
			nSamples,
		},
		{
			"wrong number of values",
			appendMsg(raw, pprofSample, varintField(1, 1), varintField(2, 1), varintField(2, 2)),
			[]string{"2 values for 1 sample types"},
			nSamples,
		},
		{
			"bad sample type string",
			appendMsg(raw, pprofSampleType, varintField(1, 777)),
			[]string{"sample_type 1: string index 777 out of range"},
			-1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs, err := DecodePprof(tt.data, tt.name)
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %q does not match ErrMalformed", err)
			}
			if tt.wantSamples < 0 {
				if bs != nil {
					t.Errorf("got %d batches, want none", len(bs))
				}
				return
			}
			var n int
			for _, b := range bs {
				n += len(b.Samples)
			}
			if n != tt.wantSamples {
				t.Errorf("kept %d samples, want %d", n, tt.wantSamples)
			}
			var re *RecordError
			if !errors.As(err, &re) || re.Source != tt.name {
				t.Errorf("error %v is not a *RecordError naming the source", err)
			}
		})
	}
}

func TestDecodePprofTooManyBadRecords(t *testing.T) {
	raw := gunzip(t, readFixture(t, "python-cpu.pb.gz"))
	for i := range 50 {
		raw = appendMsg(raw, pprofSample, varintField(1, uint64(1000+i)), varintField(2, 1))
	}
	_, err := DecodePprof(raw, "many")
	if err == nil || !strings.Contains(err.Error(), "30 more malformed records dropped") {
		t.Errorf("error %v, want the count of records beyond the first %d", err, maxRecordErrors)
	}
}

func TestDecodePprofTooLarge(t *testing.T) {
	// A gzip bomb: a small file inflating beyond the limit. Gzip readers
	// read concatenated members as one stream, so one compressed MiB of
	// zeros repeated is enough.
	// The limit is lowered to keep the test quick.
	member := gzipBytes(t, make([]byte, 1<<20))
	var big bytes.Buffer
	for range 9 {
		big.Write(member)
	}
	_, err := gunzipLimit(big.Bytes(), "bomb", 8<<20)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("error %v, want ErrTooLarge", err)
	}
}

// syntheticProfile builds a CPU-like profile of the given shape with Go
// function names, as perf-reliability.md §9.1 measured.
func syntheticProfile(stacks, depth, funcs int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10_000_000,
		Mapping:    []*profile.Mapping{{ID: 1, File: "/app/server", HasFunctions: true}},
	}
	for i := range funcs {
		fn := &profile.Function{ID: uint64(i + 1), Name: fmt.Sprintf("github.com/acme/mod%d/pkg%d.(*T%d).Method%d", i%40, i%7, i%13, i),
			Filename: fmt.Sprintf("github.com/acme/mod%d@v1.2.%d/pkg%d/file%d.go", i%40, i%5, i%7, i%50)}
		fn.SystemName = fn.Name
		p.Function = append(p.Function, fn)
		p.Location = append(p.Location, &profile.Location{ID: uint64(i + 1), Mapping: p.Mapping[0], Address: uint64(0x400000 + 16*i),
			Line: []profile.Line{{Function: fn, Line: int64(10 + i%300)}}})
	}
	for i := range stacks {
		s := &profile.Sample{Value: []int64{int64(1 + i%5), int64(1+i%5) * 10_000_000}}
		if i%3 == 0 {
			s.Label = map[string][]string{"span_id": {fmt.Sprintf("%016x", r.Uint64())}, "span_name": {"GET /x"}}
		}
		for range depth {
			s.Location = append(s.Location, p.Location[r.IntN(funcs)])
		}
		p.Sample = append(p.Sample, s)
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// BenchmarkDecodePprof and BenchmarkProfileParse decode the same gzipped
// profiles; the target is DecodePprof at least 2× faster end to
// end than profile.Parse.
func BenchmarkDecodePprof(b *testing.B) {
	for _, in := range benchProfiles() {
		b.Run(in.name, func(b *testing.B) {
			data := in.load(b)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var samples int
			cpu := processCPU(b)
			for b.Loop() {
				bs, err := DecodePprof(data, in.name)
				if err != nil {
					b.Fatal(err)
				}
				samples = len(bs[0].Samples)
			}
			cpuRate(b, samples*b.N, "samples", cpu)
		})
	}
}

// BenchmarkDecodeAttributePprof is the end-to-end measure: a
// receiver's decode of a gzipped profile (ProfileDecoder.Decode, the
// labels' texts recorded for the log's redaction) plus attribution of
// every location's frames, against profile.Parse alone in
// BenchmarkProfileParse. The decoder is kept across profiles, as a
// receiver keeps one per request slot. "cold" makes a fresh Attributor per
// profile (every function parsed, the first profile of a run); "warm"
// shares one, as the model does across a service's profiles.
func BenchmarkDecodeAttributePprof(b *testing.B) {
	for _, in := range benchProfiles() {
		for _, mode := range []string{"cold", "warm"} {
			b.Run(in.name+"/"+mode, func(b *testing.B) {
				data := in.load(b)
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				var samples, attributed int
				var dec ProfileDecoder
				a := attribution.New(attribution.Config{})
				cpu := processCPU(b)
				for b.Loop() {
					p := ReceivedProfile{Format: FormatPprof, Data: data, Source: in.name}
					bs, err := dec.Decode(Limits{}, &p)
					if err != nil {
						b.Fatal(err)
					}
					if mode == "cold" {
						a = attribution.New(attribution.Config{})
					}
					for _, loc := range bs[0].Locations {
						for _, f := range loc {
							if _, ok := a.Attribute(f); ok {
								attributed++
							}
						}
					}
					samples = len(bs[0].Samples)
				}
				if attributed == 0 {
					b.Fatal("no frame attributed")
				}
				cpuRate(b, samples*b.N, "samples", cpu)
			})
		}
	}
}

func BenchmarkProfileParse(b *testing.B) {
	for _, in := range benchProfiles() {
		b.Run(in.name, func(b *testing.B) {
			data := in.load(b)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var samples int
			cpu := processCPU(b)
			for b.Loop() {
				p, err := profile.Parse(bytes.NewReader(data))
				if err != nil {
					b.Fatal(err)
				}
				samples = len(p.Sample)
			}
			cpuRate(b, samples*b.N, "samples", cpu)
		})
	}
}

// benchProfile is an input of the pprof benchmarks. It is loaded inside
// the sub-benchmark, so that a run of one input (-bench .../go-cpu) does
// not build the large synthetic ones.
type benchProfile struct {
	name string
	load func(testing.TB) []byte
}

func benchProfiles() []benchProfile {
	synthetic := func(stacks, depth, funcs int) func(testing.TB) []byte {
		return func(testing.TB) []byte { return syntheticProfile(stacks, depth, funcs) }
	}
	return []benchProfile{
		{"go-cpu-fixture", func(tb testing.TB) []byte { return readFixture(tb, "go-cpu.pb.gz") }},
		{"go-cpu-busy", func(tb testing.TB) []byte { return readFixture(tb, "go-cpu-busy.pb.gz") }},
		{"4000x32", synthetic(4000, 32, 3000)},
		{"16000x40", synthetic(16000, 40, 8000)},
	}
}

func TestChooseSampleType(t *testing.T) {
	tests := []struct {
		name         string
		types        [][2]string
		defaultType  string
		value, count int
		// timed is whether the type chosen is time-sampled
		// (TimeSampled): a mutex profile's delay is in nanoseconds, and
		// is no sample of the service's time.
		timed bool
	}{
		{"go cpu", [][2]string{{"samples", "count"}, {"cpu", "nanoseconds"}}, "", 1, 0, true},
		{"jfr cpu", [][2]string{{"cpu", "nanoseconds"}}, "", 0, -1, true},
		{"node wall", [][2]string{{"sample", "count"}, {"wall", "nanoseconds"}}, "", 0, 0, true},
		{"node wall in microseconds", [][2]string{{"wall", "microseconds"}}, "", 0, -1, true},
		{"async-profiler itimer", [][2]string{{"itimer", "nanoseconds"}}, "", 0, -1, true},
		{"go heap", [][2]string{{"alloc_objects", "count"}, {"alloc_space", "bytes"}, {"inuse_objects", "count"}, {"inuse_space", "bytes"}}, "inuse_space", 1, 0, false},
		{"in-use only, default", [][2]string{{"inuse_objects", "count"}, {"inuse_space", "bytes"}}, "inuse_space", 1, 0, false},
		{"node heap", [][2]string{{"objects", "count"}, {"space", "bytes"}}, "", 1, -1, false},
		{"mutex contentions", [][2]string{{"contentions", "count"}, {"delay", "nanoseconds"}}, "", 1, 0, false},
		{"java lock", [][2]string{{"lock_count", "count"}, {"lock_duration", "nanoseconds"}}, "", 1, -1, false},
		{"default names a count", [][2]string{{"goroutine", "count"}}, "goroutine", 0, 0, false},
		{"a cpu type of bytes", [][2]string{{"cpu", "bytes"}}, "", 0, -1, false},
		{"unknown default falls back to the last", [][2]string{{"a", "bytes"}, {"b", "bytes"}}, "zzz", 1, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, c := chooseSampleType(tt.types, tt.defaultType)
			if v != tt.value || c != tt.count {
				t.Errorf("got value %d count %d, want %d %d", v, c, tt.value, tt.count)
			}
			if timed := TimeSampled(tt.types[v][0], tt.types[v][1]); timed != tt.timed {
				t.Errorf("TimeSampled(%q, %q) = %t, want %t", tt.types[v][0], tt.types[v][1], timed, tt.timed)
			}
		})
	}
}

// TestDecodersTimeSampled: the profiles each decoder makes of the
// fixtures, and whether they sample time (TimeSampled).
func TestDecodersTimeSampled(t *testing.T) {
	decode := func(name string) ([]*ProfileBatch, error) {
		data := readFixture(t, name)
		switch {
		case strings.HasPrefix(name, "jfr/"):
			return Limits{}.DecodeJFR(data, name)
		case strings.HasPrefix(name, "folded/"):
			return DecodeFolded(data, name, true)
		}
		return DecodePprof(data, name)
	}
	tests := []struct {
		file string
		want []string // type/unit: time-sampled, per batch
	}{
		{"go-cpu.pb.gz", []string{"cpu/nanoseconds: true"}},
		{"go-allocs.pb.gz", []string{"alloc_space/bytes: false"}},
		{"go-heap-delta.pb.gz", []string{"alloc_space/bytes: false"}},
		{"go-mutex.pb.gz", []string{"delay/nanoseconds: false"}},
		{"jfr-cpu.pb.gz", []string{"cpu/nanoseconds: true"}},
		{"python-cpu.pb.gz", []string{"samples/count: true"}},
		{"node-wall.pb.gz", []string{"sample/count: true", "sample/count: true"}},
		{"jfr/shop.jfr", []string{"cpu/count: true", "wall/count: true"}},
		{"folded/py-spy.folded", []string{"samples/count: true"}},
		{"folded/austin3-cpu.austin", []string{"cpu/nanoseconds: true"}},
		{"folded/austin1-wall.folded", []string{"wall/nanoseconds: true"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			bs, err := decode(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range bs {
				got = append(got, fmt.Sprintf("%s/%s: %t", b.SampleType, b.Unit, TimeSampled(b.SampleType, b.Unit)))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("profiles (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodePprofOutputOwnsItsMemory decodes profiles one after another
// with one ProfileDecoder, as a receiver does: what an earlier decode
// returned (batches, and the texts a received profile keeps for the
// redactor) must not share memory with the decoder's buffers, which the
// later decodes overwrite.
func TestDecodePprofOutputOwnsItsMemory(t *testing.T) {
	var dec ProfileDecoder
	type decoded struct {
		name           string
		batches, texts string
		get            func() (string, string)
	}
	var kept []decoded
	for _, tt := range []struct {
		name string
		data []byte
	}{
		// Gzipped: inflated into the decoder's buffer.
		{"go-cpu.pb.gz", readFixture(t, "go-cpu.pb.gz")},
		{"python-cpu.pb.gz", readFixture(t, "python-cpu.pb.gz")},
		// Raw protobuf: decoded in place.
		{"node-wall raw", gunzip(t, readFixture(t, "node-wall.pb.gz"))},
		{"synthetic", syntheticProfile(200, 30, 50)},
	} {
		p := &ReceivedProfile{Format: FormatPprof, Data: tt.data, Source: tt.name}
		bs, err := dec.Decode(Limits{}, p)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		get := func() (string, string) { return fmt.Sprint(flatten(bs)), textsString(p.texts) }
		b, tx := get()
		kept = append(kept, decoded{tt.name, b, tx, get})
		for _, name := range pprofFixtures {
			if _, err := dec.DecodePprof(Limits{}, readFixture(t, name), name); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, k := range kept {
		b, tx := k.get()
		if b != k.batches {
			t.Errorf("%s: the batches changed when other profiles were decoded:\n got %s\nwant %s", k.name, b, k.batches)
		}
		if tx != k.texts {
			t.Errorf("%s: the texts changed when other profiles were decoded:\n got %s\nwant %s", k.name, tx, k.texts)
		}
	}
}

// TestProfileDecoderMatchesFresh checks that a decoder reused across
// profiles decodes each as a fresh one does, errors included.
func TestProfileDecoderMatchesFresh(t *testing.T) {
	raw := gunzip(t, readFixture(t, "python-cpu.pb.gz"))
	raw = raw[:len(raw):len(raw)]
	inputs := []struct {
		name string
		data []byte
	}{
		{"synthetic", syntheticProfile(300, 20, 400)},
		{"bad location", appendMsg(raw, pprofSample, varintField(1, 999), varintField(2, 5))},
		{"truncated", raw[:len(raw)-3]},
		{"sparse ids", gzipBytes(t, sparseIDProfile(t))},
	}
	for _, name := range pprofFixtures {
		inputs = append(inputs, struct {
			name string
			data []byte
		}{name, readFixture(t, name)})
	}
	var dec ProfileDecoder
	// Twice over, so that every input meets tables a different one left.
	for range 2 {
		for _, in := range inputs {
			want, wantErr := DecodePprof(in.data, in.name)
			got, err := dec.DecodePprof(Limits{}, in.data, in.name)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Errorf("%s: error %v, want %v", in.name, err, wantErr)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: reused decoder differs from a fresh one (-want +got):\n%s", in.name, diff)
			}
		}
	}
}

// sparseIDProfile is a profile whose function and location ids are too
// large to index densely.
func sparseIDProfile(t *testing.T) []byte {
	p, err := profile.Parse(bytes.NewReader(readFixture(t, "go-cpu.pb.gz")))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range p.Function {
		f.ID = f.ID<<40 | 7
	}
	for _, l := range p.Location {
		l.ID = l.ID<<40 | 9
	}
	var buf bytes.Buffer
	if err := p.WriteUncompressed(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// textsString lists the strings t refers to, by index.
func textsString(t *pprofTexts) string {
	var b strings.Builder
	for i, s := range t.strs {
		if s.end > s.off {
			fmt.Fprintf(&b, "%d:%q ", i, t.str(uint64(i)))
		}
	}
	return b.String()
}

// TestDecodePprofMatchesProfileParseEveryField puts each of
// oneFieldValues into every message of a small profile, one at a time, and compares the samples the decoder
// gives with google/pprof's wherever profile.ParseData takes the profile,
// as TestDecodePprofMatchesProfileParse does for the fixtures.
func TestDecodePprofMatchesProfileParseEveryField(t *testing.T) {
	places := []string{"profile", "sample_type", "sample", "label", "mapping", "location", "line", "function", "period_type"}
	// Strings: 1 samples, 2 count, 3 cpu, 4 nanoseconds, 5 main.f,
	// 6 main.go, 7 span_id, 8 abc, 9 /app, 10 main.g.
	strs := []string{"", "samples", "count", "cpu", "nanoseconds", "main.f", "main.go", "span_id", "abc", "/app", "main.g"}
	labelKey := uint64(7) // span_id
	build := func(where string, extra []byte) []byte {
		at := func(place string, fields ...[]byte) []byte {
			if place == where {
				fields = append(fields, extra)
			}
			return bytes.Join(fields, nil)
		}
		valueType := func(place string, typ, unit uint64) []byte {
			return at(place, varintField(1, typ), varintField(2, unit))
		}
		var p []byte
		p = appendMsg(p, 1, valueType("sample_type", 1, 2))
		p = appendMsg(p, 1, valueType("", 3, 4))
		p = appendMsg(p, 2, at("sample", appendMsg(nil, 1, []byte{1, 2}), appendMsg(nil, 2, []byte{1, 10}),
			appendMsg(nil, 3, at("label", varintField(1, labelKey), varintField(2, 8)))))
		p = appendMsg(p, 2, appendMsg(nil, 1, []byte{2}), appendMsg(nil, 2, []byte{2, 20}))
		p = appendMsg(p, 3, at("mapping", varintField(1, 1), varintField(2, 0x1000), varintField(3, 0x2000), varintField(5, 9), varintField(7, 1)))
		p = appendMsg(p, 4, at("location", varintField(1, 1), varintField(2, 1), varintField(3, 0x1010),
			appendMsg(nil, 4, at("line", varintField(1, 1), varintField(2, 12)))))
		p = appendMsg(p, 4, varintField(1, 2), varintField(2, 1), varintField(3, 0x1020), appendMsg(nil, 4, varintField(1, 2), varintField(2, 20)))
		p = appendMsg(p, 5, at("function", varintField(1, 1), varintField(2, 5), varintField(3, 5), varintField(4, 6)))
		p = appendMsg(p, 5, varintField(1, 2), varintField(2, 10), varintField(3, 10), varintField(4, 6))
		for _, s := range strs {
			p = appendMsg(p, 6, []byte(s))
		}
		p = append(p, varintField(9, 1_700_000_000_000_000_000)...)
		p = append(p, varintField(10, 10_000_000_000)...)
		p = appendMsg(p, 11, valueType("period_type", 3, 4))
		p = append(p, varintField(12, 10_000_000)...)
		return at("profile", p)
	}
	compare := func(t *testing.T, name string, data []byte) bool {
		t.Helper()
		p, err := profile.ParseData(data)
		if err != nil {
			return false
		}
		got, err := DecodePprof(data, name)
		if err != nil {
			t.Errorf("%s: profile.ParseData takes it, DecodePprof: %v", name, err)
			return true
		}
		vi := -1
		for i, st := range p.SampleType {
			if st.Type == got[0].SampleType && st.Unit == got[0].Unit {
				vi = i
			}
		}
		if vi < 0 {
			t.Errorf("%s: sample type %s/%s not in profile.ParseData's", name, got[0].SampleType, got[0].Unit)
			return true
		}
		if diff := cmp.Diff(flattenProfile(p, vi), flatten(got)); diff != "" {
			t.Errorf("%s: samples differ from profile.ParseData (-want +got):\n%s", name, diff)
		}
		return true
	}
	if !compare(t, "the base profile", build("", nil)) {
		t.Fatal("profile.ParseData refuses the base profile")
	}
	base, err := DecodePprof(build("", nil), "base")
	if err != nil {
		t.Fatal(err)
	}
	if got := flatten(base); len(got) != 2 || len(got[0].Frames) != 2 || got[0].SpanID != "abc" || got[1].Value != 20 {
		t.Fatalf("the base profile decodes to %+v, want two samples, the first of two frames and span abc", got)
	}
	checked := 0
	for _, where := range places {
		for _, v := range oneFieldValues() {
			if compare(t, v.name+" in the "+where, build(where, v.field)) {
				checked++
			}
		}
	}
	t.Logf("%d profiles profile.ParseData takes", checked)
	// A string given twice in the string table: profile.ParseData reads
	// the label by its key's text, whichever index names it.
	strs = append(strs, "span_id")
	labelKey = uint64(len(strs) - 1)
	compare(t, "a label key that repeats a string", build("", nil))
}

// TestDecodeBadLine: a location with lines whose function is in no
// function table keeps its other lines' frames, and is reported once,
// in a pprof (runtime/pprof's CPU profile, its first sample's leaf
// location given two lines of a function id it does not have) as in the
// same profile carried in OTLP. The pprof decoder dropped every frame of
// such a location, and the OTLP decoder reported it once per bad line.
func TestDecodeBadLine(t *testing.T) {
	p, err := profile.ParseData(readFixture(t, "go-cpu.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	var maxID uint64
	for _, f := range p.Function {
		maxID = max(maxID, f.ID)
	}
	good := p.Copy()
	loc := p.Sample[0].Location[0]
	missing := &profile.Function{ID: maxID + 1}
	loc.Line = append([]profile.Line{{Function: missing, Line: 1}}, append(loc.Line, profile.Line{Function: missing, Line: 2})...)
	pprofOf := func(p *profile.Profile) []byte {
		var b bytes.Buffer
		if err := p.WriteUncompressed(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	tests := []struct {
		name      string
		decode    func(data []byte, source string) ([]*ProfileBatch, error)
		good, bad []byte
		wantErr   string
	}{
		{"pprof", DecodePprof, pprofOf(good), pprofOf(p),
			fmt.Sprintf("pprof: location %d (id %d): line 0: function id %d does not exist, and 1 more line", slices.Index(p.Location, loc), loc.ID, missing.ID)},
		{"OTLP", DecodeOTLPProfiles, pprofToOTLP(t, good, "checkout"), pprofToOTLP(t, p, "checkout"),
			// OTLP's location table begins with the empty location, as
			// its function table with the empty function.
			fmt.Sprintf("OTLP: location %d: line 0: function index %d out of range [0,%d), and 1 more line", slices.Index(p.Location, loc)+1, len(p.Function)+1000, len(p.Function)+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := tt.decode(tt.good, tt.name)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tt.decode(tt.bad, tt.name)
			var errs []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			if len(errs) != 1 || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v, want one ErrMalformed containing %q", err, tt.wantErr)
			}
			if diff := cmp.Diff(flatten(want), flatten(got)); diff != "" {
				t.Errorf("samples differ from the profile's without the bad lines (-want +got):\n%s", diff)
			}
		})
	}
}
