package postgres

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/evidentsec/evident/internal/store/postgres/pgtest"
)

// server is the PostgreSQL server the tests of this package share.
var server pgtest.Server

func TestMain(m *testing.M) {
	code := m.Run()
	if err := server.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop PostgreSQL: %v\n", err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// newDatabase returns a Config of an empty schema of its own on the test
// server; it skips the test when there is no server.
func newDatabase(tb testing.TB) Config {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.DSN = server.DSN(tb)
	return cfg
}
