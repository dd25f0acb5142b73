#!/usr/bin/env bash
# Times `cfwatchd --check-bundle` on a generated 2,000-file Python Worker project.
#
# usage: bench/bundle-bench.sh [FILES]        (default 2000)
# env:   CFWATCHD  the binary (default: build/cfwatchd next to this script's repo)
#        RUNS      timed runs (default 20)
# Uses hyperfine when installed, otherwise a loop timed with date +%s%N. Prints the figure;
# the generated project is removed afterwards.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
files="${1:-2000}"
runs="${RUNS:-20}"
bin="${CFWATCHD:-$repo/build/cfwatchd}"

if [[ ! -x "$bin" ]]; then
    echo "bundle-bench: $bin is not executable; build first or set CFWATCHD" >&2
    exit 2
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/cfw-bundle-bench-XXXXXX")"
trap 'rm -rf "$work"' EXIT

python3 "$here/gen-bundle-project.py" "$work/project" "$files"
# One run to show what is measured (and that it works).
set +e
"$bin" --check-bundle "$work/project" --format json >"$work/report.json"
rc=$?
set -e
if [[ $rc -gt 1 ]]; then
    echo "bundle-bench: cfwatchd --check-bundle failed (exit $rc)" >&2
    exit 1
fi
python3 - "$work/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"modules: {len(r['modules'])}, findings: {len(r['findings'])}")
PY

if command -v hyperfine >/dev/null 2>&1; then
    hyperfine --warmup 3 --runs "$runs" -i -N \
        "$bin --check-bundle $work/project --format json" \
        --export-json "$work/hyperfine.json" >/dev/null
    python3 - "$work/hyperfine.json" "$files" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(f"check-bundle on {sys.argv[2]} files: mean {r['mean']*1000:.1f} ms "
      f"± {r['stddev']*1000:.1f} ms (min {r['min']*1000:.1f}, max {r['max']*1000:.1f}, "
      f"{len(r['times'])} runs, hyperfine)")
PY
else
    total=0
    best=""
    for _ in $(seq "$runs"); do
        t0=$(date +%s%N)
        "$bin" --check-bundle "$work/project" --format json >/dev/null || true
        t1=$(date +%s%N)
        d=$(( (t1 - t0) / 1000 ))
        total=$(( total + d ))
        if [[ -z "$best" || $d -lt $best ]]; then best=$d; fi
    done
    echo "check-bundle on $files files: mean $(( total / runs / 1000 )) ms" \
         "(min $(( best / 1000 )) ms, $runs runs, date +%s%N loop)"
fi
