// Package waf writes virtual patches: SecLang rules (ModSecurity v3 and
// Coraza syntax) for each vulnerability whose code runs in an exposed
// service, scoped to the endpoints that reach it, and tightened by the
// legitimate traffic seen in traces. The detections test the exploit's
// condition from evident's exploit knowledge (internal/knowledge), or, for
// a vulnerability without an entry, the template of its attack class.
// Validate proves each patch in an embedded Coraza engine against the
// vulnerability's exploit variants (or the class corpus), their mutations,
// the replayed legitimate requests and a legitimate corpus of the input's
// format, and ships what it cannot prove detection-only; Export writes
// per-service files, a CRS v4 plugin layout and JSON metadata; and Proxy
// enforces them as a reverse proxy, with the structural operators
// (inspect.go) that stock engines lack. docs/waf.md documents the rule id
// range, the checks, the templates, the classification and the validation.
package waf
