package source

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestSplit checks that the parts of a window are contiguous, in order,
// cover it exactly, and are of one length to the millisecond.
func TestSplit(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	from := time.Date(2026, 12, 5, 12, 0, 0, 123456789, time.UTC)
	cases := []struct {
		d time.Duration
		n int
	}{{time.Hour, 1}, {72 * time.Hour, 4}, {7 * 24 * time.Hour, 8}, {10 * 365 * 24 * time.Hour, 1024}, {time.Second, 1024}, {100 * time.Millisecond, 1024}}
	for range 200 {
		cases = append(cases, struct {
			d time.Duration
			n int
		}{time.Duration(r.Int64N(int64(400 * 24 * time.Hour))), 1 << r.IntN(11)})
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.d, "/", tc.n), func(t *testing.T) {
			w := Window{From: from, To: from.Add(tc.d)}
			parts := split(w, tc.n)
			if len(parts) != tc.n || !parts[0].From.Equal(w.From) || !parts[tc.n-1].To.Equal(w.To) {
				t.Fatalf("%d parts from %s to %s, want %d from %s to %s", len(parts), parts[0].From, parts[len(parts)-1].To, tc.n, w.From, w.To)
			}
			want := tc.d / time.Duration(tc.n)
			for i, p := range parts {
				if i > 0 && !p.From.Equal(parts[i-1].To) {
					t.Errorf("part %d starts at %s, the one before ends at %s", i, p.From, parts[i-1].To)
				}
				if got := p.To.Sub(p.From); got < 0 || got > want+time.Millisecond || got < want-time.Millisecond && i < tc.n-1 {
					t.Errorf("part %d lasts %s, want %s to the millisecond", i, got, want)
				}
			}
		})
	}
}
