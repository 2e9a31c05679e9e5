package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/evidentsec/evident/internal/store"
)

// appendAudit appends an entry to the audit log in tx, the transaction of
// the change it records, so that the change and its record commit
// together. The writer's transactions hold SQLite's write lock from
// their start, so two processes never append after the same entry.
func appendAudit(ctx context.Context, tx *sql.Tx, at time.Time, actor, action, target string, details any) error {
	var prev *store.AuditEntry
	var last store.AuditEntry
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&last.Seq, &last.Hash)
	switch {
	case err == nil:
		prev = &last
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("read the last audit entry: %w", err)
	}
	e, err := store.NewAuditEntry(prev, at, actor, action, target, details)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (seq, time, actor, action, target, details, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, e.Time.UnixNano(), e.Actor, e.Action, e.Target, string(e.Details), e.PrevHash, e.Hash); err != nil {
		return fmt.Errorf("append audit entry %d: %w", e.Seq, err)
	}
	return nil
}

// AuditLog returns entries of the audit log; see store.Store.
func (s *Store) AuditLog(ctx context.Context, after int64, limit int) ([]store.AuditEntry, error) {
	if err := s.calls.Enter(); err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer s.calls.Leave()
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.read.QueryContext(ctx, `SELECT seq, time, actor, action, target, details, prev_hash, hash
		FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read audit log from %s: %w", s.path, err)
	}
	defer rows.Close()
	out, err := store.ScanAuditEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("read audit log from %s: %w", s.path, err)
	}
	return out, nil
}

// CreateToken stores a token and records it; see store.Store.
func (s *Store) CreateToken(ctx context.Context, t store.Token, actor string) error {
	created, expires, err := store.TokenTimes(t)
	if err != nil {
		return err
	}
	if err := s.calls.Enter(); err != nil {
		return fmt.Errorf("create token %s: %w", t.ID, err)
	}
	defer s.calls.Leave()
	if err := s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens WHERE id = ?`, t.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: token ID %s is taken", store.ErrInvalid, t.ID)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (id, name, roles, tenant, secret_hash, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, t.ID, t.Name, strings.Join(t.Roles, ","), t.Tenant, t.SecretHash, created, expires); err != nil {
			return err
		}
		return appendAudit(ctx, tx, t.Created, actor, store.ActionTokenCreate, t.ID,
			t.Audit())
	}); err != nil {
		return fmt.Errorf("create token %s in %s: %w", t.ID, s.path, err)
	}
	return nil
}

// RevokeToken revokes a token and records it; see store.Store.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time, actor string) error {
	ns, err := store.RevokeTime(id, at)
	if err != nil {
		return err
	}
	if err := s.calls.Enter(); err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	defer s.calls.Leave()
	if err := s.inTx(ctx, func(tx *sql.Tx) error {
		var revoked sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT revoked_at FROM tokens WHERE id = ?`, id).Scan(&revoked)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("%w: token %s", store.ErrNotFound, id)
		case err != nil:
			return err
		case revoked.Valid:
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ?`, ns, id); err != nil {
			return err
		}
		return appendAudit(ctx, tx, at, actor, store.ActionTokenRevoke, id, struct{}{})
	}); err != nil {
		return fmt.Errorf("revoke token %s in %s: %w", id, s.path, err)
	}
	return nil
}

// Tokens returns every stored token; see store.Store.
func (s *Store) Tokens(ctx context.Context) ([]store.Token, error) {
	if err := s.calls.Enter(); err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	defer s.calls.Leave()
	out, err := queryTokens(ctx, s.read)
	if err != nil {
		return nil, fmt.Errorf("read tokens from %s: %w", s.path, err)
	}
	return out, nil
}

// queryTokens reads every token, oldest first, with q: a pool or a
// transaction.
func queryTokens(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}) ([]store.Token, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, name, roles, tenant, secret_hash, created_at, expires_at, revoked_at
		FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return store.ScanTokens(rows, func(roles *[]string) any { return roleList{roles} })
}

// ReadTokens returns the tokens of the existing store in dir and leaves
// the store as it was, for serve --check-config: run before an upgrade,
// the check of the new evident must not migrate the store of the one
// still running, which would then refuse to start again
// (store.ErrSchemaTooNew). The tokens of an older schema are read in a
// transaction that migrates it and is rolled back; a newer schema is
// refused as by Open. It takes no lock on the directory.
func ReadTokens(ctx context.Context, dir string, cfg Config) ([]store.Token, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("read tokens in %s: %w", dir, err)
	}
	ms, err := store.LoadMigrations(migrationFiles)
	if err != nil {
		return nil, fmt.Errorf("read tokens in %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); err != nil { // sql.Open would create it
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	db, err := sql.Open("sqlite", dsn(path, url.Values{"_pragma": {fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds())}}))
	if err != nil {
		return nil, fmt.Errorf("read tokens from %s: %w", path, err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("read tokens from %s: %w", path, err)
	}
	// Rolled back whatever happens: nothing of the migration stays.
	defer tx.Rollback()
	if err := migrateTx(ctx, tx, ms); err != nil {
		return nil, fmt.Errorf("read tokens from %s: %w", path, err)
	}
	out, err := queryTokens(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("read tokens from %s: %w", path, err)
	}
	return out, nil
}

// roleList scans the roles column, the roles joined by commas, into the
// []string it points to.
type roleList struct{ roles *[]string }

// Scan implements sql.Scanner.
func (r roleList) Scan(src any) error {
	switch v := src.(type) {
	case string:
		*r.roles = strings.Split(v, ",")
	case []byte:
		*r.roles = strings.Split(string(v), ",")
	default:
		return fmt.Errorf("roles column of type %T is not text", src)
	}
	return nil
}
