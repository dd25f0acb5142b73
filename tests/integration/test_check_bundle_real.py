#!/usr/bin/env python3
"""`cfwatchd --check-bundle` on the real-project set in tests/data/bundles-real (public Python
Worker projects reduced to what the check reads, see its README.md) and on the broken variants
of each failure class:

- every project's findings at warning or above (rule, severity, file, line) and exit code equal
  the hand-judged table in expected.json; on working projects that is no finding at all;
- every variant gives its rule, severity, place and exact fix;
- --verify (the real python3 importing main from the laid-out bundle) agrees with the static
  verdict on every project and variant;
- --fix --write on the nested src-prefix variant leaves a project that checks clean;
- --assume synced|unsynced overrides the detection, and anything else is a usage error.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

# The same pass/fail bookkeeping and binary as the fixture test (tests/integration is on
# sys.path as this script's directory).
from test_check_bundle import CFWATCHD, SOURCE, check, results  # noqa: E402

DATA = os.path.join(SOURCE, "tests", "data", "bundles-real")


def run(project, args):
    return subprocess.run([CFWATCHD, "--check-bundle", ".", *args], cwd=project,
                          capture_output=True, text=True, timeout=120)


def report(project, args, label):
    out = run(project, ["--format", "json", *args])
    try:
        return out.returncode, json.loads(out.stdout)
    except ValueError:
        check(False, f"{label}: JSON report", out.stdout[-2000:] + out.stderr[-2000:])
        return out.returncode, None


def verify_agrees(project, args, label):
    out = run(project, ["--format", "json", "--verify", *args])
    try:
        v = json.loads(out.stdout)["verify"]
    except (ValueError, KeyError):
        check(False, f"{label}: --verify JSON", out.stdout[-2000:] + out.stderr[-2000:])
        return
    check(v["ran"] and v["agrees"], f"{label}: --verify agrees ({'OK' if v['import_ok'] else 'fails'})",
          json.dumps(v, indent=2))


# Under memcheck (CI's last phase) the real projects are checked statically only: --verify's
# import runs in python3, not under memcheck, and 43 more runs of it would add a minute there.
MEMCHECK = "valgrind" in os.environ.get("CFWATCHD_WRAPPER", "")


def one(tmp, kind, name, exp, with_fix):
    project = os.path.join(tmp, kind, name)
    shutil.copytree(os.path.join(DATA, kind, name), project)
    args = exp.get("args", [])
    rc, r = report(project, args, name)
    if r is None:
        return
    width = 5 if with_fix else 4
    got = sorted([f["rule"], f["severity"], f["file"], f["line"], f["fix"]][:width]
                 for f in r["findings"] if f["severity"] != "info")
    want = sorted(exp["findings"])
    check(got == want, f"{name}: findings", f"got  {got}\nwant {want}")
    check(rc == exp["exit"], f"{name}: exit {exp['exit']}", f"got {rc}")
    if not (MEMCHECK and kind == "projects"):
        verify_agrees(project, args, name)


def main():
    if not CFWATCHD or not os.access(CFWATCHD, os.X_OK):
        print("FAIL: $CFWATCHD is not set to the cfwatchd binary")
        return 1
    with open(os.path.join(DATA, "expected.json"), encoding="utf-8") as f:
        table = json.load(f)
    check(len(table["projects"]) >= 30, f"{len(table['projects'])} real projects (at least 30)")
    with tempfile.TemporaryDirectory(prefix="cfw-check-bundle-real-") as tmp:
        for name, exp in table["projects"].items():
            one(tmp, "projects", name, exp, False)
        for name, exp in table["variants"].items():
            one(tmp, "variants", name, exp, True)
        # --fix --write on the nested src-prefix variant: clean afterwards.
        project = os.path.join(tmp, "variants", "src-prefix-nested")
        out = run(project, ["--fix", "--write"])
        check(out.returncode == 0, "src-prefix-nested: --fix --write leaves it clean",
              out.stdout + out.stderr)
        with open(os.path.join(project, "src", "workers", "router.py"), encoding="utf-8") as f:
            text = f.read()
        check("from health import check\n" in text and "import jobs as jobs\n" in text,
              "src-prefix-nested: the rewritten imports", text)
        verify_agrees(project, [], "src-prefix-nested after --fix --write")
        # --assume takes synced or unsynced only; synced turns the unsynced variant clean.
        project = os.path.join(tmp, "variants", "declared-unsynced")
        out = run(project, ["--assume", "maybe"])
        check(out.returncode == 2 and "--assume" in out.stderr, "--assume maybe: usage error",
              out.stderr)
        rc, r = report(project, ["--assume", "synced"], "declared-unsynced --assume synced")
        check(rc == 0 and r is not None and r["dependencies_synced"] and
              sorted(f["rule"] for f in r["findings"]) ==
              ["dependency-not-synced", "dependency-not-synced"],
              "declared-unsynced --assume synced: info only", json.dumps(r, indent=1))
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
