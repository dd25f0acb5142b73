#!/usr/bin/env python3
"""A damaged state never costs more than the damage (issue 17): state.json truncated (as a
half-written file), garbage, or a directory; a SIGKILL before any snapshot. Each time the daemon
starts, says what it found (the damaged file is moved aside with a timestamp), recovers every
open incident from the previous generation and the journal, announces none of them again, and
still resolves them.

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import glob
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import LogCaptureCase, run_tests, wait_until  # noqa: E402

KEYS = ["boom/one", "boom/two", "boom/three"]


def config(log, state, hook):
    return {
        "state_dir": state,
        "sources": [{"name": "app", "type": "file", "path": log, "start_at": "end"}],
        "rules": {"builtin": [], "custom": [
            {"id": "boom", "pattern": r"BOOM (?<what>\w+)", "severity": "error",
             "key": "{rule}/{what}", "title": "boom on {what}", "resolve_after": "4s",
             "repeat_interval": "1h"},
        ]},
        "sinks": [{"name": "hook", "type": "webhook", "url": hook}],
    }


class RecoveryCase(LogCaptureCase):
    def setUp(self):
        super().setUp()
        self.state = self.path("state")
        self.cfg = config(self.log, self.state, self.cap.url("/hook"))

    def events(self, event):
        out = {}
        for b in self.hook_bodies():
            if b.get("event") == event:
                out.setdefault(b["incident"]["key"], set()).add(b["id"])
        return out

    def open_three(self, stop):
        d = self.daemon(self.cfg)
        d.start()
        with open(self.log, "a", encoding="utf-8") as f:
            f.write("".join("BOOM %s\n" % k.split("/")[1] for k in KEYS))
        for k in KEYS:
            d.wait_incident(k)
        wait_until(lambda: set(self.events("open")) >= set(KEYS), "three opens delivered")
        if stop == "kill":
            d.kill()
        else:
            d.stop()
        self.d = d

    def restart_and_check(self, damaged_glob, said):
        d = self.d
        d.start()
        if said:
            d.wait_stderr(said)
        if damaged_glob:
            self.assertTrue(glob.glob(os.path.join(self.state, damaged_glob)),
                            os.listdir(self.state))
        states = {k: v["state"] for k, v in d.incident_map().items()}
        self.assertEqual(states, {k: "open" for k in KEYS})
        # nothing announced again; every resolve still comes, once per incident
        wait_until(lambda: set(self.events("resolve")) >= set(KEYS), "three resolves",
                   timeout=60)
        opens = self.events("open")
        self.assertEqual({k: len(v) for k, v in opens.items()}, {k: 1 for k in KEYS})
        self.assertEqual({k: len(v) for k, v in self.events("resolve").items()},
                         {k: 1 for k in KEYS})
        self.assertEqual(d.metric("cfwatchd_state_durable"), 1)
        d.stop()

    def test_truncated_state(self):
        self.open_three("term")
        path = os.path.join(self.state, "state.json")
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[:len(data) // 2])  # half-written
        self.restart_and_check("state.json.damaged-*", r"state: .*state\.json.*moved it to "
                               r"\S+state\.json\.damaged-\d{8}T\d{6}Z")

    def test_garbage_state(self):
        self.open_three("term")
        with open(os.path.join(self.state, "state.json"), "wb") as f:
            f.write(os.urandom(4096))
        self.restart_and_check("state.json.damaged-*", r"moved it to \S+state\.json\.damaged-")

    def test_state_that_is_a_directory(self):
        self.open_three("term")
        path = os.path.join(self.state, "state.json")
        os.rename(path, path + ".bak")
        os.mkdir(path)
        with open(os.path.join(path, "x"), "w", encoding="utf-8") as f:
            f.write("x")
        self.restart_and_check("state.json.damaged-*", r"not a regular file.*moved it to")

    def test_kill_before_first_snapshot(self):
        # the default save interval (30 s) never passes: the journal alone holds the incidents
        self.open_three("kill")
        self.assertFalse(os.path.exists(os.path.join(self.state, "state.json")))
        self.restart_and_check(None, r"state: journal: \d+ record\(s\) replayed")

    def test_both_generations_damaged(self):
        # snapshot and previous generation garbage: the journal files still hold every open
        self.open_three("term")
        for name in ("state.json", "state.json.1"):
            with open(os.path.join(self.state, name), "w", encoding="utf-8") as f:
                f.write("{\"version\": 1, \"incidents\": ")
        self.restart_and_check("state.json.1.damaged-*",
                               r"no readable state file; recovering from the journal alone")


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
