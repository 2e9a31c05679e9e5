package ui

import (
	"context"
	"sync"
	"time"

	"github.com/evidentsec/evident/internal/report"
)

// changeTTL is how long the overview reuses the verdict changes it read
// for a tenant. The store keeps the history per finding, so reading the
// changes of the day is a query per finding; with an overview open in a
// few tabs, each refreshed every 5 s, reading once per 15 s per tenant
// keeps that cost flat. A change shows at most 15 s late.
const changeTTL = 15 * time.Second

// changeCache holds the verdict changes of the last day of each tenant.
type changeCache struct {
	mu      sync.Mutex
	entries map[string]cachedChanges
}

type cachedChanges struct {
	at      time.Time
	changes []change
}

// recent returns the changes of the findings of res in the day before
// now, in no particular order, as read at most changeTTL ago. A result
// without findings has none to read, and is not cached: a read of a
// tenant that does not exist creates nothing (internal/tenant), so the
// cache holds only tenants with findings, never one per tenant ID a
// reader made up.
func (c *changeCache) recent(ctx context.Context, tenant string, src Source, res *report.Result, now time.Time) ([]change, error) {
	if len(res.Assessments) == 0 {
		return nil, nil
	}
	c.mu.Lock()
	e, ok := c.entries[tenant]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < changeTTL && !now.Before(e.at) {
		return e.changes, nil
	}
	since := now.Add(-24 * time.Hour)
	var out []change
	for _, a := range res.Assessments {
		f := a.Finding
		// The few newest changes of each finding are enough for a day.
		hist, err := src.VerdictHistory(ctx, f.Service, f.Vulnerability.ID, 5)
		if err != nil {
			return nil, err
		}
		for _, vc := range hist {
			if vc.PURL == f.Package.PURL && !vc.Time.Before(since) {
				out = append(out, change{VerdictChange: vc, FindingID: report.FindingID(f)})
			}
		}
	}
	c.mu.Lock()
	c.entries[tenant] = cachedChanges{at: now, changes: out}
	c.mu.Unlock()
	return out, nil
}
