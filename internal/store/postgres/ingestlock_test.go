package postgres

import (
	"errors"
	"testing"
)

// TestLockIngest: one process at a time ingests into a database; the
// lock is released when its holder closes, and it does not reach into
// another database (schema).
func TestLockIngest(t *testing.T) {
	cfg := newDatabase(t)
	first, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	if err := first.LockIngest(t.Context()); err != nil {
		t.Fatalf("first LockIngest: %v", err)
	}
	if err := first.LockIngest(t.Context()); err != nil {
		t.Fatalf("first LockIngest again: %v", err)
	}
	if err := second.LockIngest(t.Context()); !errors.Is(err, ErrIngestLocked) {
		t.Fatalf("second LockIngest while the first holds it = %v, want ErrIngestLocked", err)
	}
	other, err := Open(t.Context(), newDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	if err := other.LockIngest(t.Context()); err != nil {
		t.Fatalf("LockIngest on another database: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := second.LockIngest(t.Context()); err != nil {
		t.Fatalf("second LockIngest after the first closed: %v", err)
	}
}
