package storetest

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/store"
)

// OldAlert is an alert row as an evident stored it before alerts had a
// dedupe_key and an observed column (SQLite migration 8, PostgreSQL
// migration 10): the key and observation were in the details, if at all.
type OldAlert struct {
	ID      string
	Details *string // NULL when nil
	Time    time.Time
}

// AlertsBeforeDedupeKey are the default tenant's alerts of a backend's
// test of that migration, which stores them, with kind first_execution,
// severity high, service shop and summary "summary", in the schema before
// it, migrates it and calls CheckAlertsBeforeDedupeKey. Their details
// are as evident serve's store sink wrote them.
var AlertsBeforeDedupeKey = []OldAlert{
	{"keyed", ptr(`{"evidence":{"function":"golang.org/x/text/language.Parse"},"dedupe_key":"first_execution|shop|GO-2022-1059","observed":"2026-12-03T09:59:00Z"}`), time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)},
	{"unobserved", ptr(`{"evidence":{},"dedupe_key":"exploit_payload|shop|GET /search"}`), time.Date(2026, 12, 3, 10, 1, 0, 0, time.UTC)},
	{"keyless", ptr(`{"evidence":{}}`), time.Date(2026, 12, 3, 10, 2, 0, 0, time.UTC)},
	{"bare", nil, time.Date(2026, 12, 3, 10, 3, 0, 0, time.UTC)},
}

func ptr[T any](v T) *T { return &v }

// CheckAlertsBeforeDedupeKey checks that s, migrated from a schema that
// held AlertsBeforeDedupeKey, reads them: FiredAlerts, newest first, with
// their details and neither a key nor an observation, whose reader
// decodes the details; and Alerts.
func CheckAlertsBeforeDedupeKey(t *testing.T, s store.Store) {
	t.Helper()
	var want []store.FiredAlert
	for _, a := range slices.Backward(AlertsBeforeDedupeKey) {
		f := store.FiredAlert{Time: a.Time}
		if a.Details != nil {
			f.Details = json.RawMessage(*a.Details)
		}
		want = append(want, f)
	}
	got, err := s.FiredAlerts(t.Context(), time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("FiredAlerts after the migration (-got +want):\n%s", diff)
	}
	alerts, err := s.Alerts(t.Context(), store.AlertQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range alerts {
		ids = append(ids, a.ID)
	}
	if want := []string{"bare", "keyless", "unobserved", "keyed"}; !slices.Equal(ids, want) {
		t.Errorf("Alerts after the migration = %v, want %v", ids, want)
	}
}
