package telemetry

import (
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
