package detect

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"github.com/evidentsec/evident/internal/telemetry"
)

// AnomalyConfig sets the baselines of Anomalies.
type AnomalyConfig struct {
	// Bucket is the time bucket rates are counted in, by span end time.
	Bucket time.Duration `yaml:"bucket"`
	// Alpha is the EWMA weight of the newest bucket, in (0, 1].
	Alpha float64 `yaml:"alpha"`
	// WarmUp is the number of buckets an endpoint's baseline learns from
	// before it can alert.
	WarmUp int `yaml:"warm_up"`
	// MinRequests is the fewest requests in a bucket for a request-rate
	// alert; MinErrors the fewest errors for an error-rate alert.
	MinRequests int64 `yaml:"min_requests"`
	MinErrors   int64 `yaml:"min_errors"`
	// RateFactor and Sigmas make a request-rate spike: more than
	// RateFactor times the baseline and more than Sigmas standard
	// deviations above it.
	RateFactor float64 `yaml:"rate_factor"`
	Sigmas     float64 `yaml:"sigmas"`
	// ErrorRateDelta is how far, as a fraction of requests, the error
	// rate of a bucket must exceed its baseline.
	ErrorRateDelta float64 `yaml:"error_rate_delta"`
	// MaxEndpoints bounds the endpoints with a baseline; new endpoints
	// beyond it are not tracked.
	MaxEndpoints int `yaml:"max_endpoints"`
	// HostWarmUp is how long after a service is first seen its outbound
	// hosts are learnt without alerting.
	HostWarmUp time.Duration `yaml:"host_warm_up"`
	// MaxHosts bounds the outbound hosts remembered per service;
	// MaxServices the services whose hosts are remembered.
	MaxHosts    int `yaml:"max_hosts"`
	MaxServices int `yaml:"max_services"`
}

// DefaultAnomalyConfig returns 10-second buckets, a baseline of about the
// last minute (alpha 0.3) learnt over 6 buckets, spikes of 3x and 4
// sigmas over at least 20 requests, an error rate 20 points above its
// baseline over at least 5 errors, and hosts learnt for 5 minutes.
func DefaultAnomalyConfig() AnomalyConfig {
	return AnomalyConfig{
		Bucket: 10 * time.Second, Alpha: 0.3, WarmUp: 6,
		MinRequests: 20, MinErrors: 5, RateFactor: 3, Sigmas: 4, ErrorRateDelta: 0.2,
		MaxEndpoints: 10_000, HostWarmUp: 5 * time.Minute, MaxHosts: 1_000, MaxServices: 10_000,
	}
}

// ErrInvalidConfig is wrapped by the errors of AnomalyConfig.Validate.
var ErrInvalidConfig = errors.New("invalid detection configuration")

// Validate reports the first problem in c.
func (c AnomalyConfig) Validate() error {
	switch {
	case c.Bucket <= 0:
		return fmt.Errorf("%w: bucket %v is not positive", ErrInvalidConfig, c.Bucket)
	case !(c.Alpha > 0 && c.Alpha <= 1):
		return fmt.Errorf("%w: alpha %v is not within (0, 1]", ErrInvalidConfig, c.Alpha)
	case c.WarmUp < 1:
		return fmt.Errorf("%w: warm_up %d is below 1", ErrInvalidConfig, c.WarmUp)
	case c.MinRequests < 1 || c.MinErrors < 1:
		return fmt.Errorf("%w: min_requests %d and min_errors %d must be at least 1", ErrInvalidConfig, c.MinRequests, c.MinErrors)
	case c.RateFactor < 1 || c.Sigmas < 0:
		return fmt.Errorf("%w: rate_factor %v must be at least 1 and sigmas %v not negative", ErrInvalidConfig, c.RateFactor, c.Sigmas)
	case !(c.ErrorRateDelta > 0 && c.ErrorRateDelta <= 1):
		return fmt.Errorf("%w: error_rate_delta %v is not within (0, 1]", ErrInvalidConfig, c.ErrorRateDelta)
	case c.MaxEndpoints < 1 || c.MaxHosts < 1 || c.MaxServices < 1:
		return fmt.Errorf("%w: max_endpoints %d, max_hosts %d and max_services %d must be at least 1", ErrInvalidConfig, c.MaxEndpoints, c.MaxHosts, c.MaxServices)
	case c.HostWarmUp < 0:
		return fmt.Errorf("%w: host_warm_up %v is negative", ErrInvalidConfig, c.HostWarmUp)
	}
	return nil
}

// Anomalies keeps an EWMA baseline of the request and error rate of every
// endpoint, per time bucket, and the outbound hosts of every service.
// Time is the spans' own (their end), so replays and tests behave as live
// traffic did. It is not safe for concurrent use: one goroutine owns it.
type Anomalies struct {
	cfg AnomalyConfig
	// endpoints are the baselines by endpointKey, so that a span's is
	// found without making its endpoint's name.
	endpoints map[string]*baseline
	services  map[string]*hostSet
}

// baseline is the state of one endpoint: the open bucket and the EWMA of
// closed ones.
type baseline struct {
	service, endpoint string
	bucket            int64 // index of the open bucket
	requests, errs    int64
	buckets           int // closed buckets learnt
	mean, variance    float64
	errRate           float64
	errLearnt         bool
}

type hostSet struct {
	first time.Time
	hosts map[string]bool
}

// NewAnomalies returns an empty detector; cfg must be valid.
func NewAnomalies(cfg AnomalyConfig) *Anomalies {
	return &Anomalies{cfg: cfg, endpoints: make(map[string]*baseline), services: make(map[string]*hostSet)}
}

// Observe counts a span and returns the alerts it caused: the anomalies
// of a bucket it closed, or a first-seen outbound host.
func (d *Anomalies) Observe(sp *telemetry.Span, receivedAt, now time.Time) []Alert {
	switch sp.Kind {
	case telemetry.SpanKindServer, telemetry.SpanKindConsumer:
		return d.request(sp, receivedAt, now)
	case telemetry.SpanKindClient:
		return d.outbound(sp, receivedAt, now)
	}
	return nil
}

func (d *Anomalies) request(sp *telemetry.Span, receivedAt, now time.Time) []Alert {
	a, sep, c := endpointParts(sp)
	var buf [memoKeyBytes]byte
	k := endpointKey(buf[:0], sp.Service, a, sep, c)
	idx := sp.End.UnixNano() / int64(d.cfg.Bucket)
	b := d.endpoints[string(k)]
	if b == nil {
		if len(d.endpoints) >= d.cfg.MaxEndpoints {
			return nil
		}
		b = &baseline{service: sp.Service, endpoint: a + sep + c, bucket: idx}
		d.endpoints[string(k)] = b
	}
	var out []Alert
	if idx > b.bucket {
		out = d.close(b, receivedAt, now)
		gap := idx - b.bucket - 1
		if gap > int64(4*d.cfg.WarmUp) {
			// After a long silence (a deploy, a night) the old baseline
			// says nothing about the traffic that resumes: learn anew.
			*b = baseline{}
		}
		// Buckets without a request count as zeros.
		for ; gap > 0 && b.buckets > 0; gap-- {
			b.learn(d.cfg.Alpha, 0)
		}
		b.bucket, b.requests, b.errs = idx, 0, 0
	}
	// A late span counts in the open bucket: reordering by a few seconds
	// moves counts between neighbouring buckets, nothing more.
	b.requests++
	if sp.Error {
		b.errs++
	}
	return out
}

// close evaluates the open bucket of an endpoint against its baseline,
// then learns from it.
func (d *Anomalies) close(b *baseline, receivedAt, now time.Time) []Alert {
	cfg := &d.cfg
	n := float64(b.requests)
	per := cfg.Bucket.Seconds()
	start := time.Unix(0, b.bucket*int64(cfg.Bucket)).UTC()
	var out []Alert
	if b.buckets >= cfg.WarmUp {
		if b.requests >= cfg.MinRequests && n > cfg.RateFactor*b.mean && n > b.mean+cfg.Sigmas*math.Sqrt(b.variance) {
			out = append(out, Alert{
				Kind: KindRequestRate, Severity: Medium, Service: b.service,
				Summary:   Text(fmt.Sprintf("request rate of %s %s is %.1f/s, baseline %.1f/s", b.service, b.endpoint, n/per, b.mean/per)),
				Evidence:  Evidence{Endpoint: b.endpoint, Observed: n / per, Expected: b.mean / per},
				DedupeKey: dedupeKey(KindRequestRate, b.service, b.endpoint),
				Time:      now, Observed: start, ReceivedAt: receivedAt,
			})
		}
		if b.errLearnt && b.errs >= cfg.MinErrors {
			rate := float64(b.errs) / n
			if rate-b.errRate >= cfg.ErrorRateDelta {
				out = append(out, Alert{
					Kind: KindErrorRate, Severity: Medium, Service: b.service,
					Summary:   Text(fmt.Sprintf("error rate of %s %s is %.0f%%, baseline %.0f%%", b.service, b.endpoint, rate*100, b.errRate*100)),
					Evidence:  Evidence{Endpoint: b.endpoint, Observed: rate, Expected: b.errRate},
					DedupeKey: dedupeKey(KindErrorRate, b.service, b.endpoint),
					Time:      now, Observed: start, ReceivedAt: receivedAt,
				})
			}
		}
	}
	b.learn(cfg.Alpha, n)
	if b.requests > 0 {
		rate := float64(b.errs) / n
		if !b.errLearnt {
			b.errRate, b.errLearnt = rate, true
		} else {
			b.errRate += cfg.Alpha * (rate - b.errRate)
		}
	}
	return out
}

// learn folds a bucket's count into the EWMA mean and variance
// (West's incremental form).
func (b *baseline) learn(alpha, x float64) {
	if b.buckets == 0 {
		b.mean, b.variance = x, 0
	} else {
		diff := x - b.mean
		incr := alpha * diff
		b.mean += incr
		b.variance = (1 - alpha) * (b.variance + diff*incr)
	}
	b.buckets++
}

func (d *Anomalies) outbound(sp *telemetry.Span, receivedAt, now time.Time) []Alert {
	host := outboundHost(&sp.Attrs)
	if host == "" || isLoopback(host) {
		return nil
	}
	s := d.services[sp.Service]
	if s == nil {
		if len(d.services) >= d.cfg.MaxServices {
			return nil
		}
		s = &hostSet{first: sp.Start, hosts: make(map[string]bool)}
		d.services[sp.Service] = s
	}
	if s.hosts[host] || len(s.hosts) >= d.cfg.MaxHosts {
		return nil
	}
	s.hosts[host] = true
	if sp.Start.Sub(s.first) < d.cfg.HostWarmUp {
		return nil
	}
	sev := Medium
	if ip := net.ParseIP(host); ip != nil && (ip.IsPrivate() || ip.IsLinkLocalUnicast()) {
		sev = Low
	}
	return []Alert{{
		Kind: KindNewHost, Severity: sev, Service: sp.Service,
		Summary:   Text(fmt.Sprintf("%s called %s for the first time", sp.Service, host)),
		Evidence:  Evidence{Host: host, TraceID: fmtID(sp.TraceID[:]), SpanID: fmtID(sp.SpanID[:]), Endpoint: sp.Name},
		DedupeKey: dedupeKey(KindNewHost, sp.Service, host),
		Time:      now, Observed: sp.Start, ReceivedAt: receivedAt,
	}}
}

// Learn makes hosts known as outbound hosts of service, first seen at
// first, as if its spans had called them, without alerting: what an
// engine restoring its runtime model after a restart knows already, so
// that a host called before the restart, and not within the warm-up
// after it, is not called "for the first time" then.
func (d *Anomalies) Learn(service string, first time.Time, hosts []string) {
	s := d.services[service]
	if s == nil {
		if len(d.services) >= d.cfg.MaxServices {
			return
		}
		s = &hostSet{first: first, hosts: make(map[string]bool, len(hosts))}
		d.services[service] = s
	}
	if first.Before(s.first) {
		s.first = first
	}
	for _, h := range hosts {
		if len(s.hosts) >= d.cfg.MaxHosts {
			return
		}
		s.hosts[strings.ToLower(h)] = true
	}
}

// outboundHost is the host a CLIENT span called, as the model names it,
// "" for database and messaging spans whose store is their identity.
func outboundHost(a *telemetry.Attrs) string {
	if a.DBSystem != "" || a.MessagingSystem != "" {
		return ""
	}
	if a.ServerAddress != "" {
		return strings.ToLower(a.ServerAddress)
	}
	if a.URLFull != "" {
		rest := a.URLFull
		if _, after, ok := strings.Cut(rest, "://"); ok {
			rest = after
		}
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			rest = rest[:i]
		}
		if _, after, ok := strings.Cut(rest, "@"); ok {
			rest = after
		}
		if h, _, err := net.SplitHostPort(rest); err == nil {
			rest = h
		}
		return strings.ToLower(strings.Trim(rest, "[]"))
	}
	return ""
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	// Only an IPv4 address starts with a digit, and only an IPv6 one
	// holds a colon: a host name is not parsed.
	if host == "" || (host[0] < '0' || host[0] > '9') && !strings.Contains(host, ":") {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
