package attribution

import (
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/mod/module"
)

// Pseudo-modules of the Go vulnerability database for the standard library
// and for the go command's packages (protocols.md §5.2).
const (
	goStdModule = "stdlib"
	goCmdModule = "toolchain"
)

// goFunc parses a Go symbol name as runtime/pprof writes it (the linker's
// symbol name, protocols.md §8.1): "<import path>.<symbol>", with dots in the
// last path element escaped as %2e and type arguments in brackets. file, when
// known, supplies the module and version. It writes the Func into *fn, which
// it leaves alone when it returns false: a Func returned by value was
// copied at every level up to the cache's entry (issue 11).
func (a *Attributor) goFunc(name, file string, fn *Func) bool {
	// Compiler-generated equality and hash functions of a type belong to the
	// type's package but to no symbol a record could list.
	noSymbol := false
	if rest, ok := strings.CutPrefix(name, "type:."); ok {
		_, name, ok = strings.Cut(rest, ".")
		if !ok {
			return false
		}
		noSymbol = true
	}
	s := name
	if strings.IndexByte(s, '[') >= 0 {
		// Type arguments may hold slashes and dots of their own
		// ("[go.shape.*github.com/x/y.T]"), so they go before any splitting.
		var ok bool
		if s, ok = stripBrackets(s); !ok {
			return false
		}
	}
	var pkg, sym string
	var gp *goPackage
	dot := 0 // the dot after the package, in s; -1 when s names none
	if l := a.goPackages.last.Load(); l != nil && l.sameAs(s, file) {
		// The package of the frame before, the common case: a profile
		// lists a package's functions together more often than not (of
		// go-cpu-busy's 323 functions, 204 follow one of the same package
		// and directory). This costs two comparisons and two short
		// searches, where finding the last slash of the name and the
		// file, and the package's entry, costs several times more.
		pkg, gp, dot = s[:len(l.path)], l, len(l.path)
	} else {
		slash := lastSlash(s)
		dot = strings.IndexByte(s[slash+1:], '.')
		if dot < 0 {
			// Assembly functions without a package qualifier ("gcWriteBarrier")
			// are named only by their file.
			if slash >= 0 || !isIdentifier(s) {
				return false
			}
			if pkg = goStdPackageOfFile(file); pkg == "" {
				return false
			}
			sym = s
		} else {
			dot += slash + 1
			pkg = s[:dot]
			if strings.IndexByte(pkg, '%') >= 0 {
				var err error
				if pkg, err = url.PathUnescape(pkg); err != nil {
					return false
				}
			}
		}
		gp = a.goPackages.get(pkg, file[:strings.LastIndexByte(file, '/')+1], a.goPackage)
	}
	if !gp.valid {
		return false
	}
	if noSymbol {
		sym = ""
	} else if dot >= 0 {
		rest := s[dot+1:]
		recv, name := goSymbol(rest)
		sym = name
		if recv != "" {
			if len(rest) == len(recv)+1+len(name) && rest[:len(recv)] == recv && rest[len(recv)] == '.' {
				// "T.M" as the name has it: no copy.
				sym = rest
			} else {
				sym = a.cache.join(recv, ".", name)
			}
		}
	}
	fn.Language, fn.Package, fn.Symbol, fn.Module, fn.Version = Go, pkg, sym, gp.module, gp.version
	return true
}

// lastSlash returns the index of the last slash in a Go symbol name, or
// -1. The slashes of a symbol are in its import path, near the start, and
// it has few: a search forward for each takes fewer instructions than
// strings.LastIndexByte's loop back over the symbol after them.
func lastSlash(s string) int {
	i := -1
	for {
		j := strings.IndexByte(s[i+1:], '/')
		if j < 0 {
			return i
		}
		i += j + 1
	}
}

// goPackage works out what a Go package's import path and its file's
// directory say: whether the path is valid, and the module and version
// the package is in.
func (a *Attributor) goPackage(p *goPackage) {
	if !validImportPath(p.path) {
		return
	}
	p.valid = true
	// goModule reads nothing of a file past its directory.
	p.module, p.version = a.goModule(p.path, p.dir)
}

// goPackage is a Go package as frames name it, its import path and its
// file's directory ("" when the file is not known or has none), with what
// the Attributor works out of them once.
type goPackage struct {
	path, dir string
	// verbatim is true when a name that starts with the path and a dot
	// has its package there: the path has no escape and its last element
	// no dot (gopkg.in/yaml.v2, named gopkg.in/yaml%2ev2, does). It
	// follows from the path alone, whichever frame made the entry (an
	// assembly function's, named by its file, included). Only such a
	// package is matched by the name's prefix (sameAs).
	verbatim        bool
	valid           bool
	module, version string
	// next is another directory's entry for the same path.
	next *goPackage
}

// sameAs reports whether a frame of name s (brackets stripped) and file is
// in p: s is p's path, a dot and a symbol without a slash, and file is in
// p's directory. It answers as goFunc's general path would: the last slash
// of s is then p's, and p's last element has no dot.
func (p *goPackage) sameAs(s, file string) bool {
	n := len(p.path)
	return p.verbatim && len(s) > n && s[n] == '.' && s[:n] == p.path &&
		strings.IndexByte(s[n+1:], '/') < 0 &&
		len(file) >= len(p.dir) && file[:len(p.dir)] == p.dir &&
		strings.IndexByte(file[len(p.dir):], '/') < 0
}

// goPackages remembers the Go packages an Attributor has seen, for at most
// max of them; beyond, each frame's package is worked out again. An entry
// is never changed once published (a new one is put before the entries of
// its path), so last is read without the lock. Safe for concurrent use.
// It is a memo of its own rather than a memo[K, V]: a key of two strings
// was hashed as a struct, through the map's generic path.
type goPackages struct {
	mu     sync.Mutex
	max    int
	n      int
	byPath map[string]*goPackage
	// last is the package last asked for, which goFunc tries first
	// without the lock.
	last atomic.Pointer[goPackage]
}

// get returns the entry of path and dir, worked out by compute when new.
// path and dir are strings the Attributor owns (cut from its cache's copy
// of a frame), so an entry pins no caller's buffer.
func (m *goPackages) get(path, dir string, compute func(*goPackage)) *goPackage {
	m.mu.Lock()
	first := m.byPath[path]
	for p := first; p != nil; p = p.next {
		if p.dir == dir {
			m.mu.Unlock()
			m.last.Store(p)
			return p
		}
	}
	m.mu.Unlock()
	p := &goPackage{path: path, dir: dir,
		verbatim: strings.IndexByte(path, '%') < 0 && strings.IndexByte(path[strings.LastIndexByte(path, '/')+1:], '.') < 0}
	compute(p)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n >= m.max {
		return p
	}
	if m.byPath == nil {
		m.byPath = make(map[string]*goPackage)
	}
	// Another goroutine may have added the same package meanwhile; a
	// second entry answers the same.
	p.next = m.byPath[path]
	m.byPath[path] = p
	m.n++
	m.last.Store(p)
	return p
}

// stripBrackets removes every bracketed part of s, nested ones included, and
// reports false when the brackets do not balance.
func stripBrackets(s string) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '[':
			depth++
		case c == ']':
			if depth--; depth < 0 {
				return "", false
			}
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String(), depth == 0
}

// goSymbol turns the part of a Go symbol name after the package into the
// vulndb form "Func" or "Recv.Method" (golang/vuln dbFuncName): pointer
// receivers lose "(*" and ")", closures (".func1", ".func1.2"), goroutine
// and defer wrappers and numbered init functions are attributed to the
// function that encloses them, and "-fm" (method value) and "-rangeN"
// (range-over-func body) suffixes are dropped. Type arguments are gone
// already. The symbol is returned in two parts, to be joined with a dot
// (so that the caller decides where its bytes go), or as name alone when
// recv is ""; name is "" when the name fits no symbol.
func goSymbol(rest string) (recv, name string) {
	if recv, name, ok := goSymbolPlain(rest); ok {
		return recv, name
	}
	return goSymbolChain(rest)
}

// goSymbolChain is goSymbol for any shape.
func goSymbolChain(rest string) (recv, name string) {
	if r, ok := strings.CutPrefix(rest, "glob.."); ok && strings.IndexByte(r, '.') < 0 {
		// "glob..func1": a closure in a package-level variable's
		// initialiser (before Go 1.22), enclosed by no function.
		return "", ""
	}
	// A closure defined in an inlined function is named after the chain of
	// inlining: "main.func5.Seq.1" is Seq's closure inlined into main's,
	// "(*encoder).marshal.(*encoder).mapv.func1" is mapv's inlined into
	// marshal. The last run of names between generated ones owns the code.
	// The runs and units live in arrays on the stack: a Go symbol seldom has
	// more than a few elements, and this runs for every new frame.
	var runs [2][8]string
	k := 0
	var last, cur []string
	cur = runs[k][:0]
	for t := range strings.SplitSeq(rest, ".") {
		t = trimGoSuffixes(t)
		if t == "" {
			return "", ""
		}
		if isGoGenerated(t) {
			if len(cur) > 0 {
				last = cur
				k ^= 1
				cur = runs[k][:0]
			}
			continue
		}
		cur = append(cur, t)
	}
	if len(cur) > 0 {
		last = cur
	}
	if len(last) == 0 {
		return "", ""
	}
	// A unit is a function {"", name} or a method of a pointer receiver
	// {recv, name}.
	var unitBuf [8][2]string
	units := unitBuf[:0]
	for i := 0; i < len(last); i++ {
		t := last[i]
		if recv, ok := goReceiver(t); ok {
			if i+1 == len(last) || !isIdentifier(last[i+1]) {
				return "", ""
			}
			units = append(units, [2]string{recv, last[i+1]})
			i++
			continue
		}
		if !isIdentifier(t) {
			return "", ""
		}
		units = append(units, [2]string{"", t})
	}
	u := units[len(units)-1]
	if u[0] != "" || len(units) == 1 {
		return u[0], u[1]
	}
	// Without a pointer receiver, "A.B" is a value-receiver method, or a
	// function B inlined into A; the name cannot tell which, and a longer
	// run ends in one of the two.
	prev := units[len(units)-2]
	if prev[0] != "" {
		return prev[0] + "." + prev[1], u[1] // seldom: a function inlined into a method
	}
	return prev[1], u[1]
}

// goSymbolPlain is goSymbol for the shapes most symbols have, "F", "T.M"
// and "(*T).M" without generated elements or suffixes, in one pass over
// the bytes; ok is false for every other shape, which goSymbol's general
// path takes. It runs for every new frame (issue 11): splitting first and
// checking each element after took several passes.
func goSymbolPlain(rest string) (recv, name string, ok bool) {
	ptr := len(rest) > 2 && rest[0] == '(' && rest[1] == '*'
	i := 0
	if ptr {
		i = 2
	}
	dot := -1
	for ; i < len(rest); i++ {
		c := rest[i]
		if isIdentByte(c) {
			continue
		}
		if dot >= 0 {
			return "", "", false
		}
		switch {
		case ptr && c == ')' && i+1 < len(rest) && rest[i+1] == '.':
			recv = rest[2:i]
			i++
		case !ptr && c == '.':
			recv = rest[:i]
		default:
			return "", "", false
		}
		dot = i
	}
	name = rest[dot+1:]
	if ptr && dot < 0 || !identStart(name) || isGoGenerated(name) {
		return "", "", false
	}
	if dot >= 0 && (!identStart(recv) || !ptr && isGoGenerated(recv)) {
		return "", "", false
	}
	return recv, name, true
}

// trimGoSuffixes drops the compiler's "-fm" (method value wrapper) and
// "-rangeN" (range-over-func loop body) suffixes from one name element.
func trimGoSuffixes(t string) string {
	for {
		i := strings.LastIndexByte(t, '-')
		if i < 0 {
			return t
		}
		suf := t[i+1:]
		if suf != "fm" && !(strings.HasPrefix(suf, "range") && allDigits(suf[len("range"):])) {
			return t
		}
		t = t[:i]
	}
}

// isGoGenerated reports whether a name element was made up by the compiler
// for code inside the preceding function: closures "func1" and their nested
// "1", goroutine and defer wrappers "gowrap1" / "deferwrap1", and the "0" of
// numbered init functions "init.0".
func isGoGenerated(t string) bool {
	if t == "" {
		return false
	}
	var n string
	var ok bool
	switch t[0] {
	case 'f':
		n, ok = strings.CutPrefix(t, "func")
	case 'g':
		n, ok = strings.CutPrefix(t, "gowrap")
	case 'd':
		n, ok = strings.CutPrefix(t, "deferwrap")
	default:
		n, ok = t, true
	}
	return ok && allDigits(n)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// goReceiver returns T for a pointer receiver element "(*T)".
func goReceiver(t string) (string, bool) {
	r, ok := strings.CutPrefix(t, "(*")
	if !ok {
		return "", false
	}
	r, ok = strings.CutSuffix(r, ")")
	return r, ok && isIdentifier(r)
}

// goModule finds the module of a package: from the module@version element
// of its file (module cache and -trimpath paths), else the longest
// configured module path, else "stdlib" for paths whose first element has no
// dot.
func (a *Attributor) goModule(pkg, file string) (mod, version string) {
	if mod, version = a.goModuleOfFile(pkg, file); mod != "" {
		return mod, version
	}
	key := pkg
	if pkg == "main" {
		// A -trimpath build names main's files by import path.
		key = ""
		if i := strings.LastIndexByte(file, '/'); i > 0 && file[0] != '/' {
			key = file[:i]
		}
	}
	if m, _, ok := longestPrefix(a.goModules, key, '/'); ok {
		return m, ""
	}
	if first, _, _ := strings.Cut(pkg, "/"); pkg != "main" && !strings.Contains(first, ".") {
		if first == "cmd" {
			return goCmdModule, ""
		}
		return goStdModule, ""
	}
	return "", ""
}

// goModuleOfFile reads module and version from a file path that contains
// "<module>@<version>/": "$GOMODCACHE/gopkg.in/yaml.v3@v3.0.1/decode.go", or
// "gopkg.in/yaml.v3@v3.0.1/decode.go" with -trimpath. The module cache
// escapes capitals ("github.com/!azure/..."), so the package's prefixes are
// compared in that form; only the one that matches is checked as a module
// path, once per distinct module.
func (a *Attributor) goModuleOfFile(pkg, file string) (mod, version string) {
	for rest, off := file, 0; ; {
		at := strings.IndexByte(rest, '@')
		if at < 0 {
			return "", ""
		}
		pre := file[:off+at]
		ver, _, ok := strings.Cut(rest[at+1:], "/")
		off += at + 1
		rest = rest[at+1:]
		if !ok || ver == "" {
			continue
		}
		// Without a "!", unescaping gives ver back, and a version that
		// fails the check is kept as it is anyway.
		if strings.IndexByte(ver, '!') >= 0 {
			if v, err := module.UnescapeVersion(ver); err == nil {
				ver = v
			}
		}
		if pkg == "main" {
			// The main package's import path is not in its symbols; the
			// module cache layout still names the module.
			if i := strings.LastIndex(pre, "/pkg/mod/"); i >= 0 {
				pre = pre[i+len("/pkg/mod/"):]
			} else if strings.HasPrefix(pre, "/") {
				continue
			}
			if m, err := module.UnescapePath(pre); err == nil {
				return m, ver
			}
			continue
		}
		for p := pkg; p != ""; {
			if hasEscapedSuffix(pre, p) && a.modulePaths.get(p, validModulePath) {
				return p, ver
			}
			i := strings.LastIndexByte(p, '/')
			if i < 0 {
				break
			}
			p = p[:i]
		}
	}
}

// hasEscapedSuffix reports whether dir ends with the path element or
// elements of p as module.EscapePath writes them, each capital letter as
// "!" and its lowercase letter. For a p that is not a valid module path the
// answer means nothing: EscapePath refuses such paths.
func hasEscapedSuffix(dir, p string) bool {
	if strings.IndexByte(dir, '!') < 0 {
		// Nothing in dir is escaped, as in most module caches: p matches
		// only verbatim and without capitals.
		n := len(dir) - len(p)
		if n < 0 || dir[n:] != p || n > 0 && dir[n-1] != '/' {
			return false
		}
		for i := 0; i < len(p); i++ {
			if isUpper(p[i]) {
				return false
			}
		}
		return true
	}
	j := len(dir)
	for i := len(p) - 1; i >= 0; i-- {
		c := p[i]
		if isUpper(c) {
			if j < 2 || dir[j-1] != c+('a'-'A') || dir[j-2] != '!' {
				return false
			}
			j -= 2
			continue
		}
		if j < 1 || dir[j-1] != c {
			return false
		}
		j--
	}
	return j == 0 || dir[j-1] == '/'
}

// validImportPath reports whether p is a valid import path, as
// module.CheckImportPath decides. Most paths are made of lowercase
// letters, digits, dots, dashes and underscores, and for those it answers
// itself: x/mod compares every element with Windows' reserved names,
// which costs more than the rest of attributing a frame (issue 11).
func validImportPath(p string) bool {
	if plainImportPath(p) {
		return true
	}
	return module.CheckImportPath(p) == nil
}

// plainImportPath reports whether p is certainly a valid import path: its
// elements are non-empty, of ASCII letters, digits, ".", "-" and "_",
// neither all dots nor ending with one, p does not start with "-", and no
// element is, before its first dot, three or four letters that may be a
// reserved Windows name ("con", "nul", "com1", ...). It leaves everything
// else (such as "~" and "+", which have rules of their own) to
// module.CheckImportPath.
func plainImportPath(p string) bool {
	if p == "" || p[0] == '-' {
		return false
	}
	// One pass over the bytes, an element ending at each "/" and at the
	// end: this runs for every new frame.
	start, dot := 0, -1 // the current element's start and first dot
	for i := 0; i <= len(p); i++ {
		c := byte('/')
		if i < len(p) {
			c = p[i]
		}
		switch {
		case c == '/':
			if i == start || p[i-1] == '.' {
				return false
			}
			short := p[start:i]
			if dot >= 0 {
				short = p[start:dot]
			}
			if (len(short) == 3 || len(short) == 4) && windowsReserved(short) {
				return false
			}
			start, dot = i+1, -1
		case c == '.':
			if dot < 0 {
				dot = i
			}
		case !(isLower(c) || isUpper(c) || isDigit(c) || c == '-' || c == '_'):
			return false
		}
	}
	return true
}

// windowsReserved reports whether s, of letters, digits, "-" and "_",
// starts with the first three letters of a reserved Windows name in any
// case. Setting bit 5 lowers ASCII capitals and maps no other byte s may
// hold to a lowercase letter.
func windowsReserved(s string) bool {
	switch [3]byte{s[0] | 0x20, s[1] | 0x20, s[2] | 0x20} {
	case [3]byte{'c', 'o', 'n'}, [3]byte{'p', 'r', 'n'}, [3]byte{'a', 'u', 'x'},
		[3]byte{'n', 'u', 'l'}, [3]byte{'c', 'o', 'm'}, [3]byte{'l', 'p', 't'}:
		return true
	}
	return false
}

// validModulePath reports whether p is a valid module path, as
// module.CheckPath decides, answering itself for plain paths
// (plainModulePath): x/mod's check costs thousands of instructions, once
// for each module of a new Attributor (issue 11).
func validModulePath(p string) bool {
	return plainModulePath(p) || module.CheckPath(p) == nil
}

// plainModulePath reports whether p is certainly a valid module path: a
// plain import path (plainImportPath) whose elements start with no dot,
// whose first element has a dot and only lowercase letters, digits, dots
// and dashes, and whose major version suffix, if any, is one
// module.SplitPathVersion takes ("/v2", gopkg.in's ".v3"), as
// module.CheckPath asks last.
func plainModulePath(p string) bool {
	if !plainImportPath(p) || p[0] == '.' || strings.Contains(p, "/.") {
		return false
	}
	first, _, _ := strings.Cut(p, "/")
	if strings.IndexByte(first, '.') < 0 {
		return false
	}
	for i := 0; i < len(first); i++ {
		if c := first[i]; !(isLower(c) || isDigit(c) || c == '.' || c == '-') {
			return false
		}
	}
	_, _, ok := module.SplitPathVersion(p)
	return ok
}

// goStdPackageOfFile returns the standard-library package directory of a
// GOROOT file ("/usr/local/go/src/runtime/asm_amd64.s" or, with -trimpath,
// "runtime/asm_amd64.s"), or "" when the file is not in the standard library.
func goStdPackageOfFile(file string) string {
	dir := file
	if i := strings.LastIndexByte(dir, '/'); i >= 0 {
		dir = dir[:i]
	} else {
		return ""
	}
	if i := strings.LastIndex(dir, "/src/"); i >= 0 {
		dir = dir[i+len("/src/"):]
	} else if strings.HasPrefix(dir, "/") {
		return ""
	}
	first, _, _ := strings.Cut(dir, "/")
	if !goStdFirstElem(first) || !validImportPath(dir) {
		return ""
	}
	return dir
}

// goStdFirstElem reports whether elem is the first element of an import
// path of the Go distribution (go list std cmd, Go 1.26).
func goStdFirstElem(elem string) bool {
	switch elem {
	case "archive", "bufio", "bytes", "cmd", "cmp", "compress", "container", "context", "crypto",
		"database", "debug", "embed", "encoding", "errors", "expvar", "flag", "fmt", "go",
		"hash", "html", "image", "index", "internal", "io", "iter", "log", "maps", "math",
		"mime", "net", "os", "path", "plugin", "reflect", "regexp", "runtime", "slices",
		"sort", "strconv", "strings", "structs", "sync", "syscall", "testing", "text", "time",
		"unicode", "unique", "unsafe", "vendor", "weak":
		return true
	}
	return false
}
