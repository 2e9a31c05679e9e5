package telemetry

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// TestReadFieldVarints: readField's fast path reads a varint of every
// length as protowire does, and leaves what protowire refuses (a tenth
// byte over 1, a varint cut short) to protowire's error.
func TestReadFieldVarints(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
	}{
		{"one byte", []byte{0x08, 0x7f}},
		{"two bytes", []byte{0x08, 0x80, 0x01}},
		{"three bytes, an address", []byte{0x18, 0x97, 0xf5, 0x24}},
		{"nine bytes", []byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
		{"ten bytes, the largest", []byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"a byte after the varint", []byte{0x08, 0x80, 0x01, 0x10}},
		{"tenth byte 2 overflows", []byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}},
		{"eleven bytes overflow", []byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00}},
		{"cut short", []byte{0x08, 0x80, 0x80}},
		{"cut after the first byte", []byte{0x08, 0x80}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			num, typ, v, _, n, err := readField(tt.b)
			wantNum, wantTyp, _ := protowire.ConsumeTag(tt.b)
			want, m := protowire.ConsumeVarint(tt.b[1:])
			if m < 0 {
				if err == nil {
					t.Fatalf("readField(%x) = %d, %d bytes; protowire: %v", tt.b, v, n, protowire.ParseError(m))
				}
				return
			}
			if err != nil || protowire.Number(num) != wantNum || protowire.Type(typ) != wantTyp || v != want || n != 1+m {
				t.Fatalf("readField(%x) = field %d type %d value %d, %d bytes, %v; want field %d type %d value %d, %d bytes", tt.b, num, typ, v, n, err, wantNum, wantTyp, want, 1+m)
			}
		})
	}
}

// TestShortFields: shortVarintField, shortBytesField and longVarintField
// read what they answer for as readField does, and leave every other field
// (n 0) to it: field 0, longer tags, values and lengths (a varint of ten
// bytes, which may overflow), a length past the end.
func TestShortFields(t *testing.T) {
	tests := []struct {
		name                     string
		b                        []byte
		wantVarint, wantB, wantL bool // whether each short reader answers
	}{
		{"varint, one byte", []byte{0x08, 0x7f}, true, false, true},
		{"varint, two bytes", []byte{0x20, 0x80, 0x01, 0x08}, true, false, true},
		{"varint, three bytes", []byte{0x18, 0x97, 0xf5, 0x24}, false, false, true},
		{"varint, nine bytes", []byte{0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f}, false, false, true},
		{"varint, ten bytes", []byte{0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, false, false, false},
		{"varint, ten bytes overflowing", []byte{0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02}, false, false, false},
		{"varint cut short", []byte{0x08, 0x80}, false, false, false},
		{"varint of three bytes cut short", []byte{0x08, 0x80, 0x80}, false, false, false},
		{"varint of field 0", []byte{0x00, 0x01}, false, false, false},
		{"varint of field 0, three bytes", []byte{0x00, 0x80, 0x80, 0x01}, false, false, false},
		{"varint of field 16", []byte{0x80, 0x01, 0x01}, false, false, false},
		{"fixed64", []byte{0x09, 1, 2, 3, 4, 5, 6, 7, 8}, false, false, false},
		{"bytes", []byte{0x0a, 0x02, 'h', 'i', 0x08}, false, true, false},
		{"bytes, empty", []byte{0x22, 0x00}, false, true, false},
		{"bytes of field 0", []byte{0x02, 0x00}, false, false, false},
		{"bytes past the end", []byte{0x0a, 0x03, 'h', 'i'}, false, false, false},
		{"bytes, two-byte length", append([]byte{0x0a, 0x80, 0x01}, make([]byte, 128)...), false, false, false},
		{"group", []byte{0x0b, 0x0c}, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkShortFields(t, tt.b)
			_, _, n := shortVarintField(tt.b)
			_, _, bn := shortBytesField(tt.b)
			_, ln := longVarintField(tt.b)
			if (n != 0) != tt.wantVarint || (bn != 0) != tt.wantB || (ln != 0) != tt.wantL {
				t.Errorf("shortVarintField(%x) took %d bytes, shortBytesField %d, longVarintField %d; want an answer %t, %t, %t", tt.b, n, bn, ln, tt.wantVarint, tt.wantB, tt.wantL)
			}
		})
	}
}

// checkShortFields fails t unless the short readers agree with readField
// on b wherever they answer.
func checkShortFields(t *testing.T, b []byte) {
	t.Helper()
	num, typ, v, p, n, err := readField(b)
	if snum, sv, sn := shortVarintField(b); sn != 0 {
		if err != nil || snum != num || typ != protowire.VarintType || sv != v || sn != n {
			t.Fatalf("shortVarintField(%x) = field %d value %d, %d bytes; readField: field %d type %d value %d, %d bytes, %v", b, snum, sv, sn, num, typ, v, n, err)
		}
	}
	if lnum, ln := longVarintField(b); ln != 0 {
		if err != nil || lnum != num || typ != protowire.VarintType || ln != n {
			t.Fatalf("longVarintField(%x) = field %d, %d bytes; readField: field %d type %d, %d bytes, %v", b, lnum, ln, num, typ, n, err)
		}
	}
	if snum, sp, sn := shortBytesField(b); sn != 0 {
		if err != nil || snum != num || typ != protowire.BytesType || !bytes.Equal(sp, p) || sn != n || cap(sp) != cap(b)-(n-len(p)) {
			t.Fatalf("shortBytesField(%x) = field %d %x, %d bytes; readField: field %d type %d %x, %d bytes, %v", b, snum, sp, sn, num, typ, p, n, err)
		}
	}
}
