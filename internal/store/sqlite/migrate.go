package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"

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
	if err := migrateTx(ctx, tx, ms); err != nil {
		return err
	}
	return tx.Commit()
}

// schemaVersion returns the schema version of db as migrate left it, 0
// when no migration ever ran, and creates nothing.
func schemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var n, current int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return current, nil
}

// migrateTx applies the migrations of ms that the database lacks in tx,
// which the caller commits, or rolls back to leave the file as it was.
func migrateTx(ctx context.Context, tx *sql.Tx, ms []store.Migration) error {
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
	return store.ApplyMigrations(ms, current, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		func(query string, args ...any) error {
			_, err := tx.ExecContext(ctx, query, args...)
			return err
		})
}
