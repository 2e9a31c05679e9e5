package source

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/evidentsec/evident/internal/tlsconfig"
)

// Sentinels that classify why a source failed. Callers match them with
// errors.Is.
var (
	// ErrUnreachable means the server could not be reached (DNS, refused
	// or reset connection, TLS handshake).
	ErrUnreachable = errors.New("server unreachable")
	// ErrUnauthorized means the server refused the credentials (401/403).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotFound means an API path answered 404: a wrong base URL or a
	// server older than the API evident uses.
	ErrNotFound = errors.New("API path not found")
	// ErrNotAPI means the server answered, but not as the API: an HTML
	// page (a login page, a proxy), another content type, or a method
	// refused (405, 501) by a server that is not Tempo or Pyroscope. A
	// retry will not help: the URL is wrong.
	ErrNotAPI = errors.New("not the API")
	// ErrTooLarge means a response exceeded MaxResponseBytes.
	ErrTooLarge = errors.New("response too large")
	// ErrTimeout means the server did not answer within the timeout.
	ErrTimeout = errors.New("server too slow")
	// ErrRetryable means the server answered 429 or 5xx, or reset or
	// closed the connection once it was made: the request may succeed
	// later.
	ErrRetryable = errors.New("server busy or failing")
	// ErrNoData means the server holds nothing for a service in the
	// window.
	ErrNoData = errors.New("no data in the window")
	// ErrNoCPUSamples means Pyroscope lists a service that has no CPU
	// samples in the window (memory profiles only, or idle). Nothing of
	// it was skipped: its findings simply have no evidence of execution.
	ErrNoCPUSamples = errors.New("no CPU samples in the window")
	// ErrPartial means the server returned only part of what was asked
	// (Tempo: a trace over its size limit, or pruned); what it returned
	// was read.
	ErrPartial = errors.New("partial answer")
	// ErrWindowTooLong means the server refused a query over a window
	// longer than it allows (Pyroscope's max_query_length, Tempo's search
	// max_duration).
	ErrWindowTooLong = errors.New("window longer than the server allows")
)

// Auth is how a source authenticates, as Grafana's stores use it. The
// secrets are never logged or printed; String redacts them.
type Auth struct {
	// User and Password are HTTP basic auth. On Grafana Cloud, User is the
	// stack's numeric instance id and Password an access-policy token with
	// the traces:read or profiles:read scope.
	User, Password string
	// BearerToken is sent as "Authorization: Bearer".
	BearerToken string
	// OrgID is sent as X-Scope-OrgID, the tenant of a multi-tenant
	// self-hosted Tempo or Pyroscope.
	OrgID string
	// CAFile is a PEM bundle that verifies the server instead of the
	// system roots; CertFile and KeyFile are a client certificate.
	CAFile, CertFile, KeyFile string
}

// String describes the auth without its secrets.
func (a Auth) String() string {
	var parts []string
	if a.User != "" {
		parts = append(parts, "basic user "+a.User)
	}
	if a.BearerToken != "" {
		parts = append(parts, "bearer token")
	}
	if a.OrgID != "" {
		parts = append(parts, "org "+a.OrgID)
	}
	if a.CertFile != "" {
		parts = append(parts, "client certificate")
	}
	if len(parts) == 0 {
		return "no credentials"
	}
	return strings.Join(parts, ", ")
}

// AuthFromEnv reads the auth of a source from environment variables
// named PREFIX_USER, PREFIX_PASSWORD, PREFIX_TOKEN, PREFIX_ORG_ID,
// PREFIX_CA_FILE, PREFIX_CERT_FILE and PREFIX_KEY_FILE, with
// PREFIX_PASSWORD_FILE and PREFIX_TOKEN_FILE naming files that hold the
// secret, so that no secret is written on a command line.
func AuthFromEnv(prefix string, getenv func(string) string) (Auth, error) {
	a := Auth{
		User: getenv(prefix + "_USER"), Password: getenv(prefix + "_PASSWORD"),
		BearerToken: getenv(prefix + "_TOKEN"), OrgID: getenv(prefix + "_ORG_ID"),
		CAFile: getenv(prefix + "_CA_FILE"), CertFile: getenv(prefix + "_CERT_FILE"), KeyFile: getenv(prefix + "_KEY_FILE"),
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{prefix + "_PASSWORD_FILE", &a.Password}, {prefix + "_TOKEN_FILE", &a.BearerToken}} {
		path := getenv(f.name)
		if path == "" {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return a, fmt.Errorf("read %s: %w", f.name, err)
		}
		*f.dst = strings.TrimSpace(string(b))
	}
	return a, a.Validate()
}

// Validate reports inconsistent auth settings.
func (a Auth) Validate() error {
	if a.Password != "" && a.User == "" {
		return errors.New("auth: a password without a user: set the user (on Grafana Cloud, the stack's instance id)")
	}
	if a.User != "" && a.BearerToken != "" {
		return errors.New("auth: both basic auth and a bearer token: choose one")
	}
	if (a.CertFile == "") != (a.KeyFile == "") {
		return errors.New("auth: a client certificate needs both its certificate and key files")
	}
	return nil
}

// HTTPConfig is what every source shares: where the server is, how to
// authenticate, and the limits of a request.
type HTTPConfig struct {
	// URL is the base URL of the API, including any path prefix
	// (https://tempo-prod-01-eu-west-0.grafana.net/tempo).
	URL  string
	Auth Auth
	// Timeout bounds one request, its body included.
	Timeout time.Duration
	// MaxResponseBytes bounds the body of one response.
	MaxResponseBytes int64
}

// DefaultHTTPConfig returns the defaults: 30 s per request, 64 MiB per response.
func DefaultHTTPConfig() HTTPConfig {
	return HTTPConfig{Timeout: 30 * time.Second, MaxResponseBytes: 64 << 20}
}

// Validate reports a missing URL, bad limits and bad auth.
func (c HTTPConfig) Validate() error {
	if c.URL == "" {
		return errors.New("no URL")
	}
	if !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
		return fmt.Errorf("URL %q: want http:// or https://", c.URL)
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.User != nil {
		return fmt.Errorf("URL %q: want no credentials in the URL: set them in the environment (docs/sources.md)", redactURL(c.URL))
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		// The API's paths are appended to the URL, so a query would
		// end up before them, and it would be shown in logs and kept
		// in the watermark's key: a token in it would leak.
		return fmt.Errorf("URL %q: want no query or fragment: the API's paths are appended to it; set credentials in the environment (docs/sources.md)", u.Scheme+"://"+u.Host+u.Path)
	}
	if c.Timeout <= 0 || c.MaxResponseBytes <= 0 {
		return errors.New("timeout and max response bytes must be positive")
	}
	return c.Auth.Validate()
}

// redactURL hides what may be a secret in a URL that failed to parse or
// holds credentials.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}

// Stats counts what a source transferred.
type Stats struct {
	Requests int64
	Bytes    int64
	// Parts is how many parts the last window was read in: more than
	// one where the server refused it as longer than it allows
	// (windowParts).
	Parts int
}

// client is the HTTP client of one source: it adds the auth to every
// request, bounds every response and classifies every failure.
type client struct {
	cfg   HTTPConfig
	http  *http.Client
	what  string // "tempo", "pyroscope": for errors
	api   string // "Tempo's HTTP API": for errors
	stats Stats
	// skew is the server's clock against the local one, at its last
	// answer.
	skew *clockSkew
}

// clockSkew is how far the local clock is ahead of a server's, as the
// Date header of its last answer shows (RFC 9110: the time the answer
// was made, to the second). It is safe for concurrent use.
type clockSkew struct {
	mu   sync.Mutex
	d    time.Duration
	seen bool
}

func (s *clockSkew) observe(resp *http.Response) {
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d, s.seen = time.Since(date), true
}

// get returns the last skew seen, and whether any answer had a Date.
func (s *clockSkew) get() (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.d, s.seen
}

func newClient(what string, cfg HTTPConfig, logger *slog.Logger) (*client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s source: %w", what, err)
	}
	// The same client TLS as every other client of evident (tlsconfig):
	// a private CA, a client certificate that reloads when rotated.
	tr, err := tlsconfig.NewTransport(tlsconfig.ClientConfig{CAFile: cfg.Auth.CAFile, CertFile: cfg.Auth.CertFile, KeyFile: cfg.Auth.KeyFile}, what+" source", logger)
	if err != nil {
		return nil, fmt.Errorf("%s source: %w", what, err)
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	c := &client{cfg: cfg, what: what, skew: &clockSkew{}}
	c.http = &http.Client{Transport: &authTransport{auth: cfg.Auth, next: tr, skew: c.skew}, Timeout: cfg.Timeout, CheckRedirect: c.checkRedirect}
	return c, nil
}

// maxRedirects is how many redirects a request follows, as net/http's
// default does.
const maxRedirects = 10

// checkRedirect follows a redirect only to the server of the request
// that led to it (or from http to https on the same host): authTransport
// adds the credentials to every request, the redirected ones included,
// so a redirect to another host, which net/http would follow, would hand
// them to that host; and a redirect from https to http would send them
// in clear. Any other is refused as not the API (a login page of a
// single sign-on proxy, a URL that names a load balancer's other site).
func (c *client) checkRedirect(req *http.Request, via []*http.Request) error {
	from, to := via[0].URL, req.URL
	if len(via) >= maxRedirects {
		return c.notAPI(via[0], fmt.Sprintf("%d redirects", len(via)))
	}
	sameHost := strings.EqualFold(from.Host, to.Host) && from.Scheme == to.Scheme
	upgrade := from.Scheme == "http" && to.Scheme == "https" && strings.EqualFold(from.Hostname(), to.Hostname())
	if sameHost || upgrade {
		return nil
	}
	return c.notAPI(via[0], "a redirect to "+to.Scheme+"://"+to.Host+" (not followed: the credentials would go there)")
}

// authTransport adds the auth headers to every request, those of the
// Connect client included, and notes the server's clock of every answer.
type authTransport struct {
	auth Auth
	next http.RoundTripper
	skew *clockSkew
}

func (t *authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	switch {
	case t.auth.User != "":
		r.SetBasicAuth(t.auth.User, t.auth.Password)
	case t.auth.BearerToken != "":
		r.Header.Set("Authorization", "Bearer "+t.auth.BearerToken)
	}
	if t.auth.OrgID != "" {
		r.Header.Set("X-Scope-OrgID", t.auth.OrgID)
	}
	resp, err := t.next.RoundTrip(r)
	if err == nil {
		t.skew.observe(resp)
	}
	return resp, err
}

// get fetches base URL + path and returns the body, read to at most
// MaxResponseBytes, and its content type. version names the server
// version the path needs, for a 404.
func (c *client) get(ctx context.Context, path, accept, version string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.URL+path, nil)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", c.what, err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	c.stats.Requests++
	resp, err := c.http.Do(req)
	if err != nil {
		if na, ok := errors.AsType[*notAPIError](err); ok {
			// A redirect refused (checkRedirect).
			return nil, "", fmt.Errorf("%s: %w", c.what, na)
		}
		if na := c.probeHTTP2(ctx, err); na != nil {
			return nil, "", fmt.Errorf("%s: %w", c.what, na)
		}
		return nil, "", c.transportError(path, err)
	}
	defer resp.Body.Close()
	if err := c.statusError(path, resp, version); err != nil {
		return nil, "", err
	}
	body, err := c.readBounded(path, resp.Body)
	if err != nil {
		return nil, "", err
	}
	ctype := resp.Header.Get("Content-Type")
	if err := c.checkBody(req, ctype, accept, body); err != nil {
		return nil, "", fmt.Errorf("%s: %w", c.what, err)
	}
	return body, ctype, nil
}

// checkBody refuses a 2xx answer that cannot be the API's, before it is
// decoded: an HTML page, or to Accept: application/json anything but a
// JSON object (every answer of Tempo's JSON API is one). Other content
// types are left to the caller, which knows what it asked for.
func (c *client) checkBody(req *http.Request, ctype, accept string, body []byte) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	json := accept == "application/json"
	switch {
	case mediaType(ctype) == "text/html" || json && bytes.HasPrefix(trimmed, []byte("<")):
		return c.notAPI(req, "an HTML page")
	case json && len(trimmed) == 0:
		return c.notAPI(req, "an empty body, not JSON")
	case json && trimmed[0] != '{':
		return c.notAPI(req, fmt.Sprintf("%s, not JSON", describeType(ctype)))
	}
	return nil
}

// answeredHTTP2 is what a server that speaks HTTP/2 only answered.
const answeredHTTP2 = "in HTTP/2 frames, as a gRPC port (OTLP/gRPC, or the server's own gRPC listener) does, not in HTTP/1"

// probeHTTP2 tells, after a request to the server failed with err on
// the way (not refused at the dial), whether the server speaks HTTP/2
// alone, as a port that speaks gRPC alone does: it returns the
// notAPIError then, nil otherwise. net/http says so in words that depend
// on when the server's first frame came (a malformed response, an
// unsolicited one on an idle connection, a connection closed while the
// request was written), so the probe asks itself: an HTTP/1 request on a
// connection of its own, whose first bytes are then the 9-byte header
// of an HTTP/2 SETTINGS frame (type 4, stream 0), not a status line.
// Only a cleartext URL is probed: over TLS, a gRPC server negotiates
// HTTP/2 with the client and answers its requests.
func (c *client) probeHTTP2(ctx context.Context, err error) *notAPIError {
	u, perr := url.Parse(c.cfg.URL)
	if perr != nil || u.Scheme != "http" {
		return nil
	}
	// A refused dial, a timeout or a cancelled request say why already:
	// a probe would wait on a slow server once more.
	var ne interface{ Timeout() bool }
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	ctx, cancel := context.WithTimeout(ctx, min(c.cfg.Timeout, 5*time.Second))
	defer cancel()
	conn, derr := (&net.Dialer{}).DialContext(ctx, "tcp", host)
	if derr != nil {
		return nil
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, werr := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", u.Host); werr != nil {
		return nil
	}
	var h [9]byte
	if _, rerr := io.ReadFull(conn, h[:]); rerr != nil {
		return nil
	}
	if h[3] != 0x4 || h[5]|h[6]|h[7]|h[8] != 0 {
		return nil
	}
	req := &http.Request{Method: http.MethodGet, URL: u}
	return c.notAPI(req, answeredHTTP2)
}

// notAPI is the error of an answer that is not the API's.
func (c *client) notAPI(req *http.Request, answered string) *notAPIError {
	u := *req.URL
	u.RawQuery = "" // the window: noise in the message
	return &notAPIError{method: req.Method, url: u.Redacted(), answered: answered, api: c.api, flag: "--" + c.what}
}

// notAPIError is an answer that is not from the API evident reads: the
// URL names another server, or the wrong path on it. It matches
// ErrNotAPI.
type notAPIError struct {
	method, url string
	answered    string // "an HTML page", "HTTP 501 Not Implemented"
	api         string // "Tempo's HTTP API"
	flag        string // "--tempo"
}

func (e *notAPIError) Error() string {
	return fmt.Sprintf("%s %s answered %s: is this %s? check %s's URL and its path prefix", e.method, e.url, e.answered, e.api, e.flag)
}

func (e *notAPIError) Unwrap() error { return ErrNotAPI }

// mediaType is the media type of a Content-Type, lowercase, without
// its parameters.
func mediaType(ctype string) string {
	mt, _, _ := strings.Cut(ctype, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// describeType names a Content-Type in a message.
func describeType(ctype string) string {
	if mt := mediaType(ctype); mt != "" {
		return mt
	}
	return "no Content-Type"
}

// maxDetail bounds the server's text quoted in an error.
const maxDetail = 200

// bodyDetail is what an error quotes of a failed answer's body: its
// first line, cut to maxDetail characters; an HTML page is named, not
// quoted (its first line is a doctype).
func bodyDetail(ctype string, body []byte) string {
	text := strings.TrimSpace(string(body))
	if mediaType(ctype) == "text/html" || strings.HasPrefix(text, "<") {
		return "an HTML page"
	}
	text, _, _ = strings.Cut(text, "\n")
	text = strings.TrimSpace(text)
	if r := []rune(text); len(r) > maxDetail {
		text = string(r[:maxDetail]) + "…"
	}
	return strings.ToValidUTF8(text, "\uFFFD")
}

func (c *client) readBounded(path string, r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, c.cfg.MaxResponseBytes+1))
	c.stats.Bytes += int64(len(body))
	if err != nil {
		return nil, c.transportError(path, err)
	}
	if int64(len(body)) > c.cfg.MaxResponseBytes {
		return nil, fmt.Errorf("%s %s: %w: more than %d bytes (raise the limit or narrow the window)", c.what, path, ErrTooLarge, c.cfg.MaxResponseBytes)
	}
	return body, nil
}

func (c *client) transportError(path string, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	var ne interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%s %s: %w: no answer within %s: %w", c.what, path, ErrTimeout, c.cfg.Timeout, err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s %s: truncated response: %w", c.what, path, err)
	}
	if !unreachable(err) && closedByServer(err) {
		return fmt.Errorf("%s %s: %w: %w", c.what, path, ErrRetryable, err)
	}
	return fmt.Errorf("%s %s: %w: %w", c.what, path, ErrUnreachable, err)
}

// unreachable reports whether a request's transport error means that the
// server cannot be reached or spoken to, which a retry will not change
// soon: the dial (refused, DNS, a reset already there) or TLS (an
// unknown authority or host name, a handshake the server refused, a
// server that does not speak TLS).
func unreachable(err error) bool {
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
		return true
	}
	_, verify := errors.AsType[*tls.CertificateVerificationError](err)
	_, record := errors.AsType[tls.RecordHeaderError](err)
	_, alert := errors.AsType[tls.AlertError](err)
	return verify || record || alert
}

// closedByServer reports whether a request's transport error is a
// connection the server reset or closed once it was made: a server
// restarting or failing, as a 5xx is.
func closedByServer(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF)
}

// statusError classifies a non-2xx answer.
func (c *client) statusError(path string, resp *http.Response, version string) error {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	detail := bodyDetail(resp.Header.Get("Content-Type"), msg)
	if detail != "" {
		detail = ": " + detail
	}
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("%s %s: %w (HTTP %d, sent %s): %s%s", c.what, path, ErrUnauthorized, code, c.cfg.Auth, c.authHint(code, string(msg)), detail)
	case code == http.StatusNotFound:
		return fmt.Errorf("%s %s: %w (HTTP 404): check the URL %s (with its path prefix) or upgrade the server: evident needs %s%s", c.what, path, ErrNotFound, c.cfg.URL, version, detail)
	case code == http.StatusBadRequest && strings.Contains(string(msg), "range specified by start and end exceeds"):
		// Tempo's query frontend: the search's max_duration (a week by
		// default).
		return fmt.Errorf("%s %s: %w (HTTP 400)%s", c.what, path, ErrWindowTooLong, detail)
	case code == http.StatusTooManyRequests:
		return rateLimitError{fmt.Errorf("%s %s: %w (HTTP %d)%s", c.what, path, ErrRetryable, code, detail)}
	case code >= 500:
		return fmt.Errorf("%s %s: %w (HTTP %d)%s", c.what, path, ErrRetryable, code, detail)
	default:
		return fmt.Errorf("%s %s: HTTP %d%s", c.what, path, code, detail)
	}
}

// rateLimitError is an ErrRetryable that says the server limits the
// client's queries (HTTP 429, Connect's resource_exhausted): whatever is
// asked fails alike while it lasts, so an item of a window that fails so
// does not fail alone (windowProgress.failed).
type rateLimitError struct{ err error }

func (e rateLimitError) Error() string { return e.err.Error() }
func (e rateLimitError) Unwrap() error { return e.err }

// authHint is credentialHint, unless msg is the tenant check of a
// multi-tenant Tempo or Pyroscope (multitenancy_enabled), which answers
// "no org id" before looking at any credentials.
func (c *client) authHint(code int, msg string) string {
	if c.cfg.Auth.OrgID == "" && strings.Contains(msg, "no org id") {
		return fmt.Sprintf("the server is multi-tenant and no tenant was sent: set EVIDENT_%s_ORG_ID", strings.ToUpper(c.what))
	}
	return c.credentialHint(code)
}

// credentialHint says which credential is missing or refused.
func (c *client) credentialHint(code int) string {
	env := "EVIDENT_" + strings.ToUpper(c.what)
	a := c.cfg.Auth
	switch {
	case a.User == "" && a.BearerToken == "":
		return fmt.Sprintf("no credentials were sent: set %s_USER and %s_PASSWORD (Grafana Cloud: instance id and access-policy token) or %s_TOKEN", env, env, env)
	case code == http.StatusForbidden:
		return "the credentials were accepted but lack a permission: on Grafana Cloud the token needs the " + c.what + " read scope" + orgHint(a, env)
	case a.User != "" && a.Password == "":
		return fmt.Sprintf("basic auth without a password: set %s_PASSWORD or %s_PASSWORD_FILE", env, env)
	default:
		return "the credentials were refused: check the user and token" + orgHint(a, env)
	}
}

func orgHint(a Auth, env string) string {
	if a.OrgID == "" {
		return fmt.Sprintf("; a multi-tenant server also needs %s_ORG_ID", env)
	}
	return ""
}
