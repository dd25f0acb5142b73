#!/usr/bin/env python3
"""Notification delivery benchmark: latency from cfw_notifier_submit() to the receiver
(p50, p99) and notifications per second through the outbox (each one written, fsynced and
renamed before its first attempt). The receiver is the loopback capture server
(tests/integration/lib/capture_server.py, Python http.server: it is part of what is measured).

usage: bench/notify-bench.py [BUILD_DIR] [--latency-n N] [--throughput-n N]
Builds bench/notify_bench.c against BUILD_DIR/libcfwatchd.a (default: build).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir", nargs="?", default=os.path.join(ROOT, "build"))
    ap.add_argument("--latency-n", type=int, default=300)
    ap.add_argument("--throughput-n", type=int, default=2000)
    a = ap.parse_args()
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


if __name__ == "__main__":
    main()
