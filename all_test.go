package evident_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// layers lists internal packages by layer; a package may import only
// packages of its own layer or below (a higher index).
var layers = [][]string{
	{"cli", "app"},
	{"ingest", "store", "auth", "httpapi", "ui", "report", "alert", "dbupdate", "engine", "tenant", "source", "cluster"},
	{"attribution", "model", "vulndb", "knowledge", "findings", "assess", "detect", "waf", "telemetry", "manifest", "listener", "redact", "tlsconfig", "safegob"},
	{"osv", "pipeline", "logtest", "inflate"},
}

func layerOf(pkg string) int {
	top := strings.SplitN(pkg, "/", 2)[0]
	for i, l := range layers {
		for _, name := range l {
			if name == top {
				return i
			}
		}
	}
	return -1
}

// TestDependencyDirection holds the line of STYLE.md: cmd → app →
// adapters → domain → contracts, never back up.
func TestDependencyDirection(t *testing.T) {
	const prefix = "github.com/evidentsec/evident/internal/"
	fset := token.NewFileSet()
	err := filepath.WalkDir("internal", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		from := filepath.ToSlash(filepath.Dir(strings.TrimPrefix(path, "internal"+string(filepath.Separator))))
		fromLayer := layerOf(from)
		if fromLayer < 0 {
			t.Errorf("%s: package %s is in no layer of all_test.go", path, from)
			return nil
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if !strings.HasPrefix(p, prefix) {
				continue
			}
			to := strings.TrimPrefix(p, prefix)
			if l := layerOf(to); l < fromLayer {
				t.Errorf("%s: %s imports %s, a higher layer", path, from, to)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestNoInit keeps package initialisation free of side effects: no init
// functions anywhere in the module.
func TestNoInit(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "examples" || strings.HasPrefix(d.Name(), ".")) && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			if fd, ok := decl.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.Name == "init" {
				t.Errorf("%s: func init", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGoModTidy fails when go.mod or go.sum is not what `go mod tidy` makes.
func TestGoModTidy(t *testing.T) {
	if testing.Short() {
		t.Skip("go mod tidy -diff needs the module cache; skipped in -short")
	}
	out, err := exec.Command("go", "mod", "tidy", "-diff").CombinedOutput()
	if err != nil {
		t.Errorf("go mod tidy -diff: %v\n%s", err, out)
	}
	if _, err := os.Stat("go.sum"); err != nil {
		t.Errorf("go.sum: %v", err)
	}
}

// TestDocsStandAlone holds that the documentation stands on its own in a
// clone: every Markdown link and every `file.md` it names exists in the
// repository (relative to the document or to the root), and nothing
// points beside the clone.
func TestDocsStandAlone(t *testing.T) {
	// A link's target, or a Markdown file's name outside a URL.
	ref := regexp.MustCompile(`\]\(([^)#\s]+)|(?:^|[\s(\x60])([\w./-]*\w\.md)\b`)
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".md") {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(raw), "\n") {
			if strings.Contains(line, "../shared") {
				t.Errorf("%s:%d: names ../shared, which a clone does not have", path, i+1)
			}
			for _, m := range ref.FindAllStringSubmatch(line, -1) {
				target := m[1] + m[2]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				_, errDoc := os.Stat(filepath.Join(filepath.Dir(path), target))
				_, errRoot := os.Stat(target)
				if errDoc != nil && errRoot != nil {
					t.Errorf("%s:%d: %s is not in the repository", path, i+1, target)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReadmeRunsAsPasted holds what makes the README's command blocks
// work when pasted into a fresh clone: the Quickstart's demo stops by
// itself, and the virtual-patch walkthrough proxies to the gateway it
// starts, runs evident the way it built it, and writes only into its
// temporary directory. TestWAFShop (internal/cli) runs the same flow.
func TestReadmeRunsAsPasted(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(raw), -1)
	find := func(marker string) string {
		for _, b := range blocks {
			if strings.Contains(b[1], marker) {
				return b[1]
			}
		}
		t.Fatalf("README.md has no sh block with %q", marker)
		return ""
	}

	quick := find("evident demo")
	if !regexp.MustCompile(`(?m)^go run \./cmd/evident demo --duration \S+$`).MatchString(quick) {
		t.Errorf("the Quickstart's demo does not stop by itself (--duration):\n%s", quick)
	}

	walk := find("waf proxy")
	gateway := regexp.MustCompile(`SHOP_ADDR=(\S+) "\$w/gateway" &`).FindStringSubmatch(walk)
	upstream := regexp.MustCompile(`--upstream http://(\S+)`).FindStringSubmatch(walk)
	if gateway == nil || upstream == nil || gateway[1] != upstream[1] {
		t.Errorf("the walkthrough's proxy does not forward to the gateway it starts (%q, %q)", gateway, upstream)
	}
	if !strings.Contains(walk, `go build -o "$w/" ./cmd/evident`) {
		t.Errorf("the walkthrough does not build the evident it runs")
	}
	for _, line := range strings.Split(walk, "\n") {
		if regexp.MustCompile(`(^|\s)evident\s`).MatchString(line) {
			t.Errorf("the walkthrough runs an evident it did not build: %s", line)
		}
		for _, m := range regexp.MustCompile(`\s-o\s+(\S+)`).FindAllStringSubmatch(line, -1) {
			if !strings.HasPrefix(m[1], `"$w/`) && m[1] != "/dev/null" {
				t.Errorf("the walkthrough writes %s into the clone: %s", m[1], line)
			}
		}
	}
}
