package telemetry

import (
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
