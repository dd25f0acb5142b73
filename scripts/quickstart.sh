#!/bin/sh
# Installs the dependencies, builds cfwatchd, and scans the bundled sample logs with --once.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target cfwatchd
s=tests/data/corpus
echo "== cfwatchd --once on bundled sample logs (deploy output, a traceback, tail JSON, Logpush)"
set +e
build/cfwatchd --once \
    "$s/synthetic/S01-SYNTHETIC-deploy-src-import-with-note.log" \
    "$s/05-src-import-modulenotfound-excerpt.log" \
    "$s/01-deploy-python-no-module-workers-ansi.log" \
    "$s/16-js-startup-cpu-10021-largest-deps-warning.log" \
    "$s/synthetic/S02-SYNTHETIC-tail-json-python-exception.log" \
    "$s/synthetic/S03-SYNTHETIC-logpush-python-exception.log" \
    "$s/04-deploy-python-requirements-txt-10021-experimental-warning.log"
rc=$?
echo "== exit status $rc (0: nothing at warning or above, 1: incidents found, 2: error)"
[ "$rc" -le 1 ]
