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

// Close closes the file.
func (a *AuditFile) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.f.Close()
}
