"""The lead card shows the first score whichever way the lead goes.

Scoring sends a lead's first score to routing alone unless it knocks the
lead out; routing's answer to the console carries it (LeadAssigned to the
owner, LeadUnassigned when nobody can take the lead and it waits). The
card must look as it did when scoring told the console itself: the score
with its parameters, the stage, and one "scored" entry by scoring on the
timeline, at the time the lead was scored and before routing's entry.
"""

import os
import tempfile

from conveyor import ConveyorCase, owner_id, score_params, timeline_text

RULES_DIR = tempfile.mkdtemp(prefix="conveyor-e2e-console-score-")
RULES = os.path.join(RULES_DIR, "routing-rules.yaml")
with open(RULES, "w", encoding="utf-8") as f:
    # a lead from the trade fair matches no rule: it waits for somebody
    f.write("""\
version: "console-score-1"
rules:
  - name: inbound
    match: {source: [site-form]}
    strategy: round_robin
    pool: {role: sales, tier: 2, team: e2e}
""")


def entries(card, event):
    return [e for e in card.get("timeline", []) if e.get("event") == event]


class ConsoleScore(ConveyorCase):
    EXTRA_ENV = {"CONVEYOR_ROUTING_RULES": RULES}

    def scored_entry(self, card):
        """The card's one "scored" entry, checked against its score."""
        scored = entries(card, "lead_scored")
        self.assertEqual(len(scored), 1, card["timeline"])
        entry = scored[0]
        self.assertEqual(entry["actor"], "scoring")
        return entry

    def test_assigned_lead_shows_its_score_once_before_the_assignment(self):
        lead_id = self.cv.accept_lead(self.new_lead("owned"))["lead_id"]
        card = self.cv.wait_lead(
            lead_id, lambda c: owner_id(c) and entries(c, "lead_assigned"),
            20, "lead '%s' assigned" % lead_id)
        self.assertEqual(card["stage"], "assigned")
        score = card["score"]
        self.assertIn("budget", score_params(card))
        entry = self.scored_entry(card)
        self.assertEqual(entry["detail"], "scored %+d, segment %s"
                         % (score["total"], score["segment"]))
        assigned = entries(card, "lead_assigned")[0]
        self.assertLessEqual(entry["at"], assigned["at"])
        events = [e["event"] for e in card["timeline"]]
        self.assertLess(events.index("lead_scored"),
                        events.index("lead_assigned"), events)

    def test_waiting_lead_shows_its_score_and_stage(self):
        lead_id = self.cv.accept_lead(
            self.new_lead("waits", source="trade-fair"))["lead_id"]
        card = self.cv.wait_lead(
            lead_id, lambda c: "nobody available" in timeline_text(c), 20,
            "the card saying why lead '%s' waits" % lead_id)
        self.assertIsNone(owner_id(card))
        self.assertEqual(card["stage"], "scored")
        score = card["score"]
        self.assertFalse(score["knocked_out"])
        self.assertEqual(len(score_params(card)), 15)
        entry = self.scored_entry(card)
        self.assertEqual(entry["detail"], "scored %+d, segment %s"
                         % (score["total"], score["segment"]))
        # the stage moved when the lead was scored, not when it was parked
        self.assertEqual(card["stage_at"], entry["at"])
        waiting = entries(card, "lead_unassigned")[0]
        self.assertLessEqual(entry["at"], waiting["at"])
        events = [e["event"] for e in card["timeline"]]
        self.assertLess(events.index("lead_scored"),
                        events.index("lead_unassigned"), events)

    def test_knocked_out_lead_shows_why(self):
        lead_id = self.cv.accept_lead(
            self.new_lead("tiny", budget=5000))["lead_id"]
        card = self.cv.wait_lead(
            lead_id, lambda c: c.get("stage") == "rejected"
            and entries(c, "lead_unassigned"), 20,
            "lead '%s' rejected" % lead_id)
        self.assertTrue(card["score"]["knocked_out"])
        entry = self.scored_entry(card)
        self.assertTrue(entry["detail"].startswith("knocked out: budget"),
                        entry)
        self.assertIsNone(owner_id(card))


if __name__ == "__main__":
    import unittest
    unittest.main()
