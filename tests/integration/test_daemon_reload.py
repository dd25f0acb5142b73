#!/usr/bin/env python3
"""SIGHUP reload: a valid changed configuration is swapped in (a new custom rule matches lines
appended after the reload; reading goes on where it was, open incidents stay); a broken one is
refused (errors on stderr with file:line:col, cfwatchd_reload_failures_total counts it, the old
rules keep working, READY=1 comes back).

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import DaemonTestCase, run_tests, to_yaml  # noqa: E402

ALPHA = {"id": "alpha", "pattern": r"ALPHA (?<what>\w+)", "severity": "error",
         "key": "{rule}/{what}", "resolve_after": "1h"}
BETA = {"id": "beta", "pattern": r"BETA (?<what>\w+)", "severity": "warning",
        "key": "{rule}/{what}", "resolve_after": "1h"}


def config(log, rules):
    return {
        "sources": [{"name": "app", "type": "file", "path": log, "start_at": "beginning",
                     "format": "lines"}],
        "rules": {"builtin": [], "custom": rules},
    }


def append(path, text):
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


class ReloadCase(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.log = self.path("app.log")
        with open(self.log, "w", encoding="utf-8") as f:
            f.write("ALPHA one\nBETA early\n")
        self.d = self.daemon(config(self.log, [ALPHA]))
        self.d.start()
        self.d.wait_incident("alpha/one")

    def test_valid_reload_adds_a_rule(self):
        d = self.d
        self.assertNotIn("beta/early", d.incident_map())
        self.assertIsNone(d.metric("cfwatchd_rule_matches_total", rule="beta"))
        d.write_config(config(self.log, [ALPHA, BETA]))
        d.reload()
        self.assertEqual(d.metric("cfwatchd_reloads_total"), 1)
        self.assertEqual(d.metric("cfwatchd_reload_failures_total"), 0)
        d.wait_stderr(r"reloaded: \d+ rules, 1 sources")
        append(self.log, "BETA late\nALPHA one\n")
        d.wait_incident("beta/late")
        d.wait_incident("alpha/one", min_count=2)
        incs = d.incident_map()
        # Lines read before the reload are not read again under the new rules.
        self.assertNotIn("beta/early", incs, "a line read before the reload was read again")
        self.assertEqual(incs["alpha/one"]["count"], 2)
        self.assertEqual(incs["alpha/one"]["state"], "open")
        self.assertEqual(incs["beta/late"]["severity"], "warning")
        self.assertEqual(d.metric("cfwatchd_rule_matches_total", rule="beta"), 1)
        self.assertEqual(d.metric("cfwatchd_source_up", source="app"), 1)
        # The incident opened before the reload was not announced again.
        self.assertEqual(d.metric("cfwatchd_transitions_total", transition="open"), 2)
        d.stop()

    def test_broken_reload_keeps_the_old_configuration(self):
        d = self.d
        # An unknown top-level key next to new rules (one with a bad regex): reported with
        # file:line:col, and none of the new rules comes into force.
        broken = to_yaml(config(self.log, [ALPHA, BETA, {
            "id": "gamma", "pattern": "GAMMA (unclosed", "severity": "error"}]))
        broken = broken.replace("rules:\n", "frobnicate: 1\nrules:\n", 1)
        d.write_config(broken)
        lines = broken.split("\n")
        bad_key_line = next(i for i, l in enumerate(lines, 1) if l.startswith("frobnicate"))
        d.reload()
        self.assertEqual(d.metric("cfwatchd_reload_failures_total"), 1)
        self.assertEqual(d.metric("cfwatchd_reloads_total"), 0)
        errors = d.stderr_text(since=d.last_signal)
        where = re.escape(d.cfg_path)
        self.assertRegex(errors, r"%s:%d:\d+: .*frobnicate" % (where, bad_key_line),
                         "unknown key not reported with file:line:col")
        self.assertRegex(errors, r"reload rejected")
        # The still-running configuration matches as before; the refused rules do not.
        append(self.log, "ALPHA two\nBETA late\nGAMMA x\n")
        d.wait_incident("alpha/two")
        incs = d.incident_map()
        self.assertNotIn("beta/late", incs)
        self.assertIsNone(d.metric("cfwatchd_rule_matches_total", rule="beta"))
        self.assertEqual(d.metric("cfwatchd_source_up", source="app"), 1)
        self.assertEqual(d.http("/healthz")[0], 200)

        # The regex error is also reported with its position, and so is an error in another
        # section beside it (a source without a path): every error at once, as --check-config.
        cfg = config(self.log, [ALPHA, {
            "id": "gamma", "pattern": "GAMMA (unclosed", "severity": "error"}])
        cfg["sources"].append({"name": "nopath", "type": "file"})
        d.write_config(to_yaml(cfg))
        d.reload()
        self.assertEqual(d.metric("cfwatchd_reload_failures_total"), 2)
        lines = d.cfg_text.split("\n")
        bad_pattern_line = next(i for i, l in enumerate(lines, 1) if "GAMMA (unclosed" in l)
        errors = d.stderr_text(since=d.last_signal)
        self.assertRegex(errors, r"%s:%d:\d+: .*pattern" % (where, bad_pattern_line),
                         "bad pattern not reported with file:line:col")
        self.assertRegex(errors, r"%s:\d+:\d+: sources\[1\]: a file source needs 'path'" % where,
                         "the source error beside the rule error not reported")
        self.assertIn("2 configuration errors", errors)

        # A YAML syntax error too.
        d.write_config("sources: [\n  - name: app\n")
        d.reload()
        self.assertEqual(d.metric("cfwatchd_reload_failures_total"), 3)
        self.assertRegex(d.stderr_text(since=d.last_signal), r"%s:\d+:\d+: " % where)

        # Fixing the file and reloading again brings the new rules in.
        d.write_config(config(self.log, [ALPHA, BETA]))
        d.reload()
        self.assertEqual(d.metric("cfwatchd_reloads_total"), 1)
        append(self.log, "BETA after\n")
        d.wait_incident("beta/after")
        self.assertEqual(d.incident_map()["alpha/two"]["count"], 1)
        d.stop()


class ExecReloadCase(DaemonTestCase):
    """A reload keeps an unchanged exec source running (issue 18: no gap in wrangler tail) and
    restarts a changed one."""

    def test_unchanged_exec_source_keeps_running(self):
        pids = self.path("pids")
        script = self.path("tail.sh")
        with open(script, "w", encoding="utf-8") as f:
            f.write("#!/bin/sh\necho $$ >> '%s'\nwhile :; do echo ALPHA tick; sleep 0.2; done\n"
                    % pids)
        os.chmod(script, 0o755)
        tail = {"name": "tail", "type": "exec", "command": [script]}
        other = {"name": "other", "type": "exec", "command": [script, "x"]}
        cfg = {"sources": [tail, other], "rules": {"builtin": [], "custom": [ALPHA]}}
        d = self.daemon(cfg)
        d.start()
        d.wait_incident("alpha/tick")

        def started():
            with open(pids, encoding="utf-8") as f:
                return [int(x) for x in f.read().split()]

        d.wait_for(lambda: len(started()) == 2, "both commands started")
        before = started()
        # a new rule, tail unchanged, other changed (a new argument)
        cfg["rules"]["custom"] = [ALPHA, BETA]
        cfg["sources"] = [tail, dict(other, command=[script, "y"])]
        d.write_config(cfg)
        d.reload()
        d.wait_stderr(r"reload: 1 unchanged exec source\(s\) kept running")
        d.wait_for(lambda: len(started()) == 3, "the changed command restarted")
        time.sleep(1)
        self.assertEqual(len(started()), 3, "the unchanged command was not started again")
        alive = [p for p in before if os.path.exists("/proc/%d" % p)]
        self.assertEqual(len(alive), 1, "exactly the unchanged command still runs")
        d.stop()


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
