package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/evidentsec/evident/internal/findings"
)

// Actions recorded in the audit log.
const (
	ActionTokenCreate     = "token.create"
	ActionTokenRevoke     = "token.revoke"
	ActionFindingsReplace = "findings.replace"
	ActionVEXChange       = "vex.change"
)

// ActorEngine is the actor of the changes evident makes itself, from the
// evidence (a VEX status that follows a verdict).
const ActorEngine = "evident (runtime evidence)"

// VEXChangeDetails is what a vex.change entry of the audit log records.
type VEXChangeDetails struct {
	PURL        string `json:"purl"`
	From        string `json:"from"`
	To          string `json:"to"`
	VerdictFrom string `json:"verdict_from"`
	VerdictTo   string `json:"verdict_to"`
	Reason      string `json:"reason,omitempty"`
}

// Audit returns the audit record of a VEX status change: its target
// ("<vulnerability> in <service>") and details; ok is false when the VEX
// status did not change.
func (c VerdictChange) Audit() (target string, details VEXChangeDetails, ok bool) {
	if c.VEXFrom == c.VEXTo {
		return "", VEXChangeDetails{}, false
	}
	return c.VulnID + " in " + c.Service, VEXChangeDetails{
		PURL: c.PURL, From: c.VEXFrom, To: c.VEXTo, VerdictFrom: string(c.From), VerdictTo: string(c.To), Reason: c.Reason,
	}, true
}

// AuditEntry is one entry of the audit log: who did what to what, and
// when. Entries form a hash chain: Hash covers PrevHash, the hash of the
// entry before (empty for the first), and the entry's own fields, so an
// entry edited in the database no longer matches its hash, and one
// removed from the middle breaks the link of the next.
type AuditEntry struct {
	// Seq numbers the entries from 1 without gaps.
	Seq int64 `json:"seq"`
	// Time is when the change was made.
	Time time.Time `json:"time"`
	// Actor is who made it: "token:<id> (<name>)", "oidc:<subject>",
	// "cli:<user>", or "anonymous (loopback)" on a listener without
	// authentication.
	Actor string `json:"actor"`
	// Action is what was done, one of the Action constants.
	Action string `json:"action"`
	// Target is what it was done to: a token ID, the services whose
	// findings were replaced.
	Target string `json:"target"`
	// Details are the action's particulars as compact JSON, kept byte
	// for byte (the hash covers these bytes).
	Details json.RawMessage `json:"details"`
	// PrevHash and Hash are hex SHA-256 digests; see ChainHash.
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// ChainHash is the hash the entry must carry: the hex SHA-256 of
// PrevHash, a newline, and the JSON array [seq, time in Unix nanoseconds,
// actor, action, target, details as a string]. Every backend computes it
// with this function when it appends, and `evident audit verify` checks
// it.
func (e AuditEntry) ChainHash() string {
	fields, err := json.Marshal([]any{e.Seq, e.Time.UnixNano(), e.Actor, e.Action, e.Target, string(e.Details)})
	if err != nil {
		panic(fmt.Sprintf("marshal audit entry %d: %v", e.Seq, err)) // strings and integers always marshal
	}
	h := sha256.New()
	h.Write([]byte(e.PrevHash))
	h.Write([]byte{'\n'})
	h.Write(fields)
	return hex.EncodeToString(h.Sum(nil))
}

// NewAuditEntry makes the entry that follows prev (nil for the first one)
// with its sequence number and hashes. Details are compacted; an invalid
// JSON value, a zero or out of range time and an empty actor are
// ErrInvalid.
func NewAuditEntry(prev *AuditEntry, at time.Time, actor, action, target string, details any) (AuditEntry, error) {
	if at.IsZero() || actor == "" {
		return AuditEntry{}, fmt.Errorf("%w: audit entry for %s %s without a time or an actor", ErrInvalid, action, target)
	}
	if _, err := UnixNano(at); err != nil {
		return AuditEntry{}, fmt.Errorf("%w: audit entry for %s %s: %w", ErrInvalid, action, target, err)
	}
	raw, err := json.Marshal(details)
	if err != nil {
		return AuditEntry{}, fmt.Errorf("%w: audit details of %s %s: %w", ErrInvalid, action, target, err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return AuditEntry{}, fmt.Errorf("%w: audit details of %s %s: %w", ErrInvalid, action, target, err)
	}
	e := AuditEntry{Seq: 1, Time: at.UTC(), Actor: actor, Action: action, Target: target, Details: buf.Bytes()}
	if prev != nil {
		e.Seq, e.PrevHash = prev.Seq+1, prev.Hash
	}
	e.Hash = e.ChainHash()
	return e, nil
}

// AuditChain checks the entries of an audit log in order. The zero value
// expects the first entry.
type AuditChain struct {
	last AuditEntry
	n    int64
}

// Next checks e against the entry before it: the next sequence number,
// the previous entry's hash as PrevHash, and its own Hash. The error
// names the entry and what is wrong with it.
func (c *AuditChain) Next(e AuditEntry) error {
	want := c.last.Seq + 1
	switch {
	case e.Seq != want:
		return fmt.Errorf("audit entry %d: expected entry %d here: entries are missing or out of order", e.Seq, want)
	case e.PrevHash != c.last.Hash:
		return fmt.Errorf("audit entry %d: prev_hash %q is not the hash %q of entry %d: the chain was cut or rewritten", e.Seq, e.PrevHash, c.last.Hash, c.last.Seq)
	case e.Hash != e.ChainHash():
		return fmt.Errorf("audit entry %d (%s %s by %s at %s): content does not match its hash: the entry was edited",
			e.Seq, e.Action, e.Target, e.Actor, e.Time.Format(time.RFC3339))
	}
	c.last = e
	c.n++
	return nil
}

// Checked returns how many entries were checked and the hash of the last
// one, the head of the chain ("" when none).
func (c *AuditChain) Checked() (n int64, head string) { return c.n, c.last.Hash }

// AuditTarget is the target of an audit entry about a tenant's data: the
// target itself in the default tenant, "tenant/target" in another, so the
// shared audit log tells tenants apart.
func AuditTarget(tenant, target string) string {
	if tenant == DefaultTenant {
		return target
	}
	return tenant + "/" + target
}

// TokenCreateDetails is what a token.create entry of the audit log
// records: never the token's secret hash.
type TokenCreateDetails struct {
	Name    string    `json:"name"`
	Roles   []string  `json:"roles"`
	Tenant  string    `json:"tenant,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
}

// Audit returns the details a token.create entry records of t.
func (t Token) Audit() TokenCreateDetails {
	return TokenCreateDetails{Name: t.Name, Roles: t.Roles, Tenant: t.Tenant, Expires: t.Expires.UTC()}
}

// Token is an API token as the store keeps it: its ID and the SHA-256
// of its secret, never the secret.
type Token struct {
	// ID is the public part of the token, unique.
	ID string `json:"id"`
	// Name says what the token is for.
	Name string `json:"name"`
	// Roles are what the token may do (internal/auth names them).
	Roles []string `json:"roles"`
	// Tenant is the only tenant the token acts in; empty: any, chosen
	// per request (X-Scope-OrgID), the default tenant without one.
	Tenant string `json:"tenant,omitempty"`
	// SecretHash is the SHA-256 of the token's secret.
	SecretHash []byte `json:"-"`
	// Created is when the token was made.
	Created time.Time `json:"created"`
	// Expires is when the token stops working; zero: never.
	Expires time.Time `json:"expires,omitzero"`
	// Revoked is when the token was revoked; zero: it was not.
	Revoked time.Time `json:"revoked,omitzero"`
}

// Validate reports a token the store does not accept.
func (t Token) Validate() error {
	switch {
	case t.ID == "":
		return fmt.Errorf("%w: token without an ID", ErrInvalid)
	case len(t.SecretHash) != sha256.Size:
		return fmt.Errorf("%w: token %s: secret hash of %d bytes, want %d", ErrInvalid, t.ID, len(t.SecretHash), sha256.Size)
	case len(t.Roles) == 0:
		return fmt.Errorf("%w: token %s has no role", ErrInvalid, t.ID)
	case t.Created.IsZero():
		return fmt.Errorf("%w: token %s has no creation time", ErrInvalid, t.ID)
	case t.Tenant != "":
		if err := ValidateTenant(t.Tenant); err != nil {
			return fmt.Errorf("token %s: %w", t.ID, err)
		}
	}
	return nil
}

// FindingsUpdate replaces imported findings.
type FindingsUpdate struct {
	// Findings are the new findings.
	Findings []findings.Finding
	// Services, when not nil, limits the replacement to the findings of
	// these services: the stored findings of other services stay, and
	// every finding of the update must be of one of them. Nil replaces
	// every stored finding.
	Services []string
	// Source says where the findings came from (a file, an upload), for
	// the audit log.
	Source string
	// Actor and Time are recorded in the audit log.
	Actor string
	Time  time.Time
}

// FindingKey is the key of a finding in the store: service, package URL
// and vulnerability ID.
type FindingKey struct {
	Service string `json:"service"`
	PURL    string `json:"purl"`
	VulnID  string `json:"vuln_id"`
}

// KeyOf returns the key of f.
func KeyOf(f findings.Finding) FindingKey {
	return FindingKey{Service: f.Service, PURL: f.Package.PURL, VulnID: f.Vulnerability.ID}
}

// Validate reports two findings with one key, and a finding outside
// Services.
func (u FindingsUpdate) Validate() error {
	seen := make(map[FindingKey]int, len(u.Findings))
	for i, f := range u.Findings {
		k := KeyOf(f)
		if j, dup := seen[k]; dup {
			return fmt.Errorf("%w: finding %d has the key of finding %d (service %q, purl %q, vulnerability %q)",
				ErrInvalid, i, j, k.Service, k.PURL, k.VulnID)
		}
		seen[k] = i
		if !u.Replaces(f.Service) {
			return fmt.Errorf("%w: finding %d (%s in %s) is of service %q, outside the update's services %q",
				ErrInvalid, i, k.VulnID, k.PURL, f.Service, u.Services)
		}
	}
	return nil
}

// Replaces reports whether the update replaces the findings of service.
func (u FindingsUpdate) Replaces(service string) bool {
	return u.Services == nil || slices.Contains(u.Services, service)
}

// Target is the update's scope as the audit log names it.
func (u FindingsUpdate) Target() string {
	if u.Services == nil {
		return "all services"
	}
	s := slices.Clone(u.Services)
	slices.Sort(s)
	return "services " + strings.Join(slices.Compact(s), ", ")
}

// FindingsChange is what a findings.replace entry of the audit log
// records: the keys of the findings added, removed and changed, and how
// many stayed as they were.
type FindingsChange struct {
	Source    string       `json:"source,omitempty"`
	Added     []FindingKey `json:"added"`
	Removed   []FindingKey `json:"removed"`
	Changed   []FindingKey `json:"changed"`
	Unchanged int          `json:"unchanged"`
}

// Change compares the update with old, the stored findings it replaces
// (those in its scope), each given as its stored JSON document. Keys are
// sorted.
func (u FindingsUpdate) Change(old map[FindingKey][]byte) (FindingsChange, error) {
	c := FindingsChange{Source: u.Source, Added: []FindingKey{}, Removed: []FindingKey{}, Changed: []FindingKey{}}
	seen := make(map[FindingKey]bool, len(u.Findings))
	for _, f := range u.Findings {
		k := KeyOf(f)
		seen[k] = true
		was, ok := old[k]
		if !ok {
			c.Added = append(c.Added, k)
			continue
		}
		doc, err := json.Marshal(f)
		if err != nil {
			return c, fmt.Errorf("finding %s in %s: %w", k.VulnID, k.PURL, err)
		}
		if bytes.Equal(doc, was) {
			c.Unchanged++
		} else {
			c.Changed = append(c.Changed, k)
		}
	}
	for k := range old {
		if !seen[k] {
			c.Removed = append(c.Removed, k)
		}
	}
	for _, ks := range [][]FindingKey{c.Added, c.Removed, c.Changed} {
		slices.SortFunc(ks, func(a, b FindingKey) int {
			return strings.Compare(a.Service+"\x00"+a.PURL+"\x00"+a.VulnID, b.Service+"\x00"+b.PURL+"\x00"+b.VulnID)
		})
	}
	return c, nil
}
