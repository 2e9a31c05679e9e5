// Package work is a non-main package of the helper's own module, so that the
// profile shows how the main module's library packages are named.
package work

// Spin burns CPU for n rounds and returns a value the caller must use.
//
//go:noinline
func Spin(n int) uint64 {
	var x uint64 = 1
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}
