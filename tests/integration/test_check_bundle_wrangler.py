#!/usr/bin/env python3
"""--check-bundle against real wrangler: on every fixture in tests/data/bundles, the module
names cfwatchd computes (JSON "modules") equal the files `wrangler deploy --dry-run --outdir`
writes. Fixtures whose expected.json has "wrangler_error" must make wrangler fail with that
message instead. In the normal build (not under ASan, where the module sets cannot differ, nor
memcheck, where the file skips itself) the same comparison runs on the real-project set of
tests/data/bundles-real
(projects and variants), where each copy is first given what the reduction left out and
wrangler needs: the assets directory its configuration names, and a date for the
"%COMPAT_DATE" placeholder of workers-py's test Workers. Projects listed under "no_wrangler"
in that set's expected.json (with the reason) are not run.

Installs the npm package wrangler@4 into $CFW_BUILD_DIR/npm (cached between runs). When node
or npm is missing or the npm registry cannot be reached it prints "SKIPPED: <reason>" and exits
77, which ctest must map to "skipped" (SKIP_RETURN_CODE 77): a skip never counts as a pass.
"""
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import npm_wrangler  # noqa: E402

CFWATCHD = os.path.abspath(os.environ["CFWATCHD"]) if os.environ.get("CFWATCHD") else ""
SOURCE = os.environ.get("CFW_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("CFW_BUILD_DIR", os.path.join(SOURCE, "build"))
FIXTURES = os.path.join(SOURCE, "tests", "data", "bundles")
REAL = os.path.join(SOURCE, "tests", "data", "bundles-real")
ASSETS = re.compile(r'"directory"\s*:\s*"([^"]+)"|^\s*directory\s*=\s*"([^"]+)"', re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def skip(reason):
    print(f"SKIPPED: {reason}")
    sys.exit(SKIP)


def ensure_wrangler():
    return npm_wrangler.ensure()


def wrangler_env(tmp):
    env = dict(os.environ)
    env.update({
        "CLOUDFLARE_ACCOUNT_ID": "0123456789abcdef0123456789abcdef",
        "CLOUDFLARE_API_TOKEN": "dummy-token-for-dry-run",
        "WRANGLER_SEND_METRICS": "false",
        "WRANGLER_LOG_PATH": os.path.join(tmp, "logs"),
        "XDG_CONFIG_HOME": os.path.join(tmp, "xdg"),
        "CI": "true",
        "NO_COLOR": "1",
        "FORCE_COLOR": "0",
    })
    return env


def outdir_modules(outdir):
    names = set()
    for dirpath, _dirs, files in os.walk(outdir):
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), outdir).replace(os.sep, "/")
            names.add(rel)
    names.discard("README.md")  # wrangler's own note about the output directory
    return names


def cfwatchd_modules(project, env_name):
    cmd = [CFWATCHD, "--check-bundle", project, "--format", "json"]
    if env_name:
        cmd += ["--env", env_name]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if out.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} exited {out.returncode}: {out.stderr.strip()}")
    return set(json.loads(out.stdout)["modules"])


def prepare_real(project):
    """What the reduction of a real project left out and wrangler needs (see the docstring)."""
    for name in ("wrangler.jsonc", "wrangler.json", "wrangler.toml"):
        path = os.path.join(project, name)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if "%COMPAT_DATE" in text:
            text = text.replace("%COMPAT_DATE", "2025-11-01")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        for m in ASSETS.finditer(text):
            os.makedirs(os.path.join(project, m.group(1) or m.group(2)), exist_ok=True)
        break


def compare_one_real(wb, kind, name):
    """wrangler's and cfwatchd's module names for one real project: (ok, message)."""
    with tempfile.TemporaryDirectory(prefix="cfw-wrangler-") as tmp:
        project = os.path.join(tmp, "project")
        shutil.copytree(os.path.join(REAL, kind, name), project)
        prepare_real(project)
        outdir = os.path.join(tmp, "out")
        res = subprocess.run([wb, "deploy", "--dry-run", "--outdir", outdir], cwd=project,
                             env=wrangler_env(tmp), capture_output=True, text=True, timeout=300)
        if res.returncode != 0:
            return False, (f"{name}: wrangler deploy --dry-run exited {res.returncode}:\n"
                           f"{ANSI.sub('', res.stdout + res.stderr)[-3000:]}")
        theirs = outdir_modules(outdir)
        ours = cfwatchd_modules(project, None)
        if theirs == ours:
            return True, f"{name}: {len(ours)} modules"
        return False, (f"{name}: module names differ\n"
                       f"  only wrangler:  {sorted(theirs - ours)}\n"
                       f"  only cfwatchd:  {sorted(ours - theirs)}")


def compare_real(wb):
    """Module names on the real-project set, a few wrangler runs at a time: (passed, failed)."""
    with open(os.path.join(REAL, "expected.json"), encoding="utf-8") as f:
        table = json.load(f)
    skipped = table.get("no_wrangler", {})
    jobs = []
    for kind in ("projects", "variants"):
        for name in sorted(table[kind]):
            if name in skipped:
                print(f"--   {name}: not run under wrangler: {skipped[name]}")
            else:
                jobs.append((kind, name))
    passed = failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for ok, message in pool.map(lambda j: compare_one_real(wb, *j), jobs):
            print(("ok   " if ok else "FAIL ") + message)
            passed += ok
            failed += not ok
    return passed, failed


def sanitized():
    """True when $CFWATCHD is an ASan build."""
    with open(CFWATCHD, "rb") as f:
        return b"__asan_init" in f.read()


def main():
    if not CFWATCHD or not os.access(CFWATCHD, os.X_OK):
        print("FAIL: $CFWATCHD is not set to the cfwatchd binary")
        return 1
    if "valgrind" in os.environ.get("CFWATCHD_WRAPPER", ""):
        # what this compares is wrangler's module set with ours, not memory: the normal and
        # ASan suites run it, memcheck would only make each --check-bundle 30 times slower
        return skip("a comparison with wrangler, run by the normal and ASan suites")
    probe = subprocess.run([CFWATCHD, "--check-bundle", "--help"], capture_output=True,
                           text=True, timeout=60)
    if probe.returncode != 0 or "check-bundle" not in probe.stdout:
        print("FAIL: `cfwatchd --check-bundle --help` does not work: the --check-bundle flag is "
              "not wired into daemon/main.c (it must call cfw_check_bundle_main)")
        return 1
    wb = ensure_wrangler()
    version = subprocess.run([wb, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"wrangler {version}")
    passed = failed = 0
    for name in sorted(os.listdir(FIXTURES)):
        src = os.path.join(FIXTURES, name)
        if not os.path.isfile(os.path.join(src, "expected.json")):
            continue
        with open(os.path.join(src, "expected.json")) as f:
            expected = json.load(f)
        runs = [(None, expected)]
        if "env" in expected:
            runs.append((expected["env"]["name"], expected["env"]))
        for env_name, exp in runs:
            label = name + (f" --env {env_name}" if env_name else "")
            with tempfile.TemporaryDirectory(prefix="cfw-wrangler-") as tmp:
                project = os.path.join(tmp, "project")
                shutil.copytree(src, project, ignore=shutil.ignore_patterns("expected.json"))
                outdir = os.path.join(tmp, "out")
                cmd = [wb, "deploy", "--dry-run", "--outdir", outdir]
                if env_name:
                    cmd += ["--env", env_name]
                res = subprocess.run(cmd, cwd=project, env=wrangler_env(tmp), capture_output=True,
                                     text=True, timeout=300)
                text = ANSI.sub("", res.stdout + res.stderr)
                want_error = expected.get("wrangler_error") if env_name is None else None
                if want_error:
                    if res.returncode != 0 and want_error in text:
                        print(f"ok   {label}: wrangler fails with: {want_error}")
                        passed += 1
                    else:
                        print(f"FAIL {label}: wanted wrangler to fail with {want_error!r}; "
                              f"exit {res.returncode}:\n{text[-3000:]}")
                        failed += 1
                    continue
                if res.returncode != 0:
                    print(f"FAIL {label}: wrangler deploy --dry-run exited {res.returncode}:\n"
                          f"{text[-3000:]}")
                    failed += 1
                    continue
                theirs = outdir_modules(outdir)
                ours = cfwatchd_modules(project, env_name)
                if theirs == ours:
                    print(f"ok   {label}: {len(ours)} modules: {', '.join(sorted(ours))}")
                    passed += 1
                else:
                    print(f"FAIL {label}: module names differ\n"
                          f"  only wrangler:  {sorted(theirs - ours)}\n"
                          f"  only cfwatchd:  {sorted(ours - theirs)}")
                    failed += 1
    if sanitized():
        # the module sets do not depend on the build: the normal suite compares the real set;
        # ASan has the same --check-bundle runs on it in test_check_bundle_real.py
        print("--   the real-project set: compared by the normal suite")
    else:
        real_passed, real_failed = compare_real(wb)
        passed += real_passed
        failed += real_failed
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
