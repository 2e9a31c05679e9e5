package cli

import (
	"bytes"
	"errors"
	"regexp"
	"testing"

	"github.com/evidentsec/evident/internal/httpapi"
	"github.com/evidentsec/evident/internal/listener"
	"github.com/evidentsec/evident/internal/tlsconfig"
	"github.com/evidentsec/evident/internal/tlsconfig/tlstest"
)

// TestDefaultLinkPrefix: without link_prefix, alerts link to the API's
// configured endpoint in the scheme it serves, https with a certificate;
// an endpoint on every address links to the machine's hostname instead.
func TestDefaultLinkPrefix(t *testing.T) {
	on := tlsconfig.ServerConfig{CertFile: "tls.crt", KeyFile: "tls.key"}
	host := func() (string, error) { return "evident-7.prod", nil }
	noHost := func() (string, error) { return "", errors.New("no hostname") }
	tests := []struct {
		name      string
		api       httpapi.Config
		hostname  func() (string, error)
		want      string
		wantNamed bool
		wantErr   bool
	}{
		{"plain", httpapi.Config{Endpoint: "127.0.0.1:8080"}, host, "http://127.0.0.1:8080/api/v1", false, false},
		{"named host", httpapi.Config{Endpoint: "evident.example.com:8080"}, host, "http://evident.example.com:8080/api/v1", false, false},
		{"tls", httpapi.Config{Endpoint: "evident.example.com:8443", Config: listener.Config{TLS: on}}, host, "https://evident.example.com:8443/api/v1", false, false},
		{"port chosen at listen", httpapi.Config{Endpoint: "127.0.0.1:0", Config: listener.Config{TLS: on}}, host, "", false, false},
		{"0.0.0.0", httpapi.Config{Endpoint: "0.0.0.0:8080"}, host, "http://evident-7.prod:8080/api/v1", true, false},
		{"[::] with tls", httpapi.Config{Endpoint: "[::]:8443", Config: listener.Config{TLS: on}}, host, "https://evident-7.prod:8443/api/v1", true, false},
		{"no host", httpapi.Config{Endpoint: ":8080"}, host, "http://evident-7.prod:8080/api/v1", true, false},
		{"0.0.0.0 without a hostname", httpapi.Config{Endpoint: "0.0.0.0:8080"}, noHost, "http://0.0.0.0:8080/api/v1", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, named, err := defaultLinkPrefix(tt.api, tt.hostname)
			if got != tt.want || named != tt.wantNamed || (err != nil) != tt.wantErr {
				t.Errorf("defaultLinkPrefix(%s) = %q, %v, %v; want %q, %v, error %v", tt.api.Endpoint, got, named, err, tt.want, tt.wantNamed, tt.wantErr)
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
