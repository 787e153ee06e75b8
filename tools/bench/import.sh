#!/usr/bin/env bash
# Rows per second of a cold-list import: `conveyorctl import` of a
# generated call list into a running intake.
#
#   tools/bench/import.sh BUILD
#
# Starts BUILD/bin/intake alone (the rest of the conveyor need not drain a
# million leads for this figure: intake's answer comes after its commit)
# on a free port with its data in a temporary folder, writes a CSV of
# BENCH_IMPORT_ROWS rows (default 1,000,000) the way Russian Excel saves
# one (BOM, ';', CRLF, Cyrillic, quoted cells), imports it and prints the
# summary, then one JSON line last:
#   {"import_rows": N, "import_seconds": S, "import_rows_per_s": R,
#    "import_csv_mb": M}
# Everything it started is stopped on the way out, also on failure; the
# intake log is kept (and named) when something went wrong.
#
# Exit status: 0 when every row was imported, 1 otherwise.
set -euo pipefail

BUILD=${1:-build}
ROWS=${BENCH_IMPORT_ROWS:-1000000}
PARALLEL=${BENCH_IMPORT_PARALLEL:-2}

bin=$BUILD/bin
for exe in intake conveyorctl; do
    if [ ! -x "$bin/$exe" ]; then
        echo "import bench: '$bin/$exe' is missing; build it first" >&2
        exit 1
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/conveyor-import-bench.XXXXXX")
mkdir -p "$tmp/data"
intake_pid=
ok=0

finish() {
    if [ -n "$intake_pid" ]; then
        kill -TERM "$intake_pid" 2>/dev/null || true
        wait "$intake_pid" 2>/dev/null || true
    fi
    if [ "$ok" = 1 ]; then
        rm -rf "$tmp"
    else
        echo "import bench: intake's log kept in '$tmp/intake.log'" >&2
        rm -f "$tmp/list.csv"
    fi
}
trap finish EXIT
trap 'exit 130' INT TERM

read -r -a ports <<<"$(python3 "$(dirname "$0")/free_ports.py" 2)"
key=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

echo "import bench: writing $ROWS rows to '$tmp/list.csv'"
python3 - "$ROWS" "$tmp/list.csv" <<'EOF'
import sys
rows, path = int(sys.argv[1]), sys.argv[2]
# mobile ranges that libphonenumber accepts as Russian numbers
codes = (912, 915, 916, 917, 919, 926, 903, 905, 909, 962, 965, 985)
regions = ("Москва", "Санкт-Петербург", "Новосибирск", "Екатеринбург",
           "Казань")
industries = ("розница", "строительство", "логистика", "IT",
              "производство")
with open(path, "w", encoding="utf-8-sig", newline="") as f:
    f.write("ФИО;Телефон;Компания;E-mail;Регион;Отрасль;Комментарий;"
            "Должность\r\n")
    for i in range(rows):
        n = i // len(codes)
        f.write('Клиент %d;+7 %d %03d-%02d-%02d;ООО "Компания %d";'
                'client%d@firm%d.ru;%s;%s;"холодный звонок; список %d";'
                'директор\r\n'
                % (i, codes[i % len(codes)], n // 10000 % 1000,
                   n // 100 % 100, n % 100, i, i, i % 1000,
                   regions[i % 5], industries[i % 5], i % 7))
EOF

unset CONVEYOR_CONFIG CONVEYOR_CLOCK_FILE
export CONVEYOR_DATA_DIR=$tmp/data
export CONVEYOR_INTAKE_ADDR=127.0.0.1:${ports[0]}
# no broker listens here: intake keeps its events in its outbox
export CONVEYOR_BROKER=tcp://127.0.0.1:${ports[1]}
export CONVEYOR_INTAKE_KEYS=bench:$key
export CONVEYOR_DEMO=0
export CONVEYOR_LOG_LEVEL=${CONVEYOR_LOG_LEVEL:-warn}

"$bin/intake" >"$tmp/intake.log" 2>&1 &
intake_pid=$!
deadline=$((SECONDS + 20))
until curl -fsS -o /dev/null --max-time 1 2>/dev/null \
        "http://$CONVEYOR_INTAKE_ADDR/healthz"; do
    if ! kill -0 "$intake_pid" 2>/dev/null ||
            [ $SECONDS -ge $deadline ]; then
        echo "import bench: intake did not start:" >&2
        tail -n 20 "$tmp/intake.log" >&2
        exit 1
    fi
    sleep 0.1
done

echo "import bench: conveyorctl import of $ROWS rows," \
    "$PARALLEL batches in flight"
summary=$("$bin/conveyorctl" import "$tmp/list.csv" --source bench-import \
    --key "$key" --parallel "$PARALLEL" --json --quiet) || true
python3 - "$summary" "$ROWS" "$(stat -c %s "$tmp/list.csv")" <<'EOF'
import json, sys
text, rows, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
try:
    s = json.loads(text.strip().splitlines()[-1])
except (ValueError, IndexError):
    print("import bench: conveyorctl gave no summary", file=sys.stderr)
    sys.exit(1)
print("import bench: %d rows (%.0f MB) in %.1f s: %.0f rows/s; "
      "imported %d, merged %d, rejected %d"
      % (s["rows"], size / 1e6, s["seconds"], s["rows_per_s"],
         s["imported"], s["merged"], s["rejected"]))
print(json.dumps({"import_rows": s["rows"],
                  "import_seconds": round(s["seconds"], 2),
                  "import_rows_per_s": round(s["rows_per_s"]),
                  "import_csv_mb": round(size / 1e6, 1)},
                 separators=(",", ":")))
sys.exit(0 if s["imported"] == rows and s["rejected"] == 0 else 1)
EOF
ok=1
