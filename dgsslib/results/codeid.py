"""Code identity: which library code a run depends on, and a hash of it that only a semantic change can move.

A run's dependencies are *declared*, not sampled from ``sys.modules``: :func:`dependencies` takes the
engine (the static import closure of :data:`ENGINE`) plus the closure of each registry target its
config names (method, head, recipe), and maps every module file to :func:`code_hash` of its source::

    code(cfg) = {"dgsslib/engine/loop.py": "3f…", …, "registry:method:rein": "dgsslib.adapters.rein:Rein"}

* The closure is static (:func:`imports_of` walks every ``import`` of a module, function-level ones
  too, so it over-approximates what a process may run); importing ``a.b.c`` runs ``a/__init__``
  and ``a/b/__init__``, so those are in it as well.
* :func:`code_hash` hashes the module's AST with docstrings removed (comments, blank lines and
  formatting never reach the AST): editing prose never moves a hash, editing code always does.
* Registry tables (``Registry("method", {...})``, :mod:`dgsslib.registry`) are names -> strings,
  imported lazily; a new paper adds lines there. Their dict is left out of the hash and the entries
  a run *used* are recorded as ``registry:<kind>:<name>`` keys instead -- the one thing the closure
  cannot know by itself.
* :data:`OBSERVERS` are modules that file records or draw progress and never feed a value back into
  training or evaluation; the closure does not enter them.

The same function runs on the working tree (:class:`TreeReader`) and on any commit
(:class:`GitReader`), so a record made years ago is checked by the rule of today.
Taught in README.md (results section); the whole protocol is in :mod:`dgsslib.results.provenance`.
"""
from __future__ import annotations

import ast
import hashlib
import subprocess
from pathlib import Path

PACKAGE = "dgsslib"
ROOT = Path(__file__).resolve().parents[2]
#: the trainer every run executes (its closure holds loop, model, evaluate, data, ...); the first of these
#: that a tree has (``dgsslib.train`` held ``fit`` before the engine/ package existed)
ENGINE = ("dgsslib.engine.train", "dgsslib.train")
#: module prefixes the closure does not enter: they write records or progress, never a number used later
OBSERVERS = ("dgsslib.results", "dgsslib.progress", "dgsslib.provenance")
#: config keys whose value is a registry name, and the catalog module that maps it
CATALOGS = {"method": "dgsslib.adapters", "head": "dgsslib.heads", "recipe": "dgsslib.recipes"}


class TreeReader:
    """Reads ``dgsslib/...`` sources from a folder (default: this checkout)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root or ROOT)

    def read(self, rel: str) -> str | None:
        path = self.root / rel
        return path.read_text() if path.is_file() else None


class GitReader:
    """Reads sources as they were at ``commit`` (``git show``); ``None`` for a file absent there."""

    def __init__(self, commit: str, root: Path | None = None):
        self.commit, self.root = commit, Path(root or ROOT)
        out = subprocess.run(["git", "ls-tree", "-r", "--name-only", commit, "--", PACKAGE], cwd=self.root,
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise LookupError(f"commit {commit[:7]} is not in this clone's history (a shallow clone? "
                              "fetch the full history with: git fetch --unshallow)")
        self.files = set(out.stdout.split())

    def read(self, rel: str) -> str | None:
        if rel not in self.files:
            return None
        out = subprocess.run(["git", "show", f"{self.commit}:{rel}"], cwd=self.root, capture_output=True, text=True)
        return out.stdout if out.returncode == 0 else None


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _drop_registry_tables(tree: ast.AST) -> ast.AST:
    """``Registry("kind", {...})`` -> ``Registry("kind", {})``: entries are recorded per run instead."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Registry" and len(node.args) >= 2 \
                and isinstance(node.args[1], ast.Dict):
            node.args[1] = ast.Dict(keys=[], values=[])
    return tree


def code_hash(source: str) -> str:
    """sha256 of the module's AST without docstrings and registry tables (comments never reach the AST)."""
    tree = _drop_registry_tables(_strip_docstrings(ast.parse(source)))
    return hashlib.sha256(ast.dump(tree, annotate_fields=True).encode()).hexdigest()


def module_file(name: str, reader) -> tuple[str, str] | None:
    """(relative path, source) of a dotted module name, or None when it is no module of the tree."""
    base = name.replace(".", "/")
    for rel in (f"{base}.py", f"{base}/__init__.py"):
        src = reader.read(rel)
        if src is not None:
            return rel, src
    return None


def _package_of(rel: str) -> str:
    """The package a module file's relative imports start from (``a/b/c.py`` and ``a/b/__init__.py``: ``a.b``)."""
    return ".".join(rel[:-3].split("/")[:-1])


def imports_of(rel: str, source: str, reader) -> set[str]:
    """Dotted names of the library modules ``source`` imports anywhere (relative imports resolved)."""
    pkg = _package_of(rel)
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != PACKAGE:
                continue
            out.add(mod)
            for a in node.names:  # ``from . import checkpoint``: a submodule, not an attribute
                if a.name != "*" and module_file(f"{mod}.{a.name}", reader) is not None:
                    out.add(f"{mod}.{a.name}")
    return out


def _observer(name: str) -> bool:
    return any(name == o or name.startswith(o + ".") for o in OBSERVERS)


def closure(entries, reader) -> dict[str, str]:
    """{relative path: source} of ``entries`` and every library module they import, transitively."""
    seen: dict[str, str] = {}
    todo = list(entries)
    while todo:
        name = todo.pop()
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages run first
        if _observer(name):
            continue
        found = module_file(name, reader)
        if found is None or found[0] in seen:
            continue
        rel, src = found
        seen[rel] = src
        todo.extend(imports_of(rel, src, reader))
    return seen


def catalog_entries(module: str, reader) -> dict[str, str]:
    """The ``Registry(kind, {name: "module:attr"})`` table of a catalog module, read statically."""
    found = module_file(module, reader)
    if found is None:
        return {}
    for node in ast.walk(ast.parse(found[1])):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Registry" and len(node.args) >= 2 \
                and isinstance(node.args[1], ast.Dict):
            return {k.value: v.value for k, v in zip(node.args[1].keys, node.args[1].values)
                    if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)}
    return {}


def used_entries(cfg: dict, reader) -> dict[str, str]:
    """``{"registry:<kind>:<name>": "module:attr" | "missing"}`` for the parts the config names."""
    out = {}
    for kind, catalog in CATALOGS.items():
        name = cfg.get(kind)
        if isinstance(name, str):
            out[f"registry:{kind}:{name}"] = catalog_entries(catalog, reader).get(name, "missing")
    return out


def dependencies(cfg: dict, reader=None) -> dict[str, str]:
    """A run's code identity: every module of the engine and of the parts its config names -> code hash,
    plus the registry entries it used (see the module docstring)."""
    reader = reader or TreeReader()
    entries = used_entries(cfg, reader)
    engine = next((e for e in ENGINE if module_file(e, reader) is not None), ENGINE[0])
    roots = [engine] + [t.split(":")[0] for t in entries.values() if t != "missing"]
    files = closure(roots, reader)
    return {**{rel: code_hash(src) for rel, src in sorted(files.items())}, **entries}


def diff(recorded: dict, now: dict) -> list[str]:
    """Keys whose hash differs, appeared or disappeared (sorted)."""
    return sorted(k for k in set(recorded) | set(now) if recorded.get(k) != now.get(k))


__all__ = ["CATALOGS", "ENGINE", "GitReader", "OBSERVERS", "TreeReader", "closure", "code_hash", "dependencies",
           "diff", "imports_of", "used_entries"]
