// Package store is the shop's SQLite database (modernc.org/sqlite, pure Go),
// with one OpenTelemetry CLIENT span per statement carrying the database
// semantic conventions (db.system.name, db.namespace, db.collection.name,
// db.operation.name, db.query.text). Those spans are how evident learns which
// tables a service can reach: sqlite://<db.namespace>/<db.collection.name>.
package store

import (
	"context"
	"database/sql"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Namespace is the db.namespace of the shop database.
const Namespace = "shop"

const schema = `
CREATE TABLE IF NOT EXISTS customers (
	id      INTEGER PRIMARY KEY,
	name    TEXT NOT NULL,
	email   TEXT NOT NULL UNIQUE,
	address TEXT NOT NULL,
	phone   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
	id          INTEGER PRIMARY KEY,
	customer_id INTEGER NOT NULL REFERENCES customers(id),
	items       TEXT NOT NULL,
	total_cents INTEGER NOT NULL,
	status      TEXT NOT NULL,
	payment_ref TEXT NOT NULL DEFAULT '',
	created_at  TEXT NOT NULL
);`

// DB is the shop database. It is safe for concurrent use.
type DB struct {
	sql    *sql.DB
	path   string
	tracer trace.Tracer
}

// Open opens (creating if needed) the database file at path in WAL mode, so
// that the reporter can read while orders writes.
func Open(ctx context.Context, path string) (*DB, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create schema in %s: %w", path, err)
	}
	return &DB{sql: db, path: path, tracer: otel.Tracer("example.com/shop/internal/store")}, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.sql.Close() }

// Raw returns the database handle without tracing, for startup work (seeding)
// that belongs to no request.
func (d *DB) Raw() *sql.DB { return d.sql }

// start opens the CLIENT span of one statement, named "<operation> <table>" as
// the database conventions ask.
func (d *DB) start(ctx context.Context, op, table, query string) (context.Context, trace.Span) {
	return d.tracer.Start(ctx, op+" "+table,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.DBSystemNameSQLite,
			semconv.DBNamespace(Namespace),
			semconv.DBCollectionName(table),
			semconv.DBOperationName(op),
			semconv.DBQueryText(query),
		))
}

func end(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Exec runs one statement that changes table; op is its SQL verb (INSERT, ...).
func (d *DB) Exec(ctx context.Context, op, table, query string, args ...any) (sql.Result, error) {
	ctx, span := d.start(ctx, op, table, query)
	res, err := d.sql.ExecContext(ctx, query, args...)
	end(span, err)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, table, err)
	}
	return res, nil
}

// QueryRow runs a statement on table that returns one row and scans it into dest.
func (d *DB) QueryRow(ctx context.Context, op, table, query string, args []any, dest ...any) error {
	ctx, span := d.start(ctx, op, table, query)
	err := d.sql.QueryRowContext(ctx, query, args...).Scan(dest...)
	end(span, err)
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, table, err)
	}
	return nil
}

// Query runs a statement on table and calls each for every row, inside the
// statement's span so that the rows' CPU time is attributed to it.
func (d *DB) Query(ctx context.Context, op, table, query string, args []any, each func(*sql.Rows) error) error {
	ctx, span := d.start(ctx, op, table, query)
	err := d.query(ctx, query, args, each)
	end(span, err)
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, table, err)
	}
	return nil
}

func (d *DB) query(ctx context.Context, query string, args []any, each func(*sql.Rows) error) error {
	rows, err := d.sql.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
