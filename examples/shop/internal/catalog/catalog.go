// Package catalog is the catalog service: an internal HTTP API that only the
// gateway calls. It keeps products in memory (it reaches no data store) and
// parses each product's merchant-supplied HTML description with
// golang.org/x/net/html on every read, to turn it into plain text, headings
// and links. That parser is the planted hot path: at the pinned
// golang.org/x/net version, html.Parse is vulnerable (GO-2026-5025,
// GO-2026-5027, GO-2026-5028, GO-2026-5029, GO-2026-5030).
package catalog

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"golang.org/x/net/html"
)

// Summary is a product as listed or found by search.
type Summary struct {
	ID          int    `json:"id"`
	Name        string `json:"name"`
	PriceCents  int    `json:"price_cents"`
	Summary     string `json:"summary"`
	Description string `json:"description_html,omitempty"`
}

// Detail is one product with its parsed description.
type Detail struct {
	Summary
	Text     string    `json:"text"`
	Headings []string  `json:"headings"`
	Links    []string  `json:"links"`
	Related  []Summary `json:"related"`
}

// Server serves the catalog API.
type Server struct {
	products []Product
	logger   *slog.Logger
}

// New returns a catalog server over products.
func New(products []Product, logger *slog.Logger) *Server {
	return &Server{products: products, logger: logger}
}

// Handler returns the catalog's routes, each in its own otelhttp SERVER span
// named "<METHOD> <route>", so that the span_name profiling label names the
// endpoint. /healthz is not traced.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, otelhttp.NewHandler(h, pattern))
	}
	route("GET /products", s.list)
	route("GET /products/{id}", s.get)
	route("GET /search", s.search)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return mux
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	out := make([]Summary, 0, len(s.products))
	for _, p := range s.products {
		doc, err := parse(p)
		if err != nil {
			s.fail(w, err)
			return
		}
		out = append(out, summarize(p, doc))
	}
	s.reply(w, out)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 1 || id > len(s.products) {
		http.Error(w, "no such product", http.StatusNotFound)
		return
	}
	p := s.products[id-1]
	doc, err := parse(p)
	if err != nil {
		s.fail(w, err)
		return
	}
	d := Detail{Summary: summarize(p, doc), Text: doc.text}
	d.Headings, d.Links = doc.headings, doc.links
	// Related products: the next few in the catalog, each summarized from
	// its own description.
	for k := 1; k <= 6; k++ {
		q := s.products[(id-1+k)%len(s.products)]
		qdoc, err := parse(q)
		if err != nil {
			s.fail(w, err)
			return
		}
		d.Related = append(d.Related, summarize(q, qdoc))
	}
	s.reply(w, d)
}

// search returns up to 24 products whose name or description text contains
// a term of q. Matches carry their raw description: the gateway ranks them
// and builds its own snippets from it.
func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	terms := strings.Fields(strings.ToLower(r.URL.Query().Get("q")))
	out := []Summary{}
	for _, p := range s.products {
		doc, err := parse(p)
		if err != nil {
			s.fail(w, err)
			return
		}
		hay := strings.ToLower(p.Name + " " + doc.text)
		if !containsAny(hay, terms) {
			continue
		}
		sum := summarize(p, doc)
		sum.Description = p.Description
		out = append(out, sum)
		if len(out) == 24 {
			break
		}
	}
	s.reply(w, out)
}

func containsAny(hay string, terms []string) bool {
	for _, t := range terms {
		if strings.Contains(hay, t) {
			return true
		}
	}
	return false
}

type parsed struct {
	text     string
	headings []string
	links    []string
}

// parse turns a product's HTML description into text, headings and links.
func parse(p Product) (parsed, error) {
	root, err := html.Parse(strings.NewReader(p.Description))
	if err != nil {
		return parsed{}, fmt.Errorf("parse description of product %d: %w", p.ID, err)
	}
	var out parsed
	var text strings.Builder
	for n := range root.Descendants() {
		switch n.Type {
		case html.TextNode:
			if t := strings.TrimSpace(n.Data); t != "" {
				text.WriteString(t)
				text.WriteByte(' ')
			}
		case html.ElementNode:
			switch n.Data {
			case "h2", "h3":
				if n.FirstChild != nil {
					out.headings = append(out.headings, n.FirstChild.Data)
				}
			case "a":
				for _, a := range n.Attr {
					if a.Key == "href" {
						out.links = append(out.links, a.Val)
					}
				}
			}
		}
	}
	out.text = text.String()
	return out, nil
}

func summarize(p Product, doc parsed) Summary {
	sum := []rune(doc.text)
	if len(sum) > 240 {
		sum = sum[:240]
	}
	return Summary{ID: p.ID, Name: p.Name, PriceCents: p.PriceCents, Summary: string(sum)}
}

func (s *Server) reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.logger.Warn("write response", "err", err)
	}
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	s.logger.Error("request", "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}
