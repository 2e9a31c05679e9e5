package check

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

const chart = "../helm/evident"

// helm runs Helm ($HELM, or the module's tool: go tool helm) and returns
// what it printed on stdout, and an error with its stderr.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var cmd *exec.Cmd
	if h := os.Getenv("HELM"); h != "" {
		cmd = exec.Command(h, args...)
	} else {
		cmd = exec.Command("go", append([]string{"tool", "helm"}, args...)...)
	}
	// Helm's own directories, away from the user's.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stderr.String(), out.String())
	}
	return out.String(), nil
}

// ciValues are the values files the chart is checked with.
func ciValues(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chart, "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no values in %s/ci: %v", chart, err)
	}
	return files
}

func TestHelmLint(t *testing.T) {
	for _, values := range ciValues(t) {
		if out, err := helm(t, "lint", "--strict", chart, "-f", values); err != nil {
			t.Errorf("%s: %v", values, err)
		} else {
			t.Logf("%s:\n%s", values, out)
		}
	}
}

// TestHelmRefuses: what the chart cannot run without is refused at
// render time, with what to give.
func TestHelmRefuses(t *testing.T) {
	base := []string{"--set", "kafka.brokers={kafka:9092}", "--set", "postgres.dsnSecret.name=pg", "--set", "auth.tokensSecret=tokens"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no brokers", []string{"--set", "postgres.dsnSecret.name=pg", "--set", "auth.tokensSecret=tokens"}, "kafka.brokers is required"},
		{"no database", []string{"--set", "kafka.brokers={kafka:9092}", "--set", "auth.tokensSecret=tokens"}, "postgres.dsnSecret.name or postgres.dsn is required"},
		{"two databases", append(slices.Clone(base), "--set", "postgres.dsn=postgres://evident@pg/evident"), "not both"},
		{"a password in the DSN", []string{"--set", "kafka.brokers={kafka:9092}", "--set", "auth.tokensSecret=tokens",
			"--set", "postgres.dsn=postgres://evident:s3cret@pg/evident"}, "postgres.dsn holds a password"},
		{"a password in a keyword DSN", []string{"--set", "kafka.brokers={kafka:9092}", "--set", "auth.tokensSecret=tokens",
			"--set", "postgres.dsn=host=pg user=evident password=s3cret dbname=evident"}, "postgres.dsn holds a password"},
		{"a password in the DSN's query", []string{"--set", "kafka.brokers={kafka:9092}", "--set", "auth.tokensSecret=tokens",
			"--set", "postgres.dsn=postgres://evident@pg/evident?sslmode=require&password=s3cret"}, "postgres.dsn holds a password"},
		{"no credentials", []string{"--set", "kafka.brokers={kafka:9092}", "--set", "postgres.dsnSecret.name=pg"}, "auth.tokensSecret"},
		{"a ServiceMonitor without a read token", append(slices.Clone(base), "--set", "serviceMonitor.enabled=true",
			"-f", values(t, "auth: {tokens: [{key: ingest, name: collector, roles: [ingest]}]}")), "a token with only the read role"},
		{"a ServiceMonitor with only an admin token to read", append(slices.Clone(base), "--set", "serviceMonitor.enabled=true",
			"-f", values(t, "auth: {tokens: [{key: admin, name: admin, roles: [admin]}, {key: ops, name: ops, roles: [read, admin]}]}")), "only the read role"},
		// A dashboard's token cannot send telemetry (docs/security.md).
		{"a ServiceMonitor with only a read token that may ingest", append(slices.Clone(base), "--set", "serviceMonitor.enabled=true",
			"-f", values(t, "auth: {tokens: [{key: ops, name: ops, roles: [read, ingest]}]}")), "only the read role"},
		// /metrics answers a token bound to a tenant 403.
		{"a ServiceMonitor with only a tenant's read token", append(slices.Clone(base), "--set", "serviceMonitor.enabled=true",
			"-f", values(t, "auth: {tokens: [{key: team-a, name: team-a, roles: [read], tenant: team-a}]}")), "no tenant"},
		{"a misspelled value", append(slices.Clone(base), "--set", "reciever.replicas=3"), "additional properties 'reciever' not allowed"},
		{"a misspelled env field", append(slices.Clone(base), "-f", values(t, "env: [{name: X, valueFom: {secretKeyRef: {name: s, key: k}}}]")), "additional properties 'valueFom' not allowed"},
		{"an env value that is not a string", append(slices.Clone(base), "-f", values(t, "env: [{name: X, value: 8080}]")), "/env/0/value"},
		{"an env variable the chart sets", append(slices.Clone(base), "-f", values(t, "env: [{name: PGPASSWORD, valueFrom: {secretKeyRef: {name: s, key: k}}}]")), "env: PGPASSWORD is set by the chart"},
		{"a token with an unknown role", append(slices.Clone(base), "-f", values(t, "auth: {tokens: [{key: x, name: x, roles: [root]}]}")), "/auth/tokens/0/roles/0"},
		// Its name is a file's in /etc/evident/knowledge, never a path.
		{"a knowledge file named as a path", append(slices.Clone(base), "-f", values(t, "knowledge: {../evident.yaml: 'version: 1'}")), "invalid propertyName '../evident.yaml'"},
		{"a ServiceMonitor without tokens", []string{"--set", "kafka.brokers={kafka:9092}", "--set", "postgres.dsnSecret.name=pg",
			"--set", "config.serve.auth.oidc.issuer=https://id.example.com", "--set", "serviceMonitor.enabled=true"}, "serviceMonitor.enabled needs auth.tokensSecret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := helm(t, append([]string{"template", "evident", chart}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("helm template = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// values writes a values file.
func values(t *testing.T, yaml string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// rendered is a chart rendered and decoded.
type rendered struct {
	deployments     []*appsv1.Deployment
	services        []*corev1.Service
	configMaps      []*corev1.ConfigMap
	pdbs            []*policyv1.PodDisruptionBudget
	networkPolicies []*networkingv1.NetworkPolicy
	serviceMonitors []*monitoringv1.ServiceMonitor
}

// decodeManifests decodes every document of a rendered chart strictly
// into the Kubernetes API's types (an unknown or duplicate field, a value
// of the wrong type, a kind the API does not have are errors) and checks
// each object's metadata as the API server does.
func decodeManifests(t *testing.T, manifests string) rendered {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), monitoringv1.AddToScheme(scheme)); err != nil {
		t.Fatal(err)
	}
	codec := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{Yaml: true, Strict: true})
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifests)))
	var r rendered
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, gvk, err := codec.Decode(doc, nil, nil)
		if err != nil {
			t.Errorf("decode:\n%s\n%v", doc, err)
			continue
		}
		meta, ok := obj.(metav1.Object)
		if !ok {
			t.Errorf("%s has no metadata", gvk)
			continue
		}
		for _, e := range validation.ValidateObjectMetaAccessor(meta, true, validation.NameIsDNSSubdomain, nil) {
			t.Errorf("%s %s: %v", gvk.Kind, meta.GetName(), e)
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			r.deployments = append(r.deployments, o)
		case *corev1.Service:
			r.services = append(r.services, o)
		case *corev1.ConfigMap:
			r.configMaps = append(r.configMaps, o)
		case *policyv1.PodDisruptionBudget:
			r.pdbs = append(r.pdbs, o)
		case *networkingv1.NetworkPolicy:
			r.networkPolicies = append(r.networkPolicies, o)
		case *monitoringv1.ServiceMonitor:
			r.serviceMonitors = append(r.serviceMonitors, o)
		}
	}
	return r
}

// stripComments drops the comment lines of a YAML document ("# Source:").
func stripComments(doc []byte) []byte {
	var out []byte
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
		}
	}
	return out
}

// TestHelmManifests renders the chart with each values file of ci/ and
// checks the manifests: strictly valid Kubernetes objects, a Deployment,
// a Service and a PodDisruptionBudget per role that select each other's
// pods and name ports that exist, every container that reads evident.yaml
// given the variables its ${NAME} refer to, and every evident command
// line accepted by the real evident with the configuration the chart
// renders.
func TestHelmManifests(t *testing.T) {
	fromSecret := 0 // variables from Secrets in env, over the values files
	defer func() {
		if fromSecret == 0 {
			t.Errorf("no values file of %s/ci gives env from a Secret: the check of env is empty", chart)
		}
	}()
	for _, values := range ciValues(t) {
		t.Run(filepath.Base(values), func(t *testing.T) {
			out, err := helm(t, "template", "evident", chart, "--namespace", "evident", "-f", values)
			if err != nil {
				t.Fatal(err)
			}
			r := decodeManifests(t, out)
			if len(r.deployments) != 3 || len(r.services) != 3 || len(r.configMaps) != 1 || len(r.pdbs) != 3 {
				t.Fatalf("%d deployments, %d services, %d config maps, %d disruption budgets; want 3, 3, 1, 3",
					len(r.deployments), len(r.services), len(r.configMaps), len(r.pdbs))
			}
			config := filepath.Join(t.TempDir(), "evident.yaml")
			if err := os.WriteFile(config, []byte(r.configMaps[0].Data["evident.yaml"]), 0o600); err != nil {
				t.Fatal(err)
			}
			env := readValues(t, values).Env
			// Each knowledge file of the values is in the ConfigMap and
			// named in evident.yaml at the path the pods mount it at.
			for name := range readValues(t, values).Knowledge {
				if _, ok := r.configMaps[0].Data["knowledge."+name]; !ok {
					t.Errorf("knowledge file %s is not in the ConfigMap", name)
				}
				if !strings.Contains(r.configMaps[0].Data["evident.yaml"], "- /etc/evident/knowledge/"+name+"\n") {
					t.Errorf("knowledge file %s is not named in evident.yaml:\n%s", name, r.configMaps[0].Data["evident.yaml"])
				}
			}
			refs := checkConfigRefs(t, r.configMaps[0].Data["evident.yaml"], env)
			for _, e := range env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					fromSecret++
				}
			}
			roles := map[string]bool{}
			for _, d := range r.deployments {
				role := d.Spec.Template.Labels["app.kubernetes.io/component"]
				roles[role] = true
				checkDeployment(t, d, r, config)
				checkEnv(t, d, env, refs)
				// Receivers have no vulnerability database; the others get
				// one from an init container or a volume.
				pod := d.Spec.Template.Spec
				hasDB := slices.ContainsFunc(pod.InitContainers, func(c corev1.Container) bool { return c.Name == "vulndb" }) ||
					slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == "vulndb" })
				if hasDB != (role != "receiver") {
					t.Errorf("deployment %s: vulnerability database %v, want it for engines and API replicas only", d.Name, hasDB)
				}
			}
			if !roles["receiver"] || !roles["engine"] || !roles["api"] {
				t.Errorf("roles %v, want receiver, engine and api", roles)
			}
			for _, sm := range r.serviceMonitors {
				// Prometheus scrapes with the read token (the ci values'
				// key "read"), not the admin one listed before it.
				for _, ep := range sm.Spec.Endpoints {
					// Scraped by address, a pod's certificate is checked
					// against a Service's name.
					if ep.Scheme != nil && strings.EqualFold(string(*ep.Scheme), "https") {
						if ep.TLSConfig == nil || ep.TLSConfig.ServerName == nil || *ep.TLSConfig.ServerName != "evident-api.evident.svc" {
							t.Errorf("ServiceMonitor %s scrapes over TLS with %+v, want serverName evident-api.evident.svc", sm.Name, ep.TLSConfig)
						}
					}
					if ep.Authorization == nil || ep.Authorization.Credentials == nil || ep.Authorization.Credentials.Key != "read" {
						t.Errorf("ServiceMonitor %s scrapes with %+v, want the token under key read", sm.Name, ep.Authorization)
					}
				}
				sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, s := range r.services {
					if sel.Matches(labels.Set(s.Labels)) {
						n++
					}
				}
				if n != len(r.services) {
					t.Errorf("ServiceMonitor %s selects %d of the %d services", sm.Name, n, len(r.services))
				}
			}
			metricsFrom := readValues(t, values).NetworkPolicy.MetricsFrom
			for _, np := range r.networkPolicies {
				if matching(t, &np.Spec.PodSelector, r.deployments) == nil {
					t.Errorf("NetworkPolicy %s selects no pod", np.Name)
				}
				// Every role's /metrics (port http, which the API replicas
				// share with the API) is admitted from metricsFrom.
				for _, rule := range np.Spec.Ingress {
					if !slices.ContainsFunc(rule.Ports, func(p networkingv1.NetworkPolicyPort) bool { return p.Port != nil && p.Port.StrVal == "http" }) || len(rule.From) == 0 {
						continue
					}
					for _, peer := range metricsFrom {
						if !slices.ContainsFunc(rule.From, func(p networkingv1.NetworkPolicyPeer) bool { return reflect.DeepEqual(p, peer) }) {
							t.Errorf("NetworkPolicy %s: port http not admitted from metricsFrom's %+v (from %+v)", np.Name, peer, rule.From)
						}
					}
				}
			}
		})
	}
}

// envRef is a ${NAME} of evident.yaml, as evident finds it (docs/configuration.md).
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// checkConfigRefs checks that each variable of env that comes from a
// Secret is referred to as ${NAME} in the rendered evident.yaml, which
// holds the reference and not the secret, and returns the names config
// refers to.
func checkConfigRefs(t *testing.T, config string, env []corev1.EnvVar) map[string]bool {
	t.Helper()
	refs := map[string]bool{}
	for _, m := range envRef.FindAllStringSubmatch(config, -1) {
		refs[m[1]] = true
	}
	for _, e := range env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && !refs[e.Name] {
			t.Errorf("the ConfigMap does not refer to ${%s}, which env takes from Secret %s", e.Name, e.ValueFrom.SecretKeyRef.Name)
		}
	}
	return refs
}

// checkEnv checks that every container of d that reads evident.yaml
// (serve, and token create in the init containers) has each variable of
// the values' env as given, and every variable config refers to: evident
// expands ${NAME} when it loads the file and stops when NAME is unset.
// --check-config sees only serve's; token create is checked with --help.
func checkEnv(t *testing.T, d *appsv1.Deployment, env []corev1.EnvVar, refs map[string]bool) {
	t.Helper()
	pod := d.Spec.Template.Spec
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		if !slices.Contains(c.Args, "--config") {
			continue
		}
		has := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			has[e.Name] = e
		}
		given := map[string]bool{}
		for _, want := range env {
			given[want.Name] = true
			if got, ok := has[want.Name]; !ok {
				t.Errorf("deployment %s, container %s: no env %s, want %+v", d.Name, c.Name, want.Name, want)
			} else if !reflect.DeepEqual(got, want) {
				t.Errorf("deployment %s, container %s: env %s is %+v, want %+v", d.Name, c.Name, want.Name, got, want)
			}
		}
		for name := range refs {
			if _, ok := has[name]; !ok && !given[name] {
				t.Errorf("deployment %s, container %s: evident.yaml refers to ${%s}, which the container's env does not set", d.Name, c.Name, name)
			}
		}
	}
}

// valuesParts is what the checks compare the rendered manifests with, as
// a values file gives it.
type valuesParts struct {
	Env           []corev1.EnvVar   `json:"env"`
	Knowledge     map[string]string `json:"knowledge"`
	NetworkPolicy struct {
		MetricsFrom []networkingv1.NetworkPolicyPeer `json:"metricsFrom"`
	} `json:"networkPolicy"`
}

// readValues reads the parts of a values file the checks use.
func readValues(t *testing.T, file string) valuesParts {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var v valuesParts
	if err := utilyaml.NewYAMLOrJSONDecoder(f, 4096).Decode(&v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return v
}

// matching is the one Deployment whose pods sel selects, nil if none or
// several.
func matching(t *testing.T, sel *metav1.LabelSelector, ds []*appsv1.Deployment) *appsv1.Deployment {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatal(err)
	}
	var found *appsv1.Deployment
	for _, d := range ds {
		if s.Matches(labels.Set(d.Spec.Template.Labels)) {
			if found != nil {
				return nil
			}
			found = d
		}
	}
	return found
}

func checkDeployment(t *testing.T, d *appsv1.Deployment, r rendered, config string) {
	t.Helper()
	if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("deployment %s: its selector does not select its pods (%v)", d.Name, err)
	}
	pod := d.Spec.Template.Spec
	// As 65532, the runtime's seccomp profile, no service-account token:
	// evident never calls the Kubernetes API (docs/deploy.md).
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("deployment %s: pod security context %+v, want non-root 65532 and the runtime's seccomp profile", d.Name, psc)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("deployment %s: mounts a service-account token", d.Name)
	}
	volumes := map[string]bool{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = true
	}
	ports := map[string]bool{}
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				t.Errorf("deployment %s, container %s: mounts %s, which is not a volume", d.Name, c.Name, m.Name)
			}
		}
		if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
			t.Errorf("deployment %s, container %s: root filesystem not read-only", d.Name, c.Name)
		}
		// No capabilities, and no way to gain privileges (docs/deploy.md).
		if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 || (sc.Privileged != nil && *sc.Privileged) {
			t.Errorf("deployment %s, container %s: security context %+v, want no privilege escalation and every capability dropped", d.Name, c.Name, sc)
		}
		checkCommand(t, fmt.Sprintf("deployment %s, container %s", d.Name, c.Name), c.Args, podEnv(t, c),
			mountPaths(t, pod, c, config, r.configMaps[0].Data))
	}
	main := pod.Containers[0]
	for _, p := range main.Ports {
		ports[p.Name] = true
	}
	for what, p := range map[string]*corev1.Probe{"startup": main.StartupProbe, "liveness": main.LivenessProbe, "readiness": main.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || !ports[p.HTTPGet.Port.StrVal] || !strings.HasSuffix(p.HTTPGet.Path, "z") {
			t.Errorf("deployment %s: %s probe %+v is not an HTTP GET of /healthz or /readyz on a port of the container", d.Name, what, p)
		}
	}
	if main.Resources.Requests.Cpu().IsZero() || main.Resources.Limits.Memory().IsZero() {
		t.Errorf("deployment %s: no CPU request or memory limit", d.Name)
	}
	var svc *corev1.Service
	for _, s := range r.services {
		if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			if svc != nil {
				t.Errorf("deployment %s: selected by services %s and %s", d.Name, svc.Name, s.Name)
			}
			svc = s
		}
	}
	if svc == nil {
		t.Errorf("deployment %s: no service selects its pods", d.Name)
	} else {
		for _, p := range svc.Spec.Ports {
			if !ports[p.TargetPort.StrVal] {
				t.Errorf("service %s: target port %s is not a port of %s", svc.Name, p.TargetPort.String(), d.Name)
			}
		}
	}
	pdbs := 0
	for _, p := range r.pdbs {
		if matching(t, p.Spec.Selector, r.deployments) == d {
			pdbs++
		}
	}
	if pdbs != 1 {
		t.Errorf("deployment %s: %d disruption budgets, want 1", d.Name, pdbs)
	}
}

// secretValues are made-up values of the variables taken from Secrets
// that are not a plain secret string: what --check-config gets in their
// place must pass for what the Secret holds. Others are "secret".
var secretValues = map[string]string{
	"EVIDENT_PG_DSN":    "postgres://evident:secret@pg-rw.db:5432/evident?sslmode=verify-full",
	"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/secret",
}

// podEnv is the environment of c as evident sees it, with what comes
// from Secrets made up. Only these are set: a ${NAME} of the
// configuration that c does not set stops --check-config, as it stops
// evident in the pod.
func podEnv(t *testing.T, c corev1.Container) []string {
	t.Helper()
	var env []string
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.SecretKeyRef != nil:
			env = append(env, e.Name+"="+cmp.Or(secretValues[e.Name], "secret"))
		case e.ValueFrom.ResourceFieldRef != nil && e.Name == "GOMEMLIMIT":
			env = append(env, e.Name+"=1073741824")
		default:
			t.Errorf("container %s: environment variable %s from %+v", c.Name, e.Name, e.ValueFrom)
		}
	}
	return env
}

// mountPaths maps the container paths of c's evident command line to the
// host's: the configuration file, and each directory a Secret is mounted
// at, to a directory of made-up files under the keys Kubernetes TLS
// Secrets hold (tls.crt, tls.key, ca.crt: a self-signed certificate that
// is its own CA), as --check-config reads the certificates a start reads,
// and each directory of ConfigMap items (the knowledge files) to one
// holding them, from configMap. The configuration names those files by
// their container paths: the copy it is read from here names the host's.
func mountPaths(t *testing.T, pod corev1.PodSpec, c corev1.Container, config string, configMap map[string]string) map[string]string {
	t.Helper()
	secrets := map[string]bool{}
	// items are the ConfigMap's keys a volume holds by their paths in it
	// (the knowledge files).
	items := map[string][]corev1.KeyToPath{}
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			secrets[v.Name] = true
		}
		if v.ConfigMap != nil && len(v.ConfigMap.Items) > 0 {
			items[v.Name] = v.ConfigMap.Items
		}
	}
	text, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for _, m := range c.VolumeMounts {
		dir := t.TempDir()
		switch {
		case secrets[m.Name]:
			writeSelfSigned(t, dir)
		case items[m.Name] != nil:
			for _, it := range items[m.Name] {
				data, ok := configMap[it.Key]
				if !ok {
					t.Errorf("volume %s: key %s is not in the ConfigMap", m.Name, it.Key)
				}
				if err := os.WriteFile(filepath.Join(dir, it.Path), []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		default:
			continue
		}
		paths[m.MountPath] = dir
		text = bytes.ReplaceAll(text, []byte(m.MountPath+"/"), []byte(dir+"/"))
	}
	local := filepath.Join(t.TempDir(), "evident.yaml")
	if err := os.WriteFile(local, text, 0o600); err != nil {
		t.Fatal(err)
	}
	paths["/etc/evident/evident.yaml"] = local
	return paths
}

// writeSelfSigned writes a self-signed certificate for localhost, which is
// its own CA, as tls.crt and ca.crt in dir, and its key as tls.key.
func writeSelfSigned(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "evident"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for name, data := range map[string][]byte{
		"tls.crt": cert, "ca.crt": cert,
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
