package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
)

// jfrFixture is a recording of testdata/jfr/src made as
// testdata/README.md says.
const jfrFixture = "testdata/jfr/shop.jfr"

// recordJFR compiles testdata/jfr/src and runs it under JFR for the given
// seconds, returning the recording; it skips the test when no JDK is
// installed.
func recordJFR(tb testing.TB, seconds int) string {
	tb.Helper()
	for _, tool := range []string{"java", "javac", "jfr"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Skipf("no JDK: %s not in PATH (install openjdk-17-jdk-headless to run this test)", tool)
		}
	}
	dir := tb.TempDir()
	srcs, err := filepath.Glob("testdata/jfr/src/*/*/*/*.java")
	if err != nil || len(srcs) == 0 {
		tb.Fatalf("java sources: %v (%d found)", err, len(srcs))
	}
	if out, err := exec.Command("javac", append([]string{"-d", dir}, srcs...)...).CombinedOutput(); err != nil {
		tb.Fatalf("javac: %v\n%s", err, out)
	}
	settings, err := filepath.Abs("testdata/jfr/sampling.jfc")
	if err != nil {
		tb.Fatal(err)
	}
	rec := filepath.Join(dir, "rec.jfr")
	cmd := exec.Command("java", "-XX:StartFlightRecording=filename="+rec+",settings="+settings,
		"-cp", dir, "com.example.shop.Main", fmt.Sprint(seconds))
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("java: %v\n%s", err, out)
	}
	return rec
}

// jfrPrint returns the stacks of the sample events of a recording as the
// JDK's jfr print --json shows them, one string per sample.
func jfrPrint(t *testing.T, rec string) []string {
	t.Helper()
	out, err := exec.Command("jfr", "print", "--json", "--stack-depth", "4096",
		"--events", "jdk.ExecutionSample,jdk.NativeMethodSample", rec).Output()
	if err != nil {
		t.Fatalf("jfr print: %v", err)
	}
	var doc struct {
		Recording struct {
			Events []struct {
				Type   string `json:"type"`
				Values struct {
					StackTrace *struct {
						Frames []struct {
							Method struct {
								Type struct {
									Name    string `json:"name"`
									Package *struct {
										Name string `json:"name"`
									} `json:"package"`
								} `json:"type"`
								Name string `json:"name"`
							} `json:"method"`
							LineNumber int64  `json:"lineNumber"`
							Type       string `json:"type"`
						} `json:"frames"`
					} `json:"stackTrace"`
				} `json:"values"`
			} `json:"events"`
		} `json:"recording"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("jfr print output: %v", err)
	}
	var stacks []string
	for _, ev := range doc.Recording.Events {
		var frames []jfrFrame
		if ev.Values.StackTrace != nil {
			for _, f := range ev.Values.StackTrace.Frames {
				fr := jfrFrame{Class: f.Method.Type.Name, Method: f.Method.Name, Line: f.LineNumber, Type: f.Type}
				if f.Method.Type.Package != nil {
					fr.Package = f.Method.Type.Package.Name
				}
				frames = append(frames, fr)
			}
		}
		stacks = append(stacks, formatJFRStack(ev.Type, frames))
	}
	return stacks
}

func formatJFRStack(event string, frames []jfrFrame) string {
	var b strings.Builder
	b.WriteString(event)
	for _, f := range frames {
		fmt.Fprintf(&b, "\n  %s %s.%s:%d %s", f.Package, f.Class, f.Method, f.Line, f.Type)
	}
	return b.String()
}

// decodedJFRStacks returns the stacks walkJFR decodes, one string per
// sample, in the form of jfrPrint.
func decodedJFRStacks(t *testing.T, data []byte) []string {
	t.Helper()
	var stacks []string
	err := walkJFR(bytes.NewReader(data), func(c *jfrChunk, s jfrSample) error {
		frames, ok := c.frames(s.stack, nil)
		if !ok {
			return fmt.Errorf("stack trace %d missing", s.stack)
		}
		stacks = append(stacks, formatJFRStack(s.event, frames))
		return nil
	}, func(*jfrChunk) error { return nil })
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	return stacks
}

// TestJFRMatchesJFRPrint compares every sample's stack (class, method,
// package, line, frame type) with the JDK's own reader, on a recording
// made now and on the committed fixture.
func TestJFRMatchesJFRPrint(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  func(t *testing.T) string
	}{
		{"fresh", func(t *testing.T) string { return recordJFR(t, 2) }},
		{"fixture", func(t *testing.T) string {
			if _, err := exec.LookPath("jfr"); err != nil {
				t.Skip("no JDK: jfr not in PATH (install openjdk-17-jdk-headless to run this test)")
			}
			return jfrFixture
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tc.rec(t)
			data, err := os.ReadFile(rec)
			if err != nil {
				t.Fatal(err)
			}
			got, want := decodedJFRStacks(t, data), jfrPrint(t, rec)
			if len(want) < 50 {
				t.Fatalf("jfr print shows %d samples, want a recording with at least 50", len(want))
			}
			slices.Sort(got)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("stacks differ from jfr print (-jfr print +decoded):\n%s", diff)
			}
		})
	}
}

func TestDecodeJFR(t *testing.T) {
	data, err := os.ReadFile(jfrFixture)
	if err != nil {
		t.Fatal(err)
	}
	batches, err := Limits{}.DecodeJFR(data, jfrFixture)
	if err != nil {
		t.Fatalf("DecodeJFR: %v", err)
	}
	if len(batches) == 0 || batches[0].SampleType != "cpu" || batches[0].Unit != "count" {
		t.Fatalf("batches %+v, want a cpu profile first", batches)
	}
	cpu := batches[0]
	seen := map[string]int64{}
	for _, s := range cpu.Samples {
		if s.Count <= 0 || len(s.Locations) == 0 {
			t.Errorf("sample %+v: want a count and a stack", s)
		}
		for _, l := range s.Locations {
			seen[cpu.Locations[l][0].Function] += s.Count
		}
	}
	for _, fn := range []string{"org/acme/text/Hasher.hash", "com/example/shop/Pricing$Inner.price", "com/example/shop/Main.main"} {
		if seen[fn] == 0 {
			t.Errorf("no sample has %s; functions seen: %v", fn, seen)
		}
	}
	if cpu.Start.IsZero() || cpu.Duration <= 0 {
		t.Errorf("start %v duration %v, want the recording's", cpu.Start, cpu.Duration)
	}
}

func TestDecodeJFRLimits(t *testing.T) {
	data, err := os.ReadFile(jfrFixture)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Limits{MaxLocations: 3}).DecodeJFR(data, "x.jfr"); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "max_locations") {
		t.Errorf("MaxLocations 3: err %v, want ErrTooLarge naming max_locations", err)
	}
	if _, err := (Limits{MaxSamples: 1}).DecodeJFR(data, "x.jfr"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("MaxSamples 1: err %v, want ErrTooLarge", err)
	}
	batches, err := (Limits{MaxStackDepth: 2}).DecodeJFR(data, "x.jfr")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range batches[0].Samples {
		if len(s.Locations) > 2 {
			t.Errorf("stack of %d locations, want at most 2", len(s.Locations))
		}
	}
}

func TestDecodeJFRMalformed(t *testing.T) {
	data, err := os.ReadFile(jfrFixture)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, ""},
		{"not jfr", []byte("hello, world, this is not a recording at all, but long enough for a header......"), "magic"},
		{"truncated", data[:len(data)/2], "bytes left"},
		{"bad version", append([]byte("FLR\x00\x00\x09\x00\x00"), data[8:]...), "version 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Limits{}.DecodeJFR(tc.data, "bad.jfr")
			if tc.want == "" {
				if err != nil {
					t.Errorf("err %v, want none for an empty recording", err)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "bad.jfr") {
				t.Errorf("err %v, want ErrMalformed naming bad.jfr and %q", err, tc.want)
			}
		})
	}
}

// labelsSnapshot encodes a LabelsSnapshot as the Pyroscope Java agent
// does: contexts of string ids, then the strings.
func labelsSnapshot(contexts map[int64]map[string]string) []byte {
	ids := map[string]int64{}
	id := func(s string) int64 {
		if i, ok := ids[s]; ok {
			return i
		}
		ids[s] = int64(len(ids) + 1)
		return ids[s]
	}
	entry := func(k int64, vtyp protowire.Type, v []byte, vint int64) []byte {
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.VarintType)
		e = protowire.AppendVarint(e, uint64(k))
		e = protowire.AppendTag(e, 2, vtyp)
		if vtyp == protowire.BytesType {
			return protowire.AppendBytes(e, v)
		}
		return protowire.AppendVarint(e, uint64(vint))
	}
	var out []byte
	for cid, labels := range contexts {
		var ctx []byte
		for k, v := range labels {
			ctx = protowire.AppendTag(ctx, 1, protowire.BytesType)
			ctx = protowire.AppendBytes(ctx, entry(id(k), protowire.VarintType, nil, id(v)))
		}
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendBytes(out, entry(cid, protowire.BytesType, ctx, 0))
	}
	for s, i := range ids {
		out = protowire.AppendTag(out, 2, protowire.BytesType)
		out = protowire.AppendBytes(out, entry(i, protowire.BytesType, []byte(s), 0))
	}
	return out
}

func TestParseLabelsSnapshot(t *testing.T) {
	snapshot := labelsSnapshot(map[int64]map[string]string{
		7: {"profile_id": "00F067AA0BA902B7", "span_name": "GET /orders"},
		8: {"span_id": "53995c3f42cd8ad8", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"},
		9: {"tenant": "a"},
		// Both: span_id is the span's, as in pprof labels, whatever the
		// order the labels come in (a map's, until 2026-12-07).
		10: {"profile_id": "00f067aa0ba902b7", "span_id": "53995c3f42cd8ad8"},
	})
	want := jfrContexts{
		7:  {SpanID: "00f067aa0ba902b7", SpanName: "GET /orders"},
		8:  {SpanID: "53995c3f42cd8ad8", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
		10: {SpanID: "53995c3f42cd8ad8"},
	}
	for range 20 {
		got, err := parseLabelsSnapshot(snapshot)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("contexts (-want +got):\n%s", diff)
		}
	}
	if _, err := (Limits{}).DecodePyroscopeJFR(nil, []byte{0x0a, 0x05, 0x01}, "bad"); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated snapshot: err %v, want ErrMalformed", err)
	}
}
