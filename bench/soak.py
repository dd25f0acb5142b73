#!/usr/bin/env python3
"""The soak run of issue 7 (driven by bench/soak.sh; standard library only).

Runs the real daemon (tests/integration/lib/daemon.py) for --minutes with:
  - a file source written at --rate lines/s (batches every 50 ms), rotated every minute the way
    logrotate does it by default (rename to app.log.1, create app.log, the writer reopens);
    about one line in 200 is `ERROR upstream=<k> failed`, with k drawn from a window that moves
    every minute, so incidents keep opening, reminding (repeat_interval 90s) while their k stays
    in the window, and resolving (resolve_after 60s) once it leaves; one line in 1000 starts a
    4-line Python traceback;
  - a Logpush source receiving a gzip NDJSON batch of 100 Workers Trace Events every 5 s (one
    record per batch with `No module named 'src'`, for a script that changes every minute);
  - a webhook sink whose receiver (tests/integration/lib/capture_server.py) answers 500 to one
    request in three, 200 to the others; retries back off 1 s .. 10 s.
Every --interval seconds it samples the daemon's RSS (/proc/PID/status VmRSS), its open
descriptors (/proc/PID/fd) and cfwatchd_outbox_depth (/metrics).

At the end the writers stop, the outbox is left to drain, and the run FAILS (exit 1) when:
  - RSS, descriptors or outbox depth grow over the second half of the run: the least-squares
    slope of the samples taken in the second half is above --max-rss-slope KiB/min,
    --max-fd-slope per minute, or --max-depth-slope per minute;
  - the outbox does not drain within --drain seconds;
  - a notification is lost: some incident in /incidents has no `open` notification accepted by
    the receiver, or the transitions the receiver accepted (standalone notifications plus digest
    items, each notification id counted once) differ from cfwatchd_transitions_total;
  - a line or a record is lost: cfwatchd_rule_matches_total{rule="soak-upstream"} differs from
    the ERROR lines written, or cfwatchd_logpush_records_total from the records posted;
  - the daemon exits, or does not stop cleanly (status 0) at the end.
It prints a summary (and writes samples.csv and summary.json into --out).
"""
import argparse
import gzip
import json
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "lib"))

TOKEN = "soak-logpush-token-0f1e2d3c4b5a"
MISSING = "ModuleNotFoundError: No module named 'src'"


def parse_args():
    p = argparse.ArgumentParser(description="cfwatchd soak run (issue 7)")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--rate", type=int, default=2000, help="lines per second")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    p.add_argument("--out", default=None, help="directory for samples.csv and summary.json")
    p.add_argument("--max-rss-slope", type=float, default=512.0, help="KiB per minute")
    p.add_argument("--max-fd-slope", type=float, default=0.5, help="descriptors per minute")
    p.add_argument("--max-depth-slope", type=float, default=2.0, help="jobs per minute")
    p.add_argument("--drain", type=float, default=180.0, help="seconds to wait for the outbox")
    p.add_argument("--seed", type=int, default=7)
    return p.parse_args()


def slope_per_min(samples):
    """Least-squares slope per minute of [(t, value)] (faults.slope_per_s, the tests' own)."""
    from faults import slope_per_s
    return 60.0 * slope_per_s(samples)


class LineWriter(threading.Thread):
    """Writes --rate lines/s into app.log and rotates it every minute."""

    def __init__(self, path, rate, seed):
        super().__init__(daemon=True)
        self.path = path
        self.rate = rate
        self.rnd = random.Random(seed)
        self.halt = threading.Event()
        self.lines = 0
        self.errors = 0      # ERROR upstream lines (matched by soak-upstream)
        self.tracebacks = 0
        self.rotations = 0
        self.failure = None

    def run(self):
        try:
            self._run()
        except Exception as e:  # noqa: BLE001 - reported in the summary
            self.failure = repr(e)

    def _run(self):
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        t0 = time.monotonic()
        next_rotate = t0 + 60
        batch = max(1, self.rate // 20)
        n = 0
        while not self.halt.is_set():
            now = time.monotonic()
            if now >= next_rotate:
                os.close(fd)
                os.replace(self.path, self.path + ".1")
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                self.rotations += 1
                next_rotate += 60
            minute = int((now - t0) // 60)
            out = []
            for _ in range(batch):
                r = self.rnd.random()
                stamp = "2026-01-01T00:00:%02d.%03dZ" % (n // 1000 % 60, n % 1000)
                if r < 0.005:
                    k = minute * 3 + self.rnd.randrange(6)
                    out.append("%s ERROR upstream=u%d failed (request %d)\n" % (stamp, k, n))
                    self.errors += 1
                elif r < 0.006:
                    out.append("Traceback (most recent call last):\n"
                               "  File \"/srv/app/handlers.py\", line %d, in handle\n"
                               "    value = payload['key']\n"
                               "KeyError: 'key'\n" % (n % 500))
                    self.tracebacks += 1
                else:
                    out.append("%s INFO GET /api/items/%d 200 %dms\n" % (stamp, n % 9973, n % 97))
                n += 1
            os.write(fd, "".join(out).encode())
            self.lines += batch
            wait = t0 + self.lines / self.rate - time.monotonic()
            if wait > 0:
                self.halt.wait(wait)
        os.close(fd)


class LogpushWriter(threading.Thread):
    """Posts a batch of 100 Trace Events every 5 s; one per batch carries the src import."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.halt = threading.Event()
        self.batches = 0
        self.records = 0
        self.bad = []
        self.t0 = time.monotonic()

    def run(self):
        i = 0
        while not self.halt.is_set():
            minute = int((time.monotonic() - self.t0) // 60)
            recs = []
            for j in range(100):
                msg = MISSING if j == 0 else "ValueError: invalid literal for int()"
                recs.append({
                    "Event": {"RayID": "soak-%d-%d" % (i, j), "Request": {"URL": "https://x/",
                                                                         "Method": "GET"},
                              "Response": {"Status": 500}},
                    "EventTimestampMs": 1760000000000 + i * 1000 + j, "EventType": "fetch",
                    "Outcome": "exception", "ScriptName": "soak-lp-%d" % minute,
                    "Exceptions": [{"Name": "PythonError", "Message": msg,
                                    "TimestampMs": 1760000000000}],
                    "Logs": [], "ScriptVersion": {"ID": "v%d" % minute}})
            body = gzip.compress("".join(json.dumps(r) + "\n" for r in recs).encode())
            req = urllib.request.Request("http://127.0.0.1:%d/logpush/lp" % self.port, data=body,
                                         method="POST", headers={
                                             "Authorization": "Bearer " + TOKEN,
                                             "Content-Encoding": "gzip"})
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            except OSError as e:
                status = str(e)
            if status == 200:
                self.batches += 1
                self.records += len(recs)
            else:
                self.bad.append(status)
            i += 1
            self.halt.wait(5.0)


def delivered_transitions(cap):
    """(transitions accepted by the receiver, keys with an accepted open)."""
    seen = set()
    total = 0
    opened = set()
    for r in cap.requests("/hook"):
        if r["status"] != 200:
            continue
        doc = json.loads(r["body"])
        if doc["id"] in seen:
            continue
        seen.add(doc["id"])
        if doc.get("event") == "digest":
            items = doc.get("items", [])
            # unlisted: left out to keep the body within the sink's max_body (1 MiB here)
            total += len(items) + int(doc.get("unlisted", 0) or 0) + int(doc.get("omitted", 0) or 0)
            for it in items:
                if it.get("event") == "open":
                    opened.add(it["incident"]["key"])
        else:
            total += 1
            if doc.get("event") == "open":
                opened.add(doc["incident"]["key"])
    return total, opened


def main():
    args = parse_args()
    from capture_server import CaptureServer
    from daemon import Daemon, HarnessError
    import tempfile

    out = args.out or tempfile.mkdtemp(prefix="cfwatchd-soak-")
    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="cfwatchd-soak-run-")
    cap = CaptureServer().start()
    # one request in three fails: a long scripted queue, then the same cycle
    cap.script("/hook", [{"status": 500, "body": "try again"} if i % 3 == 2 else
                         {"status": 200, "body": "ok"} for i in range(200000)],
               then={"status": 200, "body": "ok"})
    log = os.path.join(tmp, "app.log")
    open(log, "w").close()
    cfg = {
        "state_dir": os.path.join(tmp, "state"),
        "listen": "127.0.0.1:0",
        "sources": [
            {"name": "app", "type": "file", "path": log, "start_at": "beginning",
             "format": "lines"},
            {"name": "lp", "type": "logpush", "token": TOKEN},
        ],
        "rules": {"custom": [
            {"id": "soak-upstream", "pattern": r"ERROR upstream=(?<up>u\d+) failed",
             "severity": "error", "key": "{rule}/{up}", "title": "upstream {up} fails",
             "resolve_after": "60s", "repeat_interval": "90s"}]},
        "incidents": {"resolve_after": "60s", "repeat_interval": "90s"},
        "outbox": {"backoff_base": "1s", "backoff_max": "10s"},
        "sinks": [{"name": "hook", "type": "webhook", "url": cap.url("/hook")}],
    }
    d = Daemon(tmp, cfg, log_level="info")  # the harness reads the port from an info line
    d.start()
    pid = d.pid
    print("soak: %.1f min at %d lines/s; daemon pid %d; output in %s" %
          (args.minutes, args.rate, pid, out), flush=True)

    def rss():
        with open("/proc/%d/status" % pid, encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    lines = LineWriter(log, args.rate, args.seed)
    lp = LogpushWriter(d.port)
    lines.start()
    lp.start()
    samples = []  # (t, rss KiB, fds, outbox depth)
    problems = []
    t0 = time.monotonic()
    end = t0 + args.minutes * 60
    with open(os.path.join(out, "samples.csv"), "w", encoding="utf-8") as csv:
        csv.write("seconds,rss_kib,fds,outbox_depth,lines_written\n")
        while time.monotonic() < end:
            if not d.alive():
                problems.append("the daemon exited (status %s)" % d.proc.returncode)
                break
            try:
                depth = d.metric("cfwatchd_outbox_depth", 0)
                s = (time.monotonic() - t0, rss(), len(os.listdir("/proc/%d/fd" % pid)),
                     depth)
            except (OSError, ValueError, HarnessError) as e:
                problems.append("sampling failed: %s" % e)
                break
            samples.append(s)
            csv.write("%.1f,%d,%d,%d,%d\n" % (s + (lines.lines,)))
            csv.flush()
            if len(samples) % max(1, int(60 / args.interval)) == 0:
                print("soak: %5.1f min  rss %6d KiB  fds %4d  outbox %3d  lines %d" %
                      (s[0] / 60, s[1], s[2], s[3], lines.lines), flush=True)
            time.sleep(max(0.0, t0 + len(samples) * args.interval - time.monotonic()))
    lines.halt.set()
    lp.halt.set()
    lines.join(30)
    lp.join(90)
    summary = {"minutes": args.minutes, "rate": args.rate, "lines": lines.lines,
               "error_lines": lines.errors, "tracebacks": lines.tracebacks,
               "rotations": lines.rotations, "logpush_batches": lp.batches,
               "logpush_records": lp.records}
    if lines.failure:
        problems.append("line writer: %s" % lines.failure)
    if lp.bad:
        problems.append("Logpush batches not accepted: %s" % lp.bad[:5])

    if d.alive() and samples:
        # drain: the outbox empties once the receiver has accepted everything
        deadline = time.monotonic() + args.drain
        while time.monotonic() < deadline and d.metric("cfwatchd_outbox_depth", 0) > 0:
            time.sleep(1)
        depth = d.metric("cfwatchd_outbox_depth", 0)
        if depth > 0:
            problems.append("the outbox did not drain within %.0f s (%d left)" %
                            (args.drain, depth))
        # matched exactly what was written (waits for the last lines and records)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            matched = d.metric("cfwatchd_rule_matches_total", 0, rule="soak-upstream")
            records = d.metric("cfwatchd_logpush_records_total", 0, source="lp")
            if matched >= lines.errors and records >= lp.records:
                break
            time.sleep(1)
        if matched != lines.errors:
            problems.append("soak-upstream matched %d lines, %d were written" %
                            (matched, lines.errors))
        if records != lp.records:
            problems.append("Logpush: %d records counted, %d posted" % (records, lp.records))
        time.sleep(2)
        d.wait_for(lambda: d.metric("cfwatchd_outbox_depth", 0) == 0, "the outbox to drain",
                   timeout=args.drain)
        m = d.metrics()
        transitions = {t: int(m.get(("cfwatchd_transitions_total",
                                     (("transition", t),)), 0))
                       for t in ("open", "reminder", "resolve")}
        got, opened = delivered_transitions(cap)
        keys = {i["key"] for i in d.incidents()["incidents"]}
        never = sorted(keys - opened)
        if never:
            problems.append("%d incidents never announced: %s" % (len(never), never[:5]))
        if got != sum(transitions.values()):
            problems.append("the receiver accepted %d transitions, the daemon made %d (%s)" %
                            (got, sum(transitions.values()), transitions))
        attempts = cap.requests("/hook")
        summary.update({
            "incidents": len(keys), "transitions": transitions,
            "delivered_transitions": got,
            "deliveries_attempted": len(attempts),
            "deliveries_failed_500": sum(1 for r in attempts if r["status"] != 200),
            "retried_total": int(d.metric("cfwatchd_notifications_retried_total", 0,
                                          sink="hook")),
            "dead_total": int(d.metric("cfwatchd_notifications_dead_total", 0, sink="hook")),
            "matched_error_lines": int(matched), "logpush_records_counted": int(records),
        })

    # growth over the second half
    if samples:
        half = samples[len(samples) // 2:]
        slopes = {
            "rss_kib_per_min": slope_per_min([(s[0], s[1]) for s in half]),
            "fds_per_min": slope_per_min([(s[0], s[2]) for s in half]),
            "outbox_depth_per_min": slope_per_min([(s[0], s[3]) for s in half]),
        }
        limits = {"rss_kib_per_min": args.max_rss_slope, "fds_per_min": args.max_fd_slope,
                  "outbox_depth_per_min": args.max_depth_slope}
        for k, v in slopes.items():
            if v > limits[k]:
                problems.append("%s grows: slope %.2f over the second half (limit %.2f)" %
                                (k, v, limits[k]))
        summary.update({
            "samples": len(samples),
            "rss_kib": {"first": samples[0][1], "min": min(s[1] for s in samples),
                        "max": max(s[1] for s in samples), "last": samples[-1][1]},
            "fds": {"first": samples[0][2], "min": min(s[2] for s in samples),
                    "max": max(s[2] for s in samples), "last": samples[-1][2]},
            "outbox_depth": {"max": max(s[3] for s in samples),
                             "mean": round(sum(s[3] for s in samples) / len(samples), 2)},
            "slopes_second_half": {k: round(v, 3) for k, v in slopes.items()},
        })

    if d.alive():
        try:
            rc = d.stop()
            summary["exit_status"] = rc
        except HarnessError as e:
            problems.append("stop: %s" % str(e).split("\n")[0])
    errors = [t for _, t in d.lines if ": error: " in t]
    summary["daemon_error_lines"] = len(errors)
    summary["problems"] = problems
    d.close()
    cap.stop()
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))
    print("soak: %s" % ("PASS" if not problems else "FAIL\n  " + "\n  ".join(problems)))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
