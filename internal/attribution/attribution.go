package attribution

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"golang.org/x/mod/module"
)

// ErrInvalidConfig is wrapped by every error Config.Validate returns.
var ErrInvalidConfig = errors.New("invalid attribution config")

// Language is the programming language a frame belongs to.
type Language uint8

// Languages recognised in profile frames.
const (
	Unknown Language = iota
	Go
	Java
	Python
	Node
)

// String returns the lowercase language name used in reports ("go", "java",
// "python", "node"), or "" for Unknown.
func (l Language) String() string {
	switch l {
	case Go:
		return "go"
	case Java:
		return "java"
	case Python:
		return "python"
	case Node:
		return "node"
	}
	return ""
}

// Func is the code a frame belongs to, named the way vulnerability records
// and package inventories name it.
type Func struct {
	// Language is the frame's language.
	Language Language
	// Package is the unit vulnerable symbols are listed in: the Go import
	// path (unescaped), the dotted Java package, the dotted Python module
	// (from the file path) or the npm package name with its @scope/. It is
	// empty for first-party code that belongs to no package (a Node.js
	// script outside node_modules, Node.js core).
	Package string
	// Symbol is the function in OSV form: Go "Func" or "Recv.Method"
	// (pointer and type parameters dropped; closures, method values and
	// wrappers attributed to the enclosing function); Java "Class.method"
	// with inner classes as "Outer$Inner" and lambda bodies attributed to
	// the enclosing method; Python the function name as the profiler gives
	// it ("func", "<module>", or "Class.method" when the profiler gives a
	// qualified name, nested functions attributed to the enclosing one);
	// Node.js the function name ("(anonymous)" included).
	Symbol string
	// File is, for Node.js code of a package, the script's path inside the
	// package ("verify.js", "lib/parse.js"): V8 names functions by what
	// they are assigned to, so the same name ("module.exports") is a
	// different function in each file. Empty elsewhere.
	File string
	// Module is the distribution the package ships in: the Go module path
	// ("stdlib" for the standard library, as in the Go vulnerability
	// database), the Maven "group:artifact", the normalized PyPI
	// distribution name, or the npm package name. It is empty when it
	// cannot be told (standard libraries other than Go's, first-party code
	// without a configured module).
	Module string
	// Version is the module version when the file path shows it (Go module
	// cache and -trimpath paths, pnpm and Yarn PnP store paths, jar names).
	Version string
	// FirstParty is true for the application's own code, which ships in
	// no package: a Node.js script outside node_modules named by absolute
	// path or URL (Node.js core, "node:events" or before Node.js 16
	// "events.js", is not), a Python file outside site-packages,
	// dist-packages, wheel, egg and zip archives and the standard
	// library, and code under Config.FirstParty. Such code has no Module
	// and is not an unknown package.
	FirstParty bool
}

// Config is what attribution knows about the code of a service beyond the
// frames themselves, usually taken from its SBOM, scanner findings or build
// info. The zero Config is valid.
type Config struct {
	// GoModules are module paths, matched as the longest prefix of a
	// package's import path when its file path carries no module@version
	// (plain builds of vendored or main-module code).
	GoModules []string
	// JavaPackages maps a Java package prefix (dotted, matched on whole
	// segments, longest first) to the Maven "group:artifact" that ships it.
	JavaPackages map[string]string
	// JavaRelocations maps a Java package prefix that a shaded jar
	// relocated its classes to (dotted, matched on whole segments, longest
	// first) to the prefix they had before ("com.example.libs.yaml" ->
	// "org.yaml.snakeyaml", as the Maven Shade plugin's shadedPattern and
	// pattern say). Frames under it are attributed to the original
	// package, which vulnerability records name, and its artifact in
	// JavaPackages. Relocations that keep the original package after a
	// marker element ("com.example.shaded.org.yaml.snakeyaml") are found
	// without it.
	JavaRelocations map[string]string
	// PythonDists maps a Python module to its PyPI distribution: a
	// top-level import name ("yaml" -> "PyYAML") or a dotted module of a
	// namespace package that several distributions share
	// ("azure.storage.blob" -> "azure-storage-blob"); the longest listed
	// prefix of a frame's module wins. Modules not listed fall back to
	// well-known distributions and then to the top-level name itself.
	// The dotted entries also put back the namespace that py-spy's short
	// file names drop when its directories have no __init__.py (PEP 420):
	// "blob/_blob_client.py" is azure.storage.blob._blob_client when an
	// entry gives "blob" the one namespace "azure.storage", and neither a
	// top-level entry, FirstParty nor a standard-library module (but a
	// single-file one, such as queue) claims the name.
	PythonDists map[string]string
	// FirstParty are the code packages of the application itself, as
	// prefixes matched on whole elements: dotted Java packages and Python
	// modules ("com.example.orders"), Go import paths
	// ("example.com/shop"). Code under them that no module claims is
	// labelled first-party. Node.js and Python code outside their package
	// directories is first-party without it.
	FirstParty []string
	// MaxCached bounds the number of distinct frames cached, and apart
	// from them the number of distinct Go module paths whose validity is
	// remembered; frames beyond it are attributed, and paths checked, on
	// every call. Zero means DefaultMaxCached. The bound keeps a
	// long-running server safe from streams of unique names.
	MaxCached int
}

// DefaultMaxCached is the cache bound used when Config.MaxCached is zero.
// One entry costs a few hundred bytes with its strings, so the default
// bounds the cache at a few hundred MiB, far above the distinct frames of
// real services.
const DefaultMaxCached = 1 << 20

// Validate reports every malformed entry of c, each naming the field and the
// entry, joined in one error that wraps ErrInvalidConfig. Malformed entries
// are harmless to New (they never match), so a caller may log and go on.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	for i, m := range c.GoModules {
		if err := module.CheckImportPath(m); err != nil {
			bad("go_modules[%d] %q: %v", i, m, err)
		}
	}
	for _, pkg := range slices.Sorted(maps.Keys(c.JavaPackages)) {
		ga := c.JavaPackages[pkg]
		if !isJavaPackage(pkg) {
			bad("java_packages[%q]: not a dotted Java package name", pkg)
		}
		g, a, ok := strings.Cut(ga, ":")
		if !ok || g == "" || a == "" || strings.Contains(a, ":") {
			bad("java_packages[%q] = %q: want group:artifact", pkg, ga)
		}
	}
	for _, from := range slices.Sorted(maps.Keys(c.JavaRelocations)) {
		to := c.JavaRelocations[from]
		if !isJavaPackage(from) {
			bad("java_relocations[%q]: not a dotted Java package name", from)
		}
		if !isJavaPackage(to) {
			bad("java_relocations[%q] = %q: not a dotted Java package name", from, to)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.PythonDists)) {
		dist := c.PythonDists[name]
		if !isPythonModule(name) {
			bad("python_dists[%q]: not a Python module name", name)
		}
		if dist == "" {
			bad("python_dists[%q]: empty distribution name", name)
		}
	}
	for i, p := range c.FirstParty {
		if p == "" || strings.ContainsAny(p, " \t") || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.HasSuffix(p, "/") {
			bad("first_party[%d] %q: not a package name", i, p)
		}
	}
	if c.MaxCached < 0 {
		bad("max_cached %d: must not be negative", c.MaxCached)
	}
	return errors.Join(errs...)
}

// Attributor attributes frames and caches the result per distinct frame.
// It is safe for concurrent use; create one per analysis or stream, since
// the configuration it was made with decides the results it caches.
type Attributor struct {
	goModules       map[string]struct{}
	javaPackages    map[string]string
	javaRelocations map[string]string
	pythonDists     map[string]string
	// pythonNamespaces maps an element of a dotted module of pythonDists
	// to the namespaces that precede it there (pythonNamespace).
	pythonNamespaces claims
	// javaJars maps an artifactId to the "group:artifact" of
	// javaPackages, for frames that name their jar; "" when two groups
	// ship an artifact of that name.
	javaJars   map[string]string
	firstParty map[string]struct{}
	cache      *cache
	// goPackages remembers what a Go package's import path and directory
	// say, and modulePaths which Go module paths are valid, within the
	// same bound as cache.
	goPackages  *goPackages
	modulePaths *memo[string, bool]
}

// New returns an Attributor for cfg. It copies what it keeps of cfg, so the
// caller may change cfg afterwards.
func New(cfg Config) *Attributor {
	// Maps are made only for what the configuration holds: an Attributor
	// per small profile would otherwise allocate six empty ones.
	a := &Attributor{
		goModules:       makeMap[struct{}](len(cfg.GoModules)),
		javaPackages:    makeMap[string](len(cfg.JavaPackages)),
		javaRelocations: makeMap[string](len(cfg.JavaRelocations)),
		pythonDists:     makeMap[string](len(cfg.PythonDists)),
		javaJars:        makeMap[string](len(cfg.JavaPackages)),
		firstParty:      makeMap[struct{}](len(cfg.FirstParty)),
	}
	for from, to := range cfg.JavaRelocations {
		a.javaRelocations[from] = to
	}
	for _, p := range cfg.FirstParty {
		a.firstParty[p] = struct{}{}
	}
	for _, m := range cfg.GoModules {
		a.goModules[m] = struct{}{}
	}
	for pkg, ga := range cfg.JavaPackages {
		a.javaPackages[pkg] = ga
		_, art, _ := strings.Cut(ga, ":")
		if have, ok := a.javaJars[art]; ok && have != ga {
			a.javaJars[art] = ""
		} else {
			a.javaJars[art] = ga
		}
	}
	for name, dist := range cfg.PythonDists {
		a.pythonDists[name] = normalizePyPI(dist)
		a.addPythonNamespaces(name)
	}
	limit := cfg.MaxCached
	if limit <= 0 {
		limit = DefaultMaxCached
	}
	a.cache = newCache(limit)
	a.goPackages = &goPackages{max: limit}
	a.modulePaths = newMemo[string, bool](limit)
	return a
}

// Attribute returns the code f belongs to, and false when f cannot be
// attributed to any language (native code, bare addresses, "[unknown]").
// Go runtime frames are attributed, to the standard library. Each distinct
// frame is parsed once; later calls are served from the cache without
// locking or allocating.
func (a *Attributor) Attribute(f Frame) (Func, bool) {
	h := a.cache.hash(f)
	if e := a.cache.get(f, h); e != nil {
		return e.fn, e.ok
	}
	// Copy the key, both strings together, so that the cache never pins
	// the caller's buffers (a decoded profile) and every string in the
	// Func derives from the copy or is the cache's own.
	both := a.cache.join(f.Function, "", f.File)
	// The entry is built in place and copied once, into the cache.
	e := entry{hash: h, frame: Frame{Function: both[:len(f.Function)], File: both[len(f.Function):]}}
	e.ok = a.attribute(e.frame, &e.fn)
	if e.ok && !e.fn.FirstParty && e.fn.Module == "" && len(a.firstParty) > 0 {
		sep := byte('.')
		if e.fn.Language == Go {
			sep = '/'
		}
		_, _, e.fn.FirstParty = longestPrefix(a.firstParty, e.fn.Package, sep)
	}
	if p := a.cache.add(&e); p != nil {
		return p.fn, p.ok
	}
	return e.fn, e.ok
}

// attribute decides the language from the file name when it tells, and from
// the shape of the function name otherwise, and writes the Func into *fn,
// which is zero, unless it returns false.
func (a *Attributor) attribute(f Frame, fn *Func) bool {
	if f.Function == "" {
		return false
	}
	ok := false
	switch fileLanguage(f.File) {
	case Go:
		return a.goFunc(f.Function, f.File, fn)
	case Python:
		*fn, ok = a.pythonFunc(f.Function, f.File)
	case Node:
		*fn, ok = a.nodeFunc(f.Function, f.File)
	case Java:
		*fn, ok = a.javaFunc(f.Function, f.File)
	default:
		switch nameLanguage(f.Function) {
		case Go:
			return a.goFunc(f.Function, "", fn)
		case Java:
			*fn, ok = a.javaFunc(f.Function, "")
		}
	}
	return ok
}

// fileLanguage tells the language from a frame's file name, or Unknown when
// the file is absent or does not tell.
func fileLanguage(file string) Language {
	switch {
	case file == "":
		return Unknown
	case strings.HasSuffix(file, ".go"), strings.HasSuffix(file, ".s"), file == "<autogenerated>":
		return Go
	case strings.HasSuffix(file, ".py"), strings.HasSuffix(file, ".pyx"),
		strings.HasPrefix(file, "<frozen ") && strings.HasSuffix(file, ">"):
		return Python
	case strings.Contains(file, "node_modules/"), strings.HasPrefix(file, "file://"), strings.HasPrefix(file, "node:"),
		strings.HasSuffix(file, ".js"), strings.HasSuffix(file, ".mjs"), strings.HasSuffix(file, ".cjs"),
		strings.HasSuffix(file, ".ts"), strings.HasSuffix(file, ".mts"), strings.HasSuffix(file, ".cts"),
		strings.HasSuffix(file, ".jsx"), strings.HasSuffix(file, ".tsx"):
		return Node
	case strings.HasSuffix(file, ".java"), strings.HasSuffix(file, ".kt"), strings.HasSuffix(file, ".scala"),
		strings.HasSuffix(file, ".groovy"), strings.HasSuffix(file, ".jar"), strings.Contains(file, ".jar!/"):
		return Java
	}
	return Unknown
}

// nameLanguage tells Go from Java by the shape of a function name that came
// without a usable file name (JFR frames never have one). Go's import paths
// start with a domain or a standard-library element and its package names
// are lowercase; Java class names are capitalised and its internal names
// have no dots before the class.
func nameLanguage(name string) Language {
	name = trimHiddenAddress(name)
	if strings.Contains(name, "(*") || strings.Contains(name, "[go.shape.") ||
		strings.Contains(name, "%2e") || strings.HasSuffix(name, "-fm") {
		return Go
	}
	if strings.Contains(name, "$$Lambda") {
		return Java
	}
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		first, _, _ := strings.Cut(name, "/")
		last := name[i+1:]
		if last == "" {
			return Unknown
		}
		if strings.Contains(first, ".") {
			return Go // a domain: Java internal names have no dots before the class
		}
		if isUpper(last[0]) || strings.Contains(last, "$") {
			return Java
		}
		if goStdFirstElem(first) {
			return Go
		}
		return Unknown
	}
	pkg, rest, ok := strings.Cut(name, ".")
	if !ok || rest == "" {
		return Unknown
	}
	// "io.netty.channel.nio.NioEventLoop.run" is Java although "io" is a Go
	// package: a Go symbol never has two lowercase elements before a
	// capitalised one ("time.Time.Format" has one).
	ci := javaClassIndex(name)
	switch {
	case ci >= 2:
		return Java
	case pkg == "main" || goStdFirstElem(pkg):
		return Go
	case ci == 1:
		return Java
	}
	return Unknown
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }
func isLower(c byte) bool { return 'a' <= c && c <= 'z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isIdentifier reports whether s is an ASCII identifier; names outside ASCII
// are accepted as they are, since Go, Java and Python all allow them.
func isIdentifier(s string) bool {
	if s == "" || isDigit(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIdentByte(s[i]) {
			return false
		}
	}
	return true
}

// isIdentByte reports whether c may be in an ASCII identifier, or is a
// byte of a name outside ASCII (isIdentifier).
func isIdentByte(c byte) bool {
	return isLower(c) || isUpper(c) || isDigit(c) || c == '_' || c >= 0x80
}

// identStart reports whether s may be an identifier whose bytes are
// known to be isIdentByte's: it is not empty and starts with no digit.
func identStart(s string) bool { return s != "" && !isDigit(s[0]) }

// isPythonModule reports whether s is a dotted Python module name.
func isPythonModule(s string) bool {
	for seg := range strings.SplitSeq(s, ".") {
		if !isIdentifier(seg) {
			return false
		}
	}
	return true
}

// makeMap returns a map for n entries, or nil for none: reading a nil
// map finds nothing.
func makeMap[V any](n int) map[string]V {
	if n == 0 {
		return nil
	}
	return make(map[string]V, n)
}

// claims maps names (packages, modules) to the distinct owners
// (artifacts, distributions, namespaces) that claim them.
type claims map[string][]string

// add records that owner claims name.
func (c claims) add(name, owner string) {
	if !slices.Contains(c[name], owner) {
		c[name] = append(c[name], owner)
	}
}

// sole returns the names that one owner alone claims, each with its
// owner.
func (c claims) sole() map[string]string {
	out := make(map[string]string, len(c))
	for name, owners := range c {
		if len(owners) == 1 {
			out[name] = owners[0]
		}
	}
	return out
}

// longestPrefix returns the value of the longest key of m that equals s or
// is a prefix of s ending at a sep boundary.
func longestPrefix[V any](m map[string]V, s string, sep byte) (string, V, bool) {
	for p := s; p != "" && len(m) > 0; {
		if v, ok := m[p]; ok {
			return p, v, true
		}
		i := strings.LastIndexByte(p, sep)
		if i < 0 {
			break
		}
		p = p[:i]
	}
	var zero V
	return "", zero, false
}

// jdkPackages are the prefixes of the JDK's own packages: the modules of
// JDK 17 (its jmods) hold no others.
var jdkPackages = [...]string{"java", "javax", "jdk", "sun", "com.sun",
	"org.w3c.dom", "org.xml.sax", // java.xml
	"org.jcp.xml.dsig.internal", // java.xml.crypto
	"org.ietf.jgss",             // java.security.jgss
	"netscape.javascript",       // jdk.jsobject
}

// Runtime reports whether f is code of the language's runtime, which ships
// in no package: Go's standard library, the JDK's packages (jdkPackages),
// CPython's standard library and frozen modules, and Node.js core.
func (f Func) Runtime() bool {
	switch f.Language {
	case Go:
		return f.Module == goStdModule
	case Java:
		for _, p := range jdkPackages {
			if f.Package == p || strings.HasPrefix(f.Package, p+".") {
				return true
			}
		}
	case Python:
		top, _, _ := strings.Cut(f.Package, ".")
		return f.Module == "" && !f.FirstParty && pythonStdlib(top)
	case Node:
		return f.Package == "" && !f.FirstParty
	}
	return false
}

// Unattributed reports whether f is library code whose distribution is
// not known: neither a module's, the application's nor the runtime's (a
// Java class of an artifact whose packages no configured prefix covers).
// A vulnerable package may hide in such code.
func (f Func) Unattributed() bool {
	return f.Module == "" && !f.FirstParty && !f.Runtime()
}
