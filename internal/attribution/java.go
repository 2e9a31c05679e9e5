package attribution

import "strings"

// javaFunc parses a Java frame: "<class>.<method>" with the class as a JVM
// internal name ("org/apache/x/JndiLookup.lookup", as JFR through Pyroscope
// gives it, protocols.md §8.2) or as a dotted binary name
// ("org.apache.x.JndiLookup.lookup"). The module is the one of the jar when
// file names a jar ("lib/snakeyaml-1.33.jar",
// "app.jar!/BOOT-INF/lib/snakeyaml-1.33.jar!/org/yaml/..."), else the one of
// the longest configured package prefix. A class a shaded jar relocated is
// attributed to its original package and artifact (unshade).
func (a *Attributor) javaFunc(name, file string) (Func, bool) {
	name = trimHiddenAddress(name)
	dot := strings.LastIndexByte(name, '.')
	if dot <= 0 {
		return Func{}, false
	}
	class, method := name[:dot], javaMethod(name[dot+1:])
	if !isJavaIdent(method) && method != "<init>" && method != "<clinit>" {
		return Func{}, false
	}
	// Hidden classes of lambdas carry a counter and an address
	// ("Svc$$Lambda$669.0x0000000800fd7318", "Svc$$Lambda$4/1283928880",
	// "Svc$$Lambda.0x00007ffa600c4da0"; Pyroscope shortens them to
	// "Svc$$Lambda$_" or "Svc$$Lambda_"): all stand for one class per
	// enclosing class.
	if i := strings.Index(class, "$$Lambda"); i >= 0 {
		class = class[:i+len("$$Lambda")]
	}
	var pkg, cls string
	if i := strings.LastIndexByte(class, '/'); i >= 0 {
		pkg, cls = strings.ReplaceAll(class[:i], "/", "."), class[i+1:]
	} else {
		segs := strings.Split(class, ".")
		ci := 0
		for ci < len(segs) && (segs[ci] == "" || !isUpper(segs[ci][0])) {
			ci++
		}
		if ci == len(segs) {
			return Func{}, false
		}
		// A dotted name writes nested classes with dots, where the
		// internal name and OSV-style symbols have "$".
		pkg, cls = strings.Join(segs[:ci], "."), strings.Join(segs[ci:], "$")
	}
	cls = trimGeneratedAccessor(cls)
	if !isJavaPackage(pkg) || !isJavaIdent(cls) {
		return Func{}, false
	}
	fn := Func{Language: Java, Package: pkg, Symbol: cls + "." + method}
	// A relocated class is its library's code under another name: the
	// jar a frame names is then the one that shaded it, and its version
	// not the library's.
	if orig, module, ok := a.unshade(pkg); ok {
		fn.Package, fn.Module = orig, module
		return fn, true
	}
	if art, version, ok := jarName(file, a.javaJars); ok {
		if ga := a.javaJars[art]; ga != "" {
			fn.Module, fn.Version = ga, version
			return fn, true
		}
	}
	_, fn.Module, _ = longestPrefix(a.javaPackages, pkg, '.')
	return fn, true
}

// unshade returns the package a relocated class had before a shaded jar
// (Maven Shade plugin, Gradle Shadow) moved it, and the artifact of its
// longest known package prefix: by Config.JavaRelocations, else where a
// package element marks a relocation and the rest of the package, after at
// most two more elements (Flink's "shaded.guava31", Beam's
// "vendor.guava.v32_1_2_jre"), starts with a package of JavaPackages:
// "com.acme.shaded.org.yaml.snakeyaml", "shaded.org.yaml.snakeyaml"
// (internal names "shaded/org/yaml/…"), "io.grpc.netty.shaded.io.netty",
// "hidden.org.yaml.snakeyaml" (the Shade plugin's default shadedPattern).
// The rest must be a known package, so that the application's own
// "com.acme.shaded.util" is never taken for a library.
func (a *Attributor) unshade(pkg string) (orig, module string, ok bool) {
	if from, to, ok := longestPrefix(a.javaRelocations, pkg, '.'); ok {
		orig = to + pkg[len(from):]
		_, module, _ = longestPrefix(a.javaPackages, orig, '.')
		return orig, module, true
	}
	return relocatedIn(a.javaPackages, pkg)
}

// relocatedIn returns the rest of pkg after an element that marks a
// relocation and at most two more, when a prefix of it is a key of m, with
// that key's value.
func relocatedIn(m map[string]string, pkg string) (orig, v string, ok bool) {
	if len(m) == 0 {
		return "", "", false
	}
	for rest := pkg; ; {
		seg, after, more := strings.Cut(rest, ".")
		if !more {
			return "", "", false
		}
		rest = after
		if !relocationMarker(seg) {
			continue
		}
		for skip, cand := 0, rest; skip <= 2; skip++ {
			if _, v, ok := longestPrefix(m, cand, '.'); ok {
				return cand, v, true
			}
			var more bool
			if _, cand, more = strings.Cut(cand, "."); !more {
				break
			}
		}
	}
}

// relocationMarker reports whether a package element is one that shaded
// jars put before the packages they relocate: the Shade plugin's default
// "hidden", and the names projects give their relocations
// ("org.apache.hadoop.shaded", "io.grpc.netty.shaded",
// "org.apache.pulsar.shade", "org.apache.hadoop.thirdparty",
// "org.apache.beam.vendor", "org.apache.beam.repackaged",
// "org.gradle.internal.impldep").
func relocationMarker(seg string) bool {
	switch seg {
	case "shaded", "shade", "shadow", "hidden", "relocated", "repackaged", "vendor", "vendored", "thirdparty", "impldep":
		return true
	}
	return false
}

// trimHiddenAddress drops the address the JVM appends to the name of a
// hidden class ("java/lang/invoke/LambdaForm$MH/0x0000000800c0c000.invoke",
// which async-profiler writes "LambdaForm$MH.0x0000000800c0c000.invoke"):
// the class is the one named before it. Left in, the address was taken for
// the class or a package element, and such frames went unattributed.
func trimHiddenAddress(name string) string {
	i := max(strings.LastIndex(name, "/0x"), strings.LastIndex(name, ".0x"))
	if i <= 0 {
		return name
	}
	j := i + 3
	for j < len(name) && (isDigit(name[j]) || ('a' <= name[j] && name[j] <= 'f') || ('A' <= name[j] && name[j] <= 'F')) {
		j++
	}
	if j == i+3 || j == len(name) || name[j] != '.' {
		return name
	}
	return name[:i] + name[j:]
}

// jarName returns the artifactId and version of the innermost jar a frame's
// file names, as Maven names jars: "<artifactId>-<version>.jar", the version
// starting with a digit. An artifactId may itself have "-<digit>" in it
// ("log4j-1.2-api-2.17.1.jar", the bridge that is not log4j:log4j): the
// longest split whose artifactId is one of known is taken, else the first.
func jarName(file string, known map[string]string) (artifact, version string, ok bool) {
	if file == "" {
		return "", "", false
	}
	i := strings.LastIndex(file, ".jar")
	if i < 0 || (i+4 < len(file) && file[i+4] != '!') {
		return "", "", false
	}
	base := file[strings.LastIndexAny(file[:i], "/\\")+1 : i]
	split := -1
	for j := 0; j+1 < len(base); j++ {
		if base[j] != '-' || !isDigit(base[j+1]) {
			continue
		}
		if j == 0 {
			return "", "", false
		}
		if _, ok := known[base[:j]]; ok || split < 0 {
			split = j
		}
	}
	if split < 0 {
		return base, "", base != ""
	}
	return base[:split], base[split+1:], true
}

// javaMethod attributes a lambda body to the method that encloses it, as
// javac names it: "lambda$process$0" is in process, "lambda$static$0" in the
// static initialiser and "lambda$new$0" in a constructor.
//
// Kotlin's names are attributed the same way: a lambda compiled to a
// method ("process$lambda$0" since Kotlin 1.8.20, "process$lambda-0"
// before) is in process, and so is the body of an open suspend function
// ("process$suspendImpl"), where the vulnerable code of process runs.
func javaMethod(m string) string {
	if enclosing, ok := strings.CutSuffix(m, "$suspendImpl"); ok && enclosing != "" {
		return enclosing
	}
	// The first lambda suffix: a lambda in a lambda is
	// "process$lambda$0$lambda$1".
	if i := strings.Index(m, "$lambda"); i > 0 {
		rest := m[i+len("$lambda"):]
		if len(rest) > 1 && (rest[0] == '$' || rest[0] == '-') {
			if n, _, _ := strings.Cut(rest[1:], "$"); allDigits(n) {
				return m[:i]
			}
		}
	}
	rest, ok := strings.CutPrefix(m, "lambda$")
	if !ok {
		return m
	}
	enclosing, _, ok := strings.Cut(rest, "$")
	switch {
	case !ok || enclosing == "":
		return m
	case enclosing == "static":
		return "<clinit>"
	case enclosing == "new":
		return "<init>"
	}
	return enclosing
}

// trimGeneratedAccessor merges the numbered classes the JVM generates for
// reflection ("GeneratedMethodAccessor31", which Pyroscope shortens to
// "GeneratedMethodAccessor_") into one.
func trimGeneratedAccessor(cls string) string {
	for _, p := range [...]string{"GeneratedMethodAccessor", "GeneratedConstructorAccessor", "GeneratedSerializationConstructorAccessor"} {
		if n, ok := strings.CutPrefix(cls, p); ok && (n == "_" || allDigits(n)) {
			return p
		}
	}
	return cls
}

// javaClassIndex returns the index of the class element of a dotted Java
// name "pkg.pkg.Class.method": the first capitalised element, after only
// lowercase package elements and before at least one more element. It
// returns -1 when name has no such shape.
func javaClassIndex(name string) int {
	for i := 0; ; i++ {
		seg, rest, more := strings.Cut(name, ".")
		switch {
		case seg == "" || !isJavaIdent(seg):
			return -1
		case isUpper(seg[0]):
			if !more {
				return -1
			}
			return i
		case !isLower(seg[0]) || !more:
			return -1
		}
		name = rest
	}
}

// isJavaPackage reports whether pkg is a non-empty dotted Java package name.
func isJavaPackage(pkg string) bool {
	if pkg == "" {
		return false
	}
	for seg := range strings.SplitSeq(pkg, ".") {
		if !isJavaIdent(seg) {
			return false
		}
	}
	return true
}

// isJavaIdent reports whether s is a Java identifier ("$" included, as in
// nested and synthetic class names).
func isJavaIdent(s string) bool {
	if s == "" || isDigit(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isUpper(c) || isLower(c) || isDigit(c) || c == '_' || c == '$' || c >= 0x80) {
			return false
		}
	}
	return true
}
