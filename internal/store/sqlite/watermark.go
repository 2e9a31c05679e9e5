package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/evidentsec/evident/internal/store"
)

// SourceWatermark returns the end of the last window read from the named
// source, the zero time when none was recorded.
func (s *Store) SourceWatermark(ctx context.Context, name string) (time.Time, error) {
	if err := s.calls.Enter(); err != nil {
		return time.Time{}, fmt.Errorf("read watermark of %s: %w", name, err)
	}
	defer s.calls.Leave()
	var ns int64
	err := s.read.QueryRowContext(ctx, `SELECT time FROM source_watermarks WHERE name = ?`, name).Scan(&ns)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read watermark of %s from %s: %w", name, s.path, err)
	}
	return store.FromUnixNano(ns), nil
}

// SetSourceWatermark records that the named source has been read up to
// t. A watermark never moves back: a t before the recorded one, or the
// zero time, is store.ErrInvalid.
func (s *Store) SetSourceWatermark(ctx context.Context, name string, t time.Time) error {
	ns, err := store.WatermarkTime(name, t)
	if err != nil {
		return err
	}
	if err := s.calls.Enter(); err != nil {
		return fmt.Errorf("set watermark of %s: %w", name, err)
	}
	defer s.calls.Leave()
	res, err := s.write.ExecContext(ctx, `INSERT INTO source_watermarks (name, time) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET time = excluded.time WHERE excluded.time >= source_watermarks.time`, name, ns)
	if err != nil {
		return fmt.Errorf("set watermark of %s in %s: %w", name, s.path, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return store.WatermarkBackError(name, t)
	}
	return nil
}

// SourceProgress returns what was recorded of the named source's window
// left unfinished, nil when nothing was.
func (s *Store) SourceProgress(ctx context.Context, name string) ([]byte, error) {
	if err := s.calls.Enter(); err != nil {
		return nil, fmt.Errorf("read progress of %s: %w", name, err)
	}
	defer s.calls.Leave()
	var p []byte
	err := s.read.QueryRowContext(ctx, `SELECT progress FROM source_progress WHERE name = ?`, name).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read progress of %s from %s: %w", name, s.path, err)
	}
	return p, nil
}

// SetSourceProgress records the named source's window left unfinished;
// nil deletes the record.
func (s *Store) SetSourceProgress(ctx context.Context, name string, progress []byte) error {
	if err := s.calls.Enter(); err != nil {
		return fmt.Errorf("set progress of %s: %w", name, err)
	}
	defer s.calls.Leave()
	var err error
	if progress == nil {
		_, err = s.write.ExecContext(ctx, `DELETE FROM source_progress WHERE name = ?`, name)
	} else {
		_, err = s.write.ExecContext(ctx, `INSERT INTO source_progress (name, progress) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET progress = excluded.progress`, name, progress)
	}
	if err != nil {
		return fmt.Errorf("set progress of %s in %s: %w", name, s.path, err)
	}
	return nil
}
