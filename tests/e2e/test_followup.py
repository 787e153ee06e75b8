"""The follow-up scheduler: tasks and SLA timers in people's working hours,
time zones and the Russian production calendar; the escalation ladder up
to the head of sales; missed calls, cold leads, proposals and the next
step of each loss reason; timers that survive a crash and fire once.

Time moves by writing CONVEYOR_CLOCK_FILE: the tests put the conveyor at
a chosen moment (a Friday evening in Moscow) and jump from there."""

import datetime
import math
import os
import sqlite3
import time
import unittest

from conveyor import (ConveyorCase, HarnessError, owner_id, poll, tasks_of,
                      timeline_text, to_epoch)

UTC = datetime.timezone.utc
OFFICE = {d: "09:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}
NSK = datetime.timezone(datetime.timedelta(hours=7))   # Novosibirsk, no DST
MSK = datetime.timezone(datetime.timedelta(hours=3))   # Moscow, no DST


def at(y, mo, d, h, mi, tz=UTC):
    return datetime.datetime(y, mo, d, h, mi, tzinfo=tz).timestamp()


def iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, UTC).strftime(
        "%Y-%m-%d %H:%M UTC")


class FollowupCase(ConveyorCase):
    """Staff are created by seed(); SALES is empty so nobody else takes
    leads."""

    SALES = ()
    STAFF = ()     # (id, role, tier, timezone, working_hours)
    # the clock is set to known dates: the real production calendar
    EXTRA_ENV = {"CONVEYOR_CALENDAR_FILE": ""}

    @classmethod
    def seed(cls):
        for sid, role, tier, tz, hours in cls.STAFF:
            reply = cls.cv.create_staff(
                sid, role=role, tier=tier, timezone=tz, working_hours=hours,
                webhook=cls.sink.url("/staff/%s" % sid))
            cls.tokens[sid] = reply.get("token")
        # the scheduler learns the directory from the console's events
        time.sleep(1.0)

    def set_time(self, epoch):
        """Puts every process's clock at `epoch` (seconds, UTC)."""
        self.cv.set_clock(math.ceil(epoch - time.time()))
        time.sleep(0.4)  # every process re-reads the file within 100 ms

    def wait_task(self, lead_id, kind, timeout=20.0):
        card = self.cv.wait_lead(
            lead_id, lambda c: tasks_of(c, kind), timeout,
            "a '%s' task on '%s'" % (kind, lead_id))
        return tasks_of(card, kind)[0]

    def wait_key(self, key, timeout=30.0):
        return self.wait_sink_key(key, timeout)[0]

    def assert_due(self, task, want, slack=120):
        due = to_epoch(task["due_at"])
        self.assertLessEqual(abs(due - want), slack,
                             "due %s, want %s" % (iso(due), iso(want)))

    def activity(self, lead_id, owner, body):
        return self.cv.console_ok("POST", "/v1/leads/%s/activities" % lead_id,
                                  body, token=self.tokens.get(owner))

    def decision(self, lead_id, owner, body):
        return self.cv.console_ok("POST", "/v1/leads/%s/decision" % lead_id,
                                  body, token=self.tokens.get(owner))


class NovosibirskOwner(FollowupCase):
    """One sales manager in Novosibirsk working 09:00-18:00 Mon-Fri, and a
    head of sales in Moscow."""

    STAFF = (("sales-nsk", "sales", 2, "Asia/Novosibirsk", OFFICE),
             ("head-olga", "head", 2, "Europe/Moscow", OFFICE))

    def test_friday_evening_lead_waits_for_monday_then_climbs_the_ladder(self):
        # Friday 27 November 2026, 17:50 in Moscow: 21:50 in Novosibirsk,
        # where the only manager's shift ended at 18:00
        self.set_time(at(2026, 11, 27, 17, 50, MSK))
        lid = self.cv.accept_lead(self.new_lead("fri-evening"))["lead_id"]
        time.sleep(2.0)
        card = self.cv.lead(lid)
        monday = at(2026, 11, 30, 9, 30, NSK)
        if card is not None and tasks_of(card, "first_contact"):
            # assigned at once (routing does not wait for the shift)
            task = tasks_of(card, "first_contact")[0]
        else:
            # routing holds the lead until somebody works: Monday 09:00
            self.assertFalse(
                [x["key"] for x in self.sink.snapshot() if lid in x["raw"]
                 and x["key"].startswith("ntf-%s-first" % lid)],
                "the owner was given the lead over the weekend")
            self.set_time(at(2026, 11, 30, 9, 0, NSK) + 5)
            task = self.wait_task(lid, "first_contact", 30)
        self.assertEqual(task["staff_id"], "sales-nsk")
        # 30 working minutes of the owner: Monday 09:30 Novosibirsk time
        self.assert_due(task, monday)
        note = self.wait_key("ntf-%s-first-contact" % lid)
        self.assertEqual(note["path"], "/staff/sales-nsk")
        self.assertIn("Mon 30 Nov 09:30 (Asia/Novosibirsk)", note["raw"])
        self.assertIn("get a phone number", note["raw"])

        # nothing before the due time
        self.set_time(at(2026, 11, 30, 9, 25, NSK))
        time.sleep(1.0)
        self.assertNotIn("escalat", timeline_text(self.cv.lead(lid)))

        # level 1 at the due time: the owner is reminded
        timer = "tmr-%s-first-contact" % lid
        self.set_time(monday + 30)
        reminder = self.wait_key("ntf-%s-L1" % timer)
        self.assertEqual(reminder["path"], "/staff/sales-nsk")
        # level 2, 15 minutes later: routing is asked to re-assign (there is
        # nobody else here, so the lead stays)
        self.set_time(monday + 15 * 60 + 30)
        self.cv.wait_lead(lid, lambda c: "level 2" in timeline_text(c), 20,
                          "escalation level 2 on the timeline")
        # level 3, 30 minutes after that: the head of sales is told
        self.set_time(monday + 45 * 60 + 30)
        head = self.wait_key("ntf-tmr-%s-first_contact-L3-head-olga" % lid)
        self.assertEqual(head["path"], "/staff/head-olga")
        self.assertIn(lid, head["raw"])
        self.cv.wait_lead(lid, lambda c: "level 3" in timeline_text(c), 20,
                          "escalation level 3 on the timeline")

    def test_missed_call_is_an_urgent_call_back(self):
        # Wednesday 25 November 2026, 12:00 in Novosibirsk: on shift
        now = at(2026, 11, 25, 12, 0, NSK)
        self.set_time(now)
        phone = "+7913%07d" % (time.time_ns() % 10**7)
        r = self.cv.intake("POST", "/v1/channels/phone", {
            "call_id": "c-%d" % time.time_ns(), "caller": phone,
            "called": "+73832000000", "status": "missed", "duration": 0})
        self.assertEqual(r.status, 202, r)
        lid = r.json["lead_id"]
        task = self.wait_task(lid, "call_back")
        self.assertIn("Missed call: call back", task.get("title", "") or
                      self.wait_key("ntf-%s-call-back" % lid)["raw"])
        # 10 wall-clock minutes, not 30 working ones
        self.assert_due(task, now + 10 * 60, slack=60)
        self.wait_key("ntf-%s-call-back" % lid)

        # the client calls again and misses again: a second call-back task
        # for the owner (intake folds the call into the lead)
        r = self.cv.intake("POST", "/v1/channels/phone", {
            "call_id": "c2-%d" % time.time_ns(), "caller": phone,
            "called": "+73832000000", "status": "missed", "duration": 0})
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json["lead_id"], lid)
        second = self.wait_key("ntf-%s-call-back-2" % lid)
        self.assertEqual(second["path"], "/staff/sales-nsk")

        # the owner calls back: nothing escalates
        self.activity(lid, "sales-nsk", {"type": "call", "duration": 60})
        time.sleep(2.0)
        self.set_time(now + 20 * 60)
        time.sleep(2.0)
        keys = {x["key"] for x in self.sink.snapshot() if lid in x["raw"]}
        self.assertFalse([k for k in keys if "-L1" in k],
                         "a call-back escalated after the call: %s" % keys)

    def test_proposal_ping_then_negotiation_push(self):
        now = at(2026, 11, 25, 12, 0, NSK)   # Wednesday
        self.set_time(now)
        lid = self.cv.accept_lead(self.new_lead("proposal"))["lead_id"]
        self.wait_task(lid, "first_contact")
        self.activity(lid, "sales-nsk", {"type": "proposal_presented"})
        ping = self.wait_key("ntf-%s-ping" % lid)
        self.assertIn("Ping", ping["raw"])
        # Thursday 12:00: one business day later
        self.assertIn("Thu 26 Nov 12:00 (Asia/Novosibirsk)", ping["raw"])
        # no decision in 3 days (Saturday 12:00): stage negotiation and a
        # push task 2 business days later, Tuesday 12:00
        self.set_time(now + 3 * 86400 + 60)
        push = self.wait_key("ntf-%s-push" % lid)
        self.assertIn("Tue 1 Dec 12:0", push["raw"])
        self.assertIn('"stage":"negotiation"', push["raw"].replace(" ", ""))
        # the console shows the stage and the push task
        card = self.cv.wait_lead(
            lid, lambda c: c.get("stage") == "negotiation", 10,
            "stage negotiation on the card")
        self.assertTrue(tasks_of(card, "push"), card)

    def test_lost_reasons_set_next_steps(self):
        now = at(2026, 11, 25, 12, 0, NSK)   # Wednesday
        self.set_time(now)
        cases = {
            "postponed": ["check-back"],
            "waiting_decision": ["find-dm"],
            "no_time": ["book-presentation"],
            "chose_competitor": ["debrief", "return"],
            "still_choosing": ["direct-questions"],
        }
        leads = {}
        for reason in cases:
            tag = reason.replace("_", "-")
            lid = self.cv.accept_lead(self.new_lead(tag))["lead_id"]
            self.wait_task(lid, "first_contact")
            body = {"result": "lost", "reason": reason}
            if reason in ("postponed", "chose_competitor"):
                body["until"] = "2027-03-01"
            self.decision(lid, "sales-nsk", body)
            leads[reason] = lid
        for reason, slugs in cases.items():
            lid = leads[reason]
            for slug in slugs:
                note = self.wait_key("ntf-%s-%s" % (lid, slug))
                self.assertEqual(note["path"], "/staff/sales-nsk")
        # postponed: check back on the date given, at the start of the day
        note = self.wait_key("ntf-%s-check-back" % leads["postponed"])
        self.assertIn("Mon 1 Mar 09:00 (Asia/Novosibirsk)", note["raw"])
        self.assertIn("smaller start", note["raw"])
        # chose a competitor: come back two weeks before their project ends
        note = self.wait_key("ntf-%s-return" % leads["chose_competitor"])
        self.assertIn("Mon 15 Feb 09:00 (Asia/Novosibirsk)", note["raw"])
        # waiting for someone's decision: back to the interview stage
        note = self.wait_key("ntf-%s-find-dm" % leads["waiting_decision"])
        self.assertIn('"stage":"qualified"', note["raw"].replace(" ", ""))
        self.assertIn("decision maker", note["raw"])
        # the first-contact task went with the decision: no reminder later
        self.set_time(now + 3600)
        time.sleep(2.0)
        keys = {x["key"] for x in self.sink.snapshot()
                if leads["no_time"] in x["raw"]}
        self.assertFalse([k for k in keys if k.endswith("-L1")], keys)


class ColdLeads(FollowupCase):
    """A telemarketer in Moscow takes the imported cold call list."""

    STAFF = (("tm-irina", "telemarketer", 1, "Europe/Moscow", OFFICE),)

    def test_cold_lead_is_a_call_by_the_end_of_the_next_business_day(self):
        # Tuesday 3 November 2026 10:00 Moscow; Wednesday 4th is a holiday
        self.set_time(at(2026, 11, 3, 10, 0, MSK))
        phone = "+7916%07d" % (time.time_ns() % 10**7)
        r = self.cv.intake("POST", "/v1/import", {
            "source": "vendor-list",
            "rows": [{"line": 2, "lead": {"name": "Pavel", "phone": phone,
                                          "company": "OOO Cold"}}]},
            headers={"Idempotency-Key": "imp-%d" % time.time_ns()})
        self.assertEqual(r.status, 200, r)
        lid = r.json["rows"][0]["lead_id"]
        task = self.wait_task(lid, "cold_call")
        self.assertEqual(task["staff_id"], "tm-irina")
        # by the end of the next business day: Thursday 5th, 18:00
        self.assert_due(task, at(2026, 11, 5, 18, 0, MSK), slack=5)
        self.assertFalse(tasks_of(self.cv.lead(lid), "first_contact"))


class BerlinDst(FollowupCase):
    """A manager in Berlin across the end of summer time."""

    STAFF = (("sales-berlin", "sales", 2, "Europe/Berlin", OFFICE),)

    def test_friday_lead_before_the_clocks_go_back(self):
        # Friday 23 October 2026 17:50 CEST; clocks go back on Sunday 25th
        self.set_time(at(2026, 10, 23, 15, 50))
        lid = self.cv.accept_lead(self.new_lead("berlin"))["lead_id"]
        task = self.wait_task(lid, "first_contact")
        # Monday 09:20 CET is 08:20 UTC (it would be 07:20 in summer time)
        self.assert_due(task, at(2026, 10, 26, 8, 20), slack=5)
        note = self.wait_key("ntf-%s-first-contact" % lid)
        self.assertIn("Mon 26 Oct 09:20 (Europe/Berlin)", note["raw"])


class OnDutyPool(FollowupCase):
    """A manager in Moscow on office hours, a night-duty person in the
    on-duty pool (working 20:00-08:00 Moscow time) and a head of sales who
    assigns a lead by hand to the manager after hours."""

    STAFF = (("sales-day", "sales", 2, "Europe/Moscow", OFFICE),
             ("duty-night", "telemarketer", 1, "Europe/Moscow",
              {d: "00:00-08:00,20:00-24:00"
               for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}),
             ("head-hana", "head", 2, "Europe/Moscow", OFFICE))
    EXTRA_ENV = dict(FollowupCase.EXTRA_ENV,
                     CONVEYOR_ON_DUTY_POOL="duty-night")

    def test_off_shift_owner_first_contact_goes_to_the_duty_pool(self):
        # Wednesday 25 November 2026, 23:00 Moscow: the lead waits in
        # routing (nobody of tier 2 works), the head assigns it by hand
        self.set_time(at(2026, 11, 25, 23, 0, MSK))
        lid = self.cv.accept_lead(self.new_lead("night"))["lead_id"]
        self.cv.wait_lead(lid, lambda c: c.get("score"), 20, "scored")
        r = self.cv.console("POST", "/v1/leads/%s/assign" % lid,
                            {"staff_id": "sales-day"},
                            token=self.tokens["head-hana"])
        self.assertEqual(r.status, 202, r)
        card = self.cv.wait_lead(lid, lambda c: owner_id(c) == "sales-day",
                                 20, "the head's choice as owner")
        # the first contact is the duty person's, due in 30 minutes now
        task = self.wait_task(lid, "first_contact")
        self.assertEqual(task["staff_id"], "duty-night")
        self.assert_due(task, at(2026, 11, 25, 23, 30, MSK))
        self.assertIn("On duty for", task.get("title", ""))
        note = self.wait_key("ntf-%s-first-contact" % lid)
        self.assertEqual(note["path"], "/staff/duty-night")
        self.assertEqual(owner_id(card), "sales-day")


class Reassignment(FollowupCase):
    """Two managers working around the clock and a head of sales: a missed
    SLA climbs the whole ladder."""

    ALL = {d: "00:00-24:00"
           for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    STAFF = (("sales-a", "sales", 2, "UTC", ALL),
             ("sales-b", "sales", 2, "UTC", ALL),
             ("head-ivan", "head", 2, "UTC", ALL))

    def test_missed_sla_reassigns_and_tells_the_head(self):
        start = time.time() + self.cv.clock_offset
        lid = self.cv.accept_lead(self.new_lead("ladder"))["lead_id"]
        card = self.wait_assigned(lid)
        first = owner_id(card)
        timer = "tmr-%s-first-contact" % lid
        self.set_time(start + 31 * 60)
        self.wait_key("ntf-%s-L1" % timer)
        self.set_time(start + 46 * 60)
        card = self.cv.wait_lead(lid, lambda c: "level 2" in timeline_text(c),
                                 20, "escalation level 2 on the timeline")
        # routing re-assigns away from the first owner (when it does, the
        # new owner gets a first-contact task with a fresh SLA)
        try:
            card = self.cv.wait_lead(
                lid, lambda c: owner_id(c) not in (None, first), 15,
                "a new owner")
        except HarnessError:
            card = None
        if card is not None:
            second = owner_id(card)
            note = self.wait_key("ntf-%s-first-contact-2" % lid)
            self.assertEqual(note["path"], "/staff/%s" % second)
        # 30 minutes after level 2 the head of sales hears of it, since the
        # lead still has had no contact
        self.set_time(start + 76 * 60)
        head = self.wait_key("ntf-tmr-%s-first_contact-L3-head-ivan" % lid)
        self.assertEqual(head["path"], "/staff/head-ivan")

    def test_contact_after_reminder_stops_the_ladder(self):
        start = time.time() + self.cv.clock_offset
        lid = self.cv.accept_lead(self.new_lead("stop"))["lead_id"]
        card = self.wait_assigned(lid)
        owner = owner_id(card)
        self.set_time(start + 31 * 60)
        self.wait_key("ntf-tmr-%s-first-contact-L1" % lid)
        self.activity(lid, owner, {"type": "call", "duration": 30})
        time.sleep(2.0)
        self.set_time(start + 80 * 60)
        time.sleep(2.0)
        card = self.cv.lead(lid)
        self.assertNotIn("level 2", timeline_text(card))
        self.assertFalse([x for x in self.sink.snapshot()
                          if lid in x["raw"] and "-L3-" in x["key"]])


class RestartWithDueTimers(FollowupCase):
    """Thousands of timers come due while the scheduler is down; it is
    killed again half-way through firing them; each fires once."""

    STAFF = (("sales-r", "sales", 2, "UTC", None),)
    COUNT = 5000

    def test_thousands_of_overdue_timers_fire_once_after_crashes(self):
        self.cv.kill("followup-scheduler")
        db_path = os.path.join(self.cv.data_dir, "followup-scheduler.db")
        now_ms = int((time.time() + self.cv.clock_offset) * 1000)
        db = sqlite3.connect(db_path, timeout=10)
        with db:
            for i in range(self.COUNT):
                lid = "lead_restart_%05d" % i
                tid = "%s-first-contact" % lid
                db.execute(
                    "INSERT INTO followup_task (task_id, lead_id, staff_id,"
                    " kind, title, due_at, created_at, lead_json)"
                    " VALUES (?, ?, 'sales-r', 'first_contact', 'Call', ?, ?,"
                    " ?)", (tid, lid, now_ms - 60000, now_ms - 120000,
                            '{"lead_id":"%s","name":"Client %d"}' % (lid, i)))
                db.execute(
                    "INSERT INTO followup_timer (timer_id, task_id, lead_id,"
                    " kind, due_at, level, staff_id) VALUES (?, ?, ?,"
                    " 'sla_first_contact', ?, 1, 'sales-r')",
                    ("tmr-" + tid, tid, lid, now_ms - 60000 + i))
        db.close()
        # start, let it fire some, kill it mid-way, start again
        def fired_count():
            db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True,
                                 timeout=10)
            try:
                return db.execute(
                    "SELECT count(*) FROM followup_timer WHERE level = 1"
                    " AND lead_id LIKE 'lead_restart_%' AND state = 'fired'"
                ).fetchone()[0]
            finally:
                db.close()
        self.cv.spawn("followup-scheduler")
        poll(lambda: fired_count() > 0, 20, 0.01, "the first timers fired")
        self.cv.kill("followup-scheduler")
        killed_at = fired_count()
        print("killed with %d of %d fired" % (killed_at, self.COUNT))
        self.cv.spawn("followup-scheduler")
        self.cv.wait_healthy("followup-scheduler")

        def all_fired():
            db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True,
                                 timeout=10)
            try:
                return db.execute(
                    "SELECT count(*) FROM followup_timer WHERE level = 1"
                    " AND lead_id LIKE 'lead_restart_%' AND state ="
                    " 'pending'").fetchone()[0] == 0
            finally:
                db.close()
        poll(all_fired, 60, 0.5, "every overdue timer fired")
        db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
        try:
            fired = db.execute(
                "SELECT count(*), min(fired_at - due_at) FROM followup_timer"
                " WHERE level = 1 AND lead_id LIKE 'lead_restart_%'"
                " AND state = 'fired'").fetchone()
            level2 = db.execute(
                "SELECT count(*), count(DISTINCT task_id) FROM followup_timer"
                " WHERE level = 2 AND lead_id LIKE 'lead_restart_%'"
            ).fetchone()
        finally:
            db.close()
        self.assertEqual(fired[0], self.COUNT)
        self.assertGreaterEqual(fired[1], 0)
        # each firing scheduled exactly one next step
        self.assertEqual(level2, (self.COUNT, self.COUNT))
        # the console saw one level-1 escalation per lead
        sample = ["lead_restart_%05d" % i for i in (0, self.COUNT // 2,
                                                     self.COUNT - 1)]
        for lid in sample:
            card = self.cv.wait_lead(
                lid, lambda c: "level 1" in timeline_text(c), 30,
                "the escalation of '%s' on the console" % lid)
            self.assertEqual(timeline_text(card).count("level 1"), 1)


if __name__ == "__main__":
    unittest.main()
