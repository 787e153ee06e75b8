"""Routing end to end: the rule chain from a YAML file, every strategy
through the real processes, the first-come claim race, explain against
the real assignment, and fairness across a routing restart.

The chain below is what a sales department might write: conference
leads are offered first come to the hunters, tenders go to the head of
sales, regional leads follow region rules (federal companies and
franchises first), mining goes to its expert, the rest to the round-robin
of tier-2 sales."""

import collections
import datetime
import os
import signal
import sqlite3
import tempfile
import threading
import time
import unittest

from conveyor import (ConveyorCase, http_request, owner_id, poll,
                      score_params, tasks_of, timeline_text)

RULES_DIR = tempfile.mkdtemp(prefix="conveyor-e2e-routing-rules-")
RULES = os.path.join(RULES_DIR, "routing-rules.yaml")
with open(RULES, "w", encoding="utf-8") as f:
    f.write("""\
version: "e2e-1"
vip:
  segments: [A]
  head_review: true
  working_group: [analyst, marketer, teamlead]
rules:
  - name: returning-client
    strategy: previous_owner
  - name: conference-first-come
    match: {source: [conference]}
    strategy: first_come
    pool: {role: sales, team: hunters}
    claim_minutes: "10"
  - name: tenders-by-hand
    match: {source: [tender]}
    strategy: manual
  - name: regions
    match: {source: [regional]}
    strategy: by_region
    pool: {role: sales}
    federal_team: federal
    brands:
      - {brand: Teremok, team: franchise}
  - name: industry-experts
    match: {industry: [mining, oil]}
    strategy: by_industry
    pool: {role: sales, team: experts}
  - name: inbound
    strategy: round_robin
    pool: {role: sales, tier: 2, team: e2e}
""")

HUNTERS = ("hunter-ann", "hunter-bob", "hunter-cid")


def wait_directory(cv, count):
    """Until routing has applied `count` directory updates: leads posted
    before then would find a smaller team."""
    def applied():
        r = http_request(cv.admin_addr["routing"], "GET", "/metrics")
        for line in r.body.decode().splitlines():
            if line.startswith("conveyor_routing_staff_updates_total"):
                return float(line.split()[-1]) >= count
        return False
    poll(applied, 20, 0.05, "routing knowing all %d staff" % count)


class RoutingChain(ConveyorCase):
    EXTRA_ENV = {"CONVEYOR_ROUTING_RULES": RULES}

    @classmethod
    def seed(cls):
        cv = cls.cv
        cls.head = cv.create_staff("head-nina", role="head", tier=None,
                                   team="office")["token"]
        for sid in HUNTERS:
            cls.tokens[sid] = cv.create_staff(sid, team="hunters")["token"]
        cv.create_staff("reg-nsk", team="west", regions=["Novosibirsk"])
        cv.create_staff("reg-msk", team="west", regions=["Moscow"])
        cv.create_staff("fed-fedor", team="federal")
        cv.create_staff("fr-fanya", team="franchise")
        cv.create_staff("miner-mia", team="experts", industries=["mining"])
        cv.create_staff("oil-olga", team="experts", industries=["oil"])
        cv.create_staff("oil-oleg", team="experts", industries=["oil"])
        for role in ("analyst", "marketer", "teamlead"):
            cv.create_staff("wg-%s" % role, role=role, tier=None,
                            team="office")
        wait_directory(cv, len(cls.SALES) + 14)

    def lead_via(self, tag, **fields):
        return self.cv.accept_lead(self.new_lead(tag, **fields))["lead_id"]

    def wait_owner(self, lead_id, timeout=20.0):
        return self.cv.wait_lead(lead_id, lambda c: owner_id(c), timeout,
                                 "lead '%s' with an owner" % lead_id)

    def explain(self, lead_id, token=None):
        kw = {} if token is None else {"token": token}
        return self.cv.console("GET", "/v1/routing/explain?lead_id=%s"
                               % lead_id, **kw)

    # --- first come -------------------------------------------------------

    def offered(self, lead_id):
        return self.cv.wait_lead(
            lead_id, lambda c: "offered first come" in timeline_text(c), 20,
            "the first-come offer of '%s' on the card" % lead_id)

    def test_first_come_claim_race_has_exactly_one_winner(self):
        lead_id = self.lead_via("race", source="conference")
        card = self.offered(lead_id)
        self.assertIsNone(owner_id(card))
        # someone the lead was not offered to
        r = self.cv.console("POST", "/v1/leads/%s/claim" % lead_id, {},
                            token=self.tokens["sales-anna"])
        self.assertEqual(r.status, 403, r)
        # every hunter clicks five times, all at once
        results = []
        barrier = threading.Barrier(len(HUNTERS) * 5)

        def claim(sid):
            barrier.wait()
            r = self.cv.console("POST", "/v1/leads/%s/claim" % lead_id, {},
                                token=self.tokens[sid])
            results.append((sid, r.status, r.json))

        threads = [threading.Thread(target=claim, args=(sid,))
                   for sid in HUNTERS for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wins = [sid for sid, status, _ in results if status == 200]
        self.assertEqual(len(wins), 1, results)
        self.assertEqual(sorted(s for _, s, _ in results),
                         [200] + [409] * 14, results)
        loser = [j for _, s, j in results if s == 409][0]
        self.assertEqual(loser["claimed_by"], wins[0], loser)
        card = self.wait_owner(lead_id)
        self.assertEqual(owner_id(card), wins[0])
        self.assertIn("by first_come", timeline_text(card))
        self.assertIn("claimed first by %s" % wins[0], timeline_text(card))

    def test_unclaimed_offer_moves_to_the_next_rule(self):
        lead_id = self.lead_via("noclaim", source="conference")
        self.offered(lead_id)
        self.cv.advance_clock(11 * 60)
        try:
            card = self.wait_owner(lead_id, 30)
            # too late to claim
            r = self.cv.console("POST", "/v1/leads/%s/claim" % lead_id, {},
                                token=self.tokens[HUNTERS[0]])
            self.assertEqual(r.status, 409, r)
            self.assertIn("unclaimed", r.json["message"])
        finally:
            self.cv.advance_clock(-11 * 60)
        self.assertIn(owner_id(card), self.SALES)
        text = timeline_text(card)
        self.assertIn("from rule 3", text)
        self.assertIn("rule 6 'inbound' (round_robin)", text)

    # --- manual -----------------------------------------------------------

    def test_tender_waits_for_the_head_who_assigns_by_hand(self):
        lead_id = self.lead_via("tender", source="tender")
        card = self.cv.wait_lead(
            lead_id, lambda c: "joins the lead by manual" in timeline_text(c),
            20, "the head asked to assign '%s'" % lead_id)
        self.assertIsNone(owner_id(card))
        r = self.cv.console("POST", "/v1/leads/%s/assign" % lead_id,
                            {"staff_id": "sales-vera"},
                            token=self.tokens["sales-anna"])
        self.assertEqual(r.status, 403, r)
        r = self.cv.console("POST", "/v1/leads/%s/assign" % lead_id,
                            {"staff_id": "nobody-here"}, token=self.head)
        self.assertEqual(r.status, 422, r)
        r = self.cv.console("POST", "/v1/leads/%s/assign" % lead_id,
                            {"staff_id": "sales-vera"}, token=self.head)
        self.assertEqual(r.status, 202, r)
        card = self.cv.wait_lead(
            lead_id, lambda c: owner_id(c) == "sales-vera", 20,
            "the head's choice as owner")
        self.assertIn("assigned by hand by head-nina", timeline_text(card))

    # --- by region, by industry -------------------------------------------

    def test_region_edge_cases(self):
        cases = [
            # a federal company goes to the federal team whatever its region
            ({"region": "Novosibirsk", "extra": {"federal": True}},
             "fed-fedor"),
            # a franchise goes to its brand's team
            ({"region": "Moscow", "extra": {"brand": "Teremok"}}, "fr-fanya"),
            # where it operates beats where it is registered
            ({"region": None, "extra": {"operating_region": "Novosibirsk",
                                        "registered_region": "Moscow"}},
             "reg-nsk"),
            # only the registration known: that decides
            ({"region": None, "extra": {"registered_region": "Moscow"}},
             "reg-msk"),
            # a brand nobody franchises: the region rules
            ({"region": "Novosibirsk", "extra": {"brand": "Nobody"}},
             "reg-nsk"),
        ]
        for fields, want in cases:
            lead_id = self.lead_via("region", source="regional", **fields)
            card = self.wait_owner(lead_id)
            self.assertEqual(owner_id(card), want, (fields, card["timeline"]))

    def routing_sees(self, lead_id, text, what):
        """Waits until routing's own copy of the directory gives `text` in
        the explain of `lead_id`: a staff change reaches routing as an
        event, which a lead posted at once could overtake."""
        def seen():
            r = self.explain(lead_id)
            return r.status == 200 and text in "\n".join(r.json["steps"])
        poll(seen, 20, what=what)

    def test_by_industry_skips_the_unavailable_and_falls_through(self):
        lead_id = self.lead_via("mine", industry="mining")
        self.assertEqual(owner_id(self.wait_owner(lead_id)), "miner-mia")
        self.cv.console_ok("PATCH", "/v1/staff/miner-mia", {"active": False})
        try:
            self.routing_sees(lead_id, "miner-mia inactive",
                              "routing to learn miner-mia is inactive")
            lead_id = self.lead_via("mine2", industry="mining")
            card = self.wait_owner(lead_id)
            self.assertIn(owner_id(card), self.SALES)
            text = timeline_text(card)
            self.assertIn("miner-mia inactive", text)
            self.assertIn("rule 6 'inbound'", text)
        finally:
            self.cv.console_ok("PATCH", "/v1/staff/miner-mia",
                               {"active": True})

    def test_a_person_set_inactive_hands_their_leads_back(self):
        lead_id = self.lead_via("oil", industry="oil")
        first = owner_id(self.wait_owner(lead_id))
        self.assertIn(first, ("oil-olga", "oil-oleg"))
        other = "oil-oleg" if first == "oil-olga" else "oil-olga"
        self.cv.console_ok("PATCH", "/v1/staff/%s" % first, {"active": False})
        try:
            card = self.cv.wait_lead(
                lead_id, lambda c: owner_id(c) == other, 20,
                "the lead handed to the other oil expert")
            self.assertIn("by reassign_inactive", timeline_text(card))
            self.assertIn("away from %s" % first, timeline_text(card))
        finally:
            self.cv.console_ok("PATCH", "/v1/staff/%s" % first,
                               {"active": True})

    # --- VIP: the head and the working group --------------------------------

    def test_segment_a_brings_the_head_and_the_working_group(self):
        lead_id = self.lead_via("vip")
        card = self.cv.wait_lead(lead_id,
                                 lambda c: owner_id(c) and c.get("score"),
                                 20, "lead '%s' scored and assigned" % lead_id)
        owner = owner_id(card)
        params = {n: 1 for n in score_params(card)}
        r = self.cv.console("PUT", "/v1/leads/%s/scorecard" % lead_id,
                            {"params": params}, token=self.tokens[owner])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["score"]["segment"], "A", r.json["score"])
        card = self.cv.wait_lead(
            lead_id,
            lambda c: timeline_text(c).count("by working_group") >= 3, 20,
            "the working group on the card")
        text = timeline_text(card)
        for role in ("analyst", "marketer", "teamlead"):
            self.assertIn("wg-%s" % role, text)
        self.assertIn("joins the lead by segment_a", text)
        self.assertEqual(owner_id(card), owner)
        # each of the group and the head has a task of their own, notified
        card = self.cv.wait_lead(
            lead_id, lambda c: len(tasks_of(c, "working_group")) >= 3, 20,
            "the working group's tasks")
        self.assertEqual(sorted(t["staff_id"]
                                for t in tasks_of(card, "working_group")),
                         ["wg-analyst", "wg-marketer", "wg-teamlead"])
        self.assertTrue(tasks_of(card, "vip_review"), card)

    # --- explain ------------------------------------------------------------

    def test_explain_matches_the_real_assignment(self):
        first = self.lead_via("explain1")
        self.wait_owner(first)
        r = self.explain(first, token=self.tokens["sales-anna"])
        self.assertEqual(r.status, 403, r)
        r = self.explain("lead_nope")
        self.assertEqual(r.status, 404, r)
        # who would get a lead like the first one now ...
        r = self.explain(first)
        self.assertEqual(r.status, 200, r)
        told = r.json
        self.assertEqual(told["outcome"], "assigned", told)
        self.assertEqual(told["rule"], "inbound", told)
        self.assertIn(told["staff_id"], self.SALES)
        self.assertEqual(told["steps"][1],
                         "rule 1 'returning-client': not a returning client")
        self.assertEqual(told["current"]["rule"], "inbound")
        # ... is who gets the next one, for the very same reasons
        second = self.lead_via("explain2")
        card = self.wait_owner(second)
        self.assertEqual(owner_id(card), told["staff_id"])
        real = self.explain(second).json["current"]
        self.assertEqual(real["staff_id"], told["staff_id"])
        self.assertEqual(real["rule_trace"], told["rule_trace"])
        # the card keeps the trace (its timeline holds up to 2 KiB of it)
        self.assertIn(told["steps"][-1], timeline_text(card))


# --- fairness through the real processes, with a restart -------------------

def closed_today_hours():
    """Hours on a weekday other than today's (UTC): off shift now."""
    today = datetime.datetime.utcnow().weekday()
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return {days[(today + 3) % 7]: "09:00-18:00"}


class RoutingFairness(ConveyorCase):
    """Seven sales managers, weights 1-3: one on leave, one off shift, one
    capped at 5 a day. 140 leads in bursts, routing killed half-way."""

    SALES = ()
    TEAM = (  # id, weight, extra
        ("fair-a", 1, {}), ("fair-b", 2, {}), ("fair-c", 3, {}),
        ("fair-d", 1, {"active": False}),
        ("fair-e", 2, {"working_hours": closed_today_hours()}),
        ("fair-f", 3, {"capacity_per_day": 5}),
        ("fair-g", 2, {}),
    )

    @classmethod
    def seed(cls):
        for sid, weight, extra in cls.TEAM:
            cls.cv.create_staff(sid, weight=weight, **extra)
        wait_directory(cls.cv, len(cls.TEAM))

    def burst(self, n, tag):
        return [self.cv.accept_lead(self.new_lead("%s%d" % (tag, i)))
                ["lead_id"] for i in range(n)]

    def test_shares_follow_weights_across_a_restart(self):
        ids = self.burst(70, "fa")
        self.cv.kill("routing")
        ids += self.burst(70, "fb")
        self.cv.restart("routing")
        owners = collections.Counter(
            owner_id(self.wait_owner(i)) for i in ids)
        self.assertNotIn("fair-d", owners)  # on leave
        self.assertNotIn("fair-e", owners)  # off shift
        self.assertEqual(owners["fair-f"], 5, owners)  # capped
        # the rest by weight 1:2:3:2 of 135, to a lead
        rest = 140 - 5
        for sid, weight in (("fair-a", 1), ("fair-b", 2), ("fair-c", 3),
                            ("fair-g", 2)):
            want = rest * weight / 8.0
            self.assertLessEqual(abs(owners[sid] - want), 2,
                                 (sid, owners))

    def wait_owner(self, lead_id):
        return self.cv.wait_lead(lead_id, lambda c: owner_id(c), 30,
                                 "lead '%s' with an owner" % lead_id)


# --- the chain reloaded on SIGHUP ---------------------------------------------

RELOAD_DIR = tempfile.mkdtemp(prefix="conveyor-e2e-routing-reload-")
RELOAD_RULES = os.path.join(RELOAD_DIR, "routing-rules.yaml")


def write_chain(version, team, broken=False):
    text = ('version: "%s"\n'
            'rules:\n'
            '  - name: inbound\n'
            '    strategy: %s\n'
            '    pool: {role: sales, team: %s}\n'
            % (version, "round_robbin" if broken else "round_robin", team))
    with open(RELOAD_RULES + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(RELOAD_RULES + ".tmp", RELOAD_RULES)


write_chain("r1", "day")


class RoutingReload(ConveyorCase):
    """SIGHUP: a broken file changes nothing, a good one takes over."""

    SALES = ()
    EXTRA_ENV = {"CONVEYOR_ROUTING_RULES": RELOAD_RULES}

    @classmethod
    def seed(cls):
        cls.cv.create_staff("day-dina", team="day")
        cls.cv.create_staff("night-nora", team="night")
        cls.cv.create_staff("head-hana", role="head", tier=None,
                            team="office",
                            webhook=cls.sink.url("/staff/head-hana"))
        wait_directory(cls.cv, 3)

    def hup_and_wait(self, line):
        self.cv.procs["routing"].send_signal(signal.SIGHUP)
        poll(lambda: line in open(self.cv.log_path("routing"),
                                  encoding="utf-8").read(),
             10, 0.05, "routing logging '%s'" % line)

    def test_sighup_reloads_the_chain_and_a_broken_file_changes_nothing(self):
        first = self.cv.accept_lead(self.new_lead("hup1"))["lead_id"]
        self.assertEqual(owner_id(self.wait_owner(first)), "day-dina")
        write_chain("r2", "night", broken=True)
        self.hup_and_wait("unknown strategy 'round_robbin'")
        second = self.cv.accept_lead(self.new_lead("hup2"))["lead_id"]
        self.assertEqual(owner_id(self.wait_owner(second)), "day-dina")
        write_chain("r3", "night")
        self.hup_and_wait("version 'r3'")
        third = self.cv.accept_lead(self.new_lead("hup3"))["lead_id"]
        card = self.wait_owner(third)
        self.assertEqual(owner_id(card), "night-nora")
        self.assertIn("chain vr3", timeline_text(card))

        # a pool nobody is in: the lead waits, the head of sales hears of
        # it, and the first member to join the pool gets it
        write_chain("r4", "ghost")
        self.hup_and_wait("version 'r4'")
        waiting = self.cv.accept_lead(self.new_lead("hup4"))["lead_id"]
        hits = self.wait_sink_key("ntf-%s-unassigned-head-hana" % waiting)
        self.assertEqual(hits[0]["path"], "/staff/head-hana")
        self.assertIn("nobody", hits[0]["raw"].lower())
        card = self.cv.wait_lead(
            waiting, lambda c: "nobody available" in timeline_text(c), 20,
            "the card saying why the lead waits")
        self.assertIsNone(owner_id(card))
        self.cv.create_staff("ghost-gia", team="ghost")
        self.assertEqual(owner_id(self.wait_owner(waiting)), "ghost-gia")

    def wait_owner(self, lead_id):
        return self.cv.wait_lead(lead_id, lambda c: owner_id(c), 20,
                                 "lead '%s' with an owner" % lead_id)


class RoutingSla(ConveyorCase):
    """A missed first contact: the follow-up scheduler's level-2
    escalation makes routing re-assign the lead away from its owner."""

    SALES = ("sla-sasha", "sla-tanya")

    def test_missed_sla_reassigns_away_from_the_owner(self):
        lead_id = self.cv.accept_lead(self.new_lead("sla"))["lead_id"]
        first = owner_id(self.wait_assigned(lead_id))
        other = [s for s in self.SALES if s != first][0]
        # past the first contact (30 working minutes) and the second
        # step of the ladder (15 more)
        self.cv.advance_clock(60 * 60)
        try:
            card = self.cv.wait_lead(
                lead_id, lambda c: owner_id(c) == other, 30,
                "the lead re-assigned after the missed SLA")
        finally:
            self.cv.advance_clock(-60 * 60)
        text = timeline_text(card)
        self.assertIn("by reassign_sla", text)
        self.assertIn("away from %s" % first, text)


class RoutingOldPendingQueue(ConveyorCase):
    """A routing.db from before its waiting leads' LeadScored lived only in
    the leads table: pending held a second copy. Routing opens it, and a
    lead waiting there, whose leads row holds another copy (here an empty
    one, as migration 8 left rows it could not fill), is placed from
    pending's copy when somebody joins."""

    SALES = ()

    def test_a_lead_waiting_in_an_old_database_is_placed(self):
        lead_id = self.cv.accept_lead(self.new_lead("old-queue"))["lead_id"]
        self.cv.wait_lead(
            lead_id, lambda c: "nobody available" in timeline_text(c), 20,
            "the card saying why the lead waits")
        self.cv.kill("routing", signal.SIGTERM)
        path = os.path.join(self.cv.data_dir, "routing.db")
        db = sqlite3.connect(path, isolation_level=None)
        try:
            # pending as migrations 1 to 9 left it, with the lead's copy
            db.executescript("""
                BEGIN;
                CREATE TABLE old_pending (
                  seq INTEGER PRIMARY KEY AUTOINCREMENT,
                  lead_id TEXT NOT NULL UNIQUE,
                  tier INTEGER NOT NULL,
                  reason TEXT NOT NULL,
                  lead_scored BLOB NOT NULL,
                  trace_id TEXT,
                  received_at INTEGER NOT NULL
                ) STRICT;
                INSERT INTO old_pending
                  SELECT p.seq, p.lead_id, p.tier, p.reason, l.lead_scored,
                  p.trace_id, p.received_at
                  FROM pending AS p JOIN leads AS l USING (lead_id);
                DROP TABLE pending;
                ALTER TABLE old_pending RENAME TO pending;
                UPDATE leads SET lead_scored = x'';
                PRAGMA user_version = 9;
                COMMIT;""")
            self.assertEqual(
                db.execute("SELECT lead_id FROM pending").fetchall(),
                [(lead_id,)])
        finally:
            db.close()
        self.cv.restart("routing")
        db = sqlite3.connect(path)
        try:
            self.assertEqual(db.execute("PRAGMA user_version").fetchone(),
                             (10,))
            columns = [r[1] for r in db.execute("PRAGMA table_info(pending)")]
            self.assertNotIn("lead_scored", columns)
            kept = db.execute("SELECT length(lead_scored) FROM leads"
                              " WHERE lead_id = ?", (lead_id,)).fetchone()
            self.assertIsNotNone(kept)
            self.assertGreater(kept[0], 100)
        finally:
            db.close()
        self.cv.create_staff("late-lena",
                             webhook=self.sink.url("/staff/late-lena"))
        card = self.wait_assigned(lead_id)
        self.assertEqual(owner_id(card), "late-lena")


if __name__ == "__main__":
    unittest.main()
