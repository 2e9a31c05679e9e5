package dbupdate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// Meta describes a downloaded file; it is stored beside it as JSON
// (meta.json for an archive, kev.meta.json for the KEV feed,
// epss.meta.json for the EPSS file).
type Meta struct {
	// URL is where the file was downloaded from.
	URL string `json:"url"`
	// ETag and LastModified are the server's validators, sent back to make
	// the next update conditional.
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// Size is the file's length in bytes and MD5 its hex MD5 digest.
	Size int64  `json:"size"`
	MD5  string `json:"md5"`
	// Records is the number of OSV records (KEV vulnerabilities, EPSS
	// scores).
	Records int `json:"records"`
	// DownloadedAt is when the file was downloaded, CheckedAt when the
	// server last confirmed it is current.
	DownloadedAt time.Time `json:"downloaded_at"`
	CheckedAt    time.Time `json:"checked_at"`
}

// readMeta returns the metadata at path, and false when there is none
// usable: a missing or damaged metadata file only costs an unconditional
// download.
func readMeta(path string) (Meta, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Meta{}, false
	}
	var m Meta
	if err := json.Unmarshal(data, &m); err != nil {
		return Meta{}, false
	}
	return m, true
}

// writeMeta replaces the metadata at path atomically.
func writeMeta(path string, m Meta) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(data, '\n'))
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and
// renames it over path, so that readers see the old or the new content,
// never a part.
func writeFileAtomic(path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), tempPattern(path))
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// Readable by all, like the files of os.WriteFile: CreateTemp's are
	// private, and the database is not secret.
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// tempPattern names temporary files after their target, hidden, with a
// .tmp suffix, so that a crash leaves something recognisable.
func tempPattern(path string) string {
	return "." + filepath.Base(path) + ".*.tmp"
}

// staleTemp is the age past which a temporary file (tempPattern) belongs
// to no update still running: one that was killed (SIGKILL, the OOM
// killer, a power loss), whose deferred clean-up never ran.
const staleTemp = 24 * time.Hour

// sweepTemps removes the stale temporary files in root and its ecosystems'
// directories, each an archive's size, and an ecosystem directory they
// leave empty, which the loader would read as a source without records.
// A file it cannot remove is left for the next update.
func sweepTemps(root string, now time.Time) {
	dirs := []string{root}
	if entries, err := os.ReadDir(root); err == nil {
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, filepath.Join(root, e.Name()))
			}
		}
	}
	for _, dir := range dirs {
		temps, err := filepath.Glob(filepath.Join(dir, ".*.tmp"))
		if err != nil {
			continue
		}
		for _, t := range temps {
			if fi, err := os.Lstat(t); err == nil && fi.Mode().IsRegular() && now.Sub(fi.ModTime()) > staleTemp {
				os.Remove(t)
			}
		}
		if dir != root {
			os.Remove(dir) // only when empty
		}
	}
}

// syncDir makes a rename in dir durable. Windows cannot open directories
// for syncing, and its renames are journaled by NTFS.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return d.Close()
}
