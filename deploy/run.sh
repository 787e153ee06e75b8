#!/usr/bin/env bash
# Runs the whole conveyor in the foreground (what `make run` does):
#
#     bash deploy/run.sh BUILD
#
# Every stage runs on its embedded defaults (data in ./var, intake on
# 127.0.0.1:8080, console on 127.0.0.1:8081, broker tcp://127.0.0.1:5555)
# unless the CONVEYOR_* environment says otherwise. A stage that crashes is
# restarted after a short back-off; Ctrl-C stops everything cleanly.
# Unless CONVEYOR_DEMO=0, demo staff and two sample leads are seeded.
# Logs: ./var/log/<service>.log (or $CONVEYOR_DATA_DIR/log).
set -euo pipefail

build=${1:-build}
bin=$build/bin
services=(broker console scoring routing followup-scheduler notifier
          proposal-generator account-retention intake)

export CONVEYOR_ADMIN_TOKEN=${CONVEYOR_ADMIN_TOKEN:-demo-admin-token}
export CONVEYOR_INTAKE_KEYS=${CONVEYOR_INTAKE_KEYS:-demo:demo-key}
data_dir=${CONVEYOR_DATA_DIR:-./var}
intake_addr=${CONVEYOR_INTAKE_ADDR:-127.0.0.1:8080}
console_addr=${CONVEYOR_CONSOLE_ADDR:-127.0.0.1:8081}
intake_key=${CONVEYOR_INTAKE_KEYS%%,*}
intake_key=${intake_key#*:}
log_dir=$data_dir/log

say() {
    printf '%s run: %s\n' "$(date +%H:%M:%S)" "$*"
}

# yes_no NAME DEFAULT: prints 1 or 0 for the yes/no environment setting
# NAME as every service reads it (cv_config_env_bool); a value they would
# refuse is refused here, before anything starts, instead of by each
# service in a restart loop.
yes_no() {
    case "${!1:-$2}" in
        1 | [Tt][Rr][Uu][Ee] | [Yy][Ee][Ss] | [Oo][Nn]) echo 1 ;;
        0 | [Ff][Aa][Ll][Ss][Ee] | [Nn][Oo] | [Oo][Ff][Ff]) echo 0 ;;
        *)
            say "cannot use $1='${!1}': not 1 or 0 (true/false, yes/no," \
                "on/off)" >&2
            return 1
            ;;
    esac
}
seed_demo=$(yes_no CONVEYOR_DEMO 1) || exit 1
yes_no CONVEYOR_BUS_BACKGROUND 0 >/dev/null || exit 1

for svc in "${services[@]}"; do
    if [ ! -x "$bin/$svc" ]; then
        say "'$bin/$svc' is not built; run 'make BUILD=$build build'" >&2
        exit 1
    fi
done
mkdir -p "$data_dir" "$log_dir"

# supervise SERVICE: runs the service until told to stop (SIGTERM), and
# restarts it when it exits on its own, waiting 1 s, then 2, 4 … up to 30 s
# between crashes; a run that lasted a minute resets the back-off.
supervise() {
    local svc=$1 delay=1 pid="" nap="" stopping=0 started rc
    # Ctrl-C is for the main script, which stops us with SIGTERM.
    trap '' INT
    trap 'stopping=1; kill -TERM $pid $nap 2>/dev/null || true' TERM
    while [ "$stopping" -eq 0 ]; do
        started=$SECONDS
        if command -v setsid >/dev/null; then
            # Own session: Ctrl-C reaches the supervisor, not the stage.
            setsid "$bin/$svc" >>"$log_dir/$svc.log" 2>&1 </dev/null &
        else
            "$bin/$svc" >>"$log_dir/$svc.log" 2>&1 </dev/null &
        fi
        pid=$!
        rc=0
        wait "$pid" || rc=$?
        # A trapped signal interrupts `wait`; reap the stage for real.
        while kill -0 "$pid" 2>/dev/null; do
            wait "$pid" || rc=$?
        done
        if [ "$stopping" -ne 0 ]; then
            break
        fi
        if [ $((SECONDS - started)) -ge 60 ]; then
            delay=1
        fi
        say "$svc exited with status $rc; restarting in ${delay}s" \
            "(log: $log_dir/$svc.log)"
        sleep "$delay" &
        nap=$!
        wait "$nap" || true
        nap=""
        if [ "$delay" -lt 30 ]; then
            delay=$((delay * 2))
        fi
    done
    exit 0
}

supervisors=()
sleeper=""
stop_all() {
    trap '' INT TERM
    say "stopping"
    if [ -n "$sleeper" ]; then
        kill "$sleeper" 2>/dev/null || true
    fi
    local i
    for ((i = ${#supervisors[@]} - 1; i >= 0; i--)); do
        kill -TERM "${supervisors[$i]}" 2>/dev/null || true
    done
    wait || true
    say "stopped"
    exit 0
}
trap stop_all INT TERM

# wait_healthy URL: polls GET URL until it answers 200 (at most 20 s).
wait_healthy() {
    local i
    for ((i = 0; i < 200; i++)); do
        if curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

for svc in "${services[@]}"; do
    supervise "$svc" &
    supervisors+=($!)
    say "started $svc (log: $log_dir/$svc.log)"
    if [ "$svc" = broker ]; then
        # Peers reconnect on their own; a moment here only saves retries.
        sleep 0.2
    fi
done

if ! wait_healthy "http://$console_addr/healthz"; then
    say "console did not become healthy; see $log_dir/console.log" >&2
fi
if ! wait_healthy "http://$intake_addr/healthz"; then
    say "intake did not become healthy; see $log_dir/intake.log" >&2
fi

# staff JSON: posts one staff member to the console as the admin.
staff() {
    local out
    if ! out=$(curl -sS --max-time 5 -X POST "http://$console_addr/v1/staff" \
            -H "Authorization: Bearer $CONVEYOR_ADMIN_TOKEN" \
            -H 'Content-Type: application/json' -d "$1" 2>&1); then
        say "cannot seed staff: $out" >&2
        return 0
    fi
    case "$out" in
        *'"error"'*) say "cannot seed staff: $out" >&2 ;;
    esac
}

if [ "$seed_demo" = 1 ]; then
    week='{"mon":"00:00-24:00","tue":"00:00-24:00","wed":"00:00-24:00",'
    week+='"thu":"00:00-24:00","fri":"00:00-24:00","sat":"00:00-24:00",'
    week+='"sun":"00:00-24:00"}'
    common='"team":"demo","timezone":"Europe/Moscow","working_hours":'$week
    common+=',"capacity_per_day":50,"weight":1,"active":true'
    staff '{"id":"sales-anna","name":"Anna Sokolova","role":"sales","tier":2,'"$common"'}'
    staff '{"id":"sales-boris","name":"Boris Orlov","role":"sales","tier":2,'"$common"'}'
    staff '{"id":"sales-vera","name":"Vera Lebedeva","role":"sales","tier":2,'"$common"'}'
    staff '{"id":"account-maria","name":"Maria Volkova","role":"account","tier":3,'"$common"'}'
    staff '{"id":"head-oleg","name":"Oleg Smirnov","role":"head",'"$common"'}'
    for lead in \
        '{"name":"Irina Kuznetsova","company":"Romashka LLC","email":"irina@romashka.ru","phone":"+7 495 123-45-67","message":"CRM for 40 users","source":"site-form","region":"Moscow","industry":"retail","budget":1500000}' \
        '{"name":"Pavel Morozov","company":"Sever Logistics","telegram":"@pmorozov","message":"Need a quote for fleet tracking","channel":"social","source":"telegram-bot","region":"Saint Petersburg","industry":"logistics","budget":400000}'; do
        curl -sS -o /dev/null --max-time 5 -X POST "http://$intake_addr/v1/leads" \
            -H "Authorization: Bearer $intake_key" \
            -H 'Content-Type: application/json' -d "$lead" || true
    done
    say "demo: 3 sales managers, an account manager, a head of sales," \
        "2 sample leads"
fi

cat <<EOF

Conveyor is running (Ctrl-C stops it).
  intake   http://$intake_addr   (intake key: $intake_key)
  console  http://$console_addr  (admin token: $CONVEYOR_ADMIN_TOKEN)
  logs     $log_dir/

Post a lead:
  curl -sS -X POST http://$intake_addr/v1/leads \\
    -H 'Authorization: Bearer $intake_key' -H 'Content-Type: application/json' \\
    -d '{"name":"Ivan Petrov","company":"Vector LLC","phone":"+7 912 345-67-89","email":"ivan@vector.ru","message":"Need a CRM","budget":900000}'

Then look at its card (use the lead_id from the reply):
  curl -sS -H 'Authorization: Bearer $CONVEYOR_ADMIN_TOKEN' http://$console_addr/v1/leads/LEAD_ID

EOF

# Stay in the foreground until Ctrl-C (the trap stops everything).
while true; do
    sleep 3600 &
    sleeper=$!
    wait "$sleeper" || true
done
