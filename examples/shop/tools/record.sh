#!/usr/bin/env bash
# record.sh regenerates recorded/: it builds the shop, runs every service on
# loopback with tracing to a local OTLP/HTTP recorder and CPU profiling to
# files, drives a bounded load through the gateway, stops everything (which
# flushes spans and profiles), then runs govulncheck on each service.
# Run it through `make record` (see README.md); the environment below
# overrides the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
GOVULNCHECK=${GOVULNCHECK:-govulncheck}
GOVULNDB=${GOVULNDB:-https://vuln.go.dev}
LOAD_N=${LOAD_N:-240}
LOAD_C=${LOAD_C:-2}
LOAD_RATE=${LOAD_RATE:-12}
REPORT_EVERY=${REPORT_EVERY:-500ms}
FINDINGS=${FINDINGS:-1} # 0 keeps recorded/findings as it is (telemetry only)
PORT_BASE=${PORT_BASE:-18080} # gateway, +1 catalog, +2 orders, +3 payments, +4 recorder
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
	rm -rf "$work" "$OUT"/findings/*.tmp
}
trap cleanup EXIT

# wait_port waits until something listens on 127.0.0.1:$1.
wait_port() {
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "record: nothing listens on 127.0.0.1:$1" >&2
	return 1
}

echo "== build"
$GO build -trimpath -o "$work/bin/" ./cmd/...

rm -rf "$OUT/traces.jsonl" "$OUT/profiles"
mkdir -p "$OUT/findings"
for s in gateway catalog orders reporter; do mkdir -p "$OUT/profiles/$s"; done

gw=127.0.0.1:$PORT_BASE catalog=127.0.0.1:$((PORT_BASE + 1)) orders=127.0.0.1:$((PORT_BASE + 2))
payments=127.0.0.1:$((PORT_BASE + 3)) recorder=127.0.0.1:$((PORT_BASE + 4))

echo "== start"
"$work/bin/recorder" -listen "$recorder" -out "$OUT/traces.jsonl" 2>"$work/recorder.log" &
recorder_pid=$!
"$work/bin/payments" -listen "$payments" -ca-out "$work/payments-ca.pem" 2>"$work/payments.log" &
payments_pid=$!
pids+=("$recorder_pid" "$payments_pid")
wait_port "${recorder##*:}"
wait_port "${payments##*:}"

export OTEL_EXPORTER_OTLP_ENDPOINT=http://$recorder
export OTEL_BSP_SCHEDULE_DELAY=1000
svc() { # svc NAME ENV... starts one service with its CPU profile file
	local name=$1
	shift
	env SHOP_CPU_PROFILE="$OUT/profiles/$name/cpu.pb.gz" "$@" "$work/bin/$name" 2>"$work/$name.log" &
	pids+=("$!")
	eval "${name}_pid=$!"
}
svc catalog SHOP_ADDR="$catalog"
svc orders SHOP_ADDR="$orders" SHOP_DB="$work/shop.db" \
	SHOP_PAYMENTS_URL=https://payments.example.com SHOP_PAYMENTS_DIAL="$payments" SHOP_PAYMENTS_CA="$work/payments-ca.pem"
wait_port "${catalog##*:}"
wait_port "${orders##*:}" # listens only once the database is seeded
svc gateway SHOP_ADDR="$gw" SHOP_CATALOG_URL="http://$catalog" SHOP_ORDERS_URL="http://$orders"
svc reporter SHOP_DB="$work/shop.db" SHOP_REPORT_EVERY="$REPORT_EVERY"

echo "== load"
"$work/bin/load" -gateway "http://$gw" -n "$LOAD_N" -c "$LOAD_C" -rate "$LOAD_RATE"

echo "== stop"
# Services first, so that their last spans reach the recorder still running.
kill -TERM "$gateway_pid" "$catalog_pid" "$orders_pid" "$reporter_pid"
status=0
for pid in "$gateway_pid" "$catalog_pid" "$orders_pid" "$reporter_pid"; do wait "$pid" || status=1; done
kill -TERM "$payments_pid" "$recorder_pid"
wait "$payments_pid" "$recorder_pid" || status=1
pids=()
cat "$work"/*.log | grep -E 'level=(WARN|ERROR)|recorded' >&2 || true
if [ "$status" != 0 ]; then
	echo "record: a process exited with an error" >&2
	exit 1
fi

if [ "$FINDINGS" != 0 ]; then
	echo "== govulncheck ($GOVULNDB)"
	for s in gateway catalog orders reporter; do
		"$GOVULNCHECK" -db "$GOVULNDB" -json "./cmd/$s" | $GO run ./tools/trimfindings >"$OUT/findings/$s.json.tmp"
		mv "$OUT/findings/$s.json.tmp" "$OUT/findings/$s.json"
	done
fi
du -sh "$OUT"/traces.jsonl "$OUT"/profiles/* "$OUT"/findings/*
