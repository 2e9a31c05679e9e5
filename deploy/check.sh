#!/usr/bin/env bash
# Checks deploy/ (docs/deploy.md, "Checking the deployment files"):
#   - the docker-compose file, loaded by compose-go (what Docker Compose v2
#     loads it with) and by docker-compose v1 if it is installed;
#   - the Helm chart, with Helm v4 (helm lint --strict, helm template) on
#     each values file of deploy/helm/evident/ci, and the rendered
#     manifests decoded strictly into the Kubernetes API's types;
#   - every evident command line of both, with the configuration it reads,
#     by the real evident binary (serve --check-config).
# The Go module deploy/check holds the tests and pins Helm (go tool helm)
# and compose-go. The first run builds Helm and the Kubernetes client
# libraries: minutes on a 2-core machine, seconds afterwards.
#
# EVIDENT=path/to/evident checks that binary instead of one built from
# this checkout; HELM=path/to/helm uses that Helm.
set -euo pipefail
cd "$(dirname "$0")"
if command -v docker-compose >/dev/null 2>&1; then
  echo "docker-compose $(docker-compose version --short): config"
  docker-compose --project-directory compose -f compose/docker-compose.yaml --profile monitoring config -q
fi
cd check
go vet ./...
go test -count=1 ./...
