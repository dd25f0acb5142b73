#!/usr/bin/env python3
"""Incidents that end on evidence (issue 18): a deploy failure in a watched wrangler log stays
open while the log goes quiet and is resolved by the next successful deploy of the same script,
saying what fixed it; a source-down incident of a source that a reload removed is resolved at
once, saying why; a changed resolve_after applies to incidents already open.

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import DaemonTestCase, LogCaptureCase, run_tests, start_capture, wait_until  # noqa: E402

FAILED_DEPLOY = """\
✘ [ERROR] A request to the Cloudflare API (/accounts/x/workers/scripts/py-api/versions) failed.

  Uncaught Error: PythonError: Traceback (most recent call last):
    File "/session/metadata/main.py", line 3, in <module>
      from src.core.config.settings import Settings
  ModuleNotFoundError: No module named 'src' [code: 10021]

"""
GOOD_DEPLOY = """\
Total Upload: 120.51 KiB / gzip: 30.12 KiB
Uploaded py-api (3.21 sec)
Deployed py-api triggers (0.45 sec)
Current Version ID: 5bfb5a6c-6d1c-4b8e-a0a4-1f3f0a5e1a2b
"""


class ResolutionCase(LogCaptureCase):
    LOG_NAME = "deploy.log"

    def bodies(self, event=None):
        return self.hook_bodies(event)

    def config(self, extra_sources=(), resolve_after=None):
        cfg = {
            "sources": [{"name": "deploys", "type": "file", "path": self.log}] + list(extra_sources),
            "sinks": [{"name": "hook", "type": "webhook", "url": self.cap.url("/hook")}],
            "incidents": {"resolve_after": "2s"},
        }
        if resolve_after is not None:
            cfg["incidents"]["resolve_after"] = resolve_after
        return cfg

    def test_deploy_failure_resolves_on_the_next_successful_deploy(self):
        d = self.daemon(self.config())
        d.start()
        self.append(FAILED_DEPLOY)
        key = "py-src-import/py-api/src"
        d.wait_incident(key)
        # quiet for longer than resolve_after (2 s): a failed deploy is a state, it stays open
        time.sleep(4)
        self.assertEqual(d.incident_map()[key]["state"], "open")
        self.assertEqual(self.bodies("resolve"), [])
        self.append(GOOD_DEPLOY)
        d.wait_incident(key, state="resolved")
        wait_until(lambda: self.bodies("resolve"), "the resolve notification")
        inc = self.bodies("resolve")[0]["incident"]
        self.assertEqual(inc["key"], key)
        self.assertRegex(inc["resolved_by"], r"^Uploaded py-api \(3\.21 sec\) \(\S+deploy\.log:\d+\)$")
        d.stop()

    def test_removed_source_resolves_its_source_down(self):
        missing = {"name": "ci", "type": "file", "path": self.path("ci", "build.log"),
                   "down_after": "1s"}
        d = self.daemon(self.config(extra_sources=[missing]))
        d.start()
        d.wait_incident("source-down/ci", timeout=30)
        d.write_config(self.config())
        d.reload()
        d.wait_incident("source-down/ci", state="resolved")
        d.wait_stderr(r"incident source-down/ci: source ci is no longer in the configuration; "
                      r"resolved")
        wait_until(lambda: self.bodies("resolve"), "the resolve notification")
        self.assertEqual(self.bodies("resolve")[0]["incident"]["resolved_by"],
                         "source ci is no longer in the configuration")
        # and after a restart with that configuration nothing comes back
        d.stop()
        d.start()
        self.assertEqual(d.incident_map()["source-down/ci"]["state"], "resolved")
        d.stop()

    def test_source_down_of_a_source_gone_at_start_is_resolved(self):
        missing = {"name": "ci", "type": "file", "path": self.path("ci", "build.log"),
                   "down_after": "1s"}
        d = self.daemon(self.config(extra_sources=[missing]))
        d.start()
        d.wait_incident("source-down/ci", timeout=30)
        d.stop()
        d.write_config(self.config())
        d.start()
        d.wait_incident("source-down/ci", state="resolved")
        d.stop()

    def test_reload_applies_resolve_after_to_open_incidents(self):
        rule = {"id": "boom", "pattern": r"BOOM (?<what>\w+)", "key": "{rule}/{what}"}
        cfg = self.config(resolve_after="1h")
        cfg["rules"] = {"custom": [rule]}
        d = self.daemon(cfg)
        d.start()
        self.append("BOOM disk\n")
        d.wait_incident("boom/disk")
        cfg["incidents"]["resolve_after"] = "2s"
        d.write_config(cfg)
        d.reload()
        # the new setting applies to the incident already open, not only to new ones
        d.wait_incident("boom/disk", state="resolved", timeout=20)
        d.stop()


class LinkCase(DaemonTestCase):
    """PagerDuty's client_url is the daemon's public_url, never the listener's own address."""

    def pd_body(self, public_url):
        cap = start_capture()
        self.addCleanup(cap.stop)
        log = self.path("app.log")
        open(log, "w").close()
        cfg = {"sources": [{"name": "app", "type": "file", "path": log}],
               "rules": {"custom": [{"id": "boom", "pattern": r"BOOM (?<what>\w+)",
                                     "key": "{rule}/{what}"}]},
               "sinks": [{"name": "pd", "type": "pagerduty", "routing_key": "R" * 32,
                          "url": cap.url("/pd")}]}
        if public_url is not None:
            cfg["public_url"] = public_url
        d = self.daemon(cfg)
        d.start()
        with open(log, "a", encoding="utf-8") as f:
            f.write("BOOM disk\n")
        wait_until(lambda: cap.requests("/pd"), "the PagerDuty event")
        d.stop()
        return json.loads(cap.requests("/pd")[0]["body"])

    def test_public_url_is_the_link(self):
        body = self.pd_body("https://cfwatchd.ops.example/")
        self.assertEqual(body["client_url"], "https://cfwatchd.ops.example/incidents")

    def test_no_link_without_public_url(self):
        body = self.pd_body(None)
        self.assertNotIn("client_url", body)
        self.assertNotIn("127.0.0.1", json.dumps(body))


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
