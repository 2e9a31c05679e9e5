package postgres

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		cfg := newDatabase(t)
		return func(ctx context.Context) (store.Store, error) {
			return Open(ctx, cfg)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name    string
		modify  func(c *Config)
		wantErr string
	}{
		{"URL", func(*Config) {}, ""},
		{"KeywordValue", func(c *Config) { c.DSN = "host=/run/postgresql dbname=evident user=evident" }, ""},
		{"NoDSN", func(c *Config) { c.DSN = "" }, "dsn is empty"},
		{"BadDSN", func(c *Config) { c.DSN = "postgres://evident:s3cret@db:notaport/evident" }, "dsn: cannot parse"},
		{"OneConn", func(c *Config) { c.MaxConns = 1 }, "max_conns 1 is under 2 (the committer holds one)"},
		{"NoConnectTimeout", func(c *Config) { c.ConnectTimeout = 0 }, "connect_timeout 0s is under 1ms"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.DSN = "postgres://evident:s3cret@db.example:5432/evident?sslmode=verify-full"
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
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("Validate() = %v: the error shows the password", err)
			}
		})
	}
}

// TestPasswordNeverShown checks that neither a log line of the Config
// nor the error of a failed Open shows the DSN's password.
func TestPasswordNeverShown(t *testing.T) {
	c := DefaultConfig()
	c.DSN = "postgres://evident:s3cret@127.0.0.1:1/evident?connect_timeout=1"
	c.ConnectTimeout = 200 * time.Millisecond
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("store", "postgres", c)
	if got, want := buf.String(), "postgres.dsn=postgres://evident@127.0.0.1:1/evident"; !strings.Contains(got, want) || strings.Contains(got, "s3cret") {
		t.Errorf("log line %q, want it to contain %q and not the password", got, want)
	}
	s, err := Open(t.Context(), c)
	if err == nil {
		s.Close()
		t.Fatal("Open of a closed port succeeded")
	}
	if !strings.Contains(err.Error(), "postgres://evident@127.0.0.1:1/evident") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open = %v, want it to name the database without the password", err)
	}
}

// BenchmarkStore is the store's main operations on the test server, the
// same code as the SQLite store's BenchmarkStore.
func BenchmarkStore(b *testing.B) {
	storetest.Benchmark(b, func(b *testing.B) storetest.Opener {
		cfg := newDatabase(b)
		return func(ctx context.Context) (store.Store, error) {
			return Open(ctx, cfg)
		}
	})
}

// TestDurableCommits: the store's connections commit durably whatever the
// DSN, role or server say: synchronous_commit off becomes on, and the
// settings that flush the commit too are kept.
func TestDurableCommits(t *testing.T) {
	for _, tt := range []struct{ set, want string }{
		{"off", "on"},
		{"local", "local"},
		{"remote_apply", "remote_apply"},
	} {
		t.Run(tt.set, func(t *testing.T) {
			cfg := newDatabase(t)
			cfg.DSN += " synchronous_commit=" + tt.set
			s, err := Open(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var got string
			if err := s.pool.QueryRow(t.Context(), `SHOW synchronous_commit`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("synchronous_commit %s on a connection of the store, want %s", got, tt.want)
			}
		})
	}
}
