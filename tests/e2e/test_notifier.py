"""End-to-end: the notifier tells the owner of a new lead on every channel
they have — Telegram (a fake Bot API), a Slack-style hook, e-mail (a local
SMTP catcher) and a generic webhook whose HMAC signature the receiver
verifies — retries a receiver that fails and then recovers (500s, then a
429 with Retry-After) delivering exactly once per channel under one
idempotency key, turns a receiver that never recovers into a dead
letter that the head of sales sees on the console and sends again,
works through a burst larger than the deliveries it makes at once, and
delivers exactly once to a webhook that answers slowly (each delivery
waits in flight while the notifier goes on with later turns). The owner
is told before the notifier's own commit: with its syncs slowed to
seconds, the webhook still hears of a lead at once, and once."""

import os
import sqlite3
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from conveyor import (ADMIN_TOKEN, ConveyorCase, FakeTelegram, FaultCase,
                      HarnessError, SignedSink, SlackSink, SmtpCatcher,
                      first_contact_key, poll, timeline_text)

BOT_TOKEN = "123456:e2e-bot-token"
WEBHOOK_SECRET = "whsec_e2e_5f2b1c"
CHAT_ID = "100200300"
MAX_ATTEMPTS = 4
SLOTS = 1           # deliveries the notifier makes at once
OWNER = "sales-nina"


class SlowSignedSink(SignedSink):
    """A signed webhook receiver that can be made to answer late."""

    delay = 0.0     # seconds each reply waits

    def reply_ok(self, request):
        time.sleep(self.delay)
        return super().reply_ok(request)


class NotifierChannels(ConveyorCase):
    SALES = ()      # one owner, created in seed() with all four channels

    @classmethod
    def setUpClass(cls):
        cls.telegram = FakeTelegram(BOT_TOKEN)
        cls.slack = SlackSink()
        cls.smtp = SmtpCatcher()
        cls.hook = SlowSignedSink(WEBHOOK_SECRET)
        cls.EXTRA_ENV = {
            "CONVEYOR_TELEGRAM_API_URL": cls.telegram.base_url(),
            "CONVEYOR_TELEGRAM_BOT_TOKEN": BOT_TOKEN,
            "CONVEYOR_SMTP_URL": cls.smtp.url(),
            "CONVEYOR_SMTP_FROM": "Conveyor <conveyor@crm.example.ru>",
            "CONVEYOR_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "CONVEYOR_NOTIFY_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
            # fewer deliveries in flight than a burst brings (test_4)
            "CONVEYOR_NOTIFIER_WORKERS": str(SLOTS),
        }
        try:
            super().setUpClass()
        except BaseException:
            cls.close_fakes()
            raise

    @classmethod
    def seed(cls):
        reply = cls.cv.create_staff(OWNER, name="Nina Sokolova", notify={
            "telegram_chat_id": int(CHAT_ID),
            "slack_webhook_url": cls.slack.url("/services/T0/B0/nina"),
            "email": "nina.sokolova@crm.example.ru",
            "webhook_url": cls.hook.url("/staff/nina"),
        })
        cls.tokens[OWNER] = reply.get("token")
        head = cls.cv.create_staff("head-oleg", role="head", tier=2,
                                   name="Oleg Head", active=False)
        cls.tokens["head-oleg"] = head.get("token")

    @classmethod
    def close_fakes(cls):
        for fake in (cls.telegram, cls.slack, cls.smtp, cls.hook):
            fake.close()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.close_fakes()

    # --- helpers -----------------------------------------------------------

    def new_assigned_lead(self, tag):
        lead = self.new_lead(tag, name="Иван Петров %s" % tag,
                             company="ООО «Ромашка-%s»" % tag)
        lead_id = self.cv.accept_lead(lead)["lead_id"]
        return lead_id

    def wait_channels(self, lead_id, timeout=30.0):
        """Waits until every channel delivered the lead's first-contact
        notification; returns what each received."""
        key = first_contact_key(lead_id)
        got = {}

        def seen():
            got.clear()
            got.update({
                "telegram": [m for m in self.telegram.messages(CHAT_ID)
                             if lead_id in (m.get("text") or "")],
                "slack": [t for t in self.slack.texts()
                          if lead_id in (t or "")],
                "email": [m for m in self.smtp.delivered()
                          if m["msg"]["X-Conveyor-Notification-Id"] == key],
                "webhook": self.hook.with_key(key),
            })
            return dict(got) if all(got.values()) else None
        try:
            return poll(seen, timeout, 0.1,
                        "lead %s on telegram, slack, email and webhook"
                        % lead_id)
        except HarnessError as e:
            missing = sorted(ch for ch, seen_ in got.items() if not seen_)
            raise HarnessError("%s\nnothing arrived on: %s\n%s" % (
                e, ", ".join(missing), self.cv.tail("notifier"))) from None

    def dead_letters(self, status="dead", token=None):
        r = self.cv.console("GET", "/v1/notifications?status=%s" % status,
                            token=token or ADMIN_TOKEN)
        self.assertEqual(r.status, 200, r)
        return r.json["notifications"]

    # --- tests -------------------------------------------------------------

    def test_1_every_channel_gets_the_lead_once(self):
        lead_id = self.new_assigned_lead("allch")
        key = first_contact_key(lead_id)
        got = self.wait_channels(lead_id)
        time.sleep(1.0)     # nothing more may arrive
        got = self.wait_channels(lead_id, timeout=1)

        message = got["telegram"][0]
        self.assertEqual(message["chat_id"], int(CHAT_ID))
        self.assertIn("Иван Петров allch", message["text"])
        self.assertEqual(len(got["telegram"]), 1, got["telegram"])
        tg = [r for r in self.telegram.delivered()
              if lead_id in r["raw"]]
        self.assertTrue(all(r["token_ok"] for r in tg), tg)
        self.assertEqual({r["key"] for r in tg}, {key})

        self.assertEqual(len(got["slack"]), 1, got["slack"])
        self.assertIn("Иван Петров allch", got["slack"][0])

        self.assertEqual(len(got["email"]), 1)
        mail = got["email"][0]["msg"]
        self.assertEqual(got["email"][0]["to"],
                         ["<nina.sokolova@crm.example.ru>"])
        self.assertIn("Иван Петров allch", str(mail["subject"]))
        self.assertIn(lead_id, mail.get_content())
        self.assertEqual(mail["Message-ID"], "<%s@crm.example.ru>" % key)
        self.assertIsNotNone(mail["Date"])

        self.assertEqual(len(got["webhook"]), 1, got["webhook"])
        hook = got["webhook"][0]
        self.assertTrue(hook["signature_ok"],
                        "bad signature %r" %
                        hook["headers"].get("x-conveyor-signature"))
        self.assertEqual(hook["json"].get("lead_id"), lead_id)

        # the console hears of the delivery under the real channel name
        card = self.cv.wait_lead(
            lead_id, lambda c: "notif" in timeline_text(c), 20,
            "the delivery on the timeline")
        text = timeline_text(card)
        self.assertTrue(any(ch in text for ch in
                            ("telegram", "slack", "email", "webhook")),
                        text)

    def test_2_failing_receiver_recovers_delivered_once_same_key(self):
        # the webhook fails twice, then asks to wait a second (HTTP date
        # forms are unit-tested); Telegram says 429 with retry_after
        self.hook.script([(500, {"error": "down"}, None),
                          (500, {"error": "down"}, None),
                          (429, {"error": "slow down"},
                           {"Retry-After": "1"})])
        self.telegram.script([(429, {
            "ok": False, "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1}}, None)])
        self.smtp.script([451])
        started = time.monotonic()
        lead_id = self.new_assigned_lead("flaky")
        key = first_contact_key(lead_id)
        self.wait_channels(lead_id, timeout=40)
        time.sleep(1.5)     # a duplicate would show up now

        attempts = [r for r in self.hook.snapshot() if r["key"] == key]
        self.assertEqual([r["status"] for r in attempts],
                         [500, 500, 429, 200], attempts)
        self.assertTrue(all(r["signature_ok"] for r in attempts))
        self.assertEqual(len({r["raw"] for r in attempts}), 1,
                         "retries changed the body")
        self.assertGreaterEqual(attempts[3]["at"] - attempts[2]["at"], 0.9,
                                "Retry-After: 1 was not honoured")
        self.assertEqual(len(self.hook.with_key(key)), 1)

        tg = [r for r in self.telegram.snapshot() if lead_id in r["raw"]]
        self.assertEqual([r["status"] for r in tg], [429, 200], tg)
        self.assertGreaterEqual(tg[1]["at"] - tg[0]["at"], 0.9,
                                "Telegram's retry_after was not honoured")
        self.assertEqual({r["key"] for r in tg}, {key})

        mails = [m for m in self.smtp.delivered()
                 if m["msg"]["X-Conveyor-Notification-Id"] == key]
        self.assertEqual(len(mails), 1)
        self.assertLess(time.monotonic() - started, 40)

    def test_3_dead_letter_on_the_console_then_resent(self):
        # the webhook is down for good; Telegram refuses the chat at once
        self.hook.script([(500, {"error": "down"}, None)] * MAX_ATTEMPTS)
        self.telegram.script([(400, {
            "ok": False, "error_code": 400,
            "description": "Bad Request: chat not found"}, None)])
        lead_id = self.new_assigned_lead("dead")
        key = first_contact_key(lead_id)

        def dead_for_lead():
            rows = [d for d in self.dead_letters()
                    if d.get("lead_id") == lead_id]
            return rows if len(rows) == 2 else None
        rows = poll(dead_for_lead, 40, 0.2,
                    "two dead letters for lead %s" % lead_id)
        by_channel = {d["channel"]: d for d in rows}
        self.assertEqual(set(by_channel), {"webhook", "telegram"})
        hook = by_channel["webhook"]
        self.assertEqual(hook["id"], key)
        self.assertEqual(hook["staff_id"], OWNER)
        self.assertEqual(hook["attempts"], MAX_ATTEMPTS)
        self.assertIn("500", hook["last_error"])
        self.assertIsNotNone(hook["failed_at"])
        tg = by_channel["telegram"]
        self.assertEqual(tg["attempts"], 1, "a 400 is not worth a retry")
        self.assertIn("chat not found", tg["last_error"])
        attempts = [r for r in self.hook.snapshot() if r["key"] == key]
        self.assertEqual(len(attempts), MAX_ATTEMPTS)

        # slack and e-mail were delivered all the same
        self.assertTrue([t for t in self.slack.texts() if lead_id in t])
        card = self.cv.wait_lead(
            lead_id, lambda c: "failed" in timeline_text(c), 20,
            "the failure on the lead's timeline")

        # only the head of sales and admins see and resend dead letters
        r = self.cv.console("GET", "/v1/notifications?status=dead",
                            token=self.tokens[OWNER])
        self.assertEqual(r.status, 403, r)
        r = self.cv.console("POST", "/v1/notifications/%s/resend" % key,
                            token=self.tokens[OWNER])
        self.assertEqual(r.status, 403, r)
        r = self.cv.console("POST", "/v1/notifications/nope/resend",
                            token=self.tokens["head-oleg"])
        self.assertEqual(r.status, 404, r)

        # the receivers recovered (nothing scripted any more): resend
        r = self.cv.console("POST", "/v1/notifications/%s/resend" % key,
                            token=self.tokens["head-oleg"])
        self.assertEqual(r.status, 202, r)
        self.assertEqual(sorted(r.json["channels"]), ["telegram", "webhook"])
        r = self.cv.console("POST", "/v1/notifications/%s/resend" % key,
                            token=self.tokens["head-oleg"])
        self.assertEqual(r.status, 409, r)

        delivered = poll(lambda: self.hook.with_key(key), 30, 0.1,
                         "the resent webhook delivered")
        self.assertEqual(len(delivered), 1)
        self.assertTrue(delivered[0]["signature_ok"])
        poll(lambda: [m for m in self.telegram.messages(CHAT_ID)
                      if lead_id in m["text"]], 30, 0.1,
             "the resent telegram message delivered")

        def redelivered():
            rows = [d for d in self.dead_letters("any")
                    if d.get("lead_id") == lead_id]
            return rows if rows and all(d["status"] == "delivered"
                                        for d in rows) else None
        rows = poll(redelivered, 20, 0.2,
                    "the dead letters shown as delivered")
        self.assertTrue(all(d["resends"] == 1 and d["delivered_at"]
                            for d in rows), rows)
        self.assertFalse([d for d in self.dead_letters()
                          if d.get("lead_id") == lead_id])
        card = self.cv.lead(lead_id)
        self.assertIn("sent again", timeline_text(card))

    def test_4_a_burst_waits_for_free_slots_not_for_a_timer(self):
        # six leads at once are 24 deliveries for one slot (a few hundred
        # ms each with these fakes): each one that finishes must start the
        # next at once, not when the delivery thread next wakes anyway
        leads = [self.new_assigned_lead("burst%d" % n) for n in range(6)]
        started = time.monotonic()
        for lead_id in leads:
            self.wait_channels(lead_id, timeout=40)
        took = time.monotonic() - started
        self.assertLess(took, 15, "24 deliveries took %.1f s" % took)
        time.sleep(1.0)     # a duplicate would show up now
        for lead_id in leads:
            got = self.wait_channels(lead_id, timeout=1)
            self.assertEqual([len(got[ch]) for ch in sorted(got)],
                             [1, 1, 1, 1], "%s: %r" % (lead_id, got))


    def test_5_a_slow_webhook_gets_each_notification_once(self):
        # the receiver takes 0.3 s to answer: the deliveries wait in flight
        # across many of the notifier's turns, and each arrives once
        self.hook.delay = 0.3
        try:
            leads = [self.new_assigned_lead("slow%d" % n) for n in range(3)]
            for lead_id in leads:
                self.wait_channels(lead_id, timeout=40)
            time.sleep(1.0)     # a duplicate would show up now
        finally:
            self.hook.delay = 0.0
        for lead_id in leads:
            key = first_contact_key(lead_id)
            attempts = [r for r in self.hook.snapshot() if r["key"] == key]
            self.assertEqual([r["status"] for r in attempts], [200],
                             attempts)
            self.assertTrue(attempts[0]["signature_ok"])
            self.wait_written(lead_id)


class EarlySend(FaultCase):
    """Every process runs with tests/e2e/fault/slow_sync.c and disk_full.c
    preloaded; their triggers name notifier.db, so only the notifier's
    commits are slowed (each sync waits SLOW_MS) or fail (a full disk).
    The first attempt of a delivery leaves before the notifier's commit, so
    the owner hears of a lead long before a slow commit ends, and once; on
    a full disk the owner is not called again at every re-send; and a turn
    applied again (one request's handler failing) calls no owner twice."""

    SALES = ("sales-early",)
    SLOW_MS = 4000
    FAULTS = ("slow_sync", "disk_full")
    # the scheduler re-sends an unacknowledged request soon
    EXTRA_ENV = {"CONVEYOR_LEASE_MS": "500"}

    def settle(self, tag):
        """A lead all the way through, its delivery written, so that no
        commit of the notifier is due when its disk turns bad."""
        warm = self.cv.accept_lead(self.new_lead(tag))
        self.wait_sink_key(first_contact_key(warm["lead_id"]))
        self.wait_written(warm["lead_id"])
        time.sleep(0.5)     # the acknowledged rows' delete, too

    def test_a_full_disk_calls_the_owner_once_not_at_every_resend(self):
        self.settle("full-warm")
        self.set_fault("disk_full", "notifier.db")
        try:
            lead_id = self.cv.accept_lead(self.new_lead("full"))["lead_id"]
            key = first_contact_key(lead_id)
            # the first attempt leaves before the commit that fails
            self.wait_sink_key(key, timeout=20)
            # the scheduler re-sends every 500 ms; none of that reaches
            # the owner while the notifier cannot write
            time.sleep(3.0)
            calls = self.sink.with_key(key)
            self.assertEqual(len(calls), 1, [r["at"] for r in calls])
        finally:
            self.clear_fault("disk_full")
        self.wait_written(lead_id)     # once the disk has room
        time.sleep(1.0)     # a late copy would show up now
        # at most one more, after the request is stored, and the same key
        calls = self.sink.for_lead(lead_id)
        self.assertLessEqual(len(calls), 2, [r["at"] for r in calls])
        self.assertEqual({r["key"] for r in calls}, {key})

    def test_a_turn_done_again_calls_each_owner_once(self):
        """A request whose handler fails makes the notifier roll its whole
        turn back and apply it again, each event in a savepoint. The
        requests stored in the first pass had their first attempts on the
        way already: stored again, they must make no second call."""
        self.settle("redo-warm")
        poison = "poison%d" % os.getpid()
        notifier_db = os.path.join(self.cv.data_dir, "notifier.db")
        db = sqlite3.connect(notifier_db, timeout=10)
        try:
            # a failing write for one lead's delivery: its handler fails
            # at every try until the trigger goes
            db.execute("CREATE TRIGGER e2e_poison BEFORE INSERT ON "
                       "notifier_deliveries WHEN instr(NEW.body, '%s') > 0 "
                       "OR instr(NEW.text, '%s') > 0 BEGIN "
                       "SELECT RAISE(ABORT, 'e2e: a failing handler'); END"
                       % (poison, poison))
            db.commit()
            # a burst, so that the poisoned request shares the notifier's
            # turns with others
            leads = [self.new_lead("redo%d" % i) for i in range(30)]
            leads.insert(15, self.new_lead(poison))
            with ThreadPoolExecutor(max_workers=8) as pool:
                ids = list(pool.map(
                    lambda lead: self.cv.accept_lead(lead)["lead_id"],
                    leads))
            poisoned = ids.pop(15)
            for lead_id in ids:
                self.wait_sink_key(first_contact_key(lead_id))
            poll(lambda: "failed; it will be re-sent" in
                 self.cv.tail("notifier", 400), 20, 0.1,
                 "the poisoned request's handler failing")
            time.sleep(1.0)     # a second call would show up now
            twice = {lead_id: len(self.sink.with_key(
                         first_contact_key(lead_id), delivered_only=False))
                     for lead_id in ids}
            self.assertEqual({n for n in twice.values()}, {1}, twice)
            self.assertEqual(self.sink.for_lead(poisoned), [])
        finally:
            db.execute("DROP TRIGGER IF EXISTS e2e_poison")
            db.commit()
            db.close()
        # the poisoned request goes through once its write can be made
        key = first_contact_key(poisoned)
        self.wait_sink_key(key)
        self.wait_written(poisoned)
        time.sleep(1.0)
        self.assertEqual(len(self.sink.with_key(key, delivered_only=False)),
                         1)

    def test_owner_hears_before_the_notifier_commits_and_once(self):
        self.settle("early-warm")
        self.set_fault("slow_sync", "notifier.db %d" % self.SLOW_MS)
        try:
            started = time.monotonic()
            lead_id = self.cv.accept_lead(self.new_lead("early"))["lead_id"]
            key = first_contact_key(lead_id)
            self.wait_sink_key(key, timeout=self.SLOW_MS / 1000.0)
            heard_s = time.monotonic() - started
            # well before the notifier's first slowed commit could end
            self.assertLess(heard_s, self.SLOW_MS / 1000.0 * 0.6,
                            "the webhook waited for the notifier's commit")
        finally:
            self.clear_fault("slow_sync")
        self.wait_written(lead_id)     # after the commit
        time.sleep(1.0)     # a second copy would show up now
        calls = self.sink.with_key(key)
        self.assertEqual(len(calls), 1, [r["at"] for r in calls])


if __name__ == "__main__":
    unittest.main()
