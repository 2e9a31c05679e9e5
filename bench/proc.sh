# What the load scripts read of the server they measure, the process whose
# id is in $pid. Sourced by bench/serve-load.sh and
# bench/collector-vs-evident.sh.

# cpu prints the CPU time of the server so far, in seconds: the sum over
# its threads of the time they ran, in nanoseconds (the first field of
# /proc/PID/task/TID/schedstat). The user and system times of
# /proc/PID/stat count in clock ticks (10 ms): a 10 s run takes 0.2 to 0.4
# CPU-seconds, so a tick is 3 to 5 % of it. No Go server ends a thread it
# started (only a goroutine locked to its thread does that), so no
# thread's time is lost.
cpu() { cat "/proc/$pid/task/"*/schedstat | awk '{ns += $1} END {printf "%.6f\n", ns / 1e9}'; }

# rss prints the server's resident set size in MiB.
rss() { awk '/VmRSS/ {print $2 / 1024}' "/proc/$pid/status"; }
