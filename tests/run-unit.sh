#!/usr/bin/env bash
# Runs every unit-test binary in BUILD/tests, shows its output and ends with
#   unit: N passed, N failed
# counting cmocka test cases. A binary that dies before it reports a test
# (crash, failed group setup, timeout) counts as one more failure.
set -u

build=${1:-build}
dir="$build/tests"
if [ ! -d "$dir" ]; then
    echo "run-unit: no folder '$dir' (build first)" >&2
    echo "unit: 0 passed, 1 failed"
    exit 1
fi

export CMOCKA_MESSAGE_OUTPUT=STDOUT
passed=0
failed=0
binaries=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for test in "$dir"/test_*; do
    [ -f "$test" ] && [ -x "$test" ] || continue
    binaries=$((binaries + 1))
    echo "== $(basename "$test")"
    timeout 300 "$test" >"$log" 2>&1
    rc=$?
    cat "$log"
    ran=$(grep -c '^\[ RUN      \]' "$log")
    ok=$(grep -c '^\[       OK \]' "$log")
    bad=$((ran - ok))
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
        echo "run-unit: $(basename "$test") exited with status $rc"
        bad=1
    fi
    passed=$((passed + ok))
    failed=$((failed + bad))
done

# the bench's quick JSON reading and request writing against the slow,
# obvious way (tools/bench): a wrong skim would miscount `make bench`
bench="$build/bin/conveyor-bench"
if [ -x "$bench" ]; then
    echo "== conveyor-bench --self-check"
    if timeout 60 "$bench" --self-check; then
        passed=$((passed + 1))
    else
        echo "run-unit: conveyor-bench --self-check failed"
        failed=$((failed + 1))
    fi
fi

# the bench's machine probe: syncs and wake-ups timed, figures in order
if [ -x "$bench" ]; then
    echo "== conveyor-bench --probe"
    probe_dir=$(mktemp -d)
    if (set -o pipefail
        timeout 60 "$bench" --probe "$probe_dir" --duration 0.5 |
            tee "$log") && python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
probe = json.loads(lines[-1])
assert probe["mode"] == "probe", probe
assert probe["samples"] >= 10, probe
for what in ("fdatasync", "wake_late"):
    q = [probe["%s_%s_ms" % (what, p)] for p in ("p50", "p99", "p999", "max")]
    assert 0 <= q[0] <= q[1] <= q[2] <= q[3] < 5000, (what, q)
' "$log" &&
        { "$bench" --probe "$probe_dir/missing" --duration 0.1 2>/dev/null
          [ $? -eq 1 ]; } # refused, not crashed
    then
        passed=$((passed + 1))
    else
        echo "run-unit: conveyor-bench --probe failed"
        failed=$((failed + 1))
    fi
    rm -rf "$probe_dir"
fi

if [ "$binaries" -eq 0 ]; then
    echo "run-unit: no test binaries in '$dir'" >&2
    failed=$((failed + 1))
fi
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
