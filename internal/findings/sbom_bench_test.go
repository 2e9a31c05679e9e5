package findings

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// benchBOM is a CycloneDX SBOM of n Go modules in the shape
// cyclonedx-gomod writes, a tenth of them vulnerable versions of modules
// that the test records name.
func benchBOM(b *testing.B, n int) []byte {
	b.Helper()
	type component struct {
		BOMRef  string `json:"bom-ref"`
		Type    string `json:"type"`
		Name    string `json:"name"`
		Version string `json:"version"`
		PURL    string `json:"purl"`
	}
	comps := make([]component, n)
	for i := range comps {
		name, version := fmt.Sprintf("example.com/mod%d", i), fmt.Sprintf("v1.%d.0", i%50)
		if i%10 == 0 {
			name, version = "golang.org/x/text", fmt.Sprintf("v0.3.%d", i%9)
		}
		purl := fmt.Sprintf("pkg:golang/%s@%s?type=module", name, version)
		comps[i] = component{BOMRef: fmt.Sprintf("%s#%d", purl, i), Type: "library", Name: name, Version: version, PURL: purl}
	}
	doc, err := json.Marshal(map[string]any{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": comps})
	if err != nil {
		b.Fatal(err)
	}
	return doc
}

func BenchmarkParseCycloneDX(b *testing.B) {
	const n = 5000
	db := testDB(b)
	doc := benchBOM(b, n)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		fs, errs := ParseCycloneDX(bytes.NewReader(doc), "bench.json", db)
		if len(errs) > 0 || len(fs) == 0 {
			b.Fatalf("%d findings, errors %v", len(fs), errs)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "components/s")
}
