package postgres

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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"
)

// server is the PostgreSQL server the tests of this package share: one
// per test binary, started by TestMain in a temporary directory, reached
// on a unix socket there only (no TCP port to clash), and stopped at the
// end.
var server struct {
	// skip says why there is no server to test with; empty when there
	// is one.
	skip string
	// err is why the server did not start although it is installed: the
	// tests fail with it.
	err error
	// sockDir is the directory of the server's socket.
	sockDir string
	// admin creates the databases of the tests.
	admin *pgxpool.Pool
	// databases numbers the databases made.
	databases atomic.Int64
}

// serverUser is the role the tests connect as.
const serverUser = "evident"

func TestMain(m *testing.M) {
	stop, err := startServer()
	switch {
	case errors.Is(err, errNoServer):
		server.skip = err.Error()
	case err != nil:
		server.err = err
	}
	code := m.Run()
	if stop != nil {
		if err := stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop PostgreSQL: %v\n", err)
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// errNoServer is wrapped by the reasons the tests skip rather than fail:
// no PostgreSQL here.
var errNoServer = errors.New("no PostgreSQL server binaries (initdb, postgres) found in PATH or /usr/lib/postgresql/*/bin: install Debian's postgresql package to run these tests")

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
	return "", errNoServer
}

// startServer initialises a cluster in a temporary directory and starts
// postgres on it. PostgreSQL refuses to run as root, so as root (CI) the
// server runs as the postgres user that Debian's package creates.
func startServer() (stop func() error, err error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("%w: running as root, and there is no postgres user to run the server as: %v", errNoServer, err)
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
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	command := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		return cmd
	}
	data := filepath.Join(dir, "data")
	if out, err := command("initdb", "-D", data, "-U", serverUser, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	// Durable as in production (fsync on): the benchmarks compare with
	// SQLite's synchronous=full.
	srv := command("postgres", "-D", data, "-k", dir, "-c", "listen_addresses=", "-c", "max_connections=200")
	srv.Stdout, srv.Stderr = logFile, logFile
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	stop = func() error {
		if server.admin != nil {
			server.admin.Close()
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
	server.sockDir = dir
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		pool, err := pgxpool.New(ctx, dsn("postgres"))
		if err == nil {
			if err = pool.Ping(ctx); err == nil {
				server.admin = pool
				return stop, nil
			}
			pool.Close()
		}
		select {
		case werr := <-exited:
			exited <- werr
			log, _ := os.ReadFile(logPath)
			_ = stop()
			return nil, fmt.Errorf("postgres exited: %v\n%s", werr, log)
		case <-ctx.Done():
			log, _ := os.ReadFile(logPath)
			_ = stop()
			return nil, fmt.Errorf("postgres did not accept connections within 60s: %v\n%s", err, log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// dsn is the connection string of database name on the test server.
func dsn(name string) string {
	return fmt.Sprintf("host=%s user=%s dbname=%s", server.sockDir, serverUser, name)
}

// newDatabase creates an empty schema and returns a Config whose
// connections work in it alone (search_path), as in a database of their
// own; it skips the test when there is no server. A schema, not a
// database: CREATE DATABASE copies and syncs the template, 1 to 2 s on
// this machine, for each of the suite's behaviours.
func newDatabase(tb testing.TB) Config {
	tb.Helper()
	switch {
	case server.skip != "":
		tb.Skip(server.skip)
	case server.err != nil:
		tb.Fatalf("PostgreSQL test server: %v", server.err)
	}
	name := fmt.Sprintf("evident_test_%d", server.databases.Add(1))
	if _, err := server.admin.Exec(context.Background(), "CREATE SCHEMA "+name); err != nil {
		tb.Fatalf("create schema %s: %v", name, err)
	}
	cfg := DefaultConfig()
	cfg.DSN = dsn("postgres") + " search_path=" + name
	return cfg
}
