#!/usr/bin/env python3
"""Compares two builds, or two settings, of the conveyor with make bench.

    tools/bench/ab.py [--rounds N] ARM ARM

An ARM is a build folder, optionally followed by settings for the run:
`build`, `build-old`, `build:CONVEYOR_BATCH_LINGER_MS=0` or
`build:A=1,B=2`. The runs alternate (A, B, A, B, ...), so a machine whose
neighbours come and go weighs on both alike; each is tools/bench/bench.sh
without the import and the timers (BENCH_DURATION, BENCH_SATURATE and
BENCH_RATE are honoured, default 20 s, 5 s and 2,000 leads/s). Prints a
line per run and the medians of each arm: single runs on a shared machine
differ by 2x and more, medians of alternated runs much less. "p50"/"p99"
are from the 202 to the notification, "from send p99" from the scheduled
send; "machine sync p99" is the probe's fdatasync alone before the run (the
disk's mood: a run whose probe was slow was measured on a slow disk).

Both arms run the current tools/bench/bench.sh, so an older build needs a
conveyor-bench that knows its options (build it from the old commit with
this one's tools/bench, or keep the bench tool of the new build)."""

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def parse_arm(text):
    build, _, settings = text.partition(":")
    env = {}
    for item in filter(None, settings.split(",")):
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise argparse.ArgumentTypeError(
                "'%s': settings are NAME=VALUE, comma-separated" % item)
        env[name] = value
    return text, build, env


def run(build, settings):
    env = dict(os.environ)
    env.update({"BENCH_IMPORT_ROWS": "0", "BENCH_TIMERS": "0"})
    env.setdefault("BENCH_DURATION", "20")
    env.setdefault("BENCH_SATURATE", "5")
    env.update(settings)
    out = subprocess.run(["bash", "tools/bench/bench.sh", build], cwd=ROOT,
                         env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True).stdout
    reports = [json.loads(line) for line in out.splitlines()
               if line.startswith('{"mode":')]
    probes = [r for r in reports if r["mode"] == "probe"]
    rates = [r for r in reports if r["mode"] == "rate"]
    saturated = [r for r in reports if r["mode"] == "saturate"]
    if len(rates) < 2:
        sys.stderr.write(out[-2000:])
        raise SystemExit("ab: a run of '%s' ended early (above)" % build)
    warm, fixed = rates[0], rates[-1]
    return {
        "warm_p50": warm["p50_ms"], "warm_p99": warm["p99_ms"],
        "p50": fixed["p50_ms"], "p99": fixed["p99_ms"],
        "ack_p99": fixed["ack_p99_ms"],
        "send_p99": fixed.get("from_send_p99_ms", float("nan")),
        "cpu": fixed["cpu_ms_per_lead"],
        "sat": saturated[-1]["leads_per_s"] if saturated else 0.0,
        "sync_p99": probes[-1]["fdatasync_p99_ms"] if probes else 0.0,
    }


COLUMNS = [("warm_p50", "warm-up p50", "%.1f"), ("warm_p99", "p99", "%.1f"),
           ("p50", "fixed p50", "%.1f"), ("p99", "p99", "%.1f"),
           ("ack_p99", "ack p99", "%.1f"),
           ("send_p99", "from send p99", "%.1f"),
           ("cpu", "cpu ms/lead", "%.2f"), ("sat", "saturation/s", "%.0f"),
           ("sync_p99", "machine sync p99", "%.2f")]


def line(label, figures, width):
    return "%-*s " % (width, label) + "  ".join(
        "%s %s" % (title, fmt % figures[key]) for key, title, fmt in COLUMNS)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each arm (default 3)")
    parser.add_argument("arms", nargs=2, type=parse_arm, metavar="ARM")
    args = parser.parse_args()
    results = {label: [] for label, _, _ in args.arms}
    width = max(len(label) for label in results) + 4
    for n in range(args.rounds):
        for label, build, settings in args.arms:
            figures = run(build, settings)
            results[label].append(figures)
            print(line("%s #%d" % (label, n + 1), figures, width),
                  flush=True)
    print("medians of %d runs each:" % args.rounds)
    for label, runs in results.items():
        print(line(label, {key: statistics.median(r[key] for r in runs)
                           for key, _, _ in COLUMNS}, width))


if __name__ == "__main__":
    main()
