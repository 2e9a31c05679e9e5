package waf

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/tlsconfig/tlstest"
)

// TestProxyTLS serves the proxy over TLS and forwards to an https
// upstream whose certificate a private CA signs.
func TestProxyTLS(t *testing.T) {
	dir := t.TempDir()
	proxyCA, upstreamCA := tlstest.NewCA(t, "proxy ca"), tlstest.NewCA(t, "upstream ca")
	upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream "+r.URL.RequestURI())
	}))
	upstream.TLS = &tls.Config{Certificates: []tls.Certificate{upstreamCA.Issue(t, "127.0.0.1").TLS(t)}}
	upstream.StartTLS()
	defer upstream.Close()

	rulesDir, _ := shopRules(t)
	rules, err := LoadRules(rulesDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultProxyConfig()
	cfg.Upstream, cfg.Listen, cfg.Directives = upstream.URL, "127.0.0.1:0", rules
	cfg.Limits.TLS.CertFile, cfg.Limits.TLS.KeyFile = proxyCA.Issue(t, "127.0.0.1").Write(t, dir, "proxy")
	cfg.UpstreamTLS.CAFile = filepath.Join(dir, "upstream-ca.pem")
	tlstest.WriteFile(t, cfg.UpstreamTLS.CAFile, upstreamCA.PEM)
	reg := prometheus.NewRegistry()
	p, err := NewProxy(cfg, slog.New(slog.DiscardHandler), reg, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: proxyCA.Pool()}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for target, want := range map[string]int{"/search?q=shoes": http.StatusOK, "/search?q=%ff%fe": http.StatusForbidden} {
		resp, err := client.Get("https://" + p.Addr() + target)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: status %d (%s), want %d", target, resp.StatusCode, body, want)
		}
	}
}
