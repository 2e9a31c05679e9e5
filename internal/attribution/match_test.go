package attribution

import (
	"archive/zip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/module"

	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/vulndb/vulndbtest"
)

// readEntry loads an OSV record from testdata.
func readEntry(t *testing.T, name string) osv.Entry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var e osv.Entry
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return e
}

// recordMatches reports whether fn is one of the symbols (or, for an import
// without symbols, the package) that a Go record lists.
func recordMatches(e osv.Entry, fn Func) bool {
	for _, aff := range e.Affected {
		if aff.EcosystemSpecific == nil {
			continue
		}
		for _, imp := range aff.EcosystemSpecific.Imports {
			if len(imp.Symbols) == 0 && fn.Matches(imp.Path, "") {
				return true
			}
			for _, s := range imp.Symbols {
				if fn.Matches(imp.Path, s) {
					return true
				}
			}
		}
	}
	return false
}

// TestMatchesGoRecords attributes profile frames and matches them against
// real Go vulnerability records.
func TestMatchesGoRecords(t *testing.T) {
	http := readEntry(t, "GO-2022-0969.json")
	yaml := readEntry(t, "GO-2022-0603.json")
	tests := []struct {
		name  string
		entry osv.Entry
		frame Frame
		want  bool
	}{
		{"pointer method", http, Frame{"net/http.(*Server).ListenAndServe", goroot + "net/http/server.go"}, true},
		{"closure of vulnerable method", http, Frame{"net/http.(*Server).Serve.func1", goroot + "net/http/server.go"}, true},
		{"method value of vulnerable method", http, Frame{"net/http.(*Server).Serve-fm", goroot + "net/http/server.go"}, true},
		{"trimpath", http, Frame{"net/http.(*Server).ServeTLS", "net/http/server.go"}, true},
		{"unexported bundled type", http, Frame{"net/http.(*http2serverConn).goAway", goroot + "net/http/h2_bundle.go"}, true},
		{"function", http, Frame{"net/http.ListenAndServe", goroot + "net/http/server.go"}, true},
		{"x/net package", http, Frame{"golang.org/x/net/http2.(*Server).ServeConn",
			"/root/go/pkg/mod/golang.org/x/net@v0.0.0-20220722155237-a158d28d115b/http2/server.go"}, true},
		{"same method name other package", http, Frame{"golang.org/x/net/http2.(*Server).ListenAndServe", "golang.org/x/net@v0.1.0/http2/server.go"}, false},
		{"other method of the type", http, Frame{"net/http.(*Server).Shutdown", goroot + "net/http/server.go"}, false},
		{"other type with the method", http, Frame{"net/http.(*conn).serve", goroot + "net/http/server.go"}, false},
		{"escaped dot, real profile frame", yaml, Frame{"gopkg.in/yaml%2ev3.Unmarshal", yamlDir + "yaml.go"}, true},
		{"escaped dot, trimpath", yaml, Frame{"gopkg.in/yaml%2ev3.Unmarshal", "gopkg.in/yaml.v3@v3.0.1/yaml.go"}, true},
		{"unexported function of the same name", yaml, Frame{"gopkg.in/yaml%2ev3.unmarshal", yamlDir + "yaml.go"}, false},
		{"method of the package", yaml, Frame{"gopkg.in/yaml%2ev3.(*decoder).unmarshal", yamlDir + "decode.go"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fn, ok := New(Config{}).Attribute(tc.frame)
			if !ok {
				t.Fatalf("Attribute(%+v) not attributed", tc.frame)
			}
			if got := recordMatches(tc.entry, fn); got != tc.want {
				t.Errorf("%s matches %+v (from %+v) = %v, want %v", tc.entry.ID, fn, tc.frame, got, tc.want)
			}
		})
	}
}

// TestMatches covers the matching rules of each language with symbols as
// records and the knowledge base write them.
func TestMatches(t *testing.T) {
	goSrv := goFn("net/http", "Server.ListenAndServe", "stdlib", "")
	jndi := javaFn("org.apache.logging.log4j.core.lookup", "JndiLookup.lookup", "")
	inner := javaFn("java.util.concurrent", "ThreadPoolExecutor$Worker.run", "")
	pyLoad := pyFn("yaml", "load", "pyyaml")
	pyReq := pyFn("requests.sessions", "request", "requests")
	pyQual := pyFn("flask.app", "Flask.wsgi_app", "flask")
	// Pillow's modules are capitalised (PIL.ImageMath, PIL.ImageFont), and
	// so are its classes (PIL.ImageFont.FreeTypeFont): GitHub's
	// "PIL.ImageMath.eval" (GHSA-3f63-hfp8-52jq) does not say where the
	// module ends, the frame does.
	pilEval := pyFn("PIL.ImageMath", "eval", "pillow")
	pilLength := pyFn("PIL.ImageFont", "FreeTypeFont.getlength", "pillow")
	pilLengthShort := pyFn("PIL.ImageFont", "getlength", "pillow")
	lodash := nodeFn("lodash", "lodash.js", "template", "")
	app := Func{Language: Node, Symbol: "handler"}
	tests := []struct {
		name        string
		fn          Func
		pkg, symbol string
		want        bool
	}{
		{"go OSV symbol", goSrv, "net/http", "Server.ListenAndServe", true},
		{"go whole package", goSrv, "net/http", "", true},
		{"go traceback form", goSrv, "net/http", "(*Server).ListenAndServe", true},
		{"go generic traceback form", goFn("main", "List.Push", "", ""), "main", "(*List[...]).Push", true},
		{"go generic value form", goFn("main", "List.Push", "", ""), "main", "List[T].Push", true},
		{"go closure form", goSrv, "net/http", "(*Server).ListenAndServe.func1", true},
		{"go traceback form split elsewhere", goSrv, "net/http", "(*Serve).rListenAndServe", false},
		{"go traceback form of a function inlined into a method", goFn("main", "T.M.f", "", ""), "main", "(*T).M.f", true},
		{"go traceback form of another function inlined into a method", goFn("main", "T.M.f", "", ""), "main", "(*T).N.f", false},
		{"go other symbol", goSrv, "net/http", "Server.Serve", false},
		{"go method name only", goSrv, "net/http", "ListenAndServe", false},
		{"go other package", goSrv, "golang.org/x/net/http2", "Server.ListenAndServe", false},
		{"go no symbol", goFn("main", "", "", ""), "main", "init", false},
		{"go numbered init", goFn("main", "init", "", ""), "main", "init#1", true},
		{"empty package", app, "", "", false},
		{"java method", jndi, "org.apache.logging.log4j.core.lookup", "JndiLookup.lookup", true},
		{"java class", jndi, "org.apache.logging.log4j.core.lookup", "JndiLookup", true},
		{"java other method", jndi, "org.apache.logging.log4j.core.lookup", "JndiLookup.evaluate", false},
		{"java parent package", jndi, "org.apache.logging.log4j.core", "", false},
		{"java inner class dotted", inner, "java.util.concurrent", "ThreadPoolExecutor.Worker.run", true},
		{"java inner class", inner, "java.util.concurrent", "ThreadPoolExecutor$Worker.run", true},
		{"java outer class", inner, "java.util.concurrent", "ThreadPoolExecutor", false},
		{"java inner class only", inner, "java.util.concurrent", "ThreadPoolExecutor$Worker", true},
		{"python function", pyLoad, "yaml", "load", true},
		{"python other function", pyLoad, "yaml", "safe_load", false},
		{"python package covers submodule", pyReq, "requests", "", true},
		{"python package prefix is not a parent", pyReq, "req", "", false},
		{"python symbol needs the module", pyReq, "requests", "request", false},
		{"python method without class", pyReq, "requests.sessions", "Session.request", true},
		{"python qualified", pyQual, "flask.app", "Flask.wsgi_app", true},
		{"python qualified other class", pyQual, "flask.app", "Other.wsgi_app", false},
		{"python qualified vs function", pyQual, "flask.app", "wsgi_app", false},
		{"python class covers its methods", pyQual, "flask.app", "Flask", true},
		{"python class re-exported by the package", pyFn("langchain.chains.pal_chain.base", "PALChain.from_math_prompt", "langchain"), "langchain.chains", "PALChain", true},
		{"python class of another name", pyQual, "flask", "Quart", false},
		{"python class needs the qualified name", pyFn("langchain.chains.pal_chain.base", "from_math_prompt", "langchain"), "langchain.chains", "PALChain", false},
		{"python capitalised module, split as vulndb splits GitHub's name", pilEval, "PIL", "ImageMath.eval", true},
		{"python capitalised module, split at the module", pilEval, "PIL.ImageMath", "eval", true},
		{"python capitalised module, other function", pyFn("PIL.ImageMath", "imagemath_convert", "pillow"), "PIL", "ImageMath.eval", false},
		{"python capitalised module, function of that name in another module", pyFn("PIL.Image", "eval", "pillow"), "PIL", "ImageMath.eval", false},
		{"python capitalised module named whole", pilLength, "PIL", "ImageFont", true},
		{"python capitalised module named whole, frame without class", pilLengthShort, "PIL", "ImageFont", true},
		{"python module whose name extends the record's", pilLength, "PIL", "Image", false},
		{"python method under a capitalised module", pilLength, "PIL", "ImageFont.FreeTypeFont.getlength", true},
		{"python method under a capitalised module, frame without class", pilLengthShort, "PIL", "ImageFont.FreeTypeFont.getlength", true},
		{"python method under a capitalised module, other method", pilLength, "PIL", "ImageFont.FreeTypeFont.getmask2", false},
		{"python function of a parent module is not the method", pyLoad, "yaml.constructor", "FullConstructor.load", false},
		{"node function", lodash, "lodash", "template", true},
		{"node package", lodash, "lodash", "", true},
		{"node other function", lodash, "lodash", "merge", false},
		{"node other package", lodash, "lodash-es", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.fn.Matches(tc.pkg, tc.symbol); got != tc.want {
				t.Errorf("%+v.Matches(%q, %q) = %v, want %v", tc.fn, tc.pkg, tc.symbol, got, tc.want)
			}
		})
	}
}

// TestInPackage: a function is code of the package that holds a record's
// function when it is in the same code package; for Python, in the module
// that holds the dotted name, whichever split of it the record gives (the
// frame tells where the module ends), or when it matches (a class that the
// package re-exports from a submodule). Streaming detection and
// reachability look for matches only among such functions.
func TestInPackage(t *testing.T) {
	pilEval := pyFn("PIL.ImageMath", "eval", "pillow")
	pal := pyFn("langchain.chains.pal_chain.base", "PALChain.from_math_prompt", "langchain")
	tests := []struct {
		name        string
		fn          Func
		pkg, symbol string
		want        bool
	}{
		{"go same package", goFn("net/http", "Server.Shutdown", "stdlib", ""), "net/http", "Server.Serve", true},
		{"go other package", goFn("net/http/httputil", "ReverseProxy.ServeHTTP", "stdlib", ""), "net/http", "Server.Serve", false},
		{"java same package", javaFn("org.yaml.snakeyaml.constructor", "SafeConstructor.construct", ""), "org.yaml.snakeyaml.constructor", "Constructor$ConstructYamlObject.construct", true},
		{"python module of the function", pyFn("yaml.constructor", "construct_python_object_new", "pyyaml"), "yaml.constructor", "FullConstructor.construct_python_object_apply", true},
		{"python parent module", pyFn("yaml", "load", "pyyaml"), "yaml.constructor", "FullConstructor.construct_python_object_apply", false},
		{"python capitalised module, the function", pilEval, "PIL", "ImageMath.eval", true},
		{"python capitalised module, another function of it", pyFn("PIL.ImageMath", "imagemath_convert", "pillow"), "PIL", "ImageMath.eval", true},
		{"python capitalised module, split at the module", pyFn("PIL.ImageMath", "imagemath_convert", "pillow"), "PIL.ImageMath", "eval", true},
		{"python capitalised module, another module", pyFn("PIL.Image", "open", "pillow"), "PIL", "ImageMath.eval", false},
		{"python capitalised module named whole", pyFn("PIL.ImageFont", "FreeTypeFont.getlength", "pillow"), "PIL", "ImageFont", true},
		{"python class re-exported by the package", pal, "langchain.chains", "PALChain", true},
		{"python other code of the submodule", pyFn("langchain.chains.pal_chain.base", "helper", "langchain"), "langchain.chains", "PALChain", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.fn.InPackage(tc.pkg, tc.symbol); got != tc.want {
				t.Errorf("%+v.InPackage(%q, %q) = %v, want %v", tc.fn, tc.pkg, tc.symbol, got, tc.want)
			}
			if tc.fn.Matches(tc.pkg, tc.symbol) && !tc.fn.InPackage(tc.pkg, tc.symbol) {
				t.Errorf("%+v matches %q %q but is not in its package", tc.fn, tc.pkg, tc.symbol)
			}
		})
	}
}

// TestMatchesInFile covers records that name the file of a Node.js
// function: V8 names jsonwebtoken's exported functions of sign.js,
// verify.js and decode.js all "module.exports" (seen in a real
// @datadog/pprof profile of jsonwebtoken 8.5.1).
func TestMatchesInFile(t *testing.T) {
	verify := nodeFn("jsonwebtoken", "verify.js", "module.exports", "")
	sign := nodeFn("jsonwebtoken", "sign.js", "module.exports", "")
	tests := []struct {
		name              string
		fn                Func
		pkg, file, symbol string
		want              bool
	}{
		{name: "in its file", fn: verify, pkg: "jsonwebtoken", file: "verify.js", symbol: "module.exports", want: true},
		{name: "same name in another file", fn: sign, pkg: "jsonwebtoken", file: "verify.js", symbol: "module.exports", want: false},
		{name: "no file named", fn: sign, pkg: "jsonwebtoken", symbol: "module.exports", want: true},
		{name: "whole file", fn: verify, pkg: "jsonwebtoken", file: "verify.js", want: true},
		{name: "other file of the package", fn: sign, pkg: "jsonwebtoken", file: "verify.js", want: false},
		{name: "same file in another package", fn: nodeFn("jws", "verify.js", "module.exports", ""), pkg: "jsonwebtoken", file: "verify.js", symbol: "module.exports", want: false},
		{name: "file in a subdirectory", fn: nodeFn("jsonwebtoken", "lib/validateAsymmetricKey.js", "module.exports", ""), pkg: "jsonwebtoken", file: "validateAsymmetricKey.js", symbol: "module.exports", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.fn.Matches(tc.pkg, tc.symbol) && tc.fn.InFile(tc.file); got != tc.want {
				t.Errorf("%+v: Matches(%q, %q) && InFile(%q) = %v, want %v", tc.fn, tc.pkg, tc.symbol, tc.file, got, tc.want)
			}
		})
	}
}

// symbolPrefix escapes an import path as the linker writes it in symbol
// names (cmd/internal/objabi.PathToPrefix): dots in the last element and
// control, space, '%', '"' and non-ASCII bytes anywhere as %xx.
func symbolPrefix(path string) string {
	const hex = "0123456789abcdef"
	slash := strings.LastIndexByte(path, '/')
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c <= ' ' || (c == '.' && i > slash) || c == '%' || c == '"' || c >= 0x7F {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xF])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// TestGoVulnDBRoundTrip writes every symbol of every record in the Go
// vulnerability database snapshot the way runtime/pprof names it (pointer
// and value receiver, escaped import path, module cache file path), and
// checks that attribution gives back the record's package, module and
// symbol and that Matches accepts it.
func TestGoVulnDBRoundTrip(t *testing.T) {
	zr, err := zip.OpenReader(vulndbtest.GoSnapshot(t))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	a := New(Config{})
	symbols := 0
	for _, zf := range zr.File {
		if !strings.HasSuffix(zf.Name, ".json") {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		var e osv.Entry
		err = json.NewDecoder(rc).Decode(&e)
		rc.Close()
		if err != nil {
			t.Errorf("decode %s: %v", zf.Name, err)
			continue
		}
		for _, aff := range e.Affected {
			if aff.Package.Ecosystem != "Go" || aff.EcosystemSpecific == nil {
				continue
			}
			mod := aff.Package.Name
			for _, imp := range aff.EcosystemSpecific.Imports {
				if mod != "stdlib" && mod != "toolchain" && imp.Path != mod && !strings.HasPrefix(imp.Path, mod+"/") {
					continue // a record whose import is outside its module names no file we could build
				}
				file := goroot + imp.Path + "/x.go"
				if mod != "stdlib" && mod != "toolchain" {
					file = "/root/go/pkg/mod/" + escapeModule(t, mod) + "@v1.2.3" + strings.TrimPrefix(imp.Path, mod) + "/x.go"
				}
				for _, sym := range imp.Symbols {
					symbols++
					names := []string{symbolPrefix(imp.Path) + "." + sym}
					want := goFn(imp.Path, sym, mod, "v1.2.3")
					if recv, method, ok := strings.Cut(sym, "."); ok {
						names = append(names, symbolPrefix(imp.Path)+".(*"+recv+")."+method)
					}
					if strings.HasPrefix(sym, "init#") {
						// golang/vuln's numbered init; the compiler writes init.N.
						names, want.Symbol = []string{symbolPrefix(imp.Path) + ".init.0"}, "init"
					}
					for _, name := range names {
						f := Frame{Function: name, File: file}
						fn, ok := a.Attribute(f)
						if mod == "stdlib" || mod == "toolchain" {
							want.Version = ""
						}
						if !ok || fn != want {
							t.Errorf("%s: Attribute(%+v) = %+v, %v; want %+v", e.ID, f, fn, ok, want)
							continue
						}
						if !fn.Matches(imp.Path, sym) {
							t.Errorf("%s: %+v.Matches(%q, %q) = false", e.ID, fn, imp.Path, sym)
						}
					}
				}
			}
		}
	}
	if symbols == 0 {
		t.Fatal("the snapshot has no Go symbols")
	}
	t.Logf("%d symbols round-tripped", symbols)
}

// escapeModule writes a module path as the module cache does.
func escapeModule(t *testing.T, mod string) string {
	t.Helper()
	esc, err := module.EscapePath(mod)
	if err != nil {
		t.Fatalf("escape module path %q: %v", mod, err)
	}
	return esc
}
