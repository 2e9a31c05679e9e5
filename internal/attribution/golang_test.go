package attribution

import "testing"

// TestPlainImportPath pins the shortcut validImportPath takes before
// golang.org/x/mod: which paths it answers itself. FuzzPlainImportPath
// checks that what it accepts x/mod accepts too.
func TestPlainImportPath(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"net/http", true},
		{"github.com/acme/mod12/pkg3", true},
		{"github.com/Azure/azure-sdk-for-go/sdk/azcore", true},
		{"gopkg.in/yaml.v3", true},
		{"x/y_z-w", true},
		{"a/b-.c", true},
		{"co", true},
		{"comma", true},
		{"a/lpt12.x", true},
		{"", false},
		{"-x", false},
		{"x/-y", true}, // only the first element's dash is left to x/mod
		{"a/", false},
		{"/a", false},
		{"a//b", false},
		{"a/b.", false},
		{"...", false},
		{"a/.b", true},
		{"a~1", false},
		{"a+b", false},
		{"é", false},
		{"a b", false},
		{"aux", false},
		{"x/Con", false},
		{"x/cOnx", false},
		{"x/NUL.txt/a", false},
		{"x/com1.y", false},
		{"lpT9", false},
		{"x/prn_", false},
		{"x/au_x", true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := plainImportPath(tt.path); got != tt.want {
				t.Errorf("plainImportPath(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

// TestPlainModulePath pins the shortcut validModulePath takes before
// golang.org/x/mod. FuzzPlainImportPath checks that what it accepts x/mod
// accepts too.
func TestPlainModulePath(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"golang.org/x/mod", true},
		{"github.com/Azure/azure-sdk-for-go/sdk/azcore", true},
		{"example.com", true},
		{"github.com/x/y.v2", true},
		{"github.com/x/y/v2x", true},
		{"github.com/x/y/2", true},
		{"net/http", false},            // no dot in the first element
		{"Github.com/x", false},        // a capital in the first element
		{"git_hub.com/x", false},       // an underscore in the first element
		{".example.com/x", false},      // a leading dot
		{"example.com/.x", false},      // a leading dot in an element
		{"github.com/x/y/v2", true},    // a major version
		{"github.com/x/y/v1", false},   // one x/mod refuses
		{"github.com/x/y/v2.1", false}, // and another
		{"gopkg.in/yaml.v3", true},     // gopkg.in's version
		{"gopkg.in/yaml", false},       // gopkg.in without one
		{"example.com/con", false},     // as plainImportPath
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := plainModulePath(tt.path); got != tt.want {
				t.Errorf("plainModulePath(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

// TestIsGoGenerated pins which elements of a Go symbol name are the
// compiler's.
func TestIsGoGenerated(t *testing.T) {
	tests := []struct {
		elem string
		want bool
	}{
		{"func1", true},
		{"func12", true},
		{"1", true},
		{"0", true},
		{"gowrap3", true},
		{"deferwrap1", true},
		{"", false},
		{"func", false},
		{"gowrap", false},
		{"deferwrap", false},
		{"funcs1", false},
		{"fn1", false},
		{"go1", false},
		{"defer1", false},
		{"Func1", false},
		{"1a", false},
		{"main", false},
		{"func1a", false},
	}
	for _, tt := range tests {
		t.Run(tt.elem, func(t *testing.T) {
			if got := isGoGenerated(tt.elem); got != tt.want {
				t.Errorf("isGoGenerated(%q) = %v, want %v", tt.elem, got, tt.want)
			}
		})
	}
}

// TestGoPackageOncePerDirectory checks that what the Attributor works out
// once per Go package and directory (goPackages) follows the directory:
// one import path in two module versions, and vendored without one, in one
// Attributor, and an invalid import path refused every time it comes; and
// that a frame whose name or file starts as the frame before's does is not
// taken for that frame's package (goPackage.sameAs).
func TestGoPackageOncePerDirectory(t *testing.T) {
	a := New(Config{GoModules: []string{"example.com/app"}})
	tests := []struct {
		frame        Frame
		ok           bool
		module, vers string
		symbol, pkg  string
	}{
		{Frame{"gopkg.in/yaml%2ev3.(*decoder).unmarshal", "/root/go/pkg/mod/gopkg.in/yaml.v3@v3.0.0/decode.go"}, true, "gopkg.in/yaml.v3", "v3.0.0", "decoder.unmarshal", "gopkg.in/yaml.v3"},
		{Frame{"gopkg.in/yaml%2ev3.Unmarshal", "/root/go/pkg/mod/gopkg.in/yaml.v3@v3.0.0/yaml.go"}, true, "gopkg.in/yaml.v3", "v3.0.0", "Unmarshal", "gopkg.in/yaml.v3"},
		{Frame{"gopkg.in/yaml%2ev3.Unmarshal", "/root/go/pkg/mod/gopkg.in/yaml.v3@v3.0.1/yaml.go"}, true, "gopkg.in/yaml.v3", "v3.0.1", "Unmarshal", "gopkg.in/yaml.v3"},
		{Frame{"gopkg.in/yaml%2ev3.Marshal", "/src/app/vendor/gopkg.in/yaml.v3/yaml.go"}, true, "", "", "Marshal", "gopkg.in/yaml.v3"},
		{Frame{"example.com/app/internal/db.Open", "/src/app/internal/db/db.go"}, true, "example.com/app", "", "Open", "example.com/app/internal/db"},
		// From here, frames whose name or file starts as the frame
		// before's does, in another package or directory: the frame
		// before's package is not taken for theirs.
		{Frame{"example.com/app/internal/db.x/y.F", "/src/app/internal/db/db.go"}, true, "example.com/app", "", "F", "example.com/app/internal/db.x/y"},
		{Frame{"example.com/app/internal/db.Close", "/src/app/internal/db/db.go"}, true, "example.com/app", "", "Close", "example.com/app/internal/db"},
		{Frame{"example.com/app/internal/db.Close", "/src/app/internal/db/example.com/app@v9.0.0/db.go"}, true, "example.com/app", "v9.0.0", "Close", "example.com/app/internal/db"},
		{Frame{"example.com/app/internal/db.Open1", "/src/app/internal/db/db.go"}, true, "example.com/app", "", "Open1", "example.com/app/internal/db"},
		{Frame{"example.com/app/internal/dbx.F", "/src/app/internal/db/db.go"}, true, "example.com/app", "", "F", "example.com/app/internal/dbx"},
		{Frame{"example.com/app/internal/db.Open2", "/src/app/internal/db/db.go"}, true, "example.com/app", "", "Open2", "example.com/app/internal/db"},
		{Frame{"example.net/zzz/internal/db.F", "/src/app/internal/db/db.go"}, true, "", "", "F", "example.net/zzz/internal/db"},
		{Frame{"example.com/app/internal/db.Open3", "/src/app/internal/db/db.go"}, true, "example.com/app", "", "Open3", "example.com/app/internal/db"},
		{Frame{"example.com/app/internal/db.F", "/e/example.com/app@7/db.go"}, true, "example.com/app", "7", "F", "example.com/app/internal/db"},
		{Frame{"gopkg.in/yaml%2ev3.Unmarshal", "/src/app/vendor/gopkg.in/yaml.v3/yaml.go"}, true, "", "", "Unmarshal", "gopkg.in/yaml.v3"},
		{Frame{"gopkg.in/yaml.v3.Marshal", "/src/app/vendor/gopkg.in/yaml.v3/yaml.go"}, true, "", "", "v3.Marshal", "gopkg.in/yaml"},
		{Frame{"a//b.F", "/src/a/b/f.go"}, false, "", "", "", ""},
		{Frame{"a//b.G", "/src/a/b/f.go"}, false, "", "", "", ""},
	}
	for _, tt := range tests {
		fn, ok := a.Attribute(tt.frame)
		if ok != tt.ok || fn.Module != tt.module || fn.Version != tt.vers || fn.Symbol != tt.symbol || fn.Package != tt.pkg {
			t.Errorf("Attribute(%v) = %+v, %v; want package %q symbol %q module %q version %q, %v",
				tt.frame, fn, ok, tt.pkg, tt.symbol, tt.module, tt.vers, tt.ok)
		}
	}
}
