package telemetry

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pprofile"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestLimitsDecodePprof(t *testing.T) {
	prof := syntheticProfile(200, 30, 50) // 200 samples, 30 deep, 50 locations and functions
	// A sample that is not a message, after the profile's: the profile is
	// malformed, and over a limit when it counts.
	badSample := protowire.AppendVarint(protowire.AppendTag(gunzip(t, prof), pprofSample, protowire.VarintType), 1)
	for _, tt := range []struct {
		name      string
		prof      []byte // prof when nil
		limits    Limits
		wantErr   string // "" for success; else the limit the ErrTooLarge names
		wantDepth int
		// malformed is the ErrMalformed error wanted instead, if any.
		malformed string
	}{
		{name: "no limits", wantDepth: 30},
		{name: "defaults", limits: DefaultLimits(), wantDepth: 30},
		{name: "samples", limits: Limits{MaxSamples: 199}, wantErr: "200 samples, over max_samples 199"},
		{name: "locations", limits: Limits{MaxLocations: 49}, wantErr: "50 locations, over max_locations 49"},
		{name: "depth cut at the root end", limits: Limits{MaxStackDepth: 7}, wantDepth: 7},
		// The limits are checked on the whole message's counts before its
		// fields are: the bad sample counts.
		{name: "over a limit, then malformed", prof: badSample, limits: Limits{MaxSamples: 199}, wantErr: "201 samples, over max_samples 199"},
		{name: "over a limit by a malformed field", prof: badSample, limits: Limits{MaxSamples: 200}, wantErr: "201 samples, over max_samples 200"},
		{name: "malformed within the limits", prof: badSample, limits: Limits{MaxSamples: 201}, malformed: "field 2: wire type 0, want message"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := prof
			if tt.prof != nil {
				in = tt.prof
			}
			got, err := tt.limits.DecodePprof(in, "test")
			if tt.malformed != "" {
				if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.malformed) || got != nil {
					t.Fatalf("DecodePprof: %d batches, %v; want none and ErrMalformed naming %q", len(got), err, tt.malformed)
				}
				return
			}
			if tt.wantErr != "" {
				if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), tt.wantErr) || got != nil {
					t.Fatalf("DecodePprof: %d batches, %v; want none and ErrTooLarge naming %q", len(got), err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			full, _ := DecodePprof(prof, "test")
			for i, s := range got[0].Samples {
				if len(s.Locations) != tt.wantDepth {
					t.Fatalf("sample %d: depth %d, want %d", i, len(s.Locations), tt.wantDepth)
				}
				for j, l := range s.Locations {
					if l != full[0].Samples[i].Locations[j] {
						t.Fatalf("sample %d: location %d is %d, want the leaf-end %d", i, j, l, full[0].Samples[i].Locations[j])
					}
				}
			}
		})
	}
}

// TestLimitsStrings: a string table of empty strings, two bytes each,
// is refused when it is out of proportion to the allowed samples and
// locations.
func TestLimitsStrings(t *testing.T) {
	raw := gunzip(t, syntheticProfile(200, 30, 50))
	for range 2000 {
		raw = protowire.AppendBytes(protowire.AppendTag(raw, pprofStringTable, protowire.BytesType), nil)
	}
	_, err := Limits{MaxSamples: 200, MaxLocations: 50}.DecodePprof(raw, "test")
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "strings, over 1000") {
		t.Errorf("DecodePprof: %v, want ErrTooLarge naming the strings", err)
	}
}

func TestLimitsDecodeOTLPProfiles(t *testing.T) {
	data, err := (&pprofile.ProtoMarshaler{}).MarshalProfiles(fixtureProfiles(t))
	if err != nil {
		t.Fatal(err)
	}
	all, err := DecodeOTLPProfiles(data, "test")
	if err != nil || len(all) == 0 {
		t.Fatalf("fixture: %d batches, %v", len(all), err)
	}
	samples := 0
	for _, b := range all {
		samples = max(samples, len(b.Samples))
	}
	if _, err := (Limits{MaxLocations: 1}).DecodeOTLPProfiles(data, "test"); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "max_locations 1") {
		t.Errorf("locations: %v, want ErrTooLarge naming max_locations", err)
	}
	// The request's profiles share its dictionary: max_locations holds
	// for each of them, so a dictionary over it for one profile but not
	// for all of them is accepted (a Collector's batch of many
	// processes' profiles), and one over it for all of them refused.
	pd := fixtureProfiles(t)
	n := countProfiles(pd.ResourceProfiles())
	size := max(pd.Dictionary().LocationTable().Len(), pd.Dictionary().FunctionTable().Len())
	if n < 2 || size <= n {
		t.Fatalf("fixture of %d profiles and %d locations or functions: want several profiles, and more entries", n, size)
	}
	perProfile := (size + n - 1) / n
	if got, err := (Limits{MaxLocations: perProfile}).DecodeOTLPProfiles(data, "test"); err != nil || len(got) != len(all) {
		t.Errorf("%d entries for %d profiles, max_locations %d: %d batches, %v; want all %d", size, n, perProfile, len(got), err, len(all))
	}
	want := fmt.Sprintf("in the dictionary of its %d profiles, over max_locations %d for each", n, perProfile-1)
	if _, err := (Limits{MaxLocations: perProfile - 1}).DecodeOTLPProfiles(data, "test"); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), want) {
		t.Errorf("locations over max_locations for every profile: %v, want ErrTooLarge saying %q", err, want)
	}
	got, err := (Limits{MaxSamples: samples - 1}).DecodeOTLPProfiles(data, "test")
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "max_samples") || len(got) >= len(all) {
		t.Errorf("samples: %d of %d batches, %v; want the largest refused with ErrTooLarge naming max_samples", len(got), len(all), err)
	}
	got, err = (Limits{MaxStackDepth: 1}).DecodeOTLPProfiles(data, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range got {
		for _, s := range b.Samples {
			if len(s.Locations) > 1 {
				t.Fatalf("stack of %d locations with max_stack_depth 1", len(s.Locations))
			}
		}
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := DefaultLimits().Validate(); err != nil {
		t.Error(err)
	}
	for _, l := range []Limits{{MaxSamples: -1}, {MaxLocations: -1}, {MaxStackDepth: -1}} {
		if err := l.Validate(); !errors.Is(err, ErrLimits) {
			t.Errorf("%+v: %v, want ErrLimits", l, err)
		}
	}
}

// TestLimitsEmptySpans: a request of empty span fields, two bytes each,
// decodes into no span, and allocates in proportion to its size, not to
// the span fields it names: before, the slice was grown for 524,288
// spans (282 MiB for 1 MiB) before any was decoded or reserved.
func TestLimitsEmptySpans(t *testing.T) {
	var scope []byte
	for range 1 << 19 {
		scope = protowire.AppendBytes(protowire.AppendTag(scope, ssSpans, protowire.BytesType), nil)
	}
	rs := protowire.AppendBytes(protowire.AppendTag(nil, rsScopeSpans, protowire.BytesType), scope)
	req := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rs)
	var spans []Span
	var err error
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	spans, _, err = DecodeReceivedTraceRequest(nil, nil, req, "empty spans", func(int) error { return nil })
	runtime.ReadMemStats(&after)
	if len(spans) != 0 || err == nil || !strings.Contains(err.Error(), "span 0: trace_id and span_id missing or empty") {
		t.Fatalf("DecodeReceivedTraceRequest: %d spans, %v; want none, and span 0 reported", len(spans), err)
	}
	// A span slice for the spans with both ids 1 MiB can hold, 35,000
	// at about 500 bytes, plus the errors' records.
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Errorf("decoding %d bytes allocated %d MiB, want under 64 MiB", len(req), got>>20)
	} else {
		t.Logf("decoding %d bytes allocated %d MiB", len(req), got>>20)
	}
}
