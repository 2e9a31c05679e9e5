package telemetry

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
		}), "location 1: function 1: string index 500 out of range", 4},
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
