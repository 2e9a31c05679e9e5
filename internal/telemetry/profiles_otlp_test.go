package telemetry

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
)

// profileText renders batches for golden files.
func profileText(bs []*ProfileBatch) []byte {
	var b strings.Builder
	for _, p := range bs {
		fmt.Fprintf(&b, "service=%s/%s source=%s type=%s/%s period=%d start=%s duration=%s\n",
			p.Service, p.Namespace, p.Source, p.SampleType, p.Unit, p.Period, p.Start.Format("2006-01-02T15:04:05Z"), p.Duration)
		for _, s := range p.Samples {
			fmt.Fprintf(&b, "  count=%d value=%d span=%s trace=%s\n", s.Count, s.Value, s.SpanID, s.TraceID)
			for _, li := range s.Locations {
				for _, f := range p.Locations[li] {
					fmt.Fprintf(&b, "    %s %s\n", f.Function, f.File)
				}
			}
		}
	}
	return []byte(b.String())
}

func TestDecodeOTLPProfiles(t *testing.T) {
	pb, err := DecodeOTLPProfiles(readFixture(t, "profiles.pb"), "profiles")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "profiles.golden", profileText(pb))
	tests := []struct {
		name string
		data []byte
	}{
		{"JSON", readFixture(t, "profiles.json")},
		{"gzipped protobuf", gzipBytes(t, readFixture(t, "profiles.pb"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeOTLPProfiles(tt.data, "profiles")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(pb, got); diff != "" {
				t.Errorf("differs from the protobuf decoding (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeOTLPProfilesErrors(t *testing.T) {
	mutate := func(f func(pd pprofile.Profiles)) []byte {
		pd := fixtureProfiles(t)
		f(pd)
		b, err := pprofileotlp.NewExportRequestFromProfiles(pd).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sample := func(pd pprofile.Profiles) pprofile.Sample {
		return pd.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().At(0).Samples().At(0)
	}
	good := readFixture(t, "profiles.pb")
	tests := []struct {
		name        string
		data        []byte
		wantErr     string
		wantSamples int // -1: no batches
	}{
		{"truncated protobuf", good[:len(good)-5], "decode OTLP profiles truncated protobuf: malformed telemetry", -1},
		{"truncated gzip", gzipBytes(t, good)[:30], "gzip", -1},
		{"stack index out of range", mutate(func(pd pprofile.Profiles) { sample(pd).SetStackIndex(99) }),
			"stack index out of range: resource_profiles[0]: scope_profiles[0]: profiles[0]: sample 0: stack index 99 out of range [0,3)", 3},
		{"link index out of range", mutate(func(pd pprofile.Profiles) { sample(pd).SetLinkIndex(7) }),
			"sample 0: link index 7 out of range [0,2)", 3},
		{"location index out of range", mutate(func(pd pprofile.Profiles) {
			pd.Dictionary().StackTable().At(1).LocationIndices().Append(42)
		}), "stack 1 has a location index out of range [0,4)", 2},
		{"function string index out of range", mutate(func(pd pprofile.Profiles) {
			pd.Dictionary().FunctionTable().At(1).SetFilenameStrindex(500)
		}), "function string index out of range: function 1: string index 500 out of range", 4},
		{"sample type string index out of range", mutate(func(pd pprofile.Profiles) {
			pd.ResourceProfiles().At(1).ScopeProfiles().At(0).Profiles().At(0).SampleType().SetTypeStrindex(300)
		}), "resource_profiles[1]: scope_profiles[0]: profiles[0]: sample_type: string index 300 out of range", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs, err := DecodeOTLPProfiles(tt.data, tt.name)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v, want ErrMalformed containing %q", err, tt.wantErr)
			}
			if tt.wantSamples < 0 {
				if bs != nil {
					t.Errorf("got %d batches, want none", len(bs))
				}
				return
			}
			n := 0
			for _, b := range bs {
				n += len(b.Samples)
			}
			if n != tt.wantSamples {
				t.Errorf("kept %d samples, want %d", n, tt.wantSamples)
			}
		})
	}
}

// TestDecodeOTLPProfilesImage checks that OTLP profiles carry the
// container image of their resource, in protobuf and JSON.
func TestDecodeOTLPProfilesImage(t *testing.T) {
	pd := fixtureProfiles(t)
	attrs := pd.ResourceProfiles().At(0).Resource().Attributes()
	attrs.PutStr("container.image.name", "registry.example.com/shop/checkout")
	attrs.PutStr("oci.manifest.digest", "sha256:0123")
	pb, err := (&pprofile.ProtoMarshaler{}).MarshalProfiles(pd)
	if err != nil {
		t.Fatal(err)
	}
	js, err := (&pprofile.JSONMarshaler{}).MarshalProfiles(pd)
	if err != nil {
		t.Fatal(err)
	}
	want := []*Image{{Name: "registry.example.com/shop/checkout", Digest: "sha256:0123"}, nil}
	for name, data := range map[string][]byte{"protobuf": pb, "JSON": js} {
		bs, err := DecodeOTLPProfiles(data, name)
		if err != nil {
			t.Fatal(err)
		}
		var got []*Image
		for _, b := range bs {
			got = append(got, b.Image)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: images (-want +got):\n%s", name, diff)
		}
	}
}

// TestDecodeOTLPProfilesNoWeight checks that a sample of no weight is
// left out, not counted as code that ran with no samples: the profiles
// converted from godeltaprof's heap profiles hold the stacks of memory
// still in use with no allocation in the window.
func TestDecodeOTLPProfilesNoWeight(t *testing.T) {
	tests := []struct {
		name   string
		values []int64
		times  int
	}{
		{"zero count", []int64{0}, 0},
		{"zero values at timestamps", []int64{0, 0}, 2},
		{"negative", []int64{-3}, 0},
		{"neither values nor timestamps", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pd := fixtureProfiles(t)
			// payments counts samples; checkout's sample type is cpu in
			// nanoseconds.
			for i := range 2 {
				s := pd.ResourceProfiles().At(i).ScopeProfiles().At(0).Profiles().At(0).Samples().At(0)
				s.Values().FromRaw(tt.values)
				ts := make([]uint64, tt.times)
				for j := range ts {
					ts[j] = 1_795_600_000_000_000_000 + uint64(j)
				}
				s.TimestampsUnixNano().FromRaw(ts)
			}
			data, err := pprofileotlp.NewExportRequestFromProfiles(pd).MarshalProto()
			if err != nil {
				t.Fatal(err)
			}
			bs, err := DecodeOTLPProfiles(data, tt.name)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range bs {
				for _, s := range b.Samples {
					if s.Count <= 0 {
						t.Errorf("%s: kept a sample of count %d and value %d", b.Service, s.Count, s.Value)
					}
				}
				if len(b.Samples) != 1 {
					t.Errorf("%s: kept %d samples, want 1", b.Service, len(b.Samples))
				}
			}
		})
	}
}

// pprofToOTLP converts a pprof profile into an OTLP profiles request of
// one resource, as a pprof is carried in OTLP since proto v1.8.0: a
// Profile per sample type, each with the pprof's time, duration and
// period, their samples sharing stacks and links.
func pprofToOTLP(t testing.TB, p *profile.Profile, service string) []byte {
	t.Helper()
	pd, str := newProfilesDictionary(t)
	dict := pd.Dictionary()
	funcs := map[uint64]int32{}
	for _, f := range p.Function {
		fn := pprofile.NewFunction()
		fn.SetNameStrindex(str(f.Name))
		fn.SetSystemNameStrindex(str(f.SystemName))
		fn.SetFilenameStrindex(str(f.Filename))
		i, err := pprofile.SetFunction(dict.FunctionTable(), fn)
		if err != nil {
			t.Fatal(err)
		}
		funcs[f.ID] = i
	}
	locs := map[uint64]int32{}
	for _, l := range p.Location {
		loc := pprofile.NewLocation()
		loc.SetAddress(l.Address)
		for _, ln := range l.Line {
			line := loc.Lines().AppendEmpty()
			fi, ok := funcs[ln.Function.ID]
			if !ok {
				fi = int32(len(funcs)) + 1000 // in no table, as in the pprof
			}
			line.SetFunctionIndex(fi)
			line.SetLine(ln.Line)
		}
		i, err := pprofile.SetLocation(dict.LocationTable(), loc)
		if err != nil {
			t.Fatal(err)
		}
		locs[l.ID] = i
	}
	stacks := make([]int32, len(p.Sample))
	for i, s := range p.Sample {
		st := pprofile.NewStack()
		for _, l := range s.Location {
			st.LocationIndices().Append(locs[l.ID])
		}
		var err error
		if stacks[i], err = pprofile.SetStack(dict.StackTable(), st); err != nil {
			t.Fatal(err)
		}
	}
	rp := pd.ResourceProfiles().AppendEmpty()
	rp.Resource().Attributes().PutStr("service.name", service)
	sp := rp.ScopeProfiles().AppendEmpty()
	for vi, st := range p.SampleType {
		prof := sp.Profiles().AppendEmpty()
		prof.SampleType().SetTypeStrindex(str(st.Type))
		prof.SampleType().SetUnitStrindex(str(st.Unit))
		prof.PeriodType().SetTypeStrindex(str(p.PeriodType.Type))
		prof.PeriodType().SetUnitStrindex(str(p.PeriodType.Unit))
		prof.SetPeriod(p.Period)
		prof.SetTime(pcommon.Timestamp(p.TimeNanos))
		prof.SetDurationNano(uint64(p.DurationNanos))
		for i, s := range p.Sample {
			smp := prof.Samples().AppendEmpty()
			smp.SetStackIndex(stacks[i])
			smp.Values().Append(s.Value[vi])
		}
	}
	data, err := pprofileotlp.NewExportRequestFromProfiles(pd).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestDecodeOTLPProfilesOfPprof checks that a pprof carried in OTLP, a
// Profile per sample type, weighs each sample once, by the type
// DecodePprof weighs it by: the samples of a CPU profile are not counted
// once as samples and again as CPU time.
func TestDecodeOTLPProfilesOfPprof(t *testing.T) {
	for _, name := range []string{"go-cpu.pb.gz", "go-allocs.pb.gz", "node-wall.pb.gz"} {
		t.Run(name, func(t *testing.T) {
			data := readFixture(t, name)
			p, err := profile.Parse(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			want, err := DecodePprof(data, name)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeOTLPProfiles(pprofToOTLP(t, p, "checkout"), name)
			if err != nil {
				t.Fatal(err)
			}
			weigh := func(bs []*ProfileBatch) (types []string, count, value int64) {
				for _, b := range bs {
					if typ := b.SampleType + "/" + b.Unit; !slices.Contains(types, typ) {
						types = append(types, typ)
					}
					for _, s := range b.Samples {
						count += s.Count
						value += s.Value
					}
				}
				return types, count, value
			}
			wantTypes, wantCount, wantValue := weigh(want)
			gotTypes, gotCount, gotValue := weigh(got)
			if diff := cmp.Diff(wantTypes, gotTypes); diff != "" {
				t.Errorf("sample types (-want +got):\n%s", diff)
			}
			if gotCount != wantCount || gotValue != wantValue {
				t.Errorf("count %d, value %d; want %d, %d as in the pprof", gotCount, gotValue, wantCount, wantValue)
			}
		})
	}
}

// TestDecodeOTLPProfilesSameType checks that two profiles of one sample
// type in a scope, with the same time and period, are both decoded: they
// are two recordings, not the sample types of one.
func TestDecodeOTLPProfilesSameType(t *testing.T) {
	pd := fixtureProfiles(t)
	ps := pd.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles()
	ps.At(0).CopyTo(ps.AppendEmpty())
	data, err := pprofileotlp.NewExportRequestFromProfiles(pd).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	bs, err := DecodeOTLPProfiles(data, "two recordings")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range bs {
		got = append(got, fmt.Sprintf("%s %s/%s %d samples", b.Service, b.SampleType, b.Unit, len(b.Samples)))
	}
	want := []string{"checkout cpu/nanoseconds 2 samples", "checkout cpu/nanoseconds 2 samples", "payments samples/count 2 samples"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
}
