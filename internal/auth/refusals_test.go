package auth

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/logtest"
)

// TestRefusalLog: a client retrying with a refused token writes a line a
// minute, the next one saying how many refusals it left out; the same
// token on another listener has lines of its own; a flood of token IDs of
// a client's choosing writes refusalBurst lines and then one a second,
// the next saying how many refusals of other tokens were left out.
func TestRefusalLog(t *testing.T) {
	type refusal struct {
		after           time.Duration // since the one before
		listener, token string
	}
	repeat := func(n int, after time.Duration, listener, token string) []refusal {
		rs := make([]refusal, n)
		for i := range rs {
			rs[i] = refusal{after, listener, token}
		}
		return rs
	}
	flood := func(n int) []refusal {
		rs := make([]refusal, n)
		for i := range rs {
			rs[i] = refusal{time.Millisecond, "otlp-grpc", fmt.Sprintf("%016x", i)}
		}
		return rs
	}
	tests := []struct {
		name     string
		refusals []refusal
		want     []string // the lines' attributes after msg, in order
	}{
		{
			name:     "one token retried every second for two minutes",
			refusals: repeat(121, time.Second, "otlp-grpc", "3f9a0c1d2e4b5a69"),
			want: []string{
				`listener=otlp-grpc token=3f9a0c1d2e4b5a69 reason=expired`,
				`listener=otlp-grpc token=3f9a0c1d2e4b5a69 reason=expired not_logged=59`,
				`listener=otlp-grpc token=3f9a0c1d2e4b5a69 reason=expired not_logged=59`,
			},
		},
		{
			name: "the same token on two listeners",
			refusals: []refusal{
				{0, "otlp-grpc", "3f9a0c1d2e4b5a69"},
				{time.Second, "api", "3f9a0c1d2e4b5a69"},
				{time.Second, "otlp-grpc", "3f9a0c1d2e4b5a69"},
			},
			want: []string{
				`listener=otlp-grpc token=3f9a0c1d2e4b5a69 reason=expired`,
				`listener=api token=3f9a0c1d2e4b5a69 reason=expired`,
			},
		},
		{
			name:     "a thousand token IDs in a second, then one more",
			refusals: append(flood(1000), refusal{2 * time.Second, "otlp-grpc", "ffffffffffffffff"}),
			want: append(func() []string {
				var w []string
				for i := range refusalBurst {
					w = append(w, fmt.Sprintf("listener=otlp-grpc token=%016x reason=expired", i))
				}
				return w
			}(), "listener=otlp-grpc token=ffffffffffffffff reason=expired other_refusals_not_logged=990"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf logtest.Buffer
			now := time.Date(2026, 12, 6, 6, 0, 0, 0, time.UTC)
			l := newRefusalLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey || a.Key == slog.LevelKey {
						return slog.Attr{}
					}
					return a
				},
			})), func() time.Time { return now })
			for _, r := range tt.refusals {
				now = now.Add(r.after)
				l.refused(r.listener, r.token, "expired")
			}
			got := strings.Split(strings.TrimSpace(buf.Take()), "\n")
			for i := range got {
				got[i] = strings.TrimPrefix(got[i], `msg="token refused" `)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestRefusalLogBounded: the tokens a refusal log remembers are bounded
// whatever IDs clients send.
func TestRefusalLogBounded(t *testing.T) {
	now := time.Now()
	l := newRefusalLog(slog.New(slog.DiscardHandler), func() time.Time { return now })
	for i := range 3 * maxRefusalKeys {
		now = now.Add(time.Second) // every refusal a line of its own
		l.refused("api", fmt.Sprintf("%016x", i), "unknown or revoked")
		if n := len(l.last); n > maxRefusalKeys {
			t.Fatalf("%d tokens remembered after %d refusals, want at most %d", n, i+1, maxRefusalKeys)
		}
	}
}
