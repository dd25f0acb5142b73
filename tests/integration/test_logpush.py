#!/usr/bin/env python3
"""The Logpush receiver (source type `logpush`, POST /logpush/<name> on the daemon's listener).

Real gzip bodies built here with gzip/zlib are posted to the real daemon over loopback HTTP:
authentication (Bearer token from token_file, or a custom `header:`), 401 with nothing ingested,
the validation upload {"content":"tests"}, gzip detected by its magic bytes with or without
Content-Encoding, caps (compressed body, decompressed size, compression ratio -> 413 for a gzip
bomb; line length and records per batch), malformed and over-long lines skipped and counted
while the rest of the batch is accepted, a redelivered batch counted once, and a py-src-import
incident from a Trace Event (the shape of corpus/synthetic/S03) reaching the capture sink with
the script and its version.

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import calendar
import gzip
import json
import os
import sys
import time
import urllib.error
import urllib.request
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import DaemonTestCase, run_tests, start_capture, wait_alert  # noqa: E402

TOKEN = "lp-secret-9f8e7d6c5b4a3210-xyz"
HDR_TOKEN = "hdr-secret-0a1b2c3d4e5f6789"
VERSION = "00000000-0000-4000-8000-000000000000"


def trace_event(ray, script="example-py", ts=1760000000100, module="src", version=VERSION,
                extra_log=None):
    """A Workers Trace Event as Logpush sends it (corpus/synthetic/S03)."""
    imp = "from %s.db import q" % module if module == "src" else "import %s" % module
    rec = {
        "CPUTimeMs": 3, "DispatchNamespace": "", "Entrypoint": "Default",
        "Event": {"RayID": ray, "Request": {"URL": "https://%s.example.workers.dev/" % script,
                                            "Method": "GET"}, "Response": {"Status": 500}},
        "EventTimestampMs": ts, "EventType": "fetch",
        "Exceptions": [{"Name": "PythonError",
                        "Message": "Traceback (most recent call last):\n  File "
                                   "\"/session/metadata/entry.py\", line 9, in fetch\n    %s\n"
                                   "ModuleNotFoundError: No module named '%s'\n" % (imp, module),
                        "TimestampMs": ts + 23}],
        "Logs": [], "Outcome": "exception", "ScriptName": script, "ScriptTags": [],
        "ScriptVersion": {"ID": version, "Message": "", "Tag": ""}, "WallTimeMs": 25,
    }
    if extra_log is not None:
        rec["Logs"] = [{"Level": "log", "Message": [extra_log], "TimestampMs": ts}]
    return rec


def ndjson(records):
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()


def gz(data, level=6):
    return gzip.compress(data, compresslevel=level)


def zlib_gzip(data):
    """The gzip container written by zlib itself (wbits 31)."""
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


class LogpushCase(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.cap = start_capture()
        self.addCleanup(self.cap.stop)
        token_file = self.path("logpush.token")
        with open(token_file, "w", encoding="utf-8") as f:
            f.write(TOKEN + "\n")
        os.chmod(token_file, 0o600)
        cfg = {
            "sources": [
                {"name": "lp", "type": "logpush", "token_file": token_file},
                {"name": "lp-hdr", "type": "logpush", "token": HDR_TOKEN,
                 "header": "X-Logpush-Secret"},
                {"name": "lp-small", "type": "logpush", "token": TOKEN, "max_body": 65536,
                 "max_decompressed": 1048576, "max_line": 4096, "max_records": 5},
            ],
            "incidents": {"resolve_after": "1h"},
            "sinks": [{"name": "cap", "type": "webhook", "url": self.cap.url("/hook")}],
        }
        self.d = self.daemon(cfg)
        self.d.start()

    def tearDown(self):
        if self.d.alive():
            self.d.stop()
        self.assertNotIn(TOKEN, self.d.stderr_text(), "the Logpush token appeared in the log")
        self.assertNotIn(HDR_TOKEN, self.d.stderr_text(), "the Logpush token appeared in the log")
        super().tearDown()

    # helpers

    def post(self, name, body, headers=None, token=TOKEN, method="POST"):
        hdrs = {"Content-Type": "application/x-ndjson"}
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(headers or {})
        req = urllib.request.Request(self.d.url("/logpush/" + name), data=body, headers=hdrs,
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def m(self, name, source="lp"):
        return self.d.metric("cfwatchd_logpush_%s_total" % name, 0.0, source=source)

    def rules_seen(self):
        return sorted(i["key"] for i in self.d.incidents()["incidents"])

    # tests

    def test_trace_event_reaches_capture_sink_with_script_and_version(self):
        # the corpus record itself (the repository's copy of the shared corpus)
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                               "corpus", "synthetic",
                               "S03-SYNTHETIC-logpush-python-exception.log"), "rb") as f:
            s03 = f.read()
        body = s03 if s03.startswith(b"{") else ndjson([trace_event("8f0000000000abcd")])
        status, _ = self.post("lp", gz(body), headers={"Content-Encoding": "gzip"})
        self.assertEqual(status, 200)
        key = "py-src-import/example-py/src"
        inc = self.d.wait_incident(key)
        self.assertEqual(inc["severity"], "critical")
        self.assertEqual(inc["fields"]["script"], "example-py")
        self.assertEqual(inc["fields"]["version"], VERSION)
        self.assertEqual(inc["fields"]["source"], "lp")
        self.assertEqual(inc["fields"].get("import"), "from src.db import q")
        got = wait_alert(self.cap, "/hook", "open", key, daemon=self.d)
        payload = got[0][2]["incident"]
        self.assertEqual(payload["script"], "example-py")
        self.assertEqual(payload["fields"]["script"], "example-py")
        self.assertEqual(payload["fields"]["version"], VERSION)
        self.assertEqual(payload["rule"], "py-src-import")
        self.assertIn("No module named 'src'", payload["sample"])
        self.assertEqual(self.m("records"), 1)
        self.assertEqual(self.m("batches"), 1)

    def test_first_seen_is_the_event_time_not_the_arrival(self):
        # Logpush delivers batches minutes late: the alert says when the exception happened
        past = int(time.time() * 1000) - 7 * 60 * 1000
        future = int(time.time() * 1000) + 3600 * 1000
        recs = [trace_event("8f0000000000aaa1", script="late-py", ts=past),
                trace_event("8f0000000000aaa2", script="skewed-py", ts=future)]
        status, _ = self.post("lp", gz(ndjson(recs)), headers={"Content-Encoding": "gzip"})
        self.assertEqual(status, 200)
        late = wait_alert(self.cap, "/hook", "open", "py-src-import/late-py/src",
                          daemon=self.d)[0][2]["incident"]
        self.assertEqual(late["first_seen"], time.strftime(
            "%Y-%m-%dT%H:%M:%S", time.gmtime(past // 1000)) + ".%03dZ" % (past % 1000))
        # a time ahead of the clock (a skewed sender) is not believed: the arrival stands
        skewed = wait_alert(self.cap, "/hook", "open", "py-src-import/skewed-py/src",
                            daemon=self.d)[0][2]["incident"]
        seen = calendar.timegm(time.strptime(skewed["first_seen"][:19], "%Y-%m-%dT%H:%M:%S"))
        self.assertLess(abs(seen - time.time()), 120)

    def test_gzip_is_detected_without_content_encoding(self):
        # zlib's own gzip writer, no Content-Encoding header
        status, _ = self.post("lp", zlib_gzip(ndjson([trace_event("r-1", script="ex-zlib")])))
        self.assertEqual(status, 200)
        self.d.wait_incident("py-src-import/ex-zlib/src")
        # an uncompressed body is read as it is
        status, _ = self.post("lp", ndjson([trace_event("r-2", script="ex-plain")]))
        self.assertEqual(status, 200)
        self.d.wait_incident("py-src-import/ex-plain/src")
        self.assertEqual(self.m("records"), 2)

    def test_every_gzip_member_is_read(self):
        # RFC 1952 2.2: a body of several members (six records in three members) is read whole,
        # as zcat reads it; the batch was answered 200, so a cut one would be lost for good
        recs = [trace_event("m-%d" % i, script="ex-members-%d" % i) for i in range(6)]
        body = b"".join(gz(ndjson(recs[i:i + 2])) for i in range(0, 6, 2))
        status, _ = self.post("lp", body, headers={"Content-Encoding": "gzip"})
        self.assertEqual(status, 200)
        for i in range(6):
            self.d.wait_incident("py-src-import/ex-members-%d/src" % i)
        self.assertEqual(self.m("records"), 6)
        # bytes after the last member that are not one: refused (sent again), nothing read
        status, _ = self.post("lp", gz(ndjson([trace_event("m-x", script="ex-members-x")])) +
                              b"trailing", headers={"Content-Encoding": "gzip"})
        self.assertEqual(status, 400)
        self.assertEqual(self.m("records"), 6)

    def test_authentication_failures_ingest_nothing(self):
        body = gz(ndjson([trace_event("r-auth", script="ex-auth")]))
        cases = [
            ("no header", None, {}),
            ("wrong token", "lp-secret-9f8e7d6c5b4a3210-xyw", {}),
            ("token prefix", TOKEN[:-1], {}),
            ("token plus a byte", TOKEN + "x", {}),
            ("empty bearer", "", {}),
            ("Basic scheme", None, {"Authorization": "Basic " + TOKEN}),
            ("token of another source", HDR_TOKEN, {}),
            ("right token in the wrong header", None, {"X-Logpush-Secret": TOKEN}),
        ]
        for what, tok, hdrs in cases:
            status, _ = self.post("lp", body, headers=hdrs, token=tok)
            self.assertEqual(status, 401, what)
        self.assertEqual(self.m("unauthorized"), len(cases))
        self.assertEqual(self.m("records"), 0)
        self.assertEqual(self.m("batches"), 0)
        self.assertEqual(self.d.incidents()["incidents"], [])
        # the same body with the token goes through
        status, _ = self.post("lp", body)
        self.assertEqual(status, 200)
        self.d.wait_incident("py-src-import/ex-auth/src")

    def test_custom_header(self):
        body = gz(ndjson([trace_event("r-hdr", script="ex-hdr")]))
        # the source expects X-Logpush-Secret: Authorization does not count
        status, _ = self.post("lp-hdr", body, token=HDR_TOKEN)
        self.assertEqual(status, 401)
        status, _ = self.post("lp-hdr", body, token=None,
                              headers={"X-Logpush-Secret": HDR_TOKEN[:-1] + "0"})
        self.assertEqual(status, 401)
        self.assertEqual(self.m("unauthorized", "lp-hdr"), 2)
        self.assertEqual(self.m("records", "lp-hdr"), 0)
        # header names are case-insensitive (Logpush sends header_<Name> as given)
        status, _ = self.post("lp-hdr", body, token=None,
                              headers={"x-logpush-secret": HDR_TOKEN})
        self.assertEqual(status, 200)
        inc = self.d.wait_incident("py-src-import/ex-hdr/src")
        self.assertEqual(inc["fields"]["source"], "lp-hdr")

    def test_validation_upload_gets_200(self):
        for body in (b'{"content":"tests"}', b'{"content":"test"}\n'):
            status, _ = self.post("lp", gz(body), headers={"Content-Encoding": "gzip"})
            self.assertEqual(status, 200, body)
        status, _ = self.post("lp", b'{"content":"tests"}')
        self.assertEqual(status, 200)
        self.assertEqual(self.m("records"), 0)
        self.assertEqual(self.m("bad_lines"), 0)
        self.assertEqual(self.d.incidents()["incidents"], [])
        # the validation needs the token too
        status, _ = self.post("lp", gz(b'{"content":"tests"}'), token=None)
        self.assertEqual(status, 401)

    def test_gzip_bomb_is_413(self):
        bomb = gz(b"\n" * (64 * 1024 * 1024), level=9)  # ratio about 1000:1
        self.assertLess(len(bomb), 200 * 1024)
        status, _ = self.post("lp", bomb, headers={"Content-Encoding": "gzip"})
        self.assertEqual(status, 413)
        # over the compressed body cap (lp-small: 64 KiB)
        status, _ = self.post("lp-small", gz(os.urandom(100 * 1024)))
        self.assertEqual(status, 413)
        # a corrupt stream: 400
        status, _ = self.post("lp", b"\x1f\x8b\x08\x00" + os.urandom(200))
        self.assertEqual(status, 400)
        self.assertGreaterEqual(self.m("rejected"), 2)
        self.assertEqual(self.m("records"), 0)
        self.assertEqual(self.m("records", "lp-small"), 0)
        self.assertEqual(self.d.incidents()["incidents"], [])
        self.assertTrue(self.d.alive())

    def test_decompressed_cap_is_413(self):
        # 1.05 MiB of NDJSON that gzip shrinks about 40:1, for lp-small's 1 MiB cap: 413 by
        # size, not by ratio (cap 200:1) nor by compressed size (cap 64 KiB)
        recs = [trace_event("dc-%d" % i, script="ex-dc", extra_log=os.urandom(16).hex() * 20)
                for i in range(821)]
        raw = ndjson(recs)
        body = gz(raw, level=9)
        self.assertGreater(len(raw), 1048576)
        self.assertLessEqual(len(body), 65536)
        self.assertLess(len(raw) // len(body), 200, "the ratio cap would answer first")
        status, _ = self.post("lp-small", body)
        self.assertEqual(status, 413)
        self.assertEqual(self.m("rejected", "lp-small"), 1)
        self.assertEqual(self.m("records", "lp-small"), 0)
        self.assertEqual(self.d.incidents()["incidents"], [])
        # half of it is accepted
        body = gz(ndjson(recs[:400]), level=9)
        status, _ = self.post("lp-small", body)
        self.assertEqual(status, 200)
        self.d.wait_metric("cfwatchd_logpush_records_total", 5, source="lp-small")

    def test_bad_lines_are_skipped_and_counted(self):
        good1 = trace_event("bad-1", script="ex-bad-a")
        good2 = trace_event("bad-2", script="ex-bad-b")
        oversized = trace_event("bad-3", script="ex-bad-c", extra_log="x" * 8000)
        body = (json.dumps(good1).encode() + b"\n" +
                json.dumps(oversized).encode() + b"\n" +
                b"{not json at all\n" +
                b"garbage text line\n" +
                b"\n" +
                json.dumps(good2).encode() + b"\r\n")
        status, _ = self.post("lp-small", gz(body))
        self.assertEqual(status, 200)
        self.d.wait_incident("py-src-import/ex-bad-a/src")
        self.d.wait_incident("py-src-import/ex-bad-b/src")
        self.d.wait_metric("cfwatchd_logpush_records_total", 2, source="lp-small")
        self.assertEqual(self.m("bad_lines", "lp-small"), 3,
                         "the over-long line and the two malformed lines are counted")
        self.assertEqual(self.m("records", "lp-small"), 2,
                         "only the two good records are ingested")
        keys = self.rules_seen()
        self.assertNotIn("py-src-import/ex-bad-c/src", keys, "the over-long line was read")
        self.assertEqual(len(keys), 2, keys)

    def test_records_per_batch_cap(self):
        recs = [trace_event("cap-%d" % i, script="ex-cap", module="mod%d" % i)
                for i in range(8)]
        status, _ = self.post("lp-small", gz(ndjson(recs)))
        self.assertEqual(status, 200)
        self.d.wait_metric("cfwatchd_logpush_records_total", 5, source="lp-small")
        self.d.wait_incident("py-module-not-found/ex-cap/mod4")
        keys = self.rules_seen()
        self.assertEqual(keys, sorted("py-module-not-found/ex-cap/mod%d" % i for i in range(5)))

    def test_redelivered_batch_is_counted_once(self):
        recs = [trace_event("dup-%d" % i, script="ex-dup", ts=1760000000100 + i)
                for i in range(3)]
        body = gz(ndjson(recs))
        for _ in range(2):
            status, _ = self.post("lp", body)
            self.assertEqual(status, 200)
        self.d.wait_metric("cfwatchd_logpush_duplicates_total", 3, source="lp")
        self.assertEqual(self.m("records"), 3)
        self.assertEqual(self.m("batches"), 2)
        inc = self.d.wait_incident("py-src-import/ex-dup/src")
        self.assertEqual(inc["count"], 3, "a redelivered batch was counted twice")
        # the same RayID at another time, or for another script, is another record
        again = [recs[0], trace_event("dup-0", script="ex-dup", ts=1760000009999),
                 trace_event("dup-0", script="ex-dup-2")]
        status, _ = self.post("lp", gz(ndjson(again)))
        self.assertEqual(status, 200)
        self.d.wait_metric("cfwatchd_logpush_duplicates_total", 4, source="lp")
        self.d.wait_metric("cfwatchd_logpush_records_total", 5, source="lp")
        inc = self.d.wait_incident("py-src-import/ex-dup/src", min_count=4)
        self.assertEqual(inc["count"], 4)
        self.d.wait_incident("py-src-import/ex-dup-2/src")
        open_alerts = [a for a in self.alerts() if a[0] == "open" and a[1] ==
                       "py-src-import/ex-dup/src"]
        self.assertLessEqual(len(open_alerts), 1)

    def alerts(self):
        from daemon import alerts
        return alerts(self.cap, "/hook")

    def test_large_batch_is_accepted_and_fully_matched(self):
        n = 20000
        recs = [trace_event("lg-%d" % i, script="ex-large", ts=1760000000000 + i)
                for i in range(n)]
        status, _ = self.post("lp", gz(ndjson(recs)))
        self.assertEqual(status, 200)
        self.d.wait_metric("cfwatchd_logpush_records_total", n, source="lp", timeout=120)
        inc = self.d.wait_incident("py-src-import/ex-large/src", min_count=n, timeout=60)
        self.assertEqual(inc["count"], n)
        # the listener stays responsive
        self.assertEqual(self.d.http("/healthz")[0], 200)

    def test_metrics_are_grouped_and_typed(self):
        # Prometheus text format: all samples of a family in one group, after its HELP and TYPE
        status, _, body = self.d.http("/metrics")
        self.assertEqual(status, 200)
        families, typed, problems = [], set(), []
        for line in body.decode().split("\n"):
            if line.startswith("# TYPE "):
                typed.add(line.split()[2])
                continue
            if not line or line.startswith("#"):
                continue
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if families and families[-1] == name:
                continue
            if name in families:
                problems.append("%s is split into several groups" % name)
            families.append(name)
        for fam in ("cfwatchd_logpush_records_total", "cfwatchd_logpush_duplicates_total",
                    "cfwatchd_logpush_unauthorized_total", "cfwatchd_logpush_rejected_total",
                    "cfwatchd_logpush_bad_lines_total", "cfwatchd_logpush_batches_total"):
            self.assertIn(fam, families)
            if fam not in typed:
                problems.append("%s has no # TYPE line" % fam)
        self.assertEqual(sorted(set(problems)), [])

    def test_routing_and_method(self):
        status, _ = self.post("nope", gz(b"{}\n"))
        self.assertEqual(status, 404)
        status, _ = self.post("lp", None, method="GET")
        self.assertEqual(status, 405)
        status, _ = self.post("lp", b"", headers={})
        self.assertEqual(status, 200)
        self.assertEqual(self.m("records"), 0)


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
