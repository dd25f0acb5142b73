#!/usr/bin/env python3
"""Reduces a public Python Worker project to what `cfwatchd --check-bundle` reads.

usage: reduce.py GIT_DIR OWNER/REPO SUBDIR NAME [OUT_ROOT]

Takes SUBDIR of the newest commit of the git repository GIT_DIR and writes OUT_ROOT/NAME/
(default: the directory of this script) with:
- the wrangler configuration, pyproject.toml, requirements.txt and cf-requirements.txt as they
  are (configuration, not code);
- package.json cut down to its "scripts" (how the project deploys);
- uv.lock and pylock.toml cut down to each package's name, source and dependencies (which
  packages `pywrangler sync` installs), without versions, hashes and download addresses;
- every .py file cut down to its import statements and the blocks that decide whether and when
  they run (try/except, if, def, class, with, for, while); every other statement becomes `pass`
  and every other expression is dropped; each name the module defines at its top level is kept
  as `name = None`, so that `from module import name` still imports under --verify;
- every other file under the module root that wrangler's default rules upload (*.txt, *.html,
  *.sql, *.bin, *.wasm) as an empty file, so that the module set keeps its names.
The first line of each reduced .py file names its origin as owner/repo@commit:path.
"""
import ast
import json
import os
import subprocess
import sys
import tarfile
import io
import tomllib

SKIP_DIRS = {".venv", "venv", "node_modules", "python_modules", ".wrangler", ".git",
             "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
CONFIGS = ("wrangler.json", "wrangler.jsonc", "wrangler.toml", "pyproject.toml",
           "requirements.txt", "cf-requirements.txt")
UPLOADED = (".txt", ".html", ".sql", ".bin", ".wasm")


def has_import(nodes):
    return any(isinstance(n, (ast.Import, ast.ImportFrom)) for b in nodes for n in ast.walk(b))


def reduce_body(body):
    out = []
    for st in body:
        if isinstance(st, (ast.Import, ast.ImportFrom)):
            out.append(st)
        elif not has_import([st]):
            continue
        elif isinstance(st, ast.Try) or type(st).__name__ == "TryStar":
            st.body = reduce_body(st.body)
            for h in st.handlers:
                h.body = reduce_body(h.body)
            st.orelse = reduce_body(st.orelse) if st.orelse and has_import(st.orelse) else []
            st.finalbody = reduce_body(st.finalbody) if has_import(st.finalbody) else []
            out.append(st)
        elif isinstance(st, ast.If):
            st.body = reduce_body(st.body)
            st.orelse = reduce_body(st.orelse) if has_import(st.orelse) else []
            out.append(st)
        elif isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
            st.body = reduce_body(st.body)
            st.decorator_list = []
            st.args = ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[],
                                    kw_defaults=[], kwarg=None, defaults=[])
            st.returns = None
            out.append(st)
        elif isinstance(st, ast.ClassDef):
            st.body = reduce_body(st.body)
            st.bases, st.keywords, st.decorator_list = [], [], []
            out.append(st)
        elif isinstance(st, (ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While)):
            # Runs its body once at least in the cases that matter here: keep it as `if True:`.
            out.append(ast.If(test=ast.Constant(True), body=reduce_body(st.body), orelse=[]))
        else:
            out.append(ast.Pass())
    return out or [ast.Pass()]


def reduce_py(text):
    try:
        tree = ast.parse(text)
    except SyntaxError:
        lines = [ln for ln in text.splitlines() if ln.lstrip().startswith(("import ", "from "))]
        return "\n".join(ln.strip() for ln in lines) + ("\n" if lines else "")
    names = defined_names(tree.body)
    tree.body = reduce_body(tree.body)
    if all(isinstance(n, ast.Pass) for n in tree.body):
        tree.body = []
    # What the module defines, as stand-ins, so that `from m import name` still imports.
    tree.body += [ast.Assign(targets=[ast.Name(id=n, ctx=ast.Store())], value=ast.Constant(None))
                  for n in names]
    if not tree.body:
        return ""
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def defined_names(body):
    names = []
    for st in body:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(st.name)
        elif isinstance(st, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for t in (st.targets if isinstance(st, ast.Assign) else [st.target]):
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        names.append(n.id)
        elif isinstance(st, (ast.If, ast.Try)):
            names += defined_names(st.body)
            for h in getattr(st, "handlers", []):
                names += defined_names(h.body)
            names += defined_names(st.orelse)
    seen = set()
    return [n for n in names if not (n in seen or seen.add(n))]


def toml_str(s):
    return json.dumps(s)


def reduce_lock(data, kind):
    lock = tomllib.loads(data.decode("utf-8"))
    out = []
    for pkg in lock.get("packages" if kind == "pylock.toml" else "package", []):
        out.append("[[packages]]" if kind == "pylock.toml" else "[[package]]")
        out.append(f"name = {toml_str(pkg['name'])}")
        src = pkg.get("source", {})
        for key in ("virtual", "editable"):
            if key in src:
                out.append(f"source = {{ {key} = {toml_str(src[key])} }}")
        def deps(key, items):
            lines = [f"{key} = ["]
            for dep in items:
                extra = dep.get("extra")
                lines.append(f"    {{ name = {toml_str(dep['name'])}"
                             + (f", extra = {json.dumps(extra)}" if extra else "") + " },")
            return lines + ["]"]
        if kind == "uv.lock" and pkg.get("dependencies"):
            out += deps("dependencies", pkg["dependencies"])
        if kind == "uv.lock" and pkg.get("optional-dependencies"):
            out.append("[package.optional-dependencies]")
            for extra, items in pkg["optional-dependencies"].items():
                out += deps(toml_str(extra), items)
        out.append("")
    return ("\n".join(out)).encode()


def module_root(files, subdir):
    for name in ("wrangler.json", "wrangler.jsonc", "wrangler.toml"):
        if name in files:
            text = files[name].decode("utf-8", "replace")
            for line in text.splitlines():
                s = line.strip().lstrip('"')
                if s.startswith("main"):
                    val = s.split("=", 1)[-1] if "=" in s.split(":")[0] else s.split(":", 1)[-1]
                    val = val.strip().strip(",").strip().strip('"')
                    return os.path.dirname(val)
    return ""


def main():
    git_dir, repo, subdir, name = sys.argv[1:5]
    out_root = sys.argv[5] if len(sys.argv) > 5 else os.path.dirname(os.path.abspath(__file__))
    commit = subprocess.run(["git", "-C", git_dir, "rev-parse", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    args = ["git", "-C", git_dir, "archive", "--format=tar", commit]
    if subdir not in ("", "."):
        args.append(subdir)
    tar = tarfile.open(fileobj=io.BytesIO(subprocess.run(args, check=True,
                                                           capture_output=True).stdout))
    prefix = "" if subdir in ("", ".") else subdir.rstrip("/") + "/"
    files = {}
    for m in tar.getmembers():
        if not m.isfile() or not m.name.startswith(prefix):
            continue
        rel = m.name[len(prefix):]
        if any(part in SKIP_DIRS for part in rel.split("/")[:-1]):
            continue
        files[rel] = tar.extractfile(m).read()
    root = module_root(files, subdir)
    dst = os.path.join(out_root, name)
    written = []
    for rel, data in sorted(files.items()):
        base = os.path.basename(rel)
        out = None
        if rel in CONFIGS:
            out = data
        elif rel in ("uv.lock", "pylock.toml"):
            out = reduce_lock(data, rel)
        elif rel == "package.json":
            try:
                scripts = json.loads(data).get("scripts", {})
            except ValueError:
                scripts = {}
            out = (json.dumps({"scripts": scripts}, indent=2) + "\n").encode()
        elif base.endswith(".py"):
            body = reduce_py(data.decode("utf-8", "replace"))
            head = f"# reduced from {repo}@{commit}:{prefix}{rel}\n"
            out = (head + body).encode() if body or base != "__init__.py" else b""
        elif base.endswith(UPLOADED) and (root == "" or rel.startswith(root + "/")):
            out = b""
        if out is None:
            continue
        path = os.path.join(dst, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(out)
        written.append(rel)
    print(f"{name}\t{repo}@{commit}\t{prefix or '.'}\t{len(written)} files")


if __name__ == "__main__":
    main()
