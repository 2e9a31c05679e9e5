package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/evidentsec/evident/internal/assess"
)

func TestParseFailOn(t *testing.T) {
	as := []assess.Assessment{
		{Priority: assess.Priority{Tier: "P1"}, Reachability: assess.Reachability{Verdict: assess.Executed}},
		{Priority: assess.Priority{Tier: "P3"}, Reachability: assess.Reachability{Verdict: assess.Loaded}, KnownExploited: true},
		{Priority: assess.Priority{Tier: "P4"}, Reachability: assess.Reachability{Verdict: assess.NotObserved}},
	}
	tests := []struct {
		values  []string
		want    int
		wantErr string
	}{
		{values: nil, want: 0},
		{values: []string{"P1"}, want: 1},
		{values: []string{"P3"}, want: 2},
		{values: []string{"P1", "P3"}, want: 2},
		{values: []string{"loaded"}, want: 1},
		{values: []string{"kev"}, want: 1},
		{values: []string{"executed", "kev"}, want: 2},
		{values: []string{"p3"}, want: 2},
		{values: []string{"Executed", "KEV"}, want: 2},
		{values: []string{"P5"}, wantErr: `--fail-on "P5": want P1, P2, P3, executed, loaded or kev`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.values, ","), func(t *testing.T) {
			p, err := parseFailOn(tt.values)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.violations(as); got != tt.want {
				t.Errorf("violations = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestAnalyzeUsage(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no findings", []string{"analyze"}, "no findings"},
		{"bad format", []string{"analyze", "--findings", "x.json", "--format", "xml"}, `unknown report format "xml"`},
		{"bad fail-on", []string{"analyze", "--findings", "x.json", "--fail-on", "sometimes"}, `--fail-on "sometimes"`},
		{"missing config", []string{"analyze", "--findings", "x.json", "--config", "nope.yml"}, "read config"},
		{"missing database", []string{"analyze", "--data", "/nonexistent", "--findings", "../../examples/shop/recorded/findings"}, `run "evident db update"`},
		{"missing findings file", []string{"analyze", "--vulns", "../../examples/shop/recorded/osv", "--findings", "nope.json"}, "--findings: read findings: open nope.json: no such file or directory"},
		// The file is named before the database is looked for: a
		// mistyped path is told at once, not after a db update.
		{"missing findings file and database", []string{"analyze", "--data", "/nonexistent", "--findings", "nope.json"}, "--findings: read findings: open nope.json: no such file or directory"},
		{"database without records", []string{"analyze", "--vulns", "testdata/config", "--findings", "../../examples/shop/recorded/findings"}, "read source testdata/config: no OSV records in it"},
		{"negative max-bytes", []string{"analyze", "--findings", "x.json", "--max-bytes", "-1"}, "--max-bytes -1"},
		{"missing source root", []string{"analyze", "--vulns", "../../examples/shop/recorded/osv", "--findings", "../../examples/shop/recorded/findings", "--format", "sarif", "--source-root", "nope"}, "--source-root: stat nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, tt.args...)
			if code != ExitUsage || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, ExitUsage, tt.wantErr)
			}
		})
	}
}

func TestSourceRoot(t *testing.T) {
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	findings := filepath.Join("..", "..", "examples", "shop", "recorded", "findings")
	tests := []struct {
		name string
		flag string
		args []string
		want string
	}{
		{"the flag", "repo", []string{"x.json"}, "repo"},
		{"a findings directory", "", []string{findings}, abs(findings)},
		{"a file's directory", "", []string{"gateway=" + filepath.Join(findings, "gateway.json")}, abs(findings)},
		{"the directory all share", "", []string{filepath.Join(findings, "gateway.json"), filepath.Join("testdata", "x.json")}, abs(filepath.Join("..", ".."))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sourceRoot(tt.flag, tt.args); got != tt.want {
				t.Errorf("sourceRoot = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestAnalyzeInputMessages: what analyze says of inputs it cannot use
// names the flag the user gave and the file, says whether a file was read
// in part or not at all, and refuses an output it could not write before
// it reads any input.
func TestAnalyzeInputMessages(t *testing.T) {
	rec := filepath.Join(shop, "recorded")
	dir := t.TempDir()
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	traces, err := os.ReadFile(filepath.Join(rec, "traces.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(traces, []byte("\n"))
	cut := file("cut.jsonl", append(bytes.Join(lines[:3], nil), lines[3][:100]...))
	broken := file("broken.jsonl", lines[3][:100])
	profile, err := os.ReadFile(filepath.Join(rec, "profiles", "catalog", "cpu.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	cpu := file("cpu.pb.gz", profile)
	// The first request's orders is another service of that name, in
	// the namespace billing.
	billing := file("billing.jsonl", append(bytes.Replace(lines[0], []byte(`"stringValue":"shop"`), []byte(`"stringValue":"billing"`), 1), bytes.Join(lines[1:], nil)...))
	base := []string{"--data", t.TempDir(), "analyze", "--vulns", filepath.Join(rec, "osv")}
	gateway := []string{"--findings", "gateway=" + filepath.Join(rec, "findings", "gateway.json")}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		// want matches the whole of stderr.
		want string
	}{
		{
			name: "a file read in part", args: append(slices.Clone(gateway), "--traces", cut), wantCode: ExitSkipped,
			want: `^evident: read ` + regexp.QuoteMeta(cut) + ` in part \(\d+ spans used, the rest skipped\): ` + regexp.QuoteMeta(cut) + `: line 4: malformed telemetry: .*\n$`,
		},
		{
			name: "a file of which nothing was used", args: append(slices.Clone(gateway), "--traces", broken), wantCode: ExitSkipped,
			want: `^evident: skipped ` + regexp.QuoteMeta(broken) + `: document: malformed telemetry: .*\n$`,
		},
		{
			name: "a profile given to --traces", args: append(slices.Clone(gateway), "--traces", cpu), wantCode: ExitUsage,
			want: "^" + regexp.QuoteMeta("evident: --traces "+cpu+": the profile has no service_name label or service.name, and the telemetry names no service; give it as --traces SERVICE="+cpu) + "\n$",
		},
		{
			name: "findings of a service the telemetry does not have", wantCode: 0,
			args: []string{"--findings", "gw=" + filepath.Join(rec, "findings", "gateway.json"), "--profiles", filepath.Join(rec, "profiles")},
			want: "^" + regexp.QuoteMeta("evident: warning: no telemetry of gw, whose findings stay unknown (the telemetry's services: catalog, gateway, orders, reporter); name a service as its telemetry does: --findings SERVICE=FILE") + "\n$",
		},
		{
			name: "services of one name in two namespaces", args: append(slices.Clone(gateway), "--traces", billing), wantCode: 0,
			want: "^" + regexp.QuoteMeta("evident: warning: the services named orders in the namespaces billing, shop (service.namespace) are merged into one: their spans, profiles, calls, stores and findings mix, and none of its findings is not_affected; give them different service.name values, or analyze each namespace's telemetry apart") + "\n$",
		},
		{
			name: "a missing telemetry file", args: append(slices.Clone(gateway), "--traces", "nope.jsonl"), wantCode: ExitUsage,
			want: "^" + regexp.QuoteMeta("evident: --traces: discover telemetry: stat nope.jsonl: no such file or directory") + "\n$",
		},
		{
			name: "an output that is a directory, before any input", args: []string{"--findings", "nope.json", "-o", dir}, wantCode: ExitUsage,
			want: "^" + regexp.QuoteMeta("evident: --output "+dir+": is a directory: name a file") + "\n$",
		},
		{
			name: "an output in a missing directory", args: append(slices.Clone(gateway), "-o", filepath.Join(dir, "nope", "report.json")), wantCode: ExitUsage,
			want: "^" + regexp.QuoteMeta("evident: --output "+filepath.Join(dir, "nope", "report.json")+": directory "+filepath.Join(dir, "nope")+" does not exist") + "\n$",
		},
		{
			name: "findings without a service before =", args: []string{"--findings", "=app.govulncheck.json"}, wantCode: ExitUsage,
			want: "^" + regexp.QuoteMeta(`evident: --findings "=app.govulncheck.json": want SERVICE=PATH with both parts, or a path`) + "\n$",
		},
		{
			name: "profiles without a service before =", args: append(slices.Clone(gateway), "--profiles", "=x"), wantCode: ExitUsage,
			want: "^" + regexp.QuoteMeta(`evident: --profiles "=x": want SERVICE=PATH with both parts, or a path`) + "\n$",
		},
		{
			name: "traces without a path after =", args: append(slices.Clone(gateway), "--traces", "gateway="), wantCode: ExitUsage,
			want: "^" + regexp.QuoteMeta(`evident: --traces "gateway=": want SERVICE=PATH with both parts, or a path`) + "\n$",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, append(slices.Clone(base), tt.args...)...)
			if code != tt.wantCode || !regexp.MustCompile(tt.want).MatchString(stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %s", code, stderr, tt.wantCode, tt.want)
			}
		})
	}
}

// TestFailOnNeedsEvidence: a --fail-on policy that no finding could match
// with the inputs given (kev without a KEV catalog, a verdict without any
// telemetry) is refused as a usage error that says what to add, rather
// than passing a CI gate silently.
func TestFailOnNeedsEvidence(t *testing.T) {
	rec := filepath.Join(shop, "recorded")
	osv := filepath.Join(rec, "osv")
	kev := filepath.Join("..", "dbupdate", "testdata", "kev.json")
	gateway := "gateway=" + filepath.Join(rec, "findings", "gateway.json")
	profiles := "gateway=" + filepath.Join(rec, "profiles", "gateway")
	// A data directory as "evident db update" leaves it: records and the
	// KEV catalog.
	data := t.TempDir()
	if err := os.CopyFS(filepath.Join(data, "vulndb", "Go"), os.DirFS(osv)); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(kev)
	if err != nil {
		t.Fatal(err)
	}
	dataKEV := filepath.Join(data, "vulndb", "kev.json")
	if err := os.WriteFile(dataKEV, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		// wantErr is the whole of stderr; empty: whatever the findings
		// decide (0 or 1), with nothing about --fail-on on stderr.
		wantErr string
	}{
		{
			name: "kev without a catalog", args: []string{"--data", empty, "analyze", "--vulns", osv, "--findings", gateway, "--fail-on", "kev"}, wantCode: ExitUsage,
			wantErr: `evident: --fail-on kev: no KEV catalog is loaded, so no finding could match: --vulns replaces <data>/vulndb, whose kev.json is then not read: name the catalog with --kev FILE ("evident db update" fetches it into <data>/vulndb/kev.json)` + "\n",
		},
		{
			name: "kev with --vulns beside a data directory's catalog", args: []string{"--data", data, "analyze", "--vulns", osv, "--findings", gateway, "--fail-on", "P1,kev"}, wantCode: ExitUsage,
			wantErr: "evident: --fail-on kev: no KEV catalog is loaded, so no finding could match: --vulns replaces <data>/vulndb, whose kev.json is then not read: name the catalog with --kev FILE (e.g. --kev " + dataKEV + ")\n",
		},
		{
			name: "kev with --kev", args: []string{"--data", empty, "analyze", "--vulns", osv, "--kev", kev, "--findings", gateway, "--fail-on", "kev"}, wantCode: ExitOK,
		},
		{
			name: "kev with the data directory's catalog", args: []string{"--data", data, "analyze", "--findings", gateway, "--fail-on", "kev"}, wantCode: ExitOK,
		},
		{
			name: "executed without telemetry", args: []string{"--data", empty, "analyze", "--vulns", osv, "--findings", gateway, "--fail-on", "executed,loaded"}, wantCode: ExitUsage,
			wantErr: "evident: --fail-on executed: no profiles or traces are read, so no finding could be executed: name them with --profiles, --traces, --pyroscope or --tempo\n" +
				"--fail-on loaded: no profiles or traces are read, so no finding could be loaded: name them with --profiles, --traces, --pyroscope or --tempo\n",
		},
		{
			name: "executed with profiles", args: []string{"--data", empty, "analyze", "--vulns", osv, "--findings", gateway, "--profiles", profiles, "--fail-on", "executed"}, wantCode: ExitPolicy,
			wantErr: "evident: --fail-on executed: 1 findings match\n",
		},
		{
			name: "a tier without either", args: []string{"--data", empty, "analyze", "--vulns", osv, "--findings", gateway, "--fail-on", "P1"}, wantCode: ExitOK,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, tt.args...)
			if code != tt.wantCode || stderr != tt.wantErr {
				t.Errorf("exit %d, stderr:\n%s\nwant %d and:\n%s", code, stderr, tt.wantCode, tt.wantErr)
			}
		})
	}
}

// TestAnalyzeStatesVulnDB checks that the report says which of the KEV
// catalog and the EPSS scores analyze loaded: without them, every
// finding's known_exploited false and missing epss say nothing.
func TestAnalyzeStatesVulnDB(t *testing.T) {
	rec := filepath.Join(shop, "recorded")
	kev := filepath.Join("..", "dbupdate", "testdata", "kev.json")
	epss := filepath.Join("..", "vulndb", "testdata", "epss.csv")
	base := []string{"--data", t.TempDir(), "analyze", "--vulns", filepath.Join(rec, "osv"),
		"--findings", "gateway=" + filepath.Join(rec, "findings", "gateway.json"), "--format", "json"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"neither", nil, `{"kev":{"loaded":false},"epss":{"loaded":false}}`},
		{"--kev", []string{"--kev", kev},
			`{"kev":{"loaded":true,"version":"2024.12.10","released":"2024-12-10T17:08:40.4431Z","count":2},"epss":{"loaded":false}}`},
		{"--kev and --epss", []string{"--kev", kev, "--epss", epss},
			`{"kev":{"loaded":true,"version":"2024.12.10","released":"2024-12-10T17:08:40.4431Z","count":2},"epss":{"loaded":true,"model":"v2025.03.14","date":"2026-11-30","count":5}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := run(t, slices.Concat(base, tt.args)...)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var doc struct {
				VulnDB json.RawMessage `json:"vulndb"`
			}
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := json.Compact(&got, doc.VulnDB); err != nil {
				t.Fatalf("vulndb %q: %v", doc.VulnDB, err)
			}
			if got.String() != tt.want {
				t.Errorf("vulndb = %s, want %s", got.String(), tt.want)
			}
		})
	}
}

// TestAnalyzeUserKnowledge: the configuration's knowledge files are read
// over the shipped knowledge base. On the Node.js example, express's
// res.location (the shipped entry of CVE-2024-29041, whose record names no
// function) never runs, so the finding is loaded; a user's entry for the
// same advisory and package that names express's handle, which runs,
// replaces it and makes the finding executed. An invalid entry of the file
// is named and skipped (exit 3), the others still apply; a file that is
// not a knowledge base at all, or is missing, is refused.
func TestAnalyzeUserKnowledge(t *testing.T) {
	e := examples[1]
	if e.dir != "node-reviews" {
		t.Fatalf("examples[1] is %s, want node-reviews", e.dir)
	}
	rec := e.path("recorded")
	dir := t.TempDir()
	const entry = `
  - id: CVE-2024-29041
    aliases: [GHSA-rv95-896h-c2vc]
    ecosystem: npm
    package: express
    functions:
      - package: express
        symbol: handle
        reference: https://example.com/our-analysis
`
	const bad = `
  - id: CVE-2000-0001
    ecosystem: npm
    package: left-pad
    functions:
      - package: left-pad
        symbol: leftPad
        reference: http://example.com/not-https
`
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	config := func(name, knowledge string) string {
		return write(name, "vex:\n  max_share: 0.05\n  min_window: 1s\nknowledge: ["+knowledge+"]\n")
	}
	verdict := func(t *testing.T, out string) string {
		var rep struct {
			Findings []struct {
				Vulnerability struct{ ID string }
				Reachability  struct{ Verdict string }
			}
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		for _, f := range rep.Findings {
			if f.Vulnerability.ID == "GHSA-rv95-896h-c2vc" {
				return f.Reachability.Verdict
			}
		}
		t.Fatalf("no finding of GHSA-rv95-896h-c2vc in %s", out)
		return ""
	}
	good := write("ours.yaml", "version: 1\nentries:"+entry)
	mixed := write("mixed.yaml", "version: 1\nentries:"+bad+entry)
	notKB := write("not.yaml", "entries: []\n")
	tests := []struct {
		name, knowledge string
		wantCode        int
		wantVerdict     string
		wantErr         string
	}{
		{name: "none", wantCode: ExitOK, wantVerdict: "loaded"},
		{name: "a user entry replaces the shipped one", knowledge: good, wantCode: ExitOK, wantVerdict: "executed"},
		{name: "an invalid entry is skipped, the others apply", knowledge: mixed, wantCode: ExitSkipped, wantVerdict: "executed",
			wantErr: `evident: skipped ` + mixed + `:3: entry 0 (CVE-2000-0001): functions[0]: reference "http://example.com/not-https" is not an https URL`},
		{name: "not a knowledge base", knowledge: notKB, wantCode: ExitUsage,
			wantErr: "evident: knowledge: knowledge base " + notKB + ": version is missing (want 1): invalid knowledge base\n"},
		{name: "missing", knowledge: filepath.Join(dir, "nope.yaml"), wantCode: ExitUsage,
			wantErr: "evident: knowledge: open " + filepath.Join(dir, "nope.yaml") + ": no such file or directory\n"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := run(t, "analyze", "--data", t.TempDir(), "--format", "json",
				"--vulns", filepath.Join(rec, "osv"), "--findings", filepath.Join(rec, "findings"),
				"--profiles", filepath.Join(rec, "profiles"), "--traces", filepath.Join(rec, e.traces),
				"--config", config(fmt.Sprintf("evident%d.yaml", i), tt.knowledge))
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, tt.wantCode, tt.wantErr)
			}
			if tt.wantVerdict != "" {
				if got := verdict(t, out); got != tt.wantVerdict {
					t.Errorf("GHSA-rv95-896h-c2vc %s, want %s", got, tt.wantVerdict)
				}
			}
		})
	}
}
