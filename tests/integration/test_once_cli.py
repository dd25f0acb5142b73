#!/usr/bin/env python3
"""Command-line tests of `cfwatchd --once` and `cfwatchd --check-config` against the built binary.

Environment: CFWATCHD = the binary, CFW_SOURCE_DIR = the repository (for tests/data and conf/).
Plain unittest, standard library only. Ends with a line "N passed, M failed"; exit status 0 when
nothing failed.
"""
import gzip
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import run_tests  # noqa: E402

SOURCE_DIR = os.environ.get(
    "CFW_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CFWATCHD = os.environ.get("CFWATCHD") or os.path.join(
    os.environ.get("CFW_BUILD_DIR", os.path.join(SOURCE_DIR, "build")), "cfwatchd")
CORPUS = os.path.join(SOURCE_DIR, "tests", "data", "corpus")
CLI = os.path.join(SOURCE_DIR, "tests", "data", "cli")
TIMEOUT = 60

SEVERITIES = ("critical", "error", "warning", "info")
GITHUB_LEVEL = {"critical": "error", "error": "error", "warning": "warning", "info": "notice"}
STATS_KEYS = ("inputs", "bytes", "lines", "records", "events", "matches", "incidents")
SRC_05 = os.path.join(CORPUS, "05-src-import-modulenotfound-excerpt.log")
ANSI_01 = os.path.join(CORPUS, "01-deploy-python-no-module-workers-ansi.log")
OK_03 = os.path.join(CORPUS, "03-pywrangler-deploy-success-vendored.log")
VALIDATION_04 = os.path.join(
    CORPUS, "04-deploy-python-requirements-txt-10021-experimental-warning.log")
INFO_06 = os.path.join(CORPUS, "06-gha-python-experimental-warning-wrapped.log")
DUP_11 = os.path.join(CORPUS, "11-duplicate-module-warning-vendored-table.log")
TAIL_S02 = os.path.join(CORPUS, "synthetic", "S02-SYNTHETIC-tail-json-python-exception.log")
SYN_VERSION = "00000000-0000-4000-8000-000000000000"


def cli(name):
    return os.path.join(CLI, name)


def clean_env(**extra):
    env = dict(os.environ)
    for k in ("NO_COLOR", "CLICOLOR_FORCE", "FORCE_COLOR"):
        env.pop(k, None)
    env.update(extra)
    return env


SANITIZER = re.compile(rb"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error: ")


def check_sanitizer(args, err):
    """Fails on a sanitizer report (an ASan build exits 1, which --once also uses)."""
    if SANITIZER.search(err):
        raise AssertionError("sanitizer report for cfwatchd %s:\n%s" % (
            " ".join(args), err.decode("utf-8", "replace")[-3000:]))


def run(args, stdin=b"", env=None):
    """Runs cfwatchd with args; stdin is bytes (empty by default), never the terminal."""
    proc = subprocess.run([CFWATCHD] + list(args), input=stdin, capture_output=True,
                          timeout=TIMEOUT, env=env or clean_env())
    check_sanitizer(args, proc.stderr)
    return proc


def run_pty(args, env):
    """Runs cfwatchd with stdout on a pseudo-terminal; returns (rc, stdout bytes, stderr bytes)."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen([CFWATCHD] + list(args), stdin=subprocess.DEVNULL, stdout=slave,
                                stderr=subprocess.PIPE, env=env)
    finally:
        os.close(slave)
    out = bytearray()
    try:
        while True:
            ready, _, _ = select.select([master], [], [], TIMEOUT)
            if not ready:
                proc.kill()
                raise AssertionError("no output on the terminal for %d s" % TIMEOUT)
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO once the child closed its side
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    err = proc.stderr.read()
    proc.stderr.close()
    check_sanitizer(args, err)
    return proc.wait(timeout=TIMEOUT), bytes(out), err


def text(b):
    return b.decode("utf-8", "replace")


def line_of(path, needle):
    """1-based number of the first line of path containing needle."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if needle in line:
                return n
    raise AssertionError("%s: no line contains %r" % (path, needle))


def builtin_rule_count():
    """Rules in the built-in pack, counted from its YAML source (the one source of truth)."""
    path = os.path.join(SOURCE_DIR, "conf", "rules.d", "python-workers.yaml")
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if re.match(r"^\s*-\s+id\s*:", line))


def line_count(path):
    with open(path, "rb") as f:
        data = f.read()
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


class OnceCase(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cfw-once-")

    def tearDown(self):
        for root, dirs, _files in os.walk(self.tmp):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def tmpfile(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def copy(self, src, name):
        path = os.path.join(self.tmp, name)
        shutil.copyfile(src, path)
        return path

    def once_json(self, args, stdin=b"", want_rc=None, env=None):
        """Runs --once --format json; checks the report's shape; returns (proc, report)."""
        proc = run(["--once", "--format", "json"] + list(args), stdin=stdin, env=env)
        detail = "cmd: cfwatchd --once --format json %s\nrc=%d\nstderr: %s" % (
            " ".join(args), proc.returncode, text(proc.stderr)[-2000:])
        if want_rc is not None:
            self.assertEqual(proc.returncode, want_rc, detail)
        try:
            body = proc.stdout.decode("utf-8")
        except UnicodeDecodeError as e:
            self.fail("JSON report is not valid UTF-8 (%s)\n%s" % (e, detail))
        try:
            report = json.loads(body)
        except ValueError as e:
            self.fail("stdout is not one JSON object (%s): %r\n%s" % (e, body[:500], detail))
        self.check_shape(report, detail)
        return proc, report

    def check_shape(self, report, detail=""):
        self.assertIsInstance(report, dict, detail)
        self.assertEqual(report.get("version"), 1, detail)
        self.assertIsInstance(report.get("incidents"), list, detail)
        self.assertIsInstance(report.get("stats"), dict, detail)
        for inc in report["incidents"]:
            for k in ("key", "rule", "severity", "title", "hint", "sample"):
                self.assertIsInstance(inc.get(k), str, "incident.%s: %r %s" % (k, inc, detail))
            self.assertIn(inc["severity"], SEVERITIES, detail)
            self.assertIsInstance(inc.get("count"), int, detail)
            self.assertGreaterEqual(inc["count"], 1, detail)
            self.assertIsInstance(inc.get("fields"), dict, detail)
            for k, v in inc["fields"].items():
                self.assertIsInstance(v, str, "fields.%s of %s is not a string" % (k, inc["key"]))
            for pos in ("first", "last"):
                self.assertIsInstance(inc.get(pos), dict, "%s %s" % (pos, detail))
                self.assertIsInstance(inc[pos].get("input"), str, detail)
                self.assertIsInstance(inc[pos].get("line"), int, detail)
                self.assertGreaterEqual(inc[pos]["line"], 1, detail)
        stats = report["stats"]
        for k in STATS_KEYS:
            self.assertIsInstance(stats.get(k), int, "stats.%s: %r" % (k, stats))
            self.assertGreaterEqual(stats[k], 0)
        self.assertEqual(stats["incidents"], len(report["incidents"]), "stats.incidents")
        self.assertLessEqual(sum(i["count"] for i in report["incidents"]), stats["matches"],
                             "incident counts add up to more than stats.matches")

    def by_rule(self, report, rule):
        return [i for i in report["incidents"] if i["rule"] == rule]

    def one(self, report, rule):
        found = self.by_rule(report, rule)
        self.assertEqual(len(found), 1, "want exactly one %s incident, got %s" % (
            rule, [(i["rule"], i["key"]) for i in report["incidents"]]))
        return found[0]

    def rules(self, report):
        return sorted({i["rule"] for i in report["incidents"]})


class TestExitCodes(OnceCase):
    def rc(self, *args):
        return run(list(args)).returncode

    def test_clean_file_exits_0(self):
        self.assertEqual(self.rc("--once", OK_03), 0)

    def test_incident_exits_1(self):
        self.assertEqual(self.rc("--once", SRC_05), 1)
        for fmt in ("text", "json", "github"):
            self.assertEqual(self.rc("--once", "--format", fmt, SRC_05), 1, fmt)

    def test_info_only_exits_0_by_default(self):
        self.assertEqual(self.rc("--once", INFO_06), 0)
        self.assertEqual(self.rc("--once", "--fail-on", "info", INFO_06), 1)

    def test_fail_on_thresholds_warning_incident(self):
        self.assertEqual(self.rc("--once", DUP_11), 1)
        self.assertEqual(self.rc("--once", "--fail-on", "warning", DUP_11), 1)
        self.assertEqual(self.rc("--once", "--fail-on", "info", DUP_11), 1)
        self.assertEqual(self.rc("--once", "--fail-on", "error", DUP_11), 0)
        self.assertEqual(self.rc("--once", "--fail-on", "critical", DUP_11), 0)
        self.assertEqual(self.rc("--once", "--fail-on", "none", DUP_11), 0)

    def test_fail_on_thresholds_error_and_critical(self):
        self.assertEqual(self.rc("--once", "--fail-on", "error", VALIDATION_04), 1)
        self.assertEqual(self.rc("--once", "--fail-on", "critical", VALIDATION_04), 0)
        self.assertEqual(self.rc("--once", "--fail-on", "critical", SRC_05), 1)
        self.assertEqual(self.rc("--once", "--fail-on", "none", SRC_05), 0)

    def test_deploy_failure_fixed_later_in_the_scan(self):
        # the same deploy log shows the failure and then a successful deploy of the script
        failed = (b"\xe2\x9c\x98 [ERROR] A request to the Cloudflare API "
                  b"(/accounts/x/workers/scripts/py-api/versions) failed.\n\n"
                  b"  Uncaught Error: PythonError: Traceback (most recent call last):\n"
                  b"  ModuleNotFoundError: No module named 'src' [code: 10021]\n\n")
        fixed = b"Uploaded py-api (3.21 sec)\nDeployed py-api triggers (0.45 sec)\n"
        proc, report = self.once_json(["-"], stdin=failed, want_rc=1)
        self.assertEqual([i["state"] for i in report["incidents"]], ["open"])
        proc, report = self.once_json(["-"], stdin=failed + fixed, want_rc=0)
        (inc,) = report["incidents"]
        self.assertEqual(inc["state"], "resolved")
        self.assertEqual(inc["resolved_by"], "Uploaded py-api (3.21 sec) (<stdin>:6)")
        # another script's success fixes nothing
        other = fixed.replace(b"py-api", b"py-web")
        self.once_json(["-"], stdin=failed + other, want_rc=1)
        proc = run(["--once", "-"], stdin=failed + fixed)
        self.assertIn("resolved: fixed by Uploaded py-api (3.21 sec)", text(proc.stdout))

    def test_failure_back_after_a_fix_counts_every_occurrence(self):
        # failed twice, fixed, failed once more: open, and the report keeps all three
        failed = (b"\xe2\x9c\x98 [ERROR] A request to the Cloudflare API "
                  b"(/accounts/x/workers/scripts/py-api/versions) failed.\n\n"
                  b"  Uncaught Error: PythonError: Traceback (most recent call last):\n"
                  b"  ModuleNotFoundError: No module named 'src' [code: 10021]\n\n")
        fixed = b"Uploaded py-api (3.21 sec)\nDeployed py-api triggers (0.45 sec)\n"
        log = failed + failed + fixed + failed
        _, report = self.once_json(["-"], stdin=log, want_rc=1)
        (inc,) = report["incidents"]
        self.assertEqual((inc["state"], inc["count"], inc["occurrences"], inc["opening"]),
                         ("open", 1, 3, 2))
        self.assertEqual(inc["first"]["line"], 13)
        out = text(run(["--once", "-"], stdin=log).stdout)
        self.assertIn("seen 3 times", out)
        self.assertIn("failed again after a fix: 1 time since <stdin>:13", out)
        # one opening: no occurrences key, count is all of them
        _, report = self.once_json(["-"], stdin=failed + failed, want_rc=1)
        (inc,) = report["incidents"]
        self.assertEqual(inc["count"], 2)
        self.assertNotIn("occurrences", inc)

    def test_fail_on_none_still_reports(self):
        _, report = self.once_json(["--fail-on", "none", SRC_05], want_rc=0)
        self.one(report, "py-src-import")

    def test_usage_errors_exit_2(self):
        cases = [
            ["--once", "--format", "xml", SRC_05],
            ["--once", "--fail-on", "fatal", SRC_05],
            ["--once", "--input-format", "yaml", SRC_05],
            ["--once", "--no-such-option", SRC_05],
            ["--once", SRC_05, "--rules"],
            ["--once", "--format"],
            ["--no-such-option"],
        ]
        for args in cases:
            proc = run(args)
            self.assertEqual(proc.returncode, 2, "cfwatchd %s -> rc %d, stderr %s" % (
                " ".join(args), proc.returncode, text(proc.stderr)))
            self.assertTrue(proc.stderr.strip(), "no message on stderr for %s" % args)

    def test_missing_rules_or_config_file_exits_2(self):
        rules, conf = "/nonexistent/cfw-rules.yaml", "/nonexistent/cfw.yaml"
        for args, name in ((["--rules", rules], rules), (["-c", conf], conf),
                           (["--config", conf], conf)):
            proc = run(["--once"] + args + [SRC_05])
            self.assertEqual(proc.returncode, 2, args)
            self.assertIn(name, text(proc.stderr), args)


class TestJsonFormat(OnceCase):
    def test_shape_positions_and_stats(self):
        _, report = self.once_json([SRC_05], want_rc=1)
        inc = self.one(report, "py-src-import")
        self.assertEqual(inc["severity"], "critical")
        self.assertEqual(inc["fields"].get("module"), "src")
        self.assertTrue(inc["title"].strip(), "empty title")
        self.assertTrue(inc["hint"].strip(), "empty hint")
        self.assertEqual(inc["count"], 1)
        self.assertTrue(inc["first"]["input"].endswith("05-src-import-modulenotfound-excerpt.log"),
                        inc["first"])
        self.assertEqual(inc["first"]["line"], 1)
        self.assertEqual(inc["last"], inc["first"])
        self.assertIn("No module named 'src'", inc["sample"])
        stats = report["stats"]
        self.assertEqual(stats["inputs"], 1)
        self.assertEqual(stats["bytes"], os.path.getsize(SRC_05))
        self.assertEqual(stats["lines"], line_count(SRC_05))
        self.assertGreaterEqual(stats["matches"], 1)
        self.assertGreaterEqual(stats["events"], 1)
        self.assertGreaterEqual(stats["records"], 1)

    def test_block_position_is_first_line_of_record(self):
        path = os.path.join(CORPUS, "synthetic", "S01-SYNTHETIC-deploy-src-import-with-note.log")
        _, report = self.once_json([path], want_rc=1)
        inc = self.one(report, "py-src-import")
        self.assertEqual(inc["first"]["line"], line_of(path, "[ERROR] A request"))
        self.assertEqual(inc["fields"].get("script"), "example-py")

    def test_no_ansi_in_report(self):
        proc, report = self.once_json([ANSI_01], want_rc=1)
        self.assertNotIn(b"\x1b", proc.stdout)
        self.assertNotIn("\x1b", json.dumps(report, ensure_ascii=False))
        self.assertTrue(report["incidents"])

    def test_clean_input_gives_empty_list(self):
        _, report = self.once_json([OK_03], want_rc=0)
        self.assertEqual(report["incidents"], [])
        self.assertEqual(report["stats"]["incidents"], 0)
        self.assertEqual(report["stats"]["bytes"], os.path.getsize(OK_03))

    def test_invalid_utf8_and_control_bytes_still_give_valid_json(self):
        path = self.tmpfile("bytes.log", b"ODD value=\xff\xfe\x01\"q\\ end\nODD value=ok\t\x7f\n")
        _, report = self.once_json(["--no-builtin", "--rules", cli("rules-github.yaml"), path])
        self.assertTrue(self.by_rule(report, "odd-chars"), report)


class TestGithubFormat(OnceCase):
    ANNOTATION = re.compile(r"^::(error|warning|notice) (file=[^,]*,line=\d+,title=.*?)::(.*)$")

    def annotations(self, args, want_rc=None):
        proc = run(["--once", "--format", "github"] + args)
        if want_rc is not None:
            self.assertEqual(proc.returncode, want_rc, text(proc.stderr))
        out = text(proc.stdout)
        lines = [line for line in out.split("\n") if line != ""]
        result = []
        for line in lines:
            m = self.ANNOTATION.match(line)
            self.assertIsNotNone(m, "not an annotation line: %r" % line)
            props = dict(p.split("=", 1) for p in m.group(2).split(","))
            self.assertEqual(sorted(props), ["file", "line", "title"], line)
            for part in (m.group(2), m.group(3)):
                for pct in re.finditer("%", part):
                    self.assertRegex(part[pct.start():pct.start() + 3], r"^%(25|0D|0A|3A|2C)$",
                                     "unescaped %% in %r" % line)
            self.assertNotIn("\r", line)
            result.append((m.group(1), props, m.group(3)))
        return result

    def test_levels_lines_and_escaping(self):
        path = self.copy(cli("github-input.log"), "odd,name:1.log")
        anns = self.annotations(["--no-builtin", "--rules", cli("rules-github.yaml"), path],
                                want_rc=1)
        self.assertEqual(len(anns), 3, anns)
        by_level = {level: (props, msg) for level, props, msg in anns}
        self.assertEqual(sorted(by_level), ["error", "notice", "warning"])
        want_file = path.replace("%", "%25").replace(":", "%3A").replace(",", "%2C")
        for level, (props, _msg) in by_level.items():
            self.assertEqual(props["file"], want_file, level)
        props, msg = by_level["error"]
        self.assertEqual(props["line"], "1")
        self.assertEqual(props["title"], "Odd a%2Cb%3Ac%25d")
        self.assertIn("a,b:c%25d", msg, "the message should carry the escaped value")
        if "second line" in msg:
            self.assertIn("%0Asecond line", msg, "a newline in the message must be %0A")
        self.assertEqual(by_level["warning"][0]["line"], "2")
        self.assertEqual(by_level["warning"][0]["title"], "Warn w1")
        self.assertEqual(by_level["notice"][0]["line"], "3")
        self.assertEqual(by_level["notice"][0]["title"], "Note n1")

    def test_critical_maps_to_error_and_counts_match_json(self):
        files = [SRC_05, DUP_11, INFO_06]
        _, report = self.once_json(files)
        anns = self.annotations(files, want_rc=1)
        self.assertEqual(len(anns), len(report["incidents"]))
        want = sorted(GITHUB_LEVEL[i["severity"]] for i in report["incidents"])
        self.assertEqual(sorted(a[0] for a in anns), want)
        src = self.one(report, "py-src-import")
        self.assertTrue(any(level == "error" and props["file"] == SRC_05 and props["line"] == "1"
                            for level, props, _ in anns), anns)
        self.assertIn(src["severity"], ("critical",))

    def test_clean_input_prints_nothing(self):
        self.assertEqual(self.annotations([OK_03], want_rc=0), [])


class TestTextFormat(OnceCase):
    FILES = [SRC_05, DUP_11, INFO_06]

    def summary_ok(self, out, n):
        lines = [line for line in out.splitlines() if line.strip()]
        self.assertTrue(lines, "empty text report")
        last = lines[-1]
        want = r"\b(0|no) incidents?\b" if n == 0 else r"\b%d incidents?\b" % n
        self.assertRegex(last.lower(), want, "summary line %r should give %d incidents" % (last, n))

    def test_grouped_by_severity_with_summary_and_no_escape_when_piped(self):
        _, report = self.once_json(self.FILES)
        proc = run(["--once"] + self.FILES)
        self.assertEqual(proc.returncode, 1)
        self.assertNotIn(b"\x1b", proc.stdout)
        out = text(proc.stdout)
        for inc in report["incidents"]:
            self.assertIn(inc["title"], out)
        self.summary_ok(out, len(report["incidents"]))
        titles = {}
        for inc in report["incidents"]:
            titles.setdefault(inc["severity"], inc["title"])
        for sev in ("critical", "warning", "info"):
            self.assertIn(sev, titles, "corpus files should give a %s incident" % sev)
            self.assertIn(sev, out.lower(), "no %s group" % sev)
        self.assertLess(out.index(titles["critical"]), out.index(titles["warning"]))
        self.assertLess(out.index(titles["warning"]), out.index(titles["info"]))

    def test_explicit_text_and_ansi_input(self):
        _, report = self.once_json([ANSI_01], want_rc=1)
        proc = run(["--once", "--format", "text", ANSI_01])
        self.assertEqual(proc.returncode, 1)
        self.assertNotIn(b"\x1b", proc.stdout)
        self.summary_ok(text(proc.stdout), len(report["incidents"]))

    def test_clean_input_summary(self):
        proc = run(["--once", OK_03])
        self.assertEqual(proc.returncode, 0)
        self.summary_ok(text(proc.stdout), 0)

    def test_colour_only_on_terminal_and_no_color(self):
        env = clean_env(TERM="xterm-256color")
        rc, out, err = run_pty(["--once", SRC_05], env)
        self.assertEqual(rc, 1, text(err))
        self.assertIn(b"\x1b[", out, "no colour on a terminal")
        rc, out, _ = run_pty(["--once", "--no-color", SRC_05], env)
        self.assertEqual(rc, 1)
        self.assertNotIn(b"\x1b", out, "--no-color ignored")
        rc, out, _ = run_pty(["--once", SRC_05], clean_env(TERM="xterm-256color", NO_COLOR="1"))
        self.assertEqual(rc, 1)
        self.assertNotIn(b"\x1b", out, "NO_COLOR ignored")


class TestInputs(OnceCase):
    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def test_stdin_dash(self):
        _, report = self.once_json(["-"], stdin=self.read(SRC_05), want_rc=1)
        inc = self.one(report, "py-src-import")
        name = inc["first"]["input"]
        self.assertTrue("stdin" in name or name == "-", name)
        self.assertEqual(report["stats"]["inputs"], 1)
        self.assertEqual(report["stats"]["bytes"], os.path.getsize(SRC_05))

    def test_stdin_without_arguments(self):
        _, report = self.once_json([], stdin=self.read(SRC_05), want_rc=1)
        self.one(report, "py-src-import")
        proc = run(["--once"], stdin=self.read(SRC_05))
        self.assertEqual(proc.returncode, 1)
        self.assertIn(self.one(report, "py-src-import")["title"], text(proc.stdout))

    def test_empty_stdin(self):
        _, report = self.once_json([], stdin=b"", want_rc=0)
        self.assertEqual(report["incidents"], [])

    def test_stdin_among_files(self):
        _, report = self.once_json([SRC_05, "-"], stdin=self.read(DUP_11), want_rc=1)
        self.assertEqual(report["stats"]["inputs"], 2)
        self.one(report, "py-src-import")
        self.one(report, "duplicate-module")

    def test_several_inputs(self):
        _, report = self.once_json([SRC_05, DUP_11, INFO_06], want_rc=1)
        self.assertEqual(report["stats"]["inputs"], 3)
        self.assertEqual(report["stats"]["bytes"], sum(os.path.getsize(p)
                                                       for p in (SRC_05, DUP_11, INFO_06)))
        src = self.one(report, "py-src-import")
        dup = self.one(report, "duplicate-module")
        self.assertTrue(src["first"]["input"].endswith(os.path.basename(SRC_05)), src["first"])
        self.assertTrue(dup["first"]["input"].endswith(os.path.basename(DUP_11)), dup["first"])
        self.assertEqual(self.one(report, "python-experimental-notice")["severity"], "info")

    def test_counts_fold_across_inputs(self):
        a = self.copy(SRC_05, "a.log")
        b = self.copy(SRC_05, "b.log")
        _, report = self.once_json([a, b], want_rc=1)
        inc = self.one(report, "py-src-import")
        self.assertEqual(inc["count"], 2)
        self.assertEqual(inc["first"]["input"], a)
        self.assertEqual(inc["last"]["input"], b)
        self.assertEqual(inc["first"]["line"], 1)
        self.assertEqual(inc["last"]["line"], 1)
        self.assertEqual(report["stats"]["incidents"], 1)

    def test_missing_file_among_existing(self):
        missing = os.path.join(self.tmp, "no-such-dir", "missing.log")
        proc, report = self.once_json([SRC_05, missing, DUP_11], want_rc=2)
        self.assertIn(missing, text(proc.stderr))
        self.one(report, "py-src-import")
        self.one(report, "duplicate-module")

    def test_missing_file_text_format_still_reports(self):
        missing = os.path.join(self.tmp, "missing.log")
        proc = run(["--once", missing, SRC_05])
        self.assertEqual(proc.returncode, 2)
        self.assertIn(missing, text(proc.stderr))
        _, report = self.once_json([SRC_05])
        self.assertIn(self.one(report, "py-src-import")["title"], text(proc.stdout))

    def test_empty_directory_as_input(self):
        # a directory is scanned (TestGzipInput.test_directory); one with nothing to scan is an
        # error, so that a wrong path never passes for a clean scan
        d = os.path.join(self.tmp, "a-directory")
        os.mkdir(d)
        proc, report = self.once_json([d, SRC_05], want_rc=2)
        self.assertIn(d, text(proc.stderr))
        self.one(report, "py-src-import")

    def test_unreadable_directory_and_file(self):
        d = os.path.join(self.tmp, "locked")
        os.mkdir(d)
        inner = self.copy(DUP_11, os.path.join("locked", "inner.log"))
        os.chmod(d, 0)
        if os.geteuid() == 0:  # root reads anything: the directory is scanned like any other
            _, report = self.once_json([d, SRC_05], want_rc=1)
            self.one(report, "py-src-import")
            self.assertEqual(self.one(report, "duplicate-module")["first"]["input"], inner)
            return
        proc, report = self.once_json([d, inner, SRC_05], want_rc=2)
        err = text(proc.stderr)
        self.assertIn("%s: Permission denied" % d, err)
        self.assertIn(inner, err)
        self.one(report, "py-src-import")
        self.assertEqual(self.by_rule(report, "duplicate-module"), [])


def normalized(report):
    """The report with input names left out (a .gz scan names the .gz file)."""
    incidents = []
    for inc in report["incidents"]:
        inc = json.loads(json.dumps(inc))
        for pos in ("first", "last"):
            inc[pos]["input"] = ""
        inc["fields"].pop("source", None)
        incidents.append(inc)
    return {"incidents": incidents, "stats": report["stats"]}


FILLER = b"".join(b"GET /api/items/%d 200 OK in %d ms\n" % (i, i % 17) for i in range(8000))


class TestGzipInput(OnceCase):
    """--once reads gzip (by its magic bytes, every member), directories, and says where gzip
    data is damaged while still reporting what came before."""

    FILES = [SRC_05, DUP_11, ANSI_01, TAIL_S02, VALIDATION_04, INFO_06,
             os.path.join(CORPUS, "23-logpush-http-ndjson-workers-trace-events.log"),
             os.path.join(CORPUS, "synthetic", "S03-SYNTHETIC-logpush-python-exception.log")]

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def gz(self, name, *members, tail=b""):
        """Writes name with one gzip member per bytes argument, then tail; returns its path."""
        return self.tmpfile(name, b"".join(gzip.compress(m) for m in members) + tail)

    def assert_same(self, plain_args, gz_args, stdin_plain=b"", stdin_gz=b""):
        proc_p, plain = self.once_json(plain_args, stdin=stdin_plain)
        proc_g, packed = self.once_json(gz_args, stdin=stdin_gz)
        self.assertEqual(proc_g.returncode, proc_p.returncode, text(proc_g.stderr))
        self.assertEqual(normalized(packed), normalized(plain))
        return plain, packed

    def test_gz_file_equals_plain_file(self):
        found = 0
        for path in self.FILES:
            packed = self.gz(os.path.basename(path) + ".gz", self.read(path))
            _, report = self.assert_same([path], [packed])
            for inc in report["incidents"]:
                self.assertEqual(inc["first"]["input"], packed)
            self.assertEqual(report["stats"]["bytes"], os.path.getsize(path))
            found += len(report["incidents"])
        self.assertGreaterEqual(found, len(self.FILES) - 1)

    def test_multi_member_and_padding_equal_the_concatenation(self):
        # over the 64 KiB read size, members cut inside lines, then zero padding
        data = b"".join(self.read(p) + b"\n" + FILLER for p in self.FILES)
        self.assertGreater(len(data), 1 << 20)
        plain = self.tmpfile("all.log", data)
        cuts = [0, 1000, 1001, len(data) // 3, len(data) // 2 + 7, len(data) - 5, len(data)]
        members = [data[a:b] for a, b in zip(cuts, cuts[1:])]
        packed = self.gz("all.log.gz", *members, tail=b"\0" * 512)
        _, report = self.assert_same([plain], [packed])
        self.assertEqual(report["stats"]["bytes"], len(data))
        self.assertGreaterEqual(len(report["incidents"]), 5)
        # several files, gzip and plain mixed: the same as all plain
        gz_args = [self.gz("f%d.gz" % i, self.read(p)) if i % 2 else p
                   for i, p in enumerate(self.FILES)]
        self.assert_same(self.FILES, gz_args)

    def test_stdin_gzip(self):
        data = self.read(SRC_05) + FILLER + self.read(DUP_11)
        packed = gzip.compress(data[:5000]) + gzip.compress(data[5000:])
        for args in (["-"], []):
            _, report = self.assert_same(args, args, stdin_plain=data, stdin_gz=packed)
            self.one(report, "py-src-import")
            self.one(report, "duplicate-module")
        # a single byte on stdin is no gzip header: read as it is
        _, report = self.once_json(["-"], stdin=b"\x1f", want_rc=0)
        self.assertEqual(report["stats"]["bytes"], 1)

    def test_github_format_on_stdin_names_no_file(self):
        packed = gzip.compress(self.read(SRC_05))
        for stdin in (packed, self.read(SRC_05)):
            proc = run(["--once", "--format", "github", "-"], stdin=stdin)
            self.assertEqual(proc.returncode, 1, text(proc.stderr))
            lines = text(proc.stdout).splitlines()
            self.assertEqual(len(lines), 1, lines)
            self.assertRegex(lines[0], r"^::error title=[^:]*::\[py-src-import\] ")
            self.assertNotIn("file=", lines[0])
            self.assertNotIn("stdin", lines[0])

    def test_directory(self):
        root = os.path.join(self.tmp, "archive")
        layout = {
            "20260101/b.log.gz": ("gz", SRC_05),
            "20260101/a.log": ("plain", DUP_11),
            "20251231/z.ndjson.gz": ("gz", os.path.join(
                CORPUS, "23-logpush-http-ndjson-workers-trace-events.log")),
            "top.log": ("plain", INFO_06),
            ".hidden.log": ("plain", VALIDATION_04),
            ".cache/x.log": ("plain", VALIDATION_04),
        }
        for rel, (kind, src) in layout.items():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            data = self.read(src)
            with open(path, "wb") as f:
                f.write(gzip.compress(data) if kind == "gz" else data)
        os.symlink(root, os.path.join(root, "20260101", "loop"))  # a link to a directory: skipped
        os.mkfifo(os.path.join(root, "fifo"))  # would block: skipped
        want = sorted(os.path.join(root, rel) for rel in layout
                      if not rel.startswith("."))
        for arg in (root, root + "/"):
            proc, report = self.once_json([arg], want_rc=1)
            self.assertEqual(report["stats"]["inputs"], len(want), text(proc.stderr))
            self.assertEqual(self.by_rule(report, "deploy-validation-failed"), [],
                             "a hidden file was scanned")
            _, explicit = self.once_json(want)
            self.assertEqual(normalized(report), normalized(explicit))
            inputs = {i["first"]["input"] for i in report["incidents"]}
            self.assertTrue(inputs <= set(want), inputs)
            self.assertEqual(self.one(report, "py-src-import")["first"]["input"],
                             os.path.join(root, "20260101", "b.log.gz"))
        # a directory among files, and an empty directory: an error, the rest still scanned
        empty = os.path.join(self.tmp, "empty")
        os.mkdir(empty)
        proc, report = self.once_json([empty, root], want_rc=2)
        self.assertIn("%s: a directory with no file to scan" % empty, text(proc.stderr))
        self.assertEqual(report["stats"]["inputs"], len(want))

    def archive(self):
        """member 1: a src-import failure and filler; member 2: a duplicate-module warning."""
        one = self.read(SRC_05) + FILLER
        two = FILLER + self.read(DUP_11) + FILLER
        return gzip.compress(one), gzip.compress(two)

    def check_damaged(self, name, data, message):
        path = self.tmpfile(name, data)
        proc, report = self.once_json([path, OK_03], want_rc=2)
        err = text(proc.stderr)
        self.assertIn("cfwatchd: %s: " % path, err)
        self.assertRegex(err, message)
        self.assertIn("what came before it is reported", err)
        self.one(report, "py-src-import")
        self.assertEqual(report["stats"]["inputs"], 2)
        # the text report too, and the exit status is the input error's, not the incident's
        proc = run(["--once", path])
        self.assertEqual(proc.returncode, 2)
        self.assertIn("No module named 'src'", text(proc.stdout))
        return report, err

    def test_corrupt_archive(self):
        one, two = self.archive()
        bad = bytearray(two)
        for i in range(len(bad) // 2, len(bad) // 2 + 64):
            bad[i] ^= 0x55
        _, err = self.check_damaged("corrupt.log.gz", one + bytes(bad),
                                    r"corrupt gzip data at byte \d+ \(member 2: ")
        at = int(re.search(r"at byte (\d+)", err).group(1))
        self.assertGreater(at, len(one))
        self.assertLessEqual(at, len(one) + len(two))

    def test_truncated_archive(self):
        one, two = self.archive()
        self.check_damaged("cut.log.gz", one + two[:len(two) // 2],
                           r"truncated gzip member \(member 2 begins at byte %d, the input ends "
                           r"at byte %d\)" % (len(one), len(one) + len(two) // 2))
        # cut inside the first member: what was inflated is reported
        report, _ = self.check_damaged("cut1.log.gz", one[:len(one) - 100],
                                       r"truncated gzip member \(member 1 begins at byte 0")
        self.assertEqual(self.by_rule(report, "duplicate-module"), [])

    def test_trailing_garbage(self):
        one, two = self.archive()
        report, _ = self.check_damaged(
            "junk.log.gz", one + two + b"\0\0junk",
            r"trailing garbage after gzip member 2 and zero padding at byte %d" % (
                len(one) + len(two) + 2))
        self.one(report, "duplicate-module")
        self.check_damaged("junk2.log.gz", one + b"PK\x03\x04",
                           r"trailing garbage after gzip member 1 at byte %d" % len(one))

    def slow_stdin(self, stderr, pause):
        """Runs --once on a pipe that stalls pause seconds mid-input; returns (proc, out)."""
        proc = subprocess.Popen([CFWATCHD, "--once", "--format", "json", "-"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                env=clean_env())
        data = gzip.compress(self.read(SRC_05) + FILLER * 4)

        def feed():
            proc.stdin.write(data[:len(data) // 2])
            proc.stdin.flush()
            time.sleep(pause)
            proc.stdin.write(data[len(data) // 2:])
            proc.stdin.close()

        t = threading.Thread(target=feed)
        t.start()
        out = proc.stdout.read()
        t.join()
        proc.wait(timeout=TIMEOUT)
        return proc, out

    def test_progress_line_only_on_a_terminal(self):
        master, slave = os.openpty()
        try:
            proc, out = self.slow_stdin(slave, 2.6)
        finally:
            os.close(slave)
        err = bytearray()
        while True:
            ready, _, _ = select.select([master], [], [], 5)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
        os.close(master)
        check_sanitizer(["--once", "-"], bytes(err))
        self.assertEqual(proc.returncode, 1, bytes(err))
        self.one(json.loads(out), "py-src-import")
        self.assertRegex(bytes(err), rb"\rcfwatchd: scanning 1/1 inputs, [0-9.]+ [kMG]?B read, "
                                     rb"[0-9.]+ [kMG]?B/s\x1b\[K")
        self.assertTrue(bytes(err).endswith(b"\r\x1b[K"), bytes(err)[-80:])
        # not on a pipe
        proc, out = self.slow_stdin(subprocess.PIPE, 2.6)
        err = proc.stderr.read()
        proc.stderr.close()
        check_sanitizer(["--once", "-"], err)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(err, b"")


class TestRules(OnceCase):
    def test_custom_rule_named_group_field_title_and_key(self):
        _, report = self.once_json(["--rules", cli("rules-custom.yaml"), cli("custom-input.log")],
                                   want_rc=1)
        found = {i["fields"].get("key"): i for i in self.by_rule(report, "settings-missing")}
        self.assertEqual(sorted(found), ["SETTINGS_API_KEY", "SETTINGS_DB_URL"], report)
        db = found["SETTINGS_DB_URL"]
        self.assertEqual(db["severity"], "warning")
        self.assertEqual(db["title"], "Missing setting SETTINGS_DB_URL")
        self.assertEqual(db["hint"], "Add SETTINGS_DB_URL to the Worker environment.")
        self.assertEqual(db["key"], "settings-missing/SETTINGS_DB_URL")
        self.assertEqual(db["count"], 2)
        self.assertEqual(db["first"]["line"], 1)
        self.assertEqual(db["last"]["line"], 3)
        self.assertEqual(found["SETTINGS_API_KEY"]["count"], 1)
        self.assertEqual(found["SETTINGS_API_KEY"]["first"]["line"], 4)

    def test_rules_is_repeatable(self):
        _, report = self.once_json(["--rules", cli("rules-custom.yaml"),
                                    "--rules", cli("rules-github.yaml"),
                                    cli("custom-input.log"), cli("github-input.log")], want_rc=1)
        self.assertTrue(self.by_rule(report, "settings-missing"))
        self.assertTrue(self.by_rule(report, "odd-chars"))

    def test_custom_rule_replaces_builtin_id(self):
        _, report = self.once_json(["--rules", cli("rules-replace.yaml"), SRC_05], want_rc=1)
        inc = self.one(report, "py-src-import")
        self.assertEqual(inc["severity"], "warning")
        self.assertEqual(inc["title"], "Replaced rule: src import")
        self.assertEqual(inc["hint"], "Replaced by tests/data/cli/rules-replace.yaml.")
        proc = run(["--once", "--fail-on", "error", "--rules", cli("rules-replace.yaml"), SRC_05])
        self.assertEqual(proc.returncode, 0, "the replaced rule is a warning now")

    def test_no_builtin(self):
        _, report = self.once_json(["--no-builtin", SRC_05], want_rc=0)
        self.assertEqual(report["incidents"], [])
        _, report = self.once_json(["--no-builtin", "--rules", cli("rules-custom.yaml"),
                                    SRC_05, cli("custom-input.log")], want_rc=1)
        self.assertEqual(self.rules(report), ["settings-missing"])

    def test_builtin_pack_kept_with_custom_rules(self):
        _, report = self.once_json(["--rules", cli("rules-custom.yaml"), SRC_05,
                                    cli("custom-input.log")], want_rc=1)
        self.assertEqual(self.rules(report), ["py-src-import", "settings-missing"])

    def test_broken_rules_file_exits_2_with_position(self):
        path = cli("bad-rules-file.yaml")
        proc = run(["--once", "--rules", path, SRC_05])
        self.assertEqual(proc.returncode, 2)
        err = text(proc.stderr)
        line = line_of(path, "pattern:")
        self.assertRegex(err, re.escape(path) + r":%d:\d+: " % line)
        self.assertIn("broken", err)
        self.assertIn("missing terminating ] for character class", err)
        self.assertRegex(err, r"offset\D{0,3}3\b")

    def test_config_custom_only(self):
        _, report = self.once_json(["-c", cli("custom-only.yaml"), SRC_05, cli("custom-input.log")],
                                   want_rc=1)
        self.assertEqual(self.rules(report), ["settings-missing"])
        _, report = self.once_json(["--config", cli("custom-only.yaml"), cli("custom-input.log")],
                                   want_rc=1)
        self.assertEqual(len(self.by_rule(report, "settings-missing")), 2)

    def test_config_incident_key(self):
        foo, bar = cli("mod-foo.log"), cli("mod-bar.log")
        _, report = self.once_json([foo, bar], want_rc=1)
        mods = sorted(i["fields"].get("module")
                      for i in self.by_rule(report, "py-module-not-found"))
        self.assertEqual(mods, ["bar", "foo"])
        _, report = self.once_json(["-c", cli("key-by-rule.yaml"), foo, bar], want_rc=1)
        inc = self.one(report, "py-module-not-found")
        self.assertEqual(inc["key"], "py-module-not-found")
        self.assertEqual(inc["count"], 2)
        self.assertEqual(inc["fields"].get("module"), "foo", "fields are the first match's")

    def test_broken_config_with_once_exits_2(self):
        proc = run(["--once", "-c", cli("bad-three.yaml"), SRC_05])
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(len(re.findall(r"bad-three\.yaml:\d+:\d+: ", text(proc.stderr))), 3,
                         text(proc.stderr))


class TestInputFormat(OnceCase):
    def test_auto_and_json_decode_tail_event(self):
        for args in ([], ["--input-format", "auto"], ["--input-format", "json"]):
            _, report = self.once_json(args + [TAIL_S02], want_rc=1)
            inc = self.one(report, "py-src-import")
            self.assertEqual(inc["fields"].get("version"), SYN_VERSION, args)
            self.assertEqual(inc["fields"].get("script"), "example-py", args)

    def test_lines_override_treats_json_as_text(self):
        _, report = self.once_json(["--input-format", "lines", TAIL_S02])
        for inc in report["incidents"]:
            self.assertNotEqual(inc["fields"].get("version"), SYN_VERSION,
                                "--input-format lines decoded JSON anyway: %r" % inc)

    def test_json_override_on_text(self):
        _, report = self.once_json(["--input-format", "json", SRC_05], want_rc=0)
        self.assertEqual(report["incidents"], [])

    def test_wrangler_log(self):
        for fmt in ("wrangler-log", "auto"):
            _, report = self.once_json(["--input-format", fmt, cli("wrangler-debug.log")],
                                       want_rc=1)
            inc = self.one(report, "py-src-import")
            self.assertEqual(inc["fields"].get("import"),
                             "from src.core.config.settings import Settings", fmt)


class TestCheckConfig(OnceCase):
    def check(self, name):
        path = cli(name)
        proc = run(["--check-config", "-c", path])
        return path, proc, text(proc.stdout), text(proc.stderr)

    def error_lines(self, path, err):
        base = re.escape(path)
        return [line for line in err.splitlines() if re.match(base + r":\d+:\d+: ", line)]

    def test_good_config_summary(self):
        path, proc, out, err = self.check("good.yaml")
        self.assertEqual(proc.returncode, 0, err)
        n = builtin_rule_count()
        for pack, count in (("python-workers", n), ("custom", 2)):
            near = r"%s\W{1,3}%d\b|\b%d\W{1,3}(rules? )?(from |in )?%s" % (pack, count, count, pack)
            self.assertRegex(out, near, "summary should name %s with %d rules" % (pack, count))
        proc = run(["--check-config", "--config", path])
        self.assertEqual(proc.returncode, 0)

    def test_null_required_values_are_missing(self):
        # `key: ~` is no value: reported as missing, never a silent NULL (a poller named ~ used
        # to pass and crash the daemon; account_id: ~ left every Cloudflare input unmade)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "null.yaml")
            with open(path, "w") as f:
                f.write("cloudflare:\n  account_id: ~\n  api_token: x\n"
                        "sources:\n"
                        "  - {name: ~, type: cloudflare-deployments, scripts: [a]}\n"
                        "  - {name: ~, type: cloudflare-tail, scripts: [a]}\n"
                        "rules:\n  custom:\n    - {id: nullpat, pattern: ~}\n")
            proc = run(["--check-config", "-c", path])
            err = text(proc.stderr)
            self.assertEqual(proc.returncode, 2, err)
            for want in ("null.yaml:2:3: cloudflare: account_id is required",
                         "null.yaml:5:5: sources[0]: a source needs a name",
                         "null.yaml:6:5: sources[1]: a source needs a name",
                         "rule 'nullpat': missing pattern"):
                self.assertIn(want, err)

    def test_unknown_top_level_key(self):
        path, proc, _, err = self.check("bad-unknown-key.yaml")
        self.assertEqual(proc.returncode, 2)
        lines = self.error_lines(path, err)
        self.assertEqual(len(lines), 1, err)
        self.assertRegex(lines[0], r":%d:\d+: " % line_of(path, "rulez:"))
        self.assertRegex(lines[0], r":\d+: rulez: .*\brulez\b")
        for key in ("rules", "incidents", "sources", "sinks"):
            self.assertRegex(lines[0], r"\b%s\b" % key, "valid keys should be listed")

    def test_invalid_regex(self):
        path, proc, _, err = self.check("bad-regex.yaml")
        self.assertEqual(proc.returncode, 2)
        lines = self.error_lines(path, err)
        self.assertEqual(len(lines), 1, err)
        self.assertRegex(lines[0], r":%d:\d+: " % line_of(path, "pattern:"))
        self.assertRegex(lines[0], r":\d+: rules\.custom(\[0\]|\.0)\.pattern: ")
        self.assertIn("bad-regex", lines[0])
        self.assertIn("missing closing parenthesis", lines[0])
        self.assertRegex(lines[0], r"offset\D{0,3}22\b")

    def test_bad_severity(self):
        path, proc, _, err = self.check("bad-severity.yaml")
        self.assertEqual(proc.returncode, 2)
        lines = self.error_lines(path, err)
        self.assertEqual(len(lines), 1, err)
        self.assertRegex(lines[0], r":%d:\d+: " % line_of(path, "severity: fatal"))
        self.assertRegex(lines[0], r":\d+: rules\.custom(\[0\]|\.0)\.severity: ")
        self.assertIn("fatal", lines[0])

    def test_bad_duration(self):
        path, proc, _, err = self.check("bad-duration.yaml")
        self.assertEqual(proc.returncode, 2)
        lines = self.error_lines(path, err)
        self.assertEqual(len(lines), 1, err)
        self.assertRegex(lines[0], r":%d:\d+: " % line_of(path, "repeat_interval:"))
        self.assertRegex(lines[0], r":\d+: incidents\.repeat_interval: ")
        self.assertIn("4 hours", lines[0])

    def test_all_errors_reported(self):
        path, proc, _, err = self.check("bad-three.yaml")
        self.assertEqual(proc.returncode, 2)
        lines = self.error_lines(path, err)
        got = sorted(int(line[len(path) + 1:].split(":", 1)[0]) for line in lines)
        want = sorted([line_of(path, "severity: urgent"), line_of(path, "repeat_interval: soon"),
                       line_of(path, "resolve_afterr:")])
        self.assertEqual(got, want, err)
        unknown = [line for line in lines if "resolve_afterr" in line]
        self.assertEqual(len(unknown), 1, err)
        self.assertRegex(unknown[0], r":\d+: incidents\.resolve_afterr: ")
        for key in ("key", "repeat_interval", "resolve_after"):
            self.assertRegex(unknown[0], r"\b%s\b" % key, "valid keys of incidents")

    def test_cr_only_line_ends(self):
        # a CR-only file over 64 KiB used to be one over-long line, skipped: no incident, exit 0
        lines = ["GET /api/%d 200 OK" % i for i in range(6000)]
        lines[4321] = "ModuleNotFoundError: No module named 'src'"
        path = self.tmpfile("mac.log", "\r".join(lines).encode() + b"\r")
        _, report = self.once_json([path], want_rc=1)
        inc = self.one(report, "py-src-import")
        self.assertEqual(inc["first"]["line"], 4322)
        self.assertEqual(report["stats"]["lines"], 6000)
        self.assertEqual(report["stats"]["long_lines_skipped"], 0)
        # a small one too (split when the input ends)
        small = self.tmpfile("small-mac.log", b"one\rNo module named 'src'\rthree")
        _, report = self.once_json([small], want_rc=1)
        self.assertEqual(self.one(report, "py-src-import")["first"]["line"], 2)
        # progress bars that rewrite a line with CR in an LF file keep LF line numbers
        ci = self.tmpfile("ci.log", b"Downloading 10%\rDownloading 60%\rDownloading 100%\n"
                                    b"ok\nModuleNotFoundError: No module named 'src'\n")
        _, report = self.once_json([ci], want_rc=1)
        self.assertEqual(self.one(report, "py-src-import")["first"]["line"], 3)
        self.assertEqual(report["stats"]["lines"], 3)

    def test_fifo_or_device_config_is_refused(self):
        # a FIFO with no writer would block open(2) for ever; a device is not a configuration
        fifo = os.path.join(self.tmp, "cfwatchd.yaml")
        os.mkfifo(fifo)
        for args in (["--check-config", "-c", fifo], ["--once", "--rules", fifo, OK_03],
                     ["--check-config", "-c", "/dev/null"]):
            proc = run(args)  # run() times out after 60 s: a hang fails the test
            self.assertEqual(proc.returncode, 2, args)
            err = text(proc.stderr)
            path = args[2]
            kind = "a FIFO" if path == fifo else "a character device"
            self.assertIn("%s: %s, not a regular file" % (path, kind), err)

    def test_missing_config_file(self):
        proc = run(["--check-config", "-c", "/nonexistent/cfwatchd.yaml"])
        self.assertEqual(proc.returncode, 2)
        self.assertIn("/nonexistent/cfwatchd.yaml", text(proc.stderr))


class TestVersionHelp(OnceCase):
    def test_version(self):
        with open(os.path.join(SOURCE_DIR, "CMakeLists.txt"), encoding="utf-8") as f:
            version = re.search(r"project\(cfwatchd VERSION ([0-9.]+)", f.read()).group(1)
        proc = run(["--version"])
        self.assertEqual(proc.returncode, 0)
        self.assertIn("cfwatchd", text(proc.stdout))
        self.assertIn(version, text(proc.stdout))

    def test_help_mentions_every_option(self):
        proc = run(["--help"])
        self.assertEqual(proc.returncode, 0)
        out = text(proc.stdout)
        for word in ("--once", "--format", "--fail-on", "--rules", "--no-builtin", "--input-format",
                     "--config", "--no-color", "--check-config", "--version", "--help",
                     "text", "json", "github", "critical", "error", "warning", "info", "none",
                     "auto", "lines", "wrangler-log", "NO_COLOR", "--scan", "fast", "full"):
            self.assertIn(word, out, "--help does not mention %s" % word)
        self.assertRegex(out, r"(^|[\s,\[|])-c\b", "--help does not mention -c")


class TestScan(OnceCase):
    """--scan fast (the prefilter) and --scan full give the same report; the switches."""

    def corpus_logs(self):
        logs = []
        for d in (CORPUS, os.path.join(CORPUS, "synthetic"), CLI,
                  os.path.join(SOURCE_DIR, "tests", "data", "framer"),
                  os.path.join(SOURCE_DIR, "tests", "data", "decode")):
            logs += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".log"))
        return logs

    def test_fast_and_full_same_incidents(self):
        logs = self.corpus_logs()
        self.assertGreater(len(logs), 20)
        # every log alone, then all at once; under memcheck (scripts/valgrind.sh) all at once only
        alone = [] if "valgrind" in os.environ.get("CFWATCHD_WRAPPER", "") else logs
        for path in alone + [None]:
            args = [path] if path is not None else logs
            for fmt in ("auto", "json", "lines"):
                _, fast = self.once_json(["--input-format", fmt, "--scan", "fast"] + args)
                _, full = self.once_json(["--input-format", fmt, "--scan", "full"] + args)
                self.assertEqual(fast["incidents"], full["incidents"], "%s (%s)" % (path, fmt))
                for k in ("records", "matches", "lines", "bytes", "incidents"):
                    self.assertEqual(fast["stats"][k], full["stats"][k], "stats.%s" % k)
                self.assertEqual(full["stats"]["records_decoded"], full["stats"]["records"])
                self.assertLessEqual(fast["stats"]["records_decoded"], fast["stats"]["records"])
                self.assertLessEqual(fast["stats"]["events"], full["stats"]["events"])

    def test_fast_decodes_only_candidates(self):
        lines = [b"GET /api/%d 200 OK in 3 ms" % i for i in range(200)]
        lines.append(b"ModuleNotFoundError: No module named 'src'")
        _, report = self.once_json([], stdin=b"\n".join(lines) + b"\n", want_rc=1)
        self.assertEqual(report["stats"]["records"], 201)
        self.assertEqual(report["stats"]["records_decoded"], 1)
        self.assertEqual(report["stats"]["events"], 1)
        self.assertEqual(self.one(report, "py-src-import")["count"], 1)

    def test_scan_usage_error(self):
        proc = run(["--once", "--scan", "slow", "-"])
        self.assertEqual(proc.returncode, 2)
        self.assertIn("--scan: unknown mode 'slow' (fast, full)", text(proc.stderr))

    def test_config_rules_scan(self):
        good = self.tmpfile("scan-full.yaml", b"rules:\n  scan: full\n")
        proc = run(["--check-config", "-c", good])
        self.assertEqual(proc.returncode, 0, text(proc.stderr))
        self.assertIn("scan full", text(proc.stdout))
        _, report = self.once_json(["-c", good, OK_03])
        self.assertEqual(report["stats"]["records_decoded"], report["stats"]["records"])
        bad = self.tmpfile("scan-bad.yaml", b"rules:\n  builtin: [python-workers]\n  scan: slow\n")
        proc = run(["--check-config", "-c", bad])
        self.assertEqual(proc.returncode, 2)
        self.assertRegex(text(proc.stderr), re.escape(bad) + r":3:9: rules\.scan: unknown scan "
                         r"mode 'slow' \(use fast or full\)")

    def test_check_config_names_rules_without_literal(self):
        conf = self.tmpfile("noliteral.yaml", (
            b"rules:\n"
            b"  custom:\n"
            b"    - id: digits-only\n"
            b"      pattern: '^\\d+$'\n"
            b"    - id: fine\n"
            b"      pattern: 'Quota exceeded'\n"))
        proc = run(["--check-config", "-c", conf])
        self.assertEqual(proc.returncode, 0, text(proc.stderr))
        out = text(proc.stdout)
        self.assertIn("note: %s:4:16: rule 'digits-only' has no literal for the prefilter: every "
                      "text and JSON record is decoded for it" % conf, out)
        self.assertNotIn("'fine'", out)
        self.assertNotIn("worker-exception", out, "kind-restricted built-in rule reported")
        # and it still matches, fast as full
        data = b"12345\nabc\n"
        _, fast = self.once_json(["-c", conf, "--scan", "fast", "-"], stdin=data)
        _, full = self.once_json(["-c", conf, "--scan", "full", "-"], stdin=data)
        self.assertEqual(fast["incidents"], full["incidents"])
        self.assertEqual(self.one(fast, "digits-only")["count"], 1)


class TestJobs(OnceCase):
    """--once -j N scans files in worker processes and prints, byte for byte, the report and
    exit status of a serial scan (-j 1): order, counts, first and last positions, a failure
    in one file resolved by a successful deploy in a later one, gzip and plain files mixed."""

    FAILED = (b"\xe2\x9c\x98 [ERROR] A request to the Cloudflare API "
              b"(/accounts/x/workers/scripts/py-api/versions) failed.\n\n"
              b"  Uncaught Error: PythonError: Traceback (most recent call last):\n"
              b"  ModuleNotFoundError: No module named 'src' [code: 10021]\n\n")
    FIXED = b"Uploaded py-api (3.21 sec)\nDeployed py-api triggers (0.45 sec)\n"

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def archive(self):
        """A directory of archives: gzip and plain, one incident in several files, a big file
        first (so that later files finish first), a failure fixed two files later."""
        root = os.path.join(self.tmp, "archive")
        os.makedirs(os.path.join(root, "day2"))
        files = {
            "day1-a.log.gz": gzip.compress(self.read(SRC_05) + FILLER * 20 + self.read(DUP_11)),
            "day1-b.log": self.FAILED + FILLER,
            "day1-c.log.gz": gzip.compress(self.read(ANSI_01)),
            "day1-d.log": FILLER + self.FIXED,
            "day2/e.log.gz": gzip.compress(self.read(SRC_05) + self.read(INFO_06)),
            "day2/f.log": self.read(TAIL_S02),
            "day2/g.log.gz": gzip.compress(self.read(VALIDATION_04) + self.read(SRC_05)),
        }
        for rel, data in files.items():
            with open(os.path.join(root, rel), "wb") as f:
                f.write(data)
        return root, len(files)

    def assert_jobs_same(self, args, jobs=(2, 3, 8)):
        # under memcheck (CI's last phase, 30 times slower) one parallel run stands for all
        memcheck = "valgrind" in os.environ.get("CFWATCHD_WRAPPER", "")
        serial = run(["--once", "-j", "1"] + args)
        for n in jobs[:1] if memcheck else jobs:
            for opt in [["-j", str(n)]] + ([] if memcheck else [["--jobs=%d" % n]]):
                par = run(["--once"] + opt + args)
                self.assertEqual(par.returncode, serial.returncode, text(par.stderr))
                self.assertEqual(text(par.stdout), text(serial.stdout), "%s %s" % (opt, args))
        return serial

    def test_same_report_as_serial(self):
        root, nfiles = self.archive()
        for fmt in ("json", "text", "github"):
            serial = self.assert_jobs_same(["--format", fmt, root])
            self.assertEqual(serial.returncode, 1, text(serial.stderr))
        # the default (one worker per CPU) too, and what the report holds is what it should
        proc, report = self.once_json([root], want_rc=1)
        self.assertEqual(report["stats"]["inputs"], nfiles)
        (src,) = [i for i in report["incidents"] if i["key"] == "py-src-import//src"]
        self.assertEqual(src["count"], 3)
        self.assertEqual(src["first"]["input"], os.path.join(root, "day1-a.log.gz"))
        self.assertEqual(src["last"]["input"], os.path.join(root, "day2", "g.log.gz"))
        fixed = [i for i in report["incidents"] if i.get("resolved_by")]
        self.assertEqual(len(fixed), 1, report["incidents"])
        self.assertIn(os.path.join(root, "day1-d.log"), fixed[0]["resolved_by"])

    def test_errors_and_stdin_among_files(self):
        root, _ = self.archive()
        cut = self.tmpfile("cut.log.gz", gzip.compress(self.read(SRC_05) + FILLER)[:-200])
        missing = os.path.join(self.tmp, "missing.log")
        serial = self.assert_jobs_same([root, cut, missing], jobs=(4,))
        self.assertEqual(serial.returncode, 2)
        stdin = self.read(DUP_11)
        one = run(["--once", "-j", "1", "--format", "json", SRC_05, "-", OK_03], stdin=stdin)
        par = run(["--once", "-j", "3", "--format", "json", SRC_05, "-", OK_03], stdin=stdin)
        self.assertEqual(text(par.stdout), text(one.stdout))
        self.assertEqual(par.returncode, one.returncode)

    def test_workers_not_started(self):
        """Workers that cannot be started (no file descriptor left for their pipes): the
        inputs are scanned anyway, stdin among them (the main process once polled and read fd 0
        for a worker that never started), and the report is the serial one."""
        if "valgrind" in os.environ.get("CFWATCHD_WRAPPER", ""):
            self.skipTest("memcheck needs file descriptors of its own")
        import resource
        stdin = self.read(DUP_11)
        args = ["--format", "json", SRC_05, "-", OK_03, VALIDATION_04]
        one = run(["--once", "-j", "1"] + args, stdin=stdin)

        def few_fds():
            resource.setrlimit(resource.RLIMIT_NOFILE, (6, 6))
        par = subprocess.run([CFWATCHD, "--once", "-j", "6"] + args, input=stdin,
                             capture_output=True, timeout=TIMEOUT, env=clean_env(),
                             preexec_fn=few_fds)
        check_sanitizer(args, par.stderr)
        self.assertIn("--jobs: pipe: Too many open files", text(par.stderr))
        self.assertEqual(text(par.stdout), text(one.stdout))
        self.assertEqual(par.returncode, one.returncode)

    def test_input_given_back(self):
        """An input whose matches pass what a worker sends (CFW_JOB_MSG_MAX lowers the 1 GiB
        cap): the worker gives it back unsent, the main process scans it in its turn, and the
        report and exit status are the serial scan's (nothing cut, no error status)."""
        root, nfiles = self.archive()
        args = ["--format", "json", root]
        serial = run(["--once", "-j", "1"] + args)
        par = run(["--once", "-j", "3"] + args, env=clean_env(CFW_JOB_MSG_MAX="300"))
        self.assertIn("it is scanned by the main process", text(par.stderr))
        self.assertEqual(text(par.stdout), text(serial.stdout))
        self.assertEqual(par.returncode, serial.returncode)
        self.assertEqual(json.loads(text(par.stdout))["stats"]["inputs"], nfiles)
        # stdin cannot be read again: its matches are left out, said, and the status is 2
        stdin = self.read(SRC_05)
        par = run(["--once", "-j", "2", "--format", "json", "-", OK_03], stdin=stdin,
                  env=clean_env(CFW_JOB_MSG_MAX="300"))
        self.assertIn("-: its matches passed what a scan worker sends (300 bytes) and it cannot "
                      "be read again", text(par.stderr))
        self.assertEqual(par.returncode, 2, text(par.stderr))

    def test_dead_worker(self):
        """A worker killed mid-scan: its input is scanned by the main process in its turn, the
        report is complete and the same as a serial scan's, the exit status says 2."""
        root, _ = self.archive()
        fifo = os.path.join(self.tmp, "fifo.log")
        os.mkfifo(fifo)
        data = self.FAILED + self.read(DUP_11)
        serial_in = self.tmpfile("serial.log", data)
        proc = subprocess.Popen([CFWATCHD, "--once", "--format", "json", "-j", "2", root, fifo],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())

        def cleanup():
            """On a failure nothing is left waiting on the FIFO: the workers, then the scan."""
            if proc.poll() is None:
                try:
                    with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
                        for kid in f.read().split():
                            os.kill(int(kid), 9)
                except OSError:
                    pass
                proc.kill()
            proc.communicate(timeout=TIMEOUT)

        self.addCleanup(cleanup)

        def reader_of_fifo():
            """The worker opening the FIFO: open(2) waits there for a writer, the other worker
            scans the archive and ends."""
            try:
                with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                return None
            for kid in kids:
                try:
                    with open("/proc/%d/wchan" % kid) as f:
                        wchan = f.read()
                    if "partner" in wchan or "fifo" in wchan:
                        return kid
                except OSError:
                    continue
            return None

        deadline = time.monotonic() + TIMEOUT
        kid = None
        while kid is None and time.monotonic() < deadline:
            kid = reader_of_fifo()
            time.sleep(0.05)
        self.assertIsNotNone(kid, "no worker opened the FIFO")
        os.kill(kid, 9)

        def dead():
            try:
                with open("/proc/%d/stat" % kid) as f:
                    return f.read().rsplit(")", 1)[1].split()[0] == "Z"
            except (FileNotFoundError, ProcessLookupError):  # reaped already (or while read)
                return True

        # a writer must not meet the dying worker's open: wait until it is a zombie or gone
        while not dead() and time.monotonic() < deadline:
            time.sleep(0.02)
        # the main process opens the FIFO in its turn: give it the data then
        with open(fifo, "wb") as f:
            f.write(data)
        out, err = proc.communicate(timeout=TIMEOUT)
        check_sanitizer(["-j", "2"], err)
        self.assertEqual(proc.returncode, 2, text(err))
        self.assertIn("a scan worker was killed by signal 9", text(err))
        serial = run(["--once", "--format", "json", "-j", "1", root, serial_in])
        self.assertEqual(text(out).replace(fifo, serial_in), text(serial.stdout))

    def test_bad_jobs(self):
        for bad in ("0", "-1", "x", "2x", "257", ""):
            proc = run(["--once", "-j", bad, SRC_05])
            self.assertEqual(proc.returncode, 2, bad)
            self.assertIn("--jobs: '%s' is not a number from 1 to 256" % bad, text(proc.stderr))
        proc = run(["--check-config", "-j", "2"])
        self.assertEqual(proc.returncode, 2)
        self.assertIn("--jobs goes with --once", text(proc.stderr))


if __name__ == "__main__":
    # optional name filter: test_once_cli.py Github Inputs
    sys.exit(run_tests(__name__))
