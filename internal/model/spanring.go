package model

// spanRing remembers the endpoint of the last SERVER and CONSUMER spans,
// by span id, so that profile samples labelled with a span id can be
// attributed to the endpoint whose request ran them.
//
// Spans arrive by the hundred thousand a second; samples labelled with a
// span id are few, and most deployments send none. So adding a span only
// writes it at the head of the ring, in order, which stays in the cache
// (a map insert of a random span id missed it, and cost a fifth of the
// serve path's CPU); the index by span id is brought up to date when a
// lookup needs it, with the spans added since the last one.
type spanRing struct {
	max int
	// chunks hold the ring, slot i in chunks[i/spanChunk][i%spanChunk]:
	// allocated as spans come, so that a small model stays small, and
	// never copied.
	chunks [][]spanRef
	// head counts the spans ever added: the next goes in slot head % max,
	// and those from head-max on are still in the ring.
	head uint64
	// index holds the position of each span id of the ring up to
	// indexed, and of some overwritten since (checked on lookup).
	index   map[[8]byte]uint64
	indexed uint64
}

// spanChunk is the spans of a chunk of the ring (24 KiB).
const spanChunk = 1024

type spanRef struct {
	id  [8]byte
	ref endpointRef
}

func newSpanRing(max int) *spanRing {
	return &spanRing{max: max}
}

// put remembers the endpoint of span id, forgetting the oldest span when
// the ring is full.
func (r *spanRing) put(id [8]byte, ref endpointRef) {
	slot := int(r.head % uint64(r.max))
	c := slot / spanChunk
	if c == len(r.chunks) {
		r.chunks = append(r.chunks, make([]spanRef, min(spanChunk, r.max-c*spanChunk)))
	}
	r.chunks[c][slot%spanChunk] = spanRef{id: id, ref: ref}
	r.head++
}

// at returns the span at position p (counted as head is).
func (r *spanRing) at(p uint64) *spanRef {
	slot := int(p % uint64(r.max))
	return &r.chunks[slot/spanChunk][slot%spanChunk]
}

// len returns the spans the ring holds.
func (r *spanRing) len() uint64 { return min(r.head, uint64(r.max)) }

// get returns the endpoint of span id when it is one of the last max
// spans put; of a span id put twice, the later.
func (r *spanRing) get(id [8]byte) (endpointRef, bool) {
	oldest := r.head - r.len()
	if r.index == nil {
		r.index = make(map[[8]byte]uint64)
	}
	// Entries of overwritten spans stay until the index holds twice the
	// ring: then it is built again from what the ring holds.
	if len(r.index)+int(r.head-max(r.indexed, oldest)) > 2*r.max {
		clear(r.index)
		r.indexed = oldest
	}
	for p := max(r.indexed, oldest); p < r.head; p++ {
		r.index[r.at(p).id] = p
	}
	r.indexed = r.head
	p, ok := r.index[id]
	if !ok || p < oldest {
		return endpointRef{}, false
	}
	return r.at(p).ref, true
}
