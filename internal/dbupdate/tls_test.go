package dbupdate

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/evidentsec/evident/internal/tlsconfig"
	"github.com/evidentsec/evident/internal/tlsconfig/tlstest"
)

// TestUpdateFromMirrorWithPrivateCA downloads from an HTTPS mirror whose
// certificate a private CA signs: refused with the system's roots, as a
// TLS error that is not retried, and downloaded with the CA's file.
func TestUpdateFromMirrorWithPrivateCA(t *testing.T) {
	ca := tlstest.NewCA(t, "private ca")
	s := &gcsServer{objects: make(map[string]*object)}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "127.0.0.1").TLS(t)}}
	s.StartTLS()
	t.Cleanup(s.Close)
	s.put("/osv-vulnerabilities/Go/all.zip", &object{body: osvArchive(t)})

	cfg := testConfig(t, s, false, "Go")
	res, err := Update(context.Background(), cfg)
	if err == nil || len(res.Files) != 1 || res.Files[0].Status != StatusFailed {
		t.Fatalf("with the system's roots: %+v, %v; want the file failed", res, err)
	}
	if n := len(s.requestsFor("/osv-vulnerabilities/Go/all.zip")); n != 0 {
		t.Errorf("%d requests reached the server through a failed handshake", n)
	}

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	tlstest.WriteFile(t, caFile, ca.PEM)
	tc, err := tlsconfig.NewClient(tlsconfig.ClientConfig{CAFile: caFile}, "db update", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTPClient = NewHTTPClient(tc)
	t.Cleanup(cfg.HTTPClient.CloseIdleConnections)
	res, err = Update(context.Background(), cfg)
	if err != nil || res.Files[0].Status != StatusDownloaded {
		t.Fatalf("with the private CA: %+v, %v; want downloaded", res, err)
	}
}
