#!/usr/bin/env python3
"""Fault injection: the state directory becomes read-only; the spool reaches its caps (issue 7).

Read-only: the tests run as root, who writes through any file mode, so the daemon is started
through setpriv without CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER (as an unprivileged
service user it has none of them); chmod 0500 on state_dir and state_dir/outbox then makes them
read-only to it. (A read-only remount is refused while the daemon holds the spool lock open for
writing.) While read-only, with incidents opening and their notifications queued behind a
receiver answering 503: spool writes fail, are logged and counted
(cfwatchd_outbox_write_errors_total), the notifications are held in memory and still attempted;
the state save fails, is logged and counted (cfwatchd_state_save_failures_total), the daemon keeps
running. Once writable again: the held notifications are written to the spool by the retry timer
(every 5 s) before the receiver recovers; then every notification is delivered once, the state
saved at stop holds every incident, and a restart restores them without announcing them again.

Spool caps: with outbox max_jobs 3 and the receiver failing, further notifications are refused,
logged once and counted (cfwatchd_notifications_refused_total); those accepted are delivered
once the receiver recovers.

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import json
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import run_tests, wait_until  # noqa: E402
from faults import HOOK_OK as OK  # noqa: E402
from faults import (NO_DAC_CAPS, SpoolCase, WrappedDaemon, is_sanitized,  # noqa: E402
                    report, setpriv_usable, spool_config, write_wrapper)

SLOW = 3 if is_sanitized() else 1


class StateDirCase(SpoolCase):
    def tearDown(self):
        for p in (self.state, os.path.join(self.state, "outbox")):
            if os.path.isdir(p):
                os.chmod(p, 0o700)
        super().tearDown()

    def test_read_only_state_directory(self):
        if not setpriv_usable():
            self.skipTest("setpriv cannot drop CAP_DAC_OVERRIDE here")
        wrapper = write_wrapper(self.path("cfwatchd-nodac"), NO_DAC_CAPS)
        d = WrappedDaemon(self.tmp, spool_config(self.log, self.state, self.cap.url("/hook")),
                          wrapper)
        self._daemons.append(d)
        d.start()
        self.append("BOOM one\n")
        d.wait_incident("boom/one")
        wait_until(lambda: len(self.cap.requests("/hook")) >= 1, "a first (failing) attempt")

        os.chmod(os.path.join(self.state, "outbox"), 0o500)
        os.chmod(self.state, 0o500)
        self.append("BOOM two\nBOOM three\n")
        d.wait_incident("boom/two")
        d.wait_incident("boom/three")
        d.wait_stderr(r"outbox: sink=hook job=\S+ not spooled \(.*(Permission denied|EACCES)")
        d.wait_metric("cfwatchd_outbox_write_errors_total", 2)
        self.assertEqual(d.metric("cfwatchd_outbox_write_errors_total"), 2)
        self.assertEqual(d.metric("cfwatchd_outbox_depth"), 3)
        d.wait_metric("cfwatchd_state_save_failures_total", 1, timeout=45 * SLOW)
        d.wait_stderr(r"state: .*Permission denied.*cfwatchd_state_save_failures_total")
        # said loudly, as a gauge and as an incident of its own (issue 17)
        d.wait_stderr(r"state: NOT DURABLE: .*Permission denied.*running from memory")
        d.wait_incident("state-not-durable")
        self.assertEqual(d.metric("cfwatchd_state_durable"), 0)
        self.assertTrue(d.alive())
        self.assertEqual(d.http("/healthz")[0], 200)
        failed_writes = d.metric("cfwatchd_outbox_write_errors_total")
        # logged once a minute, counted always
        self.assertEqual(len(re.findall(r"not spooled", d.stderr_text())), 1)

        os.chmod(self.state, 0o700)
        os.chmod(os.path.join(self.state, "outbox"), 0o700)
        d.wait_stderr(r"outbox: 3 notification\(s\) held in memory now written to \S+/outbox "
                      r"\(0 still held\)", timeout=20 * SLOW)
        spool = os.path.join(self.state, "outbox")
        self.assertGreaterEqual(len([n for n in os.listdir(spool) if n.endswith(".job")]), 4)
        d.wait_stderr(r"state: written again to \S+; state is durable", timeout=45 * SLOW)
        d.wait_for(lambda: d.incident_map()["state-not-durable"]["state"] == "resolved",
                   "state-not-durable resolved once a save works")
        self.assertEqual(d.metric("cfwatchd_state_durable"), 1)
        self.cap.script("/hook", [], then=OK)
        wait_until(lambda: set(self.delivered()) >= {"boom/one", "boom/two", "boom/three",
                                                     "state-not-durable"},
                   "every open notification delivered", timeout=30 * SLOW)
        d.wait_for(lambda: d.metric("cfwatchd_outbox_depth") == 0, "an empty outbox")
        self.assertEqual(set(self.delivered().values()), {1}, self.delivered())
        save_failures = d.metric("cfwatchd_state_save_failures_total")
        d.stop()
        with open(os.path.join(self.state, "state.json"), encoding="utf-8") as f:
            saved = {i["key"] for i in json.load(f)["incidents"]}
        self.assertGreaterEqual(saved, {"boom/one", "boom/two", "boom/three"})
        d.start()
        self.assertEqual({k: v["state"] for k, v in d.incident_map().items()},
                         {"boom/one": "open", "boom/two": "open", "boom/three": "open",
                          "state-not-durable": "resolved"})
        self.append("BOOM two\n")
        d.wait_incident("boom/two", min_count=2)
        self.assertEqual(set(self.delivered().values()), {1})
        d.stop()
        report("disk-readonly", method="chmod 0500 + setpriv without CAP_DAC_OVERRIDE",
               spool_writes_failed=failed_writes, state_save_failures=save_failures)

    def test_read_only_at_start(self):
        """A state directory that cannot be written from the start: the daemon runs from memory,
        says so (log line, gauge, incident), and still delivers."""
        if not setpriv_usable():
            self.skipTest("setpriv cannot drop CAP_DAC_OVERRIDE here")
        os.makedirs(self.state)
        os.chmod(self.state, 0o500)  # no outbox/, no journal, no state.json can be created
        self.cap.script("/hook", [], then=OK)
        wrapper = write_wrapper(self.path("cfwatchd-nodac"), NO_DAC_CAPS)
        d = WrappedDaemon(self.tmp, spool_config(self.log, self.state, self.cap.url("/hook")),
                          wrapper)
        self._daemons.append(d)
        d.start()
        d.wait_stderr(r"outbox: cannot create \S+/outbox: Permission denied; notifications are "
                      r"delivered from memory only")
        d.wait_stderr(r"state: NOT DURABLE: .*journal.*Permission denied")
        d.wait_incident("state-not-durable")
        self.assertEqual(d.metric("cfwatchd_state_durable"), 0)
        self.append("BOOM one\n")
        d.wait_incident("boom/one")
        wait_until(lambda: {"boom/one", "state-not-durable"} <= set(self.delivered()),
                   "delivered from memory")
        self.assertTrue(d.alive())
        d.stop(expect_rc=1)  # the final save fails: said by the exit status

    def test_spool_caps_refuse_count_and_log(self):
        d = self.daemon(spool_config(self.log, self.state, self.cap.url("/hook"),
                                     outbox={"max_jobs": 3}))
        d.start()
        self.append("".join("BOOM n%d\n" % i for i in range(6)))
        for i in range(6):
            d.wait_incident("boom/n%d" % i)
        d.wait_metric("cfwatchd_notifications_refused_total", 3, sink="hook")
        self.assertEqual(d.metric("cfwatchd_outbox_depth"), 3)
        logged = re.findall(r"notify: sink=hook notification not spooled: outbox full",
                            d.stderr_text())
        self.assertEqual(len(logged), 1, "refusals are logged once, then counted")
        self.cap.script("/hook", [], then=OK)
        wait_until(lambda: len(self.delivered()) == 3, "the three spooled notifications")
        d.wait_for(lambda: d.metric("cfwatchd_outbox_depth") == 0, "an empty outbox")
        self.assertEqual(sorted(self.delivered()), ["boom/n0", "boom/n1", "boom/n2"])
        self.assertEqual(d.metric("cfwatchd_notifications_refused_total", sink="hook"), 3)
        d.stop()


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
