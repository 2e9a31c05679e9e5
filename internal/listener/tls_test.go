package listener

import (
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidentsec/evident/internal/tlsconfig/tlstest"
)

// TestTLS serves HTTPS with mTLS on a real listener: a client without a
// certificate is refused, one of the client CA is served over HTTP/1.1
// and HTTP/2, and a certificate rewritten in place is served without a
// restart.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA := tlstest.NewCA(t, "server ca"), tlstest.NewCA(t, "client ca")
	c := testConfig()
	c.TLS.CertFile, c.TLS.KeyFile = serverCA.Issue(t, "127.0.0.1").Write(t, dir, "server")
	c.TLS.ClientCAFile = filepath.Join(dir, "client-ca.pem")
	c.TLS.ReloadInterval = 10 * time.Millisecond
	tlstest.WriteFile(t, c.TLS.ClientCAFile, clientCA.PEM)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s := New(Options{Name: "test", Endpoint: "127.0.0.1:0", Config: c, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}), Registerer: prometheus.NewRegistry()})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(t.Context()) })

	client := func(h2 bool, certs ...tls.Certificate) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serverCA.Pool(), Certificates: certs}, ForceAttemptHTTP2: h2}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 5 * time.Second}
	}
	request := func(c *http.Client) (proto, serial string, err error) {
		resp, err := c.Get("https://" + s.Addr() + "/")
		if err != nil {
			return "", "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), resp.TLS.PeerCertificates[0].SerialNumber.String(), err
	}
	if _, _, err := request(client(false)); err == nil {
		t.Error("a client without a certificate was served")
	}
	agent := clientCA.Issue(t, "agent").TLS(t)
	for _, h2 := range []bool{false, true} {
		proto, _, err := request(client(h2, agent))
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]; proto != want {
			t.Errorf("served over %s, want %s", proto, want)
		}
	}
	// Go's server answers plain HTTP on a TLS port with a 400 that says so.
	if code, err := get(s.Addr()); err == nil && code != http.StatusBadRequest {
		t.Errorf("plain HTTP on a TLS listener answered %d, want 400 or a closed connection", code)
	}

	next := serverCA.Issue(t, "127.0.0.1")
	next.Write(t, dir, "server")
	want := next.Cert.SerialNumber.String()
	deadline := time.Now().Add(5 * time.Second)
	for {
		// A new client each time: a kept-alive connection keeps the
		// certificate of its handshake.
		_, serial, err := request(client(false, agent))
		if err != nil {
			t.Fatal(err)
		}
		if serial == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving serial %s after the rewrite, want %s", serial, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
