#!/usr/bin/env python3
"""Security claims of docs/security.md that no other test holds end to end (issue 7).

  - Hostile log content (a `wrangler tail` JSON event and a raw text line carrying newlines and a
    forged log line, ESC sequences, NUL, invalid UTF-8, quotes and backslashes, Slack mentions
    and links, a ``` fence, template braces, and JSON keys named like cfwatchd's own fields) goes
    through every sink type: every payload is valid UTF-8 JSON, Slack gets no mention or link,
    the sample cannot close its code block, templates are expanded once, record keys cannot
    forge rule, severity, source or count, PagerDuty and Alertmanager limits hold, the daemon's
    own log gets no forged line and no control byte, and /incidents, /metrics and the state file
    stay valid (a restart restores the same keys).
  - Slack mrkdwn markup (*bold*, _italic_, ~strike~, `code`, :emoji:) from log content is shown
    literally: in the blocks it is in plain_text objects, exactly as logged (the sample stays in
    its code block; the hint is mrkdwn so that its `code` spans render, with the rest of it
    escaped like the fallback), and in the mrkdwn `text` fallback its formatting characters are
    replaced by look-alikes.
  - Secrets (Slack URL token, PagerDuty routing key, webhook HMAC secret, a header from ${ENV},
    the Logpush token) reach the receivers they belong to and nothing else: not the log, not
    /incidents or /metrics, not state.json, the spool or the dead letters, not --check-config or
    --test-alert output, not even when the receivers echo them back; a secret file readable by
    others is refused without printing it.
  - The HTTP client does not follow redirects (a receiver cannot bounce a payload elsewhere),
    and a receiver's answer is quoted escaped and cut in the log and in dead letters (it cannot
    forge a log line).
  - The listener binds 127.0.0.1 when `listen:` is not set.

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import hashlib
import hmac
import json
import os
import re
import socket
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import daemon as daemon_mod  # noqa: E402
from daemon import (DaemonTestCase, HarnessError, parse_metrics, run_tests,  # noqa: E402
                    start_capture, wait_until)
from faults import FaultyReceiver, logpush, trace_event  # noqa: E402

HOSTILE = ('x\n<0>FORGED line\r\x1b[31m"\\ <!channel> <@U024BE7LH> <!subteam^S1> '
           '<#C123> <https://evil.example|click> ``` {script} {{x}} {rule} \u202e')
MISSING = "ModuleNotFoundError: No module named 'src'"

SLACK_TOKEN = "xoxb-SLACKTOKEN-7e1d0c9b8a"
PD_KEY = "pdroutingkey0123456789abcdef012"
HOOK_SECRET = "hmac-secret-5b4a39281706f5e4"
HOOK_BEARER = "bearer-3c2b1a0f9e8d7c6b"
LP_TOKEN = "lp-token-1a2b3c4d5e6f7a8b9c"
SECRETS = (SLACK_TOKEN, PD_KEY, HOOK_SECRET, HOOK_BEARER, LP_TOKEN)


def tail_event(script, message, imp):
    """A `wrangler tail --format json` event with extra keys named like cfwatchd's fields."""
    return {
        "outcome": "exception", "scriptName": script,
        "exceptions": [{"name": "PythonError", "timestamp": 1760000000123,
                        "message": "Traceback (most recent call last):\n  File \"/session/"
                                   "metadata/entry.py\", line 9, in fetch\n    %s\n%s\n%s\n"
                                   % (imp, message, MISSING)}],
        "logs": [], "eventTimestamp": 1760000000100,
        "event": {"request": {"url": "https://x.example/", "method": "GET"},
                  "response": {"status": 500}},
        "scriptVersion": {"id": "v1"},
        "rule": "forged-rule", "severity": "info", "source": "forged-source",
        "key": "forged-key", "count": 9999, "kind": "forged-kind",
    }


def secret_file(path, value, mode=0o600):
    with open(path, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    os.chmod(path, mode)
    return path


def strings(doc):
    """Every string in a JSON document."""
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for k, v in doc.items():
            yield k
            yield from strings(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from strings(v)


def mrkdwn_texts(doc):
    """The texts Slack parses for markup: the top-level text and every mrkdwn object
    (plain_text, as in the header, is shown as it is)."""
    out = [doc.get("text", "")]

    def walk(v):
        if isinstance(v, dict):
            if v.get("type") == "mrkdwn" and isinstance(v.get("text"), str):
                out.append(v["text"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    walk(doc.get("blocks", []))
    return out


class HostileContentCase(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.rx = FaultyReceiver("ok").start()
        self.addCleanup(self.rx.stop)
        self.tail = self.path("tail.log")
        self.text = self.path("text.log")
        open(self.tail, "w").close()
        open(self.text, "w").close()

    def config(self):
        return {
            "sources": [
                {"name": "tail", "type": "file", "path": self.tail, "start_at": "beginning",
                 "format": "json"},
                {"name": "text", "type": "file", "path": self.text, "start_at": "beginning",
                 "format": "lines"},
            ],
            "rules": {"custom": [
                {"id": "hostile", "pattern": r"HOSTILE (?<what>.*)", "severity": "error",
                 "key": "{rule}/fixed", "title": "hostile {what}", "hint": "look at {what}"}]},
            "incidents": {"resolve_after": "1h"},
            "sinks": [
                {"name": "hook", "type": "webhook", "url": self.rx.url("/hook")},
                {"name": "slack", "type": "slack", "url": self.rx.url("/slack/T/B/x"),
                 "rate_limit": {"burst": 0}},
                {"name": "pd", "type": "pagerduty", "routing_key": PD_KEY,
                 "url": self.rx.url("/pd")},
                {"name": "am", "type": "alertmanager", "urls": [self.rx.url("/am")]},
            ],
        }

    def payloads(self, prefix):
        out = []
        for r in self.rx.requests:
            if r["path"].startswith(prefix):
                out.append(json.loads(r["raw"]))  # bytes: strict UTF-8, or it raises
        return out

    def test_hostile_content_cannot_inject_forge_or_break(self):
        d = self.daemon(self.config())
        d.start()
        with open(self.tail, "a", encoding="utf-8") as f:
            f.write(json.dumps(tail_event("ev\nil<!here>{rule}", HOSTILE,
                                          "from src.db import q  # {script} {{x}} {rule} "
                                          "<!channel> ``` *b*" + HOSTILE)) + "\n")
        marker = self.path("executed")
        with open(self.text, "ab") as f:
            f.write(b"HOSTILE \xff\xfe bad \x00 nul \x1b[2J <!channel> {script} \"q\\ "
                    b"$(touch %s) `touch %s` ; touch %s\r\n" % ((marker.encode(),) * 3))
        d.wait_incident("hostile/fixed")
        incs = d.incident_map()
        tail = [i for i in incs.values() if i["rule"] == "py-src-import"]
        self.assertEqual(len(tail), 1, sorted(incs))
        inc = tail[0]
        wait_until(lambda: all(len(self.payloads(p)) >= 2 for p in ("/hook", "/slack", "/pd",
                                                                     "/am")),
                   "both incidents at every sink")

        # record keys cannot forge what cfwatchd decides
        self.assertEqual(inc["severity"], "critical")
        self.assertEqual(inc["fields"]["source"], "tail")
        self.assertEqual(inc["fields"]["rule"], "py-src-import")
        self.assertEqual(inc["fields"]["kind"], "exception")
        self.assertEqual(inc["count"], 1)
        self.assertNotIn("forged", json.dumps(incs))
        # templates are expanded once: braces from the log stay literal
        self.assertIn("{rule}", inc["fields"]["script"])
        self.assertIn("{rule}", inc["title"])
        self.assertIn("{script} {{x}} {rule}", inc["hint"])
        self.assertIn("{script}", incs["hostile/fixed"]["title"])
        # control characters never reach a field (they become spaces); invalid UTF-8 is U+FFFD
        for i in incs.values():
            for s in strings(i["fields"]):
                self.assertIsNone(re.search(r"[\x00-\x1f\x7f]", s), repr(s))
        self.assertIn("\ufffd", incs["hostile/fixed"]["fields"]["what"])

        # Slack: no mention, no link, and the sample's fence cannot close the code block
        for doc in self.payloads("/slack"):
            self.assertNotIn("link_names", doc)
            self.assertNotIn("parse", doc)
            for s in mrkdwn_texts(doc):
                for bad in ("<!", "<@", "<#", "<http"):
                    self.assertNotIn(bad, s, "Slack markup from log content: %r" % s[:200])
            for block in doc.get("blocks", []):
                text = (block.get("text") or {}).get("text", "")
                if text.startswith("*Sample*"):
                    self.assertEqual(text.count("```"), 2, text)
        # PagerDuty and Alertmanager limits
        for doc in self.payloads("/pd"):
            self.assertLessEqual(len(doc["payload"]["summary"]), 1024)
            self.assertLessEqual(len(doc["dedup_key"]), 255)
        for doc in self.payloads("/am"):
            for alert in doc:
                for v in alert["labels"].values():
                    self.assertNotIn("\n", v)
        # the webhook payload carries the text exactly as cleaned, as JSON strings
        hooks = {p["incident"]["key"]: p for p in self.payloads("/hook")}
        self.assertEqual(hooks[inc["key"]]["incident"]["sample"], inc["sample"])

        # nothing was run: shell syntax in log content is text
        self.assertFalse(os.path.exists(marker))
        self.assertIn("$(touch", incs["hostile/fixed"]["title"])
        # the daemon's own log: no forged line, no control byte
        for _, line in d.lines:
            self.assertFalse(line.startswith("<0>") or line.startswith("FORGED"), line)
            self.assertIsNone(re.search(r"[\x00-\x08\x0b-\x1f\x7f]", line), repr(line))
        self.assertFalse(any(ln.startswith("<") for _, ln in d.lines))
        # /incidents, /metrics and the state file stay valid, and a restart restores the keys
        parse_metrics(d.http("/metrics")[2].decode("utf-8"))
        keys = sorted(incs)
        d.stop()
        with open(os.path.join(d.state_dir, "state.json"), "rb") as f:
            saved = json.loads(f.read())
        self.assertEqual(sorted(i["key"] for i in saved["incidents"]), keys)
        d.start()
        self.assertEqual(sorted(d.incident_map()), keys)
        d.stop()

    def test_slack_markup_from_log_content_is_literal(self):
        d = self.daemon(self.config())
        d.start()
        marked = "*bold* _it_ ~st~ `co`"
        with open(self.tail, "a", encoding="utf-8") as f:
            f.write(json.dumps(tail_event("a " + marked + " :skull:", "x",
                                          "from src.db import q")) + "\n")
        wait_until(lambda: self.payloads("/slack"), "the Slack message")
        d.stop()
        for doc in self.payloads("/slack"):
            for t in mrkdwn_texts(doc):
                if not t.startswith("*Sample*"):
                    self.assertNotIn(marked, t, "log content rendered as Slack markup: %r"
                                     % t[:200])
                    self.assertNotIn(":skull:", t)
            # the fallback is mrkdwn: no formatting character is left (look-alikes instead)
            self.assertIsNone(re.search(r"[*_~`]", doc["text"].replace(":white_check_mark:", "")),
                              doc["text"])
            # in the blocks, log text is plain_text, shown exactly as logged
            texts = []
            for block in doc["blocks"]:
                texts += [block["text"]] if "text" in block else []
                texts += block.get("fields", []) + block.get("elements", [])
            plain = [t["text"] for t in texts if t["type"] == "plain_text"]
            self.assertTrue(any("Script: a " + marked in t for t in plain), plain)
            for t in texts:
                if t["type"] == "mrkdwn":
                    # the sample in its code block, and the hint (its `code` spans render)
                    self.assertTrue(t["text"].startswith(("*Sample*\n```", "*Hint:* ")), t)
                    self.assertTrue(t.get("verbatim"), t)


class SecretsCase(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.cap = start_capture()
        self.addCleanup(self.cap.stop)
        self.slack_path = "/services/T000/B000/" + SLACK_TOKEN
        # each receiver echoes the secrets it was sent (and the webhook's HMAC secret, which
        # it cannot know, for good measure): first a transient failure, then a permanent one
        own = {self.slack_path: [SLACK_TOKEN], "/pd": [PD_KEY],
               "/hook": [HOOK_BEARER, HOOK_SECRET], "/am/api/v2/alerts": []}
        for path, secrets in own.items():
            echo = "echo: %s end" % " ".join(secrets)
            self.cap.script(path, [{"status": 500, "body": echo}],
                            then={"status": 400, "body": echo})
        self.log = self.path("app.log")
        with open(self.log, "w", encoding="utf-8") as f:
            f.write("BOOM one\n")

    def config(self, slack_mode=0o600):
        return {
            "sources": [
                {"name": "app", "type": "file", "path": self.log, "start_at": "beginning",
                 "format": "lines"},
                {"name": "lp", "type": "logpush",
                 "token_file": secret_file(self.path("lp_token"), LP_TOKEN)},
            ],
            "rules": {"custom": [{"id": "boom", "pattern": r"BOOM (?<what>\w+)",
                                  "severity": "critical", "key": "{rule}/{what}"}]},
            "incidents": {"resolve_after": "1h"},
            "outbox": {"backoff_base": "100ms", "backoff_max": "200ms"},
            "sinks": [
                {"name": "slack", "type": "slack", "rate_limit": {"burst": 0},
                 "url_file": secret_file(self.path("slack_url"),
                                         self.cap.url(self.slack_path), slack_mode)},
                {"name": "pd", "type": "pagerduty", "url": self.cap.url("/pd"),
                 "routing_key_file": secret_file(self.path("pd_key"), PD_KEY)},
                {"name": "hook", "type": "webhook", "url": self.cap.url("/hook"),
                 "secret_file": secret_file(self.path("hook_secret"), HOOK_SECRET),
                 "headers": {"Authorization": "${CFW_TEST_BEARER}"}},
                {"name": "am", "type": "alertmanager", "urls": [self.cap.url("/am")]},
            ],
        }

    def assert_clean(self, where, text):
        for s in SECRETS:
            self.assertNotIn(s, text, "a secret in %s" % where)

    def test_secrets_go_only_where_they_belong(self):
        env = {"CFW_TEST_BEARER": "Bearer " + HOOK_BEARER}
        d = self.daemon(self.config(), env=env)
        d.start()
        d.wait_incident("boom/one")
        self.assertEqual(logpush(d.port, "lp", LP_TOKEN + "x",
                                 [trace_event("r1", "s", MISSING)]), 401)
        self.assertEqual(logpush(d.port, "lp", LP_TOKEN, [trace_event("r2", "s", MISSING)]), 200)
        d.wait_incident("py-src-import/s/src")
        # every sink tried, failed with an echo, and dead-lettered with the (scrubbed) answer
        d.wait_for(lambda: all(d.metric("cfwatchd_notifications_dead_total", 0, sink=s) >= 1
                               for s in ("slack", "pd", "hook", "am")), "dead letters")

        # the secrets did reach their own receivers
        self.assertTrue(self.cap.requests(self.slack_path))
        self.assertIn(PD_KEY, self.cap.requests("/pd")[0]["body"])
        hook = self.cap.requests("/hook")[0]
        self.assertEqual(hook["headers"]["authorization"], "Bearer " + HOOK_BEARER)
        mac = hmac.new(HOOK_SECRET.encode(), hook["headers"]["x-cfwatchd-timestamp"].encode() +
                       b"." + hook["body"].encode(), hashlib.sha256).hexdigest()
        self.assertEqual(hook["headers"]["x-cfwatchd-signature"], "v1=" + mac)
        for r in self.cap.requests("/am/api/v2/alerts") + self.cap.requests("/pd"):
            for s in (SLACK_TOKEN, HOOK_SECRET, HOOK_BEARER, LP_TOKEN):
                self.assertNotIn(s, r["body"])

        # ... and nowhere else
        self.assert_clean("/incidents", d.http("/incidents")[2].decode())
        self.assert_clean("/metrics", d.http("/metrics")[2].decode())
        run = [daemon_mod.CFWATCHD, "-c", d.cfg_path]
        out = subprocess.run(run + ["--check-config"], capture_output=True, text=True,
                             env=dict(os.environ, **env), timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assert_clean("--check-config", out.stdout + out.stderr)
        out = subprocess.run(run + ["--test-alert", "hook", "--notify-timeout", "5s"],
                             capture_output=True, text=True, env=dict(os.environ, **env),
                             timeout=60)
        self.assert_clean("--test-alert", out.stdout + out.stderr)
        self.assertIn("echo: *** *** end", out.stdout)
        d.stop()
        self.assert_clean("the log", d.stderr_text())
        self.assertRegex(d.stderr_text(), r"sink=slack .*dead-lettered .*echo: \*\*\* end")
        self.assertRegex(d.stderr_text(), r"sink=pd .*dead-lettered .*echo: \*\*\* end")
        files = 0
        for root, _, names in os.walk(d.state_dir):
            for name in names:
                files += 1
                self.assert_clean(os.path.join(root, name), name)
                with open(os.path.join(root, name), "rb") as f:
                    self.assert_clean(os.path.join(root, name), f.read().decode("latin-1"))
        self.assertGreaterEqual(files, 5)  # state.json and the dead letters at least

    def test_secret_file_readable_by_others_is_refused(self):
        d = self.daemon(self.config(slack_mode=0o644),
                        env={"CFW_TEST_BEARER": "Bearer " + HOOK_BEARER})
        with self.assertRaises(HarnessError):
            d.start()
        self.assertRegex(d.stderr_text(), r"slack_url")
        self.assert_clean("the log", d.stderr_text())


class ClientAndListenerCase(DaemonTestCase):
    def boom_daemon(self, sink, **extra):
        """A daemon whose file source holds "BOOM one" (rule boom, key boom/one), notifying the
        one sink given; extra adds top-level sections."""
        log = self.path("app.log")
        with open(log, "w", encoding="utf-8") as f:
            f.write("BOOM one\n")
        cfg = {
            "sources": [{"name": "app", "type": "file", "path": log, "start_at": "beginning",
                         "format": "lines"}],
            "rules": {"custom": [{"id": "boom", "pattern": r"BOOM (?<what>\w+)",
                                  "severity": "error", "key": "{rule}/{what}"}]},
            "sinks": [sink]}
        cfg.update(extra)
        return self.daemon(cfg)

    def test_redirects_are_not_followed(self):
        elsewhere = start_capture()
        self.addCleanup(elsewhere.stop)
        cap = start_capture()
        self.addCleanup(cap.stop)
        cap.script("/hook", [], then={"status": 307, "headers": {
            "Location": elsewhere.url("/steal")}, "body": ""})
        d = self.boom_daemon({"name": "hook", "type": "webhook", "url": cap.url("/hook"),
                              "secret": HOOK_SECRET},
                             outbox={"backoff_base": "100ms", "backoff_max": "200ms"})
        d.start()
        d.wait_for(lambda: d.metric("cfwatchd_notifications_dead_total", 0, sink="hook") +
                   d.metric("cfwatchd_notifications_retried_total", 0, sink="hook") >= 1,
                   "the redirect answer classified")
        d.stop()
        self.assertGreaterEqual(len(cap.requests("/hook")), 1)
        self.assertEqual(elsewhere.requests(), [], "the payload followed a redirect")

    def test_receiver_answer_cannot_forge_log_lines(self):
        cap = start_capture()
        self.addCleanup(cap.stop)
        cap.script("/hook", [], then={"status": 400, "body": "nope\n<0>FORGED\r\x1b[2J" +
                                      "z" * 5000})
        d = self.boom_daemon({"name": "hook", "type": "webhook", "url": cap.url("/hook")})
        d.start()
        d.wait_metric("cfwatchd_notifications_dead_total", 1, sink="hook")
        d.stop()
        for _, line in d.lines:
            self.assertFalse(line.startswith("<0>") or line.startswith("FORGED"), line)
            self.assertNotIn("\x1b", line)
            self.assertLess(len(line), 1500, "a receiver's answer is quoted in full")
        # quoted escaped and cut (200 bytes), in the log and in the dead letter
        self.assertRegex(d.stderr_text(), r"dead-lettered .*nope\\x0a<0>FORGED\\x0d\\x1b\[2J")
        dead = os.path.join(d.state_dir, "dead")
        for name in os.listdir(dead):
            with open(os.path.join(dead, name), encoding="utf-8") as f:
                reason = json.load(f)["dead"]["reason"]
            self.assertNotIn("\n", reason)
            self.assertLess(len(reason), 600)

    def test_listener_binds_loopback_by_default(self):
        port = 9187
        probe = socket.socket()
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            self.skipTest("port %d is in use here" % port)
        finally:
            probe.close()
        text = ("state_dir: '%s'\nsources: []\n" % self.path("state"))
        d = self.daemon(text)
        d.start()
        self.assertRegex(d.stderr_text(), r"listening on 127\.0\.0\.1:%d " % port)
        with open("/proc/net/tcp", encoding="utf-8") as f:
            listening = [ln.split()[1] for ln in f.readlines()[1:] if ln.split()[3] == "0A"]
        self.assertIn("0100007F:%04X" % port, listening)
        self.assertNotIn("00000000:%04X" % port, listening)
        d.stop()


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
