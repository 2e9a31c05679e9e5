package telemetry

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// MaxTraceSize bounds a protobuf trace file, a JSON document or one JSON
// line. OTLP recommends 64 MiB per request; files written by exporters and
// Tempo downloads can hold many, so the bound is larger.
const MaxTraceSize = 512 << 20

// DecodeTraces decodes the traces in r and calls emit with the spans of
// each resource (protobuf) or each JSON document or line. emit may keep
// the slice; an error from it stops decoding and is returned as is.
//
// The format is recognised by content, after decompressing gzip or zstd:
//   - OTLP protobuf: ExportTraceServiceRequest or TracesData, and Tempo's
//     protobuf Trace; a Tempo v2 TraceByIDResponse is unwrapped;
//   - the Collector file exporter's length-prefixed requests (format:
//     proto, or compressed JSON), each optionally zstd-compressed;
//   - OTLP JSON, one ExportTraceServiceRequest, or one per line as the
//     Collector's file exporter writes them;
//   - Tempo API JSON: {"batches":[...]} (v1) or {"trace":{...}} (v2), with
//     base64 trace and span ids.
//
// A malformed line, resource or span is dropped and reported
// (*RecordError, e.g. "line 3: ..."); the others are still emitted. The
// returned error joins those reports.
func DecodeTraces(r io.Reader, source string, emit func([]Span) error) error {
	hint := sizeHint(r)
	br := bufio.NewReaderSize(r, 64<<10)
	if head, _ := br.Peek(2); string(head) == gzipMagic {
		hint = 0
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("decode traces %s: gzip: %w: %w", source, ErrMalformed, err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(CutShortReader(zr, "gzip"), 64<<10)
	} else if string(head) == zstdMagic[:2] {
		if head, _ := br.Peek(4); string(head) == zstdMagic {
			// The file exporter's native compression: one zstd stream.
			zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxTraceSize))
			if err != nil {
				return fmt.Errorf("decode traces %s: zstd: %w", source, err)
			}
			defer zr.Close()
			br = bufio.NewReaderSize(CutShortReader(zr, "zstd"), 64<<10)
			hint = 0
		}
	}
	errs := &recordErrors{source: source}
	var err error
	if isJSON(br) {
		err = decodeTracesJSON(br, source, errs, emit)
	} else {
		err = decodeTracesProto(br, hint, source, errs, emit)
	}
	if err != nil {
		return err
	}
	return errs.err()
}

// DecodeTracesJSON decodes the JSON forms DecodeTraces reads (OTLP JSON,
// one document or JSON lines, and Tempo's API JSON) and nothing else: an
// OTLP/HTTP body sent as application/json, already decompressed by the
// receiver within its limit. What DecodeTraces would recognise by
// content beyond JSON (gzip, zstd, the file exporter's zstd frames,
// protobuf) is refused here, since decompressing it would escape that
// limit.
func DecodeTracesJSON(data []byte, source string, emit func([]Span) error) error {
	br := bufio.NewReaderSize(bytes.NewReader(data), 64<<10)
	if !isJSON(br) {
		return fmt.Errorf("decode traces %s: %w: not a JSON object", source, ErrMalformed)
	}
	errs := &recordErrors{source: source}
	if err := decodeTracesJSON(br, source, errs, emit); err != nil {
		return err
	}
	return errs.err()
}

// DecodeTraceRequest decodes one OTLP ExportTraceServiceRequest in
// protobuf, as a gRPC call carries it, with the decoder DecodeTraces uses
// for OTLP protobuf, and calls emit with the spans of each resource.
// Malformed resources and spans are dropped and reported as DecodeTraces
// reports them.
func DecodeTraceRequest(msg []byte, source string, emit func([]Span) error) error {
	errs := &recordErrors{source: source}
	d := traceDecoder{errs: errs}
	if err := d.decodeRequest(msg, emit); err != nil {
		return fmt.Errorf("decode traces %s: %w", source, err)
	}
	return errs.err()
}

// TraceRequestSpans is DecodeTraceRequest for a request wanted as one
// slice of spans: the spans of every resource, the first resource's slice
// grown by the others'. A request of which no span decodes is an error;
// one of which some do is not (the dropped records are the
// DecodeTraceRequest error this drops).
func TraceRequestSpans(msg []byte, source string) ([]Span, error) {
	var spans []Span
	err := DecodeTraceRequest(msg, source, func(s []Span) error {
		if spans == nil {
			spans = s
			return nil
		}
		spans = append(spans, s...)
		return nil
	})
	if len(spans) > 0 {
		return spans, nil
	}
	if err == nil {
		err = fmt.Errorf("decode traces %s: no span", source)
	}
	return nil, err
}

// DecodeReceivedTraceRequest is DecodeTraceRequest for a request that is
// to be kept as received: it also returns where the texts of the request
// are, so that whether redaction masks anything in it is known without
// reading it again (Texts.Masks). A request with a malformed part has
// texts the decoder could not reach, which its Texts report.
//
// The spans of every resource are appended to spans, one slice for the
// request, in the spare capacity of spans while it has room, whatever
// that holds: a slice a consumer gave back (WithRelease) is decoded into
// as it is. reserve is called with the number of spans of each resource
// once they are decoded; an error from it ends the decoding, with the
// spans decoded so far. texts, when not nil, is the Texts of an earlier
// request that nothing uses any more: it is reset and returned, its
// memory reused, and the strings decoded from the requests before it
// are shared with this one's rather than copied again (while there are
// at most keptStrings of them).
func DecodeReceivedTraceRequest(spans []Span, texts *Texts, msg []byte, source string, reserve func(n int) error) ([]Span, *Texts, error) {
	errs := &recordErrors{source: source}
	if texts == nil {
		texts = &Texts{}
	}
	// A span holds about one text per 40 bytes.
	refs := texts.refs[:0]
	if cap(refs) < len(msg)/40 {
		refs = make([]textRef, 0, len(msg)/40)
	}
	in := interner{m: texts.strings, size: texts.stringBytes}
	*texts = Texts{req: msg, refs: refs}
	d := traceDecoder{errs: errs, texts: texts, appending: true, spans: spans, in: in}
	err := d.decodeRequest(msg, func(s []Span) error { return reserve(len(s)) })
	if len(d.in.m) <= keptStrings {
		texts.strings, texts.stringBytes = d.in.m, d.in.size
	}
	if err != nil {
		return d.spans, nil, fmt.Errorf("decode traces %s: %w", source, err)
	}
	err = errs.err()
	if err != nil {
		texts.other = true
	}
	return d.spans, texts, err
}

// sizeHint returns the size of what r holds when it can tell (an open
// file, an in-memory reader), so that reading it whole allocates once.
func sizeHint(r io.Reader) int64 {
	switch v := r.(type) {
	case interface{ Len() int }:
		return int64(v.Len())
	case interface{ Stat() (os.FileInfo, error) }:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() {
			return fi.Size()
		}
	}
	return 0
}

// isJSON reports whether the first byte that is not white space opens a
// JSON object. A protobuf message cannot start with '{' (field 15, wire
// type 3, a group, which no OTLP message has).
func isJSON(br *bufio.Reader) bool {
	for i := 1; ; i++ {
		b, err := br.Peek(i)
		if err != nil || i > 4096 {
			return false
		}
		switch c := b[i-1]; c {
		case ' ', '\t', '\r', '\n':
			continue
		default:
			return c == '{'
		}
	}
}

func decodeTracesProto(r io.Reader, sizeHint int64, source string, errs *recordErrors, emit func([]Span) error) error {
	var buf bytes.Buffer
	if sizeHint > 0 && sizeHint <= MaxTraceSize {
		buf.Grow(int(sizeHint) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(r, MaxTraceSize+1))
	data := buf.Bytes()
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		// A compressed file cut short (a Collector stopped mid-write):
		// what was decompressed before the cut is read as the same file
		// uncompressed and cut there would be.
		errs.add("compressed stream", fmt.Errorf("%w: %w", ErrMalformed, err))
	case err != nil:
		return fmt.Errorf("decode traces %s: %w: %w", source, ErrMalformed, err)
	}
	if len(data) > MaxTraceSize {
		return fmt.Errorf("decode traces %s: more than %d bytes: %w", source, MaxTraceSize, ErrTooLarge)
	}
	d := traceDecoder{errs: errs}
	if len(data) > 0 && data[0] == 0 {
		err = d.decodeFramed(data, emit)
	} else {
		err = d.decodeRequest(unwrapTempoResponse(data), emit)
	}
	if err != nil {
		return fmt.Errorf("decode traces %s: %w", source, err)
	}
	return nil
}

// zstdMagic starts every zstd frame.
const zstdMagic = "\x28\xb5\x2f\xfd"

// decodeFramed decodes the Collector file exporter's framed form, written
// for format: proto and for compressed JSON: each request preceded by its
// length as a big-endian uint32, and zstd-compressed one by one under the
// exporter's older compression (fileexporter file_writer.go). Such a file
// starts with a zero byte, which no protobuf message does (field 0 does
// not exist), while any request under 16 MiB has a zero high byte.
func (d *traceDecoder) decodeFramed(data []byte, emit func([]Span) error) error {
	var zd *zstd.Decoder
	defer func() {
		if zd != nil {
			zd.Close()
		}
	}()
	conv := jsonTraceConverter{}
	for i, off := 0, 0; off < len(data); i++ {
		record := fmt.Sprintf("message %d", i)
		if len(data)-off < 4 {
			d.errs.add(record, fmt.Errorf("truncated length prefix: %w", io.ErrUnexpectedEOF))
			return nil
		}
		n := int(binary.BigEndian.Uint32(data[off:]))
		off += 4
		msg := data[off:min(off+n, len(data))]
		off += n
		if len(msg) < n {
			d.errs.add(record, fmt.Errorf("%d of %d bytes: %w", len(msg), n, io.ErrUnexpectedEOF))
		}
		if hasPrefix(msg, zstdMagic) {
			if zd == nil {
				var err error
				zd, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxTraceSize))
				if err != nil {
					return err
				}
			}
			raw, err := zd.DecodeAll(msg, nil)
			if err != nil {
				d.errs.add(record, fmt.Errorf("%w: zstd: %w", ErrMalformed, err))
				continue
			}
			msg = raw
		}
		if len(msg) > 0 && msg[0] == '{' {
			spans, err := conv.decode(msg, d.errs, record+": ")
			if err != nil {
				d.errs.add(record, err)
				continue
			}
			if len(spans) > 0 {
				if err := emit(spans); err != nil {
					return err
				}
			}
			continue
		}
		d.prefix = record + ": "
		if err := d.decodeRequest(msg, emit); err != nil {
			return err
		}
	}
	return nil
}

// unwrapTempoResponse returns the Trace inside a Tempo v2
// TraceByIDResponse{trace=1, metrics=2, status=3, message=4}, recognised
// by fields other than 1 at the top level, which ExportTraceServiceRequest
// and TracesData do not have. Anything else is returned as is.
func unwrapTempoResponse(data []byte) []byte {
	var trace []byte
	other := false
	if err := forEachField(data, func(f field) error {
		if f.num == 1 {
			trace = f.b
		} else {
			other = true
		}
		return nil
	}); err != nil || !other || trace == nil {
		return data
	}
	return trace
}

// decodeTracesJSON decodes JSON lines, or a single JSON document when
// its first line is not a complete JSON value (pretty-printed Tempo
// output). A bad first line followed by a line that is a JSON object of
// its own is taken as JSON lines with line 1 damaged, so that one bad line
// cannot lose a whole file. Records are named by their line only when
// there is more than one: a single document on one line (an OTLP/HTTP
// JSON body) is "document", as a multi-line one is.
func decodeTracesJSON(br *bufio.Reader, source string, errs *recordErrors, emit func([]Span) error) error {
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, 64<<10), MaxTraceSize)
	c := jsonTraceConverter{}
	line, nonEmpty := 0, 0
	var pending []byte // the first line, when it is not JSON on its own
	pendingLine := 0
	// The errors of the first line, errs.errs[firstErrs:firstEnd], named
	// as those of the only document until a second line comes.
	firstLine, firstErrs, firstEnd := 0, 0, 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		nonEmpty++
		switch {
		case nonEmpty == 1 && !json.Valid(text):
			pending, pendingLine = bytes.Clone(text), line
			continue
		case nonEmpty == 1:
			firstLine, firstErrs = line, len(errs.errs)
			if err := decodeJSONRecord(&c, text, "", source, errs, emit); err != nil {
				return err
			}
			firstEnd = len(errs.errs)
			continue
		case pending != nil && !(text[0] == '{' && json.Valid(text)):
			return decodeTraceDocument(append(append(pending, '\n'), text...), sc, source, errs, &c, emit)
		case pending != nil:
			if err := decodeJSONRecord(&c, pending, fmt.Sprintf("line %d", pendingLine), source, errs, emit); err != nil {
				return err
			}
			pending = nil
		case nonEmpty == 2:
			errs.renameRecords(firstErrs, firstEnd, fmt.Sprintf("line %d", firstLine))
		}
		if err := decodeJSONRecord(&c, text, fmt.Sprintf("line %d", line), source, errs, emit); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("decode traces %s: line %d: %w: %w", source, line+1, ErrMalformed, err)
	}
	if pending != nil {
		return decodeTraceDocument(pending, sc, source, errs, &c, emit)
	}
	return nil
}

// decodeJSONRecord decodes one JSON document of the input and emits its
// spans. record names it in errors ("line 3"; "" for the input's only
// document, whose spans are then named without it and which itself is
// "document"). Only emit's error is returned; the document's own go to
// errs.
func decodeJSONRecord(c *jsonTraceConverter, doc []byte, record, source string, errs *recordErrors, emit func([]Span) error) error {
	prefix, whole := record+": ", record
	if record == "" {
		prefix, whole = "", "document"
	}
	spans, err := c.decode(doc, errs, prefix)
	if err != nil {
		errs.add(whole, err)
		return nil
	}
	if len(spans) == 0 {
		return nil
	}
	if err := emit(spans); err != nil {
		return fmt.Errorf("decode traces %s: %w", source, err)
	}
	return nil
}

// decodeTraceDocument decodes one multi-line JSON document: the first
// line, what the scanner still holds, and the rest of the input.
func decodeTraceDocument(first []byte, sc *bufio.Scanner, source string, errs *recordErrors, c *jsonTraceConverter, emit func([]Span) error) error {
	var doc bytes.Buffer
	doc.Write(first)
	for sc.Scan() {
		doc.WriteByte('\n')
		doc.Write(sc.Bytes())
		if doc.Len() > MaxTraceSize {
			return fmt.Errorf("decode traces %s: more than %d bytes: %w", source, MaxTraceSize, ErrTooLarge)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("decode traces %s: %w: %w", source, ErrMalformed, err)
	}
	return decodeJSONDocuments(c, doc.Bytes(), source, errs, emit)
}

// decodeJSONDocuments decodes the JSON values of data one after the
// other: several pretty-printed documents are what `jq . traces.jsonl`
// makes of JSON lines. pdata reads the first value of what it is given and
// ignores the rest, which would leave out every document after the first,
// silently. Documents are named "document 2" when there are several;
// what is not a JSON value after the last one is reported as the next.
func decodeJSONDocuments(c *jsonTraceConverter, data []byte, source string, errs *recordErrors, emit func([]Span) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var docs []json.RawMessage
	var rest error
	for {
		start := dec.InputOffset()
		var doc json.RawMessage
		err := dec.Decode(&doc)
		if err == io.EOF {
			break
		}
		if err != nil {
			if len(docs) == 0 {
				// One document, broken: pdata says where.
				return decodeJSONRecord(c, data, "", source, errs, emit)
			}
			rest = fmt.Errorf("%w: after byte %d: %w", ErrMalformed, start, err)
			break
		}
		docs = append(docs, doc)
	}
	for i, doc := range docs {
		record := ""
		if len(docs) > 1 || rest != nil {
			record = fmt.Sprintf("document %d", i+1)
		}
		if err := decodeJSONRecord(c, doc, record, source, errs, emit); err != nil {
			return err
		}
	}
	if rest != nil {
		errs.add(fmt.Sprintf("document %d", len(docs)+1), rest)
	}
	return nil
}

// jsonTraceConverter decodes OTLP and Tempo JSON with pdata and converts
// the result to spans.
type jsonTraceConverter struct {
	in    interner
	attrs attrBuilder
}

// decode decodes one JSON document. A span it drops (one without both
// ids) is reported on errs as a record of the document named after
// prefix; an error is the whole document's.
func (c *jsonTraceConverter) decode(doc []byte, errs *recordErrors, prefix string) ([]Span, error) {
	key := topKey(doc)
	var u ptrace.JSONUnmarshaler
	switch key {
	case "resourceSpans":
		var err error
		if !bytes.Contains(doc, []byte(`"instrumentationLibrarySpans"`)) {
			var td ptrace.Traces
			if td, err = u.UnmarshalTraces(doc); err == nil {
				return c.convert(td, errs, prefix), nil
			}
		}
		// Tempo's protobuf-JSON uses base64 ids even under
		// resourceSpans; retry normalized before reporting the OTLP error.
		spans, nerr := c.decodeNormalized(doc, errs, prefix)
		if nerr != nil {
			if err == nil {
				err = nerr
			}
			return nil, fmt.Errorf("%w: OTLP JSON: %w", ErrMalformed, cmp.Or(JSONSyntaxError(doc), err))
		}
		return spans, nil
	case "batches", "trace":
		spans, err := c.decodeNormalized(doc, errs, prefix)
		if err != nil {
			return nil, fmt.Errorf("%w: Tempo JSON: %w", ErrMalformed, cmp.Or(JSONSyntaxError(doc), err))
		}
		return spans, nil
	}
	return nil, fmt.Errorf("%w: JSON object starting with %q is neither OTLP (resourceSpans) nor Tempo (batches, trace)", ErrUnknownFormat, key)
}

// JSONSyntaxError says where doc is not JSON, by line (when doc has
// several) and column, as encoding/json finds it; nil when doc is JSON.
// It stands for pdata's error on a document that is not JSON: pdata's
// come from its JSON reader's internals ("ReadString: expects \" or n",
// a byte count and an excerpt). pdata's are kept for documents that are
// JSON but not what OTLP defines.
func JSONSyntaxError(doc []byte) error {
	// json.Unmarshal checks the whole document first: a second value after
	// the first is found too, where a Decoder would stop at the first.
	// An empty document keeps the caller's error.
	var se *json.SyntaxError
	if len(bytes.TrimSpace(doc)) == 0 || !errors.As(json.Unmarshal(doc, &struct{}{}), &se) {
		return nil
	}
	offset := se.Offset
	if se.Error() == "unexpected end of JSON input" {
		se = nil
	}
	before := doc[:min(offset, int64(len(doc)))]
	where := fmt.Sprintf("column %d", len(before)-bytes.LastIndexByte(before, '\n')-1)
	if bytes.IndexByte(doc, '\n') >= 0 {
		where = fmt.Sprintf("line %d, %s", 1+bytes.Count(before, []byte{'\n'}), where)
	}
	if se == nil {
		return fmt.Errorf("%s: the document ends there, inside a value (cut short?)", where)
	}
	return fmt.Errorf("%s: %w", where, se)
}

// decodeNormalized decodes doc after normalizeTempoJSON.
func (c *jsonTraceConverter) decodeNormalized(doc []byte, errs *recordErrors, prefix string) ([]Span, error) {
	norm, err := normalizeTempoJSON(doc)
	if err != nil {
		return nil, err
	}
	var u ptrace.JSONUnmarshaler
	td, err := u.UnmarshalTraces(norm)
	if err != nil {
		return nil, err
	}
	return c.convert(td, errs, prefix), nil
}

// topKey returns the first top-level key of the JSON object doc that
// tells its format, or the first key when none does ("" if doc is not an
// object). Values of other keys (Tempo's "metrics", which sorts first when
// re-indented) are skipped.
func topKey(doc []byte) string {
	dec := json.NewDecoder(bytes.NewReader(doc))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	first := ""
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return first
		}
		key, _ := t.(string)
		switch key {
		case "resourceSpans", "batches", "trace", "resourceProfiles", "dictionary":
			return key
		}
		if first == "" {
			first = key
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return first
		}
	}
	return first
}

// normalizeTempoJSON rewrites Tempo's trace JSON as OTLP JSON: the v2
// {"trace":{...}} wrapper is removed, v1's "batches" becomes
// "resourceSpans" (Tempo renames it in MarshalToJSONV1), base64 ids
// (gogo jsonpb's encoding of bytes) become hex (protocols.md §4), and the
// names of OTLP before 0.15 that older Tempo versions still wrote
// (instrumentationLibrarySpans, instrumentationLibrary) become the current
// ones, which pdata would otherwise skip as unknown, dropping the spans.
func normalizeTempoJSON(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber() // keeps 64-bit nanosecond timestamps exact
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if t, ok := v["trace"].(map[string]any); ok {
		v = t
	}
	if b, ok := v["batches"]; ok {
		v["resourceSpans"] = b
		delete(v, "batches")
	}
	if err := hexIDs(v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// hexIDs rewrites base64 traceId, spanId and parentSpanId values under v
// as hex; ids already in hex (32 or 16 hex digits) are left alone. It also
// renames the pre-0.15 OTLP keys.
func hexIDs(v any) error {
	switch x := v.(type) {
	case map[string]any:
		for old, cur := range map[string]string{"instrumentationLibrarySpans": "scopeSpans", "instrumentationLibrary": "scope"} {
			if e, ok := x[old]; ok {
				x[cur] = e
				delete(x, old)
			}
		}
		for k, e := range x {
			s, ok := e.(string)
			if !ok {
				if err := hexIDs(e); err != nil {
					return err
				}
				continue
			}
			var want int
			switch k {
			case "traceId":
				want = 16
			case "spanId", "parentSpanId":
				want = 8
			default:
				continue
			}
			if s == "" || (len(s) == 2*want && isHex(s)) {
				continue
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil || len(b) != want {
				return fmt.Errorf("%s %q is neither hex nor base64 of %d bytes", k, s, want)
			}
			x[k] = hex.EncodeToString(b)
		}
	case []any:
		for _, e := range x {
			if err := hexIDs(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// convert turns pdata traces into spans. A span without both ids is
// dropped and reported on errs, named as the protobuf decoder names it
// after prefix: pdata reads an id that is absent, empty or all zero as
// the same empty id, which names no span.
func (c *jsonTraceConverter) convert(td ptrace.Traces, errs *recordErrors, prefix string) []Span {
	var spans []Span
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		service, namespace := UnknownService, ""
		if v, ok := res.Get("service.name"); ok {
			service = cmp.Or(c.in.string(textOf(v)), UnknownService)
		}
		if v, ok := res.Get("service.namespace"); ok {
			namespace = c.in.string(textOf(v))
		}
		image := resourceImage(res)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j).Spans()
			for k := 0; k < ss.Len(); k++ {
				if err := spanIDsError(!ss.At(k).TraceID().IsEmpty(), !ss.At(k).SpanID().IsEmpty()); err != nil {
					errs.addf(err, "%sresource_spans[%d]: scope_spans[%d]: span %d", prefix, i, j, k)
					continue
				}
				sp := c.span(ss.At(k), service, namespace)
				sp.Image = image
				spans = append(spans, sp)
			}
		}
	}
	return spans
}

func (c *jsonTraceConverter) span(s ptrace.Span, service, namespace string) Span {
	sp := Span{
		Service:      service,
		Namespace:    namespace,
		TraceID:      s.TraceID(),
		SpanID:       s.SpanID(),
		ParentSpanID: s.ParentSpanID(),
		Kind:         SpanKind(s.Kind()),
		Name:         c.in.string(s.Name()),
		Start:        unixNano(uint64(s.StartTimestamp())),
		End:          unixNano(uint64(s.EndTimestamp())),
	}
	if sp.Kind > SpanKindConsumer {
		sp.Kind = SpanKindUnspecified
	}
	c.attrs.reset()
	for k, v := range s.Attributes().All() {
		c.setAttr(k, v)
	}
	c.attrs.finish(sp.Kind, &sp.Attrs)
	sp.Error = spanError(int32(s.Status().Code()), sp.Kind, &sp.Attrs)
	// The links the wire decoder keeps (traceDecoder.decodeSpan).
	var dropped uint32
	if n := s.Links().Len(); n > 0 {
		sp.Links = make([]Link, 0, min(n, MaxSpanLinks))
	}
	for _, l := range s.Links().All() {
		switch {
		case l.SpanID().IsEmpty():
		case len(sp.Links) < MaxSpanLinks:
			sp.Links = append(sp.Links, Link{TraceID: l.TraceID(), SpanID: l.SpanID()})
		default:
			dropped++
		}
	}
	if len(sp.Links) == 0 {
		sp.Links = nil // links of empty ids only
	}
	sp.LinksDropped = addDropped(s.DroppedLinksCount(), dropped)
	return sp
}

// resourceImage returns the container image pdata resource attributes
// name, or nil.
func resourceImage(res pcommon.Map) *Image {
	str := func(key string) string {
		if v, ok := res.Get(key); ok {
			return textOf(v)
		}
		return ""
	}
	list := func(key string) []string {
		if v, ok := res.Get(key); ok {
			return textsOf(v)
		}
		return nil
	}
	return newImage(str("container.image.name"), str("oci.manifest.digest"), list("container.image.repo_digests"), list("container.image.tags"))
}

// textOf is what the wire decoder reads where evident expects a text: a
// string, or an integer in decimal; it reads nothing of other values
// (TestDecodeTracesMatchesPdataEveryField).
func textOf(v pcommon.Value) string {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str()
	case pcommon.ValueTypeInt:
		return strconv.FormatInt(v.Int(), 10)
	}
	return ""
}

// textsOf is what the wire decoder reads where evident expects a list of
// texts (captured headers, image digests and tags): the strings of an
// array, or a string alone.
func textsOf(v pcommon.Value) []string {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return []string{v.Str()}
	case pcommon.ValueTypeSlice:
		var out []string
		for _, e := range v.Slice().All() {
			if e.Type() == pcommon.ValueTypeStr {
				out = append(out, e.Str())
			}
		}
		return out
	}
	return nil
}

func (c *jsonTraceConverter) setAttr(k string, v pcommon.Value) {
	id := lookupAttr([]byte(k))
	if id == attrNone {
		if !strings.HasPrefix(k, headerPrefix) {
			return
		}
		values := textsOf(v)
		for i, s := range values {
			values[i] = c.in.string(s)
		}
		c.attrs.setHeader(k, values)
		return
	}
	switch v.Type() {
	case pcommon.ValueTypeInt:
		c.attrs.setInt(id, v.Int())
	case pcommon.ValueTypeStr:
		c.attrs.setString(id, c.in.string(v.Str()))
	}
}
