#!/usr/bin/env python3
"""Real `wrangler tail` as a client: an `exec` source runs `wrangler tail <name> --format json`
(npm package wrangler@4, installed once by lib/npm_wrangler.py) with CLOUDFLARE_API_BASE_URL
pointing at the fake Cloudflare API (lib/fake_cloudflare.py). Its tail-create endpoint
(POST .../workers/scripts/<name>/tails, the only call wrangler 4 makes before connecting) hands
out a ws://127.0.0.1 URL served by lib/ws_tail.py, which accepts wrangler's `trace-v1`
subprotocol and its client frames (wrangler sends its first frame unmasked, later ones masked)
and pushes TailEventMessages. The Python exception events become incidents; stopping the daemon
stops wrangler and its child node process.

When node or npm is missing or the npm registry cannot be reached, prints "SKIPPED: <reason>"
and exits 77 (ctest: SKIP_RETURN_CODE 77), never a silent pass.
Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import npm_wrangler  # noqa: E402
from daemon import (SOURCE_DIR, DaemonTestCase, pids_alive, run_tests,  # noqa: E402
                    start_capture, wait_alert)
from fake_cloudflare import ACCOUNT_ID, TOKEN, FakeCloudflare  # noqa: E402
from tail_events import VERSION, tail_event  # noqa: E402
from ws_tail import TailServer  # noqa: E402
import tail_events  # noqa: E402

WRANGLER = None


def s02_event():
    return tail_events.s02_event(SOURCE_DIR)


def procs_with(marker):
    """Pids of live processes whose command line contains marker."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if marker.encode() in cmd:
            out.append(int(name))
    return pids_alive(out)


class WranglerTailCase(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.ws = TailServer().start()
        self.addCleanup(self.ws.stop)
        self.fake = FakeCloudflare().start()
        self.fake.ws_port = self.ws.port
        self.addCleanup(self.fake.stop)
        self.cap = start_capture()
        self.addCleanup(self.cap.stop)
        self.worker = "py-tail-" + uuid.uuid4().hex[:8]  # names this test's wrangler process
        home = self.path("home")
        os.makedirs(home)
        cfg = {
            "sources": [{
                "name": "tail-py", "type": "exec",
                "command": [WRANGLER, "tail", self.worker, "--format", "json"],
                "env": {"CLOUDFLARE_API_BASE_URL": self.fake.base_url,
                        "CLOUDFLARE_API_TOKEN": TOKEN, "CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID,
                        "WRANGLER_SEND_METRICS": "false", "WRANGLER_WRITE_LOGS": "false",
                        "HOME": home, "XDG_CONFIG_HOME": os.path.join(home, ".config"),
                        "CI": "true", "NO_COLOR": "1", "FORCE_COLOR": "0"},
                "cwd": self.tmp, "stdout_format": "json", "stderr_format": "lines",
                "restart_delay": "1s", "stop_grace": "5s",
            }],
            "incidents": {"resolve_after": "1h"},
            "sinks": [{"name": "cap", "type": "webhook", "url": self.cap.url("/hook")}],
        }
        self.d = self.daemon(cfg)

    def tearDown(self):
        if self.d.alive():
            self.d.stop()
        super().tearDown()

    def check(self):
        if not self.d.alive():
            raise AssertionError("cfwatchd exited; stderr:\n" + self.d.stderr_tail())

    def connect(self):
        self.d.start()
        self.fake.wait_requests(r"/workers/scripts/%s/tails$" % self.worker, 1, method="POST",
                                timeout=90, check=self.check)
        conn = self.ws.wait_connected(timeout=60, check=self.check)[0]
        # wrangler's first message tells the tail whether to send filtered events
        op, msg = self.ws.wait_message(conn)
        self.assertEqual(json.loads(msg), {"debug": False})
        return conn

    def test_python_exceptions_from_the_tail_become_incidents(self):
        conn = self.connect()
        # what wrangler sent: the tail creation with the token, the WebSocket with trace-v1
        create = self.fake.snapshot(r"/tails$", method="POST")[0]
        self.assertEqual(create["path"], "/client/v4/accounts/%s/workers/scripts/%s/tails" %
                         (ACCOUNT_ID, self.worker))
        self.assertEqual(create["headers"].get("authorization"), "Bearer " + TOKEN)
        self.assertIn("filters", create["json"])
        line, headers = conn.request
        self.assertTrue(line.startswith("GET /tail"), line)
        self.assertEqual(conn.protocol, "trace-v1")
        self.assertRegex(headers.get("user-agent", ""), r"^wrangler/4\.")
        for r in self.fake.snapshot():
            self.assertEqual(r["headers"].get("authorization"), "Bearer " + TOKEN, r["path"])

        # a Python import failure (corpus S02), a missing SDK module, a request that went fine
        self.assertEqual(self.ws.send_event(s02_event()), 1)
        self.ws.send_event(tail_event("py-shop", "workers", "from workers import Response"))
        self.ws.send_event(tail_event("py-shop", "x", "", outcome="ok"))
        inc = self.d.wait_incident("py-src-import/example-py/src", timeout=60)
        self.assertEqual(inc["fields"]["script"], "example-py")
        self.assertEqual(inc["fields"]["version"], VERSION)
        self.assertEqual(inc["fields"]["source"], "tail-py")
        self.assertEqual(inc["fields"].get("import"), "from src.db import q")
        self.d.wait_incident("py-workers-sdk-missing/py-shop/workers", timeout=60)
        got = wait_alert(self.cap, "/hook", "open", "py-src-import/example-py/src",
                         daemon=self.d, timeout=30)
        self.assertEqual(got[0][2]["incident"]["fields"]["version"], VERSION)
        # the same failure again is counted on the same incident
        self.ws.send_event(s02_event())
        self.d.wait_incident("py-src-import/example-py/src", min_count=2, timeout=60)
        self.assertEqual(len(self.d.incidents()["incidents"]), 2,
                         [i["key"] for i in self.d.incidents()["incidents"]])
        self.assertNotIn(TOKEN, self.d.stderr_text())
        # stopping the daemon stops wrangler and its node child
        self.assertTrue(procs_with(self.worker), "wrangler is not running")
        self.d.stop()
        deadline = time.monotonic() + 10
        while procs_with(self.worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(procs_with(self.worker), [], "wrangler outlived the daemon")

    def test_tail_dropped_by_the_server_is_reconnected(self):
        # the tail server goes away: wrangler reconnects or exits; either way the exec source
        # keeps (or brings back) a connected tail and later events still arrive
        conn = self.connect()
        conn.sock.close()
        conn2 = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            self.check()
            opened = [c for c in self.ws.open_conns() if c is not conn]
            if opened:
                conn2 = opened[0]
                break
            time.sleep(0.2)
        self.assertIsNotNone(conn2, "no new tail connection after the server dropped one")
        self.ws.wait_message(conn2)
        time.sleep(0.5)
        self.ws.send_event(tail_event("py-back", "src", "import src.app"))
        self.d.wait_incident("py-src-import/py-back/src", timeout=60)


def main():
    global WRANGLER
    WRANGLER = npm_wrangler.ensure()  # exits 77 with "SKIPPED: ..." when it cannot
    return run_tests(__name__)


if __name__ == "__main__":
    sys.exit(main())
