// Package vulndbtest gives tests the real vulnerability database snapshots
// that ship in ../shared beside the checkout.
package vulndbtest

import (
	"os"
	"path/filepath"
	"testing"
)

// The osv.dev all.zip snapshots in ../shared/data: the Go ecosystem, and
// the PyPA advisory database in the same layout.
const (
	snapshot     = "osv-go-2026-08-21.zip"
	pypiSnapshot = "osv-pypi-pypa-2024-10-10.zip"
)

// GoSnapshotPath returns the Go snapshot's path, or "" when it is absent.
// It finds the module root by walking up from the working directory to
// go.mod, so it serves tests at any depth.
func GoSnapshotPath() string { return sharedPath(snapshot) }

// GoSnapshot returns the Go snapshot's path, or skips tb with a message
// saying where it is expected when it is absent.
func GoSnapshot(tb testing.TB) string {
	tb.Helper()
	return sharedOrSkip(tb, snapshot)
}

// PyPISnapshot returns the PyPI snapshot's path (2,661 PYSEC records, ten of
// them withdrawn), or skips tb when it is absent.
func PyPISnapshot(tb testing.TB) string {
	tb.Helper()
	return sharedOrSkip(tb, pypiSnapshot)
}

func sharedOrSkip(tb testing.TB, name string) string {
	tb.Helper()
	path := sharedPath(name)
	if path == "" {
		tb.Skipf("the vulnerability database snapshot ../shared/data/%s beside the checkout is absent", name)
	}
	return path
}

func sharedPath(name string) string {
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
	path := filepath.Join(dir, "..", "shared", "data", name)
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}
