#!/usr/bin/env python3
"""Fault injection: receivers that misbehave (issue 7).

A webhook sink delivers to tests/integration/lib/faults.py's FaultyReceiver, which
  - accepts the connection, reads the request and never answers ("silent"),
  - sends a status line and part of the headers, then resets the connection ("reset"),
  - answers one byte every half second, far slower than the sink's timeout ("slow").
For each: the request times out (or fails) and is retried with backoff, every attempt carries the
same notification id, the daemon closes what it gave up on (no connection or descriptor piles
up), the event loop stays responsive throughout (a separate process GETs /healthz every 20 ms
and reports the maximum latency), and once the receiver answers again the notification is
delivered and the outbox is empty.

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import json
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import DaemonTestCase, run_tests, wait_until  # noqa: E402
from faults import (FaultyReceiver, HealthProbe, fd_count, is_sanitized,  # noqa: E402
                    assert_healthz, report)

SLOW = 3.0 if is_sanitized() else 1.0


def config(log, url):
    return {
        "sources": [{"name": "app", "type": "file", "path": log, "start_at": "beginning",
                     "format": "lines", "poll_interval": "100ms"}],
        "rules": {"builtin": [], "custom": [
            {"id": "boom", "pattern": r"BOOM (?<what>\w+)", "severity": "error",
             "key": "{rule}/{what}", "title": "boom {what}", "resolve_after": "1h"}]},
        "outbox": {"backoff_base": "200ms", "backoff_max": "1s"},
        "sinks": [{"name": "hook", "type": "webhook", "url": url, "timeout": "1s",
                   "connect_timeout": "1s"}],
    }


class ReceiverFaultCase(DaemonTestCase):
    def run_fault(self, mode, reason_rx, attempts=3):
        rx = FaultyReceiver(mode, slow_interval=0.5).start()
        self.addCleanup(rx.stop)
        log = self.path("app.log")
        with open(log, "w", encoding="utf-8") as f:
            f.write("starting\n")
        d = self.daemon(config(log, rx.url("/hook")), log_level="debug")
        d.start()
        fds0 = fd_count(d.pid)
        probe = HealthProbe(d.port).start()
        try:
            with open(log, "a", encoding="utf-8") as f:
                f.write("BOOM one\n")
            d.wait_incident("boom/one")
            # the same notification is attempted again and again while the receiver misbehaves
            wait_until(lambda: len(rx.bodies(mode)) >= attempts,
                       "%d attempts against the %s receiver" % (attempts, mode),
                       timeout=30 * SLOW)
            self.assertGreaterEqual(d.metric("cfwatchd_notifications_retried_total", 0,
                                             sink="hook"), attempts - 1)
            self.assertEqual(d.metric("cfwatchd_notifications_sent_total", 0, sink="hook"), 0)
            self.assertEqual(d.metric("cfwatchd_outbox_depth"), 1)
            ids = {json.loads(b)["id"] for b in rx.bodies(mode)}
            self.assertEqual(len(ids), 1, "a retry carried another notification id: %s" % ids)
            # why each attempt failed is logged (timeouts fire; a reset is a transport error)
            def failed_attempts():
                return re.findall(r"notify: sink=hook endpoint=0 job=\S+ (.*) in \d+ ms$",
                                  d.stderr_text(), re.M)
            reasons = d.wait_for(lambda: (lambda r: r if len(r) >= attempts - 1 else None)(
                failed_attempts()), "the failed attempts in the log")
            for r in reasons:
                self.assertRegex(r, reason_rx)
            self.assertRegex(d.stderr_text(), r"outbox: sink=hook endpoint=0 delivery failing")
            # nothing piles up: the daemon let go of the connections it gave up on
            if mode != "reset":
                wait_until(lambda: rx.closed_by_peer >= attempts - 1,
                           "the daemon closing the connections it gave up on")
            wait_until(lambda: fd_count(d.pid) <= fds0 + 3,
                       "the daemon's descriptors back near where they started (%d)" % fds0,
                       timeout=10 * SLOW)
            # the receiver recovers: the notification goes through, the outbox empties
            rx.mode = "ok"
            wait_until(lambda: ("open", "boom/one") in rx.events("ok"),
                       "the open notification once the receiver answers", timeout=15 * SLOW)
            d.wait_for(lambda: d.metric("cfwatchd_outbox_depth") == 0, "an empty outbox")
            self.assertEqual(d.metric("cfwatchd_notifications_sent_total", sink="hook"), 1)
            self.assertEqual({json.loads(b)["id"] for b in rx.bodies("ok")}, ids)
            self.assertRegex(d.stderr_text(), r"delivering again after \d+ failed")
        finally:
            rep = probe.stop()
        report("receiver-" + mode, attempts=len(rx.bodies(mode)), healthz_n=rep["n"],
               healthz_max_ms=rep["max_ms"], healthz_p99_ms=rep["p99_ms"],
               healthz_over_100ms=rep["over_100ms"], healthz_failures=rep["failures"])
        self.assertEqual(rep["failures"], 0, "/healthz did not answer: %s" % rep)
        assert_healthz(self, rep, "/healthz with a %s receiver" % mode)
        self.assertGreater(rep["n"], 20)
        d.stop()

    def test_receiver_that_never_answers(self):
        self.run_fault("silent", r"(?i)timeout|timed out")

    def test_receiver_that_resets_mid_response(self):
        self.run_fault("reset", r"(?i)transport: .*(reset|recv|receiv|failure|closed|partial)")

    def test_receiver_that_answers_very_slowly(self):
        self.run_fault("slow", r"(?i)timeout|timed out")


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
