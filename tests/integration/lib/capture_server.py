#!/usr/bin/env python3
"""Loopback HTTP capture server for cfwatchd delivery tests.

Two listeners on 127.0.0.1 with ephemeral ports:
  * the capture port receives what cfwatchd sends: every request is recorded, and each path
    answers from a scripted queue of responses (then a default answer);
  * the control port (always up) lets a test script responses, read the recorded requests,
    and take the capture port down and up again (connection refused while down).

Use it as a module (CaptureServer) or as a child process:
    python3 capture_server.py            # prints {"port": P, "control": C} on one line,
                                         # then serves until stdin closes or SIGTERM
Control API (JSON bodies):
    GET  /requests                       -> [{"seq","time","method","path","headers","body",
                                              "status","hmac_ok"}]
    POST /script {"path","responses":[{"status","headers","body","delay"}],"then":{...}}
    POST /hmac   {"path","secret"}       -> check X-Cfwatchd-Signature of requests to path
    POST /down   {}                      -> close the capture listener
    POST /up     {}                      -> listen again on the same port
    POST /reset  {}                      -> forget requests, scripts and HMAC secrets
"""

import hashlib
import hmac
import json
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from serve_util import send_reply, stdin_closed_event

DEFAULT = {"status": 200, "headers": {"Content-Type": "text/plain"}, "body": "ok"}
BODY_MAX = 4 * 1024 * 1024


class _State:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.scripts = {}   # path -> list of responses
        self.then = {}      # path -> default response
        self.secrets = {}   # path -> HMAC secret

    def reset(self):
        with self.lock:
            self.requests.clear()
            self.scripts.clear()
            self.then.clear()
            self.secrets.clear()


def _check_hmac(secret, headers, body):
    sig = headers.get("x-cfwatchd-signature", "")
    ts = headers.get("x-cfwatchd-timestamp", "")
    if not sig.startswith("v1=") or not ts:
        return False
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, sig[3:])


def _capture_handler(state):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, BODY_MAX)) if length > 0 else b""
            path = self.path
            headers = {k.lower(): v for k, v in self.headers.items()}
            with state.lock:
                queue = state.scripts.get(path)
                resp = queue.pop(0) if queue else state.then.get(path, DEFAULT)
                secret = state.secrets.get(path)
                rec = {
                    "seq": len(state.requests),
                    "time": time.time(),
                    "method": self.command,
                    "path": path,
                    "headers": headers,
                    "body": body.decode("utf-8", "replace"),
                    "status": resp.get("status", 200),
                    "hmac_ok": _check_hmac(secret, headers, body) if secret else None,
                }
                state.requests.append(rec)
            if resp.get("delay"):
                time.sleep(float(resp["delay"]))
            if resp.get("drop"):
                # close without any answer: a transport failure for the client
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            send_reply(self, resp.get("status", 200), resp.get("headers", {}),
                       resp.get("body", "").encode())

        do_POST = _handle
        do_GET = _handle
        do_PUT = _handle

    return Handler


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a client that gave up (timeout test, cancelled request) is not an error here
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class CaptureServer:
    def __init__(self):
        self.state = _State()
        self.port = 0
        self._cap = None
        self._cap_thread = None
        self._ctl = None

    # capture listener
    def up(self):
        if self._cap is not None:
            return
        self._cap = _Server(("127.0.0.1", self.port), _capture_handler(self.state))
        self.port = self._cap.server_address[1]
        self._cap_thread = threading.Thread(target=self._cap.serve_forever, daemon=True)
        self._cap_thread.start()

    def down(self):
        if self._cap is None:
            return
        self._cap.shutdown()
        self._cap.server_close()
        self._cap = None

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def script(self, path, responses, then=None):
        with self.state.lock:
            self.state.scripts[path] = list(responses)
            if then is not None:
                self.state.then[path] = then

    def set_hmac(self, path, secret):
        with self.state.lock:
            self.state.secrets[path] = secret

    def requests(self, path=None):
        with self.state.lock:
            return [dict(r) for r in self.state.requests if path is None or r["path"] == path]

    # control listener
    def _control_handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, obj, status=200):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.startswith("/requests"):
                    self._reply(server.requests())
                else:
                    self._reply({"error": "unknown"}, 404)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    arg = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._reply({"error": "bad json"}, 400)
                    return
                if self.path == "/script":
                    server.script(arg["path"], arg.get("responses", []), arg.get("then"))
                elif self.path == "/hmac":
                    server.set_hmac(arg["path"], arg["secret"])
                elif self.path == "/down":
                    server.down()
                elif self.path == "/up":
                    server.up()
                elif self.path == "/reset":
                    server.state.reset()
                else:
                    self._reply({"error": "unknown"}, 404)
                    return
                self._reply({"ok": True, "port": server.port})

        return Handler

    def start(self):
        self.up()
        self._ctl = _Server(("127.0.0.1", 0), self._control_handler())
        threading.Thread(target=self._ctl.serve_forever, daemon=True).start()
        return self

    @property
    def control_port(self):
        return self._ctl.server_address[1]

    def stop(self):
        self.down()
        if self._ctl is not None:
            self._ctl.shutdown()
            self._ctl.server_close()
            self._ctl = None


def main():
    srv = CaptureServer().start()
    sys.stdout.write(json.dumps({"port": srv.port, "control": srv.control_port}) + "\n")
    sys.stdout.flush()
    stop = stdin_closed_event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    stop.wait()
    srv.stop()


if __name__ == "__main__":
    main()
