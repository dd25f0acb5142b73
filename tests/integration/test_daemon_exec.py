#!/usr/bin/env python3
"""The exec source: a command (tests/data/daemon/fake-tail.sh, standing in for `wrangler tail
--format json`) prints a pretty-printed tail event with a Python `No module named 'src'`
exception and exits. The incident arrives, the command is restarted with a doubling backoff,
nothing is left behind (no zombie, no process after stop); a command that keeps failing opens a
`source-down` incident, which resolves when the command runs stably again.

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import DATA_DIR, DaemonTestCase, pids_alive, run_tests, wait_until  # noqa: E402

FAKE_TAIL = os.path.join(DATA_DIR, "fake-tail.sh")
SRC_KEY = "py-src-import/example-py/src"


def config(runlog, mode, **extra):
    src = {"name": "tail", "type": "exec", "command": ["/bin/sh", FAKE_TAIL, runlog, mode],
           "env": {"CFW_FAKE_TAIL": "1"}, "stdout_format": "json", "stderr_format": "lines"}
    src.update(extra)
    return {"sources": [src]}


def read_runlog(path):
    """[(start time, pid, exit time or None)] from fake-tail.sh's run log."""
    runs = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if parts[0] == "start":
                    runs.append([float(parts[1]), int(parts[2]), None])
                elif parts[0] == "exit" and runs:
                    runs[-1][2] = float(parts[1])
    except FileNotFoundError:
        pass
    return runs


def zombies_of(ppid):
    """Zombie children of a process."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, encoding="utf-8") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == ppid:
            out.append(int(name))
    return out


class ExecCase(DaemonTestCase):
    def test_tail_event_incident_and_restart_backoff(self):
        runlog = self.path("runs.log")
        # down_after_failures is high: this test looks at restarts, not at source-down.
        d = self.daemon(config(runlog, "once", down_after_failures=100))
        d.start()
        inc = d.wait_incident(SRC_KEY)
        self.assertEqual(inc["rule"], "py-src-import")
        self.assertEqual(inc["severity"], "critical")
        self.assertEqual(inc["fields"].get("script"), "example-py")
        self.assertEqual(inc["fields"].get("module"), "src")
        self.assertEqual(inc["first"]["input"], "tail:stdout")
        # Three runs: restarts after 1 s, then 2 s (the backoff doubles).
        runs = wait_until(lambda: (lambda r: r if len(r) >= 3 else None)(read_runlog(runlog)),
                          "three runs of fake-tail.sh", timeout=30)
        self.assertIsNotNone(runs[0][2], "first run did not finish")
        self.assertIsNotNone(runs[1][2], "second run did not finish")
        gap1 = runs[1][0] - runs[0][2]
        gap2 = runs[2][0] - runs[1][2]
        self.assertGreaterEqual(gap1, 0.95, "restarted %.3f s after the first exit" % gap1)
        self.assertGreaterEqual(gap2, 1.9, "restarted %.3f s after the second exit (the delay "
                                "should double)" % gap2)
        d.wait_stderr(r"source=tail command=/bin/sh exited with status 0; restarting in 1000ms")
        d.wait_stderr(r"restarting in 2000ms")
        # Each run printed the event again: the same incident counts it, nothing new opens.
        d.wait_incident(SRC_KEY, min_count=3)
        self.assertEqual(d.metric("cfwatchd_transitions_total", transition="open"), 1)
        # A command's exit is not a source problem until it repeats down_after_failures times.
        self.assertNotIn("source-down/tail", d.incident_map())
        # Finished runs are reaped.
        self.assertEqual(zombies_of(d.pid), [], "zombie children of cfwatchd")
        # The banner on stderr went through the stderr stream and matched nothing.
        self.assertEqual(d.incidents()["open"], 1)
        d.stop()
        pids = [r[1] for r in read_runlog(runlog)]
        self.assertEqual(pids_alive(pids), [], "fake-tail.sh still running after stop")

    def test_failing_command_opens_source_down(self):
        runlog = self.path("runs.log")
        d = self.daemon(config(runlog, "fail", restart_delay="100ms", restart_delay_max="200ms",
                               down_after_failures=3))
        d.start()
        inc = d.wait_incident("source-down/tail")
        self.assertEqual(inc["rule"], "source-down")
        self.assertIn("tail", inc["title"])
        self.assertEqual(inc["fields"].get("source"), "tail")
        self.assertEqual(inc["fields"].get("source_type"), "exec")
        self.assertRegex(inc["fields"].get("reason", ""), r"failed \d+ times in a row")
        self.assertGreaterEqual(len(read_runlog(runlog)), 3)
        self.assertEqual(d.metric("cfwatchd_source_up", source="tail"), 0)
        d.wait_stderr(r"source=tail state=down")
        # Still one incident while the command keeps failing.
        time.sleep(1.0)
        self.assertEqual(d.metric("cfwatchd_transitions_total", transition="open"), 1)
        self.assertEqual(d.incident_map()["source-down/tail"]["state"], "open")
        d.stop()

    def test_failing_command_says_why_in_its_own_words(self):
        # wrangler's reason is on its stderr: the last lines go with the exit status (issue 18)
        script = self.path("wrangler-fails.sh")
        with open(script, "w", encoding="utf-8") as f:
            f.write("#!/bin/sh\n"
                    "echo 'some progress' >&2\n"
                    "printf '\\033[31m✘ [ERROR]\\033[0m In a non-interactive environment, "
                    "it\\047s necessary to set a CLOUDFLARE_API_TOKEN\\n' >&2\n"
                    "exit 1\n")
        os.chmod(script, 0o755)
        d = self.daemon({"sources": [{"name": "tail", "type": "exec", "command": [script],
                                      "restart_delay": "100ms", "restart_delay_max": "200ms",
                                      "down_after_failures": 2}]})
        d.start()
        inc = d.wait_incident("source-down/tail")
        reason = inc["fields"].get("reason", "")
        self.assertRegex(reason, r"\(last: exited with status 1\); stderr: some progress \| "
                                 r"✘ \[ERROR\] In a non-interactive environment, it's necessary "
                                 r"to set a CLOUDFLARE_API_TOKEN$")
        d.wait_stderr(r"source=tail command=\S+ exited with status 1; restarting in \d+ms "
                      r"\(failure \d+ in a row\); stderr: .*CLOUDFLARE_API_TOKEN")
        d.stop()

    def test_source_down_resolves_when_the_command_recovers(self):
        runlog = self.path("runs.log")
        d = self.daemon(config(runlog, "flaky", restart_delay="100ms", restart_delay_max="200ms",
                               down_after_failures=2, stable_after="1s", stop_grace="2s"))
        d.start()
        d.wait_incident("source-down/tail")
        # The fourth run stays up; after stable_after the source is up and the incident resolved.
        inc = d.wait_incident("source-down/tail", "resolved", timeout=20)
        self.assertEqual(inc["state"], "resolved")
        self.assertEqual(d.metric("cfwatchd_source_up", source="tail"), 1)
        self.assertEqual(d.incidents()["open"], 0)
        runs = read_runlog(runlog)
        self.assertEqual(len(runs), 4)
        self.assertEqual(pids_alive([runs[-1][1]]), [runs[-1][1]])
        d.stop()
        # SIGTERM to the process group on stop: the long-running command is gone.
        wait_until(lambda: not pids_alive([runs[-1][1]]), "the command to be gone after stop",
                   timeout=5)

    def test_stop_ends_the_whole_process_group(self):
        pidfile = self.path("pids")
        # The shell and its child ignore SIGTERM (an ignored signal stays ignored across exec):
        # after stop_grace the whole group gets SIGKILL.
        script = ('trap "" TERM; echo $$ > "%s"; sleep 600 & echo $! >> "%s"; '
                  'while :; do sleep 0.2; done' % (pidfile, pidfile))
        d = self.daemon({"sources": [{"name": "grp", "type": "exec",
                                      "command": ["/bin/sh", "-c", script],
                                      "stop_grace": "1s"}]})
        d.start()
        pids = wait_until(lambda: (lambda p: p if len(p) == 2 else None)(
            [int(x) for x in open(pidfile).read().split()] if os.path.exists(pidfile) else []),
            "the command's pids")
        self.assertEqual(sorted(pids_alive(pids)), sorted(pids))
        d.stop()
        wait_until(lambda: not pids_alive(pids), "every process of the group to be gone",
                   timeout=5)
        self.assertRegex(d.stderr_text(), r"sending SIGKILL")


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
