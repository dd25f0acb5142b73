#!/usr/bin/env python3
"""Builds the seed corpora tests/fuzz/corpus/<target>/ from tests/data, conf/ and ../shared/corpus.

Each target reads a few leading bytes (mode, caps, split point) before its payload; the seeds
carry those headers (see the comment at the top of each fuzz_<target>.c). Run it again after the
test data changes; it rewrites only the seed directories. Files are capped at 8 KiB each so the
repository stays lean.
"""
import glob
import gzip
import json
import os
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "tests", "data")
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared", "corpus"))
CAP = 8 * 1024


def read(path):
    with open(path, "rb") as f:
        return f.read()[:CAP]


def logs():
    """Every log of the corpora, by base name (tests/data first, the shared copy adds new ones)."""
    seen = {}
    for pattern in ("corpus/*.log", "corpus/synthetic/*.log", "framer/*.log", "decode/*.log",
                    "cli/*.log"):
        for p in sorted(glob.glob(os.path.join(DATA, pattern))):
            seen.setdefault(os.path.basename(p), p)
    for p in sorted(glob.glob(os.path.join(SHARED, "*.log")) +
                    glob.glob(os.path.join(SHARED, "synthetic", "*.log"))):
        seen.setdefault(os.path.basename(p), p)
    return [(name, read(path)) for name, path in sorted(seen.items())]


def json_values(text):
    """The JSON objects found in a log (one per line or pretty-printed)."""
    dec = json.JSONDecoder()
    s = text.decode("utf-8", "replace")
    out = []
    i = 0
    while True:
        i = s.find("{", i)
        if i < 0:
            break
        try:
            v, end = dec.raw_decode(s, i)
        except ValueError:
            i += 1
            continue
        if isinstance(v, dict):
            out.append(s[i:end].encode())
        i = end
    return out


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def clean(target):
    d = os.path.join(HERE, "corpus", target)
    for p in glob.glob(os.path.join(d, "*")):
        os.unlink(p)


def fmt_of(name, data):
    if data.startswith(b"--- 2"):
        return 3  # wrangler-log
    if name.startswith(("23-", "S02", "S03")):
        return 2  # json
    return 0  # auto


# The traps of the fast scan (fuzz_scan.c): the first byte is the mode (bits 0-1 input format,
# 2-4 feed size, 32 lines as records, 64 those records are JSON).
SCAN_TRAPS = {
    "trap-text-ansi": (0, b"\x1b[31m\xe2\x9c\x98 \x1b[41;31m[\x1b[41;97mERROR\x1b[41;31m]\x1b[0m A "
                          b"request to the Cloudflare API (/accounts/x/workers/scripts/py) failed."
                          b"\n\n  Uncaught Error: No mod\x1b[1mule named 'src'\n  [code: 10021]\n"),
    "trap-text-nul": (0, b"ModuleNotFoundError: No module\x00named 'src'\nNo module named 'src\x00'\n"),
    "trap-ci-prefix-traceback": (0, b"2026-12-01T10:00:00.000Z\tTraceback (most recent call last):\n"
                                    b"2026-12-01T10:00:00.001Z\t  File \"/session/metadata/main.py\", "
                                    b"line 3, in <module>\n2026-12-01T10:00:00.002Z\t    from src.core "
                                    b"import x\n2026-12-01T10:00:00.003Z\tModuleNotFoundError: No "
                                    b"module named 'src'\n"),
    "trap-json-escapes": (2, b'{"outcome":"ok","logs":[{"level":"warn","message":["Unexpected fields '
                             b'found in build field: \\"upload\\""]}],"exceptions":[],"eventTimestamp"'
                             b':1}\n{"outcome":"ok","logs":[{"level":"error","message":["No module '
                             b'named \\u0027src\\u0027"]}],"exceptions":[],"eventTimestamp":2}\n'
                             b'{"outcome":"ok","logs":[{"level":"log","message":["No module","named '
                             b'\'src\'"]}],"exceptions":[],"eventTimestamp":3}\n'),
    "trap-json-spaces": (2, b'{"outcome":"ok","logs":[{"level":"log","message":["alpha\\nbeta : gamma",'
                            b'"support\\nfor Python workers is currently experimental"]}],"exceptions"'
                            b':[],"eventTimestamp":4}\n{"outcome":"ok","logs":[{"level":"log","message"'
                            b':[{"k":[1e1, 0.5e3]}, "code", 7, "at", 500.0, "ok"]}],"eventTimestamp":5}'
                            b'\n'),
    "trap-logpush-outcome": (32 | 64, b'{"Outcome":"exceededCpu","ScriptName":"py","Exceptions":[],'
                                      b'"Logs":[],"EventTimestampMs":1}\n{"Outcome":"exception",'
                                      b'"ScriptName":"py","Exceptions":[{"Name":"Error","Message":'
                                      b'"Boom"}],"Logs":[],"EventTimestampMs":2}\n{"Outcome":"ok",'
                                      b'"ScriptName":"py","Exceptions":[],"Logs":[{"Level":"log",'
                                      b'"Message":["needle <&> haystack"]}],"EventTimestampMs":3}\n'
                                      b'{"outcome":"ok","logs":[{"message":["No module named \'src'
                                      b'\\u0027"]}],"x":"\x00"}\n'),
    "trap-threshold": (0, b"Worker Startup Time: 01500 ms\nWorker Startup Time: 999 ms\n"
                          b"took 0101 ms\ntook 99 ms\n"),
    "trap-records-text": (32, b"KELVIN SKY\nkelvin \xe2\x84\xaaelvin sky\ncaf\xc3\xa9 \xe2\x9c\x98\n"
                              b"a+b/c \"x\"\n[12,3]\n"),
    "trap-observability": (2, b'{"$metadata":{"error":"Boom","message":"m","level":"error"},'
                              b'"$workers":{"outcome":"ok","scriptName":"py"}}\n'),
    "trap-builds": (2, b'[1733000000, "Failed: error occurred while running deploy command"]\n'
                       b'[1733000001, "No module named \\u0027src\\u0027"]\n'),
}


# fuzz_json: the texts where jansson's rules are easy to get wrong (no header byte).
JSON_EDGES = {
    "dup-keys": b'{"k":1,"K":2,"k":3,"x":{"y":1,"\\u0079":[2]}}',
    "escapes": b'["\\u00e9\\n\\t\\"\\\\\\/\\b\\f\\r","\\ud83d\\ude00","\\u001f"]',
    "numbers": b"[0,-0,1.5,-0.0,1e308,1E-400,9223372036854775807,-9223372036854775808,12.5e+3]",
    "int-overflow": b"9223372036854775808",
    "real-overflow": b"1e309",
    "nul-after-number": b"[1\x00,true\x00]",
    "nul-escape": b'"\\u0000"',
    "lone-surrogate": b'"\\ud800x"',
    "utf8": '{"caf\u00e9":"\U0001F600"}'.encode(),
    "bad-utf8": b'"\xc0\x80"',
    "control": b'"a\x01b"',
    "trailing": b"{} x",
    "deep": b"[" * 2048 + b"]" * 2048,
    "too-deep": b"[" * 2048 + b"1" + b"]" * 2048,
    "empty": b'{"a":{},"b":[],"c":""}',
}


def main():
    all_logs = logs()
    json_vals = []
    for name, data in all_logs:
        json_vals.extend(json_values(data))

    clean("framer")
    for i, (name, data) in enumerate(all_logs):
        fmt = fmt_of(name, data)
        cut = len(data) // 2
        # defaults, then small caps (max_line 80, max_record 200, 3 block lines, max_json 600)
        write("framer", name, bytes([fmt, 0, cut >> 8 & 0xFF, cut & 0xFF]) + data)
        write("framer", "small-" + name, bytes([fmt | 8, 0b11101010, 0, 7]) + data)
    write("framer", "auto-lines", bytes([1, 0, 0, 3]) + b"plain\r\nline\n\x00nul\n")

    clean("decode")
    for i, v in enumerate(json_vals[:40]):
        write("decode", "json-%02d" % i, bytes([1 | 4]) + v)
    for name, data in all_logs:
        if fmt_of(name, data) == 0:
            write("decode", "text-" + name, bytes([0]) + data[:2048])

    clean("json")
    for i, v in enumerate(json_vals[:20]):
        write("json", "value-%02d" % i, v)
    for name, data in JSON_EDGES.items():
        write("json", name, data)

    clean("pipeline")
    for name, data in all_logs:
        write("pipeline", name, bytes([fmt_of(name, data) | 16, 3]) + data)

    clean("scan")
    for name, data in all_logs:
        write("scan", name, bytes([fmt_of(name, data) | 12]) + data)
    for name, (mode, data) in SCAN_TRAPS.items():
        write("scan", name, bytes([mode]) + data)

    clean("yaml_config")
    yamls = sorted(glob.glob(os.path.join(DATA, "cli", "*.yaml")) +
                   glob.glob(os.path.join(DATA, "rules", "*.yaml")) +
                   glob.glob(os.path.join(DATA, "yaml", "*.yaml")) +
                   glob.glob(os.path.join(ROOT, "conf", "*.yaml")) +
                   glob.glob(os.path.join(ROOT, "conf", "rules.d", "*.yaml")))
    for p in yamls:
        write("yaml_config", os.path.basename(p), read(p))
    write("yaml_config", "sinks.yaml", b"""sinks:
  - {name: ops-slack, type: slack, url: 'https://hooks.slack.com/services/T/B/X', min_severity: warning,
     send: [open, resolve], rate_limit: {burst: 2, per: 2s}, timeout: 5s}
  - {name: oncall, type: pagerduty, routing_key: 0123456789abcdef0123456789abcdef, region: eu}
  - {name: hook, type: webhook, url: 'https://example.com/hook?token=abcdef', secret: xyz, headers: {X-Team: ops}}
  - name: am
    type: alertmanager
    urls: ['http://127.0.0.1:9093/', 'http://am2:9093']
    labels: {team: ops}
    resend_interval: 30s
  - {name: out, type: stdout, format: json}
sources:
  - {name: lp, type: logpush, token: abcdefabcdefabcdef, max_body: 1MiB, max_ratio: 100}
  - {name: f, type: file, path: /var/log/*.log, format: lines}
  - {name: e, type: exec, command: [wrangler, tail], stdout_format: json}
outbox: {max_age: 1h, backoff_base: 1s, backoff_max: 5m, max_jobs: 100}
incidents: {key: '{rule}/{script}', repeat_interval: 4h, resolve_after: 30m, max_incidents: 10}
""")

    clean("rules_templates")
    z = b"\x00"
    seeds = [
        (b"{exists}", b"x", []),
        (b"{missing}", b"", []),
        (b"> 1000", b"1200", []),
        (b"!= 5", b"5.0", []),
        (b"exceeded*", b"exceededCpu", []),
        (b"![a-z]*", b"Zed", []),
        (b"ok", b"ok", []),
        (b"Python Worker{?script} {script}{/script} imports 'src' ({module})", b"body",
         [(b"script", b"api"), (b"module", b"src.core")]),
        (b"{!module}no module{/module}{{literal}} {rule}/{script}", b"x",
         [(b"rule", b"r"), (b"script", b"{module}")]),
        (b"{?a}{!b}nested{/b}{/a}", b"v", [(b"a", b"1"), (b"b", b"")]),
    ]
    for i, (e, v, fields) in enumerate(seeds):
        body = bytes([i & 1]) + e + z + v
        for k, val in fields:
            body += z + k + z + val
        write("rules_templates", "seed-%02d" % i, body)

    clean("logpush")
    ndjson = b"\n".join(v.replace(b"\n", b" ") for v in json_vals[:12]) + b"\n"
    write("logpush", "raw-ndjson", bytes([0, 0b1111, 0, 0, 0, 0, 0]) + ndjson)
    write("logpush", "raw-gzip", bytes([0, 0b1111, 0, 0, 0, 0, 0]) + gzip.compress(ndjson))
    write("logpush", "raw-zlib", bytes([0, 0b1011, 0, 0, 0, 0, 0]) + zlib.compress(ndjson))
    write("logpush", "gz-roundtrip", bytes([1, 0b1111, 0, 0, 0, 0, 0]) + ndjson[:2000])
    write("logpush", "zlib-truncated", bytes([1 | 4 | 8, 0b0111, 0, 0, 40, 0, 0]) + ndjson[:500])
    write("logpush", "bomb", bytes([3, 0b0101, 255, 0, 0, 0, 0]) + b"A" * 64)
    write("logpush", "validation", bytes([0, 0, 0, 0, 0, 0, 0]) + b'{"content":"tests"}\n')

    clean("sinks")
    sample = read(os.path.join(DATA, "corpus", "05-src-import-modulenotfound-excerpt.log"))
    parts = [b"py-src-import/api/src", b"py-src-import", b"python-workers",
             b"Python Worker api imports through the 'src' package <!channel>",
             b"Drop the src. prefix & redeploy: ```python\nfrom core import x\n```",
             sample, b"script", b"api", b"module", b"src", b"version", b"v1"]
    for mode, name in ((0x03, "open"), (0x13, "reminder"), (0x22, "resolve"), (0x08, "test"),
                       (0x0c, "digest")):
        write("sinks", name, bytes([mode, 60 if mode == 0x0c else 0, 5]) + z.join(parts))
    write("sinks", "long-hint", bytes([0x03, 0, 1]) + z.join(parts[:4] + [b"&<>" * 1500] +
                                                          parts[5:]))

    clean("bundle")
    for p in sorted(glob.glob(os.path.join(DATA, "bundles", "*", "wrangler.toml")) +
                    glob.glob(os.path.join(DATA, "bundles", "*", "pyproject.toml"))):
        name = p.split(os.sep)[-2] + "-" + os.path.basename(p)
        write("bundle", name, bytes([0]) + read(p))
    for p in sorted(glob.glob(os.path.join(DATA, "bundles", "*", "wrangler.json*"))):
        write("bundle", p.split(os.sep)[-2] + "-" + os.path.basename(p), bytes([1]) + read(p))
    for p in sorted(glob.glob(os.path.join(DATA, "bundles", "*", "**", "*.py"), recursive=True)):
        rel = os.path.relpath(p, os.path.join(DATA, "bundles")).replace(os.sep, "-")
        write("bundle", rel, bytes([2]) + read(p))
    return 0


if __name__ == "__main__":
    sys.exit(main())
