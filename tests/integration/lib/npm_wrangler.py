"""The real wrangler (npm package wrangler@4) for the tests that compare with it or run it.

One install is shared by every test and build directory of a checkout: $CFW_NPM_PREFIX (set by
tests/CMakeLists.txt to <source>/build-npm-cache), else $CFW_BUILD_DIR/npm. A lock file makes
concurrent tests wait for one install instead of racing. When node or npm is missing, or the npm
registry cannot be reached, ensure() prints "SKIPPED: <reason>" and exits 77 (a skip for ctest,
never a pass); when the registry answers but the install fails, it exits 1.
"""
import fcntl
import os
import re
import shutil
import subprocess
import sys

SKIP = 77


def prefix():
    p = os.environ.get("CFW_NPM_PREFIX")
    if not p:
        p = os.path.join(os.environ.get("CFW_BUILD_DIR", "build"), "npm")
    return os.path.abspath(p)


def _skip(reason):
    print(f"SKIPPED: {reason}")
    sys.stdout.flush()
    sys.exit(SKIP)


def wrangler_bin():
    return os.path.join(prefix(), "node_modules", ".bin", "wrangler")


def _works(wb):
    if not os.path.exists(wb):
        return False
    out = subprocess.run([wb, "--version"], capture_output=True, text=True, timeout=120)
    return out.returncode == 0 and re.search(r"(^|\s)4\.\d+\.\d+", out.stdout) is not None


def ensure():
    """Returns the path of a working wrangler 4, installing it once if needed."""
    if shutil.which("node") is None:
        _skip("node is not installed")
    if shutil.which("npm") is None:
        _skip("npm is not installed")
    os.makedirs(prefix(), exist_ok=True)
    with open(os.path.join(prefix(), ".install.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wb = wrangler_bin()
        if _works(wb):
            return wb
        ping = subprocess.run(["npm", "ping"], capture_output=True, text=True, timeout=120)
        if ping.returncode != 0:
            _skip("the npm registry cannot be reached (npm ping: %s)"
                  % (ping.stderr.strip().splitlines() or ["failed"])[-1])
        inst = subprocess.run(
            ["npm", "install", "--prefix", prefix(), "--no-audit", "--no-fund", "wrangler@4"],
            capture_output=True, text=True, timeout=900)
        if inst.returncode != 0 or not _works(wb):
            print(inst.stdout[-4000:], inst.stderr[-4000:])
            print("FAIL: npm install wrangler@4 failed although the registry answers")
            sys.exit(1)
        return wb
