"""Methods that change the backbone: one file per method, all built by name here.

``build_method(name, **options)``; every method follows :class:`dgsslib.adapters.base.Method`.
"""
from __future__ import annotations

import importlib

from .base import Freeze, Full, Method

# name -> "module:Class" (imported lazily so a broken optional method cannot break the rest)
METHODS = {
    "freeze": "dgsslib.adapters.base:Freeze",
    "full": "dgsslib.adapters.base:Full",
    "bitfit": "dgsslib.adapters.bitfit:BitFit",
    "lora": "dgsslib.adapters.lora:LoRA",
    "vpt": "dgsslib.adapters.vpt:VPTDeep",
    "adaptformer": "dgsslib.adapters.adaptformer:AdaptFormer",
    "rein": "dgsslib.adapters.rein:Rein",
}


def method_class(name: str):
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    mod, cls = METHODS[name].split(":")
    return getattr(importlib.import_module(mod), cls)


def build_method(name: str, **options) -> Method:
    """A method object by name; unknown options fail with the accepted ones."""
    cls = method_class(name)
    try:
        return cls(**options)
    except TypeError as exc:
        import inspect
        params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "options")]
        raise ValueError(f"bad options {options} for method {name!r}: {exc}; accepted: {params}") from exc


__all__ = ["Method", "Freeze", "Full", "METHODS", "build_method", "method_class"]
