#!/usr/bin/env python
"""Prepare GTAV for DGSS Kit (resumable, idempotent).

Write labels/*_labelTrainIds.png (Cityscapes ids -> trainIds) and sample_class_stats.json
(per-image trainId pixel counts for rare class sampling). Image/label size mismatches (a known
GTAV issue) are reported as errors, or fixed with --fix-sizes (label resized to the image, nearest).
--split-mat split.mat writes splits/{train,val,test}.txt from the official split (needs scipy).

Outputs are written atomically (tmp file -> os.replace); outputs that already exist and are
valid are skipped, so an interrupted run can simply be restarted. Download instructions and
the expected tree: data_scripts/README.md. Afterwards run
``python data_scripts/verify.py gtav --root ROOT``.

Usage: python data_scripts/prepare_gtav.py [--root DIR] [--workers N]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgsslib.data import gtav  # noqa: E402
from dgsslib.data.base import DatasetError, default_root  # noqa: E402
from dgsslib.data.imageio import summarize  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=None,
                   help="dataset root (default: $DGSS_DATA/gtav or ./data/gtav; "
                   f"now {default_root('gtav')})")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--fix-sizes", action="store_true",
                   help="resize mismatched labels to their image (nearest)")
    p.add_argument("--split-mat", default=None,
                   help="official split.mat -> splits/{train,val,test}.txt")
    a = p.parse_args(argv)
    try:
        results = gtav.prepare(a.root, a.workers, not a.no_progress,
                               fix_sizes=a.fix_sizes, split_mat=a.split_mat)
    except DatasetError as e:
        print(f"ERROR {e}", file=sys.stderr)
        return 1
    code = summarize(results, "prepare gtav")
    if code == 0:
        root = f" --root {a.root}" if a.root else ""
        print(f"next: python data_scripts/verify.py gtav{root}")
    return code


if __name__ == "__main__":
    sys.exit(main())
