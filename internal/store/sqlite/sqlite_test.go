package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dir := t.TempDir()
		return func(ctx context.Context) (store.Store, error) {
			return Open(ctx, dir, DefaultConfig())
		}
	})
}

// BenchmarkStore is the store's main operations, the same code as the
// PostgreSQL store's BenchmarkStore.
func BenchmarkStore(b *testing.B) {
	storetest.Benchmark(b, func(b *testing.B) storetest.Opener {
		dir := b.TempDir()
		return func(ctx context.Context) (store.Store, error) {
			return Open(ctx, dir, DefaultConfig())
		}
	})
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name    string
		modify  func(c *Config)
		wantErr string
	}{
		{"Default", func(*Config) {}, ""},
		{"Normal", func(c *Config) { c.Synchronous = "normal" }, ""},
		{"SynchronousOff", func(c *Config) { c.Synchronous = "off" }, `synchronous "off" is neither "full" nor "normal"`},
		{"NoBusyTimeout", func(c *Config) { c.BusyTimeout = 0 }, "busy_timeout 0s is under 1ms"},
		{"NoReaders", func(c *Config) { c.Readers = 0 }, "readers 0 is under 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	notDB := t.TempDir()
	if err := os.WriteFile(filepath.Join(notDB, FileName), bytes.Repeat([]byte("not a database "), 512), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		dir     string
		cfg     Config
		wantErr string
	}{
		{"BadConfig", t.TempDir(), Config{}, "synchronous"},
		{"QuestionMark", filepath.Join(t.TempDir(), "what?"), DefaultConfig(), "contains '?'"},
		{"DirIsAFile", file, DefaultConfig(), "not a directory"},
		{"NotADatabase", notDB, DefaultConfig(), "not a database"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.dir, tt.cfg)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded, want an error", tt.dir)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.dir) {
				t.Errorf("Open(%s) = %v, want an error naming the directory and containing %q", tt.dir, err, tt.wantErr)
			}
		})
	}
}

func TestOpenLocksDirectory(t *testing.T) {
	dir := t.TempDir()
	first, err := Open(t.Context(), dir, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if second, err := Open(t.Context(), dir, DefaultConfig()); err == nil {
		second.Close()
		t.Fatal("second Open of an open directory succeeded")
	} else if !errors.Is(err, ErrLocked) {
		t.Errorf("second Open = %v, want ErrLocked", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(t.Context(), dir, DefaultConfig())
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	again.Close()
}

func TestMigrations(t *testing.T) {
	all, err := store.LoadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 2 {
		t.Fatalf("%d migrations, the upgrade test needs at least 2", len(all))
	}

	t.Run("UpgradeFromFirstVersion", func(t *testing.T) {
		dir := t.TempDir()
		old, err := open(t.Context(), dir, DefaultConfig(), options{migrations: all[:1]})
		if err != nil {
			t.Fatal(err)
		}
		// The SQL of version 1: the running code writes the last schema.
		res, err := old.write.ExecContext(t.Context(), `INSERT INTO batches (kind, payload, appended_at) VALUES ('spans', 'from version 1', 0)`)
		if err != nil {
			t.Fatal(err)
		}
		seq, err := res.LastInsertId()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := old.write.ExecContext(t.Context(), `INSERT INTO checkpoint (id, seq, state, created_at) VALUES (1, 0, 'state of version 1', 0)`); err != nil {
			t.Fatal(err)
		}
		if err := old.Close(); err != nil {
			t.Fatal(err)
		}
		s, err := Open(t.Context(), dir, DefaultConfig())
		if err != nil {
			t.Fatalf("Open of a version 1 database: %v", err)
		}
		defer s.Close()
		if got := schemaVersions(t, s); !cmp.Equal(got, versions(all)) {
			t.Errorf("schema_migrations = %v, want %v", got, versions(all))
		}
		var got []string
		if err := s.Batches(t.Context(), 0, func(gotSeq int64, kind store.BatchKind, payload []byte) error {
			got = append(got, fmt.Sprintf("%d %s %s", gotSeq, kind, payload))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if want := []string{fmt.Sprintf("%d spans from version 1", seq)}; !cmp.Equal(got, want) {
			t.Errorf("batches after the upgrade = %q, want %q", got, want)
		}
		// What was there is the default tenant's.
		if _, state, err := s.LoadCheckpoint(t.Context()); err != nil || string(state) != "state of version 1" {
			t.Errorf("checkpoint after the upgrade = %q, %v; want the one of version 1", state, err)
		}
		// The tables of the later migrations work.
		if err := s.PutAlert(t.Context(), store.Alert{ID: "a", Kind: "k", Time: time.Now()}); err != nil {
			t.Errorf("PutAlert after the upgrade: %v", err)
		}
	})

	t.Run("ReopenIsNoOp", func(t *testing.T) {
		dir := t.TempDir()
		for range 2 {
			s, err := Open(t.Context(), dir, DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			if got := schemaVersions(t, s); !cmp.Equal(got, versions(all)) {
				t.Errorf("schema_migrations = %v, want %v", got, versions(all))
			}
			s.Close()
		}
	})

	t.Run("FutureVersionRefused", func(t *testing.T) {
		dir := newerStore(t)
		s, err := Open(t.Context(), dir, DefaultConfig())
		if err == nil {
			s.Close()
			t.Fatal("Open of a database from a newer evident succeeded")
		}
		if !errors.Is(err, store.ErrSchemaTooNew) {
			t.Errorf("Open = %v, want ErrSchemaTooNew", err)
		}
		if want := fmt.Sprintf("schema version %d, this evident knows up to %d: %s", len(all)+1, len(all), store.TooNewHint); !strings.Contains(err.Error(), want) {
			t.Errorf("Open = %v, want it to say %q", err, want)
		}
	})

	// The alerts stored before their dedupe keys and observations had
	// columns (migration 8) are read with their details, by FiredAlerts
	// as by Alerts.
	t.Run("AlertsStoredBeforeDedupeKey", func(t *testing.T) {
		dir := t.TempDir()
		before := slices.IndexFunc(all, func(m store.Migration) bool { return m.Version == 8 })
		old, err := open(t.Context(), dir, DefaultConfig(), options{migrations: all[:before]})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range storetest.AlertsBeforeDedupeKey {
			if _, err := old.write.ExecContext(t.Context(), `INSERT INTO alerts (tenant, id, kind, severity, service, summary, details, time, received_at)
				VALUES ('default', ?, 'first_execution', 'high', 'shop', 'summary', ?, ?, NULL)`, a.ID, a.Details, a.Time.UnixNano()); err != nil {
				t.Fatal(err)
			}
		}
		if err := old.Close(); err != nil {
			t.Fatal(err)
		}
		s, err := Open(t.Context(), dir, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		storetest.CheckAlertsBeforeDedupeKey(t, s)
	})

	t.Run("FailedMigrationRollsBack", func(t *testing.T) {
		dir := t.TempDir()
		broken := append(append([]store.Migration(nil), all[:1]...), store.Migration{Version: 2, Name: "0002_broken", SQL: `CREATE TABLE x (a); THIS IS NOT SQL;`})
		if s, err := open(t.Context(), dir, DefaultConfig(), options{migrations: broken}); err == nil {
			s.Close()
			t.Fatal("open with a broken migration succeeded")
		} else if !strings.Contains(err.Error(), "apply migration 0002_broken") {
			t.Errorf("open = %v, want it to name the migration", err)
		}
		// Nothing of the failed run stayed: the real migrations apply from
		// scratch, table x was never created.
		s, err := Open(t.Context(), dir, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var n int
		if err := s.read.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'x'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("table x: count %d, %v; want it rolled back", n, err)
		}
	})
}

// newerStore makes a store whose schema a newer evident migrated, one
// version past this one's, and returns its directory.
func newerStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(t.Context(), dir, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.write.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from_the_future', 0)`, len(migrationsOf(t))+1); err != nil {
		t.Fatal(err)
	}
	return dir
}

func schemaVersions(t *testing.T, s *Store) []int {
	t.Helper()
	rows, err := s.read.QueryContext(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func versions(ms []store.Migration) []int {
	vs := make([]int, len(ms))
	for i, m := range ms {
		vs[i] = m.Version
	}
	return vs
}

// crashDirEnv tells a re-executed test binary to be the crashing child of
// TestCrashRestart, appending into the store in that directory.
const crashDirEnv = "EVIDENT_STORE_CRASH_DIR"

// TestCrashRestart kills a process that is appending (SIGKILL: no Close,
// no flush, appends in flight) and checks that the reopened store holds
// every batch whose AppendBatch had returned, and the checkpoint.
func TestCrashRestart(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashRestart$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child prints a line for every append that returned, and for
	// the checkpoint; those are what a client saw acknowledged.
	acked := map[int64]string{}
	var checkpoint int64
	lines := bufio.NewScanner(out)
	for len(acked) < 400 && lines.Scan() {
		var (
			seq     int64
			payload string
		)
		if _, err := fmt.Sscanf(lines.Text(), "checkpoint %d", &seq); err == nil {
			checkpoint = seq
			continue
		}
		if _, err := fmt.Sscanf(lines.Text(), "ack %d %s", &seq, &payload); err != nil {
			t.Fatalf("child said %q: %v", lines.Text(), err)
		}
		acked[seq] = payload
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatalf("child exited cleanly before it was killed: %d acks", len(acked))
	}
	if len(acked) < 400 {
		t.Fatalf("child stopped after %d acks", len(acked))
	}
	if checkpoint == 0 {
		t.Fatal("child made no checkpoint")
	}

	s, err := Open(t.Context(), dir, DefaultConfig())
	if err != nil {
		t.Fatalf("reopen after the crash: %v", err)
	}
	defer s.Close()
	seq, state, err := s.LoadCheckpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The child may have checkpointed again after its last line.
	if seq < checkpoint || string(state) != fmt.Sprintf("model@%d", seq) {
		t.Errorf("LoadCheckpoint = %d, %q; want at least the acknowledged %d with its state", seq, state, checkpoint)
	}
	found := map[int64]string{}
	if err := s.Batches(t.Context(), seq, func(seq int64, kind store.BatchKind, payload []byte) error {
		found[seq] = string(kind) + ":" + crashPayloadName(payload)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	missing := 0
	for ackSeq, name := range acked {
		if ackSeq <= seq {
			continue // in the checkpoint
		}
		if found[ackSeq] != name {
			missing++
			t.Errorf("acknowledged batch %d (%s): found %q", ackSeq, name, found[ackSeq])
		}
	}
	t.Logf("%d acknowledged batches, checkpoint at %d, %d batches in the log after it, %d missing", len(acked), seq, len(found), missing)
}

// crashChild appends from several goroutines until it is killed.
func crashChild(dir string) {
	ctx := context.Background()
	s, err := Open(ctx, dir, DefaultConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var (
		mu sync.Mutex // one line per write
		wg sync.WaitGroup
	)
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, format, args...)
	}
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				name := fmt.Sprintf("w%d-%d", w, i)
				// Up to 64 KiB, so appends span several WAL frames; trace
				// and profile requests, as the engine logs them.
				payload := append([]byte(name+" "), bytes.Repeat([]byte{'x'}, (i*7919)%(64<<10))...)
				kind := crashKinds[w%len(crashKinds)]
				seq, err := s.AppendBatch(ctx, kind, payload)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				say("ack %d %s:%s\n", seq, kind, name)
				// One worker checkpoints, as the engine does, so that
				// checkpoints never go back.
				if w == 0 && i%25 == 24 {
					if err := s.Checkpoint(ctx, seq, fmt.Appendf(nil, "model@%d", seq)); err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(2)
					}
					say("checkpoint %d\n", seq)
				}
			}
		})
	}
	wg.Wait() // never: the parent kills us
}

// crashKinds are the kinds the crashing child's workers append.
var crashKinds = []store.BatchKind{store.BatchTraceRequestS2, store.BatchProfileRequestS2}

func crashPayloadName(payload []byte) string {
	name, _, _ := bytes.Cut(payload, []byte(" "))
	return string(name)
}

func BenchmarkAppendBatch(b *testing.B) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
	for _, mode := range []string{"full", "normal"} {
		for _, par := range []bool{false, true} {
			name := "synchronous=" + mode + "/serial"
			if par {
				name = "synchronous=" + mode + "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				cfg := DefaultConfig()
				cfg.Synchronous = mode
				s, err := Open(b.Context(), b.TempDir(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				b.SetBytes(int64(len(payload)))
				b.ResetTimer()
				start := time.Now()
				stop := storetest.MeasureCPU(b)
				if par {
					// Like many receiver requests at once: 8 appenders
					// per CPU share each commit.
					b.SetParallelism(8)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, err := s.AppendBatch(context.Background(), store.BatchSpans, payload); err != nil {
								b.Error(err)
								return
							}
						}
					})
				} else {
					for b.Loop() {
						if _, err := s.AppendBatch(b.Context(), store.BatchSpans, payload); err != nil {
							b.Fatal(err)
						}
					}
				}
				stop()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "batches/s")
			})
		}
	}
}

func BenchmarkReplay(b *testing.B) {
	const batches = 1000
	payload := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
	cfg := DefaultConfig()
	cfg.Synchronous = "normal" // only the fill is faster; replay reads the same
	s, err := Open(b.Context(), b.TempDir(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for range batches {
		if _, err := s.AppendBatch(b.Context(), store.BatchProfiles, payload); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(batches * int64(len(payload)))
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		n := 0
		if err := s.Batches(b.Context(), 0, func(int64, store.BatchKind, []byte) error {
			n++
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		if n != batches {
			b.Fatalf("replayed %d batches, want %d", n, batches)
		}
	}
	b.ReportMetric(float64(b.N*batches)/time.Since(start).Seconds(), "batches/s")
}

// BenchmarkReadDuringAppends measures why reads have their own pool: a
// query through the one writer connection queues behind the appends and
// their log syncs, one through a reader runs on a WAL snapshot beside
// them.
func BenchmarkReadDuringAppends(b *testing.B) {
	s, err := Open(b.Context(), b.TempDir(), DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := range 100 {
		if err := s.PutAlert(b.Context(), store.Alert{ID: fmt.Sprint(i), Kind: "new_edge", Service: "shop", Time: time.Unix(int64(i), 0)}); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(b.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	payload := bytes.Repeat([]byte("x"), 64<<10)
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := s.AppendBatch(ctx, store.BatchSpans, payload); err != nil && ctx.Err() == nil {
					b.Error(err)
					return
				}
			}
		})
	}
	for _, pool := range []struct {
		name string
		db   *sql.DB
	}{{"readers", s.read}, {"writer", s.write}} {
		b.Run("pool="+pool.name, func(b *testing.B) {
			for b.Loop() {
				var n int
				if err := pool.db.QueryRowContext(b.Context(), `SELECT COUNT(*) FROM alerts WHERE service = ? AND time >= ?`, "shop", 0).Scan(&n); err != nil {
					b.Fatal(err)
				}
				if n != 100 {
					b.Fatalf("%d alerts, want 100", n)
				}
			}
		})
	}
}

// BenchmarkCheckpoint stores an 8 MiB model state and drops the 100
// batches before it, the engine's periodic checkpoint.
func BenchmarkCheckpoint(b *testing.B) {
	s, err := Open(b.Context(), b.TempDir(), DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	state := bytes.Repeat([]byte("model state "), 8<<20/12)
	payload := bytes.Repeat([]byte("x"), 64<<10)
	b.SetBytes(int64(len(state)))
	for b.Loop() {
		b.StopTimer()
		var seq int64
		for range 100 {
			if seq, err = s.AppendBatch(b.Context(), store.BatchSpans, payload); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if err := s.Checkpoint(b.Context(), seq, state); err != nil {
			b.Fatal(err)
		}
	}
}
