// Package dbupdate downloads the vulnerability database evident works from:
// osv.dev's per-ecosystem bulk archives and, optionally, CISA's Known
// Exploited Vulnerabilities catalog and FIRST's EPSS scores.
//
// Layout under the data directory (read by package vulndb):
//
//	<data>/vulndb/<ECOSYSTEM>/all.zip     osv.dev <base>/<ECOSYSTEM>/all.zip
//	<data>/vulndb/<ECOSYSTEM>/meta.json   where and when it came from (see Meta)
//	<data>/vulndb/kev.json                the CISA KEV catalog
//	<data>/vulndb/kev.meta.json           its Meta
//	<data>/vulndb/epss.csv.gz             FIRST's daily EPSS scores
//	<data>/vulndb/epss.meta.json          its Meta
//
// Every file is replaced atomically: the download goes to a temporary file
// in the same directory, is synced, checked (size, x-goog-hash MD5 and
// CRC32C when the server sends them, and the content: a zip of JSON records,
// a KEV catalog, or an EPSS file whose every row parses), and only then
// renamed over the old file. A failed,
// corrupt or cancelled download removes its temporary file and leaves the
// previous database as it was.
//
// Failures are permanent or transient. A host name that does not resolve,
// a refused connection, a TLS error and HTTP 4xx other than 408 and 429
// fail the file at once (ErrHostNotFound, ErrRefused, ErrTLS, ErrNotFound,
// ErrStatus): seconds later the answer would be the same, and an offline
// machine should learn so at once. Timeouts (a server that accepts and
// does not send headers within HeaderTimeout, or stalls mid-transfer),
// dropped connections and HTTP 408, 429 and 5xx are retried with
// exponential backoff, each retry reported to Progress. Timeout bounds a
// file's whole update, retries included.
//
// Ecosystem names are case-sensitive osv.dev directory names. Validate
// refuses another spelling of a name the OSV schema lists ("golang",
// "pypi", "cargo"), naming the right one; a name the schema does not list
// is looked up in <base>/ecosystems.txt first and, when the list lacks it,
// fails with ErrNotFound without a download.
//
// Updates are conditional: the ETag and Last-Modified of the last download
// are sent back (If-None-Match, If-Modified-Since), so an unchanged archive
// costs one 304 response.
package dbupdate
