"""DGSS Kit: fine-tuning vision foundation models for domain-generalized semantic segmentation.

A minimal shared library behind the notebooks in ``notebooks/``: VFM backbones (timm),
adapters and parameter-selection methods, segmentation heads, UDA losses, one trainer and
one evaluator. See README.md for the two commands and the three profiles.
"""
__version__ = "0.1.0"

from . import numerics as _numerics

_numerics.pin()  # portable CPU kernels before torch runs its first op (dgsslib.numerics; DGSS_NUMERICS=native: off)
