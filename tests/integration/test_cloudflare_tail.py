#!/usr/bin/env python3
"""The `cloudflare-tail` source against a fake Cloudflare API (lib/fake_cloudflare.py) and a fake
tail WebSocket server (lib/ws_tail.py), both on 127.0.0.1:0: the tail created with the filters
in the POST body and the token, the WebSocket opened with trace-v1 and masked client frames,
{"debug":false} sent first; TailEventMessages (whole, or fragmented with a ping between the
fragments) decoded into the same incidents `cfwatchd --once` gives for the same events printed
as `wrangler tail --format json` prints them; sampling notices in /metrics and in the events;
a server that stops answering pings, a close with 1011, a tail that expires (recreated before
expires_at, the old one deleted), DELETE on a clean stop and of the tails a killed daemon left
behind, globs resolved through the list of Workers, a refused token (403) as a `source-down`
incident with the API's reason and its resolve, and TLS with a self-signed CA given by
`cloudflare.ca_file` (and refused without it).

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import json
import os
import shutil
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import CFWATCHD, SOURCE_DIR, run_tests  # noqa: E402
from fake_cloudflare import (ACCOUNT_ID, TOKEN, FakeApiCase, cloudflare_section,  # noqa: E402
                             error_envelope)
from tail_events import VERSION  # noqa: E402
from ws_tail import TailServer  # noqa: E402
import tail_events  # noqa: E402

TAILS = r"/workers/scripts/[^/]+/tails$"


def s02_event():
    return tail_events.s02_event(SOURCE_DIR)


def tail_event(script, module, imp, outcome="exception"):
    return tail_events.tail_event(script, module, imp, outcome, logs=[["handling", "/"]])


def overload(kind):
    text = ("Tail is currently in sampling mode due to the high volume of messages. To prevent "
            "messages from being dropped consider adding filters." if kind == "overload" else
            "Tail has exited sampling mode and is no longer dropping messages.")
    return {"outcome": "ok", "scriptName": None, "exceptions": [], "logs": [],
            "eventTimestamp": int(time.time() * 1000), "event": {"message": text, "type": kind}}


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1 (its own CA); returns (cert, key) or None."""
    if shutil.which("openssl") is None:
        return None
    cert, key = os.path.join(directory, "tail-cert.pem"), os.path.join(directory, "tail-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


class TailCase(FakeApiCase):
    def setUp(self):
        super().setUp()
        self.ws = None

    def start_ws(self, ssl_context=None):
        self.ws = TailServer(ssl_context).start()
        self.addCleanup(self.ws.stop)
        self.fake.ws_port = self.ws.port
        return self.ws

    def start(self, source=None, cf_extra=None, **kw):
        src = {"name": "live", "type": "cloudflare-tail", "scripts": ["py-api"],
               "reconnect_delay": "200ms", "reconnect_delay_max": "1s"}
        src.update(source or {})
        cf = cloudflare_section(self.fake, self.token_file)
        cf.update(cf_extra or {})
        cfg = {"cloudflare": cf, "sources": [src], "incidents": {"resolve_after": "1h"}}
        self.cfg = cfg
        self.d = self.daemon(cfg, **kw)
        self.d.start()
        return self.d

    def check(self):
        if not self.d.alive():
            raise AssertionError("cfwatchd exited; stderr:\n" + self.d.stderr_tail())

    def connected(self, count=1, exclude=()):
        """Waits for count open tail connections other than exclude that sent their first
        message; returns them."""
        deadline = time.monotonic() + 30
        while True:
            self.check()
            conns = [c for c in self.ws.open_conns() if c not in exclude and c.messages]
            if len(conns) >= count:
                return conns
            if time.monotonic() > deadline:
                raise AssertionError("%d tail connection(s) expected; stderr:\n%s" %
                                     (count, self.d.stderr_tail()))
            time.sleep(0.05)

    def tail_metric(self, name, script="py-api", **labels):
        return self.d.metric(name, source="live", script=script, **labels)


class CreateAndDecode(TailCase):
    def test_filters_handshake_events_and_same_incidents_as_wrangler_json(self):
        self.start_ws()
        self.start({"outcome": ["error"], "sampling_rate": "0.5", "method": ["GET", "POST"],
                    "header": "X-Team: py", "client_ip": ["self"], "query": "Traceback",
                    "script_version": VERSION})
        conn = self.connected()[0]
        create = self.fake.snapshot(TAILS, method="POST")[0]
        self.assertEqual(create["path"], "/client/v4/accounts/%s/workers/scripts/py-api/tails" %
                         ACCOUNT_ID)
        self.assertEqual(create["headers"].get("authorization"), "Bearer " + TOKEN)
        self.assertEqual(create["json"], {"filters": [
            {"sampling_rate": 0.5},
            {"outcome": ["exception", "exceededCpu", "exceededMemory", "unknown"]},
            {"method": ["GET", "POST"]},
            {"header": {"key": "X-Team", "query": "py"}},
            {"client_ip": ["self"]},
            {"query": "Traceback"},
            {"scriptVersion": VERSION}]})
        line, headers = conn.request
        self.assertEqual(line, "GET /tail0001 HTTP/1.1")
        self.assertEqual(conn.protocol, "trace-v1")
        self.assertEqual(headers.get("sec-websocket-version"), "13")
        self.assertRegex(headers.get("user-agent", ""), r"^cfwatchd/")
        self.assertEqual(conn.messages[0], (1, b'{"debug":false}'))

        events = [s02_event(),
                  tail_event("py-shop", "workers", "from workers import Response"),
                  tail_event("py-shop", "x", "", outcome="ok")]
        self.assertEqual(self.ws.send_event(events[0]), 1)
        self.ws.send_fragmented(events[1], pieces=4)
        self.ws.send_event(events[2])
        self.d.wait_incident("py-src-import/example-py/src")
        self.d.wait_incident("py-workers-sdk-missing/py-shop/workers")
        self.assertTrue(all(conn.masked), "a client frame was not masked")
        self.assertGreaterEqual(conn.pings, 0)

        # the same events as `wrangler tail --format json` prints them (4-space indent,
        # concatenated) through --once: the same incidents
        path = self.path("wrangler-tail.json")
        with open(path, "w", encoding="utf-8") as f:
            for ev in events:
                f.write(json.dumps(ev, indent=4) + "\n")
        out = subprocess.run([CFWATCHD, "--once", path, "--format", "json"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 1, out.stderr)
        want = {i["key"]: i for i in json.loads(out.stdout)["incidents"]}
        got = self.d.incident_map()
        self.assertEqual(sorted(got), sorted(want))

        def same(i):
            fields = {k: v for k, v in i["fields"].items() if k not in ("source", "sampling")}
            return (i["rule"], i["severity"], i["title"], i["count"], fields)
        note = " Note: the tail samples 50% of requests: counts are sampled."
        for key in want:
            self.assertEqual(same(got[key]), same(want[key]), key)
            # sampled by the configured sampling_rate: the events and the incident text say so
            self.assertEqual(got[key]["fields"].get("sampling"),
                             "the tail samples 50% of requests: counts are sampled")
            self.assertEqual(got[key]["hint"], want[key]["hint"] + note)
            self.assertEqual(got[key]["fields"]["source"], "live")

        # per-tail metrics
        self.assertEqual(self.tail_metric("cfwatchd_tail_messages_total"), 3)
        self.assertEqual(self.tail_metric("cfwatchd_tail_bytes_total"),
                         sum(len(json.dumps(e)) for e in events))
        self.assertEqual(self.tail_metric("cfwatchd_tail_state", state="open"), 1)
        self.assertIsNotNone(self.tail_metric("cfwatchd_tail_last_message_age_seconds"))
        self.assertEqual(self.tail_metric("cfwatchd_tail_sampling_rate"), 0.5)
        self.assertEqual(self.d.metric("cfwatchd_source_up", source="live"), 1)

    def test_sampling_notices(self):
        self.start_ws()
        self.start()
        self.connected()
        self.ws.send_event(overload("overload"))
        self.d.wait_for(lambda: self.tail_metric("cfwatchd_tail_sampling") == 1, "sampling 1")
        self.ws.send_event(tail_event("py-api", "src", "import src.app"))
        inc = self.d.wait_incident("py-src-import/py-api/src")
        self.assertIn("counts are sampled", inc["fields"].get("sampling", ""))
        self.assertTrue(inc["hint"].endswith(" Note: Cloudflare is sampling this tail (high "
                                             "volume): counts are sampled."), inc["hint"])
        self.ws.send_event(overload("overload-stop"))
        self.d.wait_for(lambda: self.tail_metric("cfwatchd_tail_sampling") == 0, "sampling 0")
        self.assertEqual(self.tail_metric("cfwatchd_tail_sampling_notices_total"), 1)


class Liveness(TailCase):
    def test_server_that_stops_answering_pings(self):
        self.start_ws()
        self.start({"ping_interval": "300ms"})
        first = self.connected()[0]
        time.sleep(1.0)  # pings answered: the connection stays
        self.assertIn(first, self.ws.open_conns())
        self.assertGreaterEqual(first.pings, 2)
        self.ws.answer_pings = False
        self.d.wait_stderr(r"no pong within")
        self.ws.answer_pings = True
        second = self.connected(exclude=(first,))[0]
        self.assertNotEqual(second.request[0], first.request[0])  # a new tail
        self.fake.wait_requests(r"/tails/tail0001$", method="DELETE")
        self.assertGreaterEqual(self.tail_metric("cfwatchd_tail_reconnects_total"), 1)
        self.ws.send_event(tail_event("py-api", "src", "import src.app"))
        self.d.wait_incident("py-src-import/py-api/src")

    def test_close_1011_reconnects(self):
        self.start_ws()
        self.start()
        first = self.connected()[0]
        self.ws.close_all(1011, b"internal error")
        self.d.wait_stderr(r"closed by the server with 1011: internal error")
        self.connected(exclude=(first,))
        self.ws.send_event(tail_event("py-api", "src", "import src.app"))
        self.d.wait_incident("py-src-import/py-api/src")
        self.assertEqual(self.d.metric("cfwatchd_source_up", source="live"), 1)

    def test_expiry_recreates_the_tail_before_expires_at(self):
        self.start_ws()
        self.fake.tail_ttl = 3
        self.start({"renew_before": "1s"})
        first = self.connected()[0]
        t0 = time.monotonic()
        second = self.connected(exclude=(first,))[0]
        self.assertLess(time.monotonic() - t0, 3.0, "not recreated before expires_at")
        self.fake.wait_requests(r"/tails/tail0001$", method="DELETE")
        # the old connection is closed by the client, the new one delivers
        deadline = time.monotonic() + 10
        while first in self.ws.open_conns() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertNotIn(first, self.ws.open_conns())
        self.assertIn(second, self.ws.open_conns())
        self.ws.send_event(tail_event("py-api", "src", "import src.app"))
        self.d.wait_incident("py-src-import/py-api/src")
        self.assertEqual(self.tail_metric("cfwatchd_tail_reconnects_total"), 0)


class Lifecycle(TailCase):
    def test_delete_on_stop_and_leftovers_after_a_kill(self):
        self.start_ws()
        self.start()
        self.connected()
        self.d.stop()
        dels = self.fake.snapshot(r"/tails/tail0001$", method="DELETE")
        self.assertEqual(len(dels), 1, "no DELETE of the tail on a clean stop")
        with open(os.path.join(self.d.state_dir, "state.json"), encoding="utf-8") as f:
            self.assertEqual(json.load(f)["sources"]["live"], {"tails": []})
        # a killed daemon leaves its tail; the next start deletes it
        self.d.start()
        conn = self.connected()[0]
        tid = conn.request[0].split()[1].lstrip("/")
        self.d.wait_for(lambda: tid in open(os.path.join(self.d.state_dir, "state.json"),
                                            encoding="utf-8").read(), "the tail id saved",
                        timeout=30)
        self.d.kill()
        since = time.monotonic()
        self.d.start()
        self.fake.wait_requests(r"/tails/%s$" % tid, method="DELETE", since=since, timeout=30)
        self.connected(exclude=(conn,))

    def test_reload_replaces_the_tail_and_deletes_the_old_one(self):
        self.start_ws()
        self.start()
        first = self.connected()[0]
        since = time.monotonic()
        self.d.reload()
        self.fake.wait_requests(r"/tails/tail0001$", method="DELETE", since=since, timeout=30)
        self.connected(exclude=(first,))
        self.ws.send_event(tail_event("py-api", "src", "import src.app"))
        self.d.wait_incident("py-src-import/py-api/src")

    def test_globs_resolved_through_the_list_of_workers(self):
        self.start_ws()
        self.fake.scripts = ["py-a", "py-b", "other"]
        self.start({"scripts": ["py-*"]})
        self.connected(count=2)
        created = sorted(r["path"].split("/")[-2] for r in self.fake.snapshot(TAILS, "POST"))
        self.assertEqual(created, ["py-a", "py-b"])
        self.assertEqual(self.tail_metric("cfwatchd_tail_state", script="py-b", state="open"), 1)

    def test_refused_token_opens_source_down_with_the_reason(self):
        self.start_ws()
        self.fake.script(TAILS, [{"status": 403, "body": error_envelope(
            10000, "Authentication error (token %s)" % TOKEN)}], method="POST", sticky=True)
        self.start()
        inc = self.d.wait_incident("source-down/live")
        text = json.dumps(inc)
        self.assertIn("403", text)
        self.assertIn("code 10000: Authentication error", text)
        self.assertNotIn(TOKEN, text)
        self.assertEqual(self.d.metric("cfwatchd_source_up", source="live"), 0)
        self.fake.unscript(TAILS)
        self.connected()
        self.d.wait_incident("source-down/live", state="resolved", timeout=30)


class Tls(TailCase):
    def test_self_signed_ca_given_by_ca_file(self):
        pair = make_cert(self.tmp)
        if pair is None:
            self.skipTest("openssl is not installed")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*pair)
        self.start_ws(ctx)
        self.fake.ws_scheme = "wss"
        # without the CA the certificate is refused
        self.start({"down_after_failures": 1})
        self.d.wait_stderr(r"TLS: the certificate of 127\.0\.0\.1 is not trusted")
        self.d.wait_incident("source-down/live")
        self.d.stop()
        # with it, the tail runs over TLS
        self.cfg["cloudflare"]["ca_file"] = pair[0]
        self.cfg["sources"][0]["down_after_failures"] = 3
        self.d.write_config(self.cfg)
        self.d.start()
        conn = self.connected()[0]
        self.assertEqual(conn.protocol, "trace-v1")
        self.ws.send_event(tail_event("py-tls", "src", "import src.app"))
        self.d.wait_incident("py-src-import/py-tls/src")
        self.d.wait_incident("source-down/live", state="resolved", timeout=30)


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
