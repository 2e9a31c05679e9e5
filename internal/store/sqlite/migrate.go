package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"time"

	"github.com/evidentsec/evident/internal/store"
)

// migrationFiles are the schema changes, one file each (see
// store.Migration).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrate brings the schema of db up to the last of ms, all pending
// migrations in one transaction so a crash leaves the old schema or the
// new one. db must be the writer, whose transactions begin IMMEDIATE: a
// second process migrating the same file waits for the first instead of
// both reading the same version.
func migrate(ctx context.Context, db *sql.DB, ms []store.Migration) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the error that made us roll back is the one to report
		}
	}()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL -- unix nanoseconds
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if err := store.TooNew(current, len(ms)); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	for _, m := range ms[current:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, now); err != nil {
			return fmt.Errorf("record migration %s: %w", m.Name, err)
		}
	}
	return tx.Commit()
}
