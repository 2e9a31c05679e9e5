# What the load scripts read of the server they measure, the process whose
# id is in $pid, their checks of their arguments and that they load no
# core a fuzzing campaign runs on, and the Collector they build. Sourced by bench/serve-load.sh
# and bench/collector-vs-evident.sh.

# otel_version is the OpenTelemetry Collector release both scripts build.
otel_version=v0.165.0

# want_arg NAME VALUE KIND: exits with a message naming NAME unless VALUE
# is of KIND: duration (Go's, as telemetrygen reads it: 20s, 1m30s),
# count (a whole number above 0) or number (a whole number, 0 or more).
# A load script checks its arguments before it builds or starts anything.
want_arg() {
	local want
	case $3 in
	duration)
		[[ $2 =~ ^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$ ]] && return
		want='a Go duration such as 20s or 1m30s' ;;
	count)
		[[ $2 =~ ^0*[1-9][0-9]*$ ]] && return
		want='a whole number above 0' ;;
	number)
		[[ $2 =~ ^[0-9]+$ ]] && return
		want='a whole number, 0 or more' ;;
	esac
	echo "$(basename "$0"): $1 \"$2\": want $want" >&2
	exit 2
}

# otelcol_config FILE EXPORTER [ENDPOINT]: writes to FILE the
# configuration of a Collector otelcol_build made: its otlp receiver on
# 127.0.0.1:24317 (gRPC), the batch processor, and the exporter EXPORTER
# (nop, or otlp sending to ENDPOINT without TLS, gzip being its default),
# with the Collector's own metrics on 127.0.0.1:28888.
otelcol_config() {
	local exporter="  $2:"
	if [ "$2" = otlp ]; then
		exporter="$exporter
    endpoint: $3
    tls:
      insecure: true"
	fi
	cat >"$1" <<EOF
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:24317
processors:
  batch:
exporters:
$exporter
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [$2]
  telemetry:
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: 28888
EOF
}

# otelcol_build NAME EXPORTER: prints the path of a Collector NAME of
# otel_version with the otlp receiver, the batch processor and the
# collector's EXPORTER module (nopexporter, otlpexporter), built the first
# time into $CACHE (default ~/.cache/evident-bench) by
# go.opentelemetry.io/collector/cmd/builder, which needs only the Go module
# proxy. The builder's output goes to stderr.
otelcol_build() {
	local cache=${CACHE:-$HOME/.cache/evident-bench}
	local dir=$cache/$1-$otel_version
	if [ ! -x "$dir/$1" ]; then
		mkdir -p "$dir"
		GOBIN=$cache/bin go install "go.opentelemetry.io/collector/cmd/builder@$otel_version" >&2
		cat >"$dir/manifest.yaml" <<EOF
dist:
  name: $1
  description: otlp receiver, batch processor, $2
  output_path: $dir
receivers:
  - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver $otel_version
processors:
  - gomod: go.opentelemetry.io/collector/processor/batchprocessor $otel_version
exporters:
  - gomod: go.opentelemetry.io/collector/exporter/$2 $otel_version
EOF
		# The builder leaves an empty otelcol-distribution* directory in
		# TMPDIR: it gets one of its own, removed after.
		local tmp status=0
		tmp=$(mktemp -d)
		TMPDIR=$tmp "$cache/bin/builder" --config "$dir/manifest.yaml" >&2 || status=$?
		rm -rf "$tmp"
		[ "$status" = 0 ] || return "$status"
	fi
	echo "$dir/$1"
}

# cpu prints the CPU time of the server so far, in seconds: the sum over
# its threads of the time they ran, in nanoseconds (the first field of
# /proc/PID/task/TID/schedstat). The user and system times of
# /proc/PID/stat count in clock ticks (10 ms): a 10 s run takes 0.2 to 0.4
# CPU-seconds, so a tick is 3 to 5 % of it. No Go server ends a thread it
# started (only a goroutine locked to its thread does that), so no
# thread's time is lost.
cpu() { cat "/proc/$pid/task/"*/schedstat | awk '{ns += $1} END {printf "%.6f\n", ns / 1e9}'; }

# waited prints the time the server's threads have spent so far ready to
# run but waiting for a core, in seconds (the second field of
# /proc/PID/task/TID/schedstat): another process on the server's core, or
# more of its own threads ready than it has cores.
waited() { cat "/proc/$pid/task/"*/schedstat | awk '{ns += $2} END {printf "%.6f\n", ns / 1e9}'; }

# rss prints the server's resident set size in MiB.
rss() { awk '/VmRSS/ {print $2 / 1024}' "/proc/$pid/status"; }

# fuzzing_beside CPUS...: refuses (exit 1) to load the cores CPUS (taskset
# lists such as 0 or 0-1,3; an empty one means every core) while a Go
# fuzzing worker (a test binary run with -test.fuzzworker) may run on one
# of them. A worker starved for more than 10 s panics (Go's internal/fuzz,
# "deadlocked!") and its campaign ends as "hung or terminated
# unexpectedly" with an input that passes alone: an hour lost, and a
# benchmark measured beside a campaign (docs/fuzzing.md). BESIDE_FUZZING=1
# runs anyway.
fuzzing_beside() {
	if [ "${BESIDE_FUZZING:-0}" = 1 ]; then return 0; fi
	local want='' c p allowed hit=''
	for c in "$@"; do
		if [ -z "$c" ]; then want=all; break; fi
		want="$want $(cpulist "$c")"
	done
	for p in $(pgrep -f -- '-test.fuzzworker' || true); do
		allowed=$(awk '/^Cpus_allowed_list/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
		for c in $(cpulist "$allowed"); do
			if [ "$want" = all ] || [[ " $want " == *" $c "* ]]; then
				hit="$hit $p (cores $allowed)"
				break
			fi
		done
	done
	if [ -n "$hit" ]; then
		echo "$(basename "$0"): Go fuzzing workers run on the cores this load takes:$hit. Starved for more than 10 s, a worker ends its campaign as \"hung\" (docs/fuzzing.md), and the figures measure the campaign too. Wait for the campaign, pin this load elsewhere, or set BESIDE_FUZZING=1 to run anyway." >&2
		exit 1
	fi
}

# cpulist LIST prints the cores of a taskset-style list ("0-2,5" gives
# "0 1 2 5").
cpulist() {
	echo "$1" | awk -F, '{
		for (i = 1; i <= NF; i++) {
			n = split($i, r, "-")
			for (c = r[1]; c <= r[n]; c++) printf "%d ", c
		}
	}'
}
