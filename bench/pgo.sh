#!/usr/bin/env bash
# Profile-guided optimization: writes cmd/evident/default.pgo, the CPU
# profile `go build` uses for the evident binary (-pgo=auto, the default).
#
#   bench/pgo.sh [BENCHTIME]
#
# The profile is of the serve path's own benchmarks, each a real listener
# to the store: OTLP/gRPC and OTLP/HTTP with clean and attack spans
# (internal/ingest/otlp BenchmarkServe*) and Pyroscope pushes
# (internal/ingest/pyroscope BenchmarkServeIngest), merged; BENCHTIME
# (default 1500x) is each benchmark's -benchtime. Run it again when the hot
# paths change much: a stale profile only optimizes less, it never breaks
# a build. docs/architecture.md has what it gained when it was written.
set -euo pipefail
benchtime=${1:-1500x}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go test -run '^$' -bench 'BenchmarkServe(GRPC|HTTP)' -benchtime "$benchtime" \
	-cpuprofile "$work/otlp.prof" -o "$work/otlp.test" ./internal/ingest/otlp
go test -run '^$' -bench 'BenchmarkServeIngest' -benchtime "$benchtime" \
	-cpuprofile "$work/pyroscope.prof" -o "$work/pyroscope.test" ./internal/ingest/pyroscope
go tool pprof -proto "$work/otlp.prof" "$work/pyroscope.prof" >cmd/evident/default.pgo
echo "wrote cmd/evident/default.pgo ($(wc -c <cmd/evident/default.pgo) bytes)" >&2
