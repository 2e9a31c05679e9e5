package sqlite

import (
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/store"
)

// verify walks the audit log of s and returns the chain's first error.
func verify(t *testing.T, s *Store) error {
	t.Helper()
	es, err := s.AuditLog(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var chain store.AuditChain
	for _, e := range es {
		if err := chain.Next(e); err != nil {
			return err
		}
	}
	return nil
}

func newToken(id string) store.Token {
	h := sha256.Sum256([]byte(id))
	return store.Token{ID: id, Name: id, Roles: []string{"admin"}, SecretHash: h[:], Created: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
}

// TestAuditTamper edits the database behind the store's back, as someone
// with the file can, and checks that the chain names the entry.
func TestAuditTamper(t *testing.T) {
	for _, tt := range []struct {
		name    string
		sql     []string
		wantErr string
	}{
		{"EditActor", []string{`UPDATE audit_log SET actor = 'someone else' WHERE seq = 2`},
			"audit entry 2 (token.create t2 by someone else at 2026-12-01T00:00:00Z): content does not match its hash: the entry was edited"},
		{"EditAndRehash", []string{`UPDATE audit_log SET target = 'tX', hash = 'ab' WHERE seq = 2`},
			`audit entry 2 (token.create tX`},
		{"DeleteMiddle", []string{`DELETE FROM audit_log WHERE seq = 2`},
			"audit entry 3: expected entry 2 here: entries are missing or out of order"},
		{"DeleteFirst", []string{`DELETE FROM audit_log WHERE seq = 1`},
			"audit entry 2: expected entry 1 here"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(t.Context(), dir, DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, id := range []string{"t1", "t2", "t3"} {
				if err := s.CreateToken(t.Context(), newToken(id), "cli:root"); err != nil {
					t.Fatal(err)
				}
			}
			if err := verify(t, s); err != nil {
				t.Fatalf("untouched chain: %v", err)
			}
			// The triggers refuse the edit through evident's own connection.
			if _, err := s.write.ExecContext(t.Context(), tt.sql[0]); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s through the store = %v, want the append-only refusal", tt.sql[0], err)
			}
			// Someone with the file drops them first.
			db, err := sql.Open("sqlite", s.path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, q := range append([]string{`DROP TRIGGER audit_log_no_update`, `DROP TRIGGER audit_log_no_delete`}, tt.sql...) {
				if _, err := db.ExecContext(t.Context(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			err = verify(t, s)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("verify after %s = %v, want an error containing %q", tt.name, err, tt.wantErr)
			}
		})
	}
}

// TestOpenShared opens the store beside a locked one, as the token
// commands do beside evident serve.
func TestOpenShared(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(t.Context(), dir, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(t.Context(), dir, DefaultConfig()); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	shared, err := OpenShared(t.Context(), dir, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	if _, err := shared.AppendBatch(t.Context(), store.BatchSpans, []byte("x")); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("AppendBatch on a shared store = %v, want ErrInvalid", err)
	}
	if err := shared.Checkpoint(t.Context(), 0, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Checkpoint on a shared store = %v, want ErrInvalid", err)
	}
	// Both processes append to one chain.
	if err := shared.CreateToken(t.Context(), newToken("t1"), "cli:root"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(t.Context(), "t1", time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), "token:t2 (admin)"); err != nil {
		t.Fatal(err)
	}
	if err := shared.CreateToken(t.Context(), newToken("t2"), "cli:root"); err != nil {
		t.Fatal(err)
	}
	if err := verify(t, s); err != nil {
		t.Errorf("chain written by two stores: %v", err)
	}
	if toks, err := s.Tokens(t.Context()); err != nil || len(toks) != 2 {
		t.Errorf("Tokens through the locked store = %d tokens, %v; want 2", len(toks), err)
	}
}

// TestOpenReader: the store of a read-only command (token list, audit
// verify) is read beside the process that holds it when its schema is
// the current one; an older schema is refused and left as it was, as is
// a newer one, and a missing store is not made.
func TestOpenReader(t *testing.T) {
	all := migrationsOf(t)
	for n := 1; n < len(all); n++ {
		t.Run(all[n-1].Name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := open(t.Context(), dir, DefaultConfig(), options{migrations: all[:n]})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			r, err := OpenReader(t.Context(), dir, DefaultConfig())
			if err == nil {
				r.Close()
				t.Fatal("OpenReader of an older schema succeeded")
			}
			if want := fmt.Sprintf("schema version %d, this evident's is %d", n, len(all)); !errors.Is(err, store.ErrSchemaBehind) || !strings.Contains(err.Error(), want) {
				t.Errorf("OpenReader = %v, want ErrSchemaBehind saying %q", err, want)
			}
			if got := schemaVersions(t, s); len(got) != n {
				t.Errorf("schema versions after OpenReader = %v, want the %d it had", got, n)
			}
		})
	}
	t.Run("current", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(t.Context(), dir, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		tok := store.Token{ID: "a", Name: "collector", Roles: []string{"ingest"}, SecretHash: make([]byte, sha256.Size), Created: time.Unix(1, 0)}
		if err := s.CreateToken(t.Context(), tok, "test"); err != nil {
			t.Fatal(err)
		}
		r, err := OpenReader(t.Context(), dir, DefaultConfig())
		if err != nil {
			t.Fatalf("OpenReader beside the store's holder: %v", err)
		}
		defer r.Close()
		if got, err := r.Tokens(t.Context()); err != nil || len(got) != 1 || got[0].ID != "a" {
			t.Errorf("Tokens through OpenReader = %+v, %v; want the collector token", got, err)
		}
		if err := verify(t, r); err != nil {
			t.Errorf("audit log through OpenReader: %v", err)
		}
	})
	t.Run("too new", func(t *testing.T) {
		if r, err := OpenReader(t.Context(), newerStore(t), DefaultConfig()); !errors.Is(err, store.ErrSchemaTooNew) {
			if err == nil {
				r.Close()
			}
			t.Errorf("OpenReader of a newer schema = %v, want ErrSchemaTooNew", err)
		}
	})
	t.Run("no store", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "store")
		if _, err := OpenReader(t.Context(), dir, DefaultConfig()); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("OpenReader without a store = %v, want ErrNotExist", err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("OpenReader without a store made %s (%v)", dir, err)
		}
	})
}

// TestReadTokens reads the tokens of a store of every earlier schema that
// has them, beside the process that holds it, and leaves its schema as it
// was; a newer schema is refused.
func TestReadTokens(t *testing.T) {
	all := migrationsOf(t)
	// 0004 made the tokens table.
	for n := 4; n <= len(all); n++ {
		t.Run(all[n-1].Name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := open(t.Context(), dir, DefaultConfig(), options{migrations: all[:n]})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// The SQL of that schema: the running code's CreateToken
			// writes the last one.
			if _, err := s.write.ExecContext(t.Context(), `INSERT INTO tokens (id, name, roles, secret_hash, created_at) VALUES ('a', 'collector', 'ingest', X'00', 1)`); err != nil {
				t.Fatal(err)
			}
			got, err := ReadTokens(t.Context(), dir, DefaultConfig())
			if err != nil {
				t.Fatalf("ReadTokens: %v", err)
			}
			if len(got) != 1 || got[0].ID != "a" || got[0].Name != "collector" || !slices.Equal(got[0].Roles, []string{"ingest"}) {
				t.Errorf("ReadTokens = %+v, want the collector token", got)
			}
			if got := schemaVersions(t, s); len(got) != n {
				t.Errorf("schema versions after ReadTokens = %v, want the %d it had", got, n)
			}
		})
	}
	t.Run("too new", func(t *testing.T) {
		if _, err := ReadTokens(t.Context(), newerStore(t), DefaultConfig()); !errors.Is(err, store.ErrSchemaTooNew) {
			t.Errorf("ReadTokens of a newer schema = %v, want ErrSchemaTooNew", err)
		}
	})
	t.Run("no store", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := ReadTokens(t.Context(), dir, DefaultConfig()); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadTokens without a store = %v, want ErrNotExist", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("ReadTokens without a store made %v", entries)
		}
	})
}
