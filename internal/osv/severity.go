package osv

import (
	"fmt"
	"math"
	"strings"

	gocvss20 "github.com/pandatix/go-cvss/20"
	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
)

// ScoreVector computes the base score of a CVSS v4.0, v3.1, v3.0 or (with
// no prefix) v2 vector, rounded to one decimal as the specifications do.
func ScoreVector(vector string) (float64, error) {
	vector = strings.TrimSpace(vector)
	var score float64
	switch {
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		v, err := gocvss40.ParseVector(vector)
		if err != nil {
			return 0, fmt.Errorf("CVSS vector %q: %w", vector, err)
		}
		score = v.Score()
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		v, err := gocvss31.ParseVector(vector)
		if err != nil {
			return 0, fmt.Errorf("CVSS vector %q: %w", vector, err)
		}
		score = v.BaseScore()
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		v, err := gocvss30.ParseVector(vector)
		if err != nil {
			return 0, fmt.Errorf("CVSS vector %q: %w", vector, err)
		}
		score = v.BaseScore()
	default:
		v, err := gocvss20.ParseVector(vector)
		if err != nil {
			return 0, fmt.Errorf("CVSS vector %q: %w", vector, err)
		}
		score = v.BaseScore()
	}
	return math.Round(score*10) / 10, nil
}

// LevelOf maps a CVSS base score to the qualitative rating of CVSS v3 and
// v4: critical, high, medium or low (0.0, "none", counts as low).
func LevelOf(score float64) string {
	switch {
	case score >= 9.0:
		return "critical"
	case score >= 7.0:
		return "high"
	case score >= 4.0:
		return "medium"
	}
	return "low"
}
