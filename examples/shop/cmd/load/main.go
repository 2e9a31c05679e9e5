// Command load drives a bounded, deterministic mix of public traffic at the
// gateway on loopback and stops by itself: -n requests in all, -c at a time,
// started at no more than -rate a second.
// It never calls POST /admin/import. Each request carries an X-Forwarded-For
// address from 198.51.100.0/24 (TEST-NET-2, reserved for documentation), as an
// ingress proxy in front of a public gateway would add; no traffic goes there.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// queries are what shoppers type: plain ASCII, which the gateway's folding
// matches against accented product text ("creme" finds "Crème").
var queries = []string{"creme stoneware kettle glass", "linen apron walnut", "cast iron skillet linen", "stoneware teapot steel", "cafe walnut glass cups", "glass carafe stoneware", "pinata steel pepper mill walnut", "jalapeno glass bowl linen", "naive steel knife iron", "uber walnut board stoneware"}

func main() {
	gateway := flag.String("gateway", "http://127.0.0.1:8080", "gateway base URL (loopback)")
	n := flag.Int("n", 240, "number of requests to send")
	c := flag.Int("c", 2, "requests in flight at once")
	rate := flag.Float64("rate", 12, "requests started per second, at most")
	wait := flag.Duration("wait", 20*time.Second, "how long to wait for the gateway's /healthz")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *gateway, *n, *c, *rate, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, base string, n, c int, rate float64, wait time.Duration) error {
	if n < 1 || c < 1 || rate <= 0 {
		return errors.New("-n, -c and -rate must be positive")
	}
	client := &http.Client{Timeout: 30 * time.Second}
	if err := waitReady(ctx, client, base+"/healthz", wait); err != nil {
		return err
	}
	var next, failed atomic.Int64
	counts := make([]atomic.Int64, 4)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	start := time.Now()
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				kind, req := request(ctx, base, i)
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", 1+i%200))
				req.Header.Set("User-Agent", "shop-load/1.0")
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 400 {
					failed.Add(1)
				}
				counts[kind].Add(1)
			}
		})
	}
	wg.Wait()
	fmt.Printf("load: %d requests in %s (GET /products %d, GET /products/{id} %d, GET /search %d, POST /orders %d), %d failed\n",
		n, time.Since(start).Round(time.Millisecond), counts[0].Load(), counts[1].Load(), counts[2].Load(), counts[3].Load(), failed.Load())
	if failed.Load() > 0 {
		return fmt.Errorf("%d of %d requests failed", failed.Load(), n)
	}
	return ctx.Err()
}

// request builds the i-th request of the mix: 1 in 8 lists products, 2 in 8
// read one product, 3 in 8 search, 2 in 8 order.
func request(ctx context.Context, base string, i int) (int, *http.Request) {
	var req *http.Request
	kind := 0
	switch i % 8 {
	case 0:
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+"/products", nil)
	case 1, 4:
		kind = 1
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/products/%d", base, 1+(i*7)%48), nil)
	case 2, 5, 7:
		kind = 2
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+"/search?q="+url.QueryEscape(queries[i%len(queries)]), nil)
	default: // 3, 6
		kind = 3
		body, _ := json.Marshal(order(i))
		req, _ = http.NewRequestWithContext(ctx, http.MethodPost, base+"/orders", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept-Language", "de-DE,de;q=0.9,en;q=0.8")
	return kind, req
}

func order(i int) map[string]any {
	return map[string]any{
		"customer": map[string]string{
			"name":    fmt.Sprintf("Kundin %d Müller", i),
			"email":   fmt.Sprintf("buyer%03d@mail.example", i%60),
			"address": "Hauptstraße 5, 80331 München",
			"phone":   fmt.Sprintf("+49 89 %07d", 2000000+i),
		},
		"items": []map[string]any{
			{"product_id": 1 + i%48, "name": "Crème espresso cups", "quantity": 1 + i%3, "price_cents": 2233},
			{"product_id": 1 + (i*5)%48, "name": "Señorita linen apron", "quantity": 1, "price_cents": 3699},
		},
		"card_token": fmt.Sprintf("tok_visa_%04d", i),
	}
}

func waitReady(ctx context.Context, client *http.Client, u string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 300 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s", u, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
