"""Cold call lists: `conveyorctl import FILE.csv --source NAME`.

A telemarketing team imports the list a vendor sent as Russian Excel
saves it (BOM, ';', CRLF, a comment cell with a line break): good rows
become cold leads on the console, a repeat contact is merged, bad rows
are listed with their line and reason, and running the same import
again stores nothing new. An import killed with SIGKILL half-way resumes
when run again and leaves every row stored exactly once. The batch API
behind it answers per row and honours its Idempotency-Key."""

import collections
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import unittest

from conveyor import (INTAKE_KEY, INTAKE_SOURCE, ConveyorCase, HarnessError,
                      build_dir, poll)

KILL_ROWS = 2000        # rows of the list killed half-way
KILL_BATCH_ROWS = 20    # small batches, so the kill lands mid-way


class ColdListImport(ConveyorCase):

    EXTRA_ENV = {"CONVEYOR_SPAM_BLOCK_PHONES": "+7 900 666-66-66",
                 "CONVEYOR_SPAM_BLOCK_DOMAINS": "spam-list.example"}

    SALES = ("sales-olga",)

    tmp = None

    @classmethod
    def seed(cls):
        cls.tmp = tempfile.mkdtemp(prefix="conveyor-e2e-import-")

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        if cls.tmp is not None and os.environ.get("E2E_KEEP") != "1":
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # --- helpers -----------------------------------------------------------

    def conveyorctl(self, *args, env=None):
        """Runs conveyorctl to the end: (exit status, stdout, stderr)."""
        proc = subprocess.run(
            [os.path.join(build_dir(), "bin", "conveyorctl")] + list(args),
            env=self.ctl_env(env), capture_output=True, timeout=120)
        return (proc.returncode, proc.stdout.decode("utf-8", "replace"),
                proc.stderr.decode("utf-8", "replace"))

    def ctl_env(self, extra=None):
        env = dict(os.environ)
        env["CONVEYOR_INTAKE_ADDR"] = self.cv.intake_addr
        env["CONVEYOR_INTAKE_KEY"] = INTAKE_KEY
        env.update(extra or {})
        return env

    def import_json(self, path, source, *extra):
        """Imports with --json; returns (status, summary dict, stderr)."""
        status, out, err = self.conveyorctl(
            "import", path, "--source", source, "--json", *extra)
        lines = [x for x in out.splitlines() if x.startswith("{")]
        if not lines:
            raise HarnessError("conveyorctl printed no summary (status %d)"
                               "\nstdout: %s\nstderr: %s\n%s"
                               % (status, out, err, self.cv.tail("intake")))
        return status, json.loads(lines[-1]), err

    # One arrival per stored row: a new lead is its own first arrival (its
    # leads row), a repeat contact one arrivals row (merged) each.
    ARRIVALS = ("SELECT (SELECT count(*) FROM leads WHERE source = ?1)"
                " + (SELECT count(*) FROM arrivals a JOIN leads l"
                " USING (lead_id) WHERE l.source = ?1 AND a.merged = 1)")

    def intake_db(self, sql, *params):
        """Rows of a query on intake's database, opened read-only."""
        path = os.path.join(self.cv.data_dir, "intake.db")
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def write(self, name, text, encoding="utf-8-sig"):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding=encoding, newline="") as f:
            f.write(text)
        return path

    # --- tests -------------------------------------------------------------

    def test_vendor_list_imports_merges_and_lists_bad_rows(self):
        source = "cold-vendor-%d" % time.time_ns()
        rows = [
            "ФИО;Телефон;Компания;E-mail;Комментарий;Должность",
            # line 2, with a comment over two lines (2 and 3)
            'Иван Петров;+7 912 345-67-89;ООО "Ромашка";'
            'ivan@romashka-e2e.ru;"Перезвонить после 15:00;\r\n'
            'спросить про ""склад""";директор',
            "Плохой Телефон;12345;ИП Сидоров;;;",                  # line 4
            "Иван (дубль);8 (912) 345-67-89;;;;закупки",           # line 5
            "Анна Смирнова;+7 916 200-11-22;ООО Вектор;;;",        # line 6
            "Сломанная строка;+7 916 200-11-23",                   # line 7
            ";;;;;",                                   # line 8: blank
        ]
        path = self.write("vendor.csv", "\r\n".join(rows) + "\r\n")
        status, summary, err = self.import_json(path, source)
        self.assertEqual(status, 1, "some rows rejected: %s" % err)
        self.assertEqual(summary["rows"], 5)
        self.assertEqual(summary["imported"], 2)
        self.assertEqual(summary["merged"], 1)
        self.assertEqual(summary["rejected"], 2)
        self.assertFalse(os.path.exists(path + ".import-state"),
                         "a finished import keeps no state")

        # the rejected rows, each with its line and reason, re-importable
        with open(path + ".rejected.csv", encoding="utf-8-sig") as f:
            rejected = f.read().splitlines()
        self.assertEqual(rejected[0], "line;reason;" + rows[0])
        self.assertEqual(len(rejected), 3, rejected)
        self.assertTrue(rejected[1].startswith("4;"), rejected[1])
        self.assertIn("phone", rejected[1])
        self.assertTrue(rejected[2].endswith(
            ";Сломанная строка;+7 916 200-11-23"), rejected[2])
        self.assertIn("2 fields", rejected[2])

        # intake: two cold leads of this list, the repeat folded into Ivan
        leads = self.intake_db(
            "SELECT lead_id, name, phone, channel, message, merge_count,"
            " extra_json FROM leads WHERE source = ? ORDER BY name", source)
        self.assertEqual([r[1] for r in leads],
                         ["Анна Смирнова", "Иван Петров"])
        ivan = leads[1]
        self.assertEqual(ivan[2], "+79123456789")
        self.assertEqual(ivan[3], "cold")
        self.assertEqual(ivan[4], "Перезвонить после 15:00;\r\n"
                                  'спросить про "склад"')
        self.assertEqual(ivan[5], 1)
        self.assertEqual(json.loads(ivan[6]), {"Должность": "директор"})

        # the console shows the card as a cold lead from this list
        card = self.cv.wait_lead(
            ivan[0], lambda c: c.get("channel") == "cold",
            what="Ivan's card on the console")
        self.assertEqual(card.get("source"), source)
        self.assertEqual(card.get("name"), "Иван Петров")

        # the same import again: answered from intake's records
        status, again, err = self.import_json(path, source)
        self.assertEqual(status, 1, err)
        self.assertEqual(again["replayed_batches"], again["batches"])
        self.assertEqual((again["imported"], again["merged"],
                          again["rejected"]), (2, 1, 2))
        self.assertEqual(self.intake_db(self.ARRIVALS, source), [(3,)])

    def test_killed_import_resumes_and_stores_every_row_once(self):
        source = "cold-big-%d" % time.time_ns()
        lines = ["Имя,Телефон,Компания,Регион"]
        for i in range(KILL_ROWS):
            lines.append('Клиент %d,+7 917 %03d-%02d-%02d,"ООО ""Лид %d""",'
                         'Казань' % (i, 500 + i // 10000, i // 100 % 100,
                                     i % 100, i))
        path = self.write("big.csv", "\n".join(lines) + "\n",
                          encoding="utf-8")
        state = path + ".import-state"
        args = [os.path.join(build_dir(), "bin", "conveyorctl"), "import",
                path, "--source", source, "--batch-rows",
                str(KILL_BATCH_ROWS), "--quiet"]
        proc = subprocess.Popen(args, env=self.ctl_env(),
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            def saved_rows():
                if proc.poll() is not None:
                    return "ended"
                try:
                    with open(state) as f:
                        for line in f:
                            if line.startswith("rows "):
                                return int(line.split()[1]) >= 200
                except OSError:
                    return False
                return False
            got = poll(saved_rows, 60, 0.002, "the import to save 200 rows")
            self.assertNotEqual(got, "ended",
                                "the import ended before it was killed")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        with open(state) as f:
            saved = dict(line.rstrip("\n").split(" ", 1) for line in f
                         if " " in line)
        self.assertLess(int(saved["rows"]), KILL_ROWS,
                        "the import finished before it could be killed")

        status, summary, err = self.import_json(
            path, source, "--batch-rows", str(KILL_BATCH_ROWS))
        self.assertEqual(status, 0, err)
        self.assertTrue(summary["resumed"])
        self.assertEqual(summary["rows"], KILL_ROWS)
        self.assertEqual(summary["imported"], KILL_ROWS)
        self.assertEqual(summary["merged"], 0)
        self.assertEqual(summary["rejected"], 0)
        self.assertLess(summary["run_rows"], KILL_ROWS)
        self.assertFalse(os.path.exists(state))

        # exactly once: one lead and one arrival per row, none merged
        self.assertEqual(self.intake_db(
            "SELECT count(*), count(DISTINCT phone), sum(merge_count)"
            " FROM leads WHERE source = ?", source),
            [(KILL_ROWS, KILL_ROWS, 0)])
        self.assertEqual(self.intake_db(self.ARRIVALS, source),
                         [(KILL_ROWS,)])

        # and each on the console once
        ids = {r[0] for r in self.intake_db(
            "SELECT lead_id FROM leads WHERE source = ?", source)}

        def all_on_console():
            rows = collections.Counter(
                x for x in self.cv.console_db_lead_ids() if x in ids)
            return rows if len(rows) == KILL_ROWS else None
        rows = poll(all_on_console, 120, 0.5,
                    "%d imported leads on the console" % KILL_ROWS)
        self.assertEqual([x for x, n in rows.items() if n > 1], [])

    def test_import_rides_out_an_intake_crash(self):
        source = "cold-crash-%d" % time.time_ns()
        lines = ["name;phone;company"]
        for i in range(KILL_ROWS):
            lines.append("Caller %d;8 919 %03d %02d %02d;Firm %d"
                         % (i, 700 + i // 10000, i // 100 % 100, i % 100, i))
        path = self.write("crash.csv", "\r\n".join(lines) + "\r\n")
        state = path + ".import-state"
        proc = subprocess.Popen(
            [os.path.join(build_dir(), "bin", "conveyorctl"), "import", path,
             "--source", source, "--batch-rows", str(KILL_BATCH_ROWS),
             "--json"],
            env=self.ctl_env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        try:
            poll(lambda: proc.poll() is not None or os.path.exists(state),
                 60, 0.002, "the import to get going")
            # intake dies with batches in flight and comes back
            self.cv.restart("intake")
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        self.assertEqual(proc.returncode, 0, err.decode("utf-8", "replace"))
        summary = json.loads(out.decode("utf-8").splitlines()[-1])
        self.assertEqual((summary["rows"], summary["imported"],
                          summary["merged"], summary["rejected"]),
                         (KILL_ROWS, KILL_ROWS, 0, 0))
        self.assertGreater(summary["retries"], 0,
                           "the import never met the dead intake")
        self.assertEqual(self.intake_db(
            "SELECT count(*), sum(merge_count) FROM leads"
            " WHERE source = ?", source), [(KILL_ROWS, 0)])
        self.assertEqual(self.intake_db(self.ARRIVALS, source),
                         [(KILL_ROWS,)])

    def test_batch_api_answers_per_row(self):
        source = "cold-api-%d" % time.time_ns()
        tag = time.time_ns() % 10 ** 7
        phone = "+7 918 %03d-%02d-%02d" % (tag // 10000 % 1000,
                                           tag // 100 % 100, tag % 100)
        batch = {"source": source, "rows": [
            {"line": 2, "lead": {"name": "Ольга", "phone": phone,
                                 "channel": "web", "Город": "Тверь"}},
            {"line": 3, "lead": {"name": "Без контакта"}},
            {"line": 4, "lead": {"name": "Ольга снова", "phone": phone}},
            {"line": 5, "lead": {"name": "Бот", "phone": "89006666666"}},
            {"line": 6, "lead": {"name": "Рассылка",
                                 "email": "x@mx.spam-list.example"}},
        ]}
        key = "e2e-batch-%d" % tag
        r = self.cv.intake("POST", "/v1/import", batch,
                           {"Idempotency-Key": key})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["imported"], r.json["merged"],
                          r.json["rejected"]), (1, 1, 3))
        first, bad, repeat, blocked_phone, blocked_domain = r.json["rows"]
        # blocklisted contacts are handed back, with the reason, not stored
        for row, what in ((blocked_phone, "blocked phone"),
                          (blocked_domain, "blocked domain")):
            self.assertEqual(row["status"], "rejected", row)
            self.assertEqual(row["error"], "spam", row)
            self.assertIn(what, row["message"], row)
        self.assertEqual((first["line"], first["status"]), (2, "imported"))
        self.assertEqual((bad["line"], bad["status"]), (3, "rejected"))
        self.assertEqual(bad["error"], "missing_contact")
        self.assertEqual(repeat["status"], "merged")
        self.assertEqual(repeat["duplicate_of"], first["lead_id"])
        self.assertEqual(self.intake_db(
            "SELECT channel, source, extra_json FROM leads"
            " WHERE lead_id = ?", first["lead_id"]),
            [("cold", source, '{"channel":"web","Город":"Тверь"}')])

        again = self.cv.intake("POST", "/v1/import", batch,
                               {"Idempotency-Key": key})
        self.assertEqual(again.status, 200)
        self.assertEqual(again.headers.get("idempotent-replayed"), "true")
        self.assertEqual(again.json, r.json)
        self.assertEqual(self.intake_db(
            "SELECT count(*) FROM arrivals WHERE lead_id = ? AND merged = 1",
            first["lead_id"]), [(1,)], "the repeat contact's arrival")

        changed = dict(batch, rows=batch["rows"][:1])
        self.assertEqual(self.cv.intake("POST", "/v1/import", changed,
                                        {"Idempotency-Key": key}).status,
                         422)
        self.assertEqual(self.cv.intake("POST", "/v1/import", batch).status,
                         400, "a batch without Idempotency-Key")
        self.assertEqual(self.cv.intake("POST", "/v1/import", batch,
                                        {"Idempotency-Key": key + "-x"},
                                        key="wrong").status, 401)
        huge = {"source": source, "rows": [
            {"line": i + 2, "lead": {"email": "x%d@huge.ru" % i}}
            for i in range(1001)]}
        self.assertEqual(self.cv.intake("POST", "/v1/import", huge,
                                        {"Idempotency-Key": key + "-h"})
                         .status, 413)
        self.assertEqual(self.intake_db(
            "SELECT count(*) FROM leads WHERE email LIKE '%@huge.ru'"),
            [(0,)])
        self.assertEqual(INTAKE_SOURCE, self.intake_db(
            "SELECT api_source FROM leads WHERE lead_id = ?",
            first["lead_id"])[0][0])


if __name__ == "__main__":
    unittest.main()
