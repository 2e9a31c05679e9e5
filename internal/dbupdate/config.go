package dbupdate

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"
	"unicode"
)

// Default sources.
const (
	DefaultBaseURL = "https://storage.googleapis.com/osv-vulnerabilities"
	DefaultKEVURL  = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
	// DefaultEPSSURL is FIRST's daily EPSS file, as FIRST's data page
	// links it (epss.cyentia.com redirects there).
	DefaultEPSSURL = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"
)

// ErrConfig is returned (wrapped) by Validate for every invalid setting.
var ErrConfig = errors.New("invalid db update config")

// Config says what to download, from where, and into which directory.
type Config struct {
	// BaseURL is the root of the osv.dev bulk export: archives are read
	// from <BaseURL>/<ECOSYSTEM>/all.zip, the ecosystem list from
	// <BaseURL>/ecosystems.txt.
	BaseURL string
	// KEVURL is where the CISA KEV JSON feed is read from; empty skips it.
	KEVURL string
	// EPSSURL is where FIRST's EPSS scores (gzipped CSV) are read from;
	// empty skips them.
	EPSSURL string
	// Ecosystems are the osv.dev ecosystem directories to download, in the
	// spelling of ecosystems.txt ("Go", "PyPI", "crates.io"). Validate
	// refuses another spelling of a name the OSV schema lists ("golang",
	// "pypi"), naming the right one; a name the schema does not list is
	// looked up in ecosystems.txt before it is downloaded.
	Ecosystems []string
	// AllEcosystems downloads every ecosystem listed in ecosystems.txt;
	// Ecosystems must then be empty.
	AllEcosystems bool
	// Dir is the data directory; files go under Dir/vulndb.
	Dir string
	// HTTPClient makes every request. NewHTTPClient gives one with
	// connection timeouts and no overall deadline, so that large archives
	// on slow links still finish; StallTimeout bounds a silent transfer.
	HTTPClient *http.Client
	// UserAgent is sent with every request.
	UserAgent string
	// Progress receives progress output; nil is silent.
	Progress io.Writer
	// ProgressBar draws an animated bar on Progress, for terminals. When
	// false, Progress gets one plain line per file when it is done.
	ProgressBar bool
	// Concurrency bounds how many files download at once.
	Concurrency int
	// Retries is how many times a request is retried after a transient
	// failure (timeouts, dropped connections, stalls, HTTP 408, 429 and
	// 5xx). Permanent failures (an unknown host, a refused connection, a
	// TLS error, another 4xx) are not retried.
	Retries int
	// RetryWait is the wait before the first retry; it doubles for each
	// further retry, up to MaxRetryWait.
	RetryWait time.Duration
	// MaxRetryWait caps the wait between retries.
	MaxRetryWait time.Duration
	// StallTimeout aborts (and retries) a transfer that delivers no bytes
	// for this long.
	StallTimeout time.Duration
	// HeaderTimeout aborts (and retries) a request whose response headers
	// have not arrived this long after it was sent: a server that accepts
	// connections and never answers.
	HeaderTimeout time.Duration
	// Timeout bounds the whole update of one file, retries and the waits
	// between them included; 0 means no bound. A file that runs out of
	// time fails with ErrTimeout and keeps its previous version.
	Timeout time.Duration
}

// DefaultConfig returns the configuration of `evident db update` without
// flags, except Dir, which the caller sets.
func DefaultConfig() Config {
	return Config{
		BaseURL: DefaultBaseURL,
		KEVURL:  DefaultKEVURL,
		EPSSURL: DefaultEPSSURL,
		// The languages evident attributes profile frames to.
		Ecosystems:    []string{"Go", "npm", "PyPI", "Maven"},
		HTTPClient:    NewHTTPClient(nil),
		UserAgent:     "evident",
		Concurrency:   2,
		Retries:       3,
		RetryWait:     time.Second,
		MaxRetryWait:  30 * time.Second,
		StallTimeout:  time.Minute,
		HeaderTimeout: 20 * time.Second,
		// A server that sends a byte now and then never stalls: an
		// unattended update (a CronJob) would wait for it forever.
		Timeout: time.Hour,
	}
}

// NewHTTPClient returns a client with timeouts on every phase that has a
// natural bound (dial, TLS, response headers) and none on the whole
// request, whose length depends on the archive size and the link. tc
// configures TLS (internal/tlsconfig: a mirror's private CA, a client
// certificate); nil verifies servers against the system's roots. It
// reads file:// URLs too.
func NewHTTPClient(tc *tls.Config) *http.Client {
	t := &http.Transport{
		TLSClientConfig:       tc,
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          10,
	}
	// file:// URLs (a mirror on a mounted share) are answered as a web
	// server answers: Content-Length, Last-Modified and 304 to
	// If-Modified-Since, 404 for a missing file.
	t.RegisterProtocol("file", http.NewFileTransport(http.Dir("/")))
	return &http.Client{Transport: t, CheckRedirect: noRedirectToFile}
}

// noRedirectToFile keeps net/http's redirect policy (ten at most) and
// refuses a server's redirect to a file:// URL (only the user names local
// files) and from https to plain http, whose checksums, in the same
// answer, would prove nothing.
func noRedirectToFile(req *http.Request, via []*http.Request) error {
	if req.URL.Scheme == "file" {
		return fmt.Errorf("%w: to %s: a server may not name a local file", ErrRedirect, req.URL)
	}
	if len(via) > 0 && via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("%w: from %s to %s: from https to plain http", ErrRedirect, via[len(via)-1].URL, req.URL)
	}
	if len(via) >= 10 {
		return fmt.Errorf("%w: more than 10", ErrRedirect)
	}
	return nil
}

// Validate reports every invalid setting at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	if err := checkSourceURL(c.BaseURL); err != nil {
		bad("base URL %q: %v", c.BaseURL, err)
	}
	if c.KEVURL != "" {
		if err := checkSourceURL(c.KEVURL); err != nil {
			bad("KEV URL %q: %v", c.KEVURL, err)
		}
	}
	if c.EPSSURL != "" {
		if err := checkSourceURL(c.EPSSURL); err != nil {
			bad("EPSS URL %q: %v", c.EPSSURL, err)
		}
	}
	switch {
	case c.AllEcosystems && len(c.Ecosystems) > 0:
		bad("all ecosystems and a list of ecosystems (%s) are exclusive", strings.Join(c.Ecosystems, ", "))
	case !c.AllEcosystems && len(c.Ecosystems) == 0:
		bad("no ecosystems to update")
	}
	seen := make(map[string]bool, len(c.Ecosystems))
	for i, eco := range c.Ecosystems {
		if err := checkEcosystem(eco); err != nil {
			bad("ecosystem %d %q: %v", i+1, eco, err)
		} else if s := suggestEcosystem(eco, schemaEcosystems); s != "" {
			// osv.dev's directory names are case-sensitive: the download
			// would be a bare 404.
			bad("ecosystem %d %q: osv.dev names it %q", i+1, eco, s)
		}
		if seen[eco] {
			bad("ecosystem %q is listed twice", eco)
		}
		seen[eco] = true
	}
	if c.Dir == "" {
		bad("no data directory")
	}
	if c.HTTPClient == nil {
		bad("no HTTP client")
	}
	if c.Concurrency < 1 {
		bad("concurrency %d is below 1", c.Concurrency)
	}
	if c.Retries < 0 {
		bad("retries %d is negative", c.Retries)
	}
	if c.RetryWait <= 0 || c.MaxRetryWait < c.RetryWait {
		bad("retry wait %v and max retry wait %v: want 0 < wait <= max", c.RetryWait, c.MaxRetryWait)
	}
	if c.StallTimeout <= 0 {
		bad("stall timeout %v is not positive", c.StallTimeout)
	}
	if c.HeaderTimeout <= 0 {
		bad("header timeout %v is not positive", c.HeaderTimeout)
	}
	if c.Timeout < 0 {
		bad("timeout %v is negative", c.Timeout)
	}
	return errors.Join(errs...)
}

// checkSourceURL accepts an http(s) URL, or a file URL of an absolute
// path: a mirror on a mounted share, for a machine without access to
// the internet.
func checkSourceURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	switch {
	case u.Scheme == "file":
		if u.Host != "" && u.Host != "localhost" {
			return fmt.Errorf("file URL with host %q: want file:///absolute/path", u.Host)
		}
		if !strings.HasPrefix(u.Path, "/") {
			return errors.New("file URL without an absolute path: want file:///absolute/path")
		}
	case u.Scheme == "" && filepath.IsAbs(s):
		return fmt.Errorf("a path: write it as the URL file://%s", filepath.ToSlash(s))
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("want an http, https or file URL")
	case u.Host == "":
		return errors.New("no host")
	}
	return nil
}

// checkEcosystem accepts the names of osv.dev's ecosystem directories,
// which become directory names here: they may hold spaces ("Red Hat") and
// dots ("crates.io"), but nothing that escapes or is unsafe in a path.
// Colons are refused: osv.dev exports only base ecosystems ("Debian", not
// "Debian:12"), and Windows forbids them in file names.
func checkEcosystem(eco string) error {
	switch {
	case eco == "":
		return errors.New("empty name")
	case eco == "." || eco == "..":
		return errors.New("not a directory name")
	case strings.TrimSpace(eco) != eco:
		return errors.New("leading or trailing space")
	case strings.ContainsAny(eco, `/\:*?"<>|`):
		return errors.New(`contains one of / \ : * ? " < > |`)
	case strings.IndexFunc(eco, unicode.IsControl) >= 0:
		return errors.New("contains a control character")
	}
	return nil
}
