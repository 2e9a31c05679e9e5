package waf

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"go.yaml.in/yaml/v3"
)

// Structural inspectors decide what a regular expression cannot: how far
// a YAML document grows once its aliases are expanded, how deep a JSON
// document nests, how many entities an XML document declares and uses,
// what the headers of an uploaded archive say, how long a whitespace run
// is (which a counted repetition makes Go's regexp pay for on every
// character). (A bearer token's segment count is a regular expression, so
// patches keep it in SecLang, where every engine enforces it.) Each does
// bounded work on the input and never expands or extracts it. They are
// exposed to rules as Coraza operators that only the evident proxy (and
// validator) know:
//
//	@yamlExpansionGt N       the expanded node count is more than N times the parsed one
//	@jsonDepthGt N           arrays and objects nest deeper than N
//	@xmlEntitiesGt N         the document declares and references more than N entities in all
//	@htmlDuplicateAttrsGt N  more than N HTML tags repeat an attribute name (any case)
//	@tarBadPaxTimesGt N      more than N PAX time records of a tar archive (gzip or
//	                         bzip2 compressed or not) are no decimal that commons-compress
//	                         1.24.0 accepts
//	@whitespaceRunGt N       a run of more than N whitespace characters (JavaScript's \s)
//	                         is followed by something else
//	@pack200OvercountsGt N   more than N counts of a Pack200 segment header exceed the
//	                         bytes left in the body (gzip or bzip2 compressed or not)
//	@dumpDirectoryLoopsGt N  more than N directories of a DUMP archive (gzip or bzip2
//	                         compressed or not) would loop commons-compress before 1.26.0
//
// An input the inspector cannot parse does not match: malformed bodies
// are the business of REQBODY_ERROR rules. The document inspectors
// (YAML, JSON, XML and the archives) measure each part of a
// multipart/form-data body on its own, the largest measure counting: a
// patch that reads documents keeps its endpoints' multipart bodies raw
// (readsDocuments), so that the files they upload are inspected too.
const (
	opYAMLExpansion = "yamlExpansionGt"
	opJSONDepth     = "jsonDepthGt"
	opXMLEntities   = "xmlEntitiesGt"
	opHTMLDupAttrs  = "htmlDuplicateAttrsGt"
	opTarPaxTimes   = "tarBadPaxTimesGt"
	opDumpLoops     = "dumpDirectoryLoopsGt"
	opWhitespaceRun = "whitespaceRunGt"
	opPack200Counts = "pack200OvercountsGt"
)

// evidentOperators are the operators above.
var evidentOperators = []string{opYAMLExpansion, opJSONDepth, opXMLEntities, opHTMLDupAttrs, opTarPaxTimes, opDumpLoops, opWhitespaceRun, opPack200Counts}

// usesEvidentOperator reports whether a link's operator is one of
// evident's, which stock Coraza and ModSecurity do not know.
func usesEvidentOperator(links []link) bool {
	for _, l := range links {
		name, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(l.op, "!"), "@"), " ")
		if slices.Contains(evidentOperators, name) {
			return true
		}
	}
	return false
}

// maxYAMLDocuments bounds the documents of a YAML stream inspected.
const maxYAMLDocuments = 64

// registerOperators makes the structural operators known to Coraza.
// Coraza keeps operators in one process-wide table (plugins.RegisterOperator
// has no per-WAF form) that it reads without a lock, so registration
// happens once, before the first WAF is compiled, from newWAF.
var registerOperators = sync.OnceFunc(func() {
	for name, measure := range map[string]func(tx plugintypes.TransactionState, s string, limit uint64) uint64{
		opYAMLExpansion: perDocument(yamlExpansion),
		opJSONDepth:     perDocument(func(s string, _ uint64) uint64 { return jsonDepth(s) }),
		opXMLEntities:   perDocument(func(s string, _ uint64) uint64 { return xmlEntities(s) }),
		opHTMLDupAttrs:  func(_ plugintypes.TransactionState, s string, _ uint64) uint64 { return htmlDuplicateAttrs(s) },
		opTarPaxTimes:   perDocument(func(s string, _ uint64) uint64 { return tarBadPaxTimes(s) }),
		opDumpLoops:     perDocument(func(s string, _ uint64) uint64 { return dumpDirectoryLoops(s) }),
		opWhitespaceRun: func(_ plugintypes.TransactionState, s string, _ uint64) uint64 { return whitespaceRun(s) },
		opPack200Counts: perDocument(func(s string, _ uint64) uint64 { return pack200Overcounts(s) }),
	} {
		plugins.RegisterOperator(name, func(o plugintypes.OperatorOptions) (plugintypes.Operator, error) {
			n, err := strconv.ParseUint(strings.TrimSpace(o.Arguments), 10, 32)
			if err != nil {
				return nil, fmt.Errorf("@%s takes a non-negative integer, not %q", name, o.Arguments)
			}
			return thresholdOp{measure: measure, limit: n}, nil
		})
	}
})

// perDocument returns measure applied to each document of a body
// (bodyDocuments, by the boundary of the request's Content-Type), the
// largest result. The operators that measure a value as it is (HTML
// attributes, whitespace) run on every argument and need no boundary.
func perDocument(measure func(string, uint64) uint64) func(tx plugintypes.TransactionState, s string, limit uint64) uint64 {
	return func(tx plugintypes.TransactionState, s string, limit uint64) uint64 {
		var n uint64
		for _, d := range bodyDocuments(s, multipartBoundary(tx)) {
			n = max(n, measure(d, limit))
		}
		return n
	}
}

// maxBodyParts bounds the parts of a multipart body bodyDocuments reads.
const maxBodyParts = 256

// bodyDocuments returns the contents of the parts of s when s is a
// multipart body of the boundary its request's Content-Type gives (at most
// maxBodyParts parts, each cut at maxArchiveBytes), else s alone. Without
// a boundary, or when none of its parts is found, the boundary is read
// from the body's first line ("--boundary" and a line break, as RFC 2046
// starts one without a preamble). The application reads the parts by the
// header's boundary, which may be longer than RFC 2046's 70 characters
// and follow a preamble: until 2026-12-07 only the first line was read,
// and an archive or YAML file uploaded after a preamble, or under a
// 71-character boundary, was measured as the whole multipart body, which
// is no archive nor YAML, and passed.
func bodyDocuments(s, boundary string) []string {
	if boundary != "" {
		if parts := multipartParts(s, boundary); len(parts) > 0 {
			return parts
		}
	}
	line, _, ok := strings.Cut(s, "\n")
	// RFC 2046 lets transport padding (spaces and tabs) follow the
	// boundary on its line; Go's mime/multipart skips it.
	first, dashes := strings.CutPrefix(strings.TrimRight(line, "\r \t"), "--")
	if !ok || !dashes || first == "" {
		return []string{s}
	}
	if parts := multipartParts(s, first); len(parts) > 0 {
		return parts
	}
	return []string{s}
}

// multipartParts returns the contents of the parts of the multipart body
// s of the given boundary, none when it has none.
func multipartParts(s, boundary string) []string {
	mr := multipart.NewReader(strings.NewReader(s), boundary)
	var out []string
	for range maxBodyParts {
		part, err := mr.NextRawPart()
		if err != nil {
			break
		}
		data, err := io.ReadAll(io.LimitReader(part, maxArchiveBytes))
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		out = append(out, string(data))
	}
	return out
}

// multipartBoundary returns the boundary of the request's Content-Type
// when it is a multipart one, "" otherwise or without a transaction.
// An operator sees only the value it is given; the parts of a body kept
// raw are split by the boundary the application reads them by.
func multipartBoundary(tx plugintypes.TransactionState) string {
	if tx == nil {
		return ""
	}
	cts := tx.Variables().RequestHeaders().Get("content-type")
	if len(cts) == 0 {
		return ""
	}
	mt, params, err := mime.ParseMediaType(strings.TrimSpace(cts[0]))
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		return ""
	}
	return params["boundary"]
}

// thresholdOp matches when the measure of the input exceeds limit.
type thresholdOp struct {
	measure func(tx plugintypes.TransactionState, s string, limit uint64) uint64
	limit   uint64
}

// Evaluate implements plugintypes.Operator.
func (o thresholdOp) Evaluate(tx plugintypes.TransactionState, s string) bool {
	return o.measure(tx, s, o.limit) > o.limit
}

// yamlExpansion returns how many times more nodes the YAML stream s has
// with its aliases expanded than as written, or 0 when s is not YAML.
// The count is computed on the parsed nodes with one memoised sum per
// node, so an alias bomb costs what its text costs; the result saturates
// at limit+1.
func yamlExpansion(s string, limit uint64) uint64 {
	dec := yaml.NewDecoder(strings.NewReader(s))
	var parsed, expanded uint64
	ceiling := (limit + 1) * max(uint64(len(s)), 1)
	for range maxYAMLDocuments {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return 0
		}
		memo := map[*yaml.Node]uint64{}
		parsed += countNodes(&doc)
		expanded = min(ceiling, expanded+expandedNodes(&doc, memo, ceiling, 0))
	}
	if parsed == 0 {
		return 0
	}
	return min(expanded/parsed, limit+1)
}

// countNodes counts the nodes as written (an alias is one node).
func countNodes(n *yaml.Node) uint64 {
	c := uint64(1)
	for _, ch := range n.Content {
		c += countNodes(ch)
	}
	return c
}

// expandedNodes counts the nodes of n with aliases replaced by what they
// point to, saturating at ceiling. The parser only lets an alias point to an
// anchor defined before it, so the recursion ends; depth guards it anyway.
func expandedNodes(n *yaml.Node, memo map[*yaml.Node]uint64, ceiling uint64, depth int) uint64 {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if c, ok := memo[n]; ok {
		return c
	}
	if depth > 10_000 {
		return ceiling
	}
	memo[n] = ceiling // an alias cycle, were one possible, saturates
	c := uint64(1)
	for _, ch := range n.Content {
		c = min(ceiling, c+expandedNodes(ch, memo, ceiling, depth+1))
	}
	memo[n] = c
	return c
}

// jsonDepth returns how deep arrays and objects nest in the JSON text s,
// 0 when s is not JSON. It reads tokens and keeps only a counter.
func jsonDepth(s string) uint64 {
	dec := json.NewDecoder(strings.NewReader(s))
	var depth, deepest uint64
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) && depth == 0 {
				return deepest
			}
			return 0
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			deepest = max(deepest, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}

// xmlEntities counts the entity declarations (<!ENTITY) and the general
// and parameter entity references (&name; %name;) other than the five
// predefined entities (character references have no name), in one pass without
// expanding anything.
func xmlEntities(s string) uint64 {
	b := []byte(s)
	n := uint64(bytes.Count(b, []byte("<!ENTITY")))
	for i := 0; i < len(b); i++ {
		if b[i] != '&' && b[i] != '%' {
			continue
		}
		j := i + 1
		for j < len(b) && j-i <= 64 && isNameByte(b[j]) {
			j++
		}
		if j == i+1 || j >= len(b) || b[j] != ';' {
			continue
		}
		switch string(b[i+1 : j]) {
		case "lt", "gt", "amp", "apos", "quot":
		default:
			n++
		}
		i = j
	}
	return n
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':' || c >= 0x80
}

// htmlDuplicateAttrs counts the start tags of the HTML text s that give
// the same attribute name twice, compared without regard to case (as HTML
// does), in one pass: a parser that keeps a different one of the two than
// a sanitizer did (GO-2026-5030) renders what the sanitizer never saw.
func htmlDuplicateAttrs(s string) uint64 {
	var n uint64
	for i := 0; i < len(s); i++ {
		if s[i] != '<' || i+1 >= len(s) || !isASCIILetter(s[i+1]) {
			continue
		}
		j := i + 1
		for j < len(s) && !isHTMLSpace(s[j]) && s[j] != '>' && s[j] != '/' {
			j++
		}
		var names []string
		dup := false
		for j < len(s) && s[j] != '>' {
			if isHTMLSpace(s[j]) || s[j] == '/' {
				j++
				continue
			}
			k := j
			for k < len(s) && !isHTMLSpace(s[k]) && s[k] != '=' && s[k] != '>' && s[k] != '/' {
				k++
			}
			name := strings.ToLower(s[j:k])
			if slices.Contains(names, name) {
				dup = true
			} else if len(names) < 64 {
				names = append(names, name)
			}
			j = k
			for j < len(s) && isHTMLSpace(s[j]) {
				j++
			}
			if j >= len(s) || s[j] != '=' {
				continue
			}
			j++
			for j < len(s) && isHTMLSpace(s[j]) {
				j++
			}
			if j < len(s) && (s[j] == '"' || s[j] == '\'') {
				end := strings.IndexByte(s[j+1:], s[j])
				if end < 0 {
					return n
				}
				j += end + 2
				continue
			}
			for j < len(s) && !isHTMLSpace(s[j]) && s[j] != '>' {
				j++
			}
		}
		// A tag the input ends inside is dropped by HTML parsers
		// (eof-in-tag), so only a closed one counts.
		if dup && j < len(s) {
			n++
		}
		i = j
	}
	return n
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isHTMLSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

// archiveBytes returns the body s, gzip- or bzip2-decompressed when it
// starts with their magic (commons-compress's CompressorStreamFactory
// detects them the same way), at most maxArchiveBytes of it. A stream cut
// short or corrupt is returned as far as it reads.
func archiveBytes(s string) []byte {
	var r io.Reader = strings.NewReader(s)
	switch {
	case strings.HasPrefix(s, "\x1f\x8b"):
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil
		}
		r = zr
	case strings.HasPrefix(s, "BZh"):
		r = bzip2.NewReader(r)
	}
	data, _ := io.ReadAll(io.LimitReader(r, maxArchiveBytes))
	return data
}

// Bounds of the archive inspectors: what they read of a body once
// decompressed, and how many tar headers they walk.
const (
	maxArchiveBytes = 16 << 20
	maxTarHeaders   = 4096
	tarBlock        = 512
)

// paxTimeKeys are the PAX records that commons-compress reads as times.
var paxTimeKeys = []string{"mtime", "atime", "ctime", "LIBARCHIVE.creationtime"}

// tarBadPaxTimes counts the PAX time records (paxTimeKeys, in local and
// global extended headers) of the tar archive s, gzip- or bzip2-compressed
// or not, whose value is not what commons-compress 1.24.0 accepts
// (-?\d{1,19}(\.\d{1,19})?): before it, a value in exponent notation or with
// a very long fraction cost BigDecimal hours of CPU (CVE-2023-42503). It
// reads at most maxArchiveBytes of the archive and maxTarHeaders headers,
// and returns 0 when s is no tar archive.
func tarBadPaxTimes(s string) uint64 {
	data := archiveBytes(s)
	var n uint64
	for range maxTarHeaders {
		if len(data) < tarBlock || !tarChecksumOK(data[:tarBlock]) {
			break // the end-of-archive zero blocks fail the checksum too
		}
		hdr := data[:tarBlock]
		size, ok := tarNumber(hdr[124:136])
		data = data[tarBlock:]
		if !ok {
			break
		}
		body := data[:min(size, uint64(len(data)))]
		switch hdr[156] {
		case 'x', 'g', 'X': // local, global, and Solaris' old local
			n += paxBadTimes(body)
		}
		skip := (size + tarBlock - 1) / tarBlock * tarBlock
		if skip > uint64(len(data)) {
			break
		}
		data = data[skip:]
	}
	return n
}

// tarChecksumOK reports whether a 512-byte header's checksum field holds
// the sum of its bytes, the field itself counted as spaces (unsigned, or
// signed as some old tars computed it).
func tarChecksumOK(h []byte) bool {
	want, ok := tarNumber(h[148:156])
	if !ok {
		return false
	}
	var unsigned, signed int64
	for i, c := range h {
		if i >= 148 && i < 156 {
			c = ' '
		}
		unsigned += int64(c)
		signed += int64(int8(c))
	}
	return want == uint64(unsigned) || want == uint64(signed)
}

// tarNumber reads a numeric header field: octal digits padded with spaces
// or NULs, or GNU's base-256 form (the high bit of the first byte set).
func tarNumber(f []byte) (uint64, bool) {
	if len(f) > 0 && f[0]&0x80 != 0 {
		var v uint64
		for i, c := range f {
			if i == 0 {
				c &= 0x7f
			}
			if v > math.MaxUint64>>8 {
				return 0, false
			}
			v = v<<8 | uint64(c)
		}
		return v, true
	}
	f = bytes.Trim(f, " \x00")
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(f), 8, 64)
	return v, err == nil
}

// paxTime is a PAX time that commons-compress 1.24.0 accepts.
var paxTime = regexp.MustCompile(`^-?[0-9]{1,19}(?:\.[0-9]{1,19})?$`)

// paxBadTimes counts the records "<length> <key>=<value>\n" of a PAX
// extended header whose key is a time and whose value paxTime refuses; it
// stops at the first malformed record.
func paxBadTimes(b []byte) uint64 {
	var n uint64
	for len(b) > 0 {
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 || sp > 20 {
			break
		}
		l, err := strconv.Atoi(string(b[:sp]))
		if err != nil || l <= sp+1 || l > len(b) || b[l-1] != '\n' {
			break
		}
		key, val, ok := bytes.Cut(b[sp+1:l-1], []byte("="))
		if ok && slices.Contains(paxTimeKeys, string(key)) && !paxTime.Match(val) {
			n++
		}
		b = b[l:]
	}
	return n
}

// The DUMP format as commons-compress reads it: 1024-byte records, each
// segment header checksummed and marked with the NFS magic, little-endian.
const (
	dumpRecord   = 1024
	dumpMagic    = 60012
	dumpChecksum = 84446
	dumpMaxCount = 512 // a segment header maps at most this many records
)

// Segment header types of a DUMP archive.
const (
	dumpTape  = 1
	dumpInode = 2
	dumpBits  = 3
	dumpAddr  = 4
	dumpEnd   = 5
	dumpClri  = 6
)

// dumpDirectoryLoops counts what loops commons-compress's
// DumpArchiveInputStream before 1.26.0 (CVE-2024-25710) in the DUMP archive
// s, gzip- or bzip2-compressed or not: a directory whose data holds a record
// of length 0 (the reader never moves past it), and a cycle among the
// directories' parents (its path lookup never ends). It walks at most
// maxArchiveBytes of checksummed segment headers and their data, and
// returns 0 when s is no uncompressed-block DUMP archive.
func dumpDirectoryLoops(s string) uint64 {
	data := archiveBytes(s)
	if len(data) < dumpRecord || !dumpHeaderOK(data[:dumpRecord]) || le32(data, 0) != dumpTape ||
		le32(data, 888)&0x80 != 0 { // blocks compressed by dump itself: not read here
		return 0
	}
	var n uint64
	parent := map[uint32]uint32{} // directory entry's inode -> its directory's
	var dir struct {
		ino  uint32
		left int64 // bytes of the directory's data still to come
		ok   bool  // a record of length 0 already counted for it
	}
	for p := dumpRecord; p+dumpRecord <= len(data); {
		h := data[p : p+dumpRecord]
		if !dumpHeaderOK(h) {
			break
		}
		typ, count := le32(h, 0), le32(h, 160)
		if count >= dumpMaxCount {
			break
		}
		p += dumpRecord
		end := min(p+int(count)*dumpRecord, len(data))
		switch {
		case typ == dumpEnd:
			p = len(data)
			continue
		case typ == dumpInode && (uint32(le16(h, 32))>>12)&0xf == 4:
			dir.ino, dir.left, dir.ok = le32(h, 20), int64(le64(h, 40)), false
		case typ == dumpInode:
			dir.left = 0
		}
		if (typ == dumpInode || typ == dumpAddr) && dir.left > 0 {
			block := data[p:end]
			for i := 0; i+8 < len(block) && int64(i)+8 < dir.left; {
				ino, recLen, nameLen := le32(block, i), int(le16(block, i+4)), int(block[i+7])
				if recLen == 0 {
					if !dir.ok {
						n++
						dir.ok = true
					}
					break
				}
				if name := block[i+8 : min(i+8+nameLen, len(block))]; string(name) != "." && string(name) != ".." && ino != dir.ino {
					parent[ino] = dir.ino
				}
				i += recLen
			}
			dir.left -= int64(len(block))
		}
		p = end
	}
	return n + dumpCycles(parent)
}

// dumpCycles counts the cycles among parent links (the root, inode 2, ends
// a path).
func dumpCycles(parent map[uint32]uint32) uint64 {
	var n uint64
	done := map[uint32]bool{}
	for start := range parent {
		seen := map[uint32]bool{}
		for ino := start; !done[ino]; {
			if seen[ino] {
				n++
				break
			}
			seen[ino] = true
			next, ok := parent[ino]
			if !ok || ino == 2 {
				break
			}
			ino = next
		}
		for ino := range seen {
			done[ino] = true
		}
	}
	return n
}

// dumpHeaderOK reports whether a 1024-byte record is a segment header: the
// NFS magic, and the checksum that makes its 256 words sum to 84446.
func dumpHeaderOK(h []byte) bool {
	if le32(h, 24) != dumpMagic {
		return false
	}
	var sum uint32
	for i := 0; i < 256; i++ {
		sum += le32(h, 4*i)
	}
	return sum == dumpChecksum
}

func le16(b []byte, i int) uint16 { return binary.LittleEndian.Uint16(b[i:]) }
func le32(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }
func le64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }

// whitespaceRun returns the length, in characters, of the longest run of
// whitespace (JavaScript's \s) in s that something other than whitespace
// follows: what a regular expression anchored at the end, such as lodash's
// /\s+$/ before 4.17.21, retries from each of its characters (quadratic:
// CVE-2020-28500). One pass. SecLang has no linear way to say it: a
// counted repetition ([\s]{1000}) costs Coraza's Go regular expressions
// time proportional to the count on every character.
func whitespaceRun(s string) uint64 {
	var run, longest uint64
	for _, r := range s {
		if jsSpace(r) {
			run++
			continue
		}
		longest, run = max(longest, run), 0
	}
	return longest
}

// jsSpace reports whether r is whitespace or a line terminator in
// ECMAScript (what \s matches in a JavaScript regular expression).
func jsSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

// Pack200 segment header options that add fields (the Pack200
// specification's archive_options).
const (
	pack200SpecialFormats = 1 << 0
	pack200CPNumbers      = 1 << 1
	pack200FileHeaders    = 1 << 4
)

// pack200Overcounts counts the counts of the first Pack200 segment header
// in s (gzip- or bzip2-compressed or not) that exceed the bytes left in the
// body after the header. Each element a count announces takes at least one
// byte of a band, so such a count is no archive: commons-compress 1.26.0
// refuses to read a band beyond the end of its input, where 1.21 to 1.25
// allocated by the count first (OutOfMemoryError, CVE-2024-26308). It
// returns 0 when s is no Pack200 archive.
func pack200Overcounts(s string) uint64 {
	data := archiveBytes(s)
	if !bytes.HasPrefix(data, []byte{0xca, 0xfe, 0xd0, 0x0d}) {
		return 0
	}
	r := data[4:]
	read := func() (uint64, bool) { // the UNSIGNED5 coding (B=5, H=64)
		var v, pow uint64 = 0, 1
		for i := range 5 {
			if len(r) == 0 {
				return 0, false
			}
			b := uint64(r[0])
			r = r[1:]
			v += b * pow
			if b < 192 || i == 4 {
				break
			}
			pow *= 64
		}
		return v, true
	}
	minor, ok1 := read()
	major, ok2 := read()
	opts, ok3 := read()
	if !ok1 || !ok2 || !ok3 || minor != 7 || major != 150 {
		return 0
	}
	// The header's fields in order, with whether each is a count.
	var fields []bool
	if opts&pack200FileHeaders != 0 {
		fields = append(fields, false, false, false, false, true) // size hi, lo, next count, modtime, file_count
	}
	if opts&pack200SpecialFormats != 0 {
		fields = append(fields, true, true) // band_headers_size, attr_definition_count
	}
	fields = append(fields, true) // cp_Utf8_count
	if opts&pack200CPNumbers != 0 {
		fields = append(fields, true, true, true, true) // Int, Float, Long, Double
	}
	fields = append(fields, true, true, true, true, true, true, true) // String … Imethod
	fields = append(fields, true, false, false, true)                 // ic_count, class versions, class_count
	var counts []uint64
	for _, isCount := range fields {
		v, ok := read()
		if !ok {
			return 0 // a header cut short: nothing to allocate yet
		}
		if isCount {
			counts = append(counts, v)
		}
	}
	var n uint64
	for _, c := range counts {
		if c > uint64(len(r)) {
			n++
		}
	}
	return n
}
