package attribution

import "strings"

// Matches reports whether fn is code that a vulnerability record or a
// knowledge-base entry names: pkg is the package as Func.Package writes it
// and symbol the affected function, or "" for any code of the package.
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
func (fn Func) Matches(pkg, symbol string) bool {
	if pkg == "" {
		return false
	}
	if fn.Package != pkg && (fn.Language != Python || !isSubmodule(fn.Package, pkg) || symbol != "" && !pythonClass(symbol)) {
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
	case Python:
		if fn.Symbol == symbol {
			return true
		}
		if pythonClass(symbol) {
			return strings.HasPrefix(fn.Symbol, symbol) && len(fn.Symbol) > len(symbol) && fn.Symbol[len(symbol)] == '.'
		}
		if strings.IndexByte(fn.Symbol, '.') >= 0 {
			return false
		}
		i := strings.LastIndexByte(symbol, '.')
		return i >= 0 && symbol[i+1:] == fn.Symbol
	}
	return fn.Symbol == symbol
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

// isSubmodule reports whether the dotted module name sub is inside parent.
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
