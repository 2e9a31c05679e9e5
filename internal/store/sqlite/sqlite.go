// Package sqlite is the embedded store of evident serve: one SQLite
// database in WAL mode under the data directory, through the pure-Go
// driver modernc.org/sqlite (no cgo), and beside it the telemetry log in
// append-only segment files (batchlog.go, segment.go).
//
// All writes go through one connection, so they never contend for
// SQLite's single write lock; reads use a separate pool of query-only
// connections, which WAL lets run beside the writer on a snapshot (a
// query through the writer waits behind the appends: 2 to 5 ms instead
// of 50 to 70 µs in BenchmarkReadDuringAppends). Concurrent appends share one
// commit, one write and one sync of a segment (group commit). The data
// directory is locked while a Store has it open.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/store"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// FileName is the database file inside the data directory; SQLite keeps
// its -wal and -shm files beside it.
const FileName = "evident.db"

// lockName is the file in the data directory that the store locks, so
// that a second evident on the same directory fails at Open instead of
// checkpointing a model that lacks the first one's batches, which would
// drop them from the log.
const lockName = "evident.lock"

// ErrLocked is returned by Open when another store, in this process or
// another, has the data directory open.
var ErrLocked = errors.New("data directory is in use by another evident")

// Config tunes the SQLite store.
type Config struct {
	// Synchronous is how writes are synced. "full" syncs the telemetry
	// log on every commit (and SQLite its write-ahead log), so an
	// acknowledged batch survives a power loss; "normal" syncs a log
	// segment only when it is full or closed (SQLite: at WAL
	// checkpoints), so it survives a crash of the process but not of the
	// machine, and appends are several times faster.
	Synchronous string `yaml:"synchronous"`
	// BusyTimeout is how long a connection waits for a lock held by
	// another connection or process before it fails.
	BusyTimeout time.Duration `yaml:"busy_timeout"`
	// Readers is the most connections reading at once.
	Readers int `yaml:"readers"`
}

// DefaultConfig is durable against power loss, waits 5 s for locks and
// reads on 4 connections.
func DefaultConfig() Config {
	return Config{Synchronous: "full", BusyTimeout: 5 * time.Second, Readers: 4}
}

// Validate reports a setting outside its range.
func (c Config) Validate() error {
	var errs []error
	switch c.Synchronous {
	case "full", "normal":
	default:
		errs = append(errs, fmt.Errorf("synchronous %q is neither \"full\" nor \"normal\"", c.Synchronous))
	}
	if c.BusyTimeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("busy_timeout %v is under 1ms", c.BusyTimeout))
	}
	if c.Readers < 1 {
		errs = append(errs, fmt.Errorf("readers %d is under 1", c.Readers))
	}
	return errors.Join(errs...)
}

// Store is a store.Store in one SQLite database, working in one tenant
// (store.Store.Tenant).
type Store struct {
	*db
	tenant string
}

// db is the database the stores of every tenant share.
type db struct {
	path string
	lock *os.File // held open while the store is; nil where unsupported or shared
	// shared stores do not hold the lock and refuse AppendBatch and
	// Checkpoint.
	shared bool
	write  *sql.DB // one connection: every write, serialised
	read   *sql.DB // query-only connections
	// log is the telemetry log; nil until init read it. A shared store
	// reads the segments again at each Batches, as the process that
	// writes them changes them.
	log *batchLog
	dir string
	// segmentSize is where the log starts a new segment.
	segmentSize int64

	// calls admits the calls until Close and commits the appends.
	calls store.Calls
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it if needed) the database in dir, creating dir
// too, and migrates its schema. It fails with store.ErrSchemaTooNew when
// a newer evident has migrated the database. ctx bounds the opening and
// migration only.
func Open(ctx context.Context, dir string, cfg Config) (*Store, error) {
	return openAs(ctx, dir, cfg, options{})
}

// OpenShared opens the database in dir as Open does, but beside the
// evident serve that may hold it, for the commands that manage tokens
// and read the audit log: it takes no lock on the directory, and its
// AppendBatch and Checkpoint fail, as only the process that holds the
// lock may write the telemetry log. SQLite serialises the writes of the
// two processes.
func OpenShared(ctx context.Context, dir string, cfg Config) (*Store, error) {
	return openAs(ctx, dir, cfg, options{shared: true})
}

// OpenReader opens the existing database in dir as OpenShared does, for
// the commands that only read it (token list, audit verify), and leaves
// its schema as it is: a database an older evident migrated last is
// refused (store.ErrSchemaBehind) rather than migrated under the evident
// that may serve it, as is a newer one (store.ErrSchemaTooNew). It makes
// no file nor directory.
func OpenReader(ctx context.Context, dir string, cfg Config) (*Store, error) {
	return openAs(ctx, dir, cfg, options{shared: true, reader: true})
}

// openAs is open of cfg, validated, with evident's migrations.
func openAs(ctx context.Context, dir string, cfg Config, o options) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("open store in %s: %w", dir, err)
	}
	ms, err := store.LoadMigrations(migrationFiles)
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", dir, err)
	}
	o.migrations = ms
	return open(ctx, dir, cfg, o)
}

// errShared is returned by the log writes of a store opened shared.
var errShared = fmt.Errorf("%w: the store is opened shared (OpenShared), without the telemetry log", store.ErrInvalid)

// options are what tests vary beyond Config.
type options struct {
	// migrations are the ones to apply, so tests can build a database of
	// an older schema.
	migrations []store.Migration
	// shared opens without the lock, read-only for the telemetry log.
	shared bool
	// reader opens an existing database and checks its schema instead
	// of migrating it (OpenReader).
	reader bool
	// segmentSize is where the telemetry log starts a new segment;
	// defaultSegmentSize when 0.
	segmentSize int64
}

// open is Open with options.
func open(ctx context.Context, dir string, cfg Config, o options) (*Store, error) {
	shared := o.shared
	if o.segmentSize == 0 {
		o.segmentSize = defaultSegmentSize
	}
	if strings.ContainsRune(dir, '?') {
		// The driver cuts the file name at the first '?', where its
		// parameters start.
		return nil, fmt.Errorf("open store in %s: the directory name contains '?'", dir)
	}
	path := filepath.Join(dir, FileName)
	if o.reader {
		// sql.Open would make the file, and this function the directory.
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	var lock *os.File
	if !shared {
		var err error
		if lock, err = lockDir(dir); err != nil {
			return nil, fmt.Errorf("open store in %s: %w", dir, err)
		}
	}
	// The database holds the tokens' hashes, the audit log, the alerts'
	// evidence and the model's checkpoints: readable by its owner only,
	// as the log's segments are. SQLite would create it (as it would
	// here, shared or not: token create makes the store beside no serve)
	// with the umask's mode, often 0644, and its -wal and -shm files
	// with the database's. An existing database is left as it is.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		f.Close()
	case !errors.Is(err, fs.ErrExist):
		if lock != nil {
			lock.Close()
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	busy := fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds())
	writeDSN := dsn(path, url.Values{
		"_pragma": {busy, "journal_mode(WAL)", "synchronous(" + cfg.Synchronous + ")", "foreign_keys(1)",
			// Without a limit the -wal file keeps the size of the largest
			// burst between two WAL checkpoints for good.
			"journal_size_limit(67108864)"},
		// Write transactions take the write lock when they begin, not
		// at their first write, so they wait on busy_timeout instead of
		// failing with SQLITE_BUSY halfway through.
		"_txlock": {"immediate"},
	})
	write, err := sql.Open("sqlite", writeDSN)
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	s := &Store{db: &db{path: path, lock: lock, shared: shared, write: write, dir: dir, segmentSize: o.segmentSize},
		tenant: store.DefaultTenant}
	if err := s.init(ctx, cfg, busy, o.migrations, o.reader); err != nil {
		_ = s.Close() // the init error is the one to report
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.calls.StartCommits(s.log.append)
	return s, nil
}

// init checks the journal mode, migrates (or with reader, checks the
// schema), and opens the readers once the schema is in place.
func (s *Store) init(ctx context.Context, cfg Config, busy string, ms []store.Migration, reader bool) error {
	var mode string
	if err := s.write.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, not wal (is the directory on a network file system?)", mode)
	}
	if reader {
		current, err := schemaVersion(ctx, s.write)
		if err != nil {
			return err
		}
		if err := store.CheckSchema(current, len(ms)); err != nil {
			return err
		}
	} else if err := migrate(ctx, s.write, ms); err != nil {
		return err
	}
	read, err := sql.Open("sqlite", dsn(s.path, url.Values{
		"_pragma": {busy, "query_only(1)", "foreign_keys(1)"},
	}))
	if err != nil {
		return err
	}
	read.SetMaxOpenConns(cfg.Readers)
	read.SetMaxIdleConns(cfg.Readers)
	s.read = read
	if err := read.PingContext(ctx); err != nil {
		return err
	}
	if s.log, err = openLog(s.dir, s.segmentSize, cfg.Synchronous == "full", s.shared); err != nil {
		return err
	}
	// Sequence numbers are never reused: not those of the batches table,
	// where the version before logged (sqlite_sequence keeps its highest
	// after the rows are gone), nor those under a checkpoint, whose
	// segments may all be removed.
	var used int64
	if err := s.write.QueryRowContext(ctx, `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'batches'), 0)`).Scan(&used); err != nil {
		return err
	}
	s.log.raiseLast(used)
	var n int
	if err := s.write.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'checkpoints'`).Scan(&n); err != nil || n == 0 {
		return err // none: only tests open a schema from before 0005_tenants
	}
	checkpoints, err := allCheckpoints(ctx, s.write)
	if err != nil {
		return err
	}
	for _, seq := range checkpoints {
		s.log.raiseLast(seq)
	}
	return nil
}

func dsn(path string, params url.Values) string {
	return path + "?" + params.Encode()
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

// tenantTables are the tables that hold a tenant's rows, each with an
// index (or key) that starts with the tenant.
var tenantTables = []string{"checkpoints", "batches", "findings", "verdict_history", "alerts"}

// Empty reports whether the tenant has nothing stored; see store.Store.
// The telemetry log's segments are asked in memory: they know the last
// record of each tenant.
func (s *Store) Empty(ctx context.Context) (bool, error) {
	if err := s.calls.Enter(); err != nil {
		return false, fmt.Errorf("check tenant %q: %w", s.tenant, err)
	}
	defer s.calls.Leave()
	log := s.log
	if s.shared {
		var err error
		if log, err = openLog(s.dir, s.segmentSize, false, true); err != nil {
			return false, fmt.Errorf("check tenant %q: %w", s.tenant, err)
		}
	}
	if log.holds(s.tenant) {
		return false, nil
	}
	var (
		exists []string
		args   []any
	)
	for _, t := range tenantTables {
		exists, args = append(exists, `EXISTS (SELECT 1 FROM `+t+` WHERE tenant = ?)`), append(args, s.tenant)
	}
	var held bool
	if err := s.read.QueryRowContext(ctx, `SELECT `+strings.Join(exists, " OR "), args...).Scan(&held); err != nil {
		return false, fmt.Errorf("check tenant %q in %s: %w", s.tenant, s.path, err)
	}
	return !held, nil
}

// Close closes the database connections; see store.Store.
func (s *Store) Close() error {
	return s.calls.Close(func() error {
		var errs []error
		if s.read != nil {
			errs = append(errs, s.read.Close())
		}
		errs = append(errs, s.write.Close())
		if s.log != nil && !s.shared {
			// The committer has stopped.
			errs = append(errs, s.log.close())
		}
		if s.lock != nil {
			// Closing the file releases the lock, after the database is.
			errs = append(errs, s.lock.Close())
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("close store %s: %w", s.path, err)
		}
		return nil
	})
}

// AppendBatch logs a batch; see store.Store. It is SubmitBatch and its
// wait.
func (s *Store) AppendBatch(ctx context.Context, kind store.BatchKind, payload []byte) (int64, error) {
	return s.SubmitBatch(ctx, kind, payload)()
}

// SubmitBatch hands a batch to the committer and returns at once; see
// store.Store and store.Calls.SubmitBatch.
func (s *Store) SubmitBatch(ctx context.Context, kind store.BatchKind, payload []byte) (wait func() (int64, error)) {
	if s.shared {
		return func() (int64, error) { return 0, fmt.Errorf("append %s batch: %w", kind, errShared) }
	}
	return s.calls.SubmitBatch(ctx, s.path, s.tenant, kind, payload)
}

// Batches replays the log; see store.Store.
func (s *Store) Batches(ctx context.Context, after int64, fn func(seq int64, kind store.BatchKind, payload []byte) error) error {
	if err := s.calls.Enter(); err != nil {
		return fmt.Errorf("read batches: %w", err)
	}
	defer s.calls.Leave()
	// First what the version before logged in the batches table, all
	// below the segments' sequence numbers.
	rows, err := s.read.QueryContext(ctx, `SELECT seq, kind, payload FROM batches WHERE tenant = ? AND seq > ? ORDER BY seq`, s.tenant, after)
	if err != nil {
		return fmt.Errorf("read batches from %s: %w", s.path, err)
	}
	defer rows.Close()
	// No copy of the payload: fn is told not to keep it.
	if err := store.ScanBatches[sql.RawBytes](rows, s.path, fn); err != nil {
		return err
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("read batches from %s: %w", s.path, err)
	}
	// A checkpoint removes whole segments only, so batches it dropped
	// may still be in the ones kept: skip them.
	if err := s.read.QueryRowContext(ctx, `SELECT MAX(?, COALESCE((SELECT seq FROM checkpoints WHERE tenant = ?), 0))`, after, s.tenant).Scan(&after); err != nil {
		return fmt.Errorf("read batches from %s: %w", s.path, err)
	}
	log := s.log
	if s.shared {
		if log, err = openLog(s.dir, s.segmentSize, false, true); err != nil {
			return fmt.Errorf("read batches: %w", err)
		}
	}
	return log.batches(s.tenant, after, fn)
}

// Checkpoint stores the model state and truncates the log; see
// store.Store.
func (s *Store) Checkpoint(ctx context.Context, seq int64, state []byte) error {
	if s.shared {
		return fmt.Errorf("checkpoint at %d: %w", seq, errShared)
	}
	if err := s.calls.Enter(); err != nil {
		return fmt.Errorf("checkpoint at %d: %w", seq, err)
	}
	defer s.calls.Leave()
	var checkpoints map[string]int64
	if err := s.inTx(ctx, func(tx *sql.Tx) error {
		var stored int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT seq FROM checkpoints WHERE tenant = ?), 0)`, s.tenant).Scan(&stored); err != nil {
			return err
		}
		// The log's high-water mark counts the batches table's too.
		last := s.log.lastSeq()
		if seq < stored || seq > last {
			return fmt.Errorf("%w: sequence %d is outside [%d, %d], from the stored checkpoint to the last batch", store.ErrInvalid, seq, stored, last)
		}
		if state == nil {
			state = []byte{} // NOT NULL; nil would bind as NULL
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints (tenant, seq, state, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq, state = excluded.state, created_at = excluded.created_at`,
			s.tenant, seq, state, time.Now().UnixNano()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM batches WHERE tenant = ? AND seq <= ?`, s.tenant, seq); err != nil {
			return err
		}
		var err error
		checkpoints, err = allCheckpoints(ctx, tx)
		return err
	}); err != nil {
		return fmt.Errorf("checkpoint %s at %d: %w", s.path, seq, err)
	}
	// The checkpoint is committed; the segments it covers go after it. A
	// crash in between leaves them to be read again and skipped.
	s.log.drop(checkpoints)
	return nil
}

// allCheckpoints returns the sequence number of every tenant's
// checkpoint.
func allCheckpoints(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}) (map[string]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT tenant, seq FROM checkpoints`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var (
			tenant string
			seq    int64
		)
		if err := rows.Scan(&tenant, &seq); err != nil {
			return nil, err
		}
		out[tenant] = seq
	}
	return out, rows.Err()
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
	err := s.read.QueryRowContext(ctx, `SELECT seq, state FROM checkpoints WHERE tenant = ?`, s.tenant).Scan(&seq, &state)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil, nil
	case err != nil:
		return 0, nil, fmt.Errorf("load checkpoint from %s: %w", s.path, err)
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
	scope, args := " WHERE tenant = ?", []any{s.tenant}
	if u.Services != nil {
		scope += " AND service IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(u.Services)), ", ") + ")"
		for _, svc := range u.Services {
			args = append(args, svc)
		}
		if len(u.Services) == 0 {
			scope = " WHERE 0"
			args = nil
		}
	}
	if err := s.inTx(ctx, func(tx *sql.Tx) error {
		old, err := storedFindings(ctx, tx, scope, args)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM findings`+scope, args...); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO findings (tenant, service, purl, vuln_id, doc) VALUES (?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i, f := range u.Findings {
			if _, err := stmt.ExecContext(ctx, s.tenant, f.Service, f.Package.PURL, f.Vulnerability.ID, docs[i]); err != nil {
				return err
			}
		}
		change, err := u.Change(old)
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, u.Time, u.Actor, store.ActionFindingsReplace, store.AuditTarget(s.tenant, u.Target()), change)
	}); err != nil {
		return fmt.Errorf("put findings into %s: %w", s.path, err)
	}
	return nil
}

// storedFindings reads the stored documents of the findings that match
// the WHERE clause scope.
func storedFindings(ctx context.Context, tx *sql.Tx, scope string, args []any) (map[store.FindingKey][]byte, error) {
	rows, err := tx.QueryContext(ctx, `SELECT service, purl, vuln_id, doc FROM findings`+scope, args...)
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
	rows, err := s.read.QueryContext(ctx, `SELECT service, purl, vuln_id, doc FROM findings WHERE tenant = ? ORDER BY service, purl, vuln_id`, s.tenant)
	if err != nil {
		return nil, fmt.Errorf("read findings from %s: %w", s.path, err)
	}
	defer rows.Close()
	out, err := store.ScanFindings(rows)
	if err != nil {
		return nil, fmt.Errorf("read findings from %s: %w", s.path, err)
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
	if err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO verdict_history
			(tenant, time, service, vuln_id, purl, from_verdict, to_verdict, reason, vex_from, vex_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i, c := range changes {
			if _, err := stmt.ExecContext(ctx, s.tenant, times[i], c.Service, c.VulnID, c.PURL, string(c.From), string(c.To), c.Reason, c.VEXFrom, c.VEXTo); err != nil {
				return err
			}
			if target, details, ok := c.Audit(); ok {
				if err := appendAudit(ctx, tx, c.Time, store.ActorEngine, store.ActionVEXChange, store.AuditTarget(s.tenant, target), details); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("append verdicts to %s: %w", s.path, err)
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
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.read.QueryContext(ctx, `SELECT time, service, vuln_id, purl, from_verdict, to_verdict, reason, vex_from, vex_to
		FROM verdict_history WHERE tenant = ? AND service = ? AND vuln_id = ? ORDER BY time DESC, id DESC LIMIT ?`,
		s.tenant, service, vulnID, limit)
	if err != nil {
		return nil, fmt.Errorf("read verdict history of %s in %q from %s: %w", vulnID, service, s.path, err)
	}
	defer rows.Close()
	out, err := store.ScanVerdictChanges(rows)
	if err != nil {
		return nil, fmt.Errorf("read verdict history of %s in %q from %s: %w", vulnID, service, s.path, err)
	}
	return out, nil
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
	if _, err := s.write.ExecContext(ctx, `INSERT INTO alerts (tenant, id, kind, severity, service, summary, details, time, received_at, dedupe_key, observed)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant, id) DO NOTHING`,
		s.tenant, a.ID, cols.Kind, cols.Severity, cols.Service, cols.Summary, cols.Details, cols.Time, cols.ReceivedAt, cols.DedupeKey, cols.Observed); err != nil {
		return fmt.Errorf("put alert %s into %s: %w", a.ID, s.path, err)
	}
	return nil
}

// Alerts returns the alerts that match q; see store.Store.
func (s *Store) Alerts(ctx context.Context, q store.AlertQuery) ([]store.Alert, error) {
	where, args := []string{"tenant = ?"}, []any{s.tenant}
	since, after, err := store.AlertQueryTimes(q)
	if err != nil {
		return nil, err
	}
	if !q.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, since)
	}
	if q.ID != "" {
		where, args = append(where, "id = ?"), append(args, q.ID)
	}
	if q.After != nil {
		where, args = append(where, "(time < ? OR (time = ? AND id < ?))"), append(args, after, after, q.After.ID)
	}
	if q.Service != "" {
		where, args = append(where, "service = ?"), append(args, q.Service)
	}
	if q.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, q.Kind)
	}
	query := `SELECT id, kind, severity, service, summary, details, time, received_at, dedupe_key, observed FROM alerts WHERE ` + strings.Join(where, " AND ")
	query += " ORDER BY time DESC, id DESC LIMIT ?"
	limit := q.Limit
	if limit <= 0 {
		limit = -1
	}
	args = append(args, limit)

	if err := s.calls.Enter(); err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	defer s.calls.Leave()
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read alerts from %s: %w", s.path, err)
	}
	defer rows.Close()
	out, err := store.ScanAlerts(rows)
	if err != nil {
		return nil, fmt.Errorf("read alerts from %s: %w", s.path, err)
	}
	return out, nil
}

// FiredAlerts returns what seeds an alert router; see store.Store.
func (s *Store) FiredAlerts(ctx context.Context, since time.Time, limit int) ([]store.FiredAlert, error) {
	from, err := store.FiredAlertsFrom(since)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = -1
	}
	if err := s.calls.Enter(); err != nil {
		return nil, fmt.Errorf("read fired alerts: %w", err)
	}
	defer s.calls.Leave()
	rows, err := s.read.QueryContext(ctx, `SELECT dedupe_key, time, observed, CASE WHEN dedupe_key IS NULL THEN details END
		FROM alerts WHERE tenant = ? AND time >= ? AND (dedupe_key IS NULL OR dedupe_key <> '')
		ORDER BY time DESC, id DESC LIMIT ?`, s.tenant, from, limit)
	if err != nil {
		return nil, fmt.Errorf("read fired alerts from %s: %w", s.path, err)
	}
	defer rows.Close()
	out, err := store.ScanFiredAlerts(rows)
	if err != nil {
		return nil, fmt.Errorf("read fired alerts from %s: %w", s.path, err)
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
	if err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, c := range cutoffs {
			res, err := tx.ExecContext(ctx, `DELETE FROM `+c.Table+` WHERE time < ?`, c.Before)
			if err != nil {
				return fmt.Errorf("%s: %w", c.Table, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("%s: %w", c.Table, err)
			}
			deleted += n
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("retain in %s: %w", s.path, err)
	}
	return deleted, nil
}

// inTx runs fn in a write transaction and commits it when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // fn's error is the one to report
		return err
	}
	return tx.Commit()
}
