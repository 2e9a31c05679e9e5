package waf

// detection is one check of a class template: links that follow the
// patch's scope check in a chain.
type detection struct {
	name  string
	links []link
}

// Transformation chains shared by the templates. ARGS are already
// URL-decoded once by the engine; decoding again catches double encoding.
// removeNulls also reads an XML or YAML body sent in UTF-16 (or UTF-32),
// which the application's parser decodes by its byte order mark, as the
// ASCII the patterns look for.
var (
	tDecode    = []string{"utf8toUnicode", "urlDecodeUni", "removeNulls"}
	tDecodeAll = []string{"utf8toUnicode", "urlDecodeUni", "jsDecode", "htmlEntityDecode", "removeNulls"}
	tUTF16     = []string{"removeNulls"}
)

// rxAuthorityBackslash matches a URL whose authority (after "scheme://",
// "//", or a special scheme's colon) holds a backslash. A WHATWG or Node
// url.parse allow-list check reads the backslash as "/" and sees the host
// before it; percent-encoded into the Location header (%5C), as express
// before 4.19.2 did, it becomes part of the user info, and the browser goes
// to the host after the "@" (CVE-2024-29041).
const rxAuthorityBackslash = `@rx (?i)^(?:(?:[a-z][a-z0-9+.-]*:)?[/\\]{2}|(?:https?|wss?|ftp):)[^/?#]*\\`

// templates is the library of detections per class (docs/waf.md lists
// them with their sources). Patterns follow the OWASP CRS rules named in
// each comment, narrowed to what the class needs, since a virtual patch
// runs only on the endpoints that reach the vulnerable code.
var templates = map[Class][]detection{
	// CRS 944150/944151 (Log4Shell and its evasions), 944110 (Java
	// process spawning) and OGNL/SpEL payloads of Struts and Spring
	// advisories.
	ClassExpressionInjection: {
		{"JNDI or interpolation lookup", []link{{
			vars: "REQUEST_URI|ARGS|ARGS_NAMES|REQUEST_HEADERS|REQUEST_COOKIES|REQUEST_BODY",
			op:   `@rx (?i)(?:\$|&dollar;?|&#0*36;?|&#x0*24;?)(?:\{|&l(?:brace|cub);?|&#0*123;?|&#x0*7b;?)(?:[^}]{0,15}(?:\$|&dollar;?|&#0*36;?)(?:\{|&l(?:brace|cub);?|&#0*123;?)|jndi|ctx|env:|sys:|java:|lower:|upper:|main:|bundle:|date:|spring:|k8s:|docker:|log4j:|web:|base64:|::-)`,
			t:    tDecodeAll,
		}}},
		{"OGNL, SpEL or EL expression", []link{{
			vars: "REQUEST_URI|ARGS|ARGS_NAMES|REQUEST_HEADERS|REQUEST_COOKIES|REQUEST_BODY",
			op:   `@rx (?i)(?:%\{[^}]{0,200}(?:#|@java|new\s+java)|[$#]\{[^}]{0,200}(?:T\s*\(\s*java|getClass\s*\(|getRuntime\s*\(|\.forName\s*\(|new\s+java\.|\.exec\s*\()|#_memberAccess|@java\.lang\.Runtime|java\.lang\.ProcessBuilder|\bT\s*\(\s*java\.lang\.|\.getRuntime\s*\(\s*\)\s*\.exec\s*\()`,
			t:    tDecodeAll,
		}}},
	},
	// Serialized-object signatures: Java (ysoserial, CRS 944200-944210:
	// the stream's magic AC ED 00 05 as sent, binary, and as hex or
	// base64 text; removeNulls takes the 00 out),
	// PHP (CRS 933170), Python pickle, .NET BinaryFormatter, YAML object
	// tags (SnakeYAML, PyYAML) and Jackson/Fastjson polymorphic types.
	ClassDeserialization: {
		{"serialized object", []link{{
			vars: "ARGS|ARGS_NAMES|REQUEST_HEADERS|REQUEST_COOKIES|REQUEST_BODY",
			op:   `@rx (?:rO0AB|aced0005|\xac\xed\x00?\x05|H4sIAAAAAAAA|AAEAAAD/////|\bO:[0-9]+:"[A-Za-z_\\][A-Za-z0-9_\\]*":[0-9]+:\{|\ba:[0-9]+:\{[si]:[0-9]|!!python/(?:object|name|module|apply)|!!(?:javax?|com\.sun|org\.(?:springframework|apache))\.|"@type"\s*:\s*"|\[\s*"(?:com\.sun\.rowset|org\.springframework|ch\.qos\.logback|com\.mchange|org\.apache)|c__builtin__|\bcposix\b|\bcos\s+system|\\x80\\x0[2-5])`,
			t:    []string{"urlDecodeUni", "removeNulls"},
		}}},
		{"polymorphic type key in JSON", []link{{
			vars: "ARGS_NAMES",
			op:   `@rx (?:^|\.)(?:@type|@class|\$type|__type)$`,
		}}},
		{"serialized object media type", []link{{
			vars: "REQUEST_HEADERS:Content-Type",
			op:   `@rx (?i)application/(?:x-java-serialized-object|x-java-object|x-php-serialized|python-pickle|x-python-serialize|octet-stream;\s*class=)`,
		}}},
	},
	// CRS 930100 (encoded traversal), 930110 (decoded traversal) and
	// 930120 (OS files).
	ClassPathTraversal: {
		// REQUEST_BODY: a JSON body sent as text/plain or with no media
		// type, or an XML one, is kept raw, in no ARGS, and many
		// handlers decode JSON whatever the media type says.
		{"directory traversal", []link{{
			vars: "REQUEST_URI_RAW|REQUEST_FILENAME|ARGS|ARGS_NAMES|REQUEST_HEADERS|FILES|REQUEST_BODY",
			op:   `@rx (?:(?:^|[\\/;])\.{2,3}[\\/;]|[\\/;]\.{2,3}(?:[\\/;]|$)|^\.{2,3}$|%(?:2e|c0%ae|e0%80%ae|u002e){2}|0x2e\.?%00)`,
			t:    []string{"utf8toUnicode", "urlDecodeUni", "removeNulls", "cmdLine"},
		}}},
		{"operating system file", []link{{
			vars: "REQUEST_FILENAME|ARGS|REQUEST_HEADERS",
			op:   `@rx (?i)(?:/etc/(?:passwd|shadow|group|hosts|issue)|/proc/(?:self|[0-9]+)/|(?:^|[\\/])(?:win\.ini|boot\.ini|system32[\\/])|\.(?:htaccess|htpasswd|git/config|env)\b)`,
			t:    []string{"utf8toUnicode", "urlDecodeUni", "removeNulls", "normalizePath"},
		}}},
	},
	// CRS 942100 (libinjection) and 942190/942260 style keywords.
	ClassSQLInjection: {
		{"libinjection SQL injection", []link{{
			vars: "REQUEST_FILENAME|ARGS|ARGS_NAMES|REQUEST_COOKIES|REQUEST_HEADERS:User-Agent|REQUEST_HEADERS:Referer",
			op:   "@detectSQLi",
			t:    tDecode,
		}}},
		{"SQL keywords and tautologies", []link{{
			vars: "REQUEST_FILENAME|ARGS|ARGS_NAMES|REQUEST_COOKIES|REQUEST_BODY",
			op:   `@rx (?i)(?:\bunion\b[\s\S]{0,40}\bselect\b|'\s*(?:or|and|\|\||&&)\s*'?[^']{0,20}'?\s*(?:=|<|>|like\b)|\b(?:or|and)\b\s+[0-9]+\s*=\s*[0-9]+|;\s*(?:drop|delete|insert|update|shutdown|exec)\b|\b(?:sleep|benchmark|pg_sleep)\s*\(|\bwaitfor\s+delay\b|'\s*--|/\*!)`,
			t:    tDecode,
		}}},
	},
	// CRS 941100 (libinjection), 941110/941160 (script tags, event
	// handlers, javascript: URIs) and the foreign-content elements (svg,
	// math) of HTML parser mutation XSS.
	ClassXSS: {
		{"libinjection XSS", []link{{
			vars: "ARGS|ARGS_NAMES|REQUEST_COOKIES|REQUEST_HEADERS:User-Agent|REQUEST_HEADERS:Referer|REQUEST_FILENAME",
			op:   "@detectXSS",
			t:    tDecodeAll,
		}}},
		{"active HTML", []link{{
			vars: "ARGS|ARGS_NAMES|REQUEST_COOKIES|REQUEST_BODY",
			op:   `@rx (?i)(?:<(?:script|iframe|object|embed|svg|math|style|template|noscript|xmp|noembed|noframes|plaintext|base|meta|link)\b|<[a-z][^>]*\bon[a-z]{3,}\s*=|(?:javascript|vbscript|livescript)\s*:|<!\[CDATA\[|data:text/html|srcdoc\s*=)`,
			t:    tDecodeAll,
		}}},
	},
	// CRS 934110 (SSRF: cloud metadata, loopback and private ranges,
	// dangerous schemes) and the PortSwigger SSRF bypass list.
	ClassSSRF: {
		{"internal address or dangerous URL scheme", []link{{
			vars: "ARGS|ARGS_NAMES|REQUEST_BODY|REQUEST_HEADERS:Referer",
			op:   `@rx (?i)(?:(?:file|gopher|dict|ldaps?|tftp|jar|netdoc|php|expect|sftp|ftp)://|(?:https?:)?//(?:[^/?#@\s]*@)?(?:localhost|127\.[0-9.]+|0\.0\.0\.0|0x7f[0-9a-fx.]*|0177\.[0-9.]+|2130706433|017700000001|\[?(?:0*:)*:0*1\]?|\[[0-9a-f:]*ffff:[0-9a-f.:]+\]|169\.254\.[0-9.]+|10\.[0-9]+\.[0-9.]+|192\.168\.[0-9.]+|172\.(?:1[6-9]|2[0-9]|3[01])\.[0-9.]+|metadata\.google\.internal|metadata\.azure\.com|100\.100\.100\.200|instance-data|[a-z0-9.-]*\.(?:internal|local|localdomain|nip\.io|sslip\.io))(?:[:/?#\\]|$))`,
			t:    []string{"urlDecodeUni", "removeWhitespace", "removeNulls"},
		}}},
	},
	// CRS 920250 (UTF-8 abuse); the length limits come from traffic.
	ClassOversizedInput: {
		{"invalid UTF-8", []link{{
			vars: "REQUEST_FILENAME|ARGS|ARGS_NAMES|REQUEST_HEADERS",
			op:   "@validateUtf8Encoding",
		}}},
		// Sparse-slice and array-index blow-ups (gorilla/schema
		// GHSA-3669-72x9-r9p3, qs arrayLimit) allocate by the index in
		// the parameter name.
		{"large index in a parameter name", []link{{
			vars: "ARGS_NAMES",
			op:   `@rx (?:[.\[]|^)[0-9]{4,}(?:[.\]]|$)`,
		}}},
	},
	// CRS 934110 (v3: XXE) and the OWASP XXE prevention cheat sheet:
	// external entities, parameter entities and XInclude.
	ClassXXE: {
		{"external entity", []link{{
			vars: "REQUEST_BODY|ARGS|FILES",
			op:   `@rx (?i)<!(?:DOCTYPE|ENTITY)[^>]*\b(?:SYSTEM|PUBLIC)\b|<!ENTITY\s+%|\bxmlns:xi\s*=|<xi:include\b`,
			t:    []string{"utf8toUnicode", "removeNulls"},
		}}},
	},
	// Billion laughs (XML), alias fan-out (YAML: CVE-2019-11253,
	// GO-2020-0036) and deep nesting (SnakeYAML, JSON parsers).
	ClassParserBomb: {
		{"XML entity expansion", []link{{
			vars: "REQUEST_BODY|ARGS",
			op:   `@rx (?i)<!ENTITY\s+[^\s>]+\s+["'][^"']*&[^;\s]+;`,
			t:    tUTF16,
		}}},
		{"YAML alias fan-out", []link{{
			vars: "REQUEST_BODY|ARGS",
			op:   `@rx (?:\*[A-Za-z0-9_-]+\s*,\s*\*[A-Za-z0-9_-]+\s*,\s*\*[A-Za-z0-9_-]+|(?:-\s*\*[A-Za-z0-9_-]+\s*[\r\n]+\s*){3})`,
			t:    tUTF16,
		}}},
		{"body the engine could not parse", []link{{
			vars: "REQBODY_ERROR",
			op:   "!@eq 0",
		}}},
		{"deep nesting", []link{{
			vars: "REQUEST_BODY|ARGS",
			op:   `@rx (?:[\[{]\s*){64}`,
			t:    tUTF16,
		}}},
		{"YAML alias expansion factor above 100", []link{{
			vars: "REQUEST_BODY",
			op:   "@" + opYAMLExpansion + " 100",
		}}},
	},
	// CRS 920170-920181 (Content-Length and Transfer-Encoding), 921110
	// (smuggled request lines) and 921140 (CR/LF in headers).
	ClassRequestSmuggling: {
		{"Transfer-Encoding with Content-Length", []link{
			{vars: "&REQUEST_HEADERS:Transfer-Encoding", op: "@gt 0"},
			{vars: "&REQUEST_HEADERS:Content-Length", op: "@gt 0"},
		}},
		{"Transfer-Encoding other than chunked", []link{{
			vars: "REQUEST_HEADERS:Transfer-Encoding",
			op:   "!@rx ^chunked$",
			t:    []string{"lowercase"},
		}}},
		{"repeated or malformed Content-Length", []link{{
			vars: "REQUEST_HEADERS:Content-Length",
			op:   "!@rx ^[0-9]+$",
		}}},
		{"CR or LF in a header", []link{{
			vars: "REQUEST_HEADERS_NAMES|REQUEST_HEADERS",
			op:   `@rx [\r\n]`,
		}}},
		{"request line inside the request", []link{{
			vars: "ARGS|ARGS_NAMES|REQUEST_BODY",
			op:   `@rx (?i)(?:[\r\n]|^)\s*(?:GET|POST|HEAD|PUT|DELETE|OPTIONS|PATCH|TRACE|CONNECT)\s+[^\s]+\s+HTTP/[0-9]`,
			t:    []string{"urlDecodeUni"},
		}}},
	},
	// CRS 934130 (JavaScript prototype pollution), and the same key path
	// written as a JSON or YAML object in a raw body
	// ({"constructor": {"prototype": …}}, constructor:\n  prototype:).
	ClassPrototypePollution: {
		{"__proto__ or constructor.prototype", []link{{
			vars: "REQUEST_URI|ARGS|ARGS_NAMES|REQUEST_BODY|REQUEST_COOKIES|REQUEST_COOKIES_NAMES|REQUEST_HEADERS:Cookie",
			op:   `@rx (?:__proto__|constructor\s*(?:\.|\[)\s*["']?\s*prototype|constructor["']?\s*:\s*(?:\{[^{}]*?)?["']?prototype["']?\s*:)`,
			t:    []string{"urlDecodeUni", "jsDecode", "removeWhitespace", "removeNulls"},
		}}},
	},
	// OWASP's unvalidated redirects cheat sheet and PortSwigger's open
	// redirection payloads: the forms that make a redirect target that
	// looks local, or looks like an allowed host, leave the site.
	ClassOpenRedirect: {
		{"backslash in the authority of a URL", []link{{
			vars: "ARGS|REQUEST_HEADERS:Referer",
			op:   rxAuthorityBackslash,
		}}},
		{"redirect parameter to another host", []link{{
			vars: `ARGS:/(?i)(?:^|[.\[])(?:next|url|redirect|redirect_?ur[il]|redir|return|return_?to|return_?url|continue|dest|destination|goto|target|forward|callback_?url)\]?$/`,
			op:   `@rx (?i)^\s*(?:[/\\]\s*[/\\]|[a-z][a-z0-9+.-]*:[/\\]*[^/?#@]*@)`,
		}}},
	},
	// PortSwigger's SSTI detection polyglots and the engine syntaxes of
	// Jinja2, Twig, Freemarker, Velocity, ERB and Thymeleaf.
	ClassTemplateInjection: {
		{"template expression", []link{{
			vars: "ARGS|ARGS_NAMES|REQUEST_BODY|REQUEST_COOKIES|REQUEST_HEADERS:User-Agent|REQUEST_HEADERS:Referer",
			op:   `@rx (?i)(?:\{\{[^}]{0,200}(?:[.(\[|*+]|__|config|self|request|lipsum|cycler|joiner|range)[^}]{0,200}\}\}|\{%-?\s*(?:import|include|extends|set|for|if|macro|call|raw|load|debug)\b|<%=?[\s\S]{0,200}%>|\$\{[^}]{0,200}[*+(][^}]{0,200}\}|#\{[^}]{0,200}\}|\*\{[^}]{0,200}\}|<#(?:assign|list|if)\b|#set\s*\(|freemarker\.template\.utility)`,
			t:    []string{"urlDecodeUni", "htmlEntityDecode", "removeNulls"},
		}}},
	},
}
