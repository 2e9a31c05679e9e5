// Package postgres is the store of a scaled-out evident: the state of
// every replica in one PostgreSQL database, through pgx and its pool.
//
// It implements store.Store with the behaviour store/storetest checks,
// the same as store/sqlite. Appends are committed in groups by one
// committer goroutine per Store (group commit: one transaction, and so one
// WAL flush, for every batch waiting), and sequence numbers come from a
// counter row updated in the append transaction, whose lock orders the
// appends of every process sharing the database: they increase in commit
// order, and a number is never handed out twice, not even after a
// checkpoint deleted every batch. Every write that records an audit entry
// takes an exclusive lock on the audit log first, so the hash chain has
// one head whichever replica appends.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/store"
)

// Config is where the database is and how the store connects to it.
type Config struct {
	// DSN is the libpq connection string, as a URL
	// (postgres://user:password@host:5432/evident?sslmode=verify-full) or
	// as keyword=value pairs; the PG* environment variables fill in what
	// it leaves out. Its password is never logged nor put in an error.
	DSN string `yaml:"dsn"`
	// MaxConns is the most connections the store opens: the committer
	// holds one while it commits, every other call one while it runs.
	MaxConns int `yaml:"max_conns"`
	// ConnectTimeout bounds opening one connection.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// DefaultConfig opens at most 8 connections and waits 5 s for one; it has
// no DSN, which every deployment gives.
func DefaultConfig() Config {
	return Config{MaxConns: 8, ConnectTimeout: 5 * time.Second}
}

// Validate reports a missing or unparsable DSN and a setting outside its
// range.
func (c Config) Validate() error {
	var errs []error
	if c.DSN == "" {
		errs = append(errs, errors.New("dsn is empty"))
	} else if _, err := pgxpool.ParseConfig(c.DSN); err != nil {
		// pgx's parse error redacts the password.
		errs = append(errs, fmt.Errorf("dsn: %w", err))
	}
	if c.MaxConns < 2 {
		errs = append(errs, fmt.Errorf("max_conns %d is under 2 (the committer holds one)", c.MaxConns))
	}
	if c.ConnectTimeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("connect_timeout %v is under 1ms", c.ConnectTimeout))
	}
	return errors.Join(errs...)
}

// Redacted is where the DSN points, for logs and errors:
// postgres://user@host:port/database, without the password or any
// other parameter.
func (c Config) Redacted() string {
	pc, err := pgxpool.ParseConfig(c.DSN)
	if err != nil {
		return "(unparsable dsn)"
	}
	cc := pc.ConnConfig
	return "postgres://" + cc.User + "@" + cc.Host + ":" + strconv.Itoa(int(cc.Port)) + "/" + cc.Database
}

// LogValue logs the configuration with the DSN redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("dsn", c.Redacted()), slog.Int("max_conns", c.MaxConns),
		slog.Duration("connect_timeout", c.ConnectTimeout))
}

// Store is a store.Store in one PostgreSQL database, working in one
// tenant (store.Store.Tenant).
type Store struct {
	*db
	tenant string
}

// db is the database the stores of every tenant share.
type db struct {
	where string // the redacted DSN, for errors
	pool  *pgxpool.Pool

	// calls admits the calls until Close and commits the appends.
	calls store.Calls

	// locks are the connections that hold the advisory locks TryLock
	// took, by name (under locksMu); closing one releases its lock.
	locksMu sync.Mutex
	locks   map[string]*pgx.Conn
}

var _ store.Store = (*Store)(nil)

// Open connects to the database of cfg and migrates its schema. It fails
// with store.ErrSchemaTooNew when a newer evident has migrated the
// database. ctx bounds the connecting and migration only. Several
// processes may open the same database: migrations run one at a time.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	ms, err := store.LoadMigrations(migrationFiles)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", cfg.Redacted(), err)
	}
	return open(ctx, cfg, ms, false)
}

// OpenReader connects to the database of cfg as Open does, for the
// commands that only read it (token list, audit verify), and leaves its
// schema as it is: a database an older evident migrated last is refused
// (store.ErrSchemaBehind) rather than migrated under the evident that may
// serve it, as is a newer one (store.ErrSchemaTooNew).
func OpenReader(ctx context.Context, cfg Config) (*Store, error) {
	ms, err := store.LoadMigrations(migrationFiles)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", cfg.Redacted(), err)
	}
	return open(ctx, cfg, ms, true)
}

// open is Open with the migrations to apply, so tests can build a
// database of an older schema; with reader, OpenReader.
func open(ctx context.Context, cfg Config, ms []store.Migration, reader bool) (*Store, error) {
	where := cfg.Redacted()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("open store %s: %w", where, err)
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", where, err)
	}
	pc.MaxConns = int32(min(cfg.MaxConns, 1<<20))
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	pc.AfterConnect = durableCommits
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", where, err)
	}
	check := migrate
	if reader {
		check = checkSchema
	}
	if err := check(ctx, pool, ms); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open store %s: %w", where, err)
	}
	s := &Store{db: &db{where: where, pool: pool},
		tenant: store.DefaultTenant}
	s.calls.StartCommits(s.commit)
	return s, nil
}

// durableCommits makes a connection's commits durable before they
// return, as a batch's acknowledgement promises: a server, database, role
// or DSN set to synchronous_commit off would acknowledge commits that a
// crash of the server loses. The other settings (on, local, remote_write,
// remote_apply) all flush the commit to the server's own disk first, and
// are kept.
func durableCommits(ctx context.Context, c *pgx.Conn) error {
	var v string
	if err := c.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&v); err != nil {
		return fmt.Errorf("read synchronous_commit: %w", err)
	}
	if v != "off" {
		return nil
	}
	if _, err := c.Exec(ctx, `SET synchronous_commit = on`); err != nil {
		return fmt.Errorf("set synchronous_commit on (it is off): %w", err)
	}
	return nil
}

// Tenant returns the store of tenant id over the same database; see
// store.Store.
func (s *Store) Tenant(id string) (store.Store, error) {
	return s.ForTenant(id)
}

// ForTenant is Tenant with the concrete type.
func (s *Store) ForTenant(id string) (*Store, error) {
	if err := store.ValidateTenant(id); err != nil {
		return nil, fmt.Errorf("open tenant store: %w", err)
	}
	return &Store{db: s.db, tenant: id}, nil
}

// tenantTables are the tables that hold a tenant's rows, each with a key
// or index that starts with the tenant: the store's and the scaled-out
// deployment's shards and joins (cluster.go), which the API replicas
// serve.
var tenantTables = []string{"checkpoints", "batches", "findings", "verdict_history", "alerts",
	"shards", "join_callers", "join_callees", "join_edges", "join_linked", "join_resolved"}

// emptyQuery asks whether no table holds a row of the tenant $1.
var emptyQuery = func() string {
	var exists []string
	for _, t := range tenantTables {
		exists = append(exists, `EXISTS (SELECT 1 FROM `+t+` WHERE tenant = $1)`)
	}
	return `SELECT NOT (` + strings.Join(exists, " OR ") + `)`
}()

// Empty reports whether the tenant has nothing stored; see store.Store.
func (s *Store) Empty(ctx context.Context) (bool, error) {
	if err := s.calls.Enter(); err != nil {
		return false, fmt.Errorf("check tenant %q: %w", s.tenant, err)
	}
	defer s.calls.Leave()
	var empty bool
	if err := s.pool.QueryRow(ctx, emptyQuery, s.tenant).Scan(&empty); err != nil {
		return false, fmt.Errorf("check tenant %q in %s: %w", s.tenant, s.where, err)
	}
	return empty, nil
}

// Close closes the connections; see store.Store.
func (s *Store) Close() error {
	return s.calls.Close(func() error {
		var errs []error
		for _, c := range s.locks {
			// The server frees a session's locks when its backend
			// ends, after the connection closed: unlocking first
			// frees them before Close returns, so a process that
			// takes over at once (a restart) finds them free. A
			// connection that is gone holds none.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = c.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
			cancel()
			errs = append(errs, c.Close(context.Background()))
		}
		s.pool.Close()
		return errors.Join(errs...)
	})
}

// ErrIngestLocked is returned by LockIngest when another process ingests
// into the database.
var ErrIngestLocked = errors.New("another evident ingests into this database")

// LockIngest makes this process the only one that ingests into the
// database (its schema), until Close: it takes a session advisory lock on
// a connection of its own, and fails with ErrIngestLocked while another
// process holds it. Every engine checkpoints its model and drops the log
// up to it, batches another engine appended and this one never applied
// included, so two ingesting processes on one database would lose data;
// the processes that only serve the API take no lock.
func (s *Store) LockIngest(ctx context.Context) error {
	took, err := s.TryLock(ctx, "evident ingest ")
	if err != nil {
		return fmt.Errorf("lock ingest: %w", err)
	}
	if !took {
		return fmt.Errorf("lock ingest into %s: %w: run one evident serve with receivers or sources per database, and the others with none", s.where, ErrIngestLocked)
	}
	return nil
}

// TryLock takes the session advisory lock name of the database (its
// schema) for this process until Close, on a connection of its own, and
// reports whether it has it: false while another process holds it. Taking
// a lock this Store holds already checks, on the lock's connection, that
// the server still counts the lock as this connection's (pg_locks): a
// connection that died or was terminated lost its lock, which may be
// another process's now. It is then closed and the lock taken again, if
// it is free.
func (s *Store) TryLock(ctx context.Context, name string) (bool, error) {
	if err := s.calls.Enter(); err != nil {
		return false, err
	}
	defer s.calls.Leave()
	s.locksMu.Lock()
	defer s.locksMu.Unlock()
	if conn := s.locks[name]; conn != nil {
		var held bool
		err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
			AND pid = pg_backend_pid() AND objsubid = 1
			AND (classid::bigint << 32 | objid::bigint) = hashtextextended($1 || current_schema(), 0))`, name).Scan(&held)
		if err == nil && held {
			return true, nil
		}
		if ctx.Err() != nil {
			return false, fmt.Errorf("check lock %q in %s: %w", name, s.where, ctx.Err())
		}
		// Lost: the connection is gone or holds nothing any more.
		conn.Close(context.Background())
		delete(s.locks, name)
	}
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("lock %q in %s: %w", name, s.where, err)
	}
	conn := c.Hijack()
	var took bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1 || current_schema(), 0))`, name).Scan(&took); err != nil {
		conn.Close(context.Background())
		return false, fmt.Errorf("lock %q in %s: %w", name, s.where, err)
	}
	if !took {
		conn.Close(context.Background())
		return false, nil
	}
	if s.locks == nil {
		s.locks = map[string]*pgx.Conn{}
	}
	s.locks[name] = conn
	return true, nil
}

// AppendBatch logs a batch; see store.Store. It is SubmitBatch and its
// wait.
func (s *Store) AppendBatch(ctx context.Context, kind store.BatchKind, payload []byte) (int64, error) {
	return s.SubmitBatch(ctx, kind, payload)()
}

// SubmitBatch hands a batch to the committer and returns at once; see
// store.Store and store.Calls.SubmitBatch.
func (s *Store) SubmitBatch(ctx context.Context, kind store.BatchKind, payload []byte) (wait func() (int64, error)) {
	return s.calls.SubmitBatch(ctx, s.where, s.tenant, kind, payload)
}

// commit appends the batches of a group in one transaction. The counter
// row's lock orders it after the commits of other processes.
func (s *Store) commit(group []*store.Pending) ([]int64, error) {
	// The transaction serves many callers: no one caller's context may
	// abort it. Close waits for every caller, so nothing is cut short.
	ctx := context.Background()
	seqs := make([]int64, len(group))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var last int64
		if err := tx.QueryRow(ctx, `UPDATE counters SET last = last + $1 WHERE name = 'batches' RETURNING last`, len(group)).Scan(&last); err != nil {
			return fmt.Errorf("number the batches: %w", err)
		}
		now := time.Now().UnixNano()
		rows := make([][]any, len(group))
		for i, p := range group {
			seqs[i] = last - int64(len(group)-1-i)
			rows[i] = []any{seqs[i], p.Tenant, string(p.Kind), p.Payload, now}
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"batches"}, []string{"seq", "tenant", "kind", "payload", "appended_at"}, pgx.CopyFromRows(rows))
		return err
	})
	return seqs, err
}

// Batches replays the log; see store.Store.
func (s *Store) Batches(ctx context.Context, after int64, fn func(seq int64, kind store.BatchKind, payload []byte) error) error {
	if err := s.calls.Enter(); err != nil {
		return fmt.Errorf("read batches: %w", err)
	}
	defer s.calls.Leave()
	rows, err := s.pool.Query(ctx, `SELECT seq, kind, payload FROM batches WHERE tenant = $1 AND seq > $2 ORDER BY seq`, s.tenant, after)
	if err != nil {
		return fmt.Errorf("read batches from %s: %w", s.where, err)
	}
	defer rows.Close()
	// No copy of the payload: fn is told not to keep it.
	return store.ScanBatches[pgtype.DriverBytes](rows, s.where, fn)
}

// Checkpoint stores the model state and truncates the log; see
// store.Store.
func (s *Store) Checkpoint(ctx context.Context, seq int64, state []byte) error {
	if err := s.calls.Enter(); err != nil {
		return fmt.Errorf("checkpoint at %d: %w", seq, err)
	}
	defer s.calls.Leave()
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// FOR UPDATE: two processes checkpointing one tenant take turns,
		// and the second sees the first's checkpoint.
		var stored, last int64
		err := tx.QueryRow(ctx, `SELECT seq FROM checkpoints WHERE tenant = $1 FOR UPDATE`, s.tenant).Scan(&stored)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT last FROM counters WHERE name = 'batches'`).Scan(&last); err != nil {
			return err
		}
		if seq < stored || seq > last {
			return fmt.Errorf("%w: sequence %d is outside [%d, %d], from the stored checkpoint to the last batch", store.ErrInvalid, seq, stored, last)
		}
		if state == nil {
			state = []byte{} // NOT NULL; nil would bind as NULL
		}
		if _, err := tx.Exec(ctx, `INSERT INTO checkpoints (tenant, seq, state, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq, state = excluded.state, created_at = excluded.created_at`,
			s.tenant, seq, state, time.Now().UnixNano()); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM batches WHERE tenant = $1 AND seq <= $2`, s.tenant, seq)
		return err
	}); err != nil {
		return fmt.Errorf("checkpoint %s at %d: %w", s.where, seq, err)
	}
	return nil
}

// LoadCheckpoint returns the stored checkpoint; see store.Store.
func (s *Store) LoadCheckpoint(ctx context.Context) (int64, []byte, error) {
	if err := s.calls.Enter(); err != nil {
		return 0, nil, fmt.Errorf("load checkpoint: %w", err)
	}
	defer s.calls.Leave()
	var (
		seq   int64
		state []byte
	)
	err := s.pool.QueryRow(ctx, `SELECT seq, state FROM checkpoints WHERE tenant = $1`, s.tenant).Scan(&seq, &state)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, nil, nil
	case err != nil:
		return 0, nil, fmt.Errorf("load checkpoint from %s: %w", s.where, err)
	}
	if state == nil {
		state = []byte{} // an empty state is a state: only "no checkpoint" is nil
	}
	return seq, state, nil
}

// PutFindings replaces the stored findings of the update's scope and
// records the change in the audit log; see store.Store.
func (s *Store) PutFindings(ctx context.Context, u store.FindingsUpdate) error {
	docs, err := store.EncodeFindings(u)
	if err != nil {
		return err
	}
	if err := s.calls.Enter(); err != nil {
		return fmt.Errorf("put findings: %w", err)
	}
	defer s.calls.Leave()
	// A nil Services is every service; an empty one, none.
	scope, args := ` WHERE tenant = $1`, []any{s.tenant}
	if u.Services != nil {
		scope, args = scope+` AND service = ANY($2)`, append(args, u.Services)
	}
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Two replacements of one scope take turns: the second reads what
		// the first wrote.
		if err := lockAudit(ctx, tx); err != nil {
			return err
		}
		old, err := storedFindings(ctx, tx, scope, args)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM findings`+scope, args...); err != nil {
			return err
		}
		rows := make([][]any, len(u.Findings))
		for i, f := range u.Findings {
			rows[i] = []any{s.tenant, f.Service, f.Package.PURL, f.Vulnerability.ID, docs[i]}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"findings"}, []string{"tenant", "service", "purl", "vuln_id", "doc"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		change, err := u.Change(old)
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, u.Time, u.Actor, store.ActionFindingsReplace, store.AuditTarget(s.tenant, u.Target()), change)
	}); err != nil {
		return fmt.Errorf("put findings into %s: %w", s.where, err)
	}
	return nil
}

// storedFindings reads the stored documents of the findings that match
// the WHERE clause scope.
func storedFindings(ctx context.Context, tx pgx.Tx, scope string, args []any) (map[store.FindingKey][]byte, error) {
	rows, err := tx.Query(ctx, `SELECT service, purl, vuln_id, doc FROM findings`+scope, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	old := map[store.FindingKey][]byte{}
	for rows.Next() {
		var (
			k   store.FindingKey
			doc []byte
		)
		if err := rows.Scan(&k.Service, &k.PURL, &k.VulnID, &doc); err != nil {
			return nil, err
		}
		old[k] = doc
	}
	return old, rows.Err()
}

// Findings returns the stored findings; see store.Store.
func (s *Store) Findings(ctx context.Context) ([]findings.Finding, error) {
	if err := s.calls.Enter(); err != nil {
		return nil, fmt.Errorf("read findings: %w", err)
	}
	defer s.calls.Leave()
	// COLLATE "C": byte order, as SQLite sorts, whatever the database's
	// collation.
	rows, err := s.pool.Query(ctx, `SELECT service, purl, vuln_id, doc FROM findings WHERE tenant = $1
		ORDER BY service COLLATE "C", purl COLLATE "C", vuln_id COLLATE "C"`, s.tenant)
	if err != nil {
		return nil, fmt.Errorf("read findings from %s: %w", s.where, err)
	}
	defer rows.Close()
	out, err := store.ScanFindings(rows)
	if err != nil {
		return nil, fmt.Errorf("read findings from %s: %w", s.where, err)
	}
	return out, nil
}

// AppendVerdicts records verdict changes; see store.Store.
func (s *Store) AppendVerdicts(ctx context.Context, changes []store.VerdictChange) error {
	times, err := store.VerdictTimes(changes)
	if err != nil {
		return err
	}
	if err := s.calls.Enter(); err != nil {
		return fmt.Errorf("append verdicts: %w", err)
	}
	defer s.calls.Leave()
	if len(changes) == 0 {
		return nil
	}
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// One batch of statements, one round trip; the identity column
		// numbers the rows in the order given.
		var b pgx.Batch
		for i, c := range changes {
			b.Queue(`INSERT INTO verdict_history (tenant, time, service, vuln_id, purl, from_verdict, to_verdict, reason, vex_from, vex_to)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
				s.tenant, times[i], c.Service, c.VulnID, c.PURL, string(c.From), string(c.To), c.Reason, c.VEXFrom, c.VEXTo)
		}
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return err
		}
		for _, c := range changes {
			if target, details, ok := c.Audit(); ok {
				if err := appendAudit(ctx, tx, c.Time, store.ActorEngine, store.ActionVEXChange, store.AuditTarget(s.tenant, target), details); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("append verdicts to %s: %w", s.where, err)
	}
	return nil
}

// VerdictHistory returns the changes of one vulnerability in one service;
// see store.Store.
func (s *Store) VerdictHistory(ctx context.Context, service, vulnID string, limit int) ([]store.VerdictChange, error) {
	if err := s.calls.Enter(); err != nil {
		return nil, fmt.Errorf("read verdict history: %w", err)
	}
	defer s.calls.Leave()
	rows, err := s.pool.Query(ctx, `SELECT time, service, vuln_id, purl, from_verdict, to_verdict, reason, vex_from, vex_to
		FROM verdict_history WHERE tenant = $1 AND service = $2 AND vuln_id = $3 ORDER BY time DESC, id DESC LIMIT $4`,
		s.tenant, service, vulnID, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("read verdict history of %s in %q from %s: %w", vulnID, service, s.where, err)
	}
	defer rows.Close()
	out, err := store.ScanVerdictChanges(rows)
	if err != nil {
		return nil, fmt.Errorf("read verdict history of %s in %q from %s: %w", vulnID, service, s.where, err)
	}
	return out, nil
}

// limitArg is the argument of a LIMIT for limit: NULL, no limit, when it
// is not positive.
func limitArg(limit int) *int64 {
	if limit <= 0 {
		return nil
	}
	n := int64(limit)
	return &n
}

// PutAlert stores an alert; see store.Store.
func (s *Store) PutAlert(ctx context.Context, a store.Alert) error {
	cols, err := store.EncodeAlert(a)
	if err != nil {
		return err
	}
	if err := s.calls.Enter(); err != nil {
		return fmt.Errorf("put alert %s: %w", a.ID, err)
	}
	defer s.calls.Leave()
	if _, err := s.pool.Exec(ctx, `INSERT INTO alerts (tenant, id, kind, severity, service, summary, details, time, received_at, dedupe_key, observed)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (tenant, id) DO NOTHING`,
		s.tenant, a.ID, cols.Kind, cols.Severity, cols.Service, cols.Summary, cols.Details, cols.Time, cols.ReceivedAt, cols.DedupeKey, cols.Observed); err != nil {
		return fmt.Errorf("put alert %s into %s: %w", a.ID, s.where, err)
	}
	return nil
}

// Alerts returns the alerts that match q; see store.Store.
func (s *Store) Alerts(ctx context.Context, q store.AlertQuery) ([]store.Alert, error) {
	where, args := []string{"tenant = $1"}, []any{s.tenant}
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, cond+" $"+strconv.Itoa(len(args)))
	}
	since, after, err := store.AlertQueryTimes(q)
	if err != nil {
		return nil, err
	}
	if !q.Since.IsZero() {
		add("time >=", since)
	}
	if q.ID != "" {
		add("id =", q.ID)
	}
	if q.After != nil {
		args = append(args, after, q.After.ID)
		t, id := "$"+strconv.Itoa(len(args)-1), "$"+strconv.Itoa(len(args))
		where = append(where, "(time < "+t+" OR (time = "+t+` AND id COLLATE "C" < `+id+"))")
	}
	if q.Service != "" {
		add("service =", q.Service)
	}
	if q.Kind != "" {
		add("kind =", q.Kind)
	}
	args = append(args, limitArg(q.Limit))
	query := `SELECT id, kind, severity, service, summary, details, time, received_at, dedupe_key, observed FROM alerts WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY time DESC, id COLLATE "C" DESC LIMIT $` + strconv.Itoa(len(args))

	if err := s.calls.Enter(); err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	defer s.calls.Leave()
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read alerts from %s: %w", s.where, err)
	}
	defer rows.Close()
	out, err := store.ScanAlerts(rows)
	if err != nil {
		return nil, fmt.Errorf("read alerts from %s: %w", s.where, err)
	}
	return out, nil
}

// FiredAlerts returns what seeds an alert router; see store.Store.
func (s *Store) FiredAlerts(ctx context.Context, since time.Time, limit int) ([]store.FiredAlert, error) {
	from, err := store.FiredAlertsFrom(since)
	if err != nil {
		return nil, err
	}
	if err := s.calls.Enter(); err != nil {
		return nil, fmt.Errorf("read fired alerts: %w", err)
	}
	defer s.calls.Leave()
	rows, err := s.pool.Query(ctx, `SELECT dedupe_key, time, observed, CASE WHEN dedupe_key IS NULL THEN details END
		FROM alerts WHERE tenant = $1 AND time >= $2 AND (dedupe_key IS NULL OR dedupe_key <> '')
		ORDER BY time DESC, id COLLATE "C" DESC LIMIT $3`, s.tenant, from, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("read fired alerts from %s: %w", s.where, err)
	}
	defer rows.Close()
	out, err := store.ScanFiredAlerts(rows)
	if err != nil {
		return nil, fmt.Errorf("read fired alerts from %s: %w", s.where, err)
	}
	return out, nil
}

// Retain deletes old verdict changes and alerts; see store.Store.
func (s *Store) Retain(ctx context.Context, now time.Time, cfg store.Retention) (int64, error) {
	cutoffs, err := cfg.Cutoffs(now)
	if err != nil {
		return 0, err
	}
	if err := s.calls.Enter(); err != nil {
		return 0, fmt.Errorf("retain: %w", err)
	}
	defer s.calls.Leave()
	var deleted int64
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, c := range cutoffs {
			tag, err := tx.Exec(ctx, `DELETE FROM `+c.Table+` WHERE time < $1`, c.Before)
			if err != nil {
				return fmt.Errorf("%s: %w", c.Table, err)
			}
			deleted += tag.RowsAffected()
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("retain in %s: %w", s.where, err)
	}
	return deleted, nil
}
