package alert

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidentsec/evident/internal/pipeline"
)

// TestSinksRefuseRedirects holds that no sink follows a redirect. The
// client used to follow them: a 302 to a page that answers 200 took the
// POST as a GET without its body, and the lost alert counted as sent; a
// 307 took the alert and its signature to whatever host the answer named.
func TestSinksRefuseRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	sinks := map[string]func(u string) (Sink, error){
		"webhook":      func(u string) (Sink, error) { return NewWebhook("w", u, "k", nil) },
		"slack":        func(u string) (Sink, error) { return NewSlack("s", u, nil) },
		"alertmanager": func(u string) (Sink, error) { return NewAlertmanager("a", u, "", time.Hour, nil) },
		// A client of its own (a sink's tls block) is not followed either.
		"webhook, own client": func(u string) (Sink, error) { return NewWebhook("w", u, "k", &http.Client{Timeout: 5 * time.Second}) },
	}
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		for name, build := range sinks {
			t.Run(name+"/"+http.StatusText(code), func(t *testing.T) {
				hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, other.URL+"/services/T0/B0/RedirTok42", code)
				}))
				defer hook.Close()
				s, err := build(hook.URL)
				if err != nil {
					t.Fatal(err)
				}
				err = s.Send(t.Context(), Alert{Alert: firstExec()})
				if err == nil || !pipeline.IsPermanent(err) {
					t.Fatalf("Send = %v, want a permanent error", err)
				}
				if n := elsewhere.Load(); n != 0 {
					t.Errorf("the redirect's target got %d requests, want none", n)
				}
				msg := err.Error()
				if !strings.Contains(msg, "redirected to "+strings.TrimPrefix(other.URL, "")) || strings.Contains(msg, "RedirTok42") {
					t.Errorf("Send: %v, want the target's host named and its path left out", err)
				}
			})
		}
	}
}
