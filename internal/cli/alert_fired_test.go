package cli

import (
	"database/sql"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/alert"
	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/store/sqlite"
)

// TestFiredReadsOldAlerts: the router's seed reads the dedupe key and
// observation of an alert from columns of their own, and those of an
// alert stored before they were kept (NULL, as the migration leaves the
// rows it finds) from its details, as it did before.
func TestFiredReadsOldAlerts(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	alerts := []alert.Alert{
		{Alert: firstExecutionAlert(0, now), ID: "new"},
		{Alert: firstExecutionAlert(1, now.Add(-time.Minute)), ID: "old"},
		{Alert: firstExecutionAlert(2, now.Add(-2*time.Minute)), ID: "old-unobserved"},
		{Alert: detect.Alert{Kind: detect.KindRequestRate, Severity: detect.Low, Summary: "no key", Time: now.Add(-3 * time.Minute)}, ID: "old-keyless"},
	}
	alerts[2].Observed = time.Time{}

	st, err := sqlite.Open(t.Context(), dir, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	log := newAlertLog(st, slog.New(slog.DiscardHandler))
	for _, a := range alerts {
		if err := log.Send(t.Context(), a); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), `UPDATE alerts SET dedupe_key = NULL, observed = NULL WHERE id LIKE 'old%'`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	st, err = sqlite.Open(t.Context(), dir, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := newAlertLog(st, slog.New(slog.DiscardHandler)).Fired(t.Context(), time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want []alert.Fired
	for _, a := range alerts[:3] {
		want = append(want, alert.Fired{DedupeKey: a.DedupeKey, Time: a.Time, Observed: a.Observed})
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("Fired (-got +want):\n%s", diff)
	}
}
