package vulndb

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseRecord feeds arbitrary bytes to the record parser: it must
// never panic, and a record it accepts must be indexable and answer
// lookups for each of its packages at each of its bounds.
func FuzzParseRecord(f *testing.F) {
	paths, _ := filepath.Glob("testdata/records/*.json")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(goodRecord))
	f.Add([]byte(`{"id":"X","affected":[{"package":{"ecosystem":"PyPI","name":"p"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.0rc1"},{"limit":"*"},{"last_affected":"2!3.0.post1"}]}],"versions":["1.0"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, id, err := parseRecord(data)
		if err != nil {
			return
		}
		if id == "" || rec.vuln.Entry.ID != id {
			t.Fatalf("accepted record with id %q (entry id %q)", id, rec.vuln.Entry.ID)
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
