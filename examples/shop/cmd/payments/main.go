// Command payments is a loopback sandbox of the external payment provider
// https://payments.example.com, for recording and demos only: it stands for a
// third party, so it is not instrumented. It makes a self-signed certificate
// for the provider's host name at start, writes it as PEM to -ca-out for the
// orders service to trust, and answers charges and refunds over HTTPS.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8443", "address to serve HTTPS on (loopback only)")
	host := flag.String("host", "payments.example.com", "host name to issue the certificate for")
	caOut := flag.String("ca-out", "payments-ca.pem", "file to write the self-signed certificate to")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("service", "payments-sandbox")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *host, *caOut, logger); err != nil {
		logger.Error("exit", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, host, caOut string, logger *slog.Logger) error {
	cert, certPEM, err := selfSigned(host)
	if err != nil {
		return err
	}
	if err := os.WriteFile(caOut, certPEM, 0o644); err != nil {
		return fmt.Errorf("write certificate to %s: %w", caOut, err)
	}
	var n atomic.Int64
	answer := func(prefix string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := r.ParseForm(); err != nil || r.PostForm.Get("amount") == "" {
				http.Error(w, `{"error":"amount is required"}`, http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{"id": fmt.Sprintf("%s_%06d", prefix, n.Add(1)), "status": "succeeded"})
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/charges", answer("ch"))
	mux.HandleFunc("POST /v1/refunds", answer("re"))
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	logger.Info("listening", "addr", ln.Addr().String(), "host", host)
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", listen, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// selfSigned returns a fresh ECDSA certificate for host that is its own CA.
func selfSigned(host string) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: host, Organization: []string{"payments sandbox"}},
		DNSNames:              []string{host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("create certificate for %s: %w", host, err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("marshal key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("load key pair: %w", err)
	}
	return cert, certPEM, nil
}
