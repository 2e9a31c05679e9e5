package waf

import (
	"fmt"
	"os"
	"sync"
)

// auditFileMode keeps the audit log from other users, as the alert log's
// JSON-lines sink does: its lines name the requests that were blocked,
// and whatever redaction left of them is still for operators only.
const auditFileMode = 0o640

// AuditFile is the file the proxy appends its audit log to
// (ProxyConfig.AuditLog). It is safe for concurrent use.
type AuditFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// OpenAuditFile opens path for appending, creating it with mode 0640. A
// file that already exists keeps its mode.
func OpenAuditFile(path string) (*AuditFile, error) {
	f, err := openAudit(path)
	if err != nil {
		return nil, err
	}
	return &AuditFile{path: path, f: f}, nil
}

func openAudit(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, auditFileMode)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return f, nil
}

// Write appends p with one write, so that lines never interleave.
func (a *AuditFile) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.f.Write(p)
}

// Reopen opens the file at its path again and writes to it from then
// on, for logrotate's move-and-signal: after the file is moved, the old
// one would otherwise get every line. When the path cannot be opened the
// old file is kept.
func (a *AuditFile) Reopen() error {
	f, err := openAudit(a.path)
	if err != nil {
		return err
	}
	a.mu.Lock()
	old := a.f
	a.f = f
	a.mu.Unlock()
	if err := old.Close(); err != nil {
		return fmt.Errorf("close audit log before reopening: %w", err)
	}
	return nil
}

// Close closes the file.
func (a *AuditFile) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.f.Close()
}
