package orders

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// PaymentsConfig says how to reach the external payment provider.
type PaymentsConfig struct {
	// URL is the provider's base URL, https://payments.example.com.
	URL string
	// DialAddr, when set, is where connections to the provider's host
	// really go. Recording points it at a loopback sandbox, so that the
	// request (and its CLIENT span's server.address) still names the real
	// host while no packet leaves the machine.
	DialAddr string
	// CAFile, when set, is a PEM file of extra roots to trust (the
	// sandbox's self-signed certificate).
	CAFile string
}

// Payments is a client of the payment provider's charges API.
type Payments struct {
	base   *url.URL
	client *http.Client
}

// NewPayments returns a payments client with an otelhttp transport.
func NewPayments(cfg PaymentsConfig) (*Payments, error) {
	base, err := url.Parse(cfg.URL)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("payments URL %q: not an absolute URL", cfg.URL)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read payments CA %s: %w", cfg.CAFile, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("read payments CA %s: no PEM certificate", cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if cfg.DialAddr != "" {
		host := base.Hostname()
		var d net.Dialer
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if h, _, err := net.SplitHostPort(addr); err == nil && h == host {
				addr = cfg.DialAddr
			}
			return d.DialContext(ctx, network, addr)
		}
	}
	return &Payments{base: base, client: &http.Client{Transport: otelhttp.NewTransport(tr)}}, nil
}

// Result is the provider's answer to a charge or a refund.
type Result struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// post sends a form to the provider's path and decodes its answer.
func (p *Payments) post(ctx context.Context, path string, form url.Values) (Result, error) {
	u := p.base.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.client.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("call %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Result{}, fmt.Errorf("call %s: status %s", u, resp.Status)
	}
	var res Result
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return Result{}, fmt.Errorf("decode answer of %s: %w", u, err)
	}
	return res, nil
}
