// Package reporter is the shop's batch job: it has no inbound traffic and, on
// a timer, reads every customer and order from the SQLite database to compute
// revenue per city and per product. Names and places are folded with
// golang.org/x/text/unicode/norm so that "Reykjavík" and "Reykjavik" group
// together: the same vulnerable code as the gateway's search (GO-2026-5970),
// executed here by a service that takes no input.
package reporter

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"example.com/shop/internal/fold"
	"example.com/shop/internal/store"
)

// Reporter computes the revenue report.
type Reporter struct {
	db     *store.DB
	every  time.Duration
	tracer trace.Tracer
	logger *slog.Logger
}

// New returns a reporter that runs every interval.
func New(db *store.DB, every time.Duration, logger *slog.Logger) *Reporter {
	return &Reporter{db: db, every: every, tracer: otel.Tracer("example.com/shop/internal/reporter"), logger: logger}
}

// Run reports every interval until ctx ends; it returns nil then.
func (r *Reporter) Run(ctx context.Context) error {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := r.report(ctx); err != nil && ctx.Err() == nil {
				r.logger.Error("report", "err", err)
			}
		}
	}
}

// Report is one run's result.
type Report struct {
	Orders        int
	Customers     int
	RevenueCents  int
	ByCity        map[string]int
	ByProduct     map[string]int
	TopCustomerID int64
}

// report is one run: a root INTERNAL span (no SERVER span: this service
// takes no input) with one CLIENT span per table read.
func (r *Reporter) report(ctx context.Context) (err error) {
	ctx, span := r.tracer.Start(ctx, "revenue report", trace.WithSpanKind(trace.SpanKindInternal))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()

	cities := map[int64]string{}
	names := map[string]int64{} // folded name → customer, to spot duplicate accounts
	err = r.db.Query(ctx, "SELECT", "customers", "SELECT id, name, address FROM customers", nil, func(rows *sql.Rows) error {
		var id int64
		var name, address string
		if err := rows.Scan(&id, &name, &address); err != nil {
			return err
		}
		cities[id] = city(address)
		names[fold.String(name)] = id
		return nil
	})
	if err != nil {
		return err
	}

	rep := Report{ByCity: map[string]int{}, ByProduct: map[string]int{}}
	perCustomer := map[int64]int{}
	err = r.db.Query(ctx, "SELECT", "orders", "SELECT customer_id, items, total_cents FROM orders WHERE status = 'paid'", nil, func(rows *sql.Rows) error {
		var cid int64
		var items string
		var total int
		if err := rows.Scan(&cid, &items, &total); err != nil {
			return err
		}
		var lines []store.SeedItem
		if err := json.Unmarshal([]byte(items), &lines); err != nil {
			return fmt.Errorf("order items of customer %d: %w", cid, err)
		}
		for _, l := range lines {
			rep.ByProduct[fold.String(l.Name)] += l.Quantity * l.PriceCents
		}
		rep.Orders++
		rep.RevenueCents += total
		rep.ByCity[cities[cid]] += total
		perCustomer[cid] += total
		return nil
	})
	if err != nil {
		return err
	}
	best := 0
	for id, v := range perCustomer {
		if v > best {
			best, rep.TopCustomerID = v, id
		}
	}
	rep.Customers = len(names)
	span.SetAttributes(attribute.Int("shop.report.orders", rep.Orders))
	r.logger.Info("revenue report", "orders", rep.Orders, "distinct_customers", rep.Customers, "revenue_cents", rep.RevenueCents, "cities", len(rep.ByCity), "products", len(rep.ByProduct))
	return nil
}

// city extracts the folded city of an address "street, postcode city".
func city(address string) string {
	i := strings.LastIndexByte(address, ',')
	f := strings.Fields(address[i+1:])
	if len(f) == 0 {
		return ""
	}
	return fold.String(f[len(f)-1])
}
