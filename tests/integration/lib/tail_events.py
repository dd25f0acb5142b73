"""TailEventMessages as Cloudflare's tail sends them (shared/FORMATS.md section 1.1), for the tests
that feed a tail client: `wrangler tail` (test_cloudflare_wrangler_tail.py) or cfwatchd's own
`cloudflare-tail` source (test_cloudflare_tail.py)."""
import json
import os
import time

VERSION = "00000000-0000-4000-8000-000000000000"


def s02_event(source_dir):
    """corpus/synthetic/S02 (a tail JSON event of a Python exception; the repository's copy of
    the shared corpus), or the same shape."""
    path = os.path.join(source_dir, "tests", "data", "corpus", "synthetic",
                        "S02-SYNTHETIC-tail-json-python-exception.log")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return tail_event("example-py", "src", "from src.db import q")


def tail_event(script, module, imp, outcome="exception", ts=None, logs=None):
    """A fetch event of script; outcome "exception" carries a Python ModuleNotFoundError for
    module raised by the import line imp."""
    ts = ts or int(time.time() * 1000)
    return {
        "outcome": outcome, "scriptName": script, "diagnosticsChannelEvents": [],
        "exceptions": [{"name": "PythonError",
                        "message": "Traceback (most recent call last):\n  File "
                                   "\"/session/metadata/entry.py\", line 9, in fetch\n    %s\n"
                                   "ModuleNotFoundError: No module named '%s'\n" % (imp, module),
                        "timestamp": ts}] if outcome == "exception" else [],
        "logs": [{"message": m, "level": "log", "timestamp": ts} for m in (logs or [])],
        "eventTimestamp": ts,
        "event": {"request": {"url": "https://%s.example.workers.dev/" % script,
                              "method": "GET", "headers": {}, "cf": {}},
                  "response": {"status": 500 if outcome != "ok" else 200}},
        "scriptVersion": {"id": VERSION}, "truncated": False, "executionModel": "stateless",
    }
