#!/bin/sh
# Installs the dependencies, builds cfwatchd with -Werror and runs every test (ctest).
#   scripts/test.sh          normal build in build/
#   scripts/test.sh --asan   the same suite in an ASan+UBSan build in build-asan/
set -eu
cd "$(dirname "$0")/.."

dir=build
flags="-DCFW_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo"
case "${1:-}" in
    --asan)
        dir=build-asan
        flags="-DCFW_WERROR=ON -DCFW_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug"
        export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}"
        export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
        ;;
    "") ;;
    *) echo "usage: scripts/test.sh [--asan]" >&2; exit 2 ;;
esac

scripts/deps.sh --all
# shellcheck disable=SC2086
cmake -S . -B "$dir" $flags
cmake --build "$dir" -j"$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" --timeout 900
