#!/usr/bin/env python3
"""Delivery through the real binary: `cfwatchd --once --notify` and `cfwatchd --test-alert`
against the loopback capture server (tests/integration/lib/capture_server.py).

Checks the exit status (2 when something could not be delivered), what the receivers got
(including the webhook HMAC, recomputed by the capture server with Python's hmac module), and
that no secret appears in cfwatchd's output.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from capture_server import CaptureServer  # noqa: E402

CFWATCHD = os.environ.get("CFWATCHD", "cfwatchd")
SOURCE = os.environ.get("CFW_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
LOG = os.path.join(SOURCE, "tests", "data", "corpus", "05-src-import-modulenotfound-excerpt.log")

SLACK_TOKEN = "SlackCliToken00000042"
HOOK_TOKEN = "HookCliToken0000777"
HOOK_SECRET = "cli-hmac-secret-0099"
SECRETS = [SLACK_TOKEN, HOOK_TOKEN, HOOK_SECRET]


class DeliveryCli(unittest.TestCase):
    def setUp(self):
        self.cap = CaptureServer().start()
        self.tmp = tempfile.TemporaryDirectory()
        self.hook_path = "/hook/" + HOOK_TOKEN
        self.slack_path = "/services/T000/B000/" + SLACK_TOKEN
        self.cap.set_hmac(self.hook_path, HOOK_SECRET)
        secret_file = os.path.join(self.tmp.name, "hook_secret")
        with open(secret_file, "w") as f:
            f.write(HOOK_SECRET + "\n")
        os.chmod(secret_file, 0o600)
        self.config = os.path.join(self.tmp.name, "cfwatchd.yaml")
        with open(self.config, "w") as f:
            f.write(
                "state_dir: %s\n"
                "outbox: {backoff_base: 100ms, backoff_max: 500ms}\n"
                "sinks:\n"
                "  - {name: slack, type: slack, url: '%s'}\n"
                "  - {name: hook, type: webhook, url: '%s', secret_file: %s}\n"
                % (os.path.join(self.tmp.name, "state"), self.cap.url(self.slack_path),
                   self.cap.url(self.hook_path), secret_file))

    def tearDown(self):
        self.cap.stop()
        self.tmp.cleanup()

    def run_cfwatchd(self, *args, timeout=60):
        p = subprocess.run([CFWATCHD, "-c", self.config, "--log-level", "debug"] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        for s in SECRETS:
            self.assertNotIn(s, p.stdout, "secret in stdout")
            self.assertNotIn(s, p.stderr, "secret in stderr")
        return p

    def test_once_notify_delivers(self):
        p = self.run_cfwatchd("--once", "--notify", LOG)
        self.assertEqual(p.returncode, 1, p.stderr)  # incidents found, all delivered
        hook = self.cap.requests(self.hook_path)
        self.assertEqual(len(hook), 1)
        self.assertTrue(hook[0]["hmac_ok"], "HMAC signature verified by the receiver")
        body = json.loads(hook[0]["body"])
        self.assertEqual(body["version"], 1)
        self.assertEqual(body["event"], "open")
        self.assertEqual(body["incident"]["rule"], "py-src-import")
        slack = self.cap.requests(self.slack_path)
        self.assertEqual(len(slack), 1)
        self.assertIn("blocks", json.loads(slack[0]["body"]))

    def test_once_notify_permanent_failure_exits_2(self):
        self.cap.script(self.slack_path, [], then={"status": 400, "body": "invalid_payload"})
        p = self.run_cfwatchd("--once", "--notify", LOG)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("invalid_payload", p.stderr)
        self.assertEqual(len(self.cap.requests(self.slack_path)), 1, "not retried")
        self.assertEqual(len(self.cap.requests(self.hook_path)), 1)

    def test_once_notify_receiver_down_exits_2(self):
        self.cap.down()
        p = self.run_cfwatchd("--once", "--notify", "--notify-timeout", "2s", LOG)
        self.assertEqual(p.returncode, 2, p.stderr)

    def test_once_notify_webhook_digest_within_max_body(self):
        # 40 incidents at once through a webhook with one token a second and max_body 4096: the
        # first open leaves alone, the other 39 as one digest that lists what fits and counts
        # the rest
        log = os.path.join(self.tmp.name, "storm.log")
        with open(log, "w") as f:
            for i in range(40):
                f.write("BOOM w%02d %s\n" % (i, "x" * 200))
        with open(self.config, "w") as f:
            json.dump({
                "state_dir": os.path.join(self.tmp.name, "state"),
                "outbox": {"backoff_base": "100ms", "backoff_max": "500ms"},
                "rules": {"builtin": [], "custom": [
                    {"id": "boom", "pattern": r"BOOM (?<what>\w+)", "severity": "error",
                     "key": "{rule}/{what}", "title": "boom {what}"}]},
                "sinks": [{"name": "hook", "type": "webhook", "url": self.cap.url(self.hook_path),
                           "secret_file": os.path.join(self.tmp.name, "hook_secret"),
                           "rate_limit": {"burst": 1, "per": "1s"}, "max_body": 4096}],
            }, f)
        p = self.run_cfwatchd("--once", "--notify", "--notify-timeout", "20s", log)
        self.assertEqual(p.returncode, 1, p.stderr)  # incidents found, all delivered
        hook = self.cap.requests(self.hook_path)
        self.assertEqual(len(hook), 2, p.stderr)
        self.assertTrue(all(r["hmac_ok"] for r in hook))
        self.assertEqual(json.loads(hook[0]["body"])["event"], "open")
        self.assertLessEqual(len(hook[1]["body"].encode()), 4096)
        digest = json.loads(hook[1]["body"])
        self.assertEqual(digest["event"], "digest")
        listed = [it["incident"]["key"] for it in digest["items"]]
        self.assertGreater(len(listed), 0)
        self.assertGreater(digest["unlisted"], 0)
        self.assertEqual(len(listed) + digest["unlisted"], 39)
        self.assertEqual(listed, ["boom/w%02d" % i for i in range(1, 1 + len(listed))])

    def test_test_alert(self):
        p = self.run_cfwatchd("--test-alert", "hook", "--notify-timeout", "10s")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("/hook/***", p.stdout)
        hook = self.cap.requests(self.hook_path)
        self.assertEqual(len(hook), 1)
        self.assertEqual(json.loads(hook[0]["body"])["event"], "test")
        self.assertTrue(hook[0]["hmac_ok"])
        self.cap.script(self.slack_path, [{"status": 403, "body": "action_prohibited"}])
        p = self.run_cfwatchd("--test-alert", "slack", "--notify-timeout", "10s")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("action_prohibited", p.stdout)
        self.assertIn("/services/T000/B000/***", p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
