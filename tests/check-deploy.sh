#!/usr/bin/env bash
# Checks the deployment files without a container engine (`make
# check-deploy`):
#   - docker-compose.yml is valid for docker-compose (`config -q`);
#   - it runs every process the Makefile builds, the stateless stages can
#     be scaled (no container_name, no host ports) and each stateful stage
#     keeps /data in a named volume;
#   - deploy/Dockerfile builds every process the Makefile knows;
#   - every YAML file (compose, deploy/*.yaml, deploy/k8s/*.yaml) passes
#     yamllint's relaxed rules.
# Prints one line per check and `deploy: N passed, N failed`; exits 1 when
# any check failed.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

COMPOSE=docker-compose.yml
DOCKERFILE=deploy/Dockerfile
SCALABLE=(scoring proposal-generator notifier)
STATEFUL=(intake routing followup-scheduler account-retention console)

passed=0
failed=0

pass() {
    echo "ok   $1"
    passed=$((passed + 1))
}

fail() {
    echo "FAIL $1"
    shift
    for line in "$@"; do
        echo "     $line"
    done
    failed=$((failed + 1))
}

# The SERVICES list of the Makefile (it spans continuation lines).
makefile_services() {
    awk '/^SERVICES[ \t]*:=/ { on = 1; sub(/^SERVICES[ \t]*:=/, "") }
         on { cont = /\\$/; gsub(/\\/, ""); printf "%s ", $0; if (!cont) exit }' \
        Makefile | xargs -n1
}

# `docker-compose config` needs the variables the file marks mandatory.
compose() {
    CONVEYOR_ADMIN_TOKEN=${CONVEYOR_ADMIN_TOKEN:-check-deploy} \
        docker-compose -f "$COMPOSE" "$@"
}

# One line per service setting that matters here, from the normalised
# config: "<service> container_name", "<service> ports",
# "<service> volume <spec>".
compose_facts() {
    awk '
        /^[^ ]/ { section = $1; service = ""; key = ""; next }
        section == "services:" && /^  [^ ]/ {
            service = $1; sub(/:$/, "", service); key = ""; next
        }
        service == "" { next }
        key == "volumes" && /^    - / { print service, "volume", $2; next }
        /^    [^ ]/ {
            key = $1; sub(/:$/, "", key)
            if (key == "container_name" || key == "ports")
                print service, key
            next
        }
    '
}

# --- compose ---
if ! command -v docker-compose >/dev/null; then
    fail "$COMPOSE: docker-compose config" "docker-compose is not installed"
elif out=$(compose config -q 2>&1); then
    pass "$COMPOSE: docker-compose config"
    config=$(compose config 2>/dev/null)
    facts=$(compose_facts <<<"$config")
    services=$(compose config --services 2>/dev/null)

    missing=()
    for svc in $(makefile_services); do
        grep -qx -- "$svc" <<<"$services" || missing+=("$svc")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        pass "$COMPOSE: runs every process of the Makefile"
    else
        fail "$COMPOSE: runs every process of the Makefile" \
            "no service for: ${missing[*]}"
    fi

    fixed=()
    for svc in "${SCALABLE[@]}"; do
        while read -r what; do
            fixed+=("$svc has $what")
        done < <(awk -v s="$svc" '$1 == s && ($2 == "container_name" ||
                                              $2 == "ports") { print $2 }' \
                 <<<"$facts")
    done
    if [ ${#fixed[@]} -eq 0 ]; then
        pass "$COMPOSE: ${SCALABLE[*]} can be scaled"
    else
        fail "$COMPOSE: ${SCALABLE[*]} can be scaled" "${fixed[@]}"
    fi

    unnamed=()
    for svc in "${STATEFUL[@]}"; do
        # A named volume: "<name>:/data[:mode]", name not a path.
        awk -v s="$svc" '$1 == s && $2 == "volume" { print $3 }' \
            <<<"$facts" | grep -Eq '^[A-Za-z0-9][A-Za-z0-9_.-]*:/data(:|$)' \
            || unnamed+=("$svc")
    done
    if [ ${#unnamed[@]} -eq 0 ]; then
        pass "$COMPOSE: stateful stages keep /data in named volumes"
    else
        fail "$COMPOSE: stateful stages keep /data in named volumes" \
            "no named volume at /data for: ${unnamed[*]}"
    fi

    # The console's bus runs in the background (SCHED_IDLE) and must come
    # back to catch up, which the image's unprivileged user may only with
    # RLIMIT_NICE 20; without it the bus stays in the foreground.
    if awk '/^  [^ ]/ { service = $1 }
            service == "console:" && $1 == "nice:" { print $2 }' \
           <<<"$config" | grep -qx 20; then
        pass "$COMPOSE: the console may raise its bus thread again (nice 20)"
    else
        fail "$COMPOSE: the console may raise its bus thread again (nice 20)" \
            "console has no ulimits: nice: 20"
    fi
else
    fail "$COMPOSE: docker-compose config" "$out"
fi

# --- run.sh ---
# A yes/no setting the services would refuse stops `make run` at once,
# naming it, before anything starts or is written.
scratch=$(mktemp -d)
for setting in CONVEYOR_DEMO CONVEYOR_BUS_BACKGROUND; do
    if out=$(env "$setting=maybe" CONVEYOR_DATA_DIR="$scratch/var" \
             bash deploy/run.sh "$scratch/no-build" 2>&1); then
        fail "deploy/run.sh: refuses $setting=maybe" "it ran: $out"
    elif ! grep -q "cannot use $setting='maybe'" <<<"$out" ||
         [ -e "$scratch/var" ]; then
        fail "deploy/run.sh: refuses $setting=maybe" "$out"
    else
        pass "deploy/run.sh: refuses $setting=maybe"
    fi
done
rm -rf "$scratch"

# --- Dockerfile ---
if [ -f "$DOCKERFILE" ]; then
    missing=()
    for svc in $(makefile_services); do
        grep -Eq "(^|[ \"])$svc([ \"\\\\]|$)" "$DOCKERFILE" ||
            missing+=("$svc")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        pass "$DOCKERFILE: builds every process of the Makefile"
    else
        fail "$DOCKERFILE: builds every process of the Makefile" \
            "not built: ${missing[*]}"
    fi
else
    fail "$DOCKERFILE: exists" "no such file"
fi

# --- yamllint ---
yaml_files=("$COMPOSE")
shopt -s nullglob
yaml_files+=(deploy/*.yaml deploy/*.yml deploy/k8s/*.yaml deploy/k8s/*.yml)
shopt -u nullglob
if ! command -v yamllint >/dev/null; then
    fail "yamllint" "yamllint is not installed"
else
    for file in "${yaml_files[@]}"; do
        if out=$(yamllint -f parsable -d relaxed "$file" 2>&1); then
            pass "$file: yamllint"
        else
            mapfile -t lines <<<"$out"
            fail "$file: yamllint" "${lines[@]}"
        fi
    done
fi

echo "deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
