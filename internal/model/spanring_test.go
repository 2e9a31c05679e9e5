package model

import (
	"math/rand/v2"
	"testing"
)

// TestSpanRing checks the ring against the plainest reading of what it
// keeps, the last max spans put, in runs of puts and lookups of every
// length around the ring's size, with span ids put again and ids never
// put.
func TestSpanRing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		max     int
		ids     int // distinct span ids drawn from
		ops     int
		lookups float64 // share of operations that look up
	}{
		{"smaller than the ring", 64, 1000, 40, 0.5},
		{"wraps, rare lookups", 8, 1000, 5000, 0.02},
		{"wraps, frequent lookups", 8, 1000, 5000, 0.6},
		{"ids put again", 16, 20, 5000, 0.3},
		{"ring of two", 2, 5, 2000, 0.5},
		{"several chunks, the last one short", 2*spanChunk + 100, 5000, 20000, 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.max)))
			r := newSpanRing(tc.max)
			var put []spanRef // every span put, in order
			for op := range tc.ops {
				id := [8]byte{byte(rng.IntN(tc.ids)), byte(rng.IntN(tc.ids) >> 8)}
				if rng.Float64() >= tc.lookups {
					ref := endpointRef{idx: int32(op)}
					r.put(id, ref)
					put = append(put, spanRef{id: id, ref: ref})
					continue
				}
				var want endpointRef
				found := false
				for i := len(put) - 1; i >= max(0, len(put)-tc.max); i-- {
					if put[i].id == id {
						want, found = put[i].ref, true
						break
					}
				}
				got, ok := r.get(id)
				if ok != found || got != want {
					t.Fatalf("operation %d: get(%x) = %v, %v; want %v, %v", op, id, got, ok, want, found)
				}
				if len(r.index) > 2*tc.max {
					t.Fatalf("operation %d: index holds %d ids, more than twice the ring (%d)", op, len(r.index), tc.max)
				}
			}
			n := 0
			for _, c := range r.chunks {
				n += len(c)
			}
			if n > tc.max {
				t.Errorf("ring has room for %d spans, want at most %d", n, tc.max)
			}
		})
	}
}

// BenchmarkSpanRingPut is the cost the serve path pays per SERVER span
// when no profile asks for span ids: span ids at random, a ring at the
// default bound.
func BenchmarkSpanRingPut(b *testing.B) {
	r := newSpanRing(DefaultConfig().MaxSpanEndpoints)
	rng := rand.New(rand.NewPCG(1, 2))
	var id [8]byte
	for b.Loop() {
		v := rng.Uint64()
		for i := range id {
			id[i] = byte(v >> (8 * i))
		}
		r.put(id, endpointRef{})
	}
}
