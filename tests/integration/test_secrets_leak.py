#!/usr/bin/env python3
"""The secret registry end to end (issue 17, item 4): no configured secret leaves the process.

A distinct secret sits in every credential slot (the Cloudflare API token from a file, the
Slack webhook URL from a file, the PagerDuty routing key from a file, the webhook's HMAC secret
from a file, its Authorization header from ${ENV} and a literal X-Api-Key header, Alertmanager
basic auth in the URL, basic auth of a webhook that cannot be reached, the Logpush token from a
file, an exec command's EXEC_API_TOKEN). Then every error path is driven:

  - the fake Cloudflare API refuses every call (403, 500, 401) with an errors[].message quoting
    the Authorization header it got, the token raw, percent-encoded and base64, once across
    the 200-byte cut of the message: the pollers go down with that as their reason;
  - every receiver answers 500 and then 400 with an echo of the request: its headers (the
    Alertmanager's `Authorization: Basic` libcurl made from the URL, decoded too), its path
    (the Slack token), the routing key of the body, in several encodings: retried, then
    dead-lettered with the answer as the reason;
  - an exec command prints secrets on stderr and exits, again and again: source-down;
  - Logpush gets the token with a byte added (401), and then a batch whose exception quotes
    secrets; a watched file has a line full of them;
  - a reload that is rejected and one that succeeds, and more echoes after each;
  - --test-alert (the answer printed), --once (text and JSON reports), --check-config.

Then the daemon's stderr and stdout, GET /incidents and /metrics, every file name and content
under the state directory (state.json, outbox/, dead/), the output of the commands above, and
every body every receiver got (a receiver's own credential aside: the routing key is in
PagerDuty's body) are searched for every form of every secret: raw, percent-encoded, base64
and base64url with and without padding, the basic-auth pairs, and any 12 characters of a
secret's random part. Nothing may be found; and the stars that replaced them are checked to be
where the echoes went, so the test cannot pass by losing the echoes.

Real processes and loopback HTTP only. Ends with "N passed, M failed".
"""
import base64
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import daemon as daemon_mod  # noqa: E402
from daemon import DaemonTestCase, loopback_port, run_tests, wait_until  # noqa: E402
from fake_cloudflare import FakeCloudflare, error_envelope  # noqa: E402
from faults import WrappedDaemon, logpush, trace_event  # noqa: E402

# The random parts; each secret below is built from one.
CF_TOKEN = "cfapi-Qm7Zr2Lx9Vw4Tn8Ks3Hd"
SLACK_TOKEN = "xoxs-Bk4Wn9Cz2Pq7Lr5Mv8Tj"
PD_KEY = "pdkey-Fh6Jd1Sy8Xc3Vb5Ng0Ra"
HOOK_SECRET = "hmac-Ep2Uw7Io4Kt9Gz6Hy1Lq"
HOOK_BEARER = "bearer-Rt5Yv2Nm8Qx3Jc7Wd0Ls"
HOOK_APIKEY = "apikey-Zx4Cv8Bn2Mq6Wr9Ty1Ui"
AM_PASS = "ampass-Lk3Jh7Gf1Ds5Aq9Wz2Xe"
DOWN_PASS = "dnpass-Po8Iu3Yt6Re1Wq4Ea7Sd"
LP_TOKEN = "lptoken-Mn5Bv9Cx2Zl6Kj3Hg8Fd"
EXEC_TOKEN = "exectok-Qa1Ws6Ed3Rf8Tg2Yh5Uj"
CORES = (CF_TOKEN, SLACK_TOKEN, PD_KEY, HOOK_SECRET, HOOK_BEARER, HOOK_APIKEY, AM_PASS,
         DOWN_PASS, LP_TOKEN, EXEC_TOKEN)
MISSING = "ModuleNotFoundError: No module named 'src'"


def b64(s, url=False, pad=True):
    enc = base64.urlsafe_b64encode if url else base64.b64encode
    out = enc(s.encode()).decode()
    return out if pad else out.rstrip("=")


def forms(secret):
    """The forms of a secret the test looks for."""
    out = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote(secret, safe="-._~")}
    for url in (False, True):
        for pad in (False, True):
            out.add(b64(secret, url, pad))
    return out


def secret_file(path, value):
    with open(path, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)
    return path


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a client that gave up (the daemon stopping mid-answer) is not an error here
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class EchoReceivers:
    """Loopback receivers that echo each request in their answer: 500 the first time a path is
    asked, then 400 (so every notification is retried once, then dead-lettered). Which echoed
    item comes first rotates, so each one gets within the 200 bytes of a quoted answer."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []  # (time, method, path, headers, body text)
        self.server = None

    def start(self):
        self.server = _Server(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    @property
    def port(self):
        return self.server.server_address[1]

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def snapshot(self, path=None, since=0.0):
        with self.lock:
            return [r for r in self.requests
                    if r[0] >= since and (path is None or r[2].startswith(path))]

    def echo(self, n, path, headers, body):
        items = ["path %s (%s)" % (path, urllib.parse.quote(path, safe=""))]
        auth = headers.get("Authorization", "")
        if auth:
            cred = auth.split(" ", 1)[-1]
            items.append("Authorization: %s" % auth)
            items.append("credential %s b64 %s pct %s" % (cred, b64(cred),
                                                          urllib.parse.quote(cred, safe="")))
            if auth.startswith("Basic "):
                items.append("decoded %s" % base64.b64decode(cred).decode("utf-8", "replace"))
        for name in ("X-Api-Key",):
            if headers.get(name):
                items.append("%s: %s b64 %s" % (name, headers[name], b64(headers[name])))
        try:
            key = json.loads(body).get("routing_key")
        except (ValueError, AttributeError):
            key = None
        if key:
            items.append("routing_key %s b64url %s" % (key, b64(key, True, False)))
        k = n % len(items)
        return "echo: " + " | ".join(items[k:] + items[:k])

    def _handler(self):
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                headers = {k: v for k, v in self.headers.items()}
                with rec.lock:
                    n = sum(1 for r in rec.requests if r[2] == self.path)
                    rec.requests.append((time.monotonic(), "POST", self.path, headers, body))
                data = rec.echo(n, self.path, headers, body).encode()
                self.send_response(500 if n == 0 else 400)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


class EchoingCloudflare(FakeCloudflare):
    """Every call refused, the message quoting the Authorization header it got."""

    def _serve(self, method, raw_path, rec):
        auth = rec["headers"].get("authorization", "")
        token = auth.split(" ", 1)[-1]
        if "/deployments" in raw_path:
            return 403, error_envelope(10000, "Authentication error: %s is not valid for this "
                                              "account" % auth), {}
        if "/observability/" in raw_path:
            # the token across the 200-byte cut of a quoted message
            return 500, error_envelope(10001, "." * 185 + " got " + auth), {}
        return 401, error_envelope(10000, "token %s (%s) refused" % (
            urllib.parse.quote(token, safe=""), b64(token))), {}


class SecretsLeakCase(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.rx = EchoReceivers().start()
        self.addCleanup(self.rx.stop)
        self.fake = EchoingCloudflare(token=CF_TOKEN).start()
        self.addCleanup(self.fake.stop)
        self.slack_url = self.rx.url("/services/T000/B000/" + SLACK_TOKEN)
        self.am_url = "http://amuser:%s@127.0.0.1:%d/am" % (AM_PASS, self.rx.port)
        self.down_url = "http://downuser:%s@127.0.0.1:%d/x?api_key=%s" % (
            DOWN_PASS, loopback_port(), DOWN_PASS)
        self.log = self.path("app.log")
        self.leak = "%s %s %s %s" % (self.slack_url, LP_TOKEN, PD_KEY, HOOK_APIKEY)
        with open(self.log, "w", encoding="utf-8") as f:
            f.write("BOOM file hmac %s am %s cf %s\n" % (HOOK_SECRET, AM_PASS, CF_TOKEN))
        # every form of every secret; the basic-auth pairs as libcurl sends them
        self.needles = set()
        for s in CORES + (self.slack_url, "amuser:" + AM_PASS, "downuser:" + DOWN_PASS,
                          "Bearer " + HOOK_BEARER, "Bearer " + CF_TOKEN):
            self.needles |= forms(s)
        for core in CORES:
            for i in range(len(core) - 11):
                self.needles.add(core[i:i + 12])

    def config(self, broken=False):
        cfg = {
            "cloudflare": {"account_id": self.fake.account_id,
                           "api_token_file": secret_file(self.path("cf_token"), CF_TOKEN),
                           "base_url": self.fake.base_url, "timeout": "5s"},
            "sources": [
                {"name": "app", "type": "file", "path": self.log, "start_at": "beginning",
                 "format": "lines"},
                {"name": "lp", "type": "logpush",
                 "token_file": secret_file(self.path("lp_token"), LP_TOKEN)},
                {"name": "cmd", "type": "exec",
                 "command": ["/bin/sh", "-c", 'echo "BOOM exec token=$EXEC_API_TOKEN and $LEAK" '
                             '>&2; echo "out $LEAK"; exit 3'],
                 "env": {"EXEC_API_TOKEN": EXEC_TOKEN, "LEAK": self.leak},
                 "restart_delay": "300ms", "restart_delay_max": "600ms",
                 "down_after_failures": 2},
                {"name": "cf-deploys", "type": "cloudflare-deployments", "scripts": ["py-api"],
                 "interval": "1s"},
                {"name": "cf-obs", "type": "cloudflare-observability", "scripts": ["py-api"],
                 "interval": "1s"},
                {"name": "cf-builds", "type": "cloudflare-builds", "scripts": ["tag-py"],
                 "interval": "1s"},
            ],
            "rules": {"custom": [{"id": "boom", "pattern": r"BOOM (?<what>\w+) (?<rest>.*)",
                                  "severity": "critical", "key": "{rule}/{what}",
                                  "title": "boom {what}: {rest}"}]},
            "incidents": {"resolve_after": "1h"},
            "outbox": {"backoff_base": "100ms", "backoff_max": "200ms"},
            "sinks": [
                {"name": "slack", "type": "slack", "rate_limit": {"burst": 0},
                 "url_file": secret_file(self.path("slack_url"), self.slack_url)},
                {"name": "pd", "type": "pagerduty", "url": self.rx.url("/pd"),
                 "rate_limit": {"burst": 0},
                 "routing_key_file": secret_file(self.path("pd_key"), PD_KEY)},
                {"name": "hook", "type": "webhook", "url": self.rx.url("/hook"),
                 "rate_limit": {"burst": 0},
                 "secret_file": secret_file(self.path("hook_secret"), HOOK_SECRET),
                 "headers": {"Authorization": "${CFW_TEST_BEARER}", "X-Api-Key": HOOK_APIKEY}},
                {"name": "am", "type": "alertmanager", "urls": [self.am_url],
                 "rate_limit": {"burst": 0}},
                {"name": "down", "type": "webhook", "url": self.down_url, "timeout": "1s"},
                {"name": "out", "type": "stdout"},
            ],
        }
        if broken:
            cfg["bogus"] = "a key the configuration does not know"
        return cfg

    def find(self, where, text):
        hits = sorted(n for n in self.needles if n in text)
        if hits:
            i = text.find(hits[0])
            self.fail("%s holds a secret (%d forms, e.g. %r in ...%r...)" %
                      (where, len(hits), hits[0], text[max(0, i - 80):i + 80]))

    def dead_files(self, d):
        dead = os.path.join(d.state_dir, "dead")
        return os.listdir(dead) if os.path.isdir(dead) else []

    def test_no_secret_leaves_the_process(self):
        t_start = time.monotonic()
        stdout_path = self.path("stdout.txt")
        wrapper = self.path("cfwatchd-stdout.sh")
        with open(wrapper, "w", encoding="utf-8") as f:
            f.write("#!/bin/sh\nexec '%s' \"$@\" >>'%s'\n" % (daemon_mod.CFWATCHD, stdout_path))
        os.chmod(wrapper, 0o755)
        env = {"CFW_TEST_BEARER": "Bearer " + HOOK_BEARER}
        d = WrappedDaemon(self.tmp, self.config(), wrapper, env=env, log_level="debug")
        self._daemons.append(d)
        d.start()

        # Logpush: the token with a byte added is refused; a batch quoting secrets is taken
        self.assertEqual(logpush(d.port, "lp", LP_TOKEN + "x", [trace_event("r0", "s", MISSING)]),
                         401)
        self.assertEqual(logpush(d.port, "lp", LP_TOKEN, [trace_event(
            "r1", "s", "%s (token %s, hook %s)" % (MISSING, CF_TOKEN, HOOK_BEARER))]), 200)

        # every error path has happened
        incs = d.wait_for(lambda: (lambda m: m if all(k in m for k in (
            "source-down/cf-deploys", "source-down/cf-obs", "source-down/cf-builds",
            "source-down/cmd", "boom/file", "boom/exec", "py-src-import/s/src")) else None)(
                d.incident_map()), "every incident")
        for key in ("source-down/cf-deploys", "source-down/cf-obs", "source-down/cf-builds"):
            reason = incs[key]["fields"]["reason"]
            self.assertIn("***", reason, "%s: the API's echo was not in the reason" % key)
        self.assertIn("***", incs["boom/exec"]["fields"]["rest"])
        self.assertIn("***", incs["boom/file"]["title"])
        d.wait_for(lambda: all(d.metric("cfwatchd_notifications_dead_total", 0, sink=s) >= 1
                               for s in ("slack", "pd", "hook", "am")), "dead letters")

        # a rejected reload keeps the running secrets registered; so does one that succeeds
        d.write_config(self.config(broken=True))
        d.reload()
        self.assertRegex(d.stderr_text(since=d.last_signal), r"reload rejected")
        with open(self.log, "a", encoding="utf-8") as f:
            f.write("BOOM rejected key %s bearer %s\n" % (PD_KEY, HOOK_BEARER))
        dead = len(self.dead_files(d))
        wait_until(lambda: len(self.dead_files(d)) >= dead + 4,
                   "dead letters after the rejected reload")
        d.write_config(self.config())
        d.reload()
        self.assertRegex(d.stderr_text(since=d.last_signal), r"reloaded")
        with open(self.log, "a", encoding="utf-8") as f:
            f.write("BOOM reloaded slack %s am %s\n" % (self.slack_url, AM_PASS))
        dead = len(self.dead_files(d))
        wait_until(lambda: len(self.dead_files(d)) >= dead + 4,
                   "dead letters after the reload")

        # what can be read while it runs
        outputs = {"/incidents": d.http("/incidents")[2].decode(),
                   "/metrics": d.http("/metrics")[2].decode()}
        run = [daemon_mod.CFWATCHD, "-c", d.cfg_path]
        penv = dict(os.environ, **env)
        for args in (["--test-alert", "hook", "--notify-timeout", "5s"],
                     ["--once", self.log], ["--once", "--format", "json", self.log],
                     ["--check-config"]):
            out = subprocess.run(run + args, capture_output=True, text=True, env=penv,
                                 timeout=60)
            outputs[" ".join(args[:3])] = out.stdout + out.stderr
        self.assertIn("echo: ", outputs["--test-alert hook --notify-timeout"])
        self.assertIn("***", outputs["--test-alert hook --notify-timeout"])
        self.assertIn("***", outputs["--once " + self.log])
        d.stop()

        # the stars are where the echoes went
        log = d.stderr_text()
        self.assertRegex(log, r"sink=am .*dead-lettered .*echo: .*\*\*\*")
        self.assertRegex(log, r"sink=slack .*dead-lettered .*echo: .*\*\*\*")
        # ... and only there: names and words of the configuration are left alone
        self.assertRegex(log, r"sink=hook .*dead-lettered .*echo: .*\*\*\*")
        self.assertRegex(log, r"sink=pd .*dead-lettered .*echo: .*path /pd ")
        self.assertRegex(log, r"source=cf-obs: Cloudflare API: 500 .*got Bearer \*\*\*")
        basic = [r for r in self.rx.snapshot("/am")
                 if r[3].get("Authorization") == "Basic " + b64("amuser:" + AM_PASS)]
        self.assertTrue(basic, "Alertmanager got no basic auth: the test proves nothing")

        # ... and no secret anywhere
        self.find("the log", log)
        with open(stdout_path, encoding="utf-8", errors="replace") as f:
            stdout = f.read()
        self.assertIn("boom", stdout)
        self.find("stdout", stdout)
        for where, text in outputs.items():
            self.find(where, text)
        files = 0
        for root, dirs, names in os.walk(d.state_dir):
            for name in names + dirs:
                self.find("the name %s" % os.path.join(root, name), name)
            for name in names:
                files += 1
                with open(os.path.join(root, name), "rb") as f:
                    self.find(os.path.join(root, name), f.read().decode("latin-1"))
        self.assertGreaterEqual(files, 10)  # state.json and the dead letters at least
        for r in self.rx.snapshot():
            # PagerDuty's routing key is in its own body, by design
            body = r[4].replace(PD_KEY, "<its own key>") if r[2] == "/pd" else r[4]
            self.find("a body sent to %s" % r[2], body)
        for r in self.fake.snapshot():
            self.find("a body sent to the Cloudflare API", r["body"])
        print("  (ran %.1f s)" % (time.monotonic() - t_start), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
