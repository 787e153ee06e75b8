#!/usr/bin/env bash
# Throughput and latency of the whole conveyor: `make bench` runs this.
#
#   tools/bench/bench.sh BUILD
#
# Starts every process from BUILD/bin on free ports with its data in a
# temporary folder, creates sales staff whose webhook is the bench's sink,
# then runs conveyor-bench three times: a warm-up, a fixed offered rate
# (BENCH_RATE leads/s for BENCH_DURATION s) and a saturation run (closed
# loop for BENCH_SATURATE s), then stops the conveyor and imports a
# generated call list of BENCH_IMPORT_ROWS rows (default 1,000,000) into
# intake alone (tools/bench/import.sh; BENCH_IMPORT_ROWS=0 skips it), and
# fires 100,000 follow-up timers with the scheduler alone, printing the
# share fired within 1 s of due (tools/bench/timers.sh; BENCH_TIMERS=0
# skips it).
# Between the warm-up and the fixed rate, with the conveyor idle, it
# probes the machine for BENCH_PROBE seconds (default 5, 0 skips): how long
# fdatasync of a 4 KiB block takes in the data folder and how late a 1 ms
# sleep wakes (conveyor-bench --probe). A lead's way holds about five of
# each in a row, so their tail is a floor under the conveyor's; the final
# line carries them as "machine".
# After the fixed-rate run, tools/bench/hops.py prints how long each hop
# took (an event made -> applied by the next stage), stage by stage, and
# each leg of a lead's way from intake to the webhook.
# Prints each run's report, and last one JSON line: the fixed-rate figures
# plus `saturation_leads_per_s` and `import_rows_per_s`. Everything it
# started is stopped on the way out, also on failure; the logs are kept
# (and named) when something went wrong.
#
# CONVEYOR_BENCH_VERIFY=1 makes conveyor-bench read every reply and
# notification both its quick way and with jansson, and print any
# difference (`conveyor-bench --self-check` does the same on samples; the
# unit tests run it).
#
# Exit status: 0 when every lead of the fixed-rate run was notified, 1
# otherwise or when the conveyor could not be started.
set -euo pipefail

BUILD=${1:-build}
RATE=${BENCH_RATE:-2000}
DURATION=${BENCH_DURATION:-20}
SATURATE=${BENCH_SATURATE:-15}
WARMUP_RATE=${BENCH_WARMUP_RATE:-500}
WARMUP=${BENCH_WARMUP:-5}
STAFF=${BENCH_STAFF:-5}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
SAT_CONNECTIONS=${BENCH_SAT_CONNECTIONS:-64}
# Saturation is closed over the whole conveyor, not just intake: at most
# this many accepted leads may wait for their notification, so the run
# measures what the conveyor sustains instead of how fast intake alone
# can fill its outbox.
MAX_PENDING=${BENCH_MAX_PENDING:-2000}
# Seconds each run waits for its last notifications.
WAIT=${BENCH_WAIT:-30}

SERVICES=(broker intake scoring routing proposal-generator
          followup-scheduler account-retention notifier console)

bin=$BUILD/bin
for exe in "${SERVICES[@]}" conveyor-bench; do
    if [ ! -x "$bin/$exe" ]; then
        echo "bench: '$bin/$exe' is missing; build it first" >&2
        exit 1
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/conveyor-bench.XXXXXX")
mkdir -p "$tmp/data" "$tmp/logs"
pids=()
names=()
ok=0        # 1: remove the temporary folder on the way out
reported=0  # 1: the failure was already explained

stop_all() {
    local i pid deadline
    # Newest first, so the broker goes last.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[$i]}" 2>/dev/null || true
    done
    deadline=$((SECONDS + 10))
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "bench: process $pid did not stop; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}

finish() {
    stop_all
    if [ "$ok" = 1 ]; then
        rm -rf "$tmp"
    elif [ "$reported" = 0 ]; then
        echo "bench: logs kept in '$tmp/logs'" >&2
    fi
}
trap finish EXIT
trap 'exit 130' INT TERM

# Free ports, distinct, outside the range outgoing connections use.
read -r -a ports <<<"$(python3 "$(dirname "$0")/free_ports.py" 11)"

key=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
admin=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
sink_port=${ports[10]}

unset CONVEYOR_CONFIG CONVEYOR_CLOCK_FILE
export CONVEYOR_DATA_DIR=$tmp/data
export CONVEYOR_BROKER_BIND=tcp://127.0.0.1:${ports[0]}
export CONVEYOR_BROKER=tcp://127.0.0.1:${ports[0]}
export CONVEYOR_INTAKE_ADDR=127.0.0.1:${ports[1]}
export CONVEYOR_CONSOLE_ADDR=127.0.0.1:${ports[2]}
export CONVEYOR_BROKER_ADMIN_ADDR=127.0.0.1:${ports[3]}
export CONVEYOR_SCORING_ADMIN_ADDR=127.0.0.1:${ports[4]}
export CONVEYOR_ROUTING_ADMIN_ADDR=127.0.0.1:${ports[5]}
export CONVEYOR_PROPOSAL_GENERATOR_ADMIN_ADDR=127.0.0.1:${ports[6]}
export CONVEYOR_FOLLOWUP_SCHEDULER_ADMIN_ADDR=127.0.0.1:${ports[7]}
export CONVEYOR_ACCOUNT_RETENTION_ADMIN_ADDR=127.0.0.1:${ports[8]}
export CONVEYOR_NOTIFIER_ADMIN_ADDR=127.0.0.1:${ports[9]}
export CONVEYOR_ADMIN_TOKEN=$admin
export CONVEYOR_INTAKE_KEYS=bench:$key
export CONVEYOR_DEMO=0
# The bench is one source posting thousands of leads a second: no limit.
export CONVEYOR_INTAKE_RATE=0
# ... on any day of the year: a calendar without public holidays
printf 'weekend: [sat, sun]\nholidays: []\nworkdays: []\n' >"$tmp/calendar.yaml"
export CONVEYOR_CALENDAR_FILE=$tmp/calendar.yaml
# A log line per lead would measure the terminal, not the conveyor.
export CONVEYOR_LOG_LEVEL=${CONVEYOR_LOG_LEVEL:-warn}

health_addr() {
    case "$1" in
        intake) echo "$CONVEYOR_INTAKE_ADDR" ;;
        console) echo "$CONVEYOR_CONSOLE_ADDR" ;;
        *)
            local var
            var=CONVEYOR_$(echo "$1" | tr 'a-z-' 'A-Z_')_ADMIN_ADDR
            echo "${!var}"
            ;;
    esac
}

# Waits (bounded) for GET /healthz of service $1 (process $2) to say 200.
wait_healthy() {
    local addr deadline
    addr=$(health_addr "$1")
    deadline=$((SECONDS + 20))
    # not listening yet is the usual answer at first: no message for it
    until curl -fs -o /dev/null --max-time 1 "http://$addr/healthz"; do
        if ! kill -0 "$2" 2>/dev/null; then
            echo "bench: '$1' exited during start-up:" >&2
            tail -n 20 "$tmp/logs/$1.log" >&2
            return 1
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "bench: '$1' not healthy on '$addr' after 20 s" >&2
            tail -n 20 "$tmp/logs/$1.log" >&2
            return 1
        fi
        sleep 0.1
    done
}

start() {
    "$bin/$1" >"$tmp/logs/$1.log" 2>&1 &
    pids+=($!)
    names+=("$1")
}

echo "bench: starting the conveyor from '$bin' in '$tmp'"
start broker
wait_healthy broker "${pids[0]}"
for svc in "${SERVICES[@]:1}"; do
    start "$svc"
done
for i in "${!names[@]}"; do
    wait_healthy "${names[$i]}" "${pids[$i]}"
done

pid_args=()
for i in "${!names[@]}"; do
    pid_args+=(--pid "${names[$i]}=${pids[$i]}")
done

echo "bench: creating $STAFF sales staff notified at 127.0.0.1:$sink_port"
# capacity_per_day 0: no daily limit, the runs route tens of thousands.
staff_format='{"id":"bench-sales-%d","name":"Bench Sales %d","role":"sales",'
staff_format+='"tier":2,"team":"bench","capacity_per_day":0,"weight":1,'
staff_format+='"active":true,'
# on shift whenever the bench runs (routing honours working hours)
staff_format+='"working_hours":{"mon":"00:00-24:00","tue":"00:00-24:00",'
staff_format+='"wed":"00:00-24:00","thu":"00:00-24:00","fri":"00:00-24:00",'
staff_format+='"sat":"00:00-24:00","sun":"00:00-24:00"},'
staff_format+='"notify":{"webhook_url":"http://127.0.0.1:%d/hook"}}'
for ((n = 1; n <= STAFF; n++)); do
    # shellcheck disable=SC2059
    body=$(printf "$staff_format" "$n" "$n" "$sink_port")
    if ! curl -fsS -o /dev/null --max-time 10 -X POST \
            -H "Authorization: Bearer $admin" \
            -H 'Content-Type: application/json' \
            --data "$body" "http://$CONVEYOR_CONSOLE_ADDR/v1/staff"; then
        echo "bench: cannot create staff member 'bench-sales-$n'" >&2
        exit 1
    fi
done
# Routing learns of staff through StaffUpdated events; give them a moment.
sleep 1

common=(--intake "$CONVEYOR_INTAKE_ADDR" --key "$key" --wait "$WAIT"
        --sink-port "$sink_port" "${pid_args[@]}")

# Runs conveyor-bench with the given arguments, its output both shown and
# kept in $tmp/$1.out. Status 0 or 2 (finished, figures printed) is fine
# here; the caller decides what they mean.
run() {
    local name=$1 rc=0
    shift
    "$bin/conveyor-bench" "${common[@]}" "$@" | tee "$tmp/$name.out" ||
        rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then
        echo "bench: the $name run failed (status $rc)" >&2
        exit 1
    fi
    return "$rc"
}

run warmup --label warm-up --tag 1 --rate "$WARMUP_RATE" \
    --duration "$WARMUP" --connections "$CONNECTIONS" || true

# BENCH_PROFILE=SERVICE: one fixed-rate run while `perf` samples that
# service with call graphs, then where its time went (inclusive shares of
# its own samples), instead of the usual runs. Compare "cpu ms per notified
# lead" of the service before and after a change, on the same machine.
if [ -n "${BENCH_PROFILE:-}" ]; then
    target=""
    for i in "${!names[@]}"; do
        [ "${names[$i]}" = "$BENCH_PROFILE" ] && target=${pids[$i]}
    done
    if [ -z "$target" ]; then
        echo "bench: BENCH_PROFILE='$BENCH_PROFILE' is not a service" >&2
        exit 1
    fi
    perf record --call-graph dwarf,16384 -F 499 -p "$target" \
        -o "$tmp/perf.data" >"$tmp/perf.log" 2>&1 &
    perf_pid=$!
    run profile --label "profile $BENCH_PROFILE" --tag 2 --rate "$RATE" \
        --duration "$DURATION" --connections "$CONNECTIONS" || true
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf report -i "$tmp/perf.data" --children --sort sym --stdio -g none \
        2>/dev/null | grep '%' | grep -v ' 0x0000' |
        head -n "${BENCH_PROFILE_LINES:-60}" || true
    ok=1
    exit 0
fi
probe_json='{}'
if [ "${BENCH_PROBE:-5}" != 0 ]; then
    # a probe that cannot run leaves the figures out, not the bench
    "$bin/conveyor-bench" --probe "$tmp/data" --duration "${BENCH_PROBE:-5}" |
        tee "$tmp/probe.out" || true
    last=$(tail -n 1 "$tmp/probe.out")
    if [[ $last == '{"mode":"probe"'* ]]; then
        probe_json=$last
    fi
fi
rate_rc=0
rate_from=$(date +%s%3N)
run rate --label "fixed rate" --tag 2 --rate "$RATE" \
    --duration "$DURATION" --connections "$CONNECTIONS" \
    --receipts "$tmp/receipts.txt" || rate_rc=$?
python3 tools/bench/hops.py "$tmp/data" "$rate_from" "$(date +%s%3N)" \
    "$tmp/receipts.txt" || true
run saturation --label saturation --tag 3 --saturate \
    --duration "$SATURATE" --connections "$SAT_CONNECTIONS" \
    --max-pending "$MAX_PENDING" || true

rate_json=$(tail -n 1 "$tmp/rate.out")
sat_json=$(tail -n 1 "$tmp/saturation.out")
import_json='{}'
if [ "${BENCH_IMPORT_ROWS:-1000000}" != 0 ]; then
    stop_all
    echo "cold-list import: intake alone"
    if ! bash tools/bench/import.sh "$BUILD" | tee "$tmp/import.out"; then
        echo "bench: the import run failed" >&2
        reported=1
        exit 1
    fi
    import_json=$(tail -n 1 "$tmp/import.out")
fi
# The follow-up scheduler's timers: 100,000 pending, the share fired within
# 1 s of due (BENCH_TIMERS=0 skips it).
timers_json='{}'
if [ "${BENCH_TIMERS:-100000}" != 0 ]; then
    stop_all
    echo "follow-up timers: broker and scheduler alone"
    if ! bash tools/bench/timers.sh "$BUILD" | tee "$tmp/timers.out"; then
        echo "bench: the timers run failed" >&2
        reported=1
        exit 1
    fi
    timers_json=$(tail -n 1 "$tmp/timers.out")
fi
# Anything said about the outcome comes before the JSON line, which is last.
if [ "$rate_rc" -ne 0 ]; then
    echo "bench: the fixed-rate run lost leads or got wrong answers;" \
        "logs kept in '$tmp/logs'" >&2
    reported=1
fi
python3 -c '
import json, sys
rate = json.loads(sys.argv[1])
sat = json.loads(sys.argv[2])
rate["saturation_leads_per_s"] = sat["leads_per_s"]
rate["saturation_offered_per_s"] = sat["offered_per_s"]
rate["saturation_p99_ms"] = sat["p99_ms"]
rate.update(json.loads(sys.argv[3]))
rate.update(json.loads(sys.argv[4]))
machine = json.loads(sys.argv[5])
machine.pop("mode", None)
if machine:
    rate["machine"] = machine
print(json.dumps(rate, separators=(",", ":")))
' "$rate_json" "$sat_json" "$import_json" "$timers_json" "$probe_json"

if [ "$rate_rc" -ne 0 ]; then
    exit 1
fi
ok=1
