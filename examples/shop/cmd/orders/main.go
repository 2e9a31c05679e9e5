// Command orders is the shop's internal order service (see README.md).
package main

import (
	"context"
	"log/slog"
	"net/http"

	"example.com/shop/internal/orders"
	"example.com/shop/internal/service"
	"example.com/shop/internal/store"
)

func main() {
	service.Main("orders", service.Env("SHOP_ADDR", "127.0.0.1:8082"), func(ctx context.Context, logger *slog.Logger) (http.Handler, func(context.Context) error, error) {
		db, err := store.Open(ctx, service.Env("SHOP_DB", "shop.db"))
		if err != nil {
			return nil, nil, err
		}
		if err := db.Seed(ctx, 400, 2000); err != nil {
			db.Close()
			return nil, nil, err
		}
		pay, err := orders.NewPayments(orders.PaymentsConfig{
			URL:      service.Env("SHOP_PAYMENTS_URL", "https://payments.example.com"),
			DialAddr: service.Env("SHOP_PAYMENTS_DIAL", ""),
			CAFile:   service.Env("SHOP_PAYMENTS_CA", ""),
		})
		if err != nil {
			db.Close()
			return nil, nil, err
		}
		// The job only closes the database once the service stops.
		closeDB := func(ctx context.Context) error {
			<-ctx.Done()
			return db.Close()
		}
		return orders.New(db, pay, logger).Handler(), closeDB, nil
	})
}
