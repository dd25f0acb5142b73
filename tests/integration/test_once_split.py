#!/usr/bin/env python3
"""`cfwatchd --once -j N` on one large file: the file is scanned in parts by N workers
(include/cfwatchd/scanpart.h) and the report is, byte for byte, the one of a scan in one piece
(-j 1): incidents, counts, first and last positions (line numbers), resolutions, statistics.

CFW_PART_MIN lowers the smallest part (16 MiB) so that small files are split at many points,
inside tracebacks, wrangler blocks, pretty-printed JSON values and Workers Builds logs.

Environment: CFWATCHD = the binary, CFW_SOURCE_DIR = the repository. Plain unittest.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import CFWATCHD, SANITIZER_MARKS, SHARED_CORPUS as CORPUS, SOURCE_DIR, run_tests  # noqa: E402,E501

GEN = os.path.join(SOURCE_DIR, "bench", "gen-mixed.py")
MEMCHECK = "valgrind" in os.environ.get("CFWATCHD_WRAPPER", "")
TIMEOUT = 600 if MEMCHECK else 120


def run(args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    proc = subprocess.run([CFWATCHD] + args, capture_output=True, timeout=TIMEOUT, env=e)
    err = proc.stderr.decode("utf-8", "replace")
    if any(m in err for m in SANITIZER_MARKS):
        raise AssertionError("sanitizer report for %s:\n%s" % (args, err))
    return proc


def corpus_files():
    out = []
    for root, _, files in os.walk(CORPUS):
        for name in sorted(files):
            if name.endswith(".log"):
                out.append(os.path.join(root, name))
    return sorted(out)


class SplitCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cfw-split-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def assert_split_same(self, path, part_mins, jobs, fmt="json", extra=(), env=None):
        """Every (part size, workers) gives the report and status of -j 1; returns that scan
        and the info messages of the parallel ones (how the file was split, parts scanned
        again), which are all they print on standard error."""
        args = ["--once", "--format", fmt] + list(extra) + [path]
        whole = run(args[:1] + ["-j", "1"] + args[1:])
        self.assertIn(whole.returncode, (0, 1), whole.stderr)
        said = set()
        for pm in part_mins:
            for n in jobs:
                e = {"CFW_PART_MIN": str(pm)}
                e.update(env or {})
                par = run(args[:1] + ["-j", str(n), "--log-level", "info"] + args[1:], env=e)
                where = "CFW_PART_MIN=%d -j %d %s" % (pm, n, os.path.basename(path))
                err = par.stderr.decode("utf-8", "replace")
                self.assertEqual(par.returncode, whole.returncode, where + "\n" + err)
                self.assertEqual(par.stdout.decode(), whole.stdout.decode(), where)
                for line in err.splitlines():
                    self.assertTrue(line.startswith("cfwatchd: info: ") or
                                    "is scanned by the main process" in line, where + ": " + line)
                    said.add(line.replace(path, "FILE"))
        return whole, said


class TestSplit(SplitCase):
    def test_generated_mixed_log(self):
        """The bench generator's mix (every kind of log), split at many points."""
        for seed, mix in ((3, "default"), (4, "json")):
            path = os.path.join(self.tmp, "mixed-%d.log" % seed)
            subprocess.run([sys.executable, GEN, "--size", "2M", "--seed", str(seed), "--mix",
                            mix, "--out", path, "--quiet"], check=True, timeout=TIMEOUT)
            mins = (200003,) if MEMCHECK else (997, 30011, 400009)
            jobs = (3,) if MEMCHECK else (2, 3, 8)
            whole, said = self.assert_split_same(path, mins, jobs)
            self.assertIn("cfwatchd: info: FILE: scanned in %d parts" % jobs[-1], said)
            report = json.loads(whole.stdout)
            self.assertGreater(report["stats"]["incidents"], 0)
            self.assertEqual(report["stats"]["inputs"], 1)

    def test_corpus_concatenated(self):
        """The corpus files, concatenated in random orders (blocks of every kind meet at part
        starts), text and json reports."""
        files = corpus_files()
        rnd = random.Random(16)
        for k in range(1 if MEMCHECK else 4):
            rnd.shuffle(files)
            data = b"".join(open(f, "rb").read() for f in files) * (1 if MEMCHECK else 3)
            path = self.write("corpus-%d.log" % k, data)
            mins = (len(data) // 5,) if MEMCHECK else (61, 499, 4093, len(data) // 3)
            for fmt in (("json",) if MEMCHECK else ("json", "text")):
                self.assert_split_same(path, mins, (2,) if MEMCHECK else (2, 4, 7), fmt=fmt)

    def test_parts_that_do_not_meet(self):
        """A pretty-printed JSON value and a traceback longer than a part: the parts cannot meet
        before the part after next begins, so the part frames the rest of the file alone and
        the parts after it are left out; still the same report."""
        # inner lines that a part starting inside the value frames as text lines that match
        value = b"{\n" + b"".join(b'  "k%05d": "v",\n' % i if i % 97 else
                                   b'  "m%05d": "ModuleNotFoundError: No module named \'src\'",\n' % i
                                   for i in range(3000)) + \
            b'  "outcome": "exception", "exceptions": [{"name": "ModuleNotFoundError", ' \
            b'"message": "No module named \'src\'"}]\n}\n'
        tb = b"Traceback (most recent call last):\n" + \
            b"".join(b'  File "/app/m%d.py", line %d, in f\n    g()\n' % (i, i) for i in range(400)) + \
            b"ModuleNotFoundError: No module named 'src'\n"
        data = b"Uploaded py-api (1.00 sec)\n" + value + tb + b"Deployed py-api (0.1 sec)\n" + \
            tb + b"plain line\n" * 50 + value
        path = self.write("long-values.log", data)
        _, said = self.assert_split_same(path, (97, 1021, 8191),
                                         (2, 5, 8) if not MEMCHECK else (8,))
        self.assertTrue(any("did not meet the next before the part after it: it framed the "
                            "rest of the file" in m for m in said), said)

    def test_given_back_parts(self):
        """Parts whose matches pass what a worker sends (CFW_JOB_MSG_MAX) are scanned by the
        main process from where the parts met: the same report."""
        files = corpus_files()
        data = b"".join(open(f, "rb").read() for f in files) * 2
        path = self.write("given-back.log", data)
        _, said = self.assert_split_same(path, (len(data) // 4,), (3,),
                                         env={"CFW_JOB_MSG_MAX": "2000"})
        self.assertTrue(any("was not scanned: the file is scanned again" in m for m in said),
                        said)

    def test_records_in_memory(self):
        """Workers write their records to a spill file in $TMPDIR that the main process reads
        back a chunk at a time; where none can be made they travel on the pipe, in memory:
        the same report either way."""
        if MEMCHECK:
            self.skipTest("valgrind keeps files of its own in $TMPDIR")
        files = corpus_files()
        data = b"".join(open(f, "rb").read() for f in files) * 3
        path = self.write("in-memory.log", data)
        self.assert_split_same(path, (len(data) // 4,), (4,),
                               env={"TMPDIR": os.path.join(self.tmp, "no-such-dir")})

    def test_not_split(self):
        """gzip, CR-only and --input-format json files are scanned whole (the same report
        either way)."""
        import gzip
        files = corpus_files()
        data = b"".join(open(f, "rb").read() for f in files)
        for name, blob, extra in (
                ("z.log.gz", gzip.compress(data), ()),
                ("cr.log", data.replace(b"\n", b"\r"), ()),
                ("tail.json", open(os.path.join(CORPUS, "synthetic",
                                                "S02-SYNTHETIC-tail-json-python-exception.log"),
                                   "rb").read() * 50, ("--input-format", "json"))):
            path = self.write(name, blob)
            _, said = self.assert_split_same(path, (101,), (3,), extra=extra)
            self.assertEqual(said, set(), name)


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
