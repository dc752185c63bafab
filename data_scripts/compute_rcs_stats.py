#!/usr/bin/env python
"""Compute the class statistics of DAFormer's Rare Class Sampling (RCS) for a prepared dataset.

For every labelled image of one split: the pixel count of each trainId at full label
resolution (255 not counted), written to <root>/sample_class_stats.json (split 'train') or
<root>/sample_class_stats_<split>.json -- the same file and format prepare_gtav.py and
prepare_synthia.py write (DAFormer's: [{"file": <label path relative to root>, "<trainId>":
pixels, ...}], see dgsslib/data/class_stats.py). Use it for Cityscapes (the source of
Cityscapes -> ACDC / Dark Zurich), to refresh a stale file, or for a subset split.
The file is written atomically and only if every label was read.

Usage: python data_scripts/compute_rcs_stats.py <name> [--root DIR] [--split S] [--workers N]
       [--conditions C ...]   (acdc)
Exit codes: 0 written; 1 some labels failed (listed, no file written); 2 user error.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgsslib.data.base import DatasetError  # noqa: E402
from dgsslib.data.class_stats import compute_class_stats, write_class_stats  # noqa: E402
from dgsslib.data.imageio import summarize  # noqa: E402
from dgsslib.data.registry import DATASETS, build_dataset  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    doc = __doc__.splitlines()
    p = argparse.ArgumentParser(description=doc[0], epilog="\n".join(doc[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=sorted(DATASETS))
    p.add_argument("--root", default=None, help="dataset root (default $DGSS_DATA/<name> or ./data/<name>)")
    p.add_argument("--split", default="train", help="split to count (default train)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--conditions", nargs="+", default=None, help="acdc conditions")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    kw = {"conditions": tuple(a.conditions)} if a.conditions else {}
    try:
        ds = build_dataset(a.name, a.root, a.split, **kw)
        results = compute_class_stats(ds, a.workers, not a.no_progress)
    except DatasetError as e:
        print(f"[dgsslib] error: {e}", file=sys.stderr)
        return 2
    code = summarize(results, f"class stats {a.name}/{ds.split}")
    path = write_class_stats(ds.root, results, ds.split) if code == 0 else None
    if path is not None:
        print(f"wrote {path} ({len(results)} labels)")
    return code


if __name__ == "__main__":
    sys.exit(main())
