package waf

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// ftwFile is the subset of the go-ftw test format (coreruleset
// ftw-tests-schema v2) that the template tests use.
type ftwFile struct {
	Meta struct {
		Author      string `yaml:"author"`
		Description string `yaml:"description"`
	} `yaml:"meta"`
	Tests []struct {
		Title  string `yaml:"test_title"`
		Desc   string `yaml:"desc"`
		Stages []struct {
			Input struct {
				Method  string            `yaml:"method"`
				URI     string            `yaml:"uri"`
				Headers map[string]string `yaml:"headers"`
				Data    string            `yaml:"data"`
			} `yaml:"input"`
			Output struct {
				Status int `yaml:"status"`
				Log    struct {
					ExpectIDs   []int `yaml:"expect_ids"`
					NoExpectIDs []int `yaml:"no_expect_ids"`
				} `yaml:"log"`
			} `yaml:"output"`
		} `yaml:"stages"`
	} `yaml:"tests"`
}

// TestTemplatesFTW runs testdata/ftw/<class>.yaml against a patch of that
// class on GET /search, GET /products/{id} and POST /orders (ids from
// 4,900,100), without traffic rules, in the embedded engine.
func TestTemplatesFTW(t *testing.T) {
	for _, class := range Classes {
		t.Run(string(class), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "ftw", string(class)+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			dec := yaml.NewDecoder(bytes.NewReader(data))
			dec.KnownFields(true)
			var f ftwFile
			if err := dec.Decode(&f); err != nil {
				t.Fatal(err)
			}
			p := Patch{Service: "gateway", Vulnerability: "TEST-1", Classification: Classification{Class: class}}
			p.Endpoints = mergeEndpoints(nil, []string{"GET /search", "GET /products/{id}", "POST /orders"}, &p.Notes)
			build(DefaultConfig(), &p, 4_900_100, NewTraffic(0))
			// As in CRS regression runs, rule ids are checked with the
			// engine in detection mode, where one match does not stop the
			// others; the status with the rules blocking.
			w, err := compilePatch(&p, 4_900_000, "")
			if err != nil {
				t.Fatalf("%v\n%s", err, p.SecLang())
			}
			wd, err := compilePatch(&p, 4_900_000, "SecRuleEngine DetectionOnly\n")
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range f.Tests {
				t.Run(tc.Title, func(t *testing.T) {
					for _, st := range tc.Stages {
						in := st.Input
						req := Request{Method: in.Method, Target: in.URI, Headers: in.Headers, Body: in.Data}
						_, blockedBy, err := replay(w, req)
						if err != nil {
							t.Fatal(err)
						}
						ids, _, err := replay(wd, req)
						if err != nil {
							t.Fatal(err)
						}
						status := 200
						if blockedBy != 0 {
							status = 403
						}
						if want := st.Output.Status; want != 0 && status != want {
							t.Errorf("%s: status %d, want %d (matched %v)", tc.Desc, status, want, ids)
						}
						for _, id := range st.Output.Log.ExpectIDs {
							if !slices.Contains(ids, id) {
								t.Errorf("%s: rule %d did not match (matched %v)", tc.Desc, id, ids)
							}
						}
						for _, id := range st.Output.Log.NoExpectIDs {
							if slices.Contains(ids, id) {
								t.Errorf("%s: rule %d matched", tc.Desc, id)
							}
						}
					}
				})
			}
			if t.Failed() {
				t.Log(strings.TrimSpace(p.SecLang()))
			}
		})
	}
}
