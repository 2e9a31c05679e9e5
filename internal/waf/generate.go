package waf

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/evidentsec/evident/internal/assess"
	"github.com/evidentsec/evident/internal/knowledge"
	"github.com/evidentsec/evident/internal/vulndb"
)

// Vulns looks vulnerability records up by id or alias; *vulndb.DB is one.
type Vulns interface {
	Get(idOrAlias string) *vulndb.Vuln
}

// PatchSet is the virtual patches of one run.
type PatchSet struct {
	// IDRange is the first and last rule id the set may use.
	IDRange [2]int  `json:"id_range"`
	Patches []Patch `json:"patches"`
	// Skipped are the executed and exposed findings that got no patch,
	// with the reason.
	Skipped []Skipped `json:"skipped"`
}

// Skipped is an executed and exposed finding without a patch.
type Skipped struct {
	Service       string `json:"service"`
	Vulnerability string `json:"vulnerability"`
	Reason        string `json:"reason"`
}

// Patch is the rules for one vulnerability in one service.
type Patch struct {
	Service       string   `json:"service"`
	Vulnerability string   `json:"vulnerability"`
	Aliases       []string `json:"aliases,omitempty"`
	Package       string   `json:"package"`
	Summary       string   `json:"summary,omitempty"`
	Classification
	// Scope says how the endpoints were chosen.
	Scope     string     `json:"scope"`
	Endpoints []Endpoint `json:"endpoints"`
	// Methods says, per route of the endpoints, which request methods
	// the detections cover.
	Methods []RouteMethods `json:"methods,omitempty"`
	// ExceptHosts are the hosts whose requests the patch leaves alone
	// (Config.HostScope): the traces show only other services serving
	// them.
	ExceptHosts []string `json:"except_hosts,omitempty"`
	// IDs is the block of rule ids the patch owns, first and last.
	IDs   [2]int `json:"ids"`
	Rules []Rule `json:"rules"`
	// Notes say what was left out and why.
	Notes      []string    `json:"notes,omitempty"`
	Validation *Validation `json:"validation,omitempty"`
	// Detections says where the detections come from: the vulnerability's
	// exploit knowledge, or the class template as the fallback.
	Detections string `json:"detections"`
	// Knowledge is the exploit knowledge the detections test, nil for a
	// class template.
	Knowledge  *Knowledge `json:"exploit_knowledge,omitempty"`
	detections []detection
}

// Generate writes a patch for every assessment whose vulnerable code was
// executed in an exposed service. vulns supplies the records that decide
// the class; traffic (nil: none) the legitimate requests that tighten the
// rules. The rules are all blocking until Validate has replayed traffic
// against them.
func Generate(cfg Config, as []assess.Assessment, vulns Vulns, traffic *Traffic) (*PatchSet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if traffic == nil {
		traffic = NewTraffic(0)
	}
	exploits := cfg.Exploits
	if exploits == nil {
		var err error
		if exploits, err = knowledge.DefaultExploits(); err != nil {
			return nil, fmt.Errorf("generate patches: %w", err)
		}
	}
	set := &PatchSet{IDRange: [2]int{cfg.IDBase, cfg.IDBase + cfg.IDSpan - 1}, Patches: []Patch{}, Skipped: []Skipped{}}

	type key struct{ service, vuln string }
	patches := map[key]*Patch{}
	var order []key
	for _, a := range as {
		f := a.Finding
		if a.Reachability.Verdict != assess.Executed || a.Exposure.Level != assess.Exposed {
			continue
		}
		k := key{f.Service, f.Vulnerability.ID}
		if p := patches[k]; p != nil {
			// The same vulnerability through another package or tool:
			// one patch, the union of the endpoints.
			p.Endpoints = mergeEndpoints(p.Endpoints, a.Reachability.Endpoints, &p.Notes)
			continue
		}
		var v *vulndb.Vuln
		if vulns != nil {
			v = vulns.Get(f.Vulnerability.ID)
			for _, alias := range f.Vulnerability.Aliases {
				if v != nil {
					break
				}
				v = vulns.Get(alias)
			}
		}
		ids := append([]string{f.Vulnerability.ID}, f.Vulnerability.Aliases...)
		summary := ""
		if v != nil {
			ids = append(append(ids, v.Entry.ID), v.Entry.Aliases...)
			summary = v.Entry.Summary
		}
		var (
			dets  []detection
			kn    *Knowledge
			notes []string
		)
		if e, ok := knowledgeFor(exploits, f.Package.Name, ids...); ok {
			var err error
			if dets, kn, err = knowledgeDetections(e); err != nil {
				notes = append(notes, err.Error()+": the class template applies")
			} else if summary == "" {
				summary = e.Summary
			}
		}
		// The record's class names the patch; exploit knowledge stands in
		// for a record that is missing or names no class.
		cl, err := Classification{}, error(nil)
		if v == nil {
			err = errors.New("no vulnerability record to classify")
		} else {
			cl, err = Classify(v, f.Package.Name)
		}
		switch c, ok := kn.classification(); {
		case err == nil:
		case ok:
			cl, err = c, nil
		case kn != nil:
			err = fmt.Errorf("%w, and its exploit knowledge names no check", err)
		case v == nil:
			err = fmt.Errorf("%w, and no exploit knowledge", err)
		}
		if err != nil {
			set.Skipped = append(set.Skipped, Skipped{f.Service, f.Vulnerability.ID, err.Error()})
			continue
		}
		p := &Patch{
			Service: f.Service, Vulnerability: f.Vulnerability.ID, Aliases: f.Vulnerability.Aliases,
			Package: f.Package.Name, Summary: summary, Classification: cl, Notes: notes,
		}
		p.Endpoints = mergeEndpoints(nil, a.Reachability.Endpoints, &p.Notes)
		if kn != nil {
			p.detections, p.Knowledge = dets, kn
			p.Detections = "exploit knowledge for " + kn.ID + " (" + strings.Join(kn.Vectors, ", ") + "; " + kn.Format + "): " + kn.Condition
			if kn.NoVariants != "" && len(dets) == 0 {
				p.detections = templates[cl.Class]
				p.Detections = "class template " + string(cl.Class) + " (the fallback): the exploit knowledge for " + kn.ID + " names no check it can prove (" + kn.Condition + ")"
			}
		}
		patches[k] = p
		order = append(order, k)
	}
	slices.SortFunc(order, func(a, b key) int { return cmp.Or(cmp.Compare(a.service, b.service), cmp.Compare(a.vuln, b.vuln)) })

	slots := newSlots(cfg)
	for _, k := range order {
		p := patches[k]
		base, ok := slots.take(p.Service, p.Vulnerability)
		if !ok {
			set.Skipped = append(set.Skipped, Skipped{p.Service, p.Vulnerability, fmt.Sprintf("no free block of %d rule ids left in %d-%d", idBlock, set.IDRange[0], set.IDRange[1])})
			continue
		}
		build(cfg, p, base, traffic)
		set.Patches = append(set.Patches, *p)
	}
	return set, nil
}

// mergeEndpoints adds the HTTP endpoints among names to eps; the others
// are noted.
func mergeEndpoints(eps []Endpoint, names []string, notes *[]string) []Endpoint {
	for _, n := range names {
		ep, err := ParseEndpoint(n)
		if err != nil {
			*notes = append(*notes, fmt.Sprintf("endpoint %q left out: not an HTTP method and route", n))
			continue
		}
		if !slices.Contains(eps, ep) {
			eps = append(eps, ep)
		}
	}
	return eps
}

// slots hands out id blocks. A patch's block is the hash of its service
// and vulnerability, so its ids stay the same from run to run; on a
// collision the next free block is taken (patches are placed in service
// and vulnerability order, so the result is still deterministic). Block 0
// holds the engine rules.
type slots struct {
	base, n int
	used    map[int]bool
}

func newSlots(cfg Config) *slots {
	return &slots{base: cfg.IDBase, n: cfg.IDSpan / idBlock, used: map[int]bool{0: true}}
}

func (s *slots) take(service, vuln string) (int, bool) {
	if s.n <= 1 {
		return 0, false
	}
	h := fnv.New32a()
	h.Write([]byte(service + "\x00" + vuln))
	start := 1 + int(h.Sum32()%uint32(s.n-1))
	for i := range s.n - 1 {
		slot := 1 + (start-1+i)%(s.n-1)
		if !s.used[slot] {
			s.used[slot] = true
			return s.base + slot*idBlock, true
		}
	}
	return 0, false
}

// build fills in the rules of p from its block of ids.
func build(cfg Config, p *Patch, base int, traffic *Traffic) {
	p.IDs = [2]int{base, base + idBlock - 1}
	all := traffic.Endpoints(p.Service)
	switch {
	case len(p.Endpoints) > 0:
		p.Scope = "endpoints that led to the vulnerable code in span-linked profile samples"
	case len(all) > 0:
		p.Scope = "every endpoint of the service seen in traces: no profile sample of the vulnerable code was linked to a span"
		for _, et := range all {
			p.Endpoints = append(p.Endpoints, et.Endpoint)
		}
	default:
		p.Scope = "the whole service: no endpoint is known"
	}
	if len(p.Endpoints) > cfg.MaxEndpoints {
		// Keep the busiest: they carry the most legitimate traffic to
		// check the rules against, and the most attack surface.
		slices.SortStableFunc(p.Endpoints, func(a, b Endpoint) int {
			return cmp.Compare(requestsOf(traffic, p.Service, b), requestsOf(traffic, p.Service, a))
		})
		for _, ep := range p.Endpoints[cfg.MaxEndpoints:] {
			p.Notes = append(p.Notes, fmt.Sprintf("endpoint %s left out: a patch covers at most %d endpoints", ep, cfg.MaxEndpoints))
		}
		p.Endpoints = p.Endpoints[:cfg.MaxEndpoints]
	}

	patchVar := fmt.Sprintf("tx.evident_%d", base)
	next := base
	add := func(r Rule) {
		r.ID = next
		next++
		r.Phase = phaseOf(r.links)
		r.ProxyOnly = usesEvidentOperator(r.links)
		if r.Mode == "" {
			r.Mode = ModeBlock
		}
		r.render(p)
		p.Rules = append(p.Rules, r)
	}

	// Scope: one rule per endpoint sets the patch's variable and the
	// endpoint's own. It matches the endpoint's route by every method
	// that may reach the vulnerable handler (routeMethods); the traffic
	// rules chain on the endpoint's exact method as well.
	if len(p.Endpoints) == 0 {
		add(Rule{Kind: KindScope, Name: "any request to the service", Mode: ModeBlock,
			links: []link{{vars: "REQUEST_FILENAME", op: "@rx ^/"}}, setvars: []string{patchVar + "=1"}})
	}
	p.Methods = routeMethods(p.Endpoints, all)
	for i, ep := range p.Endpoints {
		// ParseEndpoint checked the route, and the regular expression
		// is built from quoted literals, so this cannot fail.
		re, _ := RouteRegex(ep.Route)
		var links []link
		rm := p.Methods[slices.IndexFunc(p.Methods, func(rm RouteMethods) bool { return rm.Route == ep.Route })]
		if len(rm.Except) > 0 {
			// The methods come from ParseEndpoint's list: no quoting.
			links = append(links, link{vars: "REQUEST_METHOD", op: "!@rx ^(?:" + strings.Join(rm.Except, "|") + ")$"})
		}
		// The path as sent and with its dot segments resolved: an
		// application that routes on the WHATWG URL of the request, as
		// Node.js's documentation parses req.url, or a server that
		// normalizes the path (Tomcat, Kestrel), serves /a/../search and
		// /%2e/search at /search.
		add(Rule{Kind: KindScope, Name: "request to " + rm.String(), Endpoint: ep.String(),
			links:   append(links, link{vars: "REQUEST_FILENAME|REQUEST_URI", op: "@rx " + re, t: []string{"normalisePath"}, multiMatch: true}),
			setvars: []string{patchVar + "=1", fmt.Sprintf("%s_e%d=1", patchVar, i)}})
	}

	scope := link{vars: "TX:" + strings.TrimPrefix(patchVar, "tx."), op: "@eq 1"}
	if cfg.HostScope {
		// After the scope rules, which it undoes, and before the body
		// processor rules, which then leave another service's bodies to
		// the engine. A rule that sets the patch's variable only for
		// the other hosts' complement would leave out a request without
		// a Host header (HTTP/1.0), which no negated operator matches.
		switch hosts := traffic.OtherHosts(p.Service); {
		case len(hosts) > 0:
			p.ExceptHosts = hosts
			quoted := make([]string, len(hosts))
			for i, h := range hosts {
				quoted[i] = regexp.QuoteMeta(h)
			}
			unset := []string{patchVar + "=0"}
			for i := range p.Endpoints {
				unset = append(unset, fmt.Sprintf("%s_e%d=0", patchVar, i))
			}
			next = base + scopeIDs + detectIDs - bodyIDs - hostIDs
			// One Host header: a request with two is not another
			// service's, and net/http refuses it.
			add(Rule{Kind: KindHost, Name: "request to a host only other services serve: " + strings.Join(hosts, ", "),
				links: []link{scope, {vars: "&REQUEST_HEADERS:Host", op: "@eq 1"},
					{vars: "REQUEST_HEADERS:Host", op: `@rx ^(?:` + strings.Join(quoted, "|") + `)\.?(?::[0-9]*)?$`, t: []string{"lowercase"}}},
				setvars: unset})
		default:
			p.Notes = append(p.Notes, "host scope: the traces show no host that only other services serve, or none of this service's, so the patch checks requests to every host")
		}
	}
	if p.Knowledge == nil {
		p.detections = templates[p.Class]
		p.Detections = "class template " + string(p.Class) + " (the fallback): no exploit knowledge for " + p.Vulnerability
	}
	// The body processor rules come after the scope rules, which set
	// the patch's variable, and after the engine's or CRS's, which come
	// first in phase 1. Under CRS, evident-engine.conf is not loaded:
	// these keep the patched endpoints' bodies parsed as it would (a JSON
	// body of any +json type as JSON), and raw where the patch reads
	// documents (readsDocuments).
	next = base + scopeIDs + detectIDs - bodyIDs
	if readsDocuments(p) || p.Knowledge != nil && p.Knowledge.Format == "json" {
		add(Rule{Kind: KindScope, Name: "JSON body of a request to the patched endpoints parsed as JSON, whatever its +json media type",
			links: []link{scope, {vars: "REQUEST_HEADERS:Content-Type", op: "@rx ^[^a-z]*application/(?:[a-z0-9.+-]+\\+)?json", t: []string{"lowercase"}}}, ctl: "requestBodyProcessor=JSON"})
	}
	next = base + scopeIDs + detectIDs - bodyIDs + 1
	if readsDocuments(p) {
		add(Rule{Kind: KindScope, Name: "body of a request to the patched endpoints kept raw: XML, multipart uploads and media types without a parser",
			links: []link{scope, {vars: "REQBODY_PROCESSOR", op: "!@rx ^(?:JSON|URLENCODED)$"}}, ctl: "requestBodyProcessor=RAW"})
	}
	next = base + scopeIDs
	// The refusals of bodies the rules cannot read keep their ids: were
	// they cut, a compressed or encoded exploit would pass every other
	// detection. The knowledge's or template's detections are cut first.
	refusals := []detection{encodedBody}
	if readsDocuments(p) {
		refusals = append(refusals, encodedPart)
	}
	room := detectIDs - bodyIDs - hostIDs - len(refusals)
	for i, d := range p.detections {
		if i >= room {
			p.Notes = append(p.Notes, fmt.Sprintf("detection %q left out: a patch has room for %d detections beside its refusals of bodies it cannot read", d.name, room))
			continue
		}
		add(Rule{Kind: KindDetection, Name: d.name, links: append([]link{scope}, d.links...)})
	}
	for _, d := range refusals {
		add(Rule{Kind: KindDetection, Name: d.name, links: append([]link{scope}, d.links...)})
	}

	next = base + scopeIDs + detectIDs
	limit := base + idBlock - pluginIDs
	for i, ep := range p.Endpoints {
		epScope := link{vars: fmt.Sprintf("TX:%s_e%d", strings.TrimPrefix(patchVar, "tx."), i), op: "@eq 1"}
		rules, notes := trafficRules(cfg, p.Class, traffic.Endpoint(p.Service, ep))
		for _, n := range notes {
			p.Notes = append(p.Notes, ep.String()+": "+n)
		}
		for _, r := range rules {
			if next >= limit {
				p.Notes = append(p.Notes, fmt.Sprintf("traffic rule %q for %s left out: the block of %d ids is full", r.Name, ep, idBlock))
				continue
			}
			r.Endpoint = ep.String()
			r.links = append([]link{epScope}, r.links...)
			add(r)
		}
	}
}

// documentFormats are the formats of exploit knowledge whose input is a
// document a parser reads whole, and documentClasses the class templates
// that detect one: what arrives as well as an uploaded file as a request
// body.
var (
	documentFormats = []string{"xml", "yaml", "tar", "dump", "pack200"}
	documentClasses = []Class{ClassXXE, ClassDeserialization, ClassExpressionInjection, ClassParserBomb}
)

// encodedBody is the detection of a request body in a Content-Encoding
// other than identity. Express's body-parser (json, urlencoded, text and
// raw alike) inflates a gzip or deflate body by default (its inflate
// option; br too from body-parser 2) before the handler reads it, while
// Coraza reads the compressed bytes: a form variable=<exploit> sent
// gzip-compressed passed every detection of the field. A body the rules cannot read is refused, as evident-engine.conf
// refuses one that does not parse as its media type; legitimate traffic
// that the traces show compressed downgrades it, as any rule.
var encodedBody = detection{"body in a Content-Encoding the rules cannot read (gzip, deflate, br)", []link{{
	vars: "REQUEST_HEADERS:Content-Encoding",
	op:   `!@rx ^[\s,]*(?:identity[\s,]*)*$`,
	t:    []string{"lowercase"},
}}}

// encodedPart is the detection of a part of a multipart body kept raw
// (readsDocuments) with a Content-Transfer-Encoding header. Go's
// mime/multipart, which net/http's ParseMultipartForm reads uploads with,
// decodes a quoted-printable part for the application, and other MIME
// parsers base64 too, while the patterns read the raw body, where an
// encoded document shows none of what they look for (=3C=21=44=4F=43…).
// RFC 7578 §4.7 deprecates the header in form data, browsers do not send
// it, and CRS refuses it at paranoia level 1 (922120), from
// MULTIPART_PART_HEADERS, which a body kept raw leaves empty. The
// expression reads the header block after a boundary line (of any
// length: Go takes boundaries longer than RFC 2046's 70 characters), not
// a file's text; a MIME message inside an uploaded file (.eml) holds such
// blocks too, so the one false positive is a mail file uploaded to a
// patched endpoint, which validation's legitimate requests would show.
var encodedPart = detection{"multipart part with a Content-Transfer-Encoding (quoted-printable hides a document)", []link{{
	vars: "REQUEST_BODY",
	op:   `@rx (?i)(?:^|\n)--[^\r\n]+\r?\n(?:[^\r\n]+\r?\n)*?content-transfer-encoding[ \t]*:`,
}}}

// readsDocuments reports whether the patch's detections read whole
// documents (XML, YAML, serialized objects, archives) in the raw body,
// which an application reads as well from the file part of a
// multipart/form-data upload. Coraza keeps file parts in temporary files
// that no variable holds (it has no FILES_TMP_CONTENT), and Coraza's
// recommended configuration, under CRS, parses an XML body into XML:/*,
// which holds neither the DTD nor REQUEST_BODY. So such a patch keeps the
// bodies of its endpoints raw, which its detections read whole, file
// contents included; on those endpoints a multipart body is no longer
// parsed into ARGS_POST and FILES, nor an XML body into XML:/* (docs/waf.md,
// "Bodies kept raw").
func readsDocuments(p *Patch) bool {
	if k := p.Knowledge; k != nil && len(k.Checks) > 0 && k.NoVariants == "" {
		// Free text of a document class: a lookup Log4j or commons-text
		// resolves in whatever text reaches it, an uploaded file's too.
		return slices.Contains(documentFormats, k.Format) || k.Format == "text" && slices.Contains(documentClasses, k.class)
	}
	return slices.Contains(documentClasses, p.Class)
}

// RouteMethods is the request methods a patch's detections cover on one
// route: every method but Except.
type RouteMethods struct {
	Route string `json:"route"`
	// Except are the methods the traces show on Route only at endpoints
	// outside the patch: other handlers, as far as the traces tell, whose
	// legitimate requests the patch must leave alone.
	Except []string `json:"except,omitempty"`
}

// String returns "/route by any method" or "/route by any method but
// DELETE (seen at another endpoint)".
func (rm RouteMethods) String() string {
	if len(rm.Except) == 0 {
		return rm.Route + " by any method"
	}
	return rm.Route + " by any method but " + strings.Join(rm.Except, ", ") + " (seen at another endpoint)"
}

// routeMethods returns the methods the detections cover on each route of
// eps, in the order the routes first appear. The traces say which method
// a request had, not which methods its route accepts: a route registered
// for every method (net/http's "/search" without a method, Express's
// app.all, a servlet's service()) and seen only with GET runs the same
// handler for POST /search?q=<exploit>. So a route is covered by every
// method but those the traces show on it only at endpoints outside the
// patch (neither a patch endpoint's method on the route nor its GET/HEAD
// pair): those, as far as the traces tell, reach another handler.
func routeMethods(eps []Endpoint, all []*EndpointTraffic) []RouteMethods {
	var out []RouteMethods
	for _, ep := range eps {
		if slices.ContainsFunc(out, func(rm RouteMethods) bool { return rm.Route == ep.Route }) {
			continue
		}
		covered := map[string]bool{}
		for _, e := range eps {
			if e.Route == ep.Route {
				covered[e.Method] = true
				if twin := sameHandlerMethod(e.Method); twin != "" {
					covered[twin] = true
				}
			}
		}
		rm := RouteMethods{Route: ep.Route}
		// all is in route and method order, one entry per endpoint.
		for _, et := range all {
			if et.Endpoint.Route == ep.Route && !covered[et.Endpoint.Method] {
				rm.Except = append(rm.Except, et.Endpoint.Method)
			}
		}
		out = append(out, rm)
	}
	return out
}

// methodOperator is the operator on REQUEST_METHOD that scopes the rules
// learned from an endpoint's traffic to the endpoint's method. GET and
// HEAD go together: net/http's "GET /search", Express's app.get, Flask,
// Spring and most other routers run the GET handler for HEAD (and a HEAD
// request in the traces most likely went to such a GET route). The match
// is exact: @within, the usual SecLang method list, matches any substring
// of its list ("GE", "EA").
func methodOperator(method string) string {
	if sameHandlerMethod(method) != "" {
		return "@rx ^(?:GET|HEAD)$"
	}
	return "@streq " + method
}

// sameHandlerMethod returns the method that routers serve with the same
// handler as method (HEAD for GET, GET for HEAD), "" for any other.
func sameHandlerMethod(method string) string {
	switch method {
	case "GET":
		return "HEAD"
	case "HEAD":
		return "GET"
	}
	return ""
}

func requestsOf(t *Traffic, service string, ep Endpoint) int {
	if et := t.Endpoint(service, ep); et != nil {
		return et.Requests
	}
	return 0
}

// trafficRules tightens a patch with what the endpoint's legitimate
// traffic shows. With enough requests: an allow-list of query parameter
// names and a limit on the query string when the spans record queries,
// limits on the captured headers, and an allow-list of content types;
// lengths at Config.LengthMargin times the longest seen. Oversized-input
// patches get a default length limit when the traffic says nothing. The
// rules learned from the traffic apply to the endpoint's method (GET
// with HEAD) only: the endpoint's scope rule lets in every method that
// may reach the vulnerable handler, and what one method's requests
// showed says nothing of another's. The default limit is the class's,
// and applies to them all. The notes say what could not be learned.
func trafficRules(cfg Config, class Class, et *EndpointTraffic) (out []Rule, notes []string) {
	limit := func(n int) int {
		return max(cfg.MinLength, int(math.Ceil(float64(n)*cfg.LengthMargin)))
	}
	defaultLimit := func() {
		if class == ClassOversizedInput {
			out = append(out, Rule{Kind: KindTraffic, Name: fmt.Sprintf("argument longer than the default %d", cfg.DefaultArgLength),
				links: []link{{vars: "ARGS|ARGS_NAMES", op: fmt.Sprintf("@gt %d", cfg.DefaultArgLength), t: []string{"length"}}}})
		}
	}
	if et == nil || et.Requests < cfg.MinRequests {
		n := 0
		if et != nil {
			n = et.Requests
		}
		notes = append(notes, fmt.Sprintf("%d requests in the traces, fewer than the %d needed to learn limits", n, cfg.MinRequests))
		defaultLimit()
		return out, notes
	}
	var learned []Rule
	if et.Queries == 0 {
		notes = append(notes, "the spans record no query string (url.query): no parameter allow-list or query limits")
		defaultLimit()
	} else {
		// Names that are not text (control characters, bytes that are
		// not UTF-8), which one request can put in the traces, are left
		// out of the allow-list, so refused as any unseen name: quoted,
		// a newline broke the rule's line and invalid UTF-8 its regular
		// expression, and with them every patch of every service.
		names := slices.DeleteFunc(sortedKeys(et.Params), func(n string) bool {
			return !utf8.ValidString(n) || strings.ContainsFunc(n, unicode.IsControl)
		})
		quoted := make([]string, len(names))
		for i, n := range names {
			quoted[i] = regexp.QuoteMeta(n)
		}
		if len(names) > 0 {
			learned = append(learned, Rule{Kind: KindTraffic, Name: "query parameter outside the names seen in traffic: " + strings.Join(names, ", "),
				links: []link{{vars: "ARGS_GET_NAMES", op: "!@rx ^(?:" + strings.Join(quoted, "|") + ")$"}}})
		}
		for _, n := range names {
			if !safeKey(n) {
				continue
			}
			learned = append(learned, Rule{Kind: KindTraffic, Name: fmt.Sprintf("query parameter %s longer than %d (longest seen %d)", n, limit(et.Params[n]), et.Params[n]),
				links: []link{{vars: "ARGS_GET:" + n, op: fmt.Sprintf("@gt %d", limit(et.Params[n])), t: []string{"length"}}}})
		}
		learned = append(learned, Rule{Kind: KindTraffic, Name: fmt.Sprintf("query string longer than %d (longest seen %d)", limit(et.MaxQuery), et.MaxQuery),
			links: []link{{vars: "QUERY_STRING", op: fmt.Sprintf("@gt %d", limit(et.MaxQuery)), t: []string{"length"}}}})
	}
	for _, h := range sortedKeys(et.Headers) {
		if !safeKey(h) {
			continue
		}
		learned = append(learned, Rule{Kind: KindTraffic, Name: fmt.Sprintf("header %s longer than %d (longest seen %d)", h, limit(et.Headers[h]), et.Headers[h]),
			links: []link{{vars: "REQUEST_HEADERS:" + h, op: fmt.Sprintf("@gt %d", limit(et.Headers[h])), t: []string{"length"}}}})
	}
	switch {
	case et.Bodies == 0 && (et.Endpoint.Method == "GET" || et.Endpoint.Method == "HEAD"):
	case et.Bodies == 0:
		notes = append(notes, fmt.Sprintf("the spans record no request body size (http.request.body.size or a captured Content-Length): bodies stay bounded by the engine's %d bytes only", engineBodyLimit))
	default:
		n := max(cfg.MinBodyLength, int64(math.Ceil(float64(et.MaxBody)*cfg.LengthMargin)))
		name := fmt.Sprintf("request body longer than %d (largest seen %d)", n, et.MaxBody)
		// The declared length denies before the body is read; a body
		// without one (chunked) is measured once read. Coraza and
		// ModSecurity set REQUEST_BODY_LENGTH for raw and form bodies.
		learned = append(learned,
			Rule{Kind: KindTraffic, Name: name + ": Content-Length", links: []link{{vars: "REQUEST_HEADERS:Content-Length", op: fmt.Sprintf("@gt %d", n)}}},
			Rule{Kind: KindTraffic, Name: name, links: []link{{vars: "REQUEST_BODY_LENGTH", op: fmt.Sprintf("@gt %d", n)}}})
	}
	if len(et.ContentTypes) > 0 {
		quoted := make([]string, len(et.ContentTypes))
		for i, c := range et.ContentTypes {
			quoted[i] = regexp.QuoteMeta(c)
		}
		learned = append(learned, Rule{Kind: KindTraffic, Name: "content type outside those seen in traffic: " + strings.Join(et.ContentTypes, ", "),
			links: []link{{vars: "REQUEST_HEADERS:Content-Type", op: "!@rx ^(?:" + strings.Join(quoted, "|") + `)\s*(?:;|$)`, t: []string{"lowercase"}}}})
	}
	for _, r := range learned {
		r.links = append([]link{{vars: "REQUEST_METHOD", op: methodOperator(et.Endpoint.Method)}}, r.links...)
		out = append(out, r)
	}
	return out, notes
}

// safeKey reports whether a parameter or header name can be written as
// a SecLang collection key (ARGS_GET:name) as is.
func safeKey(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
