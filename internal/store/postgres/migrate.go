package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evidentsec/evident/internal/store"
)

// migrationFiles are the schema changes, one file each (see
// store.Migration).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the key of the advisory lock that migrations hold, so
// that replicas starting together migrate one after the other: the
// ASCII of "evident".
const migrationLock int64 = 0x65766964656e74

// migrate brings the schema up to the last of ms, all pending migrations
// in one transaction (PostgreSQL's DDL is transactional), so a crash
// leaves the old schema or the new one.
func migrate(ctx context.Context, pool *pgxpool.Pool, ms []store.Migration) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("lock the schema: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at BIGINT  NOT NULL -- unix nanoseconds
		)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		return store.ApplyMigrations(ms, current, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			func(query string, args ...any) error {
				_, err := tx.Exec(ctx, query, args...)
				return err
			})
	})
}

// checkSchema is store.CheckSchema of the database's schema version
// against ms; it creates nothing (0 when no migration ever ran).
func checkSchema(ctx context.Context, pool *pgxpool.Pool, ms []store.Migration) error {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	var current int
	if exists {
		if err := pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
	}
	return store.CheckSchema(current, len(ms))
}
