package pyroscope

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/evidentsec/evident/internal/ingest"
	"github.com/evidentsec/evident/internal/ingest/admission"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/telemetry"
)

// Errors of a request, each mapped to its status by refuse.
var (
	errUnsupported = errors.New("unsupported request")
	errBadRequest  = errors.New("bad request")
	errBusy        = errors.New("busy")
)

// serveIngest handles POST /ingest as pyroscope-go and the other
// Pyroscope SDKs send it (protocols.md §3.1).
func (r *Receiver) serveIngest(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	defer r.m.observe("http", start)
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.refuse(w, http.StatusMethodNotAllowed, ingest.ReasonUnsupported, fmt.Errorf("%w: method %s, use POST", errUnsupported, req.Method))
		return
	}
	p, err := parseIngestParams(req.URL.Query(), time.Now())
	if err == nil {
		err = p.checkFormat()
	}
	if err != nil {
		r.refuseErr(w, err)
		return
	}
	body, err := r.readProfile(req, p.format)
	if err != nil {
		r.refuseErr(w, err)
		return
	}
	dec, release, err := r.acquire()
	if err != nil {
		r.refuseErr(w, err)
		return
	}
	defer release()
	if err := r.inflate(req, &body); err != nil {
		r.refuseErr(w, err)
		return
	}
	source := fmt.Sprintf("pyroscope %s %s from %s", req.URL.Path, p.name, req.RemoteAddr)
	if p.spyName != "" {
		source += " (" + p.spyName + ")"
	}
	preq := &telemetry.ProfileRequest{Limits: r.cfg.Profiles, Profiles: []telemetry.ReceivedProfile{p.received(body, source)}}
	batches, derr := dec.Decode(preq.Limits, &preq.Profiles[0])
	if len(batches) == 0 {
		if derr != nil {
			r.refuseErr(w, fmt.Errorf("%w: %w", errBadRequest, derr))
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	if derr != nil {
		// Pyroscope's answer has no room for partial success: the profile
		// is kept without the samples that did not decode.
		r.log.Warn("pyroscope profile partly decoded", "err", derr)
	}
	ctx := telemetry.WithReceivedProfiles(req.Context(), preq, batches)
	if err := r.profiles.Consume(ctx, batches); err != nil {
		c := consumerStatus(err)
		r.m.RefusedProfiles.WithLabelValues("pyroscope", "http", c.reason).Add(float64(len(batches)))
		if c.retry > 0 {
			w.Header().Set("Retry-After", retryAfterSeconds(c.retry))
		}
		http.Error(w, err.Error(), c.http)
		return
	}
	r.m.AcceptedProfiles.WithLabelValues("pyroscope", "http").Add(float64(len(batches)))
	w.WriteHeader(http.StatusOK)
}

// refuse answers a refused request with a plain-text error, as Pyroscope
// does.
func (r *Receiver) refuse(w http.ResponseWriter, status int, reason string, err error) {
	r.m.refusedRequest("http", reason)
	http.Error(w, err.Error(), status)
}

// refuseErr answers err with the status of its sentinel.
func (r *Receiver) refuseErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, admission.ErrMemory), errors.Is(err, admission.ErrBudget):
		w.Header().Set("Retry-After", "1")
		r.refuse(w, http.StatusTooManyRequests, ingest.ReasonMemory, err)
	case errors.Is(err, errBusy):
		w.Header().Set("Retry-After", "1")
		r.refuse(w, http.StatusTooManyRequests, ingest.ReasonFull, err)
	case errors.Is(err, ingest.ErrTooLarge), errors.Is(err, telemetry.ErrTooLarge), errors.Is(err, admission.ErrTooLarge):
		r.refuse(w, http.StatusRequestEntityTooLarge, ingest.ReasonTooLarge, err)
	case errors.Is(err, errUnsupported), errors.Is(err, ingest.ErrEncoding):
		r.refuse(w, http.StatusUnsupportedMediaType, ingest.ReasonUnsupported, err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// A slow client, not a malformed request.
		r.refuse(w, http.StatusRequestTimeout, ingest.ReasonTimeout, errors.New(ingest.BodyTimeout(r.cfg.ReadTimeout)))
	default:
		r.refuse(w, http.StatusBadRequest, ingest.ReasonMalformed, err)
	}
}

// ingestParams are the query parameters of /ingest.
type ingestParams struct {
	name               string // as sent, for messages
	service, namespace string
	from, until        time.Time // zero when not sent
	now                time.Time // when the request came
	sampleRate         int64
	spyName, format    string
	// profileType is what folded stacks and lines count
	// (telemetry.IngestWindow.Type).
	profileType string
}

// parseIngestParams reads the query of /ingest: name=app{k=v,...},
// from/until, sampleRate, spyName, format and units. A pprof or JFR body
// says what its sample types are; folded stacks and lines do not, so
// the application name's profile type ("app.alloc_objects") or units
// say it for them. aggregationType is for display and not needed.
func parseIngestParams(q url.Values, now time.Time) (ingestParams, error) {
	p := ingestParams{name: q.Get("name"), spyName: q.Get("spyName"), format: q.Get("format"), now: now}
	app, labels, err := parseName(p.name)
	if err != nil {
		return p, fmt.Errorf("%w: name %q: %w", errBadRequest, p.name, err)
	}
	p.profileType = profileTypeOf(app, q.Get("units"))
	p.service = labels["service_name"]
	if p.service == "" {
		p.service = trimProfileType(app)
	}
	if p.service == "" {
		return p, fmt.Errorf("%w: name %q: no application name and no service_name label", errBadRequest, p.name)
	}
	p.namespace = labels["service_namespace"]
	if p.from, err = parseTime(q.Get("from"), now); err != nil {
		return p, fmt.Errorf("%w: from: %w", errBadRequest, err)
	}
	if p.until, err = parseTime(q.Get("until"), now); err != nil {
		return p, fmt.Errorf("%w: until: %w", errBadRequest, err)
	}
	if !p.from.IsZero() && !p.until.IsZero() && p.from.After(p.until) {
		return p, fmt.Errorf("%w: from %s is after until %s", errBadRequest, q.Get("from"), q.Get("until"))
	}
	if s := q.Get("sampleRate"); s != "" {
		if p.sampleRate, err = strconv.ParseInt(s, 10, 32); err != nil || p.sampleRate < 0 {
			return p, fmt.Errorf("%w: sampleRate %q is not a rate in Hz", errBadRequest, s)
		}
	}
	return p, nil
}

// checkFormat refuses the formats evident does not read: speedscope,
// trie and tree carry no file names or classes to attribute frames by.
func (p ingestParams) checkFormat() error {
	switch p.format {
	case "", "pprof", "jfr", "folded", "groups", "lines":
		return nil
	}
	return fmt.Errorf("%w: format %q, evident reads pprof, jfr, folded (groups) and lines", errUnsupported, p.format)
}

// received is the profile of the request as received, in the request's
// format, with what the query says about it. With no format, a multipart
// form or a binary body is pprof (pyroscope-go) and a text body is folded
// stacks, as Pyroscope reads them.
func (p ingestParams) received(b profileBody, source string) telemetry.ReceivedProfile {
	rp := telemetry.ReceivedProfile{
		Format: telemetry.FormatPprof, Data: b.data, Source: source, Service: p.service, Namespace: p.namespace,
		Ingest: &telemetry.IngestWindow{From: p.from, Until: p.until, Now: p.now, SampleRate: p.sampleRate, Type: p.profileType},
	}
	switch {
	case p.format == "jfr":
		rp.Format, rp.Labels = telemetry.FormatPyroscopeJFR, b.labels
	case p.format == "lines":
		rp.Format = telemetry.FormatLines
	case p.format == "folded", p.format == "groups", p.format == "" && !b.form && isText(b.data):
		rp.Format = telemetry.FormatFolded
	}
	return rp
}

// isText reports whether data looks like folded stacks rather than a
// protobuf: valid UTF-8 without control characters but tabs and line
// ends.
func isText(data []byte) bool {
	if len(data) == 0 || !utf8.Valid(data) {
		return false
	}
	for _, c := range data {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}

// parseName splits Pyroscope's application name "app.name{k=v,k2=v2}"
// into the name and its labels.
func parseName(s string) (string, map[string]string, error) {
	app, rest, ok := strings.Cut(s, "{")
	app = strings.TrimSpace(app)
	labels := map[string]string{}
	if !ok {
		return app, labels, nil
	}
	body, ok := strings.CutSuffix(strings.TrimSpace(rest), "}")
	if !ok {
		return "", nil, errors.New("labels do not end with }")
	}
	for kv := range strings.SplitSeq(body, ",") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return "", nil, fmt.Errorf("label %q is not key=value", kv)
		}
		labels[k] = strings.TrimSpace(v)
	}
	return app, labels, nil
}

// trimProfileType strips the profile type older Pyroscope clients
// appended to the application name ("app.cpu"): the service is the name
// without it.
func trimProfileType(app string) string {
	if i := strings.LastIndexByte(app, '.'); i >= 0 && knownProfileType(app[i+1:]) {
		return app[:i]
	}
	return app
}

// knownProfileType reports whether typ is a profile type Pyroscope's
// clients append to the application name.
func knownProfileType(typ string) bool {
	switch typ {
	case "cpu", "itimer", "wall", "goroutines",
		"alloc_objects", "alloc_space", "inuse_objects", "inuse_space",
		"mutex_count", "mutex_duration", "block_count", "block_duration",
		"lock_count", "lock_duration", "alloc_in_new_tlab_objects", "alloc_in_new_tlab_bytes":
		return true
	}
	return false
}

// profileTypeOf is what folded stacks or lines sent as app with units
// count (telemetry.IngestWindow.Type): the profile type of the name, or
// else units; "" for the samples of a CPU or wall-clock profiler, which
// is what such a body is taken to count without either.
func profileTypeOf(app, units string) string {
	typ := ""
	if i := strings.LastIndexByte(app, '.'); i >= 0 && knownProfileType(app[i+1:]) {
		typ = app[i+1:]
	} else if units != "" && units != "samples" {
		typ = units
	}
	switch typ {
	case "cpu", "itimer", "wall":
		return ""
	}
	return typ
}

// parseTime reads from/until as Pyroscope does (attime): unix time in
// seconds, milliseconds, microseconds or nanoseconds, told apart by the
// number of digits, or "now" and "now-<duration>". "" gives the zero time.
func parseTime(s string, now time.Time) (time.Time, error) {
	switch {
	case s == "":
		return time.Time{}, nil
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "now-"):
		d, err := time.ParseDuration(s[len("now-"):])
		if err != nil {
			return time.Time{}, fmt.Errorf("%q: %w", s, err)
		}
		return now.Add(-d), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("%q is not a unix time", s)
	}
	switch digits := len(strings.TrimLeft(s, "0")); {
	case digits <= 10:
		return time.Unix(n, 0).UTC(), nil
	case digits <= 13:
		return time.UnixMilli(n).UTC(), nil
	case digits <= 16:
		return time.UnixMicro(n).UTC(), nil
	default:
		return time.Unix(0, n).UTC(), nil
	}
}

// profileBody is the profile of an /ingest request: as sent after
// readProfile, decompressed after inflate.
type profileBody struct {
	data []byte
	// labels is the JFR form's LabelsSnapshot, nil when not sent.
	labels []byte
	// form is true when the profile came in a multipart form.
	form bool
}

// readProfile reads the profile of an /ingest request: a part of a
// multipart form (profile as pyroscope-go sends it; jfr and labels as the
// Pyroscope Java agent does), or the whole body, within MaxRequestBytes,
// reserved on the request's ticket. inflate decompresses it.
func (r *Receiver) readProfile(req *http.Request, format string) (profileBody, error) {
	limit := r.cfg.MaxRequestBytes
	if ce := strings.TrimSpace(req.Header.Get("Content-Encoding")); ce != "" && ce != "identity" {
		return profileBody{}, fmt.Errorf("%w: content encoding %q; the profile itself may be gzipped", errUnsupported, ce)
	}
	t := ticketFrom(req.Context(), r.adm)
	body, err := ingest.ReadBody(nil, req.Body, req.ContentLength, limit, t)
	if err != nil {
		if errors.Is(err, ingest.ErrTooLarge) || errors.Is(err, admission.ErrBudget) || errors.Is(err, admission.ErrTooLarge) {
			return profileBody{}, err
		}
		return profileBody{}, fmt.Errorf("%w: read body: %w", errBadRequest, err)
	}
	var pb profileBody
	mt, params, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		name := "profile"
		if format == "jfr" {
			name = "jfr"
		}
		parts, err := formParts(body, params["boundary"], limit, t, name, "labels")
		if err != nil {
			return profileBody{}, err
		}
		body, pb.form = parts[name], true
		if format == "jfr" {
			pb.labels = parts["labels"]
		}
	}
	pb.data = body
	return pb, nil
}

// inflate decompresses the profile and labels of pb, read by
// readProfile, within MaxRequestBytes together. It runs under a request
// slot: a crafted body can make inflating it cost seconds of CPU, which
// MaxConcurrentRequests bounds so.
func (r *Receiver) inflate(req *http.Request, pb *profileBody) error {
	limit := r.cfg.MaxRequestBytes
	t := ticketFrom(req.Context(), r.adm)
	if pb.labels != nil {
		var err error
		if pb.labels, err = r.decompress(pb.labels, limit, t); err != nil {
			return err
		}
	}
	// The limit holds for the request: the labels and the profile
	// together.
	data, err := r.decompress(pb.data, limit-int64(len(pb.labels)), t)
	pb.data = data
	return err
}

// decompress returns a profile, gunzipped (or zstd-decoded) when it is
// compressed, within limit bytes after decompression.
func (r *Receiver) decompress(data []byte, limit int64, t *admission.Ticket) ([]byte, error) {
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: profile of %d bytes, limit %d", ingest.ErrTooLarge, len(data), limit)
	}
	out, err := r.dec.Decompress(nil, data, "", limit, t)
	if errors.Is(err, ingest.ErrCorrupt) {
		return nil, fmt.Errorf("%w: %w", errBadRequest, err)
	}
	return out, err
}

// formParts returns the named parts of a multipart form, the first of
// which must be there. The other parts are not needed:
// sample_type_config names and units the sample types for display, which
// the pprof does itself, and prev_profile, sent by old clients beside
// cumulative profiles, is not used either (the profile alone says which
// functions ran). The parts are copied out of body, their bytes reserved
// on t, and they are refused over limit.
func formParts(body []byte, boundary string, limit int64, t *admission.Ticket, names ...string) (map[string][]byte, error) {
	if boundary == "" {
		return nil, fmt.Errorf("%w: multipart form without boundary", errBadRequest)
	}
	parts := map[string][]byte{}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: multipart form: %w", errBadRequest, err)
		}
		name := part.FormName()
		if !slices.Contains(names, name) || parts[name] != nil {
			continue
		}
		data, err := ingest.ReadBody(nil, part, -1, limit, t)
		switch {
		case errors.Is(err, ingest.ErrTooLarge), errors.Is(err, admission.ErrBudget), errors.Is(err, admission.ErrTooLarge):
			return nil, err
		case err != nil:
			return nil, fmt.Errorf("%w: multipart part %s: %w", errBadRequest, name, err)
		case data == nil:
			data = []byte{} // there, and empty
		}
		parts[name] = data
	}
	if parts[names[0]] == nil {
		return nil, fmt.Errorf("%w: multipart form has no %s part", errBadRequest, names[0])
	}
	return parts, nil
}

// refusal is how a consumer error is answered.
type refusal struct {
	http   int
	retry  time.Duration
	reason string
}

// defaultRetry is the wait suggested when a consumer is full without
// saying for how long.
const defaultRetry = time.Second

// consumerStatus maps a consumer error: a full queue is throttling (429
// with Retry-After), a Permanent error is bad data (400), anything else
// is a retryable outage (503).
func consumerStatus(err error) refusal {
	var fe *pipeline.FullError
	var ue *pipeline.UnavailableError
	switch {
	case errors.As(err, &fe):
		retry := fe.RetryAfter
		if retry <= 0 {
			retry = defaultRetry
		}
		return refusal{http.StatusTooManyRequests, retry, ingest.ReasonFull}
	case errors.Is(err, pipeline.ErrFull):
		return refusal{http.StatusTooManyRequests, defaultRetry, ingest.ReasonFull}
	case pipeline.IsPermanent(err):
		return refusal{http.StatusBadRequest, 0, ingest.ReasonRejected}
	case errors.As(err, &ue):
		return refusal{http.StatusServiceUnavailable, max(ue.RetryAfter, defaultRetry), ingest.ReasonUnavailable}
	default:
		return refusal{http.StatusServiceUnavailable, 0, ingest.ReasonUnavailable}
	}
}

// retryAfterSeconds rounds d up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(max(1, math.Ceil(d.Seconds()))), 10)
}
