// Package store is the persistent state of evident serve: a write-ahead
// log of accepted telemetry with checkpoints of the runtime model, the
// imported findings, the history of verdict changes and the alerts.
//
// Store is the contract every backend implements (SQLite in store/sqlite
// for one process, PostgreSQL for scale-out); store/storetest is the
// conformance suite each of them must pass, so the engine can rely on the
// behaviour written here and on nothing else.
//
// # Durability
//
// Telemetry is made durable by logging it, not by storing the model on
// every change. The engine appends each accepted batch with AppendBatch
// before it acknowledges the request to the client, applies the batch to
// its in-memory model, and from time to time writes a Checkpoint of the
// model as of a sequence number, which also drops the log up to it. On
// start it loads the checkpoint and replays the batches after it. A batch
// whose AppendBatch returned nil survives a crash of the process; one
// whose AppendBatch did not return may or may not be there, and the client
// that was not acknowledged retries, so the log is at least once.
//
// # Tenants
//
// The telemetry log, the checkpoints, the findings, the verdict history
// and the alerts belong to a tenant. A Store works in DefaultTenant;
// Tenant returns a Store over the same database that works in another,
// and none of its methods reads or changes another tenant's rows. Tokens
// and the audit log are the deployment's, shared by every tenant.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/findings"
)

// Errors of every backend; callers test them with errors.Is. A backend
// wraps them with what it was doing.
var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("store closed")
	// ErrInvalid is returned for an argument the contract does not allow
	// (an unknown batch kind, an empty payload, a checkpoint sequence
	// outside the log, two findings with the same key, an alert without
	// an ID); nothing was written.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotFound is returned for a token that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrSchemaTooNew is returned by Open when the database was migrated
	// by a newer evident than the running one; the running binary refuses
	// to touch data it does not understand.
	ErrSchemaTooNew = errors.New("database schema is newer than this evident")
	// ErrSchemaBehind is returned by the read-only opens (sqlite and
	// postgres OpenReader) when the database was last migrated by an
	// older evident: they read a schema as it is and never migrate it,
	// so that a newer evident's token list or audit verify does not
	// change the store of the older evident serving it.
	ErrSchemaBehind = errors.New("database schema is older than this evident")
)

// TooNewHint says what to do about ErrSchemaTooNew, after the message
// that names what is too new: going back to an older evident is a
// restore of the store, never the older binary on the newer data.
const TooNewHint = "start the newer evident again, or restore the copy of the store made before the upgrade (docs/deploy.md)"

// DefaultTenant is the tenant of a deployment that does not use tenants,
// and of every row written before tenants existed.
const DefaultTenant = "default"

// tenantRE is what a tenant ID may be: the characters and length Grafana
// Tempo, Loki, Mimir and Pyroscope (Cortex's rules) accept in
// X-Scope-OrgID, without the multi-tenant query separator '|'.
var tenantRE = regexp.MustCompile(`^[A-Za-z0-9_.!*'()-]{1,150}$`)

// ValidateTenant reports a tenant ID that is not 1 to 150 of the
// characters A-Z a-z 0-9 and _ . ! * ' ( ) -, or is "." or "..".
func ValidateTenant(id string) error {
	if !tenantRE.MatchString(id) || id == "." || id == ".." {
		return fmt.Errorf("%w: tenant %q: want 1 to 150 of A-Z a-z 0-9 _ . ! * ' ( ) -, and not \".\" or \"..\"", ErrInvalid, id)
	}
	return nil
}

// Store is the persistent state of evident serve.
//
// Concurrency: every method is safe for concurrent use by multiple
// goroutines. Writes are serialised by the backend; reads see every write
// that returned before they started.
//
// Ownership: the store copies what it is given before the call returns,
// so callers may reuse their slices, except the payload of SubmitBatch
// (see there); what it returns belongs to the caller, except the payload
// handed to the Batches callback (see there).
//
// Errors: ErrClosed after Close, ErrInvalid for arguments outside the
// contract, the context's error when ctx ends first; anything else is a
// failure of the backend (I/O, disk full, a corrupt database), and the
// write it interrupted did not happen.
type Store interface {
	// AppendBatch durably logs one accepted telemetry batch and returns
	// its sequence number. When it returns nil the batch survives a crash
	// of the process (and, with the default settings, of the machine).
	// Sequence numbers are positive and strictly increasing in the order
	// the appends committed, and never reused, not even after a
	// Checkpoint dropped every batch. payload is opaque to the store and
	// must not be empty.
	AppendBatch(ctx context.Context, kind BatchKind, payload []byte) (seq int64, err error)

	// SubmitBatch is AppendBatch in two steps: it hands the batch over and
	// returns at once; wait, which must be called exactly once, returns
	// what AppendBatch would, when the commit that holds the batch is
	// durable. Batches are numbered in the order SubmitBatch was called,
	// so a caller that serialises its calls knows the order of the
	// sequence numbers before they are known, while concurrent batches
	// still share a commit. The store reads payload until wait returns,
	// without a copy (a request's log record is tens of kilobytes): the
	// caller must not change it before then.
	SubmitBatch(ctx context.Context, kind BatchKind, payload []byte) (wait func() (seq int64, err error))

	// Batches calls fn for every logged batch with a sequence number
	// greater than after, in increasing order, and stops at the first
	// error fn returns, which Batches returns unwrapped. payload is valid
	// only until fn returns (a backend may reuse the buffer); fn must copy
	// what it keeps, and must not call other methods of the store, whose
	// connections Batches may hold.
	Batches(ctx context.Context, after int64, fn func(seq int64, kind BatchKind, payload []byte) error) error

	// Checkpoint stores state, the encoded runtime model after applying
	// every batch up to and including seq, and drops those batches from
	// the log, in one transaction. seq must not be lower than the seq of
	// the stored checkpoint nor higher than the last sequence number
	// AppendBatch returned (ErrInvalid).
	Checkpoint(ctx context.Context, seq int64, state []byte) error

	// LoadCheckpoint returns the last checkpoint; seq 0 and a nil state
	// when there is none.
	LoadCheckpoint(ctx context.Context) (seq int64, state []byte, err error)

	// PutFindings replaces the imported findings of the update's scope
	// (all of them, or those of its services) with its findings, and
	// records the change in the audit log in the same transaction (action
	// "findings.replace", details a FindingsChange). A finding is keyed by
	// service, package URL and vulnerability ID; an update that fails
	// FindingsUpdate.Validate is ErrInvalid.
	PutFindings(ctx context.Context, u FindingsUpdate) error

	// Findings returns the stored findings ordered by service, package URL
	// and vulnerability ID.
	Findings(ctx context.Context) ([]findings.Finding, error)

	// AppendVerdicts records verdict changes, in the order given. A
	// change of the VEX status (VEXFrom != VEXTo) is also recorded in the
	// audit log (action "vex.change", actor ActorEngine), in the same
	// transaction: the VEX statements evident publishes are claims, and
	// their history must be as tamper-evident as an admin's changes.
	AppendVerdicts(ctx context.Context, changes []VerdictChange) error

	// VerdictHistory returns the recorded changes of vulnID in service
	// (for every package), newest first (by Time, then by the order they
	// were appended), at most limit of them; limit <= 0 means all.
	VerdictHistory(ctx context.Context, service, vulnID string, limit int) ([]VerdictChange, error)

	// PutAlert stores an alert unless one with the same ID is stored: an
	// alert fired again (the same detection of the same telemetry,
	// applied again after a restart) keeps the first. Its text (kind,
	// severity, service, summary, dedupe key) is stored as detect.Text
	// makes it; an ID that is not such text is ErrInvalid.
	PutAlert(ctx context.Context, a Alert) error

	// Alerts returns the alerts that match q, newest first (by Time, then
	// by ID).
	Alerts(ctx context.Context, q AlertQuery) ([]Alert, error)

	// FiredAlerts returns what seeds an alert router's deduplication of
	// the alerts whose Time is not before since, newest first (as
	// Alerts), at most limit of them; limit <= 0 means all. It reads
	// none of the rest of an alert, which Alerts decodes: a router reads
	// up to 100 000 alerts a tenant as partitions are assigned, while the
	// records of those partitions wait. An alert without a DedupeKey is
	// left out, unless it was stored before the store kept DedupeKey
	// (by an older evident): then it comes with its Details, for the
	// caller who wrote them to read.
	FiredAlerts(ctx context.Context, since time.Time, limit int) ([]FiredAlert, error)

	// CreateToken stores a new API token and records it in the audit log
	// ("token.create" by actor) in the same transaction. A token whose ID
	// is taken, or that fails Token.Validate, is ErrInvalid.
	CreateToken(ctx context.Context, t Token, actor string) error

	// RevokeToken marks the token revoked as of at and records it in the
	// audit log ("token.revoke" by actor) in the same transaction. An
	// unknown ID is ErrNotFound; revoking a revoked token changes and
	// records nothing.
	RevokeToken(ctx context.Context, id string, at time.Time, actor string) error

	// Tokens returns every stored token, revoked ones too, ordered by
	// creation time, then ID.
	Tokens(ctx context.Context) ([]Token, error)

	// AuditLog returns the entries of the audit log with a sequence
	// number greater than after, in increasing order, at most limit of
	// them; limit <= 0 means all. The log is append-only: no method
	// changes or deletes an entry, and Retain keeps them all.
	AuditLog(ctx context.Context, after int64, limit int) ([]AuditEntry, error)

	// Tenant returns the store of tenant id over the same database: the
	// telemetry log, checkpoint, findings, verdict history and alerts its
	// methods read and write are that tenant's alone (the log's sequence
	// numbers are shared, so they still never repeat); tokens, the audit
	// log and Retain are the deployment's. Closing either closes both. An
	// id that fails ValidateTenant is ErrInvalid.
	Tenant(id string) (Store, error)

	// Empty reports whether the store holds nothing of its tenant: no
	// logged batch, checkpoint, finding, verdict change or alert, nor any
	// other row a backend keeps for the tenant (PostgreSQL's shards). It
	// asks only whether such a row exists, on indexes led by the tenant,
	// so it is cheap enough to answer before every read of a tenant that
	// has no state in memory. Tokens and the audit log are the
	// deployment's and do not count.
	Empty(ctx context.Context) (bool, error)

	// Retain deletes verdict changes and alerts, of every tenant, older
	// than the retention of cfg before now and returns how many records it deleted.
	Retain(ctx context.Context, now time.Time, cfg Retention) (deleted int64, err error)

	// Close releases the store. It waits for calls in progress, is safe
	// to call more than once (later calls return nil), and needs no prior
	// flush: everything that was acknowledged is already durable.
	Close() error
}

// BatchKind says what a logged batch holds, so replay can decode it.
type BatchKind string

// Kinds of telemetry batches. The kind is also the version of the
// batch's encoding, which the engine owns: a log written by an older
// version replays as long as its kind is known.
const (
	// BatchSpans is a batch of trace spans, encoded by the engine with
	// encoding/gob: what it logged before BatchTraceRequest, and still
	// for spans that cannot go as one.
	BatchSpans BatchKind = "spans"
	// BatchTraceRequest is a batch of trace spans as an OTLP
	// ExportTraceServiceRequest in protobuf, decoded on replay by the
	// receivers' decoder.
	BatchTraceRequest BatchKind = "otlp_traces"
	// BatchTraceRequestS2 is a BatchTraceRequest compressed with S2
	// (github.com/klauspost/compress/s2, block format).
	BatchTraceRequestS2 BatchKind = "otlp_traces_s2"
	// BatchProfiles is a batch of profiles, decoded, encoded by the
	// engine with encoding/gob: what it logged before
	// BatchProfileRequestS2, and still for profiles that come without
	// their request or whose request redaction would change.
	BatchProfiles BatchKind = "profiles"
	// BatchProfileRequestS2 is a batch of profiles as they were received
	// (telemetry.AppendProfileRequest: pprof, JFR, folded stacks or an OTLP
	// profiles request, with what the receiver's decoder took from the
	// request), compressed with S2, decoded on replay by the receivers'
	// decoder.
	BatchProfileRequestS2 BatchKind = "profile_request_s2"
	// BatchReceivedAt is a batch of another kind with the time evident
	// received it, so that what its replay after a restart raises again
	// says when the telemetry came, not when it was replayed. The payload
	// is the other kind's, then a trailer: the receipt time (Unix
	// nanoseconds, int64 little endian), the other kind and its length
	// (one byte). A trailer, so that the payload the engine compressed
	// into its buffer is not copied.
	BatchReceivedAt BatchKind = "received_at"
)

// Validate reports whether k is one of the known kinds.
func (k BatchKind) Validate() error {
	switch k {
	case BatchSpans, BatchTraceRequest, BatchTraceRequestS2, BatchProfiles, BatchProfileRequestS2, BatchReceivedAt:
		return nil
	}
	return fmt.Errorf("%w: batch kind %q is not %q, %q, %q, %q, %q or %q", ErrInvalid, string(k), BatchTraceRequest, BatchTraceRequestS2, BatchSpans, BatchProfiles, BatchProfileRequestS2, BatchReceivedAt)
}

// VerdictChange is one change of the runtime verdict, or of the VEX
// status, of a finding in a service.
type VerdictChange struct {
	// Time is when the engine decided the new verdict.
	Time time.Time `json:"time"`
	// Service, VulnID and PURL identify the finding.
	Service string `json:"service"`
	VulnID  string `json:"vuln_id"`
	PURL    string `json:"purl"`
	// From is the verdict before the change, To the one after it.
	From assess.Verdict `json:"from"`
	To   assess.Verdict `json:"to"`
	// Reason says what evidence made the change.
	Reason string `json:"reason,omitempty"`
	// VEXFrom and VEXTo are the VEX statuses before and after (OpenVEX:
	// affected, not_affected, under_investigation); equal when only the
	// verdict changed. The status can change without the verdict, when
	// the evidence for not_affected grows enough.
	VEXFrom string `json:"vex_from,omitempty"`
	VEXTo   string `json:"vex_to,omitempty"`
}

// Alert is a fired detection as the store keeps it.
type Alert struct {
	// ID identifies the alert: the detection's deduplication key and the
	// time it fired, so a re-sent alert replaces itself.
	ID string `json:"id"`
	// Kind is the detection that fired (first execution, new edge,
	// exploit payload, anomaly ...).
	Kind string `json:"kind"`
	// Severity is the alert's severity level.
	Severity string `json:"severity"`
	// Service is the service the alert is about; empty when it is about
	// none in particular.
	Service string `json:"service,omitempty"`
	// Summary is one line for humans.
	Summary string `json:"summary"`
	// Details is the detection's evidence as a JSON value; nil when there
	// is none.
	Details json.RawMessage `json:"details,omitempty"`
	// Time is when the alert fired.
	Time time.Time `json:"time"`
	// ReceivedAt is when evident received the telemetry that triggered
	// the alert, so that Time - ReceivedAt is the detection latency.
	ReceivedAt time.Time `json:"received_at"`
	// DedupeKey is the key the detection deduplicates by, empty for
	// none; Observed is when the telemetry it fired for was observed,
	// zero when unknown. They have columns of their own for FiredAlerts;
	// the API shows an alert's in its Details.
	DedupeKey string    `json:"-"`
	Observed  time.Time `json:"-"`
}

// FiredAlert is what FiredAlerts reads of an alert.
type FiredAlert struct {
	DedupeKey string
	Time      time.Time
	Observed  time.Time // zero when unknown
	// Details are set, and DedupeKey and Observed empty, for an alert
	// stored before the store kept them.
	Details json.RawMessage
}

// AlertQuery selects alerts; zero fields select everything.
type AlertQuery struct {
	// Since keeps alerts whose Time is not before it.
	Since time.Time
	// ID, Service and Kind keep alerts with exactly that ID, service or
	// kind.
	ID      string
	Service string
	Kind    string
	// After, when set, keeps the alerts that come after it in the
	// newest-first order: older than its Time, or as old with a smaller
	// ID. It is the last alert of the page before, so pages hold their
	// place however many alerts fire in between.
	After *AlertKey
	// Limit is the most alerts to return; <= 0 means no limit.
	Limit int
}

// AlertKey is an alert's place in the newest-first order.
type AlertKey struct {
	Time time.Time
	ID   string
}

// Retention says how long records are kept; zero keeps them forever.
type Retention struct {
	// VerdictHistory is how long verdict changes are kept, by their Time.
	VerdictHistory time.Duration `yaml:"verdict_history"`
	// Alerts is how long alerts are kept, by their Time.
	Alerts time.Duration `yaml:"alerts"`
}

// DefaultRetention keeps verdict history for 90 days and alerts for 30.
func DefaultRetention() Retention {
	return Retention{VerdictHistory: 90 * 24 * time.Hour, Alerts: 30 * 24 * time.Hour}
}

// Validate reports a negative duration.
func (r Retention) Validate() error {
	if r.VerdictHistory < 0 {
		return fmt.Errorf("%w: retention verdict_history %v is negative", ErrInvalid, r.VerdictHistory)
	}
	if r.Alerts < 0 {
		return fmt.Errorf("%w: retention alerts %v is negative", ErrInvalid, r.Alerts)
	}
	return nil
}
