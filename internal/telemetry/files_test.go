package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

func TestParseInput(t *testing.T) {
	tests := []struct {
		in      string
		want    Input
		wantErr string
	}{
		{"checkout=profiles/cpu.pb.gz", Input{Service: "checkout", Path: "profiles/cpu.pb.gz"}, ""},
		{"profiles/cpu.pb.gz", Input{Path: "profiles/cpu.pb.gz"}, ""},
		{"dir/a=b.pb", Input{Path: "dir/a=b.pb"}, ""},
		{"svc=dir/a=b.pb", Input{Service: "svc", Path: "dir/a=b.pb"}, ""},
		{"=x", Input{}, `parse telemetry input "=x": want SERVICE=PATH with both parts`},
		{"svc=", Input{}, `parse telemetry input "svc=": want SERVICE=PATH with both parts`},
		{"", Input{}, "parse telemetry input: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseInput(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// telemetryDir lays out a directory the way a user collects telemetry:
// one subdirectory per service, plus stray files.
func telemetryDir(t *testing.T) string {
	dir := t.TempDir()
	put := func(name string, data []byte) {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("checkout/cpu.pb.gz", readFixture(t, "go-cpu.pb.gz"))
	put("checkout/traces.jsonl", readFixture(t, "traces.jsonl"))
	put("orders/python.pprof", gunzip(t, readFixture(t, "python-cpu.pb.gz")))
	put("payments/profiles.pb", readFixture(t, "profiles.pb"))
	put("payments/tempo.json", readFixture(t, "tempo-v2.json"))
	put("top.pb", readFixture(t, "traces.pb"))
	put("profiles.json.gz", gzipBytes(t, readFixture(t, "profiles.json")))
	put("README.md", []byte("# telemetry"))
	put("notifier/otel-traces.pb.zst", zstdBytes(t, fileExporter(t, "proto", false)))
	put(".cache/x.pb", []byte("junk"))
	put("broken/notes.json", []byte(`{"hello": 1}`))
	jfr, err := os.ReadFile(jfrFixture)
	if err != nil {
		t.Fatal(err)
	}
	put("inventory/cpu.jfr.gz", gzipBytes(t, jfr))
	put("indexer/cpu.collapsed", readFixture(t, "folded/async-profiler.collapsed"))
	put("reports/cpu.austin", readFixture(t, "folded/austin3-cpu.austin"))
	return dir
}

func TestDiscover(t *testing.T) {
	dir := telemetryDir(t)
	files, err := Discover([]Input{{Path: dir}, {Service: "web", Path: filepath.Join(dir, "orders", "python.pprof")}})
	if err == nil || !strings.Contains(err.Error(), "notes.json: unrecognised telemetry format") {
		t.Errorf("error %v, want the unrecognised notes.json reported", err)
	}
	var got []string
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f.Path)
		got = append(got, f.Service+" "+filepath.ToSlash(rel)+" "+f.Kind.String())
	}
	want := []string{
		"checkout checkout/cpu.pb.gz pprof",
		"checkout checkout/traces.jsonl traces",
		"indexer indexer/cpu.collapsed folded",
		"inventory inventory/cpu.jfr.gz jfr",
		"notifier notifier/otel-traces.pb.zst traces",
		// Listed again with a service named: read once, as web's.
		"web orders/python.pprof pprof",
		"payments payments/profiles.pb otlp-profiles",
		"payments payments/tempo.json traces",
		" profiles.json.gz otlp-profiles",
		"reports reports/cpu.austin folded",
		" top.pb traces",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if _, err := Discover([]Input{{Path: filepath.Join(dir, "missing")}}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing path: error %v, want ErrNotExist", err)
	}
	// A directory of something else (here only a README) is reported, as
	// a wrong path, beside the files of the other inputs.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "README.md"), []byte("not telemetry"), 0o600); err != nil {
		t.Fatal(err)
	}
	files, err = Discover([]Input{{Path: other}, {Path: filepath.Join(dir, "orders")}})
	if len(files) != 1 || err == nil || !strings.Contains(err.Error(), other+": the directory holds no telemetry files (.pb, ") {
		t.Errorf("Discover = %d files, %v; want the one of orders and an error naming %s", len(files), err, other)
	}
}

// recorder is a Handler that keeps what it is given.
type recorder struct {
	profiles []*ProfileBatch
	spans    []Span
	failOn   int // fail the n-th call (1-based), 0 never
	calls    int
}

var errRecorder = errors.New("recorder full")

func (r *recorder) call() error {
	r.calls++
	if r.calls == r.failOn {
		return errRecorder
	}
	return nil
}

func (r *recorder) Profile(b *ProfileBatch) error {
	r.profiles = append(r.profiles, b)
	return r.call()
}

func (r *recorder) Spans(s []Span) error {
	r.spans = append(r.spans, s...)
	return r.call()
}

func TestLoad(t *testing.T) {
	dir := telemetryDir(t)
	files, _ := Discover([]Input{{Path: dir}})
	files = append(files, File{Service: "gone", Path: filepath.Join(dir, "gone.pb"), Kind: KindPprof})
	var r recorder
	err := Load(context.Background(), files, &r)
	if err == nil || !strings.Contains(err.Error(), "gone.pb") {
		t.Errorf("error %v, want the missing file reported", err)
	}
	var services []string
	for _, p := range r.profiles {
		services = append(services, p.Service+"/"+p.SampleType)
	}
	slices.Sort(services)
	// A pprof file takes its directory's service; OTLP profiles keep the
	// resource's service.name.
	want := []string{"checkout/cpu", "checkout/cpu", "checkout/cpu", "indexer/samples", "inventory/cpu", "inventory/wall", "orders/samples", "payments/samples", "payments/samples", "reports/cpu"}
	if diff := cmp.Diff(want, services); diff != "" {
		t.Errorf("profile services (-want +got):\n%s", diff)
	}
	if len(r.spans) != 4*9 {
		t.Errorf("loaded %d spans, want 36 (four files of 9)", len(r.spans))
	}
	for _, s := range r.spans {
		if s.Service == "" {
			t.Errorf("span %q has no service", s.Name)
		}
	}

	t.Run("handler error stops", func(t *testing.T) {
		r := recorder{failOn: 2}
		if err := Load(context.Background(), files, &r); !errors.Is(err, errRecorder) || r.calls != 2 {
			t.Errorf("error %v after %d calls, want errRecorder after 2", err, r.calls)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var r recorder
		if err := Load(ctx, files, &r); !errors.Is(err, context.Canceled) || r.calls != 0 {
			t.Errorf("error %v after %d calls, want context.Canceled before any", err, r.calls)
		}
	})
}

// TestLoadFoldedWindow: folded stacks end when their file was written
// (for a gzipped file, when the file gzip compressed was) and last what
// austin's "# duration:" says, or no time at all.
func TestLoadFoldedWindow(t *testing.T) {
	dir := t.TempDir()
	austin := readFixture(t, "folded/austin3-cpu.austin")
	written := time.Date(2026, 12, 3, 14, 1, 2, 0, time.UTC)
	gzipped := func(modTime time.Time) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.ModTime = modTime
		if _, err := zw.Write(austin); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	fileTime := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		data      []byte
		wantStart time.Time
		wantDur   time.Duration
	}{
		{"cpu.austin", austin, fileTime.Add(-759700 * time.Microsecond), 759700 * time.Microsecond},
		{"cpu.austin.gz", gzipped(written), written.Add(-759700 * time.Microsecond), 759700 * time.Microsecond},
		{"no-time.austin.gz", gzipped(time.Time{}), fileTime.Add(-759700 * time.Microsecond), 759700 * time.Microsecond},
		{"py-spy.folded", readFixture(t, "folded/py-spy.folded"), fileTime, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(path, fileTime, fileTime); err != nil {
				t.Fatal(err)
			}
			files, err := Discover([]Input{{Service: "reports", Path: path}})
			if err != nil {
				t.Fatal(err)
			}
			var r recorder
			if err := Load(context.Background(), files, &r); err != nil {
				t.Fatal(err)
			}
			if len(r.profiles) != 1 {
				t.Fatalf("%d profiles, want 1", len(r.profiles))
			}
			if p := r.profiles[0]; !p.Start.Equal(tc.wantStart) || p.Duration != tc.wantDur {
				t.Errorf("window %v + %v, want %v + %v", p.Start, p.Duration, tc.wantStart, tc.wantDur)
			}
		})
	}
}

// TestDiscoverLongAndCutProtobuf: a protobuf request whose first
// resource_spans, or first span, runs past the head that sniffing reads
// is still recognised, and so is a file cut short anywhere, whose loading
// then keeps the spans before the cut and says the file is truncated.
// Both were refused as an "unrecognised telemetry format".
func TestDiscoverLongAndCutProtobuf(t *testing.T) {
	const n = 3000 // spans: over sniffLen in one resource_spans
	longRequest := func(attr string) []byte {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "checkout")
		ss := rs.ScopeSpans().AppendEmpty()
		for i := range n {
			sp := ss.Spans().AppendEmpty()
			sp.SetTraceID(traceID(byte(i)))
			sp.SetSpanID(pcommon.SpanID{1, byte(i >> 8), byte(i)})
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetName("GET /cart/{id}")
			sp.Attributes().PutStr("http.route", "/cart/{id}")
			if i == 0 {
				sp.Attributes().PutStr("db.statement", attr)
			}
		}
		b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	long := longRequest("")
	longSpan := longRequest(strings.Repeat("x", 2*sniffLen))
	zstdLong := zstdBytes(t, long)
	framed := binary.BigEndian.AppendUint32(nil, uint32(len(long)))
	framed = append(framed, long...)
	small, err := ptraceotlp.NewExportRequestFromTraces(fixtureTraces()[0]).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		data      []byte
		kind      Kind
		spans     int // -1: some, not all
		truncated bool
	}{
		{"request longer than the head", long, KindTraces, n, false},
		{"gzipped", gzipBytes(t, long), KindTraces, n, false},
		{"file exporter", framed, KindTraces, n, false},
		{"first span longer than the head", longSpan, KindTraces, n, false},
		{"cut in the first length", small[:2], KindUnknown, 0, false},
		{"cut after the first length", small[:3], KindTraces, 0, true},
		{"cut in the resource", small[:10], KindTraces, 0, true},
		{"cut in the third span", long[:200], KindTraces, 2, true},
		// pdata writes a message's fields last to first: the resource
		// comes after the spans.
		{"cut in the resource, after the spans", long[:len(long)-1], KindTraces, n, true},
		{"cut long request, gzipped whole", gzipBytes(t, long[:len(long)/2]), KindTraces, -1, true},
		// Cut after compression: what was decompressed before the cut
		// is read as the same file cut uncompressed is.
		{"gzipped, then cut", half(gzipBytes(t, long)), KindTraces, -1, true},
		// zstd gives out whole blocks (128 KiB) only: cut in the last.
		{"zstd stream, then cut", zstdLong[:len(zstdLong)-100], KindTraces, -1, true},
		{"OTLP profiles cut", readFixture(t, "profiles.pb")[:100], KindOTLPProfiles, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "telemetry.pb")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			files, err := Discover([]Input{{Path: path}})
			if tt.kind == KindUnknown {
				if !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), path) {
					t.Errorf("Discover = %v, %v; want an unrecognised format naming %s", files, err, path)
				}
				return
			}
			if err != nil || len(files) != 1 || files[0].Kind != tt.kind {
				t.Fatalf("Discover = %v, %v; want one %s file", files, err, tt.kind)
			}
			var r recorder
			err = Load(context.Background(), files, &r)
			if tt.spans >= 0 && len(r.spans) != tt.spans || tt.spans < 0 && (len(r.spans) == 0 || len(r.spans) >= n) {
				t.Errorf("loaded %d spans, want %d (-1: some, not all)", len(r.spans), tt.spans)
			}
			if !tt.truncated {
				if err != nil {
					t.Errorf("Load: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("Load error %v, want one naming %s", err, path)
			}
		})
	}
}

// half returns the first half of data.
func half(data []byte) []byte { return data[:len(data)/2] }

// TestDiscoverReadsAFileOnce: a file that several inputs list is read
// once (its spans would count twice), with the service an input names
// for it; and .binpb, protobuf's own extension for binary messages, is
// read in a directory.
func TestDiscoverReadsAFileOnce(t *testing.T) {
	dir := t.TempDir()
	traces := readFixture(t, "traces.pb")
	for _, name := range []string{"checkout/traces.pb", "checkout/traces.binpb"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), traces, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "checkout", "traces.pb")
	rel, err := filepath.Rel(".", file)
	if err != nil {
		rel = file
	}
	tests := []struct {
		name    string
		inputs  []Input
		want    []string
		wantErr string
	}{
		{"a directory and a file in it", []Input{{Path: dir}, {Path: file}}, []string{"checkout checkout/traces.binpb", "checkout checkout/traces.pb"}, ""},
		{"a file twice, by two paths", []Input{{Path: file}, {Path: rel}}, []string{" checkout/traces.pb"}, ""},
		{"a service named after the directory's", []Input{{Path: dir}, {Service: "web", Path: file}}, []string{"checkout checkout/traces.binpb", "web checkout/traces.pb"}, ""},
		{"a service named before the directory", []Input{{Service: "web", Path: file}, {Path: dir}}, []string{"web checkout/traces.pb", "checkout checkout/traces.binpb"}, ""},
		{"two services named", []Input{{Service: "web", Path: file}, {Service: "api", Path: file}}, []string{"web checkout/traces.pb"}, `traces.pb is given for service "web" and for "api": read as "web"'s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := Discover(tt.inputs)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
			var got []string
			for _, f := range files {
				rel, _ := filepath.Rel(dir, f.Path)
				got = append(got, f.Service+" "+filepath.ToSlash(rel))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}
