#!/bin/sh
# A stand-in for `wrangler tail py-api --format json` in the daemon's exec-source tests.
#
# Usage: fake-tail.sh RUNLOG [MODE]
#   RUNLOG  a file this script appends "start <epoch seconds> <pid>" and "exit <epoch seconds>"
#           lines to, so the test can see every (re)start and the delay between runs
#   MODE    once  (default) print one tail event (pretty-printed JSON, 4-space indent, as
#                 wrangler prints it) carrying the Python exception
#                 "ModuleNotFoundError: No module named 'src'", then exit 0 (the tail session
#                 ended)
#           fail  exit 1 at once, printing an error on stderr
#           flaky exit 1 at once for the first 3 runs (counted in RUNLOG), then keep running
#           (a tail that recovered), printing nothing
set -u
runlog=$1
mode=${2:-once}
now() { date +%s.%N; }
echo "start $(now) $$" >> "$runlog"

case $mode in
fail)
    echo "✘ [ERROR] Authentication error [code: 10000]" >&2
    echo "exit $(now)" >> "$runlog"
    exit 1
    ;;
flaky)
    if [ "$(grep -c '^start ' "$runlog")" -le 3 ]; then
        echo "✘ [ERROR] A request to the Cloudflare API failed. [code: 10013]" >&2
        echo "exit $(now)" >> "$runlog"
        exit 1
    fi
    exec sleep 600
    ;;
esac

# wrangler tail prints its banner on stderr and the events on stdout.
echo "Successfully created tail, expires at 2026-01-01T06:00:00Z" >&2
echo "Connected to example-py, waiting for logs..." >&2
cat <<'JSON'
{
    "outcome": "exception",
    "scriptName": "example-py",
    "diagnosticsChannelEvents": [],
    "exceptions": [
        {
            "name": "PythonError",
            "message": "Traceback (most recent call last):\n  File \"/session/metadata/entry.py\", line 9, in fetch\n    from src.db import q\nModuleNotFoundError: No module named 'src'\n",
            "timestamp": 1760000000123
        }
    ],
    "logs": [],
    "eventTimestamp": 1760000000100,
    "event": {
        "request": {
            "url": "https://example-py.example.workers.dev/",
            "method": "GET",
            "headers": {},
            "cf": {}
        },
        "response": {
            "status": 500
        }
    },
    "scriptVersion": {
        "id": "00000000-0000-4000-8000-000000000000"
    },
    "truncated": false,
    "executionModel": "stateless"
}
JSON
echo "exit $(now)" >> "$runlog"
exit 0
