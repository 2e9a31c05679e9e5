package waf

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

// TestLoadCorpusNoCorpus: a corpus directory that does not exist, is a
// file, or holds no corpus file is an error, not an empty corpus that
// every class-template patch would be "proven" against (0 of 0).
func TestLoadCorpusNoCorpus(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sql_injection.yaml")
	if err := os.WriteFile(file, []byte("class: sql_injection\nsamples:\n  - name: tautology\n    source: https://example.com\n    in: query\n    payload: \"1 OR 1=1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		fsys func() fs.FS
	}{
		{"missing directory", func() fs.FS { return os.DirFS(filepath.Join(dir, "nope")) }},
		{"a file", func() fs.FS { return os.DirFS(file) }},
		{"empty directory", func() fs.FS { return os.DirFS(filepath.Join(dir, "empty")) }},
		{"no yaml file", func() fs.FS { return fstest.MapFS{"README.md": {Data: []byte("corpus")}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadCorpus(tt.fsys())
			if !errors.Is(err, ErrNoCorpus) || len(got) != 0 {
				t.Errorf("LoadCorpus() = %d classes, %v; want none and ErrNoCorpus", len(got), err)
			}
		})
	}
	// A directory with a corpus file loads it.
	got, err := LoadCorpus(os.DirFS(dir))
	if err != nil {
		t.Fatalf("LoadCorpus(%s) = %v", dir, err)
	}
	if len(got) != 1 || len(got[ClassSQLInjection]) != 1 {
		t.Errorf("LoadCorpus(%s) = %v, want the one sql_injection sample", dir, got)
	}
}
