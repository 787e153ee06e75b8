"""What a channel sees when it posts something intake cannot take.

Each refusal has the documented status and error body, and nothing of the
refused request is stored: the console gains no lead and the contact is
still unknown to intake afterwards."""

import json
import time
import unittest

from conveyor import INTAKE_KEY, ConveyorCase, lead_id_of


class BadInput(ConveyorCase):

    SALES = ("sales-gleb",)

    def unique_email(self, tag):
        return "%s-%d@bad-input.ru" % (tag, time.time_ns())

    def cases(self):
        """(name, email that must stay unknown, request kwargs, status)."""
        out = []
        email = self.unique_email("malformed")
        out.append(("malformed JSON", email, dict(
            body='{"name": "Broken", "email": "%s", ' % email,
            headers={"Content-Type": "application/json"}), 400))
        email = self.unique_email("plain")
        out.append(("wrong content type", email, dict(
            body=json.dumps({"name": "Plain", "email": email}),
            headers={"Content-Type": "text/plain"}), 415))
        email = self.unique_email("huge")
        out.append(("oversized body", email, dict(
            body=json.dumps({"name": "Huge", "email": email,
                             "message": "x" * (1024 * 1024 + 4096)}),
            headers={"Content-Type": "application/json"}), 413))
        out.append(("no contact", None, dict(
            body={"name": "Nobody", "company": "No Contacts LLC",
                  "message": "call me maybe"}), 422))
        email = self.unique_email("wrongkey")
        out.append(("wrong key", email, dict(
            body={"name": "Intruder", "email": email},
            key="not-the-key"), 401))
        email = self.unique_email("nokey")
        out.append(("missing key", email, dict(
            body={"name": "Anonymous", "email": email}, key=None), 401))
        email = self.unique_email("badjson")
        out.append(("not an object", email, dict(
            body='["%s"]' % email,
            headers={"Content-Type": "application/json"}), (400, 422)))
        return out

    def console_lead_ids(self):
        return {lead_id_of(x) for x in self.cv.leads()}

    def test_refusals_have_error_bodies_and_store_nothing(self):
        cases = self.cases()
        before = self.console_lead_ids()
        for name, email, req, status in cases:
            with self.subTest(case=name):
                key = req.pop("key", INTAKE_KEY)
                r = self.cv.intake("POST", "/v1/leads", key=key, **req)
                allowed = status if isinstance(status, tuple) else (status,)
                self.assertIn(r.status, allowed, "%s: %r" % (name, r))
                body = r.json
                self.assertIsInstance(body, dict, "%s: %r" % (name, r))
                self.assertTrue(isinstance(body.get("error"), str)
                                and body["error"], body)
                self.assertTrue(isinstance(body.get("message"), str)
                                and body["message"], body)
                if r.status == 422:
                    self.assertTrue(body.get("field"),
                                    "422 does not name the field: %r" % body)

        # A good lead posted after the refusals reaches the console; by
        # then anything the refusals had stored would have arrived too.
        good = self.cv.accept_lead(self.new_lead("after-refusals"))
        self.cv.wait_lead(good["lead_id"], lambda c: True, 20,
                          "the good lead on the console")
        self.assertEqual(self.console_lead_ids() - before,
                         {good["lead_id"]})

        # Intake never kept the refused contacts: posting them now makes
        # new leads, not duplicates.
        for name, email, _, _ in cases:
            if email is None:
                continue
            with self.subTest(contact=name):
                reply = self.cv.accept_lead({"name": name, "email": email})
                self.assertIsNone(reply["duplicate_of"], name)

    def test_unknown_path_and_method(self):
        r = self.cv.intake("GET", "/v1/leads")
        self.assertIn(r.status, (404, 405), r)
        r = self.cv.intake("POST", "/v1/nowhere", body={"email": "a@b.ru"})
        self.assertEqual(r.status, 404, r)


if __name__ == "__main__":
    unittest.main()
