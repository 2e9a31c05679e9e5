package telemetry

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/pprof/profile"
)

// labelledPprof is go-cpu.pb.gz, uncompressed, with labels on every sample
// and comments.
func labelledPprof(t testing.TB, labels map[string][]string, comments ...string) []byte {
	t.Helper()
	p, err := profile.ParseData(readFixture(t, "go-cpu.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Sample {
		s.Label = labels
	}
	p.Comments = comments
	var buf bytes.Buffer
	if err := p.WriteUncompressed(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fullRequest has every field of the log's encoding set.
func fullRequest(t testing.TB) *ProfileRequest {
	return &ProfileRequest{Limits: Limits{MaxSamples: 7, MaxLocations: 100000, MaxStackDepth: 3}, Profiles: []ReceivedProfile{
		{Format: FormatPprof, Data: gunzip(t, readFixture(t, "go-cpu.pb.gz")), Source: "push: series[0].samples[0]", Service: "checkout", Namespace: "shop"},
		{Format: FormatFolded, Data: []byte("a;b 3\n"), Source: "ingest", Service: "reports", Ingest: &IngestWindow{
			From: time.Date(2026, 12, 3, 10, 0, 0, 5, time.UTC), Until: time.Date(2286, 11, 20, 17, 46, 39, 0, time.UTC),
			Now: time.Date(1969, 7, 20, 20, 17, 0, 999_999_999, time.UTC), SampleRate: 99,
		}},
		{Format: FormatPyroscopeJFR, Data: []byte("jfr"), Labels: []byte("labels"), Ingest: &IngestWindow{}},
		{Format: FormatLines, Data: []byte("a;b\n"), Source: "ingest", Service: "reports", Ingest: &IngestWindow{Now: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), Type: "inuse_space"}},
	}}
}

// TestProfileRequestRoundTrip: what AppendProfileRequest writes,
// ParseProfileRequest reads back, times to the nanosecond far from now.
func TestProfileRequestRoundTrip(t *testing.T) {
	want := fullRequest(t)
	got, err := ParseProfileRequest(AppendProfileRequest([]byte{}, want))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(ReceivedProfile{})); diff != "" {
		t.Errorf("read back (-written +read):\n%s", diff)
	}
}

func TestParseProfileRequestErrors(t *testing.T) {
	good := AppendProfileRequest(nil, fullRequest(t))
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"version 0", append([]byte{0}, good[1:]...)},
		{"truncated", good[:len(good)-3]},
		{"no format", AppendProfileRequest(nil, &ProfileRequest{Profiles: []ReceivedProfile{{Data: []byte("x")}}})},
		{"limit out of range", []byte{profileRequestVersion, 1 << 3, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"nanoseconds out of range", append([]byte{profileRequestVersion}, appendMsg(nil, 4, varintField(1, uint64(FormatFolded)),
			appendMsg(nil, 7, appendMsg(nil, 1, varintField(1, 2), varintField(2, uint64(time.Second)))))...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseProfileRequest(tc.in); !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseProfileRequest = %v, want ErrMalformed", err)
			}
		})
	}
}

// TestParseProfileRequestNewerVersion: a version above this one's was
// written by a newer evident, which the log's replay refuses rather than
// skips as damaged (engine's TestReplayNewerKind).
func TestParseProfileRequestNewerVersion(t *testing.T) {
	good := AppendProfileRequest(nil, fullRequest(t))
	_, err := ParseProfileRequest(append([]byte{profileRequestVersion + 1}, good[1:]...))
	if !errors.Is(err, ErrNewerVersion) || errors.Is(err, ErrMalformed) {
		t.Errorf("ParseProfileRequest = %v, want ErrNewerVersion and not ErrMalformed", err)
	}
}

// TestDecodeProfile: the decoder the receivers and the log's replay share
// decodes each format as its own decoder does, and places the batches as
// the request said.
func TestDecodeProfile(t *testing.T) {
	raw := gunzip(t, readFixture(t, "go-cpu.pb.gz"))
	want, err := DecodePprof(raw, "src")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range want {
		b.Service, b.Namespace = "checkout", "shop"
	}
	got, err := Limits{}.DecodeProfile(&ReceivedProfile{Format: FormatPprof, Data: raw, Source: "src", Service: "checkout", Namespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pprof (-DecodePprof +DecodeProfile):\n%s", diff)
	}

	// Folded stacks say no time: the window of the request places them.
	from := time.Date(2026, 12, 3, 10, 0, 0, 0, time.Local)
	folded, err := Limits{}.DecodeProfile(&ReceivedProfile{Format: FormatFolded, Data: []byte("a;b 3\n"), Service: "reports",
		Ingest: &IngestWindow{From: from, Until: from.Add(10 * time.Second), SampleRate: 100}})
	if err != nil {
		t.Fatal(err)
	}
	if len(folded) != 1 {
		t.Fatalf("%d batches", len(folded))
	}
	b := folded[0]
	if b.Service != "reports" || !b.Start.Equal(from) || b.Start.Location() != time.UTC || b.Duration != 10*time.Second {
		t.Errorf("folded batch %s at %v for %v, want reports at %v (UTC) for 10s", b.Service, b.Start, b.Duration, from)
	}

	if _, err := (Limits{}).DecodeProfile(&ReceivedProfile{Format: 99, Source: "src"}); !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown format: %v, want ErrMalformed", err)
	}
}

// TestProfileRequestMasks: a request is reported as masking when the
// masker would change a label value (under any key), a comment or a line
// of folded stacks, or when its texts are not followed, or not known (a
// pprof profile not decoded).
func TestProfileRequestMasks(t *testing.T) {
	gz := readFixture(t, "go-cpu.pb.gz")
	for _, tc := range []struct {
		name   string
		p      ReceivedProfile
		decode bool
		want   bool
	}{
		{"pprof", ReceivedProfile{Format: FormatPprof, Data: gunzip(t, gz)}, true, false},
		{"pprof with labels", ReceivedProfile{Format: FormatPprof, Data: labelledPprof(t, map[string][]string{"span_name": {"GET /"}, "user": {"bob"}}, "clean")}, true, false},
		{"pprof label value", ReceivedProfile{Format: FormatPprof, Data: labelledPprof(t, map[string][]string{"span_name": {"GET /SECRET"}})}, true, true},
		{"pprof label not decoded", ReceivedProfile{Format: FormatPprof, Data: labelledPprof(t, map[string][]string{"tenant": {"SECRET"}})}, true, true},
		{"pprof label key", ReceivedProfile{Format: FormatPprof, Data: labelledPprof(t, map[string][]string{"password": {"hunter2"}})}, true, true},
		{"pprof comment", ReceivedProfile{Format: FormatPprof, Data: labelledPprof(t, nil, "ran with SECRET")}, true, true},
		{"pprof gzipped", ReceivedProfile{Format: FormatPprof, Data: gz}, true, false},
		{"pprof not decoded", ReceivedProfile{Format: FormatPprof, Data: gunzip(t, gz)}, false, true},
		{"pprof sample dropped", ReceivedProfile{Format: FormatPprof, Data: append(gunzip(t, gz), appendMsg(nil, pprofSample, varintField(1, 999))...)}, true, true},
		{"folded", ReceivedProfile{Format: FormatFolded, Data: []byte("main;a 1\nmain;b 2\n")}, false, false},
		{"folded secret", ReceivedProfile{Format: FormatLines, Data: []byte("main;a\nmain;SECRET\n")}, false, true},
		{"jfr", ReceivedProfile{Format: FormatPyroscopeJFR, Data: []byte("jfr")}, false, true},
		{"otlp", ReceivedProfile{Format: FormatOTLPProfiles, Data: readFixture(t, "profiles.pb")}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &ProfileRequest{Profiles: []ReceivedProfile{{Format: FormatFolded, Data: []byte("x 1\n")}, tc.p}}
			if tc.decode {
				if bs, _ := req.Limits.DecodeProfile(&req.Profiles[1]); len(bs) == 0 {
					t.Fatal("nothing decoded")
				}
			}
			if got := req.Masks(&secretMasker{}); got != tc.want {
				t.Errorf("Masks = %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzParseProfileRequest(f *testing.F) {
	f.Add(AppendProfileRequest(nil, fullRequest(f)))
	f.Add(AppendProfileRequest(nil, &ProfileRequest{Profiles: []ReceivedProfile{{Format: FormatFolded, Data: []byte("a;b 1\n"), Ingest: &IngestWindow{Now: time.Unix(1, 2)}}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseProfileRequest(data)
		if err != nil {
			return
		}
		again, err := ParseProfileRequest(AppendProfileRequest(nil, req))
		if err != nil {
			t.Fatalf("written again, the request does not read: %v", err)
		}
		// A field present but empty reads as empty and is not written:
		// empty and absent are the same request.
		if diff := cmp.Diff(req, again, cmp.AllowUnexported(ReceivedProfile{}), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("request does not round-trip (-read +again):\n%s", diff)
		}
		bs, _ := req.Decode()
		checkBatches(t, bs)
		req.Masks(&secretMasker{})
	})
}
