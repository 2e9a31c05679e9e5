// Package recorded_test checks that the committed recording says what
// expected.yaml claims, independently of evident: govulncheck's static level
// of every finding, the profile frames and span labels behind every verdict,
// and each service's exposure, calls and stores as the traces show them.
// Run it after `make record`: go test ./recorded/
package recorded_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"gopkg.in/yaml.v3"
)

type expectedService struct {
	Exposure    string   `yaml:"exposure"`
	Calls       []string `yaml:"calls"`
	Stores      []string `yaml:"stores"`
	BlastRadius []string `yaml:"blast_radius"`
}

type expectedFinding struct {
	ID        string   `yaml:"id"`
	Service   string   `yaml:"service"`
	Module    string   `yaml:"module"`
	Package   string   `yaml:"package"`
	Static    string   `yaml:"static"`
	Verdict   string   `yaml:"verdict"`
	Endpoints []string `yaml:"endpoints"`
	SpanNames []string `yaml:"span_names"`
}

type expected struct {
	Services map[string]expectedService `yaml:"services"`
	Findings []expectedFinding          `yaml:"findings"`
}

func loadExpected(t *testing.T) expected {
	t.Helper()
	f, err := os.Open("expected.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var e expected
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("expected.yaml: %v", err)
	}
	return e
}

// govulncheck's JSON stream, the fields the checks need.
type frame struct {
	Module   string `json:"module"`
	Package  string `json:"package"`
	Function string `json:"function"`
	Receiver string `json:"receiver"`
}

type message struct {
	Finding *struct {
		OSV   string  `json:"osv"`
		Trace []frame `json:"trace"`
	} `json:"finding"`
	OSV *struct {
		ID       string `json:"id"`
		Affected []struct {
			EcosystemSpecific struct {
				Imports []struct {
					Path    string   `json:"path"`
					Symbols []string `json:"symbols"`
				} `json:"imports"`
			} `json:"ecosystem_specific"`
		} `json:"affected"`
	} `json:"osv"`
}

// govulncheck reads findings/<service>.json and returns, per vulnerability,
// its static level and its vulnerable symbols per package.
func govulncheck(t *testing.T, service string) (levels map[string]string, symbols map[string]map[string][]string) {
	t.Helper()
	f, err := os.Open(filepath.Join("findings", service+".json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	levels, symbols = map[string]string{}, map[string]map[string][]string{}
	rank := map[string]int{"required": 1, "imported": 2, "called": 3}
	dec := json.NewDecoder(f)
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("findings/%s.json: %v", service, err)
		}
		switch {
		case m.Finding != nil:
			top := m.Finding.Trace[0]
			level := "required"
			if top.Function != "" {
				level = "called"
			} else if top.Package != "" {
				level = "imported"
			}
			if rank[level] > rank[levels[m.Finding.OSV]] {
				levels[m.Finding.OSV] = level
			}
		case m.OSV != nil:
			bySym := map[string][]string{}
			for _, a := range m.OSV.Affected {
				for _, imp := range a.EcosystemSpecific.Imports {
					bySym[imp.Path] = append(bySym[imp.Path], imp.Symbols...)
				}
			}
			symbols[m.OSV.ID] = bySym
		}
	}
	return levels, symbols
}

func TestFindingsStaticLevel(t *testing.T) {
	e := loadExpected(t)
	for _, service := range []string{"gateway", "catalog", "orders", "reporter"} {
		t.Run(service, func(t *testing.T) {
			levels, _ := govulncheck(t, service)
			want := map[string]string{}
			for _, f := range e.Findings {
				if f.Service == service {
					want[f.ID] = f.Static
				}
			}
			for id, level := range levels {
				if want[id] != level {
					t.Errorf("%s: govulncheck says %q, expected.yaml says %q", id, level, want[id])
				}
			}
			for id := range want {
				if _, ok := levels[id]; !ok {
					t.Errorf("%s: in expected.yaml, not in findings/%s.json", id, service)
				}
			}
		})
	}
}

var closure = regexp.MustCompile(`(\.func\d+)+$|-fm$|\[[^\]]*\]`)

// split turns a pprof function name into its import path and the symbol as
// the Go vulnerability database writes it ("parser.parse", "Form.String").
func split(name string) (pkg, sym string) {
	slash := strings.LastIndexByte(name, '/')
	dot := strings.IndexByte(name[slash+1:], '.')
	if dot < 0 {
		return name, ""
	}
	pkg = strings.ReplaceAll(name[:slash+1+dot], "%2e", ".")
	sym = closure.ReplaceAllString(name[slash+1+dot+1:], "")
	sym = strings.NewReplacer("(*", "", ")", "").Replace(sym)
	return pkg, sym
}

type observation struct {
	symbolLabels  map[string]bool // span_name labels of samples with a vulnerable symbol
	packageLabels map[string]bool // span_name labels of samples with code of the package
}

func observe(p *profile.Profile, pkg string, symbols []string) observation {
	o := observation{symbolLabels: map[string]bool{}, packageLabels: map[string]bool{}}
	for _, s := range p.Sample {
		var inPkg, inSym bool
		for _, loc := range s.Location {
			for _, line := range loc.Line {
				fp, fs := split(line.Function.Name)
				if fp != pkg {
					continue
				}
				inPkg = true
				if slices.Contains(symbols, fs) {
					inSym = true
				}
			}
		}
		label := ""
		if v := s.Label["span_name"]; len(v) > 0 {
			label = v[0]
		}
		if inPkg {
			o.packageLabels[label] = true
		}
		if inSym {
			o.symbolLabels[label] = true
		}
	}
	return o
}

func keys(m map[string]bool) []string {
	out := []string{}
	for k := range m {
		if k != "" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func TestProfilesVerdicts(t *testing.T) {
	e := loadExpected(t)
	profiles := map[string]*profile.Profile{}
	for _, f := range e.Findings {
		t.Run(f.Service+"/"+f.ID, func(t *testing.T) {
			p := profiles[f.Service]
			if p == nil {
				r, err := os.Open(filepath.Join("profiles", f.Service, "cpu.pb.gz"))
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				if p, err = profile.Parse(r); err != nil {
					t.Fatalf("profiles/%s/cpu.pb.gz: %v", f.Service, err)
				}
				profiles[f.Service] = p
			}
			_, symbols := govulncheck(t, f.Service)
			o := observe(p, f.Package, symbols[f.ID][f.Package])
			verdict := "not_observed"
			labels := []string{}
			switch {
			case len(o.symbolLabels) > 0:
				verdict, labels = "executed", keys(o.symbolLabels)
			case len(o.packageLabels) > 0:
				verdict, labels = "loaded", keys(o.packageLabels)
			}
			if verdict != f.Verdict {
				t.Errorf("verdict from the profile = %s, expected.yaml says %s", verdict, f.Verdict)
			}
			want := append(slices.Clone(f.Endpoints), f.SpanNames...)
			sort.Strings(want)
			if !slices.Equal(labels, want) {
				t.Errorf("span_name labels of the samples = %q, expected.yaml says %q", labels, want)
			}
		})
	}
}

type span struct {
	service, parent, id string
	kind                ptrace.SpanKind
	attrs               pcommon.Map
}

func readSpans(t *testing.T) []span {
	t.Helper()
	f, err := os.Open("traces.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	var spans []span
	for n := 1; sc.Scan(); n++ {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalJSON(sc.Bytes()); err != nil {
			t.Fatalf("traces.jsonl line %d: %v", n, err)
		}
		rss := req.Traces().ResourceSpans()
		for i := range rss.Len() {
			rs := rss.At(i)
			svc, _ := rs.Resource().Attributes().Get("service.name")
			for j := range rs.ScopeSpans().Len() {
				ss := rs.ScopeSpans().At(j).Spans()
				for k := range ss.Len() {
					s := ss.At(k)
					spans = append(spans, span{service: svc.Str(), parent: s.ParentSpanID().String(), id: s.SpanID().String(), kind: s.Kind(), attrs: s.Attributes()})
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return spans
}

func TestTracesArchitecture(t *testing.T) {
	e := loadExpected(t)
	spans := readSpans(t)
	byID := map[string]span{}
	children := map[string][]span{}
	for _, s := range spans {
		byID[s.id] = s
		children[s.parent] = append(children[s.parent], s)
	}
	server, root := map[string]bool{}, map[string]bool{}
	calls, stores := map[string]map[string]bool{}, map[string]map[string]bool{}
	add := func(m map[string]map[string]bool, k, v string) {
		if m[k] == nil {
			m[k] = map[string]bool{}
		}
		m[k][v] = true
	}
	for _, s := range spans {
		switch s.kind {
		case ptrace.SpanKindServer:
			server[s.service] = true
			if _, ok := byID[s.parent]; !ok {
				root[s.service] = true
			}
		case ptrace.SpanKindClient:
			if db, ok := s.attrs.Get("db.system.name"); ok {
				ns, _ := s.attrs.Get("db.namespace")
				coll, _ := s.attrs.Get("db.collection.name")
				add(stores, s.service, fmt.Sprintf("%s://%s/%s", db.Str(), ns.Str(), coll.Str()))
				continue
			}
			traced := false
			for _, c := range children[s.id] {
				if c.kind == ptrace.SpanKindServer {
					add(calls, s.service, c.service)
					traced = true
				}
			}
			if host, ok := s.attrs.Get("server.address"); ok && !traced {
				add(stores, s.service, "https://"+host.Str())
			}
		}
	}
	var reach func(svc string, seen map[string]bool) map[string]bool
	reach = func(svc string, seen map[string]bool) map[string]bool {
		out := map[string]bool{}
		if seen[svc] {
			return out
		}
		seen[svc] = true
		for s := range stores[svc] {
			out[s] = true
		}
		for c := range calls[svc] {
			for s := range reach(c, seen) {
				out[s] = true
			}
		}
		return out
	}
	for name, want := range e.Services {
		t.Run(name, func(t *testing.T) {
			exposure := "no_input"
			if root[name] {
				exposure = "exposed"
			} else if server[name] {
				exposure = "internal"
			}
			if exposure != want.Exposure {
				t.Errorf("exposure = %s, want %s", exposure, want.Exposure)
			}
			for _, c := range []struct {
				what      string
				got, want []string
			}{
				{"calls", keys(calls[name]), want.Calls},
				{"stores", keys(stores[name]), want.Stores},
				{"blast radius", keys(reach(name, map[string]bool{})), want.BlastRadius},
			} {
				w := slices.Clone(c.want)
				sort.Strings(w)
				if !slices.Equal(c.got, w) {
					t.Errorf("%s = %q, want %q", c.what, c.got, w)
				}
			}
		})
	}
}
