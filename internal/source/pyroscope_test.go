package source_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/source"
)

// TestPyroscopeEmptyWindow checks that a window in which Pyroscope holds
// no service is said to be empty, with or without a service selected.
func TestPyroscopeEmptyWindow(t *testing.T) {
	s := loadServers(t)
	srv := httptest.NewServer(s.handler())
	defer srv.Close()
	empty := source.Window{From: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2001, 1, 2, 0, 0, 0, 0, time.UTC)}
	for _, tc := range []struct {
		name     string
		services []string
		want     string
	}{
		{"all services", nil, "no service has profiles"},
		{"a selected service", []string{"gateway"}, "service gateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := source.Pull{Pyroscope: newPull(t, srv.URL, source.Auth{}, nil).Pyroscope, Services: tc.services}
			var got collect
			var skipped []error
			if err := p.Run(context.Background(), empty, &got, func(err error) { skipped = append(skipped, err) }); err != nil {
				t.Fatal(err)
			}
			if len(skipped) != 1 || !errors.Is(skipped[0], source.ErrNoData) || !strings.Contains(skipped[0].Error(), tc.want) {
				t.Errorf("skipped %v: want one ErrNoData saying %q", skipped, tc.want)
			}
			if len(got.profiles) != 0 {
				t.Errorf("profiles %v: want none", got.profiles)
			}
		})
	}
}
