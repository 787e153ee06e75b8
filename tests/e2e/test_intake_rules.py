"""Intake's own judgements: spam, returning clients, a full disk.

A lead the spam check refuses (a bot filled the hidden honeypot field, too
many links, a blocked domain or phone) is answered 202 like any other, so
the bot learns nothing, but is stored as `rejected` with the reason and is
never given to a person nor merged into a real client's lead. A person
whose earlier lead was won or lost comes back as a new lead flagged as a
returning client (the old lead stays closed). When intake cannot write its
database (the disk is full) it answers 503, and nothing of that lead is
stored anywhere; once there is room again, leads flow as before."""

import hashlib
import json
import os
import sqlite3
import threading
import time

from conveyor import (ConveyorCase, FaultCase, owner_id, poll, tasks_of,
                      timeline_text)

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


class DiskFull(FaultCase):
    """intake runs with tests/e2e/fault/disk_full.c preloaded: while the
    trigger file names intake.db, its writes fail with ENOSPC."""

    SALES = ("sales-disk",)
    FAULTS = ("disk_full",)

    def fill_disk(self):
        self.set_fault("disk_full", "intake.db")

    def free_disk(self):
        self.clear_fault("disk_full")

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


class PacedBatches(ConveyorCase):
    """With batch_linger_ms, a busy intake stores at most one batch per
    window: a lead after a quiet spell, or right behind a batch of one
    lead, is stored at once, and leads that
    come within the window of a batch of several wait for its end, no
    longer, and share the next batch. They do not wake the bus early (that
    cost an empty transaction per batch); its sleep is bounded by the window
    instead. Heartbeats are slowed down and the batch of several is made of
    Idempotency-Key retries (no event, so no acknowledgement comes back), so
    that nothing else would wake a bus that overslept. That batch is made
    for sure the way a slow disk makes one: while the test holds intake's
    database for a moment, the retries posted meanwhile pile up, and the
    turn that waited for the database stores them all."""

    SALES = ("sales-paced",)
    EXTRA_ENV = {"CONVEYOR_BATCH_LINGER_MS": "300",
                 "CONVEYOR_HEARTBEAT_MS": "4000"}

    def start_together(self, post, count):
        """Starts post(i) for i in range(count) at once, each in a thread;
        returns a function that waits for them and gives, for each, its
        result, its seconds and the monotonic time it ended."""
        results = [None] * count

        def run(i):
            started = time.monotonic()
            try:
                value = post(i)
            except Exception as error:  # raised again in the test thread
                value = error
            ended = time.monotonic()
            results[i] = (value, ended - started, ended)

        threads = [threading.Thread(target=run, args=(i,))
                   for i in range(count)]
        for t in threads:
            t.start()

        def join():
            for t in threads:
                t.join()
            for value, _, _ in results:
                if isinstance(value, Exception):
                    raise value
            return results
        return join

    def test_leads_in_the_window_wait_for_its_end_and_no_longer(self):
        seeds = [self.new_lead("paced-seed-%d" % i) for i in range(4)]
        keys = ["paced-%d-%d-%d" % (os.getpid(), time.monotonic_ns(), i)
                for i in range(4)]
        stored = [self.cv.accept_lead(seed, idempotency_key=key)
                  for seed, key in zip(seeds, keys)]
        path = os.path.join(self.cv.data_dir, "intake.db")
        for attempt in range(2):
            time.sleep(1.0)  # a quiet spell: the next batch goes at once
            started = time.monotonic()
            again = self.cv.post_lead(seeds[0], idempotency_key=keys[0])
            self.assertEqual(again.status, 202, again)
            self.assertEqual(again.json, stored[0])
            self.assertLess(time.monotonic() - started, 0.25,
                            "stored at once after a quiet spell")
            # right behind a batch of one lead: not busy, at once again
            started = time.monotonic()
            again = self.cv.post_lead(seeds[0], idempotency_key=keys[0])
            self.assertEqual(again.status, 202, again)
            self.assertLess(time.monotonic() - started, 0.25,
                            "stored at once behind a batch of one")
            # a batch of several: three retries posted while intake's
            # database is held pile up, and are stored together
            db = sqlite3.connect(path, timeout=10, isolation_level=None)
            try:
                db.execute("BEGIN IMMEDIATE")
                retried = self.start_together(
                    lambda i: self.cv.post_lead(seeds[1 + i],
                                                idempotency_key=keys[1 + i]),
                    3)
                time.sleep(0.5)
            finally:
                db.close()  # rolls back: the database is free again
            batch = retried()
            for i, (reply, _, _) in enumerate(batch):
                self.assertEqual(reply.status, 202, reply)
                self.assertEqual(reply.json, stored[1 + i])
            batch_ended = [ended for _, _, ended in batch]
            self.assertLess(max(batch_ended) - min(batch_ended), 0.15,
                            "the retries were stored together")
            # right behind that batch, inside its window: two leads wait
            # for the end of its 300 ms window, no longer, and go together
            behind = self.start_together(
                lambda i: self.cv.accept_lead(
                    self.new_lead("paced-behind-%d" % i)), 2)()
            for reply, seconds, _ in behind:
                self.assertGreater(seconds, 0.15, "paced behind the batch")
                self.assertLess(seconds, 1.5, "waits for the window, no more")
                self.assertIsNone(reply["duplicate_of"], reply)
            behind_ended = [ended for _, _, ended in behind]
            self.assertLess(max(behind_ended) - min(behind_ended), 0.15,
                            "the leads behind it went together")
        # a burst shares the windows and every lead of it is answered
        replies = self.start_together(
            lambda i: self.cv.accept_lead(
                self.new_lead("paced-burst-%d" % i)), 8)()
        self.assertEqual(len(replies), 8)
        self.assertEqual(len({r["lead_id"] for r, _, _ in replies}), 8)
        self.assertLess(max(s for _, s, _ in replies), 2.5, replies)
        self.wait_assigned(replies[0][0]["lead_id"])


class IdempotencyAcrossUpgrade(ConveyorCase):
    """Intake keeps a fingerprint of each Idempotency-Key's body (cheaper
    than the SHA-256 it kept before). A reply stored by an older intake,
    with a SHA-256 of the media type and body, still answers a retry of
    the same body, and still refuses another body."""

    SALES = ("sales-upgrade",)

    def test_reply_stored_with_a_sha256_is_still_replayed(self):
        key = "upgrade-%d-%d" % (os.getpid(), time.monotonic_ns())
        body = json.dumps(self.new_lead("upgrade")).encode("utf-8")
        headers = {"Content-Type": "application/json",
                   "Idempotency-Key": key}
        first = self.cv.intake("POST", "/v1/leads", body, headers)
        self.assertEqual(first.status, 202, first)
        path = os.path.join(self.cv.data_dir, "intake.db")
        db = sqlite3.connect(path, timeout=10)
        try:
            stored = db.execute("SELECT body_hash FROM idempotency"
                                " WHERE key = ?", (key,)).fetchall()
            self.assertEqual(len(stored), 1, stored)
            self.assertTrue(stored[0][0].startswith("f1:"), stored)
            # what an intake before fingerprints kept for this request
            legacy = hashlib.sha256(b"application/json\x00" + body)
            with db:
                db.execute("UPDATE idempotency SET body_hash = ?"
                           " WHERE key = ?", (legacy.hexdigest(), key))
        finally:
            db.close()
        again = self.cv.intake("POST", "/v1/leads", body, headers)
        self.assertEqual(again.status, 202, again)
        self.assertEqual(again.headers.get("idempotent-replayed"), "true")
        self.assertEqual(again.json, first.json)
        other = self.cv.intake("POST", "/v1/leads",
                               body.replace(b"CRM", b"ERP"), headers)
        self.assertEqual(other.status, 422, other)
        self.assertEqual(other.json.get("error"), "idempotency_key_reused")
        # and a fingerprinted reply answers its retries as well
        key2 = key + "-new"
        headers2 = dict(headers, **{"Idempotency-Key": key2})
        made = self.cv.intake("POST", "/v1/leads",
                              body.replace(b"upgrade", b"fresh"), headers2)
        self.assertEqual(made.status, 202, made)
        self.assertIsNone(made.json["duplicate_of"], made.json)
        replay = self.cv.intake("POST", "/v1/leads",
                                body.replace(b"upgrade", b"fresh"), headers2)
        self.assertEqual(replay.json, made.json)
        self.assertEqual(replay.headers.get("idempotent-replayed"), "true")
        changed = self.cv.intake("POST", "/v1/leads", body, headers2)
        self.assertEqual(changed.status, 422, changed)
