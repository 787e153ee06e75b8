#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for a while:
#
#     bash tests/run-fuzz.sh BUILD SECONDS
#
# Each target in BUILD/fuzz starts from its seeds (tests/fuzz/seeds/NAME)
# plus what earlier runs found (BUILD/fuzz-corpus/NAME), under ASan and
# UBSan, for SECONDS. A crash, leak, sanitizer report or timeout fails the
# target; its reproducer is kept in BUILD/fuzz-crashes and named. Ends with
# `N passed, N failed`.
set -uo pipefail

build=${1:-build-fuzz}
seconds=${2:-5}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1

passed=0
failed=0
mkdir -p "$build/fuzz-corpus" "$build/fuzz-crashes"
for bin in "$build"/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    corpus=$build/fuzz-corpus/$name
    seeds=tests/fuzz/seeds/$name
    mkdir -p "$corpus"
    log=$(mktemp)
    dirs=("$corpus")
    [ -d "$seeds" ] && dirs+=("$seeds")
    # -rss_limit_mb: GMime and libphonenumber keep caches; 2 GiB is far
    # from this machine's limit and still catches a runaway allocation
    if UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
       "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
              -print_final_stats=1 \
              -artifact_prefix="$build/fuzz-crashes/$name-" \
              "${dirs[@]}" >"$log" 2>&1; then
        runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" |
               grep -Eo '[0-9]+$')
        echo "fuzz: $name: ok, ${runs:-?} inputs in ${seconds} s"
        passed=$((passed + 1))
    else
        echo "fuzz: $name: FAILED; the report:"
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -n 20
        failed=$((failed + 1))
    fi
    rm -f "$log"
done
if [ $((passed + failed)) -eq 0 ]; then
    echo "fuzz: no targets in '$build/fuzz'" >&2
    failed=1
fi
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
