package store

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadMigrations(t *testing.T) {
	for _, tt := range []struct {
		name    string
		files   fstest.MapFS
		wantErr string
	}{
		{"Contiguous", fstest.MapFS{"migrations/0001_a.sql": {}, "migrations/0002_b.sql": {}}, ""},
		{"Gap", fstest.MapFS{"migrations/0001_a.sql": {}, "migrations/0003_c.sql": {}}, "migration 0003_c.sql: version 3, want 2 (no gaps, no duplicates)"},
		{"Duplicate", fstest.MapFS{"migrations/0001_a.sql": {}, "migrations/0001_b.sql": {}}, "migration 0001_b.sql: version 1, want 2 (no gaps, no duplicates)"},
		{"NotNumbered", fstest.MapFS{"migrations/first.sql": {}}, "migration first.sql: name is not NNNN_what.sql"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadMigrations(tt.files)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("LoadMigrations = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("LoadMigrations = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestCheckSchema: a read-only open takes a schema as it is: the one the
// running evident knows, else it says which side is behind.
func TestCheckSchema(t *testing.T) {
	for _, tt := range []struct {
		name           string
		current, known int
		want           error
		text           string
	}{
		{"current", 7, 7, nil, ""},
		{"older", 6, 7, ErrSchemaBehind, "schema version 6, this evident's is 7"},
		{"empty", 0, 7, ErrSchemaBehind, "no evident schema in it"},
		{"newer", 8, 7, ErrSchemaTooNew, "schema version 8, this evident knows up to 7"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckSchema(tt.current, tt.known)
			if !errors.Is(err, tt.want) || tt.want == nil && err != nil {
				t.Fatalf("CheckSchema(%d, %d) = %v, want %v", tt.current, tt.known, err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.text) {
				t.Errorf("CheckSchema(%d, %d) = %q, want it to say %q", tt.current, tt.known, err, tt.text)
			}
		})
	}
}
