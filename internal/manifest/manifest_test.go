package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/osv"
)

func TestParsers(t *testing.T) {
	tests := []struct {
		name  string
		parse func([]byte) ([]Requirement, error)
		in    string
		want  []Requirement
	}{
		{"go.mod require line and block, go directive", ParseGoMod,
			"module m\n\ngo 1.26.0\n\nrequire golang.org/x/text v0.3.5\n\nrequire (\n\tgolang.org/x/net v0.54.0\n\tgopkg.in/yaml.v2 v2.2.7 // indirect\n)\n",
			[]Requirement{{"stdlib", "1.26.0", 3}, {"golang.org/x/text", "v0.3.5", 5}, {"golang.org/x/net", "v0.54.0", 8}, {"gopkg.in/yaml.v2", "v2.2.7", 9}}},
		{"go.mod toolchain and replace", ParseGoMod,
			"module m\ngo 1.26.0\ntoolchain go1.26.8\nrequire github.com/old/lib v1.0.0\nreplace github.com/old/lib => github.com/new/lib v1.2.0\nreplace example.com/local => ../local\n",
			[]Requirement{{"stdlib", "go1.26.8", 3}, {"github.com/old/lib", "v1.2.0", 5}, {"github.com/new/lib", "v1.2.0", 5}, {"example.com/local", "", 6}, {"github.com/old/lib", "v1.0.0", 4}}},
		{"package-lock v3", ParsePackageLock,
			"{\n  \"lockfileVersion\": 3,\n  \"packages\": {\n    \"\": {\"name\": \"app\"},\n    \"node_modules/lodash\": {\n      \"version\": \"4.17.20\"\n    },\n    \"node_modules/a/node_modules/@s/b\": {\"version\": \"1.0.0\"},\n    \"packages/workspace\": {\"version\": \"0.1.0\"}\n  },\n  \"dependencies\": {\"lodash\": {\"version\": \"4.17.20\"}}\n}\n",
			[]Requirement{{"lodash", "4.17.20", 5}, {"@s/b", "1.0.0", 8}}},
		{"package-lock v1", ParsePackageLock,
			"{\n  \"lockfileVersion\": 1,\n  \"dependencies\": {\n    \"lodash\": {\n      \"version\": \"4.17.20\",\n      \"dependencies\": {\"nested\": {\"version\": \"1.0.0\"}}\n    }\n  }\n}\n",
			[]Requirement{{"lodash", "4.17.20", 4}, {"nested", "1.0.0", 6}}},
		{"package-lock v3 alias and link", ParsePackageLock,
			"{\n  \"lockfileVersion\": 3,\n  \"packages\": {\n    \"node_modules/sw\": {\"name\": \"string-width\", \"version\": \"4.2.0\"},\n    \"node_modules/a/node_modules/@s/alias\": {\"name\": \"@s/b\", \"version\": \"1.0.0\"},\n    \"node_modules/ws\": {\"resolved\": \"packages/ws\", \"link\": true},\n    \"packages/ws\": {\"name\": \"ws\", \"version\": \"0.1.0\"}\n  }\n}\n",
			[]Requirement{{"string-width", "4.2.0", 4}, {"@s/b", "1.0.0", 5}, {"ws", "", 6}}},
		{"package-lock v1 alias, nested", ParsePackageLock,
			"{\n  \"lockfileVersion\": 1,\n  \"dependencies\": {\n    \"sw\": {\"version\": \"npm:string-width@4.2.0\"},\n    \"a\": {\n      \"version\": \"1.0.0\",\n      \"requires\": {\"b\": \"npm:@s/b@^1\"},\n      \"dependencies\": {\n        \"b\": {\"version\": \"npm:@s/b@1.0.0\", \"dependencies\": {\"c\": {\"version\": \"2.0.0\"}}}\n      }\n    },\n    \"d\": {\"version\": \"3.0.0\"}\n  }\n}\n",
			[]Requirement{{"string-width", "4.2.0", 4}, {"a", "1.0.0", 5}, {"@s/b", "1.0.0", 9}, {"c", "2.0.0", 9}, {"d", "3.0.0", 12}}},
		{"pom dependencies, management and exclusions", ParsePOM,
			"<project>\n<dependencyManagement><dependencies>\n<dependency>\n<groupId>g</groupId>\n<artifactId>managed</artifactId>\n<version>${managed.version}</version>\n</dependency>\n</dependencies></dependencyManagement>\n<dependencies>\n<dependency>\n  <groupId>org.apache.logging.log4j</groupId>\n  <artifactId>log4j-core</artifactId>\n  <version>2.14.1</version>\n  <exclusions><exclusion><groupId>x</groupId><artifactId>y</artifactId></exclusion></exclusions>\n</dependency>\n</dependencies>\n</project>\n",
			[]Requirement{{"g:managed", "${managed.version}", 5}, {"org.apache.logging.log4j:log4j-core", "2.14.1", 12}}},
		{"requirements", ParseRequirements,
			"# comment\nDjango==3.2.4  # pinned\nrequests[security] >= 2.0\n-r base.txt\n--hash=sha256:abc\nZope.Interface === 5.4.0 ; python_version >= \"3.8\"\nflask \\\n    ==2.0.1\nmypkg @ https://example.com/mypkg.zip\ngit+https://github.com/x/y#egg=y\n./local\n",
			[]Requirement{{"django", "3.2.4", 2}, {"requests", "", 3}, {"zope-interface", "5.4.0", 6}, {"flask", "2.0.1", 7}, {"mypkg", "", 9}}},
		// pip 23.2 reads these as flask, requests and urllib3: a comment
		// line ends with its backslash, a requirement's comment does not.
		{"requirements, backslash after a comment", ParseRequirements,
			"# pins \\\nflask==2.0.1\nrequests==2.25.1 # pinned \\\njinja2==2.11.2\nurllib3==1.26.4 \\\n  # trailing\n",
			[]Requirement{{"flask", "2.0.1", 2}, {"requests", "2.25.1", 3}, {"urllib3", "1.26.4", 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("requirements (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParserErrors(t *testing.T) {
	tests := []struct {
		name  string
		parse func([]byte) ([]Requirement, error)
		in    string
		want  string
	}{
		{"go.mod", ParseGoMod, "module m\nrequire (\n", "parse go.mod"},
		{"go.mod unknown directive", ParseGoMod, "module m\nfrobnicate x\n", "unknown directive"},
		{"package-lock not an object", ParsePackageLock, "[1]", "parse package-lock.json"},
		{"package-lock truncated", ParsePackageLock, "{\"packages\": {\"node_modules/a\": {", "packages"},
		{"package-lock entry not an object", ParsePackageLock, "{\"packages\": {\"node_modules/a\": \"1.0.0\"}}", `parse package-lock.json: packages: "node_modules/a": want "{", got 1.0.0`},
		{"package-lock version not a string", ParsePackageLock, "{\"dependencies\": {\"a\": {\"version\": 1}}}", `parse package-lock.json: dependencies: "a": version: json: cannot unmarshal number`},
		{"pom truncated", ParsePOM, "<project><dependencies>", "parse pom.xml"},
		{"pom not xml", ParsePOM, "<project></dependencies>", "parse pom.xml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.parse([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestLocate(t *testing.T) {
	root := filepath.Join("testdata", "monorepo")
	tree, skipped, err := Scan(root, allEcosystems())
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 1 || !strings.Contains(skipped[0].Error(), filepath.Join("broken", "go.mod")) {
		t.Errorf("skipped = %v, want the broken go.mod", skipped)
	}
	type query struct{ ecosystem, name, version, service string }
	tests := []struct {
		name string
		q    query
		want Location
		ok   bool
	}{
		{"the service's own go.mod", query{osv.EcosystemGo, "golang.org/x/net", "v0.54.0", "gateway"}, Location{"services/gateway/go.mod", 8}, true},
		{"another service's", query{osv.EcosystemGo, "golang.org/x/net", "v0.50.0", "orders"}, Location{"services/orders/go.mod", 6}, true},
		{"version decides without a service", query{osv.EcosystemGo, "golang.org/x/net", "v0.50.0", ""}, Location{"services/orders/go.mod", 6}, true},
		{"nearest the root otherwise", query{osv.EcosystemGo, "golang.org/x/text", "v0.1.0", "billing"}, Location{"go.mod", 5}, true},
		{"the pinned version wins over depth", query{osv.EcosystemGo, "golang.org/x/text", "v0.37.0", "billing"}, Location{"services/gateway/go.mod", 9}, true},
		{"stdlib at the toolchain line", query{osv.EcosystemGo, "stdlib", "v1.26.8", "gateway"}, Location{"services/gateway/go.mod", 5}, true},
		{"a replaced module at the replace line", query{osv.EcosystemGo, "github.com/new/lib", "v1.2.0", ""}, Location{"services/gateway/go.mod", 12}, true},
		{"undeclared: the service's go.mod, no line", query{osv.EcosystemGo, "golang.org/x/crypto", "v0.1.0", "orders"}, Location{"services/orders/go.mod", 0}, true},
		{"undeclared: the root go.mod, no line", query{osv.EcosystemGo, "golang.org/x/crypto", "v0.1.0", "billing"}, Location{"go.mod", 0}, true},
		{"npm, not the installed package's lock", query{osv.EcosystemNPM, "lodash", "4.17.20", "web"}, Location{"web/package-lock.json", 16}, true},
		{"npm scoped", query{osv.EcosystemNPM, "@scope/pkg", "2.0.0", ""}, Location{"web/package-lock.json", 13}, true},
		{"maven", query{osv.EcosystemMaven, "org.apache.logging.log4j:log4j-core", "2.14.1", ""}, Location{"java/pom.xml", 9}, true},
		{"maven exclusions are no dependency", query{osv.EcosystemMaven, "org.example:excluded", "", ""}, Location{"java/pom.xml", 0}, true},
		{"pypi normalized", query{osv.EcosystemPyPI, "Zope_Interface", "5.4.0", ""}, Location{"py/requirements.txt", 5}, true},
		{"no manifest of the ecosystem", query{osv.EcosystemCratesIO, "serde", "1.0.0", ""}, Location{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tree.Locate(tt.q.ecosystem, tt.q.name, tt.q.version, tt.q.service)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Locate(%+v) = %+v, %v; want %+v, %v", tt.q, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestLocateAmbiguous(t *testing.T) {
	dir := t.TempDir()
	for _, svc := range []string{"a", "b"} {
		if err := os.MkdirAll(filepath.Join(dir, svc), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, svc, "go.mod"), []byte("module "+svc+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tree, _, err := Scan(dir, []string{osv.EcosystemGo})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := tree.Locate(osv.EcosystemGo, "golang.org/x/text", "v0.3.5", "c"); ok {
		t.Errorf("Locate = %+v: two manifests, neither the service's nor the root's, is no answer", got)
	}
}

func TestScanErrors(t *testing.T) {
	if _, _, err := Scan(filepath.Join("testdata", "nope"), allEcosystems()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing root: %v", err)
	}
	if _, _, err := Scan(filepath.Join("testdata", "monorepo", "go.mod"), allEcosystems()); !errors.Is(err, ErrNotDirectory) {
		t.Errorf("file root: %v", err)
	}
	tree, skipped, err := Scan(filepath.Join("testdata", "monorepo"), []string{osv.EcosystemNPM})
	if err != nil || len(skipped) != 0 {
		t.Fatalf("npm only: %v %v (the broken go.mod is not read)", skipped, err)
	}
	if _, ok := tree.Locate(osv.EcosystemGo, "golang.org/x/text", "v0.3.5", ""); ok {
		t.Error("found a go.mod in a scan for npm")
	}
}

func TestRel(t *testing.T) {
	tree, _, err := Scan(filepath.Join("testdata", "monorepo"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in, want string
		ok       bool
	}{
		{filepath.Join("testdata", "monorepo", "reports", "gateway.json"), "reports/gateway.json", true},
		{filepath.Join("testdata", "gateway.json"), "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got, ok := tree.Rel(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("Rel(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// allEcosystems lists the ecosystems whose manifests Scan reads.
func allEcosystems() []string {
	out := make([]string, 0, len(formats))
	for _, f := range formats {
		out = append(out, f.ecosystem)
	}
	return out
}
