package otlp

import (
	"unsafe"

	"github.com/evidentsec/evident/internal/telemetry"
)

// freeList keeps a few values of finished requests for the next
// requests to use, so that a request does not allocate again what the one
// before gave back: the buffers its body is read and decompressed into,
// the spans it decodes, where their texts are (telemetry.Texts). It is
// bounded: at most freeSlices values of at most maxFree bytes each; a
// larger one, from a rare huge request, and one beyond the bound are left
// to the garbage collector, so the list never holds more than
// freeSlices*maxFree bytes while the receiver is idle. It is safe for
// concurrent use.
type freeList[T any] struct {
	c    chan T
	size func(T) int
}

// freeSlices is the number of values a freeList keeps. The requests in
// flight and the batches the engine has yet to apply hold the others.
const freeSlices = 8

// maxFree is the size, in bytes, of the largest value a freeList keeps:
// the spans of about 3,700 spans, or a body's buffers of 2 MiB.
const maxFree = 2 << 20

func newFreeList[T any](size func(T) int) freeList[T] {
	return freeList[T]{c: make(chan T, freeSlices), size: size}
}

// sliceBytes is the size of the array of s.
func sliceBytes[E any](s []E) int {
	var zero E
	return cap(s) * int(unsafe.Sizeof(zero))
}

// get returns a value given back, or the zero value when there is none.
func (f freeList[T]) get() T {
	select {
	case v := <-f.c:
		return v
	default:
		var zero T
		return zero
	}
}

// put keeps v for a later get, when it holds memory, not too much, and
// there is room. The caller gives v up: nothing may use it after.
func (f freeList[T]) put(v T) {
	if n := f.size(v); n == 0 || n > maxFree {
		return
	}
	select {
	case f.c <- v:
	default:
	}
}

// textsBytes is the size of t, 0 for none.
func textsBytes(t *telemetry.Texts) int {
	if t == nil {
		return 0
	}
	return t.Size()
}
