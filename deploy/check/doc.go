// Package check holds the tests of evident's deployment files (deploy/):
// the docker-compose file loaded by compose-go, the library Docker Compose
// itself loads it with; the Helm chart linted and rendered by Helm, and
// the rendered manifests decoded strictly into the Kubernetes API's types;
// and every evident command line in them, with the configuration it reads,
// checked by the real evident binary (evident serve --check-config).
//
// It is a module of its own so that Helm's and compose-go's dependencies
// stay out of evident's; deploy/check.sh runs it.
package check
