package attribution_test

import (
	"bytes"
	stdcmp "cmp"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/telemetry"
)

// runtimeProfile is a profile a real profiler wrote of a real program
// (testdata/README.md), with the configuration evident derives for it from
// the service's SBOM or installed packages.
type runtimeProfile struct {
	file   string
	decode func(data []byte, name string) ([]*telemetry.ProfileBatch, error)
	cfg    func(t *testing.T) attribution.Config
	lang   attribution.Language
	// runtime reports whether an attributed frame is the language
	// runtime's own code (JDK, CPython's standard library, Node.js core),
	// which is neither a package nor first-party.
	runtime func(attribution.Func) bool
	// want lists functions that must be found with these packages,
	// modules and labels.
	want []attribution.Func
	// vulnerable lists (package, symbol) pairs that must match a frame:
	// the vulnerable functions the program runs.
	vulnerable [][2]string
}

// The Java test program's (testdata/java) configuration, what it runs
// and its vulnerable function, shaded or not.
var (
	ordersJavaConfig = func(*testing.T) attribution.Config {
		return attribution.Config{JavaPackages: attribution.JavaPackagesOf([]string{"org.yaml:snakeyaml"}), FirstParty: []string{"com.example.orders"}}
	}
	ordersJavaWant = []attribution.Func{
		{Language: attribution.Java, Package: "org.yaml.snakeyaml.constructor", Symbol: "Constructor$ConstructYamlObject.construct", Module: "org.yaml:snakeyaml"},
		{Language: attribution.Java, Package: "com.example.orders", Symbol: "Orders.total", FirstParty: true},
	}
	ordersJavaVulnerable = [][2]string{{"org.yaml.snakeyaml.constructor", "Constructor$ConstructYamlObject.construct"}}
)

// javaRuntime reports whether fn is the JDK's.
func javaRuntime(fn attribution.Func) bool {
	return slices.ContainsFunc([]string{"java.", "javax.", "jdk.", "sun.", "com.sun."}, func(p string) bool { return strings.HasPrefix(fn.Package+".", p) })
}

var runtimeProfiles = []runtimeProfile{
	{
		file:   "java/orders.jfr",
		decode: telemetry.Limits{}.DecodeJFR,
		// The SBOM names org.yaml:snakeyaml; the application's packages
		// are configured.
		cfg:        ordersJavaConfig,
		lang:       attribution.Java,
		runtime:    javaRuntime,
		want:       ordersJavaWant,
		vulnerable: ordersJavaVulnerable,
	},
	{
		file: "java/orders-shaded.jfr.gz",
		decode: func(data []byte, name string) ([]*telemetry.ProfileBatch, error) {
			zr, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				return nil, err
			}
			jfr, err := io.ReadAll(zr)
			if err != nil {
				return nil, err
			}
			return telemetry.Limits{}.DecodeJFR(jfr, name)
		},
		// The same program and SBOM, with snakeyaml relocated into
		// com.example.orders.shaded by the Maven Shade plugin.
		cfg:        ordersJavaConfig,
		lang:       attribution.Java,
		runtime:    javaRuntime,
		want:       ordersJavaWant,
		vulnerable: ordersJavaVulnerable,
	},
	{
		file:   "node/npm.pb.gz",
		decode: telemetry.DecodePprof,
		cfg:    func(*testing.T) attribution.Config { return attribution.Config{} },
		lang:   attribution.Node,
		runtime: func(fn attribution.Func) bool {
			return fn.Package == "" && !fn.FirstParty // node: core modules
		},
		want: []attribution.Func{
			{Language: attribution.Node, Package: "lodash", File: "lodash.js", Symbol: "template", Module: "lodash"},
			{Language: attribution.Node, Package: "minimist", File: "index.js", Symbol: "setKey", Module: "minimist"}, // mkdirp's nested copy
			{Language: attribution.Node, Package: "@hapi/hoek", File: "lib/merge.js", Symbol: "module.exports.internals.merge", Module: "@hapi/hoek"},
			{Language: attribution.Node, Symbol: "receipt", FirstParty: true},
		},
		vulnerable: [][2]string{{"lodash", "template"}, {"minimist", "setKey"}},
	},
	{
		file:   "node/pnpm.pb.gz",
		decode: telemetry.DecodePprof,
		cfg:    func(*testing.T) attribution.Config { return attribution.Config{} },
		lang:   attribution.Node,
		runtime: func(fn attribution.Func) bool {
			return fn.Package == "" && !fn.FirstParty
		},
		want: []attribution.Func{
			{Language: attribution.Node, Package: "minimist", File: "index.js", Symbol: "setKey", Module: "minimist", Version: "0.0.8"},
			{Language: attribution.Node, Package: "minimist", File: "index.js", Symbol: "setArg", Module: "minimist", Version: "1.2.0"},
			{Language: attribution.Node, Package: "@hapi/hoek", File: "lib/merge.js", Symbol: "module.exports.internals.merge", Module: "@hapi/hoek", Version: "9.3.0"},
			{Language: attribution.Node, Symbol: "handle", FirstParty: true},
		},
		vulnerable: [][2]string{{"minimist", "setKey"}},
	},
	{
		file: "python/austin.folded.gz",
		decode: func(data []byte, name string) ([]*telemetry.ProfileBatch, error) {
			return telemetry.DecodeFolded(data, name, true)
		},
		cfg: func(t *testing.T) attribution.Config {
			dists, err := attribution.PythonDistsOf(os.DirFS("testdata/python/dist-packages"))
			if err != nil {
				t.Fatal(err)
			}
			return attribution.Config{PythonDists: dists}
		},
		lang: attribution.Python,
		runtime: func(fn attribution.Func) bool {
			return fn.Module == "" && !fn.FirstParty // the standard library, frozen modules
		},
		want: []attribution.Func{
			{Language: attribution.Python, Package: "yaml.constructor", Symbol: "BaseConstructor.construct_document", Module: "pyyaml"},
			{Language: attribution.Python, Package: "jwt.api_jwt", Symbol: "PyJWT.decode", Module: "pyjwt"},
			{Language: attribution.Python, Package: "service", Symbol: "handle", FirstParty: true},
			{Language: attribution.Python, Package: "app", Symbol: "main", FirstParty: true},
		},
		vulnerable: [][2]string{{"yaml", "load"}},
	},
	{
		file: "python/azure.folded.gz",
		decode: func(data []byte, name string) ([]*telemetry.ProfileBatch, error) {
			return telemetry.DecodeFolded(data, name, true)
		},
		// No installed metadata: the namespace package azure's modules
		// find their distributions by the built-in names alone.
		cfg:  func(*testing.T) attribution.Config { return attribution.Config{} },
		lang: attribution.Python,
		runtime: func(fn attribution.Func) bool {
			return fn.Module == "" && !fn.FirstParty
		},
		want: []attribution.Func{
			{Language: attribution.Python, Package: "azure.storage.blob._shared_access_signature", Symbol: "generate_blob_sas", Module: "azure-storage-blob"},
			{Language: attribution.Python, Package: "azure.core.pipeline.policies._universal", Symbol: "<module>", Module: "azure-core"},
			{Language: attribution.Python, Package: "app", Symbol: "sign", FirstParty: true},
		},
		vulnerable: [][2]string{{"azure.storage.blob._shared_access_signature", "generate_blob_sas"}},
	},
}

// TestRuntimeProfiles attributes every frame of profiles of real programs
// in Java (JFR), Node.js (@datadog/pprof, npm and pnpm layouts) and Python
// (Debian's packages), and compares the result with
// testdata/runtime-frames.golden. Every frame of the program's language
// must be attributed, and each either to a package (with its
// distribution), to the application (first-party) or to the runtime:
// never to an unknown package.
func TestRuntimeProfiles(t *testing.T) {
	var out bytes.Buffer
	for _, p := range runtimeProfiles {
		t.Run(p.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", p.file))
			if err != nil {
				t.Fatal(err)
			}
			batches, err := p.decode(data, p.file)
			if err != nil {
				t.Fatal(err)
			}
			a := attribution.New(p.cfg(t))
			var frames []attribution.Frame
			for _, b := range batches {
				for _, loc := range b.Locations {
					frames = append(frames, loc...)
				}
			}
			slices.SortFunc(frames, func(x, y attribution.Frame) int {
				return stdcmp.Or(strings.Compare(x.Function, y.Function), strings.Compare(x.File, y.File))
			})
			frames = slices.Compact(frames)
			var fns []attribution.Func
			// The golden file lists the frames of packages and of the
			// application; the runtime's and the unattributed (native,
			// V8 pseudo-frames, lodash's compiled templates) are counted.
			fmt.Fprintf(&out, "# %s: function\tfile\t=> package\tsymbol\tmodule\tversion\tfirst-party\n", p.file)
			runtime, unattributed := 0, 0
			defer func() {
				fmt.Fprintf(&out, "# %s: %d frames of the runtime, %d not attributed\n", p.file, runtime, unattributed)
			}()
			for _, f := range frames {
				fn, ok := a.Attribute(f)
				if !ok {
					unattributed++
					continue
				}
				fns = append(fns, fn)
				if fn.Module == "" && !fn.FirstParty && p.runtime(fn) {
					runtime++
				} else {
					fmt.Fprintf(&out, "%s\t%s\t=> %s\t%s\t%s\t%s\t%v\n", f.Function, f.File, fn.Package, fn.Symbol, fn.Module, fn.Version, fn.FirstParty)
				}
				if fn.Language != p.lang {
					t.Errorf("%+v: language %v, want %v", f, fn.Language, p.lang)
				}
				if fn.Module == "" && !fn.FirstParty && !p.runtime(fn) {
					t.Errorf("%+v = %+v: neither a package, first-party nor the runtime", f, fn)
				}
				if fn.Runtime() != (fn.Module == "" && !fn.FirstParty && p.runtime(fn)) || fn.Unattributed() {
					t.Errorf("%+v = %+v: Runtime() = %v, Unattributed() = %v", f, fn, fn.Runtime(), fn.Unattributed())
				}
				if fn.Module != "" && fn.FirstParty {
					t.Errorf("%+v = %+v: a package's code labelled first-party", f, fn)
				}
			}
			for _, w := range p.want {
				if !slices.Contains(fns, w) {
					t.Errorf("no frame attributed to %+v", w)
				}
			}
			for _, v := range p.vulnerable {
				if !slices.ContainsFunc(fns, func(fn attribution.Func) bool { return fn.Matches(v[0], v[1]) }) {
					t.Errorf("no frame matches the vulnerable %s.%s", v[0], v[1])
				}
			}
		})
	}
	golden := filepath.Join("testdata", "runtime-frames.golden")
	// The -update flag is defined by the package's internal tests, which
	// share this test binary.
	if flag.Lookup("update").Value.(flag.Getter).Get().(bool) {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), out.String()); diff != "" {
		t.Errorf("attribution differs from %s (-want +got):\n%s", golden, diff)
	}
}
