"""Mask2Former head (Cheng et al., CVPR 2022, arXiv 2112.01527) in pure PyTorch, as used by
Rein / Rein++ (queries optionally supplied by Rein's link tokens).  Taught in
notebooks/10_rein_g.ipynb.

One concept per file: ``position`` (sine encoding), ``msdeform_attn`` (deformable attention),
``pixel_decoder``, ``transformer_decoder`` (masked attention), ``point_sample``, ``matcher``,
``criterion`` and ``head`` (the public ``Mask2FormerHead``).
"""
from .criterion import SetCriterion, semantic_to_targets
from .head import Mask2FormerHead
from .matcher import HungarianMatcher, match_cost
from .msdeform_attn import MSDeformAttn, ms_deform_attn_sample
from .pixel_decoder import MSDeformAttnPixelDecoder
from .point_sample import point_sample, rand_points, uncertain_points
from .position import SinePositionalEncoding
from .transformer_decoder import MaskedTransformerDecoder

__all__ = ["Mask2FormerHead", "SetCriterion", "semantic_to_targets", "HungarianMatcher", "match_cost",
           "MSDeformAttn", "ms_deform_attn_sample", "MSDeformAttnPixelDecoder", "point_sample",
           "rand_points", "uncertain_points", "SinePositionalEncoding", "MaskedTransformerDecoder"]
