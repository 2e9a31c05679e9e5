// Package gateway is the shop's public HTTP entry point. It routes product
// reads to the catalog service and orders to the orders service, and answers
// searches itself on top of the catalog's matches.
//
// Planted vulnerable code, by how it is reached:
//   - golang.org/x/text/unicode/norm (GO-2026-5970) runs on every search:
//     the query and every sentence of every candidate are folded (NFKD,
//     marks removed, NFC) so that "creme" finds "Crème". Executed on
//     GET /search.
//   - golang.org/x/net/html is used only through its Tokenizer, to strip tags
//     from search snippets; the vulnerable parser (html.Parse, GO-2026-5025
//     and siblings) is never called here. The package runs, the vulnerable
//     symbols do not: "loaded".
//   - gopkg.in/yaml.v2 (GO-2020-0036) decodes the body of POST /admin/import,
//     an operator route that real traffic never calls: statically reachable,
//     never executed.
package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"golang.org/x/net/html"
	"gopkg.in/yaml.v2"

	"example.com/shop/internal/fold"
)

// Config says where the gateway's backends are.
type Config struct {
	CatalogURL string
	OrdersURL  string
	// AdminToken guards POST /admin/import; empty disables the route.
	AdminToken string
}

// Server serves the public API.
type Server struct {
	cfg    Config
	client *http.Client
	logger *slog.Logger
}

// New returns a gateway that calls its backends through an otelhttp client,
// which opens a CLIENT span per call and sends traceparent downstream.
func New(cfg Config, logger *slog.Logger) *Server {
	return &Server{
		cfg:    cfg,
		client: &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport)},
		logger: logger,
	}
}

// Handler returns the public routes, each in its own otelhttp SERVER span
// named "<METHOD> <route>". /healthz is not traced.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, otelhttp.NewHandler(h, pattern))
	}
	route("GET /products", s.proxy(func(r *http.Request) string { return "/products" }))
	route("GET /products/{id}", s.proxy(func(r *http.Request) string { return "/products/" + url.PathEscape(r.PathValue("id")) }))
	route("GET /search", s.search)
	route("POST /orders", s.order)
	route("POST /admin/import", s.adminImport)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return mux
}

// proxy forwards a read to the catalog.
func (s *Server) proxy(path func(*http.Request) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, s.cfg.CatalogURL+path(r), nil)
		if err != nil {
			s.fail(w, err)
			return
		}
		s.forward(w, req)
	}
}

func (s *Server) forward(w http.ResponseWriter, req *http.Request) {
	resp, err := s.client.Do(req)
	if err != nil {
		s.fail(w, fmt.Errorf("call %s: %w", req.URL, err))
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		s.logger.Warn("copy response", "url", req.URL.String(), "err", err)
	}
}

type match struct {
	ID          int    `json:"id"`
	Name        string `json:"name"`
	PriceCents  int    `json:"price_cents"`
	Description string `json:"description_html"`
}

// Hit is one ranked search result.
type Hit struct {
	ID         int    `json:"id"`
	Name       string `json:"name"`
	PriceCents int    `json:"price_cents"`
	Score      int    `json:"score"`
	Snippet    string `json:"snippet"`
}

// search asks the catalog for matches, then ranks them by how often the
// folded query terms occur in the folded name and description text.
func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, s.cfg.CatalogURL+"/search?q="+url.QueryEscape(q), nil)
	if err != nil {
		s.fail(w, err)
		return
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.fail(w, fmt.Errorf("call catalog search: %w", err))
		return
	}
	defer resp.Body.Close()
	var matches []match
	if err := json.NewDecoder(resp.Body).Decode(&matches); err != nil {
		s.fail(w, fmt.Errorf("decode catalog search response: %w", err))
		return
	}
	terms := strings.Fields(fold.String(q))
	hits := make([]Hit, 0, len(matches))
	for _, m := range matches {
		// Score every sentence of the description on its own: the best
		// one becomes the snippet, the sum ranks the product.
		h := Hit{ID: m.ID, Name: m.Name, PriceCents: m.PriceCents, Score: count(fold.String(m.Name), terms)}
		best := -1
		for _, sentence := range strings.SplitAfter(stripTags(m.Description), ". ") {
			n := count(fold.String(sentence), terms)
			h.Score += n
			if n > best {
				best, h.Snippet = n, strings.TrimSpace(sentence)
			}
		}
		hits = append(hits, h)
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].Score > hits[j].Score })
	s.reply(w, hits)
}

func count(hay string, terms []string) int {
	n := 0
	for _, t := range terms {
		n += strings.Count(hay, t)
	}
	return n
}

// stripTags returns the text of an HTML fragment, using the streaming
// tokenizer rather than the tree parser.
func stripTags(fragment string) string {
	z := html.NewTokenizer(strings.NewReader(fragment))
	var b strings.Builder
	for {
		switch z.Next() {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			b.Write(z.Text())
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			b.WriteByte(' ')
		}
	}
}

// Order is the public order request.
type Order struct {
	Customer struct {
		Name    string `json:"name"`
		Email   string `json:"email"`
		Address string `json:"address"`
		Phone   string `json:"phone"`
	} `json:"customer"`
	Items []struct {
		ProductID  int    `json:"product_id"`
		Name       string `json:"name"`
		Quantity   int    `json:"quantity"`
		PriceCents int    `json:"price_cents"`
	} `json:"items"`
	CardToken string `json:"card_token"`
}

// order validates an order and hands it to the orders service.
func (s *Server) order(w http.ResponseWriter, r *http.Request) {
	var o Order
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		http.Error(w, "bad order: "+err.Error(), http.StatusBadRequest)
		return
	}
	if o.Customer.Email == "" || len(o.Items) == 0 || o.CardToken == "" {
		http.Error(w, "bad order: customer email, items and card_token are required", http.StatusBadRequest)
		return
	}
	body, err := json.Marshal(o)
	if err != nil {
		s.fail(w, err)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, s.cfg.OrdersURL+"/orders", bytes.NewReader(body))
	if err != nil {
		s.fail(w, err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	s.forward(w, req)
}

// ImportedProduct is one entry of an admin catalog import.
type ImportedProduct struct {
	Name        string `yaml:"name"`
	PriceCents  int    `yaml:"price_cents"`
	Description string `yaml:"description"`
}

// adminImport accepts a YAML product list from operators. The load never
// calls it, so the YAML decoder never runs, although it is linked in and
// statically reachable from a public route.
func (s *Server) adminImport(w http.ResponseWriter, r *http.Request) {
	if s.cfg.AdminToken == "" || r.Header.Get("X-Admin-Token") != s.cfg.AdminToken {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var products []ImportedProduct
	if err := yaml.Unmarshal(body, &products); err != nil {
		http.Error(w, "bad import: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.reply(w, map[string]int{"imported": len(products)})
}

func (s *Server) reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.logger.Warn("write response", "err", err)
	}
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	s.logger.Error("request", "err", err)
	http.Error(w, "bad gateway", http.StatusBadGateway)
}
