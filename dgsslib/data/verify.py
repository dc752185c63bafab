"""Verify a downloaded dataset tree before training on it.

    python -m dgsslib.data.verify cityscapes --root /data/cityscapes
    python data_scripts/verify.py gtav                      # root from $DGSS_DATA/gtav

For every split (default: the dataset's labelled splits) it builds the dataset (layout and
image/label pairing are checked there), compares the image count with the official count
(a different count is a WARNING: subsets are fine), then, with a progress bar, fully decodes
every image (a truncated download FAILs) and reads every label, checking its values and its
size against the image. ``--no-decode-images`` reads only the image headers (fast; then the
RESULT line says ``images not decoded``, since a truncated image can pass). A summary table
follows. Exit codes: 0 usable; 1 bad files (FAIL); 2 a user error -- unknown dataset, missing
root, no split found under the root -- printed as one ``[dgsslib] error: ...`` line on stderr.
A missing split is a warning when another split is found.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .base import README, DatasetError, LayoutError, SegFolderDataset, resolve_root
from .registry import DATASETS, dataset_class


@dataclass
class SplitReport:
    split: str
    status: str  # OK | WARN | MISSING | FAIL
    found: int = 0
    expected: int | None = None
    notes: list[str] = field(default_factory=list)


def check_split(cls: type[SegFolderDataset], root: Any, split: str, decode_images: bool = True,
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
        return rep
    if getattr(ds, "resized_labels", None):
        rep.status = "WARN"
        rep.notes += [f"{n}: label size differs from its image; the loader resizes the label "
                      f"(nearest){ds._size_fix()}" for n in ds.resized_labels[:max_errors]]
    if getattr(ds, "excluded", None):
        rep.status = "WARN"
        rep.notes.append(f"{len(ds.excluded)} images excluded by {ds.EXCLUDE_FILE}: "
                         f"{', '.join(ds.excluded[:5])}{' ...' if len(ds.excluded) > 5 else ''}")
    if rep.expected is not None and rep.found != rep.expected:
        rep.status = "WARN"
        rep.notes.append(f"{rep.found} images, official count {rep.expected} "
                         "(fine for a subset; otherwise an archive is missing)")
    return rep


class UserError(DatasetError):
    """Wrong name or root: nothing to verify (exit code 2)."""


def verify(name: str, root: Any = None, splits: Sequence[str] | None = None,
           decode_images: bool = True, progress: bool = True,
           log: Callable[[str], None] = print, **kw: Any) -> int:
    """Verify dataset ``name``; print the table; return the exit code (0 ok, 1 bad files).

    Raises ``UserError`` (a ``DatasetError``) for an unknown name, a missing root or a root
    holding no split of the dataset -- ``main`` turns it into exit code 2."""
    try:
        cls = dataset_class(name)
        root = resolve_root(name, root)
        splits = [cls.normalize_split(s) for s in (splits or cls.VERIFY_SPLITS)]
    except DatasetError as e:
        raise UserError(str(e)) from None
    reports = [check_split(cls, root, s, decode_images, progress, **kw) for s in splits]
    if all(r.status == "MISSING" for r in reports):
        raise UserError(f"no split of {name} ({', '.join(splits)}) found under {root}: wrong "
                        f"--root? Expected layout: {README} (section '{name}'). "
                        + reports[0].notes[0].split(". Expected layout")[0])
    log(f"\n{name} at {root}")
    log(f"{'split':<12} {'found':>7} {'expected':>9}  status")
    for r in reports:
        exp = "-" if r.expected is None else str(r.expected)
        log(f"{r.split:<12} {r.found:>7} {exp:>9}  {r.status}")
    for r in reports:
        for note in r.notes:
            log(f"[{r.status}] {r.split}: {note}")
    failed = any(r.status == "FAIL" for r in reports)
    how = ("images decoded" if decode_images else
           "images NOT decoded (--no-decode-images): a truncated image can pass")
    log(f"RESULT: {'FAIL' if failed else 'OK'} ({how})")
    return 1 if failed else 0


def check_subsets(kw: dict) -> None:
    """``--conditions`` / ``--times`` against the values the datasets know."""
    from .acdc import CONDITIONS
    from .dark_zurich import TIMES
    for key, allowed in (("conditions", CONDITIONS), ("times", TIMES)):
        bad = [v for v in kw.get(key, ()) if v not in allowed]
        if bad:
            raise DatasetError(f"unknown --{key} {bad}; choose from {', '.join(allowed)}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Verify a DGSS dataset tree (counts, pairing, label "
                                "values, image decoding). Exit 0 ok, 1 bad files, 2 user error.")
    p.add_argument("name", choices=sorted(DATASETS))
    p.add_argument("--root", default=None, help="dataset root (default $DGSS_DATA/<name> or ./data/<name>)")
    p.add_argument("--splits", nargs="+", default=None, help="splits to check (default: labelled ones)")
    p.add_argument("--no-decode-images", dest="decode_images", action="store_false",
                   help="read image headers only (fast; truncated images are not detected)")
    p.add_argument("--decode-images", dest="decode_images", action="store_true",
                   help="fully decode every image (the default)")
    p.add_argument("--conditions", nargs="+", default=None, help="acdc conditions")
    p.add_argument("--times", nargs="+", default=None, help="dark_zurich times of day")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    kw: dict[str, Any] = {}
    if a.conditions:
        kw["conditions"] = tuple(a.conditions)
    if a.times:
        kw["times"] = tuple(a.times)
    try:
        check_subsets(kw)  # a bad option is a user error (exit 2), not a failed tree (exit 1)
        return verify(a.name, a.root, a.splits, a.decode_images, not a.no_progress, **kw)
    except DatasetError as e:  # a user error (bad name, root, split or condition)
        print(f"[dgsslib] error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
