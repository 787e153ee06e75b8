#!/usr/bin/env python3
"""How punctually the follow-up scheduler fires its timers with 100,000 of
them pending: `make bench` runs this through tools/bench/timers.sh.

    python3 tools/bench/timers.py BUILD

Starts BUILD/bin/broker and BUILD/bin/followup-scheduler alone on free
ports with their data in a temporary folder, stops the scheduler once its
tables exist, and writes BENCH_TIMERS (default 100,000) open first-contact
tasks with their SLA timers straight into its database, due over
BENCH_TIMERS_SPREAD seconds (default 60) starting BENCH_TIMERS_LEAD seconds
(default 20) after the scheduler starts again. Every timer's firing is a
real escalation (the owner's reminder and the console's event go to the
outbox, the next step's timer is written), in the transaction that marks
it fired. When all have fired (or BENCH_TIMERS_SPREAD + 60 s have passed)
it reads each timer's lateness (fired_at - due_at: when its effects were
written) and prints a summary, then one JSON line last:

    {"timers": N, "timers_fired": F, "timers_within_1s": 0.9995,
     "timers_p50_ms": ..., "timers_p99_ms": ..., "timers_max_ms": ...}

The target is 99.9% fired within 1 s of due. Exit status 0 when every
timer fired, 1 otherwise. Everything it started is stopped on the way out;
the logs are kept (and named) on failure."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from free_ports import free_ports  # noqa: E402  (beside this file)


def healthy(addr):
    try:
        with urllib.request.urlopen("http://%s/healthz" % addr,
                                    timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def percentile(sorted_values, p):
    if not sorted_values:
        return 0
    k = min(len(sorted_values) - 1, int(round(p / 100.0 *
                                              (len(sorted_values) - 1))))
    return sorted_values[k]


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    count = int(os.environ.get("BENCH_TIMERS", "100000"))
    spread = float(os.environ.get("BENCH_TIMERS_SPREAD", "60"))
    lead = float(os.environ.get("BENCH_TIMERS_LEAD", "20"))
    for exe in ("broker", "followup-scheduler"):
        if not os.access(os.path.join(build, "bin", exe), os.X_OK):
            print("timers bench: '%s/bin/%s' is missing; build it first"
                  % (build, exe), file=sys.stderr)
            return 1
    tmp = tempfile.mkdtemp(prefix="conveyor-timers-bench-")
    data = os.path.join(tmp, "data")
    logs = os.path.join(tmp, "logs")
    os.makedirs(data)
    os.makedirs(logs)
    # drawn at once, so the three are distinct
    broker_port, broker_admin, scheduler_admin = free_ports(3)
    broker = "tcp://127.0.0.1:%d" % broker_port
    admin = {"broker": "127.0.0.1:%d" % broker_admin,
             "followup-scheduler": "127.0.0.1:%d" % scheduler_admin}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CONVEYOR_")}
    env.update({"CONVEYOR_DATA_DIR": data, "CONVEYOR_BROKER_BIND": broker,
                "CONVEYOR_BROKER": broker, "CONVEYOR_DEMO": "0",
                "CONVEYOR_LOG_LEVEL": "warn",
                "CONVEYOR_BROKER_ADMIN_ADDR": admin["broker"],
                "CONVEYOR_FOLLOWUP_SCHEDULER_ADMIN_ADDR":
                    admin["followup-scheduler"]})
    procs = {}
    ok = False

    def start(svc):
        log = open(os.path.join(logs, svc + ".log"), "ab")
        procs[svc] = subprocess.Popen(
            [os.path.join(build, "bin", svc)], env=env, cwd=tmp,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 20
        while not healthy(admin[svc]):
            if procs[svc].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("'%s' did not start (log in %s)"
                                   % (svc, logs))
            time.sleep(0.05)

    def stop(svc):
        p = procs.pop(svc, None)
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    db_path = os.path.join(data, "followup-scheduler.db")
    try:
        start("broker")
        start("followup-scheduler")
        stop("followup-scheduler")

        first_due = int((time.time() + lead) * 1000)
        step = spread * 1000.0 / max(count, 1)
        started = time.monotonic()
        db = sqlite3.connect(db_path, timeout=30)
        with db:
            db.execute("PRAGMA synchronous = NORMAL")
            tasks = []
            timers = []
            for i in range(count):
                lid = "lead_bench_%06d" % i
                tid = lid + "-first-contact"
                due = first_due + int(i * step)
                tasks.append((tid, lid, due, due - 1800000,
                              '{"lead_id":"%s","name":"Client %d",'
                              '"phone":"+7999%07d"}' % (lid, i, i)))
                timers.append(("tmr-" + tid, tid, lid, due))
            db.executemany(
                "INSERT INTO followup_task (task_id, lead_id, staff_id, kind,"
                " title, due_at, created_at, lead_json) VALUES"
                " (?, ?, 'bench-sales', 'first_contact', 'First contact',"
                " ?, ?, ?)", tasks)
            db.executemany(
                "INSERT INTO followup_timer (timer_id, task_id, lead_id, kind,"
                " due_at, level, staff_id) VALUES (?, ?, ?,"
                " 'sla_first_contact', ?, 1, 'bench-sales')", timers)
        db.close()
        seeded = time.monotonic() - started
        print("timers bench: %d timers written in %.1f s, due from %.1f s "
              "from now over %.0f s (%.0f a second)"
              % (count, seeded, first_due / 1000.0 - time.time(), spread,
                 count / spread))
        start("followup-scheduler")

        def pending():
            db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True,
                                 timeout=30)
            try:
                return db.execute(
                    "SELECT count(*) FROM followup_timer WHERE level = 1"
                    " AND state = 'pending'").fetchone()[0]
            finally:
                db.close()
        deadline = first_due / 1000.0 + spread + 60
        left = count
        while time.time() < deadline:
            time.sleep(2.0)
            left = pending()
            if left == 0:
                break
        stop("followup-scheduler")

        db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
        lags = sorted(row[0] for row in db.execute(
            "SELECT fired_at - due_at FROM followup_timer WHERE level = 1"
            " AND state = 'fired'"))
        db.close()
        fired = len(lags)
        within = sum(1 for x in lags if x <= 1000)
        share = within / count if count else 1.0
        result = {
            "timers": count,
            "timers_fired": fired,
            "timers_within_1s": round(share, 5),
            "timers_p50_ms": percentile(lags, 50),
            "timers_p99_ms": percentile(lags, 99),
            "timers_max_ms": lags[-1] if lags else 0,
        }
        print("timers bench: %d of %d fired; %.3f%% within 1 s of due "
              "(target 99.9%%); lateness p50 %d ms, p99 %d ms, max %d ms"
              % (fired, count, share * 100, result["timers_p50_ms"],
                 result["timers_p99_ms"], result["timers_max_ms"]))
        print(json.dumps(result, separators=(",", ":")))
        ok = fired == count
        return 0 if ok else 1
    except (RuntimeError, OSError, sqlite3.Error) as e:
        print("timers bench: %s" % e, file=sys.stderr)
        return 1
    finally:
        for svc in list(procs)[::-1]:
            stop(svc)
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("timers bench: logs kept in '%s'" % logs, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
