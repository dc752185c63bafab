#!/usr/bin/env python
"""Prepare Mapillary Vistas v1.2 for DGSS Kit (resumable, idempotent).

Write half/val_img/*.jpg (bicubic, half size, JPEG quality 75 = Pillow's default, as Rein's
mapillary_resize.py) and half/val_label/*.png (66 labels -> trainIds by name, Rein's map,
nearest, half size): the Rein evaluation split 'half_val'. Accepts both official packages: the
v1.2 zip (config.json, {split}/labels) and the v2.0 zip (config_v1.2.json, {split}/v1.2/labels).
half/prepare.json records the settings; other settings (--jpeg-quality) rewrite every file.

Outputs are written atomically (tmp file -> os.replace); outputs that already exist and are
valid are skipped, so an interrupted run can simply be restarted. Download instructions and
the expected tree: data_scripts/README.md. Afterwards run
``python data_scripts/verify.py mapillary --root ROOT``.

Usage: python data_scripts/prepare_mapillary.py [--root DIR] [--workers N] [--jpeg-quality Q] [--layout L]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgsslib.data.prepare_cli import prepare_main  # noqa: E402


def _args(p):
    p.add_argument("--jpeg-quality", type=int, default=75,
                   help="JPEG quality of half/val_img (default 75: Pillow's default, as Rein)")
    p.add_argument("--layout", choices=("auto", "v1.2", "v2.0"), default="auto",
                   help="package layout: v1.2 zip (config.json, {split}/labels) or v2.0 zip "
                        "(config_v1.2.json, {split}/v1.2/labels); default: detect")


def main(argv: list[str] | None = None) -> int:
    return prepare_main("mapillary", __doc__, argv, add_args=_args,
                        kwargs=lambda a: {"jpeg_quality": a.jpeg_quality, "layout": a.layout})


if __name__ == "__main__":
    sys.exit(main())
