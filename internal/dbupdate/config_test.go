package dbupdate

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Dir = "data"
		return c
	}
	tests := []struct {
		name    string
		modify  func(*Config)
		wantErr []string // empty: valid
	}{
		{name: "default with a directory", modify: func(*Config) {}},
		{name: "no KEV", modify: func(c *Config) { c.KEVURL = "" }},
		{name: "all ecosystems", modify: func(c *Config) { c.Ecosystems = nil; c.AllEcosystems = true }},
		{name: "spaces and dots", modify: func(c *Config) { c.Ecosystems = []string{"Red Hat", "crates.io"} }},
		{name: "no directory", modify: func(c *Config) { c.Dir = "" }, wantErr: []string{"no data directory"}},
		{name: "base URL not http", modify: func(c *Config) { c.BaseURL = "gs://osv-vulnerabilities" }, wantErr: []string{`base URL "gs://osv-vulnerabilities": want an http, https or file URL`}},
		{name: "base URL of a directory", modify: func(c *Config) { c.BaseURL = "file:///mnt/osv-mirror" }},
		{name: "base URL of a directory on localhost", modify: func(c *Config) { c.BaseURL = "file://localhost/mnt/osv-mirror" }},
		{name: "base URL a path", modify: func(c *Config) { c.BaseURL = "/mnt/osv-mirror" }, wantErr: []string{`base URL "/mnt/osv-mirror": a path: write it as the URL file:///mnt/osv-mirror`}},
		{name: "file URL of another host", modify: func(c *Config) { c.BaseURL = "file://nas/osv" }, wantErr: []string{`file URL with host "nas": want file:///absolute/path`}},
		{name: "file URL relative", modify: func(c *Config) { c.BaseURL = "file:osv" }, wantErr: []string{`file URL without an absolute path`}},
		{name: "base URL without host", modify: func(c *Config) { c.BaseURL = "https:///x" }, wantErr: []string{`base URL "https:///x": no host`}},
		{name: "base URL unparsable", modify: func(c *Config) { c.BaseURL = "http://a b" }, wantErr: []string{`base URL "http://a b": parse`}},
		{name: "KEV URL relative", modify: func(c *Config) { c.KEVURL = "kev.json" }, wantErr: []string{`KEV URL "kev.json": want an http, https or file URL`}},
		{name: "no ecosystems", modify: func(c *Config) { c.Ecosystems = nil }, wantErr: []string{"no ecosystems to update"}},
		{name: "all and a list", modify: func(c *Config) { c.AllEcosystems = true }, wantErr: []string{"all ecosystems and a list of ecosystems (Go, npm, PyPI, Maven) are exclusive"}},
		{name: "path in ecosystem", modify: func(c *Config) { c.Ecosystems = []string{"Go", "../x"} }, wantErr: []string{`ecosystem 2 "../x": contains one of`}},
		{name: "dot dot", modify: func(c *Config) { c.Ecosystems = []string{".."} }, wantErr: []string{`ecosystem 1 "..": not a directory name`}},
		{name: "empty ecosystem", modify: func(c *Config) { c.Ecosystems = []string{""} }, wantErr: []string{`ecosystem 1 "": empty name`}},
		{name: "padded ecosystem", modify: func(c *Config) { c.Ecosystems = []string{" Go"} }, wantErr: []string{`ecosystem 1 " Go": leading or trailing space`}},
		{name: "control character", modify: func(c *Config) { c.Ecosystems = []string{"Go\n"} }, wantErr: []string{`leading or trailing space`}},
		{name: "tab inside", modify: func(c *Config) { c.Ecosystems = []string{"G\to"} }, wantErr: []string{`ecosystem 1 "G\to": contains a control character`}},
		{name: "duplicate", modify: func(c *Config) { c.Ecosystems = []string{"Go", "Go"} }, wantErr: []string{`ecosystem "Go" is listed twice`}},
		{name: "golang", modify: func(c *Config) { c.Ecosystems = []string{"golang"} }, wantErr: []string{`ecosystem 1 "golang": osv.dev names it "Go"`}},
		{name: "lower case", modify: func(c *Config) { c.Ecosystems = []string{"Go", "pypi"} }, wantErr: []string{`ecosystem 2 "pypi": osv.dev names it "PyPI"`}},
		{name: "an ecosystem the schema does not list", modify: func(c *Config) { c.Ecosystems = []string{"Nope"} }},
		{name: "no client", modify: func(c *Config) { c.HTTPClient = nil }, wantErr: []string{"no HTTP client"}},
		{name: "zero concurrency", modify: func(c *Config) { c.Concurrency = 0 }, wantErr: []string{"concurrency 0 is below 1"}},
		{name: "negative retries", modify: func(c *Config) { c.Retries = -1 }, wantErr: []string{"retries -1 is negative"}},
		{name: "max wait below wait", modify: func(c *Config) { c.MaxRetryWait = time.Millisecond }, wantErr: []string{"retry wait 1s and max retry wait 1ms"}},
		{name: "no stall timeout", modify: func(c *Config) { c.StallTimeout = 0 }, wantErr: []string{"stall timeout 0s is not positive"}},
		{name: "no header timeout", modify: func(c *Config) { c.HeaderTimeout = 0 }, wantErr: []string{"header timeout 0s is not positive"}},
		{name: "negative timeout", modify: func(c *Config) { c.Timeout = -time.Second }, wantErr: []string{"timeout -1s is negative"}},
		{name: "a timeout", modify: func(c *Config) { c.Timeout = time.Minute }},
		{
			name:    "every error at once",
			modify:  func(c *Config) { c.Dir = ""; c.Concurrency = 0; c.BaseURL = "" },
			wantErr: []string{"base URL", "no data directory", "concurrency 0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.modify(&c)
			err := c.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate() = %v, want ErrConfig", err)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate() = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3400219: "3.2 MiB", 5 << 30: "5.0 GiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestSuggestEcosystem(t *testing.T) {
	tests := []struct {
		eco   string
		known []string
		want  string
	}{
		{"golang", schemaEcosystems, "Go"},
		{"go", schemaEcosystems, "Go"},
		{"GO", schemaEcosystems, "Go"},
		{"Go", schemaEcosystems, ""},
		{"pip", schemaEcosystems, "PyPI"},
		{"python", schemaEcosystems, "PyPI"},
		{"pypi", schemaEcosystems, "PyPI"},
		{"NPM", schemaEcosystems, "npm"},
		{"node.js", schemaEcosystems, "npm"},
		{"maven", schemaEcosystems, "Maven"},
		{"java", schemaEcosystems, "Maven"},
		{"rubygems", schemaEcosystems, "RubyGems"},
		{"gem", schemaEcosystems, "RubyGems"},
		{"cargo", schemaEcosystems, "crates.io"},
		{"rust", schemaEcosystems, "crates.io"},
		{"crates-io", schemaEcosystems, "crates.io"},
		{"nuget", schemaEcosystems, "NuGet"},
		{"composer", schemaEcosystems, "Packagist"},
		{"redhat", schemaEcosystems, "Red Hat"},
		{"rocky_linux", schemaEcosystems, "Rocky Linux"},
		{"Nope", schemaEcosystems, ""},
		// An alias whose target the list does not hold suggests nothing.
		{"golang", []string{"PyPI", "npm"}, ""},
		// A live list's own names are suggested too.
		{"newEco", []string{"Go", "NewEco"}, "NewEco"},
	}
	for _, tt := range tests {
		t.Run(tt.eco, func(t *testing.T) {
			if got := suggestEcosystem(tt.eco, tt.known); got != tt.want {
				t.Errorf("suggestEcosystem(%q) = %q, want %q", tt.eco, got, tt.want)
			}
		})
	}
}

// TestAliasesAreNotNames: an alias that folded to a real name would hide
// it from the case-insensitive match.
func TestAliasesAreNotNames(t *testing.T) {
	for alias, target := range ecosystemAliases {
		if alias != foldEcosystem(alias) {
			t.Errorf("alias %q is not folded", alias)
		}
		for _, name := range schemaEcosystems {
			if foldEcosystem(name) == alias {
				t.Errorf("alias %q folds to the ecosystem %q", alias, name)
			}
		}
		if !slices.Contains(schemaEcosystems, target) {
			t.Errorf("alias %q names %q, which the schema does not list", alias, target)
		}
	}
}

// TestRedirectPolicy: redirects are followed, but not to a local file nor
// from https to plain http, where the checksums that come with the file
// would prove nothing.
func TestRedirectPolicy(t *testing.T) {
	req := func(u string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tt := range []struct {
		name     string
		from, to string
		wantErr  string
	}{
		{"https to https", "https://osv-vulnerabilities.storage.googleapis.com/Go/all.zip", "https://mirror.example/Go/all.zip", ""},
		{"http to http", "http://mirror.internal/Go/all.zip", "http://mirror2.internal/Go/all.zip", ""},
		{"http to https", "http://mirror.internal/Go/all.zip", "https://mirror.example/Go/all.zip", ""},
		{"https to http", "https://osv-vulnerabilities.storage.googleapis.com/Go/all.zip", "http://mirror.example/Go/all.zip", "from https to plain http"},
		{"to a file", "https://mirror.example/Go/all.zip", "file:///etc/passwd", "a server may not name a local file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := noRedirectToFile(req(tt.to), []*http.Request{req(tt.from)})
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrRedirect) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("= %v, want ErrRedirect saying %q", err, tt.wantErr)
			}
		})
	}
}
