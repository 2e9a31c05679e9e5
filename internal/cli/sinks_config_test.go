package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidentsec/evident/internal/alert"
)

// TestAlertsConfigSinks: the configuration refuses the sinks a start
// would refuse (a URL that is not http(s), two sinks of one name, a name
// the store's sink has), naming each by its key, so --check-config
// refuses them too; an Alertmanager sink without resolve_after takes
// the documented 1h.
func TestAlertsConfigSinks(t *testing.T) {
	def := alert.DefaultConfig()
	tests := []struct {
		name string
		cfg  alertsConfig
		// want are in the error, in any order; none: valid.
		want []string
	}{
		{"valid", alertsConfig{Config: def,
			Webhooks:     []webhookSink{{Name: "soc", URL: "https://hooks.example.com/e"}},
			Alertmanager: []alertmanagerSink{{Name: "am", URL: "http://am:9093"}},
			Slack:        []slackSink{{Name: "chat", URL: "https://hooks.slack.com/services/T/B/X"}},
			JSONLines:    []jsonLinesSink{{Name: "file", Path: "alerts.jsonl"}},
		}, nil},
		{"webhook not http", alertsConfig{Config: def, Webhooks: []webhookSink{{Name: "soc", URL: "ftp://x"}}},
			[]string{"serve.alerts.webhooks[0] (soc)", "not an http(s) URL"}},
		{"slack without host", alertsConfig{Config: def, Slack: []slackSink{{Name: "chat", URL: "/services/T/B/X"}}},
			[]string{"serve.alerts.slack[0] (chat)", "not an http(s) URL"}},
		{"alertmanager negative resolve_after", alertsConfig{Config: def, Alertmanager: []alertmanagerSink{{Name: "am", URL: "http://am:9093", ResolveAfter: -1}}},
			[]string{"serve.alerts.alertmanager[0] (am)", "resolve_after"}},
		{"one name in two tenants", alertsConfig{Config: def, // docs/security.md, Tenants
			Webhooks: []webhookSink{{Name: "soc", URL: "https://soc.example.com/hook"}, {Name: "soc", Tenant: "team-a", URL: "https://team-a.example.com/hook"}},
		}, nil},
		{"two sinks of one name", alertsConfig{Config: def,
			Webhooks: []webhookSink{{Name: "a", URL: "http://x"}},
			Slack:    []slackSink{{Name: "a", Tenant: "default", URL: "http://y"}},
		}, []string{`serve.alerts.slack[0] (a): name "a" is taken by another sink of tenant default`}},
		{"the store's name", alertsConfig{Config: def, JSONLines: []jsonLinesSink{{Name: "store", Tenant: "team-a", Path: "a.jsonl"}}},
			[]string{`serve.alerts.json_lines[0] (store): name "store" is the store's sink's`}},
		{"no name", alertsConfig{Config: def, Webhooks: []webhookSink{{URL: "http://x"}}},
			[]string{"serve.alerts.webhooks[0]: name is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want %q in it", err, w)
				}
			}
		})
	}

	if got := (alertmanagerSink{}).resolveAfter(); got != defaultResolveAfter {
		t.Errorf("resolve_after unset = %v, want %v", got, defaultResolveAfter)
	}

	// --check-config reads the same configuration: it refuses what a start
	// refuses, with status 2.
	cfg := filepath.Join(t.TempDir(), "evident.yml")
	if err := os.WriteFile(cfg, []byte("serve:\n  alerts:\n    webhooks:\n      - name: a\n        url: ftp://x\n      - name: a\n        url: http://y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := run(t, "serve", "--config", cfg, "--vulns", filepath.Join("testdata", "serve", "osv"), "--check-config")
	if code != ExitUsage || out != "" || !strings.Contains(stderr, "serve.alerts.webhooks[0] (a)") || !strings.Contains(stderr, `serve.alerts.webhooks[1] (a): name "a" is taken`) {
		t.Errorf("serve --check-config with bad sinks = %d %q %s; want 2 naming both", code, out, stderr)
	}
}
