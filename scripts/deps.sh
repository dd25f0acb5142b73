#!/bin/sh
# Installs exactly the Debian 12 packages cfwatchd needs to build, test and benchmark.
# Idempotent: packages already present are skipped, and `apt-get update` runs at most once.
set -eu

build="build-essential cmake pkg-config clang libclang-rt-14-dev
       libevent-dev libcurl4-openssl-dev libpcre2-dev libjansson-dev libsystemd-dev
       libcmocka-dev libyaml-dev zlib1g-dev libssl-dev"
test="python3 ca-certificates curl file man-db groff-base systemd procps"
extra=""
for arg in "$@"; do
    case "$arg" in
        --test) extra="$extra $test" ;;
        --bench) extra="$extra ripgrep hyperfine" ;;
        --all) extra="$extra $test ripgrep hyperfine time faketime prometheus-alertmanager systemd-journal-remote" ;;
        *) echo "deps.sh: unknown option $arg (use --test, --bench, --all)" >&2; exit 2 ;;
    esac
done

# Node.js and npm (for the tests that run the real wrangler): Debian's only where none is present,
# so a newer Node.js installed otherwise is left alone.
case "$extra" in
    *python3*) command -v npm >/dev/null 2>&1 || extra="$extra nodejs npm" ;;
esac

missing=""
for p in $build $extra; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "deps.sh: all packages present"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps.sh: done"
