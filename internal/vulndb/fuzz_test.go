package vulndb

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParseRecord feeds arbitrary bytes to the record parser: it must
// never panic, and a record it accepts must be indexable and answer
// lookups for each of its packages at each of its bounds. An accepted
// record that left out invalid affected entries kept a valid one, names
// each entry left out once, and lists none of their functions; it keeps
// no blank alias.
func FuzzParseRecord(f *testing.F) {
	paths, _ := filepath.Glob("testdata/records/*.json")
	ghsa, _ := filepath.Glob("testdata/ghsa/*.json")
	pypa, _ := filepath.Glob("testdata/pypa/*.json")
	for _, p := range slices.Concat(paths, ghsa, pypa) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(goodRecord))
	f.Add([]byte(`{"id":"X","affected":[{"package":{"ecosystem":"PyPI","name":"p"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.0rc1"},{"limit":"*"},{"last_affected":"2!3.0.post1"}]}],"versions":["1.0"]}]}`))
	f.Add([]byte(`{"id":"X","affected":[{"package":{"ecosystem":"Go","name":"m"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}],"ecosystem_specific":{"imports":[{"path":"m","symbols":["F"]}]}},{"package":{"ecosystem":"Go","name":"m"},"ranges":[{"type":"CALVER","events":[{"introduced":"0"}]}],"ecosystem_specific":{"imports":[{"path":"m","symbols":["G"]}]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, id, err := parseRecord(data)
		if err != nil {
			return
		}
		if id == "" || rec.vuln.Entry.ID != id {
			t.Fatalf("accepted record with id %q (entry id %q)", id, rec.vuln.Entry.ID)
		}
		v := rec.vuln
		// The entries left out come first among the parts left out,
		// before ranges and aliases.
		if len(rec.dropped) < len(v.dropped) || len(v.dropped) > 0 && len(v.dropped) >= len(v.Entry.Affected) {
			t.Fatalf("accepted record left out entries %v of %d (problems %v): want a valid one kept, each left out named", v.dropped, len(v.Entry.Affected), rec.dropped)
		}
		for j, i := range v.dropped {
			if want := fmt.Sprintf("affected[%d]: ", i); !strings.HasPrefix(rec.dropped[j].Error(), want) {
				t.Fatalf("entry %d left out with problem %q, which does not name it", i, rec.dropped[j])
			}
			if slices.ContainsFunc(rec.affected, func(a *affected) bool { return a.index == i }) {
				t.Fatalf("entry %d both left out and kept", i)
			}
		}
		if slices.ContainsFunc(v.Entry.Aliases, func(a string) bool { return strings.TrimSpace(a) == "" }) {
			t.Fatalf("accepted record kept a blank alias: %q", v.Entry.Aliases)
		}
		for _, fn := range v.Functions {
			if fn.Package == "" && fn.Source == SourceOSV {
				t.Fatalf("affected function %+v without a code package", fn)
			}
			if slices.ContainsFunc(fn.entries, func(i int) bool { return slices.Contains(v.dropped, i) }) {
				t.Fatalf("affected function %+v of an entry left out (%v)", fn, v.dropped)
			}
		}
		db := build([]*record{rec}, nil, nil, nil, 0)
		for _, a := range rec.vuln.Entry.Affected {
			for _, r := range a.Ranges {
				for _, e := range r.Events {
					_, v := eventKind(e)
					db.Affecting(a.Package.Ecosystem, a.Package.Name, v)
					db.FixedVersion(rec.vuln, a.Package.Ecosystem, a.Package.Name, v)
				}
			}
		}
	})
}

// FuzzParseKEV feeds arbitrary bytes to the KEV parser: it must never
// panic, and every entry it keeps must have a CVE id.
func FuzzParseKEV(f *testing.F) {
	data, err := os.ReadFile("testdata/kev.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"vulnerabilities":[{"cveID":"CVE-2021-44228","dateAdded":"2021-12-10","dueDate":"x"}],"count":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _, err := ParseKEV(bytes.NewReader(data), "kev.json")
		if err != nil {
			return
		}
		for _, v := range c.Vulnerabilities {
			if !cveID.MatchString(v.CVEID) {
				t.Fatalf("kept entry with cveID %q", v.CVEID)
			}
		}
	})
}

// FuzzParseEPSS feeds arbitrary bytes to the EPSS parser: it must never
// panic, and every score it keeps must be a CVE with numbers from 0 to 1.
func FuzzParseEPSS(f *testing.F) {
	data, err := os.ReadFile("testdata/epss.csv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("#model_version:v1,score_date:2022-06-01\ncve,epss,percentile\nCVE-2021-44228,1e-3,0.5\ncve-2021-1,x,y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, _, err := ParseEPSS(bytes.NewReader(data), "epss.csv")
		if err != nil {
			return
		}
		for id, s := range e.Scores {
			if id != s.CVE || !cveID.MatchString(id) || s.Probability < 0 || s.Probability > 1 || s.Percentile < 0 || s.Percentile > 1 {
				t.Fatalf("kept %q: %+v", id, s)
			}
		}
	})
}

// FuzzLoadLayouts writes a fuzzed record, and for the vuln.go.dev layout
// fuzzed index files, beside a good record, once as a directory and once
// as a zip archive, and loads both. The two layouts must give the same
// records and the same problems, every problem must name a file of the
// source, and in a plain layout the good record must load whatever its
// neighbour holds.
func FuzzLoadLayouts(f *testing.F) {
	good, err := os.ReadFile("testdata/records/GO-2022-0969.json")
	if err != nil {
		f.Fatal(err)
	}
	vulns, err := os.ReadFile("testdata/govulndb/index/vulns.json")
	if err != nil {
		f.Fatal(err)
	}
	modules, err := os.ReadFile("testdata/govulndb/index/modules.json")
	if err != nil {
		f.Fatal(err)
	}
	rec, err := os.ReadFile("testdata/records/GO-2022-0617.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(false, []byte(nil), []byte(nil), "GO-2022-0617", rec, false)
	f.Add(false, []byte(nil), []byte(nil), "sub/GO-2022-0617", rec, true)
	f.Add(true, vulns, modules, "GO-2022-0617", rec, true)
	f.Add(true, []byte(nil), []byte(`[{"path":"golang.org/x/text","vulns":[{"id":"GO-2022-0969"}]}]`), "GO-2022-0617", rec, false)
	f.Add(true, []byte(`[{"id":"../x"},{"id":"GO-2022-0617"}]`), []byte(nil), "GO-2022-0618", []byte(goodRecord), false)
	f.Fuzz(func(t *testing.T, goVulnDB bool, vulnsIndex, modulesIndex []byte, name string, data []byte, gz bool) {
		if !fs.ValidPath(name) || strings.ContainsAny(name, "\\\x00:") || strings.HasPrefix(name, "index") || len(name) > 100 {
			return
		}
		files := map[string][]byte{}
		prefix := ""
		if goVulnDB {
			prefix = "ID/"
			files["index/db.json"] = []byte(`{"modified":"2026-11-24T10:00:00Z"}`)
			if len(vulnsIndex) > 0 {
				files["index/vulns.json"] = vulnsIndex
			}
			if len(modulesIndex) > 0 {
				files["index/modules.json"] = modulesIndex
			}
		}
		files[prefix+"GO-2022-0969.json"] = good
		p := prefix + name + ".json"
		if gz {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(data)
			zw.Close()
			data, p = b.Bytes(), p+".gz"
		}
		if files[p] != nil || files[strings.TrimSuffix(p, ".gz")] != nil {
			return
		}
		files[p] = data

		root := t.TempDir()
		dir := filepath.Join(root, "db")
		archive := filepath.Join(root, "db.zip")
		var zb bytes.Buffer
		zw := zip.NewWriter(&zb)
		for name, content := range files {
			path := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return // a record named like a directory of another
			}
			if err := os.WriteFile(path, content, 0o644); err != nil {
				return
			}
			w, err := zw.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(content)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(archive, zb.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}

		load := func(src, sep string) (ids []string, problems []string, err error) {
			db, probs, err := Load(context.Background(), Options{Sources: []string{src}})
			if err != nil {
				return nil, nil, err
			}
			for _, v := range db.All() {
				ids = append(ids, v.Entry.ID)
			}
			for _, p := range probs {
				file, ok := strings.CutPrefix(p.File, src+sep)
				if !ok {
					t.Errorf("problem %q does not name a file of %s", p, src)
				}
				reason := strings.ReplaceAll(p.Reason, src+sep, "")
				problems = append(problems, filepath.ToSlash(file)+": "+p.ID+": "+reason)
			}
			slices.Sort(ids)
			slices.Sort(problems)
			return ids, problems, nil
		}
		dirIDs, dirProblems, dirErr := load(dir, string(filepath.Separator))
		zipIDs, zipProblems, zipErr := load(archive, ":")
		if (dirErr == nil) != (zipErr == nil) {
			t.Fatalf("directory error %v, archive error %v", dirErr, zipErr)
		}
		if diff := cmp.Diff(dirIDs, zipIDs); diff != "" {
			t.Errorf("records differ (-directory +archive):\n%s", diff)
		}
		if diff := cmp.Diff(dirProblems, zipProblems); diff != "" {
			t.Errorf("problems differ (-directory +archive):\n%s", diff)
		}
		if !goVulnDB && !slices.Contains(dirIDs, "GO-2022-0969") {
			t.Errorf("good record not loaded beside %s: records %v, problems %v", p, dirIDs, dirProblems)
		}
	})
}
