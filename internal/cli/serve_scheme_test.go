package cli

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/evidentsec/evident/internal/httpapi"
	"github.com/evidentsec/evident/internal/listener"
	"github.com/evidentsec/evident/internal/tlsconfig"
	"github.com/evidentsec/evident/internal/tlsconfig/tlstest"
)

// TestDefaultLinkPrefix: without link_prefix, alerts link to the API's
// configured endpoint in the scheme it serves, https with a certificate.
func TestDefaultLinkPrefix(t *testing.T) {
	on := tlsconfig.ServerConfig{CertFile: "tls.crt", KeyFile: "tls.key"}
	tests := []struct {
		name string
		api  httpapi.Config
		want string
	}{
		{"plain", httpapi.Config{Endpoint: "127.0.0.1:8080"}, "http://127.0.0.1:8080/api/v1"},
		{"tls", httpapi.Config{Endpoint: "evident.example.com:8443", Config: listener.Config{TLS: on}}, "https://evident.example.com:8443/api/v1"},
		{"port chosen at listen", httpapi.Config{Endpoint: "127.0.0.1:0", Config: listener.Config{TLS: on}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := defaultLinkPrefix(tt.api); got != tt.want {
				t.Errorf("defaultLinkPrefix(%s) = %q, want %q", tt.api.Endpoint, got, tt.want)
			}
		})
	}
}

// TestServePrintsSchemes: the addresses serve prints at start, and the
// API URL, name https for the listeners that serve TLS.
func TestServePrintsSchemes(t *testing.T) {
	ca := tlstest.NewCA(t, "evident test CA")
	cert, key := ca.Issue(t, "localhost", "127.0.0.1").Write(t, t.TempDir(), "srv")
	on := tlsconfig.DefaultServerConfig()
	on.CertFile, on.KeyFile = cert, key
	tests := []struct {
		name                       string
		api, otlp, pyro            bool
		wantAPI, wantOTLP, wantPyr string
	}{
		{"plain", false, false, false, "http", "http", "http"},
		{"every listener tls", true, true, true, "https", "https", "https"},
		{"api only", true, false, false, "https", "http", "http"},
		{"receivers only", false, true, true, "http", "https", "https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := serveTestConfig(t)
			if tt.api {
				cfg.Serve.API.TLS = on
			}
			if tt.otlp {
				cfg.Serve.OTLP.TLS = on
			}
			if tt.pyro {
				cfg.Serve.Pyroscope.TLS = on
			}
			srv := startTestServerConfig(t, t.TempDir(), cfg, serveFlags{vulns: []string{"testdata/serve/osv"}})
			defer srv.Shutdown(t.Context())
			var out bytes.Buffer
			srv.printAddrs(&out)
			for _, w := range []struct{ line, scheme string }{
				{"UI", tt.wantAPI},
				{"API", tt.wantAPI},
				{"OTLP/HTTP", tt.wantOTLP},
				{"Pyroscope", tt.wantPyr},
			} {
				re := regexp.MustCompile(`(?m)^evident serve: ` + regexp.QuoteMeta(w.line) + ` ` + w.scheme + `://127\.0\.0\.1:\d+`)
				if !re.Match(out.Bytes()) {
					t.Errorf("%s not in %s:\n%s", w.line, w.scheme, out.String())
				}
			}
			if got, want := srv.apiURL()[:len(tt.wantAPI)+3], tt.wantAPI+"://"; got != want {
				t.Errorf("apiURL() = %s, want %s...", srv.apiURL(), want)
			}
		})
	}
}
