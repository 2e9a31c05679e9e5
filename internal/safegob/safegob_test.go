package safegob

import (
	"bytes"
	"encoding/gob"
	"runtime"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type inner struct {
	Name   string
	Counts map[string]int64
}

type outer struct {
	Name  string
	Items []inner
	Tags  map[int32]int64
}

// marker is the key of the one entry of the map whose declared number of
// entries a test replaces.
const marker = "marker!!"

// appendUint appends x as encoding/gob writes an unsigned integer: one byte
// below 128, else the negated count of the big-endian bytes that follow.
func appendUint(b []byte, x uint64) []byte {
	if x < 0x80 {
		return append(b, byte(x))
	}
	var be []byte
	for ; x > 0; x >>= 8 {
		be = append([]byte{byte(x)}, be...)
	}
	return append(append(b, byte(-len(be))), be...)
}

// declaring returns the gob encoding of v with the number of entries of
// the map holding the key marker (and one entry) replaced by n: a small
// input that declares a huge map, as a crafted one does.
func declaring(t *testing.T, v any, n uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	first := buf.Len()
	// The same value again: an encoder sends its types once, so this
	// message is the value alone, which ends the first encoding too.
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	msg := buf.Bytes()[first:]
	types := buf.Bytes()[:first-len(msg)]
	body := msg[1:]
	if msg[0] >= 0x80 {
		body = msg[1+(256-int(msg[0])):]
	}
	i := bytes.Index(body, append([]byte{1, byte(len(marker))}, marker...))
	if i < 0 {
		t.Fatalf("no map holding %q in %x", marker, body)
	}
	body = slices.Concat(body[:i], appendUint(nil, n), body[i+1:])
	return slices.Concat(types, appendUint(nil, uint64(len(body))), body)
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// allocated returns the bytes allocated while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestDecode(t *testing.T) {
	good := outer{Name: "a", Items: []inner{{Name: "b", Counts: map[string]int64{"x": 1, "y": 2}}}, Tags: map[int32]int64{3: 4}}
	// 1<<24 entries would take encoding/gob several hundred megabytes
	// before it read one: enough to tell, not enough to kill the test.
	const huge = 1 << 24
	tests := []struct {
		name    string
		data    []byte
		into    func() any
		wantErr bool
	}{
		{"a valid value", encode(t, good), func() any { return new(outer) }, false},
		{"a map of the value declaring more entries than it holds",
			declaring(t, outer{Name: "a", Tags: map[int32]int64{0: 1}, Items: []inner{{Counts: map[string]int64{marker: 1}}}}, huge),
			func() any { return new(outer) }, true},
		{"a map of a slice's element", declaring(t, []inner{{Name: "b"}, {Counts: map[string]int64{marker: 1}}}, huge),
			func() any { return new([]inner) }, true},
		{"the largest count gob reads", declaring(t, []inner{{Counts: map[string]int64{marker: 1}}}, 1<<63-1),
			func() any { return new([]inner) }, true},
		{"truncated", encode(t, good)[:40], func() any { return new(outer) }, true},
		{"not gob", []byte("not gob"), func() any { return new(outer) }, true},
		{"empty", nil, func() any { return new(outer) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.into()
			var err error
			n := allocated(func() { err = Decode(tt.data, v) })
			if (err != nil) != tt.wantErr {
				t.Fatalf("Decode: %v, want error %v", err, tt.wantErr)
			}
			if n > 1<<20 {
				t.Errorf("Decode of %d bytes allocated %d bytes", len(tt.data), n)
			}
			if !tt.wantErr {
				if diff := cmp.Diff(&good, v); diff != "" {
					t.Errorf("decoded (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestDeclaringIsAccepted checks the test's own crafting: the input it
// makes with the map's true number of entries decodes, so what Decode
// refuses above is the declared number alone.
func TestDeclaringIsAccepted(t *testing.T) {
	v := []inner{{Name: "b", Counts: map[string]int64{marker: 1}}}
	var got []inner
	if err := Decode(declaring(t, v, 1), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(v, got); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
}
