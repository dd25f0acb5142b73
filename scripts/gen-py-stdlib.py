#!/usr/bin/env python3
"""Regenerates scripts/py-stdlib-modules.txt from the running Python's sys.stdlib_module_names.

Run with a Python >= 3.10 (Pyodide's runtime is CPython 3.12/3.13); the list is committed so the
build does not depend on the build host's Python version.
"""
import os
import sys

names = sorted(sys.stdlib_module_names)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "py-stdlib-modules.txt")
with open(out + ".tmp", "w", encoding="utf-8") as f:
    f.write("# Python %d.%d standard library top-level modules (scripts/gen-py-stdlib.py)\n"
            % sys.version_info[:2])
    for n in names:
        f.write(n + "\n")
os.replace(out + ".tmp", out)
print(f"{len(names)} modules written to {out}")
