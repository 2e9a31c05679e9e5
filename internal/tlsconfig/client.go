package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
)

// NewClient returns the TLS configuration of an outbound client called
// name, or nil for the zero ClientConfig (Go's defaults: the system's
// roots). The CA file is read now; the client certificate when it
// changes, at most every 30 s, on a handshake.
func NewClient(c ClientConfig, name string, logger *slog.Logger) (*tls.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c == (ClientConfig{}) {
		return nil, nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tc := &tls.Config{ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.InsecureSkipVerify {
		logger.Warn("tls: the server's certificate is not verified (insecure_skip_verify): anyone on the path can read and change this traffic", "client", name)
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls of %s: read ca_file: %w", name, err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls of %s: ca_file %s: no PEM certificate in it", name, c.CAFile)
		}
	}
	if c.CertFile != "" {
		r, err := clientCert(c, name, logger)
		if err != nil {
			return nil, fmt.Errorf("tls of %s: %w", name, err)
		}
		// Sent whatever CAs the server names: a server that asks for a
		// certificate gets the one configured, and decides.
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return r.get(), nil
		}
	}
	return tc, nil
}

// clientCert loads the client certificate of c and reloads it when its
// files change. At a reload, as for a server's, a certificate that has
// expired is kept out like a file that does not load: every server that
// verifies it would refuse the handshakes the one in use still passes.
func clientCert(c ClientConfig, name string, logger *slog.Logger) (*reloader[*tls.Certificate], error) {
	var r *reloader[*tls.Certificate]
	build := func(contents [][]byte) (*tls.Certificate, error) {
		cert, err := tls.X509KeyPair(contents[0], contents[1])
		if err != nil {
			return nil, fmt.Errorf("load %s and %s: %w", c.CertFile, c.KeyFile, err)
		}
		if r != nil {
			if err := notExpired(c.CertFile, cert.Leaf, r.now()); err != nil {
				return nil, err
			}
		}
		return &cert, nil
	}
	reloaded := func(cert *tls.Certificate, err error) {
		if err != nil {
			logger.Error("tls client certificate not reloaded, the previous one stays in use", "client", name, "err", err)
			return
		}
		logger.Info("tls client certificate reloaded", "client", name, "serial", cert.Leaf.SerialNumber.String(), "not_after", cert.Leaf.NotAfter)
	}
	r, err := newReloader([]string{c.CertFile, c.KeyFile}, clientReloadInterval, build, reloaded)
	if err != nil {
		return nil, err
	}
	// Sent as a listener's is served (NewServer), and said so.
	if leaf := r.get().Leaf; Expired(leaf, r.now()) {
		logger.Warn("tls client certificate has expired: every server that verifies it refuses the handshake",
			"client", name, "cert_file", c.CertFile, "not_after", leaf.NotAfter)
	}
	return r, nil
}

// NewTransport returns a copy of http.DefaultTransport (proxy from the
// environment, its timeouts, HTTP/2) that uses c, for the HTTP client
// called name.
func NewTransport(c ClientConfig, name string, logger *slog.Logger) (*http.Transport, error) {
	tc, err := NewClient(c, name, logger)
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tc
	return t, nil
}
