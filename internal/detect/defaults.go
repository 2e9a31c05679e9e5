package detect

import "slices"

// DefaultRules returns the built-in exploit rules, documented in
// docs/detections.md. The slice is new on every call, so callers may
// append their own rules before CompileRules.
func DefaultRules() []Rule {
	// requestFields are what a client controls in a request;
	// queryFields where parameters travel.
	requestFields := []Field{FieldURLPath, FieldURLQuery, FieldURLFull, FieldUserAgent, FieldRequestHeader}
	queryFields := []Field{FieldURLPath, FieldURLQuery, FieldURLFull, FieldRequestHeader}
	with := func(fs []Field, f Field) []Field { return append(slices.Clip(fs), f) }
	// sp is what SQL reads as a space between two words: whitespace,
	// vertical tab included (MySQL's and SQL Server's lexers skip it,
	// \s does not match it), or a comment; but MySQL runs what a
	// versioned comment holds (/*!50000union*/), so its opening and its
	// end are each a space there.
	const sp = `(?:[\s\v]|/\*.*?\*/|/\*!\d*|\*/)`
	return []Rule{
		// JNDI and expression-language injection.
		{
			ID: "jndi-lookup", Class: "jndi-injection", Severity: Critical,
			Fields:  with(requestFields, FieldDBQueryText),
			Pattern: `\$\{\s*jndi\s*:`,
		},
		{
			ID: "ognl-expression", Class: "expression-injection", Severity: Critical,
			Fields:  requestFields,
			Pattern: `%\{[^}]*(?:#|@|\(\))|#_memberaccess|@java\.lang\.(?:runtime|processbuilder|system)@|ognlcontext`,
		},
		{
			ID: "spel-expression", Class: "expression-injection", Severity: Critical,
			Fields:  requestFields,
			Pattern: `t\s*\(\s*java\.lang\.|#\{[^}]*(?:t\s*\(|new\s+java|getclass|runtime|\.exec\(|@)|class\.module\.classloader`,
		},

		// Path traversal.
		{
			ID: "path-traversal", Class: "path-traversal", Severity: High,
			Fields:  queryFields,
			Pattern: `\.\.[/\\;]|/\.\.$`,
		},
		{
			ID: "sensitive-file", Class: "path-traversal", Severity: High,
			Fields:  queryFields,
			Pattern: `/etc/(?:passwd|shadow)\b|win\.ini\b|boot\.ini\b|/proc/self/(?:environ|cmdline|mem)|\.ssh/id_(?:rsa|dsa|ecdsa|ed25519)`,
		},

		// SQL injection in request parameters.
		{
			ID: "sqli-tautology", Class: "sql-injection", Severity: High,
			Fields:  queryFields,
			Pattern: `['"]` + sp + `*or(?:` + sp + `+['"]?|['"])\w+['"]?` + sp + `*(?:=|like)` + sp + `*['"]?\w+|(?:[\s\v]|\*/|/\*!\d*)or` + sp + `+\d+` + sp + `*=` + sp + `*\d+\b`,
		},
		{
			ID: "sqli-union", Class: "sql-injection", Severity: High,
			Fields:  queryFields,
			Pattern: `union` + sp + `+(?:(?:all|distinct)` + sp + `+)?select\b`,
		},
		{
			ID: "sqli-stacked", Class: "sql-injection", Severity: High,
			Fields:  queryFields,
			Pattern: `;` + sp + `*(?:drop` + sp + `+(?:table|database)|delete` + sp + `+from|insert` + sp + `+into|update` + sp + `+\w+` + sp + `+set|alter` + sp + `+table|create` + sp + `+(?:table|user)|truncate` + sp + `+table|exec(?:ute)?` + sp + `+(?:xp_|sp_|master\.)|shutdown\b)`,
		},
		{
			ID: "sqli-timing", Class: "sql-injection", Severity: High,
			Fields:  with(queryFields, FieldUserAgent),
			Pattern: `(?:sleep|benchmark)` + sp + `*\(` + sp + `*\d|waitfor` + sp + `+delay` + sp + `+'`,
		},

		// SQL injection visible in the statements the service sent:
		// instrumentation sanitizes literals, so these shapes show up
		// only when the input changed the statement itself.
		{
			ID: "sqli-db-tautology", Class: "sql-injection", Severity: Critical,
			Fields:  []Field{FieldDBQueryText},
			Pattern: ` or\s+(?:'[^']*'\s*=\s*'[^']*'|\d+\s*=\s*\d+)`,
		},
		{
			ID: "sqli-db-union", Class: "sql-injection", Severity: Critical,
			Fields:  []Field{FieldDBQueryText},
			Pattern: `union\s+(?:all\s+)?select\s+(?:null|\d+|@@version|version\(\)|user\(\))\s*(?:,|from|--|#|$)`,
		},
		{
			ID: "sqli-db-timing", Class: "sql-injection", Severity: Critical,
			Fields:  []Field{FieldDBQueryText},
			Pattern: `(?:sleep|benchmark)\s*\(\s*\d|waitfor\s+delay\s+'`,
		},
		{
			ID: "sqli-db-stacked", Class: "sql-injection", Severity: Critical,
			Fields:  []Field{FieldDBQueryText},
			Pattern: `;\s*(?:drop|truncate|shutdown)\s`,
		},

		// Server-side template injection.
		{
			ID: "template-injection", Class: "template-injection", Severity: High,
			Fields:  requestFields,
			Pattern: `\{\{[^}]*?(?:\d+\s*[*+/-]\s*\d+|__class__|__globals__|__builtins__|config\.|self\.|lipsum|cycler)|\$\{\s*\d+\s*[*+/-]\s*\d+\s*\}|<%=?[^%]*%>|\{%\s*(?:import|include|set|for|if|debug)\b|#set\s*\(\s*\$`,
		},

		// OS command injection.
		{
			ID: "command-injection", Class: "command-injection", Severity: Critical,
			Fields:  requestFields,
			Pattern: `(?:;|\|\|?|&&|\$\(|` + "`" + `|\n)\s*(?:(?:id|whoami|uname(?:\s+-a)?|ifconfig|hostname)(?:\s*(?:$|[;|&)` + "`" + `#])|\s+-)|cat\s+/etc/|(?:wget|curl)\s+(?:-\S+\s+)*(?:https?://|\d)|nc(?:at)?\s+(?:-\S+\s+)*\S+\s+\d|bash\s+-[ic]|sh\s+-c\s|/bin/(?:ba|z|da)?sh\b|powershell\b|cmd(?:\.exe)?\s+/c|ping\s+-[cn]\s+\d|sleep\s+\d+\s*(?:$|[;|&)` + "`" + `]))`,
		},

		// SSRF towards cloud instance metadata services: in the request
		// (the payload) and in the calls the service made (the effect).
		{
			ID: "ssrf-cloud-metadata", Class: "ssrf", Severity: High,
			Fields:  with(queryFields, FieldServerAddress),
			Pattern: `169\.254\.169\.254|metadata\.google\.internal|fd00:ec2::254|100\.100\.100\.200|2852039166\b|0xa9fea9fe|0251\.0376\.0251\.0376|169\.254\.170\.2\b|a9fe:a9fe`,
		},
	}
}
