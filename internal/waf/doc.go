// Package waf writes virtual patches: SecLang rules (ModSecurity v3 and
// Coraza syntax) for each vulnerability whose code runs in an exposed
// service, scoped to the endpoints that reach it, detecting the attack
// class of the vulnerability and tightened by the legitimate traffic seen
// in traces. Validate proves each patch in an embedded Coraza engine
// against an exploit corpus and the replayed legitimate requests; Export
// writes per-service files, a CRS v4 plugin layout and JSON metadata; and
// Proxy enforces them as a reverse proxy. docs/waf.md documents the rule
// id range, the templates, the classification and the validation.
package waf
