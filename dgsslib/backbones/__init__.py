"""VFM backbones: short names over timm, weight sources, and the block-hook API."""
from .registry import BACKBONES, BackboneSpec, get_spec
from .vfm import VFM, load_vfm, reduced_out_indices

__all__ = ["BACKBONES", "BackboneSpec", "get_spec", "VFM", "load_vfm", "reduced_out_indices"]
