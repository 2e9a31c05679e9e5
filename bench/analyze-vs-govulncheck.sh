#!/usr/bin/env bash
# Times `evident analyze` on the example shop's recorded telemetry beside
# `govulncheck -scan symbol` on the same app, the static analysis whose
# findings it ranks. Usage (from the repository root):
#
#   bench/analyze-vs-govulncheck.sh [RUNS]
#
# GOVULNDB defaults to https://vuln.go.dev; without network, point it at a
# vuln.go.dev layout, e.g. one built from the osv.dev Go snapshot:
#   (cd examples/shop && go run ./tools/mkvulndb -zip ../../../shared/data/osv-go-*.zip -out /tmp/vdb)
#   GOVULNDB=file:///tmp/vdb bench/analyze-vs-govulncheck.sh
set -euo pipefail
runs=${1:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
db=${GOVULNDB:-https://vuln.go.dev}
govulncheck=${GOVULNCHECK:-$(go env GOPATH)/bin/govulncheck}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/evident" "$root/cmd/evident"
rec="$root/examples/shop/recorded"

# median prints the median of the numbers on stdin.
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# timed runs a command RUNS times and prints its median wall time in seconds.
timed() {
	for _ in $(seq "$runs"); do
		start=$(date +%s.%N)
		"$@" >/dev/null
		end=$(date +%s.%N)
		awk -v s="$start" -v e="$end" 'BEGIN {printf "%.3f\n", e - s}'
	done | median
}

analyze=$(timed "$bin/evident" analyze --vulns "$rec/osv" --findings "$rec/findings" \
	--profiles "$rec/profiles" --traces "$rec/traces.jsonl" --config "$root/examples/shop/evident.yaml" --format json)
static=$(cd "$root/examples/shop" && timed "$govulncheck" -scan symbol -db "$db" -json ./...)
printf '%-40s %8s s (median of %d)\n' "evident analyze (recorded shop)" "$analyze" "$runs"
printf '%-40s %8s s (median of %d)\n' "govulncheck -scan symbol (shop)" "$static" "$runs"
