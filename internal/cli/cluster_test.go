package cli

import (
	"strings"
	"testing"
)

// TestValidateRole checks what each role of serve needs of the
// configuration, and that the messages say what is missing.
func TestValidateRole(t *testing.T) {
	pg := func(c *fileConfig) {
		c.Serve.Store.Backend, c.Serve.Store.Postgres.DSN = backendPostgres, "postgres://evident@db:5432/evident"
	}
	kafka := func(c *fileConfig) { c.Cluster.Kafka.Brokers = []string{"kafka:9092"} }
	for _, tc := range []struct {
		name, role string
		edit       []func(*fileConfig)
		want       []string // substrings of the error, none for no error
	}{
		{"all needs nothing", roleAll, nil, nil},
		{"unknown role", "leader", nil, []string{`--role "leader" is not one of all, receiver, engine, api`}},
		{"engine on SQLite", roleEngine, []func(*fileConfig){kafka}, []string{`--role engine needs serve.store.backend "postgres"`}},
		{"engine without kafka", roleEngine, []func(*fileConfig){pg}, []string{"--role engine needs cluster.kafka.brokers"}},
		{"engine", roleEngine, []func(*fileConfig){pg, kafka}, nil},
		{"receiver without kafka nor postgres", roleReceiver, nil, []string{"--role receiver needs serve.store.backend", "--role receiver needs cluster.kafka.brokers"}},
		{"receiver", roleReceiver, []func(*fileConfig){pg, kafka}, nil},
		{"receiver with nothing to receive", roleReceiver, []func(*fileConfig){pg, kafka, func(c *fileConfig) {
			c.Serve.OTLP.GRPCEndpoint, c.Serve.OTLP.HTTPEndpoint, c.Serve.Pyroscope.Endpoint = "", "", ""
		}}, []string{"--role receiver needs a listener"}},
		{"api needs no kafka", roleAPI, []func(*fileConfig){pg}, nil},
		{"api polling sources", roleAPI, []func(*fileConfig){pg, func(c *fileConfig) { c.Serve.Sources.Tempo = "http://tempo:3200" }}, []string{"--role api polls no sources"}},
		{"bad kafka", roleEngine, []func(*fileConfig){pg, kafka, func(c *fileConfig) { c.Cluster.Kafka.Topic = "" }}, []string{"cluster kafka: invalid kafka configuration: topic is empty"}},
		{"bad cluster", roleAPI, []func(*fileConfig){pg, func(c *fileConfig) { c.Cluster.ViewInterval = 0 }}, []string{"cluster: invalid cluster configuration: view_interval 0s is not positive"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultFileConfig()
			for _, e := range tc.edit {
				e(&cfg)
			}
			err := validateRole(tc.role, cfg)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("validateRole = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("validateRole = nil, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("validateRole = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}
