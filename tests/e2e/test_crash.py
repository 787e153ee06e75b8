"""Crash test: kill -9 any process, many times, while leads stream in.

Afterwards, with everything running again, every lead that got a 202 is on
the console exactly once, with one owner and one first-contact task, and
its owner's webhook got the notification (repeats only under the same
Idempotency-Key). E2E_CRASH_SECONDS sets how long leads stream (default
60)."""

import collections
import http.client
import os
import random
import re
import threading
import time
import unittest

from conveyor import (SERVICES, ConveyorCase, HarnessError,
                      first_contact_key, owner_id, poll,
                      tasks_of)

STREAM_SECONDS = float(os.environ.get("E2E_CRASH_SECONDS", "60"))
POSTERS = 3
POST_PAUSE = 0.05           # between one poster's leads
RETRY_PAUSE = 0.2           # after a refused or failed attempt
CONVERGE_SECONDS = 120      # for the belt to catch up after the storm
LEAD_ID = re.compile(r"lead_[0-9a-f]{24}")


class CrashStorm(ConveyorCase):

    SALES = ("sales-kira", "sales-lev", "sales-mila")

    def setUp(self):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.accepted = {}        # lead_id -> e-mail, from 202 replies
        self.attempts = 0
        self.retries = 0
        self.abandoned = 0        # leads given up on without a 202
        self.kills = collections.Counter()
        self.errors = []

    def poster(self, n):
        seq = 0
        rng = random.Random(n)
        while not self.stop.is_set():
            seq += 1
            email = "crash-%d-%d-%d@storm.ru" % (n, seq, rng.randrange(1e9))
            lead = {"name": "Storm %d.%d" % (n, seq), "email": email,
                    "company": "Storm %d" % n, "budget": 500000 + seq,
                    "region": "Moscow", "industry": "retail"}
            key = "storm-%d-%d" % (n, seq)
            deadline = time.monotonic() + 30
            while True:
                with self.lock:
                    self.attempts += 1
                try:
                    r = self.cv.post_lead(lead, idempotency_key=key,
                                          timeout=5)
                    if r.status == 202:
                        with self.lock:
                            self.accepted[r.json["lead_id"]] = email
                        break
                    if r.status not in (429, 500, 502, 503, 504):
                        with self.lock:
                            self.errors.append("lead %s: %r" % (key, r))
                        break
                except (OSError, http.client.HTTPException):
                    pass
                with self.lock:
                    self.retries += 1
                if time.monotonic() > deadline:
                    # Never acknowledged, so the conveyor owes us nothing
                    # (though it may have kept it).
                    with self.lock:
                        self.abandoned += 1
                    break
                time.sleep(RETRY_PAUSE)
            time.sleep(POST_PAUSE)

    def killer(self):
        # Random order, but every process in each round of eleven kills,
        # the broker and intake twice.
        rng = random.Random(int(os.environ.get("E2E_CRASH_SEED", "7")))
        bag = []
        while not self.stop.is_set():
            if self.stop.wait(rng.uniform(0.5, 2.0)):
                break
            if not bag:
                bag = SERVICES + ["broker", "intake"]
                rng.shuffle(bag)
            victim = bag.pop()
            self.cv.kill(victim)
            self.kills[victim] += 1
            time.sleep(rng.uniform(0.1, 0.6))
            try:
                self.cv.restart(victim, wait=True, timeout=20)
            except HarnessError as e:
                self.errors.append("restart of %s: %s" % (victim, e))
                return

    def test_every_accepted_lead_survives_the_storm(self):
        threads = [threading.Thread(target=self.poster, args=(n,))
                   for n in range(POSTERS)]
        threads.append(threading.Thread(target=self.killer))
        started = time.monotonic()
        for t in threads:
            t.start()
        try:
            self.stop.wait(STREAM_SECONDS)
        finally:
            self.stop.set()
            for t in threads:
                t.join(60)
        storm = time.monotonic() - started
        self.assertEqual(self.errors, [], "\n".join(self.errors[:10]))
        self.assertIn("broker", self.kills)
        self.assertIn("intake", self.kills)

        for svc in SERVICES:
            if not self.cv.alive(svc):
                self.cv.restart(svc)
            self.cv.wait_healthy(svc)
        leads = dict(self.accepted)
        self.assertGreater(len(leads), 0, "no lead was accepted")

        # Every accepted lead gets its owner and task, and the owner hears.
        pending = set(leads)

        def converged():
            for lid in list(pending):
                card = self.cv.lead(lid)
                if (card is not None and owner_id(card)
                        and tasks_of(card, "first_contact")
                        and self.sink.with_key(first_contact_key(lid))):
                    pending.discard(lid)
            return not pending
        try:
            poll(converged, CONVERGE_SECONDS, 0.5,
                 "every accepted lead assigned and notified")
        except HarnessError as e:
            sample = sorted(pending)[:5]
            raise HarnessError("%s\n%d of %d leads incomplete, e.g. %s: %s"
                               % (e, len(pending), len(leads), sample,
                                  [self.cv.lead(x) for x in sample[:2]])
                               ) from None
        settled = time.monotonic() - started

        # Exactly once on the console: one row per lead, none extra.
        rows = collections.Counter(self.cv.console_db_lead_ids())
        twice = [lid for lid, n in rows.items() if n > 1]
        self.assertEqual(twice, [], "leads stored more than once")
        missing = [lid for lid in leads if lid not in rows]
        self.assertEqual(missing, [], "accepted leads not on the console")
        # Each contact made one lead, not one per retry.
        self.assertLessEqual(len(rows), len(leads) + self.abandoned,
                             "the console has leads nobody posted")

        by_lead = collections.defaultdict(list)
        for req in self.sink.snapshot():
            for lid in set(LEAD_ID.findall(req["raw"])):
                by_lead[lid].append(req)
        for lid in leads:
            card = self.cv.lead(lid)
            owner = owner_id(card)
            self.assertIn(owner, self.SALES, lid)
            self.assertEqual(len(tasks_of(card, "first_contact")), 1,
                             "lead %s: %s" % (lid, card.get("tasks")))
            reqs = by_lead[lid]
            self.assertEqual({r["key"] for r in reqs},
                             {first_contact_key(lid)},
                             "lead %s notified under other keys" % lid)
            self.assertEqual({r["path"] for r in reqs},
                             {"/staff/%s" % owner},
                             "lead %s notified to someone else" % lid)

        repeats = sum(len(v) - 1 for v in by_lead.values())
        kills = ", ".join("%s %d" % kv for kv in sorted(self.kills.items()))
        print("\ncrash: %d kills (%s); %d leads accepted of %d attempts "
              "(%d retries, %d abandoned); %d repeated notifications; "
              "storm %.0f s, settled after %.0f s"
              % (sum(self.kills.values()), kills, len(leads), self.attempts,
                 self.retries, self.abandoned, repeats, storm, settled),
              flush=True)


if __name__ == "__main__":
    unittest.main()
