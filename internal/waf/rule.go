package waf

import (
	"fmt"
	"strings"
)

// Mode is what a rule does when it matches.
type Mode string

// Rule modes.
const (
	// ModeBlock denies the request with 403.
	ModeBlock Mode = "block"
	// ModeDetect logs the match and lets the request through; rules that
	// matched legitimate traffic are emitted this way.
	ModeDetect Mode = "detection_only"
)

// Rule kinds.
const (
	KindScope     = "scope"     // marks requests to the patched endpoints
	KindHost      = "host"      // unmarks requests to other services' hosts (Config.HostScope)
	KindDetection = "detection" // the attack class's template
	KindTraffic   = "traffic"   // limits learned from legitimate traffic
)

// Rule is one SecLang rule (a chain of SecRule links) of a patch.
type Rule struct {
	ID    int    `json:"id"`
	Phase int    `json:"phase"`
	Kind  string `json:"kind"`
	// Name says what the rule checks, in a few words.
	Name string `json:"name"`
	Mode Mode   `json:"mode"`
	// Reason says why a rule is detection-only.
	Reason string `json:"reason,omitempty"`
	// Endpoint is the endpoint a scope or traffic rule is about.
	Endpoint string `json:"endpoint,omitempty"`
	// ProxyOnly marks a rule with one of evident's structural operators
	// (inspect.go), which only evident waf proxy enforces; it is exported
	// apart from the SecLang that Coraza and ModSecurity load.
	ProxyOnly bool `json:"proxy_only,omitempty"`
	// SecLang is the rule as written to the .conf files.
	SecLang string `json:"seclang"`
	links   []link
	setvars []string
	// ctl is a ctl action of the rule ("requestBodyProcessor=RAW").
	ctl string
}

// marks reports whether r marks requests (a scope or host rule) rather
// than checks them: it passes without a log, and validation never
// downgrades it.
func (r *Rule) marks() bool {
	return r.Kind == KindScope || r.Kind == KindHost
}

// link is one SecRule of a chain: variables, operator, transformations.
// multiMatch tests the value before the transformations too, and after
// each of them.
type link struct {
	vars, op   string
	t          []string
	multiMatch bool
}

// bodyVars are the variables only known once the body is read; a rule
// that inspects one runs in phase 2.
var bodyVars = []string{"ARGS", "ARGS_POST", "ARGS_NAMES", "ARGS_POST_NAMES", "REQUEST_BODY", "FILES", "FILES_NAMES", "XML", "ARGS_COMBINED_SIZE", "REQUEST_BODY_LENGTH", "REQBODY_ERROR", "REQBODY_PROCESSOR_ERROR"}

// phaseOf returns 2 when any link reads the body, else 1: headers, the
// URI and the query string are all known in phase 1.
func phaseOf(links []link) int {
	for _, l := range links {
		for _, v := range strings.Split(l.vars, "|") {
			v = strings.TrimLeft(v, "&!")
			name, _, _ := strings.Cut(v, ":")
			for _, b := range bodyVars {
				if name == b {
					return 2
				}
			}
		}
	}
	return 1
}

// render writes the rule as SecLang. The first link carries the id,
// phase, disruptive action, message and tags; later links only their
// transformations; setvars and the ctl go on the last link, which runs
// only when the whole chain matched.
func (r *Rule) render(p *Patch) {
	var b strings.Builder
	for i, l := range r.links {
		var acts []string
		if i == 0 {
			acts = append(acts, fmt.Sprintf("id:%d", r.ID), fmt.Sprintf("phase:%d", r.Phase))
			switch {
			case r.marks():
				acts = append(acts, "pass", "nolog")
			case r.Mode == ModeBlock:
				acts = append(acts, "deny", "status:403", "log", "auditlog")
			default:
				acts = append(acts, "pass", "log", "auditlog")
			}
			if !r.marks() {
				acts = append(acts, "msg:'"+quoteAction(fmt.Sprintf("evident virtual patch for %s (%s): %s", p.Vulnerability, p.Class, r.Name))+"'",
					"logdata:'%{MATCHED_VAR_NAME}'", "severity:'CRITICAL'")
			}
			acts = append(acts, "tag:'evident'", "tag:'"+quoteAction(p.Vulnerability)+"'",
				"tag:'evident/class/"+string(p.Class)+"'", "tag:'evident/service/"+quoteAction(p.Service)+"'",
				"tag:'evident/"+r.Kind+"'")
			if r.Mode == ModeDetect {
				acts = append(acts, "tag:'evident/detection-only'")
			}
			acts = append(acts, "ver:'evident/1'")
		}
		if len(l.t) > 0 {
			acts = append(acts, "t:none")
			for _, t := range l.t {
				acts = append(acts, "t:"+t)
			}
		}
		if l.multiMatch {
			acts = append(acts, "multiMatch")
		}
		last := i == len(r.links)-1
		if last {
			for _, sv := range r.setvars {
				acts = append(acts, "setvar:'"+sv+"'")
			}
			if r.ctl != "" {
				acts = append(acts, "ctl:"+r.ctl)
			}
		} else {
			acts = append(acts, "chain")
		}
		if i > 0 {
			b.WriteString("    ")
		}
		fmt.Fprintf(&b, "SecRule %s \"%s\"", l.vars, quoteOperator(l.op))
		if len(acts) > 0 {
			b.WriteString(" \\\n    ")
			if i > 0 {
				b.WriteString("    ")
			}
			fmt.Fprintf(&b, "\"%s\"", strings.Join(acts, ","))
		}
		b.WriteString("\n")
	}
	r.SecLang = b.String()
}

// quoteOperator escapes what would end the quoted operator.
func quoteOperator(s string) string {
	return strings.ReplaceAll(s, `"`, `\"`)
}

// quoteAction keeps a value inside its single quotes.
func quoteAction(s string) string {
	return strings.NewReplacer(`'`, "", `"`, "", "\n", " ", `\`, "/").Replace(s)
}
