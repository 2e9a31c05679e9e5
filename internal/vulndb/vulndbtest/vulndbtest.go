// Package vulndbtest gives tests the real Go vulnerability database
// snapshot that ships in ../shared beside the checkout.
package vulndbtest

import (
	"os"
	"path/filepath"
	"testing"
)

// snapshot is the osv.dev all.zip of the Go ecosystem in ../shared/data.
const snapshot = "osv-go-2026-08-21.zip"

// GoSnapshotPath returns the snapshot's path, or "" when it is absent. It
// finds the module root by walking up from the working directory to
// go.mod, so it serves tests at any depth.
func GoSnapshotPath() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
	path := filepath.Join(dir, "..", "shared", "data", snapshot)
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}

// GoSnapshot returns the snapshot's path, or skips tb with a message
// saying where it is expected when it is absent.
func GoSnapshot(tb testing.TB) string {
	tb.Helper()
	path := GoSnapshotPath()
	if path == "" {
		tb.Skipf("the Go vulnerability database snapshot ../shared/data/%s beside the checkout is absent", snapshot)
	}
	return path
}
