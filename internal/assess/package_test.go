package assess

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/knowledge"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/telemetry"
	"github.com/evidentsec/evident/internal/vulndb"
)

var update = flag.Bool("update", false, "rewrite golden files")

// nodeShop is a Node.js service "api" (exposed) that calls lodash's get on
// GET /users, a worker that zips user input into objects (zipObjectDeep,
// which sets through baseSet), and a batch job that never touches lodash.
// The frames are those @datadog/pprof reports for lodash 4.17.15 installed
// by npm.
func nodeShop(t testing.TB) *model.Snapshot {
	t.Helper()
	m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
	m.AddSpans([]telemetry.Span{
		span("api", telemetry.SpanKindServer, 1, 0, telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/users"}),
		span("worker", telemetry.SpanKindConsumer, 2, 0, telemetry.Attrs{}),
	})
	const lodash = "/srv/app/node_modules/lodash/lodash.js"
	get := attribution.Frame{Function: "get", File: lodash}
	baseGet := attribution.Frame{Function: "baseGet", File: lodash}
	zip := attribution.Frame{Function: "zipObjectDeep", File: lodash}
	baseSet := attribution.Frame{Function: "baseSet", File: lodash}
	handler := attribution.Frame{Function: "listUsers", File: "/srv/app/server.js"}
	idle := attribution.Frame{Function: "(idle)", File: ""}
	for _, svc := range []string{"api", "worker", "batch"} {
		b := &telemetry.ProfileBatch{
			Service: svc, SampleType: "wall", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: 2 * time.Hour,
			Locations: [][]attribution.Frame{{baseGet}, {get}, {handler}, {baseSet}, {zip}, {idle}},
			Samples:   []telemetry.Sample{{Locations: []int32{2}, Count: 10_000, Value: 100_000_000_000}},
		}
		switch svc {
		case "api":
			b.Samples = append(b.Samples, telemetry.Sample{Locations: []int32{0, 1, 2}, Count: 120, Value: 1_200_000_000, SpanID: "0000000000000001"})
		case "worker":
			b.Samples = append(b.Samples,
				telemetry.Sample{Locations: []int32{3, 4, 2}, Count: 35, Value: 350_000_000},
				telemetry.Sample{Locations: []int32{0, 1, 2}, Count: 5, Value: 50_000_000})
		}
		m.AddProfile(b)
	}
	return m.Snapshot()
}

// lodashFinding is lodash 4.17.15 in service as a scanner reports it,
// rated by the record.
func lodashFinding(service, id, cve, fixed string) findings.Finding {
	return findings.Finding{
		Service:       service,
		Package:       findings.Package{PURL: "pkg:npm/lodash@4.17.15", Ecosystem: osv.EcosystemNPM, Name: "lodash", Version: "4.17.15"},
		Vulnerability: findings.Vulnerability{ID: id, Aliases: []string{cve}},
		FixedVersion:  fixed,
		Sources:       []findings.Source{{Tool: "osv-scanner"}},
	}
}

// TestPackageLevel checks that code of a package with no known vulnerable
// function is never reported as the vulnerable function running: GitHub's
// record of the lodash ReDoS (CVE-2020-28500) names no function, the one of
// the zipObjectDeep prototype pollution (CVE-2020-8203) names baseSet. The
// records are real (internal/vulndb/testdata/ghsa). The policy allows
// loaded verdicts to be not_affected, which a package-level verdict must
// still not be.
func TestPackageLevel(t *testing.T) {
	db, problems, err := vulndb.Load(context.Background(), vulndb.Options{Sources: []string{"../vulndb/testdata/ghsa"}})
	if err != nil || len(problems) > 0 {
		t.Fatalf("load records: %v %v", err, problems)
	}
	cfg := DefaultConfig()
	cfg.VEX.AllowLoaded = true
	a := New(cfg, db, nodeShop(t))
	var fs []findings.Finding
	for _, svc := range []string{"api", "worker", "batch"} {
		fs = append(fs,
			lodashFinding(svc, "GHSA-29mw-wpgm-hmr9", "CVE-2020-28500", "4.17.21"),
			lodashFinding(svc, "GHSA-p6mc-m468-83gw", "CVE-2020-8203", "4.17.20"))
	}
	var b strings.Builder
	want := map[string]struct {
		verdict Verdict
		basis   Basis
		vex     string
	}{
		"api GHSA-29mw-wpgm-hmr9":    {Loaded, BasisPackage, StatusUnderInvestigation},
		"api GHSA-p6mc-m468-83gw":    {Loaded, BasisSymbol, StatusNotAffected},
		"worker GHSA-29mw-wpgm-hmr9": {Loaded, BasisPackage, StatusUnderInvestigation},
		"worker GHSA-p6mc-m468-83gw": {Executed, BasisSymbol, StatusAffected},
		"batch GHSA-29mw-wpgm-hmr9":  {NotObserved, BasisPackage, StatusNotAffected},
		"batch GHSA-p6mc-m468-83gw":  {NotObserved, BasisSymbol, StatusNotAffected},
	}
	for _, as := range a.Assess(fs) {
		r := as.Reachability
		key := as.Finding.Service + " " + as.Finding.Vulnerability.ID
		if w := want[key]; r.Verdict != w.verdict || r.Basis != w.basis || as.VEX.Status != w.vex {
			t.Errorf("%s: %s at basis %s, VEX %s; want %s at %s, VEX %s", key, r.Verdict, r.Basis, as.VEX.Status, w.verdict, w.basis, w.vex)
		}
		if r.Verdict == Loaded && r.Basis == BasisPackage && len(r.Evidence) > 0 {
			t.Errorf("%s: package-level verdict lists %v as vulnerable functions seen", key, r.Evidence)
		}
		fmt.Fprintf(&b, "%s %s: %s %s %s score %d, basis %s, symbols %v, samples %d, endpoints %v\n  reason: %s\n  priority: %s\n  vex: %s\n",
			as.Finding.Service, as.Finding.Vulnerability.ID, as.Finding.Severity.Level, r.Verdict, as.Priority.Tier, as.Priority.Score,
			r.Basis, r.Symbols, r.Samples, r.Endpoints, r.Reason, strings.Join(as.Priority.Reasons, "; "), as.VEX.Statement)
	}
	golden(t, "testdata/package-level.golden", b.String())

	// Streaming detection alerts on the vulnerable function, never on
	// package code alone.
	redos := VulnerableCodeOf(fs[0], db)
	get := attribution.Func{Language: attribution.Node, Package: "lodash", Module: "lodash", Symbol: "get"}
	if redos.Matches(get) || !redos.InPackage(get) {
		t.Errorf("package-level code: Matches(lodash.get) = %v, InPackage = %v; want false, true", redos.Matches(get), redos.InPackage(get))
	}
	baseSet := attribution.Func{Language: attribution.Node, Package: "lodash", Module: "lodash", Symbol: "baseSet"}
	if !VulnerableCodeOf(fs[1], db).Matches(baseSet) {
		t.Error("GHSA-p6mc-m468-83gw does not match lodash.baseSet")
	}
}

// golden compares got with the file, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// javaOrders is the model of the JFR recording of a real Java program that
// parses YAML with Debian's snakeyaml jar (internal/attribution/testdata/java),
// attributed with cfg.
func javaOrders(t *testing.T, cfg attribution.Config) *model.Snapshot {
	t.Helper()
	const file = "../attribution/testdata/java/orders.jfr"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	batches, err := telemetry.Limits{}.DecodeJFR(data, file)
	if err != nil {
		t.Fatal(err)
	}
	m := model.New(model.DefaultConfig(), attribution.New(cfg))
	for _, b := range batches {
		b.Service = "orders"
		m.AddProfile(b)
	}
	return m.Snapshot()
}

func mavenFinding(id, ga, version string) findings.Finding {
	g, a, _ := strings.Cut(ga, ":")
	return findings.Finding{
		Service:       "orders",
		Package:       findings.Package{PURL: "pkg:maven/" + g + "/" + a + "@" + version, Ecosystem: osv.EcosystemMaven, Name: ga, Version: version},
		Vulnerability: findings.Vulnerability{ID: id},
		Severity:      findings.Severity{Level: "high"},
		Sources:       []findings.Source{{Tool: "trivy"}},
	}
}

// TestPackageLevelJava assesses the real Java recording. JFR frames name
// classes, not jars: the artifact of a class comes from the package
// prefixes guessed from the findings' Maven coordinates, and Java code that
// no known artifact ships may be the vulnerable package's, so it never
// lets a package-level finding be not_observed. CVE-2022-1471 is found
// through the knowledge base's functions; the other findings name
// vulnerabilities no record describes, so no function is known.
func TestPackageLevelJava(t *testing.T) {
	kb, err := knowledge.Default()
	if err != nil {
		t.Fatal(err)
	}
	db, problems, err := vulndb.Load(context.Background(), vulndb.Options{Sources: []string{"../vulndb/testdata/ghsa"}, Knowledge: kb})
	if err != nil || len(problems) > 0 {
		t.Fatalf("load records: %v %v", err, problems)
	}
	snake := mavenFinding("GHSA-mjmj-j48q-9wg2", "org.yaml:snakeyaml", "1.33")
	snakeUnknown := mavenFinding("CVE-2099-0001", "org.yaml:snakeyaml", "1.33")
	text := mavenFinding("CVE-2099-0002", "org.apache.commons:commons-text", "1.9")
	index := attribution.JavaPackagesOf([]string{"org.yaml:snakeyaml", "org.apache.commons:commons-text"})
	tests := []struct {
		name    string
		cfg     attribution.Config
		finding findings.Finding
		verdict Verdict
		basis   Basis
		reason  string
	}{
		{"vulnerable function from the knowledge base", attribution.Config{}, snake, Executed, BasisSymbol, "org.yaml.snakeyaml.constructor.Constructor$Construct"},
		{"package code ran", attribution.Config{JavaPackages: index}, snakeUnknown, Loaded, BasisPackage, "code of org.yaml:snakeyaml ran (org.yaml.snakeyaml."},
		{"package not attributed", attribution.Config{}, snakeUnknown, Unknown, BasisPackage, "no frame attributed to org.yaml:snakeyaml, but Java code that no known Maven artifact ships ran"},
		{"first-party code not labelled", attribution.Config{JavaPackages: index}, text, Unknown, BasisPackage, "(com.example.orders."},
		{"package not running", attribution.Config{JavaPackages: index, FirstParty: []string{"com.example.orders"}}, text, NotObserved, BasisPackage, "no frame of the vulnerable package"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := New(DefaultConfig(), db, javaOrders(t, tt.cfg)).One(tt.finding)
			r := got.Reachability
			if r.Verdict != tt.verdict || r.Basis != tt.basis || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("%s at basis %s (%s); want %s at %s, the reason containing %q", r.Verdict, r.Basis, r.Reason, tt.verdict, tt.basis, tt.reason)
			}
		})
	}
}

// TestUnobservableEcosystems: profiles never show code of an OS package,
// a Rust crate or a gem, and a service's profiles of one runtime say
// nothing of another's packages in its image: such findings are unknown,
// never not_observed, whose VEX is not_affected (an image's Debian
// openssl, a crate, were exported not_affected and hidden from
// Trivy and Grype).
func TestUnobservableEcosystems(t *testing.T) {
	a := New(DefaultConfig(), nil, nodeShop(t))
	finding := func(p findings.Package) findings.Finding {
		return findings.Finding{Service: "batch", Package: p, Vulnerability: findings.Vulnerability{ID: "CVE-2024-5535"},
			Severity: findings.Severity{Level: "high"}, Sources: []findings.Source{{Tool: "trivy"}}}
	}
	for _, tt := range []struct {
		name string
		pkg  findings.Package
		want string // in the reason
	}{
		{"deb", findings.Package{PURL: "pkg:deb/debian/openssl@3.0.11-1~deb12u2", Ecosystem: "Debian", Name: "openssl", Version: "3.0.11-1~deb12u2"},
			"profiles attribute no code to Debian packages"},
		{"cargo", findings.Package{PURL: "pkg:cargo/hyper@0.14.10", Ecosystem: osv.EcosystemCratesIO, Name: "hyper", Version: "0.14.10"},
			"profiles attribute no code to crates.io packages"},
		{"a Go module in a Node.js service", findings.Package{PURL: "pkg:golang/golang.org/x/net@v0.1.0", Ecosystem: osv.EcosystemGo, Name: "golang.org/x/net", Version: "v0.1.0"},
			`the profiles of service "batch" hold no go code`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			as := a.Assess([]findings.Finding{finding(tt.pkg)})[0]
			if as.Reachability.Verdict != Unknown || as.VEX.Status != StatusUnderInvestigation || !strings.Contains(as.Reachability.Reason, tt.want) {
				t.Errorf("%s, VEX %s, %q; want unknown, under_investigation, saying %q", as.Reachability.Verdict, as.VEX.Status, as.Reachability.Reason, tt.want)
			}
		})
	}
	// The Node.js package of the same service is still decided.
	if as := a.Assess([]findings.Finding{lodashFinding("batch", "GHSA-29mw-wpgm-hmr9", "CVE-2020-28500", "4.17.21")})[0]; as.Reachability.Verdict != NotObserved {
		t.Errorf("lodash in batch: %s, want not_observed", as.Reachability.Verdict)
	}
}

// TestPythonSharedImportName: pycrypto and pycryptodome both ship Crypto;
// without a configuration naming one, attribution gives Crypto's frames to
// pycryptodome, so a finding on pycrypto must not read their absence
// under its own name as its code not running (it was exported
// not_affected).
func TestPythonSharedImportName(t *testing.T) {
	m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
	aes := attribution.Frame{Function: "new", File: "/usr/lib/python3/site-packages/Crypto/Cipher/AES.py"}
	app := attribution.Frame{Function: "handle", File: "/srv/app/main.py"}
	m.AddProfile(&telemetry.ProfileBatch{
		Service: "reports", SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: 2 * time.Hour,
		Locations: [][]attribution.Frame{{app}, {aes}},
		Samples: []telemetry.Sample{
			{Locations: []int32{0}, Count: 10_000, Value: 100_000_000_000},
			{Locations: []int32{1, 0}, Count: 500, Value: 5_000_000_000},
		},
	})
	a := New(DefaultConfig(), nil, m.Snapshot())
	finding := func(dist string) findings.Finding {
		return findings.Finding{Service: "reports", Package: findings.Package{PURL: "pkg:pypi/" + dist + "@2.6.1", Ecosystem: osv.EcosystemPyPI, Name: dist, Version: "2.6.1"},
			Vulnerability: findings.Vulnerability{ID: "CVE-2013-7459"}, Severity: findings.Severity{Level: "critical"}, Sources: []findings.Source{{Tool: "trivy"}}}
	}
	for _, as := range a.Assess([]findings.Finding{finding("pycrypto"), finding("pycryptodome")}) {
		r := as.Reachability
		switch as.Finding.Package.Name {
		case "pycrypto":
			if r.Verdict != Unknown || as.VEX.Status != StatusUnderInvestigation ||
				!strings.Contains(r.Reason, "but code of Crypto, which pycrypto ships too, ran (Crypto.Cipher.AES.new in 500 profile samples), attributed to pycryptodome") {
				t.Errorf("pycrypto: %s, VEX %s, %q; want unknown, under_investigation, naming Crypto's code", r.Verdict, as.VEX.Status, r.Reason)
			}
		case "pycryptodome":
			if r.Verdict != Loaded {
				t.Errorf("pycryptodome: %s, want loaded: its code ran", r.Verdict)
			}
		}
	}
}

// TestPythonAffectedFunctions assesses GitHub's affected functions of
// Python packages against the frames py-spy reports (Python 3.11+, which
// qualifies methods with their class). Pillow's modules are capitalised
// from the top: GHSA-3f63-hfp8-52jq names "PIL.ImageMath.eval", a function
// of the module PIL.ImageMath, and GHSA-8ghj-p4vj-mr35 "PIL.ImageFont", a
// whole module. Their names were taken for names without a module and
// dropped, so the findings stayed at package level: loaded whenever any
// Pillow code ran. The record writes the distribution "Pillow", the
// scanner "pillow". langchain's GHSA-57fc-8q82-gfp3 names the class
// PALChain that langchain.chains re-exports from pal_chain.base, whose
// methods matched but were not looked among as code of the package. The
// records are real (internal/vulndb/testdata/ghsa).
func TestPythonAffectedFunctions(t *testing.T) {
	db, problems, err := vulndb.Load(context.Background(), vulndb.Options{Sources: []string{"../vulndb/testdata/ghsa"}})
	if err != nil || len(problems) > 0 {
		t.Fatalf("load records: %v %v", err, problems)
	}
	const site = "/usr/lib/python3/site-packages/"
	eval := attribution.Frame{Function: "eval", File: site + "PIL/ImageMath.py"}
	convert := attribution.Frame{Function: "imagemath_convert", File: site + "PIL/ImageMath.py"}
	getlength := attribution.Frame{Function: "FreeTypeFont.getlength", File: site + "PIL/ImageFont.py"}
	open := attribution.Frame{Function: "open", File: site + "PIL/Image.py"}
	pal := attribution.Frame{Function: "PALChain.from_math_prompt", File: site + "langchain/chains/pal_chain/base.py"}
	app := attribution.Frame{Function: "handle", File: "/srv/app/main.py"}
	m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
	for svc, leaves := range map[string][]attribution.Frame{
		"render": {eval},
		"thumbs": {getlength, convert},
		"batch":  {open},
		"chains": {pal},
	} {
		b := &telemetry.ProfileBatch{
			Service: svc, SampleType: "cpu", Unit: "nanoseconds", Period: 10_000_000, Start: t0, Duration: 2 * time.Hour,
			Locations: [][]attribution.Frame{{app}},
			Samples:   []telemetry.Sample{{Locations: []int32{0}, Count: 10_000, Value: 100_000_000_000}},
		}
		for _, leaf := range leaves {
			b.Locations = append(b.Locations, []attribution.Frame{leaf})
			b.Samples = append(b.Samples, telemetry.Sample{Locations: []int32{int32(len(b.Locations) - 1), 0}, Count: 200, Value: 2_000_000_000})
		}
		m.AddProfile(b)
	}
	a := New(DefaultConfig(), db, m.Snapshot())
	finding := func(svc, dist, version, id string) findings.Finding {
		return findings.Finding{Service: svc, Package: findings.Package{PURL: "pkg:pypi/" + dist + "@" + version, Ecosystem: osv.EcosystemPyPI, Name: dist, Version: version},
			Vulnerability: findings.Vulnerability{ID: id}, Sources: []findings.Source{{Tool: "pip-audit"}}}
	}
	var fs []findings.Finding
	for _, svc := range []string{"render", "thumbs", "batch"} {
		fs = append(fs, finding(svc, "pillow", "9.5.0", "GHSA-3f63-hfp8-52jq"), finding(svc, "pillow", "9.5.0", "GHSA-8ghj-p4vj-mr35"))
	}
	fs = append(fs, finding("chains", "langchain", "0.0.200", "GHSA-57fc-8q82-gfp3"))
	type verdict struct {
		Verdict Verdict
		Basis   Basis
		Symbols []string
	}
	eval3f63 := []string{"PIL.ImageMath.eval"}
	font8ghj := []string{"PIL.ImageFont"}
	want := map[string]verdict{
		"render GHSA-3f63-hfp8-52jq": {Executed, BasisSymbol, eval3f63},
		"render GHSA-8ghj-p4vj-mr35": {NotObserved, BasisSymbol, font8ghj},
		// ImageMath's other code ran, not eval.
		"thumbs GHSA-3f63-hfp8-52jq": {Loaded, BasisSymbol, eval3f63},
		"thumbs GHSA-8ghj-p4vj-mr35": {Executed, BasisSymbol, font8ghj},
		// PIL.Image is neither PIL.ImageMath nor PIL.ImageFont.
		"batch GHSA-3f63-hfp8-52jq":  {NotObserved, BasisSymbol, eval3f63},
		"batch GHSA-8ghj-p4vj-mr35":  {NotObserved, BasisSymbol, font8ghj},
		"chains GHSA-57fc-8q82-gfp3": {Executed, BasisSymbol, []string{"langchain.chains.PALChain"}},
	}
	got := map[string]verdict{}
	for _, as := range a.Assess(fs) {
		r := as.Reachability
		got[as.Finding.Service+" "+as.Finding.Vulnerability.ID] = verdict{r.Verdict, r.Basis, r.Symbols}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("verdicts (-want +got):\n%s", diff)
	}

	// Streaming detection looks for the same code.
	evalFn := attribution.Func{Language: attribution.Python, Package: "PIL.ImageMath", Symbol: "eval", Module: "pillow"}
	convertFn := evalFn
	convertFn.Symbol = "imagemath_convert"
	code := VulnerableCodeOf(fs[0], db)
	if !code.Matches(evalFn) || !code.InPackage(evalFn) || code.Matches(convertFn) || !code.InPackage(convertFn) {
		t.Errorf("GHSA-3f63-hfp8-52jq: Matches(eval) %v, InPackage(eval) %v, Matches(imagemath_convert) %v, InPackage(imagemath_convert) %v; want true, true, false, true",
			code.Matches(evalFn), code.InPackage(evalFn), code.Matches(convertFn), code.InPackage(convertFn))
	}
}

// TestHiddenCodeHeaviest: the code that may be the vulnerable package's,
// which the reason names, is the heaviest in time samples, then in every
// profile's: a Java class in 1000 allocated objects was named before one
// in 40 CPU samples.
func TestHiddenCodeHeaviest(t *testing.T) {
	total := attribution.Frame{Function: "com.example.orders.Checkout.total", File: "Checkout.java"}
	fill := attribution.Frame{Function: "com.example.orders.Cache.fill", File: "Cache.java"}
	m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
	for _, p := range []struct {
		sampleType, unit string
		frame            attribution.Frame
		count            int64
	}{{"cpu", "nanoseconds", total, 40}, {"alloc_objects", "count", fill, 1000}} {
		m.AddProfile(&telemetry.ProfileBatch{
			Service: "orders", SampleType: p.sampleType, Unit: p.unit, Period: 10_000_000, Start: t0, Duration: time.Minute,
			Locations: [][]attribution.Frame{{p.frame}}, Samples: []telemetry.Sample{{Locations: []int32{0}, Count: p.count, Value: p.count}},
		})
	}
	r := New(DefaultConfig(), nil, m.Snapshot()).One(mavenFinding("CVE-2022-42889", "org.apache.commons:commons-text", "1.9")).Reachability
	if want := "(com.example.orders.Checkout.total in 40 profile samples)"; r.Verdict != Unknown || !strings.Contains(r.Reason, want) {
		t.Errorf("%s (%s), want unknown naming %s", r.Verdict, r.Reason, want)
	}
}
