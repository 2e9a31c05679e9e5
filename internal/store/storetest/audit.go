package storetest

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/store"
)

// replaceAll is an update that replaces every stored finding.
func replaceAll(fs ...findings.Finding) store.FindingsUpdate {
	return store.FindingsUpdate{Findings: fs, Source: "test", Actor: "tester", Time: t0}
}

// replaceServices is an update of the findings of services only.
func replaceServices(services []string, fs ...findings.Finding) store.FindingsUpdate {
	u := replaceAll(fs...)
	u.Services = services
	return u
}

func token(id string, created time.Time) store.Token {
	h := sha256.Sum256([]byte("secret of " + id))
	return store.Token{ID: id, Name: "token " + id, Roles: []string{"read", "ingest"}, SecretHash: h[:], Created: created}
}

func mustFindings(t *testing.T, s store.Store) []findings.Finding {
	t.Helper()
	got, err := s.Findings(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// auditLog reads the whole log and checks its chain.
func auditLog(t *testing.T, s store.Store) []store.AuditEntry {
	t.Helper()
	es, err := s.AuditLog(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var chain store.AuditChain
	for _, e := range es {
		if err := chain.Next(e); err != nil {
			t.Errorf("audit chain: %v", err)
		}
	}
	return es
}

func testFindingsServices(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	a := finding("shop", "pkg:golang/example.com/a@1.0.0", "GO-2024-0001", "high")
	b := finding("shop", "pkg:golang/example.com/b@1.0.0", "GO-2024-0002", "low")
	c := finding("api", "pkg:golang/example.com/c@1.0.0", "GO-2024-0003", "medium")
	d := finding("shop", "pkg:golang/example.com/d@1.0.0", "GO-2024-0004", "medium")
	if err := s.PutFindings(t.Context(), replaceAll(a, b, c)); err != nil {
		t.Fatal(err)
	}
	b2 := b
	b2.Severity.Level = "critical"
	if err := s.PutFindings(t.Context(), replaceServices([]string{"shop"}, d, b2)); err != nil {
		t.Fatal(err)
	}
	// api's finding stays; shop's are the new ones.
	if diff := cmp.Diff(mustFindings(t, s), []findings.Finding{c, b2, d}); diff != "" {
		t.Errorf("Findings after replacing shop's (-got +want):\n%s", diff)
	}
	// No services: nothing is replaced.
	if err := s.PutFindings(t.Context(), replaceServices([]string{})); err != nil {
		t.Fatal(err)
	}
	// A service's findings replaced with none: they go.
	if err := s.PutFindings(t.Context(), replaceServices([]string{"api", "nothing-here"})); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(mustFindings(t, s), []findings.Finding{b2, d}); diff != "" {
		t.Errorf("Findings after clearing api (-got +want):\n%s", diff)
	}

	es := auditLog(t, s)
	if len(es) != 4 {
		t.Fatalf("audit log has %d entries, want 4 (one per PutFindings): %+v", len(es), es)
	}
	var change store.FindingsChange
	if err := json.Unmarshal(es[1].Details, &change); err != nil {
		t.Fatal(err)
	}
	want := store.FindingsChange{
		Source:    "test",
		Added:     []store.FindingKey{store.KeyOf(d)},
		Removed:   []store.FindingKey{store.KeyOf(a)},
		Changed:   []store.FindingKey{store.KeyOf(b2)},
		Unchanged: 0,
	}
	if diff := cmp.Diff(change, want); diff != "" {
		t.Errorf("audit details of the shop replacement (-got +want):\n%s", diff)
	}
	for i, target := range []string{"all services", "services shop", "services ", "services api, nothing-here"} {
		if es[i].Action != store.ActionFindingsReplace || es[i].Target != target || es[i].Actor != "tester" {
			t.Errorf("audit entry %d = %s %q by %s, want %s %q by tester", es[i].Seq, es[i].Action, es[i].Target, es[i].Actor, store.ActionFindingsReplace, target)
		}
	}
}

func testFindingsOutsideServices(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	a := finding("shop", "pkg:golang/example.com/a@1.0.0", "GO-2024-0001", "high")
	c := finding("api", "pkg:golang/example.com/c@1.0.0", "GO-2024-0003", "medium")
	if err := s.PutFindings(t.Context(), replaceAll(a)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutFindings(t.Context(), replaceServices([]string{"shop"}, a, c)); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("PutFindings of an api finding into shop's = %v, want ErrInvalid", err)
	}
	if diff := cmp.Diff(mustFindings(t, s), []findings.Finding{a}); diff != "" {
		t.Errorf("Findings after the refused put (-got +want):\n%s", diff)
	}
	if es := auditLog(t, s); len(es) != 1 {
		t.Errorf("audit log has %d entries, want 1: a refused change records nothing", len(es))
	}
}

func testTokens(t *testing.T, open Opener) {
	s, err := open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t1, t2 := token("t1", t0), token("t2", t0.Add(time.Minute))
	t2.Roles, t2.Expires = []string{"admin"}, t0.Add(24*time.Hour)
	for _, tok := range []store.Token{t2, t1} {
		if err := s.CreateToken(t.Context(), tok, "cli:root"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateToken(t.Context(), token("t1", t0), "cli:root"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("CreateToken with a taken ID = %v, want ErrInvalid", err)
	}
	revokedAt := t0.Add(time.Hour)
	if err := s.RevokeToken(t.Context(), "t1", revokedAt, "token:t2 (admin)"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(t.Context(), "t1", revokedAt.Add(time.Hour), "cli:root"); err != nil {
		t.Errorf("RevokeToken of a revoked token = %v, want nil", err)
	}
	if err := s.RevokeToken(t.Context(), "nope", revokedAt, "cli:root"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeToken of an unknown token = %v, want ErrNotFound", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, open)
	got, err := s.Tokens(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t1.Revoked = revokedAt
	if diff := cmp.Diff(got, []store.Token{t1, t2}); diff != "" {
		t.Errorf("Tokens (-got +want):\n%s", diff)
	}
	es := auditLog(t, s)
	var got3 []string
	for _, e := range es {
		got3 = append(got3, fmt.Sprintf("%s %s by %s", e.Action, e.Target, e.Actor))
	}
	want3 := []string{"token.create t2 by cli:root", "token.create t1 by cli:root", "token.revoke t1 by token:t2 (admin)"}
	if diff := cmp.Diff(got3, want3); diff != "" {
		t.Errorf("audit log (-got +want):\n%s", diff)
	}
	for _, e := range es {
		if strings.Contains(string(e.Details), "hash") {
			t.Errorf("audit entry %d records the secret hash: %s", e.Seq, e.Details)
		}
	}
}

func testTokenRejects(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	for name, mod := range map[string]func(*store.Token){
		"NoID":      func(tok *store.Token) { tok.ID = "" },
		"ShortHash": func(tok *store.Token) { tok.SecretHash = tok.SecretHash[:8] },
		"NoRoles":   func(tok *store.Token) { tok.Roles = nil },
		"NoCreated": func(tok *store.Token) { tok.Created = time.Time{} },
	} {
		t.Run(name, func(t *testing.T) {
			tok := token("bad", t0)
			mod(&tok)
			if err := s.CreateToken(t.Context(), tok, "cli:root"); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("CreateToken = %v, want ErrInvalid", err)
			}
		})
	}
	if got, err := s.Tokens(t.Context()); err != nil || len(got) != 0 {
		t.Errorf("Tokens after refused creations = %v, %v; want none", got, err)
	}
}

func testAuditChain(t *testing.T, open Opener) {
	s, err := open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if es := auditLog(t, s); len(es) != 0 {
		t.Errorf("audit log of a new store = %+v, want empty", es)
	}
	if err := s.CreateToken(t.Context(), token("t1", t0), "cli:root"); err != nil {
		t.Fatal(err)
	}
	a := finding("shop", "pkg:golang/example.com/a@1.0.0", "GO-2024-0001", "high")
	u := replaceServices([]string{"shop"}, a)
	u.Time, u.Actor = t0.Add(time.Second), "token:t1 (ci)"
	if err := s.PutFindings(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(t.Context(), "t1", t0.Add(2*time.Second), "cli:root"); err != nil {
		t.Fatal(err)
	}
	// Retention never touches the audit log.
	if _, err := s.Retain(t.Context(), t0.Add(1000*time.Hour), store.Retention{VerdictHistory: time.Nanosecond, Alerts: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, open)
	es := auditLog(t, s)
	if len(es) != 3 {
		t.Fatalf("audit log has %d entries, want 3", len(es))
	}
	type brief struct {
		Seq                   int64
		Time                  time.Time
		Actor, Action, Target string
		Details               string
	}
	var got []brief
	for _, e := range es {
		got = append(got, brief{e.Seq, e.Time, e.Actor, e.Action, e.Target, string(e.Details)})
	}
	key := `{"service":"shop","purl":"pkg:golang/example.com/a@1.0.0","vuln_id":"GO-2024-0001"}`
	want := []brief{
		{1, t0, "cli:root", store.ActionTokenCreate, "t1", `{"name":"token t1","roles":["read","ingest"]}`},
		{2, t0.Add(time.Second), "token:t1 (ci)", store.ActionFindingsReplace, "services shop",
			`{"source":"test","added":[` + key + `],"removed":[],"changed":[],"unchanged":0}`},
		{3, t0.Add(2 * time.Second), "cli:root", store.ActionTokenRevoke, "t1", `{}`},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("audit log (-got +want):\n%s", diff)
	}
	if es[0].PrevHash != "" || es[1].PrevHash != es[0].Hash || es[2].PrevHash != es[1].Hash {
		t.Errorf("audit entries are not chained: %+v", es)
	}
	var chain store.AuditChain
	for _, e := range es {
		chain.Next(e)
	}
	if n, head := chain.Checked(); n != 3 || head != es[2].Hash {
		t.Errorf("chain checked %d entries up to %s, want 3 up to %s", n, head, es[2].Hash)
	}
}

func testAuditPaging(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	for i := range 5 {
		if err := s.CreateToken(t.Context(), token(fmt.Sprintf("t%d", i+1), t0), "cli:root"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		after int64
		limit int
		want  []string
	}{
		{0, 0, []string{"t1", "t2", "t3", "t4", "t5"}},
		{2, 2, []string{"t3", "t4"}},
		{4, 0, []string{"t5"}},
		{5, 10, nil},
	} {
		es, err := s.AuditLog(t.Context(), tt.after, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range es {
			got = append(got, e.Target)
		}
		if diff := cmp.Diff(got, tt.want); diff != "" {
			t.Errorf("AuditLog(%d, %d) (-got +want):\n%s", tt.after, tt.limit, diff)
		}
	}
}

func testAuditNoActor(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	if err := s.CreateToken(t.Context(), token("t1", t0), ""); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("CreateToken without an actor = %v, want ErrInvalid", err)
	}
	u := replaceAll()
	u.Time = time.Time{}
	if err := s.PutFindings(t.Context(), u); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("PutFindings without a time = %v, want ErrInvalid", err)
	}
	if got, err := s.Tokens(t.Context()); err != nil || len(got) != 0 {
		t.Errorf("Tokens = %v, %v; want none: the change and its record commit together", got, err)
	}
	if es := auditLog(t, s); len(es) != 0 {
		t.Errorf("audit log = %+v, want empty", es)
	}
}

func testAuditVEX(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	const purl = "pkg:golang/example.com/a@1.0.0"
	changes := []store.VerdictChange{
		// The verdict changes, the VEX status does not: no audit entry.
		{Time: t0, Service: "shop", VulnID: "GO-1", PURL: purl, From: assess.Unknown, To: assess.NotObserved,
			Reason: "profiles arrived", VEXFrom: "under_investigation", VEXTo: "under_investigation"},
		// The bound is tight enough now: not_affected.
		{Time: t0.Add(time.Hour), Service: "shop", VulnID: "GO-1", PURL: purl, From: assess.NotObserved, To: assess.NotObserved,
			Reason: "bound 0.4% over 2h", VEXFrom: "under_investigation", VEXTo: "not_affected"},
		{Time: t0.Add(2 * time.Hour), Service: "shop", VulnID: "GO-1", PURL: purl, From: assess.NotObserved, To: assess.Executed,
			Reason: "seen in 3 samples", VEXFrom: "not_affected", VEXTo: "affected"},
	}
	if err := s.AppendVerdicts(t.Context(), changes); err != nil {
		t.Fatal(err)
	}
	got, err := s.VerdictHistory(t.Context(), "shop", "GO-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, []store.VerdictChange{changes[2], changes[1], changes[0]}); diff != "" {
		t.Errorf("VerdictHistory (-got +want):\n%s", diff)
	}
	// Retention drops the verdict history, never the audit log.
	if _, err := s.Retain(t.Context(), t0.Add(1000*time.Hour), store.Retention{VerdictHistory: time.Hour}); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range auditLog(t, s) {
		lines = append(lines, fmt.Sprintf("%d %s %s by %s: %s", e.Seq, e.Action, e.Target, e.Actor, e.Details))
	}
	want := []string{
		`1 vex.change GO-1 in shop by ` + store.ActorEngine + `: {"purl":"` + purl + `","from":"under_investigation","to":"not_affected","verdict_from":"not_observed","verdict_to":"not_observed","reason":"bound 0.4% over 2h"}`,
		`2 vex.change GO-1 in shop by ` + store.ActorEngine + `: {"purl":"` + purl + `","from":"not_affected","to":"affected","verdict_from":"not_observed","verdict_to":"executed","reason":"seen in 3 samples"}`,
	}
	if diff := cmp.Diff(lines, want); diff != "" {
		t.Errorf("audit log (-got +want):\n%s", diff)
	}
}
