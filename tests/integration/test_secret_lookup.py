#!/usr/bin/env python3
"""Where a relative `*_file` secret is found: `cfwatchd --check-config -c <dir>/cfwatchd.yaml`.

A relative name is looked up in $CREDENTIALS_DIRECTORY (what systemd's LoadCredential= fills),
then in the configuration file's directory, never in the current directory; an absolute name
is used as it is. When the file is in neither place, the error names file:line:col, the key
path, every path tried and LoadCredential=. Each case runs the real binary from a working
directory that is neither of those places, with the secret never in the output.

Also the documented way to check the installed configuration by hand (README, operations.md):
the packaged conf/cfwatchd.yaml with a Slack sink whose url_file is in a root-only credentials
directory, checked with CREDENTIALS_DIRECTORY pointing at it.

Ends with "N passed, M failed"; exit status 0 when nothing failed.
"""
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from daemon import CFWATCHD, SOURCE_DIR, DaemonTestCase, run_tests  # noqa: E402

ACCOUNT = "0123456789abcdef0123456789abcdef"
CONFIG = """\
state_dir: {state}
listen: "off"
cloudflare:
  account_id: {account}
  api_token_file: {name}
sinks:
  - name: console
    type: stdout
"""
# api_token_file's value: line 5, column 19 of CONFIG
WHERE = "cfwatchd.yaml:5:19: cloudflare.api_token_file: "


def write_secret(path, value, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    os.chmod(path, mode)


class SecretLookup(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.etc = self.path("etc")
        self.creds = self.path("run-credentials")
        self.cwd = self.path("elsewhere")
        for d in (self.etc, self.creds, self.cwd):
            os.makedirs(d)
        os.chmod(self.creds, 0o700)
        self.secrets = []

    def config(self, name="cf_api_token"):
        path = os.path.join(self.etc, "cfwatchd.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(CONFIG.format(state=self.path("state"), account=ACCOUNT, name=name))
        return path

    def secret(self, path, value, mode=0o600):
        write_secret(path, value, mode)
        self.secrets.append(value)

    def check(self, config, creds=None, cwd=None):
        env = dict(os.environ)
        env.pop("CREDENTIALS_DIRECTORY", None)
        if creds is not None:
            env["CREDENTIALS_DIRECTORY"] = creds
        p = subprocess.run([CFWATCHD, "--check-config", "-c", config], capture_output=True,
                           text=True, env=env, cwd=cwd or self.cwd, timeout=60)
        for s in self.secrets:
            self.assertNotIn(s, p.stdout + p.stderr)
        return p

    def assert_ok(self, p):
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("configuration OK", p.stdout + p.stderr)

    def assert_error(self, p, pattern):
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertRegex(p.stderr, pattern)

    def test_found_in_credentials_directory(self):
        cfg = self.config()
        self.secret(os.path.join(self.creds, "cf_api_token"), "tok-from-credentials")
        self.assert_ok(self.check(cfg, creds=self.creds))

    def test_credentials_directory_comes_first(self):
        cfg = self.config()
        self.secret(os.path.join(self.creds, "cf_api_token"), "tok-from-credentials", 0o644)
        self.secret(os.path.join(self.etc, "cf_api_token"), "tok-beside-config")
        # the loose file in the credentials directory is the one checked (and refused)
        p = self.check(cfg, creds=self.creds)
        self.assert_error(p, re.escape(WHERE + "secret file %s is readable by group/others"
                                       % os.path.join(self.creds, "cf_api_token")))
        os.chmod(os.path.join(self.creds, "cf_api_token"), 0o400)
        self.assert_ok(self.check(cfg, creds=self.creds))

    def test_found_beside_the_configuration(self):
        cfg = self.config()
        self.secret(os.path.join(self.etc, "cf_api_token"), "tok-beside-config")
        # without CREDENTIALS_DIRECTORY, with one that lacks it, and with -c relative to cwd
        self.assert_ok(self.check(cfg))
        self.assert_ok(self.check(cfg, creds=self.creds))
        self.assert_ok(self.check(os.path.join("..", "etc", "cfwatchd.yaml")))
        self.assert_ok(self.check("cfwatchd.yaml", cwd=self.etc))
        # a relative name with a directory part is relative to the configuration too
        cfg = self.config("sub/cf_api_token")
        self.secret(os.path.join(self.etc, "sub", "cf_api_token"), "tok-in-subdir")
        self.assert_ok(self.check(cfg))

    def test_not_found_lists_the_paths_tried(self):
        cfg = self.config()
        # in the current directory only: not used
        self.secret(os.path.join(self.cwd, "cf_api_token"), "tok-in-cwd")
        p = self.check(cfg, creds=self.creds)
        self.assert_error(p, re.escape(
            "%s/%ssecret file cf_api_token not found (tried %s/cf_api_token, %s/cf_api_token); "
            "under systemd, LoadCredential=cf_api_token:/path/to/file puts it in "
            "$CREDENTIALS_DIRECTORY" % (self.etc, WHERE, self.creds, self.etc)))
        p = self.check(cfg)
        self.assert_error(p, re.escape(
            "%s/%ssecret file cf_api_token not found (tried %s/cf_api_token); "
            "$CREDENTIALS_DIRECTORY is not set: under systemd, "
            "LoadCredential=cf_api_token:/path/to/file puts it there" % (self.etc, WHERE, self.etc)))
        self.assertIn("1 configuration error", p.stderr)

    def test_absolute_name_is_used_as_it_is(self):
        other = self.path("other", "token")
        self.secret(other, "tok-absolute")
        cfg = self.config(other)
        self.secret(os.path.join(self.creds, os.path.basename(other)), "tok-wrong-place", 0o644)
        self.assert_ok(self.check(cfg, creds=self.creds))
        cfg = self.config(self.path("nowhere", "token"))
        p = self.check(cfg, creds=self.creds)
        self.assert_error(p, re.escape(WHERE + "cannot open secret file %s: No such file"
                                       % self.path("nowhere", "token")))

    def test_packaged_configuration_checked_as_documented(self):
        """README/operations.md: CREDENTIALS_DIRECTORY=/etc/cfwatchd/credentials cfwatchd
        --check-config -c /etc/cfwatchd/cfwatchd.yaml, with a Slack sink's url_file."""
        etc = self.path("etc-cfwatchd")
        shutil.copytree(os.path.join(SOURCE_DIR, "conf"), etc)
        cfg = os.path.join(etc, "cfwatchd.yaml")
        with open(cfg, "a", encoding="utf-8") as f:
            f.write("  - name: ops-slack\n    type: slack\n    url_file: slack_url\n")
        creds = os.path.join(etc, "credentials")
        os.makedirs(creds, mode=0o700)
        token = "T000/B000/SlackLookupToken0042"
        self.secret(os.path.join(creds, "slack_url"), "https://hooks.slack.com/services/" + token)
        p = self.check(cfg)
        self.assert_error(p, r"cfwatchd\.yaml:\d+:\d+: sinks\[1\]\.url_file: secret file "
                             r"slack_url not found \(tried .*/etc-cfwatchd/slack_url\); "
                             r"\$CREDENTIALS_DIRECTORY is not set: under systemd, "
                             r"LoadCredential=slack_url:")
        p = self.check(cfg, creds=creds)
        self.assert_ok(p)
        self.assertIn("ops-slack (slack", p.stdout + p.stderr)


if __name__ == "__main__":
    sys.exit(run_tests(__name__))
