#!/usr/bin/env bash
# Runs the real consumers of evident's VEX on the example shop, per service:
# Grype scans each service's SBOM and its OCI image, Trivy its image (pulled
# by digest from a registry this script serves on 127.0.0.1), with a
# vulnerability database built offline from the Go OSV snapshot, once without
# and once with evident's OpenVEX, and the script records what each reported
# and suppressed in bench/consumers/recorded/. `go test ./internal/cli -run
# TestShopConsumers` then checks the recording against evident's verdicts (it
# runs in CI, where the tools are not built: see bench/consumers/README.md).
#
# Usage (from anywhere; about 15 minutes the first time, mostly building the
# tools, under 4 minutes after that):
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
	scratch=$WORK
	trap 'rm -rf "$scratch"' EXIT
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

# 3. Each service as deployed: its binary, an SBOM of it, and an OCI image of
# it in a registry.
# - The SBOM (syft's JSON, for Grype) names the service as its telemetry does
#   (service.namespace/service.name, version service.version:
#   pkg:generic/shop/SERVICE@1.0.0): Grype takes the product it matches VEX
#   statements against from the SBOM's source (it reads no product from a
#   CycloneDX SBOM).
# - The image (bench/consumers/images: one layer with the binary, pushed to a
#   registry that serves on 127.0.0.1 for the run) is what Trivy scans: Trivy
#   names the root of an image scan pkg:oci/NAME@DIGEST?arch=…&repository_url=…
#   only for an image pulled from a registry (an archive has no repo digest),
#   and names no product at all for an SBOM it is given (bench/consumers/README.md).
#   Grype scans the images too.
log "build the services, their SBOMs and their images"
(cd "$shop" && go build -trimpath -o "$WORK/bin/" "${services[@]/#/./cmd/}")
mkdir -p "$WORK/sbom"
product() { echo "pkg:generic/shop/$1@1.0.0"; }
for s in "${services[@]}"; do
	"$syft" scan "file:$WORK/bin/$s" --source-name "shop/$s" --source-version 1.0.0 -q \
		-o "syft-json=$WORK/sbom/$s.syft.json"
done
(cd "$root/bench/consumers/images" && go build -o "$WORK/images" .)
rm -f "$WORK/images.refs"
"$WORK/images" -bin "$WORK/bin" -refs "$WORK/images.refs" "${services[@]}" &
registry=$!
trap 'kill "$registry" 2>/dev/null || true; [ -z "${scratch:-}" ] || rm -rf "$scratch"' EXIT
for _ in $(seq 300); do
	[ -f "$WORK/images.refs" ] && break
	kill -0 "$registry" 2>/dev/null || { log "the image registry stopped"; exit 1; }
	sleep 0.2
done
[ -f "$WORK/images.refs" ] || { log "the images were not pushed in time"; exit 1; }
declare -A image_name image_digest
while read -r s n d; do image_name[$s]=$n image_digest[$s]=$d; done < "$WORK/images.refs"

# 4. evident's verdicts and VEX for the recording, with the shop's
# configuration (which names no products), twice: for the example as recorded
# (evident names each service's product pkg:generic/shop/SERVICE, from its
# telemetry, which matches every version of the product the SBOMs name), and
# for the example deployed as the images (each service's telemetry names its
# image, container.image.name and oci.manifest.digest, as the Collector's
# k8sattributes processor sets them, and evident names the product
# pkg:oci/SERVICE@DIGEST). TestShopConsumers does the same.
log "evident analyze"
go build -o "$WORK/evident" "$root/cmd/evident"
cfg=$shop/evident.yaml
jq -c --rawfile refs "$WORK/images.refs" '
	($refs | split("\n") | map(select(. != "") | split(" ") | {key: .[0], value: {name: .[1], digest: .[2]}})
		| from_entries) as $img |
	.resourceSpans |= map(
		(.resource.attributes | map(select(.key == "service.name"))[0].value.stringValue) as $s |
		if $img[$s] then .resource.attributes += [
			{key: "container.image.name", value: {stringValue: $img[$s].name}},
			{key: "oci.manifest.digest", value: {stringValue: $img[$s].digest}}] else . end)' \
	"$rec/traces.jsonl" > "$WORK/traces-images.jsonl"
for deployed in sbom image; do
	traces=$rec/traces.jsonl
	[ "$deployed" = image ] && traces=$WORK/traces-images.jsonl
	for f in openvex cyclonedx json; do
		"$WORK/evident" --data "$WORK/evident-data-$deployed" analyze --vulns "$rec/osv" --findings "$rec/findings" \
			--profiles "$rec/profiles" --traces "$traces" --config "$cfg" --format "$f" \
			-o "$WORK/evident-$deployed.$f.json"
	done
done

# The strict CycloneDX validator (the CycloneDX JavaScript library's) on
# evident's CycloneDX.
log "strict CycloneDX validation"
if [ ! -d "$WORK/cdxval/node_modules/@cyclonedx" ]; then
	mkdir -p "$WORK/cdxval"
	(cd "$WORK/cdxval" && npm init -y >/dev/null && npm install --no-audit --no-fund --silent \
		@cyclonedx/cyclonedx-library@10.3.0 ajv@8 ajv-formats@3 ajv-formats-draft2019@1)
fi
cp "$root/bench/consumers/cdx-validate.mjs" "$WORK/cdxval/"
for deployed in sbom image; do
	node "$WORK/cdxval/cdx-validate.mjs" "$WORK/evident-$deployed.cyclonedx.json"
done

# 5. The consumers, without and with the VEX. Each recording lists what the
# tool found without it, what it still reported with it, and what it
# suppressed, by vulnerability id and package URL: Grype on each service's
# SBOM and image, Trivy on each service's image.
log "grype and trivy, per service"
rm -f "$out"/*.json
export GRYPE_REGISTRY_INSECURE_USE_HTTP=true # the registry of the run serves plain HTTP on 127.0.0.1
grype_list='[.matches[]? | {id: .vulnerability.id, purl: .artifact.purl}] | unique'
grype_ignored='[.ignoredMatches[]? | {id: .vulnerability.id, purl: .artifact.purl,
	status: .appliedIgnoreRules[0]["vex-status"]}] | unique'
trivy_list='[.Results[]?.Vulnerabilities[]? | {id: .VulnerabilityID, purl: .PkgIdentifier.PURL}] | unique'
trivy_ignored='[.Results[]?.ExperimentalModifiedFindings[]? | {id: .Finding.VulnerabilityID,
	purl: .Finding.PkgIdentifier.PURL, status: .Status}] | unique'
# record FILE TOOL SERVICE SCANNED PRODUCT IMAGE PLAIN VEXED LIST IGNORED
record() {
	jq -n --arg tool "$2" --arg service "$3" --arg scanned "$4" --arg product "$5" --argjson image "$6" \
		--slurpfile plain "$7" --slurpfile vex "$8" '{
			tool: $tool, service: $service, scanned: $scanned} + (if $image then {image: $image} else {} end) + {
			product: $product, configured: "",
			found: ($plain[0] | '"$9"'),
			reported: ($vex[0] | '"$9"'),
			suppressed: ($vex[0] | '"${10}"')}' > "$1"
}
trivy_image=("${trivy_flags[@]}" --scanners vuln --image-src remote)
for s in "${services[@]}"; do
	ref=${image_name[$s]}@${image_digest[$s]}
	image=$(jq -nc --arg name "${image_name[$s]}" --arg digest "${image_digest[$s]}" '{name: $name, digest: $digest}')

	g=$WORK/grype-sbom-$s
	"$grype" "sbom:$WORK/sbom/$s.syft.json" -o json --file "$g.plain.json" -q
	"$grype" "sbom:$WORK/sbom/$s.syft.json" -o json --file "$g.vex.json" -q --vex "$WORK/evident-sbom.openvex.json"
	record "$out/grype-sbom-$s.json" "grype $grype_version" "$s" syft-json "$(product "$s")" null \
		"$g.plain.json" "$g.vex.json" "$grype_list" "$grype_ignored"

	# Grype's first product identifier for an image: pkg:oci/NAME@DIGEST.
	g=$WORK/grype-image-$s
	"$grype" "registry:$ref" -o json --file "$g.plain.json" -q
	"$grype" "registry:$ref" -o json --file "$g.vex.json" -q --vex "$WORK/evident-image.openvex.json"
	record "$out/grype-image-$s.json" "grype $grype_version" "$s" image "pkg:oci/$s@${image_digest[$s]}" "$image" \
		"$g.plain.json" "$g.vex.json" "$grype_list" "$grype_ignored"

	# Trivy's root component for the image, with the purl it matches
	# statements' products against.
	tv=$WORK/trivy-image-$s
	"$trivy" image "${trivy_image[@]}" --format cyclonedx --output "$tv.cdx.json" "$ref"
	"$trivy" image "${trivy_image[@]}" --format json --output "$tv.plain.json" "$ref"
	"$trivy" image "${trivy_image[@]}" --format json --output "$tv.vex.json" --show-suppressed \
		--vex "$WORK/evident-image.openvex.json" "$ref"
	record "$out/trivy-image-$s.json" "trivy $trivy_version" "$s" image "$(jq -r .metadata.component.purl "$tv.cdx.json")" \
		"$image" "$tv.plain.json" "$tv.vex.json" "$trivy_list" "$trivy_ignored"
done

# 6. The per-service table, and the check.
printf '\n%-9s %-12s %6s %9s %11s   %s\n' service tool found reported suppressed "evident: need attention / not_affected"
for s in "${services[@]}"; do
	for r in grype-sbom grype-image trivy-image; do
		want=$(jq -r --arg s "$s" '[.findings[] | select(.service == $s)] |
			"\(map(select(.vex.status != "not_affected")) | length) / \(map(select(.vex.status == "not_affected")) | length)"' \
			"$WORK/evident-${r#*-}.json.json")
		jq -r --arg s "$s" --arg t "$r" --arg want "$want" \
			'"\($s|.+"         "|.[:9]) \($t|.+"            "|.[:12]) \(.found|length|tostring|("      "+.)[-6:]) \(.reported|length|tostring|("         "+.)[-9:]) \(.suppressed|length|tostring|("           "+.)[-11:])   \($want)"' \
			"$out/$r-$s.json"
	done
done
echo
kill "$registry"
cd "$root"
EVIDENT_CONSUMERS_RECORDED=$out go test ./internal/cli -run 'TestShopConsumers' -count=1
