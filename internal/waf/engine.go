package waf

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/types"
)

// engineBodyLimit is the request body limit of every route; patches lower
// it per endpoint where the traffic records body sizes.
const engineBodyLimit = 13107200

// engineArgumentsLimit is how many arguments (query, form and JSON
// leaves) the engine inspects; a request with more is refused
// (bodyProcessorRules), since what follows the limit is in no ARGS a rule
// reads. Coraza's default, 1000, is below what legitimate JSON bodies hold
// (a GeoJSON feature collection, a list of orders), and below Go's 10,000
// query parameters.
const engineArgumentsLimit = 100000

// engineSettings turn the engine on and let it read request bodies, which
// phase-2 rules need. Coraza's recommended configuration starts in
// DetectionOnly, so a patch loaded without these would never block.
func engineSettings() string {
	return fmt.Sprintf(`SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit %d
SecRequestBodyInMemoryLimit 131072
SecRequestBodyLimitAction Reject
SecArgumentsLimit %d
`, engineBodyLimit, engineArgumentsLimit)
}

// bodyProcessorRules choose how request bodies are parsed, with ids from
// the engine block (the first of the range): form, multipart and JSON
// bodies into ARGS (JSON as Coraza's recommended configuration does), by
// the media type the application reads (Go's mime.ParseMediaType and
// Node.js trim white space, Unicode's too, before it); every other body
// kept whole in REQUEST_BODY (the RAW processor), since the XML, YAML and
// serialized-object templates read the raw text. Requests the rules could
// not read as the application does are refused: two Content-Type headers
// (the application reads the first, the engine would test them all), an
// argument past the engine's SecArgumentsLimit (padding would hide what
// follows from ARGS), a body that does not parse as its media type, and a
// multipart body that fails Coraza's strict checks (MULTIPART_STRICT_ERROR:
// a part header or parameter given twice, a malformed or badly quoted
// one), which parsers read differently: Go's mime/multipart, and so
// Coraza, names a field name="x"; name="y" "", Werkzeug names it y, so
// ARGS_NAMES held no name of it. Coraza's recommended configuration, which
// CRS deployments load, refuses it too (200003).
func bodyProcessorRules(base int) string {
	// Anything but letters before the media type: white space, Unicode's
	// too (the engine matches bytes, not runes).
	const ws = `^[^a-z]*`
	return fmt.Sprintf(`SecRule REQUEST_HEADERS:Content-Type "@rx %[6]sapplication/(?:[a-z0-9.+-]+\+)?json" \
    "id:%[1]d,phase:1,pass,nolog,t:none,t:lowercase,ctl:requestBodyProcessor=JSON,tag:'evident',tag:'evident/engine',ver:'evident/1'"
SecRule REQUEST_HEADERS:Content-Type "!@rx %[6]s(?:application/x-www-form-urlencoded|multipart/form-data|application/(?:[a-z0-9.+-]+\+)?json)" \
    "id:%[2]d,phase:1,pass,nolog,t:none,t:lowercase,ctl:requestBodyProcessor=RAW,tag:'evident',tag:'evident/engine',ver:'evident/1'"
SecRule &REQUEST_HEADERS:Content-Type "@eq 0" \
    "id:%[3]d,phase:1,pass,nolog,ctl:requestBodyProcessor=RAW,tag:'evident',tag:'evident/engine',ver:'evident/1'"
SecRule REQUEST_HEADERS:Content-Type "@rx ^[^a-z]+application/x-www-form-urlencoded" \
    "id:%[4]d,phase:1,pass,nolog,t:none,t:lowercase,ctl:requestBodyProcessor=URLENCODED,tag:'evident',tag:'evident/engine',ver:'evident/1'"
SecRule REQUEST_HEADERS:Content-Type "@rx ^[^a-z]+multipart/form-data" \
    "id:%[5]d,phase:1,pass,nolog,t:none,t:lowercase,ctl:requestBodyProcessor=MULTIPART,tag:'evident',tag:'evident/engine',ver:'evident/1'"
SecRule &REQUEST_HEADERS:Content-Type "@gt 1" \
    "id:%[7]d,phase:1,deny,status:403,log,msg:'Content-Type given more than once',tag:'evident',tag:'evident/engine',ver:'evident/1'"
SecRule ARGUMENTS_LIMIT_REACHED "@eq 1" \
    "id:%[8]d,phase:2,deny,status:403,log,msg:'more arguments than the rules inspect',tag:'evident',tag:'evident/engine',ver:'evident/1'"
SecRule REQBODY_ERROR "!@eq 0" \
    "id:%[9]d,phase:2,deny,status:403,log,msg:'request body does not parse as its media type',tag:'evident',tag:'evident/engine',ver:'evident/1'"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" \
    "id:%[10]d,phase:2,deny,status:403,log,msg:'multipart body that parsers read differently (MULTIPART_STRICT_ERROR)',tag:'evident',tag:'evident/engine',ver:'evident/1'"
`, base+1, base+2, base+3, base+4, base+5, ws, base+6, base+7, base+8, base+9)
}

// newWAF compiles directives into a WAF.
func newWAF(directives ...string) (coraza.WAF, error) {
	srcs := make([]ruleSource, len(directives))
	for i, d := range directives {
		srcs[i].text = d
	}
	w, err := compileRules(srcs)
	if err != nil {
		return nil, fmt.Errorf("compile rules: %w", err)
	}
	return w, nil
}

// ruleSource is SecLang text and the file it was read from ("": built in
// memory).
type ruleSource struct {
	name, text string
}

// compileRules compiles the sources, in order, into one WAF. Coraza's
// error names neither the file nor the line of the directive that does
// not compile, so on an error the sources are compiled again, a growing
// number of their directives at a time, to find it: the error then starts
// with "<file>:<line> (rule <id>)", or "line <n> of the rules" for text
// built in memory (counted over all of it).
func compileRules(srcs []ruleSource) (coraza.WAF, error) {
	registerOperators()
	cfg := coraza.NewWAFConfig()
	for _, s := range srcs {
		cfg = cfg.WithDirectives(s.text)
	}
	w, err := coraza.NewWAF(cfg)
	if err == nil {
		return w, nil
	}
	d, ok := failingDirective(srcs)
	if !ok {
		return nil, err
	}
	// What Coraza wraps its parser's error in ("invalid WAF config from
	// string") says less than the place does.
	if inner := errors.Unwrap(err); inner != nil {
		err = inner
	}
	return nil, fmt.Errorf("%s: %w", d.where(), err)
}

// directive is one directive of a rule source, with the lines it spans.
type directive struct {
	src  *ruleSource
	line int // of its first line, from 1; over every unnamed source
	raw  string
	// rule is the id of the rule, or of the chain it continues.
	rule string
}

// where says where the directive is, for an error message.
func (d directive) where() string {
	at := fmt.Sprintf("line %d of the rules", d.line)
	if d.src.name != "" {
		at = fmt.Sprintf("%s:%d", d.src.name, d.line)
	}
	if d.rule != "" {
		at += " (rule " + d.rule + ")"
	}
	return at
}

var (
	ruleIDPattern = regexp.MustCompile(`["',]\s*id\s*:\s*'?(\d+)`)
	chainPattern  = regexp.MustCompile(`["',]\s*chain\s*["',]`)
)

// splitDirectives cuts sources into directives the way Coraza's parser
// reads them: comments and blank lines apart, a line ending in a
// backslash continued on the next, a backtick opening a block up to a
// line that starts with one.
func splitDirectives(srcs []ruleSource) []directive {
	var out []directive
	unnamed := 0 // lines of the unnamed sources before this one
	for i := range srcs {
		src := &srcs[i]
		lines := strings.Split(src.text, "\n")
		offset := 0
		if src.name == "" {
			// As if the unnamed sources were one text, each ending
			// in a line break.
			offset = unnamed
			unnamed += strings.Count(src.text, "\n")
			if src.text != "" && !strings.HasSuffix(src.text, "\n") {
				unnamed++
			}
		}
		start, inBackticks, chain := -1, false, ""
		for n, l := range lines {
			line := strings.TrimSpace(l)
			if line == "" || line[0] == '#' {
				continue
			}
			if start < 0 {
				start = n
			}
			if !inBackticks && line[len(line)-1] == '`' {
				inBackticks = true
			} else if inBackticks && line[0] == '`' {
				inBackticks = false
			}
			if inBackticks || line[len(line)-1] == '\\' {
				continue
			}
			d := directive{src: src, line: offset + start + 1, raw: strings.Join(lines[start:n+1], "\n"), rule: chain}
			if m := ruleIDPattern.FindStringSubmatch(d.raw); m != nil {
				d.rule = m[1]
			}
			// The rule after one with "chain" continues it.
			chain = ""
			if chainPattern.MatchString(d.raw) {
				chain = d.rule
			}
			out = append(out, d)
			start = -1
		}
	}
	return out
}

// failingDirective finds the first directive that does not compile after
// those before it. Coraza stops at the first error, so a run of the first
// k directives fails exactly when k reaches it: a binary search finds it
// in a few compilations. ok is false when every directive compiles (the
// error is then not about one of them).
func failingDirective(srcs []ruleSource) (d directive, ok bool) {
	ds := splitDirectives(srcs)
	compiles := func(k int) bool {
		var b strings.Builder
		for _, d := range ds[:k] {
			b.WriteString(d.raw)
			b.WriteString("\n")
		}
		_, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives(b.String()))
		return err == nil
	}
	lo, hi := 0, len(ds) // the first lo compile, the first hi do not
	if hi == 0 || compiles(hi) {
		return directive{}, false
	}
	for hi-lo > 1 {
		if mid := (lo + hi) / 2; compiles(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return ds[hi-1], true
}

// clientAddr is the client address the validator's requests come from,
// from the TEST-NET-3 documentation range.
const clientAddr = "203.0.113.7"

// inspectRequest feeds a replayed request through phases 1 and 2 of tx.
func inspectRequest(tx types.Transaction, r Request) (*types.Interruption, error) {
	tx.ProcessConnection(clientAddr, 40000, "127.0.0.1", 80)
	tx.ProcessURI(r.Target, r.Method, "HTTP/1.1")
	host := false
	for k, v := range r.Headers {
		tx.AddRequestHeader(k, v)
		host = host || strings.EqualFold(k, "host")
	}
	if !host {
		tx.AddRequestHeader("Host", "localhost")
	}
	if r.Body != "" {
		if _, ok := r.Headers["Content-Length"]; !ok {
			tx.AddRequestHeader("Content-Length", strconv.Itoa(len(r.Body)))
		}
	}
	if it := tx.ProcessRequestHeaders(); it != nil {
		return it, nil
	}
	if r.Body != "" {
		if it, _, err := tx.WriteRequestBody([]byte(r.Body)); it != nil || err != nil {
			return it, err
		}
	}
	return tx.ProcessRequestBody()
}

// inspectHTTP feeds an incoming request through phases 1 and 2 of tx, as
// Coraza's http middleware does, and leaves r.Body readable for the
// upstream.
func inspectHTTP(tx types.Transaction, r *http.Request) (*types.Interruption, error) {
	client, port := r.RemoteAddr, 0
	if i := strings.LastIndexByte(r.RemoteAddr, ':'); i >= 0 {
		client = r.RemoteAddr[:i]
		port, _ = strconv.Atoi(r.RemoteAddr[i+1:])
	}
	tx.ProcessConnection(strings.Trim(client, "[]"), port, "", 0)
	tx.ProcessURI(r.URL.RequestURI(), r.Method, r.Proto)
	for k, vs := range r.Header {
		for _, v := range vs {
			tx.AddRequestHeader(k, v)
		}
	}
	if r.Host != "" {
		// net/http moves Host out of the header map.
		tx.AddRequestHeader("Host", r.Host)
		tx.SetServerName(r.Host)
	}
	// net/http also moves Transfer-Encoding out; the smuggling templates
	// need every value.
	for _, te := range r.TransferEncoding {
		tx.AddRequestHeader("Transfer-Encoding", te)
	}
	if it := tx.ProcessRequestHeaders(); it != nil {
		return it, nil
	}
	if tx.IsRequestBodyAccessible() && r.Body != nil && r.Body != http.NoBody {
		it, _, err := tx.ReadRequestBodyFrom(r.Body)
		if err != nil || it != nil {
			return it, err
		}
		rest, err := tx.RequestBodyReader()
		if err != nil {
			return nil, err
		}
		// The engine buffered up to its limit; the upstream gets that
		// buffer followed by whatever was not read.
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(rest, r.Body), r.Body}
	}
	return tx.ProcessRequestBody()
}

// matched returns the evident rules (scope and engine rules excepted)
// that matched in tx.
func matched(tx types.Transaction) []types.MatchedRule {
	var out []types.MatchedRule
	for _, mr := range tx.MatchedRules() {
		tags := mr.Rule().Tags()
		if hasTag(tags, "evident") && (hasTag(tags, "evident/"+KindDetection) || hasTag(tags, "evident/"+KindTraffic)) {
			out = append(out, mr)
		}
	}
	return out
}

func hasTag(tags []string, tag string) bool {
	for _, t := range tags {
		if t == tag {
			return true
		}
	}
	return false
}

// vulnTag returns the vulnerability id among a rule's tags.
func vulnTag(tags []string) string {
	for _, t := range tags {
		if t != "evident" && !strings.HasPrefix(t, "evident/") {
			return t
		}
	}
	return ""
}
