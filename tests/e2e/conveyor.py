"""A harness that runs the whole conveyor for end-to-end tests.

It starts the nine real processes on free ports with a temporary data
directory, talks to them over their real HTTP ports, records what the
notifier delivers in a local HTTP sink, and can kill, restart and stop
processes and move the shared clock (CONVEYOR_CLOCK_FILE) forward.

Python 3 standard library only.
"""

import http.client
import http.server
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

# Start order: the broker first, the public edges last, so a lead posted as
# soon as intake is healthy finds every stage registered.
SERVICES = [
    "broker",
    "console",
    "scoring",
    "routing",
    "followup-scheduler",
    "notifier",
    "proposal-generator",
    "account-retention",
    "intake",
]

ADMIN_TOKEN = "e2e-admin-token"
INTAKE_SOURCE = "e2e"
INTAKE_KEY = "e2e-intake-key"
ALL_WEEK = {d: "00:00-24:00"
            for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


TELEGRAM_SECRET = "e2e-telegram-secret"


class HarnessError(AssertionError):
    """A condition the conveyor never reached; the message says which."""


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tools", "bench"))
# Ports below the range outgoing connections take theirs from (a port the
# kernel hands out for "port 0" can be taken by one before the service binds
# it), all of one conveyor's drawn at once so they are distinct.
from free_ports import free_ports  # noqa: E402  (the bench's, one helper)


def poll(fn, timeout=20.0, interval=0.1, what="condition"):
    """Calls fn() until it returns something truthy and returns that.

    Raises HarnessError naming `what` and the last value (or exception)
    after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except (OSError, http.client.HTTPException, ValueError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise HarnessError("timed out after %.0f s waiting for %s; "
                               "last: %r" % (timeout, what, last))
        time.sleep(interval)


class Response:
    """An HTTP reply: status, headers (lower-cased names), body, json."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError):
            self.json = None

    def __repr__(self):
        text = self.body[:300].decode("utf-8", "replace")
        return "<%d %s>" % (self.status, text)


def http_request(addr, method, path, body=None, headers=None, timeout=10.0):
    """Sends one request to "host:port" and returns a Response.

    `body` may be bytes, str, or any other value (sent as JSON with
    Content-Type application/json unless headers name another). A server
    that answers and closes before reading the whole body (413) still
    yields its reply when it can be read."""
    host, port = addr.rsplit(":", 1)
    hdrs = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        hdrs.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode("utf-8")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        try:
            conn.request(method, path, body=body, headers=hdrs)
        except (BrokenPipeError, ConnectionResetError):
            # The server may have replied already (e.g. 413) and closed.
            pass
        resp = conn.getresponse()
        data = resp.read()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        return Response(resp.status, headers, data)
    finally:
        conn.close()


class Sink:
    """A local HTTP server standing in for a staff member's webhook.

    Records every request (path, headers, raw body, parsed JSON) and can be
    told to fail the first N requests with 500."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []      # every request, failed ones included
        self.fail_remaining = 0
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length > 0 else b""
                try:
                    parsed = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    parsed = None
                with sink.lock:
                    failing = sink.fail_remaining > 0
                    if failing:
                        sink.fail_remaining -= 1
                    sink.requests.append({
                        "path": self.path,
                        "headers": {k.lower(): v
                                    for k, v in self.headers.items()},
                        "key": self.headers.get("Idempotency-Key"),
                        "raw": raw.decode("utf-8", "replace"),
                        "json": parsed,
                        "status": 500 if failing else 200,
                        "at": time.time(),
                    })
                status = 500 if failing else 200
                reply = b'{"ok":false}' if failing else b'{"ok":true}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_PUT = do_POST

            def log_message(self, fmt, *args):
                pass

        class QuietServer(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                # a notifier killed mid-request resets its connection:
                # expected in the crash test, not worth a traceback
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def fail_first(self, n):
        """The next n requests are answered 500."""
        with self.lock:
            self.fail_remaining = n

    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def delivered(self):
        """The requests that were answered 200."""
        return [r for r in self.snapshot() if r["status"] == 200]

    def for_lead(self, lead_id, delivered_only=True):
        """Requests whose body mentions the lead id."""
        reqs = self.delivered() if delivered_only else self.snapshot()
        return [r for r in reqs if lead_id in r["raw"]]

    def with_key(self, key, delivered_only=True):
        reqs = self.delivered() if delivered_only else self.snapshot()
        return [r for r in reqs if r["key"] == key]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakeHttp:
    """A local HTTP server standing in for an outside service the notifier
    posts to (the Telegram Bot API, a Slack hook, a signed webhook).

    Records every POST (path, headers, raw body, parsed JSON, the status
    answered) and answers from a script: `script([(status, body, headers),
    ...])` makes the next requests get those replies in turn, then
    reply_ok(request) again. Subclasses override reply_ok and check."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.pending = []          # scripted replies still to give
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length > 0 else b""
                try:
                    parsed = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    parsed = None
                request = {
                    "path": self.path,
                    "headers": {k.lower(): v
                                for k, v in self.headers.items()},
                    "key": self.headers.get("Idempotency-Key"),
                    "raw": raw.decode("utf-8", "replace"),
                    "bytes": raw,
                    "json": parsed,
                    "at": time.time(),
                }
                request.update(fake.check(request))
                with fake.lock:
                    scripted = fake.pending.pop(0) if fake.pending else None
                status, body, headers = (scripted if scripted is not None
                                         else fake.reply_ok(request))
                request["status"] = status
                with fake.lock:
                    fake.requests.append(request)
                if not isinstance(body, bytes):
                    body = json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt, *args):
                pass

        class QuietServer(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def base_url(self):
        return "http://127.0.0.1:%d" % self.port

    def url(self, path="/hook"):
        return self.base_url() + path

    def reply_ok(self, request):
        return 200, {"ok": True}, None

    def check(self, request):
        """Extra fields recorded with a request (e.g. a verified
        signature)."""
        return {}

    def script(self, replies):
        with self.lock:
            self.pending = list(replies)

    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def delivered(self):
        return [r for r in self.snapshot() if 200 <= r["status"] < 300]

    def with_key(self, key, delivered_only=True):
        reqs = self.delivered() if delivered_only else self.snapshot()
        return [r for r in reqs if r["key"] == key]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakeTelegram(FakeHttp):
    """The Telegram Bot API's sendMessage, as the notifier uses it: POST
    /bot<token>/sendMessage with {"chat_id", "text"}; replies {"ok": true,
    "result": {...}} like Telegram. Use its base_url() as
    CONVEYOR_TELEGRAM_API_URL."""

    def __init__(self, token):
        self.token = token
        self.message_id = 0
        super().__init__()

    def check(self, request):
        return {"token_ok": request["path"] ==
                "/bot%s/sendMessage" % self.token}

    def reply_ok(self, request):
        if not request["token_ok"]:
            return 401, {"ok": False, "error_code": 401,
                         "description": "Unauthorized"}, None
        self.message_id += 1
        body = request["json"] or {}
        return 200, {"ok": True, "result": {
            "message_id": self.message_id,
            "chat": {"id": body.get("chat_id")},
            "text": body.get("text")}}, None

    def messages(self, chat_id=None):
        """Delivered messages (the sendMessage bodies)."""
        return [r["json"] for r in self.delivered()
                if chat_id is None or
                str((r["json"] or {}).get("chat_id")) == str(chat_id)]


class SlackSink(FakeHttp):
    """A Slack/Mattermost-style incoming webhook: takes {"text": ...} and
    answers "ok"."""

    def reply_ok(self, request):
        return 200, b"ok", None

    def texts(self):
        return [(r["json"] or {}).get("text") for r in self.delivered()]


def conveyor_signature_ok(secret, header, body, tolerance=300):
    """Verifies an X-Conveyor-Signature header as a receiver should:
    "t=<unix>,v1=<hex>" where hex is HMAC-SHA256(secret, "<t>.<body>"),
    compared in constant time, with t within `tolerance` seconds."""
    import hashlib
    import hmac
    if not header:
        return False
    parts = dict(item.split("=", 1) for item in header.split(",")
                 if "=" in item)
    try:
        stamp = int(parts.get("t", ""))
    except ValueError:
        return False
    expected = hmac.new(secret.encode("utf-8"),
                        ("%d." % stamp).encode("ascii") + body,
                        hashlib.sha256).hexdigest()
    return (hmac.compare_digest(expected, parts.get("v1", "")) and
            abs(time.time() - stamp) <= tolerance)


class SignedSink(FakeHttp):
    """A generic webhook receiver that verifies the notifier's
    X-Conveyor-Signature with the shared secret; each request records
    `signature_ok`."""

    def __init__(self, secret):
        self.secret = secret
        super().__init__()

    def check(self, request):
        return {"signature_ok": conveyor_signature_ok(
            self.secret, request["headers"].get("x-conveyor-signature"),
            request["bytes"])}


class SmtpCatcher:
    """A minimal SMTP server (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP,
    QUIT) that keeps every message it accepts, parsed with the email
    package. `script([code, ...])` makes the next transactions answer
    DATA with those codes (e.g. 451) instead of 250."""

    def __init__(self):
        import socketserver
        self.lock = threading.Lock()
        self.messages = []          # accepted: {"from", "to", "raw", "msg"}
        self.refused = []           # transactions answered with an error
        self.pending = []
        catcher = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line):
                self.wfile.write((line + "\r\n").encode("ascii"))
                self.wfile.flush()

            def handle(self):
                self.reply("220 localhost e2e SMTP catcher")
                sender, rcpts = None, []
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    cmd = line.decode("utf-8", "replace").strip()
                    verb = cmd.split(" ", 1)[0].upper()
                    if verb == "EHLO":
                        self.wfile.write(b"250-localhost\r\n"
                                         b"250-8BITMIME\r\n"
                                         b"250 SIZE 10485760\r\n")
                        self.wfile.flush()
                    elif verb == "HELO":
                        self.reply("250 localhost")
                    elif verb == "MAIL":
                        sender, rcpts = cmd[10:].strip(), []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        rcpts.append(cmd[8:].strip())
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        data = []
                        while True:
                            chunk = self.rfile.readline()
                            if not chunk or chunk == b".\r\n":
                                break
                            if chunk.startswith(b".."):
                                chunk = chunk[1:]
                            data.append(chunk)
                        raw = b"".join(data)
                        with catcher.lock:
                            code = (catcher.pending.pop(0)
                                    if catcher.pending else 250)
                        record = {"from": sender, "to": rcpts, "raw": raw,
                                  "code": code}
                        if code == 250:
                            import email
                            import email.policy
                            record["msg"] = email.message_from_bytes(
                                raw, policy=email.policy.default)
                            with catcher.lock:
                                catcher.messages.append(record)
                            self.reply("250 OK queued")
                        else:
                            with catcher.lock:
                                catcher.refused.append(record)
                            self.reply("%d try again later" % code)
                    elif verb in ("RSET", "NOOP"):
                        self.reply("250 OK")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        # the catcher speaks the commands above; RFC 5321 says
                        # 502 for any other
                        self.reply("502 5.5.1 unrecognised command")

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def url(self):
        return "smtp://127.0.0.1:%d" % self.port

    def script(self, codes):
        with self.lock:
            self.pending = list(codes)

    def delivered(self):
        with self.lock:
            return list(self.messages)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Conveyor:
    """The nine processes of one conveyor, on free ports in a temp dir."""

    def __init__(self, build, name="conveyor", extra_env=None):
        self.build = os.path.abspath(build)
        self.dir = tempfile.mkdtemp(prefix="conveyor-e2e-%s-" % name)
        self.data_dir = os.path.join(self.dir, "var")
        self.log_dir = os.path.join(self.dir, "logs")
        os.makedirs(self.data_dir)
        os.makedirs(self.log_dir)
        self.clock_file = os.path.join(self.dir, "clock")
        ports = iter(free_ports(3 + len(SERVICES)))
        self.broker_port = next(ports)
        self.broker = "tcp://127.0.0.1:%d" % self.broker_port
        self.intake_addr = "127.0.0.1:%d" % next(ports)
        self.console_addr = "127.0.0.1:%d" % next(ports)
        self.admin_addr = {}
        for svc in SERVICES:
            if svc in ("intake", "console"):
                self.admin_addr[svc] = getattr(self, svc + "_addr")
            else:
                self.admin_addr[svc] = "127.0.0.1:%d" % next(ports)
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("CONVEYOR_"):
                del self.env[k]
        self.env.update({
            "CONVEYOR_DATA_DIR": self.data_dir,
            "CONVEYOR_BROKER_BIND": self.broker,
            "CONVEYOR_BROKER": self.broker,
            "CONVEYOR_INTAKE_ADDR": self.intake_addr,
            "CONVEYOR_CONSOLE_ADDR": self.console_addr,
            "CONVEYOR_ADMIN_TOKEN": ADMIN_TOKEN,
            "CONVEYOR_INTAKE_KEYS": "%s:%s" % (INTAKE_SOURCE, INTAKE_KEY),
            "CONVEYOR_CLOCK_FILE": self.clock_file,
            "CONVEYOR_DEMO": "0",
            # tests post bursts far above a real source's rate; the rate
            # limit has its own test (test_channels.RateLimit)
            "CONVEYOR_INTAKE_RATE": "0",
            "CONVEYOR_TELEGRAM_SECRET": TELEGRAM_SECRET,
            # tests on the wall clock must not depend on the day they run:
            # a calendar without public holidays (tests that set the
            # clock to a known date use the built-in Russian one:
            # EXTRA_ENV {"CONVEYOR_CALENDAR_FILE": ""})
            "CONVEYOR_CALENDAR_FILE": self.write_calendar(),
        })
        for svc in SERVICES:
            if svc not in ("intake", "console"):
                var = "CONVEYOR_%s_ADMIN_ADDR" % svc.upper().replace("-", "_")
                self.env[var] = self.admin_addr[svc]
        self.env.update(extra_env or {})
        self.procs = {}
        self.logs = {}
        self.restarts = {svc: 0 for svc in SERVICES}
        self.clock_offset = 0

    def write_calendar(self):
        """A business calendar with the usual weekend and no holidays."""
        path = os.path.join(self.dir, "calendar-no-holidays.yaml")
        with open(path, "w") as f:
            f.write("# e2e: the wall clock's day must not matter\n"
                    "weekend: [sat, sun]\nholidays: []\nworkdays: []\n")
        return path

    # --- processes ---------------------------------------------------------

    def binary(self, svc):
        return os.path.join(self.build, "bin", svc)

    def log_path(self, svc):
        return os.path.join(self.log_dir, svc + ".log")

    def spawn(self, svc):
        """Starts one process (its log is appended to)."""
        path = self.binary(svc)
        if not os.access(path, os.X_OK):
            raise HarnessError("'%s' is not built" % path)
        log = open(self.log_path(svc), "ab")
        log.write(("--- start %s at %s ---\n" %
                   (svc, time.strftime("%H:%M:%S"))).encode())
        log.flush()
        self.procs[svc] = subprocess.Popen(
            [path], env=self.env, cwd=self.dir, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        old = self.logs.get(svc)
        if old is not None:
            old.close()
        self.logs[svc] = log

    def healthy(self, svc):
        try:
            r = http_request(self.admin_addr[svc], "GET", "/healthz",
                             timeout=2.0)
            return r.status == 200
        except (OSError, http.client.HTTPException):
            return False

    def wait_healthy(self, svc, timeout=20.0):
        def check():
            p = self.procs.get(svc)
            if p is not None and p.poll() is not None:
                raise HarnessError("'%s' exited with %s while starting\n%s"
                                   % (svc, p.returncode, self.tail(svc)))
            return self.healthy(svc)
        try:
            poll(check, timeout, 0.05, "'%s' /healthz" % svc)
        except HarnessError as e:
            raise HarnessError("%s\n%s" % (e, self.tail(svc))) from None

    def start(self, timeout=20.0):
        """Starts every process, each once its predecessors are healthy
        enough to be useful, then waits for all of them."""
        try:
            for svc in SERVICES:
                self.spawn(svc)
                if svc == "broker":
                    self.wait_healthy(svc, timeout)
            for svc in SERVICES:
                self.wait_healthy(svc, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def alive(self, svc):
        p = self.procs.get(svc)
        return p is not None and p.poll() is None

    def dead(self):
        """Names of processes that are not running."""
        return [svc for svc in SERVICES if not self.alive(svc)]

    def kill(self, svc, sig=signal.SIGKILL):
        """Sends `sig` (SIGKILL by default) and reaps the process."""
        p = self.procs.get(svc)
        if p is None or p.poll() is not None:
            return
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass
        p.wait(timeout=10)

    def restart(self, svc, wait=True, timeout=20.0):
        self.kill(svc)
        self.spawn(svc)
        self.restarts[svc] += 1
        if wait:
            self.wait_healthy(svc, timeout)

    def stop(self, timeout=10.0):
        """SIGTERM to everyone, SIGKILL to whoever is left after timeout.
        Returns {service: exit code} of the processes that were running."""
        codes = {}
        running = [s for s in SERVICES if self.alive(s)]
        for svc in reversed(running):
            try:
                self.procs[svc].send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        for svc in running:
            p = self.procs[svc]
            try:
                codes[svc] = p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                codes[svc] = p.wait()
        for log in self.logs.values():
            log.close()
        self.logs = {}
        return codes

    # what AddressSanitizer, LeakSanitizer and UBSan print when they find
    # something (a sanitizer build: make asan)
    SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                       "runtime error:")

    def sanitizer_reports(self):
        """{service: first report line} from every process's log."""
        found = {}
        for svc in SERVICES:
            try:
                with open(self.log_path(svc), errors="replace") as f:
                    for line in f:
                        if any(m in line for m in self.SANITIZER_MARKS):
                            found[svc] = line.strip()
                            break
            except OSError:
                continue
        return found

    def cleanup(self, keep=False):
        """Stops everything and removes the temp dir unless `keep`. A
        sanitizer report in any log (even of a process that was killed and
        restarted, or one found at exit) fails the class, and the folder is
        kept for reading."""
        self.stop()
        reports = self.sanitizer_reports()
        if not keep and not reports:
            shutil.rmtree(self.dir, ignore_errors=True)
        if reports:
            raise HarnessError("sanitizer reports (logs kept in %s): %s"
                               % (self.dir, reports))

    def tail(self, svc, lines=30):
        try:
            with open(self.log_path(svc), "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError as e:
            return "(no log for %s: %s)" % (svc, e)
        rows = text.splitlines()[-lines:]
        return "--- %s (last %d lines of %s) ---\n%s" % (
            svc, len(rows), self.log_path(svc), "\n".join(rows))

    def tails(self, lines=15):
        return "\n".join(self.tail(svc, lines) for svc in SERVICES)

    # --- clock -------------------------------------------------------------

    def set_clock(self, offset_seconds):
        """Every process's clock becomes wall clock + offset_seconds."""
        tmp = self.clock_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % int(offset_seconds))
        os.replace(tmp, self.clock_file)
        self.clock_offset = int(offset_seconds)

    def advance_clock(self, seconds):
        self.set_clock(self.clock_offset + seconds)

    def now(self):
        """The conveyor's time, seconds since the epoch."""
        return time.time() + self.clock_offset

    # --- intake ------------------------------------------------------------

    def intake(self, method, path, body=None, headers=None, key=INTAKE_KEY,
               timeout=10.0):
        hdrs = dict(headers or {})
        if key is not None:
            hdrs.setdefault("Authorization", "Bearer %s" % key)
        return http_request(self.intake_addr, method, path, body, hdrs,
                            timeout)

    def post_lead(self, lead, key=INTAKE_KEY, idempotency_key=None,
                  headers=None, timeout=10.0):
        hdrs = dict(headers or {})
        if idempotency_key is not None:
            hdrs["Idempotency-Key"] = idempotency_key
        return self.intake("POST", "/v1/leads", lead, hdrs, key, timeout)

    def accept_lead(self, lead, **kw):
        """Posts a lead that must be accepted; returns the 202 JSON."""
        r = self.post_lead(lead, **kw)
        if r.status != 202 or not isinstance(r.json, dict):
            raise HarnessError("lead %r not accepted: %r\n%s"
                               % (lead, r, self.tail("intake")))
        return r.json

    # --- console -----------------------------------------------------------

    def console(self, method, path, body=None, token=ADMIN_TOKEN,
                headers=None, timeout=10.0):
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = "Bearer %s" % token
        return http_request(self.console_addr, method, path, body, hdrs,
                            timeout)

    def console_ok(self, method, path, body=None, token=ADMIN_TOKEN):
        r = self.console(method, path, body, token)
        if r.status // 100 != 2:
            raise HarnessError("console %s %s -> %r\n%s" % (
                method, path, r, self.tail("console")))
        return r.json

    def create_staff(self, staff_id, role="sales", tier=2, webhook=None,
                     **fields):
        """Creates a staff member working all week; returns the reply
        (with the member's `token`)."""
        body = {
            "id": staff_id,
            "name": fields.pop("name", staff_id.replace("-", " ").title()),
            "role": role,
            "tier": tier,
            "team": "e2e",
            "timezone": "UTC",
            "working_hours": ALL_WEEK,
            "capacity_per_day": 10000,
            "weight": 1,
            "active": True,
        }
        if webhook is not None:
            body["notify"] = {"webhook_url": webhook}
        body.update(fields)
        body = {k: v for k, v in body.items() if v is not None}
        return self.console_ok("POST", "/v1/staff", body)

    def lead(self, lead_id, token=ADMIN_TOKEN):
        """The lead card, or None when the console does not have it."""
        r = self.console("GET", "/v1/leads/%s" % urllib.parse.quote(lead_id),
                         token=token)
        if r.status == 404:
            return None
        if r.status != 200:
            raise HarnessError("GET lead '%s' -> %r" % (lead_id, r))
        return r.json

    def wait_lead(self, lead_id, pred, timeout=20.0, what=None):
        """Polls the card until pred(card) holds; returns the card."""
        def check():
            card = self.lead(lead_id)
            return card if card is not None and pred(card) else None
        try:
            return poll(check, timeout, 0.1,
                        what or "lead '%s' to reach a state" % lead_id)
        except HarnessError as e:
            raise HarnessError("%s\ncard now: %s\n%s" % (
                e, json.dumps(self.lead(lead_id))[:2000],
                self.tails())) from None

    def leads(self, query="limit=500", token=ADMIN_TOKEN):
        """The console's search result (GET /v1/leads?query) as a list of
        lead objects; the console returns at most 500."""
        path = "/v1/leads" + ("?" + query if query else "")
        r = self.console("GET", path, token=token)
        if r.status != 200:
            raise HarnessError("GET %s -> %r" % (path, r))
        return as_list(r.json, ("leads", "items", "results", "data"))

    def console_db_lead_ids(self):
        """Every lead id in the console's SQLite file (opened read-only),
        one entry per row: the console's `leads` table."""
        path = os.path.join(self.data_dir, "console.db")
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
        try:
            return [row[0] for row in
                    db.execute("SELECT lead_id FROM leads")]
        finally:
            db.close()


# --- reading the console's JSON without over-fitting its shape -------------

def as_list(value, keys):
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        for k in keys:
            if isinstance(value.get(k), list):
                return value[k]
    return []


def lead_id_of(item):
    if isinstance(item, dict):
        return item.get("lead_id") or item.get("id")
    return item


def contact(card, name):
    """A contact (phone, email, telegram) from the card, top-level or under
    `contacts`."""
    if not isinstance(card, dict):
        return None
    contacts = card.get("contacts")
    if isinstance(contacts, dict) and contacts.get(name):
        return contacts[name]
    return card.get(name)


def owner_id(card):
    """The owner's staff id from a card (`owner` as id or object)."""
    owner = card.get("owner") if isinstance(card, dict) else None
    if isinstance(owner, dict):
        return owner.get("id") or owner.get("staff_id")
    return owner or None


def score_params(card):
    """{name: {value, reason, ...}} from the card's score params (a list of
    objects with `name`, or an object keyed by name)."""
    score = card.get("score") or {}
    params = score.get("params")
    if isinstance(params, dict):
        out = {}
        for name, p in params.items():
            out[name] = p if isinstance(p, dict) else {"value": p}
        return out
    if isinstance(params, list):
        return {p.get("name"): p for p in params if isinstance(p, dict)}
    return {}


def tasks_of(card, kind=None):
    tasks = as_list(card.get("tasks"), ("tasks", "items"))
    if kind is not None:
        tasks = [t for t in tasks if t.get("kind") == kind]
    return tasks


def timeline_text(card):
    return json.dumps(card.get("timeline", []), ensure_ascii=False).lower()


def to_epoch(value):
    """Seconds since the epoch from RFC 3339 text or epoch ms/s numbers."""
    if isinstance(value, (int, float)):
        return value / 1000.0 if value > 1e11 else float(value)
    if isinstance(value, str):
        import datetime
        text = value.strip().replace("Z", "+00:00")
        if " " in text and "T" not in text:
            text = text.replace(" ", "T", 1)
        return datetime.datetime.fromisoformat(text).timestamp()
    raise ValueError("not a time: %r" % (value,))


def first_contact_key(lead_id):
    """The notifier's Idempotency-Key for a lead's first-contact task."""
    return "ntf-%s-first-contact" % lead_id


# --- unittest glue ---------------------------------------------------------




def build_dir():
    """The build folder under test: E2E_BUILD, default "build"."""
    return os.environ.get("E2E_BUILD", "build")


class ConveyorCase(unittest.TestCase):
    """A test class that owns one running conveyor (`cls.cv`) and a sink.

    Subclasses set SALES (staff ids of tier-2 sales managers notified
    through the sink) and may override seed(). The run.py runner prints the
    tail of every log when a test of the class fails."""

    SALES = ("sales-anna", "sales-boris", "sales-vera")
    EXTRA_ENV = None
    cv = None
    sink = None

    @classmethod
    def setUpClass(cls):
        cls.sink = Sink()
        cls.cv = Conveyor(build_dir(), cls.__name__.lower(), cls.EXTRA_ENV)
        try:
            cls.cv.start()
            cls.tokens = {}
            for sid in cls.SALES:
                reply = cls.cv.create_staff(
                    sid, webhook=cls.sink.url("/staff/%s" % sid))
                cls.tokens[sid] = reply.get("token")
            cls.seed()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def seed(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        keep = os.environ.get("E2E_KEEP") == "1"
        if cls.cv is not None:
            cls.cv.cleanup(keep=keep)
            if keep:
                print("kept %s" % cls.cv.dir)
        if cls.sink is not None:
            cls.sink.close()

    # helpers shared by the tests

    def new_lead(self, tag, **fields):
        """A web lead with a unique e-mail derived from `tag`."""
        unique = "%s-%d-%d" % (tag, os.getpid(), time.monotonic_ns())
        lead = {
            "name": "Client %s" % tag,
            "company": "OOO %s" % tag.title(),
            "email": "%s@client-%s.ru" % (unique, tag),
            "message": "We need a CRM integration for 40 users",
            "channel": "web",
            "source": "site-form",
            "region": "Moscow",
            "industry": "retail",
            "budget": 1500000,
            "currency": "RUB",
        }
        lead.update(fields)
        return lead

    def wait_assigned(self, lead_id, timeout=20.0):
        """The card once it has an owner and its first-contact task."""
        return self.cv.wait_lead(
            lead_id,
            lambda c: owner_id(c) and tasks_of(c, "first_contact"),
            timeout, "lead '%s' assigned with a first-contact task"
            % lead_id)

    def wait_written(self, lead_id):
        """Waits until the notifier has written the lead's delivery (the
        console's timeline says who was told), and that it did not fail."""
        card = self.cv.wait_lead(
            lead_id, lambda c: "told by" in timeline_text(c), 30,
            "the delivery of lead '%s' on its timeline" % lead_id)
        self.assertNotIn("failed", timeline_text(card))
        return card

    def wait_sink_key(self, key, timeout=30.0):
        try:
            return poll(lambda: self.sink.with_key(key), timeout, 0.1,
                        "a delivered notification with Idempotency-Key "
                        "'%s'" % key)
        except HarnessError as e:
            seen = [(r["path"], r["key"], r["status"])
                    for r in self.sink.snapshot()][-8:]
            raise HarnessError("%s\nsink saw (path, key, status): %s\n%s"
                               % (e, seen, self.cv.tail("notifier"))) \
                from None


class FaultCase(ConveyorCase):
    """A ConveyorCase whose processes all run with test-only LD_PRELOAD
    libraries from tests/e2e/fault (FAULTS, by name: "disk_full",
    "slow_sync"). Each acts while its trigger file exists, and only on
    files whose path holds the trigger's first word: set_fault(name, text)
    writes it, clear_fault(name) removes it (tearDownClass does too)."""

    FAULTS = ()

    @classmethod
    def setUpClass(cls):
        libraries = []
        stamp = "%d-%d" % (os.getpid(), time.monotonic_ns())
        cls.triggers = {}
        env = dict(cls.EXTRA_ENV or {})
        for name in cls.FAULTS:
            library = os.path.abspath(os.path.join(build_dir(), "lib",
                                                   name + ".so"))
            if not os.path.exists(library):
                raise HarnessError("'%s' is not built" % library)
            libraries.append(library)
            cls.triggers[name] = "/tmp/conveyor-%s-%s" % (name, stamp)
            env["CONVEYOR_TEST_" + name.upper()] = cls.triggers[name]
        asan = os.environ.get("ASAN_OPTIONS", "")
        env.update({
            "LD_PRELOAD": ":".join(libraries),
            # a sanitizer build wants its runtime first; ours is harmless
            "ASAN_OPTIONS": (asan + ":" if asan else "")
            + "verify_asan_link_order=0",
        })
        cls.EXTRA_ENV = env
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        for trigger in getattr(cls, "triggers", {}).values():
            if os.path.exists(trigger):
                os.unlink(trigger)
        super().tearDownClass()

    def set_fault(self, name, text):
        with open(self.triggers[name], "w") as f:
            f.write(text + "\n")

    def clear_fault(self, name):
        os.unlink(self.triggers[name])
