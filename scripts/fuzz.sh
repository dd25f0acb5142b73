#!/usr/bin/env bash
# Runs the libFuzzer targets (tests/fuzz/fuzz_<target>.c) for a bounded time or number of runs
# each and prints executions and coverage per target.
#
#   scripts/fuzz.sh [--seconds N] [--runs N] [--jobs N] [--workers N] [--build DIR] [--no-build]
#                   [--keep] [--max-len N] [target...]
#
#   --seconds N  time per target (default 60; 0: no time bound, then --runs is needed)
#   --runs N     executions per target (default: unbounded, the time decides), shared among its
#                workers
#   --jobs N     targets run at once (default 1; the machine has 2 cores)
#   --workers N  libFuzzer processes per target on its one working corpus (default 1; each
#                picks up the others' new inputs when it reloads the corpus): one long run on
#                every core; the report adds up their executions and speeds
#   --build DIR  the clang build directory (default build-fuzz; configured and built if needed)
#   --no-build   run DIR/fuzz/fuzz_<target> as they are (a long run on a snapshot of the binaries,
#                safe from rebuilds and from CI's runs, which use build-fuzz and its fresh corpora)
#   --keep       keep the working corpora from an earlier run (default: start from the seeds)
#   --max-len N  largest input libFuzzer makes (default 8192)
#   target...    a subset of: framer decode pipeline yaml_config rules_templates logpush sinks
#                bundle http scan websocket json (default: every tests/fuzz/fuzz_*.c)
#
# Each target starts from tests/fuzz/corpus/<target> and tests/fuzz/regressions/<target> copied
# into DIR/fuzz-work/<target> (the repository is never written), with tests/fuzz/<target>.dict.
# A crash, leak, sanitizer report, timeout or invariant violation leaves its input in
# DIR/fuzz-artifacts/<target>/ and makes the script exit 1; logs are in DIR/fuzz-logs/
# (<target>.log, and <target>-2.log ... for further workers).
# CFW_FUZZ_KNOWN=name[,name] skips the checks of findings reported but not fixed yet (see
# docs/fuzzing.md), so that a long run can go on past them; CI leaves it unset.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_PER=60
RUNS=""
JOBS=1
WORKERS=1
BUILD="$ROOT/build-fuzz"
KEEP=0
NO_BUILD=0
MAX_LEN=8192
TARGETS=()

while [[ $# -gt 0 ]]; do
    case "$1" in
    --seconds) SECONDS_PER=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --build) BUILD=$(realpath -m "$2"); shift 2 ;;
    --keep) KEEP=1; shift ;;
    --max-len) MAX_LEN=$2; shift 2 ;;
    --no-build) NO_BUILD=1; shift ;;
    -h|--help) sed -n "2,29p" "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
    esac
done
if [[ ${#TARGETS[@]} -eq 0 ]]; then
    for f in "$ROOT"/tests/fuzz/fuzz_*.c; do
        t=$(basename "$f" .c)
        TARGETS+=("${t#fuzz_}")
    done
fi
if ! [[ "$WORKERS" =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz.sh: --workers needs a number from 1" >&2
    exit 2
fi
if [[ "$SECONDS_PER" == 0 && -z "$RUNS" ]]; then
    echo "fuzz.sh: --seconds 0 needs --runs" >&2
    exit 2
fi
for t in "${TARGETS[@]}"; do
    if [[ ! -f "$ROOT/tests/fuzz/fuzz_$t.c" ]]; then
        echo "fuzz.sh: no target '$t' (tests/fuzz/fuzz_$t.c)" >&2
        exit 2
    fi
done

# Configure (clang, ASan+UBSan, libFuzzer) and build only the fuzz targets.
if [[ $NO_BUILD -eq 1 ]]; then
    for t in "${TARGETS[@]}"; do
        if [[ ! -x "$BUILD/fuzz/fuzz_$t" ]]; then
            echo "fuzz.sh: --no-build: no $BUILD/fuzz/fuzz_$t" >&2
            exit 2
        fi
    done
else
    if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
        CC=${CC:-clang} cmake -S "$ROOT" -B "$BUILD" -DCFW_FUZZ=ON -DCFW_SANITIZE=ON \
            -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    else
        # configured again, so that a target added since (tests/fuzz/fuzz_*.c) has its rule:
        # make looks a --target up before CMake's own check of the globs runs
        cmake -S "$ROOT" -B "$BUILD" >/dev/null
    fi
    build_targets=()
    for t in "${TARGETS[@]}"; do
        build_targets+=("fuzz_$t")
    done
    if ! cmake --build "$BUILD" -j2 --target "${build_targets[@]}" >"$BUILD/fuzz-build.log" 2>&1
    then
        tail -30 "$BUILD/fuzz-build.log" >&2
        exit 1
    fi
fi

mkdir -p "$BUILD/fuzz-work" "$BUILD/fuzz-artifacts" "$BUILD/fuzz-logs"

# The log of worker w (1, 2, ...) of target t.
worker_log() {
    if [[ $2 -eq 1 ]]; then
        echo "$BUILD/fuzz-logs/$1.log"
    else
        echo "$BUILD/fuzz-logs/$1-$2.log"
    fi
}

run_one() {
    local t=$1
    local work="$BUILD/fuzz-work/$t"
    local art="$BUILD/fuzz-artifacts/$t/"
    local log="$BUILD/fuzz-logs/$t.log"
    local args=(-print_final_stats=1 -artifact_prefix="$art" -timeout=25 -rss_limit_mb=2560
                -max_len="$MAX_LEN" -close_fd_mask=1)
    local w pid pids=() failed=0

    if [[ $KEEP -eq 0 ]]; then
        rm -rf "$work"
    fi
    mkdir -p "$work" "$art"
    cp -n "$ROOT/tests/fuzz/corpus/$t/"* "$work/" 2>/dev/null || true
    [[ -f "$ROOT/tests/fuzz/$t.dict" ]] && args+=(-dict="$ROOT/tests/fuzz/$t.dict")
    [[ "$SECONDS_PER" != 0 ]] && args+=(-max_total_time="$SECONDS_PER")
    [[ -n "$RUNS" ]] && args+=(-runs="$(((RUNS + WORKERS - 1) / WORKERS))")
    local dirs=("$work")
    [[ -d "$ROOT/tests/fuzz/regressions/$t" ]] && dirs+=("$ROOT/tests/fuzz/regressions/$t")
    for ((w = 1; w <= WORKERS; w++)); do
        "$BUILD/fuzz/fuzz_$t" "${args[@]}" "${dirs[@]}" >"$(worker_log "$t" "$w")" 2>&1 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || failed=1
    done
    if [[ $failed -eq 0 ]]; then
        echo ok >"$log.status"
    else
        echo FAIL >"$log.status"
    fi
}

running=0
for t in "${TARGETS[@]}"; do
    run_one "$t" &
    running=$((running + 1))
    if [[ $running -ge $JOBS ]]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait

status=0
printf '%-16s %12s %8s %7s %8s %7s  %s\n' target executions exec/s cov ft corpus result
for t in "${TARGETS[@]}"; do
    log="$BUILD/fuzz-logs/$t.log"
    execs="" speed="" why=""
    for ((w = 1; w <= WORKERS; w++)); do
        wlog=$(worker_log "$t" "$w")
        e=$(sed -n 's/^stat::number_of_executed_units: *//p' "$wlog" | tail -1)
        v=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$wlog" | tail -1)
        [[ -n "$e" ]] && execs=$((${execs:-0} + e))
        [[ -n "$v" ]] && speed=$((${speed:-0} + v))
        [[ -z "$why" ]] && why=$(grep -m1 -E 'ERROR: |invariant violated|SUMMARY' "$wlog" || true)
    done
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
    result=$(cat "$log.status")
    if [[ "$result" != ok ]]; then
        status=1
        result="FAIL: ${why:-see log} (log $log, inputs in $BUILD/fuzz-artifacts/$t/)"
    fi
    printf '%-16s %12s %8s %7s %8s %7s  %s\n' "$t" "${execs:-?}" "${speed:-?}" "${cov:-?}" \
        "${ft:-?}" "${corp:-?}" "$result"
done
exit $status
