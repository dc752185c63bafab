"""Verify a downloaded dataset tree before training on it.

    python -m dgsslib.data.verify cityscapes --root /data/cityscapes
    python data_scripts/verify.py gtav                      # root from $DGSS_DATA/gtav

For every split (default: the dataset's labelled splits) it builds the dataset (layout and
image/label pairing are checked there), compares the image count with the official count
(a different count is a WARNING: subsets are fine), then reads every label with a progress bar
and checks its values and its size against the image header (``--decode-images`` also
decodes every image to catch truncated files). A summary table follows; the exit code is 0 if
nothing FAILed and at least one split was found, else 1. A missing split is a warning.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .base import README, DatasetError, LayoutError, SegFolderDataset, resolve_root


@dataclass
class SplitReport:
    split: str
    status: str  # OK | WARN | MISSING | FAIL
    found: int = 0
    expected: int | None = None
    notes: list[str] = field(default_factory=list)


def check_split(cls: type[SegFolderDataset], root: Any, split: str, decode_images: bool = False,
                progress: bool = True, max_errors: int = 20, **kw: Any) -> SplitReport:
    """Check one split; never raises for data problems (they become FAIL notes)."""
    from tqdm.auto import tqdm
    try:
        ds = cls(root, split, **kw)
    except LayoutError as e:
        return SplitReport(split, "MISSING" if e.split_absent else "FAIL", notes=[str(e)])
    except DatasetError as e:
        return SplitReport(split, "FAIL", notes=[str(e)])
    rep = SplitReport(split, "OK", len(ds), ds.expected_count())
    errors = []
    for i in tqdm(range(len(ds)), desc=f"{cls.NAME}/{split}", disable=not progress):
        try:
            ds.check_item(i, decode_image=decode_images)
        except DatasetError as e:
            errors.append(str(e))
    if errors:
        rep.status = "FAIL"
        rep.notes += errors[:max_errors]
        if len(errors) > max_errors:
            rep.notes.append(f"... and {len(errors) - max_errors} more bad files")
    elif rep.expected is not None and rep.found != rep.expected:
        rep.status = "WARN"
        rep.notes.append(f"{rep.found} images, official count {rep.expected} "
                         "(fine for a subset; otherwise an archive is missing)")
    return rep


def verify(name: str, root: Any = None, splits: Sequence[str] | None = None,
           decode_images: bool = False, progress: bool = True,
           log: Callable[[str], None] = print, **kw: Any) -> int:
    """Verify dataset ``name``; print the table; return the exit code (0 ok, 1 not usable)."""
    from .registry import dataset_class
    try:
        cls = dataset_class(name)
        root = resolve_root(name, root)
        splits = [cls.normalize_split(s) for s in (splits or cls.VERIFY_SPLITS)]
    except DatasetError as e:
        log(f"FAIL {e}")
        return 1
    reports = [check_split(cls, root, s, decode_images, progress, **kw) for s in splits]
    log(f"\n{name} at {root}")
    log(f"{'split':<12} {'found':>7} {'expected':>9}  status")
    for r in reports:
        exp = "-" if r.expected is None else str(r.expected)
        log(f"{r.split:<12} {r.found:>7} {exp:>9}  {r.status}")
    for r in reports:
        for note in r.notes:
            log(f"[{r.status}] {r.split}: {note}")
    failed = any(r.status == "FAIL" for r in reports)
    if all(r.status == "MISSING" for r in reports):
        log(f"FAIL no split of {name} found under {root}; see {README}")
        failed = True
    log("RESULT: " + ("FAIL" if failed else "OK"))
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    from .registry import DATASETS
    p = argparse.ArgumentParser(description="Verify a DGSS dataset tree (counts, pairing, label values).")
    p.add_argument("name", choices=sorted(DATASETS))
    p.add_argument("--root", default=None, help="dataset root (default $DGSS_DATA/<name> or ./data/<name>)")
    p.add_argument("--splits", nargs="+", default=None, help="splits to check (default: labelled ones)")
    p.add_argument("--decode-images", action="store_true", help="fully decode every image (slow)")
    p.add_argument("--conditions", nargs="+", default=None, help="acdc conditions")
    p.add_argument("--times", nargs="+", default=None, help="dark_zurich times of day")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    kw: dict[str, Any] = {}
    if a.conditions:
        kw["conditions"] = tuple(a.conditions)
    if a.times:
        kw["times"] = tuple(a.times)
    return verify(a.name, a.root, a.splits, a.decode_images, not a.no_progress, **kw)


if __name__ == "__main__":
    sys.exit(main())
