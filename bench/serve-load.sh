#!/usr/bin/env bash
# Load test of `evident serve` with telemetrygen, the OTel Collector's load
# generator: sustained spans per CPU-second with analysis on (write-ahead
# log in segment files, model, detections), alert latency from receipt, and RSS.
#
#   go install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@latest
#   bench/serve-load.sh [DURATION] [WORKERS] [BATCH]
#
# BATCH is the spans per export request (default 1000; an OTel Collector's
# batch processor sends up to 8192, telemetrygen's own default is 100). On
# a 2-core machine, EVIDENT_CPUS=0 LOAD_CPUS=1 pin evident and telemetrygen
# to one core each (taskset), so that the load can exceed what evident
# takes and the backpressure and memory bound show.
#
# With ATTACK=1 (the default) every span carries an SQL injection in
# url.query, so the exploit-payload detection fires on each one and the
# alert latency histogram fills: the worst case. ATTACK=0 sends clean spans.
#
# With SPANS=N the load runs until evident has accepted N spans (or
# DURATION ends, whichever is first), and the RSS of evident is read every
# second: a line per million spans accepted, then the RSS at 1 M and at
# the end and the growth between them (issue 11's target: flat within 10 %
# from 1 M to 10 M spans). For ten million spans on 2 cores, leave it
# unpinned and give it time: SPANS=10000000 bench/serve-load.sh 30m 4.
# With VIA_COLLECTOR=1, telemetrygen sends to an OpenTelemetry Collector
# (otlp receiver -> batch -> otlp exporter, built as
# bench/collector-vs-evident.sh builds its own, pinned with telemetrygen)
# that forwards to evident, as a Collector in front of evident does: its
# exporter gzips every request (its default), sends the batch processor's
# batches of up to 8,192 spans, up to 10 at a time (its sending queue's
# consumers), and retries what evident refuses. The gzip bodies take the
# Decompressor's whole-body path, which telemetrygen's own requests
# (uncompressed) never do.
#
# It refuses to start while a Go fuzzing worker may run on a core it
# loads (fuzzing_beside, bench/proc.sh); BESIDE_FUZZING=1 runs it anyway.
# Everything binds to 127.0.0.1 and stops by itself.
set -euo pipefail
duration=${1:-20s}
workers=${2:-2}
batch=${3:-1000}
pin() { if [ -n "${1:-}" ]; then echo taskset -c "$1"; fi; }
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/proc.sh"
want_arg DURATION "$duration" duration
want_arg WORKERS "$workers" count
want_arg BATCH "$batch" count
fuzzing_beside "${EVIDENT_CPUS:-}" "${LOAD_CPUS:-}"
tg=${TELEMETRYGEN:-$(go env GOPATH)/bin/telemetrygen}
work=$(mktemp -d)
colpid=
trap 'kill "$pid" $colpid 2>/dev/null || true; wait "$pid" $colpid 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/evident" "$root/cmd/evident"
endpoint=127.0.0.1:14317
if [ "${VIA_COLLECTOR:-0}" = 1 ]; then
	otelcol=$(otelcol_build otelcol-forward otlpexporter)
	otelcol_config "$work/otelcol.yaml" otlp 127.0.0.1:14317
	endpoint=127.0.0.1:24317
fi
$(pin "${EVIDENT_CPUS:-}") "$work/evident" serve --data "$work/data" --vulns "$root/examples/shop/recorded/osv" \
	--findings "$root/examples/shop/recorded/findings" --api 127.0.0.1:18080 \
	--otlp-grpc 127.0.0.1:14317 --otlp-http 127.0.0.1:14318 --pyroscope 127.0.0.1:14040 \
	>"$work/serve.out" 2>"$work/serve.err" &
pid=$!
for _ in $(seq 50); do curl -sf 127.0.0.1:18080/readyz >/dev/null && break; sleep 0.2; done
if [ -n "${otelcol:-}" ]; then
	$(pin "${LOAD_CPUS:-}") "$otelcol" --config "$work/otelcol.yaml" >"$work/otelcol.log" 2>&1 &
	colpid=$!
	for _ in $(seq 50); do grep -qs 'Everything is ready' "$work/otelcol.log" && break; sleep 0.2; done
fi
before=$(cpu)
attack=()
if [ "${ATTACK:-1}" = 1 ]; then attack=(--telemetry-attributes 'url.query="id=1%27%20OR%201=1--"'); fi
accepted() { curl -s 127.0.0.1:18080/metrics | awk '/^evident_receiver_accepted_spans_total/ {s += $2} END {print s + 0}'; }
$(pin "${LOAD_CPUS:-}") "$tg" traces --otlp-insecure --otlp-endpoint "$endpoint" --rate 0 --workers "$workers" \
	--batch-size "$batch" --child-spans 9 --duration "$duration" --service load "${attack[@]}" >"$work/telemetrygen.log" 2>&1 &
tgpid=$!
if [ -n "${SPANS:-}" ]; then
	next=1000000 rss1m=
	while kill -0 "$tgpid" 2>/dev/null; do
		sleep 1
		n=$(accepted) r=$(rss)
		if [ "$n" -ge "$next" ]; then
			# What of the RSS is Go's: its heap in use, and all it took
			# from the OS; the rest is not Go's heap (SQLite's page cache,
			# which modernc's C allocator maps itself, and the binary).
			printf 'spans %10d  RSS %5.0f MiB  %s\n' "$n" "$r" "$(curl -s 127.0.0.1:18080/metrics | awk '/^go_memstats_heap_inuse_bytes / {h = $2} /^go_memstats_sys_bytes / {s = $2}
				END {printf "Go heap in use %5.1f MiB of %5.1f MiB from the OS", h / 1048576, s / 1048576}')"
			if [ -z "$rss1m" ]; then rss1m=$r; fi
			next=$((n / 1000000 * 1000000 + 1000000))
		fi
		if [ "$n" -ge "$SPANS" ]; then kill "$tgpid" 2>/dev/null || true; fi
	done
	r=$(rss)
	if [ -n "$rss1m" ]; then
		awk -v a="$rss1m" -v b="$r" -v n="$(accepted)" 'BEGIN {printf "RSS at 1M spans %.0f MiB, after %d spans %.0f MiB: growth %+.1f %%\n", a, n, b, 100 * (b - a) / a}'
	fi
fi
wait "$tgpid" || true
if [ -n "$colpid" ]; then
	# The Collector sends what it batched and queued as it stops.
	colmetrics=$(curl -s 127.0.0.1:28888/metrics)
	kill -TERM "$colpid"
	wait "$colpid" || true
	colpid=
fi
after=$(cpu)
metrics=$(curl -s 127.0.0.1:18080/metrics)
spans=$(echo "$metrics" | awk '/^evident_receiver_accepted_spans_total/ {s += $2} END {print s}')
refused=$(echo "$metrics" | awk '/^evident_receiver_refused_requests_total/ {s += $2} END {print s + 0}')
echo "$metrics" | awk -v spans="$spans" -v refused="$refused" -v cpu="$(awk -v a="$after" -v b="$before" 'BEGIN {print a - b}')" \
	-v rss="$(rss)" '
	/^evident_alert_latency_seconds_bucket\{kind="exploit_payload"/ {
		match($0, /le="[^"]+"/); le = substr($0, RSTART + 4, RLENGTH - 5); n++; les[n] = le; cnt[n] = $2 }
	END {
		total = cnt[n]
		for (i = 1; i <= n; i++) { if (!p50 && cnt[i] >= total * 0.5) p50 = les[i]; if (!p99 && cnt[i] >= total * 0.99) p99 = les[i] }
		printf "spans accepted      %d\n", spans
		printf "requests refused    %d (backpressure)\n", refused
		printf "evident CPU seconds %.1f\n", cpu
		printf "spans per CPU-second %.0f\n", spans / cpu
		if (total > 0) printf "alert latency p50 <= %ss, p99 <= %ss (histogram buckets, %d alerts)\n", p50, p99, total
		else print "alert latency       no alerts"
		printf "RSS                 %.0f MiB\n", rss
	}'
if [ -n "${colmetrics:-}" ]; then
	# Counted before the Collector stopped: what it sent as it stopped is
	# in evident's count above, not here.
	echo "$colmetrics" | awk '
		/^otelcol_receiver_accepted_spans/ {received += $NF}
		/^otelcol_exporter_sent_spans/ {sent += $NF}
		/^otelcol_exporter_send_failed_spans/ {failed += $NF}
		/^otelcol_exporter_enqueue_failed_spans/ {dropped += $NF}
		END {printf "Collector in front  received %d, sent %d, failed to send %d, dropped (queue full) %d, before it stopped\n", received, sent, failed, dropped}'
fi
