#!/usr/bin/env python3
"""The journal source on journal files written by systemd-journal-remote from export-format input
that the test generates (one entry carries a Python traceback ending in
`ModuleNotFoundError: No module named 'src'`): the incident arrives, match expressions filter by
unit, entries appended while the daemon runs are read, and the cursor survives a restart.

Skipped as a whole (exit 77) only when systemd-journal-remote is not installed (Debian package
systemd-journal-remote).

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import os
import shutil
import struct
import subprocess
import sys
import time
import uuid

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import DaemonTestCase, run_tests, skip_file  # noqa: E402

JOURNAL_REMOTE_CANDIDATES = ("/lib/systemd/systemd-journal-remote",
                             "/usr/lib/systemd/systemd-journal-remote")
TRACEBACK = ("Traceback (most recent call last):\n"
             "  File \"/session/metadata/entry.py\", line 9, in fetch\n"
             "    from src.db import q\n"
             "ModuleNotFoundError: No module named 'src'")
UNIT = "py-api.service"
BOOT_ID = uuid.uuid4().hex


def journal_remote():
    for p in JOURNAL_REMOTE_CANDIDATES:
        if os.access(p, os.X_OK):
            return p
    return shutil.which("systemd-journal-remote")


class Export:
    """Builds journal export format (systemd's "Journal Export Format"): fields as NAME=value
    lines, values with a newline in the binary form NAME\\n<le64 length><bytes>\\n, entries
    separated by an empty line."""

    seq = 0

    def __init__(self):
        self.data = b""

    def entry(self, message, unit=UNIT, priority=3):
        Export.seq += 1
        fields = [
            ("__REALTIME_TIMESTAMP", str(int(time.time() * 1e6) + Export.seq)),
            ("__MONOTONIC_TIMESTAMP", str(1000000 + Export.seq)),
            ("_BOOT_ID", BOOT_ID),
            ("_SYSTEMD_UNIT", unit),
            ("SYSLOG_IDENTIFIER", unit.split(".")[0]),
            ("PRIORITY", str(priority)),
            ("MESSAGE", message),
        ]
        for name, value in fields:
            v = value.encode("utf-8")
            if b"\n" in v:
                self.data += name.encode() + b"\n" + struct.pack("<Q", len(v)) + v + b"\n"
            else:
                self.data += name.encode() + b"=" + v + b"\n"
        self.data += b"\n"
        return self

    def write(self, tool, journal_file):
        """Appends the entries to journal_file with systemd-journal-remote."""
        p = subprocess.run([tool, "-o", journal_file, "-"], input=self.data, capture_output=True,
                           timeout=30)
        if p.returncode != 0:
            raise AssertionError("systemd-journal-remote failed (%d): %s" %
                                 (p.returncode, p.stderr.decode("utf-8", "replace")))


def src_incidents(d):
    return [i for i in d.incidents()["incidents"] if i["rule"] == "py-src-import"]


class JournalCase(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.tool = journal_remote()
        self.jdir = self.path("journal")
        os.mkdir(self.jdir)
        self.jfile = os.path.join(self.jdir, "remote.journal")

    def config(self, **extra):
        src = {"name": "jr", "type": "journal", "directory": self.jdir,
               "matches": ["_SYSTEMD_UNIT=" + UNIT]}
        src.update(extra)
        return {"sources": [src]}

    def wait_src(self, d, count, timeout=30):
        return d.wait_for(lambda: (lambda l: l if l and l[0]["count"] >= count else None)(
            src_incidents(d)), "a py-src-import incident with count %d" % count, timeout)[0]

    def test_existing_entries_from_the_beginning(self):
        (Export().entry("hello from the worker", priority=6)
         .entry(TRACEBACK)
         .entry(TRACEBACK, unit="other.service")  # filtered out by the match
         .write(self.tool, self.jfile))
        d = self.daemon(self.config(start_at="beginning"))
        d.start()
        inc = self.wait_src(d, 1)
        self.assertEqual(inc["state"], "open")
        self.assertEqual(inc["fields"].get("module"), "src")
        self.assertIn("No module named 'src'", inc["sample"])
        time.sleep(1.5)  # the entry of other.service must not be counted
        incs = src_incidents(d)
        self.assertEqual(len(incs), 1)
        self.assertEqual(incs[0]["count"], 1)
        self.assertEqual(d.metric("cfwatchd_source_up", source="jr"), 1)
        d.stop()

    def test_live_entries_and_cursor_across_restart(self):
        Export().entry(TRACEBACK).write(self.tool, self.jfile)  # before start: not read
        d = self.daemon(self.config())  # start_at: end (the default)
        d.start()
        time.sleep(1.0)
        self.assertEqual(src_incidents(d), [], "an entry from before the start was read")
        Export().entry("request ok", priority=6).entry(TRACEBACK).write(self.tool, self.jfile)
        inc = self.wait_src(d, 1)
        self.assertEqual(inc["count"], 1)
        d.stop()

        # Written while the daemon is stopped: read after the restart, exactly once, and
        # nothing read before is read again (the cursor was saved).
        Export().entry(TRACEBACK).write(self.tool, self.jfile)
        d.start()
        inc = self.wait_src(d, 2)
        time.sleep(1.5)
        incs = src_incidents(d)
        self.assertEqual(len(incs), 1)
        self.assertEqual(incs[0]["count"], 2)
        self.assertEqual(d.metric("cfwatchd_rule_matches_total", rule="py-src-import"), 1)
        d.stop()


if __name__ == "__main__":
    if journal_remote() is None:
        sys.exit(skip_file("systemd-journal-remote is not installed (Debian package "
                           "systemd-journal-remote); the journal source test needs it to write "
                           "journal files"))
    sys.exit(run_tests(__name__))
