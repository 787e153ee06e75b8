"""People in the loop of scoring (PRODUCT.md section 2), as staff see it.

After the first call a manager sets parameters on the lead's scorecard
(PUT /v1/leads/{id}/scorecard): the reply has the new score at once, the
scoring stage scores the lead again with the same rules and the card shows
it, per parameter with its source (the rule, or the person) and reason. A
lead moved to segment A brings the head of sales in with a review task and
makes its proposal the full package; one moved to C goes to a junior who
sends the rejection; a manager's knock-out rejects the lead. The rules
file is reloaded on SIGHUP, and a broken one leaves the old rules working.
"""

import json
import os
import re
import shutil
import subprocess
import signal
import tempfile
import time

from conveyor import (ADMIN_TOKEN, ConveyorCase, http_request, owner_id,
                      poll, score_params, tasks_of, timeline_text)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_RULES = os.path.join(HERE, "..", "..", "deploy", "scoring-rules.yaml")

# The rules this conveyor runs: the default file under another version, in
# a folder of its own (made when the class starts) so the test can change
# and reload it.
RULES = None


def write_rules(version, broken=False):
    with open(DEFAULT_RULES, encoding="utf-8") as f:
        text = f.read()
    text = text.replace("version: default-1", "version: %s" % version)
    if broken:
        text = text.replace("kind: budget_bands", "kind: budgte")
    tmp = RULES + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, RULES)

# The five parameters nobody can judge from a web form: what a manager
# learns on the first call.
AFTER_THE_CALL = {"volume": 1, "profitability": 1, "timeline": 1,
                  "positioning": 1, "dm_access": 1}


def metric(addr, name):
    """The value of a counter on a service's /metrics, 0 when absent."""
    r = http_request(addr, "GET", "/metrics")
    for line in r.body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    return 0


class Scorecard(ConveyorCase):

    SALES = ("sales-anna", "sales-boris")
    rules_dir = None

    @classmethod
    def setUpClass(cls):
        global RULES
        cls.rules_dir = tempfile.mkdtemp(prefix="conveyor-e2e-rules-")
        RULES = os.path.join(cls.rules_dir, "scoring-rules.yaml")
        write_rules("e2e-1")
        cls.EXTRA_ENV = {"CONVEYOR_SCORING_RULES": RULES}
        super().setUpClass()

    @classmethod
    def seed(cls):
        head = cls.cv.create_staff("head-nina", role="head", tier=None,
                                   webhook=cls.sink.url("/staff/head-nina"))
        cls.tokens["head-nina"] = head["token"]
        junior = cls.cv.create_staff(
            "junior-ivan", role="telemarketer", tier=1,
            webhook=cls.sink.url("/staff/junior-ivan"))
        cls.tokens["junior-ivan"] = junior["token"]

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        if cls.rules_dir is not None:
            shutil.rmtree(cls.rules_dir, ignore_errors=True)

    # --- helpers ----------------------------------------------------------

    def scorecard(self, lead_id, body, token):
        return self.cv.console("PUT", "/v1/leads/%s/scorecard" % lead_id,
                               body, token=token)

    def assigned_lead(self, tag, **fields):
        """A web lead (segment B, +5 by the rules) and its owner."""
        lead_id = self.cv.accept_lead(self.new_lead(tag, **fields))["lead_id"]
        card = self.wait_assigned(lead_id)
        return lead_id, owner_id(card), card

    def wait_revision(self, lead_id, revision):
        """The card once the scoring stage's re-score of `revision` is on
        it."""
        return self.cv.wait_lead(
            lead_id,
            lambda c: (c.get("score") or {}).get("revision") == revision,
            20, "lead '%s' re-scored to revision %d" % (lead_id, revision))

    # --- tests ------------------------------------------------------------

    def test_manager_moves_a_lead_from_b_to_a_and_the_belt_reacts(self):
        lead_id, owner, card = self.assigned_lead("vip")
        score = card["score"]
        self.assertEqual((score["total"], score["segment"]), (5, "B"), score)
        self.assertEqual(score["model_version"], "e2e-1")
        # every parameter explains itself: value, the rule, why
        params = score_params(card)
        self.assertEqual(params["budget"]["source"], "auto:budget_band")
        self.assertEqual(params["budget"]["reason"],
                         "budget 1500000 RUB at or above 1000000 RUB")
        self.assertEqual(params["dm_access"]["source"], "auto:not_judged")

        # the owner fills in what the first call told them
        r = self.scorecard(lead_id, {"params": AFTER_THE_CALL},
                           self.tokens[owner])
        self.assertEqual(r.status, 200, r)
        reply = r.json
        self.assertEqual((reply["score"]["total"], reply["score"]["segment"]),
                         (10, "A"), reply)
        self.assertEqual(reply["previous"],
                         {"total": 5, "segment": "B", "knocked_out": False})
        self.assertEqual(reply["revision"], 1)
        self.assertEqual(sorted(c["param"] for c in reply["changes"]),
                         sorted(AFTER_THE_CALL))
        self.assertTrue(all(c["old"] == 0 and c["new"] == 1
                            for c in reply["changes"]), reply["changes"])

        # the scoring stage's own score reaches the card and agrees with
        # the console's preview, parameter by parameter
        card = self.wait_revision(lead_id, 1)
        self.assertEqual(card["score"], reply["score"])
        params = score_params(card)
        self.assertEqual(params["dm_access"]["value"], 1)
        self.assertEqual(params["dm_access"]["source"], owner)
        self.assertTrue(params["dm_access"]["reason"].startswith(
            "set by %s at " % owner), params["dm_access"])
        self.assertIn("auto:not_judged said 0", params["dm_access"]["reason"])
        self.assertEqual(params["budget"]["source"], "auto:budget_band")
        timeline = timeline_text(card)
        self.assertIn("scorecard by %s" % owner, timeline)
        self.assertIn("segment a (was b)", timeline)

        # routing: the owner keeps the lead, the head of sales joins it
        # with a review task and hears about it on their webhook
        card = self.cv.wait_lead(
            lead_id, lambda c: tasks_of(c, "vip_review"), 20,
            "the head's review task on the card")
        self.assertEqual(owner_id(card), owner)
        review = tasks_of(card, "vip_review")[0]
        self.assertEqual(review["staff_id"], "head-nina")
        self.assertEqual(review["id"], "%s-vip-review" % lead_id)
        self.assertIn("joins the lead by segment_a", timeline_text(card))
        hits = self.wait_sink_key("ntf-%s-vip-review" % lead_id)
        self.assertEqual(hits[0]["path"], "/staff/head-nina")

        # the proposal generator keeps the segment: the next proposal is
        # the full package, for the head to approve
        poll(lambda: metric(self.cv.admin_addr["proposal-generator"],
                            "conveyor_proposal_segment_changes_total") >= 1,
             20, what="the proposal generator hearing of segment A")
        self.cv.console_ok(
            "POST", "/v1/leads/%s/activities" % lead_id,
            {"type": "proposal_presented", "note": "presented to the CEO"},
            token=self.tokens[owner])
        card = self.cv.wait_lead(lead_id, lambda c: c.get("proposals"), 20,
                                 "a proposal on the card")
        proposal = card["proposals"][0]
        self.assertEqual((proposal["kind"], proposal["segment"]),
                         ("full_package", "A"), proposal)

        # and the change is in the lead's scorecard history
        history = card["scorecard"]["history"]
        self.assertEqual(len(history), 1, history)
        self.assertEqual(history[0]["actor"], owner)
        self.assertEqual(history[0]["segment"], {"old": "B", "new": "A"})
        self.assertEqual(history[0]["total"], {"old": 5, "new": 10})

    def test_two_people_latest_value_wins_and_history_keeps_both(self):
        lead_id, owner, _ = self.assigned_lead("two")
        r = self.scorecard(lead_id, {"params": {"budget": -1, "dm_access": 1}},
                           self.tokens[owner])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["score"]["total"], 4)  # 5 - 2 + 1
        r = self.scorecard(lead_id, {"params": {"budget": 1, "adequacy": 1}},
                           self.tokens["head-nina"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["revision"], 2)
        self.assertEqual(r.json["score"]["total"], 7)
        self.assertEqual(r.json["changes"],
                         [{"param": "budget", "old": -1, "new": 1},
                          {"param": "adequacy", "old": 0, "new": 1}])

        card = self.wait_revision(lead_id, 2)
        self.assertEqual(card["score"], r.json["score"])
        params = score_params(card)
        self.assertEqual((params["budget"]["value"],
                          params["budget"]["source"]), (1, "head-nina"))
        self.assertEqual((params["dm_access"]["value"],
                          params["dm_access"]["source"]), (1, owner))
        history = card["scorecard"]["history"]
        self.assertEqual([(h["revision"], h["actor"]) for h in history],
                         [(1, owner), (2, "head-nina")])
        self.assertEqual(history[0]["changes"][0]["param"], "budget")
        self.assertEqual((history[0]["changes"][0]["old"],
                          history[0]["changes"][0]["new"],
                          history[0]["changes"][0]["old_source"]),
                         (1, -1, "auto:budget_band"))
        budget_2 = [c for c in history[1]["changes"]
                    if c["param"] == "budget"][0]
        self.assertEqual((budget_2["old"], budget_2["new"],
                          budget_2["old_source"]), (-1, 1, owner))
        # the scorecard itself: who set what, last
        sc = self.cv.console_ok("GET", "/v1/leads/%s/scorecard" % lead_id,
                                token=self.tokens[owner])
        self.assertEqual(sc["revision"], 2)
        self.assertEqual(sc["params"]["budget"]["actor"], "head-nina")
        self.assertEqual(sc["params"]["dm_access"]["actor"], owner)
        self.assertEqual(len(sc["history"]), 2)

    def test_bad_scorecards_are_refused_with_the_field(self):
        lead_id, owner, _ = self.assigned_lead("bad")
        token = self.tokens[owner]
        cases = [
            ({"params": {"budget": 2}}, "params.budget"),
            ({"params": {"budget": "1"}}, "params.budget"),
            ({"params": {"budget": 1.0}}, "params.budget"),
            ({"params": {"budget": None}}, "params.budget"),
            ({"params": {"charisma": 1}}, "params.charisma"),
            ({"params": [["budget", 1]]}, "params"),
            ({"params": {}}, "params"),
            ({}, "params"),
            ({"params": {"budget": 1}, "note": "good call"}, "note"),
            ({"knockout": 5}, "knockout"),
            ({"knockout": ""}, "knockout"),
        ]
        for body, field in cases:
            r = self.scorecard(lead_id, body, token)
            self.assertEqual(r.status, 422, (body, r))
            self.assertEqual(r.json.get("field"), field, (body, r))
        # another manager's lead, and nobody's lead
        other = [s for s in self.SALES if s != owner][0]
        r = self.scorecard(lead_id, {"params": {"budget": 1}},
                           self.tokens[other])
        self.assertEqual(r.status, 403, r)
        r = self.scorecard(lead_id, {"params": {"budget": 1}},
                           self.tokens["junior-ivan"])
        self.assertEqual(r.status, 403, r)
        r = self.scorecard("lead_000000000000000000000000",
                           {"params": {"budget": 1}}, ADMIN_TOKEN)
        self.assertEqual(r.status, 404, r)
        r = self.scorecard(lead_id, {"params": {"budget": 1}}, None)
        self.assertEqual(r.status, 401, r)
        # nothing of it was kept
        sc = self.cv.console_ok("GET", "/v1/leads/%s/scorecard" % lead_id)
        self.assertEqual((sc["revision"], sc["history"]), (0, []))

    def test_knocked_out_leads_are_rejected_never_routed(self):
        # by the rules, on arrival
        lead = self.new_lead("spam", email="bot-%d@mailinator.com"
                             % time.monotonic_ns())
        spam_id = self.cv.accept_lead(lead)["lead_id"]
        card = self.cv.wait_lead(spam_id,
                                 lambda c: c.get("stage") == "rejected", 20,
                                 "the spam lead rejected")
        self.assertTrue(card["score"]["knocked_out"])
        self.assertEqual(card["score"]["segment"], "C")
        self.assertIn("mailinator.com", card["score"]["knockout_reason"])
        self.assertEqual(card["score"]["knockout_source"],
                         "auto:blacklisted_domain")
        # by a person, after the call; and lifted again by the head
        lead_id, owner, _ = self.assigned_lead("ko")
        r = self.scorecard(lead_id,
                           {"knockout": "already signed with a competitor"},
                           self.tokens[owner])
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json["score"]["knocked_out"])
        self.assertEqual(r.json["score"]["segment"], "C")
        card = self.cv.wait_lead(lead_id,
                                 lambda c: c.get("stage") == "rejected", 20,
                                 "the knocked-out lead rejected")
        self.assertEqual(card["score"]["knockout_reason"],
                         "already signed with a competitor (knocked out by "
                         "%s)" % owner)
        self.assertEqual(card["score"]["knockout_source"], owner)
        r = self.scorecard(lead_id, {"knockout": None},
                           self.tokens["head-nina"])
        self.assertEqual(r.status, 200, r)
        self.assertFalse(r.json["score"]["knocked_out"])
        card = self.cv.wait_lead(lead_id,
                                 lambda c: c.get("stage") == "assigned", 20,
                                 "the lifted lead back with its owner")
        self.assertEqual(owner_id(card), owner)
        # the spam lead still has nobody
        self.assertIsNone(owner_id(self.cv.lead(spam_id)))

    def test_segment_c_goes_to_a_junior_who_sends_the_rejection(self):
        lead_id, owner, card = self.assigned_lead("cseg")
        names = sorted(score_params(card))
        r = self.scorecard(lead_id, {"params": {n: -1 for n in names}},
                           self.tokens[owner])
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["score"]["total"],
                          r.json["score"]["segment"]), (-15, "C"))
        card = self.cv.wait_lead(
            lead_id, lambda c: owner_id(c) == "junior-ivan"
            and tasks_of(c, "send_rejection"), 20,
            "the lead with the junior and a rejection task")
        self.assertEqual(tasks_of(card, "first_contact"), [],
                         "the first contact is no longer due")
        self.assertEqual(card["score"]["segment"], "C")
        hits = self.wait_sink_key("ntf-%s-send-rejection" % lead_id)
        self.assertEqual(hits[0]["path"], "/staff/junior-ivan")
        # the junior works the lead now
        self.assertIsNotNone(self.cv.lead(lead_id,
                                          token=self.tokens["junior-ivan"]))

    def test_conveyorctl_score_replays_leads_under_other_rules(self):
        """A model with A from +5: the web leads (B, +5) would move to A,
        and the win rate per segment is counted for leads with a
        decision."""
        won, _, _ = self.assigned_lead("replay-won")
        lost, _, _ = self.assigned_lead("replay-lost")
        for lead_id, result in ((won, "won"), (lost, "lost")):
            body = {"result": result}
            if result == "lost":
                body["reason"] = "no_time"
            self.cv.console_ok("POST", "/v1/leads/%s/decision" % lead_id,
                               body)
        with open(DEFAULT_RULES, encoding="utf-8") as f:
            text = f.read()
        other = os.path.join(self.rules_dir, "a-from-5.yaml")
        with open(other, "w", encoding="utf-8") as f:
            f.write(text.replace("version: default-1", "version: a-from-5")
                        .replace("a_min: 10", "a_min: 5"))
        ctl = os.path.join(self.cv.build, "bin", "conveyorctl")

        def replay():
            out = subprocess.run(
                [ctl, "score", "--rules", other, "--data-dir",
                 self.cv.data_dir, "--json"],
                capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            report = json.loads(out.stdout.strip().splitlines()[-1])
            decided = sum(report["win_rate"]["new"][s]["decided"]
                          for s in "ABC")
            return report if decided >= 2 else None

        # the decisions reach scoring through the bus
        report = poll(replay, 20, 0.3, "both decisions known to scoring")
        self.assertEqual(report["model_version"], "a-from-5")
        self.assertGreaterEqual(report["moved"]["B"]["A"], 2)
        self.assertGreaterEqual(report["changed"], 2)
        self.assertGreaterEqual(report["win_rate"]["new"]["A"]["decided"], 2)
        self.assertGreaterEqual(report["win_rate"]["new"]["A"]["won"], 1)
        self.assertGreaterEqual(report["win_rate"]["now"]["B"]["decided"], 2)
        # a rules file that does not load is refused with its reason
        bad = os.path.join(self.rules_dir, "bad.yaml")
        with open(bad, "w", encoding="utf-8") as f:
            f.write(text.replace("kind: budget_bands", "kind: budgte"))
        out = subprocess.run([ctl, "score", "--rules", bad, "--data-dir",
                              self.cv.data_dir], capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 2)
        self.assertIn("budgte", out.stderr)

    def test_sighup_reloads_the_rules_and_a_broken_file_changes_nothing(self):
        scoring = self.cv.procs["scoring"]
        admin = self.cv.admin_addr["scoring"]
        write_rules("e2e-2")
        for svc in ("scoring", "console"):
            self.cv.procs[svc].send_signal(signal.SIGHUP)
        poll(lambda: metric(admin, "conveyor_scoring_rules_reloads_total")
             >= 1, 20, what="scoring reloading its rules")
        lead_id, _, card = self.assigned_lead("reload")
        self.assertEqual(card["score"]["model_version"], "e2e-2")

        write_rules("e2e-3", broken=True)
        scoring.send_signal(signal.SIGHUP)
        poll(lambda: metric(admin,
                            "conveyor_scoring_rules_reload_failures_total")
             >= 1, 20, what="scoring refusing the broken file")
        self.assertIsNone(scoring.poll(), "scoring died on a broken file")
        lead_id, _, card = self.assigned_lead("kept")
        self.assertEqual(card["score"]["model_version"], "e2e-2")
        with open(self.cv.log_path("scoring"), encoding="utf-8") as f:
            log = f.read()
        self.assertRegex(log, re.escape(
            "cannot reload the scoring rules, keeping version 'e2e-2': %s: "
            "line " % RULES) + r"\d+: unknown rule kind 'budgte'")
        write_rules("e2e-2")
