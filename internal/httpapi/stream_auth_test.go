package httpapi

import (
	"bufio"
	"context"
	"io"
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

// TestAlertStreamLimits: a principal holds at most
// maxStreamsPerPrincipal alert streams, and all streams at most half the
// listener's connections, so that streams cannot take every connection
// and shut every other client out; beyond, 429. A stream closed makes
// room.
func TestAlertStreamLimits(t *testing.T) {
	st := newState(t)
	a, admin, read, _ := tokens(t, st)
	cfg := DefaultConfig()
	cfg.Endpoint = "127.0.0.1:0"
	cfg.MaxConnections = 2*maxStreamsPerPrincipal + 2
	s := New(cfg, Deps{State: st, Alerts: &alerts{st: st.st}, Guard: a.Guard("api", auth.Required)})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr().String()
	// open opens a stream on a connection of its own, and returns its
	// status and the function that closes it.
	open := func(token string) (int, string, func()) {
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/alerts/stream", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			cancel()
			return resp.StatusCode, string(body), func() {}
		}
		return resp.StatusCode, "", func() { cancel(); resp.Body.Close() }
	}
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for i := range maxStreamsPerPrincipal {
		if status, body, c := open(read); status != http.StatusOK {
			t.Fatalf("stream %d of the read token: %d %s", i+1, status, body)
		} else {
			closers = append(closers, c)
		}
	}
	if status, body, _ := open(read); status != http.StatusTooManyRequests || !strings.Contains(body, "8 alert streams open for") {
		t.Errorf("one stream more for the read token: %d %s, want 429 saying how many it has", status, body)
	}
	// Another principal has streams of its own, up to the listener's
	// half: 9 in all here.
	if status, body, c := open(admin); status != http.StatusOK {
		t.Errorf("a stream of the admin token beside them: %d %s", status, body)
	} else {
		closers = append(closers, c)
	}
	if status, body, _ := open(admin); status != http.StatusTooManyRequests || !strings.Contains(body, "half its max_connections 18") {
		t.Errorf("a stream over half the listener's connections: %d %s, want 429", status, body)
	}
	// Closing one makes room, once the server has seen it go.
	closers[0]()
	closers = closers[1:]
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, body, c := open(read)
		if status == http.StatusOK {
			closers = append(closers, c)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after closing a stream, another: %d %s", status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
