#!/usr/bin/env bash
# The follow-up scheduler's timers: 100,000 pending, the share fired within
# 1 s of due (target 99.9%). `make bench` runs this after the conveyor runs.
#
#   tools/bench/timers.sh BUILD
#
# See tools/bench/timers.py for what it does and the environment it reads
# (BENCH_TIMERS, BENCH_TIMERS_SPREAD, BENCH_TIMERS_LEAD). The last line of
# output is JSON: timers, timers_fired, timers_within_1s, timers_p50_ms,
# timers_p99_ms, timers_max_ms. Exit status 0 when every timer fired.
set -euo pipefail
exec python3 "$(dirname "$0")/timers.py" "${1:-build}"
