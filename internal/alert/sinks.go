package alert

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/pipeline"
)

// Headers of the webhook sink.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256, under the
	// shared secret, of the TimestampHeader value, a dot and the raw
	// request body (see Sign).
	SignatureHeader = "X-Evident-Signature"
	// TimestampHeader carries the Unix time, in seconds, the request was
	// sent. The signature covers it, so a receiver that refuses old
	// timestamps refuses replayed deliveries too.
	TimestampHeader = "X-Evident-Timestamp"
)

// Sign returns the value of SignatureHeader for a request whose
// TimestampHeader is timestamp and whose body is body: "sha256=" and the
// hex HMAC-SHA256 under secret of timestamp + "." + body, the scheme of
// Stripe's webhooks. The timestamp is signed so that a receiver can trust
// it against replays; a signature over the body alone would let anyone
// who saw one delivery send it again, with any timestamp, for ever.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Webhook posts each alert as JSON (the Alert type) to a URL, with its
// timestamp and body signed with HMAC-SHA256 when a secret is set.
type Webhook struct {
	name   string
	url    string
	secret []byte
	client *http.Client
	now    func() time.Time
}

// NewWebhook returns a webhook sink called name; client nil is
// http.DefaultClient. The sink follows no redirect, whatever client's
// CheckRedirect: a 3xx answer is a permanent error.
func NewWebhook(name, rawURL, secret string, client *http.Client) (*Webhook, error) {
	if err := checkURL(rawURL); err != nil {
		return nil, fmt.Errorf("webhook sink %s: %w", name, err)
	}
	return &Webhook{name: name, url: rawURL, secret: []byte(secret), client: orDefault(client), now: time.Now}, nil
}

// Name returns the sink's name.
func (w *Webhook) Name() string { return w.name }

// Send posts a.
func (w *Webhook) Send(ctx context.Context, a Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("encode alert %s: %w", a.ID, err))
	}
	// Each attempt, retries included, is stamped and signed afresh, so a
	// retry that waited is not refused as stale; receivers drop repeats by
	// the alert's id.
	ts := strconv.FormatInt(w.now().Unix(), 10)
	h := http.Header{"Content-Type": {"application/json"}, TimestampHeader: {ts}}
	if len(w.secret) > 0 {
		h.Set(SignatureHeader, Sign(w.secret, ts, body))
	}
	return post(ctx, w.client, w.url, h, body)
}

// Alertmanager posts alerts to the Alertmanager v2 API
// (POST /api/v2/alerts).
type Alertmanager struct {
	name         string
	endpoint     string
	orgID        string
	client       *http.Client
	resolveAfter time.Duration
}

// NewAlertmanager returns a sink posting to the Alertmanager at baseURL
// ("http://alertmanager:9093"). Evident's alerts are events, so each is
// sent with endsAt resolveAfter after it fired. orgID is the
// X-Scope-OrgID each post carries, for a multi-tenant Alertmanager
// (Grafana Mimir's, Cortex's); empty
// sends the alert's tenant (Alert.Tenant), and none for the default
// tenant's alerts, which a single-tenant Alertmanager ignores either way.
func NewAlertmanager(name, baseURL, orgID string, resolveAfter time.Duration, client *http.Client) (*Alertmanager, error) {
	if err := checkURL(baseURL); err != nil {
		return nil, fmt.Errorf("alertmanager sink %s: %w", name, err)
	}
	if resolveAfter <= 0 {
		return nil, fmt.Errorf("alertmanager sink %s: resolve_after %v is not positive", name, resolveAfter)
	}
	for _, c := range orgID {
		if c <= ' ' || c > '~' {
			return nil, fmt.Errorf("alertmanager sink %s: org_id %q: want printable ASCII without spaces", name, orgID)
		}
	}
	return &Alertmanager{
		name: name, endpoint: strings.TrimSuffix(baseURL, "/") + "/api/v2/alerts", orgID: orgID,
		client: orDefault(client), resolveAfter: resolveAfter,
	}, nil
}

// Name returns the sink's name.
func (m *Alertmanager) Name() string { return m.name }

// amAlert is a postableAlert of the Alertmanager v2 OpenAPI spec.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Send posts a as a one-alert list.
func (m *Alertmanager) Send(ctx context.Context, a Alert) error {
	labels := map[string]string{
		"alertname": "evident_" + string(a.Kind),
		"severity":  string(a.Severity),
		"kind":      string(a.Kind),
		// The dedupe key keeps distinct conditions distinct alerts in
		// Alertmanager's grouping.
		"key": a.DedupeKey,
	}
	if a.Service != "" {
		labels["service"] = a.Service
	}
	if a.Tenant != "" {
		labels["tenant"] = a.Tenant
	}
	ann := map[string]string{"summary": a.Summary}
	if ev, err := json.Marshal(a.Evidence); err == nil {
		ann["evidence"] = string(ev)
	}
	if a.FindingLink != "" {
		ann["finding"] = a.FindingLink
	}
	body, err := json.Marshal([]amAlert{{
		Labels: labels, Annotations: ann, StartsAt: a.Time.UTC(), EndsAt: a.Time.Add(m.resolveAfter).UTC(), GeneratorURL: a.Link,
	}})
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("encode alert %s: %w", a.ID, err))
	}
	h := http.Header{"Content-Type": {"application/json"}}
	if org := cmp.Or(m.orgID, a.Tenant); org != "" {
		h.Set(auth.TenantHeader, org)
	}
	return post(ctx, m.client, m.endpoint, h, body)
}

// Slack posts alerts to a Slack-compatible incoming webhook (Slack,
// Mattermost, Rocket.Chat): a "text" fallback and Block Kit "blocks".
// Mattermost shows the fallback alone, so it holds the alert's links as
// well as its title.
type Slack struct {
	name   string
	url    string
	client *http.Client
}

// NewSlack returns a sink posting to the incoming webhook at rawURL.
func NewSlack(name, rawURL string, client *http.Client) (*Slack, error) {
	if err := checkURL(rawURL); err != nil {
		return nil, fmt.Errorf("slack sink %s: %w", name, err)
	}
	return &Slack{name: name, url: rawURL, client: orDefault(client)}, nil
}

// Name returns the sink's name.
func (s *Slack) Name() string { return s.name }

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

// Send posts a.
func (s *Slack) Send(ctx context.Context, a Alert) error {
	title := fmt.Sprintf("[%s] %s", strings.ToUpper(string(a.Severity)), slackEscape(clip(a.Summary, slackSummaryRunes)))
	var links string
	if a.Link != "" {
		links = "\n<" + a.Link + "|alert " + a.ID + ">"
	}
	if a.FindingLink != "" {
		links += " · <" + a.FindingLink + "|finding>"
	}
	ctxLine := "kind " + slackCode(string(a.Kind))
	if a.Tenant != "" {
		ctxLine += " · tenant " + slackCode(a.Tenant)
	}
	if a.Service != "" {
		ctxLine += " · service " + slackCode(a.Service)
	}
	if a.Evidence.Endpoint != "" {
		ctxLine += " · endpoint " + slackCode(a.Evidence.Endpoint)
	}
	if a.Evidence.Match != "" {
		ctxLine += " · matched " + slackCode(a.Evidence.Match)
	}
	body, err := json.Marshal(map[string]any{
		// Slack reads the fallback as mrkdwn too, and it is what a
		// notification and a client without blocks show; Mattermost
		// translates its <url|text> links.
		"text": title + links,
		"blocks": []slackBlock{
			{Type: "section", Text: &slackText{Type: "mrkdwn", Text: "*" + title + "*" + links}},
			{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: ctxLine}}},
		},
	})
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("encode alert %s: %w", a.ID, err))
	}
	return post(ctx, s.client, s.url, http.Header{"Content-Type": {"application/json"}}, body)
}

// Slack refuses, with a 400 that no retry helps, a message whose section
// or context text holds more than 3000 characters (Block Kit's limit of
// a text object). The summary and the context's values carry what a
// request chose (a path, a payload), so each is cut: the summary at 400
// characters, each value at 120, which escaped (each "&" is five)
// keeps both texts under the limit, the alert's links included. The
// whole evidence is the alert's, behind its link.
const (
	slackSummaryRunes = 400
	slackValueRunes   = 120
)

// clip returns s cut to at most n characters, the last of them "…" when
// it was cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, k := 0, 0
	for i = range s {
		if k == n-1 {
			break
		}
		k++
	}
	return s[:i] + "…"
}

// slackEscape escapes text an attacker may have chosen so that it
// forges no link or mention in any product that takes the message:
// Slack's mrkdwn reserves "&", "<" and ">" (<!channel>, <url|text>);
// Mattermost and Rocket.Chat read the text as Markdown, in which @channel, @here, @all or @name notifies and
// [text](url) or ![x](url) is a link or an image that hides where it
// goes. Neither has an escape Slack shows as nothing (Slack prints a
// backslash), so a zero-width space follows each "@", which then starts
// no mention, and each "]", after which no "(" or ":" makes a link or a
// link's definition; the text looks the same.
func slackEscape(s string) string { return slackEscaper.Replace(s) }

// slackEscaper is slackEscape's replacer, built once (a Replacer is safe
// for concurrent use).
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "@", "@\u200b", "]", "]\u200b")

// slackCode is s, cut to slackValueRunes, escaped as an inline code
// span, in which Slack formats nothing. mrkdwn has no escape for a
// backtick, and one in s would close the span and have the rest
// formatted, so a backtick of s is shown as the modifier letter grave
// accent (U+02CB), which looks the same.
func slackCode(s string) string {
	return "`" + strings.ReplaceAll(slackEscape(clip(s, slackValueRunes)), "`", "\u02cb") + "`"
}

// JSONLines appends each alert as one JSON line to a file.
type JSONLines struct {
	name string
	mu   sync.Mutex
	f    *os.File
}

// OpenJSONLines opens (creating it) path for appending.
func OpenJSONLines(name, path string) (*JSONLines, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("json lines sink %s: %w", name, err)
	}
	return &JSONLines{name: name, f: f}, nil
}

// Name returns the sink's name.
func (j *JSONLines) Name() string { return j.name }

// Send appends a with one write, so that lines never interleave.
func (j *JSONLines) Send(_ context.Context, a Alert) error {
	line, err := json.Marshal(a)
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("encode alert %s: %w", a.ID, err))
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write alert %s to %s: %w", a.ID, j.f.Name(), err)
	}
	return nil
}

// Close closes the file; call it after the router's Shutdown.
func (j *JSONLines) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.f.Close()
}

// ErrStatus is wrapped by the error of a delivery the server refused.
var ErrStatus = errors.New("unexpected HTTP status")

// post sends body and classifies the answer: 2xx is delivered; 408, 429
// and 5xx are retried; other statuses, redirects included, are permanent
// (the request itself is wrong and will stay wrong).
func post(ctx context.Context, client *http.Client, u string, h http.Header, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return pipeline.Permanent(fmt.Errorf("post alert: %w", redactURLError(err, u)))
	}
	req.Header = h
	resp, err := client.Do(req)
	if err != nil {
		// The client's error names the URL with its path and query,
		// which hold the secret of a Slack webhook or a token.
		return fmt.Errorf("post alert: %w", redactURLError(err, u))
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("post alert to %s: %w %d: %s", redact(u), ErrStatus, resp.StatusCode, strings.TrimSpace(string(msg)))
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
		// Not followed (orDefault); the target's path may hold a token.
		if to, perr := resp.Request.URL.Parse(loc); perr == nil {
			loc = redact(to.String())
		} else {
			loc = "an invalid URL"
		}
		err = fmt.Errorf("post alert to %s: %w %d: redirected to %s, not followed: configure the sink with the URL that takes the POST", redact(u), ErrStatus, resp.StatusCode, loc)
	}
	if resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return err
	}
	return pipeline.Permanent(err)
}

// redact keeps webhook URLs, which often carry their token in the path,
// out of logs.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "webhook"
	}
	return p.Scheme + "://" + p.Host
}

// redactURLError is err, when it is the *url.Error of net/http or
// url.Parse, whose message quotes the URL whole, with the URL reduced to
// redact(u); it still wraps the same cause.
func redactURLError(err error, u string) error {
	ue, ok := err.(*url.Error)
	if !ok {
		return err
	}
	c := *ue
	c.URL = redact(u)
	return &c
}

// checkURL refuses a URL a sink cannot post to, saying what it lacks:
// redact(raw) of a URL without a scheme or a host is "://", which named
// nothing, and the URL whole may hold the sink's credentials (a Slack
// webhook's path), so the error names the part that is wrong instead.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("url: %w", redactURLError(err, raw))
	}
	const want = "want http://HOST/... or https://HOST/..."
	switch {
	case u.Scheme == "":
		return fmt.Errorf("url is not an http(s) URL: it has no scheme (%s)", want)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("url is not an http(s) URL: its scheme is %q (%s)", u.Scheme, want)
	case u.Host == "":
		return fmt.Errorf("url is not an http(s) URL: it has no host after %s:// (%s)", u.Scheme, want)
	}
	return nil
}

// orDefault returns a copy of c (nil: http.DefaultClient) that follows
// no redirect. net/http follows a 301, 302 or 303 to a POST with a GET
// without the body, which a login page or a moved receiver answers 200:
// the alert was lost and counted as sent; and it follows a 307 or 308
// with the body and the signature to whatever host, and scheme, the
// answer names. A sink is configured with its final URL; a redirect is a
// permanent error that names where it pointed (post).
func orDefault(c *http.Client) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &nc
}
