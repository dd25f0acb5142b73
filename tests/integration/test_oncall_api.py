#!/usr/bin/env python3
"""On call (issue 18): silences and acknowledgements over the HTTP API.

- A silence (matchers on rule, script, any field; regex) keeps matching incidents from being
  sent while they are still tracked and listed; it expires (DELETE or its end time) and then
  new openings are sent again. Silences survive a SIGKILL (journaled) and a restart.
- An acknowledgement stops reminders and is sent: webhook event "acknowledge", PagerDuty
  event_action "acknowledge" with the alert's dedup_key.
- Writes need the API token (401 without, 403 when none is configured); bad bodies get 400
  naming the field; GET /api/v1/incidents filters by state, rule, script and severity.

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import CFWATCHD, LogCaptureCase, run_tests, wait_until  # noqa: E402

TOKEN = "api-token-0123456789abcdef"


class Base(LogCaptureCase):
    def setUp(self):
        super().setUp()
        token_file = self.path("api.token")
        with open(token_file, "w", encoding="utf-8") as f:
            f.write(TOKEN + "\n")
        os.chmod(token_file, 0o600)
        self.cfg = {
            "sources": [{"name": "app", "type": "file", "path": self.log}],
            "rules": {"custom": [
                {"id": "boom", "pattern": r"BOOM (?<what>\w+) in (?<script>[\w-]+)",
                 "key": "{rule}/{script}/{what}", "severity": "error",
                 "repeat_interval": "2s", "resolve_after": "1h"}]},
            "api": {"token_file": token_file},
            "sinks": [{"name": "hook", "type": "webhook", "url": self.cap.url("/hook"),
                       "rate_limit": {"burst": 1000, "per": "1s"}},
                      {"name": "pd", "type": "pagerduty", "routing_key": "R" * 32,
                       "url": self.cap.url("/pd")}],
        }

    def api(self, d, method, path, body=None, token=TOKEN):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(d.url(path), data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token is not None:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def hook(self, event=None):
        return self.hook_bodies(event)

    def keys(self, event):
        return [b["incident"]["key"] for b in self.hook(event)]



class ApiCase(Base):
    def test_silence_suppresses_then_expires(self):
        d = self.daemon(self.cfg)
        d.start()
        st, sil = self.api(d, "POST", "/api/v1/silences", {
            "matchers": [{"name": "script", "value": "py-api"},
                         {"name": "what", "value": "disk|net", "regex": True}],
            "duration": "1h", "created_by": "alice", "comment": "maintenance"})
        self.assertEqual(st, 201, sil)
        self.assertEqual(sil["state"], "active")
        self.append("BOOM disk in py-api\nBOOM cpu in py-api\nBOOM disk in py-web\n")
        for k in ("boom/py-api/disk", "boom/py-api/cpu", "boom/py-web/disk"):
            d.wait_incident(k)
        wait_until(lambda: len(self.keys("open")) >= 2, "the unsilenced opens")
        time.sleep(1)
        self.assertEqual(sorted(self.keys("open")), ["boom/py-api/cpu", "boom/py-web/disk"])
        # tracked and listed, with the silence that holds it
        st, lst = self.api(d, "GET", "/api/v1/incidents?script=py-api&rule=boom", token=None)
        self.assertEqual(st, 200)
        by_key = {i["key"]: i for i in lst["incidents"]}
        self.assertEqual(set(by_key), {"boom/py-api/disk", "boom/py-api/cpu"})
        self.assertEqual(by_key["boom/py-api/disk"]["silenced_by"], sil["id"])
        self.assertTrue(by_key["boom/py-api/disk"]["muted"])
        self.assertGreaterEqual(d.metric("cfwatchd_notifications_silenced_total"), 1)
        self.assertEqual(d.metric("cfwatchd_silences_active"), 1)
        # survives a SIGKILL: journaled when added
        d.kill()
        d.start()
        st, sils = self.api(d, "GET", "/api/v1/silences", token=None)
        self.assertEqual([s["id"] for s in sils["silences"]], [sil["id"]])
        self.append("BOOM net in py-api\n")
        d.wait_incident("boom/py-api/net")
        time.sleep(1)
        self.assertNotIn("boom/py-api/net", self.keys("open"))
        # expired: a new opening is sent again
        # changed through the API: new matchers replace the old ones, a bad field is a 400
        st, ch = self.api(d, "POST", "/api/v1/silences",
                          {"id": sil["id"], "matchers": [{"name": "script", "value": "py-api"}]})
        self.assertEqual((st, ch["id"], len(ch["matchers"])), (200, sil["id"], 1))
        st, bad = self.api(d, "POST", "/api/v1/silences", {"id": sil["id"], "duration": "soon"})
        self.assertEqual(st, 400)
        st, _ = self.api(d, "POST", "/api/v1/silences", {"id": "0" * 32, "comment": "x"})
        self.assertEqual(st, 404)
        st, gone = self.api(d, "DELETE", "/api/v1/silences/" + sil["id"])
        self.assertEqual((st, gone["state"]), (200, "expired"))
        self.assertEqual(self.api(d, "DELETE", "/api/v1/silences/" + sil["id"])[0], 404)
        self.append("BOOM io in py-api\n")
        wait_until(lambda: "boom/py-api/io" in self.keys("open"), "the open after the expiry")
        d.stop()

    def test_ack_stops_reminders_and_tells_pagerduty(self):
        d = self.daemon(self.cfg)
        d.start()
        self.append("BOOM disk in py-api\n")
        key = "boom/py-api/disk"
        d.wait_incident(key)
        wait_until(lambda: self.keys("open") == [key], "the open")
        path = "/api/v1/incidents/%s/ack" % urllib.parse.quote(key, safe="")
        st, inc = self.api(d, "POST", path, {"by": "bob"})
        self.assertEqual(st, 200, inc)
        self.assertEqual(inc["acked_by"], "bob")
        wait_until(lambda: self.hook("acknowledge"), "the acknowledge notification")
        self.assertEqual(self.hook("acknowledge")[0]["incident"]["key"], key)
        wait_until(lambda: any(json.loads(r["body"]).get("event_action") == "acknowledge"
                               for r in self.cap.requests("/pd")), "PagerDuty acknowledge")
        pd = [json.loads(r["body"]) for r in self.cap.requests("/pd")]
        acks = [b for b in pd if b["event_action"] == "acknowledge"]
        trig = [b for b in pd if b["event_action"] == "trigger"]
        self.assertEqual(acks[0]["dedup_key"], trig[0]["dedup_key"])
        # a second ack is a conflict; matches go on but reminders (every 2 s) stop
        self.assertEqual(self.api(d, "POST", path, {"by": "carol"})[0], 409)
        for _ in range(4):
            self.append("BOOM disk in py-api\n")
            time.sleep(1)
        self.assertEqual(self.hook("reminder"), [])
        self.assertEqual(self.api(d, "POST", "/api/v1/incidents/nope/ack", {"by": "x"})[0], 404)
        d.stop()

    def test_writes_need_the_token_and_good_bodies(self):
        d = self.daemon(self.cfg)
        d.start()
        good = {"matchers": [{"name": "rule", "value": "boom"}], "duration": "1h",
                "created_by": "alice", "comment": "x"}
        self.assertEqual(self.api(d, "POST", "/api/v1/silences", good, token=None)[0], 401)
        self.assertEqual(self.api(d, "POST", "/api/v1/silences", good, token="wrong" * 5)[0], 401)
        st, err = self.api(d, "POST", "/api/v1/silences", dict(good, matchers=[]))
        self.assertEqual(st, 400)
        self.assertIn("matchers", err["error"])
        st, err = self.api(d, "POST", "/api/v1/silences",
                           dict(good, matchers=[{"name": "x", "value": "(", "regex": True}]))
        self.assertEqual(st, 400)
        self.assertIn("matchers[0].value", err["error"])
        st, err = self.api(d, "POST", "/api/v1/silences", dict(good, duration="soon"))
        self.assertEqual(st, 400)
        self.assertIn("duration", err["error"])
        self.assertEqual(self.api(d, "GET", "/api/v1/nothing", token=None)[0], 404)
        self.assertEqual(self.api(d, "GET", "/api/v1/incidents?state=maybe", token=None)[0], 400)
        # the token never shows in the log
        self.assertNotIn(TOKEN, d.stderr_text())
        d.stop()

    def test_without_token_the_api_is_read_only(self):
        cfg = dict(self.cfg)
        del cfg["api"]
        d = self.daemon(cfg)
        d.start()
        st, err = self.api(d, "POST", "/api/v1/silences", {"matchers": []})
        self.assertEqual(st, 403)
        self.assertIn("read-only", err["error"])
        self.assertEqual(self.api(d, "GET", "/api/v1/silences", token=None)[0], 200)
        d.stop()


class CliCase(Base):
    """The same through the command line: cfwatchd incidents, silence add|list|expire, ack."""

    def cli(self, d, *args):
        base = d.url("").rstrip("/")
        p = subprocess.run([CFWATCHD, args[0], "-c", d.cfg_path, "--url", base] + list(args[1:]),
                           capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    def test_cli_round_trip(self):
        d = self.daemon(self.cfg)
        d.start()
        rc, out, err = self.cli(d, "silence", "add", "--match", "script=py-api", "--match",
                                "what=~d.*", "--duration", "1h", "--comment", "db maintenance",
                                "--by", "alice")
        self.assertEqual(rc, 0, err)
        sid = out.strip()
        self.assertRegex(sid, r"^[0-9a-f]{32}$")
        rc, out, err = self.cli(d, "silence", "list")
        self.assertEqual(rc, 0, err)
        self.assertIn(sid, out)
        self.assertIn("script=py-api what=~d.*", out)
        self.append("BOOM disk in py-api\nBOOM cpu in py-web\n")
        d.wait_incident("boom/py-api/disk")
        d.wait_incident("boom/py-web/cpu")
        rc, out, err = self.cli(d, "incidents")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"open +error +boom/py-api/disk .*silenced by " + sid)
        rc, out, err = self.cli(d, "incidents", "--script", "py-web", "--format", "json")
        self.assertEqual([i["key"] for i in json.loads(out)["incidents"]], ["boom/py-web/cpu"])
        rc, out, err = self.cli(d, "ack", "boom/py-web/cpu", "--by", "bob")
        self.assertEqual(rc, 0, err)
        self.assertIn("acknowledged boom/py-web/cpu", out)
        rc, out, err = self.cli(d, "ack", "boom/py-web/cpu")
        self.assertEqual(rc, 1)
        self.assertIn("HTTP 409: acknowledged already", err)
        # edited in place: same id, the new end counts from now, the rest stays
        rc, out, err = self.cli(d, "silence", "edit", sid, "--duration", "3h", "--comment",
                                "db maintenance, longer")
        self.assertEqual((rc, out.strip()), (0, "changed " + sid), err)
        rc, out, err = self.cli(d, "silence", "list", "--format", "json")
        (sil,) = json.loads(out)["silences"]
        self.assertEqual((sil["id"], sil["comment"], sil["created_by"]),
                         (sid, "db maintenance, longer", "alice"))
        self.assertAlmostEqual(sil["ends_at"] / 1000, time.time() + 3 * 3600, delta=60)
        # survives a SIGKILL: the change is journaled
        d.kill()
        d.start()
        rc, out, err = self.cli(d, "silence", "list", "--format", "json")
        self.assertEqual(json.loads(out)["silences"][0]["comment"], "db maintenance, longer")
        rc, out, err = self.cli(d, "silence", "edit", sid)
        self.assertEqual(rc, 2)
        self.assertIn("needs --match, --duration, --comment or --by", err)
        rc, out, err = self.cli(d, "silence", "expire", sid)
        self.assertEqual(rc, 0, err)
        # an expired silence is not edited
        rc, out, err = self.cli(d, "silence", "edit", sid, "--comment", "x")
        self.assertEqual(rc, 1)
        self.assertIn("HTTP 404: no active or pending silence with that id", err)
        rc, out, err = self.cli(d, "silence", "add", "--match", "nonsense", "--duration", "1h",
                                "--comment", "x")
        self.assertEqual(rc, 2)
        self.assertIn("--match nonsense", err)
        d.stop()
        # the daemon is gone: said, exit status 1
        rc, out, err = self.cli(d, "incidents")
        self.assertEqual(rc, 1)
        self.assertIn("is the daemon running", err)


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
