#!/usr/bin/env python3
"""The Cloudflare API client and its pollers against a fake Cloudflare API (lib/fake_cloudflare.py
on 127.0.0.1:0): what cfwatchd reads (paths, query bodies, pagination, build-log cursors), what it
sends (Authorization: Bearer on every request, the token never in its log even at debug level),
API error envelopes logged with code and message, 401/403 -> a `source-down` incident naming the
missing permission and its resolve on recovery, 429 + Retry-After -> no request for the assumed
five-minute block, one request in flight per poller, and cursors and last-seen ids persisted
across a restart (nothing re-read, nothing missed).

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import alerts, run_tests, start_capture, wait_alert  # noqa: E402
from fake_cloudflare import (TOKEN, FakeApiCase, cloudflare_section, deployment,  # noqa: E402
                             error_envelope, obs_event)

DEP_PATH = r"/workers/scripts/py-api/deployments$"
OBS_PATH = r"/workers/observability/telemetry/query$"
BUILDS_PATH = r"/builds/workers/tag-py/builds"
LOGS_PATH = r"/builds/builds/[^/]+/logs"


def build(uuid, status="running", outcome=None, tag="tag-py", created_s=None):
    b = {"build_uuid": uuid, "status": status, "build_outcome": outcome,
         "created_on": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                     time.gmtime(created_s or time.time())),
         "trigger": {"external_script_id": tag},
         "build_trigger_metadata": {"branch": "main", "commit_hash": "abc123",
                                    "build_trigger_source": "push"}}
    return b


BUILD_START = [
    "Initializing build environment...",
    "Success: Finished initializing build environment",
    "Cloning repository...",
    "Installing project dependencies: uv sync",
]

BUILD_FAIL = [
    "Executing user deploy command: uv run pywrangler deploy",
    "\u2718 [ERROR] A request to the Cloudflare API "
    "(/accounts/0123456789abcdef0123456789abcdef/workers/scripts/py-api/versions) failed.",
    "",
    "  Uncaught Error: PythonError: Traceback (most recent call last):",
    "    File \"/lib/python313.zip/_pyodide/_base.py\", line 597, in pyimport_impl",
    "    File \"/session/metadata/entry.py\", line 3, in <module>",
    "      from src.core.config.settings import Settings",
    "  ModuleNotFoundError: No module named 'src'",
    "  If your main module is inside the 'src' directory then your import statement "
    "shouldn't include a 'src.' prefix",
    "   [code: 10021]",
    "",
    "Failed: error occurred while running deploy command",
]


class CloudflareCase(FakeApiCase):
    """A fake API, a capture sink and a daemon whose pollers point at the fake."""

    def setUp(self):
        super().setUp()
        self.cap = start_capture()
        self.addCleanup(self.cap.stop)

    def start(self, sources, incidents=None):
        cfg = {
            "cloudflare": cloudflare_section(self.fake, self.token_file),
            "sources": sources,
            "incidents": incidents or {"resolve_after": "1h"},
            "sinks": [{"name": "cap", "type": "webhook", "url": self.cap.url("/hook")}],
        }
        self.d = self.daemon(cfg, log_level="debug")
        self.d.start()
        return self.d

    def alive(self):
        if self.d is not None and not self.d.alive():
            raise AssertionError("cfwatchd exited (status %s); stderr:\n%s" %
                                 (self.d.proc.returncode, self.d.stderr_tail()))

    def by_rule(self, rule):
        return [i for i in self.d.incidents()["incidents"] if i["rule"] == rule]

    def wait_rule(self, rule, timeout=30):
        return self.d.wait_for(lambda: self.by_rule(rule), "an incident of rule %s" % rule,
                               timeout)


class RequestsCase(CloudflareCase):
    def test_pollers_read_the_documented_endpoints_with_the_token(self):
        now = time.time()
        self.fake.add_deployment("py-api", deployment("dep-1", "ver-1", now - 600))
        self.fake.add_deployment("py-jobs", deployment("dep-j", "ver-j", now - 600))
        self.fake.add_build("tag-py", build("b-old", "stopped", "success", created_s=now - 900))
        self.start([
            {"name": "cf-deploys", "type": "cloudflare-deployments",
             "scripts": ["py-api", "py-jobs"], "interval": "1s"},
            {"name": "cf-obs", "type": "cloudflare-observability",
             "scripts": ["py-api", "py-jobs"], "interval": "1s", "limit": 7},
            {"name": "cf-builds", "type": "cloudflare-builds", "scripts": ["tag-py"],
             "interval": "1s"},
        ])
        self.fake.wait_requests(DEP_PATH, 2, check=self.alive)
        self.fake.wait_requests(r"/workers/scripts/py-jobs/deployments$", 2, check=self.alive)
        self.fake.wait_requests(OBS_PATH, 2, method="POST", check=self.alive)
        self.fake.wait_requests(BUILDS_PATH, 2, check=self.alive)
        reqs = self.fake.snapshot()
        for r in reqs:
            self.assertEqual(r["headers"].get("authorization"), "Bearer " + TOKEN,
                             "%s %s without the token" % (r["method"], r["path"]))
            self.assertEqual(r["status"] if r["status"] is not None else 200, 200, r["path"])
            self.assertTrue(r["path"].startswith(
                "/client/v4/accounts/%s/" % self.fake.account_id), r["path"])
        # the observability query has the documented shape
        q = self.fake.snapshot(OBS_PATH)[0]["json"]
        self.assertTrue(q["queryId"])
        self.assertEqual(q["view"], "events")
        self.assertEqual(q["limit"], 7)
        self.assertLess(q["timeframe"]["from"], q["timeframe"]["to"])
        self.assertLessEqual(abs(q["timeframe"]["to"] / 1000 - time.time()), 120)
        self.assertEqual(q["parameters"]["datasets"], ["cloudflare-workers"])
        text = str(q["parameters"]["filters"])
        self.assertIn("py-api", text)
        self.assertIn("py-jobs", text)
        # history: a build that had stopped before cfwatchd started is not read
        self.assertEqual(self.fake.snapshot(LOGS_PATH), [])
        # a quiet account opens nothing
        self.assertEqual(self.d.incidents()["incidents"], [])
        self.d.stop()
        self.assertNotIn(TOKEN, self.d.stderr_text())

    def test_one_request_in_flight_per_poller(self):
        # the query is answered after 3 s; the 1 s interval must not stack requests
        self.fake.script(OBS_PATH, [{"delay": 3.0}])
        self.start([{"name": "cf-obs", "type": "cloudflare-observability",
                     "scripts": ["py-api"], "interval": "1s"}])
        first = self.fake.wait_requests(OBS_PATH, 1, check=self.alive)[0]
        time.sleep(2.5)
        during = [r for r in self.fake.snapshot(OBS_PATH) if r["seq"] != first["seq"]]
        self.assertEqual(during, [], "a second query while the first was in flight")
        self.fake.wait_requests(OBS_PATH, 2, timeout=20, check=self.alive)

    def test_stop_while_a_request_is_in_flight(self):
        # stopping with a call outstanding is clean (no leak report from the sanitizer build)
        self.fake.script(DEP_PATH, [{"delay": 4.0}], sticky=True)
        self.fake.add_deployment("py-api", deployment("dep-1", "ver-1", time.time() - 60))
        self.start([{"name": "cf-deploys", "type": "cloudflare-deployments",
                     "scripts": ["py-api"], "interval": "1s"}])
        self.fake.wait_requests(DEP_PATH, 1, check=self.alive)
        time.sleep(0.5)
        self.d.stop()

    def test_reload_while_a_request_is_in_flight(self):
        # SIGHUP re-creates the pollers; the answer to the old poller's call arrives afterwards
        self.fake.script(OBS_PATH, [{"delay": 2.0}])
        self.start([{"name": "cf-obs", "type": "cloudflare-observability",
                     "scripts": ["py-api"], "interval": "1s"}])
        self.fake.wait_requests(OBS_PATH, 1, check=self.alive)
        self.d.reload()
        time.sleep(3.0)
        self.assertTrue(self.d.alive())
        self.fake.wait_requests(OBS_PATH, 3, timeout=20, check=self.alive)
        self.d.stop()


class ErrorsCase(CloudflareCase):
    def test_error_envelopes_are_logged_with_code_and_message(self):
        self.fake.add_deployment("py-api", deployment("dep-1", "ver-1", time.time() - 60))
        self.fake.script(DEP_PATH, [
            {"status": 400, "body": error_envelope(10013, "An unknown error has occurred")},
            {"status": 200, "body": error_envelope(10021, "Script validation failed")},
            {"status": 502, "body": "<html>Bad gateway</html>",
             "headers": {"Content-Type": "text/html"}},
        ])
        self.start([{"name": "cf-deploys", "type": "cloudflare-deployments",
                     "scripts": ["py-api"], "interval": "1s"}])
        self.d.wait_stderr(r"source=cf-deploys: Cloudflare API: 400 code 10013: "
                           r"An unknown error has occurred")
        self.d.wait_stderr(r"source=cf-deploys: Cloudflare API: 200 code 10021: "
                           r"Script validation failed")
        self.d.wait_stderr(r"source=cf-deploys: Cloudflare API: 502 with a body that is not JSON")
        # then it polls on; API errors other than 401/403 do not take the source down
        n = len(self.fake.snapshot(DEP_PATH))
        self.fake.wait_requests(DEP_PATH, n + 1, check=self.alive)
        self.assertEqual(self.by_rule("source-down"), [])

    def test_forbidden_opens_source_down_naming_the_permission_and_recovery_resolves(self):
        rx_obs = OBS_PATH
        self.fake.script(rx_obs, [{"status": 403, "body": error_envelope(
            10000, "Authentication error")}], sticky=True)
        self.fake.script(BUILDS_PATH, [{"status": 401, "body": error_envelope(
            10001, "Invalid token")}], sticky=True)
        self.start([
            {"name": "cf-obs", "type": "cloudflare-observability", "scripts": ["py-api"],
             "interval": "1s"},
            {"name": "cf-builds", "type": "cloudflare-builds", "scripts": ["tag-py"],
             "interval": "1s"},
        ])
        inc = self.d.wait_incident("source-down/cf-obs")
        reason = inc["fields"]["reason"]
        self.assertIn("Workers Observability > Read", reason)
        self.assertIn("403", reason)
        self.assertIn("code 10000: Authentication error", reason)
        self.assertEqual(inc["fields"]["source_type"], "cloudflare-observability")
        self.assertIn("Workers Observability > Read", inc["hint"])
        builds = self.d.wait_incident("source-down/cf-builds")
        self.assertIn("Workers CI > Read", builds["fields"]["reason"])
        self.assertIn("code 10001: Invalid token", builds["fields"]["reason"])
        got = wait_alert(self.cap, "/hook", "open", "source-down/cf-obs", daemon=self.d)
        self.assertIn("Workers Observability > Read",
                      got[0][2]["incident"]["fields"]["reason"])
        # polling goes on while down, and one incident is enough
        n = len(self.fake.snapshot(rx_obs))
        self.fake.wait_requests(rx_obs, n + 2, check=self.alive)
        self.assertEqual(self.d.incident_map()["source-down/cf-obs"]["count"], 1)
        self.assertEqual(len([a for a in alerts(self.cap, "/hook")
                              if a[:2] == ("open", "source-down/cf-obs")]), 1)
        # the token gets its permission: the next poll resolves the incident
        self.fake.unscript(rx_obs)
        self.d.wait_incident("source-down/cf-obs", state="resolved")
        wait_alert(self.cap, "/hook", "resolve", "source-down/cf-obs", daemon=self.d)
        self.assertEqual(self.d.incident_map()["source-down/cf-builds"]["state"], "open")
        self.d.wait_stderr(r"source=cf-obs state=up")

    def test_429_blocks_every_call_for_five_minutes(self):
        self.fake.add_deployment("py-api", deployment("dep-1", "ver-1", time.time() - 60))
        self.start([
            {"name": "cf-deploys", "type": "cloudflare-deployments", "scripts": ["py-api"],
             "interval": "1s"},
            {"name": "cf-obs", "type": "cloudflare-observability", "scripts": ["py-api"],
             "interval": "1s"},
        ])
        self.fake.wait_requests(DEP_PATH, 2, check=self.alive)
        self.fake.script(DEP_PATH, [{"status": 429, "headers": {"Retry-After": "2"}, "body": {
            "code": 971, "message": "Please wait and consider throttling your request speed"}}])
        rl = self.fake.wait_requests(DEP_PATH, 1, check=self.alive,
                                     since=time.monotonic())[0]
        deadline = time.monotonic() + 10
        while rl["answered"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
            rl = [r for r in self.fake.snapshot(DEP_PATH) if r["seq"] == rl["seq"]][0]
        self.assertEqual(rl["status"], 429)
        t429 = rl["answered"]
        self.d.wait_stderr(r"429 rate limited; pausing API calls for 300 s")
        # Retry-After said 2 s; Cloudflare blocks for five minutes: watch well past 2 s
        time.sleep(8.0)
        after = [r for r in self.fake.snapshot() if r["time"] > t429]
        late = [r for r in after if r["time"] > t429 + 1.0]
        self.assertEqual([(r["method"], r["path"]) for r in late], [],
                         "requests after the 429 (Retry-After 2 s, five-minute block)")
        self.assertEqual([r for r in after if r["path"].endswith("/deployments")], [])
        self.assertLessEqual(len(after), 1, "at most the other poller's call already on its way")
        self.assertEqual(self.d.http("/healthz")[0], 200)

    def test_429_with_a_longer_retry_after(self):
        self.fake.script(OBS_PATH, [{"status": 429, "headers": {"Retry-After": "420"},
                                     "body": error_envelope(10429, "rate limited")}])
        self.start([{"name": "cf-obs", "type": "cloudflare-observability",
                     "scripts": ["py-api"], "interval": "1s"}])
        self.d.wait_stderr(r"429 rate limited; pausing API calls for 420 s")
        t = time.monotonic()
        time.sleep(3.0)
        self.assertEqual(self.fake.snapshot(since=t), [])


    def test_a_missing_worker_does_not_stop_the_other_scripts(self):
        # the first script does not exist (404, code 10007): the second is polled all the same
        self.fake.add_deployment("py-api", deployment("dep-1", "ver-1", time.time() - 60))
        self.start([{"name": "cf-deploys", "type": "cloudflare-deployments",
                     "scripts": ["ghost-worker", "py-api"], "interval": "1s",
                     "notify": True}])
        self.d.wait_stderr(r"source=cf-deploys: Cloudflare API: 404 code 10007: "
                           r"This Worker does not exist on your account")
        self.fake.wait_requests(DEP_PATH, 2, check=self.alive)
        self.fake.add_deployment("py-api", deployment("dep-2", "ver-2", time.time()))
        self.d.wait_incident("deployment/py-api/dep-2")
        self.assertEqual(self.by_rule("source-down"), [])

    def test_a_build_whose_log_is_gone_does_not_hold_up_the_others(self):
        self.start([{"name": "cf-builds", "type": "cloudflare-builds", "scripts": ["tag-py"],
                     "interval": "1s"}])
        self.fake.wait_requests(BUILDS_PATH, 1, check=self.alive)
        self.fake.add_build("tag-py", build("b-gone", "running"))
        self.fake.script(r"/builds/builds/b-gone/logs", [{"status": 404, "body": error_envelope(
            12002, "build not found")}], sticky=True)
        self.fake.wait_requests(r"/builds/builds/b-gone/logs", 1, check=self.alive)
        self.fake.add_build("tag-py", build("b-next", "stopped", "fail"))
        self.fake.append_log("b-next", ["Failed: error occurred while running deploy command"])
        self.d.wait_stderr(r"build=b-gone script=tag-py: no log \(404\); skipped")
        self.d.wait_stderr(r"build=b-next script=tag-py outcome=fail: log read")
        self.assertEqual(sum(i["count"] for i in self.wait_rule("builds-deploy-failed")), 1)
        n = len(self.fake.snapshot(r"/builds/builds/b-gone/logs"))
        self.fake.wait_requests(BUILDS_PATH, len(self.fake.snapshot(BUILDS_PATH)) + 2,
                                check=self.alive)
        self.assertEqual(len(self.fake.snapshot(r"/builds/builds/b-gone/logs")), n,
                         "a build without a log is asked for again and again")


class ObservabilityCase(CloudflareCase):
    def test_events_are_paged_and_matched_once(self):
        now_ms = int(time.time() * 1000)
        evs = [obs_event("ev-%d" % i, "py-api", now_ms - 60000 + i * 1000,
                         "ModuleNotFoundError: No module named 'mod%d'" % i) for i in range(5)]
        evs.append(obs_event("ev-other", "other-script", now_ms - 30000,
                             "ModuleNotFoundError: No module named 'othermod'"))
        self.fake.add_events(evs)
        self.start([{"name": "cf-obs", "type": "cloudflare-observability",
                     "scripts": ["py-api"], "interval": "1s", "limit": 2}])
        reqs = self.fake.wait_requests(OBS_PATH, 3, check=self.alive)
        first_cycle = reqs[:3]
        self.assertNotIn("offset", first_cycle[0]["json"])
        self.assertEqual(first_cycle[1]["json"].get("offset"), "ev-1")
        self.assertEqual(first_cycle[1]["json"].get("offsetDirection"), "next")
        self.assertEqual(first_cycle[2]["json"].get("offset"), "ev-3")
        self.assertEqual(first_cycle[0]["json"]["timeframe"], first_cycle[2]["json"]["timeframe"],
                         "pages of one query keep its timeframe")
        for i in range(5):
            inc = self.d.wait_incident("py-module-not-found/py-api/mod%d" % i)
            self.assertEqual(inc["fields"]["source"], "cf-obs")
            self.assertEqual(inc["fields"]["version"], "v-obs-1")
        # later cycles overlap the previous window: the same events are served again but not
        # counted again
        self.fake.wait_requests(OBS_PATH, len(self.fake.snapshot(OBS_PATH)) + 4,
                                check=self.alive)
        later = self.fake.snapshot(OBS_PATH)[3]["json"]["timeframe"]
        self.assertLessEqual(later["from"], first_cycle[0]["json"]["timeframe"]["to"],
                             "a gap between two queries")
        m = self.d.incident_map()
        for i in range(5):
            self.assertEqual(m["py-module-not-found/py-api/mod%d" % i]["count"], 1)
        self.assertNotIn("py-module-not-found/other-script/othermod", m)
        # a new event is read by the next cycle
        self.fake.add_events([obs_event("ev-new", "py-api", int(time.time() * 1000),
                                        "ModuleNotFoundError: No module named 'src'")])
        inc = self.d.wait_incident("py-src-import/py-api/src")
        self.assertEqual(inc["count"], 1)

    def test_cursor_and_seen_ids_survive_a_restart(self):
        now_ms = int(time.time() * 1000)
        self.fake.add_events([obs_event("ev-%d" % i, "py-api", now_ms - 20000 + i * 1000,
                                        "ModuleNotFoundError: No module named 'mod%d'" % i)
                              for i in range(3)])
        d = self.start([{"name": "cf-obs", "type": "cloudflare-observability",
                         "scripts": ["py-api"], "interval": "1s", "limit": 10}])
        for i in range(3):
            d.wait_incident("py-module-not-found/py-api/mod%d" % i)
        self.fake.wait_requests(OBS_PATH, 2, check=self.alive)
        d.stop()
        last_to = self.fake.snapshot(OBS_PATH)[-1]["json"]["timeframe"]["to"]
        # an error happens while cfwatchd is down
        time.sleep(1.0)
        down_ms = int(time.time() * 1000)
        self.fake.add_events([obs_event("ev-down", "py-api", down_ms,
                                        "ModuleNotFoundError: No module named 'src'")])
        time.sleep(1.0)
        t = time.monotonic()
        d.start()
        inc = d.wait_incident("py-src-import/py-api/src")
        self.assertEqual(inc["count"], 1)
        first = self.fake.snapshot(OBS_PATH, since=t)[0]["json"]["timeframe"]
        self.assertLessEqual(first["from"], last_to, "the window after the restart leaves a gap")
        self.assertLessEqual(first["from"], down_ms)
        # the events read before the restart are served again (overlap) but not counted again
        self.fake.wait_requests(OBS_PATH, 3, since=t, check=self.alive)
        m = d.incident_map()
        for i in range(3):
            self.assertEqual(m["py-module-not-found/py-api/mod%d" % i]["count"], 1,
                             "event ev-%d was read again after the restart" % i)
        self.assertEqual(len([a for a in alerts(self.cap, "/hook") if a[0] == "open" and
                              a[1].startswith("py-module-not-found/")]), 3)


class BuildsCase(CloudflareCase):
    def served_lines(self, uuid):
        """Line ranges served for a build's log, in order: [(start, end)]."""
        return [tuple(r["served"]) for r in self.fake.snapshot(r"/builds/builds/%s/logs" % uuid)
                if r["served"] is not None]

    def assert_read_once(self, uuid, total):
        ranges = [r for r in self.served_lines(uuid) if r[1] > r[0]]
        pos = 0
        for start, end in ranges:
            self.assertEqual(start, pos, "lines re-read or skipped: %s" % ranges)
            pos = end
        self.assertEqual(pos, total, "not every line was read: %s" % ranges)

    def test_build_log_read_with_cursor_until_complete_and_matched(self):
        now = time.time()
        self.fake.add_build("tag-py", build("b-old", "stopped", "fail", created_s=now - 900))
        self.fake.append_log("b-old", BUILD_FAIL, now - 900)
        self.start([{"name": "cf-builds", "type": "cloudflare-builds", "scripts": ["tag-py"],
                     "interval": "1s"}])
        self.fake.wait_requests(BUILDS_PATH, 1, check=self.alive)
        # a build starts: its first lines are read with the cursor while it runs
        self.fake.add_build("tag-py", build("b-1", "running"))
        self.fake.append_log("b-1", BUILD_START)
        self.fake.wait_requests(r"/builds/builds/b-1/logs\?cursor=c4$", 1, check=self.alive)
        self.assertEqual(self.by_rule("builds-deploy-failed"), [])
        # it fails: the rest of the log, with the wrangler error block, arrives
        self.fake.append_log("b-1", BUILD_FAIL)
        self.fake.set_build("b-1", status="stopped", build_outcome="fail")
        self.d.wait_stderr(r"source=cf-builds build=b-1 script=tag-py outcome=fail: log read")
        failed = self.wait_rule("builds-deploy-failed")
        self.assertEqual(len(failed), 1)
        self.assertEqual(failed[0]["count"], 1)
        self.assertEqual(failed[0]["fields"]["source"], "cf-builds")
        # a build log's lines name no Worker: the build's own script and id are attached
        self.assertEqual(failed[0]["fields"]["script"], "tag-py")
        self.assertEqual(failed[0]["fields"]["build"], "b-1")
        self.assertEqual(failed[0]["key"], "builds-deploy-failed/tag-py/")
        src = self.wait_rule("py-src-import")
        self.assertEqual(len(src), 1, src)
        self.assertEqual(src[0]["fields"]["module"], "src")
        self.assertIn("from src.core.config.settings import Settings", src[0]["sample"])
        wait_alert(self.cap, "/hook", "open", src[0]["key"], daemon=self.d)
        wait_alert(self.cap, "/hook", "open", failed[0]["key"], daemon=self.d)
        self.assert_read_once("b-1", len(BUILD_START) + len(BUILD_FAIL))
        # the first request has no cursor; every later one carries the previous answer's
        paths = [r["path"] for r in self.fake.snapshot(r"/builds/builds/b-1/logs")]
        self.assertTrue(paths[0].endswith("/logs"), paths)
        self.assertTrue(all("?cursor=c" in p for p in paths[1:]), paths)
        # a complete build is not read again; history is never read
        n = len(self.fake.snapshot(LOGS_PATH))
        self.fake.wait_requests(BUILDS_PATH, len(self.fake.snapshot(BUILDS_PATH)) + 2,
                                check=self.alive)
        self.assertEqual(len(self.fake.snapshot(LOGS_PATH)), n)
        self.assertEqual(self.fake.snapshot(r"/builds/builds/b-old/logs"), [])

    def test_a_successful_deploying_build_resolves_the_deploy_failure(self):
        self.start([{"name": "cf-builds", "type": "cloudflare-builds", "scripts": ["tag-py"],
                     "interval": "1s"}])
        self.fake.wait_requests(BUILDS_PATH, 1, check=self.alive)
        self.fake.add_build("tag-py", build("b-1", "stopped", "fail"))
        self.fake.append_log("b-1", BUILD_START + BUILD_FAIL)
        src = self.wait_rule("py-src-import")[0]
        # a preview branch's build uploads a version and deploys nothing: no evidence
        preview = build("b-2", "stopped", "success", created_s=time.time() + 1)
        preview["build_trigger_metadata"].update(
            branch="feature", deploy_command="npx wrangler versions upload")
        self.fake.add_build("tag-py", preview)
        self.fake.append_log("b-2", BUILD_START)
        self.d.wait_stderr(r"build=b-2 script=tag-py outcome=success: log read")
        self.assertEqual([i["state"] for i in self.by_rule("py-src-import")], ["open"])
        # the production build succeeds: its outcome (not a log line) is the evidence
        fixed = build("b-3", "stopped", "success", created_s=time.time() + 1)
        fixed["build_trigger_metadata"]["deploy_command"] = "uv run pywrangler deploy"
        self.fake.add_build("tag-py", fixed)
        self.fake.append_log("b-3", BUILD_START)
        got = wait_alert(self.cap, "/hook", "resolve", src["key"], daemon=self.d)
        self.assertEqual(got[0][2]["incident"]["resolved_by"],
                         "Workers Builds build b-3 succeeded (branch main, commit abc123, "
                         "source cf-builds)")
        wait_alert(self.cap, "/hook", "resolve", "builds-deploy-failed/tag-py/", daemon=self.d)

    def test_build_cursor_survives_a_restart(self):
        d = self.start([{"name": "cf-builds", "type": "cloudflare-builds",
                         "scripts": ["tag-py"], "interval": "1s"}])
        self.fake.wait_requests(BUILDS_PATH, 1, check=self.alive)
        first = BUILD_START + ["Worker Startup Time: 4800 ms", "Uploading..."]
        self.fake.add_build("tag-py", build("b-2", "running"))
        self.fake.append_log("b-2", first)
        self.fake.wait_requests(r"/builds/builds/b-2/logs\?cursor=c%d$" % len(first), 2,
                                check=self.alive)
        slow = d.wait_incident(self.wait_rule("startup-time-high")[0]["key"])
        self.assertEqual(slow["count"], 1)
        d.stop()
        # while cfwatchd is down: b-2 fails, and another build runs and fails
        self.fake.append_log("b-2", BUILD_FAIL)
        self.fake.set_build("b-2", status="stopped", build_outcome="fail")
        self.fake.add_build("tag-py", build("b-3", "stopped", "fail"))
        self.fake.append_log("b-3", ["Executing user deploy command: npx wrangler deploy",
                                     "Failed: error occurred while running build command"])
        t = time.monotonic()
        d.start()
        d.wait_stderr(r"build=b-2 script=tag-py outcome=fail: log read", since=t)
        d.wait_stderr(r"build=b-3 script=tag-py outcome=fail: log read", since=t)
        after = self.fake.snapshot(r"/builds/builds/b-2/logs", since=t)
        self.assertTrue(after[0]["path"].endswith("?cursor=c%d" % len(first)),
                        "after the restart the log is not continued at its cursor: %s" %
                        after[0]["path"])
        self.assert_read_once("b-2", len(first) + len(BUILD_FAIL))
        self.assert_read_once("b-3", 2)
        m = d.incident_map()
        self.assertEqual(m[slow["key"]]["count"], 1, "lines read again after the restart")
        # one "Failed:" line per build: b-2's read once, b-3's read once (the build-log
        # events carry no script, so both fold into one incident of the default key)
        failed = self.by_rule("builds-deploy-failed")
        self.assertEqual(sum(i["count"] for i in failed), 2, failed)


class DeploymentsCase(CloudflareCase):
    def test_new_deployments_are_recorded_and_announced_once(self):
        now = time.time()
        self.fake.add_deployment("py-api", deployment("dep-1", "ver-1", now - 3600,
                                                      "ann@example.com", "initial"))
        d = self.start([{"name": "cf-deploys", "type": "cloudflare-deployments",
                         "scripts": ["py-api"], "interval": "1s", "notify": True}])
        self.fake.wait_requests(DEP_PATH, 2, check=self.alive)
        # what existed at the first poll is recorded, not announced
        self.assertEqual(self.by_rule("deployment"), [])
        self.fake.add_deployment("py-api", deployment("dep-2", "ver-2", time.time(),
                                                      "bob@example.com", "fix imports",
                                                      source="workersci"))
        inc = d.wait_incident("deployment/py-api/dep-2")
        self.assertEqual(inc["severity"], "info")
        f = inc["fields"]
        self.assertEqual((f["deployment_version"], f["deployment_author"], f["deployment_source"],
                          f["deployment_message"]),
                         ("ver-2", "bob@example.com", "workersci", "fix imports"))
        got = wait_alert(self.cap, "/hook", "open", "deployment/py-api/dep-2", daemon=d)
        self.assertEqual(got[0][2]["incident"]["fields"]["deployment"], "dep-2")
        d.wait_stderr(r"source=cf-deploys deployment=dep-2 script=py-api version=ver-2 "
                      r"author=bob@example.com")
        d.stop()
        # while down: dep-3; after the restart it alone is announced
        self.fake.add_deployment("py-api", deployment("dep-3", "ver-3", time.time(),
                                                      "cy@example.com", "rollback"))
        t = time.monotonic()
        d.start()
        d.wait_incident("deployment/py-api/dep-3")
        self.fake.wait_requests(DEP_PATH, 3, since=t, check=self.alive)
        opens = [a[1] for a in alerts(self.cap, "/hook") if a[0] == "open"]
        self.assertEqual(sorted(k for k in opens if k.startswith("deployment/")),
                         ["deployment/py-api/dep-2", "deployment/py-api/dep-3"])
        self.assertNotIn("deployment/py-api/dep-1", d.incident_map())


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
