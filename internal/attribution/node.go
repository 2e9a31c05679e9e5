package attribution

import (
	"net/url"
	"strings"
)

// nodeFunc attributes a Node.js frame by its script (protocols.md §8.4): the
// package is the last "node_modules/<name>/" or "node_modules/@scope/<name>/"
// segment of the path or file:// URL, and the File the rest of the path. Scripts outside node_modules are
// attributed to no package: the application's own, which are first-party,
// and Node.js core modules ("node:...", relative names before Node.js 16),
// which are not.
func (a *Attributor) nodeFunc(name, file string) (Func, bool) {
	fn := Func{Language: Node, Symbol: name}
	path := file
	if rest, ok := strings.CutPrefix(path, "file://"); ok {
		path = rest
		if u, err := url.PathUnescape(rest); err == nil {
			path = u
		}
	}
	path = strings.ReplaceAll(path, `\`, "/") // Windows paths
	i := strings.LastIndex(path, "node_modules/")
	if i < 0 || (i > 0 && path[i-1] != '/') {
		fn.FirstParty = nodeApplication(path)
		return fn, true
	}
	first, rest, ok := strings.Cut(path[i+len("node_modules/"):], "/")
	if !ok || first == "" || first[0] == '.' {
		return fn, true
	}
	pkg, inPkg := first, rest
	if first[0] == '@' {
		second, rest, ok := strings.Cut(rest, "/")
		if !ok || second == "" || len(first) == 1 {
			return fn, true
		}
		pkg, inPkg = first+"/"+second, rest
	}
	fn.Package, fn.Module, fn.File = pkg, pkg, inPkg
	fn.Version = nodeStoreVersion(path[:i], pkg)
	return fn, true
}

// nodeStoreVersion reads a package's version from the package-manager store
// directory that holds its node_modules: pnpm's
// ".pnpm/<name with + for />@<version>[_peers|(peers)]/" and Yarn's cache
// ".yarn/cache/<name with - for />-npm-<version>-<hash>-<checksum>.zip/".
// A plain node_modules tree does not show versions.
func nodeStoreVersion(prefix, pkg string) string {
	prefix = strings.TrimSuffix(prefix, "/")
	j := strings.LastIndexByte(prefix, '/')
	if j < 0 {
		return ""
	}
	parent, dir := prefix[:j], prefix[j+1:]
	switch {
	case strings.HasSuffix(parent, "/.pnpm") || parent == ".pnpm":
		v, ok := strings.CutPrefix(dir, strings.ReplaceAll(pkg, "/", "+")+"@")
		if !ok {
			return ""
		}
		if k := strings.IndexAny(v, "_("); k >= 0 {
			v = v[:k]
		}
		return v
	case strings.HasSuffix(parent, "/.yarn/cache") || parent == ".yarn/cache":
		v, ok := strings.CutPrefix(strings.TrimSuffix(dir, ".zip"), strings.ReplaceAll(pkg, "/", "-")+"-npm-")
		if !ok {
			return ""
		}
		for range 2 {
			k := strings.LastIndexByte(v, '-')
			if k < 0 {
				return ""
			}
			v = v[:k]
		}
		return v
	}
	return ""
}

// nodeApplication reports whether a script outside node_modules is the
// application's: Node.js names the application's scripts by absolute path
// or URL ("/app/server.js", "file:///app/index.mjs", a bundler's
// "webpack:///./src/app.js"), and its own modules "node:internal/timers",
// or before Node.js 16 by a relative name ("internal/timers.js",
// "events.js") that no application script has.
func nodeApplication(path string) bool {
	switch {
	case strings.HasPrefix(path, "node:"):
		return false
	case strings.HasPrefix(path, "/"), len(path) > 2 && path[1] == ':', strings.Contains(path, "://"):
		return true
	}
	return false
}
