package check

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

const composeFile = "../compose/docker-compose.yaml"

// loadCompose loads the compose file as docker compose does, with every
// profile, and fails the test on any error of the specification.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFile}, cli.WithProfiles([]string{"*"}), cli.WithOsEnv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("load %s: %v", composeFile, err)
	}
	return p
}

// evidentServices are the services of p that run the evident image.
func evidentServices(p *types.Project) map[string]types.ServiceConfig {
	image := p.Services["vulndb"].Image
	out := map[string]types.ServiceConfig{}
	for name, s := range p.Services {
		if s.Image == image {
			out[name] = s
		}
	}
	return out
}

// TestComposeShape: the deployment issue 16 asks for, with every evident
// replica health-checked, started after what it needs, and nothing
// published beyond the host's loopback.
func TestComposeShape(t *testing.T) {
	p := loadCompose(t)
	for name, want := range map[string]int{"receiver": 2, "engine": 2, "api": 1, "kafka": 1, "postgres": 1} {
		s, ok := p.Services[name]
		if !ok {
			t.Errorf("no service %s", name)
			continue
		}
		if got := s.GetScale(); got != want {
			t.Errorf("service %s: %d replicas, want %d", name, got, want)
		}
	}
	evidents := evidentServices(p)
	if len(evidents) == 0 {
		t.Fatal("no service runs the evident image")
	}
	for name, s := range evidents {
		if len(s.Command) == 0 || s.Command[0] != "serve" {
			continue
		}
		if s.HealthCheck == nil || !slices.Contains(s.HealthCheck.Test, "healthcheck") {
			t.Errorf("service %s: no evident healthcheck (%v)", name, s.HealthCheck)
		}
		deps := []string{"kafka-topics", "token-admin", "token-ingest", "token-read"}
		if slices.Contains(s.Command, "engine") || slices.Contains(s.Command, "api") {
			// They assess findings; receivers have no vulnerability database.
			deps = append(deps, "vulndb")
		}
		for _, dep := range deps {
			if d, ok := s.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("service %s: does not wait for %s to complete", name, dep)
			}
		}
	}
	published := map[int]string{}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("service %s publishes %s on %q, want 127.0.0.1 only", name, port.Published, port.HostIP)
			}
			from, to, err := portRange(port.Published)
			if err != nil {
				t.Errorf("service %s: %v", name, err)
			}
			if n := to - from + 1; n != 1 && n != s.GetScale() {
				t.Errorf("service %s publishes %d ports (%s) for %d replicas", name, n, port.Published, s.GetScale())
			}
			for p := from; p <= to; p++ {
				if other, ok := published[p]; ok {
					t.Errorf("services %s and %s both publish host port %d", other, name, p)
				}
				published[p] = name
			}
		}
		// Every secret a command reads is one the service mounts.
		for _, a := range s.Command {
			if secret, ok := strings.CutPrefix(a, "/run/secrets/"); ok && !slices.ContainsFunc(s.Secrets, func(c types.ServiceSecretConfig) bool { return c.Source == secret }) {
				t.Errorf("service %s reads %s but does not mount the secret", name, a)
			}
		}
		// And every secret it mounts is one it reads: named by its command,
		// its environment (PGPASSFILE, POSTGRES_PASSWORD_FILE, ...) or a
		// file it mounts (prometheus.yaml's credentials_file).
		reads := strings.Join(s.Command, "\n")
		for _, v := range s.Environment {
			if v != nil {
				reads += "\n" + *v
			}
		}
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if raw, err := os.ReadFile(v.Source); err == nil {
					reads += "\n" + string(raw)
				}
			}
		}
		for _, sec := range s.Secrets {
			target := cmp.Or(sec.Target, sec.Source)
			if !filepath.IsAbs(target) {
				target = "/run/secrets/" + target
			}
			if !strings.Contains(reads, target) {
				t.Errorf("service %s mounts the secret %s, which it does not read", name, sec.Source)
			}
		}
	}
	// Prometheus scrapes with the read token, and holds no other.
	if got := p.Services["prometheus"].Secrets; len(got) != 1 || got[0].Source != "read_token" {
		t.Errorf("prometheus mounts the secrets %v, want read_token only", got)
	}
}

// collectorNetwork is the compose network docs/deploy.md has Collectors
// (and any other container sending telemetry) join to reach the receivers.
const collectorNetwork = "ingest"

// TestComposeNetworks: Kafka takes any client that reaches it, without
// authentication (records with any tenant's header, every tenant's
// records), and PostgreSQL any with the password: both are only on
// internal networks of the deployment's own services, and the network
// Collectors are told to join holds the receivers and neither of them.
// Every service still shares a network with what it talks to, and each
// that publishes a port or downloads is on a network with a way out:
// Docker publishes no port of a container on internal networks only.
func TestComposeNetworks(t *testing.T) {
	p := loadCompose(t)
	members := map[string][]string{}
	for name, s := range p.Services {
		for n := range s.Networks {
			members[n] = append(members[n], name)
		}
	}
	evidents := evidentServices(p)
	own := func(name string) bool {
		_, ok := evidents[name]
		return ok || name == "kafka" || name == "kafka-topics" || name == "postgres"
	}
	for _, backend := range []string{"kafka", "postgres"} {
		for n := range p.Services[backend].Networks {
			if !p.Networks[n].Internal {
				t.Errorf("%s is on the network %s, which is not internal", backend, n)
			}
			for _, m := range members[n] {
				if !own(m) {
					t.Errorf("%s is on the network %s with %s, which is not the deployment's own", backend, n, m)
				}
			}
		}
	}

	ingest, ok := p.Networks[collectorNetwork]
	if !ok {
		t.Fatalf("no network %s for the Collectors", collectorNetwork)
	}
	if _, ok := p.Services["receiver"].Networks[collectorNetwork]; !ok {
		t.Errorf("the receivers are not on the network %s", collectorNetwork)
	}
	// docs/deploy.md says it holds the receivers alone.
	for _, m := range members[collectorNetwork] {
		if m != "receiver" {
			t.Errorf("%s is on the network %s, which Collectors join", m, collectorNetwork)
		}
	}
	doc, err := os.ReadFile("../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "`"+ingest.Name+"`") {
		t.Errorf("docs/deploy.md does not name the network %s for the Collectors", ingest.Name)
	}

	talks := map[string][]string{
		"receiver":     {"kafka", "postgres"},
		"engine":       {"kafka", "postgres"},
		"api":          {"postgres"},
		"kafka-topics": {"kafka"},
		"prometheus":   {"receiver", "engine", "api"},
		"grafana":      {"prometheus"},
	}
	for name := range p.Services {
		if strings.HasPrefix(name, "token-") {
			talks[name] = []string{"postgres"}
		}
	}
	for from, tos := range talks {
		for _, to := range tos {
			shared := func(n string) bool {
				_, ok := p.Services[to].Networks[n]
				return ok
			}
			if !slices.ContainsFunc(slices.Collect(maps.Keys(p.Services[from].Networks)), shared) {
				t.Errorf("service %s shares no network with %s", from, to)
			}
		}
	}
	wayOut := func(n string) bool { return !p.Networks[n].Internal }
	for name, s := range p.Services {
		if (len(s.Ports) > 0 || name == "vulndb") && !slices.ContainsFunc(slices.Collect(maps.Keys(s.Networks)), wayOut) {
			t.Errorf("service %s publishes a port or downloads, and is on internal networks only", name)
		}
	}
}

// TestComposeTopic: the topic the kafka-topics service creates has the
// partitions evident's configuration says it has.
func TestComposeTopic(t *testing.T) {
	p := loadCompose(t)
	raw, err := os.ReadFile("../compose/evident.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Cluster struct {
			Kafka struct {
				Topic      string `yaml:"topic"`
				Partitions string `yaml:"partitions"`
			} `yaml:"kafka"`
		} `yaml:"cluster"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cmd := p.Services["kafka-topics"].Command
	arg := func(flag string) string {
		if i := slices.Index(cmd, flag); i >= 0 && i+1 < len(cmd) {
			return cmd[i+1]
		}
		return ""
	}
	if arg("--topic") != cfg.Cluster.Kafka.Topic || arg("--partitions") != cfg.Cluster.Kafka.Partitions {
		t.Errorf("kafka-topics creates %s with %s partitions; evident.yaml says %s with %s",
			arg("--topic"), arg("--partitions"), cfg.Cluster.Kafka.Topic, cfg.Cluster.Kafka.Partitions)
	}
}

// TestComposeCommands runs every evident command of the compose file
// through the real evident: serve with --check-config on the
// configuration file it mounts, the others with --help.
func TestComposeCommands(t *testing.T) {
	p := loadCompose(t)
	for name, s := range evidentServices(p) {
		paths := map[string]string{}
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				paths[v.Target] = v.Source
			}
		}
		for _, sec := range s.Secrets {
			target := cmp.Or(sec.Target, sec.Source)
			if !filepath.IsAbs(target) {
				target = "/run/secrets/" + target
			}
			paths[target] = p.Secrets[sec.Source].File
		}
		var env []string
		for k, v := range s.Environment {
			if v != nil {
				env = append(env, k+"="+hostPath(*v, paths))
			}
		}
		checkCommand(t, "compose service "+name, s.Command, env, paths)
	}
}

// TestComposeSecrets: gen-secrets.sh makes every secret the compose file
// names, tokens evident accepts, and leaves existing ones alone.
func TestComposeSecrets(t *testing.T) {
	dir := t.TempDir()
	script, err := os.ReadFile("../compose/gen-secrets.sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "gen-secrets.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	gen := func() {
		if code, out := shell(t, filepath.Join(dir, "gen-secrets.sh")); code != 0 {
			t.Fatalf("gen-secrets.sh = %d:\n%s", code, out)
		}
	}
	gen()
	// The files are readable by the containers' users, which are not this
	// one; the directory keeps the host's other users out.
	if fi, err := os.Stat(filepath.Join(dir, "secrets")); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o700 {
		t.Errorf("secrets/ has mode %v, want 0700", fi.Mode().Perm())
	}
	p := loadCompose(t)
	first := map[string]string{}
	for name, s := range p.Secrets {
		raw, err := os.ReadFile(filepath.Join(dir, "secrets", filepath.Base(s.File)))
		if err != nil {
			t.Errorf("secret %s: %v", name, err)
			continue
		}
		first[name] = string(raw)
		if strings.HasSuffix(name, "_token") {
			code, out := evident(t, nil, "--data", t.TempDir(), "token", "create", "--name", name, "--role", "read",
				"--secret-file", filepath.Join(dir, "secrets", filepath.Base(s.File)))
			if code != 0 {
				t.Errorf("secret %s: evident token create --secret-file = %d:\n%s", name, code, out)
			}
		}
	}
	if pw, pgpass := strings.TrimSpace(first["pg_password"]), first["pgpass"]; pw == "" || !strings.HasSuffix(strings.TrimSpace(pgpass), ":evident:"+pw) {
		t.Errorf("pgpass %q does not hold pg_password %q for evident", pgpass, pw)
	}
	gen()
	for name, was := range first {
		if raw, _ := os.ReadFile(filepath.Join(dir, "secrets", filepath.Base(p.Secrets[name].File))); string(raw) != was {
			t.Errorf("secret %s changed on the second run", name)
		}
	}
}

// portRange parses a published port or range of ports, "8080" or
// "43170-43171".
func portRange(s string) (from, to int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if from, err = strconv.Atoi(a); err != nil {
		return 0, 0, fmt.Errorf("published port %q: %w", s, err)
	}
	if !isRange {
		return from, from, nil
	}
	if to, err = strconv.Atoi(b); err != nil || to < from {
		return 0, 0, fmt.Errorf("published port range %q is not FROM-TO", s)
	}
	return from, to, nil
}
