"""The four channels as their senders really post, and one lead per person.

A call-tracking webhook (generic JSON and Twilio's form), a Telegram bot
update (with and without a shared contact), a raw email in windows-1251:
each becomes a lead on the console, the same event posted twice is one
event, what is not a lead (a ringing call, a callback query, an
out-of-office reply) is answered 200 and stores nothing, and a form, a call
and an email from the same person end up as one lead with every channel's
history on its card. A source over its rate gets 429 with Retry-After."""

import base64
import json
import time
import unittest
import urllib.parse

from conveyor import (INTAKE_KEY, TELEGRAM_SECRET, ConveyorCase, poll)


def unique_digits():
    """Seven digits that differ from run to run, for a fresh phone."""
    return "%07d" % (time.time_ns() // 1000 % 10000000)


def contact(card, kind):
    """The card's contact of that kind, wherever the card keeps it."""
    contacts = card.get("contacts")
    if isinstance(contacts, dict) and kind in contacts:
        return contacts[kind]
    return card.get(kind)


def timeline_text(card):
    return json.dumps(card.get("timeline", []), ensure_ascii=False)


class Channels(ConveyorCase):

    SALES = ("sales-ivan",)

    def post(self, channel, body, headers=None, key=INTAKE_KEY):
        return self.cv.intake("POST", "/v1/channels/%s" % channel, body,
                              headers, key)

    def telegram(self, update, secret=TELEGRAM_SECRET):
        hdrs = {"Content-Type": "application/json"}
        if secret is not None:
            hdrs["X-Telegram-Bot-Api-Secret-Token"] = secret
        return self.post("telegram", json.dumps(update, ensure_ascii=False),
                         hdrs, key=None)

    def wait_card(self, lead_id):
        return self.cv.wait_lead(lead_id, lambda c: True, 20, "the card")

    # --- phone ---------------------------------------------------------

    def test_missed_call_twilio_form_makes_one_lead(self):
        phone = "+7912" + unique_digits()
        sid = "CA%d" % time.time_ns()
        form = urllib.parse.urlencode({
            "CallSid": sid, "From": phone, "To": "+74951234567",
            "CallStatus": "no-answer", "CallDuration": "0"})
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
        r = self.post("phone", form, hdrs)
        self.assertEqual(r.status, 202, r)
        lead_id = r.json["lead_id"]
        # Twilio retries its webhook: the same CallSid is the same event
        again = self.post("phone", form, hdrs)
        self.assertEqual(again.status, 202, again)
        self.assertEqual(again.json, r.json)
        card = self.wait_card(lead_id)
        self.assertEqual(card.get("channel"), "phone")
        self.assertEqual(contact(card, "phone"), phone)
        self.assertIn("Missed call", json.dumps(card, ensure_ascii=False))

    def test_ringing_call_is_not_stored(self):
        phone = "+7912" + unique_digits()
        sid = "CA-ring-%d" % time.time_ns()
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
        ringing = urllib.parse.urlencode({
            "CallSid": sid, "From": phone, "CallStatus": "ringing"})
        r = self.post("phone", ringing, hdrs)
        self.assertEqual((r.status, r.json),
                         (200, {"status": "ignored",
                                "reason": "pending call"}))
        # the outcome under the same CallSid still makes the lead
        done = urllib.parse.urlencode({
            "CallSid": sid, "From": phone, "CallStatus": "completed",
            "CallDuration": "95"})
        r = self.post("phone", done, hdrs)
        self.assertEqual(r.status, 202, r)
        self.assertIsNone(r.json["duplicate_of"])

    def test_answered_call_json(self):
        phone = "+7912" + unique_digits()
        r = self.post("phone", {
            "call_id": "gen-%d" % time.time_ns(), "caller": phone,
            "called": "+74951234567", "started_at": "2026-11-20T10:15:00+03:00",
            "duration": 185, "status": "answered",
            "recording_url": "https://calls.example/rec/1.mp3"})
        self.assertEqual(r.status, 202, r)
        card = self.wait_card(r.json["lead_id"])
        self.assertIn("3 min 5 s", json.dumps(card, ensure_ascii=False))

    def test_bad_call_events(self):
        r = self.post("phone", {"caller": "+79123456789"})
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json.get("field"), "call_id")
        r = self.post("phone", {"call_id": "x", "caller": "+7912",
                                "status": "answered", "duration": 3})
        self.assertEqual(r.status, 422, r)
        r = self.post("phone", {"call_id": "y", "caller": "+79123456789",
                                "started_at": "yesterday"})
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json.get("field"), "started_at")
        r = self.post("phone", {"call_id": "z", "caller": "+79123456789"},
                      key="wrong")
        self.assertEqual(r.status, 401, r)

    # --- telegram ------------------------------------------------------

    def test_telegram_message_then_shared_contact(self):
        user = 700000000 + time.time_ns() % 100000000
        update_id = time.time_ns() % 1000000000
        msg = {"update_id": update_id, "message": {
            "message_id": 1, "date": int(time.time()),
            "chat": {"id": user, "type": "private"},
            "from": {"id": user, "is_bot": False, "first_name": "Ольга",
                     "last_name": "Смирнова"},
            "text": "Здравствуйте, сколько стоит внедрение?"}}
        r = self.telegram(msg)
        self.assertEqual(r.status, 202, r)
        lead_id = r.json["lead_id"]
        # Telegram re-delivers an update it got no answer for
        again = self.telegram(msg)
        self.assertEqual(again.json, r.json)
        # she shares her phone: the same person, now reachable by phone
        phone = "+7912" + unique_digits()
        shared = {"update_id": update_id + 1, "message": {
            "message_id": 2, "date": int(time.time()),
            "chat": {"id": user, "type": "private"},
            "from": {"id": user, "is_bot": False, "first_name": "Ольга"},
            "contact": {"phone_number": phone[1:], "first_name": "Ольга",
                        "user_id": user}}}
        r = self.telegram(shared)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json["duplicate_of"], lead_id)
        card = self.cv.wait_lead(
            lead_id, lambda c: contact(c, "phone") == phone, 20,
            "the shared phone on the card")
        self.assertEqual(card.get("channel"), "social")
        self.assertIn("Ольга Смирнова", json.dumps(card, ensure_ascii=False))

    def test_telegram_other_updates_and_secret(self):
        r = self.telegram({"update_id": 5, "callback_query": {
            "id": "1", "from": {"id": 1, "is_bot": False, "first_name": "A"},
            "data": "x"}})
        self.assertEqual((r.status, r.json),
                         (200, {"status": "ignored",
                                "reason": "not a message"}))
        msg = {"update_id": 6, "message": {
            "message_id": 1, "date": 1763800000,
            "chat": {"id": 9, "type": "private"},
            "from": {"id": 9, "is_bot": False, "first_name": "X"},
            "text": "hi"}}
        self.assertEqual(self.telegram(msg, secret="wrong").status, 401)
        self.assertEqual(self.telegram(msg, secret=None).status, 401)
        r = self.telegram({"message": {}})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json.get("field"), "update_id")

    # --- email ---------------------------------------------------------

    def email(self, raw):
        return self.post("email", raw,
                         {"Content-Type": "message/rfc822"})

    def cp1251_mail(self, address, phone_local, message_id):
        body = ("Добрый день!\r\nПросим прислать КП на 40 тонн арматуры.\r\n"
                "\r\n-- \r\nС уважением,\r\nПётр Кузнецов\r\n"
                "ООО «МеталлТорг»\r\nтел. 8 (912) %s-%s-%s\r\n"
                % (phone_local[:3], phone_local[3:5], phone_local[5:]))
        subject = base64.b64encode("Запрос КП".encode("cp1251")).decode()
        name = base64.b64encode("Пётр Кузнецов".encode("cp1251")).decode()
        head = ("From: =?windows-1251?B?%s?= <%s>\r\n"
                "To: sales@conveyor.example\r\n"
                "Subject: =?windows-1251?B?%s?=\r\n"
                "Message-ID: <%s>\r\n"
                "MIME-Version: 1.0\r\n"
                "Content-Type: multipart/alternative; boundary=\"b1\"\r\n"
                "\r\n" % (name, address, subject, message_id))
        part = base64.encodebytes(body.encode("cp1251")).decode()
        html = "<p>Просим прислать КП</p>".encode("cp1251")
        qp = "".join("=%02X" % b if b > 127 else chr(b) for b in html)
        return (head + "--b1\r\n"
                "Content-Type: text/plain; charset=windows-1251\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n" + part +
                "--b1\r\nContent-Type: text/html; charset=windows-1251\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + qp +
                "\r\n--b1--\r\n").encode("ascii")

    def test_email_windows_1251(self):
        local = unique_digits()
        address = "p.kuznetsov-%d@metalltorg.ru" % time.time_ns()
        raw = self.cp1251_mail(address, local, "m-%d@metalltorg.ru"
                               % time.time_ns())
        r = self.email(raw)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(self.email(raw).json, r.json)  # same Message-ID
        card = self.wait_card(r.json["lead_id"])
        text = json.dumps(card, ensure_ascii=False)
        self.assertEqual(card.get("channel"), "email")
        self.assertEqual(contact(card, "email"), address)
        self.assertEqual(contact(card, "phone"), "+7912" + local)
        self.assertIn("Пётр Кузнецов", text)
        self.assertIn("Запрос КП", text)
        self.assertIn("МеталлТорг", text)

    def test_auto_reply_is_not_a_lead(self):
        address = "away-%d@client.ru" % time.time_ns()
        raw = ("From: Away <%s>\r\nSubject: Автоматический ответ: Запрос\r\n"
               "Auto-Submitted: auto-replied\r\nMessage-ID: <ooo-%d@c>\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n\r\n"
               "Я в отпуске до 1 декабря.\r\n"
               % (address, time.time_ns())).encode("utf-8")
        r = self.email(raw)
        self.assertEqual((r.status, r.json),
                         (200, {"status": "ignored", "reason": "auto_reply"}))
        # nothing stored: the address is new to intake afterwards
        fresh = self.cv.accept_lead({"email": address})
        self.assertIsNone(fresh["duplicate_of"])
        r = self.post("email", b"From: x@y.ru\r\n\r\nhi",
                      {"Content-Type": "text/plain"})
        self.assertEqual(r.status, 415, r)

    # --- one lead per person ---------------------------------------------

    def test_form_then_call_then_email_is_one_lead(self):
        local = unique_digits()
        phone = "+7912" + local
        address = "p.kuznetsov-%d@metalltorg.ru" % time.time_ns()
        form = urllib.parse.urlencode({
            "name": "Пётр", "email": address, "message": "Нужна арматура"})
        r = self.cv.post_lead(form, headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status, 202, r)
        lead_id = r.json["lead_id"]
        # the call comes from the number he did not give on the form...
        call = self.post("phone", {"call_id": "c-%d" % time.time_ns(),
                                   "caller": phone, "status": "missed"})
        self.assertEqual(call.status, 202, call)
        call_lead = call.json["lead_id"]
        # ...so it is a lead of its own until his email carries both
        mail = self.email(self.cp1251_mail(address, local,
                                           "x-%d@m.ru" % time.time_ns()))
        self.assertEqual(mail.status, 202, mail)
        self.assertEqual(mail.json["duplicate_of"], lead_id)
        # a later call from that number now finds the one lead
        call2 = self.post("phone", {"call_id": "c2-%d" % time.time_ns(),
                                    "caller": "8 912 " + local,
                                    "status": "answered", "duration": 60})
        self.assertIn(call2.json["lead_id"], (lead_id, call_lead))
        card = self.cv.wait_lead(
            lead_id, lambda c: contact(c, "phone") == phone, 20,
            "the email's phone on the form's lead")
        text = timeline_text(card)
        self.assertIn("email", text)


class RateLimit(ConveyorCase):

    SALES = ("sales-rita",)
    EXTRA_ENV = {"CONVEYOR_INTAKE_RATE": "2/5"}

    def test_over_the_rate_gets_429_and_stores_nothing(self):
        statuses = []
        refused = None
        for i in range(12):
            r = self.cv.post_lead({"email": "rl-%d-%d@rate.ru"
                                   % (i, time.time_ns())})
            statuses.append(r.status)
            if r.status == 429 and refused is None:
                refused = r
        self.assertGreaterEqual(statuses.count(202), 5)
        self.assertLessEqual(statuses.count(202), 7)
        self.assertIsNotNone(refused, statuses)
        self.assertEqual(refused.json.get("error"), "rate_limited")
        self.assertGreaterEqual(int(refused.headers["retry-after"]), 1)
        # after Retry-After the source may post again
        time.sleep(int(refused.headers["retry-after"]))
        r = self.cv.post_lead({"email": "rl-late-%d@rate.ru" % time.time_ns()})
        self.assertEqual(r.status, 202, r)
        # the refused leads were not stored
        accepted = statuses.count(202) + 1
        poll(lambda: len(self.cv.leads()) >= accepted, 20, 0.2,
             "accepted leads on the console")
        time.sleep(0.5)
        self.assertEqual(len(self.cv.leads()), accepted)


if __name__ == "__main__":
    unittest.main()
