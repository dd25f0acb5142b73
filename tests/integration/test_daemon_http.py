#!/usr/bin/env python3
"""The daemon's HTTP listener: /healthz, /metrics (Prometheus text), /incidents (JSON, no secrets).

Runs the real binary ($CFWATCHD) on a temporary configuration with a file source.
Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import DaemonTestCase, parse_metrics, run_tests, start_capture  # noqa: E402

SECRET = "s3cr3t-hmac-key-do-not-leak-7f1c"

# Every metric the daemon documents (issue 4); each must be present with a HELP and a TYPE.
EXPECTED = {
    "cfwatchd_bytes_total": "counter",
    "cfwatchd_records_total": "counter",
    "cfwatchd_records_decoded_total": "counter",
    "cfwatchd_events_total": "counter",
    "cfwatchd_matches_total": "counter",
    "cfwatchd_rule_matches_total": "counter",
    "cfwatchd_incidents_open": "gauge",
    "cfwatchd_source_up": "gauge",
    "cfwatchd_source_lag_bytes": "gauge",
    "cfwatchd_reloads_total": "counter",
    "cfwatchd_reload_failures_total": "counter",
    "cfwatchd_notifications_sent_total": "counter",
    "cfwatchd_notifications_retried_total": "counter",
    "cfwatchd_notifications_dead_total": "counter",
    "cfwatchd_outbox_depth": "gauge",
}


def config(log, hook_url):
    return {
        "sources": [{"name": "app", "type": "file", "path": log, "start_at": "beginning",
                     "format": "lines"}],
        "incidents": {"key": "{rule}/{what}", "resolve_after": "1h"},
        "rules": {"custom": [{"id": "boom", "pattern": r"BOOM (?<what>\w+)", "severity": "error",
                              "title": "boom {what}", "hint": "look at {what}"}]},
        # A sink with a secret: neither /incidents nor /metrics may ever show it.
        "sinks": [{"name": "hook", "type": "webhook", "url": hook_url,
                   "secret": SECRET}],
    }


class HttpCase(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.log = self.path("app.log")
        with open(self.log, "w", encoding="utf-8") as f:
            f.write("hello\nBOOM disk\nBOOM disk\nBOOM net\nplain line\n")
        self.cap = start_capture()
        self.addCleanup(self.cap.stop)
        self.d = self.daemon(config(self.log, self.cap.url("/hook")))
        self.d.start()
        self.d.wait_incident("boom/net")
        self.d.wait_incident("boom/disk", min_count=2)

    def test_healthz(self):
        status, headers, body = self.d.http("/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(body.strip(), b"ok")
        self.d.stop()

    def test_unknown_path_is_404(self):
        status, _, _ = self.d.http("/nope")
        self.assertEqual(status, 404)
        self.d.stop()

    def test_metrics_parse_as_prometheus_text(self):
        status, headers, body = self.d.http("/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers.get("Content-Type", "").startswith("text/plain"),
                        headers.get("Content-Type"))
        text = body.decode("utf-8")
        samples = parse_metrics(text)  # raises on any line that is not `name{labels} value`
        types = {}
        helps = set()
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, typ = line.split(" ", 3)
                types[name] = typ
            elif line.startswith("# HELP "):
                helps.add(line.split(" ", 3)[2])
        for name, typ in EXPECTED.items():
            self.assertEqual(types.get(name), typ, "TYPE of %s" % name)
            self.assertIn(name, helps, "HELP of %s" % name)
        names = {n for (n, _) in samples}
        for name in EXPECTED:
            self.assertIn(name, names, "no sample of %s" % name)
        # every sample belongs to a declared family
        for n in names:
            self.assertIn(n, types, "sample %s has no TYPE line" % n)
        # each family's samples are together, after its TYPE (the text format's rule)
        seen, current = set(), None
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                current = line.split(" ")[2]
                self.assertNotIn(current, seen, "family %s declared twice" % current)
                seen.add(current)
            elif line and not line.startswith("#"):
                self.assertEqual(line.split("{")[0].split(" ")[0], current,
                                 "sample out of its family: %s" % line)
        # counters and gauges are not negative
        for (n, labels), v in samples.items():
            self.assertGreaterEqual(v, 0, "%s%s" % (n, dict(labels)))
        # values reflect what was read: 3 matches of boom, 2 incidents open, the source up
        self.assertEqual(samples[("cfwatchd_rule_matches_total", (("rule", "boom"),))], 3)
        self.assertEqual(samples[("cfwatchd_matches_total", ())], 3)
        self.assertEqual(samples[("cfwatchd_incidents_open", ())], 2)
        self.assertEqual(samples[("cfwatchd_source_up", (("source", "app"),))], 1)
        # the fast scan decodes only records that hold a rule's literal: the 3 of boom (of 5+)
        self.assertGreaterEqual(samples[("cfwatchd_records_total", ())], 5)
        self.assertGreaterEqual(samples[("cfwatchd_records_decoded_total", ())], 3)
        self.assertGreaterEqual(samples[("cfwatchd_events_total", ())], 3)
        self.assertEqual(samples[("cfwatchd_reloads_total", ())], 0)
        self.assertEqual(samples[("cfwatchd_reload_failures_total", ())], 0)
        self.assertIn(("cfwatchd_notifications_sent_total", (("sink", "hook"),)), samples)
        self.d.wait_metric("cfwatchd_notifications_sent_total", 2, sink="hook")
        self.assertNotIn(SECRET, text)
        self.d.stop()

    def test_incidents_json(self):
        status, headers, body = self.d.http("/incidents")
        self.assertEqual(status, 200)
        self.assertTrue(headers.get("Content-Type", "").startswith("application/json"),
                        headers.get("Content-Type"))
        doc = json.loads(body.decode("utf-8"))
        self.assertEqual(doc["version"], 1)
        self.assertEqual(doc["open"], 2)
        by_key = {i["key"]: i for i in doc["incidents"]}
        self.assertEqual(sorted(by_key), ["boom/disk", "boom/net"])
        disk = by_key["boom/disk"]
        for k in ("key", "rule", "severity", "state", "title", "hint", "count", "fields", "first",
                  "last", "sample"):
            self.assertIn(k, disk)
        self.assertEqual(disk["rule"], "boom")
        self.assertEqual(disk["severity"], "error")
        self.assertEqual(disk["state"], "open")
        self.assertEqual(disk["title"], "boom disk")
        self.assertEqual(disk["hint"], "look at disk")
        self.assertEqual(disk["count"], 2)
        self.assertEqual(disk["fields"].get("what"), "disk")
        self.assertEqual(disk["sample"], "BOOM disk")
        self.assertEqual(disk["first"]["input"], self.log)
        self.assertEqual(disk["first"]["line"], 2)
        self.assertEqual(disk["last"]["line"], 3)
        self.assertEqual(by_key["boom/net"]["first"]["line"], 4)
        self.assertNotIn(SECRET, body.decode("utf-8"))
        self.d.stop()

    def test_state_file_has_no_secret(self):
        self.d.stop()
        with open(os.path.join(self.d.state_dir, "state.json"), encoding="utf-8") as f:
            text = f.read()
        json.loads(text)
        self.assertNotIn(SECRET, text)
        self.assertNotIn(SECRET, self.d.stderr_text())


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
