#!/usr/bin/env python3
"""File source under rotation: a writer appends numbered lines at >= 5,000 lines/s while the file
is rotated several times, by rename + create and by copytruncate; every line must be read exactly
once. Each line `... SEQ <n> ok` matches the rule `seq` keyed `{rule}/{n}`, so /incidents has one
incident per number and its count says how often the line was read; /metrics must count exactly
the lines written.

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import os
import shutil
import signal
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import (SEQ_RULE, DaemonTestCase, Writer, check_exactly_once, run_tests,  # noqa: E402
                    seq_keys)
from faults import under_valgrind  # noqa: E402

# Under valgrind memcheck (scripts/valgrind.sh) the daemon runs 20-50 times slower: what
# memcheck needs is the code paths of rotation, not the race with a 5,000 lines/s writer, so
# there the lines are fewer, each rotation waits until the daemon has read what was written,
# and the writer's rate is not asserted.
VALGRIND = under_valgrind()
SEGMENTS = [1000 if VALGRIND else 3000] * 6  # 18,000 lines (6,000 under valgrind), 5 rotations
MIN_RATE = 5000        # lines/s the acceptance asks the writer to reach
WAIT_S = 240 if VALGRIND else 60


def config(path):
    return {
        "sources": [{"name": "app", "type": "file", "path": path, "start_at": "beginning",
                     "format": "lines"}],
        "rules": {"builtin": [], "custom": [SEQ_RULE]},
    }


def paced(d, rotate):
    """The rotation callback, made to wait for the daemon under valgrind (see VALGRIND)."""
    if not VALGRIND:
        return rotate

    def wrapped(w, k):
        d.wait_metric("cfwatchd_rule_matches_total", w.next, timeout=WAIT_S, rule="seq")
        rotate(w, k)
    return wrapped


def rename_rotation(log):
    """logrotate `create`: rename, then the program opens a new file at the path."""
    def rotate(w, k):
        os.rename(log, "%s.%d" % (log, k + 1))
        w.reopen()
    return rotate


def wait_seq(d, total, timeout, cut):
    """Waits until the seq rule matched total lines; on a timeout, says which lines are off (the
    timeout's own message cut to cut characters)."""
    try:
        d.wait_metric("cfwatchd_rule_matches_total", total, timeout=timeout, rule="seq")
    except AssertionError as e:
        problems = check_exactly_once(seq_keys(d.incidents()), total)
        raise AssertionError("%s\nlines: %s" % (str(e)[:cut], problems)) from None


class RotationCase(DaemonTestCase):
    def start_empty(self, watched=None):
        """An empty app.log and a daemon watching it (or the pattern watched): (log, daemon)."""
        log = self.path("app.log")
        open(log, "w").close()
        d = self.daemon(config(watched if watched is not None else log))
        d.start()
        return log, d

    def start_with_100_lines(self):
        """app.log with SEQ 0..99, its writer kept open, and a daemon that read them all."""
        log = self.path("app.log")
        w = Writer(log, [])
        w.open()
        w.write_lines(100)
        d = self.daemon(config(log))
        d.start()
        d.wait_metric("cfwatchd_rule_matches_total", 100, rule="seq")
        return log, w, d

    def run_writer(self, d, writer):
        total = sum(SEGMENTS)
        writer.start()
        writer.join()
        self.assertEqual(writer.next, total)
        if not VALGRIND:
            self.assertGreaterEqual(writer.rate, MIN_RATE,
                                    "test precondition: the writer reached only %.0f lines/s" %
                                    writer.rate)
        wait_seq(d, total, WAIT_S, 400)
        # A line read twice would show up as one more match: give the daemon time to make that
        # mistake (idle flush, periodic stat) before looking.
        time.sleep(2.0)
        self.assertEqual(d.metric("cfwatchd_rule_matches_total", rule="seq"), total,
                         "matches of the seq rule")
        problems = check_exactly_once(seq_keys(d.incidents()), total)
        self.assertEqual(problems, [])
        d.stop(timeout=120 if VALGRIND else 30)
        return total

    def test_rename_and_create(self):
        log, d = self.start_empty()
        self.run_writer(d, Writer(log, SEGMENTS, paced(d, rename_rotation(log))))
        self.assertTrue(os.path.exists(log + ".5"))

    def test_rename_with_glob_that_matches_rotated_names(self):
        # The glob also matches the rotated files: a file is known by its identity (device and
        # inode), so a rotated file is neither read again nor taken for a new file.
        log, d = self.start_empty(self.path("app.log*"))
        self.run_writer(d, Writer(log, SEGMENTS, paced(d, rename_rotation(log))))

    def test_copytruncate(self):
        log, d = self.start_empty()

        def copytruncate(w, k):
            # Lines written after the copy and before the truncate are lost by any tailer (they
            # are neither in the copy nor in the truncated file), and so are lines the tailer had
            # not read yet when the file was truncated: those exist only in the copy, which is
            # not watched. logrotate's copytruncate has that gap by design. The writer therefore
            # pauses until the daemon has read everything written so far, and does not write
            # between the copy and the truncate; after the truncate it goes on at once (O_APPEND
            # puts the next lines at offset 0), which the daemon must tell apart from the old
            # content by size and fingerprint.
            d.wait_metric("cfwatchd_rule_matches_total", w.next, timeout=WAIT_S, rule="seq")
            shutil.copyfile(log, "%s.%d" % (log, k + 1))
            os.truncate(log, 0)

        self.run_writer(d, Writer(log, SEGMENTS, copytruncate))
        self.assertTrue(os.path.exists(log + ".5"))

    def test_rename_twice_while_the_daemon_is_frozen(self):
        # The load-dependent case of test_rename_and_create made deterministic: while the daemon
        # does not run (SIGSTOP, standing in for a loaded machine), the file is rotated twice, so
        # the middle file is at the watched path only in between. Its lines must still be read:
        # the queued inotify events name it (moved from app.log to app.log.2).
        log, w, d = self.start_with_100_lines()
        d.signal(signal.SIGSTOP)
        try:
            os.rename(log, log + ".1")
            w.reopen()
            w.write_lines(100)
            os.rename(log, log + ".2")
            w.reopen()
            w.write_lines(100)
        finally:
            d.signal(signal.SIGCONT)
        os.close(w.fd)
        wait_seq(d, 300, 15, 300)
        time.sleep(1.5)
        self.assertEqual(check_exactly_once(seq_keys(d.incidents()), 300), [])
        d.stop()

    def test_rename_seen_after_the_file_was_let_go(self):
        # The race behind test_rename_and_create failing under valgrind, made deterministic: the
        # kernel may hand the daemon IN_MOVED_FROM before it queues IN_MOVED_TO; a scan in
        # between drains the file and lets it go, and the late MOVED_TO then named a file that
        # looked "rotated away before it was read": it was read again from 0. Here the file
        # leaves the name through a second link (the daemon lets it go), then, with the daemon
        # stopped, comes back under the name, is renamed away and grows: the daemon sees the
        # rename only after it let the file go. Only the new lines may come.
        log, w, d = self.start_with_100_lines()
        hold = self.path("hold")
        t0 = time.monotonic()
        os.link(log, hold)
        os.unlink(log)
        d.wait_stderr(r"app\.log drained and closed", since=t0)
        d.signal(signal.SIGSTOP)
        try:
            os.link(hold, log)
            os.rename(log, log + ".1")
            os.unlink(hold)
            w.write_lines(100)  # the writer still has the file open: SEQ 100..199
        finally:
            d.signal(signal.SIGCONT)
        os.close(w.fd)
        d.wait_metric("cfwatchd_rule_matches_total", 200, rule="seq")
        time.sleep(1.5)
        self.assertEqual(d.metric("cfwatchd_rule_matches_total", rule="seq"), 200)
        self.assertEqual(check_exactly_once(seq_keys(d.incidents()), 200), [])
        d.stop()

    def test_truncate_and_rewrite_longer_before_the_daemon_looks(self):
        # copytruncate where the new content outgrows the old offset before the daemon checks:
        # only the fingerprint of the bytes before the offset can reveal the truncation.
        log = self.path("app.log")
        d = self.daemon(config(log))
        w = Writer(log, [2000])
        w.open()
        w.write_lines(2000)
        d.start()
        d.wait_metric("cfwatchd_rule_matches_total", 2000, rule="seq")
        d.stop()  # the daemon is not running while the file is truncated and rewritten
        os.truncate(log, 0)
        w.write_lines(3000)  # SEQ 2000..4999: longer than the old content
        os.close(w.fd)
        d.start()
        d.wait_metric("cfwatchd_rule_matches_total", 3000, rule="seq")
        time.sleep(2.0)
        self.assertEqual(d.metric("cfwatchd_rule_matches_total", rule="seq"), 3000)
        self.assertEqual(check_exactly_once(seq_keys(d.incidents()), 5000), [])
        d.stop()


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
