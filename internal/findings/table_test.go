package findings

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWriteTable(t *testing.T) {
	fs := Merge(append(sameApp(t), parseFixture(t, ParseTrivy, "trivy/image.json")...))
	var buf bytes.Buffer
	if err := WriteTable(&buf, fs); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "testdata/merge/app.table.golden", buf.Bytes())
}

func TestWriteTableEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTable(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "SERVICE  PACKAGE  VERSION  VULNERABILITY  SEVERITY  FIXED  STATIC  SOURCES\n"; got != want {
		t.Errorf("WriteTable(nil) = %q, want %q", got, want)
	}
}

func TestWriteJSON(t *testing.T) {
	tests := []struct {
		name string
		in   []Finding
	}{
		{name: "empty", in: nil},
		{name: "app", in: Merge(sameApp(t))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteJSON(&buf, tt.in); err != nil {
				t.Fatal(err)
			}
			var doc Document
			if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Version != DocumentVersion {
				t.Errorf("version = %d, want %d", doc.Version, DocumentVersion)
			}
			if doc.Findings == nil {
				t.Error(`"findings" is null, want an array`)
			}
			if diff := cmp.Diff(tt.in, doc.Findings, cmp.Comparer(func(a, b []Finding) bool {
				return len(a) == 0 && len(b) == 0 || cmp.Equal(a, b)
			})); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}
