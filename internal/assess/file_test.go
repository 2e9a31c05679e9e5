package assess

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/knowledge"
	"github.com/evidentsec/evident/internal/model"
	"github.com/evidentsec/evident/internal/osv"
	"github.com/evidentsec/evident/internal/telemetry"
	"github.com/evidentsec/evident/internal/vulndb"
)

// TestNodeFunctionsInFiles assesses jsonwebtoken 8.5.1 in two services
// profiled by @datadog/pprof (testdata/jsonwebtoken, made by its jwt.js):
// "issuer" signs and decodes tokens, "gate" verifies them. V8 names the
// function that each of sign.js, verify.js and decode.js exports
// "module.exports", so the knowledge base names the file of each
// vulnerable function (internal/knowledge/functions.yaml; the records
// name none): the verify-only flaws are loaded in issuer although
// a "module.exports" of jsonwebtoken ran there, and executed in gate.
func TestNodeFunctionsInFiles(t *testing.T) {
	dir := filepath.Join("testdata", "jsonwebtoken")
	kb, err := knowledge.Default()
	if err != nil {
		t.Fatal(err)
	}
	db, problems, err := vulndb.Load(context.Background(), vulndb.Options{Sources: []string{filepath.Join(dir, "osv")}, Knowledge: kb})
	if err != nil || len(problems) > 0 {
		t.Fatalf("load records: %v %v", err, problems)
	}
	m := model.New(model.DefaultConfig(), attribution.New(attribution.Config{}))
	for _, svc := range []string{"issuer", "gate"} {
		data, err := os.ReadFile(filepath.Join(dir, svc+".pb.gz"))
		if err != nil {
			t.Fatal(err)
		}
		batches, err := telemetry.DecodePprof(data, svc)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range batches {
			b.Service = svc
			m.AddProfile(b)
		}
	}
	a := New(DefaultConfig(), db, m.Snapshot())
	var fs []findings.Finding
	for _, svc := range []string{"issuer", "gate"} {
		for _, id := range []string{"GHSA-qwph-4952-7xr6", "GHSA-hjrf-2m68-5959", "GHSA-8cf7-32gw-wr33"} {
			fs = append(fs, findings.Finding{
				Service:       svc,
				Package:       findings.Package{PURL: "pkg:npm/jsonwebtoken@8.5.1", Ecosystem: osv.EcosystemNPM, Name: "jsonwebtoken", Version: "8.5.1"},
				Vulnerability: findings.Vulnerability{ID: id},
				FixedVersion:  "9.0.0",
			})
		}
	}
	type verdict struct {
		Verdict  Verdict
		Basis    Basis
		Symbols  []string
		Evidence bool
	}
	got := map[string]verdict{}
	for _, as := range a.Assess(fs) {
		r := as.Reachability
		got[as.Finding.Service+" "+as.Finding.Vulnerability.ID] = verdict{r.Verdict, r.Basis, r.Symbols, len(r.Evidence) > 0}
	}
	verify := []string{"(jsonwebtoken/verify.js).module.exports"}
	both := []string{"(jsonwebtoken/sign.js).module.exports", "(jsonwebtoken/verify.js).module.exports"}
	want := map[string]verdict{
		// CVE-2022-23540 and CVE-2022-23541: verify.js alone.
		"issuer GHSA-qwph-4952-7xr6": {Loaded, BasisSymbol, verify, false},
		"issuer GHSA-hjrf-2m68-5959": {Loaded, BasisSymbol, verify, false},
		"gate GHSA-qwph-4952-7xr6":   {Executed, BasisSymbol, verify, true},
		"gate GHSA-hjrf-2m68-5959":   {Executed, BasisSymbol, verify, true},
		// CVE-2022-23539: sign.js and verify.js.
		"issuer GHSA-8cf7-32gw-wr33": {Executed, BasisSymbol, both, true},
		"gate GHSA-8cf7-32gw-wr33":   {Executed, BasisSymbol, both, true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("verdicts (-want +got):\n%s", diff)
	}

	// Streaming detection tells the files apart too.
	verifyFn := attribution.Func{Language: attribution.Node, Package: "jsonwebtoken", Module: "jsonwebtoken", File: "verify.js", Symbol: "module.exports"}
	signFn := verifyFn
	signFn.File = "sign.js"
	code := VulnerableCodeOf(fs[0], db)
	if !code.Matches(verifyFn) || code.Matches(signFn) || !code.InPackage(signFn) {
		t.Errorf("GHSA-qwph-4952-7xr6: Matches(verify.js) = %v, Matches(sign.js) = %v, InPackage(sign.js) = %v; want true, false, true",
			code.Matches(verifyFn), code.Matches(signFn), code.InPackage(signFn))
	}
}
