#!/usr/bin/env python3
"""Where the time of a bench run went, hop by hop and leg by leg.

    hops.py DATA_DIR SINCE_MS UNTIL_MS [RECEIPTS]

Every event id begins with the time it was made (cv_id.h: "evt_" and 12
hex digits of Unix milliseconds), and every receiver records in its inbox
when it applied the event (cv_inbox.received_at). Their difference is one
hop: the sender's commit, the broker, and the receiver's queue and turn.
Prints one line: p50/p99 of the hop into each stage, for the events applied
between SINCE_MS and UNTIL_MS.

With RECEIPTS (conveyor-bench --receipts: per notified lead its id and
when it was sent, accepted and notified), also follows each lead of the
run along the way the bench measures: due to be sent (the bench's
schedule) -> made by intake (its id's time) -> scored (scores.scored_at)
-> assigned (assignments.assigned_at) -> its first-contact task made,
whose owner the follow-up scheduler notifies (followup_task.created_at)
-> taken by the notifier (notifier_deliveries.created_at) -> received by
the webhook. The legs add up to the bench's time from the scheduled send
(from_send; its end-to-end figure starts at the 202, which intake sends
after its commit, inside the second leg). Prints p50/p99 of each leg, and
each leg's mean over the slowest 1% of leads, which says what the p99 is
made of."""

import os
import sqlite3
import sys

STAGES = ["scoring", "routing", "notifier", "followup-scheduler", "console"]

# The stage databases' times of a lead, in the order of its way.
WAY = [
    ("scoring", "SELECT lead_id, scored_at FROM scores"),
    ("routing", "SELECT lead_id, assigned_at FROM assignments"),
    ("followup-scheduler", "SELECT lead_id, min(created_at) FROM "
                           "followup_task GROUP BY lead_id"),
    ("notifier", "SELECT lead_id, min(created_at) FROM notifier_deliveries "
                 "GROUP BY lead_id"),
]
LEGS = ["bench->intake", "intake->scoring", "scoring->routing",
        "routing->followup", "followup->notifier", "notifier->webhook"]


def quantile(values, share):
    return values[min(len(values) - 1, int(len(values) * share))]


def query(data, stage, sql, args=()):
    """Rows of `sql` on a stage's database, [] when it has no such data."""
    path = os.path.join(data, stage + ".db")
    if not os.path.exists(path):
        return []
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return db.execute(sql, args).fetchall()
    except sqlite3.Error:
        return []
    finally:
        db.close()


def hops(data, since, until):
    parts = []
    for stage in STAGES:
        rows = query(data, stage,
                     "SELECT event_id, received_at FROM cv_inbox "
                     "WHERE received_at BETWEEN ? AND ?", (since, until))
        took = sorted(at - int(eid[4:16], 16) for eid, at in rows
                      if eid.startswith("evt_") and len(eid) >= 16)
        if took:
            parts.append("%s %d/%d" % (stage, quantile(took, 0.5),
                                       quantile(took, 0.99)))
    print("  hops        p50/p99 ms from an event made to applied by: " +
          (", ".join(parts) if parts else "no events"))


def legs(data, receipts):
    """Each lead's legs, from its receipt and the stages' times."""
    notified = {}  # lead id -> (due to be sent, received by the webhook)
    with open(receipts) as lines:
        for line in lines:
            fields = line.split()
            if len(fields) == 4 and fields[0].startswith("lead_"):
                notified[fields[0]] = (int(fields[1]), int(fields[3]))
    times = [dict(query(data, stage, sql)) for stage, sql in WAY]
    ways = []
    for lead, (sent, webhook) in notified.items():
        way = ([sent, int(lead[5:17], 16)] + [t.get(lead) for t in times] +
               [webhook])
        if None not in way:
            ways.append([b - a for a, b in zip(way, way[1:])])
    if not ways:
        print("  legs        no lead could be followed")
        return
    parts = []
    for i, leg in enumerate(LEGS):
        took = sorted(w[i] for w in ways)
        parts.append("%s %d/%d" % (leg, quantile(took, 0.5),
                                   quantile(took, 0.99)))
    print("  legs        p50/p99 ms of a lead's way (%d leads): %s" %
          (len(ways), ", ".join(parts)))
    ways.sort(key=sum)
    slowest = ways[len(ways) - max(1, len(ways) // 100):]
    parts = ["%s %.0f" % (leg, sum(w[i] for w in slowest) / len(slowest))
             for i, leg in enumerate(LEGS)]
    print("  slowest 1%% mean ms by leg (%d leads, %.0f in all): %s" %
          (len(slowest), sum(map(sum, slowest)) / len(slowest),
           ", ".join(parts)))


def main():
    data, since, until = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    hops(data, since, until)
    if len(sys.argv) > 4:
        legs(data, sys.argv[4])


if __name__ == "__main__":
    main()
