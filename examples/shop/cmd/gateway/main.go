// Command gateway is the shop's public HTTP entry point (see README.md for its
// environment).
package main

import (
	"context"
	"log/slog"
	"net/http"

	"example.com/shop/internal/gateway"
	"example.com/shop/internal/service"
)

func main() {
	service.Main("gateway", service.Env("SHOP_ADDR", "127.0.0.1:8080"), func(_ context.Context, logger *slog.Logger) (http.Handler, func(context.Context) error, error) {
		gw := gateway.New(gateway.Config{
			CatalogURL: service.Env("SHOP_CATALOG_URL", "http://127.0.0.1:8081"),
			OrdersURL:  service.Env("SHOP_ORDERS_URL", "http://127.0.0.1:8082"),
			AdminToken: service.Env("SHOP_ADMIN_TOKEN", ""),
		}, logger)
		return gw.Handler(), nil, nil
	})
}
