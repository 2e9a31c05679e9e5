#!/usr/bin/env bash
# record.sh regenerates recorded/ from the real runtime: it installs the
# service's packages from package-lock.json (npm ci), runs it on loopback
# under the OpenTelemetry Node SDK (spans to the shop's OTLP/HTTP recorder)
# and @datadog/pprof's wall profiler (span_id labels), drives a bounded load
# one request at a time, stops the service (which writes its profile and
# flushes its spans), and writes a CycloneDX SBOM of the installed packages
# with npm's own npm sbom. See README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
LOAD_N=${LOAD_N:-400}
LOAD_RATE=${LOAD_RATE:-25}
PORT_BASE=${PORT_BASE:-18270} # service, +1 recorder
OUT=recorded

work=$(mktemp -d)
pids=()
cleanup() {
	local rc=$?
	if [ "$rc" != 0 ] && ls "$work"/*.log >/dev/null 2>&1; then
		echo "record: failed; the processes' logs end with:" >&2
		tail -n 20 "$work"/*.log >&2
	fi
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

wait_port() { # wait_port PORT waits until something listens on 127.0.0.1:PORT
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "record: nothing listens on 127.0.0.1:$1" >&2
	return 1
}

echo "== install"
npm ci --no-audit --no-fund --loglevel=error
(cd ../shop && $GO build -trimpath -o "$work/recorder" ./cmd/recorder)

rm -rf "$OUT"/traces.jsonl* "$OUT/profiles"
mkdir -p "$OUT/profiles/reviews" "$OUT/findings"
svc=127.0.0.1:$PORT_BASE recorder=127.0.0.1:$((PORT_BASE + 1))

echo "== start"
"$work/recorder" -listen "$recorder" -out "$work/traces.jsonl" 2>"$work/recorder.log" &
recorder_pid=$!
pids+=("$recorder_pid")
wait_port "${recorder##*:}"
REVIEWS_ADDR=$svc REVIEWS_PROFILE="$work/wall.pb.gz" OTEL_EXPORTER_OTLP_ENDPOINT=http://$recorder \
	node --require ./tracing.js server.js 2>"$work/reviews.log" &
reviews_pid=$!
pids+=("$reviews_pid")
wait_port "${svc##*:}"

echo "== load: $LOAD_N requests, one at a time, at most $LOAD_RATE/s"
node load.js "http://$svc" "$LOAD_N" "$LOAD_RATE"

echo "== stop"
kill -TERM "$reviews_pid"
wait "$reviews_pid"
kill -TERM "$recorder_pid"
wait "$recorder_pid"
cp "$work/wall.pb.gz" "$OUT/profiles/reviews/wall.pb.gz"
gzip -9n <"$work/traces.jsonl" >"$OUT/traces.jsonl.gz"

echo "== sbom"
# npm sbom lists the installed production packages (package-lock.json and
# node_modules); its serial number and timestamp change on every run.
npm sbom --sbom-format cyclonedx --omit dev >"$OUT/findings/reviews.cdx.json"

echo "== recorded"
ls -l "$OUT/traces.jsonl.gz" "$OUT/profiles/reviews/wall.pb.gz" "$OUT/findings/reviews.cdx.json"
