#!/usr/bin/env python3
"""Fault injection: a storm of SIGHUPs (issue 7).

100 SIGHUPs a second for 10 seconds, the configuration file replaced before each one,
alternating a valid configuration (each with a rule ONLY<k> that only version k has) and an
invalid one (unknown key, bad regex, YAML syntax error, a source without a path, in turn). A
file source is written to and Logpush batches are posted all along; RSS and descriptors are
sampled. Expected: no crash, READY=1 after the storm, reloads and rejections counted, RSS and
descriptors bounded (a leak per reload would show over ~500 reloads; the ASan build also checks
for leaks at exit), lines and batches matched throughout, and exactly one configuration in force
afterwards: a valid one from the end of the storm. Then, deterministically: a last valid
configuration followed by an invalid one leaves the last valid one in force (a rule only it has
matches; the rules of the others do not).

Known bug (reported): Logpush batches answered 200 while a reload happens in the same loop pass
are lost; the storm shows it (a few of ~50 batches), and a separate test reproduces it exactly.

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import gzip
import http.client
import json
import os
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import DaemonTestCase, run_tests, start_capture, to_yaml, wait_until  # noqa: E402
from faults import (Sampler, assert_rss_bound, fd_count, is_sanitized,  # noqa: E402
                    logpush, report, rss_kb, slope_per_s, trace_event,
                    under_valgrind)

TOKEN = "lp-token-5f2a9c0e1d7b4a36"
RATE = 100       # signals per second
SECONDS = 10
if under_valgrind():  # memcheck runs the daemon some 30 times slower: a lighter storm
    RATE = 20
MISSING = "ModuleNotFoundError: No module named 'src'"


def valid(log, url, k, state_dir):
    return to_yaml({
        "state_dir": state_dir,
        "listen": "127.0.0.1:0",
        "sources": [
            {"name": "app", "type": "file", "path": log, "start_at": "beginning",
             "format": "lines", "poll_interval": "100ms"},
            {"name": "lp", "type": "logpush", "token": TOKEN},
        ],
        "rules": {"custom": [
            # one incident for every line: its count checks that each was matched once, and
            # RSS does not grow with new incidents (which would hide a leak per reload)
            {"id": "base", "pattern": r"BASE (?<n>\d+)", "severity": "info",
             "key": "{rule}", "resolve_after": "1h"},
            {"id": "only%s" % k, "pattern": r"ONLY%s (?<w>\w+)" % k, "severity": "warning",
             "key": "{rule}/{w}", "resolve_after": "1h"},
        ]},
        "incidents": {"resolve_after": "1h"},
        "sinks": [{"name": "hook", "type": "webhook", "url": url}],
    })


def invalid(log, url, k, state_dir):
    text = valid(log, url, k, state_dir)
    kind = k % 4
    if kind == 0:
        return text.replace("rules:\n", "frobnicate: 1\nrules:\n", 1)
    if kind == 1:
        return text.replace("BASE (?<n>", "BASE ((?<n>", 1)
    if kind == 2:
        return "sources: [\n  - name: app\n" + text
    return text.replace("'path': ", "'pathx': ", 1).replace("path: ", "pathx: ", 1)


class ReloadStormCase(DaemonTestCase):
    lost_batches = None
    batches = 0

    def test_sighup_storm(self):
        cap = start_capture()
        self.addCleanup(cap.stop)
        log = self.path("app.log")
        with open(log, "w", encoding="utf-8") as f:
            f.write("BASE 0\n")
        url = cap.url("/hook")
        d = self.daemon(valid(log, url, "start", self.path("state")))
        d.start()
        d.wait_incident("base")
        rss0, fds0 = rss_kb(d.pid), fd_count(d.pid)
        rss = Sampler(lambda: rss_kb(d.pid), 0.25).start()
        fds = Sampler(lambda: fd_count(d.pid), 0.25).start()

        # writers: a line every 50 ms, a Logpush batch every 200 ms
        halt = threading.Event()
        written = [0]
        batches = []

        def lines():
            n = 1
            while not halt.is_set():
                with open(log, "a", encoding="utf-8") as f:
                    f.write("BASE %d\n" % n)
                written[0] = n
                n += 1
                halt.wait(0.05)

        def batches_writer():
            i = 0
            while not halt.is_set():
                batches.append(("lp-%d" % i, logpush(d.port, "lp", TOKEN, [
                    trace_event("ray-%d" % i, "lp-%d" % i, MISSING)],
                    timeout=300 if under_valgrind() else 30)))
                i += 1
                halt.wait(0.2)
        threads = [threading.Thread(target=lines, daemon=True),
                   threading.Thread(target=batches_writer, daemon=True)]
        for t in threads:
            t.start()

        state = self.path("state")
        t0 = time.monotonic()
        last_valid = None
        sent = 0
        for i in range(RATE * SECONDS):
            k = i // 2
            if i % 2 == 0:
                d.write_config(valid(log, url, k, state))
                last_valid = k
            else:
                d.write_config(invalid(log, url, k, state))
            d.signal(signal.SIGHUP)
            sent += 1
            delay = t0 + (i + 1) / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        storm_s = time.monotonic() - t0
        # let the daemon work through what is pending, then stop the writers
        settle = 180 if under_valgrind() else 60 if is_sanitized() else 30

        def settled():
            a = (d.metric("cfwatchd_reloads_total"), d.metric("cfwatchd_reload_failures_total"))
            time.sleep(1.0)
            b = (d.metric("cfwatchd_reloads_total"), d.metric("cfwatchd_reload_failures_total"))
            return b if a == b else None
        reloads, failures = d.wait_for(settled, "the reloads to settle", timeout=settle)
        halt.set()
        for t in threads:
            t.join(30)
        rss_s, fds_s = rss.stop(), fds.stop()
        self.assertTrue(d.alive())
        self.assertEqual(d.http("/healthz")[0], 200)

        # counted; signals arriving during a reload may be merged, never more than were sent
        self.assertGreater(reloads, 10)
        self.assertGreater(failures, 10)
        self.assertLessEqual(reloads + failures, sent)

        # the inputs were read all along: every line and every batch matched
        lines = written[0] + 1
        d.wait_incident("base", min_count=lines)
        incs = d.incident_map()
        self.assertEqual(incs["base"]["count"], lines,
                         "lines written during the storm were not matched exactly once")
        self.assertEqual([b for b in batches if b[1] != 200], [])
        # checked by test_sighup_storm_loses_no_logpush_batch (known bug)
        ReloadStormCase.lost_batches = [s for s, _ in batches
                                        if "py-src-import/%s/src" % s not in incs]
        ReloadStormCase.batches = len(batches)

        # exactly one configuration in force: a valid one from the end of the storm
        with open(log, "a", encoding="utf-8") as f:
            f.write("".join("ONLY%d probe\n" % k for k in range(last_valid + 1)))
            f.write("ONLYstart probe\nBASE 999999\n")
        d.wait_incident("base", min_count=lines + 1)
        in_force = sorted(i["rule"] for i in d.incidents()["incidents"]
                          if i["rule"].startswith("only"))
        self.assertEqual(len(in_force), 1, "rules of several configurations: %s" % in_force)
        k_in_force = int(in_force[0][len("only"):])
        self.assertGreaterEqual(k_in_force, last_valid - (25 if under_valgrind() else 5),
                                "an old configuration is in force: %s" % in_force)

        # deterministic end: the last valid configuration stays when an invalid one follows
        d.write_config(valid(log, url, "final", state))
        d.reload()
        d.write_config(invalid(log, url, 1, state))
        d.reload()
        self.assertEqual(d.metric("cfwatchd_reload_failures_total"), failures + 1)
        with open(log, "a", encoding="utf-8") as f:
            f.write("ONLYfinal yes\nONLY%d no\nBASE 1000000\n" % k_in_force)
        d.wait_incident("onlyfinal/yes")
        d.wait_incident("base", min_count=lines + 2)
        self.assertNotIn("only%d/no" % k_in_force, d.incident_map())

        # bounded: no growth over the second half of the storm beyond allocator noise
        half = [(t, v) for t, v in rss_s if t >= t0 + storm_s / 2 and t <= t0 + storm_s]
        slope = slope_per_s(half)
        peak = max(v for _, v in rss_s)
        fd_peak = max(v for _, v in fds_s)
        fds_end = fd_count(d.pid)
        report("sighup-storm", signals=sent, storm_s=round(storm_s, 1), reloads=reloads,
               rejected=failures, rss_before_kib=rss0, rss_peak_kib=peak,
               rss_end_kib=rss_kb(d.pid), rss_slope_2nd_half_kib_s=round(slope, 1),
               fds_before=fds0, fds_peak=fd_peak, fds_end=fds_end,
               lines=written[0], batches=len(batches),
               batches_lost=len(ReloadStormCase.lost_batches))
        assert_rss_bound(self, slope, 256, "RSS growth per second over the storm's second half")
        assert_rss_bound(self, peak - rss0, 64 * 1024, "RSS growth during the storm")
        # connections the test's clients left open are closed by the listener's keep-alive
        # timeout (15 s); a descriptor leaked by reloads would stay
        wait_until(lambda: fd_count(d.pid) <= fds0 + 2,
                   "descriptors back to where they started (%d; %d at the end of the storm)"
                   % (fds0, fds_end), timeout=30)
        d.stop()

    def test_sighup_storm_loses_no_logpush_batch(self):
        if ReloadStormCase.lost_batches is None:
            self.skipTest("test_sighup_storm did not get that far")
        self.assertEqual(ReloadStormCase.lost_batches, [], "%d of %d Logpush batches answered "
                         "200 during the storm were never matched" %
                         (len(ReloadStormCase.lost_batches), ReloadStormCase.batches))

    def test_logpush_batch_arriving_with_a_sighup_is_matched(self):
        """The exact reproduction: SIGHUP, then 50 ms later a one-record batch on a kept-alive
        connection, while the loop is busy with a 20,000-record batch; both the signal and the
        request are ready in the same loop pass, the request is queued and answered 200, then
        the reload frees the receiver with its queue."""
        if under_valgrind():
            self.skipTest("the reproduction depends on timing that memcheck changes")
        log = self.path("app.log")
        open(log, "w").close()
        d = self.daemon(valid(log, "http://127.0.0.1:9/hook", "start", self.path("state")))
        d.start()
        hdr = {"Authorization": "Bearer " + TOKEN, "Content-Encoding": "gzip"}

        def body(recs):
            return gzip.compress("".join(json.dumps(r, separators=(",", ":")) + "\n"
                                         for r in recs).encode(), 1)
        big = body([trace_event("busy-%d" % i, "busy", MISSING, ts=1760000000100 + i)
                    for i in range(20000)])
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
        self.addCleanup(conn.close)
        conn.request("POST", "/logpush/lp", body=body([trace_event("w", "warm", MISSING)]),
                     headers=hdr)
        r = conn.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        statuses = {}

        def post_big():
            c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
            c.request("POST", "/logpush/lp", body=big, headers=hdr)
            rr = c.getresponse()
            rr.read()
            statuses["big"] = rr.status
            c.close()
        th = threading.Thread(target=post_big)
        th.start()
        time.sleep(0.5)  # the daemon is matching the big batch
        d.signal(signal.SIGHUP)
        time.sleep(0.05)
        conn.request("POST", "/logpush/lp", body=body([trace_event("v", "victim", MISSING)]),
                     headers=hdr)
        r = conn.getresponse()
        r.read()
        statuses["victim"] = r.status
        th.join(60)
        self.assertEqual(statuses, {"big": 200, "victim": 200})
        d.wait_incident("py-src-import/busy/src", min_count=20000)
        d.wait_stderr(r"reloaded")
        with open(log, "a", encoding="utf-8") as f:
            f.write("BASE 42\n")
        d.wait_incident("base")  # everything queued before this line is matched by now
        self.assertTrue("py-src-import/victim/src" in d.incident_map(),
                        "a Logpush batch answered 200 was never matched")
        d.stop()


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
