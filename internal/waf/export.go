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
	"unicode"
	"unicode/utf8"
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
	fmt.Fprintf(&b, "# evident virtual patches for service %s (rule ids %d-%d, docs/waf.md).\n", oneLine(service), s.IDRange[0], s.IDRange[1])
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
	return fmt.Sprintf("# evident virtual patches for service %s that only evident waf proxy enforces:\n# they use evident's structural operators (docs/waf.md), which Coraza and ModSecurity lack.\n", oneLine(service)) + b.String()
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
		// CRS v4 plugins: <name>-config.conf is loaded before
		// crs-setup, -before.conf before the CRS rules, -after.conf
		// after them. The patches go before, so that they deny before
		// CRS anomaly scoring runs.
		files[filepath.Join(PluginsDir, plugin+"-config.conf")] = fmt.Sprintf("# %s: CRS plugin configuration. The patches are on by default;\n"+
			"# set tx.%s-plugin_enabled=0 in crs-setup.conf to switch them off.\n", plugin, plugin) +
			fmt.Sprintf("SecRule &TX:%s-plugin_enabled \"@eq 0\" \"id:%d,phase:1,pass,nolog,setvar:'tx.%s-plugin_enabled=1',tag:'evident',tag:'evident/engine',ver:'evident/1'\"\n",
				plugin, pluginID(s, svc, 0), plugin)
		ids := serviceIDs(s, svc)
		before := fmt.Sprintf("# %s: the virtual patches, before the CRS rules.\n", plugin) +
			fmt.Sprintf("SecRule TX:%s-plugin_enabled \"@eq 0\" \"id:%d,phase:1,pass,nolog,ctl:ruleRemoveById=%s,tag:'evident',tag:'evident/engine',ver:'evident/1'\"\n",
				plugin, pluginID(s, svc, 1), ids) + "\n" + conf
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
	return errors.Join(errs...)
}

// pluginID is an id for a service's plugin switches, from the engine
// block (the first of the range): 10 onwards, two per service.
func pluginID(s *PatchSet, service string, n int) int {
	return s.IDRange[0] + 10 + 2*slices.Index(s.Services(), service) + n
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

// fileName is the name a service's files and CRS plugin go by. It is
// also part of the plugin's TX variable in SecLang, so everything but
// ASCII letters, digits, '.', '_' and '-' becomes '_', and so does "..":
// a service name comes from telemetry and may hold quotes, path
// separators or anything else, and be of any length. A name longer than
// maxFileName is cut, and told apart from others cut alike by a hash of
// the whole service name.
func fileName(service string) string {
	safe := strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf && (r == '.' || r == '_' || r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return r
		}
		return '_'
	}, service)
	name := strings.ReplaceAll(safe, "..", "_")
	if len(name) > maxFileName {
		sum := sha256.Sum256([]byte(service))
		name = name[:maxFileName-17] + "-" + hex.EncodeToString(sum[:8])
	}
	return name
}

// maxFileName bounds fileName, so that the longest file named after it,
// "evident-<name>-before.conf", stays within the 255 bytes a file name
// may have (ext4, APFS, NTFS); a longer service name made Export fail
// with ENAMETOOLONG (FuzzExportLoad).
const maxFileName = 200

// LoadRules reads the directives an export directory enforces: the
// engine file, then the .conf of each named service (all of them when
// services is empty), each followed by its proxy/ rules when it has any.
// It does not read plugins/, which is for CRS.
func LoadRules(dir string, services []string) (string, error) {
	engine, err := os.ReadFile(filepath.Join(dir, EngineFile))
	if err != nil {
		return "", fmt.Errorf("load rules from %s: %w", dir, err)
	}
	var names []string
	if len(services) == 0 {
		matches, err := filepath.Glob(filepath.Join(dir, "*.conf"))
		if err != nil {
			return "", fmt.Errorf("load rules from %s: %w", dir, err)
		}
		for _, m := range matches {
			if filepath.Base(m) != EngineFile {
				names = append(names, m)
			}
		}
	} else {
		for _, s := range services {
			names = append(names, filepath.Join(dir, fileName(s)+".conf"))
		}
	}
	slices.Sort(names)
	var b strings.Builder
	b.Write(engine)
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			return "", fmt.Errorf("load rules from %s: %w", dir, err)
		}
		b.WriteString("\n")
		b.Write(data)
		proxy, err := os.ReadFile(filepath.Join(dir, ProxyDir, filepath.Base(n)))
		switch {
		case err == nil:
			b.WriteString("\n")
			b.Write(proxy)
		case !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("load rules from %s: %w", dir, err)
		}
	}
	return b.String(), nil
}
