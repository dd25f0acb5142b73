"""A harness that runs the real cfwatchd daemon for integration tests (standard library only).

What it does for a test:
  - writes a temporary configuration (from a dict, rendered as YAML, or from raw text);
  - creates an AF_UNIX datagram socket and starts `$CFWATCHD -c cfg` as a child with
    NOTIFY_SOCKET pointing at it, then waits for READY=1;
  - finds the HTTP listener (`listen: 127.0.0.1:0`, the port is read from the daemon's
    "listening on ... (port N)" log line) and queries /healthz, /metrics, /incidents;
  - collects stderr and sd_notify messages with their arrival times, in threads;
  - sends signals, stops the daemon and checks that it exited cleanly (status 0, STOPPING=1,
    no sanitizer report).

Environment: CFWATCHD (the binary), CFW_SOURCE_DIR (the repository), CFW_BUILD_DIR.

Each test file ends with run_tests(), which prints "N passed, M failed" and returns the exit
status (0, 1, or 77 when the whole file is skipped).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

SOURCE_DIR = os.environ.get(
    "CFW_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
BUILD_DIR = os.environ.get("CFW_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
CFWATCHD = os.path.abspath(os.environ.get("CFWATCHD") or os.path.join(BUILD_DIR, "cfwatchd"))
DATA_DIR = os.path.join(SOURCE_DIR, "tests", "data", "daemon")
SHARED_CORPUS = os.path.join(SOURCE_DIR, "tests", "data", "corpus")

# Upper bounds for waits. They only bound how long a broken daemon is waited for; nothing
# asserts that the daemon is fast. Sanitizer builds are slower, hence the generous values.
READY_TIMEOUT = 30.0
WAIT_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
HTTP_TIMEOUT = 20.0

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ERROR: UndefinedBehaviorSanitizer", "WARNING: AddressSanitizer")


class HarnessError(AssertionError):
    """A wait or a check of the harness failed; the message says what was expected."""


# ---- YAML rendering (the subset a configuration needs) ----

def _yaml_scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def _yaml_lines(v, indent):
    pad = " " * indent
    out = []
    if isinstance(v, dict):
        if not v:
            return [pad + "{}"]
        for k, item in v.items():
            if isinstance(item, (dict, list)) and item:
                out.append("%s%s:" % (pad, k))
                out.extend(_yaml_lines(item, indent + 2))
            elif isinstance(item, (dict, list)):
                out.append("%s%s: %s" % (pad, k, "{}" if isinstance(item, dict) else "[]"))
            else:
                out.append("%s%s: %s" % (pad, k, _yaml_scalar(item)))
        return out
    if isinstance(v, list):
        if not v:
            return [pad + "[]"]
        for item in v:
            if isinstance(item, (dict, list)) and item:
                sub = _yaml_lines(item, indent + 2)
                out.append(pad + "- " + sub[0][indent + 2:])
                out.extend(sub[1:])
            else:
                out.append(pad + "- " + (_yaml_scalar(item) if not isinstance(item, (dict, list))
                                         else ("{}" if isinstance(item, dict) else "[]")))
        return out
    return [pad + _yaml_scalar(v)]


def to_yaml(doc):
    """Renders dicts, lists and scalars as block YAML; every string is single-quoted."""
    return "\n".join(_yaml_lines(doc, 0)) + "\n"


# ---- Prometheus text parsing ----

_METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE_RE = re.compile(r"^(%s)(\{(?:%s(?:,%s)*,?)?\})? (\S+)( -?\d+)?$" % (_METRIC_NAME, _LABEL,
                                                                         _LABEL))
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
TYPE_RE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % _METRIC_NAME)
HELP_RE = re.compile(r"^# HELP (%s)( .*)?$" % _METRIC_NAME)


def _prom_value(s):
    if s in ("+Inf", "Inf"):
        return float("inf")
    if s == "-Inf":
        return float("-inf")
    if s == "NaN":
        return float("nan")
    return float(s)


def parse_metrics(text):
    """Parses Prometheus text exposition; raises HarnessError naming the first bad line.

    Returns {(name, ((label, value), ...)): float}.
    """
    samples = {}
    types = {}
    for n, line in enumerate(text.split("\n"), 1):
        if line == "":
            continue
        if line.startswith("#"):
            m = TYPE_RE.match(line)
            if m:
                if m.group(1) in types:
                    raise HarnessError("metrics line %d: second TYPE for %s" % (n, m.group(1)))
                types[m.group(1)] = m.group(2)
                continue
            if HELP_RE.match(line) or not line.startswith(("# HELP", "# TYPE")):
                continue
            raise HarnessError("metrics line %d is a malformed HELP/TYPE line: %r" % (n, line))
        m = SAMPLE_RE.match(line)
        if not m:
            raise HarnessError("metrics line %d is not `name{labels} value`: %r" % (n, line))
        try:
            value = _prom_value(m.group(3))
        except ValueError:
            raise HarnessError("metrics line %d: value %r is not a number" % (n, m.group(3)))
        labels = tuple(sorted(LABEL_RE.findall(m.group(2) or "")))
        key = (m.group(1), labels)
        if key in samples:
            raise HarnessError("metrics line %d: duplicate sample %r" % (n, line))
        samples[key] = value
    return samples


# ---- the notify socket ----

class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's notify socket."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []  # (monotonic time, {key: value}, raw text)
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            t = time.monotonic()
            text = data.decode("utf-8", "replace")
            fields = {}
            for line in text.split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields[k] = v
            with self.cond:
                self.messages.append((t, fields, text))
                self.cond.notify_all()

    def close(self):
        self.closed = True
        self.thread.join(2)
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def snapshot(self):
        with self.cond:
            return list(self.messages)

    def find(self, key, value=None, since=0.0):
        """Messages (t, fields, raw) with key (and value) received at or after since."""
        return [m for m in self.snapshot()
                if m[0] >= since and key in m[1] and (value is None or m[1][key] == value)]

    def wait(self, key, value=None, since=0.0, timeout=WAIT_TIMEOUT, count=1):
        """Waits for count messages with key (=value) since a time; returns the first one."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [m for m in self.messages
                         if m[0] >= since and key in m[1] and (value is None or m[1][key] == value)]
                if len(found) >= count:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HarnessError(
                        "no %s%s on the notify socket within %.0f s (got: %s)" %
                        (key, "=" + value if value is not None else "", timeout,
                         [m[2] for m in self.messages][-10:]))
                self.cond.wait(min(left, 0.5))


# ---- the daemon ----

class Daemon:
    """One cfwatchd daemon under test, in a temporary directory of its own.

    cfg: a dict rendered as YAML, or a str written as it is. Unless the dict sets them,
    state_dir (tmp/state) and listen (127.0.0.1:0) are filled in.
    """

    def __init__(self, tmpdir, cfg, env=None, log_level="info", name="cfwatchd",
                 watchdog_usec=None, watchdog_pid="self", args=None):
        self.tmp = tmpdir
        self.name = name
        self.cfg_path = os.path.join(tmpdir, name + ".yaml")
        self.state_dir = os.path.join(tmpdir, "state")
        self.env_extra = dict(env or {})
        self.log_level = log_level
        self.watchdog_usec = watchdog_usec
        self.watchdog_pid = watchdog_pid
        self.args = list(args or [])
        self.proc = None
        self.notify = None
        self.port = None
        self.lines = []  # (monotonic time, text) of stderr, over every run
        self.run_start = 0.0
        self.runs = 0
        self.stderr_cond = threading.Condition()
        self.stderr_thread = None
        self.returncodes = []
        self.write_config(cfg)

    # configuration

    def write_config(self, cfg):
        """(Re)writes the configuration file; returns its text."""
        if isinstance(cfg, dict):
            cfg = dict(cfg)
            cfg.setdefault("state_dir", self.state_dir)
            cfg.setdefault("listen", "127.0.0.1:0")
            self.state_dir = cfg["state_dir"]
            text = to_yaml(cfg)
        else:
            text = cfg
        tmp = self.cfg_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.cfg_path)
        self.cfg_text = text
        return text

    # process

    def start(self, wait_ready=True, timeout=READY_TIMEOUT):
        """Starts the daemon (again); waits for READY=1 and the listener's port."""
        if self.proc is not None and self.proc.poll() is None:
            raise HarnessError("daemon already running")
        self.runs += 1
        if self.notify is None:
            self.notify = NotifySocket(os.path.join(self.tmp, "notify.sock"))
        env = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM",
                  "LISTEN_FDS", "LISTEN_PID"):
            env.pop(k, None)
        env["NOTIFY_SOCKET"] = self.notify.path
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        env.update(self.env_extra)
        argv = [CFWATCHD, "-c", self.cfg_path]
        if self.log_level:
            argv += ["--log-level", self.log_level]
        argv += self.args
        if self.watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(self.watchdog_usec)
            if self.watchdog_pid == "self":
                # The child's pid is only known once it runs: a shell sets WATCHDOG_PID to its
                # own pid and execs cfwatchd, which keeps that pid.
                argv = ["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"',
                        "sh"] + argv
            elif self.watchdog_pid is not None:
                env["WATCHDOG_PID"] = str(self.watchdog_pid)
        self.run_start = time.monotonic()
        self.port = None
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env, cwd=self.tmp)
        self.stderr_thread = threading.Thread(target=self._read_stderr, args=(self.proc,),
                                              daemon=True)
        self.stderr_thread.start()
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def _read_stderr(self, proc):
        for raw in iter(proc.stderr.readline, b""):
            text = raw.decode("utf-8", "replace").rstrip("\n")
            with self.stderr_cond:
                self.lines.append((time.monotonic(), text))
                self.stderr_cond.notify_all()
        proc.stderr.close()

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            if self.notify.find("READY", "1", since=self.run_start):
                break
            if self.proc.poll() is not None:
                self._join_stderr()
                raise HarnessError("cfwatchd exited with status %s before READY=1; stderr:\n%s" %
                                   (self.proc.returncode, self.stderr_tail()))
            if time.monotonic() > deadline:
                raise HarnessError("no READY=1 within %.0f s; stderr:\n%s" %
                                   (timeout, self.stderr_tail()))
            time.sleep(0.05)
        m = self.wait_stderr(r"listening on \S+ \(port (\d+)\)", since=self.run_start,
                             timeout=max(1.0, deadline - time.monotonic()))
        self.port = int(m.group(1))

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if not self.alive():
            raise HarnessError("cannot send signal %d: cfwatchd is not running (status %s)" %
                               (sig, self.proc.returncode if self.proc else None))
        self.proc.send_signal(sig)

    def reload(self, timeout=WAIT_TIMEOUT):
        """SIGHUP; waits for RELOADING=1 and then READY=1 (whatever the outcome), and for the
        log line that ends a reload ("reloaded" or "reload rejected"). Returns the RELOADING=1
        message; its time [0] is after the signal was sent (stderr lines of the reload come
        after self.last_signal)."""
        t0 = time.monotonic()
        self.last_signal = t0
        self.signal(signal.SIGHUP)
        rel = self.notify.wait("RELOADING", "1", since=t0, timeout=timeout)
        self.notify.wait("READY", "1", since=rel[0], timeout=timeout)
        self.wait_stderr(r"reloaded|reload rejected", since=t0, timeout=timeout)
        return rel

    def stop(self, sig=None, expect_rc=0, timeout=STOP_TIMEOUT):
        """Stops with sig (default SIGTERM) and checks a clean exit: status expect_rc,
        STOPPING=1, no sanitizer report. Returns the exit status."""
        sig = signal.SIGTERM if sig is None else sig
        t0 = time.monotonic()
        self.signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._join_stderr()
            raise HarnessError("cfwatchd did not exit within %.0f s of signal %d; stderr:\n%s" %
                               (timeout, sig, self.stderr_tail()))
        self._join_stderr()
        self.returncodes.append(rc)
        if self.notify is not None:
            # the datagram is queued before the exit; give the reader thread a moment
            self.notify.wait("STOPPING", "1", since=t0, timeout=5)
        self.check_sanitizers()
        if expect_rc is not None and rc != expect_rc:
            raise HarnessError("cfwatchd exited with status %s after signal %d (expected %s); "
                               "stderr:\n%s" % (rc, sig, expect_rc, self.stderr_tail()))
        return rc

    def kill(self):
        """SIGKILL: no cleanup of any kind in the daemon."""
        self.signal(signal.SIGKILL)
        rc = self.proc.wait(STOP_TIMEOUT)
        self._join_stderr()
        self.returncodes.append(rc)
        return rc

    def _join_stderr(self):
        if self.stderr_thread is not None:
            self.stderr_thread.join(10)

    def close(self):
        """Kills whatever still runs and closes the notify socket; for tearDown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._join_stderr()
        if self.notify is not None:
            self.notify.close()
            self.notify = None
        # kept with the temporary directory (CFW_KEEP_TMP=1) for a look after a failure
        with open(os.path.join(self.tmp, self.name + ".stderr"), "w", encoding="utf-8") as f:
            f.write(self.stderr_text() + "\n")

    def check_sanitizers(self):
        text = self.stderr_text()
        for mark in SANITIZER_MARKS:
            if mark in text:
                raise HarnessError("sanitizer report on stderr (%s):\n%s" %
                                   (mark, self.stderr_tail(80)))

    # stderr

    def stderr_text(self, since=0.0):
        with self.stderr_cond:
            return "\n".join(t for (ts, t) in self.lines if ts >= since)

    def stderr_tail(self, n=40):
        with self.stderr_cond:
            return "\n".join("    " + t for (ts, t) in self.lines[-n:])

    def wait_stderr(self, pattern, since=0.0, timeout=WAIT_TIMEOUT):
        """Waits for a stderr line matching the regex; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.stderr_cond:
            while True:
                for ts, text in self.lines:
                    if ts >= since:
                        m = rx.search(text)
                        if m:
                            return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HarnessError("no stderr line matching %r within %.0f s; stderr:\n%s" %
                                       (pattern, timeout, "\n".join(
                                           "    " + t for (ts, t) in self.lines[-40:])))
                self.stderr_cond.wait(min(left, 0.5))

    # HTTP

    def url(self, path):
        if self.port is None:
            raise HarnessError("the listener's port is not known (daemon not ready)")
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def http(self, path, method="GET", timeout=HTTP_TIMEOUT):
        """Returns (status, headers, body bytes); HTTP errors are returned, not raised."""
        req = urllib.request.Request(self.url(path), method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def incidents(self):
        status, headers, body = self.http("/incidents")
        if status != 200:
            raise HarnessError("/incidents answered %d: %r" % (status, body[:200]))
        return json.loads(body.decode("utf-8"))

    def incident_map(self):
        """{key: incident} from /incidents."""
        return {i["key"]: i for i in self.incidents()["incidents"]}

    def metrics(self):
        status, headers, body = self.http("/metrics")
        if status != 200:
            raise HarnessError("/metrics answered %d: %r" % (status, body[:200]))
        return parse_metrics(body.decode("utf-8"))

    def metric(self, name, default=None, **labels):
        """One sample's value, or default when the sample is absent."""
        key = (name, tuple(sorted(labels.items())))
        return self.metrics().get(key, default)

    # waiting

    def wait_for(self, fn, what, timeout=WAIT_TIMEOUT, interval=0.1):
        """Polls fn() until it returns a true value, which is returned. The daemon exiting or the
        timeout raise HarnessError with what was awaited and the last value."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                self._join_stderr()
                raise HarnessError("cfwatchd exited (status %s) while waiting for %s; stderr:\n%s"
                                   % (self.proc.returncode, what, self.stderr_tail()))
            try:
                last = fn()
            except (OSError, ValueError, urllib.error.URLError) as e:
                last = e
            else:
                if last:
                    return last
            if time.monotonic() > deadline:
                raise HarnessError("timed out after %.0f s waiting for %s (last: %s); stderr:\n%s"
                                   % (timeout, what, _short(last), self.stderr_tail()))
            time.sleep(interval)

    def wait_incident(self, key, state="open", timeout=WAIT_TIMEOUT, min_count=1):
        """Waits until /incidents shows key in state with at least min_count; returns it."""
        def probe():
            inc = self.incident_map().get(key)
            if inc and inc["state"] == state and inc["count"] >= min_count:
                return inc
            return None
        return self.wait_for(probe, "incident %s in state %s (count >= %d)" %
                             (key, state, min_count), timeout)

    def wait_metric(self, name, value, timeout=WAIT_TIMEOUT, **labels):
        """Waits until a sample is at least value; returns the sample's value."""
        last = [None]

        def probe():
            v = last[0] = self.metric(name, **labels)
            return (v,) if v is not None and v >= value else None
        try:
            return self.wait_for(probe, "%s%s >= %s" % (name, labels or "", value), timeout)[0]
        except HarnessError as e:
            raise HarnessError("%s is %s, not >= %s: %s" % (name, last[0], value, e)) from None

def _short(v, n=300):
    s = repr(v)
    return s if len(s) <= n else s[:n] + "..."


def pids_alive(pids):
    """The pids of the list that still exist and are not zombies."""
    alive = []
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid, encoding="utf-8") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def wait_until(fn, what, timeout=WAIT_TIMEOUT, interval=0.1):
    """Polls fn() (not tied to a daemon) until true; returns its value or raises HarnessError."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise HarnessError("timed out after %.0f s waiting for %s (last: %s)" %
                               (timeout, what, _short(last)))
        time.sleep(interval)


# ---- the capture server (tests/integration/lib/capture_server.py) ----

def start_capture():
    """Starts a CaptureServer on loopback ephemeral ports; stop it with .stop()."""
    from capture_server import CaptureServer
    return CaptureServer().start()


def alerts(cap, path):
    """Notifications received on path as (event, incident key, payload) tuples, in order.

    Webhook payloads are {"event": "open"|"reminder"|"resolve"|"digest", "incident": {...}} or,
    for a digest, {"items": [{"event", "incident"}]}: digest items are listed one by one.
    """
    out = []
    for r in cap.requests(path):
        try:
            doc = json.loads(r["body"])
        except ValueError:
            out.append(("?", None, r["body"]))
            continue
        if doc.get("event") == "digest":
            for item in doc.get("items", []):
                out.append((item.get("event"), (item.get("incident") or {}).get("key"), doc))
        else:
            out.append((doc.get("event"), (doc.get("incident") or {}).get("key"), doc))
    return out


def wait_alert(cap, path, event, key, timeout=15.0, daemon=None, count=1):
    """Waits until the capture server has count notifications (event, key) on path.

    The message of the failure tells apart "nothing delivered at all" from "other
    notifications arrived", and shows what /incidents says about the key when a daemon is given.
    """
    deadline = time.monotonic() + timeout
    while True:
        got = [a for a in alerts(cap, path) if a[0] == event and a[1] == key]
        if len(got) >= count:
            return got
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    seen = [(a[0], a[1]) for a in alerts(cap, path)]
    state = ""
    if daemon is not None and daemon.alive():
        try:
            inc = daemon.incident_map().get(key)
            state = "; /incidents shows %s" % (
                "%s state=%s count=%s" % (key, inc["state"], inc["count"]) if inc else
                "no incident %s" % key)
        except (OSError, ValueError, HarnessError, urllib.error.URLError) as e:
            state = "; /incidents: %s" % e
    if not cap.requests():
        why = ("the capture server received no request at all within %.0f s: the daemon "
               "does not deliver notifications to the configured webhook sink" % timeout)
    else:
        why = "received instead: %s" % seen
    raise HarnessError("expected %d '%s' notification(s) for %s at %s; %s%s" %
                       (count, event, key, path, why, state))


# ---- numbered lines for exactly-once checks ----
#
# A writer appends `<time> INFO req SEQ <n> ok` lines with n = 0, 1, 2, ... in batches, at well
# over 5,000 lines/s. The daemon under test has the rule SEQ_RULE, which keys one incident per n,
# so /incidents shows which numbers were read and how often (count).

SEQ_RULE = {
    "id": "seq",
    "pattern": r"SEQ (?<n>\d+) ok",
    "severity": "info",
    "key": "{rule}/{n}",
    "title": "line {n}",
    "resolve_after": "1h",
    "repeat_interval": "24h",
}

BATCH = 100           # lines per write(2)
BATCH_INTERVAL = 0.01  # seconds between batches: about 10,000 lines/s


def seq_line(n):
    return "2026-01-01T00:00:00.000Z INFO req SEQ %d ok\n" % n


def seq_keys(incidents):
    """{n: count} of the seq incidents in an /incidents document."""
    out = {}
    for inc in incidents["incidents"]:
        if inc["rule"] == "seq":
            out[int(inc["fields"]["n"])] = inc["count"]
    return out


def check_exactly_once(keys, total):
    """Returns a list of problems: numbers missing, read twice, or never written."""
    problems = []
    missing = [n for n in range(total) if n not in keys]
    twice = sorted(n for n, c in keys.items() if c != 1)
    extra = sorted(n for n in keys if n >= total)
    if missing:
        problems.append("%d lines never read, e.g. %s" % (len(missing), missing[:10]))
    if twice:
        problems.append("%d lines read more than once, e.g. %s" %
                        (len(twice), [(n, keys[n]) for n in twice[:10]]))
    if extra:
        problems.append("numbers never written: %s" % extra[:10])
    return problems


class Writer:
    """Appends numbered lines to a file (O_APPEND) in a thread.

    segments: how many lines to write before each call of between(writer, k) (k = 0, 1, ...);
    between() rotates the file and may reopen it through reopen(). The rate is measured over
    the writing only (time spent in between() is left out).
    """

    def __init__(self, path, segments, between=None, start=0):
        self.path = path
        self.segments = list(segments)
        self.between = between
        self.next = start
        self.fd = None
        self.error = None
        self.write_time = 0.0
        self.lines = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def open(self):
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def reopen(self):
        """Closes the current file and opens (creates) the path again."""
        os.close(self.fd)
        self.open()

    def write_lines(self, count):
        """Writes count lines in batches; returns when they are written."""
        left = count
        while left > 0:
            n = min(BATCH, left)
            t0 = time.monotonic()
            os.write(self.fd, "".join(seq_line(self.next + i) for i in range(n)).encode())
            self.write_time += time.monotonic() - t0
            self.next += n
            self.lines += n
            left -= n
            if left > 0:
                time.sleep(BATCH_INTERVAL)
                self.write_time += BATCH_INTERVAL

    def _run(self):
        try:
            if self.fd is None:
                self.open()
            for k, count in enumerate(self.segments):
                self.write_lines(count)
                if self.between is not None and k + 1 < len(self.segments):
                    self.between(self, k)
        except Exception as e:  # reported by the test through .error
            self.error = e
        finally:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
            self.done.set()

    def start(self):
        self.thread.start()
        return self

    def join(self, timeout=120):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError("the writer did not finish within %d s" % timeout)
        if self.error is not None:
            raise self.error

    @property
    def rate(self):
        return self.lines / self.write_time if self.write_time > 0 else float("inf")


# ---- test case base and runner ----

class DaemonTestCase(unittest.TestCase):
    """Gives each test a temporary directory and closes every daemon it made."""

    maxDiff = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cfwd-it-")
        self._daemons = []

    def tearDown(self):
        for d in self._daemons:
            d.close()
        if os.environ.get("CFW_KEEP_TMP"):
            print("  (kept %s)" % self.tmp, file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def daemon(self, cfg, **kw):
        d = Daemon(self.tmp, cfg, **kw)
        self._daemons.append(d)
        return d

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)


class LogCase(DaemonTestCase):
    """Adds an empty log file, self.log (LOG_NAME in the test's directory), and append()."""

    LOG_NAME = "app.log"

    def setUp(self):
        super().setUp()
        self.log = self.path(self.LOG_NAME)
        open(self.log, "w").close()

    def append(self, text):
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(text)


class LogCaptureCase(LogCase):
    """Adds a capture server, self.cap, stopped at cleanup."""

    def setUp(self):
        super().setUp()
        self.cap = start_capture()
        self.addCleanup(self.cap.stop)

    def hook_bodies(self, event=None):
        """The JSON bodies /hook received, in order (of one event when given)."""
        out = [json.loads(r["body"]) for r in self.cap.requests("/hook")]
        return [b for b in out if event is None or b.get("event") == event]


def append_once(path, text):
    """Appends text to path with one write(2) on an O_APPEND descriptor (creating the file)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def loopback_port():
    """A loopback TCP port that was free a moment ago: nothing listens on it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def skip_file(reason):
    """Whole-file skip: prints the reason and returns 77."""
    print("SKIPPED: %s" % reason)
    print("0 passed, 0 failed")
    return 77


def run_tests(module_name):
    """Runs the unittest cases of a module; prints 'N passed, M failed'; returns the status."""
    if not os.access(CFWATCHD, os.X_OK):
        print("cfwatchd binary not found: %s (set CFWATCHD)" % CFWATCHD)
        print("0 passed, 1 failed")
        return 1
    module = sys.modules[module_name]
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    if len(sys.argv) > 1:  # optional name filter
        suite = unittest.TestSuite(t for group in suite for case in group for t in [case]
                                   if any(a in t.id() for a in sys.argv[1:]))
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and result.testsRun > 0 else 1
