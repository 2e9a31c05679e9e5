package alert

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSinkErrorsHideURL holds that the error of a delivery that fails,
// which the router logs, and of a URL refused at start name the sink's
// host only: a webhook's query and a Slack webhook's path are its
// credentials.
func TestSinkErrorsHideURL(t *testing.T) {
	// A port that nothing listens on: the delivery fails in the client.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	client := &http.Client{Timeout: 5 * time.Second}

	tests := []struct {
		name   string
		secret string
		build  func(u string) (Sink, error)
		url    string
	}{
		{"webhook query", "HookTok42", func(u string) (Sink, error) { return NewWebhook("w", u, "k", client) }, "http://" + dead + "/hook?token=HookTok42"},
		{"slack path", "SlackPath42", func(u string) (Sink, error) { return NewSlack("s", u, client) }, "http://" + dead + "/services/T0/B0/SlackPath42"},
		{"alertmanager user info", "AmPass42", func(u string) (Sink, error) {
			return NewAlertmanager("a", u, "", time.Hour, client)
		}, "http://am:AmPass42@" + dead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.build(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(t.Context(), Alert{Alert: firstExec()})
			if err == nil {
				t.Fatal("Send to a closed port succeeded")
			}
			if strings.Contains(err.Error(), tt.secret) {
				t.Errorf("Send: %v, which holds the URL's secret %s", err, tt.secret)
			}
			if !strings.Contains(err.Error(), dead) {
				t.Errorf("Send: %v, want the sink's host %s named", err, dead)
			}
		})
	}

	bad := []struct {
		name, url, secret string
	}{
		{"bad port", "https://user:PortPw42@host:99x/", "PortPw42"},
		{"bad escape", "https://hooks.slack.com/services/T0/B0/EscPath42%zz", "EscPath42"},
		{"no scheme", "hooks.slack.com/services/T0/B0/NoScheme42", "NoScheme42"},
		{"no host", "https:///services/T0/B0/NoHost42", "NoHost42"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			for kind, build := range map[string]func() error{
				"webhook":      func() error { _, err := NewWebhook("w", tt.url, "k", nil); return err },
				"slack":        func() error { _, err := NewSlack("s", tt.url, nil); return err },
				"alertmanager": func() error { _, err := NewAlertmanager("a", tt.url, "", time.Hour, nil); return err },
			} {
				err := build()
				if err == nil {
					t.Fatalf("%s: %s accepted", kind, tt.url)
				}
				if strings.Contains(err.Error(), tt.secret) {
					t.Errorf("%s: %v, which holds the URL's secret %s", kind, err, tt.secret)
				}
			}
		})
	}
}

// TestCheckURLSaysWhatIsWrong holds that a sink's URL that is not
// http(s) is refused with what it lacks, not with its redacted form,
// which for a URL without a scheme or a host was "://".
func TestCheckURLSaysWhatIsWrong(t *testing.T) {
	tests := []struct {
		url, want string
	}{
		{"notaurl", "it has no scheme (want http://HOST/... or https://HOST/...)"},
		{"ftp://x/y", `its scheme is "ftp"`},
		{"https:///hook", "it has no host after https://"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := checkURL(tt.url)
			if err == nil {
				t.Fatalf("checkURL(%q) = nil, want an error", tt.url)
			}
			if got := err.Error(); !strings.Contains(got, tt.want) || strings.Contains(got, `"://"`) {
				t.Errorf("checkURL(%q) = %q, want %q in it and no %q", tt.url, got, tt.want, "://")
			}
		})
	}
	if err := checkURL("https://hooks.example.com/e"); err != nil {
		t.Errorf("checkURL(https://hooks.example.com/e) = %v, want nil", err)
	}
}
