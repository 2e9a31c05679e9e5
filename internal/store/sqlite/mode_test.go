//go:build unix

package sqlite

import (
	"context"
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
	for _, tt := range []struct {
		name string
		// open is how the store is made: by serve (Open), or by token
		// create beside no serve (OpenShared).
		open  func(context.Context, string, Config) (*Store, error)
		files []string
	}{
		{"serve", Open, []string{FileName, FileName + "-wal", FileName + "-shm", "evident.lock"}},
		{"token create", OpenShared, []string{FileName, FileName + "-wal", FileName + "-shm"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := tt.open(t.Context(), dir, DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.PutAlert(t.Context(), store.Alert{ID: "a", Kind: "k", Time: time.Now()}); err != nil {
				t.Fatal(err)
			}
			for _, name := range tt.files {
				fi, err := os.Stat(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if perm := fi.Mode().Perm(); perm&0o077 != 0 {
					t.Errorf("%s: mode %v, want none for group and others", name, perm)
				}
			}
		})
	}
}
