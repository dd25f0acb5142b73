#!/usr/bin/env bash
# Runs the integration suite once with cfwatchd under valgrind memcheck (issue 7): no invalid
# access, no definitely lost memory.
#
# usage: scripts/valgrind.sh [--build DIR] [--timeout SECONDS] [TEST_NAME...]
#   --build DIR      a build without sanitizers (default build-valgrind, RelWithDebInfo,
#                    configured and built here if needed)
#   --timeout S      per test file (default 3600)
#   TEST_NAME        only these files (e.g. test_daemon_http test_faults_exec); default: every
#                    tests/integration/test_*.py and test_*.sh except test_packaging.sh
#
# How: the harness (tests/integration/lib/daemon.py) runs whatever $CFWATCHD names, so CFWATCHD
# is set to a wrapper that execs (same pid; valgrind by absolute path, as some tests empty PATH)
#   valgrind --tool=memcheck --error-exitcode=99 --errors-for-leak-kinds=definite
#            --leak-check=full --log-file=<dir>/vg.%p.log <real cfwatchd> "$@"
# for every daemon, --once, --check-config and --test-alert run of the suite. A memcheck error or
# a definite leak makes that process exit 99 (which the tests see as a failed stop or run), and
# its log is listed at the end. CFWATCHD_WRAPPER says "valgrind" so that the fault-injection
# files skip the attacks that would take hours under memcheck and widen their latency bounds.
# The files are run directly (not through ctest, whose ENVIRONMENT property would reset
# CFWATCHD to the plain binary), two at a time (CFW_VALGRIND_JOBS; their tests bind ephemeral
# ports and private directories, as under ctest -j2).
#
# Exit status: 0 when no process reported a memcheck error or a definite leak and every test
# file passed (or skipped with 77); 1 otherwise. Logs and per-file output in DIR/valgrind/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-valgrind
TIMEOUT=3600
ONLY=()
while [ $# -gt 0 ]; do
    case "$1" in
        --build) BUILD=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        -*) echo "valgrind.sh: unknown option $1" >&2; exit 2 ;;
        *) ONLY+=("${1%.*}"); shift ;;
    esac
done
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

VALGRIND=$(command -v valgrind) || { echo "valgrind.sh: valgrind is not installed" >&2; exit 2; }
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCFW_WERROR=ON >/dev/null
fi
if grep -q '^CFW_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt"; then
    echo "valgrind.sh: $BUILD is a sanitizer build; memcheck needs a plain one" >&2
    exit 2
fi
cmake --build "$BUILD" -j2 >/dev/null
REAL=$BUILD/cfwatchd

OUT=$BUILD/valgrind
rm -rf "$OUT"
mkdir -p "$OUT/logs"
WRAPPER=$OUT/cfwatchd-memcheck
# PCRE2's JIT code is machine code memcheck cannot follow (PCRE2 is not built for valgrind):
# it reports uninitialised reads inside it. The interpreter runs instead, as it does under
# the unit's MemoryDenyWriteExecute=yes.
cat >"$WRAPPER" <<EOF
#!/bin/sh
CFW_PCRE2_NO_JIT=1
export CFW_PCRE2_NO_JIT
exec '$VALGRIND' --tool=memcheck --error-exitcode=99 --errors-for-leak-kinds=definite \\
    --leak-check=full --show-leak-kinds=definite --num-callers=30 \\
    --log-file='$OUT/logs/vg.%p.log' '$REAL' "\$@"
EOF
chmod +x "$WRAPPER"

export CFWATCHD=$WRAPPER
export CFWATCHD_WRAPPER="valgrind memcheck"
export CFW_SOURCE_DIR=$ROOT
export CFW_BUILD_DIR=$BUILD
export CFW_NPM_PREFIX=$ROOT/build-npm-cache
export PYTHONDONTWRITEBYTECODE=1

files=()
for f in "$ROOT"/tests/integration/test_*.py "$ROOT"/tests/integration/test_*.sh; do
    name=$(basename "$f")
    name=${name%.*}
    [ "$name" = test_packaging ] && continue
    if [ ${#ONLY[@]} -gt 0 ]; then
        keep=0
        for o in "${ONLY[@]}"; do [ "$o" = "$name" ] && keep=1; done
        [ $keep = 1 ] || continue
    fi
    files+=("$f")
done

# Two test files at a time (memcheck runs each daemon on one core; the machine has two), each
# into its own output; the verdicts are printed in file order once all are done.
JOBS=${CFW_VALGRIND_JOBS:-2}
run_one() {
    local f=$1 name start rc
    name=$(basename "$f")
    start=$(date +%s)
    set +e
    case "$f" in
        *.py) timeout "$TIMEOUT" python3 "$f" >"$OUT/${name%.*}.out" 2>&1 ;;
        *) timeout "$TIMEOUT" bash "$f" >"$OUT/${name%.*}.out" 2>&1 ;;
    esac
    rc=$?
    set -e
    echo "$rc $(( $(date +%s) - start ))" >"$OUT/${name%.*}.rc"
}
# Files whose verdict depends on the timing of other programs run alone, after the others: the
# two-node Alertmanager cluster of test_ha_alertmanager deduplicates by gossip within its 1 s
# peer-timeout, which a neighbour's memcheck processes starving its nodes of CPU can break (a
# node then notifies what its peer already did).
ALONE=" test_ha_alertmanager.py "
running=0
for f in "${files[@]}"; do
    case "$ALONE" in *" $(basename "$f") "*) continue ;; esac
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    run_one "$f" &
    running=$((running + 1))
done
wait || true
for f in "${files[@]}"; do
    case "$ALONE" in *" $(basename "$f") "*) run_one "$f" ;; esac
done

passed=0 failed=0 skipped=0
failed_files=()
for f in "${files[@]}"; do
    name=$(basename "$f")
    read -r rc took <"$OUT/${name%.*}.rc" || { rc=1; took=0; }
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/${name%.*}.out" | tail -n1 || true)
    case $rc in
        0) passed=$((passed + 1)); verdict=ok ;;
        77) skipped=$((skipped + 1)); verdict=skipped ;;
        *) failed=$((failed + 1)); verdict="FAILED (status $rc)"; failed_files+=("$name") ;;
    esac
    printf '%-40s %-20s %5ss  %s\n' "$name" "$verdict" "$took" "$summary"
done

# a process that found an error or a definite leak says so in its log
bad_logs=()
for log in "$OUT"/logs/vg.*.log; do
    [ -e "$log" ] || continue
    if grep -Eq 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]' "$log"; then
        bad_logs+=("$log")
    fi
done
nlogs=$(find "$OUT/logs" -name 'vg.*.log' | wc -l)
echo
echo "valgrind: $nlogs cfwatchd processes under memcheck;" \
    "${#bad_logs[@]} with errors or definite leaks"
for log in "${bad_logs[@]}"; do
    echo "---- $log ($(sed -n 's/^==[0-9]*== Command: //p' "$log" | head -n1))"
    grep -E '^==[0-9]+== ' "$log" | sed -n '1,60p'
done
# what a failed file printed last: its assertion, for a CI log that keeps only this output
for name in "${failed_files[@]}"; do
    echo "---- ${name%.*}: last lines of $OUT/${name%.*}.out"
    tail -n 25 "$OUT/${name%.*}.out"
done
echo "test files: $passed passed, $failed failed, $skipped skipped" \
    "${failed_files[*]:+(failed: ${failed_files[*]})}"
echo "output: $OUT"
[ ${#bad_logs[@]} -eq 0 ] && [ "$failed" -eq 0 ]
