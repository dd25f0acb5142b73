#!/usr/bin/env bash
# Time `cfwatchd --once --format json FILE` (default -j: every CPU, then -j 1: one core) against
# `grep -E -c -f`, `grep -P -c` and `rg -c` on the same mixed log.
#
# usage: bench/once-vs-grep.sh [--size 200M] [--seed 1] [--mix default|json] [--runs 5]
#                              [--file FILE] [--build DIR] [--no-cfwatchd] [--scan full]
# Environment: the same settings as BUILD, SIZE, SEED, MIX, SCAN, RUNS, FILE, OUT (results dir);
# BENCH_NO_HYPERFINE=1 times with a shell loop instead; BENCH_LC_ALL (default C.UTF-8).
#
# Steps: build cfwatchd (Release) if needed; generate the log with bench/gen-mixed.py if missing;
# warm the page cache; time each tool (hyperfine when installed, best of N runs; else a loop);
# peak RSS with /usr/bin/time -v; compare cfwatchd's incident counts with grep/rg line counts and
# with the generator's known counts. Results: a table on stdout and in $OUT/results.md, raw data
# in $OUT/*.json.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
SIZE=${SIZE:-200M}
SEED=${SEED:-1}
RUNS=${RUNS:-5}
FILE=${FILE:-}
OUT=${OUT:-}
MIX=${MIX:-default}
SCAN=${SCAN:-}
WITH_CFWATCHD=1

while [ $# -gt 0 ]; do
    case "$1" in
        --size) SIZE=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --file) FILE=$2; shift 2 ;;
        --mix) MIX=$2; shift 2 ;;
        --scan) SCAN=$2; shift 2 ;;
        --build) BUILD=$2; shift 2 ;;
        --no-cfwatchd) WITH_CFWATCHD=0; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "once-vs-grep.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

case "$MIX" in
    default) FILE=${FILE:-$BUILD/bench-data/mixed-$SIZE-seed$SEED.log} ;;
    json) FILE=${FILE:-$BUILD/bench-data/mixed-json-$SIZE-seed$SEED.log} ;;
    *) echo "once-vs-grep.sh: --mix is default or json" >&2; exit 2 ;;
esac
SCAN_ARGS=()
if [ -n "$SCAN" ]; then SCAN_ARGS=(--scan "$SCAN"); fi
OUT=${OUT:-$BUILD/bench-results}
CFWATCHD=$BUILD/cfwatchd
mkdir -p "$OUT" "$(dirname "$FILE")"
# The same locale for every tool: UTF-8, as cfwatchd matches in PCRE2 UTF mode.
export LC_ALL=${BENCH_LC_ALL:-C.UTF-8}

say() { printf '%s\n' "$*" >&2; }
# Quotes one argument for a POSIX shell (hyperfine runs commands through sh -c).
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
shcmd() { local out="" a; for a in "$@"; do out+="$(shq "$a") "; done; printf '%s' "${out% }"; }

# ---- 1. build ----------------------------------------------------------------------------
if [ "$WITH_CFWATCHD" = 1 ]; then
    if [ ! -f "$BUILD/CMakeCache.txt" ]; then
        say "configuring $BUILD (Release)"
        cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCFW_WERROR=ON >/dev/null
    fi
    btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
    [ "$btype" = Release ] || say "warning: $BUILD is a '$btype' build, not Release"
    cmake --build "$BUILD" -j2 --target cfwatchd >/dev/null
fi

# ---- 2. input ----------------------------------------------------------------------------
if [ ! -s "$FILE" ] || [ ! -s "$FILE.counts.json" ]; then
    say "generating $FILE ($SIZE, seed $SEED)"
    python3 "$ROOT/bench/gen-mixed.py" --size "$SIZE" --seed "$SEED" --mix "$MIX" --out "$FILE" >&2
fi
BYTES=$(stat -c %s "$FILE")
say "warming the page cache"
cat "$FILE" >/dev/null

# Classes: name, rule, pattern, expected events, expected grep lines (from the generator).
mapfile -t CLASSES < <(python3 - "$FILE.counts.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))["classes"]
for name in sorted(c):
    k = c[name]
    print("\t".join([name, k["rule"], k["pattern"], str(k["events"]), str(k["grep_lines"])]))
EOF
)
ALL_PATTERN=$(python3 - "$FILE.counts.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))["classes"]
print("|".join("(?:%s)" % c[n]["pattern"] for n in sorted(c)))
EOF
)

# The same class patterns as an ERE file for grep -E -f (one per line; (?: ) groups made plain).
ERE_FILE=$OUT/patterns.ere
python3 - "$FILE.counts.json" >"$ERE_FILE" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))["classes"]
for n in sorted(c):
    print(c[n]["pattern"].replace("(?:", "("))
EOF

# ---- 3. timing ---------------------------------------------------------------------------
HAVE_HYPERFINE=0
[ -z "${BENCH_NO_HYPERFINE:-}" ] && command -v hyperfine >/dev/null && HAVE_HYPERFINE=1
TIMES=$OUT/times.tsv
# Output goes to a real file, never /dev/null: GNU grep stops at the first match when its output
# is /dev/null (it only needs the exit status then), which would time nothing.
SINK=$OUT/.tool-output
: >"$TIMES"

# time_it NAME CMD...: best wall time of $RUNS runs (after one warm-up), in seconds.
time_it() {
    local name=$1; shift
    local best
    if [ "$HAVE_HYPERFINE" = 1 ]; then
        hyperfine --style none --runs "$RUNS" --warmup 1 -i --output=pipe \
            --export-json "$OUT/time-$name.json" -- "$(shcmd "$@")" >/dev/null
        best=$(python3 -c 'import json, sys
print("%.6f" % min(json.load(open(sys.argv[1]))["results"][0]["times"]))' "$OUT/time-$name.json")
    else
        local i t0 t1 ns=
        "$@" >"$SINK" 2>/dev/null || true
        for ((i = 0; i < RUNS; i++)); do
            t0=$(date +%s%N); "$@" >"$SINK" 2>/dev/null || true; t1=$(date +%s%N)
            if [ -z "$ns" ] || [ $((t1 - t0)) -lt "$ns" ]; then ns=$((t1 - t0)); fi
        done
        best=$(printf '%d.%09d' $((ns / 1000000000)) $((ns % 1000000000)))
    fi
    local rss=- cpu=- tv
    if [ -x /usr/bin/time ]; then
        # time -v reports on stderr after the tool's own stderr; keep only its last lines.
        tv=$(/usr/bin/time -v "$@" 2>&1 >"$SINK" | tail -25 || true)
        rss=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' <<<"$tv")
        cpu=$(awk -F': ' '/User time \(seconds\)|System time \(seconds\)/ {t += $2}
                          END {printf "%.2f", t}' <<<"$tv")
    fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$best" "${rss:--}" "${cpu:--}" >>"$TIMES"
    say "  $name: best $best s, CPU ${cpu:--} s, peak RSS ${rss:--} KiB"
}

say "timing (best of $RUNS$([ "$HAVE_HYPERFINE" = 1 ] && echo ', hyperfine'))"
if [ "$WITH_CFWATCHD" = 1 ]; then
    set +e
    "$CFWATCHD" --once --format json "${SCAN_ARGS[@]}" "$FILE" >"$OUT/report.json" \
        2>"$OUT/report.stderr"
    rc=$?
    set -e
    if [ "$rc" -gt 1 ] || ! python3 -c 'import json, sys
json.load(open(sys.argv[1]))["incidents"]' "$OUT/report.json" 2>/dev/null; then
        say "cfwatchd --once did not produce a JSON report (exit $rc); stderr:"
        head -5 "$OUT/report.stderr" >&2
        say "rerun with --no-cfwatchd to time grep and rg only"
        exit 3
    fi
    # the default -j (one worker per CPU: a large file is scanned in parts), then one core
    time_it cfwatchd "$CFWATCHD" --once --format json "${SCAN_ARGS[@]}" "$FILE"
    time_it cfwatchd1 "$CFWATCHD" --once -j 1 --format json "${SCAN_ARGS[@]}" "$FILE"
fi
time_it grepE-all grep -E -c -f "$ERE_FILE" "$FILE"
time_it grep-all grep -P -c "$ALL_PATTERN" "$FILE"
time_it rg-all rg -c "$ALL_PATTERN" "$FILE"
for row in "${CLASSES[@]}"; do
    IFS=$'\t' read -r name _rule pattern _ev _gl <<<"$row"
    time_it "grep-$name" grep -P -c "$pattern" "$FILE"
    time_it "rg-$name" rg -c "$pattern" "$FILE"
done

# ---- 4. counts ---------------------------------------------------------------------------
COUNTS=$OUT/counts.tsv
: >"$COUNTS"
for row in "${CLASSES[@]}"; do
    IFS=$'\t' read -r name rule pattern events glines <<<"$row"
    g=$(grep -P -c "$pattern" "$FILE" || true)
    r=$(rg -c "$pattern" "$FILE" || true)
    c=-
    if [ "$WITH_CFWATCHD" = 1 ]; then
        c=$(python3 -c 'import json, sys
incs = json.load(open(sys.argv[1]))["incidents"]
# a failure fixed by a later deploy in the input and back again: occurrences counts every opening
print(sum(i.get("occurrences", i["count"]) for i in incs if i["rule"] == sys.argv[2]))' \
            "$OUT/report.json" "$rule")
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rule" "$events" "$glines" "$c" "${g:-0}" \
        "${r:-0}" >>"$COUNTS"
done

# ---- 5. report ---------------------------------------------------------------------------
REPORT_ARGS=("$TIMES" "$COUNTS" "$BYTES" "$FILE" "$OUT" "$RUNS" "$HAVE_HYPERFINE")
python3 - "${REPORT_ARGS[@]}" <<'EOF' | tee "$OUT/results.md"
import json, os, subprocess, sys
times_f, counts_f, nbytes, path, out, runs, hf = sys.argv[1:]
nbytes = int(nbytes)
times = {}
for line in open(times_f):
    name, t, rss, cpu = line.rstrip("\n").split("\t")
    times[name] = (float(t), rss, cpu)
def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"
def ver(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        return "?"
print("## once-vs-grep: %s (%.1f MB), best of %s runs%s" % (
    os.path.basename(path), nbytes / 1e6, runs, " (hyperfine)" if hf == "1" else ""))
print()
print("Machine: %d CPUs (nproc), %s, load average %s; %s; %s; %s" % (
    os.cpu_count(), cpu(), open("/proc/loadavg").read().split()[0], ver(["grep", "--version"]),
    ver(["rg", "--version"]),
    ver([os.path.join(os.path.dirname(out), "cfwatchd"), "--version"])))
print()
print("| tool | classes per pass | best wall (s) | MB/s | CPU s (1 run) | peak RSS (MiB) "
      "| cfwatchd wall / tool wall |")
print("|---|---|---:|---:|---:|---:|---:|")
base = times.get("cfwatchd", (None,))[0]
for name, (t, rss, cpu) in times.items():
    one_pass = name in ("cfwatchd", "cfwatchd1", "grep-all", "grepE-all", "rg-all")
    scope = "all (one pass)" if one_pass else name.split("-", 1)[1]
    tool = name.split("-", 1)[0]
    tool = {"grep": "grep -P -c", "grepE": "grep -E -c -f", "rg": "rg -c",
            "cfwatchd": "cfwatchd --once --format json",
            "cfwatchd1": "cfwatchd --once -j 1 --format json"}[tool]
    mib = "%.1f" % (int(rss) / 1024) if rss not in ("-", "") else "-"
    ratio = "%.2fx" % (base / t) if base else "-"
    print("| %s | %s | %.3f | %.0f | %s | %s | %s |" % (tool, scope, t, nbytes / 1e6 / t, cpu,
                                                      mib, ratio))
per_class = [v[0] for n, v in times.items() if n.startswith("grep-") and n != "grep-all"]
if base and per_class:
    print()
    print("cfwatchd is %.2fx the time of grep -E -c -f (one pass), %.2fx the time of one "
          "combined grep -P pass, %.2fx the time of rg -c (one pass) and %.2fx the time of %d "
          "separate grep -P passes (one per class)." % (
              base / times["grepE-all"][0], base / times["grep-all"][0], base / times["rg-all"][0],
              base / sum(per_class), len(per_class)))
if base and "cfwatchd1" in times:
    print()
    print("cfwatchd's default -j uses every CPU (%d here; one large file is scanned in parts); "
          "on one core (-j 1) it takes %.2fx the time of grep -E -c -f." % (
              os.cpu_count(), times["cfwatchd1"][0] / times["grepE-all"][0]))
print()
print("| class | rule | generated events | generated lines | cfwatchd count | grep -P -c "
      "| rg -c | agree |")
print("|---|---|---:|---:|---:|---:|---:|---|")
for line in open(counts_f):
    name, rule, ev, gl, c, g, r = line.rstrip("\n").split("\t")
    notes = []
    if c != "-" and c != ev:
        notes.append("cfwatchd %s vs %s events" % (c, ev))
    if g != gl or r != gl:
        notes.append("grep/rg %s/%s vs %s lines" % (g, r, gl))
    if c != "-" and c != g and not notes:
        notes.append("differ by design (see README)")
    print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
        name, rule, ev, gl, c, g, r, "; ".join(notes) if notes else "yes"))
EOF
say "results in $OUT/results.md"
