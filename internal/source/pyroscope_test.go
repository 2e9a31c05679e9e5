package source_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
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

// TestPyroscopeMultiTenant checks that a multi-tenant Pyroscope's
// refusal of a request without a tenant says to set the tenant, not
// credentials, which a self-hosted Pyroscope does not check.
func TestPyroscopeMultiTenant(t *testing.T) {
	s := loadServers(t)
	s.pyro.MultiTenant = true
	srv := httptest.NewServer(s.handler())
	defer srv.Close()
	for _, tc := range []struct {
		org, wantErr string
	}{
		{"", "the server is multi-tenant and no tenant was sent: set EVIDENT_PYROSCOPE_ORG_ID"},
		{"shop", ""},
	} {
		t.Run("org "+tc.org, func(t *testing.T) {
			p := source.Pull{Pyroscope: newPull(t, srv.URL, source.Auth{OrgID: tc.org}, nil).Pyroscope}
			var got collect
			err := p.Run(context.Background(), window, &got, func(err error) { t.Error(err) })
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr != "" && (!errors.Is(err, source.ErrUnauthorized) || !strings.Contains(fmt.Sprint(err), tc.wantErr)):
				t.Fatalf("error %v: want ErrUnauthorized saying %q", err, tc.wantErr)
			case tc.wantErr == "" && len(got.profiles) != 4:
				t.Errorf("profiles of %d services, want 4", len(got.profiles))
			}
		})
	}
}

// TestPyroscopeSamplesOfTheWindow checks that a service's samples are
// counted by its sampling period in windows next to one another, as
// serve reads them, though Pyroscope's series reach a step before the
// window; and each profile in one window only: Pyroscope's queries
// include both ends of their range, so a profile stamped on the
// millisecond two windows share (one pushed to /ingest with from in
// whole seconds, on a boundary of whole seconds as analyze's parts of a
// long window have) was counted in both.
func TestPyroscopeSamplesOfTheWindow(t *testing.T) {
	rec, pyro := recordingAndPyroscope(t)
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	// One profile every 10 s.
	for i := range 6 {
		if err := pyro.AddAt("reporter", rec.Profiles["reporter"][0], t0.Add(time.Duration(i)*10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	url := pyroscopeURL(t, pyro)
	p := source.Pull{Pyroscope: newPull(t, url, source.Auth{}, nil).Pyroscope}
	for _, tc := range []struct {
		from, length time.Duration
		profiles     int64
	}{
		{0, 15 * time.Second, 2}, {15 * time.Second, 15 * time.Second, 1}, {30 * time.Second, 15 * time.Second, 2}, {45 * time.Second, 15 * time.Second, 1},
		// Windows that start and end on the profiles' times.
		{0, 10 * time.Second, 1}, {10 * time.Second, 10 * time.Second, 1}, {20 * time.Second, 20 * time.Second, 2},
	} {
		w := source.Window{From: t0.Add(tc.from), To: t0.Add(tc.from + tc.length)}
		var got collect
		if err := p.Run(context.Background(), w, &got, func(err error) { t.Error(err) }); err != nil {
			t.Fatal(err)
		}
		if got.profiles["reporter"] != 140*tc.profiles || got.periods["reporter"] != 10_000_000 {
			t.Errorf("window of %s at +%s: %d samples at a period of %d ns, want %d at 10 ms", tc.length, tc.from, got.profiles["reporter"], got.periods["reporter"], 140*tc.profiles)
		}
	}
}

// TestPyroscopeLongWindow checks that a window longer than Pyroscope's
// max_query_length is read in parts: every part's samples, a service
// in one part only not said to be missing, one without CPU samples said
// to be once, and a server that refuses more parts than evident makes
// quoted.
func TestPyroscopeLongWindow(t *testing.T) {
	rec, pyro := recordingAndPyroscope(t)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, at := range []time.Duration{time.Hour, 30 * time.Hour, 60 * time.Hour} {
		if err := pyro.AddAt("reporter", rec.Profiles["reporter"][0], t0.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pyro.AddAt("orders", rec.Profiles["orders"][0], t0.Add(50*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// A service with allocation profiles only: listed, but its CPU
	// merges are empty, in two parts.
	var allocs bytes.Buffer
	if err := pprof.Lookup("allocs").WriteTo(&allocs, 0); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{10 * time.Hour, 40 * time.Hour} {
		if err := pyro.AddAt("allocs", allocs.Bytes(), t0.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	// Its CPU merge is empty where a part holds CPU profiles of other
	// services; where it holds none, there is no CPU type at all.
	const noCPU = "pyroscope: service allocs: no CPU samples in the window (process_cpu:cpu:nanoseconds:cpu:nanoseconds)"
	const noCPUType = `pyroscope: service allocs: no CPU samples in the window: no CPU profile type among ["memory:alloc_objects:count:space:bytes" "memory:alloc_space:bytes:space:bytes" "memory:inuse_objects:count:space:bytes" "memory:inuse_space:bytes:space:bytes"]`
	url := pyroscopeURL(t, pyro)
	w := source.Window{From: t0, To: t0.Add(72 * time.Hour)}
	for _, tc := range []struct {
		name      string
		limit     time.Duration
		services  []string
		want      map[string]int64
		wantSkip  string
		wantError string
	}{
		{"no limit", 0, nil, map[string]int64{"reporter": 3 * 140, "orders": 47}, noCPU, ""},
		{"a day", 24 * time.Hour, nil, map[string]int64{"reporter": 3 * 140, "orders": 47}, noCPU, ""},
		{"an hour", time.Hour, nil, map[string]int64{"reporter": 3 * 140, "orders": 47}, noCPUType, ""},
		{"a service not there", 24 * time.Hour, []string{"orders", "gateway"}, map[string]int64{"orders": 47}, "pyroscope: service gateway: no data in the window", ""},
		{"more parts than evident makes", time.Minute, nil, nil, "", "exceeds the limit (max_query_length, actual: 4m13.124s, limit: 1m) (the window of 72h0m0s read in 1024 parts; narrow it)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pyro.MaxQueryLength = tc.limit
			p := source.Pull{Pyroscope: newPull(t, url, source.Auth{}, nil).Pyroscope, Services: tc.services}
			var got collect
			var skipped []string
			err := p.Run(context.Background(), w, &got, func(err error) { skipped = append(skipped, err.Error()) })
			if tc.wantError != "" {
				if !errors.Is(err, source.ErrWindowTooLong) || !strings.Contains(fmt.Sprint(err), tc.wantError) {
					t.Fatalf("error %v: want ErrWindowTooLong saying %q", err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got.profiles) != fmt.Sprint(tc.want) {
				t.Errorf("samples %v, want %v", got.profiles, tc.want)
			}
			if want := []string{tc.wantSkip}; tc.wantSkip == "" && len(skipped) > 0 || tc.wantSkip != "" && fmt.Sprint(skipped) != fmt.Sprint(want) {
				t.Errorf("skipped %q, want %q", skipped, tc.wantSkip)
			}
		})
	}
}

// TestPyroscopeThrottled checks that a Pyroscope that refuses a query as
// over a limit of its own (Connect's resource_exhausted, HTTP 429: a
// tenant's queries over its share) fails the window, to be read again
// after a backoff, rather than being taken for an answer over
// MaxResponseBytes, whose service's profile is skipped for good.
func TestPyroscopeThrottled(t *testing.T) {
	tests := []struct {
		name, body string
	}{
		{"resource_exhausted", `{"code":"resource_exhausted","message":"too many outstanding requests"}`},
		{"unavailable", `{"code":"unavailable","message":"too many outstanding requests"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := loadServers(t).handler()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/SelectMergeStacktraces") {
					// A Connect unary error, as connect-go writes it.
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusTooManyRequests)
					w.Write([]byte(tt.body))
					return
				}
				next.ServeHTTP(w, r)
			}))
			defer srv.Close()
			p := newPull(t, srv.URL, source.Auth{}, nil).Pyroscope
			var skipped []error
			err := source.Pull{Pyroscope: p}.Run(context.Background(), window, &collect{}, func(err error) { skipped = append(skipped, err) })
			if !errors.Is(err, source.ErrRetryable) || errors.Is(err, source.ErrTooLarge) {
				t.Errorf("window: error %v, want ErrRetryable", err)
			}
			if len(skipped) > 0 {
				t.Errorf("skipped %v, want the window failed", skipped)
			}
		})
	}
}
