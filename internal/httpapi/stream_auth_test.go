package httpapi

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/store"
)

// TestAlertStreamRevoked: an alert stream opened with a token that is
// revoked afterwards sends no alert once the server has reloaded the
// tokens, and ends, saying so as a 401 would; one whose token stands
// goes on.
func TestAlertStreamRevoked(t *testing.T) {
	tests := []struct {
		name   string
		revoke bool
	}{
		{"token stands", false},
		{"token revoked", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newState(t)
			a, _, read, _ := tokens(t, st)
			feed := &alerts{st: st.st}
			_, base := start(t, Deps{State: st, Alerts: feed, Guard: a.Guard("api", auth.Required)})
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/alerts/stream", nil)
			req.Header.Set("Authorization", "Bearer "+read)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("stream: %d, want 200", resp.StatusCode)
			}
			r := bufio.NewReader(resp.Body)
			if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, ":") {
				t.Fatalf("first line %q, want a comment", line)
			}
			if tt.revoke {
				if err := st.st.RevokeToken(t.Context(), strings.Split(read, "_")[1], t0, "test"); err != nil {
					t.Fatal(err)
				}
				if err := a.Reload(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			feed.fire(t, store.Alert{ID: "a1", Kind: "first_execution", Service: "app", Severity: "high", Summary: "s", Time: t0})
			var got strings.Builder
			for {
				line, err := r.ReadString('\n')
				got.WriteString(line)
				if err != nil || strings.HasPrefix(line, "data: ") {
					break
				}
			}
			alerted := strings.Contains(got.String(), "event: alert")
			if alerted == tt.revoke {
				t.Errorf("after the alert, the stream sent:\n%s\nwant the alert %v", got.String(), !tt.revoke)
			}
			// The stream's client learns what any refused token does; the
			// server's log says it was revoked (internal/auth).
			if want := ": closed: invalid credentials: invalid or expired token\n"; tt.revoke && !strings.Contains(got.String(), want) {
				t.Errorf("the stream ended with:\n%s\nwant %q", got.String(), want)
			}
		})
	}
}
