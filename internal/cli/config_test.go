package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestLoadConfig(t *testing.T) {
	cfg, err := loadConfig(filepath.Join("testdata", "config", "good.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.VEX.MinWindow != 2*time.Hour || cfg.VEX.MaxShare != 0.005 || cfg.Reachability.MinSamples != 50 {
		t.Errorf("config = %+v", cfg)
	}
	if len(cfg.Sensitivity) != 2 || cfg.Exposure.Services["reporter"] != "no_input" {
		t.Errorf("config = %+v", cfg)
	}
	// The example spells out every serve default, so it loads as the
	// defaults do, plus its sinks.
	s := cfg.Serve
	if s.Engine != defaultServeConfig().Engine || !cmp.Equal(s.API, defaultServeConfig().API, cmpopts.EquateEmpty()) || !cmp.Equal(s.Auth, defaultServeConfig().Auth, cmpopts.EquateEmpty()) || s.Store != defaultServeConfig().Store {
		t.Errorf("serve config = %+v, want the defaults", s)
	}
	if len(s.Alerts.Webhooks) != 1 || s.Alerts.Webhooks[0].Secret != "change-me" || len(s.Alerts.JSONLines) != 1 || s.ShutdownTimeout != 15*time.Second {
		t.Errorf("serve alerts = %+v", s.Alerts)
	}
}

// TestLoadConfigBad loads every *.bad.yml and checks the error names the
// file and the problem.
func TestLoadConfigBad(t *testing.T) {
	want := map[string]string{
		"unknown-key.bad.yml":  "field lables not found",
		"bad-exposure.bad.yml": `exposure.services.gateway: "public" is not one of`,
		"bad-duration.bad.yml": "forever",
		"unset-env.bad.yml":    "environment variable EVIDENT_TEST_UNSET_STORE is not set",
		"bad-serve.bad.yml":    "queue_size 0 is below 1",
		"bad-products.bad.yml": `products.gateway: "registry.example.com/shop/gateway:v1" is not a package URL`,
	}
	files, err := filepath.Glob(filepath.Join("testdata", "config", "*.bad.yml"))
	if err != nil || len(files) != len(want) {
		t.Fatalf("bad configs = %v, %v; want %d", files, err, len(want))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := loadConfig(f)
			if err == nil {
				t.Fatal("loadConfig succeeded")
			}
			if !strings.Contains(err.Error(), f) || !strings.Contains(err.Error(), want[filepath.Base(f)]) {
				t.Errorf("error = %q, want it to name %s and contain %q", err, f, want[filepath.Base(f)])
			}
		})
	}
}

func TestExpandEnv(t *testing.T) {
	t.Setenv("EVIDENT_TEST_DB", "postgresql://shop")
	got, err := expandEnv([]byte("store: ${EVIDENT_TEST_DB}/*, price: $5"))
	if err != nil || string(got) != "store: postgresql://shop/*, price: $5" {
		t.Errorf("expandEnv = %q, %v", got, err)
	}
}

// TestConfigDocExample keeps the example in docs/configuration.md equal
// to the tested file.
func TestConfigDocExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join("testdata", "config", "good.yml"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```yaml\n")
	block, _, _ = strings.Cut(block, "```")
	if !ok || strings.TrimSpace(block) != strings.TrimSpace(string(good)) {
		t.Errorf("docs/configuration.md's example differs from testdata/config/good.yml; copy one to the other")
	}
}

// FuzzLoadConfig feeds configuration files to loadConfig: it may refuse
// them, never panic.
func FuzzLoadConfig(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "config", "*.yml"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "evident.yml")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		loadConfig(path)
	})
}
