#!/usr/bin/env bash
# record.sh regenerates recorded/ from the real runtime: it compiles the
# inventory service against Debian's jars, runs it on loopback under the
# JDK's flight recorder (CPU samples every millisecond, tools/cpu.jfc) with
# its spans exported to the shop's OTLP/HTTP recorder, drives a bounded load,
# stops the service (the JVM writes the recording as it exits), and writes a
# CycloneDX SBOM of the deployed jars with syft. See README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
SYFT=${SYFT:-$($GO env GOPATH)/bin/syft}
LOAD_N=${LOAD_N:-600}
LOAD_C=${LOAD_C:-2}
LOAD_RATE=${LOAD_RATE:-30}
PORT_BASE=${PORT_BASE:-18190} # service, +1 recorder
JARS=${JARS:-/usr/share/java} # where Debian installs the jars
OUT=recorded

for jar in snakeyaml-1.33 guava-31.1-jre commons-compress-1.22; do
	if [ ! -e "$JARS/$jar.jar" ]; then
		echo "record: $JARS/$jar.jar missing: apt-get install libyaml-snake-java libguava-java libcommons-compress-java openjdk-17-jdk-headless" >&2
		exit 1
	fi
done

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

echo "== build"
# The deployed layout: the service's jar and its libraries in lib/, the
# libraries under their Maven file names (Debian's versioned links).
app=$work/app
mkdir -p "$app/lib" "$work/classes" "$work/load"
for jar in snakeyaml-1.33 guava-31.1-jre commons-compress-1.22; do cp -L "$JARS/$jar.jar" "$app/lib/"; done
cp_libs=$app/lib/snakeyaml-1.33.jar:$app/lib/guava-31.1-jre.jar:$app/lib/commons-compress-1.22.jar
javac -Xlint:all,-path --release 17 -cp "$cp_libs" -d "$work/classes" $(find src -name '*.java')
jar --create --file "$app/inventory.jar" -C "$work/classes" .
javac -Xlint:all --release 17 -d "$work/load" $(find load -name '*.java')
(cd ../shop && $GO build -trimpath -o "$work/recorder" ./cmd/recorder)

rm -rf "$OUT"/traces.jsonl* "$OUT/profiles"
mkdir -p "$OUT/profiles/inventory" "$OUT/findings"
svc=127.0.0.1:$PORT_BASE recorder=127.0.0.1:$((PORT_BASE + 1))

echo "== start"
"$work/recorder" -listen "$recorder" -out "$work/traces.jsonl" 2>"$work/recorder.log" &
recorder_pid=$!
pids+=("$recorder_pid")
wait_port "${recorder##*:}"
INVENTORY_ADDR=$svc OTEL_EXPORTER_OTLP_ENDPOINT=http://$recorder \
	java -XX:StartFlightRecording=filename="$work/cpu.jfr",settings="$PWD/tools/cpu.jfc" \
	-cp "$app/inventory.jar:$cp_libs" com.example.inventory.Main 2>"$work/inventory.log" &
inventory_pid=$!
pids+=("$inventory_pid")
wait_port "${svc##*:}"

echo "== load: $LOAD_N requests, $LOAD_C at a time, at most $LOAD_RATE/s"
java -cp "$work/load" com.example.load.Load "http://$svc" "$LOAD_N" "$LOAD_C" "$LOAD_RATE"

echo "== stop"
kill -TERM "$inventory_pid"
wait "$inventory_pid" || true # a JVM stopped by SIGTERM exits 143
kill -TERM "$recorder_pid"
wait "$recorder_pid"
# Both compressed: evident reads gzipped recordings and trace files as they
# are, and the Pyroscope Java agent sends its JFR gzipped too.
gzip -9n <"$work/cpu.jfr" >"$OUT/profiles/inventory/cpu.jfr.gz"
gzip -9n <"$work/traces.jsonl" >"$OUT/traces.jsonl.gz"

echo "== sbom"
# syft reads each jar's META-INF/maven/*/pom.properties. The SBOM's
# serial number and timestamp change on every run; everything else is the
# jars'.
"$SYFT" scan "dir:$app" -o cyclonedx-json="$OUT/findings/inventory.cdx.json" -q

echo "== recorded"
ls -l "$OUT/traces.jsonl.gz" "$OUT/profiles/inventory/cpu.jfr.gz" "$OUT/findings/inventory.cdx.json"
