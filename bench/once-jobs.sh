#!/usr/bin/env bash
# The speed-up of `cfwatchd --once -j N` over a serial scan (-j 1) of an archive directory.
#
# usage: bench/once-jobs.sh [--files 8] [--size 25M] [--jobs 2] [--runs 3] [--build DIR]
#                           [--dir DIR]
# Environment: the same as FILES, SIZE, JOBS, RUNS, BUILD, DIR (the archive, made if missing).
#
# Steps: build cfwatchd if needed; write FILES mixed logs (bench/gen-mixed.py, seeds 1..FILES),
# gzip every other one, into DIR; warm the page cache; time `--once --format json DIR` with
# -j 1 and -j JOBS (hyperfine -i when installed, as exit 1 only means incidents were found;
# else the best of RUNS runs of a loop); check that both print the same report byte for byte.
# Prints the times and the speed-up.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FILES=${FILES:-8}
SIZE=${SIZE:-25M}
JOBS=${JOBS:-2}
RUNS=${RUNS:-3}
BUILD=${BUILD:-$ROOT/build-bench}
DIR=${DIR:-}
while [ $# -gt 0 ]; do
    case "$1" in
        --files) FILES=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --jobs) JOBS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --build) BUILD=$2; shift 2 ;;
        --dir) DIR=$2; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "once-jobs.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
DIR=${DIR:-$BUILD/once-jobs-${FILES}x$SIZE}

if [ ! -x "$BUILD/cfwatchd" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j2 --target cfwatchd >/dev/null
fi
CFW=$BUILD/cfwatchd

if [ ! -d "$DIR" ]; then
    mkdir -p "$DIR.tmp"
    for i in $(seq 1 "$FILES"); do
        f=$DIR.tmp/$(printf 'day-%02d.log' "$i")
        python3 "$ROOT/bench/gen-mixed.py" --size "$SIZE" --seed "$i" --out "$f" >/dev/null
        rm -f "$f.counts.json"
        if [ $((i % 2)) -eq 0 ]; then
            gzip -1 "$f"
        fi
    done
    mv "$DIR.tmp" "$DIR"
fi
bytes=$(du -sb "$DIR" | cut -f1)
cat "$DIR"/* >/dev/null

# the same report, byte for byte
"$CFW" --once --format json -j 1 "$DIR" >"$BUILD/once-jobs.serial.json" || true
"$CFW" --once --format json -j "$JOBS" "$DIR" >"$BUILD/once-jobs.parallel.json" || true
if ! cmp -s "$BUILD/once-jobs.serial.json" "$BUILD/once-jobs.parallel.json"; then
    echo "once-jobs.sh: -j 1 and -j $JOBS printed different reports" >&2
    exit 1
fi

best() { # best wall time of RUNS runs of "$@", in seconds
    local b="" t s e
    for _ in $(seq 1 "$RUNS"); do
        s=$(date +%s.%N)
        "$@" >/dev/null || true
        e=$(date +%s.%N)
        t=$(echo "$e - $s" | bc -l)
        if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
    done
    printf '%.3f' "$b"
}

if command -v hyperfine >/dev/null 2>&1 && [ -z "${BENCH_NO_HYPERFINE:-}" ]; then
    hyperfine -N -i --warmup 1 --runs "$RUNS" --export-json "$BUILD/once-jobs.json" \
        "$CFW --once --format json -j 1 $DIR" "$CFW --once --format json -j $JOBS $DIR" \
        >/dev/null 2>&1 || true
    read -r t1 tn m1 mn c1 cn < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print(" ".join("%.3f" % x for x in (r[0]["min"], r[1]["min"], r[0]["median"], r[1]["median"], r[0]["user"] + r[0]["system"], r[1]["user"] + r[1]["system"])))' "$BUILD/once-jobs.json")
    echo "median: -j 1 $m1 s, -j $JOBS $mn s (speed-up $(echo "scale=2; $m1 / $mn" | bc -l)x);" \
        "CPU time (user + sys, workers included): -j 1 $c1 s, -j $JOBS $cn s"
else
    t1=$(best "$CFW" --once --format json -j 1 "$DIR")
    tn=$(best "$CFW" --once --format json -j "$JOBS" "$DIR")
fi
echo "archive: $FILES files ($((FILES / 2)) gzip), $bytes bytes on disk, $(nproc) CPUs online," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cfwatchd --once -j 1:     $t1 s (best of $RUNS)"
echo "cfwatchd --once -j $JOBS:     $tn s (best of $RUNS)"
echo "speed-up: $(echo "scale=2; $t1 / $tn" | bc -l)x; reports identical"
