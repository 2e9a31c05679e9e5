package ui

import (
	"cmp"
	"slices"
	"strings"

	"github.com/evidentsec/evident/internal/assess"
)

// Flame graph geometry, in SVG user units.
const (
	flameWidth = 960.0
	flameRow   = 20.0
	// flameChar is the width of a character of the frames' font, to cut
	// names to their rectangle.
	flameChar = 7.0
)

// flameGraph is the stacks through a finding's vulnerable functions,
// root at the top (an icicle): each vulnerable function's example stack,
// as wide as that function's time samples, or, when none was seen in a
// time-sampled profile, as wide as its samples of the others. An
// allocation profile's objects beside CPU samples would make a function
// that allocates a thousandfold wider than one that takes the time.
type flameGraph struct {
	Width, Height float64
	Frames        []flameFrame
	Samples       int64
	// Of names what Samples count: "time samples", or "samples of
	// allocation and contention profiles".
	Of string
}

// flameFrame is one rectangle.
type flameFrame struct {
	X, Y, W float64
	Name    string
	// Label is Name cut to fit the rectangle; empty when nothing fits.
	Label   string
	Samples int64
	// Vulnerable marks a frame of a function the finding is about.
	Vulnerable bool
}

// flameNode is a frame of the merged stacks.
type flameNode struct {
	name     string
	samples  int64
	children []*flameNode
}

// newFlameGraph merges the example stacks of the evidence; nil when no
// vulnerable function was seen.
func newFlameGraph(r assess.Reachability) *flameGraph {
	timed := slices.ContainsFunc(r.Evidence, func(e assess.FunctionEvidence) bool { return e.TimeSamples > 0 })
	weight := func(e assess.FunctionEvidence) int64 {
		if timed {
			return e.TimeSamples
		}
		return e.Samples
	}
	root := &flameNode{}
	vulnerable := map[string]bool{}
	for _, e := range r.Evidence {
		n := weight(e)
		if len(e.Stack) == 0 || n <= 0 {
			continue
		}
		vulnerable[e.Symbol] = true
		root.samples += n
		node := root
		// Stacks are leaf first; the graph grows from the root.
		for i := len(e.Stack) - 1; i >= 0; i-- {
			j := slices.IndexFunc(node.children, func(c *flameNode) bool { return c.name == e.Stack[i] })
			if j < 0 {
				node.children = append(node.children, &flameNode{name: e.Stack[i]})
				j = len(node.children) - 1
			}
			node = node.children[j]
			node.samples += n
		}
	}
	if root.samples == 0 {
		return nil
	}
	g := &flameGraph{Width: flameWidth, Samples: root.samples, Of: "time samples"}
	if !timed {
		g.Of = "samples of allocation and contention profiles"
	}
	scale := flameWidth / float64(root.samples)
	var walk func(n *flameNode, x float64, depth int)
	walk = func(n *flameNode, x float64, depth int) {
		slices.SortFunc(n.children, func(a, b *flameNode) int { return cmp.Compare(a.name, b.name) })
		for _, c := range n.children {
			w := float64(c.samples) * scale
			f := flameFrame{X: x, Y: float64(depth) * flameRow, W: w, Name: c.name, Samples: c.samples, Vulnerable: isVulnerable(c.name, vulnerable, r.Symbols)}
			f.Label = fitLabel(shortFrame(c.name), w, flameChar)
			g.Frames = append(g.Frames, f)
			g.Height = max(g.Height, f.Y+flameRow)
			walk(c, x, depth+1)
			x += w
		}
	}
	walk(root, 0, 0)
	return g
}

// isVulnerable reports whether a frame is one of the vulnerable
// functions: seen as evidence, or looked for (a package at package
// basis).
func isVulnerable(frame string, seen map[string]bool, symbols []string) bool {
	if seen[frame] {
		return true
	}
	for _, s := range symbols {
		if frame == s || strings.HasPrefix(frame, s+".") {
			return true
		}
	}
	return false
}

// shortFrame drops the import path's directories: "golang.org/x/text/
// unicode/norm.Form.String" is "norm.Form.String".
func shortFrame(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 && i+1 < len(name) {
		return name[i+1:]
	}
	return name
}

// fitLabel cuts a label to a width, at a width per character, with an
// ellipsis; too narrow for three characters is no label.
func fitLabel(s string, width, char float64) string {
	n := int((width - 6) / char)
	r := []rune(s)
	switch {
	case n < 3:
		return ""
	case len(r) <= n:
		return s
	}
	return string(r[:n-1]) + "…"
}
