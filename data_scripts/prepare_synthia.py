#!/usr/bin/env python
"""Prepare SYNTHIA RAND-CITYSCAPES for DGSS Kit (resumable, idempotent).

Write GT/LABELS/*_labelTrainIds.png (channel 0 of the 16-bit labels -> 8-bit trainIds) and
sample_class_stats.json.

Outputs are written atomically (tmp file -> os.replace); outputs that already exist and are
valid are skipped, so an interrupted run can simply be restarted. Download instructions and
the expected tree: data_scripts/README.md. Afterwards run
``python data_scripts/verify.py synthia --root ROOT``.

Usage: python data_scripts/prepare_synthia.py [--root DIR] [--workers N]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgsslib.data.prepare_cli import prepare_main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return prepare_main("synthia", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
