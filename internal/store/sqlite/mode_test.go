//go:build unix

package sqlite

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/store"
)

// TestFileModes: the files of a new store are its owner's only, whatever
// the umask lets others read: the database holds the tokens' hashes,
// the audit log and the alerts' evidence, as the log's segments hold the
// telemetry.
func TestFileModes(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	s, err := Open(t.Context(), dir, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.PutAlert(t.Context(), store.Alert{ID: "a", Kind: "k", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name string }{
		{FileName},
		{FileName + "-wal"},
		{FileName + "-shm"},
		{"evident.lock"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fi, err := os.Stat(filepath.Join(dir, tt.name))
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm&0o077 != 0 {
				t.Errorf("%s: mode %v, want none for group and others", tt.name, perm)
			}
		})
	}
}
