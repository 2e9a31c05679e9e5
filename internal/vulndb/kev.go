package vulndb

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// ErrInvalidKEV marks a file that is not a CISA KEV catalog, or an entry of
// one that is malformed.
var ErrInvalidKEV = errors.New("invalid KEV catalog")

// MaxKEVSize bounds the catalog read (the real feed is about 1.5 MB).
const MaxKEVSize = 64 << 20

// KEVCatalog is CISA's Known Exploited Vulnerabilities catalog, as its JSON
// feed (known_exploited_vulnerabilities.json) writes it.
type KEVCatalog struct {
	Title           string     `json:"title"`
	CatalogVersion  string     `json:"catalogVersion"`
	DateReleased    time.Time  `json:"dateReleased"`
	Count           int        `json:"count"`
	Vulnerabilities []KEVEntry `json:"vulnerabilities"`
}

// KEVEntry is one known-exploited CVE. Dates are YYYY-MM-DD, as the feed
// writes them.
type KEVEntry struct {
	CVEID                      string   `json:"cveID"`
	VendorProject              string   `json:"vendorProject"`
	Product                    string   `json:"product"`
	VulnerabilityName          string   `json:"vulnerabilityName"`
	DateAdded                  string   `json:"dateAdded"`
	ShortDescription           string   `json:"shortDescription"`
	RequiredAction             string   `json:"requiredAction"`
	DueDate                    string   `json:"dueDate"`
	KnownRansomwareCampaignUse string   `json:"knownRansomwareCampaignUse"`
	Notes                      string   `json:"notes"`
	CWEs                       []string `json:"cwes"`
}

var cveID = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)

// ParseKEV reads a KEV catalog; name names the input in errors. A file that
// is not a catalog yields an error wrapping ErrInvalidKEV. Otherwise the
// catalog holds every valid entry, and problems one LoadError per invalid
// entry (a missing or malformed cveID, a malformed date); a count that
// disagrees with the list is reported too, and the list is kept.
func ParseKEV(r io.Reader, name string) (*KEVCatalog, []LoadError, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxKEVSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read KEV catalog %s: %w", name, err)
	}
	if len(data) > MaxKEVSize {
		return nil, nil, fmt.Errorf("KEV catalog %s: larger than %d bytes: %w", name, MaxKEVSize, ErrInvalidKEV)
	}
	var c KEVCatalog
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, nil, fmt.Errorf("KEV catalog %s: %w: %w", name, ErrInvalidKEV, err)
	}
	if c.Vulnerabilities == nil {
		return nil, nil, fmt.Errorf("KEV catalog %s: no vulnerabilities array: %w", name, ErrInvalidKEV)
	}
	var problems []LoadError
	kept := c.Vulnerabilities[:0]
	for i, v := range c.Vulnerabilities {
		v.CVEID = strings.TrimSpace(v.CVEID)
		id := fmt.Sprintf("vulnerabilities[%d]", i)
		if v.CVEID != "" {
			id += " " + v.CVEID
		}
		var reason string
		switch {
		case v.CVEID == "":
			reason = "missing cveID"
		case !cveID.MatchString(v.CVEID):
			reason = fmt.Sprintf("cveID %q is not a CVE id", v.CVEID)
		case !isDate(v.DateAdded):
			reason = fmt.Sprintf("dateAdded %q is not a YYYY-MM-DD date", v.DateAdded)
		case v.DueDate != "" && !isDate(v.DueDate):
			reason = fmt.Sprintf("dueDate %q is not a YYYY-MM-DD date", v.DueDate)
		}
		if reason != "" {
			problems = append(problems, LoadError{File: name, ID: id, Reason: reason, Err: ErrInvalidKEV})
			continue
		}
		kept = append(kept, v)
	}
	if c.Count != 0 && c.Count != len(c.Vulnerabilities) {
		problems = append(problems, LoadError{File: name, Reason: fmt.Sprintf("count is %d but %d vulnerabilities are listed", c.Count, len(c.Vulnerabilities)), Err: ErrInvalidKEV})
	}
	c.Vulnerabilities = kept
	return &c, problems, nil
}

func isDate(s string) bool {
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}
