package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/manifest"
)

// sourceRoot is the --source-root of analyze, or by default where the
// findings came from: the directory of a --findings file, a --findings
// directory itself, or the deepest directory all of them share.
func sourceRoot(flag string, findingsArgs []string) string {
	if flag != "" {
		return flag
	}
	var root []string
	for i, arg := range findingsArgs {
		p := arg
		if in, err := splitServiceArg(arg); err == nil {
			p = in.Path
		}
		if info, err := os.Stat(p); err != nil || !info.IsDir() {
			p = filepath.Dir(p)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return "."
		}
		parts := strings.Split(abs, string(filepath.Separator))
		if i == 0 {
			root = parts
			continue
		}
		n := 0
		for n < min(len(root), len(parts)) && root[n] == parts[n] {
			n++
		}
		root = root[:n]
	}
	if len(root) == 0 {
		return "."
	}
	if len(root) == 1 { // the file system's root: "" (or a volume) before the first separator
		return root[0] + string(filepath.Separator)
	}
	return strings.Join(root, string(filepath.Separator))
}

// scanManifests reads the manifests under root that declare packages of
// the findings' ecosystems, for SARIF locations. A manifest that cannot
// be read is reported through warn; a root that cannot be walked is an
// error.
func scanManifests(root string, all []findings.Finding, warn func(error)) (*manifest.Tree, error) {
	var ecosystems []string
	for _, f := range all {
		if !slices.Contains(ecosystems, f.Package.Ecosystem) {
			ecosystems = append(ecosystems, f.Package.Ecosystem)
		}
	}
	tree, skipped, err := manifest.Scan(root, ecosystems)
	if err != nil {
		return nil, fmt.Errorf("--source-root: %w", err)
	}
	for _, err := range skipped {
		warn(err)
	}
	return tree, nil
}
