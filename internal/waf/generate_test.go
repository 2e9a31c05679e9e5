package waf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/telemetry"
)

func TestClassify(t *testing.T) {
	db := loadRecords(t)
	tests := []struct {
		id, pkg string
		want    Class
	}{
		// CWE-20, CWE-400, CWE-502, CWE-917, and a summary ("Remote
		// code injection") no text rule takes: the class order picks
		// CWE-917.
		{"GHSA-jfh8-c2jp-5v3q", "org.apache.logging.log4j:log4j-core", ClassExpressionInjection},
		{"GO-2026-5970", "golang.org/x/text", ClassOversizedInput},
		{"GO-2020-0036", "gopkg.in/yaml.v2", ClassParserBomb},
		{"GO-2026-5025", "golang.org/x/net", ClassXSS},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, err := Classify(db.Get(tt.id), tt.pkg)
			if err != nil {
				t.Fatal(err)
			}
			if got.Class != tt.want {
				t.Errorf("class %s (%s), want %s", got.Class, got.Reason, tt.want)
			}
		})
	}
	if _, err := Classify(nil, "x"); !errors.Is(err, ErrUnclassified) {
		t.Errorf("nil record: %v, want ErrUnclassified", err)
	}
}

// TestGenerateScope checks which findings get patches, the scope and the
// deterministic ids.
func TestGenerateScope(t *testing.T) {
	db := loadRecords(t)
	as := []assess.Assessment{
		executedExposed("gateway", "GO-2026-5970", "golang.org/x/text", "GET /search", "catalog.Catalog Get"),
		executedExposed("gateway", "GO-2020-0036", "gopkg.in/yaml.v2"),
		executedExposed("gateway", "GO-9999-0001", "example.com/x", "GET /x"),
	}
	internal := executedExposed("catalog", "GO-2026-5025", "golang.org/x/net", "GET /products")
	internal.Exposure.Level = assess.Internal
	loaded := executedExposed("gateway", "GO-2026-5025", "golang.org/x/net", "GET /search")
	loaded.Reachability.Verdict = assess.Loaded
	as = append(as, internal, loaded)

	set, err := Generate(DefaultConfig(), as, db, shopTraffic())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range set.Patches {
		got = append(got, p.Vulnerability+" "+string(p.Class)+" "+strings.Join(endpointNames(p.Endpoints), ","))
	}
	want := []string{
		"GO-2020-0036 parser_bomb POST /orders,GET /products/{id},GET /search",
		"GO-2026-5970 oversized_input GET /search",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("patches (-want +got):\n%s", diff)
	}
	if len(set.Skipped) != 1 || set.Skipped[0].Vulnerability != "GO-9999-0001" {
		t.Errorf("skipped %+v, want GO-9999-0001 without a record", set.Skipped)
	}
	again, err := Generate(DefaultConfig(), as[:1], db, shopTraffic())
	if err != nil {
		t.Fatal(err)
	}
	if again.Patches[0].IDs != set.Patches[1].IDs {
		t.Errorf("ids of GO-2026-5970 changed with the set: %v then %v", set.Patches[1].IDs, again.Patches[0].IDs)
	}
	for _, p := range set.Patches {
		for _, r := range p.Rules {
			if r.ID < p.IDs[0] || r.ID > p.IDs[1] {
				t.Errorf("rule %d outside its block %v", r.ID, p.IDs)
			}
		}
	}
}

func endpointNames(eps []Endpoint) []string {
	var out []string
	for _, e := range eps {
		out = append(out, e.String())
	}
	return out
}

// TestDetectionOnlyDowngrade: a template rule that matches legitimate
// traffic is written pass+log with the reason, and the traffic passes.
func TestDetectionOnlyDowngrade(t *testing.T) {
	// The files endpoint legitimately takes relative paths with "..".
	var spans []telemetry.Span
	for range 20 {
		spans = append(spans, serverSpan("gateway", "GET", "/files", "/files", "path=..%2Fshared%2Freadme.txt", nil))
	}
	traffic := trafficFromSpans(spans, 0)
	p := Patch{Service: "gateway", Vulnerability: "TEST-1", Classification: Classification{Class: ClassPathTraversal}}
	p.Endpoints = mergeEndpoints(nil, []string{"GET /files"}, &p.Notes)
	build(DefaultConfig(), &p, 4_900_100, traffic)
	set := &PatchSet{IDRange: [2]int{4_900_000, 4_999_999}, Patches: []Patch{p}}
	corpus, err := LoadCorpus(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(context.Background(), set, traffic, corpus); err != nil {
		t.Fatal(err)
	}
	got := set.Patches[0]
	v := got.Validation
	if v.LegitimatePassed != v.LegitimateTotal || v.LegitimateTotal == 0 {
		t.Errorf("legitimate %d of %d passed", v.LegitimatePassed, v.LegitimateTotal)
	}
	if v.DetectionOnly != 1 {
		t.Errorf("%d rules detection-only, want 1", v.DetectionOnly)
	}
	for _, r := range got.Rules {
		if r.ID != 4_900_110 {
			if r.Kind != KindScope && r.Mode != ModeBlock {
				t.Errorf("rule %d (%s) is %s", r.ID, r.Name, r.Mode)
			}
			continue
		}
		if r.Mode != ModeDetect || !strings.Contains(r.Reason, "GET /files?path=..%2Fshared") {
			t.Errorf("directory traversal rule: mode %s, reason %q", r.Mode, r.Reason)
		}
		if strings.Contains(r.SecLang, "deny") || !strings.Contains(r.SecLang, "pass,log") || !strings.Contains(r.SecLang, "evident/detection-only") {
			t.Errorf("detection-only rule still blocks:\n%s", r.SecLang)
		}
	}
	if !strings.Contains(got.SecLang(), "# detection-only: matched 1 of 1 legitimate requests") {
		t.Errorf("the .conf does not say why:\n%s", got.SecLang())
	}
}

// TestExportGolden writes the shop's patch set and compares the files.
func TestExportGolden(t *testing.T) {
	dir, _ := shopRules(t)
	for _, name := range []string{"gateway.conf", EngineFile, "plugins/evident-gateway-before.conf", "plugins/evident-gateway-config.conf"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "golden", strings.ReplaceAll(name, "/", "_")+".golden")
		if *update {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	// The plugin files and the engine file load together with the
	// service file in one engine: ids do not collide.
	rules, err := LoadRules(dir, []string{"gateway"})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "plugins", "evident-gateway-config.conf"))
	if _, err := newWAF(string(before), rules); err != nil {
		t.Error(err)
	}
}

// TestExportKeepsServicesApart exports the patches of two services whose
// names differ only in what a file name or a CRS variable cannot hold
// (a path separator, a "..", a letter's case): each must keep its own
// files, and switching one's CRS plugin off must leave the other's
// patches on. The names were once both made "shop_cart", and the second
// service's files overwrote the first's; "Cart" and "cart" got one
// tx.evident-…-plugin_enabled switch, as SecLang's TX names ignore case.
func TestExportKeepsServicesApart(t *testing.T) {
	db := loadRecords(t)
	for _, tt := range []struct{ a, b string }{
		{"shop/cart", "shop_cart"},
		{"shop cart", "shop_cart"},
		{"shop..cart", "shop_cart"},
		{"Cart", "cart"},
		{"Cart", fileName("Cart")}, // a service named after another's files
	} {
		t.Run(tt.a+" "+tt.b, func(t *testing.T) {
			// a's patch guards /search, b's /find.
			var spans []telemetry.Span
			for _, q := range []string{"q=tea", "q=creme"} {
				spans = append(spans, serverSpan(tt.a, "GET", "/search", "/search", q, nil), serverSpan(tt.b, "GET", "/find", "/find", q, nil))
			}
			set, err := Generate(DefaultConfig(), []assess.Assessment{
				executedExposed(tt.a, "GO-2026-5970", "golang.org/x/text", "GET /search"),
				executedExposed(tt.b, "GO-2026-5970", "golang.org/x/text", "GET /find"),
			}, db, trafficFromSpans(spans, 0))
			if err != nil {
				t.Fatal(err)
			}
			if len(set.Patches) != 2 {
				t.Fatalf("got %d patches, want 2", len(set.Patches))
			}
			dir := t.TempDir()
			if err := Export(dir, set); err != nil {
				t.Fatal(err)
			}
			if a, b := fileName(tt.a), fileName(tt.b); a == b || strings.EqualFold(a, b) {
				t.Errorf("fileName(%q) = %q, fileName(%q) = %q: want names apart, whatever the case", tt.a, a, tt.b, b)
			}
			for _, p := range set.Patches {
				rules, err := LoadRules(dir, []string{p.Service})
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(rules, fmt.Sprintf("id:%d,", p.IDs[0])) {
					t.Errorf("the rules of %q lack its patch %v: another service's file took its place", p.Service, p.IDs)
				}
			}
			// As CRS loads plugins: crs-setup.conf (where a's plugin is
			// switched off), every -config.conf, every -before.conf.
			plugin := func(svc, part string) string {
				data, err := os.ReadFile(filepath.Join(dir, PluginsDir, "evident-"+fileName(svc)+"-"+part+".conf"))
				if err != nil {
					t.Fatal(err)
				}
				return string(data)
			}
			rules := fmt.Sprintf("SecAction \"id:1,phase:1,pass,nolog,setvar:'tx.evident-%s-plugin_enabled=0'\"\n", fileName(tt.a))
			for _, part := range []string{"config", "before"} {
				rules += plugin(tt.a, part) + plugin(tt.b, part)
			}
			engine, err := os.ReadFile(filepath.Join(dir, EngineFile))
			if err != nil {
				t.Fatal(err)
			}
			w, err := newWAF(string(engine), rules)
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				target  string
				blocked bool
			}{
				{"/search?q=%ff%fe%fd", false}, // a's patch, switched off
				{"/find?q=%ff%fe%fd", true},    // b's, still on
			} {
				tx := w.NewTransaction()
				it, err := inspectRequest(tx, Request{Method: "GET", Target: tc.target})
				tx.Close()
				if err != nil {
					t.Fatal(err)
				}
				if (it != nil) != tc.blocked {
					t.Errorf("GET %s with %q's plugin off: blocked %v, want %v", tc.target, tt.a, it != nil, tc.blocked)
				}
			}
		})
	}
}

// TestExportRemovesStale exports one set over another in the same
// directory: the files of the first that the second does not write are
// removed, since LoadRules and CRS load every file there. The stale
// gateway.conf of a fixed vulnerability was enforced on, while
// patches.json listed no patch. Files of the operator's own stay.
func TestExportRemovesStale(t *testing.T) {
	_, shop := shopRules(t)
	empty := &PatchSet{IDRange: shop.IDRange}
	// The shop's patch with a rule only the proxy enforces, which gives
	// it a proxy/gateway.conf.
	var withProxy PatchSet
	data, err := json.Marshal(shop)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &withProxy); err != nil {
		t.Fatal(err)
	}
	withProxy.Patches[0].Rules[1].ProxyOnly = true
	gateway := []string{"gateway.conf", "plugins/evident-gateway-after.conf", "plugins/evident-gateway-before.conf", "plugins/evident-gateway-config.conf"}
	own := []string{"crs-setup.conf", "plugins/mine-before.conf", "proxy/mine.conf"}
	tests := []struct {
		name          string
		first, second *PatchSet
		want          []string // the .conf files left besides the engine file
	}{
		{"the same set", shop, shop, append(append([]string{}, gateway...), own...)},
		{"no patch any more", shop, empty, own},
		{"no proxy-only rule any more", &withProxy, shop, append(append([]string{}, gateway...), own...)},
		{"a proxy-only rule now", shop, &withProxy, append(append([]string{}, gateway...), append(own, "proxy/gateway.conf")...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := Export(dir, tt.first); err != nil {
				t.Fatal(err)
			}
			for _, name := range own {
				if err := os.WriteFile(filepath.Join(dir, name), []byte("# the operator's own\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := Export(dir, tt.second); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, pattern := range []string{"*.conf", "plugins/*.conf", "proxy/*.conf"} {
				names, err := filepath.Glob(filepath.Join(dir, pattern))
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range names {
					if rel, _ := filepath.Rel(dir, n); rel != EngineFile {
						got = append(got, filepath.ToSlash(rel))
					}
				}
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("files after the second export (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExportManyServicesLoadInCRS: the plugins of 60 services load
// together, as CRS loads every plugins/*-config.conf and *-before.conf:
// their switches took ids from the engine block, two per service, and
// from the 46th service on the ids of a patch, which the engine refused.
func TestExportManyServicesLoadInCRS(t *testing.T) {
	db := loadRecords(t)
	var as []assess.Assessment
	var spans []telemetry.Span
	for i := range 60 {
		svc := fmt.Sprintf("svc%02d", i)
		as = append(as, executedExposed(svc, "GO-2026-5970", "golang.org/x/text", "GET /search"))
		spans = append(spans, serverSpan(svc, "GET", "/search", "/search", "q=tea", nil))
	}
	traffic := trafficFromSpans(spans, 0)
	set, err := Generate(DefaultConfig(), as, db, traffic)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Patches) != 60 {
		t.Fatalf("got %d patches, want 60", len(set.Patches))
	}
	// A patch in the first block after the engine's, as its hash may put
	// it: the ids the switches of the 46th service on took.
	if !slices.ContainsFunc(set.Patches, func(p Patch) bool { return p.IDs[0] == set.IDRange[0]+idBlock }) {
		build(DefaultConfig(), &set.Patches[0], set.IDRange[0]+idBlock, traffic)
	}
	dir := t.TempDir()
	if err := Export(dir, set); err != nil {
		t.Fatal(err)
	}
	var confs []string
	for _, kind := range []string{"config", "before"} {
		files, err := filepath.Glob(filepath.Join(dir, "plugins", "*-"+kind+".conf"))
		if err != nil || len(files) != 60 {
			t.Fatalf("%d plugin %s files (%v), want 60", len(files), kind, err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			confs = append(confs, string(data))
		}
	}
	if _, err := newWAF(confs...); err != nil {
		t.Errorf("the plugins of 60 services do not load together: %v", err)
	}
}
