#!/usr/bin/env python
"""Verify a DGSS dataset tree: image counts per split vs the official counts (a different
count is a warning), image/label pairing, every label's values and size. Prints a summary
table; exit code 0 if usable, 1 if not. Same as ``python -m dgsslib.data.verify``.

Usage: python data_scripts/verify.py <name> [--root DIR] [--splits S ...] [--decode-images]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgsslib.data.verify import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
