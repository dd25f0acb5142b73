#!/usr/bin/env bash
# Daemon figures for issue 4: the ingest rate of a file source on the mixed log (and whether the
# daemon saturates one core doing it), RSS idle, and RSS with 100,000 open incidents.
#
# usage: bench/daemon-bench.sh [--size 200M] [--incidents 100000] [--build DIR] [--workdir DIR]
# Prints a table; nothing is asserted. Uses a Release build in build-bench (configured if needed),
# bench/gen-mixed.py for the input, and the daemon's own /metrics to know when it has read all.
# --workdir: where the watched directory and the state (journal, fsync'd) go (default /tmp);
# /dev/shm shows the ingest rate without the disk's fsync latency.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
SIZE=200M
NINC=100000
WORKDIR=/tmp
while [ $# -gt 0 ]; do
    case "$1" in
        --size) SIZE=$2; shift 2 ;;
        --incidents) NINC=$2; shift 2 ;;
        --build) BUILD=$2; shift 2 ;;
        --workdir) WORKDIR=$2; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "daemon-bench.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCFW_WERROR=ON >/dev/null
fi
cmake --build "$BUILD" -j2 --target cfwatchd >/dev/null
CFW=$BUILD/cfwatchd
DATA=$BUILD/bench-data
mkdir -p "$DATA"
MIXED=$DATA/mixed-$SIZE-seed1.log
[ -f "$MIXED" ] || python3 "$ROOT/bench/gen-mixed.py" --size "$SIZE" --seed 1 --out "$MIXED" >&2

WORK=$(mktemp -d "$WORKDIR/cfwatchd-bench-XXXXXX")
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1==m {print $2}'; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

start_daemon() { # $1 = log glob
    PORT=$(port)
    cat > "$WORK/c.yaml" <<YAML
state_dir: $WORK/state
listen: 127.0.0.1:$PORT
sources:
  - {name: bench, type: file, path: '$1', start_at: beginning, read_budget: 1048576}
incidents: {resolve_after: 1d, max_incidents: $((NINC + 1000))}
YAML
    rm -rf "$WORK/state"
    "$CFW" -c "$WORK/c.yaml" --log-level warning 2>"$WORK/stderr" &
    PID=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && return 0; sleep 0.1; done
    echo "daemon did not start: $(cat "$WORK/stderr")" >&2; exit 1
}
stop_daemon() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }

wait_bytes() { # waits until the source has delivered $1 bytes
    while :; do
        b=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^cfwatchd_source_bytes_total/ {print $2}')
        [ "${b:-0}" -ge "$1" ] && return 0
        sleep 0.05
    done
}

# ---- 1. idle RSS ----
mkdir -p "$WORK/logs"
start_daemon "$WORK/logs/*.log"
sleep 1
IDLE=$(rss_kib "$PID")
stop_daemon

# ---- 2. ingest rate on the mixed log ----
start_daemon "$WORK/logs/*.log"
BYTES=$(stat -c %s "$MIXED")
cat "$MIXED" > /dev/null   # page cache
T0=$(date +%s.%N); C0=$(cpu_ticks "$PID")
cp "$MIXED" "$WORK/logs/mixed.log"
wait_bytes "$BYTES"
T1=$(date +%s.%N); C1=$(cpu_ticks "$PID")
HZ=$(getconf CLK_TCK)
RATE=$(python3 -c "print(f'{$BYTES/1048576/($T1-$T0):.1f}')")
CPU=$(python3 -c "print(f'{100*($C1-$C0)/$HZ/($T1-$T0):.0f}')")
OPEN_MIXED=$(metric cfwatchd_incidents_open)
PEAK_MIXED=$(awk '/^VmHWM/ {print $2}' "/proc/$PID/status")
stop_daemon

# ---- 3. 100,000 open incidents ----
python3 - "$NINC" > "$WORK/many.log" <<'PY'
import sys
n = int(sys.argv[1])
for i in range(n):
    print(f"ModuleNotFoundError: No module named 'pkg_{i:06d}'")
PY
start_daemon "$WORK/many/*.log"
mkdir -p "$WORK/many"
cp "$WORK/many.log" "$WORK/many/many.log"
wait_bytes "$(stat -c %s "$WORK/many.log")"
sleep 1
OPEN=$(metric cfwatchd_incidents_open)
RSS_INC=$(rss_kib "$PID")
stop_daemon

printf '\n| measure | value |\n|---|---|\n'
printf '| machine | %s, %s cores |\n' "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" "$(nproc)"
printf '| input | %s (%s bytes), %s incidents open after it |\n' "$(basename "$MIXED")" "$BYTES" "$OPEN_MIXED"
printf '| watched directory and state | %s (%s) |\n' "$WORKDIR" "$(df --output=fstype "$WORKDIR" | tail -1)"
printf '| ingest rate, file source, mixed log | %s MiB/s at %s%% of one core |\n' "$RATE" "$CPU"
printf '| ingest per CPU second (what one busy core would take) | %s MiB |\n' \
    "$(python3 -c "print(f'{$RATE * 100 / max($CPU, 1):.1f}')")"
printf '| peak RSS while ingesting | %s KiB |\n' "$PEAK_MIXED"
printf '| RSS idle | %s KiB |\n' "$IDLE"
printf '| RSS with %s open incidents | %s KiB (%s open) |\n' "$NINC" "$RSS_INC" "$OPEN"
