"""The first-contact SLA: 30 minutes after arrival an untouched lead is
escalated and its owner reminded; a lead that got its call is not.

Time moves by writing CONVEYOR_CLOCK_FILE, which every process reads."""

import time
import unittest

from conveyor import (ConveyorCase, first_contact_key, owner_id, poll,
                      tasks_of, timeline_text)

# The cancellation of a timer by a call has no observable reply; give the
# scheduler this long to apply it before time jumps.
CANCEL_SETTLE_SECONDS = 2.0


class FirstContactSla(ConveyorCase):

    SALES = ("sales-ivan",)

    def test_missed_first_contact_escalates_and_reminds(self):
        late = self.cv.accept_lead(self.new_lead("sla-late"))["lead_id"]
        called = self.cv.accept_lead(self.new_lead("sla-called"))["lead_id"]
        for lid in (late, called):
            self.wait_assigned(lid)
            self.wait_sink_key(first_contact_key(lid))
        owner = owner_id(self.cv.lead(called))

        # The owner calls one of the two clients at once.
        self.cv.console_ok("POST", "/v1/leads/%s/activities" % called,
                           {"type": "call", "duration": 95,
                            "outcome": "reached the decision maker"},
                           token=self.tokens.get(owner))
        self.cv.wait_lead(called, lambda c: c.get("stage") == "contacted",
                          15, "stage 'contacted' after the call")
        time.sleep(CANCEL_SETTLE_SECONDS)

        # Nothing escalates before the deadline...
        self.cv.set_clock(29 * 60)
        self.assertNotIn("escalat", timeline_text(self.cv.lead(late)))

        # ...and 31 minutes after arrival the untouched lead does.
        self.cv.set_clock(31 * 60)
        timer = "tmr-%s-first-contact" % late
        card = self.cv.wait_lead(
            late, lambda c: "escalat" in timeline_text(c), 20,
            "an escalation on the timeline of '%s'" % late)
        self.assertTrue(tasks_of(card, "first_contact"),
                        "the overdue task disappeared")
        reminder = self.wait_sink_key("ntf-%s-L1" % timer)
        self.assertEqual(reminder[0]["path"], "/staff/%s" % owner_id(card))
        self.assertIn(late, reminder[0]["raw"])

        # The called lead is not escalated and nobody is reminded of it.
        card = self.cv.lead(called)
        self.assertNotIn("escalat", timeline_text(card))
        keys = {r["key"] for r in self.sink.snapshot() if called in r["raw"]}
        self.assertEqual(keys, {first_contact_key(called)})

        # Restarting the scheduler does not fire the reminder again under
        # another key (timers are rows; effects are deduplicated).
        self.cv.restart("followup-scheduler")
        late_lead = self.cv.accept_lead(self.new_lead("sla-after"))
        self.wait_assigned(late_lead["lead_id"])
        keys = {r["key"] for r in self.sink.delivered() if late in r["raw"]}
        self.assertIn("ntf-%s-L1" % timer, keys)
        strays = {k for k in keys if k != first_contact_key(late)
                  and not k.startswith("ntf-%s-L" % timer)}
        self.assertEqual(strays, set(), "notifications under other keys")
        self.assertTrue(poll(lambda: self.cv.dead() == [], 5, 0.1,
                             "every process alive"))


if __name__ == "__main__":
    unittest.main()
