#!/usr/bin/env python3
"""Generates a Python Worker project with N files (default 2000) for bench/bundle-bench.sh.

Layout: wrangler.toml with main = "src/entry.py"; src/ holds packages pkgNN/ with modules
that import each other (absolute, relative, lazy and try: imports, long docstrings and
strings that mention imports); python_modules/ holds vendored packages. About one file in
ten is vendored. Deterministic: the same N gives the same tree.

usage: gen-bundle-project.py DIR [N]
"""
import os
import sys


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def module_text(pkg, idx, npkg, per_pkg):
    other = (pkg + 1) % npkg
    return f'''"""Module {idx} of package pkg{pkg:02d}.

This docstring mentions import os and from src.fake import nothing, which are not imports.
"""
import json
import logging
from typing import TYPE_CHECKING

from pkg{other:02d} import mod{idx % per_pkg:03d} as sibling
from . import mod{(idx + 1) % per_pkg:03d}
from vend{idx % 20:02d} import helper

try:
    import ujson as fast_json
except ImportError:
    fast_json = json

if TYPE_CHECKING:
    from typing_extensions import Self

TEMPLATE = f"""{{{{"pkg": {pkg}, "idx": {idx}}}}} import nothing"""
log = logging.getLogger(__name__)


def handler(request):
    from pkg{other:02d}.mod{(idx + 2) % per_pkg:03d} import VALUE  # lazy
    return helper(VALUE, request)


VALUE = {idx}
'''


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    root = sys.argv[1]
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    vendored = total // 10
    ours = total - vendored - 2  # wrangler.toml and entry.py
    npkg = 40
    per_pkg = max(1, ours // npkg - 1)
    write(os.path.join(root, "wrangler.toml"),
          'name = "bench"\nmain = "src/entry.py"\ncompatibility_date = "2025-10-01"\n'
          'compatibility_flags = ["python_workers"]\n')
    imports = "\n".join(f"import pkg{p:02d}" for p in range(npkg))
    write(os.path.join(root, "src", "entry.py"),
          f'from workers import Response, WorkerEntrypoint\n{imports}\n\n\n'
          'class Default(WorkerEntrypoint):\n    async def fetch(self, request):\n'
          '        return Response("ok")\n')
    count = 2
    for p in range(npkg):
        write(os.path.join(root, "src", f"pkg{p:02d}", "__init__.py"), f'"""Package {p}."""\n')
        count += 1
        for i in range(per_pkg):
            if count >= total - vendored:
                break
            write(os.path.join(root, "src", f"pkg{p:02d}", f"mod{i:03d}.py"),
                  module_text(p, i, npkg, per_pkg))
            count += 1
    v = 0
    while count < total:
        pkg = f"vend{v % 20:02d}"
        name = "__init__.py" if v < 20 else f"part{v:04d}.py"
        body = "def helper(*args):\n    return args\n" if v < 20 else "X = 1\n"
        write(os.path.join(root, "python_modules", pkg, name), body)
        v += 1
        count += 1
    print(f"{count} files in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
