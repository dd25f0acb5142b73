#!/usr/bin/env python3
"""Notification delivery benchmark. Two ways of running it:

1. The daemon end to end (--binary): the real cfwatchd with a file source and a webhook sink
   (rate limit off, so every transition is one request) pointed at a fast receiver in this
   process (asyncio, HTTP/1.1 keep-alive, answers 200 at once and only notes arrival time,
   event, key and id). N lines, one per distinct key, are appended to the watched file in one
   go; the figure is notifications/s from the first line written to the last open received:
   everything a transition costs (read, match, incident, journal if any, outbox spool with its
   fsyncs, HTTP). Then --latency-n lines one at a time (every 20 ms) give the latency from a
   line written to its open received (p50, p99). Each run is a fresh daemon and state_dir
   (--state-parent, default $TMPDIR: fsync costs what that filesystem's fsync costs; its type
   is printed). This is the figure for the cost of durability (issue 17).

   usage: bench/notify-bench.py --binary build/cfwatchd [--n 2000] [--runs 3]
                                [--latency-n 100] [--state-parent DIR]

2. The notifier alone (no --binary): builds bench/notify_bench.c against BUILD_DIR/libcfwatchd.a
   and submits transitions straight to cfw_notifier_submit(): latency from submit to the
   receiver (p50, p99) and notifications per second through the outbox (each one written,
   fsynced and renamed before its first attempt). The receiver is the loopback capture server
   (tests/integration/lib/capture_server.py, Python http.server: it is part of what is
   measured).

   usage: bench/notify-bench.py [BUILD_DIR] [--latency-n N] [--throughput-n N]

Figures are printed; nothing is asserted (exit 1 only when the run itself failed: the daemon
did not start, or notifications did not all arrive within the wait).
"""
import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "lib"))
from capture_server import CaptureServer  # noqa: E402

PKGS = ["libevent", "libcurl", "jansson", "libpcre2-8", "libsystemd", "yaml-0.1", "zlib"]


def build(build_dir, out):
    lib = os.path.join(build_dir, "libcfwatchd.a")
    if not os.path.exists(lib):
        sys.exit("no %s: build the project first (cmake --build %s)" % (lib, build_dir))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs"] + PKGS, check=True,
                           capture_output=True, text=True).stdout.split()
    version = "unknown"
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        for line in f:
            if line.startswith("project("):
                version = line.split("VERSION")[1].split()[0]
    subprocess.run(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", '-DCFW_VERSION="%s"' % version,
                    "-I", os.path.join(ROOT, "include"), os.path.join(HERE, "notify_bench.c"),
                    lib, "-o", out] + flags + ["-lm"], check=True)


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def notifier_bench(a):
    tmp = tempfile.mkdtemp(prefix="cfw-notify-bench-")
    try:
        exe = os.path.join(tmp, "notify_bench")
        build(a.build_dir, exe)
        cap = CaptureServer().start()

        # latency: one notification at a time
        out = subprocess.run([exe, str(cap.port), os.path.join(tmp, "s1"), "latency",
                              str(a.latency_n)], check=True, capture_output=True, text=True)
        submitted = {}
        for line in out.stdout.split():
            pass
        lines = out.stdout.strip().split("\n")
        for line in lines:
            i, ms = line.split()
            submitted["bench-%s" % i] = int(ms) / 1000.0
        lat = []
        for r in cap.requests("/bench"):
            script = json.loads(r["body"])["incident"]["script"]
            lat.append((r["time"] - submitted[script]) * 1000.0)
        cap.state.reset()

        # throughput: a burst through the outbox
        t0 = time.monotonic()
        out = subprocess.run([exe, str(cap.port), os.path.join(tmp, "s2"), "throughput",
                              str(a.throughput_n)], check=True, capture_output=True, text=True)
        wall = time.monotonic() - t0
        elapsed = int(out.stdout.split("elapsed_ms")[1].split()[0])
        got = len(cap.requests("/bench"))
        cap.stop()

        print("notify-bench: webhook sink (HMAC-signed), loopback Python receiver")
        print("latency submit -> receipt over %d notifications: p50 %.2f ms, p99 %.2f ms, "
              "max %.2f ms" % (len(lat), pct(lat, 50), pct(lat, 99), max(lat)))
        print("throughput: %d notifications spooled and delivered in %.2f s: %.0f/s "
              "(process wall %.2f s); received %d"
              % (a.throughput_n, elapsed / 1000.0, a.throughput_n / (elapsed / 1000.0), wall, got))
        if got != a.throughput_n or len(lat) != a.latency_n:
            sys.exit("lost notifications: %d/%d, %d/%d" % (got, a.throughput_n, len(lat),
                                                           a.latency_n))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- the daemon end to end (--binary) ----

RULE_ID = "bench"
RULE = {"id": RULE_ID, "pattern": r"BENCH (?<k>\S+)", "severity": "error", "key": "{rule}/{k}",
        "title": "bench {k}", "resolve_after": "1h", "repeat_interval": "24h"}


class FastReceiver:
    """A loopback HTTP/1.1 receiver on asyncio (keep-alive, 100-continue): answers 200 at once
    and notes (arrival monotonic time, event, incident key, id) of each notification."""

    def __init__(self):
        self.cond = threading.Condition()
        self.got = []
        self.requests = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._conn, "127.0.0.1", 0, limit=1 << 20))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    def stop(self):
        def close():
            self.server.close()
            self.loop.stop()
        self.loop.call_soon_threadsafe(close)
        self.thread.join(5)

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    async def _conn(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, close = 0, False
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    k, v = k.strip().lower(), v.strip().lower()
                    if k == b"content-length":
                        length = int(v)
                    elif k == b"connection" and v == b"close":
                        close = True
                    elif k == b"expect" and v == b"100-continue":
                        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = await reader.readexactly(length) if length else b""
                t = time.monotonic()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: 2\r\n\r\nok")
                self._record(t, body)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    def _record(self, t, body):
        out = []
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
        items = doc.get("items", []) if doc.get("event") == "digest" else [doc]
        for it in items:
            out.append((t, it.get("event"), (it.get("incident") or {}).get("key"), doc.get("id")))
        with self.cond:
            self.requests += 1
            self.got.extend(out)
            self.cond.notify_all()

    def reset(self):
        with self.cond:
            self.got = []
            self.requests = 0

    def opens(self, prefix):
        """{key: first arrival time} of the opens whose key starts with prefix."""
        with self.cond:
            out = {}
            for t, event, key, _ in self.got:
                if event == "open" and key and key.startswith(prefix) and key not in out:
                    out[key] = t
            return out

    def wait_opens(self, prefix, n, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = self.opens(prefix)
                if len(got) >= n or time.monotonic() > deadline:
                    return got
                self.cond.wait(min(0.5, max(0.01, deadline - time.monotonic())))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid, encoding="utf-8") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fs_type(path):
    try:
        return subprocess.run(["df", "--output=fstype", path], capture_output=True, text=True,
                              check=True).stdout.split()[-1]
    except (OSError, subprocess.CalledProcessError):
        return "?"


def append(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def daemon_run(a, rx, run):
    import daemon as harness  # tests/integration/lib/daemon.py
    harness.CFWATCHD = os.path.abspath(a.binary)
    tmp = tempfile.mkdtemp(prefix="cfw-notify-bench-", dir=a.state_parent)
    d = None
    try:
        log = os.path.join(tmp, "bench.log")
        open(log, "w").close()
        cfg = {
            "state_dir": os.path.join(tmp, "state"),
            "sources": [{"name": "bench", "type": "file", "path": log, "format": "lines"}],
            "rules": {"builtin": [], "custom": [RULE]},
            "sinks": [{"name": "hook", "type": "webhook", "url": rx.url(), "rules": [RULE_ID],
                       "rate_limit": {"burst": 0}}],
        }
        d = harness.Daemon(tmp, cfg, log_level="info", name="bench")
        d.start()
        rx.reset()
        prefix = "%s/r%d-" % (RULE_ID, run)
        cpu0 = cpu_seconds(d.pid)
        text = "".join("BENCH r%d-%06d\n" % (run, i) for i in range(a.n))
        t0 = time.monotonic()
        append(log, text)
        got = rx.wait_opens(prefix, a.n, timeout=max(120.0, a.n / 5.0))
        cpu = cpu_seconds(d.pid) - cpu0
        if len(got) < a.n:
            raise RuntimeError("run %d: %d of %d opens received within the wait"
                               % (run, len(got), a.n))
        first, last = min(got.values()) - t0, max(got.values()) - t0
        with rx.cond:
            bodies = rx.requests
            ids = len({g[3] for g in rx.got})
        # latency: one line at a time
        lat = []
        lprefix = "%s/r%d-lat-" % (RULE_ID, run)
        for i in range(a.latency_n):
            t = time.monotonic()
            append(log, "BENCH r%d-lat-%06d\n" % (run, i))
            key = "%s%06d" % (lprefix, i)
            seen = rx.wait_opens(key, 1, timeout=30.0)
            if key not in seen:
                raise RuntimeError("run %d: latency line %d not received within 30 s" % (run, i))
            lat.append((seen[key] - t) * 1000.0)
            time.sleep(0.02)
        d.stop()
        return {"n": a.n, "wall": last, "first_ms": first * 1000.0, "rate": a.n / last,
                "bodies": bodies, "ids": ids, "cpu": cpu, "lat": lat}
    finally:
        if d is not None:
            d.close()
        shutil.rmtree(tmp, ignore_errors=True)


def daemon_bench(a):
    if not os.access(a.binary, os.X_OK):
        sys.exit("notify-bench: %s is not an executable" % a.binary)
    parent = a.state_parent or tempfile.gettempdir()
    a.state_parent = parent
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(a.binary)))
    print("notify-bench (daemon end to end): %s (built %s); checkout at commit %s%s" %
          (a.binary, built, rev, " with uncommitted changes" if dirty else ""))
    print("file source -> rule -> incident -> outbox -> webhook (rate limit off) -> asyncio "
          "receiver on loopback; state_dir on %s (%s); %d CPUs, load %s" %
          (parent, fs_type(parent), os.cpu_count() or 0,
           " ".join("%.2f" % x for x in os.getloadavg())))
    rx = FastReceiver()
    results = []
    try:
        for run in range(1, a.runs + 1):
            r = daemon_run(a, rx, run)
            results.append(r)
            print("run %d: %d notifications in %.3f s (first line -> last open received): "
                  "%.1f notifications/s; first after %.1f ms; %d requests, %d distinct ids; "
                  "daemon CPU %.2f s (%.2f ms per notification); line -> open latency over %d: "
                  "p50 %.2f ms, p99 %.2f ms, max %.2f ms"
                  % (run, r["n"], r["wall"], r["rate"], r["first_ms"], r["bodies"], r["ids"],
                     r["cpu"], 1000.0 * r["cpu"] / r["n"], len(r["lat"]),
                     pct(r["lat"], 50) if r["lat"] else 0, pct(r["lat"], 99) if r["lat"] else 0,
                     max(r["lat"]) if r["lat"] else 0), flush=True)
    except (RuntimeError, AssertionError) as e:
        sys.exit("notify-bench: %s" % e)
    finally:
        rx.stop()
    rates = [r["rate"] for r in results]
    lat = [x for r in results for x in r["lat"]]
    print("notifications/s over %d runs of %d: median %.1f, best %.1f, worst %.1f"
          % (len(rates), a.n, statistics.median(rates), max(rates), min(rates)))
    if lat:
        print("line -> open received over %d lines: p50 %.2f ms, p99 %.2f ms"
              % (len(lat), pct(lat, 50), pct(lat, 99)))


def main():
    ap = argparse.ArgumentParser(description="notification delivery benchmark (see the header)")
    ap.add_argument("build_dir", nargs="?", default=os.path.join(ROOT, "build"),
                    help="notifier mode: the build whose libcfwatchd.a is used")
    ap.add_argument("--binary", help="daemon mode: the cfwatchd binary to run end to end")
    ap.add_argument("--n", type=int, default=2000,
                    help="daemon mode: lines (distinct incidents) per run (default 2000)")
    ap.add_argument("--runs", type=int, default=3, help="daemon mode: runs (default 3)")
    ap.add_argument("--state-parent", default=None,
                    help="daemon mode: directory for each run's state_dir (default $TMPDIR)")
    ap.add_argument("--latency-n", type=int, default=None,
                    help="lines (daemon mode, default 100) or notifications (notifier mode, "
                         "default 300) sent one at a time for the latency figures")
    ap.add_argument("--throughput-n", type=int, default=2000,
                    help="notifier mode: notifications submitted at once (default 2000)")
    a = ap.parse_args()
    if a.binary:
        a.latency_n = 100 if a.latency_n is None else a.latency_n
        daemon_bench(a)
    else:
        a.latency_n = 300 if a.latency_n is None else a.latency_n
        notifier_bench(a)


if __name__ == "__main__":
    main()
