#!/usr/bin/env python3
"""Small pieces the test servers and helper processes in this directory share (standard
library only): writing one HTTP answer from a BaseHTTPRequestHandler, and an event set when the
process's stdin closes (how a parent tells its helper process to stop)."""

import sys
import threading


def send_reply(handler, status, headers, data):
    """Answers the request handler holds: status, the headers (a dict), Content-Length and the
    bytes of data."""
    handler.send_response(status)
    for k, v in headers.items():
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def stdin_closed_event():
    """A threading.Event set once stdin reaches its end (or cannot be read)."""
    stop = threading.Event()

    def watch():
        try:
            sys.stdin.read()
        except OSError:
            pass
        stop.set()
    threading.Thread(target=watch, daemon=True).start()
    return stop
