package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evidentsec/evident/internal/store"
)

// lockAudit takes the audit log's lock in tx until it ends. EXCLUSIVE
// mode lets readers through but no other writer: the writes that record
// an entry take turns, in this process and any other, so each appends
// after the entry the one before committed.
func lockAudit(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `LOCK TABLE audit_log IN EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("lock the audit log: %w", err)
	}
	return nil
}

// appendAudit appends an entry to the audit log in tx, the transaction of
// the change it records, so that the change and its record commit
// together.
func appendAudit(ctx context.Context, tx pgx.Tx, at time.Time, actor, action, target string, details any) error {
	if err := lockAudit(ctx, tx); err != nil {
		return err
	}
	var prev *store.AuditEntry
	var last store.AuditEntry
	err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&last.Seq, &last.Hash)
	switch {
	case err == nil:
		prev = &last
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("read the last audit entry: %w", err)
	}
	e, err := store.NewAuditEntry(prev, at, actor, action, target, details)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO audit_log (seq, time, actor, action, target, details, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
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
	rows, err := s.pool.Query(ctx, `SELECT seq, time, actor, action, target, details, prev_hash, hash
		FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("read audit log from %s: %w", s.where, err)
	}
	defer rows.Close()
	out, err := store.ScanAuditEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("read audit log from %s: %w", s.where, err)
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
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Under the audit lock, a concurrent creation of the same ID has
		// committed or not started: the check below sees it.
		if err := lockAudit(ctx, tx); err != nil {
			return err
		}
		var taken bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tokens WHERE id = $1)`, t.ID).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return fmt.Errorf("%w: token ID %s is taken", store.ErrInvalid, t.ID)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tokens (id, name, roles, tenant, secret_hash, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, t.ID, t.Name, t.Roles, t.Tenant, t.SecretHash, created, expires); err != nil {
			return err
		}
		return appendAudit(ctx, tx, t.Created, actor, store.ActionTokenCreate, t.ID, t.Audit())
	}); err != nil {
		return fmt.Errorf("create token %s in %s: %w", t.ID, s.where, err)
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
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockAudit(ctx, tx); err != nil {
			return err
		}
		var revoked *int64
		err := tx.QueryRow(ctx, `SELECT revoked_at FROM tokens WHERE id = $1`, id).Scan(&revoked)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("%w: token %s", store.ErrNotFound, id)
		case err != nil:
			return err
		case revoked != nil:
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE tokens SET revoked_at = $1 WHERE id = $2`, ns, id); err != nil {
			return err
		}
		return appendAudit(ctx, tx, at, actor, store.ActionTokenRevoke, id, struct{}{})
	}); err != nil {
		return fmt.Errorf("revoke token %s in %s: %w", id, s.where, err)
	}
	return nil
}

// Tokens returns every stored token; see store.Store.
func (s *Store) Tokens(ctx context.Context) ([]store.Token, error) {
	if err := s.calls.Enter(); err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	defer s.calls.Leave()
	rows, err := s.pool.Query(ctx, `SELECT id, name, roles, tenant, secret_hash, created_at, expires_at, revoked_at
		FROM tokens ORDER BY created_at, id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("read tokens from %s: %w", s.where, err)
	}
	defer rows.Close()
	out, err := store.ScanTokens(rows, nil)
	if err != nil {
		return nil, fmt.Errorf("read tokens from %s: %w", s.where, err)
	}
	return out, nil
}
