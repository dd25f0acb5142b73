"""A fake Cloudflare API v4 on 127.0.0.1:0 for cfwatchd's integration tests (stdlib only).

It serves, in a thread, the shapes documented in shared/FORMATS.md §2-4:

  GET    /client/v4/accounts/{acct}/workers/scripts/{script}/deployments
                                     -> result.deployments[] (newest first)
  POST   /client/v4/accounts/{acct}/workers/observability/telemetry/query
                                     -> result.events.events[] filtered by timeframe and
                                        $metadata.service, `limit` per page, `offset` = the
                                        $metadata.id of the last event of the previous page
  GET    /client/v4/accounts/{acct}/builds/workers/{tag}/builds
                                     -> result[] (newest first) + result_info (page style)
  GET    /client/v4/accounts/{acct}/builds/builds/{uuid}/logs[?cursor=c]
                                     -> result{lines:[[epoch, text]...], cursor, truncated}
  GET    /client/v4/accounts/{acct}/workers/scripts
                                     -> result[{id: name}] of `scripts`
  POST   /client/v4/accounts/{acct}/workers/scripts/{script}/tails
                                     -> result{id, url: ws[s]://127.0.0.1:PORT/<id>, expires_at
                                        (now + tail_ttl)}; `tails` id -> script
  DELETE /client/v4/accounts/{acct}/workers/scripts/{script}/tails/{id}
                                     -> `deleted_tails` gets the id
  anything else                      -> 404 with an error envelope (code 7003)

Every response is the v4 envelope {success, errors, messages, result[, result_info]}. A
request without `Authorization: Bearer <token>` (when a token is set) gets 401 with code
10000. Tests can script answers per path (error envelopes, 401/403, 429 with Retry-After).
Every request is recorded with its headers and body, and what the fake answered.
"""
import datetime
import json
import os
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from daemon import DaemonTestCase
from serve_util import send_reply

ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
TOKEN = "cfw-test-token-Zq9xW3vR7tY1uI5oP2aS"
BODY_MAX = 4 * 1024 * 1024


def rfc3339(epoch_s):
    """Epoch seconds -> "2026-08-21T01:58:58.948Z"."""
    dt = datetime.datetime.fromtimestamp(epoch_s, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def envelope(result=None, info=None, messages=None):
    doc = {"success": True, "errors": [], "messages": messages or [], "result": result}
    if info is not None:
        doc["result_info"] = info
    return doc


def error_envelope(code, message):
    return {"success": False, "errors": [{"code": code, "message": message}], "messages": [],
            "result": None}


def deployment(dep_id, version, created_s, author="dev@example.com", message="", source="wrangler"):
    """A deployment object as GET .../deployments lists it."""
    d = {"id": dep_id, "created_on": rfc3339(created_s), "source": source,
         "strategy": "percentage", "versions": [{"version_id": version, "percentage": 100.0}],
         "author_email": author}
    if message:
        d["annotations"] = {"workers/message": message}
    return d


def obs_event(event_id, script, ts_ms, error, outcome="exception", version="v-obs-1"):
    """A Workers Observability event ($metadata + $workers) carrying an error."""
    return {
        "timestamp": ts_ms,
        "dataset": "cloudflare-workers",
        "source": {"message": error},
        "$metadata": {"id": event_id, "requestId": "req-" + event_id, "level": "error",
                      "message": error, "error": error, "service": script,
                      "type": "cf-worker-event", "trigger": "GET /"},
        "$workers": {"eventType": "fetch", "requestId": "req-" + event_id, "scriptName": script,
                     "outcome": outcome, "scriptVersion": {"id": version},
                     "executionModel": "stateless", "truncated": False},
    }


class _Route:
    def __init__(self, method, rx, responses, sticky):
        self.method = method
        self.rx = re.compile(rx)
        self.responses = list(responses)
        self.sticky = sticky


class FakeCloudflare:
    """The fake API. Mutate its state (deployments, events, builds, logs) under `with fake.lock`
    or through the helper methods; they notify waiters."""

    def __init__(self, account_id=ACCOUNT_ID, token=TOKEN, log_page=3):
        self.account_id = account_id
        self.token = token
        self.lock = threading.Condition()
        self.requests = []          # dicts, see _record
        self.routes = []            # scripted answers
        self.deployments = {}       # script -> [deployment] newest first
        self.events = []            # observability events
        self.builds = {}            # tag -> [build] newest first
        self.build_logs = {}        # uuid -> [[epoch, text]]
        self.log_page = log_page    # lines per build-log page
        self.ws_port = None         # tail URLs point here (ws_tail.TailServer)
        self.ws_scheme = "ws"       # "wss" for a TLS tail server
        self.tail_ttl = 6 * 3600    # seconds from creation to a tail's expires_at
        self.scripts = []           # Worker names GET .../workers/scripts lists
        self.tails = {}             # id -> script
        self.deleted_tails = []     # ids DELETEd
        self.tail_seq = 0
        self.server = None
        self.thread = None

    # ---- life cycle ----

    def start(self):
        self.server = _Server(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def port(self):
        return self.server.server_address[1]

    @property
    def base_url(self):
        return "http://127.0.0.1:%d/client/v4" % self.port

    # ---- scripting ----

    def script(self, rx, responses, method=None, sticky=False):
        """Answers requests whose path (with query) matches rx with responses in order:
        {"status", "body" (dict -> JSON, str as is), "headers", "delay" (s)}; a response that
        is only {"delay": s} is served normally after the delay. sticky: the last one stays until
        unscript(rx). Then normal handling resumes."""
        with self.lock:
            self.routes.append(_Route(method, rx, responses, sticky))

    def unscript(self, rx):
        with self.lock:
            self.routes = [r for r in self.routes if r.rx.pattern != rx]

    def add_deployment(self, script, dep):
        with self.lock:
            self.deployments.setdefault(script, []).insert(0, dep)
            self.lock.notify_all()

    def add_events(self, events):
        with self.lock:
            self.events.extend(events)
            self.lock.notify_all()

    def add_build(self, tag, build):
        with self.lock:
            self.builds.setdefault(tag, []).insert(0, build)
            self.build_logs.setdefault(build["build_uuid"], [])
            self.lock.notify_all()

    def set_build(self, uuid, **kw):
        with self.lock:
            for lst in self.builds.values():
                for b in lst:
                    if b["build_uuid"] == uuid:
                        b.update(kw)
            self.lock.notify_all()

    def append_log(self, uuid, lines, t0=None):
        """Appends text lines to a build's log, stamped with epoch seconds."""
        t = time.time() if t0 is None else t0
        with self.lock:
            log = self.build_logs.setdefault(uuid, [])
            for i, text in enumerate(lines):
                log.append([round(t + i * 0.001, 3), text])
            self.lock.notify_all()

    # ---- what was asked ----

    def snapshot(self, rx=None, method=None, since=0.0):
        with self.lock:
            return [dict(r) for r in self.requests
                    if r["time"] >= since and (rx is None or re.search(rx, r["path"]))
                    and (method is None or r["method"] == method)]

    def wait_requests(self, rx, count=1, method=None, since=0.0, timeout=30.0, check=None):
        """Waits for count requests matching rx; returns them. check(): raise to abort early."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                got = [dict(r) for r in self.requests
                       if r["time"] >= since and re.search(rx, r["path"])
                       and (method is None or r["method"] == method)]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "fake Cloudflare: %d of %d requests matching %r within %.0f s; got: %s" %
                        (len(got), count, rx, timeout,
                         [(r["method"], r["path"], r["status"]) for r in self.requests][-15:]))
                self.lock.wait(min(left, 0.2))
                if check is not None:
                    self.lock.release()
                    try:
                        check()
                    finally:
                        self.lock.acquire()

    # ---- serving ----

    def _record(self, method, raw_path, headers, body):
        with self.lock:
            rec = {"seq": len(self.requests), "time": time.monotonic(), "wall": time.time(),
                   "method": method, "path": raw_path,
                   "headers": {k.lower(): v for k, v in headers.items()},
                   "body": body.decode("utf-8", "replace"), "json": None, "status": None,
                   "answered": None, "served": None}
            try:
                rec["json"] = json.loads(body) if body else None
            except ValueError:
                pass
            self.requests.append(rec)
            return rec

    def _scripted(self, method, path):
        with self.lock:
            for r in self.routes:
                if (r.method is None or r.method == method) and r.rx.search(path) and r.responses:
                    resp = r.responses[0]
                    if len(r.responses) > 1 or not r.sticky:
                        r.responses.pop(0)
                    return resp
        return None

    def handle(self, method, raw_path, headers, body):
        """Returns (status, headers, body bytes) and records the exchange."""
        rec = self._record(method, raw_path, headers, body)
        resp = self._scripted(method, raw_path)
        if resp is not None and resp.get("delay"):
            time.sleep(float(resp["delay"]))
        if resp is None:
            status, doc, extra = self._serve(method, raw_path, rec)
        elif "status" not in resp and "body" not in resp:
            status, doc, extra = self._serve(method, raw_path, rec)
        else:
            status = resp.get("status", 200)
            doc = resp.get("body", envelope())
            extra = dict(resp.get("headers", {}))
        data = doc.encode() if isinstance(doc, str) else json.dumps(doc).encode()
        with self.lock:
            rec["status"] = status
            rec["answered"] = time.monotonic()
            self.lock.notify_all()
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(extra)
        return status, hdrs, data

    def _serve(self, method, raw_path, rec):
        u = urllib.parse.urlsplit(raw_path)
        path = u.path
        query = urllib.parse.parse_qs(u.query)
        if self.token is not None:
            auth = rec["headers"].get("authorization", "")
            if auth != "Bearer " + self.token:
                return 401, error_envelope(10000, "Authentication error"), {}
        prefix = "/client/v4/accounts/%s/" % self.account_id
        if not path.startswith(prefix):
            return 404, error_envelope(7003, "Could not route to %s, perhaps your object "
                                             "identifier is invalid?" % path), {}
        rest = path[len(prefix):]
        m = re.fullmatch(r"workers/scripts/([^/]+)/deployments", rest)
        if m and method == "GET":
            with self.lock:
                deps = [dict(d) for d in self.deployments.get(m.group(1), [])]
            if not deps and m.group(1) not in self.deployments:
                return 404, error_envelope(10007, "This Worker does not exist on your account."), {}
            return 200, envelope({"deployments": deps}), {}
        if rest == "workers/observability/telemetry/query" and method == "POST":
            return self._observability(rec)
        m = re.fullmatch(r"builds/workers/([^/]+)/builds", rest)
        if m and method == "GET":
            with self.lock:
                builds = [dict(b) for b in self.builds.get(m.group(1), [])]
            page = int((query.get("page") or ["1"])[0])
            per = int((query.get("per_page") or ["20"])[0])
            chunk = builds[(page - 1) * per:page * per]
            info = {"page": page, "per_page": per, "count": len(chunk),
                    "total_count": len(builds),
                    "total_pages": max(1, (len(builds) + per - 1) // per)}
            return 200, envelope(chunk, info), {}
        m = re.fullmatch(r"builds/builds/([^/]+)/logs", rest)
        if m and method == "GET":
            return self._build_logs(m.group(1), (query.get("cursor") or [None])[0], rec)
        m = re.fullmatch(r"workers/scripts/([^/]+)/tails", rest)
        if m and method == "POST":
            with self.lock:
                self.tail_seq += 1
                tid = "tail%04d" % self.tail_seq
                self.tails[tid] = m.group(1)
                port = self.ws_port
            if port is None:
                return 500, error_envelope(10013, "no tail server"), {}
            return 200, envelope({"id": tid,
                                  "url": "%s://127.0.0.1:%d/%s" % (self.ws_scheme, port, tid),
                                  "expires_at": rfc3339(time.time() + self.tail_ttl)}), {}
        m = re.fullmatch(r"workers/scripts/([^/]+)/tails/([^/]+)", rest)
        if m and method == "DELETE":
            with self.lock:
                self.tails.pop(m.group(2), None)
                self.deleted_tails.append(m.group(2))
            return 200, envelope(None), {}
        if rest == "workers/scripts" and method == "GET":
            with self.lock:
                return 200, envelope([{"id": n} for n in self.scripts]), {}
        return 404, error_envelope(7003, "Could not route to %s, perhaps your object identifier "
                                         "is invalid?" % path), {}

    def _observability(self, rec):
        q = rec["json"]
        if not isinstance(q, dict) or "queryId" not in q or "timeframe" not in q:
            return 400, error_envelope(10001, "queryId and timeframe are required"), {}
        tf = q["timeframe"]
        lo, hi = int(tf["from"]), int(tf["to"])
        limit = int(q.get("limit", 50))
        services = None
        for f in _leaves((q.get("parameters") or {}).get("filters") or []):
            if f.get("key") == "$metadata.service" and f.get("operation") in ("in", "eq"):
                services = set(str(f.get("value", "")).split(","))
        with self.lock:
            evs = sorted((e for e in self.events if lo <= e["timestamp"] <= hi and
                          (services is None or e["$metadata"]["service"] in services)),
                         key=lambda e: (e["timestamp"], e["$metadata"]["id"]))
        offset = q.get("offset")
        if offset:
            ids = [e["$metadata"]["id"] for e in evs]
            evs = evs[ids.index(offset) + 1:] if offset in ids else []
        page = evs[:limit]
        with self.lock:
            rec["served"] = [e["$metadata"]["id"] for e in page]
        return 200, envelope({
            "run": {"id": "run-%d" % rec["seq"], "status": "COMPLETED"},
            "statistics": {"elapsed": 0.01, "rows_read": len(evs), "bytes_read": 0},
            "events": {"count": len(page), "events": page, "fields": [], "series": []},
        }), {}

    def _build_logs(self, uuid, cursor, rec):
        with self.lock:
            if uuid not in self.build_logs:
                return 404, error_envelope(12002, "build not found"), {}
            log = list(self.build_logs[uuid])
            status = "stopped"
            for lst in self.builds.values():
                for b in lst:
                    if b["build_uuid"] == uuid:
                        status = b.get("status", "stopped")
        start = 0
        if cursor is not None:
            if not re.fullmatch(r"c\d+", cursor) or int(cursor[1:]) > len(log):
                return 400, error_envelope(12003, "invalid cursor"), {}
            start = int(cursor[1:])
        end = min(len(log), start + self.log_page)
        more = end < len(log)
        if more:
            nxt = "c%d" % end
        elif status != "stopped":
            nxt = "c%d" % end  # the build still runs: more lines may come
        else:
            nxt = None
        with self.lock:
            rec["served"] = (start, end)
        return 200, envelope({"lines": log[start:end], "cursor": nxt, "truncated": more}), {}


def write_token(path, token=TOKEN):
    """Writes the API token file (mode 0600) the daemon's cloudflare: section reads."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return path


def cloudflare_section(fake, token_file, timeout="5s"):
    """The daemon's `cloudflare:` section pointing at the fake."""
    return {"account_id": fake.account_id, "api_token_file": token_file,
            "base_url": fake.base_url, "timeout": timeout}


def _leaves(filters):
    for f in filters:
        if isinstance(f, dict) and isinstance(f.get("filters"), list):
            yield from _leaves(f["filters"])
        elif isinstance(f, dict):
            yield f


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


def _handler(fake):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, BODY_MAX)) if length > 0 else b""
            status, headers, data = fake.handle(self.command, self.path, dict(self.headers), body)
            send_reply(self, status, headers, data)

        do_GET = _any
        do_POST = _any
        do_PUT = _any
        do_DELETE = _any
        do_PATCH = _any

    return Handler


class FakeApiCase(DaemonTestCase):
    """A fake Cloudflare API (self.fake) and the token file of its cloudflare: section
    (self.token_file). The daemon a test starts goes in self.d: it is stopped at the end, and
    its log must not hold the token."""

    def setUp(self):
        super().setUp()
        self.fake = FakeCloudflare().start()
        self.addCleanup(self.fake.stop)
        self.token_file = write_token(self.path("cf.token"))
        self.d = None

    def tearDown(self):
        if self.d is not None:
            if self.d.alive():
                self.d.stop()
            self.assertNotIn(TOKEN, self.d.stderr_text(), "the API token appeared in the log")
        super().tearDown()
