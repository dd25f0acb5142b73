#!/usr/bin/env python3
"""The example configurations of docs/scaling.md (conf/scaling/), checked and run:

  - ha-pair.yaml and logpush-shard.yaml pass `cfwatchd --check-config` (secrets from a
    credentials directory, as under systemd);
  - alertmanager-ha.yml passes `amtool check-config`, and routes critical alerts to PagerDuty
    and Slack, warnings to Slack alone;
  - logpush-jobs.json: every job's filter is valid JSON on ScriptName, the listed shards do not
    overlap and the last job takes exactly every other Worker;
  - logpush-shard.yaml runs: two shards (the real daemon, from the example's text with only
    state_dir, listen and the Alertmanager URL changed) get the Trace Events their job's filter
    selects, over HTTP on loopback, and send to one real Alertmanager: each script's incident is
    its own alert, from one shard, and reaches the webhook receiver once.

Skipped (77) when prometheus-alertmanager is not installed (scripts/deps.sh --all).
Ends with "N passed, M failed".
"""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import alertmanager  # noqa: E402
from daemon import (CFWATCHD, SOURCE_DIR, Daemon, DaemonTestCase,  # noqa: E402
                    start_capture, wait_until)
from test_logpush import ndjson, trace_event  # noqa: E402

EXAMPLES = os.path.join(SOURCE_DIR, "conf", "scaling")
TOKEN = "lp-example-0123456789abcdef"
HOOK = "/am"


def example(name):
    with open(os.path.join(EXAMPLES, name), encoding="utf-8") as f:
        return f.read()


def shard_sets(jobs):
    """(operator, set of ScriptName values) of each job's filter."""
    out = []
    for job in jobs:
        f = json.loads(job["filter"])
        (cond,) = f["where"]["and"]
        if cond["key"] != "ScriptName" or cond["operator"] not in ("in", "!in"):
            raise AssertionError("%s: filter is not on ScriptName: %s" % (job["name"], cond))
        out.append((cond["operator"], set(cond["value"])))
    return out


def shard_of(sets, script):
    """Indexes of the jobs whose filter lets script through."""
    return [i for i, (op, names) in enumerate(sets) if (script in names) == (op == "in")]


class Examples(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.creds = self.path("credentials")
        os.mkdir(self.creds, 0o700)
        token = os.path.join(self.creds, "logpush_token")
        with open(token, "w", encoding="utf-8") as f:
            f.write(TOKEN + "\n")
        os.chmod(token, 0o600)

    def test_cfwatchd_configs_check(self):
        for name in ("ha-pair.yaml", "logpush-shard.yaml"):
            env = dict(os.environ, CREDENTIALS_DIRECTORY=self.creds)
            proc = subprocess.run([CFWATCHD, "--check-config", "-c", os.path.join(EXAMPLES, name)],
                                  capture_output=True, text=True, env=env, timeout=60)
            self.assertEqual(proc.returncode, 0, "%s: %s" % (name, proc.stderr))
            self.assertIn("configuration OK", proc.stdout)
            self.assertIn("am (alertmanager)", proc.stdout)

    def test_alertmanager_config(self):
        amtool = shutil.which("amtool")
        if amtool is None:
            self.skipTest("amtool is not installed")
        cfg = os.path.join(EXAMPLES, "alertmanager-ha.yml")
        proc = subprocess.run([amtool, "check-config", cfg], capture_output=True, text=True,
                              timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        for sev, want in (("critical", "oncall,ops-slack"), ("warning", "ops-slack")):
            proc = subprocess.run([amtool, "config", "routes", "test", "--config.file=" + cfg,
                                   "severity=" + sev, "incident=py-src-import/api/src"],
                                  capture_output=True, text=True, timeout=60)
            self.assertEqual(proc.stdout.strip(), want, proc.stderr)

    def test_logpush_jobs_cover_every_worker_once(self):
        with open(os.path.join(EXAMPLES, "logpush-jobs.json"), encoding="utf-8") as f:
            jobs = json.load(f)["jobs"]
        sets = shard_sets(jobs)
        listed = [names for op, names in sets if op == "in"]
        for i, a in enumerate(listed):
            for b in listed[i + 1:]:
                self.assertEqual(a & b, set(), "two shards share Workers")
        self.assertEqual(sets[-1], ("!in", set().union(*listed)), "the last job is the rest")
        for script in ("py-api", "py-web", "py-new-worker", ""):
            self.assertEqual(len(shard_of(sets, script)), 1, script)
        for job in jobs:
            self.assertEqual(job["dataset"], "workers_trace_events")
            self.assertRegex(job["destination_conf"], r"^https://[^/]+/logpush/workers\?")

    def test_logpush_shards_run(self):
        with open(os.path.join(EXAMPLES, "logpush-jobs.json"), encoding="utf-8") as f:
            sets = shard_sets(json.load(f)["jobs"])
        cap = start_capture()
        self.addCleanup(cap.stop)
        node = alertmanager.Node(self.tmp, "am", cap.url(HOOK), cluster=False)
        self.addCleanup(node.stop)
        node.wait_ready()
        shards = []
        for i in range(len(sets)):
            text = example("logpush-shard.yaml")
            text = text.replace("state_dir: /var/lib/cfwatchd",
                                "state_dir: %s" % self.path("shard%d" % i, "state"))
            text = text.replace("listen: 127.0.0.1:9187", "listen: 127.0.0.1:0")
            text = text.replace(
                "urls: [http://am1.example.internal:9093, http://am2.example.internal:9093]",
                "urls: [%s]" % node.url)
            self.assertIn(node.url, text, "the example's sink line changed: update this test")
            os.makedirs(self.path("shard%d" % i))
            d = Daemon(self.path("shard%d" % i), text, env={"CREDENTIALS_DIRECTORY": self.creds})
            self._daemons.append(d)
            shards.append(d.start())
        scripts = ["py-api", "py-web", "py-new-worker"]
        for n, script in enumerate(scripts):
            (i,) = shard_of(sets, script)
            req = urllib.request.Request(
                shards[i].url("/logpush/workers"), data=ndjson([trace_event("8f%014x" % n,
                                                                             script=script)]),
                headers={"Authorization": "Bearer " + TOKEN}, method="POST")
            with urllib.request.urlopen(req, timeout=20) as r:
                self.assertEqual(r.status, 200)
        keys = ["py-src-import/%s/src" % s for s in scripts]

        def fired():
            got = alertmanager.webhook_notifications(cap, HOOK)
            return got if all(("firing", k) in got for k in keys) else None

        got = wait_until(fired, "a firing notification per script", timeout=30)
        time.sleep(2.0)  # nothing more comes
        got = alertmanager.webhook_notifications(cap, HOOK)
        for k in keys:
            self.assertEqual(got.count(("firing", k)), 1, got)
        for n, script in enumerate(scripts):
            (i,) = shard_of(sets, script)
            for j, d in enumerate(shards):
                held = set(d.incident_map())
                self.assertEqual(keys[n] in held, i == j, "%s on shard %d" % (keys[n], j))
        for d in shards:
            d.stop()


if __name__ == "__main__":
    sys.exit(alertmanager.main(__name__))
