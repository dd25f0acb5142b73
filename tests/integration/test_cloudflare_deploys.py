#!/usr/bin/env python3
"""Deployment-aware incidents end to end: the cloudflare-deployments poller reads a fake
Cloudflare API (lib/fake_cloudflare.py) while errors arrive through Logpush and through the
Workers Observability poller.

  deployment A -> errors           -> the open says "first seen N min after deployment A (...)"
  deployment B -> errors stop      -> the resolve says "fixed by deployment B (...)"
  deployment C -> errors return    -> the new open says "regression in deployment C (...)"

Checked in the webhook payloads the capture server receives (incident.fields) and in
/incidents. Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import gzip
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import DaemonTestCase, alerts, run_tests, start_capture, wait_alert  # noqa: E402
from fake_cloudflare import (TOKEN, FakeCloudflare, cloudflare_section, deployment,  # noqa: E402
                             obs_event, write_token)

LP_TOKEN = "lp-deploys-secret-0123456789"
SCRIPT = "py-shop"
KEY = "py-src-import/%s/src" % SCRIPT
DEP_PATH = r"/workers/scripts/%s/deployments$" % SCRIPT
RESOLVE_AFTER_S = 6


def trace_event(ray, ts_ms):
    return {
        "Event": {"RayID": ray, "Request": {"URL": "https://shop.example.com/cart",
                                            "Method": "GET"}, "Response": {"Status": 500}},
        "EventTimestampMs": ts_ms, "EventType": "fetch",
        "Exceptions": [{"Name": "PythonError",
                        "Message": "Traceback (most recent call last):\n  File "
                                   "\"/session/metadata/entry.py\", line 4, in fetch\n"
                                   "    from src.cart import total\n"
                                   "ModuleNotFoundError: No module named 'src'\n",
                        "TimestampMs": ts_ms}],
        "Logs": [], "Outcome": "exception", "ScriptName": SCRIPT,
        "ScriptVersion": {"ID": "ver-a", "Message": "", "Tag": ""},
    }


class DeploysCase(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.fake = FakeCloudflare().start()
        self.addCleanup(self.fake.stop)
        self.cap = start_capture()
        self.addCleanup(self.cap.stop)
        self.d = None

    def tearDown(self):
        if self.d is not None:
            if self.d.alive():
                self.d.stop()
            self.assertNotIn(TOKEN, self.d.stderr_text())
            self.assertNotIn(LP_TOKEN, self.d.stderr_text())
        super().tearDown()

    def start(self, extra_sources=()):
        cfg = {
            "cloudflare": cloudflare_section(self.fake, write_token(self.path("cf.token"))),
            "sources": [
                {"name": "cf-deploys", "type": "cloudflare-deployments", "scripts": [SCRIPT],
                 "interval": "1s"},
                {"name": "lp", "type": "logpush", "token": LP_TOKEN},
            ] + list(extra_sources),
            "incidents": {"resolve_after": "%ds" % RESOLVE_AFTER_S},
            "sinks": [{"name": "cap", "type": "webhook", "url": self.cap.url("/hook")}],
        }
        self.d = self.daemon(cfg)
        self.d.start()
        return self.d

    def alive(self):
        if not self.d.alive():
            raise AssertionError("cfwatchd exited; stderr:\n" + self.d.stderr_tail())

    def push(self, ray):
        body = gzip.compress(json.dumps(trace_event(ray, int(time.time() * 1000))).encode() +
                             b"\n")
        req = urllib.request.Request(self.d.url("/logpush/lp"), data=body, method="POST",
                                     headers={"Authorization": "Bearer " + LP_TOKEN,
                                              "Content-Encoding": "gzip"})
        with urllib.request.urlopen(req, timeout=30) as r:
            self.assertEqual(r.status, 200)

    def deploy(self, dep_id, version, author, message, created_s=None):
        """Adds a deployment to the fake and waits until the poller has recorded it."""
        t = time.monotonic()
        self.fake.add_deployment(SCRIPT, deployment(dep_id, version, created_s or time.time(),
                                                    author, message))
        self.d.wait_stderr(r"source=cf-deploys deployment=%s script=%s" % (dep_id, SCRIPT),
                           since=t)

    def payload(self, event, n=1):
        got = wait_alert(self.cap, "/hook", event, KEY, daemon=self.d, count=n)
        return got[n - 1][2]["incident"]

    def test_after_fixed_by_regression(self):
        # deployment A went out three minutes ago; cfwatchd starts and records it
        self.fake.add_deployment(SCRIPT, deployment("dep-A", "ver-a", time.time() - 185,
                                                    "ann@example.com", "add cart"))
        self.start()
        self.fake.wait_requests(DEP_PATH, 1, check=self.alive)

        # errors after A: the open names A
        self.push("ray-1")
        self.push("ray-2")
        inc = self.payload("open")
        f = inc["fields"]
        self.assertEqual(f["deployment"], "dep-A")
        self.assertEqual(f["deployment_version"], "ver-a")
        self.assertEqual(f["deployment_author"], "ann@example.com")
        self.assertEqual(f["deployment_message"], "add cart")
        self.assertRegex(f["deployment_note"],
                         r"^first seen 3 min after deployment dep-A \(version ver-a, by "
                         r"ann@example\.com: add cart\)$")
        self.assertEqual(self.d.incident_map()[KEY]["fields"]["deployment_note"],
                         f["deployment_note"])

        # deployment B lands after the last error, and the errors stop: the resolve names B
        self.d.wait_incident(KEY, min_count=2)
        time.sleep(0.05)
        self.deploy("dep-B", "ver-b", "bob@example.com", "fix imports")
        self.assertEqual(self.d.incident_map()[KEY]["state"], "open",
                         "resolved before the poller saw deployment B (resolve_after too short)")
        inc = self.payload("resolve")
        f = inc["fields"]
        self.assertEqual(f["deployment"], "dep-B")
        self.assertEqual(f["deployment_note"], "fixed by deployment dep-B (version ver-b, by "
                                               "bob@example.com: fix imports)")
        res = self.d.wait_incident(KEY, state="resolved")
        self.assertTrue(res["fields"]["deployment_note"].startswith("fixed by deployment dep-B"))

        # deployment C, then the errors come back: a regression in C
        time.sleep(0.05)
        self.deploy("dep-C", "ver-c", "cy@example.com", "refactor")
        self.push("ray-3")
        inc = self.payload("open", 2)
        f = inc["fields"]
        self.assertEqual(f["deployment"], "dep-C")
        self.assertEqual(f["deployment_note"], "regression in deployment dep-C (version ver-c, "
                                               "by cy@example.com: refactor)")
        self.assertEqual(self.d.wait_incident(KEY)["fields"]["deployment_note"],
                         f["deployment_note"])
        events = [a[0] for a in alerts(self.cap, "/hook") if a[1] == KEY]
        self.assertEqual(events, ["open", "resolve", "open"])

    def test_errors_from_observability_name_the_deployment(self):
        # the same context for errors read by the observability poller, and across a restart
        self.fake.add_deployment(SCRIPT, deployment("dep-A", "ver-a", time.time() - 600,
                                                    "ann@example.com", "first"))
        self.start([{"name": "cf-obs", "type": "cloudflare-observability", "scripts": [SCRIPT],
                     "interval": "1s"}])
        self.fake.wait_requests(DEP_PATH, 1, check=self.alive)
        self.fake.add_events([obs_event("ev-1", SCRIPT, int(time.time() * 1000),
                                        "ModuleNotFoundError: No module named 'src'")])
        inc = self.payload("open")
        self.assertRegex(inc["fields"]["deployment_note"],
                         r"^first seen 10 min after deployment dep-A \(version ver-a, by "
                         r"ann@example\.com: first\)$")
        self.assertEqual(inc["fields"]["source"], "cf-obs")
        # the deployments are part of the saved state: after a restart B still fixes it
        self.d.stop()
        self.d.start()
        time.sleep(0.05)
        self.deploy("dep-B", "ver-b", "bob@example.com", "fix")
        inc = self.payload("resolve")
        self.assertEqual(inc["fields"]["deployment_note"],
                         "fixed by deployment dep-B (version ver-b, by bob@example.com: fix)")

    def test_no_deployments_no_note(self):
        self.fake.deployments[SCRIPT] = []
        self.start()
        self.fake.wait_requests(DEP_PATH, 1, check=self.alive)
        self.push("ray-x")
        inc = self.payload("open")
        self.assertNotIn("deployment_note", inc["fields"])
        self.assertNotIn("deployment", inc["fields"])


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
