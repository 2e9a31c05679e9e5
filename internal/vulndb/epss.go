package vulndb

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/evidentsec/evident/internal/telemetry"
)

// ErrInvalidEPSS marks a file that is not FIRST's EPSS score file, or a row
// of one that is malformed.
var ErrInvalidEPSS = errors.New("invalid EPSS file")

// MaxEPSSSize bounds the uncompressed file (the real one is about 10 MB
// for some 300,000 CVEs).
const MaxEPSSSize = 256 << 20

// EPSS is FIRST's Exploit Prediction Scoring System file of one day
// (epss_scores-YYYY-MM-DD.csv.gz): a score for every published CVE.
type EPSS struct {
	// ModelVersion is the model that made the scores ("v2025.03.14").
	ModelVersion string
	// Date is the score_date of the file.
	Date time.Time
	// Scores maps an upper-case CVE id to its score.
	Scores map[string]EPSSScore
}

// EPSSScore is the EPSS estimate for one CVE.
type EPSSScore struct {
	CVE string
	// Probability is the estimated probability of exploitation activity
	// against the CVE in the next 30 days, 0 to 1.
	Probability float64
	// Percentile is the share of scored CVEs with a lower or equal
	// probability, 0 to 1.
	Percentile float64
	// Date is the day the score was computed (the file's score_date).
	Date time.Time
}

// ParseEPSS reads FIRST's EPSS CSV, gzipped or not; name names the input
// in errors. The file is a comment line
// "#model_version:v2025.03.14,score_date:2026-02-25T12:55:00Z", the header
// "cve,epss,percentile" and one row per CVE. A file without that comment
// line or header, or with no rows, yields an error wrapping ErrInvalidEPSS.
// Otherwise the result holds every valid row, and problems one LoadError
// per invalid row (not three fields, not a CVE id, a number outside 0-1,
// a CVE listed twice).
func ParseEPSS(r io.Reader, name string) (*EPSS, []LoadError, error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			// A file that ends inside its gzip header says it is cut short.
			return nil, nil, fmt.Errorf("EPSS file %s: %w: %w", name, ErrInvalidEPSS, telemetry.CutShort("gzip", 0, err))
		}
		defer zr.Close()
		br = bufio.NewReader(telemetry.CutShortReader(zr, "gzip"))
	}
	lr := &io.LimitedReader{R: br, N: MaxEPSSSize + 1}
	sc := bufio.NewScanner(lr)
	bad := func(format string, args ...any) error {
		return fmt.Errorf("EPSS file %s: %w: %s", name, ErrInvalidEPSS, fmt.Sprintf(format, args...))
	}
	line := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return strings.TrimSuffix(sc.Text(), "\r"), true
	}

	first, ok := line()
	if !ok {
		return nil, nil, readErr(sc, lr, name, bad("empty"))
	}
	e, err := parseEPSSComment(first)
	if err != nil {
		// A truncated download ends in a partial line: say so, not that
		// the line is malformed.
		return nil, nil, readErr(sc, lr, name, bad("line 1: %v", err))
	}
	header, ok := line()
	if !ok {
		return nil, nil, readErr(sc, lr, name, bad("no header line"))
	}
	if header != "cve,epss,percentile" {
		return nil, nil, readErr(sc, lr, name, bad("line 2: header %q, want %q", header, "cve,epss,percentile"))
	}
	e.Scores = make(map[string]EPSSScore)
	var problems []LoadError
	for n := 3; ; n++ {
		row, ok := line()
		if !ok {
			break
		}
		if row == "" {
			continue
		}
		s, err := parseEPSSRow(row)
		if err == nil {
			if _, dup := e.Scores[s.CVE]; dup {
				err = errors.New("listed twice")
			}
		}
		if err != nil {
			problems = append(problems, LoadError{File: name, ID: fmt.Sprintf("line %d", n), Reason: err.Error(), Err: ErrInvalidEPSS})
			continue
		}
		s.Date = e.Date
		e.Scores[s.CVE] = s
	}
	if err := readErr(sc, lr, name, nil); err != nil {
		return nil, nil, err
	}
	if len(e.Scores) == 0 && len(problems) == 0 {
		return nil, nil, bad("no scores")
	}
	return e, problems, nil
}

// readErr tells why a scan stopped: a read or gzip error (a truncated or
// corrupt download), a file over the size bound, or else def.
func readErr(sc *bufio.Scanner, lr *io.LimitedReader, name string, def error) error {
	switch {
	case lr.N <= 0:
		return fmt.Errorf("EPSS file %s: %w: larger than %d bytes", name, ErrInvalidEPSS, MaxEPSSSize)
	case sc.Err() != nil:
		return fmt.Errorf("EPSS file %s: %w: %w", name, ErrInvalidEPSS, sc.Err())
	}
	return def
}

// parseEPSSComment reads "#model_version:<v>,score_date:<time>". The date
// is RFC 3339 in the files of 2025 and later; older files and mirrors
// write "+0000" offsets or a bare date.
func parseEPSSComment(s string) (*EPSS, error) {
	rest, ok := strings.CutPrefix(s, "#")
	if !ok {
		return nil, fmt.Errorf("%q is not the #model_version:...,score_date:... comment", s)
	}
	e := &EPSS{}
	var date string
	for field := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(field), ":")
		switch k {
		case "model_version":
			e.ModelVersion = v
		case "score_date":
			date = v
		}
	}
	if e.ModelVersion == "" || date == "" {
		return nil, fmt.Errorf("%q lacks model_version or score_date", s)
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05-0700", time.DateOnly} {
		if t, err := time.Parse(layout, date); err == nil {
			e.Date = t.UTC()
			return e, nil
		}
	}
	return nil, fmt.Errorf("score_date %q is not a date", date)
}

func parseEPSSRow(row string) (EPSSScore, error) {
	fields := strings.Split(row, ",")
	if len(fields) != 3 {
		return EPSSScore{}, fmt.Errorf("%d fields, want 3 (cve,epss,percentile)", len(fields))
	}
	cve := strings.ToUpper(strings.TrimSpace(fields[0]))
	if !cveID.MatchString(cve) {
		return EPSSScore{}, fmt.Errorf("%q is not a CVE id", fields[0])
	}
	s := EPSSScore{CVE: cve}
	for i, p := range []*float64{&s.Probability, &s.Percentile} {
		f, err := strconv.ParseFloat(strings.TrimSpace(fields[i+1]), 64)
		if err != nil || !(f >= 0 && f <= 1) {
			return EPSSScore{}, fmt.Errorf("%s %s: %q is not a number from 0 to 1", cve, []string{"epss", "percentile"}[i], fields[i+1])
		}
		*p = f
	}
	return s, nil
}
