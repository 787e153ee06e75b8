"""Who sees what on the console: a sales manager sees their own leads,
the head of sales sees everyone's, a stranger sees nothing."""

import unittest

from conveyor import ConveyorCase, lead_id_of, owner_id


class Roles(ConveyorCase):

    SALES = ("sales-dina", "sales-egor")

    @classmethod
    def seed(cls):
        # Round-robin gives each of the two managers one of two leads.
        cls.lead_ids = []
        for i in range(2):
            lead = {"name": "Roles %d" % i,
                    "email": "roles-%d-%d@client.ru" % (i, id(cls)),
                    "company": "Roles %d" % i}
            cls.lead_ids.append(cls.cv.accept_lead(lead)["lead_id"])
        for lid in cls.lead_ids:
            cls.cv.wait_lead(lid, owner_id, 20, "lead '%s' assigned" % lid)
        # The head joins afterwards, so routing cannot have picked them.
        reply = cls.cv.create_staff("head-olga", role="head", tier=None)
        cls.head_token = reply.get("token")

    def owners(self):
        return {lid: owner_id(self.wait_assigned(lid))
                for lid in self.lead_ids}

    def test_staff_creation_returns_a_token(self):
        for sid in self.SALES:
            self.assertTrue(self.tokens.get(sid), sid)
        self.assertTrue(self.head_token)
        self.assertEqual(len({*self.tokens.values(), self.head_token}),
                         len(self.SALES) + 1, "tokens are not distinct")

    def test_sales_sees_only_own_leads(self):
        owners = self.owners()
        # who gets which lead depends on when each member reached routing;
        # what matters is that every lead has a sales owner
        self.assertTrue(set(owners.values()) <= set(self.SALES), owners)
        for lid, owner in owners.items():
            other = next(s for s in self.SALES if s != owner)
            r = self.cv.console("GET", "/v1/leads/%s" % lid,
                                token=self.tokens[owner])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(lead_id_of(r.json), lid)
            r = self.cv.console("GET", "/v1/leads/%s" % lid,
                                token=self.tokens[other])
            self.assertEqual(r.status, 403, r)
            self.assertIn("error", r.json or {}, r)
        for sid in self.SALES:
            seen = {lead_id_of(x)
                    for x in self.cv.leads(token=self.tokens[sid])}
            mine = {lid for lid, o in owners.items() if o == sid}
            self.assertEqual(seen, mine, sid)

    def test_sales_cannot_change_the_directory(self):
        r = self.cv.console("POST", "/v1/staff",
                            {"id": "sneaky", "name": "Sneaky",
                             "role": "admin"},
                            token=self.tokens[self.SALES[0]])
        self.assertEqual(r.status, 403, r)
        r = self.cv.console("GET", "/v1/staff/sneaky")
        self.assertEqual(r.status, 404, r)

    def test_head_sees_every_lead(self):
        self.owners()
        for lid in self.lead_ids:
            r = self.cv.console("GET", "/v1/leads/%s" % lid,
                                token=self.head_token)
            self.assertEqual(r.status, 200, r)
        seen = {lead_id_of(x) for x in self.cv.leads(token=self.head_token)}
        self.assertTrue(set(self.lead_ids) <= seen, seen)

    def test_no_or_wrong_token_is_401(self):
        lid = self.lead_ids[0]
        for token in (None, "wrong-token"):
            for method, path in (("GET", "/v1/leads/%s" % lid),
                                 ("GET", "/v1/leads"),
                                 ("GET", "/v1/staff")):
                with self.subTest(token=token, path=path):
                    r = self.cv.console(method, path, token=token)
                    self.assertEqual(r.status, 401, r)
                    self.assertIn("error", r.json or {}, r)


if __name__ == "__main__":
    unittest.main()
