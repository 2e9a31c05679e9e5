package ui

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/report"
)

// Runtime map geometry, in SVG user units.
const (
	nodeWidth  = 240.0
	nodeHeight = 48.0
	colGap     = 110.0
	rowGap     = 26.0
	margin     = 20.0
	// nodeChar is the width of a character of a node's name (bold).
	nodeChar = 7.8
)

// graphLayout is the runtime map: services, data stores and third
// parties in columns by their distance from the entry points, calls as
// curves from left to right.
type graphLayout struct {
	Width, Height float64
	// NodeWidth and NodeHeight are every node's size.
	NodeWidth, NodeHeight float64
	Nodes                 []graphNode
	Edges                 []graphEdge
}

// graphNode is a service, data store or third party.
type graphNode struct {
	ID string
	// Kind is service, database, objectstore, messaging or external.
	Kind     string
	Exposure assess.Exposure
	Labels   []string
	// Label is ID cut to fit the node.
	Label string
	// Href is the service's page; empty for stores.
	Href string
	X, Y float64
	// Column is the distance from the entry points, in calls.
	Column int
	// Downstream lists the exposed services that reach it.
	Downstream []string
	// Sensitive marks a store with a sensitivity label.
	Sensitive bool
}

// graphEdge is the calls from one node to another.
type graphEdge struct {
	From, To      string
	Calls, Errors int64
	// Rate is calls per second between the first and the last call; 0
	// when they were less than a second apart.
	Rate float64
	// Path is the SVG path; LabelX and LabelY place its label, anchored
	// by LabelAnchor (start, middle or end of the text).
	Path           string
	LabelX, LabelY float64
	LabelAnchor    string
	// Exposed marks a call on a path from an exposed service to a
	// sensitive store.
	Exposed bool
}

// ErrorShare is Errors/Calls.
func (e graphEdge) ErrorShare() float64 {
	if e.Calls == 0 {
		return 0
	}
	return float64(e.Errors) / float64(e.Calls)
}

// layoutGraph lays out the runtime model of a result.
func layoutGraph(res *report.Result) *graphLayout {
	g := &graphLayout{NodeWidth: nodeWidth, NodeHeight: nodeHeight}
	if res.Snapshot == nil {
		return g
	}
	index := map[string]int{}
	add := func(n graphNode) {
		if _, ok := index[n.ID]; !ok {
			n.Label = fitLabel(n.ID, nodeWidth-14, nodeChar)
			index[n.ID] = len(g.Nodes)
			g.Nodes = append(g.Nodes, n)
		}
	}
	for _, svc := range report.ServicesJSON(res) {
		add(graphNode{ID: svc.Name, Kind: "service", Exposure: svc.Exposure.Level, Href: servicePath(svc.Name)})
	}
	labels := map[string][]string{}
	for _, a := range res.Assessments {
		for _, st := range a.BlastRadius {
			labels[st.Name] = st.Labels
		}
	}
	for _, svc := range res.Snapshot.Services {
		for _, e := range svc.Edges {
			g.Edges = append(g.Edges, graphEdge{From: e.From, To: e.To, Calls: e.Calls, Errors: e.Errors, Rate: rate(e.Calls, e.Last.Sub(e.First).Seconds())})
		}
		for _, st := range svc.Stores {
			add(graphNode{ID: st.Name, Kind: st.Kind, Labels: labels[st.Name], Sensitive: len(labels[st.Name]) > 0})
			g.Edges = append(g.Edges, graphEdge{From: svc.Name, To: st.Name, Calls: st.Calls, Errors: st.Errors, Rate: rate(st.Calls, st.Last.Sub(st.First).Seconds())})
		}
		// A consumer is reached through its destination.
		for _, st := range svc.Consumes {
			add(graphNode{ID: st.Name, Kind: st.Kind, Labels: labels[st.Name], Sensitive: len(labels[st.Name]) > 0})
			g.Edges = append(g.Edges, graphEdge{From: st.Name, To: svc.Name, Calls: st.Calls, Errors: st.Errors, Rate: rate(st.Calls, st.Last.Sub(st.First).Seconds())})
		}
	}
	// Drop edges to nodes the model does not hold (a bounded-out
	// service).
	g.Edges = slices.DeleteFunc(g.Edges, func(e graphEdge) bool {
		_, from := index[e.From]
		_, to := index[e.To]
		return !from || !to
	})
	out := map[string][]string{}
	in := map[string][]string{}
	for _, e := range g.Edges {
		out[e.From] = append(out[e.From], e.To)
		in[e.To] = append(in[e.To], e.From)
	}
	// Columns: the longest path from a node without callers, relaxed at
	// most once per node so that a cycle cannot loop.
	col := map[string]int{}
	for range g.Nodes {
		changed := false
		for _, e := range g.Edges {
			if c := col[e.From] + 1; c > col[e.To] && c < len(g.Nodes) {
				col[e.To] = c
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	// Downstream of each exposed service, and upstream of each sensitive
	// store: the calls between the two are the exposed paths.
	reach := func(from string, next map[string][]string) map[string]bool {
		seen := map[string]bool{from: true}
		queue := []string{from}
		for len(queue) > 0 {
			n := queue[0]
			queue = queue[1:]
			for _, m := range next[n] {
				if !seen[m] {
					seen[m] = true
					queue = append(queue, m)
				}
			}
		}
		return seen
	}
	fromExposed, toSensitive := map[string]bool{}, map[string]bool{}
	for i, n := range g.Nodes {
		if n.Exposure == assess.Exposed {
			for m := range reach(n.ID, out) {
				fromExposed[m] = true
				if m != n.ID {
					j := index[m]
					g.Nodes[j].Downstream = append(g.Nodes[j].Downstream, n.ID)
				}
			}
		}
		if n.Sensitive {
			for m := range reach(n.ID, in) {
				toSensitive[m] = true
			}
		}
		g.Nodes[i].Column = col[n.ID]
	}
	for i, e := range g.Edges {
		g.Edges[i].Exposed = fromExposed[e.From] && toSensitive[e.To]
	}
	// Rows: within a column by the mean row of the callers (fewer
	// crossings), then by name.
	columns := map[int][]int{}
	maxCol := 0
	for i, n := range g.Nodes {
		columns[n.Column] = append(columns[n.Column], i)
		maxCol = max(maxCol, n.Column)
	}
	rowOf := map[string]float64{}
	rows := 0
	for c := 0; c <= maxCol; c++ {
		idx := columns[c]
		key := func(i int) float64 {
			callers := in[g.Nodes[i].ID]
			if len(callers) == 0 {
				return 0
			}
			var sum float64
			for _, from := range callers {
				sum += rowOf[from]
			}
			return sum / float64(len(callers))
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			return cmp.Or(cmp.Compare(key(a), key(b)), cmp.Compare(g.Nodes[a].ID, g.Nodes[b].ID))
		})
		for r, i := range idx {
			rowOf[g.Nodes[i].ID] = float64(r)
			g.Nodes[i].X = margin + float64(c)*(nodeWidth+colGap)
			g.Nodes[i].Y = margin + float64(r)*(nodeHeight+rowGap)
		}
		rows = max(rows, len(idx))
	}
	g.Width = 2*margin + float64(maxCol+1)*nodeWidth + float64(maxCol)*colGap
	g.Height = 2*margin + float64(rows)*nodeHeight + float64(max(rows-1, 0))*rowGap
	// Nodes of each column, for routing calls that skip columns.
	colNodes := map[int][]graphNode{}
	for _, n := range g.Nodes {
		colNodes[n.Column] = append(colNodes[n.Column], n)
	}
	for i, e := range g.Edges {
		a, b := g.Nodes[index[e.From]], g.Nodes[index[e.To]]
		if b.Column <= a.Column {
			// A call back to an earlier column: around the bottom.
			x1, y1 := a.X+nodeWidth/2, a.Y+nodeHeight
			x2, y2 := b.X+nodeWidth/2, b.Y+nodeHeight
			low := max(y1, y2) + rowGap
			g.Edges[i].Path = fmt.Sprintf("M%.1f %.1f C%.1f %.1f %.1f %.1f %.1f %.1f", x1, y1, x1, low, x2, low, x2, y2)
			g.Edges[i].LabelX, g.Edges[i].LabelY, g.Edges[i].LabelAnchor = (x1+x2)/2, low-4, "middle"
			continue
		}
		// From the right of a to the left of b; through each column in
		// between along the gap between its nodes nearest the way.
		type point struct{ x, y float64 }
		pts := []point{{a.X + nodeWidth, a.Y + nodeHeight/2}}
		end := point{b.X, b.Y + nodeHeight/2}
		for c := a.Column + 1; c < b.Column; c++ {
			x := margin + float64(c)*(nodeWidth+colGap)
			want := pts[len(pts)-1].y + (end.y-pts[len(pts)-1].y)/float64(b.Column-c+1)
			y := gapNear(colNodes[c], want)
			pts = append(pts, point{x - 8, y}, point{x + nodeWidth + 8, y})
		}
		pts = append(pts, end)
		var path strings.Builder
		fmt.Fprintf(&path, "M%.1f %.1f", pts[0].x, pts[0].y)
		for j := 1; j < len(pts); j++ {
			p, q := pts[j-1], pts[j]
			if j%2 == 0 {
				// Along a gap.
				fmt.Fprintf(&path, " L%.1f %.1f", q.x, q.y)
				continue
			}
			mx := (p.x + q.x) / 2
			fmt.Fprintf(&path, " C%.1f %.1f %.1f %.1f %.1f %.1f", mx, p.y, mx, q.y, q.x, q.y)
		}
		g.Edges[i].Path = path.String()
		// The label goes at the end of the call that no other call
		// shares, so that labels of calls that fan in or out do not
		// overlap; else on the first curve.
		switch last := pts[len(pts)-1]; {
		case len(in[e.To]) == 1:
			g.Edges[i].LabelX, g.Edges[i].LabelY, g.Edges[i].LabelAnchor = last.x-12, last.y-6, "end"
		case len(out[e.From]) == 1:
			g.Edges[i].LabelX, g.Edges[i].LabelY, g.Edges[i].LabelAnchor = pts[0].x+10, pts[0].y-6, "start"
		default:
			g.Edges[i].LabelX, g.Edges[i].LabelY, g.Edges[i].LabelAnchor = (pts[0].x+pts[1].x)/2, (pts[0].y+pts[1].y)/2-4, "middle"
		}
	}
	slices.SortStableFunc(g.Edges, func(a, b graphEdge) int { return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To)) })
	return g
}

// gapNear is the y of the gap between nodes of a column (or above or
// below them all) nearest y.
func gapNear(nodes []graphNode, y float64) float64 {
	gaps := []float64{margin / 2}
	for _, n := range nodes {
		gaps = append(gaps, n.Y+nodeHeight+rowGap/2)
	}
	best := gaps[0]
	for _, g := range gaps {
		if math.Abs(g-y) < math.Abs(best-y) {
			best = g
		}
	}
	return best
}

// rate is calls per second over a span of time, 0 for less than a
// second.
func rate(calls int64, seconds float64) float64 {
	if seconds < 1 {
		return 0
	}
	return float64(calls) / seconds
}
