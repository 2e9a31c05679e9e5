package attribution

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// cache maps frames to their attribution. Reads take no lock: the table is
// an open-addressing array of atomic pointers to immutable entries, which
// are only ever added, so a reader sees either nothing (and takes the
// writer's path) or a complete entry. Writers serialise on mu, and grow the
// table by publishing a new one; readers still on the old one find every
// entry it had.
//
// Measured with BenchmarkAttributeCached on a shared 2-core machine under
// heavy load, a hit here took 110-150 ns wall time (about 25 ns of CPU),
// against 175 ns for 64 RWMutex-sharded maps and 125-240 ns for a sync.Map:
// both hash the two strings of the key in full, and RLock writes the lock's
// cache line on every read.
type cache struct {
	seed  maphash.Seed
	max   int
	table atomic.Pointer[table]

	mu    sync.Mutex
	count int
	slab  []entry // the free rest of the last slab
	// slabSize is the number of entries of the last slab.
	slabSize int
	// text is the last slab the strings of cached frames are copied
	// into. It is only ever appended to, within its capacity (a full one
	// is replaced), so the bytes of the strings cut from it are never
	// written again.
	text []byte
}

type table struct {
	mask  uint64
	slots []atomic.Pointer[entry]
}

type entry struct {
	hash  uint64
	frame Frame
	fn    Func
	ok    bool
}

// minTableSize is the initial number of slots; a table is grown when half
// full, so probes stay short.
const minTableSize = 64

func newCache(limit int) *cache {
	c := &cache{seed: maphash.MakeSeed(), max: limit}
	c.table.Store(&table{mask: minTableSize - 1, slots: make([]atomic.Pointer[entry], minTableSize)})
	return c
}

// hash hashes the function name in full but only the length and the last
// bytes of the file: a function name almost always decides the file, and
// equal hashes are told apart by comparing the frames.
func (c *cache) hash(f Frame) uint64 {
	h := maphash.String(c.seed, f.Function)
	n := len(f.File)
	tail := uint64(n)
	if n >= 8 {
		// One load of the last eight bytes (the compiler merges these),
		// not eight: this runs for every frame of every profile.
		s := f.File[n-8:]
		tail = uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	} else {
		for i := range n {
			tail = tail<<8 | uint64(f.File[i])
		}
	}
	return h ^ (tail * 0x9E3779B97F4A7C15)
}

// get returns the cached entry for f, or nil.
func (c *cache) get(f Frame, h uint64) *entry {
	t := c.table.Load()
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		e := t.slots[i].Load()
		if e == nil {
			return nil
		}
		if e.hash == h && e.frame == f {
			return e
		}
	}
}

// add caches a copy of *e unless the cache is full or holds the frame
// already, and returns the entry now cached for its frame, or nil when
// full.
func (c *cache) add(e *entry) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.get(e.frame, e.hash); old != nil {
		return old
	}
	if c.count >= c.max {
		return nil
	}
	t := c.table.Load()
	if 2*(c.count+1) > len(t.slots) {
		t = c.grow(t)
	}
	// Entries are allocated in slabs: one allocation per many new
	// frames. Entries are never removed, so a slab lives as long as the
	// cache, as its entries would.
	if len(c.slab) == 0 {
		// Slabs double from minEntrySlab, so that a cache of a few frames
		// (a fresh Attributor per small profile) allocates little.
		c.slabSize = min(entrySlab, max(2*c.slabSize, minEntrySlab))
		c.slab = make([]entry, min(c.slabSize, c.max-c.count))
	}
	p := &c.slab[0]
	c.slab = c.slab[1:]
	*p = *e
	insert(t, p)
	c.count++
	return p
}

// entrySlab and minEntrySlab bound the number of entries allocated
// together.
const (
	entrySlab    = 64
	minEntrySlab = 8
)

// join returns a+sep+b, always a copy: in a text slab of the cache's own
// while the cache has room, so that the strings of new frames cost no
// allocation each. Like the entries, they are never freed, so a slab
// lives as long as the cache would keep its strings anyway. Long strings
// and those of frames beyond the bound get an allocation of their own.
func (c *cache) join(a, sep, b string) string {
	n := len(a) + len(sep) + len(b)
	if n == 0 {
		return ""
	}
	c.mu.Lock()
	if c.count < c.max && n <= textSlab/8 {
		if cap(c.text)-len(c.text) < n {
			// Slabs double from minTextSlab, so that a cache of a few
			// frames (a fresh Attributor per small profile) keeps little.
			c.text = make([]byte, 0, min(textSlab, max(2*cap(c.text), minTextSlab, n)))
		}
		start := len(c.text)
		c.text = append(append(append(c.text, a...), sep...), b...)
		// As strings.Builder does: the bytes are not written again.
		s := unsafe.String(&c.text[start], n)
		c.mu.Unlock()
		return s
	}
	c.mu.Unlock()
	// Not a + sep + b, which returns the one string that is not empty
	// as it is.
	var s strings.Builder
	s.Grow(n)
	s.WriteString(a)
	s.WriteString(sep)
	s.WriteString(b)
	return s.String()
}

// textSlab and minTextSlab bound the size of a text slab in bytes.
const (
	textSlab    = 4096
	minTextSlab = 256
)

// grow publishes a table four times the size of t holding t's entries:
// a cache fills from nothing when its Attributor is new, with the frames
// of its first profiles, and each growth moves every entry.
func (c *cache) grow(t *table) *table {
	n := 4 * len(t.slots)
	nt := &table{mask: uint64(n - 1), slots: make([]atomic.Pointer[entry], n)}
	for i := range t.slots {
		if e := t.slots[i].Load(); e != nil {
			insert(nt, e)
		}
	}
	c.table.Store(nt)
	return nt
}

// insert puts e in the first free slot of its probe sequence; the caller
// holds mu and has made room.
func insert(t *table, e *entry) {
	i := e.hash & t.mask
	for t.slots[i].Load() != nil {
		i = (i + 1) & t.mask
	}
	t.slots[i].Store(e)
}

// memo remembers the answers of a costly computation, for at most max
// distinct keys; beyond, it computes without remembering. The frames of a
// service come from far fewer packages and modules than they are many:
// golang.org/x/mod's module path check costs more than the rest of
// attributing a Go frame (every element is compared with Windows' reserved
// names), so the Attributor does it once per module path (issue 11); a Go
// package's import path check and module lookup, the same for every
// function of the package, are goPackages'. Keys and values are strings the Attributor owns (cut from
// its cache's copy of a frame), so a memo pins no caller's buffer. Safe for
// concurrent use.
type memo[K comparable, V any] struct {
	mu   sync.Mutex
	max  int
	seen map[K]*memoEntry[K, V]
	// last is the entry last asked for, answered without the lock or
	// hashing the key: a profile lists the functions of one package
	// together more often than not (of go-cpu-busy's 323 functions, 204
	// follow one of the same package and directory).
	last atomic.Pointer[memoEntry[K, V]]
}

type memoEntry[K comparable, V any] struct {
	k K
	v V
}

func newMemo[K comparable, V any](limit int) *memo[K, V] {
	return &memo[K, V]{max: limit}
}

// get returns compute(k), remembered.
func (m *memo[K, V]) get(k K, compute func(K) V) V {
	if e := m.last.Load(); e != nil && e.k == k {
		return e.v
	}
	m.mu.Lock()
	e, found := m.seen[k]
	m.mu.Unlock()
	if found {
		m.last.Store(e)
		return e.v
	}
	v := compute(k)
	m.mu.Lock()
	if len(m.seen) < m.max {
		if m.seen == nil {
			m.seen = make(map[K]*memoEntry[K, V])
		}
		e = &memoEntry[K, V]{k: k, v: v}
		m.seen[k] = e
	}
	m.mu.Unlock()
	if e != nil {
		m.last.Store(e)
	}
	return v
}
