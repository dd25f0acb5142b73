#!/usr/bin/env bash
# Soak run for issue 7: the daemon for 30 minutes (configurable) at 2,000 lines/s with rotation
# every minute, Logpush batches every 5 s, and a webhook receiver that fails one request in
# three; RSS, descriptors and outbox depth are sampled, and the run fails if any of them grows
# over the second half or if any line, record or notification is lost (see bench/soak.py).
#
# usage: bench/soak.sh [--minutes N] [--rate LINES_PER_S] [--binary PATH] [--build DIR]
#                      [--out DIR] [soak.py options...]
# The binary: --binary, else $CFWATCHD, else DIR/cfwatchd of a Release build in --build
# (default build-soak, configured and built here if needed). Prints a summary; exit 0 = PASS.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-soak
BIN=${CFWATCHD:-}
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) BIN=$2; shift 2 ;;
        --build) BUILD=$2; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; python3 "$ROOT/bench/soak.py" --help; exit 0 ;;
        *) ARGS+=("$1"); shift ;;
    esac
done

if [ -z "$BIN" ]; then
    if [ ! -f "$BUILD/CMakeCache.txt" ]; then
        cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCFW_WERROR=ON >/dev/null
    fi
    cmake --build "$BUILD" -j2 --target cfwatchd >/dev/null
    BIN=$BUILD/cfwatchd
fi
if [ ! -x "$BIN" ]; then
    echo "soak.sh: no cfwatchd binary at $BIN" >&2
    exit 2
fi
echo "soak.sh: $("$BIN" --version) ($BIN)"
export CFWATCHD=$BIN CFW_SOURCE_DIR=$ROOT
exec python3 "$ROOT/bench/soak.py" "${ARGS[@]}"
