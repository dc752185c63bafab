#!/usr/bin/env python
"""Prepare GTAV for DGSS Kit (resumable, idempotent).

Write labels/*_labelTrainIds.png (Cityscapes ids -> trainIds) and sample_class_stats.json
(per-image trainId pixel counts for rare class sampling, format in dgsslib/data/class_stats.py).
Image/label size mismatches (a known GTAV issue) are fixed -- the trainId label is written
resized to its image (nearest) -- and each is listed as a NOTE; --strict-sizes reports them as
errors instead (exit 1, no stats file).
--split-mat split.mat writes splits/{train,val,test}.txt from the official split (needs scipy).

Outputs are written atomically (tmp file -> os.replace); outputs that already exist and are
valid are skipped, so an interrupted run can simply be restarted. Download instructions and
the expected tree: data_scripts/README.md. Afterwards run
``python data_scripts/verify.py gtav --root ROOT``.

Usage: python data_scripts/prepare_gtav.py [--root DIR] [--workers N]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgsslib.data.prepare_cli import prepare_main  # noqa: E402


def _args(p):
    p.add_argument("--fix-sizes", action="store_true",
                   help="resize mismatched labels to their image, nearest (the default; kept for old scripts)")
    p.add_argument("--strict-sizes", action="store_true",
                   help="report image/label size mismatches as errors instead of resizing")
    p.add_argument("--split-mat", default=None, help="official split.mat -> splits/{train,val,test}.txt")


def main(argv: list[str] | None = None) -> int:
    return prepare_main("gtav", __doc__, argv, add_args=_args,
                        kwargs=lambda a: {"fix_sizes": not a.strict_sizes, "split_mat": a.split_mat})


if __name__ == "__main__":
    sys.exit(main())
