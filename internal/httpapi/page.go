package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/evidentsec/evident/internal/auth"
)

// Lists answer a page at a time: at most limit items (1 to maxLimit,
// default defaultLimit) after the cursor, with next_cursor when more
// follow. A cursor is the last item's place in the list's order, not an
// offset, so a page holds its place while items come and go.
const (
	defaultLimit = 100
	maxLimit     = 10000
)

// CheckQuery refuses a query with a parameter not in params, nor the
// tenant (auth.TenantParam, which every route and page takes: Handler
// turns it into X-Scope-OrgID before they see it), or one given twice: a
// misspelt filter must not silently list everything, nor a repeated one
// silently use its first value. Every API route checks its query with
// it, and the web UI its pages' (internal/ui), so both refuse with the
// same words.
func CheckQuery(q url.Values, params []string) error {
	takes := append(slices.Clip(params), auth.TenantParam)
	for name, vs := range q {
		if !slices.Contains(takes, name) {
			return fmt.Errorf("parameter %q: this route takes %s", name, strings.Join(takes, ", "))
		}
		if len(vs) > 1 {
			return fmt.Errorf("parameter %q given %d times: give it once", name, len(vs))
		}
	}
	return nil
}

// parseLimit reads the limit parameter.
func parseLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > maxLimit {
		return 0, fmt.Errorf("limit %q: want 1 to %d", v, maxLimit)
	}
	return n, nil
}

// cursor is what a next_cursor carries: which listing it belongs to and
// the last item's key in its order.
type cursor struct {
	Of  string          `json:"of"`
	Key json.RawMessage `json:"key"`
}

// encodeCursor makes the next_cursor of listing of after an item with
// key.
func encodeCursor(of string, key any) string {
	k, err := json.Marshal(key)
	if err != nil {
		panic(fmt.Sprintf("cursor key %T: %v", key, err)) // keys are plain structs
	}
	b, _ := json.Marshal(cursor{Of: of, Key: k})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads the cursor parameter of listing of into key; it
// reports whether there was one.
func decodeCursor(q url.Values, of string, key any) (bool, error) {
	v := q.Get("cursor")
	if v == "" {
		return false, nil
	}
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err == nil && c.Of != of {
		err = fmt.Errorf("it is one of %s", c.Of)
	}
	if err == nil {
		err = json.Unmarshal(c.Key, key)
	}
	if err != nil {
		return false, fmt.Errorf("cursor %q: not a next_cursor of %s (%v); pass it back as it came, with the same sort", v, of, err)
	}
	return true, nil
}

// pageAfter returns the items, in order, that after accepts (those past
// the cursor), at most limit of them, and whether more follow.
func pageAfter[T any](items []T, limit int, after func(T) bool) ([]T, bool) {
	i := slices.IndexFunc(items, after)
	if i < 0 {
		return items[:0], false
	}
	items = items[i:]
	if len(items) > limit {
		return items[:limit], true
	}
	return items, false
}
