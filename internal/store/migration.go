package store

import (
	"fmt"
	"io/fs"
	"math"
	"path"
	"strconv"
	"strings"
	"time"
)

// Migration is one numbered schema change of a SQL backend. A backend
// embeds its migrations as files named NNNN_what.sql, numbered from 0001
// without gaps; a released migration is never edited: a change to the
// schema is a new file.
type Migration struct {
	// Version is the number of the file, from 1.
	Version int
	// Name is the file name without ".sql", as schema_migrations records it.
	Name string
	// SQL is the file's content.
	SQL string
}

// LoadMigrations reads the migrations/*.sql files of fsys in version
// order and checks that they are numbered 1..n.
func LoadMigrations(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	ms := make([]Migration, 0, len(names))
	for _, name := range names { // fs.Glob returns them sorted
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name is not NNNN_what.sql", base)
		}
		if v != len(ms)+1 {
			return nil, fmt.Errorf("migration %s: version %d, want %d (no gaps, no duplicates)", base, v, len(ms)+1)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", base, err)
		}
		ms = append(ms, Migration{Version: v, Name: strings.TrimSuffix(base, ".sql"), SQL: string(b)})
	}
	return ms, nil
}

// TooNew is the error of a database at schema version current when the
// running evident knows migrations up to known: ErrSchemaTooNew when
// current is the higher, nil otherwise.
func TooNew(current, known int) error {
	if current > known {
		return fmt.Errorf("%w: schema version %d, this evident knows up to %d: %s", ErrSchemaTooNew, current, known, TooNewHint)
	}
	return nil
}

// UnixNano is t in nanoseconds since 1970, which an int64 holds for the
// years 1678 to 2262: how the SQL backends store times, exactly to the
// nanosecond.
func UnixNano(t time.Time) (int64, error) {
	const minSec, maxSec int64 = math.MinInt64/1_000_000_000 + 1, math.MaxInt64/1_000_000_000 - 1
	if s := t.Unix(); s < minSec || s > maxSec {
		return 0, fmt.Errorf("time %v is outside the years 1678 to 2262", t)
	}
	return t.UnixNano(), nil
}

// CheckSchema is the error of a read-only open of a database at schema
// version current when the running evident knows migrations up to known:
// TooNew's when current is the higher, ErrSchemaBehind when it is the
// lower (0: no evident made the database), nil when they are equal.
func CheckSchema(current, known int) error {
	if err := TooNew(current, known); err != nil {
		return err
	}
	switch {
	case current == 0:
		return fmt.Errorf("%w: no evident schema in it (evident serve or evident token create makes one)", ErrSchemaBehind)
	case current < known:
		return fmt.Errorf("%w: schema version %d, this evident's is %d (an older evident migrated it last): read it with that evident, or once this evident's serve has started on it (serve migrates the schema; this command does not)", ErrSchemaBehind, current, known)
	}
	return nil
}

// ApplyMigrations brings a database at schema version current up to the
// last of ms, inside the backend's migration transaction: ErrSchemaTooNew
// (TooNew) when current is past them, else every migration after current
// in order, each run by exec and recorded by exec of record, the
// backend's INSERT INTO schema_migrations (version, name, applied_at).
func ApplyMigrations(ms []Migration, current int, record string, exec func(query string, args ...any) error) error {
	if err := TooNew(current, len(ms)); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	for _, m := range ms[current:] {
		if err := exec(m.SQL); err != nil {
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
		if err := exec(record, m.Version, m.Name, now); err != nil {
			return fmt.Errorf("record migration %s: %w", m.Name, err)
		}
	}
	return nil
}
