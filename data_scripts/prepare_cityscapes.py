#!/usr/bin/env python
"""Prepare Cityscapes for DGSS Kit (resumable, idempotent).

Write gtFine/{train,val}/<city>/*_gtFine_labelTrainIds.png from *_gtFine_labelIds.png.

Outputs are written atomically (tmp file -> os.replace); outputs that already exist and are
valid are skipped, so an interrupted run can simply be restarted. Download instructions and
the expected tree: data_scripts/README.md. Afterwards run
``python data_scripts/verify.py cityscapes --root ROOT``.

Usage: python data_scripts/prepare_cityscapes.py [--root DIR] [--workers N]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgsslib.data.prepare_cli import prepare_main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return prepare_main("cityscapes", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
