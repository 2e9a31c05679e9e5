package telemetry

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/attribution"
)

// foldedStacks renders a batch's samples as "leaf<caller... count" for
// comparison.
func foldedStacks(b *ProfileBatch) []string {
	var out []string
	for _, s := range b.Samples {
		var fs []string
		for _, l := range s.Locations {
			f := b.Locations[l][0]
			fs = append(fs, f.Function+"@"+f.File)
		}
		out = append(out, strings.Join(fs, " < ")+" x"+strings.Repeat("I", int(min(s.Count, 12))))
	}
	return out
}

func TestDecodeFolded(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"py-spy.folded", []string{
			"load@yaml/__init__.py < handle@app/views.py < main@app.py < <module>@app.py xIIIIIII",
			"get@requests/sessions.py < handle@app/views.py < main@app.py < <module>@app.py xIII",
		}},
		{"async-profiler.collapsed", []string{
			"org/yaml/snakeyaml/Yaml.load@ < com/example/shop/Main.handle@ < java/lang/Thread.run@ xIIIIIIIIIII",
			"__memcpy_avx_unaligned_erms@ < com/example/shop/Main.handle@ < java/lang/Thread.run@ xI",
		}},
		{"perf.folded", []string{
			"__memcpy_avx2@libc.so.6 < org/yaml/snakeyaml/Yaml.load@ < Interpreter@ < start_thread@ < java@ xIIII",
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile("testdata/folded/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			batches, err := DecodeFolded(data, tc.file, true)
			if err != nil {
				t.Fatalf("DecodeFolded: %v", err)
			}
			if len(batches) != 1 || batches[0].SampleType != "samples" || batches[0].Unit != "count" {
				t.Fatalf("batches %+v, want one profile of sample counts", batches)
			}
			if diff := cmp.Diff(tc.want, foldedStacks(batches[0])); diff != "" {
				t.Errorf("stacks (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeAustin decodes real austin recordings (testdata/README.md):
// a sample a line, its metric in microseconds, the window from the
// "# duration:" trailer.
func TestDecodeAustin(t *testing.T) {
	const yamlStack = "SafeConstructor.construct_yaml_map@/usr/lib/python3/dist-packages/yaml/constructor.py < " +
		"BaseConstructor.construct_object@/usr/lib/python3/dist-packages/yaml/constructor.py < " +
		"BaseConstructor.construct_sequence.<locals>.<listcomp>@/usr/lib/python3/dist-packages/yaml/constructor.py < " +
		"BaseConstructor.construct_sequence@/usr/lib/python3/dist-packages/yaml/constructor.py < " +
		"SafeConstructor.construct_yaml_seq@/usr/lib/python3/dist-packages/yaml/constructor.py < " +
		"BaseConstructor.construct_document@/usr/lib/python3/dist-packages/yaml/constructor.py < " +
		"BaseConstructor.get_single_data@/usr/lib/python3/dist-packages/yaml/constructor.py < " +
		"load@/usr/lib/python3/dist-packages/yaml/__init__.py < safe_load@/usr/lib/python3/dist-packages/yaml/__init__.py < " +
		"main@/tmp/py13-fx/yamlload.py < <module>@/tmp/py13-fx/yamlload.py xI"
	for _, tc := range []struct {
		file      string
		kind      sampleKind
		samples   int64 // data lines
		value     int64 // the first metrics' sum, in microseconds
		duration  time.Duration
		frameless int64  // samples of no Python frame (or :INVALID:)
		stack     string // a stack of the recording
	}{
		{file: "austin3-cpu.austin", kind: sampleKind{"cpu", "nanoseconds", 25 * int64(time.Millisecond)},
			samples: 22, value: 734503, duration: 759700 * time.Microsecond, frameless: 4, stack: yamlStack},
		{file: "austin3-full.austin", kind: sampleKind{"wall", "nanoseconds", 50 * int64(time.Millisecond)},
			samples: 11, value: 577031, duration: 650386 * time.Microsecond, frameless: 2,
			stack: "<module>@<frozen importlib._bootstrap> xI"},
		{file: "austin1-wall.folded", kind: sampleKind{"wall", "nanoseconds", 0}, samples: 24, value: 1598808, frameless: 1,
			stack: "compose_node@/usr/lib/python3/dist-packages/yaml/composer.py < compose_sequence_node@/usr/lib/python3/dist-packages/yaml/composer.py"},
		{file: "austin1-full.folded", kind: sampleKind{"wall", "nanoseconds", 0}, samples: 12, value: 1217098, frameless: 1,
			stack: "safe_load@/usr/lib/python3/dist-packages/yaml/__init__.py < main@/tmp/py13-fx/yamlload.py < <module>@/tmp/py13-fx/yamlload.py"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile("testdata/folded/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			batches, err := DecodeFolded(data, tc.file, true)
			if err != nil {
				t.Fatalf("DecodeFolded: %v", err)
			}
			if len(batches) != 1 {
				t.Fatalf("%d profiles, want 1", len(batches))
			}
			b := batches[0]
			got := sampleKind{b.SampleType, b.Unit, b.Period}
			if got != tc.kind {
				t.Errorf("kind %+v, want %+v", got, tc.kind)
			}
			if b.Duration != tc.duration || !b.Start.IsZero() {
				t.Errorf("window %v+%v, want the zero time+%v", b.Start, b.Duration, tc.duration)
			}
			var samples, value, frameless int64
			for _, s := range b.Samples {
				samples += s.Count
				value += s.Value
				if len(s.Locations) == 0 {
					frameless += s.Count
				}
			}
			if samples != tc.samples || value != tc.value*int64(time.Microsecond) || frameless != tc.frameless {
				t.Errorf("%d samples (%d frameless) worth %v, want %d (%d) worth %v", samples, frameless, time.Duration(value),
					tc.samples, tc.frameless, time.Duration(tc.value)*time.Microsecond)
			}
			if !slices.ContainsFunc(foldedStacks(b), func(s string) bool { return strings.Contains(s, tc.stack) }) {
				t.Errorf("no stack holds %q in\n%s", tc.stack, strings.Join(foldedStacks(b), "\n"))
			}
		})
	}
}

// TestDecodeAustinLines covers what the recordings do not: austin's
// modes and metadata, good and bad.
func TestDecodeAustinLines(t *testing.T) {
	const head = "# austin: 3.7.0\n# interval: 100\n"
	for _, tc := range []struct {
		name, in string
		kind     sampleKind
		counts   []string // foldedStacks
		value    int64
		duration time.Duration
		wantErr  string
	}{
		{name: "wall", in: head + "# mode: wall\n\nP1;T0:1;/a.py:f:1 150\nP1;T0:1;/a.py:f:1 90\n\n# duration: 2500000\n",
			kind: sampleKind{"wall", "nanoseconds", 100_000}, counts: []string{"f@/a.py xII"}, value: 240_000, duration: 2500 * time.Millisecond},
		{name: "memory frees count as samples of no bytes", in: head + "# mode: memory\nP1;T0:1;/a.py:f:1 4096\nP1;T0:1;/a.py:g:2 -512\n",
			kind: sampleKind{"memory", "bytes", 0}, counts: []string{"f@/a.py xI", "g@/a.py xI"}, value: 4096},
		{name: "gc and invalid frames", in: head + "# mode: cpu\nP1;T0:1;/a.py:f:1;:GC: 100\nP1;T0:1;:INVALID: 100\n",
			kind: sampleKind{"cpu", "nanoseconds", 100_000}, counts: []string{"f@/a.py xI", " xI"}, value: 200_000},
		{name: "austin 2 frames", in: "# austin: 2.1.1\n# interval: 100\n# mode: wall\nP42;T7f3a;main (/srv/app.py);L3;load (/usr/lib/python3/dist-packages/yaml/__init__.py);L79 250\n",
			kind: sampleKind{"wall", "nanoseconds", 100_000}, counts: []string{"load@/usr/lib/python3/dist-packages/yaml/__init__.py < main@/srv/app.py xI"}, value: 250_000},
		{name: "colons that are no special frame", in: head + "P1;T0:1;:lower:;INVALID: 100\n",
			kind: sampleKind{"wall", "nanoseconds", 100_000}, counts: []string{"INVALID:@ < :lower:@ xI"}, value: 100_000},
		{name: "other comments are not metadata", in: "# duration: 5\nP1;T0:1;/a.py:f:1 100\n",
			kind: sampleKind{"wall", "nanoseconds", 0}, counts: []string{"f@/a.py xI"}, value: 100_000},
		{name: "bad metadata", in: head + "# mode: turbo\n# duration: soon\nP1;T0:1;/a.py:f:1 x\nP1;T0:1;/a.py:f:1 -3\nP1;T0:1;/a.py:f:1 100\n",
			kind: sampleKind{"wall", "nanoseconds", 100_000}, counts: []string{"f@/a.py xI"}, value: 100_000,
			wantErr: `line 3: austin mode "turbo" is none of cpu, wall, memory, full; lines.austin: line 4: austin duration "soon" is not microseconds; ` +
				`lines.austin: line 5: austin metric "x" is not microseconds; lines.austin: line 6: austin metric "-3" is not microseconds`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batches, err := DecodeFolded([]byte(tc.in), "lines.austin", true)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), "\n", "; "), tc.wantErr)) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			if len(batches) != 1 {
				t.Fatalf("%d profiles, want 1", len(batches))
			}
			b := batches[0]
			if got := (sampleKind{b.SampleType, b.Unit, b.Period}); got != tc.kind {
				t.Errorf("kind %+v, want %+v", got, tc.kind)
			}
			if diff := cmp.Diff(tc.counts, foldedStacks(b)); diff != "" {
				t.Errorf("stacks (-want +got):\n%s", diff)
			}
			var value int64
			for _, s := range b.Samples {
				value += s.Value
			}
			if value != tc.value || b.Duration != tc.duration {
				t.Errorf("value %d over %v, want %d over %v", value, b.Duration, tc.value, tc.duration)
			}
		})
	}
}

func TestDecodeFoldedAttribution(t *testing.T) {
	a := attribution.New(attribution.Config{})
	for _, tc := range []struct {
		frame attribution.Frame
		pkg   string
	}{
		{parseFoldedFrame("load (yaml/__init__.py:79)"), "yaml"},
		{parseFoldedFrame("load (/usr/lib/python3/dist-packages/yaml/__init__.py)"), "yaml"},
		{parseFoldedFrame("/usr/lib/python3/dist-packages/yaml/__init__.py:load:79"), "yaml"},
		{parseFoldedFrame("<frozen importlib._bootstrap>:_find_and_load:1176"), "importlib._bootstrap"},
		{parseFoldedFrame("org/yaml/snakeyaml/Yaml.load_[j]"), "org.yaml.snakeyaml"},
		{parseFoldedFrame("Lorg/yaml/snakeyaml/Yaml;::load"), "org.yaml.snakeyaml"},
	} {
		fn, ok := a.Attribute(tc.frame)
		if !ok || fn.Package != tc.pkg {
			t.Errorf("Attribute(%+v) = %+v, %v; want package %s", tc.frame, fn, ok, tc.pkg)
		}
	}
}

func TestDecodeFoldedLines(t *testing.T) {
	batches, err := DecodeFolded([]byte("a;b;c\na;b;c\na;d\n"), "lines", false)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"c@ < b@ < a@ xII", "d@ < a@ xI"}, foldedStacks(batches[0])); diff != "" {
		t.Errorf("stacks (-want +got):\n%s", diff)
	}
}

func TestDecodeFoldedMalformed(t *testing.T) {
	batches, err := DecodeFolded([]byte("a;b 3\nno-count-here\na;b x\n;; 4\na;c 1\n"), "bad.folded", true)
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err %v, want ErrMalformed", err)
	}
	for _, want := range []string{"bad.folded: line 2: no sample count", "line 3: sample count \"x\"", "line 4: no frames"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err %q, want it to say %q", err, want)
		}
	}
	if diff := cmp.Diff([]string{"b@ < a@ xIII", "c@ < a@ xI"}, foldedStacks(batches[0])); diff != "" {
		t.Errorf("kept stacks (-want +got):\n%s", diff)
	}
	if _, err := (Limits{MaxSamples: 1}).DecodeFolded([]byte("a 1\nb 1\n"), "big", true); !errors.Is(err, ErrTooLarge) {
		t.Errorf("MaxSamples 1: err %v, want ErrTooLarge", err)
	}
}

// TestDecodeAustinLive records testdata/folded/yamlload.py with the
// austin installed and decodes what it wrote: CPU samples with PyYAML's
// frames, and from austin 2 on the duration it measured.
// EVIDENT_AUSTIN names the austin command (else austin in PATH) and
// EVIDENT_AUSTIN_PYTHON the interpreter (else /usr/bin/python3, which
// must import yaml); Debian 12's austin 1.0.1 cannot read its python3
// 3.11, and the test skips saying so.
func TestDecodeAustinLive(t *testing.T) {
	austin := strings.Fields(os.Getenv("EVIDENT_AUSTIN"))
	if len(austin) == 0 {
		path, err := exec.LookPath("austin")
		if err != nil {
			t.Skip("no austin: not in PATH and EVIDENT_AUSTIN unset (apt-get install austin, or examples/python-reports/tools/austin-debian13.sh)")
		}
		austin = []string{path}
	}
	python := os.Getenv("EVIDENT_AUSTIN_PYTHON")
	if python == "" {
		python = "/usr/bin/python3"
	}
	if err := exec.Command(python, "-c", "import yaml").Run(); err != nil {
		t.Skipf("%s cannot import yaml (apt-get install python3-yaml): %v", python, err)
	}
	out := filepath.Join(t.TempDir(), "yamlload.austin")
	args := append(austin[1:], "--sleepless", "--interval", "10000", "--output", out, python, "testdata/folded/yamlload.py")
	if msg, err := exec.Command(austin[0], args...).CombinedOutput(); err != nil {
		t.Skipf("%s could not sample %s (austin 1 cannot read Python 3.11; set EVIDENT_AUSTIN to austin 2 or later): %v\n%s",
			strings.Join(austin, " "), python, err, msg)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	batches, err := DecodeFolded(data, out, true)
	if err != nil {
		t.Fatalf("DecodeFolded: %v", err)
	}
	if len(batches) != 1 {
		t.Fatalf("%d profiles, want 1", len(batches))
	}
	b := batches[0]
	header := bytes.HasPrefix(data, []byte(austinMagic))
	wantType := "wall" // austin 1 says nothing of its mode
	if header {
		wantType = "cpu"
	}
	if b.SampleType != wantType || b.Unit != "nanoseconds" || len(b.Samples) == 0 {
		t.Errorf("%d samples of %s in %s, want %s in nanoseconds", len(b.Samples), b.SampleType, b.Unit, wantType)
	}
	if header && (b.Duration < 300*time.Millisecond || b.Period != 10*int64(time.Millisecond)) {
		t.Errorf("duration %v, period %v; want at least the program's 300ms, every 10ms", b.Duration, time.Duration(b.Period))
	}
	a := attribution.New(attribution.Config{})
	yaml := false
	for _, loc := range b.Locations {
		for _, f := range loc {
			if fn, ok := a.Attribute(f); ok && fn.Module == "pyyaml" && strings.HasPrefix(fn.Package, "yaml") {
				yaml = true
			}
		}
	}
	if !yaml {
		t.Errorf("no frame of PyYAML in\n%s", strings.Join(foldedStacks(b), "\n"))
	}
}
