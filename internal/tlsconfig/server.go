package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ServerOptions name a listener and say what it speaks.
type ServerOptions struct {
	// Name names the listener in logs and in the listener label of the
	// metrics.
	Name string
	// NextProtos are the ALPN protocols offered, in order of preference
	// ("h2", "http/1.1"; "h2" alone for gRPC).
	NextProtos []string
	Logger     *slog.Logger
	// Registerer registers the reload and expiry metrics; nil: none.
	Registerer prometheus.Registerer
}

// Server serves one listener's certificate and client CAs from their
// files, re-read when they change. It is safe for concurrent use.
type Server struct {
	cfg    ServerConfig
	opts   ServerOptions
	log    *slog.Logger
	r      *reloader[*tls.Config]
	reload *prometheus.CounterVec
	// expiry is the NotAfter of the certificate served, set when one is
	// loaded and when one is reloaded.
	expiry prometheus.Gauge
}

// NewServer reads the files of cfg, which must be enabled and valid, and
// registers the metrics. A file that does not load is an error here;
// later, it keeps the previous certificate.
func NewServer(cfg ServerConfig, opts ServerOptions) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, fmt.Errorf("%w: tls of %s is off (no cert_file)", ErrConfig, opts.Name)
	}
	s := &Server{cfg: cfg, opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	paths := []string{cfg.CertFile, cfg.KeyFile}
	if cfg.ClientCAFile != "" {
		paths = append(paths, cfg.ClientCAFile)
	}
	var err error
	if s.r, err = newReloader(paths, cfg.ReloadInterval, s.build, s.reloaded); err != nil {
		return nil, fmt.Errorf("tls of %s: %w", opts.Name, err)
	}
	if err := s.register(opts.Registerer); err != nil {
		return nil, fmt.Errorf("register tls metrics of %s: %w", opts.Name, err)
	}
	// There is no certificate to keep instead of one that expired before
	// the start, and clients that skip verification are still served;
	// but every other client refuses it, which nothing else would say.
	if leaf := s.Leaf(); Expired(leaf, s.r.now()) {
		s.log.Warn("tls certificate has expired: every client that verifies it refuses the handshake",
			"listener", opts.Name, "cert_file", cfg.CertFile, "not_after", leaf.NotAfter)
	}
	return s, nil
}

// Expired reports whether cert has expired at now.
func Expired(cert *x509.Certificate, now time.Time) bool { return !now.Before(cert.NotAfter) }

func (s *Server) register(reg prometheus.Registerer) error {
	labels := prometheus.Labels{"listener": s.opts.Name}
	s.reload = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "evident_tls_reloads_total", ConstLabels: labels,
		Help: "Changes of a listener's certificate files, by result: reloaded (ok) or kept the previous certificate (error).",
	}, []string{"result"})
	// Both results from 0: a failed reload shows as a rise, not as a new
	// series.
	s.reload.WithLabelValues("ok")
	s.reload.WithLabelValues("error")
	s.expiry = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "evident_tls_certificate_expiry_timestamp_seconds", ConstLabels: labels,
		Help: "When the certificate a listener serves expires (its NotAfter), in Unix seconds.",
	})
	s.expiry.Set(float64(s.Leaf().NotAfter.Unix()))
	if reg == nil {
		return nil
	}
	return errors.Join(reg.Register(s.reload), reg.Register(checkOnCollect{s.expiry, s.r.check}))
}

// checkOnCollect checks the certificate files, as a handshake does (at
// most once per reload interval), before it is collected: a listener
// nobody connects to would otherwise never reload, and its expiry would
// stay the replaced certificate's, an alert on it firing for a rotation
// that did happen.
type checkOnCollect struct {
	prometheus.Gauge
	check func()
}

func (c checkOnCollect) Collect(ch chan<- prometheus.Metric) {
	c.check()
	c.Gauge.Collect(ch)
}

// build makes the configuration of a handshake from the contents of the
// certificate, key and (if any) client CA files.
func (s *Server) build(contents [][]byte) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(contents[0], contents[1])
	if err != nil {
		return nil, fmt.Errorf("load %s and %s: %w", s.cfg.CertFile, s.cfg.KeyFile, err)
	}
	// At a reload, a certificate that has expired would fail every
	// handshake that the one served still passes: it is kept out as a
	// file that does not load is. At start there is none to keep, and
	// clients that skip verification are still served.
	if s.r != nil {
		if err := notExpired(s.cfg.CertFile, cert.Leaf, s.r.now()); err != nil {
			return nil, err
		}
	}
	auth, _ := s.cfg.clientAuth()                   // Validate checked it
	minVersion, _ := parseVersion(s.cfg.MinVersion) // Validate checked it
	suites, _ := parseCipherSuites(s.cfg.CipherSuites)
	c := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   auth,
		MinVersion:   minVersion,
		CipherSuites: suites,
		NextProtos:   s.opts.NextProtos,
	}
	if len(contents) > 2 {
		c.ClientCAs = x509.NewCertPool()
		if !c.ClientCAs.AppendCertsFromPEM(contents[2]) {
			return nil, fmt.Errorf("load %s: no PEM certificate in it", s.cfg.ClientCAFile)
		}
	}
	return c, nil
}

func (s *Server) reloaded(c *tls.Config, err error) {
	if err != nil {
		s.reload.WithLabelValues("error").Inc()
		s.log.Error("tls certificate not reloaded, the previous one stays in use", "listener", s.opts.Name, "err", err)
		return
	}
	s.reload.WithLabelValues("ok").Inc()
	leaf := c.Certificates[0].Leaf
	s.expiry.Set(float64(leaf.NotAfter.Unix()))
	s.log.Info("tls certificate reloaded", "listener", s.opts.Name, "subject", leaf.Subject.String(),
		"serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter)
}

// Leaf returns the certificate served now.
func (s *Server) Leaf() *x509.Certificate {
	return s.r.cur.Load().v.Certificates[0].Leaf
}

// TLSConfig returns the configuration to serve with: each handshake
// takes the certificate and client CAs current at that moment, checking
// the files first when the reload interval is over. Callers must not
// change it.
func (s *Server) TLSConfig() *tls.Config {
	minVersion, _ := parseVersion(s.cfg.MinVersion)
	return &tls.Config{
		MinVersion: minVersion,
		NextProtos: s.opts.NextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.r.get(), nil
		},
	}
}

// notExpired reports an error naming file when cert, loaded from it,
// has expired at now.
func notExpired(file string, cert *x509.Certificate, now time.Time) error {
	if !Expired(cert, now) {
		return nil
	}
	return fmt.Errorf("load %s: the certificate expired at %s", file, cert.NotAfter.UTC().Format(time.RFC3339))
}
