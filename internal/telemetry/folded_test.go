package telemetry

import (
	"errors"
	"os"
	"strings"
	"testing"

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
		{"austin.folded", []string{
			"load@/usr/lib/python3/dist-packages/yaml/__init__.py < main@/srv/app.py < <module>@/srv/app.py xIIIII",
			"main@/srv/app.py < <module>@/srv/app.py xII",
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

func TestDecodeFoldedAttribution(t *testing.T) {
	a := attribution.New(attribution.Config{})
	for _, tc := range []struct {
		frame attribution.Frame
		pkg   string
	}{
		{parseFoldedFrame("load (yaml/__init__.py:79)"), "yaml"},
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
