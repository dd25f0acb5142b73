#!/usr/bin/env python3
"""File source behaviours other than rotation: start_at for files that exist at the first start,
files that appear later under a glob (read from the beginning), a deleted file (what is left is
drained, then it is let go), and a missing file that opens `source-down` after its grace period
and resolves it when the file appears.

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import os
import signal
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import (SEQ_RULE, DaemonTestCase, Writer, check_exactly_once, run_tests,  # noqa: E402
                    seq_keys)


def config(path, **extra):
    src = {"name": "app", "type": "file", "path": path, "format": "lines"}
    src.update(extra)
    return {"sources": [src], "rules": {"builtin": [], "custom": [SEQ_RULE]}}


class FilesCase(DaemonTestCase):
    def test_start_at_end_and_new_files_under_a_glob(self):
        old = self.path("a.log")
        w = Writer(old, [])
        w.open()
        w.write_lines(50)  # 0..49: before the first start, skipped (start_at: end)
        d = self.daemon(config(self.path("*.log"), start_at="end"))
        d.start()
        w.write_lines(50)  # 50..99: appended after the start, read
        os.close(w.fd)
        d.wait_metric("cfwatchd_rule_matches_total", 50, rule="seq")
        # A file that appears later is read from its beginning.
        w2 = Writer(self.path("b.log"), [], start=100)
        w2.open()
        w2.write_lines(50)  # 100..149
        os.close(w2.fd)
        d.wait_metric("cfwatchd_rule_matches_total", 100, rule="seq")
        # A file that does not match the glob is not read.
        with open(self.path("c.txt"), "w", encoding="utf-8") as f:
            f.write("2026 SEQ 999 ok\n")
        time.sleep(1.5)
        keys = seq_keys(d.incidents())
        self.assertEqual(sorted(keys), list(range(50, 150)))
        self.assertTrue(all(c == 1 for c in keys.values()))
        d.wait_stderr(r"file=\S*b\.log new file, reading from the beginning")
        d.stop()

    def test_deleted_file_is_drained(self):
        log = self.path("app.log")
        w = Writer(log, [])
        w.open()
        w.write_lines(100)
        d = self.daemon(config(log, start_at="beginning"))
        d.start()
        d.wait_metric("cfwatchd_rule_matches_total", 100, rule="seq")
        # Lines appended and the file deleted while the daemon does not run: they are still
        # read from the open file before it is let go.
        d.signal(signal.SIGSTOP)
        try:
            w.write_lines(100)
            os.close(w.fd)
            os.unlink(log)
        finally:
            d.signal(signal.SIGCONT)
        d.wait_metric("cfwatchd_rule_matches_total", 200, rule="seq")
        d.wait_stderr(r"file=\S*app\.log drained and closed")
        self.assertEqual(check_exactly_once(seq_keys(d.incidents()), 200), [])
        # The file comes back: read from the beginning.
        w = Writer(log, [], start=200)
        w.open()
        w.write_lines(10)
        os.close(w.fd)
        d.wait_metric("cfwatchd_rule_matches_total", 210, rule="seq")
        time.sleep(1.0)
        self.assertEqual(check_exactly_once(seq_keys(d.incidents()), 210), [])
        d.stop()

    def test_missing_file_opens_source_down_then_recovers(self):
        log = self.path("later.log")
        d = self.daemon(config(log, start_at="beginning", down_after="1s",
                               poll_interval="200ms"))
        d.start()
        inc = d.wait_incident("source-down/app")
        self.assertEqual(inc["fields"].get("source_type"), "file")
        self.assertIn("later.log", inc["fields"].get("reason", ""))
        self.assertEqual(d.metric("cfwatchd_source_up", source="app"), 0)
        w = Writer(log, [])
        w.open()
        w.write_lines(20)
        os.close(w.fd)
        d.wait_incident("source-down/app", "resolved")
        d.wait_metric("cfwatchd_rule_matches_total", 20, rule="seq")
        self.assertEqual(d.metric("cfwatchd_source_up", source="app"), 1)
        self.assertEqual(check_exactly_once(seq_keys(d.incidents()), 20), [])
        d.stop()


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
