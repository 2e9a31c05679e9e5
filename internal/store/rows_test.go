package store

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEncodeAlert(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ns := at.UnixNano()
	details := `{"a":1}`
	for _, tt := range []struct {
		name    string
		alert   Alert
		want    AlertColumns
		wantErr string
	}{
		{"Minimal", Alert{ID: "a1", Time: at}, AlertColumns{Time: ns}, ""},
		{"Full", Alert{ID: "a1", Time: at, ReceivedAt: at, Details: json.RawMessage(details)}, AlertColumns{Time: ns, ReceivedAt: &ns, Details: &details}, ""},
		{"NoID", Alert{Time: at}, AlertColumns{}, "put alert: invalid argument: empty ID"},
		{"ZeroTime", Alert{ID: "a1"}, AlertColumns{}, "put alert a1: invalid argument: time 0001-01-01 00:00:00 +0000 UTC is zero or out of range"},
		{"BadDetails", Alert{ID: "a1", Time: at, Details: json.RawMessage("{")}, AlertColumns{}, "put alert a1: invalid argument: details are not valid JSON"},
		{"ReceivedOutOfRange", Alert{ID: "a1", Time: at, ReceivedAt: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}, AlertColumns{},
			"put alert a1: invalid argument: received_at: time 3000-01-01 00:00:00 +0000 UTC is outside the years 1678 to 2262"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeAlert(tt.alert)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, ErrInvalid) {
					t.Fatalf("EncodeAlert = %v, want %q wrapping ErrInvalid", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("EncodeAlert (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRetentionCutoffs(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, tt := range []struct {
		name    string
		r       Retention
		now     time.Time
		want    []RetentionCutoff
		wantErr bool
	}{
		{"Both", Retention{VerdictHistory: 2 * day, Alerts: day}, now, []RetentionCutoff{
			{"verdict_history", now.Add(-2 * day).UnixNano()}, {"alerts", now.Add(-day).UnixNano()}}, false},
		{"AlertsForever", Retention{VerdictHistory: day}, now, []RetentionCutoff{{"verdict_history", now.Add(-day).UnixNano()}}, false},
		{"BeforeRange", Retention{Alerts: day}, time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), nil, false},
		{"Negative", Retention{Alerts: -day}, now, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.r.Cutoffs(tt.now)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Cutoffs error = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Cutoffs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCallsClose checks that Close waits for the call in progress, that
// later calls fail with ErrClosed, and that only the first Close
// releases.
func TestCallsClose(t *testing.T) {
	var c Calls
	if err := c.Enter(); err != nil {
		t.Fatal(err)
	}
	released := 0
	closed := make(chan error)
	go func() { closed <- c.Close(func() error { released++; return nil }) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v while a call was in progress", err)
	default:
	}
	c.Leave()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := c.Enter(); !errors.Is(err, ErrClosed) {
		t.Errorf("Enter after Close = %v, want ErrClosed", err)
	}
	if err := c.Close(func() error { released++; return nil }); err != nil || released != 1 {
		t.Errorf("second Close = %v with %d releases, want nil and 1", err, released)
	}
}
