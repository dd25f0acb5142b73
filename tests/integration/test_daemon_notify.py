#!/usr/bin/env python3
"""sd_notify protocol of the daemon, checked through a NOTIFY_SOCKET datagram socket that the
test creates: READY=1, STATUS=, WATCHDOG=1 at half of WATCHDOG_USEC (only when WATCHDOG_PID is
unset or names the daemon), RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM/SIGINT.

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import os
import signal
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import DaemonTestCase, run_tests  # noqa: E402


def config(log):
    return {
        "sources": [{"name": "app", "type": "file", "path": log, "start_at": "beginning",
                     "format": "lines"}],
        "rules": {"custom": [{"id": "boom", "pattern": r"BOOM (?<what>\w+)",
                              "key": "{rule}/{what}"}]},
    }


class NotifyCase(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.log = self.path("app.log")
        with open(self.log, "w", encoding="utf-8") as f:
            f.write("BOOM one\n")

    def test_ready_status_reload_stopping(self):
        d = self.daemon(config(self.log))
        d.start()
        ready = d.notify.find("READY", "1")
        self.assertEqual(len(ready), 1, "exactly one READY=1 after start")
        # The listener and the sources are up when READY=1 is sent.
        status, _, _ = d.http("/healthz")
        self.assertEqual(status, 200)
        d.wait_incident("boom/one")
        # STATUS= every 5 s with live counters.
        st = d.notify.wait("STATUS", since=d.run_start, timeout=15)
        self.assertRegex(st[1]["STATUS"], r"\d+ sources")
        self.assertRegex(st[1]["STATUS"], r"\d+ open incidents")
        self.assertNotIn("WATCHDOG", "".join(m[2] for m in d.notify.snapshot()),
                         "no WATCHDOG=1 without WATCHDOG_USEC")
        # SIGHUP: RELOADING=1 (with MONOTONIC_USEC, as systemd >= 253 wants for Type=notify-reload)
        # then READY=1.
        rel = d.reload()
        self.assertIn("MONOTONIC_USEC", rel[1], rel[2])
        self.assertRegex(rel[1]["MONOTONIC_USEC"], r"^\d+$")
        after = [m for m in d.notify.snapshot() if m[0] >= rel[0]]
        keys = [k for m in after for k in m[1] if k in ("RELOADING", "READY")]
        self.assertEqual(keys[:2], ["RELOADING", "READY"])
        # SIGTERM: STOPPING=1 and status 0 (checked by stop()).
        t0 = time.monotonic()
        d.stop(signal.SIGTERM)
        stopping = d.notify.find("STOPPING", "1", since=t0)
        self.assertEqual(len(stopping), 1)
        self.assertFalse(d.notify.find("READY", "1", since=stopping[0][0]),
                         "no READY=1 after STOPPING=1")

    def test_sigint_stops_cleanly(self):
        d = self.daemon(config(self.log))
        d.start()
        d.wait_incident("boom/one")
        d.stop(signal.SIGINT)

    def test_watchdog_pings_at_half_the_interval(self):
        # WATCHDOG_USEC=1 s -> a ping every ~0.5 s. WATCHDOG_PID is set to the daemon's own pid
        # (a shell sets it to $$ and execs cfwatchd).
        d = self.daemon(config(self.log), watchdog_usec=1000000, watchdog_pid="self")
        d.start()
        t0 = d.notify.find("READY", "1")[0][0]
        time.sleep(2.2)
        pings = [m[0] for m in d.notify.find("WATCHDOG", "1") if t0 <= m[0] <= t0 + 2.0]
        self.assertGreaterEqual(len(pings), 3, "WATCHDOG=1 pings within 2 s of READY=1: %d" %
                                len(pings))
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        self.assertTrue(all(g >= 0.3 for g in gaps),
                        "pings closer than 0.3 s apart: %s" % ["%.3f" % g for g in gaps])
        d.stop()

    def test_watchdog_for_another_pid_is_ignored(self):
        # WATCHDOG_PID names another process: the watchdog is not meant for cfwatchd.
        d = self.daemon(config(self.log), watchdog_usec=400000, watchdog_pid=os.getpid())
        d.start()
        time.sleep(1.5)
        self.assertEqual(d.notify.find("WATCHDOG"), [], "WATCHDOG=1 sent although WATCHDOG_PID "
                         "names another process")
        d.stop()

    def test_watchdog_without_pid(self):
        # WATCHDOG_USEC alone (no WATCHDOG_PID): the pings are for us.
        d = self.daemon(config(self.log), watchdog_usec=600000, watchdog_pid=None)
        d.start()
        t0 = d.notify.find("READY", "1")[0][0]
        d.notify.wait("WATCHDOG", "1", since=t0, timeout=10, count=2)
        d.stop()


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
