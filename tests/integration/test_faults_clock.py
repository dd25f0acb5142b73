#!/usr/bin/env python3
"""Fault injection: the wall clock jumps an hour forwards and back (issue 7).

The daemon runs under libfaketime (Debian package `faketime`), which fakes CLOCK_REALTIME only
(FAKETIME_DONT_FAKE_MONOTONIC=1) from an offset file re-read on every call; the machine's clock
is never touched. Expected:
  - windows and timers follow the monotonic clock: an incident with resolve_after 8s does not
    resolve when the wall clock jumps +1 h, and still resolves about 8 s after its last match
    when it then jumps back 2 h; its reminder (repeat_interval 5s, sent when there were new
    matches) comes about 5 s after the open, not at the jump;
  - retries with backoff keep their pace across both jumps (a receiver answering 500);
  - timestamps in messages follow the wall clock and stay well-formed: each notification's
    `time` is the (faked) wall clock when it was built, RFC 3339 with milliseconds.
  - the outbox's max_age and Slack's "open for" are measured on the boot clock: a jump forwards
    does not dead-letter a notification seconds old, and "open for" stays right after a jump
    back.

Skipped (77) when libfaketime is not installed.
Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import calendar
import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import DaemonTestCase, run_tests, skip_file, start_capture, wait_until  # noqa: E402
from faults import (ClockOffset, FaultyReceiver, faketime_lib, is_sanitized,  # noqa: E402
                    report)

HOUR = 3600
RESOLVE_S = 8
REPEAT_S = 5
TIME_RX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SLOW = 3 if is_sanitized() else 1


def parse_time(s):
    """RFC 3339 UTC with milliseconds -> Unix seconds (float)."""
    if not TIME_RX.match(s or ""):
        raise AssertionError("not an RFC 3339 UTC time with milliseconds: %r" % s)
    return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) + int(s[20:23]) / 1000.0


def config(log, hook, slack, failing, max_age=None):
    cfg = {
        "sources": [{"name": "app", "type": "file", "path": log, "start_at": "beginning",
                     "format": "lines", "poll_interval": "100ms"}],
        "rules": {"builtin": [], "custom": [
            {"id": "boom", "pattern": r"BOOM (?<what>\w+)", "severity": "error",
             "key": "{rule}/{what}", "title": "boom {what}",
             "resolve_after": "%ds" % RESOLVE_S, "repeat_interval": "%ds" % REPEAT_S}]},
        "outbox": {"backoff_base": "1s", "backoff_max": "2s"},
        "sinks": [
            {"name": "hook", "type": "webhook", "url": hook},
            {"name": "slack", "type": "slack", "url": slack, "rate_limit": {"burst": 0}},
            {"name": "failing", "type": "webhook", "url": failing, "timeout": "2s"},
        ],
    }
    if max_age is not None:
        cfg["outbox"]["max_age"] = max_age
    return cfg


class ClockJumpCase(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.clock = ClockOffset(self.path("faketime.rc"))
        self.cap = start_capture()
        self.addCleanup(self.cap.stop)
        self.rx = FaultyReceiver("ok", status=500).start()
        self.addCleanup(self.rx.stop)
        self.log = self.path("app.log")
        open(self.log, "w").close()

    def start(self, **kw):
        d = self.daemon(config(self.log, self.cap.url("/hook"), self.cap.url("/slack/T/B/x"),
                               self.rx.url("/fail"), **kw), env=self.clock.env())
        d.start()
        return d

    def hooks(self):
        """[(arrival unix time, payload)] of the webhook notifications."""
        out = []
        for r in self.cap.requests("/hook"):
            out.append((r["time"], json.loads(r["body"])))
        return out

    def test_windows_backoff_and_timers_use_the_monotonic_clock(self):
        d = self.start()
        with open(self.log, "a", encoding="utf-8") as f:
            f.write("BOOM a\n")
        d.wait_incident("boom/a")
        t_open = time.monotonic()
        wait_until(lambda: any(p["event"] == "open" for _, p in self.hooks()), "the open")

        # +1 h: nothing resolves, nothing is reminded early
        time.sleep(max(0.0, t_open + 1.0 - time.monotonic()))
        self.clock.set(+HOUR)
        t_fwd = time.monotonic()
        time.sleep(2.5)
        self.assertEqual(d.incident_map()["boom/a"]["state"], "open",
                         "a wall-clock jump of +1 h resolved an incident (resolve_after %ds)"
                         % RESOLVE_S)
        self.assertFalse(any(p["event"] == "reminder" for _, p in self.hooks()),
                         "the reminder came at the jump, not after repeat_interval")
        # a reminder is sent on the first match repeat_interval after the open (monotonic)
        t_rem = None
        deadline = time.monotonic() + 20 * SLOW
        while t_rem is None and time.monotonic() < deadline:
            with open(self.log, "a", encoding="utf-8") as f:
                f.write("BOOM a\n")
            t_last = time.monotonic()
            time.sleep(0.5)
            if any(p["event"] == "reminder" for _, p in self.hooks()):
                t_rem = time.monotonic()
        self.assertIsNotNone(t_rem, "no reminder while the incident kept matching")
        self.assertGreaterEqual(t_rem - t_open, REPEAT_S - 0.5)

        # back 2 h (an hour behind real time): it still resolves resolve_after after the last
        # match, not an hour later
        self.clock.set(-HOUR)
        t_back = time.monotonic()
        d.wait_incident("boom/a", state="resolved", timeout=(RESOLVE_S + 15) * SLOW)
        t_res = time.monotonic()
        self.assertGreaterEqual(t_res - t_last, RESOLVE_S - 0.5)
        wait_until(lambda: any(p["event"] == "resolve" for _, p in self.hooks()), "the resolve")

        # retries kept their pace across both jumps (backoff_max 2s, timeout 2s)
        attempts = sorted(r["time"] for r in self.rx.requests)
        gaps = [b - a for a, b in zip(attempts, attempts[1:])]
        self.assertGreaterEqual(len([t for t in attempts if t > t_fwd]), 3)
        self.assertGreaterEqual(len([t for t in attempts if t > t_back]), 2)
        self.assertLess(max(gaps), 6.0 * SLOW, "a retry waited %.1f s" % max(gaps))

        # timestamps: well-formed, and the wall clock (as faked) when each was built
        real_now = time.time()
        stamps = {}
        for _, p in self.hooks():
            stamps[p["event"]] = parse_time(p["time"])
            inc = p["incident"]
            for k in ("first_seen", "last_seen", "opened_at"):
                parse_time(inc[k])
            if p["event"] == "resolve":
                parse_time(inc["resolved_at"])
        offsets = {k: round((v - real_now) / HOUR) for k, v in stamps.items()}
        self.assertEqual(offsets, {"open": 0, "reminder": 1, "resolve": -1}, stamps)
        # the HMAC-free webhook still carries a valid id each time; the state file is written
        # with the faked time and read back by the same daemon without complaint
        self.assertTrue(d.alive())
        report("clock-jumps", reminder_after_s=round(t_rem - t_open, 1),
               resolved_after_last_match_s=round(t_res - t_last, 1),
               retry_attempts=len(attempts),
               max_retry_gap_s=round(max(gaps), 2))
        d.stop()

    def test_forward_jump_does_not_expire_fresh_notifications(self):
        d = self.start(max_age="30m")
        with open(self.log, "a", encoding="utf-8") as f:
            f.write("BOOM b\n")
        d.wait_incident("boom/b")
        wait_until(lambda: len(self.rx.requests) >= 1, "a first attempt at the failing sink")
        self.clock.set(+HOUR)
        time.sleep(4)
        dead = d.metric("cfwatchd_notifications_dead_total", 0, sink="failing")
        d.stop()
        self.assertEqual(dead, 0, "a notification a few seconds old was dead-lettered as "
                                  "older than max_age 30m after a +1 h wall-clock jump")

    def test_slack_duration_survives_a_jump(self):
        d = self.start()
        with open(self.log, "a", encoding="utf-8") as f:
            f.write("BOOM c\n")
        d.wait_incident("boom/c")
        self.clock.set(-HOUR)
        d.wait_incident("boom/c", state="resolved", timeout=(RESOLVE_S + 15) * SLOW)

        def resolve_text():
            for r in self.cap.requests("/slack/T/B/x"):
                m = re.search(r"Resolved: .*open for (\w+)\)", json.loads(r["body"])["text"])
                if m:
                    return m.group(1)
            return None
        dur = wait_until(resolve_text, "the Slack resolve message")
        d.stop()
        self.assertRegex(dur, r"^\d+s$")
        self.assertGreaterEqual(int(dur[:-1]), RESOLVE_S - 1,
                                "Slack says the incident was open for %s" % dur)


if __name__ == "__main__":
    if faketime_lib() is None:
        sys.exit(skip_file("libfaketime is not installed (Debian package faketime); the wall "
                           "clock of the machine is not changed instead"))
    sys.exit(run_tests(__name__))
