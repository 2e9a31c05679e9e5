package otlp

import "unsafe"

// freeList keeps a few slices of finished trace requests for the next
// requests to use, so that a request does not allocate again what the
// one before gave back: the spans it decodes, and over gRPC its copy of
// the message. It is bounded: at most freeSlices slices of at most
// maxFree bytes each; a larger one, from a rare huge request, and one
// beyond the bound are left to the garbage collector, so the list never
// holds more than freeSlices*maxFree bytes of each kind while the
// receiver is idle. It is safe for concurrent use.
type freeList[T any] struct {
	c chan []T
}

// freeSlices is the number of slices a freeList keeps. The requests in
// flight and the batches the engine has yet to apply hold the others.
const freeSlices = 8

// maxFree is the capacity, in bytes, of the largest slice a freeList
// keeps: the spans of about 3,700 spans, or a 2 MiB gRPC message.
const maxFree = 2 << 20

func newFreeList[T any]() freeList[T] { return freeList[T]{c: make(chan []T, freeSlices)} }

// get returns a slice given back, of length 0, or nil when there is none.
func (f freeList[T]) get() []T {
	select {
	case s := <-f.c:
		return s[:0]
	default:
		return nil
	}
}

// put keeps s for a later get, when it is small enough and there is
// room. The caller gives s up: nothing may use it after.
func (f freeList[T]) put(s []T) {
	var zero T
	if cap(s) == 0 || uintptr(cap(s))*unsafe.Sizeof(zero) > maxFree {
		return
	}
	select {
	case f.c <- s:
	default:
	}
}
