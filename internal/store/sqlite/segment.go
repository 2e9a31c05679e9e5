package sqlite

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"slices"

	"github.com/evidentsec/evident/internal/store"
)

// The telemetry log's segment files. A segment is a header, the magic
// segmentMagic and the version byte segmentVersion, then records, each:
//
//	length  uint32, little endian: the bytes of the body
//	crc     uint32, little endian: CRC-32C (Castagnoli) of the body
//	body    seq (uvarint), len(tenant) (uvarint), tenant,
//	        len(kind) (uvarint), kind, payload (the rest)
//
// Sequence numbers increase strictly through a segment and from one
// segment to the next; a segment is named by the first sequence number
// it was created for (segmentName), so the names sort in log order.
const (
	segmentMagic     = "EVDTLOG"
	segmentVersion   = 1
	segmentHeaderLen = len(segmentMagic) + 1
	recordHeaderLen  = 8
	// minRecordBody is the shortest body: a one-byte seq, tenant and
	// kind with one byte each, and a one-byte payload. It keeps a region
	// of zeros, which a machine crash can leave at the end of a file,
	// from reading as records (the CRC-32C of nothing is 0).
	minRecordBody = 6
	// defaultSegmentSize is the size past which the next commit starts a
	// new segment; a checkpoint removes whole segments only.
	defaultSegmentSize = 64 << 20
	segmentPrefix      = "log-"
	segmentSuffix      = ".seg"
)

// segmentName is the file name of the segment whose first record has
// sequence number first.
func segmentName(first int64) string {
	return fmt.Sprintf("%s%020d%s", segmentPrefix, first, segmentSuffix)
}

// parseSegmentName returns the first sequence number of a segment's file
// name, and false for a name that is not a segment's.
func parseSegmentName(name string) (int64, bool) {
	const digits = 20
	if len(name) != len(segmentPrefix)+digits+len(segmentSuffix) ||
		name[:len(segmentPrefix)] != segmentPrefix || name[len(name)-len(segmentSuffix):] != segmentSuffix {
		return 0, false
	}
	var first int64
	for _, c := range name[len(segmentPrefix) : len(segmentPrefix)+digits] {
		if c < '0' || c > '9' || first > (math.MaxInt64-9)/10 {
			return 0, false
		}
		first = first*10 + int64(c-'0')
	}
	return first, first > 0
}

// segmentHeader is what every segment starts with.
func segmentHeader() []byte {
	return append([]byte(segmentMagic), segmentVersion)
}

// appendRecord appends the record of one batch to b.
func appendRecord(b []byte, seq int64, tenant string, kind store.BatchKind, payload []byte) ([]byte, error) {
	start := len(b)
	b = append(b, make([]byte, recordHeaderLen)...)
	b = binary.AppendUvarint(b, uint64(seq))
	b = binary.AppendUvarint(b, uint64(len(tenant)))
	b = append(b, tenant...)
	b = binary.AppendUvarint(b, uint64(len(kind)))
	b = append(b, kind...)
	b = append(b, payload...)
	body := b[start+recordHeaderLen:]
	if len(body) > math.MaxUint32 {
		return b[:start], fmt.Errorf("%w: batch %d of %d bytes is over the log's 4 GiB records", store.ErrInvalid, seq, len(payload))
	}
	binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	return b, nil
}

// record is one batch read from a segment. Its slices point into the
// reader's buffer, valid until the next call of next.
type record struct {
	seq     int64
	tenant  []byte
	kind    []byte
	payload []byte
}

// corruptError is a record that is not whole or not intact: cut short,
// a length out of range, a CRC that does not match, a body that does not
// parse, or a sequence number that does not increase. At the end of the
// last segment it is the commit a crash interrupted; anywhere else it is
// damage to acknowledged data.
type corruptError struct {
	path   string
	offset int64
	reason string
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("corrupt telemetry log %s at offset %d: %s", e.path, e.offset, e.reason)
}

// errSegmentTooNew is a segment of a version this evident does not know.
var errSegmentTooNew = fmt.Errorf("%w: telemetry log segment", store.ErrSchemaTooNew)

// segmentReader reads the records of one segment in order, up to end.
type segmentReader struct {
	r    *bufio.Reader
	path string
	off  int64 // of the next record
	end  int64
	prev int64 // the last sequence number read
	buf  []byte
}

// newSegmentReader reads the segment at path, of end bytes, from r. Its
// records must have sequence numbers above prev. The header is checked
// by the first call of next.
func newSegmentReader(r io.Reader, path string, end, prev int64) *segmentReader {
	return &segmentReader{r: bufio.NewReaderSize(r, 64<<10), path: path, end: end, prev: prev}
}

func (sr *segmentReader) corrupt(format string, args ...any) error {
	return &corruptError{path: sr.path, offset: sr.off, reason: fmt.Sprintf(format, args...)}
}

// header checks the segment's header.
func (sr *segmentReader) header() error {
	h := make([]byte, segmentHeaderLen)
	if sr.end < int64(segmentHeaderLen) {
		return sr.corrupt("%d bytes, shorter than the segment header", sr.end)
	}
	if _, err := io.ReadFull(sr.r, h); err != nil {
		return fmt.Errorf("read %s: %w", sr.path, err)
	}
	if string(h[:len(segmentMagic)]) != segmentMagic {
		return sr.corrupt("not a telemetry log segment (magic %q)", h[:len(segmentMagic)])
	}
	if v := h[len(segmentMagic)]; v != segmentVersion {
		return fmt.Errorf("%w %s is version %d, this evident knows %d: %s", errSegmentTooNew, sr.path, v, segmentVersion, store.TooNewHint)
	}
	sr.off = int64(segmentHeaderLen)
	return nil
}

// next returns the next record; ok is false at the end. A record that
// is not intact is a *corruptError at its offset, after which the
// reader must not be used.
func (sr *segmentReader) next() (rec record, ok bool, err error) {
	if sr.off == 0 {
		if err := sr.header(); err != nil {
			return record{}, false, err
		}
	}
	if sr.off == sr.end {
		return record{}, false, nil
	}
	if sr.end-sr.off < recordHeaderLen {
		return record{}, false, sr.corrupt("%d bytes left, shorter than a record header", sr.end-sr.off)
	}
	var h [recordHeaderLen]byte
	if _, err := io.ReadFull(sr.r, h[:]); err != nil {
		return record{}, false, fmt.Errorf("read %s at offset %d: %w", sr.path, sr.off, err)
	}
	n := int64(binary.LittleEndian.Uint32(h[:4]))
	if n < minRecordBody {
		return record{}, false, sr.corrupt("record length %d is under %d", n, minRecordBody)
	}
	if n > sr.end-sr.off-recordHeaderLen {
		return record{}, false, sr.corrupt("record of %d bytes runs past the end of the segment (%d)", n, sr.end)
	}
	if int64(cap(sr.buf)) < n {
		sr.buf = make([]byte, n)
	}
	body := sr.buf[:n]
	if _, err := io.ReadFull(sr.r, body); err != nil {
		return record{}, false, fmt.Errorf("read %s at offset %d: %w", sr.path, sr.off, err)
	}
	if got, want := crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)), binary.LittleEndian.Uint32(h[4:]); got != want {
		return record{}, false, sr.corrupt("CRC-32C %08x, want %08x", got, want)
	}
	rec, reason := parseRecordBody(body)
	if reason != "" {
		return record{}, false, sr.corrupt("%s", reason)
	}
	if rec.seq <= sr.prev {
		return record{}, false, sr.corrupt("sequence number %d after %d", rec.seq, sr.prev)
	}
	sr.prev = rec.seq
	sr.off += recordHeaderLen + n
	return rec, true, nil
}

// parseRecordBody splits a body whose CRC matched; reason says what is
// wrong with one that does not parse.
func parseRecordBody(body []byte) (rec record, reason string) {
	seq, k := binary.Uvarint(body)
	if k <= 0 || seq == 0 || seq > math.MaxInt64 {
		return record{}, "bad sequence number"
	}
	rec.seq, body = int64(seq), body[k:]
	field := func(name string) ([]byte, string) {
		n, k := binary.Uvarint(body)
		if k <= 0 || n == 0 || n > uint64(len(body)-k) {
			return nil, "bad " + name
		}
		f := body[k : k+int(n)]
		body = body[k+int(n):]
		return f, ""
	}
	if rec.tenant, reason = field("tenant"); reason != "" {
		return record{}, reason
	}
	if rec.kind, reason = field("kind"); reason != "" {
		return record{}, reason
	}
	if len(body) == 0 {
		return record{}, "empty payload"
	}
	rec.payload = body
	return rec, ""
}

// sectorSize is the unit a disk persists whole: a write that a crash
// interrupts leaves some sectors of it written and others as they were,
// zeros past the end of a growing file.
const sectorSize = 512

// tornTail returns nil when the record that c found not intact in the
// last segment at path can be the commit a crash interrupted, and an
// error naming the damage when it cannot. A commit is one write at the
// end of the file, acknowledged once synced, so an interrupted one
// leaves the file cut inside it, or parts of it unwritten (zeros), and
// nothing after it but its own records. A record not intact with an
// intact record after it (one with a sequence number above prev, the
// last before it), and without a sector-sized part of zeros, is
// therefore damage to what was acknowledged: cutting the file there
// would drop the records after it. The same damage to the segment's
// very last record cannot be told from a torn commit, as in any
// append-only log.
func tornTail(path string, c *corruptError, prev int64) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return tornTailOf(data, c, prev)
}

// tornTailOf is tornTail of the segment's bytes, data.
func tornTailOf(data []byte, c *corruptError, prev int64) error {
	if c.offset >= int64(len(data)) {
		return nil
	}
	rest := data[c.offset:]
	// A part of zeros within the record, as its length states it: not
	// when that runs past the file, where a length changed by damage
	// would take in whatever zeros end the file.
	if len(rest) >= recordHeaderLen {
		if end := recordHeaderLen + int(binary.LittleEndian.Uint32(rest)); end <= len(rest) && hasZeroSector(rest[:end], c.offset) {
			return nil
		}
	}
	// The records from the damaged one on have numbers above prev, by at
	// most as many as fit in what is left.
	most := prev + int64(len(rest)/(recordHeaderLen+minRecordBody))
	for off := 1; off+recordHeaderLen+minRecordBody <= len(rest); off++ {
		if seq, ok := intactRecord(rest[off:], prev, most); ok {
			return &corruptError{path: c.path, offset: c.offset, reason: fmt.Sprintf(
				"%s, and an intact record follows at offset %d (sequence number %d): the damage is to acknowledged batches, which cutting the segment here would drop",
				c.reason, c.offset+int64(off), seq)}
		}
	}
	return nil
}

// hasZeroSector reports whether a part of b within one sector is all
// zeros; b is at offset off of its file.
func hasZeroSector(b []byte, off int64) bool {
	for len(b) > 0 {
		n := min(len(b), int(sectorSize-off%sectorSize))
		if !slices.ContainsFunc(b[:n], func(c byte) bool { return c != 0 }) {
			return true
		}
		b, off = b[n:], off+int64(n)
	}
	return false
}

// intactRecord reports whether b starts with an intact record whose
// sequence number is above prev and at most most, and returns the
// number. The cheap checks of its body come before its CRC.
func intactRecord(b []byte, prev, most int64) (int64, bool) {
	n := int64(binary.LittleEndian.Uint32(b))
	if n < minRecordBody || n > int64(len(b)-recordHeaderLen) {
		return 0, false
	}
	body := b[recordHeaderLen : recordHeaderLen+n]
	rec, reason := parseRecordBody(body)
	if reason != "" || rec.seq <= prev || rec.seq > most {
		return 0, false
	}
	if crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, false
	}
	return rec.seq, true
}
