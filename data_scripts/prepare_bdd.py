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

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgsslib.data.prepare_cli import prepare_main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return prepare_main("bdd", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
