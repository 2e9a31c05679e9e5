package waf

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/corazawaf/coraza/v3"
)

// Files of an export directory.
const (
	EngineFile   = "evident-engine.conf" // engine settings and body processors
	MetadataFile = "patches.json"        // the PatchSet with its validation
	PluginsDir   = "plugins"             // the CRS v4 plugin layout
	ProxyDir     = "proxy"               // the rules only evident waf proxy enforces
)

// Services returns the services that have patches, in order.
func (s *PatchSet) Services() []string {
	var out []string
	for _, p := range s.Patches {
		if !slices.Contains(out, p.Service) {
			out = append(out, p.Service)
		}
	}
	slices.Sort(out)
	return out
}

// ServiceConf returns the rules of every patch of one service.
func (s *PatchSet) ServiceConf(service string) string {
	var b strings.Builder
	fmt.Fprintf(&b, serviceHeader+"%s (rule ids %d-%d, docs/waf.md).\n", oneLine(service), s.IDRange[0], s.IDRange[1])
	b.WriteString("# Needs SecRuleEngine On and SecRequestBodyAccess On (see " + EngineFile + ").\n")
	for _, p := range s.Patches {
		if p.Service == service {
			b.WriteString("\n")
			b.WriteString(p.SecLang())
		}
	}
	return b.String()
}

// ServiceProxyConf returns the rules of a service's patches that only
// evident waf proxy enforces, "" when there are none.
func (s *PatchSet) ServiceProxyConf(service string) string {
	var b strings.Builder
	for _, p := range s.Patches {
		if rules := p.ProxySecLang(); p.Service == service && rules != "" {
			b.WriteString("\n")
			b.WriteString(rules)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return fmt.Sprintf(serviceHeader+"%s that only evident waf proxy enforces:\n# they use evident's structural operators (docs/waf.md), which Coraza and ModSecurity lack.\n", oneLine(service)) + b.String()
}

// Export writes the set to dir: one <service>.conf per service, the
// engine file, a CRS v4 plugin per service under plugins/ and the JSON
// metadata. Service names become file names and plugin names, so what
// is not safe in either is replaced (fileName).
func Export(dir string, s *PatchSet) error {
	for _, sub := range []string{PluginsDir, ProxyDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return fmt.Errorf("export patches: %w", err)
		}
	}
	files := map[string]string{
		EngineFile: "# evident engine settings: load before the service files when not running under CRS.\n" +
			engineSettings() + "\n" + bodyProcessorRules(s.IDRange[0]),
	}
	for _, svc := range s.Services() {
		name := fileName(svc)
		conf := s.ServiceConf(svc)
		files[name+".conf"] = conf
		if proxy := s.ServiceProxyConf(svc); proxy != "" {
			files[filepath.Join(ProxyDir, name+".conf")] = proxy
		}
		plugin := "evident-" + name
		config, before := s.pluginFiles(svc)
		files[filepath.Join(PluginsDir, plugin+"-config.conf")] = config
		files[filepath.Join(PluginsDir, plugin+"-before.conf")] = before
		files[filepath.Join(PluginsDir, plugin+"-after.conf")] = fmt.Sprintf("# %s: nothing runs after the CRS rules.\n", plugin)
	}
	meta, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("export patches: %w", err)
	}
	files[MetadataFile] = string(meta) + "\n"
	var errs []error
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("export patches: %w", err))
		}
	}
	if err := removeStale(dir, files); err != nil {
		errs = append(errs, fmt.Errorf("export patches: %w", err))
	}
	return errors.Join(errs...)
}

// pluginFiles returns the -config and -before files of a service's CRS v4
// plugin. CRS loads <name>-config.conf after crs-setup, -before.conf
// before the CRS rules, -after.conf after them. The patches go before, so
// that they deny before CRS anomaly scoring runs.
func (s *PatchSet) pluginFiles(svc string) (config, before string) {
	plugin := "evident-" + fileName(svc)
	config = fmt.Sprintf("# %s: CRS plugin configuration. The patches are on by default;\n"+
		"# set tx.%s-plugin_enabled=0 in crs-setup.conf to switch them off.\n", plugin, plugin) +
		fmt.Sprintf("SecRule &TX:%s-plugin_enabled \"@eq 0\" \"id:%d,phase:1,pass,nolog,setvar:'tx.%s-plugin_enabled=1',tag:'evident',tag:'evident/engine',ver:'evident/1'\"\n",
			plugin, pluginID(s, svc, 0), plugin)
	before = fmt.Sprintf("# %s: the virtual patches, before the CRS rules.\n", plugin) +
		fmt.Sprintf("SecRule TX:%s-plugin_enabled \"@eq 0\" \"id:%d,phase:1,pass,nolog,ctl:ruleRemoveById=%s,tag:'evident',tag:'evident/engine',ver:'evident/1'\"\n",
			plugin, pluginID(s, svc, 1), serviceIDs(s, svc)) + "\n" + s.ServiceConf(svc)
	return config, before
}

// Headers of the files Export writes, by which removeStale knows them.
const (
	serviceHeader = "# evident virtual patches for service "
	pluginHeader  = "# evident-"
)

// removeStale removes the files an earlier Export wrote to dir that this
// one did not: the service files, proxy/ rules and CRS plugins of
// services that no longer have patches. LoadRules reads every service
// file of dir, and CRS every plugin, so a stale one would go on being
// enforced (a fixed vulnerability's patch, a rule that since turned
// detection-only) while patches.json says otherwise, and its ids could
// collide with a new patch's. Only files with the header Export writes
// are removed: a file of the operator's own in dir stays.
func removeStale(dir string, written map[string]string) error {
	var errs []error
	for _, g := range []struct{ pattern, header string }{
		{"*.conf", serviceHeader},
		{filepath.Join(ProxyDir, "*.conf"), serviceHeader},
		{filepath.Join(PluginsDir, "evident-*.conf"), pluginHeader},
	} {
		names, err := filepath.Glob(filepath.Join(dir, g.pattern))
		if err != nil {
			return err
		}
		for _, name := range names {
			rel, err := filepath.Rel(dir, name)
			if err != nil {
				return err
			}
			if _, ok := written[rel]; ok || rel == EngineFile {
				continue
			}
			data, err := os.ReadFile(name)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !strings.HasPrefix(string(data), g.header) {
				continue
			}
			if err := os.Remove(name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// pluginID is an id for a service's plugin switches: the last pluginIDs
// of its first patch's block, which no rule takes. They were taken from
// the engine block, two per service, and from the 46th service on ran
// into the patches' blocks: CRS refused the duplicate ids, and so every
// plugin.
func pluginID(s *PatchSet, service string, n int) int {
	i := slices.IndexFunc(s.Patches, func(p Patch) bool { return p.Service == service })
	return s.Patches[i].IDs[1] - pluginIDs + 1 + n
}

// serviceIDs is the ruleRemoveById list of a service's patch blocks.
func serviceIDs(s *PatchSet, service string) string {
	var parts []string
	for _, p := range s.Patches {
		if p.Service == service {
			parts = append(parts, fmt.Sprintf("%d-%d", p.IDs[0], p.IDs[1]))
		}
	}
	return strings.Join(parts, ",")
}

// fileName is the name a service's files and CRS plugin go by; it is
// also part of the plugin's TX variable in SecLang. A service name comes
// from telemetry and may hold quotes, path separators or anything else,
// and be of any length, so only a plain name (plainName) is its own file
// name. Any other is made safe, byte by byte: upper-case ASCII letters
// become lower case, anything but lower-case letters, digits, '.', '_'
// and '-' becomes '_', and so do ".." and a leading '.'; it is cut to
// fit, and "-h" and 32 hex digits of a SHA-256 of the whole service name
// follow. No two services share a name, not even where a file system or
// a TX variable name ignores case: "shop/cart" and "shop_cart" once wrote
// one another's files, and "Cart" and "cart" had one CRS switch, which
// turned both off.
func fileName(service string) string {
	if plainName(service) {
		return service
	}
	b := make([]byte, 0, maxFileName)
	for i := 0; i < len(service) && len(b) < maxFileName-len(hashSuffix); i++ {
		c := service[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '.' && (len(b) == 0 || b[len(b)-1] == '.'):
			if len(b) > 0 {
				b = b[:len(b)-1]
			}
			c = '_'
		case !nameByte(c):
			c = '_'
		}
		b = append(b, c)
	}
	sum := sha256.Sum256([]byte(service))
	return string(b) + "-h" + hex.EncodeToString(sum[:16])
}

// hashSuffix is the shape of what fileName appends to a name it makes.
const hashSuffix = "-h0123456789abcdef0123456789abcdef"

// plainName reports whether a service name can be its own file name:
// lower-case ASCII letters, digits, '.', '_' and '-', at most
// maxFileName bytes, without ".." or a leading '.', and not ending in
// what fileName appends to the names it makes (so that a service cannot
// be named after another's file).
func plainName(service string) bool {
	if service == "" || len(service) > maxFileName || service[0] == '.' || strings.Contains(service, "..") {
		return false
	}
	for i := 0; i < len(service); i++ {
		if !nameByte(service[i]) {
			return false
		}
	}
	if n := len(service) - len(hashSuffix); n >= 0 && service[n:n+2] == "-h" {
		for i := n + 2; i < len(service); i++ {
			if c := service[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return true
			}
		}
		return false
	}
	return true
}

// nameByte reports whether c may stand in a file name as it is.
func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

// maxFileName bounds fileName, so that the longest file named after it,
// "evident-<name>-before.conf", stays within the 255 bytes a file name
// may have (ext4, APFS, NTFS); a longer service name made Export fail
// with ENAMETOOLONG (FuzzExportLoad).
const maxFileName = 200

// ErrNoPatches means a service has no patches in an export directory.
var ErrNoPatches = errors.New("no patches")

// LoadRules reads the directives an export directory enforces: the
// engine file, then the .conf of each named service (all of them when
// services is empty), each followed by its proxy/ rules when it has any.
// It does not read plugins/, which is for CRS. A named service without
// patches is an error that wraps ErrNoPatches and names the services
// that have them. The directives are compiled together, so that one that
// does not compile is reported with its file and line, which Coraza's own
// error lacks.
func LoadRules(dir string, services []string) (string, error) {
	srcs, _, err := loadRules(dir, services)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for i, s := range srcs {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(s.text)
	}
	return b.String(), nil
}

// loadRules reads and compiles the directives LoadRules returns, and
// returns them by file with the WAF they compile into.
func loadRules(dir string, services []string) ([]ruleSource, coraza.WAF, error) {
	engine, err := os.ReadFile(filepath.Join(dir, EngineFile))
	if err != nil {
		return nil, nil, fmt.Errorf("load rules from %s: %w", dir, err)
	}
	var names []string
	if len(services) == 0 {
		matches, err := filepath.Glob(filepath.Join(dir, "*.conf"))
		if err != nil {
			return nil, nil, fmt.Errorf("load rules from %s: %w", dir, err)
		}
		for _, m := range matches {
			if filepath.Base(m) != EngineFile {
				names = append(names, m)
			}
		}
	} else {
		var missing []string
		for _, s := range services {
			name := filepath.Join(dir, fileName(s)+".conf")
			if _, err := os.Stat(name); errors.Is(err, fs.ErrNotExist) {
				missing = append(missing, s)
			}
			names = append(names, name)
		}
		if err := noPatches(dir, missing); err != nil {
			return nil, nil, err
		}
	}
	// A service named twice (--service gateway,gateway) is loaded once:
	// twice would be a duplicated rule id that names no mistake.
	slices.Sort(names)
	names = slices.Compact(names)
	srcs := []ruleSource{{name: filepath.Join(dir, EngineFile), text: string(engine)}}
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			return nil, nil, fmt.Errorf("load rules from %s: %w", dir, err)
		}
		srcs = append(srcs, ruleSource{name: n, text: string(data)})
		proxyName := filepath.Join(dir, ProxyDir, filepath.Base(n))
		proxy, err := os.ReadFile(proxyName)
		switch {
		case err == nil:
			srcs = append(srcs, ruleSource{name: proxyName, text: string(proxy)})
		case !errors.Is(err, fs.ErrNotExist):
			return nil, nil, fmt.Errorf("load rules from %s: %w", dir, err)
		}
	}
	w, err := compileRules(srcs)
	if err != nil {
		return nil, nil, fmt.Errorf("load rules from %s: %w", dir, err)
	}
	return srcs, w, nil
}

// ruleCounts returns the number of rules of each file of srcs, by its
// name without ".conf" (a service's proxy/ rules count with its own).
func ruleCounts(srcs []ruleSource) map[string]int {
	ids := map[string]map[string]bool{}
	for _, d := range splitDirectives(srcs) {
		if d.rule == "" {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(d.src.name), ".conf")
		if ids[name] == nil {
			ids[name] = map[string]bool{}
		}
		ids[name][d.rule] = true
	}
	out := make(map[string]int, len(ids))
	for name, set := range ids {
		out[name] = len(set)
	}
	return out
}

// PatchedServices returns the services that have patches in the export
// directory dir: those of patches.json, or else those whose .conf is
// there. None means LoadRules(dir, nil) enforces the engine settings
// alone.
func PatchedServices(dir string) []string {
	var have []string
	if data, err := os.ReadFile(filepath.Join(dir, MetadataFile)); err == nil {
		var set PatchSet
		if json.Unmarshal(data, &set) == nil {
			have = set.Services()
		}
	}
	if have == nil {
		matches, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
		for _, m := range matches {
			if base := filepath.Base(m); base != EngineFile {
				have = append(have, strings.TrimSuffix(base, ".conf"))
			}
		}
	}
	return have
}

// noPatches says which of the named services have no patches in dir,
// and which services have them (PatchedServices). nil when none is
// missing.
func noPatches(dir string, missing []string) error {
	if len(missing) == 0 {
		return nil
	}
	have := PatchedServices(dir)
	for _, s := range missing {
		if slices.Contains(have, s) {
			return fmt.Errorf("load rules from %s: %s lists patches for %s, but %s is missing", dir, MetadataFile, s, fileName(s)+".conf")
		}
	}
	what := "service " + strings.Join(missing, ", ")
	if len(missing) > 1 {
		what = "services " + strings.Join(missing, ", ")
	}
	there := "no service has patches there"
	if len(have) > 0 {
		there = "the services with patches are " + strings.Join(have, ", ")
	}
	return fmt.Errorf("load rules from %s: %w for %s: %s", dir, ErrNoPatches, what, there)
}
