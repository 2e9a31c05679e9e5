package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"

	"go.yaml.in/yaml/v3"

	"github.com/evidentsec/evident/internal/assess"
)

// fileConfig is the configuration file, docs/configuration.md. Each
// section belongs to the package it configures; the file only composes
// them.
type fileConfig struct {
	assess.Config `yaml:",inline"`
	// Products maps a service to the package URL of what is deployed
	// (an image, a binary), for VEX statements.
	Products map[string]string `yaml:"products"`
}

// defaultFileConfig is what runs when no file is given.
func defaultFileConfig() fileConfig {
	return fileConfig{Config: assess.DefaultConfig()}
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${NAME} with the environment variable NAME; an unset
// variable is an error, so that a typo does not silently empty a value.
func expandEnv(b []byte) ([]byte, error) {
	var missing []string
	out := envRef.ReplaceAllFunc(b, func(m []byte) []byte {
		name := string(envRef.FindSubmatch(m)[1])
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, name)
		}
		return []byte(v)
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("environment variable %s is not set", missing[0])
	}
	return out, nil
}

// loadConfig reads a configuration file strictly: unknown keys are
// errors, and so is anything Validate rejects. An empty path gives the
// defaults.
func loadConfig(path string) (fileConfig, error) {
	cfg := defaultFileConfig()
	if path == "" {
		return cfg, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	raw, err = expandEnv(raw)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}
