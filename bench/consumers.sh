#!/usr/bin/env bash
# Runs the real consumers of evident's VEX on the example shop, per service:
# Grype and Trivy scan each service's SBOM with a vulnerability database built
# offline from the Go OSV snapshot, once without and once with evident's
# OpenVEX, and the script records what each reported and suppressed in
# bench/consumers/recorded/. `go test ./internal/cli -run TestShopConsumers`
# then checks the recording against evident's verdicts (it runs in CI, where
# the tools are not built: see bench/consumers/README.md).
#
# Usage (from anywhere; about 15 minutes the first time, mostly building the
# tools, under a minute after that):
#
#   bench/consumers.sh
#
# Environment:
#   OSV_ZIP   the osv.dev Go snapshot (default ../shared/data/osv-go-2026-08-21.zip
#             beside the repository)
#   WORK      scratch directory (default: a new temporary one, removed at exit)
#   GRYPE, TRIVY, SYFT  the binaries (default: $(go env GOPATH)/bin/NAME,
#             installed with go install at the versions below when missing)
#   OUT       where the recordings go (default bench/consumers/recorded); the
#             check runs on them
set -euo pipefail

grype_version=v0.121.3
syft_version=v1.57.1 # the version grype v0.121.3 builds with
trivy_version=v0.74.0
services=(gateway catalog orders reporter)

root=$(cd "$(dirname "$0")/.." && pwd)
shop=$root/examples/shop
rec=$shop/recorded
osv_zip=${OSV_ZIP:-$root/../shared/data/osv-go-2026-08-21.zip}
gobin=$(go env GOPATH)/bin
grype=${GRYPE:-$gobin/grype}
trivy=${TRIVY:-$gobin/trivy}
syft=${SYFT:-$gobin/syft}
if [ -z "${WORK:-}" ]; then
	WORK=$(mktemp -d)
	trap 'rm -rf "$WORK"' EXIT
fi
out=${OUT:-$root/bench/consumers/recorded}
mkdir -p "$WORK" "$out"
log() { printf '== %s\n' "$*" >&2; }

# 1. The consumers, built from source (their release binaries cannot be
# downloaded here). Trivy needs encoding/json/v2.
[ -x "$grype" ] || { log "go install grype@$grype_version"; go install "github.com/anchore/grype/cmd/grype@$grype_version"; }
[ -x "$syft" ] || { log "go install syft@$syft_version"; go install "github.com/anchore/syft/cmd/syft@$syft_version"; }
[ -x "$trivy" ] || { log "go install trivy@$trivy_version"; GOEXPERIMENT=jsonv2 go install "github.com/aquasecurity/trivy/cmd/trivy@$trivy_version"; }

# 2. Their databases, built offline from the snapshot with their own builders
# (bench/consumers/grypedb, bench/consumers/trivydb).
export GRYPE_DB_CACHE_DIR=$WORK/grype-db GRYPE_DB_AUTO_UPDATE=false GRYPE_DB_VALIDATE_AGE=false \
	GRYPE_CHECK_FOR_APP_UPDATE=false
if [ ! -f "$WORK/grype-db/6/vulnerability.db" ]; then
	log "grype database from $osv_zip"
	(cd "$root/bench/consumers/grypedb" && go run . -zip "$osv_zip" -out "$WORK/grype-build" -built 2026-08-21)
	"$grype" db import "$WORK/grype-build/vulnerability.db"
fi
trivy_flags=(--cache-dir "$WORK/trivy-cache" --skip-db-update --skip-java-db-update --offline-scan --quiet)
if [ ! -f "$WORK/trivy-cache/db/trivy.db" ]; then
	log "trivy database from $osv_zip"
	(cd "$root/bench/consumers/trivydb" && go run . -zip "$osv_zip" -out "$WORK/trivy-cache/db")
fi

# 3. Each service as deployed: its binary, and an SBOM of it whose root names
# the service as its telemetry does (service.namespace/service.name, version
# service.version: pkg:generic/shop/SERVICE@1.0.0). syft writes that as the
# source of its JSON SBOM, from which Grype takes the product it matches VEX
# statements against (Grype reads no product from a CycloneDX SBOM); Trivy
# takes it from the CycloneDX root component's purl, which Trivy's own SBOM of
# a file leaves out, so it is set there.
log "build the services and their SBOMs"
(cd "$shop" && go build -trimpath -o "$WORK/bin/" "${services[@]/#/./cmd/}")
mkdir -p "$WORK/sbom"
product() { echo "pkg:generic/shop/$1@1.0.0"; }
for s in "${services[@]}"; do
	"$syft" scan "file:$WORK/bin/$s" --source-name "shop/$s" --source-version 1.0.0 -q \
		-o "syft-json=$WORK/sbom/$s.syft.json"
	"$trivy" rootfs "${trivy_flags[@]}" --format cyclonedx --output "$WORK/sbom/$s.trivy.cdx.json" "$WORK/bin/$s"
	jq --arg purl "$(product "$s")" --arg name "shop/$s" \
		'.metadata.component += {name: $name, version: "1.0.0", purl: $purl}' \
		"$WORK/sbom/$s.trivy.cdx.json" > "$WORK/sbom/$s.cdx.json"
done

# 4. evident's verdicts and VEX for the recording, with the shop's
# configuration: evident names each service's product itself
# (pkg:generic/shop/SERVICE, from its telemetry), which matches every version
# of the product the SBOMs name.
log "evident analyze"
go build -o "$WORK/evident" "$root/cmd/evident"
cfg=$shop/evident.yaml
for f in openvex cyclonedx json; do
	"$WORK/evident" --data "$WORK/evident-data" analyze --vulns "$rec/osv" --findings "$rec/findings" \
		--profiles "$rec/profiles" --traces "$rec/traces.jsonl" --config "$cfg" --format "$f" \
		-o "$WORK/evident.$f.json"
done
vex=$WORK/evident.openvex.json

# The strict CycloneDX validator (the CycloneDX JavaScript library's) on
# evident's CycloneDX.
log "strict CycloneDX validation"
if [ ! -d "$WORK/cdxval/node_modules/@cyclonedx" ]; then
	mkdir -p "$WORK/cdxval"
	(cd "$WORK/cdxval" && npm init -y >/dev/null && npm install --no-audit --no-fund --silent \
		@cyclonedx/cyclonedx-library@10.3.0 ajv@8 ajv-formats@3 ajv-formats-draft2019@1)
fi
cp "$root/bench/consumers/cdx-validate.mjs" "$WORK/cdxval/"
node "$WORK/cdxval/cdx-validate.mjs" "$WORK/evident.cyclonedx.json"

# 5. The consumers, without and with the VEX. Each recording lists what the
# tool found without it, what it still reported with it, and what it
# suppressed, by vulnerability id and package URL.
log "grype and trivy, per service"
grype_list='[.matches[]? | {id: .vulnerability.id, purl: .artifact.purl}] | unique'
trivy_list='[.Results[]?.Vulnerabilities[]? | {id: .VulnerabilityID, purl: .PkgIdentifier.PURL}] | unique'
for s in "${services[@]}"; do
	configured="" # the shop's configuration names no products
	g=$WORK/grype-$s
	"$grype" "sbom:$WORK/sbom/$s.syft.json" -o json --file "$g.plain.json" -q
	"$grype" "sbom:$WORK/sbom/$s.syft.json" -o json --file "$g.vex.json" -q --vex "$vex"
	jq -n --arg tool "grype $grype_version" --arg product "$(product "$s")" --arg configured "$configured" \
		--slurpfile plain "$g.plain.json" --slurpfile vex "$g.vex.json" '{
			tool: $tool, sbom: "syft-json", product: $product, configured: $configured,
			found: ($plain[0] | '"$grype_list"'),
			reported: ($vex[0] | '"$grype_list"'),
			suppressed: ([$vex[0].ignoredMatches[]? | {id: .vulnerability.id, purl: .artifact.purl,
				status: .appliedIgnoreRules[0]["vex-status"]}] | unique)}' > "$out/grype-$s.json"

	tv=$WORK/trivy-$s
	"$trivy" sbom "${trivy_flags[@]}" --format json --output "$tv.plain.json" "$WORK/sbom/$s.cdx.json"
	"$trivy" sbom "${trivy_flags[@]}" --format json --output "$tv.vex.json" --show-suppressed --vex "$vex" "$WORK/sbom/$s.cdx.json"
	jq -n --arg tool "trivy $trivy_version" --arg product "$(product "$s")" --arg configured "$configured" \
		--slurpfile plain "$tv.plain.json" --slurpfile vex "$tv.vex.json" '{
			tool: $tool, sbom: "cyclonedx", product: $product, configured: $configured,
			found: ($plain[0] | '"$trivy_list"'),
			reported: ($vex[0] | '"$trivy_list"'),
			suppressed: ([$vex[0].Results[]?.ExperimentalModifiedFindings[]? | {id: .Finding.VulnerabilityID,
				purl: .Finding.PkgIdentifier.PURL, status: .Status}] | unique)}' > "$out/trivy-$s.json"
done

# 6. The per-service table, and the check.
printf '\n%-9s %-6s %6s %9s %11s   %s\n' service tool found reported suppressed "evident: need attention / not_affected"
for s in "${services[@]}"; do
	want=$(jq -r --arg s "$s" '[.findings[] | select(.service == $s)] |
		"\(map(select(.vex.status != "not_affected")) | length) / \(map(select(.vex.status == "not_affected")) | length)"' \
		"$WORK/evident.json.json")
	for tool in grype trivy; do
		jq -r --arg s "$s" --arg t "$tool" --arg want "$want" \
			'"\($s|.+"         "|.[:9]) \($t|.+"      "|.[:6]) \(.found|length|tostring|("      "+.)[-6:]) \(.reported|length|tostring|("         "+.)[-9:]) \(.suppressed|length|tostring|("           "+.)[-11:])   \($want)"' \
			"$out/$tool-$s.json"
	done
done
echo
cd "$root"
EVIDENT_CONSUMERS_RECORDED=$out go test ./internal/cli -run 'TestShopConsumers' -count=1
