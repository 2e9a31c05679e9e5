package detect

// automaton is an Aho–Corasick automaton over a set of lower-case
// strings, compiled to a DFA over byte classes and matching ASCII
// case-insensitively. It reports every occurrence, overlapping ones
// included, and allocates nothing while it scans. A small one written
// here rather than a module: the Go ones at hand report leftmost
// non-overlapping matches and allocate their results, and the prefilter
// needs every anchor at every position.
type automaton struct {
	// class maps a byte to its column in next: bytes that occur in no
	// pattern share column 0, and ASCII upper case shares the column of
	// its lower case.
	class  [256]uint16
	stride int
	// next is the transition table: a state is the offset of its row,
	// and next[state+class] the next state. States where a pattern ends
	// come last, from firstOut on, so that the scan tests for a match
	// with one comparison.
	next     []int32
	firstOut int32
	// out lists, per state from firstOut, the patterns that end there
	// (its own and those of its suffix links):
	// out[outStart[i]:outStart[i+1]] for i = (state-firstOut)/stride.
	out      []int32
	outStart []int32
	lens     []int32 // pattern lengths
}

// newAutomaton compiles pats; they must be non-empty and lower case.
func newAutomaton(pats []string) *automaton {
	a := &automaton{stride: 1, lens: make([]int32, len(pats))}
	for _, p := range pats {
		for i := 0; i < len(p); i++ {
			if a.class[p[i]] == 0 {
				a.class[p[i]] = uint16(a.stride)
				a.stride++
			}
		}
	}
	for c := 'A'; c <= 'Z'; c++ {
		a.class[c] = a.class[c+'a'-'A']
	}
	// The trie: goto transitions, -1 where there is none.
	trie := [][]int32{a.row()}
	ends := [][]int32{nil}
	for id, p := range pats {
		a.lens[id] = int32(len(p))
		s := int32(0)
		for i := 0; i < len(p); i++ {
			c := a.class[p[i]]
			if trie[s][c] < 0 {
				trie[s][c] = int32(len(trie))
				trie = append(trie, a.row())
				ends = append(ends, nil)
			}
			s = trie[s][c]
		}
		ends[s] = append(ends[s], int32(id))
	}
	// Breadth first: each state's failure link is resolved before its
	// children, and missing transitions become those of the failure
	// state, which makes the trie a DFA.
	fail := make([]int32, len(trie))
	queue := []int32{}
	for c, t := range trie[0] {
		if t < 0 {
			trie[0][c] = 0
			continue
		}
		queue = append(queue, t)
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		ends[s] = append(ends[s], ends[fail[s]]...)
		for c, t := range trie[s] {
			if t < 0 {
				trie[s][c] = trie[fail[s]][c]
				continue
			}
			fail[t] = trie[fail[s]][c]
			queue = append(queue, t)
		}
	}
	// Number the states without a match first; the root stays 0.
	var order []int
	for s := range trie {
		if len(ends[s]) == 0 {
			order = append(order, s)
		}
	}
	a.firstOut = int32(len(order) * a.stride)
	for s := range trie {
		if len(ends[s]) > 0 {
			order = append(order, s)
		}
	}
	offset := make([]int32, len(trie))
	for i, s := range order {
		offset[s] = int32(i * a.stride)
	}
	a.next = make([]int32, 0, len(trie)*a.stride)
	for _, s := range order {
		for _, t := range trie[s] {
			a.next = append(a.next, offset[t])
		}
		if len(ends[s]) > 0 {
			a.outStart = append(a.outStart, int32(len(a.out)))
			a.out = append(a.out, ends[s]...)
		}
	}
	a.outStart = append(a.outStart, int32(len(a.out)))
	return a
}

func (a *automaton) row() []int32 {
	r := make([]int32, a.stride)
	for i := range r {
		r[i] = -1
	}
	return r
}

// occurrence is a pattern found at [start, start+len).
type occurrence struct {
	start int32
	pat   int32
}

// find appends every occurrence of a pattern in s to dst, by end
// position, and returns it.
func find[T string | []byte](a *automaton, s T, dst []occurrence) []occurrence {
	st := int32(0)
	for i := 0; i < len(s); i++ {
		st = a.next[int(st)+int(a.class[s[i]])]
		if st < a.firstOut {
			continue
		}
		o := int(st-a.firstOut) / a.stride
		for _, p := range a.out[a.outStart[o]:a.outStart[o+1]] {
			dst = append(dst, occurrence{start: int32(i+1) - a.lens[p], pat: p})
		}
	}
	return dst
}
