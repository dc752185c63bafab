#!/usr/bin/env python
"""Prepare BDD100K 10K sem_seg for DGSS Kit (resumable, idempotent).

A tree in the 10k layout (images/10k, labels/sem_seg/masks) needs nothing; an old-release tree
(seg/images/<split>, seg/labels/<split>/*_train_id.png) is hard-linked (else copied) into it.

Outputs are written atomically (tmp file -> os.replace); outputs that already exist and are
valid are skipped, so an interrupted run can simply be restarted. Download instructions and
the expected tree: data_scripts/README.md. Afterwards run
``python data_scripts/verify.py bdd --root ROOT``.

Usage: python data_scripts/prepare_bdd.py [--root DIR] [--workers N]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgsslib.data import bdd  # noqa: E402
from dgsslib.data.base import DatasetError, default_root  # noqa: E402
from dgsslib.data.imageio import summarize  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=None,
                   help="dataset root (default: $DGSS_DATA/bdd or ./data/bdd; "
                   f"now {default_root('bdd')})")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    try:
        results = bdd.prepare(a.root, a.workers, not a.no_progress)
    except DatasetError as e:
        print(f"ERROR {e}", file=sys.stderr)
        return 1
    code = summarize(results, "prepare bdd")
    if code == 0:
        root = f" --root {a.root}" if a.root else ""
        print(f"next: python data_scripts/verify.py bdd{root}")
    return code


if __name__ == "__main__":
    sys.exit(main())
