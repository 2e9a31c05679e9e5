//go:build unix

package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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

// TestCheckMode: a store whose database was made before evident created
// it 0600, with the umask's 0644, or whose mode was changed since, is
// reported when it is opened again, by serve (Open) or by the token
// commands (OpenShared), with its path, its mode and the chmod that
// fixes it; its mode is left as it is.
func TestCheckMode(t *testing.T) {
	for _, tt := range []struct {
		name string
		open func(context.Context, string, Config) (*Store, error)
		mode os.FileMode
		// loose: CheckMode reports the database.
		loose bool
	}{
		{"serve, owner only", Open, 0o600, false},
		{"serve, owner may execute", Open, 0o700, false},
		{"serve, umask 022", Open, 0o644, true},
		{"serve, group reads", Open, 0o640, true},
		{"serve, others write", Open, 0o602, true},
		{"token create, owner only", OpenShared, 0o600, false},
		{"token create, umask 022", OpenShared, 0o644, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(t.Context(), dir, DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, FileName)
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			s, err = tt.open(t.Context(), dir, DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.PutAlert(t.Context(), store.Alert{ID: "a", Kind: "k", Time: time.Now()}); err != nil {
				t.Fatal(err)
			}
			err = s.CheckMode()
			if !tt.loose {
				if err != nil {
					t.Errorf("CheckMode = %v, want nil", err)
				}
				return
			}
			var me *ModeError
			if !errors.As(err, &me) {
				t.Fatalf("CheckMode = %v, want a *ModeError", err)
			}
			if diff := cmp.Diff(&ModeError{Path: path, Mode: tt.mode}, me); diff != "" {
				t.Errorf("CheckMode (-want +got):\n%s", diff)
			}
			for _, s := range []string{path + " has mode " + fmt.Sprintf("%04o", uint32(tt.mode)), "chmod 600 " + path + " "} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("CheckMode = %q, want %q in it", err, s)
				}
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tt.mode {
				t.Errorf("after opening, the database's mode is %v, want %v as it was", got, tt.mode)
			}
		})
	}
}
