package attribution

import (
	"slices"
	"strings"
)

// pythonFunc attributes a Python frame by its file: py-spy's short file name
// ("requests/sessions.py", the path below the outermost directory with an
// __init__.py, protocols.md §8.3), an absolute path under site-packages,
// dist-packages or a wheel, egg or zip archive on sys.path, a
// standard-library path, or a frozen module
// ("<frozen importlib._bootstrap>").
func (a *Attributor) pythonFunc(name, file string) (Func, bool) {
	file = strings.ReplaceAll(file, `\`, "/") // Windows paths
	var mod string
	where := pyStdlib
	if m, ok := strings.CutPrefix(file, "<frozen "); ok {
		mod = strings.TrimSuffix(m, ">")
	} else {
		var rel string
		rel, where = pythonRelPath(file)
		mod = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(rel, ".py"), ".pyx"), "/__init__")
		mod = strings.ReplaceAll(mod, "/", ".")
	}
	if mod == "" || mod == "__init__" {
		return Func{}, false
	}
	for seg := range strings.SplitSeq(mod, ".") {
		if seg == "" {
			return Func{}, false
		}
	}
	// A qualified name (py-spy on Python 3.11+ reads co_qualname) of a
	// nested function or lambda, "Session.send.<locals>.hook", is
	// attributed to the function that encloses it, as closures are in Go.
	if i := strings.Index(name, ".<locals>."); i > 0 {
		name = name[:i]
	}
	top, _, _ := strings.Cut(mod, ".")
	library := where == pyLibrary || where == pyShort
	if library && pythonStdlib(top) {
		// py-spy shortens a standard-library module to its file
		// ("queue.py") and a package's to the path below the library
		// ("json/decoder.py"): a short name below a module's name
		// ("queue/_queue_client.py", of azure.storage.queue) is not the
		// standard library's.
		library = where == pyShort && strings.IndexByte(file, '/') >= 0 && !pythonStdlibPackage(top)
	}
	if library && where == pyShort {
		if ns := a.pythonNamespace(mod, top); ns != "" {
			mod = a.cache.join(ns, ".", mod)
			top, _, _ = strings.Cut(mod, ".")
		}
	}
	fn := Func{Language: Python, Package: mod, Symbol: name, FirstParty: where == pyApp}
	if library {
		// A short name or an archive's path does not tell the
		// application from a library: Config.FirstParty does, unless
		// an installed distribution claims the name.
		if _, _, ok := longestPrefix(a.firstParty, mod, '.'); ok && !a.pythonDistClaims(mod) {
			fn.FirstParty = true
		} else {
			fn.Module = a.pythonDist(mod, top)
		}
	}
	return fn, true
}

// pyPlace is where a Python file lives, which decides whether it ships in
// a PyPI distribution.
type pyPlace uint8

const (
	// pyLibrary is site-packages, dist-packages or an archive on
	// sys.path.
	pyLibrary pyPlace = iota
	// pyShort is a short py-spy name, which may be anywhere on sys.path.
	pyShort
	pyStdlib
	// pyApp is an absolute path outside any library directory.
	pyApp
)

// pythonRelPath returns the part of a Python file path that names its
// module, and where the file lives.
func pythonRelPath(file string) (string, pyPlace) {
	// The innermost sys.path entry the path shows: a library directory,
	// or a wheel, egg or zip archive whose root is on sys.path (pex's
	// ".../installed_wheels/<hash>/requests-2.28.1-py3-none-any.whl/requests/sessions.py",
	// an egg under site-packages, a zipapp). Such an archive may hold the
	// application too, which Config.FirstParty tells, as for short names.
	start := -1
	for _, dir := range [...]string{"site-packages/", "dist-packages/"} {
		if i := strings.LastIndex(file, "/"+dir); i >= 0 {
			start = max(start, i+1+len(dir))
		} else if strings.HasPrefix(file, dir) {
			start = max(start, len(dir))
		}
	}
	for off := 0; ; {
		j := strings.IndexByte(file[off:], '/')
		if j < 0 {
			break // the file name
		}
		if pythonArchive(file[off : off+j]) {
			start = max(start, off+j+1)
		}
		off += j + 1
	}
	if start >= 0 {
		return file[start:], pyLibrary
	}
	// "/usr/lib/python3.12/json/decoder.py", also free-threaded
	// "python3.13t"; not a directory that merely starts so
	// ("/opt/python3.12-env/app/main.py").
	for i := len(file); ; {
		i = strings.LastIndex(file[:i], "/python3.")
		if i < 0 {
			break
		}
		ver, rel, ok := strings.Cut(file[i+len("/python3."):], "/")
		if ok && allDigits(strings.TrimSuffix(ver, "t")) {
			return rel, pyStdlib
		}
	}
	// Windows: "C:/Python312/Lib/json/decoder.py", whatever the prefix
	// (an installer's, conda's, pyenv-win's); only the standard library's
	// modules, in case an application has a directory of that name.
	if len(file) > 2 && file[1] == ':' {
		if i := strings.LastIndex(file, "/Lib/"); i >= 0 {
			rel := file[i+len("/Lib/"):]
			top, _, _ := strings.Cut(strings.TrimSuffix(rel, ".py"), "/")
			if pythonStdlib(top) {
				return rel, pyStdlib
			}
		}
	}
	if strings.HasPrefix(file, "/") || (len(file) > 2 && file[1] == ':') {
		// Without its sys.path entry only the file name is sure to be
		// part of an application script's module name.
		return file[strings.LastIndexByte(file, '/')+1:], pyApp
	}
	return file, pyShort
}

// pythonArchive reports whether a directory element of a Python file's path
// is a wheel, egg or zip archive (or a directory named as one) whose root is
// a sys.path entry.
func pythonArchive(elem string) bool {
	for _, ext := range [...]string{".whl", ".egg", ".zip", ".pyz", ".pex"} {
		if len(elem) > len(ext) && strings.HasSuffix(elem, ext) {
			return true
		}
	}
	return false
}

// pythonDist returns the PyPI distribution that ships module mod, whose
// top-level import name is top: the one configured for the longest prefix
// of mod, else a well-known one, else top itself, normalized as PEP 503
// (and OSV) write PyPI names.
func (a *Attributor) pythonDist(mod, top string) string {
	if _, d, ok := longestPrefix(a.pythonDists, mod, '.'); ok {
		return d
	}
	if d := knownNamespaceDist(mod); d != "" {
		return d
	}
	if d := knownPythonDist(top); d != "" {
		return d
	}
	return normalizePyPI(top)
}

// pythonNamespace returns the namespace package that the module of a
// short py-spy name belongs to, or "". py-spy drops the directories of a
// namespace package installed without an __init__.py in them (PEP 420), so
// azure.storage.blob._blob_client shows as "blob/_blob_client.py". The
// namespace is put back when the dotted entries of Config.PythonDists give
// the name's first element top one namespace ("azure.storage.blob":
// "azure.storage"), and neither a top-level entry nor Config.FirstParty
// claims it: an installed distribution or the application may have a
// package of that name.
func (a *Attributor) pythonNamespace(mod, top string) string {
	nss := a.pythonNamespaces[top]
	if len(nss) != 1 {
		return ""
	}
	if _, ok := a.pythonDists[top]; ok {
		return ""
	}
	if _, _, ok := longestPrefix(a.firstParty, mod, '.'); ok {
		return ""
	}
	return nss[0]
}

// addPythonNamespaces records, for every element of a dotted module but
// the first, the namespace that precedes it: "azure.storage.blob" gives
// "storage" the namespace "azure" and "blob" "azure.storage".
func (a *Attributor) addPythonNamespaces(mod string) {
	for i := strings.IndexByte(mod, '.'); i > 0; {
		ns, rest := mod[:i], mod[i+1:]
		name, _, _ := strings.Cut(rest, ".")
		if a.pythonNamespaces == nil {
			a.pythonNamespaces = make(claims)
		}
		a.pythonNamespaces.add(name, ns)
		j := strings.IndexByte(rest, '.')
		if j < 0 {
			break
		}
		i += 1 + j
	}
}

// pythonDistClaims reports whether a configured distribution ships
// module mod.
func (a *Attributor) pythonDistClaims(mod string) bool {
	_, d, ok := longestPrefix(a.pythonDists, mod, '.')
	return ok && d != ""
}

// knownNamespaceDist names the distribution of a module inside a
// well-known namespace package, which many distributions share, so that
// its top-level name does not tell one: google.protobuf is protobuf's, not
// the unrelated PyPI distribution "google"'s, and azure.storage.blob is
// azure-storage-blob's. The longest listed prefix of mod wins. zope,
// backports and jaraco name each distribution after its dotted module
// (zope.interface, backports.zoneinfo, jaraco.functools), and so do the
// SDKs' conventions for azure.mgmt.<service> (azure-mgmt-<service>, the
// Azure SDK's management libraries) and google.cloud.<name>
// (google-cloud-<name>, Google Cloud's client libraries, most of which
// follow it) when no listed prefix says otherwise. Other modules of a
// namespace package are left to the top-level name, or
// Config.PythonDists.
func knownNamespaceDist(mod string) string {
	top, rest, ok := strings.Cut(mod, ".")
	if !ok {
		return ""
	}
	switch top {
	case "zope", "backports", "jaraco":
		return dottedDist(top, rest)
	case "google", "azure", "opentelemetry":
		for p := mod; ; {
			if d := namespaceDist(p); d != "" {
				return d
			}
			i := strings.LastIndexByte(p, '.')
			if i < 0 {
				break
			}
			p = p[:i]
		}
		group, rest, ok := strings.Cut(rest, ".")
		switch {
		case ok && top == "azure" && group == "mgmt":
			return dottedDist("azure.mgmt", rest)
		case ok && top == "google" && group == "cloud":
			// Without the API version some of them add to the module's
			// name (pubsub_v1, vision_v1p4beta1).
			next, _, _ := strings.Cut(rest, ".")
			return dottedDist("google.cloud", trimAPIVersion(next))
		}
	}
	return ""
}

// dottedDist names the distribution of a module, below the namespace
// package ns, named after the namespace and the module's next name
// (zope.interface's is zope-interface).
func dottedDist(ns, rest string) string {
	next, _, _ := strings.Cut(rest, ".")
	return normalizePyPI(ns + "." + next)
}

// trimAPIVersion drops a trailing API version from a module's name:
// "_v", digits, then optionally "p" and digits, then optionally "alpha"
// or "beta" and digits (pubsub_v1, bigquery_storage_v1beta2,
// vision_v1p4beta1). Other names are returned as they are.
func trimAPIVersion(name string) string {
	i := strings.LastIndex(name, "_v")
	if i <= 0 {
		return name
	}
	digits := func(s string) (string, bool) {
		t := strings.TrimLeft(s, "0123456789")
		return t, len(t) < len(s)
	}
	v, ok := digits(name[i+2:])
	if !ok {
		return name
	}
	if p, ok := strings.CutPrefix(v, "p"); ok {
		if v, ok = digits(p); !ok {
			return name
		}
	}
	for _, stage := range []string{"alpha", "beta"} {
		if rest, ok := strings.CutPrefix(v, stage); ok {
			v, _ = digits(rest)
			break
		}
	}
	if v != "" {
		return name
	}
	return name[:i]
}

// namespaceDists are the distributions of modules of the namespace
// packages google, azure and opentelemetry, as the distributions' sources
// lay them out (Azure's sdk/<service>/<distribution>/azure/…,
// OpenTelemetry's <distribution>/src/opentelemetry/…), normalized.
var namespaceDists = [...]struct{ mod, dist string }{
	{"google.protobuf", "protobuf"}, {"google._upb", "protobuf"},
	{"google.auth", "google-auth"}, {"google.oauth2", "google-auth"},
	{"google.api_core", "google-api-core"},
	{"google.api", "googleapis-common-protos"}, {"google.rpc", "googleapis-common-protos"},
	{"google.type", "googleapis-common-protos"}, {"google.longrunning", "googleapis-common-protos"},
	{"azure.core", "azure-core"}, {"azure.identity", "azure-identity"}, {"azure.cosmos", "azure-cosmos"},
	{"azure.servicebus", "azure-servicebus"}, {"azure.eventhub", "azure-eventhub"},
	{"azure.storage.blob", "azure-storage-blob"}, {"azure.storage.queue", "azure-storage-queue"},
	{"azure.storage.blob.changefeed", "azure-storage-blob-changefeed"},
	{"azure.storage.fileshare", "azure-storage-file-share"}, {"azure.storage.filedatalake", "azure-storage-file-datalake"},
	{"azure.keyvault.secrets", "azure-keyvault-secrets"}, {"azure.keyvault.keys", "azure-keyvault-keys"},
	{"azure.keyvault.certificates", "azure-keyvault-certificates"},
	{"opentelemetry.exporter.otlp.proto.grpc", "opentelemetry-exporter-otlp-proto-grpc"},
	{"opentelemetry.exporter.otlp.proto.http", "opentelemetry-exporter-otlp-proto-http"},
	{"opentelemetry.exporter.otlp.proto.common", "opentelemetry-exporter-otlp-proto-common"},
	{"opentelemetry.trace", "opentelemetry-api"}, {"opentelemetry.context", "opentelemetry-api"},
	{"opentelemetry.metrics", "opentelemetry-api"}, {"opentelemetry.baggage", "opentelemetry-api"},
	{"opentelemetry.propagate", "opentelemetry-api"}, {"opentelemetry.attributes", "opentelemetry-api"},
	{"opentelemetry._logs", "opentelemetry-api"}, {"opentelemetry._events", "opentelemetry-api"},
	{"opentelemetry.environment_variables", "opentelemetry-api"},
	{"opentelemetry.propagators.composite", "opentelemetry-api"}, {"opentelemetry.propagators.textmap", "opentelemetry-api"},
	{"opentelemetry.sdk", "opentelemetry-sdk"}, {"opentelemetry.semconv", "opentelemetry-semantic-conventions"},
	{"opentelemetry.proto", "opentelemetry-proto"},
}

// namespaceDist names the distribution of a module of the namespace
// packages google, azure and opentelemetry that namespaceDists lists.
func namespaceDist(mod string) string {
	for _, nd := range namespaceDists {
		if nd.mod == mod {
			return nd.dist
		}
	}
	return ""
}

// PythonModulesOf maps the modules of namespace packages that the PyPI
// distributions dists ship, as far as evident knows them (the
// distributions of google, azure and opentelemetry it names, and the
// conventions of knownNamespaceDist: azure-mgmt-compute ships
// azure.mgmt.compute, google-cloud-storage google.cloud.storage,
// zope-interface zope.interface), to those distributions, for
// Config.PythonDists: so that py-spy's short file names of them, which
// lose the namespace's directories ("blob/_blob_client.py"), get it back
// for the distributions a service's findings name. Other distributions
// are left out, and so is a module two of them would claim.
func PythonModulesOf(dists []string) map[string]string {
	owners := make(claims)
	for _, d := range dists {
		d = normalizePyPI(d)
		var mods []string
		for _, nd := range namespaceDists {
			if nd.dist == d {
				mods = append(mods, nd.mod)
			}
		}
		for _, ns := range [...]string{"azure-mgmt-", "google-cloud-", "zope-", "backports-", "jaraco-"} {
			if rest, ok := strings.CutPrefix(d, ns); ok && rest != "" {
				mods = append(mods, strings.ReplaceAll(ns, "-", ".")+strings.ReplaceAll(rest, "-", "_"))
			}
		}
		// An import name the distribution shares with others, which
		// frames would otherwise give the first of them.
		mods = append(mods, PythonImportNames(d)...)
		for _, m := range mods {
			if isPythonModule(m) {
				owners.add(m, d)
			}
		}
	}
	return owners.sole()
}

// importNameDists are popular import names that differ from the name of
// the distribution that ships them, with the distributions known to ship
// them, for when no SBOM supplies the map: a frame gets the first, unless
// the service's findings name another (PythonModulesOf). Several
// distributions share some names: pycryptodome and the older pycrypto
// both ship Crypto, opencv-python and its headless builds cv2.
var importNameDists = [...]struct {
	top   string
	dists []string
}{
	{"yaml", []string{"pyyaml"}},
	{"PIL", []string{"pillow", "pil"}},
	{"cv2", []string{"opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"}},
	{"sklearn", []string{"scikit-learn"}},
	{"bs4", []string{"beautifulsoup4"}},
	{"dateutil", []string{"python-dateutil"}},
	{"jwt", []string{"pyjwt", "jwt"}},
	{"OpenSSL", []string{"pyopenssl"}},
	{"Crypto", []string{"pycryptodome", "pycrypto"}},
	{"jose", []string{"python-jose", "jose"}},
	{"magic", []string{"python-magic", "filemagic"}},
	{"dotenv", []string{"python-dotenv"}},
	{"multipart", []string{"python-multipart"}},
	{"git", []string{"gitpython"}},
	{"attr", []string{"attrs"}},
	{"pkg_resources", []string{"setuptools"}},
	{"websocket", []string{"websocket-client"}},
	{"serial", []string{"pyserial"}},
	{"docx", []string{"python-docx"}},
	{"ldap", []string{"python-ldap"}},
	{"MySQLdb", []string{"mysqlclient", "mysql-python"}},
}

// knownPythonDist names the distribution a frame of import name top is
// given when nothing configured names one, or "" when top is not one of
// importNameDists.
func knownPythonDist(top string) string {
	for _, e := range importNameDists {
		if e.top == top {
			return e.dists[0]
		}
	}
	return ""
}

// PythonImportNames returns the top-level import names of importNameDists
// that the PyPI distribution dist may ship: code of such a name, given to
// another distribution, may be dist's.
func PythonImportNames(dist string) []string {
	dist = normalizePyPI(dist)
	var tops []string
	for _, e := range importNameDists {
		if slices.Contains(e.dists, dist) {
			tops = append(tops, e.top)
		}
	}
	return tops
}

// normalizePyPI normalizes a distribution name as PEP 503 does: lowercase,
// with runs of "-", "_" and "." as one "-".
func normalizePyPI(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	sep := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '-' || c == '_' || c == '.' {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		if isUpper(c) {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// pythonStdlibNames lists the top-level modules of CPython's standard
// library (sys.stdlib_module_names of 3.11, plus the pure-Python private
// modules that show up in profiles, getpath, which 3.11 freezes into the
// interpreter to compute sys.path at startup ("<frozen getpath>"), and the
// packages added up to 3.13).
const pythonStdlibNames = " __future__ _aix_support _android_support _bootsubprocess _collections_abc" +
	" _colorize _compat_pickle _compression _ios_support _markupbase _opcode_metadata _osx_support" +
	" _py_abc _pydecimal _pyio _pylong _pyrepl _sitebuiltins _strptime _threading_local _weakrefset" +
	" abc aifc antigravity argparse array ast asynchat asyncio asyncore atexit audioop base64 bdb" +
	" binascii bisect builtins bz2 cProfile calendar cgi cgitb chunk cmath cmd code codecs codeop" +
	" collections colorsys compileall concurrent configparser contextlib contextvars copy copyreg" +
	" crypt csv ctypes curses dataclasses datetime dbm decimal difflib dis distutils doctest email" +
	" encodings ensurepip enum errno faulthandler fcntl filecmp fileinput fnmatch fractions ftplib" +
	" functools gc genericpath getopt getpass getpath gettext glob graphlib grp gzip hashlib heapq hmac html" +
	" http idlelib imaplib imghdr imp importlib inspect io ipaddress itertools json keyword lib2to3" +
	" linecache locale logging lzma mailbox mailcap marshal math mimetypes mmap modulefinder msilib" +
	" msvcrt multiprocessing netrc nis nntplib nt ntpath nturl2path numbers opcode operator optparse" +
	" os ossaudiodev pathlib pdb pickle pickletools pipes pkgutil platform plistlib poplib posix" +
	" posixpath pprint profile pstats pty pwd py_compile pyclbr pydoc pydoc_data pyexpat queue" +
	" quopri random re readline reprlib resource rlcompleter runpy sched secrets select selectors" +
	" shelve shlex shutil signal site smtpd smtplib sndhdr socket socketserver spwd sqlite3" +
	" sre_compile sre_constants sre_parse ssl stat statistics string stringprep struct subprocess" +
	" sunau symtable sys sysconfig syslog tabnanny tarfile telnetlib tempfile termios textwrap this" +
	" threading time timeit tkinter token tokenize tomllib trace traceback tracemalloc tty turtle" +
	" turtledemo types typing unicodedata unittest urllib uu uuid venv warnings wave weakref" +
	" webbrowser winreg winsound wsgiref xdrlib xml xmlrpc zipapp zipfile zipimport zlib zoneinfo "

// pythonStdlibPackages lists the top-level modules of pythonStdlibNames
// that are packages (directories) in CPython 3.8 to 3.13, rather than
// single files.
const pythonStdlibPackages = " _pyrepl asyncio collections concurrent ctypes curses dbm distutils email" +
	" encodings ensurepip html http idlelib importlib json lib2to3 logging msilib multiprocessing pathlib" +
	" pydoc_data re sqlite3 sysconfig tkinter tomllib turtledemo unittest urllib venv wsgiref xml xmlrpc zoneinfo "

// pythonStdlibPackage reports whether the standard-library module top is
// a package.
func pythonStdlibPackage(top string) bool {
	return strings.Contains(pythonStdlibPackages, " "+top+" ")
}

// pythonStdlib reports whether top is a standard-library module, which no
// PyPI distribution ships.
func pythonStdlib(top string) bool {
	return strings.Contains(pythonStdlibNames, " "+top+" ")
}
