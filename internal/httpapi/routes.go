package httpapi

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/detect"
	"github.com/evidentsec/evident/internal/findings"
	"github.com/evidentsec/evident/internal/report"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/waf"
)

// services lists the services of the runtime model by name.
func (s *Server) services(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := parseLimit(q)
	var after string
	if err == nil {
		_, err = decodeCursor(q, "services", &after)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	all := report.ServicesJSON(s.stateOf(r).Result())
	slices.SortStableFunc(all, func(a, b report.JSONService) int { return cmp.Compare(a.Name, b.Name) })
	page, more := pageAfter(all, limit, func(svc report.JSONService) bool { return svc.Name > after })
	body := struct {
		Services   []report.JSONService `json:"services"`
		NextCursor string               `json:"next_cursor,omitempty"`
	}{Services: nonNil(page)}
	if more {
		body.NextCursor = encodeCursor("services", page[len(page)-1].Name)
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) service(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	for _, svc := range report.ServicesJSON(s.stateOf(r).Result()) {
		if svc.Name == name {
			writeJSON(w, http.StatusOK, svc)
			return
		}
	}
	writeError(w, http.StatusNotFound, "no service %q", name)
}

// graphNode and graphEdge are the runtime graph: services, data stores and
// third parties, and the calls between them.
type graphNode struct {
	ID       string   `json:"id"`
	Kind     string   `json:"kind"` // service, database, objectstore, messaging, external
	Exposure string   `json:"exposure,omitempty"`
	Labels   []string `json:"labels,omitempty"`
}

type graphEdge struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Calls  int64  `json:"calls"`
	Errors int64  `json:"errors"`
}

func (s *Server) graph(w http.ResponseWriter, r *http.Request) {
	res := s.stateOf(r).Result()
	nodes := []graphNode{}
	edges := []graphEdge{}
	seen := map[string]bool{}
	labels := map[string][]string{}
	for _, a := range res.Assessments {
		for _, st := range a.BlastRadius {
			labels[st.Name] = st.Labels
		}
	}
	services := report.ServicesJSON(res)
	for _, svc := range services {
		nodes = append(nodes, graphNode{ID: svc.Name, Kind: "service", Exposure: string(svc.Exposure.Level)})
		seen[svc.Name] = true
	}
	if res.Snapshot != nil {
		for _, svc := range res.Snapshot.Services {
			for _, e := range svc.Edges {
				edges = append(edges, graphEdge{From: e.From, To: e.To, Calls: e.Calls, Errors: e.Errors})
			}
			for _, st := range svc.Stores {
				if !seen[st.Name] {
					seen[st.Name] = true
					nodes = append(nodes, graphNode{ID: st.Name, Kind: st.Kind, Labels: labels[st.Name]})
				}
				edges = append(edges, graphEdge{From: svc.Name, To: st.Name, Calls: st.Calls, Errors: st.Errors})
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": nodes, "edges": edges})
}

// findings lists findings, filtered and sorted by the query
// (report.FindingQuery), a page at a time.
func (s *Server) findings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fq, err := report.ParseFindingQuery(q, s.deps.Vulns.Stats().HasKEV())
	limit, lerr := parseLimit(q)
	err = errors.Join(err, lerr)
	of := "findings sorted by " + fq.SortName()
	var after report.FindingKey
	var hasCursor bool
	if err == nil {
		hasCursor, err = decodeCursor(q, of, &after)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	page, more := pageAfter(fq.Select(s.stateOf(r).Result().Assessments), limit, func(a assess.Assessment) bool {
		return !hasCursor || fq.Compare(report.KeyOf(a), after) > 0
	})
	body := struct {
		Findings   []report.JSONFinding `json:"findings"`
		NextCursor string               `json:"next_cursor,omitempty"`
	}{Findings: make([]report.JSONFinding, 0, len(page))}
	for _, a := range page {
		body.Findings = append(body.Findings, report.FindingJSON(a))
	}
	if more {
		body.NextCursor = encodeCursor(of, report.KeyOf(page[len(page)-1]))
	}
	writeJSON(w, http.StatusOK, body)
}

// nonNil is s, or an empty slice for nil: lists are [] in JSON, never
// null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *Server) finding(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, a := range s.stateOf(r).Result().Assessments {
		if report.FindingID(a.Finding) == id {
			writeJSON(w, http.StatusOK, report.FindingJSON(a))
			return
		}
	}
	writeError(w, http.StatusNotFound, "no finding %q", id)
}

func (s *Server) summary(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, report.SummaryJSON(s.stateOf(r).Result().Summary))
}

// export renders the current result in a report format.
func (s *Server) export(format, contentType string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, err := report.Lookup(format, report.Options{Products: s.deps.Products, Warn: func(err error) {
			s.deps.Logger.Warn("export", "format", format, "err", err)
		}})
		if err != nil {
			writeError(w, http.StatusInternalServerError, "%v", err)
			return
		}
		w.Header().Set("Content-Type", contentType)
		if err := f.Write(w, s.stateOf(r).Result()); err != nil {
			s.deps.Logger.Error("export", "format", format, "err", err)
		}
	}
}

// uploadTypes are the media types an upload may have: those of the
// formats of findings import. None is one a browser sends cross-origin
// without asking first (text/plain, forms), so a web page cannot post a
// report to a listener it can reach.
var uploadTypes = []string{
	"application/json", "application/x-ndjson", // scanner reports, CycloneDX and SPDX JSON
	"application/vnd.cyclonedx+json", "application/vnd.cyclonedx+xml", "application/xml", "text/xml",
	"application/spdx+json", "text/spdx", "application/rdf+xml", // SPDX
	"application/octet-stream", // Go executables
}

// upload replaces findings with a scanner report or SBOM, service by
// service: ?service= assigns every finding to that service and replaces
// its findings only; without it, the findings of each service the report
// names are replaced. ?format= names the format (default: detected).
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	if s.deps.Importer == nil {
		writeError(w, http.StatusServiceUnavailable, "uploads are not configured")
		return
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || !slices.Contains(uploadTypes, mt) {
		writeError(w, http.StatusUnsupportedMediaType, "content type %q: want one of %s", ct, strings.Join(uploadTypes, ", "))
		return
	}
	gzipped := false
	switch ce := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); ce {
	case "", "identity":
	case "gzip", "x-gzip":
		gzipped = true
	default:
		// RFC 9110, 15.5.16: 415, with the codings that would do.
		w.Header().Set("Accept-Encoding", "gzip")
		writeError(w, http.StatusUnsupportedMediaType, "content encoding %q: want gzip or none", ce)
		return
	}
	select {
	case s.uploads <- struct{}{}:
		defer func() { <-s.uploads }()
	default:
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusTooManyRequests, "%d uploads in progress, retry later", s.cfg.MaxConcurrentUploads)
		return
	}
	// Read the whole report first: the size limit must answer 413 whatever
	// the parser makes of a cut-off body.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, "report over %d bytes", s.cfg.MaxUploadBytes)
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "read report: %v", err)
		return
	}
	// A gzipped report file sent as it is (curl --data-binary
	// @report.json.gz) is read as findings import reads it; the limit
	// bounds what it holds too, or a few KiB could fill the memory.
	if gzipped || bytes.HasPrefix(body, []byte(gzipMagic)) {
		if body, err = gunzip(body, s.cfg.MaxUploadBytes); errors.Is(err, errTooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "report over %d bytes once decompressed", s.cfg.MaxUploadBytes)
			return
		} else if err != nil {
			writeError(w, http.StatusBadRequest, "read report: %v", err)
			return
		}
	}
	q := r.URL.Query()
	format := q.Get("format")
	if format == "" {
		format = "auto"
	}
	name := "upload"
	svc := q.Get("service")
	if q.Has("service") && !findings.ValidService(svc) {
		writeError(w, http.StatusBadRequest, "service %q: want a service name", svc)
		return
	}
	if svc != "" {
		name = "upload for " + svc
	}
	fs, errs := s.deps.Importer(bytes.NewReader(body), name, format)
	if len(fs) == 0 && len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "%v", errors.Join(errs...))
		return
	}
	services := []string{}
	switch {
	case svc != "":
		services = append(services, svc)
		for i := range fs {
			fs[i].Service = svc
		}
	case len(fs) == 0:
		// A clean scan has no findings whose sources name what it
		// scanned; the report itself says it (govulncheck's roots,
		// Trivy's ArtifactName), and the scan clears that service's
		// findings. Replacing nobody's would leave those the scan found
		// fixed in place.
		if svc = findings.ServiceName(findings.ReportArtifact(body, findings.Format(format))); svc == "" || !findings.ValidService(svc) {
			writeError(w, http.StatusBadRequest, "the report holds no findings and does not say which service it scanned: name it with ?service= to clear that service's findings")
			return
		}
		services = append(services, svc)
	case !findings.NameServices(fs):
		// The service of a report given without one is the one it says it
		// scanned, as evident analyze takes it ("cmd/orders" is orders's),
		// for the findings that name none (all but evident's own, findings
		// import --format json).
		if svc = reportService(fs); svc == "" {
			writeError(w, http.StatusBadRequest, "the report does not say which service it scanned: name it with ?service=")
			return
		}
		services = append(services, svc)
		findings.FillServices(fs, svc)
	}
	// The database tells the ids of one vulnerability that the report's
	// tools named differently.
	fs = findings.MergeWith(fs, s.deps.Vulns)
	for _, f := range fs {
		if !slices.Contains(services, f.Service) {
			services = append(services, f.Service)
		}
	}
	u := store.FindingsUpdate{Findings: fs, Services: services, Source: name + " (" + format + ")", Actor: actor(r), Time: s.deps.Now()}
	if err := s.stateOf(r).SetFindings(r.Context(), u); err != nil {
		writeError(w, storeStatus(err), "store findings: %v", err)
		return
	}
	skipped := make([]string, 0, len(errs))
	for _, err := range errs {
		skipped = append(skipped, err.Error())
	}
	slices.Sort(services)
	writeJSON(w, http.StatusOK, map[string]any{"findings": len(fs), "services": services, "skipped": skipped})
}

// gzipMagic starts every gzip stream.
const gzipMagic = "\x1f\x8b"

// errTooBig is what gunzip says of a body that holds more than its limit.
var errTooBig = errors.New("over the limit")

// gunzip is what the gzip body holds, errTooBig when that is over limit
// bytes.
func gunzip(body []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, err // "gzip: invalid header"
	}
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("gzip stream: %w", err)
	}
	if int64(len(out)) > limit {
		return nil, errTooBig
	}
	return out, nil
}

// reportService is the service the findings of one report that name
// none scanned, by the artifact their sources name (findings.ServiceName),
// or "".
func reportService(fs []findings.Finding) string {
	for _, f := range fs {
		if f.Service != "" {
			continue
		}
		for _, src := range f.Sources {
			if name := findings.ServiceName(src.Artifact); name != "" && findings.ValidService(name) {
				return name
			}
		}
	}
	return ""
}

// audit lists entries of the audit log, oldest first: those after ?after=
// (a sequence number) or the cursor, a page at a time.
func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	if s.deps.Audit == nil {
		writeError(w, http.StatusServiceUnavailable, "the audit log is not configured")
		return
	}
	q := r.URL.Query()
	var after int64
	limit, err := parseLimit(q)
	if v := q.Get("after"); err == nil && v != "" {
		if q.Has("cursor") {
			err = fmt.Errorf("after %q and a cursor: give one", v)
		} else if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			err = fmt.Errorf("after %q: want a sequence number, 0 or more", v)
		}
	}
	if err == nil {
		_, err = decodeCursor(q, "audit", &after)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	es, err := s.deps.Audit.AuditLog(r.Context(), after, limit+1)
	if err != nil {
		writeError(w, storeStatus(err), "read audit log: %v", err)
		return
	}
	body := struct {
		Entries    []store.AuditEntry `json:"entries"`
		NextCursor string             `json:"next_cursor,omitempty"`
	}{Entries: nonNil(es)}
	if len(es) > limit {
		body.Entries = es[:limit]
		body.NextCursor = encodeCursor("audit", es[limit-1].Seq)
	}
	writeJSON(w, http.StatusOK, body)
}

// alertKey is an alert's place in the newest-first order, as a cursor
// holds it.
type alertKey struct {
	Time time.Time `json:"time"`
	ID   string    `json:"id"`
}

// AlertParams are the query parameters of the alerts' filters
// (ParseAlertQuery).
var AlertParams = []string{"since", "service", "kind"}

// ParseAlertQuery reads the filters of the alerts list from query
// parameters (AlertParams): the service, the kind (one of detect.Kinds)
// and since (an RFC 3339 time). Each value outside its domain is an
// error naming the parameter and what it takes. The web UI's alerts page
// (internal/ui) reads its filters with it too, so a mistyped kind is
// refused there as here, not shown as "no alert".
func ParseAlertQuery(q url.Values) (store.AlertQuery, error) {
	aq := store.AlertQuery{Service: q.Get("service"), Kind: q.Get("kind")}
	err := report.OneOf(q, "kind", detect.Kinds)
	if v := q.Get("since"); v != "" {
		t, perr := time.Parse(time.RFC3339, v)
		if perr != nil {
			err = errors.Join(err, fmt.Errorf("since %q: want an RFC 3339 time", v))
		}
		aq.Since = t
	}
	return aq, err
}

// alerts lists stored alerts, newest first, filtered by the query
// (since, service, kind), a page at a time.
func (s *Server) alerts(w http.ResponseWriter, r *http.Request) {
	alerts := s.alertsOf(r)
	if alerts == nil {
		writeError(w, http.StatusServiceUnavailable, "alerts are not configured")
		return
	}
	q := r.URL.Query()
	aq, ferr := ParseAlertQuery(q)
	limit, err := parseLimit(q)
	err = errors.Join(err, ferr)
	var after alertKey
	if err == nil {
		var ok bool
		if ok, err = decodeCursor(q, "alerts", &after); ok {
			aq.After = &store.AlertKey{Time: after.Time, ID: after.ID}
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	aq.Limit = limit + 1
	as, err := alerts.Recent(r.Context(), aq)
	if err != nil {
		writeError(w, storeStatus(err), "%v", err) // the store names the call
		return
	}
	body := struct {
		Alerts     []store.Alert `json:"alerts"`
		NextCursor string        `json:"next_cursor,omitempty"`
	}{Alerts: nonNil(as)}
	if len(as) > limit {
		last := as[limit-1]
		body.Alerts = as[:limit]
		body.NextCursor = encodeCursor("alerts", alertKey{Time: last.Time, ID: last.ID})
	}
	writeJSON(w, http.StatusOK, body)
}

// alert answers one stored alert, the target of an alert's link.
func (s *Server) alert(w http.ResponseWriter, r *http.Request) {
	alerts := s.alertsOf(r)
	if alerts == nil {
		writeError(w, http.StatusServiceUnavailable, "alerts are not configured")
		return
	}
	id := r.PathValue("id")
	as, err := alerts.Recent(r.Context(), store.AlertQuery{ID: id, Limit: 1})
	if err != nil {
		writeError(w, storeStatus(err), "read alert %s: %v", id, err)
		return
	}
	if len(as) == 0 {
		writeError(w, http.StatusNotFound, "no alert %q", id)
		return
	}
	writeJSON(w, http.StatusOK, as[0])
}

// streamCount counts the alert streams open, in all and per principal.
// A stream lasts as long as its client reads, holding a connection of the
// listener: without a bound, one principal's streams could take every
// connection of max_connections, and with them every other client's
// requests (probes included).
type streamCount struct {
	mu    sync.Mutex
	total int
	per   map[string]int
}

// maxStreamsPerPrincipal bounds the alert streams of one principal: a
// browser tab of the UI holds one.
const maxStreamsPerPrincipal = 8

// open counts a stream of principal who, or refuses it over the bounds:
// maxStreamsPerPrincipal, and in all half of maxConns (the listener's
// max_connections; none when 0), so that the other half serves requests.
func (c *streamCount) open(who string, maxConns int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.per[who]; n >= maxStreamsPerPrincipal {
		return fmt.Errorf("%d alert streams open for %s, the most one principal may have: close one", n, who)
	}
	if most := maxConns / 2; maxConns > 0 && c.total >= max(most, 1) {
		return fmt.Errorf("%d alert streams open, the most the listener keeps for them (half its max_connections %d)", c.total, maxConns)
	}
	if c.per == nil {
		c.per = map[string]int{}
	}
	c.per[who]++
	c.total++
	return nil
}

func (c *streamCount) close(who string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if c.per[who]--; c.per[who] == 0 {
		delete(c.per, who)
	}
}

// alertStream sends new alerts as Server-Sent Events until the client
// leaves or the server shuts down. A principal may hold
// maxStreamsPerPrincipal of them, and all of them half the listener's
// connections.
func (s *Server) alertStream(w http.ResponseWriter, r *http.Request) {
	alerts := s.alertsOf(r)
	if alerts == nil {
		writeError(w, http.StatusServiceUnavailable, "alerts are not configured")
		return
	}
	who := "anonymous"
	if p, ok := auth.FromContext(r.Context()); ok {
		who = p.Name
	}
	if err := s.streams.open(who, s.cfg.MaxConnections); err != nil {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusTooManyRequests, "%v", err)
		return
	}
	defer s.streams.close(who)
	rc := http.NewResponseController(w)
	// The server's timeouts bound one request and one response; a stream
	// has no read deadline (the request is read) and a write deadline per
	// event, so a client that stops reading still loses the connection.
	rc.SetReadDeadline(time.Time{})
	extend := func() {
		if d := s.cfg.WriteTimeout; d > 0 {
			rc.SetWriteDeadline(time.Now().Add(d))
		}
	}
	extend()
	ch, cancel := alerts.Subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": evident alerts\n\n")
	rc.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	// admitted ends the stream once its credentials would no longer be
	// admitted (a token revoked or expired since it began).
	admitted := func() bool {
		if s.deps.Guard == nil {
			return true
		}
		if err := s.deps.Guard.Recheck(r, auth.RoleRead); err != nil {
			fmt.Fprintf(w, ": closed: %s\n\n", sseComment(err.Error()))
			rc.Flush()
			return false
		}
		return true
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			if !admitted() {
				return
			}
			extend()
			fmt.Fprint(w, ": keepalive\n\n")
		case a, ok := <-ch:
			if !ok || !admitted() {
				return
			}
			b, err := json.Marshal(a)
			if err != nil {
				s.deps.Logger.Error("alert stream", "err", err)
				continue
			}
			extend()
			fmt.Fprintf(w, "event: alert\ndata: %s\n\n", b)
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// sseComment is msg as one line of a Server-Sent Events comment.
func sseComment(msg string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
}

func (s *Server) vulndb(w http.ResponseWriter, _ *http.Request) {
	if s.deps.Vulns == nil {
		writeError(w, http.StatusServiceUnavailable, "no vulnerability database loaded")
		return
	}
	writeJSON(w, http.StatusOK, s.deps.Vulns.Stats())
}

// checkFailing is what /readyz says of a failing check to a caller
// who may not see why.
const checkFailing = "failing"

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.deps.Ready != nil && !s.deps.Ready() {
		writeError(w, http.StatusServiceUnavailable, "not ready")
		return
	}
	body := map[string]any{"ready": true}
	if s.deps.Checks != nil {
		// A check's error can name an internal address or what failed
		// there: as Kubernetes' /readyz withholds the reason of a failed
		// check, only a principal admitted for reading (probe) sees it.
		_, why := auth.FromContext(r.Context())
		why = why || s.deps.Guard == nil
		checks := map[string]string{}
		for name, err := range s.deps.Checks() {
			switch {
			case err == nil:
				checks[name] = "ok"
			case why:
				checks[name] = err.Error()
			default:
				checks[name] = checkFailing
			}
		}
		body["checks"] = checks
	}
	writeJSON(w, http.StatusOK, body)
}

// patches writes the virtual patches of the current findings, validated
// against the exploit corpus and the legitimate traffic seen so far.
func (s *Server) patches(w http.ResponseWriter, r *http.Request) {
	set, ok := s.patchSet(w, r)
	if ok {
		writeJSON(w, http.StatusOK, set)
	}
}

// patchConf answers one service's SecLang file.
func (s *Server) patchConf(w http.ResponseWriter, r *http.Request) {
	set, ok := s.patchSet(w, r)
	if !ok {
		return
	}
	svc := r.PathValue("service")
	if !slices.Contains(set.Services(), svc) {
		writeError(w, http.StatusNotFound, "no patches for service %q", svc)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, set.ServiceConf(svc))
}

func (s *Server) patchSet(w http.ResponseWriter, r *http.Request) (*waf.PatchSet, bool) {
	if s.deps.Patches == nil {
		writeError(w, http.StatusServiceUnavailable, "virtual patches are not configured")
		return nil, false
	}
	set, err := s.deps.Patches(r.Context(), s.stateOf(r).Result())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "generate patches: %v", err)
		return nil, false
	}
	return set, true
}
