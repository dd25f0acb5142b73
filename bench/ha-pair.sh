#!/usr/bin/env bash
# The HA pair's figures (docs/scaling.md): runs tests/integration/test_ha_alertmanager.py RUNS
# times (two cfwatchd daemons, a two-node prometheus-alertmanager cluster on loopback, one
# webhook receiver) and prints, per run, the notifications the receiver got per incident and
# how long after its daemon was killed an incident only that daemon saw was resolved
# (ends_after 2s, group_interval 1s).
#
# usage: bench/ha-pair.sh [--runs 5] [--build DIR]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-5}
BUILD=${BUILD:-$ROOT/build}
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --build) BUILD=$2; shift 2 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "ha-pair.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export CFWATCHD=$BUILD/cfwatchd CFW_SOURCE_DIR=$ROOT
for i in $(seq 1 "$RUNS"); do
    out=$(python3 "$ROOT/tests/integration/test_ha_alertmanager.py" 2>&1) || {
        echo "run $i failed:" >&2
        echo "$out" >&2
        exit 1
    }
    echo "run $i:$(echo "$out" | sed -n 's/^.*figures://p')"
done
