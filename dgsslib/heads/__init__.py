"""Decode heads. Contract: ``forward(feats, queries=None) -> out``, ``loss(out, labels)``,
``semantic_logits(out, size) -> B×K×H×W`` and a class attribute ``needs_pyramid`` (the model
turns the four same-stride taps into a 1/4 ... 1/32 pyramid for heads that set it).

| head | needs_pyramid | what |
|---|---|---|
| ``linear`` | no | BN + 1×1 conv (+ hidden layer) on the concatenated taps (the mini profile's head) |
| ``mask2former`` | yes | pure-PyTorch Mask2Former (MSDeformAttn pixel decoder + masked-attention decoder) |
| ``vfmseg`` | no | VFMSeg: VFMNet (deconvolution decoder, 1/4; ``head(feats)``) + MGRNet (mask-guided refinement, 1/16; ``head.refine(feats, coarse_logits)``) |
| ``vfmnet`` | no | VFMSeg's VFMNet decoder alone (the "+VFMNet" row of its Table 2 / Table 3) |
"""
from __future__ import annotations

from ..registry import Registry

HEADS = Registry("head", {
    "linear": "dgsslib.heads.linear:LinearHead",
    "mask2former": "dgsslib.heads.mask2former:Mask2FormerHead",
    "vfmseg": "dgsslib.heads.vfmseg:VFMSegHead",
    "vfmnet": "dgsslib.heads.vfmnet:VFMNetDecoder",
})


def build_head(name: str, in_channels: list[int], queries=None, **options):
    """A head by name. ``queries`` (Rein's link, [m, 256]) makes Mask2Former use m external queries."""
    if queries is not None and name == "mask2former":
        options = {"query_source": "external", "num_queries": int(queries.shape[0]), **options}
    return HEADS.build(name, in_channels, **options)


__all__ = ["HEADS", "build_head"]
