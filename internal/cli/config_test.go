package cli

import (
	"os"
	"path/filepath"
	"strconv"
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
	if cfg.JavaRelocations["com.example.shop.libs.yaml"] != "org.yaml.snakeyaml" || cfg.PythonDists["acme.plugins.s3"] != "acme-s3" {
		t.Errorf("java_relocations = %v, python_dists = %v", cfg.JavaRelocations, cfg.PythonDists)
	}
	// The example spells out every serve default, so it loads as the
	// defaults do, plus its sinks.
	s := cfg.Serve
	if s.Engine != defaultServeConfig().Engine || s.Model != defaultServeConfig().Model || !cmp.Equal(s.API, defaultServeConfig().API, cmpopts.EquateEmpty()) || !cmp.Equal(s.Auth, defaultServeConfig().Auth, cmpopts.EquateEmpty()) || s.Store != defaultServeConfig().Store {
		t.Errorf("serve config = %+v, want the defaults", s)
	}
	if diff := cmp.Diff(defaultServeConfig().Redaction, s.Redaction, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("serve redaction differs from the defaults (-want +got):\n%s", diff)
	}
	if len(s.Alerts.Webhooks) != 1 || s.Alerts.Webhooks[0].Secret != "change-me" || len(s.Alerts.JSONLines) != 1 || s.ShutdownTimeout != 15*time.Second {
		t.Errorf("serve alerts = %+v", s.Alerts)
	}
}

// TestLoadConfigBad loads every *.bad.yml and checks the whole error:
// each problem names the file, the line and the key's path, in YAML terms
// (not Go types), and an unknown key the key that was likely meant. A bad
// value of the serve section is serve's error alone (serveOnly): the
// commands that do not serve load the file.
func TestLoadConfigBad(t *testing.T) {
	dir := filepath.Join("testdata", "config")
	want := map[string]string{
		"unknown-key.bad.yml": "$F:3: sensitivity[0].lables: unknown key (did you mean labels?)",
		"typo-nested.bad.yml": "$F:2: vex.max_shar: unknown key (did you mean max_share?)\n" +
			"$F:8: serve.alerts.webhooks[0].secrte: unknown key (did you mean secret?)",
		"misplaced-key.bad.yml": "$F:1: min_samples: unknown key (did you mean reachability.min_samples?)\n" +
			"$F:3: vex.dedupe_window: unknown key (did you mean serve.alerts.dedupe_window?)",
		"unknown-section.bad.yml": "$F:1: servce: unknown key (did you mean serve?)\n" +
			"$F:4: alerting: unknown key (did you mean serve.alerts?)",
		"type-error.bad.yml": "$F:2: reachability.min_samples: \"many\" is not an integer\n" +
			"$F:4: vex.allow_static_called: \"sometimes\" is not true or false\n" +
			"$F:6: serve.shutdown_timeout: want a duration (like 30s, 5m or 1h), not a list\n" +
			"$F:7: serve.engine: want a mapping of keys, not \"1024\"",
		"bad-duration.bad.yml":  "$F:2: vex.min_window: \"forever\" is not a duration (like 30s, 5m or 1h)",
		"not-a-mapping.bad.yml": "$F:1: the document: want a mapping of keys, not \"evident\"",
		"duplicate-key.bad.yml": "$F:3: vex: given twice (first on line 1)",
		"bad-exposure.bad.yml":  `config $F: invalid assess configuration: exposure.services.gateway: "public" is not one of exposed, internal, no_input`,
		"unset-env.bad.yml":     "$F:2: sensitivity[0].store: environment variable EVIDENT_TEST_UNSET_STORE is not set",
		"bad-env-ref.bad.yml":   "$F:3: serve.api.endpoint: \"${EVIDENT_TEST_HOST:-127.0.0.1}\" is not a reference to an environment variable: write ${NAME}, or $${ for a literal ${",
		"two-documents.bad.yml": "$F:3: a second YAML document: the configuration is one document, without ---",
		"bad-serve.bad.yml": `config $F: api endpoint "8080": address 8080: missing port in address` + "\n" +
			"invalid engine configuration: queue_size 0 is below 1",
		"bad-products.bad.yml":    `config $F: products.gateway: "registry.example.com/shop/gateway:v1" is not a package URL (pkg:oci/<name>@sha256:<digest>, pkg:generic/<name>, ...)`,
		"bad-redaction.bad.yml":   "config $F: invalid redaction configuration: value_patterns[0] \"(\": error parsing regexp: missing closing ): `(`",
		"bad-first-party.bad.yml": `config $F: invalid attribution config: first_party[1] "com.example.": not a package name`,
		"bad-attribution.bad.yml": `config $F: invalid attribution config: java_relocations["com/example/libs/yaml"]: not a dotted Java package name` + "\n" +
			`invalid attribution config: python_dists["acme."]: not a Python module name`,
		"bad-store.bad.yml": `config $F: serve store backend "postgre" is neither "sqlite" nor "postgres"`,
		// The password of the DSN is not shown.
		"bad-store-postgres.bad.yml": "config $F: serve store postgres: dsn: cannot parse `postgres://evident:xxxxx@db.example:notaport/evident`: invalid port\n" +
			"serve store postgres: max_conns 1 is under 2 (the committer holds one)",
		"typo-store.bad.yml": "$F:5: serve.store.postgres.dns: unknown key (did you mean dsn?)",
		"bad-sources.bad.yml": "config $F: serve sources: timeout -1s: want a positive duration\n" +
			`serve sources: invalid argument: tenant "team a": want 1 to 150 of A-Z a-z 0-9 _ . ! * ' ( ) -, and not "." or ".."`,
		"bad-endpoints.bad.yml": `config $F: api endpoint "127.0.0.1:99999": port 99999 out of range (0 to 65535)` + "\n" +
			`invalid otlp receiver config: grpc_endpoint "127.0.0.1:-1": port -1 out of range (0 to 65535)` + "\n" +
			`invalid pyroscope receiver config: endpoint "127.0.0.1:notaport": port "notaport" is neither a number nor a known service name`,
		"bad-model.bad.yml": "config $F: invalid model configuration: max_pending_spans 1 is below 2\n" +
			"invalid model configuration: max_services 0 is below 1",
	}
	serveOnly := map[string]bool{
		"bad-serve.bad.yml": true, "bad-endpoints.bad.yml": true, "bad-sources.bad.yml": true, "bad-store.bad.yml": true,
		"bad-store-postgres.bad.yml": true, "bad-redaction.bad.yml": true, "bad-model.bad.yml": true,
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.bad.yml"))
	if err != nil || len(files) != len(want) {
		t.Fatalf("bad configs = %v, %v; want %d", files, err, len(want))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			wantErr := strings.ReplaceAll(want[filepath.Base(f)], "$F", f)
			_, err := loadConfig(f)
			switch {
			case serveOnly[filepath.Base(f)]:
				if err != nil {
					t.Errorf("loadConfig = %v, want nil: the serve section is serve's to check", err)
				}
			case err == nil:
				t.Error("loadConfig succeeded")
			default:
				if diff := cmp.Diff(wantErr, err.Error()); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
			}
			code, _, stderr := run(t, "--data", t.TempDir(), "serve", "--config", f, "--check-config")
			if diff := cmp.Diff("evident: "+wantErr+"\n", stderr); code != ExitUsage || diff != "" {
				t.Errorf("serve --check-config: exit %d, stderr (-want +got):\n%s", code, diff)
			}
		})
	}
}

// TestServeSectionAfterFlags checks that the serve section is checked as
// serve's flags leave it, a listener's value in the file replaced or
// turned off by its flag, and only by the commands that use it.
func TestServeSectionAfterFlags(t *testing.T) {
	endpoints := filepath.Join("testdata", "config", "bad-endpoints.bad.yml")
	badServe := filepath.Join("testdata", "config", "bad-serve.bad.yml")
	badStore := filepath.Join("testdata", "config", "bad-store.bad.yml")
	vulns := filepath.Join(shop, "recorded", "osv")
	check := []string{"serve", "--check-config", "--vulns", vulns, "--config", endpoints}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string // the whole of stderr; "" for no word of the configuration
	}{
		{"file's bad listeners", check, ExitUsage, "evident: config " + endpoints + `: api endpoint "127.0.0.1:99999": port 99999 out of range (0 to 65535)` + "\n" +
			`invalid otlp receiver config: grpc_endpoint "127.0.0.1:-1": port -1 out of range (0 to 65535)` + "\n" +
			`invalid pyroscope receiver config: endpoint "127.0.0.1:notaport": port "notaport" is neither a number nor a known service name` + "\n"},
		{"turned off by the flags", append(check, "--api", "127.0.0.1:8080", "--otlp-grpc", "", "--pyroscope", ""), ExitOK, ""},
		{"replaced by the flags", append(check, "--api", "127.0.0.1:8080", "--otlp-grpc", "127.0.0.1:4317", "--pyroscope", "127.0.0.1:4040"), ExitOK, ""},
		{"one left bad", append(check, "--api", "127.0.0.1:8080", "--otlp-grpc", ""), ExitUsage, "evident: config " + endpoints +
			`: invalid pyroscope receiver config: endpoint "127.0.0.1:notaport": port "notaport" is neither a number nor a known service name` + "\n"},
		{"analyze ignores serve", []string{"analyze", "--config", badServe, "--vulns", vulns, "--findings", filepath.Join(shop, "recorded", "findings"),
			"--traces", filepath.Join(shop, "recorded", "traces.jsonl")}, ExitOK, ""},
		{"db stats ignores serve", []string{"db", "stats", "--config", badServe, "--vulns", vulns}, ExitOK, ""},
		{"token create ignores serve but the store", []string{"token", "create", "--config", badServe, "--name", "ops", "--role", "admin"}, ExitOK, ""},
		{"token create checks the store", []string{"token", "create", "--config", badStore, "--name", "ops", "--role", "admin"}, ExitUsage,
			"evident: config " + badStore + `: serve store backend "postgre" is neither "sqlite" nor "postgres"` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, append([]string{"--data", t.TempDir()}, tt.args...)...)
			// A command that runs says other things (a token's id).
			wrong := stderr != tt.wantErr
			if tt.wantErr == "" {
				wrong = strings.Contains(stderr, "config ")
			}
			if code != tt.wantCode || wrong {
				t.Errorf("exit %d, stderr:\n%s\nwant %d and:\n%s", code, stderr, tt.wantCode, tt.wantErr)
			}
		})
	}
}

// TestEditDistance checks the distance behind the key suggestions.
func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"", "abc", 3}, {"labels", "labels", 0}, {"lables", "labels", 2},
		{"max_shar", "max_share", 1}, {"secrte", "secret", 2}, {"servce", "serve", 1}, {"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestExpandEnv loads configurations that refer to environment
// variables: a value is the variable's whatever it holds, in the value it
// stands in and nowhere else; a comment is not read for references.
func TestExpandEnv(t *testing.T) {
	t.Setenv("EVIDENT_TEST_DB", "postgresql://shop")
	t.Setenv("EVIDENT_TEST_SECRET", `ab #cd: "e\nf" $x`)
	t.Setenv("EVIDENT_TEST_PORT", "8081")
	t.Setenv("EVIDENT_TEST_EMPTY", "")
	webhook := func(secret string) string {
		return "serve:\n  alerts:\n    webhooks:\n      - name: soc\n        url: https://hooks.example.com/e\n        secret: " + secret + "\n"
	}
	secretOf := func(c fileConfig) string { return c.Serve.Alerts.Webhooks[0].Secret }
	tests := []struct {
		name, file string
		got        func(fileConfig) string
		want       string
	}{
		{"within a value", "sensitivity:\n  - store: ${EVIDENT_TEST_DB}/*\n    labels: [pii]\n", func(c fileConfig) string { return c.Sensitivity[0].Store }, "postgresql://shop/*"},
		{"a dollar alone", "sensitivity:\n  - store: ${EVIDENT_TEST_DB}/$5\n    labels: [pii]\n", func(c fileConfig) string { return c.Sensitivity[0].Store }, "postgresql://shop/$5"},
		{"YAML syntax in a plain value", webhook("${EVIDENT_TEST_SECRET}"), secretOf, `ab #cd: "e\nf" $x`},
		{"YAML syntax in a quoted value", webhook(`"${EVIDENT_TEST_SECRET}"`), secretOf, `ab #cd: "e\nf" $x`},
		{"a literal dollar-brace", webhook(`"a$${EVIDENT_TEST_UNSET}"`), secretOf, "a${EVIDENT_TEST_UNSET}"},
		{"an empty variable", webhook("${EVIDENT_TEST_EMPTY}"), secretOf, ""},
		{"a number", "serve:\n  api:\n    max_upload_bytes: ${EVIDENT_TEST_PORT}\n", func(c fileConfig) string { return strconv.FormatInt(c.Serve.API.MaxUploadBytes, 10) }, "8081"},
		{"a commented-out reference", "# secret: ${EVIDENT_TEST_UNSET}\nreachability: {min_samples: 40} # ${EVIDENT_TEST_UNSET}\n", func(c fileConfig) string { return strconv.FormatInt(c.Reachability.MinSamples, 10) }, "40"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "evident.yml")
			if err := os.WriteFile(path, []byte(tt.file), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.got(cfg); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
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

// TestServeModelConfig: a pull of selected services from Tempo hands on
// their callers its lag and an interval behind the receivers, so the
// model keeps the spans whose wait ended at least that long.
func TestServeModelConfig(t *testing.T) {
	tests := []struct {
		name     string
		tempo    string
		services []string
		lag      time.Duration
		want     time.Duration
	}{
		{"no pull", "", nil, 5 * time.Minute, 2 * time.Minute},
		{"a pull of every service", "http://tempo:3200", nil, 5 * time.Minute, 2 * time.Minute},
		{"a pull of selected services", "http://tempo:3200", []string{"gateway"}, 5 * time.Minute, 6 * time.Minute},
		{"a pull within the window", "http://tempo:3200", []string{"gateway"}, 30 * time.Second, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := defaultServeConfig()
			sc.Sources.Tempo, sc.Sources.Services, sc.Sources.Lag = tt.tempo, tt.services, tt.lag
			if got := sc.modelConfig().LateJoinWindow; got != tt.want {
				t.Errorf("LateJoinWindow = %v, want %v (lag %v, interval %v)", got, tt.want, tt.lag, sc.Sources.Interval)
			}
		})
	}
}
