package store

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/findings"
)

// This file is what the SQL backends share between a store type and its
// columns: times as Unix nanoseconds, absent times and details as NULL,
// findings as JSON documents. Every backend stores the same columns; each
// keeps only its SQL and its driver.

// Rows is the result set of a query as a backend's driver returns it;
// database/sql's *sql.Rows and pgx's pgx.Rows have these methods. Scan
// targets are plain Go values (*string, *int64, **int64, *[]byte), which
// both drivers fill, with nil for NULL.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// FromUnixNano is the time of a stored Unix nanosecond count, in UTC.
func FromUnixNano(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// fromNullUnixNano is FromUnixNano of a nullable column: the zero time for
// NULL.
func fromNullUnixNano(ns *int64) time.Time {
	if ns == nil {
		return time.Time{}
	}
	return FromUnixNano(*ns)
}

// nullUnixNano is the nullable column of an optional time: nil (NULL) for
// the zero time.
func nullUnixNano(t time.Time) (*int64, error) {
	if t.IsZero() {
		return nil, nil
	}
	ns, err := UnixNano(t)
	if err != nil {
		return nil, err
	}
	return &ns, nil
}

// scanAll calls scan for every row of rows and collects what it returns.
func scanAll[T any](rows Rows, scan func() (T, error)) ([]T, error) {
	var out []T
	for rows.Next() {
		v, err := scan()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// EncodeFindings returns the JSON documents the findings of u are stored
// as, in the order of u.Findings, after validating u.
func EncodeFindings(u FindingsUpdate) ([][]byte, error) {
	if err := u.Validate(); err != nil {
		return nil, fmt.Errorf("put findings: %w", err)
	}
	docs := make([][]byte, len(u.Findings))
	for i, f := range u.Findings {
		var err error
		if docs[i], err = json.Marshal(f); err != nil {
			return nil, fmt.Errorf("put findings: finding %d (%s in %s): %w", i, f.Vulnerability.ID, f.Package.PURL, err)
		}
	}
	return docs, nil
}

// ScanFindings decodes the rows of a query of the findings columns
// service, purl, vuln_id, doc.
func ScanFindings(rows Rows) ([]findings.Finding, error) {
	return scanAll(rows, func() (findings.Finding, error) {
		var (
			service, purl, vulnID string
			doc                   []byte
			f                     findings.Finding
		)
		if err := rows.Scan(&service, &purl, &vulnID, &doc); err != nil {
			return f, err
		}
		if err := json.Unmarshal(doc, &f); err != nil {
			return f, fmt.Errorf("finding %s in %s of service %q: %w", vulnID, purl, service, err)
		}
		return f, nil
	})
}

// VerdictTimes returns the times of changes in Unix nanoseconds, in the
// order given; a zero or out of range time is ErrInvalid.
func VerdictTimes(changes []VerdictChange) ([]int64, error) {
	times := make([]int64, len(changes))
	for i, c := range changes {
		t, err := UnixNano(c.Time)
		if err != nil || c.Time.IsZero() {
			return nil, fmt.Errorf("append verdicts: %w: change %d (%s in %s of service %q): time %v is zero or out of range",
				ErrInvalid, i, c.VulnID, c.PURL, c.Service, c.Time)
		}
		times[i] = t
	}
	return times, nil
}

// ScanVerdictChanges decodes the rows of a query of the verdict_history
// columns time, service, vuln_id, purl, from_verdict, to_verdict, reason,
// vex_from, vex_to.
func ScanVerdictChanges(rows Rows) ([]VerdictChange, error) {
	return scanAll(rows, func() (VerdictChange, error) {
		var (
			c  VerdictChange
			ns int64
		)
		err := rows.Scan(&ns, &c.Service, &c.VulnID, &c.PURL, &c.From, &c.To, &c.Reason, &c.VEXFrom, &c.VEXTo)
		c.Time = FromUnixNano(ns)
		return c, err
	})
}

// AlertColumns are the columns of an alert that are not stored as they
// are: its times in Unix nanoseconds, what is NULL when absent, and its
// text as detect.Text makes it.
type AlertColumns struct {
	Time       int64
	ReceivedAt *int64  // nil: not received through the API
	Details    *string // nil: no details
	Observed   *int64  // nil: unknown

	Kind, Severity, Service, Summary, DedupeKey string
}

// EncodeAlert validates a and returns the columns it is stored with. An
// empty ID, a zero or out of range time and details that are not JSON
// are ErrInvalid.
func EncodeAlert(a Alert) (AlertColumns, error) {
	if a.ID == "" {
		return AlertColumns{}, fmt.Errorf("put alert: %w: empty ID", ErrInvalid)
	}
	if detect.Text(a.ID) != a.ID {
		return AlertColumns{}, fmt.Errorf("put alert %q: %w: ID is not UTF-8 text without NUL", a.ID, ErrInvalid)
	}
	t, err := UnixNano(a.Time)
	if err != nil || a.Time.IsZero() {
		return AlertColumns{}, fmt.Errorf("put alert %s: %w: time %v is zero or out of range", a.ID, ErrInvalid, a.Time)
	}
	received, err := nullUnixNano(a.ReceivedAt)
	if err != nil {
		return AlertColumns{}, fmt.Errorf("put alert %s: %w: received_at: %v", a.ID, ErrInvalid, err)
	}
	observed, err := nullUnixNano(a.Observed)
	if err != nil {
		return AlertColumns{}, fmt.Errorf("put alert %s: %w: observed: %v", a.ID, ErrInvalid, err)
	}
	cols := AlertColumns{
		Time: t, ReceivedAt: received, Observed: observed,
		Kind: detect.Text(a.Kind), Severity: detect.Text(a.Severity), Service: detect.Text(a.Service),
		Summary: detect.Text(a.Summary), DedupeKey: detect.Text(a.DedupeKey),
	}
	if len(a.Details) > 0 {
		if !json.Valid(a.Details) {
			return AlertColumns{}, fmt.Errorf("put alert %s: %w: details are not valid JSON", a.ID, ErrInvalid)
		}
		// JSON allows bytes that are not UTF-8 inside a string, which
		// PostgreSQL's text refuses: replaced as in the other columns,
		// which keeps the JSON valid.
		d := detect.Text(string(a.Details))
		cols.Details = &d
	}
	return cols, nil
}

// AlertQueryTimes returns q.Since and q.After's time in Unix nanoseconds
// (0 where absent); one out of range is ErrInvalid.
func AlertQueryTimes(q AlertQuery) (since, after int64, err error) {
	if !q.Since.IsZero() {
		if since, err = UnixNano(q.Since); err != nil {
			return 0, 0, fmt.Errorf("read alerts: %w: since: %v", ErrInvalid, err)
		}
	}
	if q.After != nil {
		if after, err = UnixNano(q.After.Time); err != nil {
			return 0, 0, fmt.Errorf("read alerts: %w: after: %v", ErrInvalid, err)
		}
	}
	return since, after, nil
}

// FiredAlertsFrom returns the Unix nanoseconds from which FiredAlerts of
// since reads, math.MinInt64 (every alert) for the zero time; a since out
// of range is ErrInvalid.
func FiredAlertsFrom(since time.Time) (int64, error) {
	if since.IsZero() {
		return math.MinInt64, nil
	}
	from, err := UnixNano(since)
	if err != nil {
		return 0, fmt.Errorf("read fired alerts: %w: since: %v", ErrInvalid, err)
	}
	return from, nil
}

// ScanAlerts decodes the rows of a query of the alerts columns id, kind,
// severity, service, summary, details, time, received_at, dedupe_key, observed.
func ScanAlerts(rows Rows) ([]Alert, error) {
	return scanAll(rows, func() (Alert, error) {
		var (
			a    Alert
			cols AlertColumns
		)
		var key *string
		if err := rows.Scan(&a.ID, &a.Kind, &a.Severity, &a.Service, &a.Summary, &cols.Details, &cols.Time, &cols.ReceivedAt, &key, &cols.Observed); err != nil {
			return a, err
		}
		if cols.Details != nil {
			a.Details = json.RawMessage(*cols.Details)
		}
		if key != nil {
			a.DedupeKey = *key
		}
		a.Time = FromUnixNano(cols.Time)
		a.ReceivedAt = fromNullUnixNano(cols.ReceivedAt)
		a.Observed = fromNullUnixNano(cols.Observed)
		return a, nil
	})
}

// ScanFiredAlerts decodes the rows of a query of the alerts columns
// dedupe_key, time, observed, and details where dedupe_key is NULL.
func ScanFiredAlerts(rows Rows) ([]FiredAlert, error) {
	return scanAll(rows, func() (FiredAlert, error) {
		var (
			f            FiredAlert
			key, details *string
			at           int64
			observed     *int64
		)
		if err := rows.Scan(&key, &at, &observed, &details); err != nil {
			return f, err
		}
		if key != nil {
			f.DedupeKey = *key
		}
		if details != nil {
			f.Details = json.RawMessage(*details)
		}
		f.Time = FromUnixNano(at)
		f.Observed = fromNullUnixNano(observed)
		return f, nil
	})
}

// ScanAuditEntries decodes the rows of a query of the audit_log columns
// seq, time, actor, action, target, details, prev_hash, hash.
func ScanAuditEntries(rows Rows) ([]AuditEntry, error) {
	return scanAll(rows, func() (AuditEntry, error) {
		var (
			e       AuditEntry
			ns      int64
			details string
		)
		err := rows.Scan(&e.Seq, &ns, &e.Actor, &e.Action, &e.Target, &details, &e.PrevHash, &e.Hash)
		e.Time, e.Details = FromUnixNano(ns), []byte(details)
		return e, err
	})
}

// TokenTimes validates t and returns its creation and expiry times in Unix
// nanoseconds, expires nil when it does not expire.
func TokenTimes(t Token) (created int64, expires *int64, err error) {
	if err := t.Validate(); err != nil {
		return 0, nil, fmt.Errorf("create token: %w", err)
	}
	if created, err = UnixNano(t.Created); err != nil {
		return 0, nil, fmt.Errorf("create token %s: %w: %w", t.ID, ErrInvalid, err)
	}
	if expires, err = nullUnixNano(t.Expires); err != nil {
		return 0, nil, fmt.Errorf("create token %s: %w: expires: %w", t.ID, ErrInvalid, err)
	}
	return created, expires, nil
}

// RevokeTime returns the time token id is revoked at in Unix nanoseconds;
// a zero or out of range time is ErrInvalid.
func RevokeTime(id string, at time.Time) (int64, error) {
	ns, err := UnixNano(at)
	if err != nil || at.IsZero() {
		return 0, fmt.Errorf("revoke token %s: %w: time %v is zero or out of range", id, ErrInvalid, at)
	}
	return ns, nil
}

// ScanTokens decodes the rows of a query of the tokens columns id, name,
// roles, tenant, secret_hash, created_at, expires_at, revoked_at. roles
// is the scan target of the roles column for the []string given, for a
// driver that does not scan a column into a []string; nil scans into the
// []string itself.
func ScanTokens(rows Rows, roles func(*[]string) any) ([]Token, error) {
	return scanAll(rows, func() (Token, error) {
		var (
			t                Token
			created          int64
			expires, revoked *int64
			rolesDest        any = &t.Roles
		)
		if roles != nil {
			rolesDest = roles(&t.Roles)
		}
		err := rows.Scan(&t.ID, &t.Name, rolesDest, &t.Tenant, &t.SecretHash, &created, &expires, &revoked)
		t.Created, t.Expires, t.Revoked = FromUnixNano(created), fromNullUnixNano(expires), fromNullUnixNano(revoked)
		return t, err
	})
}

// WatermarkTime validates the watermark of source name at t and returns
// t in Unix nanoseconds: an empty name, a zero or an out of range time is
// ErrInvalid.
func WatermarkTime(name string, t time.Time) (int64, error) {
	ns, err := UnixNano(t)
	if err != nil || t.IsZero() || name == "" {
		return 0, fmt.Errorf("set watermark of %q: %w: name empty or time %v zero or out of range", name, ErrInvalid, t)
	}
	return ns, nil
}

// WatermarkBackError is the ErrInvalid of a watermark of source name
// that would move back to t; a backend returns it when its conditional
// write changed no row.
func WatermarkBackError(name string, t time.Time) error {
	return fmt.Errorf("set watermark of %s: %w: %s is before the recorded watermark", name, ErrInvalid, t.UTC().Format(time.RFC3339Nano))
}

// ScanBatches calls fn for every row of a query of the batches columns
// seq, kind, payload, in order, and returns fn's first error as it is.
// B is the driver's type that scans the payload without copying it
// (sql.RawBytes, pgtype.DriverBytes), as fn must not keep it. Errors of
// the rows name the database where.
func ScanBatches[B ~[]byte](rows Rows, where string, fn func(seq int64, kind BatchKind, payload []byte) error) error {
	var (
		seq     int64
		kind    string
		payload B
	)
	for rows.Next() {
		if err := rows.Scan(&seq, &kind, &payload); err != nil {
			return fmt.Errorf("read batches from %s: %w", where, err)
		}
		if err := fn(seq, BatchKind(kind), payload); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read batches from %s: %w", where, err)
	}
	return nil
}

// RetentionCutoff is what Retain deletes from one table: the rows whose
// time column is before Before, in Unix nanoseconds.
type RetentionCutoff struct {
	Table  string
	Before int64
}

// Cutoffs validates r and returns what Retain deletes at now: a cutoff
// for verdict_history and alerts each unless kept forever. A cutoff
// before 1678 is left out: nothing stored is that old.
func (r Retention) Cutoffs(now time.Time) ([]RetentionCutoff, error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("retain: %w", err)
	}
	var out []RetentionCutoff
	for _, c := range []struct {
		table string
		keep  time.Duration
	}{{"verdict_history", r.VerdictHistory}, {"alerts", r.Alerts}} {
		if c.keep == 0 {
			continue
		}
		before, err := UnixNano(now.Add(-c.keep))
		if err != nil {
			continue
		}
		out = append(out, RetentionCutoff{Table: c.table, Before: before})
	}
	return out, nil
}
