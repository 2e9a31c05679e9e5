// Package pgtest runs a real PostgreSQL server for the tests of the
// packages that use the PostgreSQL store: one per test binary, started on
// first use in a temporary directory, reached on a unix socket there only
// (no TCP port to clash), and stopped by the test binary's TestMain.
//
// It finds Debian's server binaries (package postgresql) in PATH or
// /usr/lib/postgresql/<version>/bin; where there are none, the tests that
// need the server skip with a message saying so.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// User is the role the tests connect as.
const User = "evident"

// ErrNoServer is wrapped by the reasons the tests skip rather than fail:
// no PostgreSQL here.
var ErrNoServer = errors.New("no PostgreSQL server binaries (initdb, postgres) found in PATH or /usr/lib/postgresql/*/bin: install Debian's postgresql package to run these tests")

// Server is a PostgreSQL server started on first use. Its zero value is
// ready; a test binary keeps one in a package variable and calls Stop
// from TestMain after m.Run.
type Server struct {
	once sync.Once
	// skip says why there is no server to test with; empty when there
	// is one.
	skip string
	// err is why the server did not start although it is installed: the
	// tests fail with it.
	err error
	// sockDir is the directory of the server's socket.
	sockDir string
	// admin creates the schemas of the tests.
	admin *pgxpool.Pool
	stop  func() error
	// schemas numbers the schemas made.
	schemas atomic.Int64
}

// DSN creates an empty schema on the server, starting it if needed, and
// returns a DSN whose connections work in that schema alone
// (search_path), as in a database of their own. It skips tb when there
// is no server and fails it when the server did not start. A schema, not
// a database: CREATE DATABASE copies and syncs the template, 1 to 2 s on
// a small machine, for each test.
func (s *Server) DSN(tb testing.TB) string {
	tb.Helper()
	s.once.Do(s.start)
	switch {
	case s.skip != "":
		tb.Skip(s.skip)
	case s.err != nil:
		tb.Fatalf("PostgreSQL test server: %v", s.err)
	}
	name := fmt.Sprintf("evident_test_%d", s.schemas.Add(1))
	if _, err := s.admin.Exec(context.Background(), "CREATE SCHEMA "+name); err != nil {
		tb.Fatalf("create schema %s: %v", name, err)
	}
	return s.dsn("postgres") + " search_path=" + name
}

// Stop stops the server if it was started and removes its directory.
func (s *Server) Stop() error {
	s.once.Do(func() { s.skip = "the test server is stopped" })
	if s.stop == nil {
		return nil
	}
	stop := s.stop
	s.stop = nil
	return stop()
}

// dsn is the connection string of database name on the server.
func (s *Server) dsn(name string) string {
	return fmt.Sprintf("host=%s user=%s dbname=%s", s.sockDir, User, name)
}

func (s *Server) start() {
	err := s.startServer()
	switch {
	case errors.Is(err, ErrNoServer):
		s.skip = err.Error()
	case err != nil:
		s.err = err
	}
}

// binDir finds the directory of initdb and postgres: the PATH's, else the
// newest of Debian's /usr/lib/postgresql/<version>/bin.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return va - vb
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "postgres")); err == nil {
			return dirs[i], nil
		}
	}
	return "", ErrNoServer
}

// startServer initialises a cluster in a temporary directory and starts
// postgres on it. PostgreSQL refuses to run as root, so as root (CI) the
// server runs as the postgres user that Debian's package creates.
func (s *Server) startServer() (err error) {
	bin, err := binDir()
	if err != nil {
		return err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("%w: running as root, and there is no postgres user to run the server as: %v", ErrNoServer, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	base := "" // $TMPDIR
	if cred != nil {
		// The postgres user must reach the directory: root's $TMPDIR may
		// be private to root.
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "evident-pg-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
	}
	command := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		return cmd
	}
	data := filepath.Join(dir, "data")
	if out, err := command("initdb", "-D", data, "-U", User, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	// Durable as in production (fsync on): the benchmarks compare with
	// SQLite's synchronous=full.
	srv := command("postgres", "-D", data, "-k", dir, "-c", "listen_addresses=", "-c", "max_connections=200")
	srv.Stdout, srv.Stderr = logFile, logFile
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	stop := func() error {
		if s.admin != nil {
			s.admin.Close()
		}
		_ = srv.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = srv.Process.Kill()
			<-exited
		}
		return os.RemoveAll(dir)
	}
	s.sockDir = dir
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		pool, err := pgxpool.New(ctx, s.dsn("postgres"))
		if err == nil {
			if err = pool.Ping(ctx); err == nil {
				s.admin, s.stop = pool, stop
				return nil
			}
			pool.Close()
		}
		select {
		case werr := <-exited:
			exited <- werr
			log, _ := os.ReadFile(logPath)
			_ = stop()
			return fmt.Errorf("postgres exited: %v\n%s", werr, log)
		case <-ctx.Done():
			log, _ := os.ReadFile(logPath)
			_ = stop()
			return fmt.Errorf("postgres did not accept connections within 60s: %v\n%s", err, log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
