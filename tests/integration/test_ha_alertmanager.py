#!/usr/bin/env python3
"""An HA pair through an Alertmanager cluster (docs/scaling.md, topology 1), with the real
prometheus-alertmanager from Debian: two cfwatchd daemons watch the same log and send every
alert to both nodes of a two-node Alertmanager cluster gossiping on loopback, which routes to
one webhook receiver (the capture server).

  - each incident reaches the receiver as exactly one firing notification, although four
    copies of it reach Alertmanager (two daemons x two nodes) and both nodes could notify;
  - daemon A is killed (SIGKILL): an incident daemon B also sees stays firing past A's endsAt
    (B re-sends it), then resolves exactly once when B resolves it; an incident only A saw
    resolves on its own at A's endsAt (ends_after after A's last re-send), exactly once;
  - an Alertmanager node is killed: a new incident is still exactly one notification.

The "exactly once" checks wait a quiet window after the first notification, longer than the
time a second node would take to send a duplicate (peer-timeout, 1 s, after a group flush).
Skipped (77) when prometheus-alertmanager is not installed (scripts/deps.sh --all installs it).
Ends with "N passed, M failed".
"""
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import alertmanager  # noqa: E402
from daemon import Daemon, DaemonTestCase, start_capture, wait_until  # noqa: E402

HOOK = "/am"
# under valgrind memcheck (scripts/valgrind.sh) the daemons run many times slower: an alert
# lives longer between re-sends and incidents resolve later, the order of events is the same
SLOW = 2 if "valgrind" in os.environ.get("CFWATCHD_WRAPPER", "") else 1
RESEND = "1s"
ENDS_AFTER = "%ds" % (2 * SLOW)
RESOLVE_AFTER = "%ds" % (10 * SLOW)
# a notification that a second node would duplicate comes within peer-timeout (1 s) of the
# first, after group_interval (1 s): this window is past both
QUIET = 3.0
WAIT = 30.0


def config(logs, am_urls):
    return {
        "sources": [{"name": "log%d" % i, "type": "file", "path": p, "start_at": "beginning",
                     "format": "lines"} for i, p in enumerate(logs)],
        "rules": {"custom": [{"id": "boom", "pattern": r"BOOM (?<what>\w+)",
                              "key": "{rule}/{what}", "title": "boom {what}",
                              "severity": "critical", "resolve_after": RESOLVE_AFTER}]},
        "sinks": [{"name": "am", "type": "alertmanager", "urls": am_urls,
                   "resend_interval": RESEND, "ends_after": ENDS_AFTER}],
        # deliveries to a killed node give up soon, so that stopping is not held by them
        "outbox": {"max_age": "3s", "backoff_base": "200ms", "backoff_max": "1s"},
    }


class HAPair(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.cap = start_capture()
        self.nodes = []

    def tearDown(self):
        alertmanager.stop_all(self.nodes)
        self.cap.stop()
        super().tearDown()

    def write(self, path, line):
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def sent(self, status, key):
        return [n for n in alertmanager.webhook_notifications(self.cap, HOOK)
                if n == (status, key)]

    def wait_sent(self, status, key, timeout=WAIT):
        wait_until(lambda: self.sent(status, key) or None,
                   "a %s notification for %s (got %s)" % (
                       status, key, alertmanager.webhook_notifications(self.cap, HOOK)),
                   timeout=timeout)
        return time.monotonic()

    def assert_once(self, status, key):
        self.assertEqual(len(self.sent(status, key)), 1, "%s notifications of %s: %s" % (
            status, key, alertmanager.webhook_notifications(self.cap, HOOK)))

    def active(self, key):
        return [n for n in self.nodes if n.alive() and n.alerts(key)]

    def test_ha_pair(self):
        self.nodes = alertmanager.start_cluster(self.tmp, 2, self.cap.url(HOOK))
        urls = [n.url for n in self.nodes]
        shared = self.path("shared.log")
        only_a = self.path("only-a.log")
        for p in (shared, only_a):
            open(p, "w").close()
        # two hosts: each daemon in a directory (state, notify socket) of its own
        for sub in ("a", "b"):
            os.makedirs(self.path(sub))
        a = Daemon(self.path("a"), config([shared, only_a], urls), name="a")
        b = Daemon(self.path("b"), config([shared], urls), name="b")
        self._daemons += [a, b]
        a.start()
        b.start()

        # 1. both daemons open boom/x, A alone opens boom/y: one firing notification each
        self.write(shared, "BOOM x")
        self.write(only_a, "BOOM y")
        a.wait_incident("boom/x")
        b.wait_incident("boom/x")
        a.wait_incident("boom/y")
        self.wait_sent("firing", "boom/x")
        self.wait_sent("firing", "boom/y")
        # the two senders' alerts are one alert in Alertmanager, on both nodes
        for node in self.nodes:
            (alert,) = node.alerts("boom/x")
            self.assertEqual(alert["annotations"]["cfwatchd_host"], os.uname().nodename)
        time.sleep(QUIET)
        self.assert_once("firing", "boom/x")
        self.assert_once("firing", "boom/y")

        # 2. A dies: boom/y (A's alone) resolves at A's endsAt; boom/x stays firing (B re-sends)
        killed = time.monotonic()
        a.kill()
        self.wait_sent("resolved", "boom/y", timeout=WAIT)
        resolved_y = time.monotonic() - killed
        print("  boom/y resolved %.1f s after daemon A was killed (ends_after %s)" % (
            resolved_y, ENDS_AFTER))
        self.assertEqual(self.sent("resolved", "boom/x"), [])
        self.assertEqual(len(self.active("boom/x")), 2, "boom/x left Alertmanager with A")
        # B resolves boom/x (no match for resolve_after): one resolved notification
        b.wait_incident("boom/x", state="resolved", timeout=WAIT)
        self.wait_sent("resolved", "boom/x")
        time.sleep(QUIET)
        for status in ("firing", "resolved"):
            for key in ("boom/x", "boom/y"):
                self.assert_once(status, key)

        # 3. an Alertmanager node dies: a new incident is still one notification
        self.nodes[0].kill()
        self.write(shared, "BOOM z")
        b.wait_incident("boom/z")
        self.wait_sent("firing", "boom/z")
        time.sleep(QUIET)
        self.assert_once("firing", "boom/z")
        self.assertEqual(len(self.active("boom/z")), 1)
        b.stop()
        # the figures of docs/scaling.md (bench/ha-pair.sh collects them over several runs)
        got = alertmanager.webhook_notifications(self.cap, HOOK)
        print("  figures: notifications %s; boom/y resolved %.1f s after its daemon died" % (
            " ".join("%s:%s=%d" % (k, st, got.count((st, k)))
                     for k in ("boom/x", "boom/y", "boom/z") for st in ("firing", "resolved")),
            resolved_y))


if __name__ == "__main__":
    sys.exit(alertmanager.main(__name__))
