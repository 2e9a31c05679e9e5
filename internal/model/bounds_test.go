package model

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/attribution"
	"github.com/evidentsec/evident/internal/telemetry"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	c := DefaultConfig()
	c.MaxPendingSpans, c.MaxStacks, c.MaxSeries, c.JoinWindow, c.LateJoinWindow = 1, 0, 0, 0, -time.Second
	err := c.Validate()
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "max_pending_spans 1 is below 2") ||
		!strings.Contains(err.Error(), "join_window 0s is not positive") || !strings.Contains(err.Error(), "late_join_window -1s is not positive") ||
		!strings.Contains(err.Error(), "max_stacks 0 is below 1") || !strings.Contains(err.Error(), "max_series 0 is below 1") {
		t.Errorf("Validate() = %v, want both bad bounds named", err)
	}
}

// TestBounds feeds more services, endpoints, hosts, stores, stacks and
// functions than small bounds allow, and checks what the snapshot keeps
// and counts.
func TestBounds(t *testing.T) {
	cfg := Config{MaxPendingSpans: 4, JoinWindow: time.Minute, LateJoinWindow: time.Minute, MaxSpanEndpoints: 4, MaxServices: 2, MaxEndpoints: 2, MaxHosts: 2, MaxStores: 2, MaxStacks: 2, MaxFunctions: 3, MaxSeries: 1}
	m := New(cfg, attribution.New(attribution.Config{}))
	var spans []telemetry.Span
	for i := range 5 {
		n := byte(10 * (i + 1))
		spans = append(spans,
			span("a", telemetry.SpanKindServer, n, 0, fmt.Sprintf("GET /users/%d", i), telemetry.Attrs{HTTPMethod: "GET"}),
			span("a", telemetry.SpanKindClient, n+1, n, "POST", telemetry.Attrs{ServerAddress: fmt.Sprintf("t%d.example.com", i)}),
			span("a", telemetry.SpanKindClient, n+2, n, "SELECT", telemetry.Attrs{DBSystem: "postgresql", DBNamespace: fmt.Sprintf("t%d", i)}),
			span("a", telemetry.SpanKindConsumer, n+3, 0, "process", telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: fmt.Sprintf("q%d", i)}),
			// A destination it produces to is a store too: t0 and p0
			// fill MaxStores, and the others are counted apart, by kind.
			span("a", telemetry.SpanKindProducer, n+4, n, "publish", telemetry.Attrs{MessagingSystem: "kafka", MessagingDestination: fmt.Sprintf("p%d", i)}),
		)
	}
	spans = append(spans,
		span("b", telemetry.SpanKindServer, 90, 0, "GET /", telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/"}),
		span("c", telemetry.SpanKindServer, 91, 0, "GET /", telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/"}),
		span("c", telemetry.SpanKindServer, 92, 0, "GET /", telemetry.Attrs{HTTPMethod: "GET", HTTPRoute: "/"}),
	)
	m.AddSpans(spans)
	b := &telemetry.ProfileBatch{Service: "a", Start: t0, Period: 10_000_000, Unit: "nanoseconds", SampleType: "cpu"}
	for i := range 5 {
		b.Locations = append(b.Locations, []attribution.Frame{{Function: fmt.Sprintf("example.com/shop.F%d", i)}})
		b.Samples = append(b.Samples, telemetry.Sample{Locations: []int32{int32(i)}, Count: 1, Value: 1})
	}
	m.AddProfile(b)
	m.AddProfile(&telemetry.ProfileBatch{Service: "c", Start: t0})

	snap := m.Snapshot()
	if got, want := snap.Dropped, (Dropped{Spans: 2, Profiles: 1}); got != want {
		t.Errorf("Dropped = %+v, want %+v", got, want)
	}
	var names []string
	for _, s := range snap.Services {
		names = append(names, s.Name)
	}
	if diff := cmp.Diff(names, []string{"a", "b"}); diff != "" {
		t.Errorf("services (-got +want):\n%s", diff)
	}
	a := snap.Service("a")
	// 10 SERVER and CONSUMER spans: 2 endpoints, then 8 calls to others.
	want := Overflow{Endpoints: 8, Hosts: 3, Stores: 4, Produces: 4, Consumes: 3, Samples: 1, Frames: 2, Series: 1}
	if diff := cmp.Diff(a.Overflow, want); diff != "" {
		t.Errorf("Overflow (-got +want):\n%s", diff)
	}
	var other int64
	for _, e := range a.Endpoints {
		if e.Route == OtherEndpoints {
			other = e.Calls
		}
	}
	if len(a.Endpoints) != 3 || other != 8 {
		t.Errorf("endpoints = %d with %d calls to %q, want 2 and the other endpoint with 8", len(a.Endpoints), other, OtherEndpoints)
	}
	if len(a.Stores) != 2+2 || len(a.Consumes) != 2 || len(a.Functions) != 2 {
		t.Errorf("stores %d, consumes %d, functions %d, want 4 (a database, a destination, 2 hosts), 2, 2", len(a.Stores), len(a.Consumes), len(a.Functions))
	}
	var series int
	for _, fn := range a.Functions {
		if fn.Series != nil {
			series++
		}
	}
	if series != 1 {
		t.Errorf("%d functions with a series, want 1 (MaxSeries)", series)
	}

	// The counts survive a checkpoint.
	data, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	restored := New(cfg, attribution.New(attribution.Config{}))
	if err := restored.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(restored.Snapshot(), snap); diff != "" {
		t.Errorf("restored snapshot differs (-got +want):\n%s", diff)
	}
}

// TestWindowsOfInterleavedProfiles: pyroscope-go sends a CPU and a heap
// profile of each 10 seconds; each continues the window of its kind. A
// window continued only the last window of all, so the service had a
// window per profile, a list that grew without bound (2,000 in under
// three hours), in memory, in every snapshot and in every checkpoint.
// The profiles of a Go server and of a Python worker under one
// service.name are of the same kind but hold other code: each continues
// its own window, so that neither covers the other's time, and an idle
// profile (no sample) continues the window before it. A server's idle
// profiles before its first request made a window of no language, which
// its first busy profile did not continue: a bound of its code covered
// none of that time.
func TestWindowsOfInterleavedProfiles(t *testing.T) {
	flask := attribution.Frame{Function: "dispatch_request", File: "/usr/lib/python3.12/site-packages/flask/app.py"}
	type profile struct {
		sampleType, unit string
		frame            *attribution.Frame // nil: no sample
		// from and to are the first and the last of the 1000 times 10
		// seconds it is sent in; to 0 for the last.
		from, to int
	}
	cpu := func(f *attribution.Frame) profile { return profile{sampleType: "cpu", unit: "nanoseconds", frame: f} }
	tests := []struct {
		name     string
		profiles []profile // of each 10 seconds
		want     []string
	}{
		{"cpu and heap", []profile{cpu(&frameParse), {sampleType: "alloc_space", unit: "bytes", frame: &frameParse}}, []string{
			"cpu [go] 10:00:00..12:46:40 1000 samples, time-sampled true",
			"alloc_space [go] 10:00:00..12:46:40 1000 samples, time-sampled false",
		}},
		{"a Go server and a Python worker", []profile{cpu(&frameParse), cpu(&flask)}, []string{
			"cpu [go] 10:00:00..12:46:40 1000 samples, time-sampled true",
			"cpu [python] 10:00:00..12:46:40 1000 samples, time-sampled true",
		}},
		{"an idle profile", []profile{cpu(&frameParse), cpu(nil)}, []string{
			"cpu [go] 10:00:00..12:46:40 1000 samples, time-sampled true",
		}},
		{"idle until its first request", []profile{{"cpu", "nanoseconds", nil, 0, 499}, {"cpu", "nanoseconds", &frameParse, 500, 0}}, []string{
			"cpu [go] 10:00:00..12:46:40 500 samples, time-sampled true",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel()
			for i := range 1000 {
				for _, p := range tt.profiles {
					if i < p.from || p.to > 0 && i > p.to {
						continue
					}
					b := &telemetry.ProfileBatch{
						Service: "api", SampleType: p.sampleType, Unit: p.unit, Period: 10_000_000,
						Start: t0.Add(time.Duration(i) * 10 * time.Second), Duration: 10 * time.Second,
					}
					if p.frame != nil {
						b.Locations = [][]attribution.Frame{{*p.frame}}
						b.Samples = []telemetry.Sample{{Locations: []int32{0}, Count: 1, Value: 1}}
					}
					m.AddProfile(b)
				}
			}
			var got []string
			for _, w := range m.Snapshot().Service("api").Windows {
				got = append(got, fmt.Sprintf("%s %v %s..%s %d samples, time-sampled %t", w.SampleType, w.Languages, w.Start.Format(time.TimeOnly), w.End.Format(time.TimeOnly), w.Samples, w.TimeSampled))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("windows (-want +got):\n%s", diff)
			}
		})
	}
}
