// Package orders is the orders service: an internal HTTP API that only the
// gateway calls. It writes customers (PII) and orders to the SQLite database
// and charges cards through the external payment provider
// https://payments.example.com.
//
// Planted vulnerable code: github.com/gorilla/schema (GO-2024-2958, in its
// Decoder) is imported for refunds, which use only its Encoder, on a route
// the recorded traffic never calls: imported, vulnerable symbols not called,
// never executed.
package orders

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gorilla/schema"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"example.com/shop/internal/store"
)

// Server serves the orders API.
type Server struct {
	db       *store.DB
	payments *Payments
	logger   *slog.Logger
}

// New returns an orders server.
func New(db *store.DB, payments *Payments, logger *slog.Logger) *Server {
	return &Server{db: db, payments: payments, logger: logger}
}

// Handler returns the orders routes, each in its own otelhttp SERVER span.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, otelhttp.NewHandler(h, pattern))
	}
	route("POST /orders", s.create)
	route("POST /orders/{id}/refund", s.refund)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return mux
}

// Order is an order as the gateway sends it.
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

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var o Order
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&o); err != nil {
		http.Error(w, "bad order: "+err.Error(), http.StatusBadRequest)
		return
	}
	total := 0
	for _, it := range o.Items {
		total += it.Quantity * it.PriceCents
	}
	items, err := json.Marshal(o.Items)
	if err != nil {
		s.fail(w, err)
		return
	}

	customerID, err := s.customer(ctx, o)
	if err != nil {
		s.fail(w, err)
		return
	}
	res, err := s.db.Exec(ctx, "INSERT", "orders",
		"INSERT INTO orders (customer_id, items, total_cents, status, created_at) VALUES (?, ?, ?, 'pending', ?)",
		customerID, string(items), total, time.Now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		s.fail(w, err)
		return
	}
	orderID, err := res.LastInsertId()
	if err != nil {
		s.fail(w, err)
		return
	}

	charge, err := s.payments.post(ctx, "/v1/charges", url.Values{
		"amount":               {strconv.Itoa(total)},
		"currency":             {"eur"},
		"source":               {o.CardToken},
		"description":          {fmt.Sprintf("shop order %d", orderID)},
		"metadata[order_id]":   {strconv.FormatInt(orderID, 10)},
		"metadata[customer]":   {strconv.FormatInt(customerID, 10)},
		"statement_descriptor": {"SHOP EXAMPLE"},
	})
	status := "paid"
	if err != nil {
		s.logger.Warn("charge", "order", orderID, "err", err)
		status = "payment_failed"
	}
	if _, err := s.db.Exec(ctx, "UPDATE", "orders",
		"UPDATE orders SET status = ?, payment_ref = ? WHERE id = ?", status, charge.ID, orderID); err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if status != "paid" {
		w.WriteHeader(http.StatusPaymentRequired)
	}
	if err := json.NewEncoder(w).Encode(map[string]any{"order_id": orderID, "status": status, "total_cents": total}); err != nil {
		s.logger.Warn("write response", "err", err)
	}
}

// customer returns the id of the order's customer, creating the customer on
// first purchase.
func (s *Server) customer(ctx context.Context, o Order) (int64, error) {
	var id int64
	err := s.db.QueryRow(ctx, "SELECT", "customers", "SELECT id FROM customers WHERE email = ?", []any{o.Customer.Email}, &id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	res, err := s.db.Exec(ctx, "INSERT", "customers",
		"INSERT INTO customers (name, email, address, phone) VALUES (?, ?, ?, ?)",
		o.Customer.Name, o.Customer.Email, o.Customer.Address, o.Customer.Phone)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// Refund is the provider's refund request, encoded as a form.
type Refund struct {
	Charge string `schema:"charge"`
	Amount int    `schema:"amount"`
	Reason string `schema:"reason"`
}

// refund refunds a paid order in full. Support staff trigger it by hand; the
// recorded traffic never does.
func (s *Server) refund(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "bad order id", http.StatusBadRequest)
		return
	}
	var ref string
	var total int
	if err := s.db.QueryRow(ctx, "SELECT", "orders", "SELECT payment_ref, total_cents FROM orders WHERE id = ? AND status = 'paid'", []any{id}, &ref, &total); err != nil {
		http.Error(w, "no paid order "+strconv.FormatInt(id, 10), http.StatusNotFound)
		return
	}
	form := url.Values{}
	if err := schema.NewEncoder().Encode(Refund{Charge: ref, Amount: total, Reason: "requested_by_customer"}, form); err != nil {
		s.fail(w, err)
		return
	}
	res, err := s.payments.post(ctx, "/v1/refunds", form)
	if err != nil {
		s.fail(w, err)
		return
	}
	if _, err := s.db.Exec(ctx, "UPDATE", "orders", "UPDATE orders SET status = 'refunded' WHERE id = ?", id); err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(res); err != nil {
		s.logger.Warn("write response", "err", err)
	}
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	s.logger.Error("request", "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}
