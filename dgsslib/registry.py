"""One registry style for every pluggable part of the kit: methods, heads, recipes, datasets.

A registry maps a short name to ``"module:attribute"`` and imports lazily, so a broken optional
part cannot break the rest and ``python -m dgsslib.train --help`` stays fast::

    METHODS = Registry("method", {"freeze": "dgsslib.adapters.base:Freeze", ...})
    METHODS.build("lora", r=4)      # unknown names / options fail with the accepted ones

Adding a paper's piece = one file + one line in its package's ``__init__``.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any, Iterator, Mapping


class Registry(Mapping):
    """name -> "module:attr", looked up lazily; behaves like a read-only dict of those strings."""

    def __init__(self, kind: str, entries: dict[str, str]):
        self.kind, self._entries = kind, dict(entries)

    # Mapping protocol: iterating gives the names, so ``sorted(METHODS)`` and ``name in METHODS`` work
    def __getitem__(self, name: str) -> str:
        return self._entries[name]

    def __contains__(self, name: object) -> bool:  # a list or mapping given as a name is simply not one
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def register(self, name: str, target: str) -> None:
        """Add (or replace) an entry, e.g. from a notebook: ``RECIPES.register("mine", "mymod:Mine")``."""
        if ":" not in target:
            raise ValueError(f"a {self.kind} target must look like 'module:attr', got {target!r}")
        self._entries[name] = target

    def get(self, name: str, default: Any = None):  # type: ignore[override]
        """The registered object (class or function) for ``name``."""
        if name not in self:
            raise ValueError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self._entries)}")
        mod, attr = self._entries[name].split(":")
        return getattr(importlib.import_module(mod), attr)

    def build(self, name: str, *args, **options):
        """Instantiate ``name`` with ``options``; unknown or bad options fail with the accepted ones."""
        cls = self.get(name)
        accepted = accepted_options(cls)
        unknown = sorted(set(options) - set(accepted)) if accepted is not None else []
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} for {self.kind} {name!r}; accepted: {accepted}")
        try:
            return cls(*args, **options)
        except TypeError as exc:
            raise ValueError(f"bad options {options} for {self.kind} {name!r}: {exc}; accepted: {accepted}") from exc


def accepted_options(cls) -> list[str] | None:
    """Keyword options ``cls.__init__`` accepts (None when it takes ``**kwargs``)."""
    params = inspect.signature(cls.__init__ if inspect.isclass(cls) else cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return [n for n, p in params.items() if n != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL]
