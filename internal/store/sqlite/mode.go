package sqlite

import (
	"fmt"
	"io/fs"
	"os"
	"runtime"
)

// ModeError is a database whose mode grants its group or others some
// access (CheckMode).
type ModeError struct {
	// Path is the database's, Mode its permission bits.
	Path string
	Mode fs.FileMode
}

func (e *ModeError) Error() string {
	return fmt.Sprintf("%s has mode %04o (%v): its group or others can read the API tokens' hashes, the audit log and the alerts' evidence; evident makes a new store 0600 but leaves an existing one's mode as it is: chmod 600 %s (its -wal and -shm take the database's mode when SQLite makes them again, after the last process that has it open closes it)",
		e.Path, uint32(e.Mode), e.Mode, e.Path)
}

// CheckMode reports, as a *ModeError, a database whose mode grants its
// group or others any access: one made before evident created it 0600,
// with the umask's mode (often 0644), or one changed since. Like ssh
// with a key file, it says so and changes nothing: the mode is the
// operator's to fix, and may be meant (a backup user's group). SQLite
// makes the -wal and -shm with the database's mode, so the database's is
// the one to check. On Windows, whose permission bits say nothing of who
// may read a file, it reports nothing.
func (s *Store) CheckMode() error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("check the mode of %s: %w", s.path, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return &ModeError{Path: s.path, Mode: perm}
	}
	return nil
}

// TailCut reports, as a *TailCut, the record that opening the store cut
// off the end of its telemetry log, or nil when it cut nothing.
func (s *Store) TailCut() error {
	if s.log == nil || s.log.cut == nil {
		return nil
	}
	return s.log.cut
}
