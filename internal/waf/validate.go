package waf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3"
)

// Validation is how a patch fared in the embedded engine.
type Validation struct {
	// ExploitsBlocked of ExploitsTotal exploit requests were denied.
	ExploitsBlocked int `json:"exploits_blocked"`
	ExploitsTotal   int `json:"exploits_total"`
	// ExploitsBlockedExported counts the exploit requests the exported
	// SecLang denies alone, without the rules only evident waf proxy
	// enforces (Rule.ProxyOnly): what Coraza loading evident-engine.conf
	// and <service>.conf stops, and what the CRS plugin stops as well.
	ExploitsBlockedExported int `json:"exploits_blocked_exported"`
	// MutationsBlocked of MutationsTotal mutated exploit requests
	// (mutations) were denied; MutationsMissed names the others.
	MutationsBlocked int      `json:"mutations_blocked"`
	MutationsTotal   int      `json:"mutations_total"`
	MutationsMissed  []string `json:"mutations_missed,omitempty"`
	// MutationsBlockedExported counts the mutations the exported SecLang
	// denies alone; MutationsProxyOnly names those only evident waf proxy
	// denies ("<sample>, <mutation>").
	MutationsBlockedExported int      `json:"mutations_blocked_exported"`
	MutationsProxyOnly       []string `json:"mutations_proxy_only,omitempty"`
	// PluginMissed names the exploit requests and mutations ("<sample>"
	// or "<sample>, <mutation>") that the exported SecLang denies when
	// loaded with evident-engine.conf but not as the CRS plugin, which
	// runs without it (docs/waf.md, "Export"): the Exported counts leave
	// them out. There should be none.
	PluginMissed []string `json:"plugin_missed,omitempty"`
	// Mutations names the kinds of mutation tried.
	Mutations []string `json:"mutations,omitempty"`
	// CorpusPassed of CorpusTotal requests of the legitimate corpus of
	// the exploit's format (docs/waf.md) went through; CorpusBlocked
	// names the others.
	CorpusPassed  int      `json:"legitimate_corpus_passed"`
	CorpusTotal   int      `json:"legitimate_corpus_total"`
	CorpusBlocked []string `json:"legitimate_corpus_blocked,omitempty"`
	// LegitimatePassed of LegitimateTotal replayed requests went through.
	LegitimatePassed int `json:"legitimate_passed"`
	LegitimateTotal  int `json:"legitimate_total"`
	// DetectionOnly counts the rules downgraded because they matched
	// legitimate traffic.
	DetectionOnly int `json:"detection_only"`
	// Unproven says why the patch is not proven against its exploits
	// (some exploit request or mutation got through); its detections are
	// then all emitted detection-only.
	Unproven string `json:"unproven,omitempty"`
	// Exploits has one result per exploit request.
	Exploits []ExploitResult `json:"exploits"`
	// Blocked lists the legitimate requests still denied (there should
	// be none: a rule that denies one is downgraded).
	Blocked []string `json:"blocked_legitimate,omitempty"`
}

// ExploitResult is one exploit sample sent to one endpoint.
type ExploitResult struct {
	Sample  string `json:"sample"`
	Source  string `json:"source"`
	Request string `json:"request"`
	Blocked bool   `json:"blocked"`
	// RuleID is the rule that denied it.
	RuleID int `json:"rule_id,omitempty"`
	// ProxyOnly says that only evident waf proxy denies it: the
	// exported SecLang alone lets it through.
	ProxyOnly bool `json:"proxy_only,omitempty"`
}

// Validate loads every patch of set into an embedded Coraza engine and
// replays, per patch, (a) the exploit samples of its class against each
// of its endpoints, which must be denied, and (b) the legitimate requests
// of its service from traffic, which must pass. A rule that matches a
// legitimate request is downgraded to detection-only (pass and log) with
// the reason, never left blocking. The figures go into each patch's
// Validation. An error means a patch could not be compiled.
func Validate(ctx context.Context, set *PatchSet, traffic *Traffic, corpus Corpus) error {
	if traffic == nil {
		traffic = NewTraffic(0)
	}
	for i := range set.Patches {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := validatePatch(&set.Patches[i], set.IDRange[0], traffic, corpus); err != nil {
			return err
		}
	}
	return nil
}

func validatePatch(p *Patch, idBase int, traffic *Traffic, corpus Corpus) error {
	eps := p.Endpoints
	if len(eps) == 0 {
		eps = []Endpoint{{Method: "GET", Route: "/"}}
	}
	samples := corpus[p.Class]
	uploads := readsDocuments(p)
	var good []Request
	if p.Knowledge != nil {
		if p.Knowledge.NoVariants == "" {
			samples = p.Knowledge.Variants
		}
		byFormat, err := legitimateCorpus()
		if err != nil {
			return fmt.Errorf("validate %s in %s: %w", p.Vulnerability, p.Service, err)
		}
		for _, s := range byFormat[p.Knowledge.Format] {
			for _, ep := range eps {
				r := instantiate(s, ep, traffic.Endpoint(p.Service, ep))
				good = append(good, r)
				// What the exploits are sent as, legitimate documents
				// are too: a patch that reads the uploaded files must
				// let a legitimate one through.
				if up, ok := asUpload(r); ok && uploads {
					good = append(good, up)
				}
			}
		}
	}
	legit := append(traffic.Requests(p.Service), good...)

	// Pass 1: every rule in detection mode, so that one request shows
	// every rule it trips, not just the first to deny.
	w, err := compilePatch(p, idBase, "SecRuleEngine DetectionOnly\n")
	if err != nil {
		return err
	}
	hits := map[int][]string{}
	for _, r := range legit {
		ids, _, err := replay(w, r)
		if err != nil {
			return fmt.Errorf("validate %s in %s: replay %s: %w", p.Vulnerability, p.Service, r, err)
		}
		for _, id := range ids {
			hits[id] = append(hits[id], r.String())
		}
	}
	v := &Validation{}
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.marks() || len(hits[r.ID]) == 0 {
			continue
		}
		r.Mode = ModeDetect
		r.Reason = fmt.Sprintf("matched %d of %d legitimate requests, e.g. %s", len(hits[r.ID]), len(legit), truncate(hits[r.ID][0], 200))
		r.render(p)
		v.DetectionOnly++
	}

	// Pass 2: the rules as emitted.
	w, err = compilePatch(p, idBase, "")
	if err != nil {
		return err
	}
	for i, r := range legit {
		_, blockedBy, err := replay(w, r)
		if err != nil {
			return fmt.Errorf("validate %s in %s: replay %s: %w", p.Vulnerability, p.Service, r, err)
		}
		total, passed, blocked := &v.LegitimateTotal, &v.LegitimatePassed, &v.Blocked
		if i >= len(legit)-len(good) {
			total, passed, blocked = &v.CorpusTotal, &v.CorpusPassed, &v.CorpusBlocked
		}
		*total++
		if blockedBy == 0 {
			*passed++
		} else {
			*blocked = append(*blocked, fmt.Sprintf("%s (rule %d)", truncate(r.String(), 200), blockedBy))
		}
	}
	// The exported SecLang alone, as Coraza or ModSecurity load it, and
	// as the CRS plugin runs it, without evident-engine.conf.
	exported := w
	if p.ProxySecLang() != "" {
		if exported, err = newWAF(engineSettings(), bodyProcessorRules(idBase), p.SecLang()); err != nil {
			return fmt.Errorf("patch %s for %s: %w", p.Vulnerability, p.Service, err)
		}
	}
	plugin, err := compilePlugin(p, idBase)
	if err != nil {
		return err
	}
	// replayExported returns the rules that deny r in the exported
	// SecLang alone and in the CRS plugin (0: it passes); blocked is the
	// rule that denied it with every rule loaded.
	replayExported := func(r Request, blocked int) (byExport, byPlugin int, err error) {
		byExport = blocked
		if exported != w {
			if _, byExport, err = replay(exported, r); err != nil {
				return 0, 0, err
			}
		}
		_, byPlugin, err = replay(plugin, r)
		return byExport, byPlugin, err
	}
	all := traffic.Endpoints(p.Service)
	for _, s := range samples {
		for _, ep := range eps {
			req := instantiate(s, ep, traffic.Endpoint(p.Service, ep))
			_, blockedBy, err := replay(w, req)
			if err != nil {
				return fmt.Errorf("validate %s in %s: exploit %q: %w", p.Vulnerability, p.Service, s.Name, err)
			}
			byExport, byPlugin, err := replayExported(req, blockedBy)
			if err != nil {
				return fmt.Errorf("validate %s in %s: exploit %q: %w", p.Vulnerability, p.Service, s.Name, err)
			}
			v.ExploitsTotal++
			if blockedBy != 0 {
				v.ExploitsBlocked++
			}
			if byExport != 0 && byPlugin != 0 {
				v.ExploitsBlockedExported++
			}
			if byExport != 0 && byPlugin == 0 {
				v.PluginMissed = append(v.PluginMissed, s.Name)
			}
			for _, m := range mutations(req, tamperMethod(ep, all), uploads) {
				_, by, err := replay(w, m.req)
				if err != nil {
					return fmt.Errorf("validate %s in %s: exploit %q, %s: %w", p.Vulnerability, p.Service, s.Name, m.name, err)
				}
				byExport, byPlugin, err := replayExported(m.req, by)
				if err != nil {
					return fmt.Errorf("validate %s in %s: exploit %q, %s: %w", p.Vulnerability, p.Service, s.Name, m.name, err)
				}
				if !slices.Contains(v.Mutations, m.name) {
					v.Mutations = append(v.Mutations, m.name)
				}
				v.MutationsTotal++
				if byExport != 0 && byPlugin != 0 {
					v.MutationsBlockedExported++
				}
				if byExport != 0 && byPlugin == 0 {
					v.PluginMissed = append(v.PluginMissed, s.Name+", "+m.name)
				}
				if by != 0 && byExport == 0 {
					v.MutationsProxyOnly = append(v.MutationsProxyOnly, s.Name+", "+m.name)
				}
				if by != 0 {
					v.MutationsBlocked++
				} else {
					v.MutationsMissed = append(v.MutationsMissed, fmt.Sprintf("%s, %s: %s", s.Name, m.name, truncate(m.req.String(), 200)))
				}
			}
			v.Exploits = append(v.Exploits, ExploitResult{Sample: s.Name, Source: s.Source, Request: truncate(req.String(), 300),
				Blocked: blockedBy != 0, RuleID: blockedBy, ProxyOnly: blockedBy != 0 && byExport == 0})
		}
	}
	// What is not proven against its own exploits does not block: every
	// detection is emitted detection-only, with the reason. A class
	// corpus proves nothing of a vulnerability whose exploit knowledge
	// says no variant of it can be sourced, and no request at all (a
	// corpus without the class) proves nothing: 0 of 0 blocked is not
	// every exploit blocked.
	switch {
	case p.Knowledge != nil && p.Knowledge.NoVariants != "":
		v.Unproven = fmt.Sprintf("no exploit variant of %s could be sourced (%s); the class corpus alone proves nothing of it", p.Knowledge.ID, p.Knowledge.NoVariants)
	case v.ExploitsTotal == 0:
		v.Unproven = fmt.Sprintf("no exploit request was replayed: the exploit corpus holds no sample of class %s", p.Class)
	case v.ExploitsBlocked < v.ExploitsTotal || v.MutationsBlocked < v.MutationsTotal:
		var missed []string
		for _, e := range v.Exploits {
			if !e.Blocked {
				missed = append(missed, e.Sample)
			}
		}
		missed = append(missed, v.MutationsMissed...)
		v.Unproven = fmt.Sprintf("%d of %d exploit requests and %d of %d mutations got through, e.g. %s",
			v.ExploitsTotal-v.ExploitsBlocked, v.ExploitsTotal, v.MutationsTotal-v.MutationsBlocked, v.MutationsTotal, truncate(missed[0], 200))
	}
	if v.Unproven != "" {
		for i := range p.Rules {
			if r := &p.Rules[i]; !r.marks() && r.Mode == ModeBlock {
				r.Mode, r.Reason = ModeDetect, "the patch is not proven: "+v.Unproven
				r.render(p)
			}
		}
	}
	p.Validation = v
	return nil
}

// crsBodyProcessing is what Coraza's recommended configuration, which CRS
// v4 runs under, and CRS's initialization (REQUEST-901) do with request
// bodies, in their order around the plugins (coraza-coreruleset's
// @coraza.conf-recommended, rules 200000 to 200003, and
// REQUEST-901-INITIALIZATION.conf, rule 901340): an XML body is parsed
// into XML:/*, which keeps neither its DTD nor REQUEST_BODY, a JSON one
// (application/json only) into ARGS, and a body of any other media type
// is read as a form, its raw text in REQUEST_BODY.
const crsBodyProcessing = `SecRuleEngine On
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRequestBodyLimit 13107200
SecRequestBodyInMemoryLimit 131072
SecRequestBodyLimitAction Reject
SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:200003,phase:2,t:none,log,deny,status:400"
`

// crsAfterPlugins is what CRS does in phase 1 after the plugins' -before
// files: rule 901340 reads a body no ctl gave a processor as a form.
const crsAfterPlugins = `SecRule REQBODY_PROCESSOR "!@rx (?:URLENCODED|MULTIPART|XML|JSON)" "id:901340,phase:1,pass,nolog,noauditlog,ctl:forceRequestBodyVariable=On"
`

// compilePlugin compiles one patch's CRS plugin files, as Export writes
// them, with what CRS does with request bodies around them and without
// evident-engine.conf, which a CRS installation does not load; the CRS
// detection rules are left out, so that only the patch decides.
func compilePlugin(p *Patch, idBase int) (coraza.WAF, error) {
	set := &PatchSet{IDRange: [2]int{idBase, idBase}, Patches: []Patch{*p}}
	config, before := set.pluginFiles(p.Service)
	w, err := newWAF(crsBodyProcessing, config, before, crsAfterPlugins)
	if err != nil {
		return nil, fmt.Errorf("patch %s for %s as a CRS plugin: %w", p.Vulnerability, p.Service, err)
	}
	return w, nil
}

// compilePatch compiles one patch with the engine rules; extra comes last
// and may override the engine mode.
func compilePatch(p *Patch, idBase int, extra string) (coraza.WAF, error) {
	w, err := newWAF(engineSettings(), bodyProcessorRules(idBase), p.SecLang(), p.ProxySecLang(), extra)
	if err != nil {
		return nil, fmt.Errorf("patch %s for %s: %w", p.Vulnerability, p.Service, err)
	}
	return w, nil
}

// replay runs one request and returns the evident rules that matched and
// the rule that denied it (0: none).
func replay(w coraza.WAF, r Request) (matchedIDs []int, blockedBy int, err error) {
	tx := w.NewTransaction()
	defer tx.Close()
	it, err := inspectRequest(tx, r)
	if err != nil {
		return nil, 0, err
	}
	for _, mr := range matched(tx) {
		matchedIDs = append(matchedIDs, mr.Rule().ID())
	}
	slices.Sort(matchedIDs)
	matchedIDs = slices.Compact(matchedIDs)
	if it != nil && it.Action == "deny" {
		blockedBy = it.RuleID
	}
	tx.ProcessLogging()
	return matchedIDs, blockedBy, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// SecLang returns the patch's rules with a header comment.
func (p *Patch) SecLang() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s in %s (%s): %s\n", oneLine(p.Vulnerability), oneLine(p.Package), p.Class, oneLine(p.Summary))
	fmt.Fprintf(&b, "# class: %s\n# detections: %s\n# scope: %s\n", oneLine(p.Reason), oneLine(p.Detections), p.Scope)
	for _, ep := range p.Endpoints {
		fmt.Fprintf(&b, "#   %s\n", oneLine(ep.String()))
	}
	for _, rm := range p.Methods {
		fmt.Fprintf(&b, "# methods: %s\n", oneLine(rm.String()))
	}
	if len(p.ExceptHosts) > 0 {
		fmt.Fprintf(&b, "# hosts: every host but %s (only other services' in the traces)\n", strings.Join(p.ExceptHosts, ", "))
	}
	fmt.Fprintf(&b, "# rule ids %d-%d\n", p.IDs[0], p.IDs[1])
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "# note: %s\n", oneLine(n))
	}
	if v := p.Validation; v != nil {
		fmt.Fprintf(&b, "# validated in Coraza: %d of %d exploit requests blocked, %d of %d legitimate requests passed\n",
			v.ExploitsBlocked, v.ExploitsTotal, v.LegitimatePassed, v.LegitimateTotal)
		if v.MutationsTotal > 0 {
			fmt.Fprintf(&b, "# mutations of the exploit requests (%s): %d of %d blocked\n",
				strings.Join(v.Mutations, ", "), v.MutationsBlocked, v.MutationsTotal)
		}
		if v.Unproven != "" {
			fmt.Fprintf(&b, "# not proven, so every detection is detection-only: %s\n", oneLine(v.Unproven))
		}
		if v.CorpusTotal > 0 {
			fmt.Fprintf(&b, "# legitimate %s corpus: %d of %d requests passed\n", p.Knowledge.Format, v.CorpusPassed, v.CorpusTotal)
		}
		if p.ProxySecLang() != "" {
			fmt.Fprintf(&b, "# this file alone, without the rules only evident waf proxy enforces: %d of %d exploit requests and %d of %d mutations blocked\n",
				v.ExploitsBlockedExported, v.ExploitsTotal, v.MutationsBlockedExported, v.MutationsTotal)
		}
	}
	for _, r := range p.Rules {
		if r.ProxyOnly {
			fmt.Fprintf(&b, "# enforced only by evident waf proxy (%s/<service>.conf): rule %d, %s\n", ProxyDir, r.ID, r.Name)
		}
	}
	writeRules(&b, p.Rules, false)
	return b.String()
}

// ProxySecLang returns the patch's rules that only evident waf proxy
// enforces, "" when there are none.
func (p *Patch) ProxySecLang() string {
	if !slices.ContainsFunc(p.Rules, func(r Rule) bool { return r.ProxyOnly }) {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s in %s (%s): the rules only evident waf proxy enforces (structural operators)\n", oneLine(p.Vulnerability), oneLine(p.Package), p.Class)
	writeRules(&b, p.Rules, true)
	return b.String()
}

// writeRules writes the rules whose ProxyOnly is proxyOnly.
func writeRules(b *strings.Builder, rules []Rule, proxyOnly bool) {
	for _, r := range rules {
		if r.ProxyOnly != proxyOnly {
			continue
		}
		b.WriteString("\n")
		if r.Mode == ModeDetect {
			fmt.Fprintf(b, "# detection-only: %s\n", oneLine(r.Reason))
		}
		b.WriteString(r.SecLang)
	}
}

func oneLine(s string) string {
	// A line break would end the comment and make the rest a directive
	// (a service name from telemetry could write rules), and a trailing
	// backslash would continue the comment over the next line.
	return strings.TrimRight(strings.Join(strings.Fields(s), " "), `\`)
}

// mutation is an exploit request changed the way an attacker would to
// slip past a rule that matches its first form.
type mutation struct {
	name string
	req  Request
}

// mutations returns the variants of an exploit request that should be
// denied as well: percent-encoding hex digits in the other case, the
// media type upper-cased and with a charset parameter, whitespace around
// the body, a raw body sent as text/plain or without a media type, and
// the Authorization scheme upper-cased with extra spaces, an XML or YAML
// body in UTF-16, which the application's parser reads as it reads UTF-8,
// and every character of a JSON body's keys and strings written as a \u
// escape, which the application's JSON parser decodes. A request to a GET
// endpoint is also sent as HEAD, itself and each of its mutations
// ("method HEAD", "method HEAD and <mutation>"), since routers run the
// GET handler for HEAD (and the other way round for a HEAD endpoint).
// With tamper not "", the request is also sent with that method, one the
// traces do not show on its route ("method POST"): a route registered
// for every method runs the vulnerable handler for it too, and with the
// query moved into a form body ("method POST and query as form body"),
// which many frameworks read as they read the query.
// With upload, a body sent whole under its media type (not a form) is
// also sent as the file of a multipart/form-data upload ("as an uploaded
// file"), which applications read as they read the body.
// Mutations that would not change r are left out. Chunked bodies are a
// matter of transport: the proxy tests send them (Validate feeds the
// engine directly).
func mutations(r Request, tamper string, upload bool) []mutation {
	clone := func() Request {
		c := r
		c.Headers = maps.Clone(r.Headers)
		return c
	}
	var out []mutation
	if t := swapHexCase(r.Target); t != r.Target {
		m := clone()
		m.Target = t
		out = append(out, mutation{"percent-encoding case", m})
	}
	if ct := r.Headers["Content-Type"]; ct != "" && r.Body != "" {
		m := clone()
		// Parameters keep their case: a multipart boundary is
		// case-sensitive.
		mt, params, _ := strings.Cut(ct, ";")
		m.Headers["Content-Type"] = strings.TrimSpace(strings.ToUpper(mt) + "; charset=UTF-8;" + params)
		out = append(out, mutation{"media type case and charset", m})
		// Whitespace around a binary body (an archive) makes it no
		// archive at all: the application would refuse it.
		if !binaryBody(r.Body) {
			m = clone()
			m.Body = "\n\n" + r.Body + "\n"
			if strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
				m.Body = r.Body + "&"
			}
			out = append(out, mutation{"whitespace around the body", m})
		}
		if !strings.HasPrefix(ct, "application/x-www-form-urlencoded") && !strings.HasPrefix(ct, "multipart/") {
			// Applications often parse a body whatever its media type says.
			m = clone()
			m.Headers["Content-Type"] = "text/plain"
			out = append(out, mutation{"media type text/plain", m})
			m = clone()
			delete(m.Headers, "Content-Type")
			out = append(out, mutation{"no media type", m})
		}
	}
	if utf16Text(r.Headers["Content-Type"], r.Body) {
		m := clone()
		m.Body = utf16LE(r.Body)
		out = append(out, mutation{"body in UTF-16", m})
	}
	if up, ok := asUpload(r); ok && upload {
		out = append(out, mutation{"as an uploaded file", up})
		qp, _ := asUploadEncoded(r, "quoted-printable")
		out = append(out, mutation{"as an uploaded file in quoted-printable", qp})
	}
	if strings.Contains(strings.ToLower(r.Headers["Content-Type"]), "json") {
		if body, ok := escapeJSONStrings(r.Body); ok && body != r.Body {
			m := clone()
			m.Body = body
			out = append(out, mutation{"JSON strings as \\u escapes", m})
		}
	}
	if a := r.Headers["Authorization"]; a != "" {
		if scheme, rest, ok := strings.Cut(a, " "); ok {
			m := clone()
			m.Headers["Authorization"] = strings.ToUpper(scheme) + "  " + rest
			out = append(out, mutation{"auth scheme case and spacing", m})
		}
	}
	if twin := sameHandlerMethod(r.Method); twin != "" {
		as := make([]mutation, 0, 1+len(out))
		m := clone()
		m.Method = twin
		as = append(as, mutation{"method " + twin, m})
		for _, o := range out {
			m := o.req
			m.Method = twin
			as = append(as, mutation{"method " + twin + " and " + o.name, m})
		}
		out = append(out, as...)
	}
	if tamper != "" {
		m := clone()
		m.Method = tamper
		out = append(out, mutation{"method " + tamper, m})
		// Go's FormValue, Spring's @RequestParam, Flask's request.values
		// and PHP's $_REQUEST read a form body's parameters as they read
		// the query's.
		if path, query, ok := strings.Cut(r.Target, "?"); ok && query != "" && r.Body == "" {
			m := clone()
			if m.Headers == nil {
				m.Headers = map[string]string{}
			}
			m.Method, m.Target, m.Body = tamper, path, query
			m.Headers["Content-Type"] = "application/x-www-form-urlencoded"
			out = append(out, mutation{"method " + tamper + " and query as form body", m})
		}
	}
	return out
}

// uploadBoundary is the boundary of the multipart bodies asUpload makes:
// what browsers send (WebKit's prefix and 16 characters).
const uploadBoundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW"

// asUpload returns r with its body as the file of a multipart/form-data
// upload, as a browser sends a file input (RFC 7578): a form field
// beside it, the file's media type the body's. ok is false when r has
// no body sent whole under a media type: none, a form, or multipart
// already.
func asUpload(r Request) (Request, bool) {
	return asUploadEncoded(r, "")
}

// asUploadEncoded is asUpload with the file part in the
// Content-Transfer-Encoding cte ("" for none). Go's mime/multipart, which
// net/http's ParseMultipartForm reads uploads with, decodes a part in
// quoted-printable (quotedPrintable) for the application, while the raw
// body holds no byte of the document as sent.
func asUploadEncoded(r Request, cte string) (Request, bool) {
	ct := r.Headers["Content-Type"]
	mt := strings.ToLower(strings.TrimSpace(ct))
	if r.Body == "" || ct == "" || strings.HasPrefix(mt, "application/x-www-form-urlencoded") || strings.HasPrefix(mt, "multipart/") {
		return Request{}, false
	}
	file := r.Body
	if cte == "quoted-printable" {
		file = quotedPrintable(file)
	}
	if cte != "" {
		ct += "\r\nContent-Transfer-Encoding: " + cte
	}
	u := r
	u.Headers = maps.Clone(r.Headers)
	u.Headers["Content-Type"] = "multipart/form-data; boundary=" + uploadBoundary
	u.Body = "--" + uploadBoundary + "\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nupload\r\n" +
		"--" + uploadBoundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload\"\r\nContent-Type: " + ct + "\r\n\r\n" +
		file + "\r\n--" + uploadBoundary + "--\r\n"
	return u, true
}

// quotedPrintable returns s in quoted-printable with every byte escaped
// (=3C=21=44…) and a soft line break after every 24, as an attacker
// writes it: a line stays within RFC 2045's 76 characters.
func quotedPrintable(s string) string {
	var b strings.Builder
	for i := range len(s) {
		if i > 0 && i%24 == 0 {
			b.WriteString("=\r\n")
		}
		fmt.Fprintf(&b, "=%02X", s[i])
	}
	return b.String()
}

// tamperMethods are the methods an attacker tries on a route in the
// hope that the WAF's rules are scoped to the methods seen on it, the
// exploit kept where it was: POST first, which every router and form
// parser takes.
var tamperMethods = []string{"POST", "PUT", "PATCH", "DELETE"}

// tamperMethod returns the first of tamperMethods that is neither ep's
// method nor seen on ep's route in all, "" when there is none.
func tamperMethod(ep Endpoint, all []*EndpointTraffic) string {
	for _, m := range tamperMethods {
		if m != ep.Method && !slices.ContainsFunc(all, func(et *EndpointTraffic) bool { return et.Endpoint == Endpoint{Method: m, Route: ep.Route} }) {
			return m
		}
	}
	return ""
}

// utf16Text reports whether a body of media type ct is XML or YAML text,
// which parsers must also read in UTF-16 (XML 1.0 section 4.3.3, YAML 1.2
// section 5.2): Xerces, libxml2, SnakeYAML, PyYAML and go-yaml take the
// byte order mark for it, while a regular expression over the bytes sees
// a NUL between every two characters.
func utf16Text(ct, body string) bool {
	mt, _, _ := strings.Cut(strings.ToLower(ct), ";")
	mt = strings.TrimSpace(mt)
	if body == "" || binaryBody(body) || strings.HasPrefix(body, "\ufeff") {
		return false
	}
	for _, suffix := range []string{"/xml", "+xml", "/yaml", "/x-yaml", "+yaml"} {
		if strings.HasSuffix(mt, suffix) {
			return true
		}
	}
	return false
}

// utf16LE returns s in UTF-16, little-endian, after a byte order mark.
func utf16LE(s string) string {
	b := []byte{0xff, 0xfe}
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return string(b)
}

// binaryBody reports whether a body is binary (NUL bytes or invalid UTF-8).
func binaryBody(body string) bool {
	return strings.IndexByte(body, 0) >= 0 || !utf8.ValidString(body)
}

// swapHexCase swaps the case of the hex digits of every percent escape.
func swapHexCase(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] != '%' || !isHex(b[i+1]) || !isHex(b[i+2]) {
			continue
		}
		for _, j := range []int{i + 1, i + 2} {
			switch c := b[j]; {
			case c >= 'a' && c <= 'f':
				b[j] = c - 'a' + 'A'
			case c >= 'A' && c <= 'F':
				b[j] = c - 'A' + 'a'
			}
		}
		i += 2
	}
	return string(b)
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// escapeJSONStrings rewrites the JSON text s with every character of its
// keys and string values as a \uXXXX escape (surrogate pairs beyond the
// BMP), keeping its structure and order; ok is false when s is not JSON.
func escapeJSONStrings(s string) (out string, ok bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var b strings.Builder
	// Per open container: whether it is an object, and how many tokens
	// it has had, which decides between ",", ":" and nothing.
	type level struct {
		object bool
		n      int
	}
	var stack []level
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return b.String(), len(stack) == 0
		}
		if err != nil {
			return "", false
		}
		if d, isDelim := tok.(json.Delim); isDelim && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			b.WriteByte(byte(d))
			continue
		}
		if n := len(stack); n > 0 {
			top := &stack[n-1]
			switch {
			case top.object && top.n%2 == 1:
				b.WriteByte(':')
			case top.n > 0:
				b.WriteByte(',')
			}
			top.n++
		}
		switch v := tok.(type) {
		case json.Delim:
			b.WriteByte(byte(v))
			stack = append(stack, level{object: v == '{'})
		case string:
			b.WriteByte('"')
			for _, u := range utf16.Encode([]rune(v)) {
				fmt.Fprintf(&b, "\\u%04x", u)
			}
			b.WriteByte('"')
		case json.Number:
			b.WriteString(v.String())
		case bool:
			b.WriteString(strconv.FormatBool(v))
		case nil:
			b.WriteString("null")
		}
	}
}
