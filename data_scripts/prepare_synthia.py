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

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgsslib.data import synthia  # noqa: E402
from dgsslib.data.base import DatasetError, default_root  # noqa: E402
from dgsslib.data.imageio import summarize  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=None,
                   help="dataset root (default: $DGSS_DATA/synthia or ./data/synthia; "
                   f"now {default_root('synthia')})")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    try:
        results = synthia.prepare(a.root, a.workers, not a.no_progress)
    except DatasetError as e:
        print(f"ERROR {e}", file=sys.stderr)
        return 1
    code = summarize(results, "prepare synthia")
    if code == 0:
        root = f" --root {a.root}" if a.root else ""
        print(f"next: python data_scripts/verify.py synthia{root}")
    return code


if __name__ == "__main__":
    sys.exit(main())
