// Command catalog is the shop's internal product service (see README.md).
package main

import (
	"context"
	"log/slog"
	"net/http"

	"example.com/shop/internal/catalog"
	"example.com/shop/internal/service"
)

func main() {
	service.Main("catalog", service.Env("SHOP_ADDR", "127.0.0.1:8081"), func(_ context.Context, logger *slog.Logger) (http.Handler, func(context.Context) error, error) {
		return catalog.New(catalog.Products(48), logger).Handler(), nil, nil
	})
}
