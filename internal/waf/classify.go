package waf

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/evidentsec/evident/internal/vulndb"
)

// Class is the kind of attack a vulnerability admits, which picks the
// detection template of its patch.
type Class string

// Template classes (docs/waf.md describes each).
const (
	ClassExpressionInjection Class = "expression_injection" // JNDI lookups, EL, OGNL, SpEL
	ClassDeserialization     Class = "deserialization"      // Java, PHP, Python, .NET, YAML object tags
	ClassPathTraversal       Class = "path_traversal"
	ClassSQLInjection        Class = "sql_injection"
	ClassXSS                 Class = "xss"
	ClassSSRF                Class = "ssrf"
	ClassOversizedInput      Class = "oversized_input" // ReDoS, resource exhaustion, loops on malformed input
	ClassXXE                 Class = "xxe"
	ClassParserBomb          Class = "parser_bomb" // YAML alias and XML entity expansion
	ClassRequestSmuggling    Class = "request_smuggling"
	ClassPrototypePollution  Class = "prototype_pollution"
	ClassTemplateInjection   Class = "template_injection"
	ClassOpenRedirect        Class = "open_redirect" // a redirect target that leaves the site
)

// Classes lists every class in documentation order.
var Classes = []Class{
	ClassExpressionInjection, ClassDeserialization, ClassPathTraversal, ClassSQLInjection, ClassXSS,
	ClassSSRF, ClassOversizedInput, ClassXXE, ClassParserBomb, ClassRequestSmuggling,
	ClassPrototypePollution, ClassTemplateInjection, ClassOpenRedirect,
}

// cweClass maps CWE ids that name one attack class. CWEs that say little
// about the input (CWE-20 improper input validation, CWE-400 uncontrolled
// resource consumption, CWE-94 code injection) are in weakCWE: the text
// rules get to refine them first.
var cweClass = map[string]Class{
	"CWE-917":  ClassExpressionInjection,
	"CWE-502":  ClassDeserialization,
	"CWE-22":   ClassPathTraversal,
	"CWE-23":   ClassPathTraversal,
	"CWE-24":   ClassPathTraversal,
	"CWE-35":   ClassPathTraversal,
	"CWE-36":   ClassPathTraversal,
	"CWE-73":   ClassPathTraversal,
	"CWE-89":   ClassSQLInjection,
	"CWE-564":  ClassSQLInjection,
	"CWE-79":   ClassXSS,
	"CWE-80":   ClassXSS,
	"CWE-83":   ClassXSS,
	"CWE-918":  ClassSSRF,
	"CWE-1333": ClassOversizedInput,
	"CWE-835":  ClassOversizedInput,
	"CWE-674":  ClassOversizedInput,
	"CWE-1050": ClassOversizedInput,
	"CWE-611":  ClassXXE,
	"CWE-827":  ClassXXE,
	"CWE-776":  ClassParserBomb,
	"CWE-444":  ClassRequestSmuggling,
	"CWE-113":  ClassRequestSmuggling,
	"CWE-1321": ClassPrototypePollution,
	"CWE-1336": ClassTemplateInjection,
	"CWE-601":  ClassOpenRedirect,
}

// weakCWE are CWEs that suggest a class only when the text says nothing
// more precise.
var weakCWE = map[string]Class{
	"CWE-400": ClassOversizedInput,
	"CWE-770": ClassOversizedInput,
	"CWE-789": ClassOversizedInput,
	"CWE-94":  ClassExpressionInjection,
	"CWE-95":  ClassExpressionInjection,
}

// textRule classifies by the record's summary and details, and optionally
// by the affected package name. Order matters: the first match wins, so the
// specific rules (a YAML alias bomb) come before the general ones (denial
// of service).
type textRule struct {
	class Class
	text  *regexp.Regexp
	pkg   *regexp.Regexp // nil: any package
	doc   string
}

var textRules = []textRule{
	{ClassExpressionInjection, regexp.MustCompile(`(?i)\bjndi\b|log4shell|expression language|\bEL injection|\bOGNL\b|\bSpEL\b|\bMVEL\b|string interpolation.*(lookup|script)|\blookups?\b.*\b(ldap|rmi|dns)\b`), nil,
		"JNDI, EL, OGNL, SpEL, MVEL or interpolation lookups"},
	{ClassTemplateInjection, regexp.MustCompile(`(?i)template injection|\bSSTI\b|server-side template`), nil,
		"template injection"},
	{ClassPrototypePollution, regexp.MustCompile(`(?i)prototype pollution|__proto__`), nil,
		"prototype pollution"},
	{ClassXXE, regexp.MustCompile(`(?i)\bXXE\b|external entit`), nil,
		"XML external entities"},
	{ClassParserBomb, regexp.MustCompile(`(?i)billion laughs|entity expansion|yaml bomb|xml bomb|(alias|anchor|entit|nest)\w*.*(exhaust|consum|denial|dos\b|memory|cpu)|(exhaust|consum|denial|memory|cpu).*(alias|anchor|entit|nest)`), regexp.MustCompile(`(?i)yaml|xml`),
		"alias, entity or nesting blow-up, in a YAML or XML package"},
	{ClassRequestSmuggling, regexp.MustCompile(`(?i)request smuggling|desync|transfer-encoding|chunked (encoding|extension)|content-length.*(conflict|multiple|duplicate)`), nil,
		"request smuggling, Transfer-Encoding and Content-Length handling"},
	{ClassSSRF, regexp.MustCompile(`(?i)server-side request forgery|\bSSRF\b`), nil,
		"server-side request forgery"},
	{ClassOpenRedirect, regexp.MustCompile(`(?i)open redirect|unvalidated redirect|redirect allow ?list bypass`), nil,
		"open redirect"},
	{ClassDeserialization, regexp.MustCompile(`(?i)(unsafe|untrusted|insecure|arbitrary)\W+(\w+\W+)?deserializ|deserializ\w*\W+(\w+\W+){0,3}(untrusted|gadget|code execution|arbitrary (code|object|class))|gadget chain|object injection|unpickl|pickle`), nil,
		"deserialization of untrusted data, gadget chains, object injection"},
	{ClassPathTraversal, regexp.MustCompile(`(?i)(path|directory) traversal|zip slip|\.\./|arbitrary file (read|write|access)|outside (of )?the (intended|root|base) directory`), nil,
		"path or directory traversal"},
	{ClassSQLInjection, regexp.MustCompile(`(?i)sql injection|\bSQLi\b`), nil,
		"SQL injection"},
	{ClassXSS, regexp.MustCompile(`(?i)cross[- ]site scripting|\bXSS\b`), nil,
		"cross-site scripting"},
	{ClassOversizedInput, regexp.MustCompile(`(?i)denial of service|\bdos\b|infinite loop|excessive|exhaust|\bReDoS\b|regular expression|backtracking|stack overflow|uncontrolled recursion|quadratic|unbounded|large (input|request|header|body)|(memory|cpu) consumption|hang`), nil,
		"denial of service: ReDoS, loops, recursion, resource exhaustion on large or malformed input"},
}

// Classification says which class a vulnerability falls in and why.
type Classification struct {
	Class Class `json:"class"`
	// Reason names the CWE or the text rule that decided.
	Reason string `json:"reason"`
}

// ErrUnclassified means no rule gives a vulnerability an attack class, so
// no template applies.
var ErrUnclassified = errors.New("no attack class for the vulnerability")

// Classify returns the attack class of v. CWE ids in the record's
// database_specific.cwe_ids (GitHub advisories carry them) decide when one
// names a class; otherwise the text rules run over the summary and details
// (and, for parser bombs, the affected package names); a weak CWE is the
// last resort. pkg is the affected package of the finding, used when the
// record names none.
func Classify(v *vulndb.Vuln, pkg string) (Classification, error) {
	if v == nil || v.Entry == nil {
		return Classification{}, fmt.Errorf("classify: %w: no vulnerability record", ErrUnclassified)
	}
	e := v.Entry
	cwes := cweIDs(e.DatabaseSpecific)
	text := e.Summary + "\n" + e.Details
	pkgs := []string{pkg}
	for _, a := range e.Affected {
		pkgs = append(pkgs, a.Package.Name)
	}
	pkgText := strings.Join(pkgs, " ")
	var byText *textRule
	for i, r := range textRules {
		if r.text.MatchString(text) && (r.pkg == nil || r.pkg.MatchString(pkgText)) {
			byText = &textRules[i]
			break
		}
	}

	// Records often list several CWEs (Log4Shell: CWE-20, CWE-400,
	// CWE-502, CWE-917). The one the text agrees with wins; else the
	// first in Classes order, which puts the classes with the most
	// specific payloads first.
	best, bestCWE := -1, ""
	for _, c := range cwes {
		cl, ok := cweClass[c]
		if !ok {
			continue
		}
		if byText != nil && byText.class == cl {
			return Classification{Class: cl, Reason: c + ", and text: " + byText.doc}, nil
		}
		if i := slices.Index(Classes, cl); best < 0 || i < best {
			best, bestCWE = i, c
		}
	}
	if best >= 0 {
		return Classification{Class: Classes[best], Reason: bestCWE}, nil
	}
	if byText != nil {
		return Classification{Class: byText.class, Reason: "text: " + byText.doc}, nil
	}
	for _, c := range cwes {
		if cl, ok := weakCWE[c]; ok {
			return Classification{Class: cl, Reason: c}, nil
		}
	}
	return Classification{}, fmt.Errorf("classify %s: %w: no class for CWEs %v or its summary %q", e.ID, ErrUnclassified, cwes, e.Summary)
}

// cweIDs reads database_specific.cwe_ids; records without it (or with a
// different shape) have none.
func cweIDs(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var ds struct {
		CWEIDs []string `json:"cwe_ids"`
	}
	if json.Unmarshal(raw, &ds) != nil {
		return nil
	}
	return ds.CWEIDs
}
