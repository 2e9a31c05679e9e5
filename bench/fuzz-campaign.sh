#!/usr/bin/env bash
# Fuzzing campaign: runs every FuzzXxx target of the module, one after the
# other, and writes a table of what each did: elapsed time, executions,
# executions per second, new interesting inputs, corpus size, and whether
# it found a failing input (the test's own testdata/fuzz/FuzzXxx/<hash>).
#
#   bench/fuzz-campaign.sh [REGEXP]
#
# REGEXP (default: every target) is matched against "package-dir FuzzName",
# e.g. 'internal/(model|engine) ' or 'FuzzGRPC'. Settings, from the
# environment:
#
#   FUZZTIME          -fuzztime of each target: a duration (1h) or a count
#                     of executions (10000000x); default 10s
#   FUZZMAXTIME       with a count as FUZZTIME, the most wall-clock time a
#                     target runs (a sleep(1) duration: 3600, 1h), build
#                     included: the target is then interrupted (SIGINT to
#                     its fuzzing coordinator, which Go takes as the end of
#                     a run without failure) and its figures kept
#   FUZZMINIMIZETIME  -fuzzminimizetime: how long a new interesting input is
#                     minimized; default 100x. Go's default (60s) stalls the
#                     slow targets (gRPC round trips, Coraza compiles, the
#                     engine's restart), which then spend most of their time
#                     minimizing instead of fuzzing
#   FUZZPARALLEL      fuzzing workers per target (-parallel); default: cores
#   FUZZNICE          nice level of the runs; default 5. Where the kernel
#                     schedules by session (autogroup, on in most Linux
#                     distributions), nice orders the campaign only against
#                     its own session's processes: started in a session of
#                     its own (setsid, another login, tmux) it gets as much
#                     CPU as any other session, whatever its nice level.
#                     Started as a session's leader (setsid), the campaign
#                     gives its session the nice level too; otherwise it
#                     says that it cannot
#   FUZZOUT           directory for the logs and summary.md; default a new
#                     temporary directory
#
# The campaign this project asks for before a release: every target
# FUZZTIME=10000000x or 1h, whichever comes first, with no failure:
# FUZZTIME=10000000x FUZZMAXTIME=1h.
# A failing input is left where go test writes it: commit it as a
# regression input together with the fix. The exit status is 1 when any
# target failed. docs/fuzzing.md has the targets and the last figures.
set -uo pipefail
match=${1:-.}
fuzztime=${FUZZTIME:-10s}
maxtime=${FUZZMAXTIME:-}
minimize=${FUZZMINIMIZETIME:-100x}
parallel=${FUZZPARALLEL:-$(nproc)}
nicelevel=${FUZZNICE:-5}
out=${FUZZOUT:-$(mktemp -d)}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p "$out"
summary="$out/summary.md"

# seconds converts a Go duration as the fuzzer prints it (1h2m3s, 45s) to
# seconds.
seconds() {
	awk -v d="$1" 'BEGIN {
		s = 0
		while (match(d, /^[0-9.]+[hms]/)) {
			n = substr(d, 1, RLENGTH - 1) + 0; u = substr(d, RLENGTH, 1)
			s += (u == "h" ? 3600 : u == "m" ? 60 : 1) * n
			d = substr(d, RLENGTH + 1)
		}
		print s
	}'
}

# With autogroup on, a session leader's nice level goes to its session's
# group; a campaign run inside another session leaves that session as it is.
session=
if [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ]; then
	if [ "$(ps -o sid= -p $$ | tr -d ' ')" = "$$" ] && echo "$nicelevel" >/proc/self/autogroup 2>/dev/null; then
		session=", session group nice $nicelevel"
	else
		session=", session group not reniced"
		echo "fuzz-campaign: the kernel schedules by session (autogroup): nice $nicelevel orders the campaign only against this session's processes; run it with setsid for a session of its own at nice $nicelevel" >&2
	fi
fi

{
	echo "fuzztime $fuzztime${maxtime:+ or $maxtime}, fuzzminimizetime $minimize, $parallel workers, nice $nicelevel$session, $(go version | cut -d' ' -f3), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), at $(git rev-parse --short HEAD 2>/dev/null || echo "an unknown commit")$(git diff --quiet HEAD 2>/dev/null || echo " with changes")"
	echo
	echo "| package | target | elapsed | execs | execs/s | new interesting | corpus | result |"
	echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"
} >"$summary"
failed=0
for dir in $(go list -f '{{.Dir}}' ./...); do
	rel=${dir#"$root"/}
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | cut -c6- | sort); do
		echo "$rel $target" | grep -Eq -- "$match" || continue
		log="$out/$(echo "$rel" | tr / _).$target.log"
		echo "== $rel $target" >&2
		nice -n "$nicelevel" go test -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" \
			-fuzzminimizetime "$minimize" -parallel "$parallel" "./$rel" >"$log" 2>&1 &
		gotest=$!
		watcher=
		if [ -n "$maxtime" ]; then
			# The test binary is go test's child; its workers are its own.
			(sleep "$maxtime" && pkill -INT -P "$gotest") 2>/dev/null &
			watcher=$!
		fi
		wait "$gotest"
		rc=$?
		if [ -n "$watcher" ]; then
			pkill -P "$watcher" sleep 2>/dev/null
			wait "$watcher" 2>/dev/null
		fi
		last=$(grep '^fuzz: elapsed: .*execs: ' "$log" | tail -1)
		elapsed=$(echo "$last" | sed -n 's/^fuzz: elapsed: \([^,]*\),.*/\1/p')
		execs=$(echo "$last" | sed -n 's/.*execs: \([0-9]*\) .*/\1/p')
		interesting=$(echo "$last" | sed -n 's/.*new interesting: \([0-9]*\) (total: \([0-9]*\)).*/\1/p')
		corpus=$(echo "$last" | sed -n 's/.*(total: \([0-9]*\)).*/\1/p')
		rate=$(awk -v n="${execs:-0}" -v s="$(seconds "${elapsed:-0s}")" 'BEGIN { printf "%d", (s > 0 ? n / s : 0) }')
		result=ok
		if [ $rc -ne 0 ]; then
			failed=1
			input=$(sed -n 's/.*Failing input written to \(testdata\/fuzz\/[^ ]*\).*/\1/p' "$log" | head -1)
			result="FAIL (see $log)"
			if [ -n "$input" ]; then result="FAIL $rel/$input"; fi
			if [ -n "$input" ] && grep -q 'fuzzing process hung or terminated unexpectedly' "$log"; then
				# The worker died, not necessarily of its input: a worker
				# starved for 10 s panics (docs/fuzzing.md). Say whether
				# the input fails alone.
				if go test -run "^$target/${input##*/}\$" -count 100 "./$rel" >>"$log" 2>&1; then
					result="$result (the worker ended; the input passes alone, 100 times: see docs/fuzzing.md on starved workers)"
				else
					result="$result (fails alone too)"
				fi
			fi
		fi
		echo "| $rel | $target | ${elapsed:--} | ${execs:--} | $rate | ${interesting:--} | ${corpus:--} | $result |" | tee -a "$summary" >&2
	done
done
echo "summary: $summary" >&2
cat "$summary"
exit $failed
