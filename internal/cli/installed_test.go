package cli

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidentsec/evident/internal/attribution"
)

// TestInstalledApply checks what wins where the installed packages, the
// findings and the configuration speak: a jar's packages over guessed
// prefixes, configured Python distributions over installed metadata, and
// installed metadata over the modules the findings' distributions ship.
func TestInstalledApply(t *testing.T) {
	in := installed{
		javaPackages: map[string]string{"org.yaml.snakeyaml": "org.yaml:snakeyaml"},
		pythonDists:  map[string]string{"yaml": "PyYAML", "acme": "acme-core", "azure.core": "azure_core"},
	}
	configured := map[string]string{"acme": "acme", "acme.plugins.s3": "acme-s3"}
	cfg := attribution.Config{
		JavaPackages: map[string]string{"org.yaml.snakeyaml": "org.yaml:snakeyaml-engine", "org.jsoup": "org.jsoup:jsoup"},
		PythonDists:  map[string]string{"acme": "acme", "acme.plugins.s3": "acme-s3", "azure.core": "azure-core", "azure.identity": "azure-identity"},
	}
	got := in.apply(cfg, configured)
	want := attribution.Config{
		JavaPackages: map[string]string{"org.yaml.snakeyaml": "org.yaml:snakeyaml", "org.jsoup": "org.jsoup:jsoup"},
		PythonDists: map[string]string{"yaml": "PyYAML", "acme": "acme", "acme.plugins.s3": "acme-s3",
			"azure.core": "azure_core", "azure.identity": "azure-identity"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("apply (-want +got):\n%s", diff)
	}
	if cfg.PythonDists["yaml"] != "" || cfg.JavaPackages["org.yaml.snakeyaml"] != "org.yaml:snakeyaml-engine" {
		t.Errorf("apply changed its argument's maps: %+v", cfg)
	}
	if got := (installed{}).apply(cfg, configured); !cmp.Equal(got, cfg) {
		t.Errorf("apply of nothing installed = %+v, want %+v", got, cfg)
	}
}
