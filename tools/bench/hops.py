#!/usr/bin/env python3
"""Where the time of a bench run went, hop by hop.

    hops.py DATA_DIR SINCE_MS UNTIL_MS

Every event id begins with the time it was made (cv_id.h: "evt_" and 12
hex digits of Unix milliseconds), and every receiver records in its inbox
when it applied the event (cv_inbox.received_at). Their difference is one
hop: the sender's commit, the broker, and the receiver's queue and turn.
Prints one line: p50/p99 of the hop into each stage, for the events applied
between SINCE_MS and UNTIL_MS."""

import glob
import os
import sqlite3
import sys

STAGES = ["scoring", "routing", "notifier", "followup-scheduler", "console"]


def quantile(values, share):
    return values[min(len(values) - 1, int(len(values) * share))]


def main():
    data, since, until = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    parts = []
    for stage in STAGES:
        path = os.path.join(data, stage + ".db")
        if not glob.glob(path):
            continue
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
        try:
            rows = db.execute(
                "SELECT event_id, received_at FROM cv_inbox "
                "WHERE received_at BETWEEN ? AND ?", (since, until)).fetchall()
        except sqlite3.Error:
            rows = []
        finally:
            db.close()
        hops = sorted(at - int(eid[4:16], 16) for eid, at in rows
                      if eid.startswith("evt_") and len(eid) >= 16)
        if hops:
            parts.append("%s %d/%d" % (stage, quantile(hops, 0.5),
                                       quantile(hops, 0.99)))
    print("  hops        p50/p99 ms from an event made to applied by: " +
          (", ".join(parts) if parts else "no events"))


if __name__ == "__main__":
    main()
