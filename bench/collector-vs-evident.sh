#!/usr/bin/env bash
# Side by side: the OpenTelemetry Collector (otlp receiver -> batch -> nop
# exporter, built with the Collector Builder at a pinned version) and
# `evident serve` (write-ahead log with full sync, model, every
# detection on) under the same telemetrygen load over OTLP/gRPC.
#
#   go install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@latest
#   bench/collector-vs-evident.sh [DURATION] [WORKERS] [BATCH] [ROUNDS]
#
# WORKERS (default 4) telemetrygen workers each send as fast as they can,
# or RATE spans a second each (the environment; 0, the default, is no
# limit). Many more workers than that make telemetrygen's span generators
# take its core: its SDK queue drops what its exporter cannot send, the
# exporter itself waits for CPU, and both servers idle (with 100 workers,
# 3,000 to 7,000 spans reached either server in 20 s).
#
# One telemetrygen is one client: its workers make spans, but its SDK's
# one batch span processor exports one request at a time, so the servers
# never see two requests of it at once. CLIENTS (default 1) runs that many
# telemetrygen processes side by side, each with WORKERS workers, for
# concurrent requests (CLIENTS=10 for the issue's 10 concurrent clients).
# Clients started together at the same RATE stay in step: each exports
# when its batch fills, so all of them send within a few milliseconds of
# each other, every time, and the last request of each such burst waits
# for the CPU the nine before it take. STAGGER (a sleep(1) duration, e.g.
# 0.1) starts each client that long after the one before, as clients
# that did not start together send: concurrent, each on its own phase.
#
# Pinned to one core, telemetrygen runs with GOMAXPROCS=1 (Go's default
# from its CPU affinity) and makes only 7,000 to 9,000 spans a second with
# 4 workers: the servers then idle most of the time, and the run weighs
# what each costs per request and between requests. LOAD_GOMAXPROCS=4
# lets it make 25,000 to 30,000 spans a second on the same core, a load
# at which what each costs per span weighs most.
#
# Each server is pinned to core SERVER_CPU (default 0) and telemetrygen to
# LOAD_CPU (default 1) with taskset; the two servers run one after the
# other, alternating, ROUNDS times (default 3). For each run it prints
# spans received, spans per CPU-second of the server process (all its
# threads' time on a CPU, in nanoseconds, from schedstat), the ack
# latency p50/p99 of its OTLP/gRPC calls (upper bounds of the server's own
# duration histogram buckets: evident_receiver_request_duration_seconds,
# the Collector's rpc server duration), the share of those calls
# acknowledged within 5 ms (in-5ms-%: exact, where p99-ms is only the
# bound of the bucket the p99 falls in, as both histograms have a bucket
# bound at 5 ms; the p99 is at most 5 ms when it is 99 or more), RSS at the
# end, what it refused
# (the Collector: spans; evident: requests refused before their spans
# were counted, by admission or for lack of a request slot), and how long
# its threads waited, ready, for a core in all (waited-ms, from
# schedstat): mostly other work on its core, and what a p99 measured on a
# shared machine owes to it (compare it with the CPU time, spans over
# spans/cpu-s), and for evident the p99 of its group commits to the log
# (commit-p99, evident_store_commit_duration_seconds: the write of the
# log's segment and the disk's sync, which an acknowledgement waits for; the disk's own
# p99 of a commit's write and sync, without evident, is what
# `go run ./bench/syncprobe -dir DIR` prints, DIR on the same disk); then the
# ratio evident / Collector of the medians. With
# ATTACK=1 (the default) every span carries an SQL injection in
# url.query, the worst case for evident's detections; ATTACK=0 sends
# clean spans.
#
# Each run first sends WARMUP (default 2s; 0 or 0s for none) of the same
# load, unmeasured: what a server does once (evident's first commit to a
# new log took 122-305 ms in one run) would otherwise be the p99 of a
# short run. Spans, CPU time and
# latencies are the differences of what the server reports before and
# after the measured load.
#
# EVIDENT names an evident binary to run instead of building this tree's
# (to compare two builds: EVIDENT=/tmp/a ... then EVIDENT=/tmp/b ...).
#
# It refuses to start while a Go fuzzing worker may run on a core it
# loads (fuzzing_beside, bench/proc.sh); BESIDE_FUZZING=1 runs it anyway.
#
# The Collector is built once into $CACHE (default ~/.cache/evident-bench)
# by go.opentelemetry.io/collector/cmd/builder, which needs only the Go
# module proxy. Everything binds to 127.0.0.1 and stops by itself.
set -euo pipefail
duration=${1:-20s}
workers=${2:-4}
batch=${3:-1000}
rounds=${4:-3}
warmup=${WARMUP:-2s}
server_cpu=${SERVER_CPU:-0}
load_cpu=${LOAD_CPU:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/proc.sh"
want_arg DURATION "$duration" duration
want_arg WORKERS "$workers" count
want_arg BATCH "$batch" count
want_arg ROUNDS "$rounds" count
case $warmup in 0) ;; *) want_arg WARMUP "$warmup" duration ;; esac
want_arg CLIENTS "${CLIENTS:-1}" count
want_arg RATE "${RATE:-0}" number
fuzzing_beside "$server_cpu" "$load_cpu"
tg=${TELEMETRYGEN:-$(go env GOPATH)/bin/telemetrygen}
work=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT

# The Collector, built once per version.
otelcol=$(otelcol_build otelcol-bench nopexporter)
otelcol_config "$work/otelcol.yaml" nop
evident=${EVIDENT:-$work/evident}
if [ -z "${EVIDENT:-}" ]; then go build -o "$evident" "$root/cmd/evident"; fi

attack=()
if [ "${ATTACK:-1}" = 1 ]; then attack=(--telemetry-attributes 'url.query="id=1%27%20OR%201=1--"'); fi

# quantiles NAME_REGEX SCALE BEFORE AFTER: p50 and p99 (upper bucket
# bounds, times SCALE to milliseconds) of the histogram whose bucket lines
# match, summed over its series, between the metrics in the files BEFORE
# and AFTER, and the percentage of its observations in the bucket bounded
# at 5 ms (n/a when it has no such bound or no observation).
quantiles() {
	awk -v re="$1" -v scale="$2" '
	$0 ~ re {
		match($0, /le="[^"]+"/); le = substr($0, RSTART + 4, RLENGTH - 5)
		if (!(le in cnt)) { n++; les[n] = le }
		cnt[le] += (FILENAME == ARGV[1] ? -1 : 1) * $NF }
	END {
		if (n == 0) { print "n/a n/a n/a"; exit }
		total = cnt["+Inf"]
		in5 = "n/a"
		for (i = 1; i <= n; i++) {
			c = cnt[les[i]]
			if (p50 == "" && c >= total * 0.5) p50 = les[i]
			if (p99 == "" && c >= total * 0.99) p99 = les[i]
			if (les[i] != "+Inf" && les[i] * scale > 4.999 && les[i] * scale < 5.001 && total > 0) in5 = sprintf("%.1f", 100 * c / total)
		}
		print ms(p50), ms(p99), in5 }
	function ms(v) { return v == "+Inf" ? "inf" : v * scale }' "$3" "$4"
}

# counted NAME_REGEX BEFORE AFTER: the sum of the matching counters in the
# metrics in AFTER less that in BEFORE.
counted() {
	awk -v re="$1" '$0 ~ re {s += (FILENAME == ARGV[1] ? -1 : 1) * $NF} END {print s + 0}' "$2" "$3"
}

# load DURATION: runs CLIENTS telemetrygen processes against $endpoint for
# DURATION and waits for them.
load() {
	local c loads=()
	for c in $(seq "${CLIENTS:-1}"); do
		GOMAXPROCS=${LOAD_GOMAXPROCS:-} taskset -c "$load_cpu" "$tg" traces --otlp-insecure --otlp-endpoint "$endpoint" --rate "${RATE:-0}" --workers "$workers" \
			--batch-size "$batch" --child-spans 9 --duration "$1" --service load "${attack[@]}" \
			>"$work/telemetrygen.$c.log" 2>&1 &
		loads+=($!)
		if [ -n "${STAGGER:-}" ]; then sleep "$STAGGER"; fi
	done
	wait "${loads[@]}" || true
	sleep 1 # the last calls and the Collector's batch
}

# run NAME: starts the server, loads it, prints one line of results.
run() {
	local name=$1 endpoint metrics_url accepted_re refused_re lat_re scale
	case $name in
	collector)
		taskset -c "$server_cpu" "$otelcol" --config "$work/otelcol.yaml" >"$work/$name.out" 2>&1 &
		pid=$!
		endpoint=127.0.0.1:24317 metrics_url=127.0.0.1:28888/metrics
		accepted_re='^otelcol_receiver_accepted_spans'
		refused_re='^otelcol_receiver_refused_spans'
		lat_re='^rpc_server_(call_)?duration[a-z_]*_bucket.*TraceService'
		;;
	evident)
		rm -rf "$work/data"
		taskset -c "$server_cpu" "$evident" serve --data "$work/data" --vulns "$root/examples/shop/recorded/osv" \
			--findings "$root/examples/shop/recorded/findings" --api 127.0.0.1:18080 \
			--otlp-grpc 127.0.0.1:14317 --otlp-http 127.0.0.1:14318 --pyroscope 127.0.0.1:14040 \
			>"$work/$name.out" 2>&1 &
		pid=$!
		endpoint=127.0.0.1:14317 metrics_url=127.0.0.1:18080/metrics
		accepted_re='^evident_receiver_accepted_spans_total'
		# Requests refused before their spans were counted: admission,
		# request slots.
		refused_re='^evident_receiver_refused_requests_total'
		lat_re='^evident_receiver_request_duration_seconds_bucket.*signal="traces".*transport="grpc"'
		;;
	esac
	for _ in $(seq 100); do curl -sf "$metrics_url" >/dev/null && break; sleep 0.2; done
	local before after wbefore wafter spans refused lat
	case $warmup in
	0 | 0s) ;;
	*) load "$warmup" ;;
	esac
	curl -s "$metrics_url" >"$work/before.metrics"
	before=$(cpu) wbefore=$(waited)
	load "$duration"
	after=$(cpu) wafter=$(waited)
	curl -s "$metrics_url" >"$work/after.metrics"
	spans=$(counted "$accepted_re" "$work/before.metrics" "$work/after.metrics")
	refused=$(counted "$refused_re" "$work/before.metrics" "$work/after.metrics")
	# The Collector's rpc histogram is in milliseconds or seconds by its
	# name; evident's in seconds.
	scale=1000
	if grep -Eq '^rpc_server_(call_)?duration_milliseconds' "$work/after.metrics"; then scale=1; fi
	# p50, p99 and the share within 5 ms: three columns.
	lat=$(quantiles "$lat_re" "$scale" "$work/before.metrics" "$work/after.metrics")
	# evident's group commits: how much of an acknowledgement's p99 the
	# log's commit and sync are (the histograms share their bounds).
	commit=-
	if [ "$name" = evident ]; then
		read -r _ commit _ <<<"$(quantiles '^evident_store_commit_duration_seconds_bucket' 1000 "$work/before.metrics" "$work/after.metrics")"
	fi
	printf '%-9s %12d %14.0f %9s %9s %9s %8.0f %8d %9.0f %10s\n' "$name" "$spans" \
		"$(awk -v s="$spans" -v a="$after" -v b="$before" 'BEGIN {print (a > b) ? s / (a - b) : 0}')" \
		$lat "$(rss)" "$refused" "$(awk -v a="$wafter" -v b="$wbefore" 'BEGIN {print (a - b) * 1000}')" "$commit" | tee -a "$work/results"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
}

echo "load: ${CLIENTS:-1} telemetrygen client(s)${STAGGER:+ started ${STAGGER}s apart}, $workers workers each, $batch spans a request, $duration a run after $warmup unmeasured, ATTACK=${ATTACK:-1}; server on core $server_cpu, load on core $load_cpu (GOMAXPROCS ${LOAD_GOMAXPROCS:-default}); $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-9s %12s %14s %9s %9s %9s %8s %8s %9s %10s\n' server spans spans/cpu-s p50-ms p99-ms in-5ms-% rss-MiB refused waited-ms commit-p99
for _ in $(seq "$rounds"); do
	run collector
	run evident
done
awk '
	function median(a, n,   i, j, t) {
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
	$1 == "collector" { cs[++nc] = $2; cc[nc] = $3 }
	$1 == "evident" { es[++ne] = $2; ec[ne] = $3 }
	END {
		s = median(cs, nc); c = median(cc, nc); t = median(es, ne); u = median(ec, ne)
		printf "ratio evident/collector (medians): spans received %.2f, spans per CPU-second %.2f\n", (s ? t / s : 0), (c ? u / c : 0) }' "$work/results"
