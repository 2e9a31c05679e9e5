package telemetry

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// field is one protobuf field read off the wire: v holds varint and fixed
// values, b the payload of length-delimited fields (a sub-slice of the
// input, never copied).
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

// nextField reads the field at the start of b and returns it with the
// number of bytes it took.
func nextField(b []byte) (field, int, error) {
	num, typ, v, p, n, err := readField(b)
	return field{num: num, typ: typ, v: v, b: p}, n, err
}

// readField is nextField with the field in parts. A field is 48 bytes,
// more than the compiler keeps in registers, so a loop over nextField
// copies it through the stack at every field, and reading the copy back
// stalls on the stores just made (perf put a third of the trace decoder's
// samples there): the decoders' loops read the parts instead, and
// nextField serves those that hand each field to a callback.
func readField(b []byte) (num protowire.Number, typ protowire.Type, v uint64, p []byte, n int, err error) {
	// Fast path for the common case of a one-byte tag (fields 1-15)
	// followed by a length of one or two bytes, a one-byte varint or a
	// fixed-size number: most attributes, names, timestamps and small
	// numbers in OTLP and pprof.
	if len(b) >= 2 && b[0] < 0x80 && b[0]>>3 != 0 {
		num := protowire.Number(b[0] >> 3)
		switch protowire.Type(b[0] & 7) {
		case protowire.BytesType:
			if b[1] < 0x80 {
				if end := 2 + int(b[1]); end <= len(b) {
					return num, protowire.BytesType, 0, b[2:end], end, nil
				}
			} else if len(b) >= 3 && b[2] < 0x80 {
				if end := 3 + (int(b[1]&0x7f) | int(b[2])<<7); end <= len(b) {
					return num, protowire.BytesType, 0, b[3:end], end, nil
				}
			}
		case protowire.VarintType:
			if b[1] < 0x80 {
				return num, protowire.VarintType, uint64(b[1]), nil, 2, nil
			}
			// A longer varint, such as pprof's addresses, ids and string
			// indexes: four fields in ten of a Go profile, where the call
			// to protowire took several times the work of the fast path.
			// A tenth byte over 1 overflows, and is left to protowire to
			// refuse.
			v := uint64(b[1] & 0x7f)
			for i := 2; i < len(b) && i <= 10; i++ {
				c := b[i]
				v |= uint64(c&0x7f) << (7 * (i - 1))
				if c < 0x80 {
					if i == 10 && c > 1 {
						break
					}
					return num, protowire.VarintType, v, nil, i + 1, nil
				}
			}
		case protowire.Fixed64Type:
			if len(b) >= 9 {
				return num, protowire.Fixed64Type, binary.LittleEndian.Uint64(b[1:9]), nil, 9, nil
			}
		case protowire.Fixed32Type:
			if len(b) >= 5 {
				return num, protowire.Fixed32Type, uint64(binary.LittleEndian.Uint32(b[1:5])), nil, 5, nil
			}
		}
	}
	num, typ, tn := protowire.ConsumeTag(b)
	if tn < 0 {
		return 0, 0, 0, nil, 0, protowire.ParseError(tn)
	}
	var m int
	switch typ {
	case protowire.VarintType:
		v, m = protowire.ConsumeVarint(b[tn:])
	case protowire.Fixed64Type:
		v, m = protowire.ConsumeFixed64(b[tn:])
	case protowire.Fixed32Type:
		var v32 uint32
		v32, m = protowire.ConsumeFixed32(b[tn:])
		v = uint64(v32)
	case protowire.BytesType:
		p, m = protowire.ConsumeBytes(b[tn:])
	default:
		// Groups are deprecated and unused by every format read here, but
		// skipping one keeps an unknown field from failing the message.
		m = protowire.ConsumeFieldValue(num, typ, b[tn:])
	}
	if m < 0 {
		return 0, 0, 0, nil, 0, fmt.Errorf("field %d: %w", num, protowire.ParseError(m))
	}
	return num, typ, v, p, tn + m, nil
}

// shortVarintField reads, at the start of b, a varint field of a one-byte
// tag whose value takes one or two bytes: most fields of pprof's Function,
// Location and Line messages (ids, string indexes, line numbers). It is
// small enough to be inlined, where readField is a call returning six
// values, which took more work than the field itself. n is 0 for any other
// field, which the caller then reads with readField.
func shortVarintField(b []byte) (num protowire.Number, v uint64, n int) {
	// A tag byte under 0x80 of wire type 0 (varint) and not field 0.
	if len(b) < 2 || b[0]&0x87 != 0 || b[0] == 0 {
		return 0, 0, 0
	}
	if b[1] < 0x80 {
		return protowire.Number(b[0] >> 3), uint64(b[1]), 2
	}
	if len(b) >= 3 && b[2] < 0x80 {
		return protowire.Number(b[0] >> 3), uint64(b[1]&0x7f) | uint64(b[2])<<7, 3
	}
	return 0, 0, 0
}

// shortBytesField reads, at the start of b, a length-delimited field of a
// one-byte tag and a one-byte length, as shortVarintField does a varint:
// most of pprof's top-level messages and every line of a location. n is 0
// for any other field.
func shortBytesField(b []byte) (num protowire.Number, p []byte, n int) {
	if len(b) < 2 || b[0]&0x87 != byte(protowire.BytesType) || b[0] < 8 || b[1] >= 0x80 || 2+int(b[1]) > len(b) {
		return 0, nil, 0
	}
	return protowire.Number(b[0] >> 3), b[2 : 2+b[1]], 2 + int(b[1])
}

// longVarintField returns the number and the length of a varint field of
// a one-byte tag at the start of b whose value takes up to nine bytes
// (nine never overflow), for a caller that does not need the value: a
// location's address, which readField took more work to read than the
// rest of the location (issue 11). n is 0 for any other field.
func longVarintField(b []byte) (num protowire.Number, n int) {
	// A tag byte under 0x80 of wire type 0 (varint) and not field 0.
	if len(b) < 2 || b[0]&0x87 != 0 || b[0] == 0 {
		return 0, 0
	}
	for i := 1; i < len(b) && i < 10; i++ {
		if b[i] < 0x80 {
			return protowire.Number(b[0] >> 3), i + 1
		}
	}
	return 0, 0
}

// forEachField calls fn for every field of the message msg, stopping at
// the first error. The error of a malformed field names its byte offset.
func forEachField(msg []byte, fn func(f field) error) error {
	for off := 0; off < len(msg); {
		f, n, err := nextField(msg[off:])
		if err != nil {
			return fmt.Errorf("at byte %d: %w", off, err)
		}
		if err := fn(f); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// fieldValues returns the payloads of msg's length-delimited fields of
// number num, in order, and its other fields as they are on the wire.
func fieldValues(msg []byte, num protowire.Number) (others []byte, values [][]byte, err error) {
	for off := 0; off < len(msg); {
		fnum, typ, _, b, n, err := readField(msg[off:])
		if err != nil {
			return nil, nil, fmt.Errorf("at byte %d: %w", off, err)
		}
		if fnum == num && typ == protowire.BytesType {
			values = append(values, b)
		} else {
			others = append(others, msg[off:off+n]...)
		}
		off += n
	}
	return others, values, nil
}

// readFieldTruncated is readField for containers that may have been cut
// short (a file truncated mid-write): a length-delimited field whose
// length runs past the end yields what is there, with truncated set, so
// that the complete records before the cut are still read. The
// containers hold messages: a number's value is not returned.
func readFieldTruncated(b []byte) (num protowire.Number, typ protowire.Type, p []byte, n int, truncated bool, err error) {
	num, typ, _, p, n, err = readField(b)
	if err == nil {
		return num, typ, p, n, false, nil
	}
	num, typ, tn := protowire.ConsumeTag(b)
	if tn < 0 || typ != protowire.BytesType {
		return 0, 0, nil, 0, false, err
	}
	length, ln := protowire.ConsumeVarint(b[tn:])
	if ln < 0 || length <= uint64(len(b)-tn-ln) {
		return 0, 0, nil, 0, false, err
	}
	return num, typ, b[tn+ln:], len(b), true, nil
}

// countFields counts the fields numbered num in msg, up to the first
// malformed field, so that a slice can be sized before decoding them.
func countFields(msg []byte, num protowire.Number) int {
	count := 0
	for off := 0; off < len(msg); {
		n, typ, tn := protowire.ConsumeTag(msg[off:])
		if tn < 0 {
			break
		}
		m := protowire.ConsumeFieldValue(n, typ, msg[off+tn:])
		if m < 0 {
			break
		}
		if n == num {
			count++
		}
		off += tn + m
	}
	return count
}

// hasPrefix reports whether b starts with the magic number prefix.
func hasPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}
