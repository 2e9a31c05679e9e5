// Package tlsconfig turns the tls blocks of evident's configuration into
// crypto/tls configurations: ServerConfig for every listener (TLS, and
// mTLS with a client CA) and ClientConfig for every outbound client
// (alert sinks, the vulnerability database download, telemetry sources).
//
// Certificates are files, re-read without a restart: a listener checks
// its files at most once per reload_interval, on a handshake or a scrape
// of its metrics, and serves the new certificate and client CAs from the
// next handshake on. A file that does not load (half written, a key that does not match, a
// certificate that has expired) keeps the previous certificate in use, and is logged and
// counted.
package tlsconfig

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrConfig marks an invalid TLS setting.
var ErrConfig = errors.New("invalid tls config")

// Values of ServerConfig.ClientAuth.
const (
	// ClientAuthNone asks clients for no certificate.
	ClientAuthNone = "none"
	// ClientAuthRequest asks for a certificate and verifies one that is
	// sent against client_ca_file, but also admits clients without one.
	ClientAuthRequest = "request"
	// ClientAuthRequireAndVerify refuses the handshake of a client
	// without a certificate signed by client_ca_file (mTLS).
	ClientAuthRequireAndVerify = "require_and_verify"
)

// ServerConfig is the tls block of a listener. TLS is on when CertFile
// is set.
type ServerConfig struct {
	// CertFile is the PEM certificate chain served, leaf first.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of the leaf certificate.
	KeyFile string `yaml:"key_file"`
	// ClientCAFile holds the PEM certificates that sign client
	// certificates; setting it turns mTLS on.
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is none, request or require_and_verify; empty is
	// require_and_verify with a ClientCAFile and none without.
	ClientAuth string `yaml:"client_auth"`
	// MinVersion is the oldest TLS version accepted: "1.2" or "1.3".
	MinVersion string `yaml:"min_version"`
	// CipherSuites restricts the TLS 1.2 cipher suites, by their Go names
	// (TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); empty keeps Go's
	// defaults. TLS 1.3 suites are not configurable.
	CipherSuites []string `yaml:"cipher_suites"`
	// ReloadInterval is how often, at most, the files are checked for a
	// new certificate; the check happens on a handshake, and on a scrape
	// of the expiry metric.
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// DefaultServerConfig returns TLS off, with TLS 1.2 as the oldest
// version and a 30 s reload interval for when it is turned on.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{MinVersion: "1.2", ReloadInterval: 30 * time.Second}
}

// Enabled reports whether the listener serves TLS.
func (c ServerConfig) Enabled() bool { return c.CertFile != "" || c.KeyFile != "" }

// Validate reports the first problem of c. It does not read the files:
// NewServer does.
func (c ServerConfig) Validate() error {
	if !c.Enabled() {
		// A setting that means something only with TLS on, without the
		// certificate that turns it on, would serve plain TCP to whoever
		// wrote it expecting TLS.
		switch {
		case c.ClientCAFile != "":
			return fmt.Errorf("%w: tls client_ca_file without cert_file and key_file", ErrConfig)
		case c.ClientAuth != "":
			return fmt.Errorf("%w: tls client_auth without cert_file and key_file (TLS is off)", ErrConfig)
		case len(c.CipherSuites) > 0:
			return fmt.Errorf("%w: tls cipher_suites without cert_file and key_file (TLS is off)", ErrConfig)
		case c.MinVersion != "" && c.MinVersion != DefaultServerConfig().MinVersion:
			return fmt.Errorf("%w: tls min_version %q without cert_file and key_file (TLS is off)", ErrConfig, c.MinVersion)
		}
		return nil
	}
	if c.CertFile == "" || c.KeyFile == "" {
		return fmt.Errorf("%w: tls cert_file and key_file go together", ErrConfig)
	}
	auth, err := c.clientAuth()
	if err != nil {
		return err
	}
	if auth != tls.NoClientCert && c.ClientCAFile == "" {
		return fmt.Errorf("%w: tls client_auth %s needs client_ca_file", ErrConfig, c.ClientAuth)
	}
	minVersion, err := parseVersion(c.MinVersion)
	if err != nil {
		return err
	}
	if _, err := parseCipherSuites(c.CipherSuites); err != nil {
		return err
	}
	// With TLS 1.2 refused, Go negotiates only TLS 1.3, whose suites are
	// not configurable: the list would restrict nothing, and whoever wrote
	// it would believe the listener's suites were restricted.
	if minVersion == tls.VersionTLS13 && len(c.CipherSuites) > 0 {
		return fmt.Errorf("%w: tls cipher_suites with min_version \"1.3\" restricts nothing (TLS 1.3 suites are not configurable): drop cipher_suites or set min_version \"1.2\"", ErrConfig)
	}
	if c.ReloadInterval <= 0 {
		return fmt.Errorf("%w: tls reload_interval %s, want > 0", ErrConfig, c.ReloadInterval)
	}
	return nil
}

func (c ServerConfig) clientAuth() (tls.ClientAuthType, error) {
	switch c.ClientAuth {
	case "":
		if c.ClientCAFile != "" {
			return tls.RequireAndVerifyClientCert, nil
		}
		return tls.NoClientCert, nil
	case ClientAuthNone:
		if c.ClientCAFile != "" {
			return 0, fmt.Errorf("%w: tls client_auth none with a client_ca_file: say request or require_and_verify, or drop the file", ErrConfig)
		}
		return tls.NoClientCert, nil
	case ClientAuthRequest:
		return tls.VerifyClientCertIfGiven, nil
	case ClientAuthRequireAndVerify:
		return tls.RequireAndVerifyClientCert, nil
	}
	return 0, fmt.Errorf("%w: tls client_auth %q, want none, request or require_and_verify", ErrConfig, c.ClientAuth)
}

func parseVersion(v string) (uint16, error) {
	switch v {
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("%w: tls min_version %q, want 1.2 or 1.3", ErrConfig, v)
}

func parseCipherSuites(names []string) ([]uint16, error) {
	var ids []uint16
	for _, n := range names {
		i := slices.IndexFunc(tls.CipherSuites(), func(s *tls.CipherSuite) bool { return s.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("%w: tls cipher_suites %q is not a secure cipher suite Go knows (%s)", ErrConfig, n, suiteNames())
		}
		// Go takes the TLS 1.3 suites from a list and ignores them: a
		// list of them alone would leave TLS 1.2 clients no suite to
		// agree on, and restrict TLS 1.3 to none of them.
		if !slices.Contains(tls.CipherSuites()[i].SupportedVersions, tls.VersionTLS12) {
			return nil, fmt.Errorf("%w: tls cipher_suites %q is a TLS 1.3 suite, which Go does not let be chosen; name TLS 1.2 suites (%s)", ErrConfig, n, suiteNames())
		}
		ids = append(ids, tls.CipherSuites()[i].ID)
	}
	return ids, nil
}

func suiteNames() string {
	var names []string
	for _, s := range tls.CipherSuites() {
		if slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			names = append(names, s.Name)
		}
	}
	return strings.Join(names, ", ")
}

// ClientConfig is the tls block of an outbound client. The zero value
// verifies servers against the system's roots, as Go does by default.
type ClientConfig struct {
	// CAFile holds PEM certificates that sign the servers' certificates,
	// in place of the system's roots (a private CA). It is read at start.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate (PEM, leaf first)
	// and its key, sent to servers that ask for one (mTLS). They are
	// re-read when they change, as a listener's are.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name verified in the server's certificate, when
	// it differs from the host of the URL.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate: the connection
	// is encrypted but not authenticated. For tests only; it is logged as
	// a warning at start. It is refused with a CAFile, which it would
	// leave unused; ServerName is still sent as the SNI.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// clientReloadInterval is how often, at most, a client certificate's
// files are checked for a new one.
const clientReloadInterval = 30 * time.Second

// Validate reports the first problem of c. It does not read the files:
// NewClient does.
func (c ClientConfig) Validate() error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return fmt.Errorf("%w: tls cert_file and key_file go together", ErrConfig)
	}
	// With insecure_skip_verify Go verifies no chain, so a ca_file would
	// be read and never used while whoever wrote it believed the server
	// authenticated by it. server_name is not refused with it:
	// Go still sends it as the SNI, which a proxy may route by.
	if c.InsecureSkipVerify && c.CAFile != "" {
		return fmt.Errorf("%w: tls ca_file with insecure_skip_verify: the server's certificate is verified by ca_file or not at all; drop one of them", ErrConfig)
	}
	return nil
}
