#!/usr/bin/env python3
"""Incident lifecycle in the running daemon: lines appended to a watched file open an incident
and page once; a second burst within resolve_after adds to it without a new page; silence past
resolve_after resolves it (state in /incidents, a resolve at the capture server); a later burst
opens it again.

The pages are checked at the loopback capture server (tests/integration/lib/capture_server.py)
through a webhook sink; the same lifecycle is also checked through /incidents, /metrics and the
log, so a delivery problem and a lifecycle problem are told apart.

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import (DaemonTestCase, alerts, run_tests, start_capture,  # noqa: E402
                    wait_alert)

RESOLVE_AFTER = 3.0
KEY = "boom/disk"


def config(log, hook_url=None):
    cfg = {
        "sources": [{"name": "app", "type": "file", "path": log, "start_at": "end",
                     "format": "lines"}],
        "incidents": {"key": "{rule}/{what}", "repeat_interval": "1h", "resolve_after": "30m"},
        "rules": {"custom": [{"id": "boom", "pattern": r"BOOM (?<what>\w+)", "severity": "error",
                              "title": "boom on {what}", "hint": "check {what}",
                              "resolve_after": "%ds" % RESOLVE_AFTER}]},
    }
    if hook_url is not None:
        cfg["sinks"] = [{"name": "hook", "type": "webhook", "url": hook_url}]
    return cfg


def append(path, text):
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def transitions(d, t):
    return d.metric("cfwatchd_transitions_total", 0, transition=t)


class LifecycleCase(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.log = self.path("app.log")
        # start_at: end -> what is in the file before the daemon starts is not read
        with open(self.log, "w", encoding="utf-8") as f:
            f.write("BOOM old\n" * 5)

    def burst(self, n=3):
        append(self.log, "".join("2026-01-01 INFO x\nBOOM disk\n" for _ in range(n)))

    def test_open_burst_resolve_reopen(self):
        d = self.daemon(config(self.log))
        d.start()
        self.burst(3)
        inc = d.wait_incident(KEY, "open", min_count=3)
        self.assertEqual(inc["count"], 3)
        self.assertNotIn("boom/old", d.incident_map(), "start_at: end read old lines")
        self.assertEqual(transitions(d, "open"), 1)
        d.wait_stderr(r"incident open rule=boom .*key=boom/disk")

        # A second burst within resolve_after: same incident, no new transition.
        time.sleep(RESOLVE_AFTER / 2)
        self.assertEqual(d.incident_map()[KEY]["state"], "open")
        self.burst(2)
        inc = d.wait_incident(KEY, "open", min_count=5)
        self.assertEqual(inc["count"], 5)
        self.assertEqual(transitions(d, "open"), 1)
        self.assertEqual(transitions(d, "reminder"), 0)
        self.assertEqual(d.incidents()["open"], 1)

        # Not resolved before resolve_after has passed since the last match (seen above, so at
        # most RESOLVE_AFTER / 2 ago after this sleep)...
        time.sleep(RESOLVE_AFTER / 2)
        self.assertEqual(d.incident_map()[KEY]["state"], "open",
                         "resolved before resolve_after (%.0f s) passed" % RESOLVE_AFTER)
        # ... and resolved once it has.
        inc = d.wait_incident(KEY, "resolved", timeout=RESOLVE_AFTER + 15)
        self.assertEqual(inc["count"], 5)
        self.assertEqual(transitions(d, "resolve"), 1)
        self.assertEqual(d.incidents()["open"], 0)
        self.assertEqual(d.metric("cfwatchd_incidents_open"), 0)
        d.wait_stderr(r"incident resolve rule=boom .*key=boom/disk")

        # A burst after the resolve opens the incident again.
        self.burst(1)
        d.wait_incident(KEY, "open")
        self.assertEqual(transitions(d, "open"), 2)
        d.stop()

    def test_alerts_at_the_capture_server(self):
        cap = start_capture()
        self.addCleanup(cap.stop)
        d = self.daemon(config(self.log, cap.url("/hook")))
        d.start()
        self.burst(3)
        d.wait_incident(KEY, "open", min_count=3)
        # One page for the first burst.
        wait_alert(cap, "/hook", "open", KEY, daemon=d)
        first = alerts(cap, "/hook")
        self.assertEqual([(e, k) for e, k, _ in first], [("open", KEY)])
        payload = first[0][2]
        self.assertEqual(payload["incident"]["rule"], "boom")
        self.assertEqual(payload["incident"]["title"], "boom on disk")
        self.assertEqual(payload["incident"]["severity"], "error")

        # Second burst within resolve_after: counted, not paged.
        time.sleep(RESOLVE_AFTER / 2)
        self.burst(2)
        d.wait_incident(KEY, "open", min_count=5)
        time.sleep(1.0)  # time for a wrong second page to arrive
        self.assertEqual([(e, k) for e, k, _ in alerts(cap, "/hook")], [("open", KEY)],
                         "a burst within resolve_after must not page again")

        # Silence: the resolve arrives.
        d.wait_incident(KEY, "resolved", timeout=RESOLVE_AFTER + 15)
        wait_alert(cap, "/hook", "resolve", KEY, daemon=d)
        got = [(e, k) for e, k, _ in alerts(cap, "/hook")]
        self.assertEqual(got, [("open", KEY), ("resolve", KEY)])
        resolve = alerts(cap, "/hook")[1][2]
        self.assertEqual(resolve["incident"]["count"], 5)
        d.stop()
        # Nothing more was sent on the way out.
        self.assertEqual(len(alerts(cap, "/hook")), 2)


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
