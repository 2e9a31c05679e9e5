// Command reporter is the shop's batch job: no inbound traffic, a revenue
// report on a timer (see README.md).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"example.com/shop/internal/reporter"
	"example.com/shop/internal/service"
	"example.com/shop/internal/store"
)

func main() {
	service.Main("reporter", "", func(ctx context.Context, logger *slog.Logger) (http.Handler, func(context.Context) error, error) {
		every, err := time.ParseDuration(service.Env("SHOP_REPORT_EVERY", "1s"))
		if err != nil || every <= 0 {
			return nil, nil, fmt.Errorf("SHOP_REPORT_EVERY=%q: not a positive duration", service.Env("SHOP_REPORT_EVERY", ""))
		}
		db, err := store.Open(ctx, service.Env("SHOP_DB", "shop.db"))
		if err != nil {
			return nil, nil, err
		}
		rep := reporter.New(db, every, logger)
		return nil, func(ctx context.Context) error {
			defer db.Close()
			return rep.Run(ctx)
		}, nil
	})
}
