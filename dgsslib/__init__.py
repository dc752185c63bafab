"""DGSS Kit: fine-tuning vision foundation models for domain-generalized semantic segmentation.

A minimal shared library behind the notebooks in ``notebooks/``: VFM backbones (timm),
adapters and parameter-selection methods, segmentation heads, UDA losses, one trainer and
one evaluator. See README.md for the two commands and the three profiles.
"""
__version__ = "0.1.0"
