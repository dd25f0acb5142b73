#!/usr/bin/env python3
"""An HA pair through an Alertmanager cluster (docs/scaling.md, topology 1), with the real
prometheus-alertmanager from Debian: two cfwatchd daemons watch the same log and send every
alert to both nodes of a two-node Alertmanager cluster gossiping on loopback, which routes to
one webhook receiver (the capture server). Each daemon reaches each node through a recording
proxy, so that what cfwatchd posts is checked exactly, apart from what the cluster makes of it.

cfwatchd's side, per daemon, node and incident (exact):
  - the alert is posted firing (endsAt in the future), again at most ends_after apart while
    the incident is open, and, when that daemon resolves it, exactly once resolved (endsAt not
    after the post), with nothing after the resolve; a killed daemon just stops posting;
  - daemon A is killed (SIGKILL): an incident daemon B also sees stays firing past A's endsAt
    (B re-sends it) until B resolves it; an incident only A saw resolves on its own, not
    before A's last endsAt.

The receiver's side, per incident: the cluster's guarantee, at least once. Alertmanager's HA
mode is designed for at-least-once delivery and sends a duplicate rather than miss a
notification (https://prometheus.io/docs/alerting/latest/high_availability, "Design Goals");
its dedup between members is gossip within --cluster.peer-timeout, so a member that flushed
before the other's resolve reached it notifies "firing" after the other's "resolved", then
"resolved" again (prometheus/alertmanager#4008; seen here under valgrind memcheck as firing x,
resolved x, firing x, resolved x). So: the first notification of an incident is firing, the
last is resolved (it settles there within WAIT and stays for QUIET), and no incident is
notified resolved while a daemon still sends it. Once one node is killed the other notifies
alone, without the cluster's dedup: a new incident is then exactly one firing notification.
The counts each run saw are printed ("figures", for bench/ha-pair.sh).

Skipped (77) when prometheus-alertmanager is not installed (scripts/deps.sh --all installs it).
Ends with "N passed, M failed".
"""
import datetime
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import alertmanager  # noqa: E402
from daemon import Daemon, DaemonTestCase, start_capture, wait_until  # noqa: E402
from serve_util import send_reply  # noqa: E402

HOOK = "/am"
# under valgrind memcheck (scripts/valgrind.sh) the daemons run many times slower: an alert
# lives longer between re-sends and incidents resolve later, the order of events is the same
SLOW = 2 if "valgrind" in os.environ.get("CFWATCHD_WRAPPER", "") else 1
RESEND = "1s"
ENDS_AFTER_S = 2 * SLOW
ENDS_AFTER = "%ds" % ENDS_AFTER_S
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


def epoch(ts):
    """cfwatchd's endsAt (2026-12-07T10:23:25.123Z) as seconds since the epoch."""
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


class Recorder:
    """A proxy between one daemon and one Alertmanager node: forwards each request, answers
    with the node's answer (or closes the connection unanswered when the node is down, as a
    refused connection would fail the delivery), and records each alert posted as
    (arrival time, incident label, endsAt in seconds)."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.lock = threading.Lock()
        self.posted = []
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                rec.record(arrived, body)
                req = urllib.request.Request(rec.upstream + self.path, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        status, data = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, data = e.code, e.read()
                except OSError:
                    # no answer: the connection closes after this, a failed delivery
                    self.close_connection = True
                    return
                send_reply(self, status, {"Content-Type": "application/json"}, data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def record(self, arrived, body):
        with self.lock:
            for a in json.loads(body):
                self.posted.append((arrived, a["labels"].get("incident"), epoch(a["endsAt"])))

    def copies(self, key):
        """What was posted of key, in order: F firing (endsAt after the post: its sending time
        plus ends_after), R resolved (endsAt the resolve time, not after the post)."""
        with self.lock:
            return "".join("F" if ends > arrived else "R"
                           for arrived, k, ends in self.posted if k == key)

    def firing_times(self, key):
        """(arrival, endsAt) of each firing post of key."""
        with self.lock:
            return [(arrived, ends) for arrived, k, ends in self.posted
                    if k == key and ends > arrived]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class HAPair(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.cap = start_capture()
        self.nodes = []
        self.proxies = {}

    def tearDown(self):
        alertmanager.stop_all(self.nodes)
        for p in self.proxies.values():
            p.stop()
        self.cap.stop()
        super().tearDown()

    def write(self, path, line):
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def got(self):
        return alertmanager.webhook_notifications(self.cap, HOOK)

    def sent(self, status, key):
        return [n for n in self.got() if n == (status, key)]

    def wait_sent(self, status, key, timeout=WAIT):
        wait_until(lambda: self.sent(status, key) or None,
                   "a %s notification for %s (got %s)" % (status, key, self.got()),
                   timeout=timeout)
        return time.monotonic()

    def arrival(self, status, key):
        """When the receiver first got a status notification of key (seconds since the epoch)."""
        for r in self.cap.requests(HOOK):
            for a in json.loads(r["body"]).get("alerts", []):
                if (a.get("status"), (a.get("labels") or {}).get("incident")) == (status, key):
                    return r["time"]
        return None

    def statuses(self, key):
        return [st for st, k in self.got() if k == key]

    def assert_settled_resolved(self, keys):
        """The receiver's side of each incident in keys, at least once: its first notification
        is firing and its last, within WAIT and still after QUIET, resolved."""
        wait_until(lambda: all(self.statuses(k)[-1:] == ["resolved"] for k in keys),
                   "the last notification of %s resolved (got %s)" % (keys, self.got()),
                   timeout=WAIT)
        time.sleep(QUIET)
        for key in keys:
            st = self.statuses(key)
            self.assertEqual((st[0], st[-1]), ("firing", "resolved"),
                             "notifications of %s: %s" % (key, self.got()))

    def assert_posted(self, daemon, key, pattern):
        """cfwatchd's side: what daemon posted of key to each live node matches pattern (F
        firing, R resolved), and its firing posts came at most ends_after apart."""
        for i, node in enumerate(self.nodes):
            if not node.alive():
                continue
            p = self.proxies[daemon, i]
            self.assertRegex(p.copies(key), "^%s$" % pattern,
                             "daemon %s posted %s to node %d" % (daemon, key, i))
            fired = p.firing_times(key)
            gaps = [b[0] - a[0] for a, b in zip(fired, fired[1:])]
            self.assertLess(max(gaps, default=0.0), ENDS_AFTER_S,
                            "daemon %s let %s lapse at node %d: re-sends %s s apart" % (
                                daemon, key, i, ["%.1f" % g for g in gaps]))

    def active(self, key):
        return [n for n in self.nodes if n.alive() and n.alerts(key)]

    def test_ha_pair(self):
        self.nodes = alertmanager.start_cluster(self.tmp, 2, self.cap.url(HOOK))
        for d in ("a", "b"):
            for i, node in enumerate(self.nodes):
                self.proxies[d, i] = Recorder(node.url)
        shared = self.path("shared.log")
        only_a = self.path("only-a.log")
        for p in (shared, only_a):
            open(p, "w").close()
        # two hosts: each daemon in a directory (state, notify socket) of its own
        daemons = {}
        for d, logs in (("a", [shared, only_a]), ("b", [shared])):
            os.makedirs(self.path(d))
            urls = [self.proxies[d, i].url for i in range(len(self.nodes))]
            daemons[d] = Daemon(self.path(d), config(logs, urls), name=d)
        a, b = daemons["a"], daemons["b"]
        self._daemons += [a, b]
        a.start()
        b.start()

        # 1. both daemons open boom/x, A alone opens boom/y: each is notified firing, nothing
        # resolves while they are sent
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
        self.assertEqual([n for n in self.got() if n[0] != "firing"], [])

        # 2. A dies: boom/y (A's alone) resolves at A's endsAt; boom/x stays firing (B re-sends)
        killed = time.monotonic()
        a.kill()
        self.wait_sent("resolved", "boom/y", timeout=WAIT)
        resolved_y = time.monotonic() - killed
        print("  boom/y resolved %.1f s after daemon A was killed (ends_after %s)" % (
            resolved_y, ENDS_AFTER))
        # no node resolved boom/y before the endsAt of A's last post to it
        last_ends_y = min(self.proxies["a", i].firing_times("boom/y")[-1][1]
                          for i in range(len(self.nodes)))
        self.assertGreaterEqual(self.arrival("resolved", "boom/y"), last_ends_y)
        self.assertEqual(self.sent("resolved", "boom/x"), [])
        self.assertEqual(len(self.active("boom/x")), 2, "boom/x left Alertmanager with A")
        # B resolves boom/x (no match for resolve_after)
        b.wait_incident("boom/x", state="resolved", timeout=WAIT)
        self.assert_settled_resolved(["boom/x", "boom/y"])
        # cfwatchd's side: A posted both firing until it died, B posted boom/x firing, then
        # resolved it once at each node
        self.assert_posted("a", "boom/x", "F+")
        self.assert_posted("a", "boom/y", "F+")
        self.assert_posted("b", "boom/x", "F+R")
        self.assert_posted("b", "boom/y", "")

        # 3. an Alertmanager node dies: the other notifies a new incident alone, exactly once
        self.nodes[0].kill()
        self.write(shared, "BOOM z")
        b.wait_incident("boom/z")
        self.wait_sent("firing", "boom/z")
        time.sleep(QUIET)
        self.assertEqual(self.statuses("boom/z"), ["firing"], self.got())
        self.assertEqual(len(self.active("boom/z")), 1)
        self.assert_posted("b", "boom/z", "F+")
        for key in ("boom/x", "boom/y"):
            self.assertEqual(self.statuses(key)[-1], "resolved", self.got())
        b.stop()
        # the figures of docs/scaling.md (bench/ha-pair.sh collects them over several runs)
        got = self.got()
        print("  figures: notifications %s; boom/y resolved %.1f s after its daemon died" % (
            " ".join("%s:%s=%d" % (k, st, got.count((st, k)))
                     for k in ("boom/x", "boom/y", "boom/z") for st in ("firing", "resolved")),
            resolved_y))
        # what each daemon posted to each node: F firing, R resolved, per incident
        print("  posted: %s" % " ".join(
            "%s>am%d:%s=%s" % (d, i, k[5:], re.sub(r"F+", lambda m: "F%d" % len(m.group()),
                                                      self.proxies[d, i].copies(k)))
            for (d, i) in sorted(self.proxies) for k in ("boom/x", "boom/y", "boom/z")
            if self.proxies[d, i].copies(k)))


if __name__ == "__main__":
    sys.exit(alertmanager.main(__name__))
