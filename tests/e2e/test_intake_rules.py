"""Intake's own judgements: spam, returning clients, a full disk.

A lead the spam check refuses (a bot filled the hidden honeypot field, too
many links, a blocked domain or phone) is answered 202 like any other, so
the bot learns nothing, but is stored as `rejected` with the reason and is
never given to a person nor merged into a real client's lead. A person
whose earlier lead was won or lost comes back as a new lead flagged as a
returning client (the old lead stays closed). When intake cannot write its
database (the disk is full) it answers 503, and nothing of that lead is
stored anywhere; once there is room again, leads flow as before."""

import os
import time

from conveyor import (ConveyorCase, HarnessError, build_dir, owner_id, poll,
                      tasks_of, timeline_text)

BLOCKED_DOMAIN = "spam-factory.example"
BLOCKED_PHONE = "+7 (999) 000-11-22"


class Spam(ConveyorCase):

    SALES = ("sales-spam-guard",)
    EXTRA_ENV = {
        "CONVEYOR_SPAM_BLOCK_DOMAINS": BLOCKED_DOMAIN,
        "CONVEYOR_SPAM_BLOCK_PHONES": BLOCKED_PHONE,
    }

    def assert_rejected_as_spam(self, lead_id, reason):
        card = self.cv.wait_lead(
            lead_id, lambda c: c.get("stage") == "rejected", 20,
            "lead '%s' rejected as spam" % lead_id)
        score = card.get("score") or {}
        self.assertTrue(score.get("knocked_out"), card)
        self.assertIn("spam: " + reason, score.get("knockout_reason", ""))
        # give routing and the scheduler time to do something wrong
        time.sleep(1.0)
        card = self.cv.lead(lead_id)
        self.assertIsNone(owner_id(card), card)
        self.assertEqual(tasks_of(card), [], card)
        return card

    def test_honeypot_filled_is_stored_as_spam(self):
        lead = self.new_lead("honeypot", _honeypot="http://cheap-pills.example")
        reply = self.cv.accept_lead(lead)
        self.assertIsNone(reply["duplicate_of"])
        self.assert_rejected_as_spam(reply["lead_id"], "honeypot")

    def test_empty_honeypot_is_a_person(self):
        lead = self.new_lead("person", _honeypot="")
        reply = self.cv.accept_lead(lead)
        card = self.wait_assigned(reply["lead_id"])
        self.assertEqual(owner_id(card), "sales-spam-guard")

    def test_links_and_blocklists(self):
        cases = [
            (self.new_lead("links", message="Best offer http://a.example "
                           "http://b.example http://c.example "
                           "https://d.example"), "4 links"),
            (self.new_lead("domain", email="boss@mail.%s" % BLOCKED_DOMAIN),
             "blocked domain"),
            (self.new_lead("phone", phone="8 999 000 11 22"),
             "blocked phone"),
        ]
        for lead, reason in cases:
            with self.subTest(reason=reason):
                reply = self.cv.accept_lead(lead)
                self.assert_rejected_as_spam(reply["lead_id"], reason)

    def test_spam_never_merges_into_a_real_client(self):
        real = self.new_lead("real-client", phone="+7 912 555 44 33")
        first = self.cv.accept_lead(real)
        card = self.wait_assigned(first["lead_id"])
        bot = self.new_lead("bot", phone="+7 912 555 44 33",
                            _honeypot="filled by a bot")
        second = self.cv.accept_lead(bot)
        self.assertIsNone(second["duplicate_of"])
        self.assertNotEqual(second["lead_id"], first["lead_id"])
        self.assert_rejected_as_spam(second["lead_id"], "honeypot")
        # the real client's card is untouched, and a real repeat contact
        # still finds it
        again = self.cv.accept_lead(self.new_lead(
            "real-again", phone="+79125554433"))
        self.assertEqual(again["duplicate_of"], first["lead_id"])
        after = self.cv.lead(first["lead_id"])
        self.assertNotIn("filled by a bot", timeline_text(after))
        self.assertEqual(owner_id(after), owner_id(card))


class ReturningClient(ConveyorCase):

    SALES = ("sales-first-owner",)

    def test_won_client_comes_back_as_a_new_flagged_lead(self):
        email = "director-%d@returning-client.ru" % time.monotonic_ns()
        first = self.cv.accept_lead(self.new_lead("returning", email=email))
        card = self.wait_assigned(first["lead_id"])
        self.cv.console_ok("POST", "/v1/leads/%s/decision" % first["lead_id"],
                           {"result": "won"})
        self.cv.wait_lead(first["lead_id"],
                          lambda c: c.get("stage") == "won", 20)
        # intake hears of the decision through the bus: wait until a new
        # contact is no longer merged into the closed lead
        def comes_back():
            r = self.cv.accept_lead(self.new_lead(
                "returning-again", email=email.upper(),
                message="We want to extend the contract to 60 users"))
            return r if r["duplicate_of"] is None else None
        again = poll(comes_back, 20, 0.5, "a new lead for the returning "
                     "client")
        self.assertNotEqual(again["lead_id"], first["lead_id"])
        new_card = self.cv.wait_lead(
            again["lead_id"],
            lambda c: "returning client" in timeline_text(c), 20,
            "the returning-client flag on the new card")
        text = timeline_text(new_card)
        self.assertIn(first["lead_id"].lower(), text)
        self.assertIn("won", text)
        self.assertIn(owner_id(card), text)
        # the closed lead stays won, with nothing merged into it
        old = self.cv.lead(first["lead_id"])
        self.assertEqual(old.get("stage"), "won")
        self.assertNotIn("60 users", timeline_text(old))
        # and the person's next contact joins the new, open lead
        third = self.cv.accept_lead(self.new_lead("returning-third",
                                                  email=email))
        self.assertEqual(third["duplicate_of"], again["lead_id"])


class DiskFull(ConveyorCase):
    """intake runs with tests/e2e/fault/disk_full.c preloaded: while the
    trigger file names intake.db, its writes fail with ENOSPC."""

    SALES = ("sales-disk",)
    EXTRA_ENV = {}

    @classmethod
    def setUpClass(cls):
        library = os.path.abspath(os.path.join(build_dir(), "lib",
                                               "disk_full.so"))
        if not os.path.exists(library):
            raise HarnessError("'%s' is not built" % library)
        cls.trigger = "/tmp/conveyor-disk-full-%d-%d" % (
            os.getpid(), time.monotonic_ns())
        asan = os.environ.get("ASAN_OPTIONS", "")
        cls.EXTRA_ENV = {
            "LD_PRELOAD": library,
            "CONVEYOR_TEST_DISK_FULL": cls.trigger,
            # a sanitizer build wants its runtime first; ours is harmless
            "ASAN_OPTIONS": (asan + ":" if asan else "")
            + "verify_asan_link_order=0",
        }
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        if os.path.exists(cls.trigger):
            os.unlink(cls.trigger)
        super().tearDownClass()

    def fill_disk(self):
        with open(self.trigger, "w") as f:
            f.write("intake.db\n")

    def free_disk(self):
        os.unlink(self.trigger)

    def test_full_disk_is_503_and_nothing_half_stored(self):
        before = self.cv.accept_lead(self.new_lead("before-full"))
        self.wait_assigned(before["lead_id"])
        self.fill_disk()
        try:
            lost_email = "full-%d@disk-full.ru" % time.monotonic_ns()
            statuses = []
            for i in range(3):
                r = self.cv.post_lead(self.new_lead(
                    "during-full", email=lost_email),
                    idempotency_key="disk-full-%d-%d" % (os.getpid(), i))
                statuses.append(r.status)
                self.assertEqual(r.status, 503, r)
                self.assertEqual(r.json.get("error"), "store_unavailable",
                                 r.json)
        finally:
            self.free_disk()
        self.assertTrue(self.cv.alive("intake"), self.cv.tail("intake"))
        # room again: the same person is a new lead (nothing of the refused
        # posts was kept to merge into), and the first retry key works
        after = poll(lambda: (lambda r: r.json if r.status == 202 else None)(
            self.cv.post_lead(self.new_lead("after-full", email=lost_email),
                              idempotency_key="disk-full-%d-0"
                              % os.getpid())),
            20, 0.5, "intake accepting again")
        self.assertIsNone(after["duplicate_of"], after)
        card = self.wait_assigned(after["lead_id"])
        self.assertEqual(len([e for e in card.get("timeline", [])
                              if e.get("event") == "lead_received"]), 1, card)
        # only the two leads posted with room exist on the console
        ids = set(self.cv.console_db_lead_ids())
        self.assertIn(before["lead_id"], ids)
        self.assertIn(after["lead_id"], ids)
        self.assertEqual(len(ids), 2, ids)
