//go:build !race

package cli

// raceEnabled reports a test binary built with -race.
const raceEnabled = false
