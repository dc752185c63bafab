"""Procedural street-scene benchmark: the kit's default, always-available DGSS data.

No street-scene dataset ships with the kit, so it generates one: perspective street
layouts with all 19 Cityscapes classes (``scene.py``), rendered in a clean synthetic
*source* style (GTAV analogue), three real-looking *target* styles (Cityscapes, BDD,
Mapillary analogues) and four *adverse* styles (ACDC fog / night / rain / snow),
``styles.py``. The key idea: a layout depends only on ``(seed, index)``, so every domain
shows exactly the same scenes and the domain gap is purely appearance.

    >>> from dgsslib.data.synthetic import SyntheticStreets
    >>> ds = SyntheticStreets("citys", split="val", length=100, size=(112, 224))
    >>> item = ds[0]   # {"image": uint8 (3,H,W), "label": int64 (H,W), "meta": {...}}

``BENCHMARK_VERSION`` names the benchmark (every result records it) and ``render_params()``
describes a rendered sample set; the disk cache checks both on read.
``python -m dgsslib.data.synthetic --bench`` prints images/s per domain,
``--preview OUT.png`` writes a grid of all domains with label overlays and
``--learnability`` per-class object sizes in tokens plus a Freeze-proxy IoU.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from .dataset import (BENCHMARK_VERSION, GENERATOR_HASH, GENERATOR_VERSION, PRESET_SIZES, SPLITS,
                      SyntheticStreets, check_size, render_params, render_sample)
from .render import render, render_rng
from .scene import THIN_CLASSES, Scene, layout_rng, make_scene
from .styles import (ADVERSE_DOMAINS, DOMAINS, SOURCE_DOMAINS, STYLES, TARGET_DOMAINS, Style,
                     get_style)

DOMAIN_GROUPS = {"source": SOURCE_DOMAINS, "target": TARGET_DOMAINS, "adverse": ADVERSE_DOMAINS}

__all__ = [
    "ADVERSE_DOMAINS", "BENCHMARK_VERSION", "DOMAINS", "DOMAIN_GROUPS", "GENERATOR_HASH",
    "GENERATOR_VERSION", "PRESET_SIZES",
    "SOURCE_DOMAINS", "SPLITS", "STYLES", "Scene", "Style", "SyntheticStreets",
    "TARGET_DOMAINS", "THIN_CLASSES", "check_size", "get_style", "layout_rng", "make_scene",
    "render", "render_params", "render_rng", "render_sample",
]
