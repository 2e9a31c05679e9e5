package manifest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// fuzzParser checks what every parser promises on any input: no panic,
// and every requirement it returns has a name and a line of the input.
func fuzzParser(f *testing.F, parse func([]byte) ([]Requirement, error), seeds ...string) {
	for _, s := range seeds {
		data, err := os.ReadFile(filepath.Join("testdata", "monorepo", s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		reqs, err := parse(data)
		if err != nil {
			return
		}
		lines := bytes.Count(data, []byte{'\n'}) + 1
		for _, r := range reqs {
			if r.Name == "" || r.Line < 1 || r.Line > lines {
				t.Errorf("requirement %+v: want a name and a line in 1..%d", r, lines)
			}
		}
	})
}

func FuzzParseGoMod(f *testing.F) {
	fuzzParser(f, ParseGoMod, "go.mod", "services/gateway/go.mod", "broken/go.mod")
}

func FuzzParsePackageLock(f *testing.F) {
	fuzzParser(f, ParsePackageLock, "web/package-lock.json")
}

func FuzzParsePOM(f *testing.F) {
	fuzzParser(f, ParsePOM, "java/pom.xml")
}

func FuzzParseRequirements(f *testing.F) {
	fuzzParser(f, ParseRequirements, "py/requirements.txt")
}
