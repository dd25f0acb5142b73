#!/bin/sh
# Prints one `wrangler tail --format json`-style event (pretty-printed, as wrangler does) on
# stdout and its start and exit times (ns, wall clock) on stderr, then exits with status $1.
echo "start $(date +%s%N)" >&2
cat <<'JSON'
{
  "outcome": "exception",
  "scriptName": "py-api",
  "exceptions": [
    {
      "name": "Error",
      "message": "PythonError: ModuleNotFoundError: No module named 'src'",
      "timestamp": 1718000000000
    }
  ],
  "logs": [],
  "eventTimestamp": 1718000000000
}
JSON
echo "exit $(date +%s%N)" >&2
exit "${1:-1}"
