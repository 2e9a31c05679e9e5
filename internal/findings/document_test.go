package findings

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// documentSeed is a Document of the findings of every scanner report in
// testdata, as findings import --format json writes it.
func documentSeed(tb testing.TB) ([]Finding, []byte) {
	tb.Helper()
	var all []Finding
	for _, in := range []struct {
		file  string
		parse parser
	}{
		{"govulncheck/symbol.json", ParseGovulncheck},
		{"trivy/fs.json", ParseTrivy},
		{"trivy/image.json", ParseTrivy},
		{"grype/dir.json", ParseGrype},
		{"grype/image.json", ParseGrype},
		{"osvscanner/app.json", ParseOSVScanner},
		{"ecosystems/pypi/pip-audit.json", ParsePipAudit},
	} {
		data, err := os.ReadFile(filepath.Join("testdata", in.file))
		if err != nil {
			tb.Fatal(err)
		}
		fs, _ := in.parse(bytes.NewReader(data), in.file)
		for i := range fs {
			fs[i].Service = strings.Split(in.file, "/")[0]
		}
		all = append(all, fs...)
	}
	all = Merge(all)
	var b bytes.Buffer
	if err := WriteJSON(&b, all); err != nil {
		tb.Fatal(err)
	}
	return all, b.Bytes()
}

// TestParseDocumentRoundTrip: what findings import --format json writes
// reads back as the same findings, distribution packages, scores,
// symbols and sources included, and Detect knows it.
func TestParseDocumentRoundTrip(t *testing.T) {
	want, doc := documentSeed(t)
	if len(want) < 20 {
		t.Fatalf("only %d findings in the seed", len(want))
	}
	if f, err := Detect(doc); f != FormatEvident || err != nil {
		t.Errorf("Detect = %q, %v; want %q", f, err, FormatEvident)
	}
	got, errs := ParseDocument(bytes.NewReader(doc), "merged.json")
	if len(errs) > 0 {
		t.Errorf("errors: %v", errs)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("read back (-written +read):\n%s", diff)
	}
	if !NameServices(got) {
		t.Error("NameServices = false, want every finding's service kept")
	}
}

// TestParseDocumentErrors: a document of a later version or without its
// fields is refused whole; a finding that cannot be one is skipped,
// named, and the others are read.
func TestParseDocumentErrors(t *testing.T) {
	good := `{"service":"orders","package":{"purl":"pkg:golang/golang.org/x/net@v0.54.0","ecosystem":"Go","name":"golang.org/x/net","version":"v0.54.0"},"vulnerability":{"id":"GO-2026-5025"},"severity":{"level":"high"},"sources":[{"tool":"govulncheck"}]}`
	tests := []struct {
		name     string
		input    string
		findings int
		wantErr  error  // a file-level error, else record errors
		text     string // in the (first) error
	}{
		{"later version", `{"version":2,"findings":[` + good + `]}`, 0, ErrWrongFormat, "findings document version 2, this evident reads version 1"},
		{"version 0", `{"version":0,"findings":[]}`, 0, ErrWrongFormat, "findings document version 0: versions start at 1"},
		{"no findings", `{"version":1}`, 0, ErrWrongFormat, "no version and findings"},
		{"findings not a list", `{"version":1,"findings":{}}`, 0, ErrWrongFormat, "findings: "},
		{"cut short", `{"version":1,"findings":[` + good, 0, ErrMalformed, ""},
		{"a finding without id", `{"version":1,"findings":[` + good + `,{"package":{"ecosystem":"Go","name":"x","version":"v1.0.0"},"sources":[{"tool":"trivy"}]}]}`, 1, nil, "merged.json: findings[1]: no vulnerability id"},
		{"a finding without version", `{"version":1,"findings":[{"package":{"ecosystem":"PyPI","name":"pyyaml"},"vulnerability":{"id":"PYSEC-2021-142"},"sources":[{"tool":"pip-audit"}]},` + good + `]}`, 1, nil, "findings[0] (PYSEC-2021-142): package pyyaml: no version"},
		{"an unknown severity", `{"version":1,"findings":[` + strings.Replace(good, `"high"`, `"severe"`, 1) + `]}`, 0, nil, `severity level "severe"`},
		{"a service with a newline", `{"version":1,"findings":[` + strings.Replace(good, `"orders"`, `"or\nders"`, 1) + `]}`, 0, nil, `service "or\nders": want a service name`},
		{"no source", `{"version":1,"findings":[` + strings.Replace(good, `"sources":[{"tool":"govulncheck"}]`, `"sources":[]`, 1) + `]}`, 0, nil, "no source"},
		{"a later field", `{"version":1,"findings":[` + strings.Replace(good, `"service"`, `"exploited":true,"service"`, 1) + `],"generated_by":"evident 2"}`, 1, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, errs := ParseDocument(strings.NewReader(tt.input), "merged.json")
			if len(fs) != tt.findings {
				t.Errorf("%d findings, want %d", len(fs), tt.findings)
			}
			if tt.text == "" && tt.wantErr == nil {
				if len(errs) > 0 {
					t.Errorf("errors %v, want none", errs)
				}
				return
			}
			if len(errs) == 0 {
				t.Fatalf("no error, want one saying %q", tt.text)
			}
			_, isRecord := errors.AsType[*RecordError](errs[0])
			if tt.wantErr != nil && (!errors.Is(errs[0], tt.wantErr) || isRecord) || tt.wantErr == nil && !isRecord {
				t.Errorf("error %v (record error: %v), want the input's %v", errs[0], isRecord, tt.wantErr)
			}
			if !strings.Contains(errs[0].Error(), tt.text) {
				t.Errorf("error %q, want it to say %q", errs[0], tt.text)
			}
		})
	}
}

func FuzzParseDocument(f *testing.F) {
	_, doc := documentSeed(f)
	fuzzParser(f, ParseDocument, string(doc), `{"version":1,"findings":[{"package":{"purl":"pkg:deb/debian/openssl@3.0.11-1~deb12u2"},"vulnerability":{"id":"CVE-2023-5678"},"sources":[{"tool":"trivy"}]}]}`)
}
