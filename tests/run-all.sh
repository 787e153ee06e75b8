#!/usr/bin/env bash
# Runs every Conveyor test suite against one build and sums them up:
#
#     bash tests/run-all.sh BUILD
#
# unit (tests/run-unit.sh), deploy checks (tests/check-deploy.sh),
# end-to-end (tests/e2e/run.py) and, when FUZZ_BUILD names a fuzz build,
# the fuzz targets for FUZZ_SECONDS each (tests/run-fuzz.sh). Each suite's own `N passed, N failed` line
# is counted; a suite that prints none counts as one test, passed or failed
# by its exit code. The last line is `N passed, N failed` (CI reads it);
# the exit code is non-zero when anything failed.
set -uo pipefail

build=${1:-build}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
python=${PYTHON:-python3}

total_passed=0
total_failed=0
summary=()

# run_suite NAME COMMAND...: runs the suite, shows its output as it goes,
# adds its counts to the totals.
run_suite() {
    local name=$1
    shift
    local log
    log=$(mktemp)
    echo "=== $name: $*"
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local counts passed failed
    counts=$(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    rm -f "$log"
    if [ -n "$counts" ]; then
        passed=${counts%% passed*}
        failed=${counts##*passed, }
        failed=${failed%% failed*}
        if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
            echo "$name: exited with $rc although no test failed"
            failed=1
        fi
    elif [ "$rc" -eq 0 ]; then
        passed=1
        failed=0
    else
        echo "$name: exited with $rc"
        passed=0
        failed=1
    fi
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    summary+=("$name: $passed passed, $failed failed")
}

if [ -f tests/run-unit.sh ]; then
    run_suite unit bash tests/run-unit.sh "$build"
else
    echo "unit: tests/run-unit.sh is missing"
    summary+=("unit: missing")
    total_failed=$((total_failed + 1))
fi

if [ -f tests/check-deploy.sh ]; then
    run_suite deploy bash tests/check-deploy.sh
else
    echo "deploy: tests/check-deploy.sh is missing"
    summary+=("deploy: missing")
    total_failed=$((total_failed + 1))
fi

run_suite e2e "$python" tests/e2e/run.py --build "$build"

# the parsers under libFuzzer for a few seconds each (make fuzz: longer)
if [ -n "${FUZZ_BUILD:-}" ]; then
    run_suite fuzz bash tests/run-fuzz.sh "$FUZZ_BUILD" "${FUZZ_SECONDS:-5}"
fi

echo "=== summary"
for line in "${summary[@]}"; do
    echo "  $line"
done
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
