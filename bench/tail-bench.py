#!/usr/bin/env python3
"""RSS of live tail: cfwatchd's `cloudflare-tail` source against `wrangler tail`, on one fake server.

  bench/tail-bench.py [--workers 20] [--rate 50] [--seconds 30] [--warmup 10]
                      [--build DIR] [--wrangler PATH] [--no-wrangler]

A fake Cloudflare API and tail WebSocket server (tests/integration/lib: fake_cloudflare.py and
ws_tail.py, on 127.0.0.1) push `--rate` TailEventMessages per second to every connected tail (one
in a hundred a Python import failure, the rest requests that went fine with a log line). Then:

  1. one cfwatchd (Release build in --build, default build-bench) with one `cloudflare-tail`
     source tailing `--workers` Workers;
  2. `--workers` processes of `wrangler tail <name> --format json` (wrangler 4 from --wrangler,
     default build-npm-cache/node_modules/.bin/wrangler as tests/integration/lib/npm_wrangler.py
     installs it), each writing to a file, as an `exec` source would read them.

Each side runs alone: after every tail is connected and `--warmup` seconds, the resident set of
its whole process tree (VmRSS summed over the processes) is sampled every second for `--seconds`;
the peak, the mean and the CPU seconds of the window are printed with the events the side
received. Nothing is asserted: the figures go into bench/README.md.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "lib"))
from fake_cloudflare import ACCOUNT_ID, TOKEN, FakeCloudflare, write_token  # noqa: E402
from faults import rss_kb  # noqa: E402
from ws_tail import TailServer  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


def event(script, i):
    ts = int(time.time() * 1000)
    ev = {"outcome": "ok", "scriptName": script, "diagnosticsChannelEvents": [],
          "exceptions": [], "logs": [{"message": ["GET /items/%d" % i, {"ms": i % 97}],
                                      "level": "log", "timestamp": ts}],
          "eventTimestamp": ts,
          "event": {"request": {"url": "https://%s.example.workers.dev/items/%d" % (script, i),
                                "method": "GET", "headers": {"user-agent": "bench"},
                                "cf": {"colo": "FRA"}},
                    "response": {"status": 200}},
          "scriptVersion": {"id": "00000000-0000-4000-8000-000000000000"},
          "truncated": False, "executionModel": "stateless", "cpuTime": 1, "wallTime": 3}
    if i % 100 == 0:
        ev["outcome"] = "exception"
        ev["event"]["response"]["status"] = 500
        ev["exceptions"] = [{"name": "PythonError", "timestamp": ts,
                             "message": "Traceback (most recent call last):\n  File "
                                        "\"/session/metadata/entry.py\", line 9, in fetch\n"
                                        "    from src.db import q\nModuleNotFoundError: No "
                                        "module named 'src'\n"}]
    return ev


class Pusher(threading.Thread):
    """Sends `rate` events per second to every tail connection that said {"debug":false}."""

    def __init__(self, ws, fake, rate):
        super().__init__(daemon=True)
        self.ws, self.fake, self.rate = ws, fake, rate
        self.sent = 0
        self.stop = False

    def run(self):
        tick = 0.05
        per_tick = self.rate * tick
        owed = {}
        n = 0
        while not self.stop:
            t0 = time.monotonic()
            for c in self.ws.open_conns():
                if not c.messages:
                    continue
                tid = c.request[0].split()[1].lstrip("/")
                script = self.fake.tails.get(tid, "?")
                owed[c] = owed.get(c, random.random()) + per_tick
                while owed[c] >= 1:
                    owed[c] -= 1
                    n += 1
                    try:
                        c.send(0x1, json.dumps(event(script, n)).encode())
                        self.sent += 1
                    except OSError:
                        break
            time.sleep(max(0.0, tick - (time.monotonic() - t0)))


def tree(pid):
    """pid and its descendants."""
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_s(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) / CLK
    except (OSError, IndexError, ValueError):
        return 0.0


def measure(roots, seconds):
    """Samples the summed RSS (KiB) of the trees of roots every second; returns peak, mean, CPU s,
    process count."""
    def cpu_all():
        return sum(cpu_s(p) for r in roots for p in tree(r))
    c0 = cpu_all()
    samples, procs = [], 0
    for _ in range(seconds):
        pids = [p for r in roots for p in tree(r)]
        procs = max(procs, len(pids))
        samples.append(sum(rss_kb(p) for p in pids))
        time.sleep(1)
    return max(samples), sum(samples) / len(samples), cpu_all() - c0, procs


def wait(cond, what, timeout):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            sys.exit("tail-bench: timed out waiting for %s" % what)
        time.sleep(0.2)


def connected(ws):
    return len([c for c in ws.open_conns() if c.messages])


def metric(port, name):
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
               if line.startswith(name + "{"))


def run_cfwatchd(args, fake, ws, tmp, scripts):
    cfw = os.path.join(args.build, "cfwatchd")
    token = write_token(os.path.join(tmp, "cf.token"))
    cfg = os.path.join(tmp, "cfwatchd.yaml")
    with open(cfg, "w") as f:
        f.write("state_dir: %s\nlisten: 127.0.0.1:0\nlog_level: info\n"
                "cloudflare:\n  account_id: %s\n  api_token_file: %s\n  base_url: %s\n"
                "sources:\n  - name: live\n    type: cloudflare-tail\n    scripts: [%s]\n"
                "incidents: {resolve_after: 1h}\n"
                % (os.path.join(tmp, "state"), ACCOUNT_ID, token, fake.base_url,
                   ", ".join(scripts)))
    log = open(os.path.join(tmp, "cfwatchd.log"), "w+")
    proc = subprocess.Popen([cfw, "-c", cfg], stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait(lambda: connected(ws) >= len(scripts), "cfwatchd's tails", 60)
        port = None
        wait(lambda: "port " in open(log.name).read(), "the listener", 30)
        text = open(log.name).read()
        port = int(text.split("(port ", 1)[1].split(")", 1)[0])
        time.sleep(args.warmup)
        m0 = metric(port, "cfwatchd_tail_messages_total")
        peak, mean, cpu, procs = measure([proc.pid], args.seconds)
        got = metric(port, "cfwatchd_tail_messages_total") - m0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    return peak, mean, cpu, procs, got


def run_wrangler(args, fake, ws, tmp, scripts):
    home = os.path.join(tmp, "home")
    os.makedirs(home, exist_ok=True)
    env = dict(os.environ, CLOUDFLARE_API_BASE_URL=fake.base_url, CLOUDFLARE_API_TOKEN=TOKEN,
               CLOUDFLARE_ACCOUNT_ID=ACCOUNT_ID, WRANGLER_SEND_METRICS="false",
               WRANGLER_WRITE_LOGS="false", HOME=home,
               XDG_CONFIG_HOME=os.path.join(home, ".config"), CI="true", NO_COLOR="1")
    procs, outs = [], []
    before = set(ws.open_conns())
    try:
        for s in scripts:
            out = open(os.path.join(tmp, "wrangler-%s.json" % s), "w")
            outs.append(out)
            procs.append(subprocess.Popen([args.wrangler, "tail", s, "--format", "json"],
                                          stdout=out, stderr=subprocess.DEVNULL, env=env,
                                          cwd=tmp, start_new_session=True))
        wait(lambda: len([c for c in ws.open_conns() if c.messages and c not in before])
             >= len(scripts), "the wrangler tails", 300)
        time.sleep(args.warmup)
        size0 = sum(os.path.getsize(o.name) for o in outs)
        peak, mean, cpu, nprocs = measure([p.pid for p in procs], args.seconds)
        size = sum(os.path.getsize(o.name) for o in outs) - size0
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        for o in outs:
            o.close()
    return peak, mean, cpu, nprocs, size


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=20)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--wrangler", default=os.path.join(
        os.environ.get("CFW_NPM_PREFIX", os.path.join(ROOT, "build-npm-cache")),
        "node_modules", ".bin", "wrangler"))
    ap.add_argument("--no-wrangler", action="store_true")
    args = ap.parse_args()

    if not os.path.isfile(os.path.join(args.build, "CMakeCache.txt")):
        subprocess.run(["cmake", "-S", ROOT, "-B", args.build, "-DCMAKE_BUILD_TYPE=Release",
                        "-DCFW_WERROR=ON"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", args.build, "-j2", "--target", "cfwatchd"], check=True,
                   stdout=subprocess.DEVNULL)
    scripts = ["py-bench-%02d" % i for i in range(args.workers)]
    fake = FakeCloudflare().start()
    ws = TailServer().start()
    fake.ws_port = ws.port
    pusher = Pusher(ws, fake, args.rate)
    pusher.start()
    tmp = tempfile.mkdtemp(prefix="cfw-tail-bench-")
    rows = []
    try:
        print("tail-bench: %d Workers x %g events/s, %d s warm-up, %d s measured"
              % (args.workers, args.rate, args.warmup, args.seconds), flush=True)
        r = run_cfwatchd(args, fake, ws, tmp, scripts)
        rows.append(("cfwatchd (cloudflare-tail, 1 process)", r, "%d messages" % r[4]))
        print("  cfwatchd done", flush=True)
        if args.no_wrangler:
            why = "--no-wrangler"
        elif not os.access(args.wrangler, os.X_OK):
            why = "no wrangler at %s (install: npm install --prefix build-npm-cache wrangler@4)" \
                % args.wrangler
        else:
            why = None
        if why is None:
            w = run_wrangler(args, fake, ws, tmp, scripts)
            rows.append(("%d x wrangler tail --format json" % args.workers, w,
                         "%d bytes of JSON written" % w[4]))
        else:
            print("  wrangler not measured: %s" % why)
    finally:
        pusher.stop = True
        ws.stop()
        fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print("| client | processes | RSS peak (MiB) | RSS mean (MiB) | CPU s in %d s | received |"
          % args.seconds)
    print("|---|---:|---:|---:|---:|---|")
    for name, (peak, mean, cpu, procs, _), got in rows:
        print("| %s | %d | %.1f | %.1f | %.1f | %s |" % (name, procs, peak / 1024, mean / 1024,
                                                       cpu, got))
    print("\nevents sent by the fake server in all: %d" % pusher.sent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
