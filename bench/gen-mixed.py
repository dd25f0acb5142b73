#!/usr/bin/env python3
"""Generate a large, realistic, mixed Cloudflare Workers log with known failure counts.

The output interleaves what an ops host collects from Python Workers deployments and runtime:
  - `wrangler deploy` output with ANSI colour, box tables, `Total Upload:` and startup time lines;
  - pywrangler Rich log lines (level column, wrapped continuation lines);
  - Workers Builds logs (`<ISO 8601>\\t<line>`) around a deploy;
  - `wrangler tail --format json` events, pretty-printed with 4-space indents and concatenated;
  - Logpush `workers_trace_events` NDJSON records;
  - `wrangler tail --format pretty` request lines and Python tracebacks of ordinary bugs;
and, at random byte offsets, rare failures whose numbers are known exactly:
  - src_import       `ModuleNotFoundError: No module named 'src'` (deploy 10021 block, plain
                     traceback, tail JSON exception with and without `stack`, Logpush record,
                     Workers Builds log)
  - startup_cpu      Python Worker / script startup exceeded the CPU limit (10021)
  - size_10027       Worker over the size limit (10027)
  - module_not_found a third-party package that was not vendored (`No module named 'httpx'`)

For each class the generator records `events` (how many failure occurrences it wrote: what
cfwatchd should count, summed over the incidents of the class's rule) and `grep_lines` (how many
lines the class's grep pattern matches: a tail event whose `stack` repeats the message has the
text on two lines). Counts are printed and written to <out>.counts.json.

Same --seed and --size: byte-identical output.

usage: gen-mixed.py [--size 200M] [--seed 1] [--out FILE]
                    [--src-imports N] [--startup-cpu M] [--size-10027 K] [--module-not-found J]
"""
import argparse
import json
import os
import random
import re
import sys

# One grep pattern per failure class (PCRE; also valid for ripgrep's default engine).
CLASSES = {
    "src_import": {"rule": "py-src-import", "pattern": r"No module named 'src'"},
    "startup_cpu": {"rule": "startup-cpu-limit", "pattern": r"startup exceeded CPU"},
    "size_10027": {"rule": "bundle-size-limit", "pattern": r"\[code: 10027\]"},
    "module_not_found": {"rule": "py-module-not-found",
                         "pattern": r"No module named '(?:httpx|numpy|pydantic|jinja2|yaml)'"},
}
# Failures per 200 MiB of output (scaled linearly with --size unless given explicitly).
RATES_PER_200M = {"src_import": 1000, "startup_cpu": 300, "size_10027": 200,
                  "module_not_found": 400}
MIB = 1024 * 1024

SCRIPTS = ["py-api", "billing-worker", "edge-auth", "py-cron", "media-resizer", "orders-py",
           "search-py", "notify-worker", "inventory-api", "py-gateway", "reports-py", "ml-scorer",
           "checkout-py", "webhooks-in", "queue-consumer", "analytics-py", "feature-flags",
           "py-sandbox", "docs-api", "tenant-router", "py-email", "ledger-api", "geo-py",
           "sessions-py"]
PY_MODULES = ["handlers/items.py", "handlers/users.py", "core/config/settings.py", "core/db.py",
              "utils/helpers.py", "utils/__init__.py", "handlers/__init__.py", "core/__init__.py",
              "services/billing.py", "services/mail.py", "models/order.py", "models/__init__.py",
              "routes.py", "auth.py", "cache.py"]
SRC_IMPORTS = [("core.config.settings", "Settings"), ("utils.helpers", "greet"),
               ("handlers", "router"), ("core.db", "connect"), ("services.billing", "charge"),
               ("models.order", "Order")]
MISSING_PKGS = ["httpx", "numpy", "pydantic", "jinja2", "yaml"]
LOG_MESSAGES = ["request handled in {n} ms", "cache hit for /api/items/{n}",
                "cache miss for /api/items/{n}", "user {n} authenticated",
                "queued job {n} for processing", "D1 query took {n} ms",
                "fetched upstream in {n} ms (status 200)", "rate limit bucket {n} refilled",
                "rendered template index.html in {n} ms", "KV read settings:{n}"]
NOISE_EXCEPTIONS = [
    ("return cache[key]", "KeyError: 'item:{n}'"),
    ("count = int(request.query['limit'])",
     "ValueError: invalid literal for int() with base 10: 'all'"),
    ("ratio = hits / total", "ZeroDivisionError: division by zero"),
    ("name = user['profile']['name']", "TypeError: 'NoneType' object is not subscriptable"),
    ("data = await resp.json", "AttributeError: 'dict' object has no attribute 'json'"),
]
NPM_WARNINGS = [
    "npm warn deprecated inflight@1.0.6: This module is not supported, and leaks memory.",
    "npm warn deprecated glob@7.2.3: Glob versions prior to v9 are no longer supported",
    "npm warn deprecated rimraf@3.0.2: Rimraf versions prior to v4 are no longer supported",
    "npm warn deprecated abab@2.0.6: Use your platform's native atob() and btoa() methods instead",
    "npm warn deprecated domexception@2.0.1: Use your platform's native DOMException instead",
]
COLOS = [("FRA", "DE"), ("AMS", "NL"), ("IAD", "US"), ("SJC", "US"), ("NRT", "JP"), ("SIN", "SG"),
         ("LHR", "GB"), ("CDG", "FR"), ("GRU", "BR"), ("SYD", "AU")]

ESC = "\x1b"
ERR_ANSI = "\x1b[31m✘ \x1b[41;31m[\x1b[41;97mERROR\x1b[41;31m]\x1b[0m "
WARN_ANSI = "\x1b[33m▲ \x1b[43;33m[\x1b[43;30mWARNING\x1b[43;33m]\x1b[0m "
BOLD = ESC + "[1m"
UNDERLINE = ESC + "[4m"
RESET = ESC + "[0m"
RULE = "─" * 20
DOCS_10021 = ("https://developers.cloudflare.com/workers/observability/errors/"
              "#validation-errors-10021")
BUG_URL = "https://github.com/cloudflare/workers-sdk/issues/new/choose"
BASE_MS = 1785542400000  # 2026-08-01T00:00:00Z


def parse_size(s):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:i?[bB])?\s*", s)
    if not m:
        raise argparse.ArgumentTypeError("size like 200M, 1G, 512K or a number of MiB")
    mult = {"": MIB, "k": 1024, "m": MIB, "g": 1024 * MIB}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)


def iso(ms):
    s, milli = divmod(ms, 1000)
    # Days from the epoch to a civil date (Howard Hinnant's algorithm), no time zone database.
    days, rem = divmod(s, 86400)
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    mo = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (1 if mo <= 2 else 0)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (y, mo, d, rem // 3600, rem // 60 % 60, rem % 60,
                                                   milli)


def jstr(s):
    return json.dumps(s, ensure_ascii=False)


class Gen:
    def __init__(self, seed, mix="default"):
        self.mix = mix
        self.r = random.Random(seed)
        self.now = BASE_MS
        self.accounts = ["%032x" % self.r.getrandbits(128) for _ in range(3)]

    # ---- small helpers -------------------------------------------------------------------
    def tick(self):
        self.now += self.r.randrange(5, 4000)
        return self.now

    def uuid(self):
        h = "%032x" % self.r.getrandbits(128)
        return "%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16], "89ab"[int(h[16], 16) % 4],
                                      h[17:20], h[20:32])

    def script(self):
        return self.r.choice(SCRIPTS)

    def account(self):
        return self.r.choice(self.accounts)

    def log_message(self):
        return self.r.choice(LOG_MESSAGES).format(n=self.r.randrange(1, 5000))

    # ---- wrangler deploy -----------------------------------------------------------------
    def table(self, rows):
        """wrangler's `Attaching additional modules` box table."""
        head = ("Name", "Type", "Size")
        w = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(3)]
        def line(a, b, c):
            return a + b.join("─" * (n + 2) for n in w) + c
        def row(cells):
            return "│ " + " │ ".join(c.ljust(w[i]) for i, c in enumerate(cells)) + " │"
        sep = line("├", "┼", "┤")
        out = ["Attaching additional modules:", line("┌", "┬", "┐"), row(head), sep]
        for i, r in enumerate(rows):
            out.append(row(r))
            out.append(sep if i < len(rows) - 1 else line("└", "┴", "┘"))
        return out

    def deploy_head(self, script, ansi, vendored=None, upload_kib=None):
        r = self.r
        mods = sorted(r.sample(PY_MODULES, r.randrange(2, 9)))
        sizes = [r.uniform(0.01, 9.0) for _ in mods]
        rows = [(m, "python", "%.2f KiB" % k) for m, k in zip(mods, sizes)]
        n = len(mods)
        vend = r.random() < 0.4 if vendored is None else vendored
        if vend:
            sizes.append(r.uniform(500, 9000))
            n += r.randrange(50, 400)
            rows.append(("Vendored Modules", "", "%.2f KiB" % sizes[-1]))
        total = sum(sizes)
        rows.append(("Total (%d modules)" % n, "", "%.2f KiB" % total))
        out = ["", " ⛅️ wrangler 4.%d.%d" % (r.randrange(40, 124), r.randrange(0, 4)), RULE]
        if ansi and r.random() < 0.1:
            out += [WARN_ANSI + BOLD + "The entrypoint src/entry.py defines a Python worker, "
                    "support for Python workers is currently experimental." + RESET, "", ""]
        out += self.table(rows)
        upload = upload_kib if upload_kib is not None else total + r.uniform(1, 30)
        out.append("Total Upload: %.2f KiB / gzip: %.2f KiB" % (upload,
                                                               upload * r.uniform(0.2, 0.35)))
        return out

    def deploy_ok(self, ansi=True):
        r = self.r
        script = self.script()
        out = self.deploy_head(script, ansi)
        out.append("Worker Startup Time: %d ms" % r.randrange(120, 900))
        out += ["Your Worker has access to the following bindings:",
                "Binding" + " " * 41 + "Resource",
                ("env.DB (%s)" % script).ljust(48) + "D1 Database",
                ("env.CACHE (%s-cache)" % script).ljust(48) + "KV Namespace",
                ('env.LOG_LEVEL ("info")').ljust(48) + "Environment Variable", ""]
        url = "https://%s.example.workers.dev" % script
        out += ["Uploaded %s (%.2f sec)" % (script, r.uniform(1, 9)),
                "Deployed %s triggers (%.2f sec)" % (script, r.uniform(0.1, 2)),
                "  " + (UNDERLINE + url + RESET if ansi else url),
                "Current Version ID: " + self.uuid(), ""]
        return out

    def api_error(self, script, body, ansi, code_line=None):
        """A wrangler `✘ [ERROR] A request to the Cloudflare API ... failed.` block."""
        path = "/accounts/%s/workers/scripts/%s/versions" % (self.account(), script)
        head = "A request to the Cloudflare API (%s) failed." % path
        out = ["", (ERR_ANSI + BOLD + head + RESET) if ansi else "✘ [ERROR] " + head, ""]
        out += body
        if code_line:
            out.append(code_line)
        docs = UNDERLINE + DOCS_10021 + RESET if ansi else DOCS_10021
        bug = UNDERLINE + BUG_URL + RESET if ansi else BUG_URL
        out += ["  To learn more about this error, visit: " + docs, "", "",
                "  If you think this is a bug, please open an issue at: " + bug, "", ""]
        out.append('🪵  Logs were written to "/home/ci/.config/.wrangler/logs/wrangler-%s.log"'
                   % iso(self.now)[:19].replace(":", "-").replace("T", "_"))
        out.append("")
        return out

    # ---- pywrangler, Workers Builds, tail, Logpush ----------------------------------------
    def pywrangler(self):
        r = self.r
        proj = "/home/ci/work/%s" % self.script()
        return ["Using CPython 3.13.%d" % r.randrange(0, 16),
                "Creating virtual environment at: .venv-workers",
                "Activate with: source .venv-workers/bin/activate",
                "INFO     Resolved %d requirements from" % r.randrange(1, 30),
                "         %s/pylock.toml." % proj,
                "INFO     Installing packages into python_modules...",
                "INFO     Packages installed in python_modules.",
                "INFO     Installing packages into .venv-workers...",
                "INFO     Packages installed in .venv-workers.",
                "INFO     Passing command to npx wrangler: npx --yes wrangler deploy"]

    def builds(self, inner=None):
        """A Workers Builds log: every line `<ISO time>\\t<text>`; inner = the deploy's lines."""
        r = self.r
        lines = ["Initializing build environment...",
                 "Success: Finished initializing build environment",
                 "Cloning repository...",
                 "Detected the following tools from environment: npm@10.%d.2, nodejs@22.%d.0, "
                 "python@3.13.%d" % (r.randrange(1, 9), r.randrange(1, 17), r.randrange(0, 8)),
                 "Installing project dependencies: npm clean-install --progress=false"]
        lines += r.sample(NPM_WARNINGS, r.randrange(1, len(NPM_WARNINGS) + 1))
        lines += ["", "added %d packages, and audited %d packages in %ds" % (
            r.randrange(50, 1500), r.randrange(50, 1500), r.randrange(2, 40)), "",
            "Executing user deploy command: uv run pywrangler deploy"]
        failed = inner is not None
        lines += self.pywrangler() + (inner if failed else self.deploy_ok(ansi=False))
        lines.append("Failed: error occurred while running deploy command" if failed
                     else "Success: Deploy command completed")
        out = []
        for line in lines:
            self.now += r.randrange(1, 900)
            out.append(iso(self.now) + "\t" + line)
        out.append("")
        return out

    def tail_event(self, script=None, outcome="ok", exceptions=None, status=200):
        """One `wrangler tail --format json` event, as JSON.stringify(x, null, 4) prints it."""
        r = self.r
        script = script or self.script()
        ts = self.tick()
        colo, country = r.choice(COLOS)
        logs = []
        for _ in range(r.randrange(0, 4)):
            logs.append("        {\n            \"message\": [\n                %s\n"
                        "            ],\n            \"level\": \"%s\",\n"
                        "            \"timestamp\": %d\n        }"
                        % (jstr(self.log_message()), r.choice(("log", "info", "debug")),
                           ts + r.randrange(0, 30)))
        exc = []
        for name, message, stack in exceptions or []:
            item = ("        {\n            \"name\": %s,\n            \"message\": %s,\n"
                    "            \"timestamp\": %d" % (jstr(name), jstr(message), ts + 7))
            if stack is not None:
                item += ",\n            \"stack\": %s" % jstr(stack)
            exc.append(item + "\n        }")
        def arr(items):
            return "[\n" + ",\n".join(items) + "\n    ]" if items else "[]"
        return ("{\n"
                "    \"wallTime\": %d,\n    \"cpuTime\": %d,\n    \"truncated\": false,\n"
                "    \"executionModel\": \"stateless\",\n    \"outcome\": \"%s\",\n"
                "    \"scriptName\": \"%s\",\n    \"diagnosticsChannelEvents\": [],\n"
                "    \"exceptions\": %s,\n    \"logs\": %s,\n    \"eventTimestamp\": %d,\n"
                "    \"event\": {\n        \"request\": {\n"
                "            \"url\": \"https://%s.example.workers.dev/api/items/%d\",\n"
                "            \"method\": \"%s\",\n            \"headers\": {\n"
                "                \"accept\": \"application/json\",\n"
                "                \"cf-connecting-ip\": \"203.0.113.%d\",\n"
                "                \"user-agent\": \"Mozilla/5.0 (X11; Linux x86_64)\"\n"
                "            },\n            \"cf\": {\n                \"colo\": \"%s\",\n"
                "                \"country\": \"%s\",\n                \"asn\": %d\n"
                "            }\n        },\n        \"response\": {\n"
                "            \"status\": %d\n        }\n    },\n"
                "    \"scriptVersion\": {\n        \"id\": \"%s\"\n    }\n}"
                % (r.randrange(1, 400), r.randrange(1, 50), outcome, script, arr(exc), arr(logs),
                   ts, script, r.randrange(1, 100000), r.choice(("GET", "GET", "POST", "PUT")),
                   r.randrange(1, 255), colo, country, r.randrange(64496, 64511), status,
                   self.uuid())).split("\n")

    def logpush(self, script=None, outcome="ok", exceptions=None, status=200):
        """One Logpush workers_trace_events NDJSON record (a single line)."""
        r = self.r
        script = script or self.script()
        ts = self.tick()
        logs = ",".join('{"Level":"%s","Message":[%s],"TimestampMs":%d}'
                        % (r.choice(("log", "info")), jstr(self.log_message()), ts + 3)
                        for _ in range(r.randrange(0, 3)))
        exc = ",".join('{"Name":%s,"Message":%s,"TimestampMs":%d}' % (jstr(n), jstr(m), ts + 5)
                       for n, m in exceptions or [])
        return ['{"CPUTimeMs":%d,"DispatchNamespace":"","Entrypoint":"Default","Event":{"RayID":'
                '"%016x","Request":{"URL":"https://%s.example.workers.dev/api/items/%d","Method":'
                '"GET"},"Response":{"Status":%d}},"EventTimestampMs":%d,"EventType":"fetch",'
                '"Exceptions":[%s],"Logs":[%s],"Outcome":"%s","ScriptName":"%s","ScriptTags":[],'
                '"ScriptVersion":{"ID":"%s","Message":"","Tag":""},"WallTimeMs":%d}'
                % (r.randrange(1, 50), r.getrandbits(64), script, r.randrange(1, 100000), status,
                   ts, exc, logs, outcome, script, self.uuid(), r.randrange(1, 400))]

    def tail_pretty(self):
        r = self.r
        out = []
        for _ in range(r.randrange(3, 12)):
            script = self.script()
            out.append("GET https://%s.example.workers.dev/api/items/%d - Ok @ 8/%d/2026, "
                       "%d:%02d:%02d PM" % (script, r.randrange(1, 100000), r.randrange(1, 29),
                                            r.randrange(1, 12), r.randrange(60), r.randrange(60)))
            for _ in range(r.randrange(0, 3)):
                out.append("  (log) " + self.log_message())
        out.append("")
        return out

    def py_traceback(self, frames_src, exc_line, notes=()):
        r = self.r
        out = ["Traceback (most recent call last):"]
        for path, code in frames_src:
            out += ['  File "%s", line %d, in %s' % (path, r.randrange(1, 200),
                                                   r.choice(("<module>", "on_fetch", "handle"))),
                    "    " + code]
        out.append(exc_line)
        out += list(notes)
        return out

    def noise_traceback(self):
        r = self.r
        code, exc = r.choice(NOISE_EXCEPTIONS)
        exc = exc.format(n=r.randrange(1, 10000))
        frames = [("/session/metadata/entry.py", "return await handle(request)"),
                  ("/session/metadata/" + r.choice(PY_MODULES), code)]
        tb = self.py_traceback(frames, exc)
        if r.random() < 0.5:
            return (["[wrangler:info] GET /api/items/%d 500 Internal Server Error (%dms)"
                     % (r.randrange(1, 1000), r.randrange(1, 90))] + tb + [""])
        return self.tail_event(outcome="exception", status=500,
                               exceptions=[("PythonError", "\n".join(tb) + "\n", None)]) + [""]

    # ---- noise mix -----------------------------------------------------------------------
    def noise(self):
        """One ordinary block: (kind, lines)."""
        r = self.r
        x = r.random()
        if self.mix == "json":
            # JSON-heavy: wrangler tail and Logpush events, a little of the rest
            x = 0.42 + x * 0.46 if x < 0.9 else (x - 0.9) * 4.2
        if x < 0.22:
            return "wrangler-deploy", self.deploy_ok()
        if x < 0.30:
            return "pywrangler+deploy", self.pywrangler() + self.deploy_ok()
        if x < 0.42:
            return "workers-builds", self.builds()
        if x < 0.72:
            return "tail-json", (self.tail_event() + [""] if r.random() < 0.5
                                 else self.tail_event())
        if x < 0.88:
            out = []
            for _ in range(r.randrange(2, 14)):
                out += self.logpush()
            return "logpush-ndjson", out
        if x < 0.95:
            return "tail-pretty", self.tail_pretty()
        return "tracebacks", self.noise_traceback()

    # ---- failures ------------------------------------------------------------------------
    def src_frames(self, entry):
        r = self.r
        mod, name = r.choice(SRC_IMPORTS)
        return [(entry, "from src.%s import %s" % (mod, name))]

    def pyodide_frames(self):
        return ['    File "/lib/python313.zip/_pyodide/_base.py", line 523, in eval_code',
                "      .run(globals, locals)",
                "       ~~~^^^^^^^^^^^^^^^^^",
                '    File "/lib/python313.zip/_pyodide/_base.py", line 357, in run',
                "      coroutine = eval(self.code, globals, locals)",
                '    File "<exec>", line 9, in <module>',
                '    File "/lib/python313.zip/_pyodide/_base.py", line 666, in pyimport_impl',
                "      res = __import__(stem, fromlist=fromlist)"]

    def fail_src_import(self, variant):
        r = self.r
        script = self.script()
        note = ("If your main module is inside the 'src' directory then your import statement "
                "shouldn't include a 'src.' prefix")
        exc = "ModuleNotFoundError: No module named 'src'"
        if variant in ("deploy", "builds"):
            ansi = variant == "deploy"
            (path, code), = self.src_frames("/session/metadata/entry.py")
            body = ["  Uncaught Error: PythonError: Traceback (most recent call last):"]
            body += self.pyodide_frames()
            body += ['    File "%s", line %d, in <module>' % (path, r.randrange(1, 30)),
                     "      " + code, "  " + exc, "  " + note, "",
                     "    at null.<anonymous> (pyodide:python-entrypoint-helper:73:17) in "
                     "handleSrcImport"]
            lines = (self.deploy_head(script, ansi)
                     + self.api_error(script, body, ansi, "   [code: 10021]"))
            return self.builds(lines) if variant == "builds" else lines
        frames = self.src_frames("/session/metadata/" + r.choice(("entry.py", "main.py")))
        if variant == "traceback":
            notes = [note] if r.random() < 0.5 else []
            return (["[wrangler:info] Ready on http://localhost:8787"]
                    + self.py_traceback(frames, exc, notes) + [""])
        tb = "\n".join(self.py_traceback(frames, exc)) + "\n"
        if variant in ("tail", "tail-stack"):
            stack = None
            if variant == "tail-stack":
                stack = ("PythonError: " + tb + "    at new_error (pyodide-internal:generated/"
                         "pyodide.asm:20:9998)\n    at wrapException (pyodide-internal:generated/"
                         "pyodide.asm:20:10391)")
            return self.tail_event(script, "exception", [("PythonError", tb, stack)], 500) + [""]
        if variant == "logpush":
            return self.logpush(script, "exception", [("PythonError", tb)], 500)
        raise ValueError(variant)

    def fail_startup_cpu(self, variant):
        r = self.r
        script = self.script()
        ansi = variant != "builds"
        if variant == "js":
            body = ["  Error: Script startup exceeded CPU time limit."]
        else:
            body = ["  Uncaught TypeError: Python Worker startup exceeded CPU limit %d<=1000 with "
                    "snapshot %s" % (r.randrange(1001, 4000), r.choice(("none", "baseline",
                                                                         "dedicated")))]
        lines = self.deploy_head(script, ansi) + self.api_error(script, body, ansi,
                                                                "   [code: 10021]")
        return self.builds(lines) if variant == "builds" else lines

    def fail_size_10027(self, variant):
        r = self.r
        script = self.script()
        ansi = variant != "builds"
        limit = r.choice(("3 MiB", "10 MiB"))
        body = ["  Your Worker exceeded the size limit of %s. Refer to the Workers documentation "
                "(https://developers.cloudflare.com/workers/observability/errors/#errors-on-worker-"
                "upload) for more details. [code: 10027]" % limit]
        lines = self.deploy_head(script, ansi, vendored=True, upload_kib=r.uniform(11000, 90000))
        lines += self.api_error(script, body, ansi)
        return self.builds(lines) if variant == "builds" else lines

    def fail_module_not_found(self, variant):
        r = self.r
        pkg = r.choice(MISSING_PKGS)
        frames = [("/session/metadata/entry.py", "from %s import %s" % (
            "routes", "router")), ("/session/metadata/routes.py", "import %s" % pkg)]
        exc = "ModuleNotFoundError: No module named '%s'" % pkg
        if variant == "traceback":
            return ["[wrangler:info] Ready on http://localhost:8787"] + self.py_traceback(
                frames, exc) + [""]
        tb = "\n".join(self.py_traceback(frames, exc)) + "\n"
        if variant == "tail":
            return self.tail_event(None, "exception", [("PythonError", tb, None)], 500) + [""]
        return self.logpush(None, "exception", [("PythonError", tb)], 500)


VARIANTS = {
    "src_import": [("deploy", 30), ("traceback", 20), ("tail", 15), ("tail-stack", 10),
                   ("logpush", 15), ("builds", 10)],
    "startup_cpu": [("python", 60), ("js", 20), ("builds", 20)],
    "size_10027": [("deploy", 80), ("builds", 20)],
    "module_not_found": [("traceback", 40), ("tail", 30), ("logpush", 30)],
}


def pick(r, weighted):
    total = sum(w for _, w in weighted)
    x = r.randrange(total)
    for name, w in weighted:
        if x < w:
            return name
        x -= w
    raise AssertionError


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=parse_size, default=parse_size("200M"),
                    help="approximate output size: 200M (default), 1G, 512K; a number = MiB")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="output file (default cfw-mixed-<MiB>M-seed<seed>.log)")
    ap.add_argument("--src-imports", type=int)
    ap.add_argument("--startup-cpu", type=int)
    ap.add_argument("--size-10027", type=int)
    ap.add_argument("--module-not-found", type=int)
    ap.add_argument("--mix", choices=("default", "json"), default="default",
                    help="noise mix: default (every kind of log) or json (90%% of the blocks "
                         "wrangler tail JSON and Logpush NDJSON)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    out = a.out or "cfw-mixed-%dM-seed%d.log" % (a.size // MIB, a.seed)
    explicit = {"src_import": a.src_imports, "startup_cpu": a.startup_cpu,
                "size_10027": a.size_10027, "module_not_found": a.module_not_found}
    want = {}
    for cls, rate in RATES_PER_200M.items():
        n = explicit[cls]
        want[cls] = n if n is not None else max(1, round(rate * a.size / (200 * MIB)))

    g = Gen(a.seed, a.mix)
    r = g.r
    # Failures at random byte offsets, in order; each picks its variant up front.
    plan = sorted((r.randrange(a.size), cls, pick(r, VARIANTS[cls]))
                  for cls in CLASSES for _ in range(want[cls]))
    makers = {"src_import": g.fail_src_import, "startup_cpu": g.fail_startup_cpu,
              "size_10027": g.fail_size_10027, "module_not_found": g.fail_module_not_found}
    patterns = {cls: re.compile(c["pattern"]) for cls, c in CLASSES.items()}
    any_pattern = re.compile("|".join("(?:%s)" % c["pattern"] for c in CLASSES.values()))
    counts = {cls: {"rule": c["rule"], "pattern": c["pattern"], "events": 0, "grep_lines": 0,
                    "variants": {}} for cls, c in CLASSES.items()}

    written = 0
    lines = 0
    buf = []
    buf_bytes = 0
    nxt = 0
    with open(out, "wb") as f:
        def emit(block_lines, check_cls=None):
            nonlocal written, lines, buf_bytes
            block = "\n".join(block_lines) + "\n"
            data = block.encode("utf-8")
            if check_cls is None:
                if any_pattern.search(block):
                    raise AssertionError("noise block matches a failure pattern")
            else:
                for cls, pat in patterns.items():
                    hits = sum(1 for line in block_lines if pat.search(line))
                    counts[cls]["grep_lines"] += hits
                    if cls != check_cls and hits:
                        raise AssertionError("%s block matches the %s pattern" % (check_cls, cls))
            written += len(data)
            lines += len(block_lines)
            buf.append(data)
            buf_bytes += len(data)
            if buf_bytes >= 4 * MIB:
                f.write(b"".join(buf))
                buf.clear()
                buf_bytes = 0
            return len(data)

        mix = {}
        emit(["cfwatchd benchmark input (gen-mixed.py --seed %d --size %d)" % (a.seed, a.size), ""])
        while written < a.size or nxt < len(plan):
            while nxt < len(plan) and (plan[nxt][0] <= written or written >= a.size):
                _, cls, variant = plan[nxt]
                emit(makers[cls](variant) + [""], check_cls=cls)
                counts[cls]["events"] += 1
                counts[cls]["variants"][variant] = counts[cls]["variants"].get(variant, 0) + 1
                nxt += 1
            if written < a.size:
                kind, block = g.noise()
                mix[kind] = mix.get(kind, 0) + emit(block)
        f.write(b"".join(buf))

    result = {"file": os.path.abspath(out), "seed": a.seed, "size_requested": a.size,
              "bytes": written, "lines": lines, "classes": counts,
              "mix_bytes": dict(sorted(mix.items()))}
    with open(out + ".counts.json", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, sort_keys=True)
        f.write("\n")
    if not a.quiet:
        print("%s: %d bytes, %d lines (seed %d)" % (out, written, lines, a.seed))
        for cls, c in counts.items():
            print("  %-17s rule %-20s events %6d  grep lines %6d  %s" % (
                cls, c["rule"], c["events"], c["grep_lines"],
                " ".join("%s=%d" % kv for kv in sorted(c["variants"].items()))))
        print("  mix by bytes: " + ", ".join("%s %.0f%%" % (k, 100.0 * v / written)
                                             for k, v in sorted(mix.items())))
        print("counts written to %s.counts.json" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
