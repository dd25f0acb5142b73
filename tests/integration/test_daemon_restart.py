#!/usr/bin/env python3
"""Crash safety: cfwatchd is killed with SIGKILL mid-stream and started again on the same
state_dir. No line may be lost or read twice (lines read after the last state save are read
again, but the incidents they fed were not saved either, so every numbered line ends up counted
exactly once), open incidents are not announced again, and their resolve still happens.

State is saved on a timer: the test waits for a save that covers what was read, then kills.
When the configuration accepts `state_save_interval` the test sets it to 1 s; otherwise the
daemon's default interval (30 s) applies and the test waits that long.

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import json
import os
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import (CFWATCHD, SEQ_RULE, DaemonTestCase, HarnessError, Writer,  # noqa: E402
                    alerts, append_once, check_exactly_once, run_tests, seq_keys, start_capture,
                    to_yaml, wait_alert, wait_until)

BOOM_RESOLVE_AFTER = 6  # seconds
KEY = "boom/disk"
PHASE1 = 3000  # lines read and saved before the kill
PHASE2 = 6000  # lines being written while the daemon is killed and restarted


def save_interval_supported(tmp):
    """True when the configuration accepts state_save_interval."""
    path = os.path.join(tmp, "probe.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(to_yaml({"state_dir": os.path.join(tmp, "probe-state"), "listen": "off",
                         "state_save_interval": "1s"}))
    p = subprocess.run([CFWATCHD, "--check-config", "-c", path], capture_output=True, timeout=30)
    return p.returncode == 0


def config(log, hook_url, save_interval):
    cfg = {
        "sources": [{"name": "app", "type": "file", "path": log, "start_at": "beginning",
                     "format": "lines"}],
        "rules": {"builtin": [], "custom": [
            SEQ_RULE,
            {"id": "boom", "pattern": r"BOOM (?<what>\w+)", "severity": "error",
             "key": "{rule}/{what}", "title": "boom on {what}",
             "resolve_after": "%ds" % BOOM_RESOLVE_AFTER, "repeat_interval": "1h"},
        ]},
        # Only the boom incident is paged: seq lines read again after the kill open their
        # incidents again (they were not in the saved state), which is correct and not what
        # this test looks at.
        "sinks": [{"name": "hook", "type": "webhook", "url": hook_url, "rules": ["boom"]}],
    }
    if save_interval:
        cfg["state_save_interval"] = "1s"
    return cfg


class RestartCase(DaemonTestCase):
    def test_sigkill_mid_stream_and_restart(self):
        fast = save_interval_supported(self.tmp)
        if not fast:
            print("  note: no state_save_interval key; waiting for the default 30 s save",
                  file=sys.stderr)
        cap = start_capture()
        self.addCleanup(cap.stop)
        log = self.path("app.log")
        open(log, "w").close()
        d = self.daemon(config(log, cap.url("/hook"), fast))
        d.start()
        state_file = os.path.join(d.state_dir, "state.json")

        # The failure is live: a BOOM line every 0.5 s until the state save is seen.
        booms = [0]
        stop_booms = threading.Event()

        def boom_loop():
            while not stop_booms.is_set():
                append_once(log, "BOOM disk\n")
                booms[0] += 1
                stop_booms.wait(0.5)

        t = threading.Thread(target=boom_loop, daemon=True)
        t.start()
        self.addCleanup(stop_booms.set)
        w = Writer(log, [PHASE1, PHASE2])
        w.open()
        w.write_lines(PHASE1)
        d.wait_metric("cfwatchd_rule_matches_total", PHASE1, rule="seq")
        d.wait_incident(KEY, "open")

        # Wait for a state save that covers the first phase.
        def saved():
            # the last line of the first phase in the saved incidents: the save came after it
            try:
                with open(state_file, encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                return None
            if '"seq/%d"' % (PHASE1 - 1) not in text:
                return None
            return json.loads(text)

        wait_until(saved, "a state save after the first %d lines" % PHASE1,
                   timeout=(10 if fast else 45))
        stop_booms.set()
        t.join()
        n_booms = booms[0]

        # Second phase: kill while the writer streams.
        bg = threading.Thread(target=w.write_lines, args=(PHASE2,), daemon=True)
        bg.start()
        time.sleep(0.2)
        self.assertTrue(bg.is_alive(), "the writer finished before the kill: not mid-stream")
        d.kill()
        t_restart = time.monotonic()
        d.start()
        bg.join(60)
        os.close(w.fd)
        total = PHASE1 + PHASE2

        # The open incident came back from the state file, without a new announcement.
        restored = d.incident_map().get(KEY)
        self.assertIsNotNone(restored, "open incident %s not restored after SIGKILL" % KEY)
        self.assertEqual(restored["state"], "open")

        # Every line exactly once.
        d.wait_for(lambda: len(seq_keys(d.incidents())) >= total,
                   "all %d numbered lines after the restart" % total, timeout=60)
        time.sleep(2.0)
        self.assertEqual(check_exactly_once(seq_keys(d.incidents()), total), [])
        inc = d.incident_map()[KEY]
        self.assertEqual(inc["count"], n_booms,
                         "BOOM lines written %d, counted %d" % (n_booms, inc["count"]))

        # The resolve still happens, from the restarted daemon.
        d.wait_incident(KEY, "resolved", timeout=BOOM_RESOLVE_AFTER + 20)
        second_run = d.stderr_text(since=t_restart)
        self.assertNotRegex(second_run, r"incident open rule=boom",
                            "the restored incident was announced again")
        self.assertRegex(second_run, r"incident resolve rule=boom .*key=boom/disk")
        d.stop()

        # A clean restart after that reads nothing again.
        d.start()
        time.sleep(1.5)
        self.assertEqual(d.metric("cfwatchd_rule_matches_total", rule="seq"), 0)
        self.assertEqual(check_exactly_once(seq_keys(d.incidents()), total), [])
        d.stop()

        # Pages: one open (first run), one resolve (second run), nothing else.
        wait_alert(cap, "/hook", "open", KEY, timeout=5, daemon=None)
        wait_alert(cap, "/hook", "resolve", KEY, timeout=5, daemon=None)
        got = [(e, k) for e, k, _ in alerts(cap, "/hook")]
        if got != [("open", KEY), ("resolve", KEY)]:
            raise HarnessError("pages for %s across the restart: %s (expected one open, then one "
                               "resolve)" % (KEY, got))


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
