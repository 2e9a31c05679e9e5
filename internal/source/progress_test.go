package source

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/telemetry"
)

// progressOf returns a window's progress with something of each kind
// handed on.
func progressOf() *windowProgress {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	pr := newWindowProgress(Window{From: t0, To: t0.Add(time.Hour)})
	pr.sampled, pr.ids = true, []string{"a1", "b2", "c3"}
	pr.traces["a1"], pr.traces["b2"] = traceDone, 2
	pr.handedSpans["c3"] = map[spanRef]bool{
		{[8]byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, telemetry.SpanKindServer}: true,
		{[8]byte{0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8}, telemetry.SpanKindClient}: true,
	}
	pr.profiles[profilePart{"gateway", t0.UnixNano(), t0.Add(30 * time.Minute).UnixNano()}] = true
	pr.profiles[profilePart{"catalog", t0.UnixNano(), t0.Add(30 * time.Minute).UnixNano()}] = true
	pr.spans["gateway"] = map[string][]string{"GET /search": {"00f067aa0ba902b7", "53995c3f42cd8ad8"}}
	pr.attempts[itemKey{trace: "d4"}] = 2
	pr.attempts[itemKey{profile: profilePart{"catalog", t0.Add(30 * time.Minute).UnixNano(), t0.Add(time.Hour).UnixNano()}}] = 1
	return pr
}

// TestProgressEncoding checks that a window's progress decodes to what was
// encoded, and that what cannot be one is refused as malformed, naming
// why.
func TestProgressEncoding(t *testing.T) {
	data, err := progressOf().marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := unmarshalProgress(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := pr.marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(data) {
		t.Errorf("decoded and encoded again:\n got %s\nwant %s", again, data)
	}
	if g := pr.groups("gateway"); len(g) != 1 || len(g[0].IDs) != 2 {
		t.Errorf("span groups after decoding: %v", g)
	}
	if want := progressOf().attempts; !maps.Equal(pr.attempts, want) {
		t.Errorf("items' failures after decoding: %v, want %v", pr.attempts, want)
	}
	// What redaction would change is left out of the record.
	masked, err := progressOf().marshal(func(s string) bool { return s != "GET /search" && s != "catalog" })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(masked), "GET /search") || strings.Contains(string(masked), "catalog") {
		t.Errorf("the record holds what redaction masks: %s", masked)
	}
	if !strings.Contains(string(masked), `"service":"gateway"`) || !strings.Contains(string(masked), `"trace":"d4","polls":2`) {
		t.Errorf("the record lost what redaction keeps: %s", masked)
	}
	for _, tc := range []struct{ name, data, want string }{
		{"not JSON", `{"version":1,`, "unexpected end of JSON input"},
		{"another version", `{"version":4,"from":"2026-12-05T10:00:00Z","to":"2026-12-05T11:00:00Z"}`, "version 4, want 1 to 3"},
		{"failures in version 2", `{"version":2,"from":"2026-12-05T10:00:00Z","to":"2026-12-05T11:00:00Z","attempts":[{"trace":"a1","polls":1}]}`, "version 2 with items' failures"},
		{"failure of a trace and a service", `{"version":3,"from":"2026-12-05T10:00:00Z","to":"2026-12-05T11:00:00Z","attempts":[{"trace":"a1","service":"gateway","polls":1}]}`, "want a trace or a service"},
		{"failure of nothing", `{"version":3,"from":"2026-12-05T10:00:00Z","to":"2026-12-05T11:00:00Z","attempts":[{"polls":1}]}`, "want a trace or a service"},
		{"span not named by id and kind", `{"version":2,"from":"2026-12-05T10:00:00Z","to":"2026-12-05T11:00:00Z","sampled":true,"handed":{"a1":["00f067aa0ba902b7"]}}`, `trace a1: span "00f067aa0ba902b7" handed on`},
		{"span kind not a number", `{"version":2,"from":"2026-12-05T10:00:00Z","to":"2026-12-05T11:00:00Z","sampled":true,"handed":{"a1":["00f067aa0ba902b7/+2"]}}`, `kind "+2"`},
		{"failed at no poll", `{"version":3,"from":"2026-12-05T10:00:00Z","to":"2026-12-05T11:00:00Z","attempts":[{"trace":"a1","polls":0}]}`, "tempo trace a1: failed at 0 polls"},
		{"spans by id in version 1", `{"version":1,"from":"2026-12-05T10:00:00Z","to":"2026-12-05T11:00:00Z","sampled":true,"handed":{"a1":["00f067aa0ba902b7/2"]}}`, "version 1 with spans handed on by id"},
		{"spans before the sample", `{"version":2,"from":"2026-12-05T10:00:00Z","to":"2026-12-05T11:00:00Z","handed":{"a1":["00f067aa0ba902b7/2"]}}`, "before any was sampled"},
		{"empty window", `{"version":1,"from":"2026-12-05T10:00:00Z","to":"2026-12-05T10:00:00Z"}`, "ends before it starts"},
		{"traces before the sample", `{"version":1,"from":"2026-12-05T10:00:00Z","to":"2026-12-05T11:00:00Z","traces":{"a1":-1}}`, "before any was sampled"},
		{"negative count", `{"version":1,"from":"2026-12-05T10:00:00Z","to":"2026-12-05T11:00:00Z","sampled":true,"traces":{"a1":-2}}`, "trace a1: -2 resources"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := unmarshalProgress([]byte(tc.data))
			if !errors.Is(err, telemetry.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrMalformed saying %q", err, tc.want)
			}
		})
	}
}

// TestProgressVersion1 checks that a record written before spans were
// named (version 1: a trace's resources counted) is still resumed: its
// counts are kept, to skip the resources by position.
func TestProgressVersion1(t *testing.T) {
	pr, err := unmarshalProgress([]byte(`{"version":1,"from":"2026-12-05T10:00:00Z","to":"2026-12-05T11:00:00Z","sampled":true,"ids":["a1","b2"],"traces":{"a1":-1,"b2":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	if pr.traces["a1"] != traceDone || pr.traces["b2"] != 2 || len(pr.handedSpans) != 0 {
		t.Errorf("traces %v, spans handed %v: want a1 done, 2 resources of b2 handed on", pr.traces, pr.handedSpans)
	}
}

// TestProgressVersion2 checks that a record written before the items'
// failures were (version 2) is still resumed, its items' failures
// counted from 0.
func TestProgressVersion2(t *testing.T) {
	pr, err := unmarshalProgress([]byte(`{"version":2,"from":"2026-12-05T10:00:00Z","to":"2026-12-05T11:00:00Z","sampled":true,"ids":["a1","b2"],"traces":{"a1":-1},"handed":{"b2":["00f067aa0ba902b7/2"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if pr.traces["a1"] != traceDone || !pr.handedSpans["b2"][spanRef{[8]byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, telemetry.SpanKindServer}] || len(pr.attempts) != 0 || pr.tries != itemAttempts {
		t.Errorf("traces %v, spans handed %v, failures %v, tries %d: want a1 done, a span of b2 handed on, no failures, %d tries", pr.traces, pr.handedSpans, pr.attempts, pr.tries, itemAttempts)
	}
}

// FuzzUnmarshalProgress decodes arbitrary records of a window left
// unfinished, as a store shared by several replicas may hold: each is
// refused or decodes to a progress that encodes and decodes again to
// itself.
func FuzzUnmarshalProgress(f *testing.F) {
	data, err := progressOf().marshal(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"version":1,"from":"2026-12-05T10:00:00Z","to":"2026-12-05T11:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pr, err := unmarshalProgress(data)
		if err != nil {
			return
		}
		enc, err := pr.marshal(nil)
		if err != nil {
			t.Fatal(err)
		}
		again, err := unmarshalProgress(enc)
		if err != nil {
			t.Fatalf("%s decoded, its encoding %s did not: %v", data, enc, err)
		}
		enc2, err := again.marshal(nil)
		if err != nil || string(enc2) != string(enc) {
			t.Fatalf("encoded twice: %s, then %s (%v)", enc, enc2, err)
		}
	})
}
