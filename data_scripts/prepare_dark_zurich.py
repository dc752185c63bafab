#!/usr/bin/env python
"""Prepare Dark Zurich for DGSS Kit (resumable, idempotent).

Write any missing gt/val/night/<seq>/*_gt_labelTrainIds.png from *_gt_labelIds.png
(the official val zip ships both: then nothing is written).

Outputs are written atomically (tmp file -> os.replace); outputs that already exist and are
valid are skipped, so an interrupted run can simply be restarted. Download instructions and
the expected tree: data_scripts/README.md. Afterwards run
``python data_scripts/verify.py dark_zurich --root ROOT``.

Usage: python data_scripts/prepare_dark_zurich.py [--root DIR] [--workers N]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgsslib.data.prepare_cli import prepare_main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return prepare_main("dark_zurich", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
