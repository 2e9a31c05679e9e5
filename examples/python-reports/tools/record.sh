#!/usr/bin/env bash
# record.sh regenerates recorded/ from the real runtime: it runs the reports
# service with Debian's python3 and packages on loopback, its spans exported
# to the shop's OTLP/HTTP recorder and its CPU time sampled by austin, drives
# a bounded load one request at a time, stops the service (which flushes
# its spans; austin then writes the recording's duration), and writes a
# CycloneDX SBOM with syft of the dist-info of the packages the service
# imports. See README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
SYFT=${SYFT:-$($GO env GOPATH)/bin/syft}
PYTHON=${PYTHON:-/usr/bin/python3} # Debian's, which sees /usr/lib/python3/dist-packages
AUSTIN=${AUSTIN:-austin}            # 2 or later: see tools/austin-debian13.sh
AUSTIN_INTERVAL=${AUSTIN_INTERVAL:-1000} # microseconds
LOAD_N=${LOAD_N:-600}
LOAD_RATE=${LOAD_RATE:-40}
PORT_BASE=${PORT_BASE:-18360} # service, +1 recorder
DIST=/usr/lib/python3/dist-packages
OUT=recorded

for d in Jinja2-3.1.2 PyYAML-6.0 requests-2.28.1 urllib3-1.26.12; do
	if ! ls -d "$DIST/$d".*-info >/dev/null 2>&1; then
		echo "record: $DIST/$d.*-info missing: apt-get install python3-jinja2 python3-yaml python3-requests python3-urllib3" >&2
		exit 1
	fi
done

# Debian 12's austin 1.0.1 cannot read Python 3.11's frames.
austin_version=$($AUSTIN -V 2>&1 | awk '{print $NF; exit}')
case "$austin_version" in
1.*|0.*|"")
	echo "record: austin $austin_version cannot read Python 3.11: set AUSTIN to austin 2 or later," >&2
	echo "record: on Debian 12: AUSTIN=\"\$(tools/austin-debian13.sh /tmp/austin)\" tools/record.sh" >&2
	exit 1;;
esac

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

(cd ../shop && $GO build -trimpath -o "$work/recorder" ./cmd/recorder)
rm -rf "$OUT"/traces.jsonl* "$OUT/profiles"
mkdir -p "$OUT/profiles/reports" "$OUT/findings"
svc=127.0.0.1:$PORT_BASE recorder=127.0.0.1:$((PORT_BASE + 1))

echo "== start"
"$work/recorder" -listen "$recorder" -out "$work/traces.jsonl" 2>"$work/recorder.log" &
recorder_pid=$!
pids+=("$recorder_pid")
wait_port "${recorder##*:}"
# austin starts the service as its child (no ptrace permission needed, as
# attaching to a running process would) and samples its CPU time
# (--sleepless) every AUSTIN_INTERVAL microseconds until it exits.
REPORTS_ADDR=$svc OTEL_EXPORTER_OTLP_ENDPOINT=http://$recorder \
	$AUSTIN --sleepless --interval "$AUSTIN_INTERVAL" --output "$work/cpu.austin" \
	"$PYTHON" app.py >"$work/reports.log" 2>&1 &
austin_pid=$!
pids+=("$austin_pid")
wait_port "${svc##*:}"
reports_pid=$(ps -o pid= --ppid "$austin_pid" | tr -d ' ')

echo "== load: $LOAD_N requests, one at a time, at most $LOAD_RATE/s"
"$PYTHON" load.py "http://$svc" "$LOAD_N" "$LOAD_RATE"

echo "== stop"
kill -TERM "$reports_pid" # austin writes the duration as it exits
wait "$austin_pid"
kill -TERM "$recorder_pid"
wait "$recorder_pid"
# gzip keeps the file's modification time, the end of the recording, which
# analyze takes as the end of its window (docs/architecture.md).
gzip -9 "$work/cpu.austin"
mv "$work/cpu.austin.gz" "$OUT/profiles/reports/cpu.austin.gz"
gzip -9n <"$work/traces.jsonl" >"$OUT/traces.jsonl.gz"

echo "== sbom"
# The distributions the service imports, as Debian installed them: syft
# reads their dist-info/egg-info metadata.
mkdir -p "$work/site"
for d in Jinja2-3.1.2 PyYAML-6.0 requests-2.28.1 urllib3-1.26.12 MarkupSafe-2.1.2; do cp -r "$DIST/$d".*-info "$work/site/"; done
"$SYFT" scan "dir:$work/site" -o cyclonedx-json="$OUT/findings/reports.cdx.json" -q

echo "== recorded"
ls -l "$OUT/traces.jsonl.gz" "$OUT/profiles/reports/cpu.austin.gz" "$OUT/findings/reports.cdx.json"
