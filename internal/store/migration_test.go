package store

import (
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
