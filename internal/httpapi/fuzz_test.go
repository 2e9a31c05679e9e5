package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/store"
)

// FuzzListQuery sends any query string, the cursor and filters included,
// to the lists: each answers 200 or a 400 whose JSON error names the
// input, and a page's next_cursor, followed, answers 200.
func FuzzListQuery(f *testing.F) {
	for _, seed := range []string{
		"", "limit=1", "tier=P1&sort=score&limit=2", "verdict=ran", "cursor=eyJvZiI6ImZpbmRpbmdzIn0", "kev=true&q=text",
		"since=2026-01-01T00:00:00Z&kind=first_execution", "after=1&limit=3", "cursor=%ff", "limit=99999", "a=b&a=c",
	} {
		for _, path := range []string{"/api/v1/findings", "/api/v1/alerts", "/api/v1/services", "/api/v1/audit"} {
			f.Add(path, seed)
		}
	}
	st := newState(f)
	feed := &alerts{st: st.st}
	ctx := f.Context()
	for i := range 3 {
		if err := st.st.PutAlert(ctx, store.Alert{ID: string(rune('a' + i)), Kind: "first_execution", Severity: "high", Summary: "s", Time: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			f.Fatal(err)
		}
	}
	h := New(DefaultConfig(), Deps{State: st, Alerts: feed, Audit: st.st}).Handler()
	get := func(t *testing.T, path, query string) (int, map[string]json.RawMessage) {
		rec := httptest.NewRecorder()
		// The query as a server reads it from the request line, whatever
		// its bytes.
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.URL.RawQuery = query
		h.ServeHTTP(rec, req)
		var body map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("GET %s?%s = %d, not JSON: %q", path, query, rec.Code, rec.Body)
		}
		return rec.Code, body
	}
	f.Fuzz(func(t *testing.T, path, query string) {
		switch path {
		case "/api/v1/findings", "/api/v1/alerts", "/api/v1/services", "/api/v1/audit":
		default:
			return
		}
		status, body := get(t, path, query)
		switch status {
		case http.StatusOK:
		case http.StatusBadRequest:
			var msg string
			if json.Unmarshal(body["error"], &msg) != nil || msg == "" {
				t.Fatalf("GET %s?%s = 400 without an error: %v", path, query, body)
			}
			return
		default:
			t.Fatalf("GET %s?%s = %d %v, want 200 or 400", path, query, status, body)
		}
		var next string
		if raw, ok := body["next_cursor"]; ok {
			if err := json.Unmarshal(raw, &next); err != nil || next == "" {
				t.Fatalf("next_cursor %s", raw)
			}
			q, _ := url.ParseQuery(query)
			q.Set("cursor", next)
			q.Del("after")
			if status, body := get(t, path, q.Encode()); status != http.StatusOK {
				t.Fatalf("following next_cursor of GET %s?%s: %d %v", path, query, status, body)
			}
		}
	})
}
