//go:build !linux

package sqlite

import "os"

// fdatasync is fsync where Go's syscall package has no fdatasync.
func fdatasync(f *os.File) error { return f.Sync() }
