package cli

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/evidentsec/evident/internal/tlsconfig"
)

// TestBuildSinksTLS: a sink's tls block reaches its client, and a bad
// one stops the start naming the sink.
func TestBuildSinksTLS(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ok := alertsConfig{Webhooks: []webhookSink{{Name: "soc", URL: "https://hooks.example.com", TLS: tlsconfig.ClientConfig{ServerName: "hooks.internal"}}}}
	if sinks, _, err := buildSinks(ok, log); err != nil || len(sinks) != 1 {
		t.Fatalf("buildSinks: %d sinks, %v", len(sinks), err)
	}
	for _, c := range []alertsConfig{
		{Webhooks: []webhookSink{{Name: "soc", URL: "https://h", TLS: tlsconfig.ClientConfig{CAFile: "/nonexistent/ca.pem"}}}},
		{Alertmanager: []alertmanagerSink{{Name: "soc", URL: "https://h", TLS: tlsconfig.ClientConfig{CertFile: "c.pem"}}}},
		{Slack: []slackSink{{Name: "soc", URL: "https://h", TLS: tlsconfig.ClientConfig{CAFile: "/nonexistent/ca.pem"}}}},
	} {
		if _, _, err := buildSinks(c, log); err == nil || !strings.Contains(err.Error(), "soc") || !strings.Contains(err.Error(), "tls") {
			t.Errorf("buildSinks(%+v): %v, want an error naming the sink and tls", c, err)
		}
	}
}
