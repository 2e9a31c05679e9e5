package attribution

import "strings"

// Matches reports whether fn is code that a vulnerability record or a
// knowledge-base entry names: pkg is the package as Func.Package writes it
// and symbol the affected function, or "" for any code of the package.
// What matches is code of the package, as InPackage tells.
//
// Symbols compare in OSV form. For Go, symbol may also be written the way
// profiles and tracebacks write it ("(*Server).ListenAndServe",
// "List[...].Push"), and a numbered init function ("init#1") matches any
// init function of the package. For Java, "$" and "." between classes are the same
// ("Outer.Inner.m" matches "Outer$Inner.m") and a symbol without a method
// ("JndiLookup") matches every method of the class. For Python, a
// package-wide match covers submodules ("requests" covers
// "requests.sessions"), a frame that carries only a function name matches a
// record's "Class.method" of that name, since py-spy does not name classes,
// and a class ("PALChain") matches its methods in the module or in its
// submodules, since packages re-export classes (GitHub names
// "langchain.chains.PALChain", defined in langchain.chains.pal_chain.base).
//
// A Python name with a symbol is also compared whole, as the dotted name
// pkg.symbol, with the frame's module and qualified name: it names the
// function, or a class or module that holds it. Where modules are
// capitalised like classes, the name does not tell where its module ends:
// GitHub's "PIL.ImageMath.eval" is the function eval of Pillow's module
// PIL.ImageMath, "PIL.ImageFont" a whole module,
// "PIL.ImageFont.FreeTypeFont.getlength" a method. The frame tells, as its
// module comes from its file, so any split of the name matches the same
// frames. A frame with only a function name (py-spy before Python 3.11)
// matches a method of that name when what lies between the frame's module
// and the method in the name is capitalised, a class as PEP 8 names them:
// so a function of that name in a parent module with capitalised
// submodules (a PIL.eval beside PIL.ImageMath.eval) would match too.
func (fn Func) Matches(pkg, symbol string) bool {
	if pkg == "" {
		return false
	}
	if fn.Language == Python {
		return fn.pythonMatchesSplit(pkg, symbol) ||
			symbol != "" && topModule(fn.Package) == topModule(pkg) && fn.pythonMatchesName(pkg+"."+symbol)
	}
	if fn.Package != pkg {
		return false
	}
	if symbol == "" {
		return true
	}
	if fn.Symbol == "" {
		return false
	}
	switch fn.Language {
	case Go:
		if fn.Symbol == symbol {
			return true
		}
		if strings.HasPrefix(symbol, "init#") {
			// golang/vuln numbers a package's init functions as SSA does
			// ("init#1"), the compiler as "init.0": which is which is not
			// knowable from a profile, so any of them matches.
			return fn.Symbol == "init"
		}
		if !strings.ContainsAny(symbol, "(*[-") {
			return false
		}
		s, ok := symbol, true
		if strings.IndexByte(s, '[') >= 0 {
			s, ok = stripBrackets(s)
		}
		if !ok {
			return false
		}
		recv, name := goSymbol(s)
		if recv == "" {
			return fn.Symbol == name
		}
		return len(fn.Symbol) == len(recv)+1+len(name) && fn.Symbol[len(recv)] == '.' &&
			strings.HasPrefix(fn.Symbol, recv) && strings.HasSuffix(fn.Symbol, name)
	case Java:
		if strings.IndexByte(symbol, '.') < 0 {
			i := strings.LastIndexByte(fn.Symbol, '.')
			return i > 0 && javaNamesEqual(fn.Symbol[:i], symbol)
		}
		return javaNamesEqual(fn.Symbol, symbol)
	}
	return fn.Symbol == symbol
}

// InPackage reports whether fn is code of the package that holds what
// Matches takes pkg and symbol to name: its running shows that package's
// code ran, and only such code can match. For Go, Java and Node.js that
// is the code package pkg. For Python it is the module that holds the
// dotted name pkg.symbol, which the frame tells as for Matches: pkg
// itself, or a module inside the name where what follows it is a function
// or starts with a class (capitalised); and whatever matches (a class a
// package re-exports from a submodule).
func (fn Func) InPackage(pkg, symbol string) bool {
	if pkg == "" {
		return false
	}
	if fn.Language != Python {
		return fn.Package == pkg
	}
	if fn.Package == pkg || fn.Matches(pkg, symbol) {
		return true
	}
	if symbol == "" || topModule(fn.Package) != topModule(pkg) {
		return false
	}
	rest, ok := pythonInside(pkg+"."+symbol, fn.Package)
	return ok && (strings.IndexByte(rest, '.') < 0 || isUpper(rest[0]))
}

// pythonMatchesSplit matches a Python frame against a module pkg and a
// symbol in it, as given.
func (fn Func) pythonMatchesSplit(pkg, symbol string) bool {
	if fn.Package != pkg && (!isSubmodule(fn.Package, pkg) || symbol != "" && !pythonClass(symbol)) {
		return false
	}
	switch {
	case symbol == "":
		return true
	case fn.Symbol == "":
		return false
	case fn.Symbol == symbol:
		return true
	case pythonClass(symbol):
		return isSubmodule(fn.Symbol, symbol)
	case strings.IndexByte(fn.Symbol, '.') >= 0:
		return false
	}
	i := strings.LastIndexByte(symbol, '.')
	return i >= 0 && symbol[i+1:] == fn.Symbol
}

// pythonMatchesName matches a Python frame against a dotted name whose
// split into module and symbol is not known.
func (fn Func) pythonMatchesName(name string) bool {
	mod, sym := fn.Package, fn.Symbol
	if sym == "" {
		return false
	}
	// The name is a module that holds the frame's, or the module's
	// function, or a class that holds the method.
	if name == mod || isSubmodule(mod, name) {
		return true
	}
	if rest, ok := pythonInside(name, mod); ok {
		if sym == rest || isSubmodule(sym, rest) {
			return true
		}
		// A frame without its class: the rest is Class.method.
		if i := strings.LastIndexByte(rest, '.'); i > 0 && strings.IndexByte(sym, '.') < 0 && rest[i+1:] == sym {
			for seg := range strings.SplitSeq(rest[:i], ".") {
				if seg == "" || !isUpper(seg[0]) {
					return false
				}
			}
			return true
		}
		return false
	}
	// A class the package above re-exports ("langchain.chains.PALChain").
	i := strings.LastIndexByte(name, '.')
	return i > 0 && pythonClass(name[i+1:]) && isSubmodule(mod, name[:i]) &&
		(sym == name[i+1:] || isSubmodule(sym, name[i+1:]))
}

// pythonInside returns what follows module mod in the dotted name, and
// whether mod is a module inside it ("PIL.ImageMath" in
// "PIL.ImageMath.eval" leaves "eval").
func pythonInside(name, mod string) (string, bool) {
	if !isSubmodule(name, mod) {
		return "", false
	}
	return name[len(mod)+1:], true
}

// topModule is the first element of a dotted Python module.
func topModule(mod string) string {
	top, _, _ := strings.Cut(mod, ".")
	return top
}

// InFile reports whether fn's code is in file, a path inside its package
// as Func.File writes it ("verify.js", "lib/parse.js"); an empty file is
// any. Records name a file where a function's name alone is ambiguous:
// V8 names a function by what it is assigned to, so jsonwebtoken's
// sign.js, verify.js and decode.js each run a "module.exports".
func (fn Func) InFile(file string) bool {
	return file == "" || fn.File == file
}

// pythonClass reports whether a Python symbol names a class alone: one
// capitalised element, as PEP 8 names classes.
func pythonClass(symbol string) bool {
	return symbol != "" && isUpper(symbol[0]) && strings.IndexByte(symbol, '.') < 0
}

// isSubmodule reports whether the dotted name sub is inside parent: a
// module in a package, a method in a class.
func isSubmodule(sub, parent string) bool {
	return len(sub) > len(parent) && sub[len(parent)] == '.' && strings.HasPrefix(sub, parent)
}

// javaNamesEqual compares Java class and method names treating "$" and "."
// as the same separator.
func javaNamesEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '$' {
			x = '.'
		}
		if y == '$' {
			y = '.'
		}
		if x != y {
			return false
		}
	}
	return true
}
