package detect

// The bounds of a Scanner's memos: what the rules found in at most
// valueEntries values, and at most keyEntries dedupe keys, each under a
// key of at most memoKeyBytes. With what they map to (a decoded value is
// no longer than the value, a dedupe key about as long as its memo key)
// that is about 4 MiB and 1 MiB at worst, and far less for real
// attribute values and endpoints.
const (
	valueEntries = 4096
	keyEntries   = 1024
	memoKeyBytes = 512
)

// generations is a bounded map keyed by bytes. It is generational:
// keys go into cur, and when cur holds half the bound it becomes prev
// and the old prev is forgotten; a key found in prev moves back into
// cur. A key used at least once per half of the bound stays, whatever
// the number of keys seen once. Keys longer than memoKeyBytes are
// never kept. It is not safe for concurrent use.
type generations[V any] struct {
	max       int
	cur, prev map[string]V
}

func newGenerations[V any](max int) generations[V] {
	return generations[V]{max: max, cur: map[string]V{}, prev: map[string]V{}}
}

// get returns the value of k. (k is bytes so that a lookup copies
// nothing: m[string(k)] does not allocate.)
func (g *generations[V]) get(k []byte) (V, bool) {
	if v, ok := g.cur[string(k)]; ok {
		return v, true
	}
	v, ok := g.prev[string(k)]
	if ok {
		delete(g.prev, string(k))
		g.put(k, v)
	}
	return v, ok
}

// put sets the value of k, a copy of k.
func (g *generations[V]) put(k []byte, v V) {
	if len(k) > memoKeyBytes {
		return
	}
	if len(g.cur) >= g.max/2 {
		g.prev, g.cur = g.cur, g.prev
		clear(g.cur)
	}
	g.cur[string(k)] = v
}

// memoEntry is what the rules found in a value: matches in decoded, or
// in the value itself when same is set; none when found is empty.
type memoEntry struct {
	decoded string
	same    bool
	found   []found
}

// exploitKey is the dedupe key of the alerts of one rule at one endpoint
// of a service, and the endpoint, redacted.
type exploitKey struct {
	dedupe, endpoint string
}
