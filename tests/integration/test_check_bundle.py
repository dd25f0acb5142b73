#!/usr/bin/env python3
"""`cfwatchd --check-bundle` end to end, with the real binary ($CFWATCHD) on the fixture
projects in tests/data/bundles (each copied to a temporary directory first):

- every fixture's findings (rule, severity, file, line), module names and exit code equal its
  expected.json, also with --env where the fixture has one;
- --verify's verdict (the real python3 importing main from the laid-out bundle) agrees with the
  static findings on every fixture;
- --format json/github/sarif are well formed;
- --fix prints a diff that `patch -p1` applies; --fix --write on the original failure leaves a
  project that checks clean and whose --verify passes;
- usage, configuration and missing-python3 errors exit 2.

Fails at once, with a message saying so, when the binary does not know --check-bundle.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

CFWATCHD = os.path.abspath(os.environ["CFWATCHD"]) if os.environ.get("CFWATCHD") else ""
SOURCE = os.environ.get("CFW_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(SOURCE, "tests", "data", "bundles")

results = {"passed": 0, "failed": 0}


def check(cond, what, detail=""):
    if cond:
        results["passed"] += 1
        print(f"ok   {what}")
    else:
        results["failed"] += 1
        print(f"FAIL {what}" + (f"\n{detail}" if detail else ""))
    return cond


def run(args, cwd=None, env=None, timeout=120):
    return subprocess.run([CFWATCHD, "--check-bundle", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def copy(name, tmp):
    dst = os.path.join(tmp, name)
    shutil.copytree(os.path.join(FIXTURES, name), dst,
                    ignore=shutil.ignore_patterns("expected.json"))
    return dst


def key(f):
    return (f["rule"], f["severity"], f["file"], f["line"])


def fixture_checks(name, exp, env_name, tmp):
    project = copy(name, tmp) if not os.path.exists(os.path.join(tmp, name)) else \
        os.path.join(tmp, name)
    label = name + (f" --env {env_name}" if env_name else "")
    args = [".", "--format", "json"] + (["--env", env_name] if env_name else [])
    out = run(args, cwd=project)
    try:
        report = json.loads(out.stdout)
    except ValueError:
        check(False, f"{label}: JSON report", out.stdout[-2000:] + out.stderr[-2000:])
        return
    want_exit = exp.get("exit", 0)
    check(out.returncode == want_exit, f"{label}: exit code {want_exit}",
          f"got {out.returncode}: {out.stderr}")
    check(report["modules"] == exp["modules"] or
          (report["modules"][0] == exp["modules"][0] and
           sorted(report["modules"]) == sorted(exp["modules"])),
          f"{label}: modules", f"got {report['modules']}\nwant {exp['modules']}")
    got = sorted(key(f) for f in report["findings"])
    want = sorted(key(f) for f in exp["findings"])
    check(got == want, f"{label}: findings", f"got  {got}\nwant {want}")
    check(all(set(f) == {"rule", "severity", "file", "line", "column", "message", "fix"}
              for f in report["findings"]), f"{label}: finding keys")

    out = run(args + ["--verify"], cwd=project)
    try:
        v = json.loads(out.stdout)["verify"]
    except (ValueError, KeyError):
        check(False, f"{label}: --verify JSON", out.stdout[-2000:] + out.stderr[-2000:])
        return
    want_fail = exp.get("import_fails", False)
    check(v["import_ok"] == (not want_fail) and v["agrees"] and
          out.returncode == (1 if want_fail else 0),
          f"{label}: --verify {'fails' if want_fail else 'passes'} and agrees",
          json.dumps(v, indent=2))


def main():
    if not CFWATCHD or not os.access(CFWATCHD, os.X_OK):
        print("FAIL: $CFWATCHD is not set to the cfwatchd binary")
        return 1
    probe = subprocess.run([CFWATCHD, "--check-bundle", "--help"], capture_output=True,
                           text=True, timeout=60)
    if probe.returncode != 0 or "usage: cfwatchd --check-bundle" not in probe.stdout:
        print("FAIL: `cfwatchd --check-bundle --help` did not print the --check-bundle usage "
              f"(exit {probe.returncode}): the --check-bundle flag is not wired into "
              "daemon/main.c, which must call cfw_check_bundle_main(argc, argv) with the "
              "arguments after the flag")
        print("0 passed, 1 failed")
        return 1
    with tempfile.TemporaryDirectory(prefix="cfw-check-bundle-") as tmp:
        names = sorted(n for n in os.listdir(FIXTURES)
                       if os.path.isfile(os.path.join(FIXTURES, n, "expected.json")))
        check(len(names) >= 12, f"{len(names)} fixtures found")
        for name in names:
            with open(os.path.join(FIXTURES, name, "expected.json")) as f:
                exp = json.load(f)
            fixture_checks(name, exp, None, tmp)
            if "env" in exp:
                fixture_checks(name, exp["env"], exp["env"]["name"], tmp)

        # Formats on the original failure.
        project = os.path.join(tmp, "src-import-failure")
        text = run([project, "--no-color"])
        check(text.returncode == 1 and "critical [src-prefix-import]" in text.stdout and
              "fix: from core.config.settings import Settings" in text.stdout,
              "text format", text.stdout)
        gh = run([project, "--format", "github"])
        lines = gh.stdout.splitlines()
        check(len(lines) == 2 and all(line.startswith("::") for line in lines) and
              any(line.startswith("::error file=") and ",line=11,col=6,title=src-prefix-import::"
                  in line for line in lines), "github format", gh.stdout)
        sarif = run([project, "--format", "sarif"])
        problem = ""
        try:
            doc = json.loads(sarif.stdout)
            run0 = doc["runs"][0]
            rule_ids = [r["id"] for r in run0["tool"]["driver"]["rules"]]
            ok = (doc["version"] == "2.1.0" and len(run0["results"]) == 2 and
                  all(r["ruleId"] == rule_ids[r["ruleIndex"]] for r in run0["results"]) and
                  all(r["locations"][0]["physicalLocation"]["region"]["startLine"] == 11
                      for r in run0["results"]) and
                  {"src-prefix-import", "unresolved-import", "outside-module-root",
                   "missing-init", "build-upload-config", "python-workers-flag-missing",
                   "requirements-txt", "python-modules-in-root"} <= set(rule_ids))
        except (ValueError, KeyError, IndexError) as e:
            ok = False
            problem = f"\n{type(e).__name__}: {e}"
        check(ok, "sarif format (2.1.0, rule metadata, locations)",
              sarif.stdout[-3000:] + problem)

        # --fix prints a diff that patch applies.
        patched = shutil.copytree(project, os.path.join(tmp, "patched"))
        diff = run(["--fix"], cwd=patched)
        check(diff.returncode == 1 and diff.stdout.startswith("--- a/src/main.py\n"),
              "--fix prints a unified diff", diff.stdout + diff.stderr)
        if shutil.which("patch"):
            p = subprocess.run(["patch", "-p1"], input=diff.stdout, cwd=patched,
                               capture_output=True, text=True)
            after = run(["--format", "json"], cwd=patched)
            check(p.returncode == 0 and after.returncode == 0 and
                  json.loads(after.stdout)["findings"] == [],
                  "the --fix diff applies with patch -p1 and the result checks clean",
                  p.stdout + p.stderr + after.stdout)

        # --fix --write, then check again: clean, and --verify passes.
        wrote = run(["--fix", "--write"], cwd=project)
        check(wrote.returncode == 0 and "rewrote src/main.py (1 import)" in wrote.stdout and
              "created src/core/config/__init__.py" in wrote.stdout,
              "--fix --write applies the fix", wrote.stdout + wrote.stderr)
        again = run(["--format", "json"], cwd=project)
        check(again.returncode == 0 and json.loads(again.stdout)["findings"] == [],
              "--check-bundle after --fix --write is clean", again.stdout)
        leftovers = [f for _d, _s, fs in os.walk(project) for f in fs
                     if ".cfw-" in f or f.startswith(".tmp-")]
        check(not leftovers, "no temporary files left behind", str(leftovers))
        ver = run(["--verify"], cwd=project)
        check(ver.returncode == 0 and "OK" in ver.stdout, "--verify passes after the fix",
              ver.stdout + ver.stderr)

        # Errors exit 2.
        nopy = os.path.join(tmp, "empty-path")
        os.mkdir(nopy)
        env = dict(os.environ, PATH=nopy)
        r = run([os.path.join(tmp, "src-import-fixed"), "--verify"], env=env)
        check(r.returncode == 2 and "python3 not found" in r.stderr,
              "--verify without python3 says so and exits 2", r.stderr)
        bad = os.path.join(tmp, "bad-config")
        os.mkdir(bad)
        with open(os.path.join(bad, "wrangler.toml"), "w") as f:
            f.write('name = "x"\nmain = src/main.py\n')
        r = run([bad])
        check(r.returncode == 2 and "wrangler.toml:2:8: expected a value" in r.stderr,
              "a TOML error exits 2 with file:line:col", r.stderr)
        r = run(["--frobnicate"])
        check(r.returncode == 2 and "unknown option" in r.stderr, "unknown option exits 2",
              r.stderr)
        r = run([os.path.join(tmp, "jsonc"), "--env", "production"])
        check(r.returncode == 2 and 'No environment found in configuration with name '
              '"production"' in r.stderr, "an unknown --env exits 2", r.stderr)
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 0 if results["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
