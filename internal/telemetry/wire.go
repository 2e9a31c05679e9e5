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
					return field{num: num, typ: protowire.BytesType, b: b[2:end]}, end, nil
				}
			} else if len(b) >= 3 && b[2] < 0x80 {
				if end := 3 + (int(b[1]&0x7f) | int(b[2])<<7); end <= len(b) {
					return field{num: num, typ: protowire.BytesType, b: b[3:end]}, end, nil
				}
			}
		case protowire.VarintType:
			if b[1] < 0x80 {
				return field{num: num, typ: protowire.VarintType, v: uint64(b[1])}, 2, nil
			}
		case protowire.Fixed64Type:
			if len(b) >= 9 {
				return field{num: num, typ: protowire.Fixed64Type, v: binary.LittleEndian.Uint64(b[1:9])}, 9, nil
			}
		case protowire.Fixed32Type:
			if len(b) >= 5 {
				return field{num: num, typ: protowire.Fixed32Type, v: uint64(binary.LittleEndian.Uint32(b[1:5]))}, 5, nil
			}
		}
	}
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return field{}, 0, protowire.ParseError(n)
	}
	f := field{num: num, typ: typ}
	var m int
	switch typ {
	case protowire.VarintType:
		f.v, m = protowire.ConsumeVarint(b[n:])
	case protowire.Fixed64Type:
		f.v, m = protowire.ConsumeFixed64(b[n:])
	case protowire.Fixed32Type:
		var v uint32
		v, m = protowire.ConsumeFixed32(b[n:])
		f.v = uint64(v)
	case protowire.BytesType:
		f.b, m = protowire.ConsumeBytes(b[n:])
	default:
		// Groups are deprecated and unused by every format read here, but
		// skipping one keeps an unknown field from failing the message.
		m = protowire.ConsumeFieldValue(num, typ, b[n:])
	}
	if m < 0 {
		return field{}, 0, fmt.Errorf("field %d: %w", num, protowire.ParseError(m))
	}
	return f, n + m, nil
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

// nextFieldTruncated is nextField for containers that may have been cut
// short (a file truncated mid-write): a length-delimited field whose
// length runs past the end yields what is there, with truncated set, so
// that the complete records before the cut are still read.
func nextFieldTruncated(b []byte) (f field, n int, truncated bool, err error) {
	f, n, err = nextField(b)
	if err == nil {
		return f, n, false, nil
	}
	num, typ, tn := protowire.ConsumeTag(b)
	if tn < 0 || typ != protowire.BytesType {
		return field{}, 0, false, err
	}
	length, ln := protowire.ConsumeVarint(b[tn:])
	if ln < 0 || length <= uint64(len(b)-tn-ln) {
		return field{}, 0, false, err
	}
	return field{num: num, typ: typ, b: b[tn+ln:]}, len(b), true, nil
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
