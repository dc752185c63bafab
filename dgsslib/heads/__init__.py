"""Decode heads. Contract: ``forward(feats, queries=None) -> out``, ``loss(out, labels)``,
``semantic_logits(out, size) -> B×K×H×W``."""
from __future__ import annotations

from .linear import LinearHead

HEADS = ("linear", "mask2former")


def build_head(name: str, in_channels: list[int], queries=None, **options):
    """A head by name. ``queries`` (Rein's link, [m, 256]) makes Mask2Former use m external queries."""
    if name == "linear":
        return LinearHead(in_channels, **options)
    if name == "mask2former":
        from .mask2former import Mask2FormerHead
        if queries is not None:
            options = {"query_source": "external", "num_queries": int(queries.shape[0]), **options}
        return Mask2FormerHead(in_channels, **options)
    raise ValueError(f"unknown head {name!r}; choose one of: {', '.join(HEADS)}")


__all__ = ["HEADS", "LinearHead", "build_head"]
