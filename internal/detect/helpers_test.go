package detect

import "time"

var epoch = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// tm returns epoch plus sec seconds.
func tm(sec float64) time.Time { return epoch.Add(time.Duration(sec * float64(time.Second))) }
