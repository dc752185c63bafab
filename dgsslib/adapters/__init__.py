"""Methods that change the backbone: one file per method, all built by name here.

``build_method(name, **options)``; every method follows :class:`dgsslib.adapters.base.Method`;
unknown options fail with the accepted ones.
"""
from __future__ import annotations

from ..registry import Registry
from .base import Freeze, Full, Method

METHODS = Registry("method", {
    "freeze": "dgsslib.adapters.base:Freeze",
    "full": "dgsslib.adapters.base:Full",
    "bitfit": "dgsslib.adapters.bitfit:BitFit",
    "lora": "dgsslib.adapters.lora:LoRA",
    "vpt": "dgsslib.adapters.vpt:VPTDeep",
    "adaptformer": "dgsslib.adapters.adaptformer:AdaptFormer",
    "rein": "dgsslib.adapters.rein:Rein",
    "causal_tune": "dgsslib.adapters.causal_tune:CausalTune",
    "vfmseg": "dgsslib.adapters.vfmseg_lora:VFMSegLoRA",
    "random_select": "dgsslib.selection.random:RandomSelect",
    "fishertune": "dgsslib.selection.fishertune:FisherTune",
    "childtune": "dgsslib.selection.childtune:ChildTuneD",
    "stack": "dgsslib.adapters.stack:Stack",
})


def method_class(name: str):
    return METHODS.get(name)


def build_method(name: str, **options) -> Method:
    """A method object by name; unknown options fail with the accepted ones."""
    return METHODS.build(name, **options)


__all__ = ["Method", "Freeze", "Full", "METHODS", "build_method", "method_class"]
